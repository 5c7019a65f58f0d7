// OutputFile: the bytes and SHA-256 of what was appended, published only on Publish, and
// a large file written without filling the page cache; with direct I/O and through the
// page cache alike.
#include "output_file.h"  // gateway/export/src (private to the export library)

#include <fcntl.h>
#include <linux/magic.h>
#include <sys/mman.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <vector>

#include "caregate/core/hash.h"
#include "support/temp_dir.h"

namespace caregate::exporter {
namespace {

using caregate::testing::TempDir;

std::string Slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// A deterministic, incompressible-looking block of text of `n` bytes.
std::string Block(std::size_t n, unsigned seed) {
  std::string s(n, ' ');
  unsigned x = seed * 2654435761u + 1;
  for (auto& c : s) {
    x = x * 1103515245u + 12345u;
    c = static_cast<char>('a' + (x >> 16) % 26);
  }
  return s;
}

class OutputFileIo : public ::testing::TestWithParam<OutputFile::Io> {};
INSTANTIATE_TEST_SUITE_P(BothWays, OutputFileIo,
                         ::testing::Values(OutputFile::Io::kDirectWherePossible, OutputFile::Io::kPageCache),
                         [](const ::testing::TestParamInfo<OutputFile::Io>& p) {
                           return p.param == OutputFile::Io::kPageCache ? "PageCache" : "Direct";
                         });

bool IsTmpfs(const std::string& dir) {
  struct statfs fs {};
  return ::statfs(dir.c_str(), &fs) == 0 && fs.f_type == TMPFS_MAGIC;
}

TEST_P(OutputFileIo, WritesWhatWasAppendedAndItsSha256OnlyOncePublished) {
  TempDir dir;
  const std::string path = dir.file("out.csv");
  std::string all;
  {
    OutputFile f(path, GetParam());
    if (GetParam() == OutputFile::Io::kPageCache) {
      EXPECT_FALSE(f.direct());
    } else if (!IsTmpfs(dir.path().string())) {
      EXPECT_TRUE(f.direct());  // wherever the file system takes it: not tmpfs; ext4 and xfs do
    }
    for (unsigned i = 0; i < 40; ++i) {  // ~3.5 MB in uneven pieces, across several flushes
      const std::string piece = Block(1000 + 177 * i * i, i);
      f.Append(piece);
      all += piece;
    }
    f.Finish();
    EXPECT_FALSE(std::filesystem::exists(path));  // not before Publish
    EXPECT_EQ(f.bytes(), all.size());
    EXPECT_EQ(f.sha256(), Sha256Hex(all));
    f.Publish();
  }
  EXPECT_EQ(Slurp(path), all);
  EXPECT_FALSE(std::filesystem::exists(PartialPath(path)));
}

// Small pieces are buffered, large ones written as they are: the order and the hash
// must not notice which was which.
TEST_P(OutputFileIo, SmallAndLargePiecesInAnyOrderKeepTheirOrder) {
  TempDir dir;
  const std::string path = dir.file("mixed.xml");
  std::string all;
  {
    OutputFile f(path, GetParam());
    // Pieces across direct blocks' edges (1 MiB), exactly filling one, and a short tail.
    const std::size_t sizes[] = {10, 70000, 3, 5, 200000, 65536, 65535, 1, 1 << 20, 17, 0, 2 << 20, 9,
                                 (1 << 20) - 2426167 % (1 << 20), 1 << 20, 4095};
    unsigned seed = 0;
    for (std::size_t n : sizes) {
      const std::string piece = Block(n, ++seed);
      f.Append(piece);
      all += piece;
    }
    f.Finish();
    EXPECT_EQ(f.bytes(), all.size());
    EXPECT_EQ(f.sha256(), Sha256Hex(all));
    f.Publish();
  }
  EXPECT_EQ(Slurp(path), all);
}

// Files smaller than one direct block (the manifest, most warehouse tables): the whole
// file is the tail.
TEST_P(OutputFileIo, SmallAndEmptyFiles) {
  TempDir dir;
  for (std::size_t n : {std::size_t{0}, std::size_t{1}, std::size_t{4096}, std::size_t{70000}}) {
    SCOPED_TRACE(n);
    const std::string path = dir.file("small-" + std::to_string(n));
    const std::string all = Block(n, 5);
    {
      OutputFile f(path, GetParam());
      f.Append(all);
      f.Flush();
      f.Finish();
      EXPECT_EQ(f.sha256(), Sha256Hex(all));
      f.Publish();
    }
    EXPECT_EQ(Slurp(path), all);
  }
}

// A file system that opens the file for direct I/O and then refuses a direct write
// (EINVAL) mid-file: the file leaves direct I/O there, and what was already written
// directly, the refused block and everything after arrive once each, in order, with the
// SHA-256 of the whole. Refused at the first block, at the second, and after several.
TEST(OutputFile, ADirectWriteRefusedMidFileFallsBackWithoutLosingBytes) {
  TempDir dir;
  if (IsTmpfs(dir.path().string())) GTEST_SKIP() << "the fallback is from direct I/O";
  for (std::uint64_t from : {std::uint64_t{0}, std::uint64_t{1} << 20, std::uint64_t{3} << 20}) {
    SCOPED_TRACE(from);
    const std::string path = dir.file("refused-" + std::to_string(from));
    std::string all;
    {
      OutputFile f(path);
      ASSERT_TRUE(f.direct());
      f.RefuseDirectWritesFrom(from);
      for (unsigned i = 0; i < 60; ++i) {  // ~5.6 MB in uneven pieces, across the refusal
        const std::string piece = Block(3000 + 97 * i * i, i);
        f.Append(piece);
        all += piece;
      }
      EXPECT_FALSE(f.direct());
      f.Finish();
      EXPECT_EQ(f.bytes(), all.size());
      EXPECT_EQ(f.sha256(), Sha256Hex(all));
      f.Publish();
    }
    EXPECT_EQ(Slurp(path), all);
  }
}

// tmpfs refused O_DIRECT until Linux 6.6 (the file then gets the page cache) and takes
// it since: the same bytes either way.
TEST(OutputFile, TmpfsGetsTheSameBytesWhicheverWayItWrites) {
  if (!IsTmpfs("/dev/shm")) GTEST_SKIP() << "no tmpfs at /dev/shm";
  TempDir dir("/dev/shm");
  const std::string path = dir.file("out.xml");
  const std::string all = Block(3 << 20, 11) + "tail";
  {
    OutputFile f(path);
    f.Append(all);
    f.Finish();
    EXPECT_EQ(f.sha256(), Sha256Hex(all));
    f.Publish();
  }
  EXPECT_EQ(Slurp(path), all);
}

TEST_P(OutputFileIo, UnpublishedFileIsRemoved) {
  TempDir dir;
  const std::string path = dir.file("out.xml");
  {
    OutputFile f(path, GetParam());
    f.Append(Block(3 << 20, 7));
    f.Flush();
    EXPECT_TRUE(std::filesystem::exists(PartialPath(path)));
  }
  EXPECT_FALSE(std::filesystem::exists(PartialPath(path)));
  EXPECT_FALSE(std::filesystem::exists(path));
}

TEST_P(OutputFileIo, ALargeFileDoesNotStayInThePageCache) {
  // A night's output is gigabytes: direct I/O never puts it in the page cache, and
  // through the cache, pages written back long ago are dropped, so the run reuses a
  // little cache instead of filling memory (docs/performance.md, export).
  TempDir dir;
  if (IsTmpfs(dir.path().string())) GTEST_SKIP() << "tmpfs keeps every page in memory";
  const std::string path = dir.file("big.xml");
  constexpr std::size_t kTotal = 96u << 20;
  {
    OutputFile f(path, GetParam());
    const std::string piece = Block(1 << 20, 3);
    for (std::size_t n = 0; n < kTotal; n += piece.size()) f.Append(piece);
    f.Finish();
    f.Publish();
  }
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  void* map = ::mmap(nullptr, kTotal, PROT_READ, MAP_SHARED, fd, 0);
  ASSERT_NE(map, MAP_FAILED);
  const std::size_t page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
  std::vector<unsigned char> resident(kTotal / page);
  ASSERT_EQ(::mincore(map, kTotal, resident.data()), 0);
  std::size_t cached = 0;
  for (unsigned char r : resident) cached += r & 1;
  ::munmap(map, kTotal);
  ::close(fd);
  // At most the last stretch (kept for the final fsync) and a flush or two beside it.
  EXPECT_LT(cached * page, std::size_t{40} << 20) << cached << " pages of " << resident.size() << " cached";
}

}  // namespace
}  // namespace caregate::exporter
