#include <gtest/gtest.h>

#include "audit_test_support.h"
#include "caregate/audit/audit_event.h"
#include "caregate/core/hash.h"

namespace caregate::audit {
namespace {

AuditEvent Small() {
  AuditEvent e;
  e.seq = 7;
  e.time_utc = "2024-05-01T09:00:00.000Z";
  e.user = "u1";
  e.role = "health";
  e.organisation = "LCH";
  e.action = "read";
  e.person_ids = {"nhs:9912003888", "cis:42"};
  e.view = "systmone";
  e.outcome = "200";
  e.request_id = "r1";
  e.detail = "";
  e.prev_hash = std::string(kGenesisHash);
  return e;
}

TEST(AuditEvent, CanonicalBytesAreLengthPrefixedInAFixedOrder) {
  EXPECT_EQ(CanonicalAuditBytes(Small()),
            "caregate-audit/1\n"
            "1:7\n"
            "24:2024-05-01T09:00:00.000Z\n"
            "2:u1\n"
            "6:health\n"
            "3:LCH\n"
            "4:read\n"
            "1:2\n"
            "14:nhs:9912003888\n"
            "6:cis:42\n"
            "8:systmone\n"
            "3:200\n"
            "2:r1\n"
            "0:\n");
}

TEST(AuditEvent, HashCoversPrevHashAndTheCanonicalBytes) {
  const AuditEvent e = Small();
  EXPECT_EQ(ComputeAuditHash(e), Sha256Hex(std::string(kGenesisHash) + CanonicalAuditBytes(e)));
  EXPECT_EQ(ComputeAuditHash(e).size(), 64u);
}

TEST(AuditEvent, HashIsRightEventAfterEventWhateverTheSizes) {
  // ComputeAuditHash reuses one buffer per thread: a short event after a long one (and
  // after a very long one, whose buffer is given back) must not see the other's bytes.
  AuditEvent e = Small();
  for (std::size_t size : {0u, 5000u, 3u, 100000u, 0u, 70u}) {
    e.detail = std::string(size, 'd');
    e.seq = static_cast<std::int64_t>(size) + 7;
    EXPECT_EQ(ComputeAuditHash(e), Sha256Hex(std::string(kGenesisHash) + CanonicalAuditBytes(e))) << size;
  }
}

TEST(AuditEvent, MovingBytesBetweenFieldsChangesTheHash) {
  AuditEvent a = Small(), b = Small();
  a.user = "ab";
  a.role = "c";
  b.user = "a";
  b.role = "bc";
  EXPECT_NE(ComputeAuditHash(a), ComputeAuditHash(b));
  // Nor can a person id be passed off as two, or moved into the next field.
  AuditEvent c = Small(), d = Small();
  c.person_ids = {"nhs:1\n1:x"};
  d.person_ids = {"nhs:1", "x"};
  EXPECT_NE(ComputeAuditHash(c), ComputeAuditHash(d));
  AuditEvent f = Small(), g = Small();
  f.person_ids = {};
  f.view = "x";
  g.person_ids = {"x"};
  g.view = "";
  EXPECT_NE(ComputeAuditHash(f), ComputeAuditHash(g));
}

TEST(AuditEvent, EveryFieldIsCovered) {
  const std::string base = ComputeAuditHash(Small());
  auto changed = [&](auto edit) {
    AuditEvent e = Small();
    edit(e);
    return ComputeAuditHash(e) != base;
  };
  EXPECT_TRUE(changed([](AuditEvent& e) { e.seq = 8; }));
  EXPECT_TRUE(changed([](AuditEvent& e) { e.time_utc[22] = '1'; }));
  EXPECT_TRUE(changed([](AuditEvent& e) { e.user = "u2"; }));
  EXPECT_TRUE(changed([](AuditEvent& e) { e.role = "ig"; }));
  EXPECT_TRUE(changed([](AuditEvent& e) { e.organisation = "LCC"; }));
  EXPECT_TRUE(changed([](AuditEvent& e) { e.action = "ingest"; }));
  EXPECT_TRUE(changed([](AuditEvent& e) { e.person_ids.pop_back(); }));
  EXPECT_TRUE(changed([](AuditEvent& e) { std::swap(e.person_ids[0], e.person_ids[1]); }));
  EXPECT_TRUE(changed([](AuditEvent& e) { e.view = "cis"; }));
  EXPECT_TRUE(changed([](AuditEvent& e) { e.outcome = "403 consent-withheld"; }));
  EXPECT_TRUE(changed([](AuditEvent& e) { e.request_id = "r2"; }));
  EXPECT_TRUE(changed([](AuditEvent& e) { e.detail = "x"; }));
  EXPECT_TRUE(changed([](AuditEvent& e) { e.prev_hash[0] = '1'; }));
  EXPECT_FALSE(changed([](AuditEvent& e) { e.hash = "anything"; }));
}

TEST(AuditTime, NowIsRfc3339WithMillisecondsInUtc) {
  const std::string now = UtcNowRfc3339();
  EXPECT_TRUE(testing::IsCanonicalTime(now)) << now;
}

TEST(AuditTime, FormatsEachMillisecondWhateverSecondItFollows) {
  // The text up to the seconds is cached per thread: the cache must follow the time
  // forwards, backwards and across days and years, and write every millisecond digit.
  namespace chr = std::chrono;
  const auto at = [](int y, unsigned mo, unsigned d, int h, int mi, int s, int ms) {
    return chr::sys_days{chr::year{y} / chr::month{mo} / chr::day{d}} + chr::hours{h} + chr::minutes{mi} +
           chr::seconds{s} + chr::milliseconds{ms};
  };
  EXPECT_EQ(FormatAuditTime(at(2024, 12, 31, 23, 59, 59, 998)), "2024-12-31T23:59:59.998Z");
  EXPECT_EQ(FormatAuditTime(at(2024, 12, 31, 23, 59, 59, 999)), "2024-12-31T23:59:59.999Z");
  EXPECT_EQ(FormatAuditTime(at(2025, 1, 1, 0, 0, 0, 0)), "2025-01-01T00:00:00.000Z");
  EXPECT_EQ(FormatAuditTime(at(2025, 1, 1, 0, 0, 0, 7)), "2025-01-01T00:00:00.007Z");
  EXPECT_EQ(FormatAuditTime(at(2025, 1, 1, 0, 0, 0, 70)), "2025-01-01T00:00:00.070Z");
  EXPECT_EQ(FormatAuditTime(at(2024, 2, 29, 10, 0, 0, 500)), "2024-02-29T10:00:00.500Z");
  EXPECT_EQ(FormatAuditTime(at(2024, 12, 31, 23, 59, 59, 999)), "2024-12-31T23:59:59.999Z");
  EXPECT_EQ(FormatAuditTime(at(2025, 1, 1, 0, 0, 1, 0)), "2025-01-01T00:00:01.000Z");
  // And agrees with the normaliser, which formats without the cache.
  EXPECT_EQ(FormatAuditTime(at(2025, 1, 1, 0, 0, 1, 123)), NormaliseAuditTime("2025-01-01T00:00:01.123Z"));
}

TEST(AuditTime, NormalisesDatesAndTimesToUtcMilliseconds) {
  EXPECT_EQ(NormaliseAuditTime("2024-05-01"), "2024-05-01T00:00:00.000Z");
  EXPECT_EQ(NormaliseAuditTime("2024-05-01", true), "2024-05-01T23:59:59.999Z");
  EXPECT_EQ(NormaliseAuditTime("2024-05-01T10:00:00Z"), "2024-05-01T10:00:00.000Z");
  EXPECT_EQ(NormaliseAuditTime("2024-05-01T10:00:00Z", true), "2024-05-01T10:00:00.999Z");
  EXPECT_EQ(NormaliseAuditTime("2024-05-01T10:00:00.5Z"), "2024-05-01T10:00:00.500Z");
  EXPECT_EQ(NormaliseAuditTime("2024-05-01T10:00:00.5Z", true), "2024-05-01T10:00:00.599Z");
  EXPECT_EQ(NormaliseAuditTime("2024-05-01T10:00:00.123456Z", true), "2024-05-01T10:00:00.123Z");
  EXPECT_EQ(NormaliseAuditTime("2024-05-01T00:30:00+01:00"), "2024-04-30T23:30:00.000Z");
  EXPECT_EQ(NormaliseAuditTime("2024-12-31T23:30:00-01:00"), "2025-01-01T00:30:00.000Z");
  EXPECT_EQ(NormaliseAuditTime("2024-02-29 10:00:00z"), "2024-02-29T10:00:00.000Z");
}

TEST(AuditTime, RejectsWhatIsNotADateOrRfc3339Time) {
  for (const char* bad : {"", "yesterday", "2024-5-1", "2023-02-29", "2024-13-01", "2024-05-01T24:00:00Z",
                          "2024-05-01T10:00:00", "2024-05-01T10:00Z", "2024-05-01T10:00:00.Z",
                          "2024-05-01T10:00:00Zjunk", "2024-05-01T10:00:00+1:00", "2024-05-01x"}) {
    EXPECT_FALSE(NormaliseAuditTime(bad).has_value()) << bad;
  }
}

}  // namespace
}  // namespace caregate::audit
