// SQLite's allocator with a per-thread cache of large blocks (gateway/store/src/sqlite_memory.h).
#include "sqlite_memory.h"

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <cstring>
#include <filesystem>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "caregate/store/database.h"
#include "caregate/store/statement.h"
#include "support/temp_dir.h"

namespace caregate::store {
namespace {

namespace mem = sqlite_memory;

TEST(SqliteMemoryTest, BlocksKeepTheirSizeAndContents) {
  const auto& m = mem::Methods();
  for (int n : {1, 7, 8, 100, 2047, 2048, 4096, 65544, 200000}) {
    void* p = m.xMalloc(n);
    ASSERT_NE(p, nullptr) << n;
    EXPECT_EQ(reinterpret_cast<std::uintptr_t>(p) % 8, 0u) << n;
    EXPECT_EQ(m.xSize(p), m.xRoundup(n)) << n;
    if (n >= 2048 && n <= 128 * 1024) {
      EXPECT_EQ(m.xSize(p) % 4096, 0) << n;
    }
    EXPECT_GE(m.xSize(p), n) << n;
    std::memset(p, 0x5A, static_cast<std::size_t>(n));
    void* q = m.xRealloc(p, n * 2 + 3);
    ASSERT_NE(q, nullptr) << n;
    EXPECT_EQ(m.xSize(q), m.xRoundup(n * 2 + 3)) << n;
    const auto* b = static_cast<const unsigned char*>(q);
    for (int i = 0; i < n; ++i) ASSERT_EQ(b[i], 0x5A) << n << " byte " << i;
    m.xFree(q);
  }
  EXPECT_EQ(m.xMalloc(0), nullptr);
  m.xFree(nullptr);
  EXPECT_EQ(m.xSize(nullptr), 0);
}

TEST(SqliteMemoryTest, LargeBlocksAreReusedOnTheirThreadAndTheCacheIsBounded) {
  std::thread([] {  // a thread of its own: a clean cache
    const auto& m = mem::Methods();
    EXPECT_EQ(mem::CachedBlocks(), 0u);
    // A page-split's pair of buffers, freed and taken again: the same blocks come back.
    void* page = m.xMalloc(4096);
    void* scratch = m.xMalloc(65544);
    m.xFree(page);
    m.xFree(scratch);
    EXPECT_EQ(mem::CachedBlocks(), 2u);
    EXPECT_EQ(m.xMalloc(65544), scratch);
    EXPECT_EQ(m.xMalloc(4096), page);
    EXPECT_EQ(mem::Reuses(), 2u);
    EXPECT_EQ(mem::CachedBlocks(), 0u);
    m.xFree(page);
    m.xFree(scratch);

    // Sizes are rounded up to 4 KiB in the cached range: a scratch buffer of a slightly
    // different size is the same block.
    void* scratch2 = m.xMalloc(66000);  // 65544 and 66000: both 69632
    EXPECT_EQ(scratch2, scratch);
    EXPECT_EQ(mem::Reuses(), 3u);
    m.xFree(scratch2);

    // Small and very large blocks are never kept.
    m.xFree(m.xMalloc(static_cast<int>(mem::kMinCachedBytes) - 8));
    m.xFree(m.xMalloc(static_cast<int>(mem::kMaxCachedBytes) + 8));
    EXPECT_EQ(mem::CachedBlocks(), 2u);

    // At most kBlocksPerSize of one size. Held now: one 4096 and one 65544.
    static_assert(mem::kSizesPerThread == 4 && mem::kBlocksPerSize == 2, "the counts below");
    std::vector<void*> many;
    for (std::size_t i = 0; i < mem::kBlocksPerSize + 3; ++i) many.push_back(m.xMalloc(8192));
    for (void* p : many) m.xFree(p);
    EXPECT_EQ(mem::CachedBlocks(), 4u);  // 4096: 1, 65544: 1, 8192: 2

    // At most kSizesPerThread sizes: a new size takes the slot used longest ago.
    m.xFree(m.xMalloc(65544));  // 65544 used again: now the 4096 slot is the oldest
    m.xFree(m.xMalloc(16384));  // a fourth size: a free slot
    EXPECT_EQ(mem::CachedBlocks(), 5u);
    void* fifth = m.xMalloc(24000);
    m.xFree(fifth);  // a fifth: its block replaces the 4096 one
    EXPECT_EQ(mem::CachedBlocks(), 5u);
    const std::size_t reuses = mem::Reuses();
    EXPECT_EQ(m.xMalloc(24000), fifth);
    void* page_again = m.xMalloc(4096);  // evicted: from malloc, not the cache
    EXPECT_EQ(mem::Reuses(), reuses + 1);
    m.xFree(page_again);
    m.xFree(fifth);
    EXPECT_LE(mem::CachedBlocks(), mem::kSizesPerThread * mem::kBlocksPerSize);
  }).join();
}

// SQLite runs on these methods (configured before its first open) and a writer that
// splits many pages reuses the split buffers; the data is intact.
TEST(SqliteMemoryTest, SqliteUsesItAndPageSplitsReuseBlocks) {
  testing::TempDir dir;
  std::thread([&] {
    Database db((dir.path() / "m.db").string());
    db.Exec("CREATE TABLE t (k INTEGER PRIMARY KEY, v TEXT NOT NULL); CREATE INDEX t_v ON t(v)");
    const std::size_t before = mem::Reuses();
    Statement insert(db, "INSERT INTO t (k, v) VALUES (?, ?)");
    std::string value(300, 'x');
    for (int batch = 0; batch < 20; ++batch) {
      db.Exec("BEGIN");
      for (int i = 0; i < 200; ++i) {
        const int k = batch * 200 + i;
        value.replace(0, 8, std::to_string(10000000 + (k * 7919) % 4000));
        insert.Reset();
        insert.Bind(1, static_cast<std::int64_t>(k));
        insert.BindText(2, value);
        insert.Run();
      }
      db.Exec("COMMIT");
    }
    EXPECT_GT(mem::Reuses(), before + 20) << "page splits should reuse cached blocks";
    EXPECT_LE(mem::CachedBlocks(), mem::kSizesPerThread * mem::kBlocksPerSize);
    Statement count(db, "SELECT count(*), count(DISTINCT k) FROM t");
    ASSERT_TRUE(count.Step());
    EXPECT_EQ(count.ColumnInt64(0), 4000);
    EXPECT_EQ(count.ColumnInt64(1), 4000);
    Statement check(db, "PRAGMA integrity_check");
    ASSERT_TRUE(check.Step());
    EXPECT_EQ(check.ColumnText(0), "ok");
  }).join();
}

}  // namespace
}  // namespace caregate::store
