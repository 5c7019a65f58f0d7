// The application routes called in-process through the pure request handler.
#include <sqlite3.h>

#include <algorithm>
#include <filesystem>
#include <future>

#include "app_fixture.h"
#include "caregate/audit/audit_log.h"

namespace caregate::app::testing {
namespace {

std::string Header(const server::Response& r, std::string_view name) {
  auto v = r.headers.Find(name);
  return v ? std::string(*v) : std::string();
}

class AppRoutes : public AppTest {};

TEST_F(AppRoutes, LookupsAndTheirAuditCommitsKeepTheWalBounded) {
  // Every lookup commits an audit event to the store's file. If the store's reader ever
  // held its read snapshot across lookups, no checkpoint could restart the WAL and it
  // would grow without end (a version that kept the snapshot for 20 ms did: 157 MB in
  // 10 s of load). 2,500 lookups leave ~50 MB of WAL frames without restarts.
  for (int i = 0; i < 20; ++i)
    ASSERT_EQ(IngestCis(CisJson(PersonFields{.cis = "C-" + std::to_string(i)})).status, 201);
  for (int i = 0; i < 2500; ++i)
    ASSERT_EQ(Call("GET", "/v1/persons/cis:C-" + std::to_string(i % 20), kHealth).status, 200);
  const auto wal = std::filesystem::file_size(dir_.file("caregate.db-wal"));
  EXPECT_GT(wal, 0u);
  EXPECT_LT(wal, 10u << 20) << "WAL bytes";
}

// Warm start (App::Warm): the answers are exactly a cold start's, for every role and
// rule (linked ids, consent withheld, sensitive details, canonical view), and every
// lookup is still authorised and audited one by one.
TEST_F(AppRoutes, WarmStartAnswersAsAColdOneAndStillAuditsEveryLookup) {
  ASSERT_EQ(IngestS1(S1Xml(PersonFields{.nhs = "9912003888", .s1 = "S-1", .phone = "0113 000 0001"})).status, 201);
  ASSERT_EQ(IngestCis(CisJson(PersonFields{.nhs = "9912003888", .cis = "C-1", .ethnicity = "White: Roma"})).status,
            201);
  ASSERT_EQ(IngestCis(CisJson(PersonFields{.cis = "C-2", .consent = "No"})).status, 201);
  ASSERT_EQ(IngestCis(CisJson(PersonFields{.cis = "C-3", .sensitive = "true"})).status, 201);
  const std::vector<std::pair<std::string, const char*>> calls = {
      {"/v1/persons/nhs:9912003888", kHealth}, {"/v1/persons/s1:S-1", kCouncil},
      {"/v1/persons/cis:C-1", kHealth},        {"/v1/persons/cis:C-2", kHealth},
      {"/v1/persons/cis:C-2", kCouncil},       {"/v1/persons/cis:C-3", kHealth},
      {"/v1/persons/cis:C-3", kCouncil},       {"/v1/persons/cis:C-1?view=canonical", kIg},
      {"/v1/persons/cis:C-9", kHealth}};
  struct Answer {
    int status;
    std::string body, lossy;
    bool operator==(const Answer&) const = default;
  };
  auto answers = [&](App& app) {
    auto handler = app.MakeHandler(TestTokens());
    std::vector<Answer> out;
    for (const auto& [target, token] : calls) {
      server::Request r;
      r.method = "GET";
      r.target = target;
      r.headers.Add("Authorization", std::string("Bearer ") + token);
      auto res = handler->Handle(r);
      // Refusals name their request id; the answers are compared without it.
      out.push_back({res.status, res.status == 200 ? res.body : std::string(), Header(res, "X-Caregate-Lossy-Fields")});
    }
    return out;
  };
  std::vector<Answer> cold;
  {
    App app(caregate::testing::TestEngine(), dir_.file("caregate.db"));
    cold = answers(app);
  }
  ASSERT_EQ(cold[3].status, 403);  // consent withheld from health
  ASSERT_EQ(cold[8].status, 404);
  App app(caregate::testing::TestEngine(), dir_.file("caregate.db"));
  EXPECT_EQ(app.Warm(100, TestTokens().Roles()), 3u);  // S-1 and C-1 are one person
  const auto before = Events().size();
  EXPECT_EQ(answers(app), cold);
  EXPECT_EQ(Events().size(), before + calls.size());  // one event per lookup, warm or not
  EXPECT_EQ(LastEvent().outcome, "404 not-found");
}

// The rendering kept with a person goes with that snapshot: after an update the next
// lookup renders the new record, for the same organisation and view.
TEST_F(AppRoutes, AnUpdateIsRenderedAfreshNotServedFromTheKeptRendering) {
  ASSERT_EQ(IngestCis(CisJson(PersonFields{.cis = "C-7", .phone = "0113 496 0001"})).status, 201);
  const auto before = Call("GET", "/v1/persons/cis:C-7", kHealth);
  ASSERT_EQ(before.status, 200);
  EXPECT_NE(before.body.find("0113 496 0001"), std::string::npos);
  EXPECT_EQ(Call("GET", "/v1/persons/cis:C-7", kHealth).body, before.body);  // kept
  ASSERT_EQ(IngestCis(CisJson(PersonFields{.cis = "C-7", .phone = "0113 496 0777"})).status, 200);
  const auto after = Call("GET", "/v1/persons/cis:C-7", kHealth);
  ASSERT_EQ(after.status, 200);
  EXPECT_NE(after.body.find("0113 496 0777"), std::string::npos);
  EXPECT_EQ(after.body.find("0113 496 0001"), std::string::npos);
  // The other organisation's view of the same snapshot is its own rendering.
  const auto council = Call("GET", "/v1/persons/cis:C-7", kCouncil);
  ASSERT_EQ(council.status, 200);
  EXPECT_NE(council.body, after.body);
}

// A cached rendering is written from the cache (Response::shared_body), one string for
// every lookup of that person and view; Handle() hands it back copied into `body`.
TEST_F(AppRoutes, RepeatedLookupsShareOneRenderingAndHandleCopiesIt) {
  ASSERT_EQ(IngestCis(SpecExample("cis-record.json")).status, 201);
  auto async = [&] {
    server::Request r;
    r.method = "GET";
    r.target = "/v1/persons/cis:LCC-0048213";
    r.headers.Add("Authorization", std::string("Bearer ") + kHealth);
    std::promise<server::Response> answer;
    handler_->HandleAsync(std::move(r), [&](server::Response res) { answer.set_value(std::move(res)); }, nullptr);
    return answer.get_future().get();
  };
  const auto a = async(), b = async();
  ASSERT_EQ(a.status, 200);
  ASSERT_TRUE(a.shared_body && b.shared_body);
  EXPECT_EQ(a.shared_body, b.shared_body);  // the same string, not a copy
  EXPECT_TRUE(a.body.empty());
  const auto c = Call("GET", "/v1/persons/cis:LCC-0048213", kHealth);
  EXPECT_FALSE(c.shared_body);
  EXPECT_EQ(c.body, *a.shared_body);
  EXPECT_NE(c.body.find("<ClientIntegrationResponse"), std::string::npos);
}

TEST_F(AppRoutes, IngestIs201ThenUpdated200WithThePersonIds) {
  auto r = IngestCis(SpecExample("cis-record.json"));
  ASSERT_EQ(r.status, 201) << r.body;
  auto d = Json(r.body);
  EXPECT_STREQ(d["status"].GetString(), "created");
  r = IngestS1(SpecExample("systmone-record.xml"));
  EXPECT_EQ(r.status, 201) << r.body;
  r = IngestCis(SpecExample("cis-record.json"));
  EXPECT_EQ(r.status, 200);
  d = Json(r.body);
  EXPECT_STREQ(d["status"].GetString(), "updated");
  ASSERT_EQ(d["person_ids"].Size(), 3u);
  EXPECT_EQ(app_->store().PersonCount(), 1);
  auto e = LastEvent();
  EXPECT_EQ(e.action, "ingest");
  EXPECT_EQ(e.user, "nightly-export");
  EXPECT_EQ(e.role, "service");
  EXPECT_EQ(e.organisation, "caregate");
  EXPECT_EQ(e.outcome, "200");
  EXPECT_EQ(e.person_ids, (std::vector<std::string>{"cis:LCC-0048213", "nhs:9912003888", "s1:700412"}));
  EXPECT_EQ(e.request_id, Header(r, "X-Request-Id"));
}

TEST_F(AppRoutes, InvalidRecordIs422WithFieldErrorsAndAudited) {
  PersonFields p{.nhs = "9912003889", .cis = "C-1"};  // fails Modulus 11
  auto r = IngestCis(CisJson(p));
  ASSERT_EQ(r.status, 422);
  EXPECT_EQ(r.content_type, "application/problem+json");
  auto d = Json(r.body);
  ASSERT_TRUE(d.HasMember("errors"));
  ASSERT_GE(d["errors"].Size(), 1u);
  EXPECT_STREQ(d["errors"][0]["path"].GetString(), "/NHS_Number");
  EXPECT_EQ(app_->store().SourceRecordCount(), 0);
  EXPECT_EQ(LastEvent().outcome, "422 invalid-record");
  // The refusal names the person by the ids that were readable; the NHS number that
  // failed its check is no one's.
  EXPECT_EQ(LastEvent().person_ids, std::vector<std::string>{"cis:C-1"});
}

// A read refused for its view names the person by every id they are known by, as the
// framework's refusals do: asking about them by another id finds the attempt.
TEST_F(AppRoutes, AReadRefusedForItsViewNamesThePersonByEveryKnownId) {
  ASSERT_EQ(IngestS1(S1Xml(PersonFields{.nhs = "9912003888", .s1 = "S-1"})).status, 201);
  ASSERT_EQ(IngestCis(CisJson(PersonFields{.nhs = "9912003888", .cis = "C-7"})).status, 201);
  ASSERT_EQ(Call("GET", "/v1/persons/cis:C-7?view=bad", kHealth).status, 400);
  auto e = LastEvent();
  EXPECT_EQ(e.action, "read");
  EXPECT_EQ(e.outcome.substr(0, 3), "400");
  std::vector<std::string> ids = e.person_ids;
  std::sort(ids.begin(), ids.end());
  EXPECT_EQ(ids, (std::vector<std::string>{"cis:C-7", "nhs:9912003888", "s1:S-1"}));
  auto r = Call("GET", "/v1/audit/events?person=s1:S-1", kIg);
  ASSERT_EQ(r.status, 200);
  EXPECT_NE(r.body.find("view must be"), std::string::npos) << r.body;
  // An unknown person: the id asked for.
  ASSERT_EQ(Call("GET", "/v1/persons/cis:NOBODY?view=bad", kHealth).status, 400);
  EXPECT_EQ(LastEvent().person_ids, std::vector<std::string>{"cis:NOBODY"});
}

// A refused write about a known person is found by an IG officer asking about that
// person by any of their ids; a body that does not parse names nobody.
TEST_F(AppRoutes, RefusedWritesNameThePersonByEveryKnownId) {
  ASSERT_EQ(IngestS1(S1Xml(PersonFields{.nhs = "9912003888", .s1 = "S-1"})).status, 201);
  ASSERT_EQ(IngestCis(CisJson(PersonFields{.nhs = "9912003888", .cis = "C-7", .dob = "1950-02-30"})).status, 422);
  auto e = LastEvent();
  EXPECT_EQ(e.action, "ingest");
  EXPECT_EQ(e.outcome, "422 invalid-record");
  EXPECT_EQ(e.person_ids, (std::vector<std::string>{"nhs:9912003888", "s1:S-1", "cis:C-7"}));
  auto r = Call("GET", "/v1/audit/events?person=s1:S-1", kIg);
  ASSERT_EQ(r.status, 200);
  EXPECT_NE(r.body.find("422 invalid-record"), std::string::npos) << r.body;

  // The same for SystmOne XML; translation names the record's own ids only (it reads no store).
  ASSERT_EQ(IngestS1(S1Xml(PersonFields{.s1 = "S-1", .dob = "not a date"})).status, 422);
  EXPECT_EQ(LastEvent().person_ids, (std::vector<std::string>{"nhs:9912003888", "s1:S-1"}));
  ASSERT_EQ(Call("POST", "/v1/translate?from=cis&to=systmone", kHealth,
                 CisJson(PersonFields{.cis = "C-8", .dob = "1950-13-01"}))
                .status,
            422);
  EXPECT_EQ(LastEvent().person_ids, std::vector<std::string>{"cis:C-8"});
  ASSERT_EQ(IngestCis("{\"LA_Person_Unique_Identifier\":\"C-7\",").status, 422);
  EXPECT_TRUE(LastEvent().person_ids.empty());
}

TEST_F(AppRoutes, UnknownIngestSystemIs404) {
  EXPECT_EQ(Call("POST", "/v1/ingest/fhir", kService, "{}").status, 404);
}

TEST_F(AppRoutes, EachSideSeesTheOtherSystemsRecordInItsOwnTerms) {
  ASSERT_EQ(IngestCis(SpecExample("cis-record.json")).status, 201);
  // Health user, default view systmone, looking up by the CIS id.
  auto r = Call("GET", "/v1/persons/cis:LCC-0048213", kHealth);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.content_type, "application/xml");
  EXPECT_NE(r.body.find("<ClientIntegrationResponse"), std::string::npos);
  EXPECT_NE(r.body.find("<StrategicReportingIdentifier>700412</StrategicReportingIdentifier>"), std::string::npos);
  EXPECT_NE(r.body.find("<Surname>Smith</Surname>"), std::string::npos);
  auto e = LastEvent();
  EXPECT_EQ(e.action, "read");
  EXPECT_EQ(e.user, "amy.jones");
  EXPECT_EQ(e.organisation, "health");
  EXPECT_EQ(e.view, "systmone");
  EXPECT_EQ(e.outcome, "200");
  EXPECT_EQ(e.request_id, Header(r, "X-Request-Id"));
  EXPECT_FALSE(e.request_id.empty());

  ASSERT_EQ(IngestS1(SpecExample("systmone-record.xml")).status, 201);
  r = Call("GET", "/v1/persons/s1:700412", kCouncil);
  ASSERT_EQ(r.status, 200);
  auto d = Json(r.body);
  EXPECT_STREQ(d["Record_Type"].GetString(), "CIS_Client");
  EXPECT_STREQ(d["LA_Person_Unique_Identifier"].GetString(), "LCC-0048213");
  EXPECT_EQ(LastEvent().view, "cis");
}

TEST_F(AppRoutes, TranslatedViewFillsInTheLinkedSystemsId) {
  ASSERT_EQ(IngestS1(S1Xml(PersonFields{.nhs = "9912003888", .s1 = "S-1"})).status, 201);
  ASSERT_EQ(IngestCis(CisJson(PersonFields{.nhs = "9912003888", .cis = "C-1"})).status, 201);
  auto r = Call("GET", "/v1/persons/s1:S-1", kHealth);
  ASSERT_EQ(r.status, 200);
  EXPECT_NE(r.body.find("<LocalAuthorityIdentifier>C-1</LocalAuthorityIdentifier>"), std::string::npos) << r.body;
  r = Call("GET", "/v1/persons/cis:C-1", kCouncil);
  auto d = Json(r.body);
  EXPECT_STREQ(d["SystmOne_Identifier"].GetString(), "S-1");
}

TEST_F(AppRoutes, OwnSystemValuesWinAndLossyMappingsAreFlagged) {
  // CIS says "White: Roma" (lossy to SystmOne C); SystmOne has no ethnicity of its own.
  ASSERT_EQ(IngestS1(S1Xml(PersonFields{.nhs = "9912003888", .s1 = "S-1", .phone = "0113 000 0001"})).status, 201);
  ASSERT_EQ(IngestCis(CisJson(PersonFields{.nhs = "9912003888", .cis = "C-1", .ethnicity = "White: Roma",
                                           .phone = "0113 000 0002"}))
                .status,
            201);
  auto r = Call("GET", "/v1/persons/nhs:9912003888", kHealth);
  ASSERT_EQ(r.status, 200);
  EXPECT_NE(r.body.find("0113 000 0001"), std::string::npos);  // SystmOne's own phone
  EXPECT_EQ(r.body.find("0113 000 0002"), std::string::npos);
  EXPECT_NE(r.body.find("<Ethnicity>C</Ethnicity>"), std::string::npos);
  EXPECT_NE(Header(r, "X-Caregate-Lossy-Fields").find("person.ethnicity"), std::string::npos);
  r = Call("GET", "/v1/persons/nhs:9912003888?view=cis", kCouncil);
  auto d = Json(r.body);
  ASSERT_TRUE(d["Ethnicity"].IsString()) << r.body;
  EXPECT_STREQ(d["Ethnicity"].GetString(), "White: Roma");  // never overwritten by the lossy C
  EXPECT_STREQ(d["Phone_Home"].GetString(), "0113 000 0002");

  r = Call("GET", "/v1/persons/nhs:9912003888?view=canonical", kHealth);
  ASSERT_EQ(r.status, 200);
  d = Json(r.body);
  ASSERT_TRUE(d["field_sources"].HasMember("person.ethnicity")) << r.body;
  EXPECT_STREQ(d["field_sources"]["person.phone_home"].GetString(), "systmone");
  EXPECT_STREQ(d["field_sources"]["person.ethnicity"].GetString(), "cis");
  ASSERT_GE(d["lossy"]["systmone"].Size(), 1u);
  EXPECT_STREQ(d["lossy"]["systmone"][0]["field"].GetString(), "person.ethnicity");
  EXPECT_STREQ(d["canonical_record"]["record"]["person"]["ethnicity"].GetString(), "white_roma");
}

TEST_F(AppRoutes, BadViewIs400) {
  ASSERT_EQ(IngestCis(CisJson(PersonFields{.cis = "C-1"})).status, 201);
  EXPECT_EQ(Call("GET", "/v1/persons/cis:C-1?view=fhir", kCouncil).status, 400);
}

TEST_F(AppRoutes, UnknownPersonIs404AndAudited) {
  auto r = Call("GET", "/v1/persons/nhs:9912003888", kHealth);
  EXPECT_EQ(r.status, 404);
  auto e = LastEvent();
  EXPECT_EQ(e.action, "read");
  EXPECT_EQ(e.outcome, "404 not-found");
  EXPECT_EQ(e.person_ids, std::vector<std::string>{"nhs:9912003888"});
}

TEST_F(AppRoutes, ConsentWithheldIs403ForTheOtherOrganisationOnly) {
  ASSERT_EQ(IngestCis(CisJson(PersonFields{.cis = "C-1", .consent = "No"})).status, 201);
  auto r = Call("GET", "/v1/persons/cis:C-1", kHealth);
  EXPECT_EQ(r.status, 403);
  EXPECT_NE(r.body.find("consent-withheld"), std::string::npos);
  auto e = LastEvent();
  EXPECT_EQ(e.outcome, "403 consent-withheld");
  EXPECT_EQ(e.person_ids, std::vector<std::string>{"cis:C-1"});
  EXPECT_EQ(Call("GET", "/v1/persons/cis:C-1", kCouncil).status, 200);  // the council's own record
}

TEST_F(AppRoutes, ConsentWithheldRecordIsLeftOutWhenTheCallersOwnRecordExists) {
  ASSERT_EQ(IngestS1(S1Xml(PersonFields{.nhs = "9912003888", .s1 = "S-1", .phone = "0113 000 0001"})).status, 201);
  ASSERT_EQ(IngestCis(CisJson(PersonFields{.nhs = "9912003888", .cis = "C-1", .consent = "No",
                                           .ethnicity = "White: Irish"}))
                .status,
            201);
  auto r = Call("GET", "/v1/persons/cis:C-1", kHealth);
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(r.body.find("<Ethnicity>"), std::string::npos) << r.body;  // nothing from the CIS record
  // The council sees the SystmOne record: its consent is Yes.
  r = Call("GET", "/v1/persons/s1:S-1", kCouncil);
  ASSERT_EQ(r.status, 200);
  EXPECT_NE(r.body.find("White: Irish"), std::string::npos);
}

// A withheld record's ids are part of it: that the council knows the person (its CIS id)
// is not shown to health through the identity index either. An id the caller's own
// record carries still shows.
TEST_F(AppRoutes, ConsentWithheldRecordsIdsAreNotShown) {
  ASSERT_EQ(IngestS1(S1Xml(PersonFields{.nhs = "9912003888", .s1 = "S-1"})).status, 201);
  ASSERT_EQ(IngestCis(CisJson(PersonFields{.nhs = "9912003888", .cis = "C-SECRET", .consent = "No"})).status, 201);
  for (const char* view : {"systmone", "cis", "canonical"}) {
    auto r = Call("GET", std::string("/v1/persons/nhs:9912003888?view=") + view, kHealth);
    ASSERT_EQ(r.status, 200) << view;
    EXPECT_EQ(r.body.find("C-SECRET"), std::string::npos) << view << ": " << r.body;
  }
  // The council's own view has it.
  EXPECT_NE(Call("GET", "/v1/persons/nhs:9912003888?view=canonical", kCouncil).body.find("C-SECRET"),
            std::string::npos);
  // Health's own record naming the CIS id: health's data, shown.
  ASSERT_EQ(IngestS1(S1Xml(PersonFields{.nhs = "9912003888", .s1 = "S-1", .cis = "C-SECRET"})).status, 200);
  auto r = Call("GET", "/v1/persons/nhs:9912003888?view=canonical", kHealth);
  EXPECT_NE(r.body.find("\"cis:C-SECRET\""), std::string::npos) << r.body;
}

// The identity index keeps every id a person was ever known by. A SystmOne id the
// patient's SystmOne record carried before it was sent again withholding consent is not
// shown to the council, and a SystmOne id only the council's own record ever claimed
// (since withdrawn) is not filled in as a link.
TEST_F(AppRoutes, IdsFromEarlierVersionsAreNeitherLeakedNorFilledIn) {
  // The SystmOne record withholds consent when re-sent; a second SystmOne patient with the
  // same NHS number (a duplicate registration) is a person of its own, not linked.
  ASSERT_EQ(IngestS1(S1Xml(PersonFields{.nhs = "9434765005", .s1 = "S-OLD"})).status, 201);
  ASSERT_EQ(IngestS1(S1Xml(PersonFields{.nhs = "9434765005", .s1 = "S-OLD", .consent = "No"})).status, 200);
  ASSERT_EQ(IngestS1(S1Xml(PersonFields{.nhs = "9434765005", .s1 = "S-NEW"})).status, 201);
  ASSERT_EQ(IngestCis(CisJson(PersonFields{.nhs = "9434765005", .cis = "C-1"})).status, 201);
  for (const char* view : {"cis", "canonical", "systmone"}) {
    auto r = Call("GET", std::string("/v1/persons/cis:C-1?view=") + view, kCouncil);
    ASSERT_EQ(r.status, 200) << view;
    EXPECT_EQ(r.body.find("S-OLD"), std::string::npos) << view << ": " << r.body;
    EXPECT_EQ(r.body.find("S-NEW"), std::string::npos) << view << ": " << r.body;
  }
  // Health's own view still has its record; the other patient is not part of it.
  const auto health = Call("GET", "/v1/persons/cis:C-1?view=canonical", kHealth).body;
  EXPECT_NE(health.find("S-OLD"), std::string::npos) << health;
  EXPECT_EQ(health.find("S-NEW"), std::string::npos) << health;

  ASSERT_EQ(IngestCis(CisJson(PersonFields{.nhs = "9434765013", .s1 = "S-CLAIMED", .cis = "C-2"})).status, 201);
  ASSERT_EQ(IngestCis(CisJson(PersonFields{.nhs = "9434765013", .cis = "C-2"})).status, 200);
  auto r = Call("GET", "/v1/persons/cis:C-2", kCouncil);
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(r.body.find("\"SystmOne_Identifier\":\"S-CLAIMED\""), std::string::npos) << r.body;
  r = Call("GET", "/v1/persons/cis:C-2", kHealth);
  EXPECT_EQ(r.body.find("<StrategicReportingIdentifier>S-CLAIMED<"), std::string::npos) << r.body;
}

TEST_F(AppRoutes, SensitiveRecordShowsNoContactDetailsToTheOtherOrganisation) {
  PersonFields p{.cis = "C-1", .sensitive = "true", .phone = "0113 496 7777"};
  ASSERT_EQ(IngestCis(CisJson(p)).status, 201);
  auto r = Call("GET", "/v1/persons/cis:C-1", kHealth);
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(r.body.find("0113 496 7777"), std::string::npos);
  EXPECT_EQ(r.body.find("Mill Lane"), std::string::npos);
  EXPECT_EQ(r.body.find("LS12"), std::string::npos);
  EXPECT_EQ(r.body.find("<Address>"), std::string::npos);
  EXPECT_NE(r.body.find("<Surname>"), std::string::npos);
  r = Call("GET", "/v1/persons/cis:C-1?view=canonical", kHealth);
  EXPECT_EQ(r.body.find("0113 496 7777"), std::string::npos);
  EXPECT_EQ(r.body.find("Mill Lane"), std::string::npos);
  // The council's own record shows them.
  r = Call("GET", "/v1/persons/cis:C-1", kCouncil);
  EXPECT_NE(r.body.find("0113 496 7777"), std::string::npos);
  EXPECT_NE(r.body.find("Mill Lane"), std::string::npos);
}

// Source data no rule maps is kept with the record, and nothing tells which of it is an
// address, a phone number or an email: a sensitive record shows none of it to the other
// organisation, in any view. Its owner still sees it, and so do IG officers (lineage).
TEST_F(AppRoutes, SensitiveRecordShowsNoUnmappedSourceDataToTheOtherOrganisation) {
  // Extra keys before the record's closing brace.
  auto with = [](std::string json, const std::string& more) { return json.substr(0, json.size() - 1) + more + "}"; };
  const std::string cis = with(CisJson(PersonFields{.cis = "C-7", .sensitive = "true"}),
                               ",\"Phone_Work\":\"0113 999 1234\",\"Previous_Address\":{\"Line_1\":\"99 Secret Road\","
                               "\"Postcode\":\"LS9 9ZZ\"},\"Email_Secondary\":\"secret@example.net\"");
  ASSERT_EQ(IngestCis(cis).status, 201);
  std::string s1 = S1Xml(PersonFields{.s1 = "S-7", .sensitive = "true"});
  const std::string after = "</Demographics>";
  s1.insert(s1.find(after), "<PreviousAddress><Road>Hidden Lane</Road><Postcode>LS8 8XX</Postcode></PreviousAddress>");
  ASSERT_EQ(IngestS1(s1).status, 201);
  const char* cis_secrets[] = {"0113 999 1234", "Secret Road", "LS9 9ZZ", "secret@example.net"};
  const char* s1_secrets[] = {"Hidden Lane", "LS8 8XX"};
  for (const char* view : {"", "?view=canonical", "?view=cis", "?view=systmone"}) {
    auto r = Call("GET", std::string("/v1/persons/cis:C-7") + view, kHealth);
    ASSERT_EQ(r.status, 200) << view;
    for (const char* s : cis_secrets) EXPECT_EQ(r.body.find(s), std::string::npos) << view << ": " << s;
    r = Call("GET", std::string("/v1/persons/s1:S-7") + view, kCouncil);
    ASSERT_EQ(r.status, 200) << view;
    for (const char* s : s1_secrets) EXPECT_EQ(r.body.find(s), std::string::npos) << view << ": " << s;
  }
  // The owners see their own unmapped data.
  auto r = Call("GET", "/v1/persons/cis:C-7?view=canonical", kCouncil);
  for (const char* s : cis_secrets) EXPECT_NE(r.body.find(s), std::string::npos) << s;
  r = Call("GET", "/v1/persons/s1:S-7?view=canonical", kHealth);
  for (const char* s : s1_secrets) EXPECT_NE(r.body.find(s), std::string::npos) << s;
  // A record that is not sensitive keeps its unmapped data in the other organisation's view.
  ASSERT_EQ(IngestCis(with(CisJson(PersonFields{.cis = "C-8"}), ",\"Phone_Work\":\"0113 999 5678\"")).status, 201);
  r = Call("GET", "/v1/persons/cis:C-8?view=canonical", kHealth);
  EXPECT_NE(r.body.find("0113 999 5678"), std::string::npos);
}

TEST_F(AppRoutes, RoleByRoute) {
  struct Case {
    const char* method;
    const char* target;
    std::vector<const char*> allowed;
  };
  const std::vector<Case> cases = {
      {"GET", "/v1/persons/cis:X", {kHealth, kCouncil}},
      {"GET", "/v1/persons/cis:X/lineage", {kIg}},
      {"POST", "/v1/ingest/cis", {kService}},
      {"POST", "/v1/translate?from=cis&to=systmone", {kHealth, kCouncil, kService}},
      {"GET", "/v1/audit/events", {kIg}},
      {"GET", "/v1/audit/verify", {kIg}},
      {"GET", "/v1/mappings", {kIg}},
      {"GET", "/v1/links/proposed", {kIg}},
      {"POST", "/v1/links/proposed/1", {kIg}},
  };
  for (const auto& c : cases) {
    for (const char* token : {kHealth, kCouncil, kIg, kService}) {
      const bool allowed = std::find(c.allowed.begin(), c.allowed.end(), token) != c.allowed.end();
      auto before = Events().size();
      auto r = Call(c.method, c.target, token, "{}");
      if (allowed) {
        EXPECT_NE(r.status, 403) << c.method << " " << c.target << " " << token;
        EXPECT_NE(r.status, 401);
      } else {
        EXPECT_EQ(r.status, 403) << c.method << " " << c.target << " " << token;
        auto events = Events();
        ASSERT_EQ(events.size(), before + 1) << "refusal not audited: " << c.target;
        EXPECT_EQ(events.back().action, "refused");
        EXPECT_EQ(events.back().outcome, "403 forbidden-role");
        EXPECT_EQ(events.back().request_id, Header(r, "X-Request-Id"));
      }
    }
  }
}

TEST_F(AppRoutes, MissingOrBadTokenIs401AndAudited) {
  auto r = Call("GET", "/v1/persons/nhs:9912003888", nullptr);
  EXPECT_EQ(r.status, 401);
  auto e = LastEvent();
  EXPECT_EQ(e.action, "refused");
  EXPECT_EQ(e.outcome, "401 unauthenticated");
  EXPECT_EQ(e.person_ids, std::vector<std::string>{"nhs:9912003888"});
  EXPECT_EQ(Call("GET", "/v1/audit/events", "not-a-token").status, 401);
  EXPECT_EQ(LastEvent().outcome, "401 unauthenticated");
}

// An IG officer asking who tried to reach a person finds the refused attempts whichever
// of the person's ids they used: a refusal names every id the person is known by.
TEST_F(AppRoutes, RefusalsNameEveryIdOfAKnownPerson) {
  ASSERT_EQ(IngestS1(S1Xml(PersonFields{.nhs = "9912003888", .s1 = "S-1"})).status, 201);
  EXPECT_EQ(Call("GET", "/v1/persons/s1:S-1", nullptr).status, 401);
  EXPECT_EQ(LastEvent().person_ids, (std::vector<std::string>{"nhs:9912003888", "s1:S-1"}));
  EXPECT_EQ(Call("GET", "/v1/persons/s1:S-1", kIg).status, 403);
  EXPECT_EQ(LastEvent().person_ids, (std::vector<std::string>{"nhs:9912003888", "s1:S-1"}));
  auto r = Call("GET", "/v1/audit/events?person=nhs:9912003888", kIg);
  ASSERT_EQ(r.status, 200);
  EXPECT_NE(r.body.find("401 unauthenticated"), std::string::npos) << r.body;
  EXPECT_NE(r.body.find("403 forbidden-role"), std::string::npos) << r.body;
  // An id nobody has is named as it was asked for.
  EXPECT_EQ(Call("GET", "/v1/persons/s1:NOBODY", nullptr).status, 401);
  EXPECT_EQ(LastEvent().person_ids, std::vector<std::string>{"s1:NOBODY"});
}

TEST_F(AppRoutes, PublicRoutesNeedNoToken) {
  EXPECT_EQ(Call("GET", "/healthz", nullptr).status, 200);
  IngestCis(CisJson(PersonFields{.cis = "C-1"}));
  Call("GET", "/v1/persons/cis:C-1", kCouncil);
  auto r = Call("GET", "/metrics", nullptr);
  ASSERT_EQ(r.status, 200);
  EXPECT_NE(r.body.find("caregate_records_stored 1"), std::string::npos) << r.body;
  EXPECT_NE(r.body.find("caregate_audit_write_seconds_count"), std::string::npos);
  EXPECT_NE(r.body.find("caregate_audit_write_seconds_bucket"), std::string::npos);
}

// Spec 8: every refusal leaves an audit event, also for a method or path the API does
// not have (the caller is known: /v1 authenticates first).
TEST_F(AppRoutes, MethodNotAllowedAndUnknownPathAreAuditedRefusals) {
  struct Case {
    const char* method;
    const char* target;
    int status;
    const char* outcome;
    std::vector<std::string> ids;
  };
  for (const Case& c : std::vector<Case>{
           {"DELETE", "/v1/persons/cis:C-1", 405, "405 method-not-allowed", {"cis:C-1"}},
           {"GET", "/v1/nothing", 404, "404 not-found", {}},
           {"GET", "/v1/persons/s1:%FF", 400, "400 malformed", {}},
           {"GET", "/v1/persons/s1:S-1?view=%FF", 400, "400 malformed", {"s1:S-1"}},
       }) {
    const auto before = Events().size();
    auto r = Call(c.method, c.target, kHealth);
    EXPECT_EQ(r.status, c.status) << c.target;
    auto events = Events();
    ASSERT_EQ(events.size(), before + 1) << c.method << " " << c.target << " not audited";
    EXPECT_EQ(events.back().action, "refused");
    EXPECT_EQ(events.back().outcome, c.outcome);
    EXPECT_EQ(events.back().user, "amy.jones");
    EXPECT_EQ(events.back().person_ids, c.ids) << c.target;
    EXPECT_EQ(events.back().request_id, Header(r, "X-Request-Id"));
  }
  // Outside /v1 nothing is personal and nobody is known: not audited.
  const auto before = Events().size();
  EXPECT_EQ(Call("GET", "/nothing", nullptr).status, 404);
  EXPECT_EQ(Events().size(), before);
}

TEST_F(AppRoutes, TranslateIsStatelessAndAudited) {
  auto r = Call("POST", "/v1/translate?from=cis&to=systmone", kCouncil, SpecExample("cis-record.json"));
  ASSERT_EQ(r.status, 200);
  EXPECT_NE(r.body.find("<NHSNumber>9912003888</NHSNumber>"), std::string::npos);
  EXPECT_EQ(app_->store().SourceRecordCount(), 0);
  auto e = LastEvent();
  EXPECT_EQ(e.action, "translate");
  EXPECT_EQ(e.view, "systmone");
  EXPECT_EQ(Call("POST", "/v1/translate?from=cis&to=canonical", kHealth, SpecExample("cis-record.json")).status,
            200);
  EXPECT_EQ(Call("POST", "/v1/translate?from=cis&to=hl7", kHealth, "{}").status, 400);
  EXPECT_EQ(Call("POST", "/v1/translate?from=cis&to=systmone", kHealth, "{not json").status, 422);
  EXPECT_EQ(LastEvent().outcome, "422 invalid-record");
}

// What a system's format cannot carry is counted in a header (names: to=canonical).
TEST_F(AppRoutes, TranslateCountsTheUnmappedItemsItCannotCarry) {
  std::string json = SpecExample("cis-record.json");
  json.insert(json.rfind('}'), ",\"Key_Safe\":{\"Code\":\"1234\"},\"Pets\":\"dog\"");
  auto r = Call("POST", "/v1/translate?from=cis&to=systmone", kCouncil, json);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(Header(r, "X-Caregate-Unmapped-Items"), "2");
  r = Call("POST", "/v1/translate?from=cis&to=canonical", kCouncil, json);
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(Header(r, "X-Caregate-Unmapped-Items"), "");
  EXPECT_NE(r.body.find("/Key_Safe/Code"), std::string::npos);
  r = Call("POST", "/v1/translate?from=cis&to=systmone", kCouncil, SpecExample("cis-record.json"));
  EXPECT_EQ(Header(r, "X-Caregate-Unmapped-Items"), "");
}

TEST_F(AppRoutes, LineageNamesSystemPathRuleAndLossyWithoutValues) {
  ASSERT_EQ(IngestCis(CisJson(PersonFields{.nhs = "9912003888", .cis = "C-1", .surname = "Zebedee",
                                           .ethnicity = "White: Roma"}))
                .status,
            201);
  ASSERT_EQ(IngestS1(SpecExample("systmone-record.xml")).status, 201);
  auto r = Call("GET", "/v1/persons/cis:C-1/lineage", kIg);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.body.find("Zebedee"), std::string::npos);
  EXPECT_EQ(r.body.find("Smith"), std::string::npos);
  EXPECT_EQ(r.body.find("0113"), std::string::npos);
  auto d = Json(r.body);
  ASSERT_EQ(d["sources"].Size(), 2u);
  bool saw_family_name = false;
  for (const auto& src : d["sources"].GetArray())
    for (const auto& f : src["fields"].GetArray()) {
      ASSERT_TRUE(f.HasMember("system") && f.HasMember("source_path") && f.HasMember("rule") && f.HasMember("lossy"));
      EXPECT_FALSE(f.HasMember("value"));
      if (std::string(f["field"].GetString()) == "person.family_name" && std::string(src["system"].GetString()) == "cis") {
        saw_family_name = true;
        EXPECT_STREQ(f["source_path"].GetString(), "/Surname");
      }
    }
  EXPECT_TRUE(saw_family_name);
  // Per view, what a translation would carry lossily or not at all: SystmOne's own
  // record wins the SystmOne view (nothing lossy); the CIS view cannot carry, e.g., the
  // SystmOne marital status.
  ASSERT_TRUE(d["views"]["systmone"]["lossy"].IsArray());
  EXPECT_EQ(d["views"]["systmone"]["lossy"].Size(), 0u);
  bool marital_not_carried = false;
  for (const auto& f : d["views"]["cis"]["not_carried"].GetArray())
    marital_not_carried |= std::string(f.GetString()) == "person.marital_status";
  EXPECT_TRUE(marital_not_carried);
  EXPECT_EQ(LastEvent().action, "lineage");
  // A person CIS alone knows, whose ethnicity SystmOne can only hold lossily.
  ASSERT_EQ(IngestCis(CisJson(PersonFields{.cis = "C-2", .surname = "Roma", .ethnicity = "White: Roma"})).status, 201);
  r = Call("GET", "/v1/persons/cis:C-2/lineage", kIg);
  ASSERT_EQ(r.status, 200) << r.body;
  d = Json(r.body);
  bool ethnicity_lossy = false;
  for (const auto& l : d["views"]["systmone"]["lossy"].GetArray())
    ethnicity_lossy |= std::string(l["field"].GetString()) == "person.ethnicity";
  EXPECT_TRUE(ethnicity_lossy) << r.body;
  EXPECT_EQ(Call("GET", "/v1/persons/cis:nobody/lineage", kIg).status, 404);
}

TEST_F(AppRoutes, AuditEventsFilterByPersonUserAndTime) {
  ASSERT_EQ(IngestCis(CisJson(PersonFields{.cis = "C-1"})).status, 201);
  ASSERT_EQ(IngestCis(CisJson(PersonFields{.cis = "C-2", .surname = "Other"})).status, 201);
  Call("GET", "/v1/persons/cis:C-1", kHealth);
  Call("GET", "/v1/persons/cis:C-2", kCouncil);
  auto r = Call("GET", "/v1/audit/events?person=cis:C-1", kIg);
  ASSERT_EQ(r.status, 200);
  auto d = Json(r.body);
  ASSERT_EQ(d["count"].GetInt(), 2);  // ingest + read
  EXPECT_STREQ(d["events"][1]["user"].GetString(), "amy.jones");
  r = Call("GET", "/v1/audit/events?user=kamran.ahmed&from=2000-01-01&to=2999-12-31", kIg);
  d = Json(r.body);
  EXPECT_EQ(d["count"].GetInt(), 1);
  r = Call("GET", "/v1/audit/events?from=2999-01-01", kIg);
  EXPECT_EQ(Json(r.body)["count"].GetInt(), 0);
  EXPECT_EQ(Call("GET", "/v1/audit/events?from=yesterday", kIg).status, 400);
  EXPECT_EQ(LastEvent().action, "audit-query");
  // A '+' typed into a query string arrives as a space: the 400 says how to write it.
  r = Call("GET", "/v1/audit/events?from=2026-12-05T13:00:00+01:00", kIg);
  EXPECT_EQ(r.status, 400);
  EXPECT_NE(r.body.find("write it as %2B"), std::string::npos) << r.body;
  EXPECT_EQ(Call("GET", "/v1/audit/events?from=2026-12-05T13:00:00%2B01:00", kIg).status, 200);
  EXPECT_EQ(Call("GET", "/v1/audit/events?from=yesterday", kIg).body.find("%2B"), std::string::npos);
}

// A query parameter given twice has no one meaning: 400, naming it, for every route
// (the first value used to be taken: an audit query filtered on one person of two).
TEST_F(AppRoutes, AQueryParameterGivenTwiceIsRefused) {
  ASSERT_EQ(IngestCis(CisJson(PersonFields{.cis = "C-1"})).status, 201);
  auto r = Call("GET", "/v1/persons/cis:C-1?view=cis&view=systmone", kHealth);
  EXPECT_EQ(r.status, 400);
  EXPECT_NE(r.body.find("the query parameter 'view' is given more than once"), std::string::npos) << r.body;
  r = Call("GET", "/v1/audit/events?person=cis:C-1&person=cis:C-2", kIg);
  EXPECT_EQ(r.status, 400);
  EXPECT_NE(r.body.find("'person' is given more than once"), std::string::npos) << r.body;
  EXPECT_EQ(Call("GET", "/v1/persons/cis:C-1?view=cis", kHealth).status, 200);
}

// An IG officer asking about a person by one id gets the events that named them by any
// of their ids: a read of the council record before the SystmOne record was linked to it
// is found by the SystmOne id too, once, and paging still holds.
TEST_F(AppRoutes, AuditEventsOfAPersonAreFoundByAnyOfTheirIds) {
  ASSERT_EQ(IngestCis(CisJson(PersonFields{.nhs = "9912003888", .cis = "C-1"})).status, 201);
  ASSERT_EQ(Call("GET", "/v1/persons/cis:C-1", kCouncil).status, 200);  // names cis:, nhs: only
  ASSERT_EQ(IngestS1(S1Xml(PersonFields{.nhs = "9912003888", .s1 = "S-1"})).status, 201);
  ASSERT_EQ(Call("GET", "/v1/persons/s1:S-1", kHealth).status, 200);
  auto r = Call("GET", "/v1/audit/events?person=s1:S-1", kIg);
  ASSERT_EQ(r.status, 200) << r.body;
  auto d = Json(r.body);
  std::vector<std::int64_t> seqs;
  bool early_read = false;
  for (const auto& e : d["events"].GetArray()) {
    seqs.push_back(e["seq"].GetInt64());
    early_read = early_read || (std::string(e["action"].GetString()) == "read" &&
                                std::string(e["user"].GetString()) == "kamran.ahmed");
  }
  EXPECT_TRUE(early_read) << r.body;
  EXPECT_EQ(d["count"].GetInt(), 4);  // both ingests, both reads
  EXPECT_TRUE(std::is_sorted(seqs.begin(), seqs.end()));
  EXPECT_EQ(std::adjacent_find(seqs.begin(), seqs.end()), seqs.end()) << "an event twice";
  // Two a page: the union pages as one trail.
  r = Call("GET", "/v1/audit/events?person=s1:S-1&limit=2", kIg);
  d = Json(r.body);
  ASSERT_EQ(d["count"].GetInt(), 2);
  EXPECT_EQ(d["events"][0]["seq"].GetInt64(), seqs[0]);
  EXPECT_EQ(d["events"][1]["seq"].GetInt64(), seqs[1]);
  EXPECT_EQ(d["next_after"].GetInt64(), seqs[1]);
}

// The route answers a page at a time: 1000 events unless `limit` says (at most 10000),
// with `next_after` for the next page, null on the last one.
TEST_F(AppRoutes, AuditEventsComeAPageAtATime) {
  std::vector<std::future<std::int64_t>> appended;
  for (int i = 0; i < 1003; ++i) {
    audit::AuditEvent e;
    e.user = "paging.test";
    e.role = "service";
    e.organisation = "council";
    e.action = "read";
    e.outcome = "200";
    e.request_id = "r" + std::to_string(i);
    appended.push_back(app_->audit().Append(std::move(e)));
  }
  std::vector<std::int64_t> seqs;
  for (auto& f : appended) seqs.push_back(f.get());
  std::sort(seqs.begin(), seqs.end());

  // The default page, then the rest. (Every call adds an audit-query event of its own;
  // the user filter leaves those out.)
  auto r = Call("GET", "/v1/audit/events?user=paging.test", kIg);
  ASSERT_EQ(r.status, 200) << r.body;
  auto d = Json(r.body);
  EXPECT_EQ(d["count"].GetInt(), 1000);
  ASSERT_EQ(d["events"].Size(), 1000u);
  EXPECT_EQ(d["events"][0]["seq"].GetInt64(), seqs[0]);
  ASSERT_TRUE(d["next_after"].IsInt64()) << r.body.substr(0, 200);
  EXPECT_EQ(d["next_after"].GetInt64(), seqs[999]);
  r = Call("GET", "/v1/audit/events?user=paging.test&after=" + std::to_string(seqs[999]), kIg);
  d = Json(r.body);
  EXPECT_EQ(d["count"].GetInt(), 3);
  EXPECT_EQ(d["events"][0]["seq"].GetInt64(), seqs[1000]);
  EXPECT_TRUE(d["next_after"].IsNull());

  // Pages of two, walked to the end.
  std::int64_t after = seqs[996];
  std::vector<std::int64_t> walked;
  for (int page = 0; page < 4; ++page) {
    r = Call("GET", "/v1/audit/events?user=paging.test&limit=2&after=" + std::to_string(after), kIg);
    ASSERT_EQ(r.status, 200) << r.body;
    d = Json(r.body);
    for (const auto& e : d["events"].GetArray()) walked.push_back(e["seq"].GetInt64());
    if (d["next_after"].IsNull()) break;
    after = d["next_after"].GetInt64();
  }
  EXPECT_EQ(walked, (std::vector<std::int64_t>(seqs.begin() + 997, seqs.end())));
  // limit=0 counts nothing, but says whether there is more.
  d = Json(Call("GET", "/v1/audit/events?user=paging.test&limit=0", kIg).body);
  EXPECT_EQ(d["count"].GetInt(), 0);
  EXPECT_EQ(d["next_after"].GetInt64(), 0);

  // Bad paging parameters are refused, naming the parameter.
  for (const char* bad : {"limit=abc", "limit=10001", "limit=-1", "limit=", "after=x", "after=-3",
                          "after=99999999999999999999"}) {
    r = Call("GET", std::string("/v1/audit/events?") + bad, kIg);
    EXPECT_EQ(r.status, 400) << bad;
    const std::string name = std::string(bad).substr(0, std::string(bad).find('='));
    EXPECT_NE(r.body.find(name), std::string::npos) << bad << ": " << r.body;
  }
}

TEST_F(AppRoutes, VerifyRouteFindsAnEditedEvent) {
  IngestCis(CisJson(PersonFields{.cis = "C-1"}));
  Call("GET", "/v1/persons/cis:C-1", kHealth);
  auto r = Call("GET", "/v1/audit/verify", kIg);
  ASSERT_EQ(r.status, 200);
  EXPECT_TRUE(Json(r.body)["ok"].GetBool()) << r.body;
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(dir_.file("caregate.db").c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, "UPDATE audit_events SET user = 'someone.else' WHERE seq = 2", nullptr, nullptr, nullptr),
            SQLITE_OK);
  sqlite3_close(db);
  r = Call("GET", "/v1/audit/verify", kIg);
  auto d = Json(r.body);
  EXPECT_FALSE(d["ok"].GetBool());
  EXPECT_EQ(d["first_bad_seq"].GetInt(), 2);
}

TEST_F(AppRoutes, MappingsRouteShowsTheTables) {
  auto r = Call("GET", "/v1/mappings", kIg);
  ASSERT_EQ(r.status, 200);
  EXPECT_NE(r.body.find("S1-"), std::string::npos);
}

TEST_F(AppRoutes, LinkProposalsAreReviewedByIgOfficers) {
  ASSERT_EQ(IngestS1(S1Xml(PersonFields{.s1 = "S-1"})).status, 201);
  auto c = IngestCis(CisJson(PersonFields{.cis = "C-1"}));
  ASSERT_EQ(c.status, 201);
  ASSERT_EQ(Json(c.body)["link_proposals"].Size(), 1u);
  // Not linked yet: the health user sees only the SystmOne record's ids.
  auto r = Call("GET", "/v1/persons/s1:S-1", kHealth);
  EXPECT_EQ(r.body.find("C-1"), std::string::npos);

  r = Call("GET", "/v1/links/proposed", kIg);
  ASSERT_EQ(r.status, 200);
  auto d = Json(r.body);
  ASSERT_EQ(d["proposals"].Size(), 1u);
  const int id = d["proposals"][0]["id"].GetInt();
  const std::string path = "/v1/links/proposed/" + std::to_string(id);
  EXPECT_EQ(Call("POST", path, kIg, R"({"decision":"maybe"})").status, 400);
  EXPECT_EQ(Call("POST", "/v1/links/proposed/999", kIg, R"({"decision":"accept"})").status, 404);
  r = Call("POST", path, kIg, R"({"decision":"accept"})");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_STREQ(Json(r.body)["status"].GetString(), "accepted");
  EXPECT_EQ(LastEvent().action, "link-accept");
  EXPECT_EQ(Call("POST", path, kIg, R"({"decision":"reject"})").status, 409);
  r = Call("GET", "/v1/persons/s1:S-1", kHealth);
  EXPECT_NE(r.body.find("<LocalAuthorityIdentifier>C-1</LocalAuthorityIdentifier>"), std::string::npos);
  EXPECT_EQ(Json(Call("GET", "/v1/links/proposed", kIg).body)["proposals"].Size(), 0u);
}

// Found by the request fuzz target: the decision body went to RapidJSON's recursive
// parser with no depth cap, and a body of nested brackets within the 1 MiB limit
// overflowed the stack and took the whole server down. It is now read by the hardened
// JSON reader (depth, size and UTF-8 checked) and refused with a 400 naming the problem.
TEST_F(AppRoutes, LinkDecisionBodiesAreReadByTheHardenedJsonReader) {
  const std::string path = "/v1/links/proposed/1";
  EXPECT_EQ(Call("POST", path, kIg, std::string(500000, '[')).status, 400);
  auto deep = Call("POST", path, kIg,
                   "{\"decision\":" + std::string(100, '[') + "\"accept\"" + std::string(100, ']') + "}");
  EXPECT_EQ(deep.status, 400);
  EXPECT_NE(deep.body.find("nested deeper than"), std::string::npos) << deep.body;
  auto r = Call("POST", path, kIg, "{\"decision\":\"acc\xff\"}");
  EXPECT_EQ(r.status, 400);
  EXPECT_NE(r.body.find("UTF-8"), std::string::npos) << r.body;
  // A well-formed decision of an unknown proposal still reaches the store.
  EXPECT_EQ(Call("POST", path, kIg, R"({"decision":"accept"})").status, 404);
  EXPECT_EQ(Call("POST", path, kIg, R"({"decision":"accept", "note": [1, {"a": null}]})").status, 404);
}

TEST_F(AppRoutes, EveryV1ResponseCarriesTheRequestId) {
  for (auto* target : {"/v1/persons/cis:C-1", "/v1/audit/verify", "/v1/nothing"}) {
    auto r = Call("GET", target, kHealth);
    EXPECT_FALSE(Header(r, "X-Request-Id").empty()) << target;
  }
}

}  // namespace
}  // namespace caregate::app::testing
