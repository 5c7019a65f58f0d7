#include "sqlite_memory.h"

#include <sqlite3.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>

namespace caregate::store::sqlite_memory {
namespace {

// Each block carries its usable size in an 8-byte header (SQLite needs xSize; the same
// layout as SQLite's own default allocator). Blocks are 8-byte aligned (malloc's 16 plus
// the header), which is what SQLite asks for.
constexpr std::size_t kHeader = 8;

std::size_t Round8(std::size_t n) { return (n + 7) & ~std::size_t{7}; }

// The usable size of a block asked for n bytes: a multiple of 8; in the cached range, of
// kCacheGranule, so that the page-split scratch (whose size varies with the cells of the
// pages being split, 8-10 KiB for audit rows) meets blocks of one size again.
std::size_t Usable(std::size_t n) {
  const std::size_t bytes = Round8(n);
  if (bytes < kMinCachedBytes || bytes > kMaxCachedBytes) return bytes;
  return (bytes + kCacheGranule - 1) / kCacheGranule * kCacheGranule;
}

void* FromHeader(void* h) { return static_cast<char*>(h) + kHeader; }
void* ToHeader(void* p) { return static_cast<char*>(p) - kHeader; }
std::size_t SizeOf(void* p) {
  std::uint64_t n;
  std::memcpy(&n, ToHeader(p), sizeof n);
  return static_cast<std::size_t>(n);
}
void SetSize(void* h, std::size_t n) {
  const std::uint64_t v = n;
  std::memcpy(h, &v, sizeof v);
}

// The blocks one thread keeps: a few sizes, a few blocks each. Freed when the thread ends;
// a block freed after that (a connection closed by a later thread_local's destructor)
// goes straight back to malloc.
struct ThreadCache {
  struct Size {
    std::size_t bytes = 0;  // usable size; 0: slot unused
    std::size_t count = 0;
    std::uint64_t used = 0;  // clock of the last Take or Keep
    void* blocks[kBlocksPerSize];
  };
  Size sizes[kSizesPerThread];
  std::size_t reuses = 0;
  std::uint64_t clock = 0;

  ~ThreadCache();
  void* Take(std::size_t bytes) {
    for (Size& s : sizes)
      if (s.bytes == bytes && s.count > 0) {
        ++reuses;
        s.used = ++clock;
        return s.blocks[--s.count];
      }
    return nullptr;
  }
  bool Keep(void* p, std::size_t bytes) {
    Size* victim = &sizes[0];
    for (Size& s : sizes) {
      if (s.bytes == bytes) {
        if (s.count == kBlocksPerSize) return false;
        s.blocks[s.count++] = p;
        s.used = ++clock;
        return true;
      }
      if (s.used < victim->used) victim = &s;
    }
    // A size not held: it takes the slot used longest ago (its blocks go back to malloc),
    // so sizes met once do not keep the slots from the ones met all the time.
    Drop(*victim);
    victim->bytes = bytes;
    victim->blocks[0] = p;
    victim->count = 1;
    victim->used = ++clock;
    return true;
  }
  static void Drop(Size& s) {
    while (s.count > 0) std::free(ToHeader(s.blocks[--s.count]));
  }
  std::size_t Held() const {
    std::size_t n = 0;
    for (const Size& s : sizes) n += s.count;
    return n;
  }
};

thread_local bool tl_cache_gone = false;
thread_local ThreadCache tl_cache;

ThreadCache::~ThreadCache() {
  for (Size& s : sizes) Drop(s);
  tl_cache_gone = true;
}

bool Cacheable(std::size_t bytes) {
  return bytes >= kMinCachedBytes && bytes <= kMaxCachedBytes && !tl_cache_gone;
}

void* Malloc(int n) {
  if (n <= 0) return nullptr;
  const std::size_t bytes = Usable(static_cast<std::size_t>(n));
  if (Cacheable(bytes))
    if (void* p = tl_cache.Take(bytes)) return p;
  void* h = std::malloc(bytes + kHeader);
  if (!h) return nullptr;
  SetSize(h, bytes);
  return FromHeader(h);
}

void Free(void* p) {
  if (!p) return;
  const std::size_t bytes = SizeOf(p);
  if (Cacheable(bytes) && tl_cache.Keep(p, bytes)) return;
  std::free(ToHeader(p));
}

void* Realloc(void* p, int n) {
  if (!p) return Malloc(n);
  if (n <= 0) {
    Free(p);
    return nullptr;
  }
  const std::size_t bytes = Usable(static_cast<std::size_t>(n));
  void* h = std::realloc(ToHeader(p), bytes + kHeader);
  if (!h) return nullptr;
  SetSize(h, bytes);
  return FromHeader(h);
}

int Size(void* p) { return p ? static_cast<int>(SizeOf(p)) : 0; }
int Roundup(int n) { return n <= 0 ? 0 : static_cast<int>(Usable(static_cast<std::size_t>(n))); }
int Init(void*) { return SQLITE_OK; }
void Shutdown(void*) {}

const sqlite3_mem_methods kMethods = {Malloc, Free, Realloc, Size, Roundup, Init, Shutdown, nullptr};

}  // namespace

const sqlite3_mem_methods& Methods() { return kMethods; }
std::size_t CachedBlocks() { return tl_cache_gone ? 0 : tl_cache.Held(); }
std::size_t Reuses() { return tl_cache_gone ? 0 : tl_cache.reuses; }

}  // namespace caregate::store::sqlite_memory
