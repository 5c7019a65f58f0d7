#pragma once
// SQLite's memory allocator, as caregate configures it (sqlite3_config(SQLITE_CONFIG_MALLOC)):
// the C library's malloc, plus a small per-thread cache of large blocks.
//
// Why: every B-tree page split (balance_nonroot) takes a page-sized buffer and an 8-64 KiB
// scratch buffer from the allocator and gives them back at once. The audit writer splits
// pages several times per group commit, and in glibc a request that large walks and
// merges every small chunk freed since the last one (malloc_consolidate): with malloc
// itself ~14% of the writer's samples under the lookup bench. Blocks of kMinCachedBytes to
// kMaxCachedBytes are kept per thread for reuse instead (sizes rounded up to 4 KiB), a
// couple of each size: a split holds at most two page buffers and one scratch at a time.
// At most kSizesPerThread * kBlocksPerSize * kMaxCachedBytes (1 MiB) per thread; a
// thread that never frees such a block keeps nothing.
#include <cstddef>

struct sqlite3_mem_methods;

namespace caregate::store::sqlite_memory {

inline constexpr std::size_t kMinCachedBytes = 2048;  // smaller blocks: malloc's own caches do well
inline constexpr std::size_t kMaxCachedBytes = 128 * 1024;  // larger ones are rare: not kept
inline constexpr std::size_t kCacheGranule = 4096;  // blocks in the cached range: multiples of it
inline constexpr std::size_t kBlocksPerSize = 2;      // per thread and size
inline constexpr std::size_t kSizesPerThread = 4;     // distinct sizes kept per thread

// The methods (xMalloc ... xShutdown), for sqlite3_config(SQLITE_CONFIG_MALLOC, ...).
const sqlite3_mem_methods& Methods();

// For tests: blocks this thread holds for reuse, and how many allocations were served
// from them since the thread started.
std::size_t CachedBlocks();
std::size_t Reuses();

}  // namespace caregate::store::sqlite_memory
