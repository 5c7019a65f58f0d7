#include <gtest/gtest.h>

#include <string>
#include <thread>
#include <vector>

#include "caregate/core/hash.h"

namespace caregate {
namespace {

// FIPS 180-2 test vectors.
constexpr const char* kEmpty = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
constexpr const char* kAbc = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
constexpr const char* kTwoBlocks = "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1";
constexpr const char* kTwoBlocksText = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";

TEST(Sha256, OneShotMatchesTheStandardVectorsCallAfterCall) {
  // The one-shot form reuses a context per thread: each call must start afresh.
  for (int round = 0; round < 3; ++round) {
    EXPECT_EQ(Sha256Hex("abc"), kAbc);
    EXPECT_EQ(Sha256Hex(""), kEmpty);
    EXPECT_EQ(Sha256Hex(kTwoBlocksText), kTwoBlocks);
  }
}

TEST(Sha256, ResetStartsANewHashInTheSameContext) {
  Sha256 h;
  h.update("ab");
  h.update("c");
  EXPECT_EQ(h.hex_digest(), kAbc);
  h.reset();
  EXPECT_EQ(h.hex_digest(), kEmpty);
  h.reset();
  h.update(kTwoBlocksText);
  EXPECT_EQ(h.hex_digest(), kTwoBlocks);
}

TEST(Sha256, OneShotIsCorrectOnManyThreadsAtOnce) {
  std::vector<std::thread> threads;
  std::vector<int> wrong(4, 0);
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&wrong, t] {
      for (int i = 0; i < 2000; ++i)
        if (Sha256Hex(i % 2 ? "abc" : kTwoBlocksText) != (i % 2 ? kAbc : kTwoBlocks)) ++wrong[t];
    });
  for (auto& th : threads) th.join();
  EXPECT_EQ(wrong, std::vector<int>(4, 0));
}

}  // namespace
}  // namespace caregate
