// The command line as users and the nightly job see it (spec section 6): exit statuses,
// nothing on stdout for an invalid record, one error line per problem on stderr.
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/wait.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <tuple>

namespace fs = std::filesystem;

namespace {

struct Run {
  int status = -1;
  std::string out, err;
};

std::string Slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Runs caregate with `args` (shell-quoted by the caller), stdin from `input` if given.
Run Caregate(const std::string& args, const std::string& input = {}) {
  fs::path dir = fs::temp_directory_path() / ("caregate-cli-" + std::to_string(std::random_device{}()));
  fs::create_directories(dir);
  std::string cmd = std::string(CAREGATE_BIN) + " " + args + " >" + (dir / "out").string() + " 2>" +
                    (dir / "err").string();
  if (!input.empty()) {
    std::ofstream(dir / "in", std::ios::binary) << input;
    cmd += " <" + (dir / "in").string();
  } else {
    cmd += " </dev/null";
  }
  int raw = std::system(cmd.c_str());
  Run r;
  r.status = WIFEXITED(raw) ? WEXITSTATUS(raw) : -1;
  r.out = Slurp(dir / "out");
  r.err = Slurp(dir / "err");
  fs::remove_all(dir);
  return r;
}

std::string Spec(const char* name) { return std::string(CAREGATE_SPEC_DIR) + "/examples/" + name; }
std::string Source(const char* path) { return std::string(CAREGATE_SOURCE_DIR) + "/" + path; }

}  // namespace

TEST(CliTranslate, SystmOneToCisSucceeds) {
  auto r = Caregate("translate --from systmone --to cis " + Spec("systmone-record.xml"));
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find("\"Gender\":\"1\""), std::string::npos);
  EXPECT_EQ(r.err, "");
}

TEST(CliTranslate, ReadsStdinWithDash) {
  auto r = Caregate("translate --from cis --to systmone -", Slurp(Spec("cis-record.json")));
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find("<Sex>M</Sex>"), std::string::npos);
}

// Standard input is streamed like a file, for both formats: the same output either way.
TEST(CliTranslate, StdinGivesWhatTheFileGives) {
  for (const auto& [from, to, file] : {std::tuple{"systmone", "cis", "samples/systmone/batch.xml"},
                                       std::tuple{"cis", "systmone", "samples/cis/extract.ndjson"}}) {
    const std::string args = std::string("translate --from ") + from + " --to " + to;
    auto by_name = Caregate(args + " " + Source(file));
    auto by_stdin = Caregate(args + " -", Slurp(Source(file)));
    EXPECT_FALSE(by_name.out.empty()) << file;
    EXPECT_EQ(by_stdin.out, by_name.out) << file;
    EXPECT_EQ(by_stdin.status, by_name.status) << file;
  }
}

// --out gets exactly what stdout would, through a temporary file renamed into place:
// nothing is left beside it, and a file that cannot be written is an error, not half a
// file.
TEST(CliTranslate, OutFileIsWrittenWhole) {
  const fs::path dir = fs::temp_directory_path() / ("caregate-cli-out-" + std::to_string(std::random_device{}()));
  fs::create_directories(dir);
  const std::string args = "translate --from cis --to systmone " + Source("samples/cis/extract.ndjson");
  auto to_stdout = Caregate(args);
  auto to_file = Caregate(args + " --out " + (dir / "batch.xml").string());
  EXPECT_EQ(to_file.status, to_stdout.status);
  EXPECT_EQ(to_file.out, "");
  EXPECT_EQ(Slurp(dir / "batch.xml"), to_stdout.out);
  EXPECT_EQ(std::distance(fs::directory_iterator(dir), fs::directory_iterator()), 1) << "only batch.xml";
  auto nowhere = Caregate(args + " --out " + (dir / "missing" / "batch.xml").string());
  EXPECT_EQ(nowhere.status, 1);
  EXPECT_NE(nowhere.err.find("write failed"), std::string::npos) << nowhere.err;
  fs::remove_all(dir);
}

// A batch is translated as it is read: memory stays flat however many records. 20,000
// records (45 MB of CIS JSON, 70 MB of SystmOne XML out) took ~300 MB when translate
// kept every record and the whole output until the end.
TEST(CliTranslate, ABatchIsStreamedInFlatMemory) {
  const fs::path dir = fs::temp_directory_path() / ("caregate-cli-big-" + std::to_string(std::random_device{}()));
  fs::create_directories(dir);
  const std::string in = (dir / "in.ndjson").string(), out = (dir / "out.xml").string();
  ASSERT_EQ(Caregate("synth --records 20000 --seed 3 --format cis --out " + in).status, 0);
  rusage before{};
  ::getrusage(RUSAGE_CHILDREN, &before);
  auto r = Caregate("translate --from cis --to systmone --out " + out + " " + in);
  EXPECT_EQ(r.status, 0) << r.err;
  rusage after{};
  ::getrusage(RUSAGE_CHILDREN, &after);
  EXPECT_GT(fs::file_size(out), fs::file_size(in));
#if defined(__SANITIZE_ADDRESS__)
  const long limit_kib = 512 * 1024;  // AddressSanitizer keeps up to 256 MB of freed memory
#else
  const long limit_kib = 100 * 1024;
#endif
  EXPECT_LT(after.ru_maxrss, limit_kib) << "KiB peak RSS of translate (the largest child so far)";
  fs::remove_all(dir);
}

TEST(CliTranslate, InvalidRecordWritesNothingAndExits65) {
  std::string json = Slurp(Spec("cis-record.json"));
  json.replace(json.find("9912003888"), 10, "9912003880");
  auto r = Caregate("translate --from cis --to systmone", json);
  EXPECT_EQ(r.status, 65);
  EXPECT_EQ(r.out, "");
  EXPECT_NE(r.err.find("/NHS_Number"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("Modulus 11"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("stdin"), std::string::npos) << r.err;  // names the input
}

TEST(CliTranslate, EveryErrorOnItsOwnLine) {
  std::string json = Slurp(Spec("cis-record.json"));
  json.replace(json.find("9912003888"), 10, "9912003880");
  json.replace(json.find("\"Gender\": \"1\""), 13, "\"Gender\": \"Q\"");
  auto r = Caregate("translate --from cis --to canonical", json);
  EXPECT_EQ(r.status, 65);
  int lines = 0;
  for (char c : r.err) lines += c == '\n';
  EXPECT_EQ(lines, 2) << r.err;
}

TEST(CliTranslate, MalformedXmlExits65) {
  auto r = Caregate("translate --from systmone --to cis", "<ClientIntegrationResponse><Response>");
  EXPECT_EQ(r.status, 65);
  EXPECT_EQ(r.out, "");
}

TEST(CliTranslate, BatchKeepsGoodRecordsAndExits65) {
  std::string good = Slurp(Source("samples/cis/extract.ndjson"));
  auto r = Caregate("translate --from cis --to systmone", good);
  EXPECT_EQ(r.status, 65);  // the sample extract holds deliberate bad lines
  EXPECT_NE(r.out.find("<ClientIntegrationBatch>"), std::string::npos);
  EXPECT_NE(r.err.find("line 5"), std::string::npos) << r.err;
}

// A SystmOne batch read as a batch opens its wrapper at its first valid record; the
// second record must not open it again (it did: a second XML declaration and root).
TEST(CliTranslate, ASystmOneBatchHasOneWrapperWhereverItsInvalidRecordsAre) {
  const fs::path dir = fs::temp_directory_path() / ("caregate-cli-s1b-" + std::to_string(std::random_device{}()));
  fs::create_directories(dir);
  auto count = [](const std::string& s, const std::string& what) {
    std::size_t n = 0;
    for (auto at = s.find(what); at != std::string::npos; at = s.find(what, at + 1)) ++n;
    return n;
  };
  // Three records, the second invalid (--invalid-every 2); then the same batch without
  // its first record, so that it starts with the invalid one; then all three valid.
  const std::string in = (dir / "in.xml").string();
  ASSERT_EQ(Caregate("synth --records 3 --seed 5 --format systmone --invalid-every 2 --out " + in).status, 0);
  const std::string mixed = Slurp(in);
  const std::string close = "</ClientIntegrationResponse>";
  const auto first = mixed.find("<ClientIntegrationResponse>"), first_end = mixed.find(close) + close.size();
  ASSERT_NE(first, std::string::npos);
  const std::string invalid_first = mixed.substr(0, first) + mixed.substr(mixed.find('<', first_end));
  ASSERT_EQ(Caregate("synth --records 3 --seed 5 --format systmone --out " + in).status, 0);
  const std::string valid = Slurp(in);
  for (auto [batch, kept] : {std::pair{mixed, 2u}, std::pair{invalid_first, 1u}, std::pair{valid, 3u}}) {
    auto r = Caregate("translate --from systmone --to systmone", batch);
    EXPECT_EQ(r.status, kept == 3 ? 0 : 65) << r.err;
    EXPECT_EQ(count(r.out, "<?xml"), 1u) << r.out.substr(0, 400);
    EXPECT_EQ(count(r.out, "<ClientIntegrationBatch>"), 1u);
    EXPECT_EQ(count(r.out, "</ClientIntegrationBatch>"), 1u);
    EXPECT_EQ(count(r.out, "<ClientIntegrationResponse>"), kept);
    // And what it wrote reads back as the same batch.
    auto again = Caregate("translate --from systmone --to systmone", r.out);
    EXPECT_EQ(again.status, 0) << again.err;
    EXPECT_EQ(again.out, r.out);
  }
  fs::remove_all(dir);
}

TEST(CliTranslate, UnknownSystemIsUsageError) {
  auto r = Caregate("translate --from emis --to cis " + Spec("cis-record.json"));
  EXPECT_EQ(r.status, 2);
  EXPECT_EQ(r.out, "");
  EXPECT_NE(r.err.find("usage"), std::string::npos) << r.err;
}

TEST(CliTranslate, MissingFileIsInputError) {
  auto r = Caregate("translate --from cis --to systmone /nonexistent/extract.ndjson");
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.err.find("/nonexistent/extract.ndjson"), std::string::npos) << r.err;
}

// A number option given something that is not a number (an empty string from a script's
// unset variable, say) is a usage error naming the option, never read as 0 or the
// default; the server does not start.
TEST(CliUsage, ServeNumberOptionsRefuseWhatIsNotANumber) {
  for (const char* option : {"--io-threads", "--handler-threads", "--max-connections", "--recheck-ms",
                             "--warm-persons"}) {
    for (const char* value : {"''", "abc", "-1"}) {
      SCOPED_TRACE(std::string(option) + " " + value);
      auto r = Caregate(std::string("serve --tokens /nonexistent/tokens --listen 127.0.0.1:0 ") + option + " " + value);
      EXPECT_EQ(r.status, 2) << r.err;
      EXPECT_NE(r.err.find(option), std::string::npos) << r.err;
      EXPECT_EQ(r.out.find("listening"), std::string::npos) << r.out;
    }
  }
}

TEST(CliUsage, SynthNumberOptionsRefuseWhatIsNotANumber) {
  for (const char* option : {"--records", "--seed", "--invalid-every"}) {
    for (const char* value : {"''", "abc", "-1"}) {
      SCOPED_TRACE(std::string(option) + " " + value);
      auto r = Caregate(std::string("synth --format cis --records 1 ") + option + " " + value);
      EXPECT_EQ(r.status, 2) << r.err;
      EXPECT_NE(r.err.find(option), std::string::npos) << r.err;
      EXPECT_EQ(r.out, "");
    }
  }
}

TEST(CliUsage, NoSubcommandIsUsageError) {
  EXPECT_EQ(Caregate("").status, 2);
  EXPECT_EQ(Caregate("frobnicate").status, 2);
}

TEST(CliMappings, CheckPassesOnShippedTables) {
  auto r = Caregate("mappings check");
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find("mapping tables OK"), std::string::npos);
}

TEST(CliMappings, CheckRefusesBrokenTablesNamingFileAndLine) {
  fs::path dir = fs::temp_directory_path() / ("caregate-broken-" + std::to_string(std::random_device{}()));
  fs::copy(Source("mappings"), dir, fs::copy_options::recursive);
  std::string cis = Slurp(dir / "cis.csv");
  cis.replace(cis.find("person.family_name"), 18, "person.familyname");
  std::ofstream(dir / "cis.csv", std::ios::binary | std::ios::trunc) << cis;
  auto r = Caregate("--mappings " + dir.string() + " mappings check");
  EXPECT_EQ(r.status, 65);
  EXPECT_NE(r.err.find("cis.csv:"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("person.familyname"), std::string::npos) << r.err;
  auto t = Caregate("--mappings " + dir.string() + " translate --from cis --to systmone " + Spec("cis-record.json"));
  EXPECT_EQ(t.status, 1);  // refused at start
  EXPECT_EQ(t.out, "");
  fs::remove_all(dir);
}

TEST(CliMappings, ReportListsRulesInJsonAndHtml) {
  auto j = Caregate("mappings report --format json");
  EXPECT_EQ(j.status, 0);
  EXPECT_NE(j.out.find("\"rule\":\"S1-028\""), std::string::npos);
  EXPECT_NE(j.out.find("\"lossy\":true"), std::string::npos);
  auto h = Caregate("mappings report --format html");
  EXPECT_EQ(h.status, 0);
  EXPECT_NE(h.out.find("<table>"), std::string::npos);
  EXPECT_NE(h.out.find("White: Roma"), std::string::npos);
}

TEST(CliSynth, SameSeedSameBytes) {
  auto a = Caregate("synth --records 50 --seed 9 --format cis");
  auto b = Caregate("synth --records 50 --seed 9 --format cis");
  auto c = Caregate("synth --records 50 --seed 10 --format cis");
  EXPECT_EQ(a.status, 0);
  EXPECT_EQ(a.out, b.out);
  EXPECT_NE(a.out, c.out);
  int lines = 0;
  for (char ch : a.out) lines += ch == '\n';
  EXPECT_EQ(lines, 50);
}

TEST(CliSynth, OutputTranslatesCleanlyBothFormats) {
  auto cis = Caregate("synth --records 200 --seed 3 --format cis");
  auto t = Caregate("translate --from cis --to systmone", cis.out);
  EXPECT_EQ(t.status, 0) << t.err.substr(0, 500);
  auto s1 = Caregate("synth --records 100 --seed 3 --format systmone");
  auto u = Caregate("translate --from systmone --to cis", s1.out);
  EXPECT_EQ(u.status, 0) << u.err.substr(0, 500);
}

TEST(CliSynth, InvalidEveryMakesRejectableRecords) {
  auto cis = Caregate("synth --records 60 --seed 3 --format cis --invalid-every 10");
  auto t = Caregate("translate --from cis --to canonical", cis.out);
  EXPECT_EQ(t.status, 65);
  int rejected = 0;
  for (size_t p = t.err.find("record "); p != std::string::npos; p = t.err.find("\n", p), p = t.err.find("record ", p))
    ++rejected;
  EXPECT_GE(rejected, 6) << t.err;
}
