// The caregate binary's ingest, audit and serve commands, run as child processes.
#include <fcntl.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <regex>
#include <sstream>
#include <thread>

#include "../identity/records.h"
#include "../server/test_client.h"
#include "../server/test_tls.h"
#include "caregate/core/hash.h"
#include "caregate/audit/audit_log.h"
#include "caregate/identity/person_store.h"

namespace caregate::testing {
namespace {

struct Run {
  int status = -1;
  std::string out, err;
};

// Starts the caregate binary with `args` as a child, stdout to `out` and stderr to `err`
// (the same file when they are equal).
pid_t Spawn(std::vector<std::string> args, const std::string& out, const std::string& err) {
  pid_t pid = ::fork();
  if (pid == 0) {
    int o = ::open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    int e = err == out ? o : ::open(err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    ::dup2(o, 1);
    ::dup2(e, 2);
    std::vector<char*> argv;
    argv.push_back(const_cast<char*>(CAREGATE_BIN));
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    ::execv(CAREGATE_BIN, argv.data());
    ::_exit(127);
  }
  return pid;
}

// Runs the caregate binary with `args`, stdout and stderr to files.
Run Caregate(const TempDir& dir, std::vector<std::string> args) {
  const std::string out = dir.file("stdout"), err = dir.file("stderr");
  const pid_t pid = Spawn(std::move(args), out, err);
  Run r;
  int st = 0;
  ::waitpid(pid, &st, 0);
  r.status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
  r.out = ReadFile(out);
  r.err = ReadFile(err);
  return r;
}

void Write(const std::string& path, const std::string& text) { std::ofstream(path, std::ios::binary) << text; }

void Sql(const std::string& db, const char* sql) {
  sqlite3* h = nullptr;
  ASSERT_EQ(sqlite3_open(db.c_str(), &h), SQLITE_OK);
  char* msg = nullptr;
  EXPECT_EQ(sqlite3_exec(h, sql, nullptr, nullptr, &msg), SQLITE_OK) << (msg ? msg : "");
  sqlite3_free(msg);
  sqlite3_close(h);
}

TEST(CliIngest, StoresValidRecordsAndReportsEachInvalidOneOnALine) {
  TempDir dir;
  const std::string db = dir.file("c.db");
  std::string ndjson = CisJson(PersonFields{.cis = "C-1"}) + "\n" +
                       CisJson(PersonFields{.nhs = "9912003889", .cis = "C-2"}) + "\n" +
                       CisJson(PersonFields{.cis = "C-3", .surname = "Third"}) + "\n";
  Write(dir.file("in.ndjson"), ndjson);
  auto r = Caregate(dir, {"ingest", "--from", "cis", "--db", db, dir.file("in.ndjson")});
  EXPECT_EQ(r.status, 65) << r.err;
  EXPECT_EQ(r.out, "stored 2 (new 2, updated 0), rejected 1\n");
  EXPECT_NE(r.err.find("record 2 (line 2)"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("/NHS_Number"), std::string::npos);
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1);

  Write(dir.file("s1.xml"), SpecExample("systmone-record.xml"));
  r = Caregate(dir, {"ingest", "--from", "systmone", "--db", db, dir.file("s1.xml"), dir.file("s1.xml")});
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out, "stored 2 (new 1, updated 1), rejected 0\n");
  identity::PersonStore store(db);
  EXPECT_EQ(store.SourceRecordCount(), 3);
  EXPECT_EQ(Caregate(dir, {"ingest", "--from", "hl7", dir.file("s1.xml")}).status, 2);
}

TEST(CliIngest, DefaultDatabaseIsCaregateDbInTheWorkingDirectory) {
  TempDir dir;
  Write(dir.file("c.json"), CisJson(PersonFields{.cis = "C-1"}));
  const auto cwd = std::filesystem::current_path();
  std::filesystem::current_path(dir.file(""));
  ::unsetenv("CAREGATE_DB");
  auto r = Caregate(dir, {"ingest", "--from", "cis", dir.file("c.json")});
  std::filesystem::current_path(cwd);
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_TRUE(std::filesystem::exists(dir.file("caregate.db")));
}

// An input that cannot be opened or is a directory is not invalid data: exit 1 (spec 6,
// "other failure") with one stderr line naming the input and the problem, worded as the
// export words its extract's.
TEST(CliInput, AMissingOrDirectoryInputIsAnOtherFailureNamingIt) {
  TempDir dir;
  const std::string missing = dir.file("nonexistent.json"), folder = dir.path().string();
  for (const char* from : {"cis", "systmone"}) {
    SCOPED_TRACE(from);
    auto r = Caregate(dir, {"translate", "--from", from, "--to", "cis", missing});
    EXPECT_EQ(r.status, 1) << r.err;
    EXPECT_EQ(r.out, "");
    EXPECT_EQ(r.err, "caregate: " + missing + ": cannot open the input: No such file or directory\n");
    r = Caregate(dir, {"translate", "--from", from, "--to", "cis", folder});
    EXPECT_EQ(r.status, 1) << r.err;
    EXPECT_EQ(r.out, "");
    EXPECT_EQ(r.err, "caregate: " + folder + ": cannot read the input: it is a directory\n");
  }
  const std::string db = dir.file("c.db");
  auto r = Caregate(dir, {"ingest", "--from", "cis", "--db", db, missing});
  EXPECT_EQ(r.status, 1) << r.err;
  EXPECT_EQ(r.err, "caregate: " + missing + ": cannot open the input: No such file or directory\n");
  EXPECT_EQ(r.out, "stored 0 (new 0, updated 0), rejected 0; 1 of 1 files not read\n");
  r = Caregate(dir, {"ingest", "--from", "systmone", "--db", db, folder});
  EXPECT_EQ(r.status, 1) << r.err;
  EXPECT_EQ(r.err, "caregate: " + folder + ": cannot read the input: it is a directory\n");
}

// Spec 6: 65 is for invalid data, 1 for other failures. An input that fails while it
// is read (EIO: a failing disk or a network share gone) is not invalid data. Reading
// /proc/self/mem at offset 0 fails with EIO after a successful open.
TEST(CliInput, AReadErrorIsAnOtherFailureNotInvalidData) {
  TempDir dir;
  const std::string failing = "/proc/self/mem";
  for (const char* from : {"cis", "systmone"}) {
    SCOPED_TRACE(from);
    const std::string out = dir.file(std::string("out-") + from);
    auto r = Caregate(dir, {"translate", "--from", from, "--to", "canonical", "--out", out, failing});
    EXPECT_EQ(r.status, 1) << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
    EXPECT_EQ(r.err.rfind("caregate: " + failing + ": ", 0), 0u) << r.err;
    EXPECT_NE(r.err.find("Input/output error"), std::string::npos) << r.err;
    EXPECT_EQ(r.err.find("record"), std::string::npos) << "not a record's fault: " << r.err;
    EXPECT_FALSE(std::filesystem::exists(out)) << "a partial output was published";
    EXPECT_FALSE(std::filesystem::exists(out + ".partial"));

    // ingest: the other files are stored, the failing one counts as not read.
    const std::string good = dir.file(std::string("good-") + from);
    Write(good, std::string(from) == "cis" ? CisJson(PersonFields{.cis = "R-1"})
                                           : S1Xml(PersonFields{.nhs = "9912003888", .s1 = "R-1"}));
    r = Caregate(dir, {"ingest", "--from", from, "--db", dir.file("c.db"), failing, good});
    EXPECT_EQ(r.status, 1) << r.err;
    EXPECT_EQ(r.out.rfind("stored 1 (", 0), 0u) << r.out;
    EXPECT_NE(r.out.find("rejected 0; 1 of 2 files not read"), std::string::npos) << r.out;
    EXPECT_NE(r.err.find("Input/output error"), std::string::npos) << r.err;
  }
}

// ingest of several files, one of them missing: the others are still stored, the missing
// one is named, and the run exits 1 at the end, also when records were rejected besides
// (a file not read at all outweighs invalid records: 65 would hide it).
TEST(CliInput, IngestStoresTheOtherFilesWhenOneIsMissing) {
  TempDir dir;
  const std::string db = dir.file("c.db"), missing = dir.file("missing.ndjson");
  Write(dir.file("a.json"), CisJson(PersonFields{.cis = "C-1"}));
  Write(dir.file("b.ndjson"), CisJson(PersonFields{.cis = "C-2"}) + "\n" + CisJson(PersonFields{.cis = "C-3"}) + "\n");
  auto r = Caregate(dir, {"ingest", "--from", "cis", "--db", db, dir.file("a.json"), missing, dir.file("b.ndjson")});
  EXPECT_EQ(r.status, 1) << r.err;
  EXPECT_EQ(r.out, "stored 3 (new 3, updated 0), rejected 0; 1 of 3 files not read\n");
  EXPECT_EQ(r.err, "caregate: " + missing + ": cannot open the input: No such file or directory\n");
  identity::PersonStore store(db);
  EXPECT_EQ(store.SourceRecordCount(), 3);

  Write(dir.file("bad.ndjson"), CisJson(PersonFields{.nhs = "9912003889", .cis = "C-4"}) + "\n");
  r = Caregate(dir, {"ingest", "--from", "cis", "--db", db, missing, dir.file("bad.ndjson")});
  EXPECT_EQ(r.status, 1) << r.err;
  EXPECT_EQ(r.out, "stored 0 (new 0, updated 0), rejected 1; 1 of 2 files not read\n");
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 2) << r.err;
}

// Spec 6: errors go to stderr one line each. ingest wrote a record's errors on one line
// joined by "; "; it now writes what translate writes for the same record, line for line.
TEST(CliErrors, IngestWritesEachErrorOfARecordOnItsOwnLineAsTranslateDoes) {
  TempDir dir;
  std::string bad = CisJson(PersonFields{.cis = "C-1", .dob = "1950-02-30"});
  bad.replace(bad.find("\"Gender\":\"2\""), 12, "\"Gender\":\"M\"");
  const std::string file = dir.file("in.ndjson");
  Write(file, CisJson(PersonFields{.cis = "C-0"}) + "\n" + bad + "\n");
  auto r = Caregate(dir, {"ingest", "--from", "cis", "--db", dir.file("c.db"), file});
  EXPECT_EQ(r.status, 65) << r.err;
  EXPECT_EQ(r.out, "stored 1 (new 1, updated 0), rejected 1\n");
  const std::string where = "caregate: " + file + ": record 2 (line 2): ";
  std::istringstream lines(r.err);
  std::string line;
  ASSERT_TRUE(std::getline(lines, line));
  EXPECT_EQ(line.rfind(where + "/Date_of_Birth: not a real calendar date", 0), 0u) << r.err;
  ASSERT_TRUE(std::getline(lines, line));
  EXPECT_EQ(line.rfind(where + "/Gender: 'M'", 0), 0u) << r.err;
  EXPECT_FALSE(std::getline(lines, line)) << r.err;
  // translate reports the same record in the same lines (then its count of rejections).
  auto t = Caregate(dir, {"translate", "--from", "cis", "--to", "cis", file});
  EXPECT_EQ(t.status, 65);
  EXPECT_EQ(t.err, r.err + "caregate: " + file + ": 1 of 2 records rejected\n");
}

// Refused mapping tables: a first line saying so, then one line per problem naming the
// file and line (they were all on the first line, each after two spaces).
TEST(CliErrors, RefusedMappingTablesGiveOneLinePerProblem) {
  TempDir dir;
  const std::filesystem::path tables = dir.path() / "mappings";
  std::filesystem::copy(std::string(CAREGATE_SOURCE_DIR) + "/mappings", tables, std::filesystem::copy_options::recursive);
  auto edit = [](const std::filesystem::path& p, const std::string& from, const std::string& to) {
    std::string text = ReadFile(p.string());
    text.replace(text.find(from), from.size(), to);
    Write(p.string(), text);
  };
  edit(tables / "cis.csv", "person.family_name", "person.familyname");
  // A quoted cell holding a line end: still one stderr line (it was two).
  edit(tables / "systmone.csv", "person.given_name", "\"person.given\nname\"");
  Write(dir.file("c.json"), CisJson(PersonFields{.cis = "C-1"}));
  for (std::vector<std::string> args : {std::vector<std::string>{"translate", "--from", "cis", "--to", "cis",
                                                                 dir.file("c.json")},
                                        std::vector<std::string>{"ingest", "--from", "cis", "--db",
                                                                 dir.file("c.db"), dir.file("c.json")}}) {
    SCOPED_TRACE(args[0]);
    args.insert(args.begin(), {"--mappings", tables.string()});
    auto r = Caregate(dir, args);
    EXPECT_EQ(r.status, 1);
    EXPECT_EQ(r.out, "");
    std::istringstream lines(r.err);
    std::vector<std::string> got;
    for (std::string line; std::getline(lines, line);) got.push_back(line);
    ASSERT_EQ(got.size(), 3u) << r.err;
    EXPECT_EQ(got[0], "caregate: mapping tables refused:");
    std::sort(got.begin() + 1, got.end());
    EXPECT_EQ(got[1].rfind("caregate: " + (tables / "cis.csv").string() + ":", 0), 0u) << got[1];
    EXPECT_NE(got[1].find("'person.familyname'"), std::string::npos) << got[1];
    EXPECT_EQ(got[2].rfind("caregate: " + (tables / "systmone.csv").string() + ":", 0), 0u) << got[2];
    EXPECT_NE(got[2].find("'person.given name'"), std::string::npos) << got[2];
  }
}

// `mappings check` honours --format (synopsis: `mappings check|report [--format
// json|html]`); without it, the text line as before. A refusal keeps exit 65 and its
// stderr lines whatever the format.
TEST(CliMappingsCheck, FormatJsonAndHtml) {
  TempDir dir;
  auto text = Caregate(dir, {"mappings", "check"});
  EXPECT_EQ(text.status, 0) << text.err;
  EXPECT_EQ(text.out.rfind("mapping tables OK: ", 0), 0u) << text.out;

  auto json = Caregate(dir, {"mappings", "check", "--format", "json"});
  EXPECT_EQ(json.status, 0) << json.err;
  EXPECT_EQ(json.err, "");
  static const std::regex ok_shape(
      R"(\{"ok":true,"dir":"[^"]+","version":"[0-9a-f]{64}","rules":[0-9]+,"systems":\[\{"name":"cis","rules":[0-9]+\},)"
      R"(\{"name":"systmone","rules":[0-9]+\}\],"code_sets":[0-9]+,"errors":\[\]\}\n)");
  EXPECT_TRUE(std::regex_match(json.out, ok_shape)) << json.out;
  // The same numbers as the text line.
  std::smatch m;
  ASSERT_TRUE(std::regex_search(text.out, m, std::regex(R"(OK: ([0-9]+) rules \(cis ([0-9]+), systmone ([0-9]+)\), ([0-9]+) code sets, version ([0-9a-f]+))")));
  EXPECT_NE(json.out.find("\"rules\":" + m[1].str() + ",\"systems\":[{\"name\":\"cis\",\"rules\":" + m[2].str() +
                          "},{\"name\":\"systmone\",\"rules\":" + m[3].str() + "}],\"code_sets\":" + m[4].str()),
            std::string::npos)
      << json.out;
  EXPECT_NE(json.out.find("\"version\":\"" + m[5].str() + "\""), std::string::npos);

  auto html = Caregate(dir, {"mappings", "check", "--format", "html"});
  EXPECT_EQ(html.status, 0) << html.err;
  EXPECT_EQ(html.out.rfind("<!DOCTYPE html>", 0), 0u) << html.out;
  EXPECT_NE(html.out.find("</html>"), std::string::npos);
  EXPECT_NE(html.out.find("OK"), std::string::npos);
  EXPECT_NE(html.out.find(m[5].str()), std::string::npos);
  EXPECT_EQ(html.out.find("mapping tables OK: "), std::string::npos);

  // Broken tables: exit 65, the problems in the document and on stderr.
  const std::filesystem::path tables = dir.path() / "mappings";
  std::filesystem::copy(std::string(CAREGATE_SOURCE_DIR) + "/mappings", tables, std::filesystem::copy_options::recursive);
  std::string cis = ReadFile((tables / "cis.csv").string());
  cis.replace(cis.find("person.family_name"), 18, "person.fam<ily>name");
  Write((tables / "cis.csv").string(), cis);
  const std::string where = (tables / "cis.csv").string() + ":";
  for (const char* format : {"", "json", "html"}) {
    SCOPED_TRACE(format);
    std::vector<std::string> args = {"--mappings", tables.string(), "mappings", "check"};
    if (*format) args.insert(args.end(), {"--format", format});
    auto r = Caregate(dir, args);
    EXPECT_EQ(r.status, 65);
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
    EXPECT_EQ(r.err.rfind("caregate: " + where, 0), 0u) << r.err;
    EXPECT_NE(r.err.find("'person.fam<ily>name'"), std::string::npos) << r.err;
    if (std::string(format) == "json") {
      static const std::regex bad_shape(
          R"(\{"ok":false,"dir":"[^"]+","errors":\[\{"source":"[^"]+cis\.csv:[0-9]+","problem":"[^"]*'person\.fam<ily>name'[^"]*"\}\]\}\n)");
      EXPECT_TRUE(std::regex_match(r.out, bad_shape)) << r.out;
    } else if (std::string(format) == "html") {
      EXPECT_EQ(r.out.rfind("<!DOCTYPE html>", 0), 0u) << r.out;
      EXPECT_NE(r.out.find("person.fam&lt;ily&gt;name"), std::string::npos) << r.out;
      EXPECT_EQ(r.out.find("<ily>"), std::string::npos) << r.out;
    } else {
      EXPECT_EQ(r.out, "");
    }
  }
}

// NDJSON whose first line is cut short: that line is one rejected record and the valid
// lines after it are translated and stored (as the export does). The input used to be
// read as one pretty-printed record: translate wrote nothing, ingest stored nothing.
TEST(CliNdjson, ATruncatedFirstLineLosesOnlyThatLine) {
  TempDir dir;
  const std::string file = dir.file("extract.ndjson");
  Write(file, "{\"Record_Type\":\"CIS_Client\",\"NHS_Num\n" + CisJson(PersonFields{.cis = "C-1"}) + "\n" +
                  CisJson(PersonFields{.cis = "C-2", .surname = "Second"}) + "\n");
  auto t = Caregate(dir, {"translate", "--from", "cis", "--to", "cis", file});
  EXPECT_EQ(t.status, 65) << t.err;
  EXPECT_EQ(std::count(t.out.begin(), t.out.end(), '\n'), 2) << t.out;
  EXPECT_NE(t.out.find("\"C-1\""), std::string::npos) << t.out;
  EXPECT_NE(t.out.find("\"C-2\""), std::string::npos) << t.out;
  EXPECT_EQ(t.err.rfind("caregate: " + file + ": record 1 (line 1): ", 0), 0u) << t.err;
  EXPECT_NE(t.err.find("caregate: " + file + ": 1 of 3 records rejected\n"), std::string::npos) << t.err;
  EXPECT_EQ(std::count(t.err.begin(), t.err.end(), '\n'), 2) << t.err;

  auto r = Caregate(dir, {"ingest", "--from", "cis", "--db", dir.file("c.db"), file});
  EXPECT_EQ(r.status, 65) << r.err;
  EXPECT_EQ(r.out, "stored 2 (new 2, updated 0), rejected 1\n");
  EXPECT_EQ(r.err.rfind("caregate: " + file + ": record 1 (line 1): ", 0), 0u) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;

  // The contract's pretty-printed example is still one record.
  auto one = Caregate(dir, {"translate", "--from", "cis", "--to", "systmone",
                            std::string(CAREGATE_SPEC_DIR) + "/examples/cis-record.json"});
  EXPECT_EQ(one.status, 0) << one.err;
  EXPECT_EQ(one.out.find("<ClientIntegrationBatch>"), std::string::npos);
}

// Spec 1 and 2: unknown data is "reported, never silently dropped". Translating to a
// system's format, which cannot carry it, names each item on stderr (exit 0: nothing
// is wrong with the record); --to canonical carries it, and says nothing.
TEST(CliTranslate, UnmappedDataNotCarriedIsNamedOnStderr) {
  TempDir dir;
  const std::string file = dir.file("c.json");
  std::string json = CisJson(PersonFields{.cis = "C-1"});
  json = json.substr(0, json.size() - 1) + ",\"Key_Safe\":{\"Code\":\"1234\"},\"Pets\":\"dog\"}";
  Write(file, json + "\n");
  auto t = Caregate(dir, {"translate", "--from", "cis", "--to", "systmone", file});
  EXPECT_EQ(t.status, 0) << t.err;
  EXPECT_NE(t.out.find("<ClientIntegrationResponse>"), std::string::npos);
  EXPECT_EQ(t.err,
            "caregate: " + file + ": record 1 (line 1): /Key_Safe/Code: not carried to systmone (no rule maps it; "
            "--to canonical keeps it)\n"
            "caregate: " + file + ": record 1 (line 1): /Pets: not carried to systmone (no rule maps it; "
            "--to canonical keeps it)\n");
  auto c = Caregate(dir, {"translate", "--from", "cis", "--to", "canonical", file});
  EXPECT_EQ(c.status, 0);
  EXPECT_EQ(c.err, "");
  EXPECT_NE(c.out.find("/Key_Safe/Code"), std::string::npos);
  // Many items: ten named, then how many more.
  std::string many = CisJson(PersonFields{.cis = "C-2"});
  many.pop_back();
  for (int i = 0; i < 25; ++i) many += ",\"X" + std::to_string(i) + "\":\"v\"";
  Write(file, many + "}\n");
  auto m = Caregate(dir, {"translate", "--from", "cis", "--to", "cis", file});
  EXPECT_EQ(m.status, 0);
  EXPECT_EQ(std::count(m.err.begin(), m.err.end(), '\n'), 11) << m.err;
  EXPECT_NE(m.err.find("record 1 (line 1): 15 more items not carried to cis\n"), std::string::npos) << m.err;
  // Past what a record keeps, the count is a lower bound, and says so.
  std::string huge = CisJson(PersonFields{.cis = "C-3"});
  huge.pop_back();
  for (int i = 0; i < 1500; ++i) huge += ",\"Y" + std::to_string(i) + "\":\"v\"";
  Write(file, huge + "}\n");
  auto h = Caregate(dir, {"translate", "--from", "cis", "--to", "cis", file});
  EXPECT_EQ(h.status, 0);
  EXPECT_NE(h.err.find("record 1 (line 1): at least 990 more items not carried to cis\n"), std::string::npos) << h.err;
}

// An error line is one line: a carriage return in the data does not start another.
TEST(CliErrors, ACarriageReturnInTheDataStaysOnTheLine) {
  TempDir dir;
  const std::string file = dir.file("c.json");
  Write(file, "{\"Record_Type\":\"CIS_Client\",\"NHS_Number\":\"9912003888\",\"Gender\":\"1\\r2\"}\n");
  auto t = Caregate(dir, {"translate", "--from", "cis", "--to", "cis", file});
  EXPECT_EQ(t.status, 65);
  EXPECT_EQ(t.err.find('\r'), std::string::npos) << t.err;
  EXPECT_NE(t.err.find("/Gender: '1 2'"), std::string::npos) << t.err;
  EXPECT_EQ(std::count(t.err.begin(), t.err.end(), '\n'), 1) << t.err;
}

// A JSON key holding an ESC or a NUL (legal, escaped, in JSON) is quoted in the note on
// stderr without the raw byte: an escape sequence must not reach the terminal or the log.
TEST(CliErrors, ControlCharactersInTheDataAreWrittenOutOnStderr) {
  TempDir dir;
  const std::string file = dir.file("k.json");
  Write(file, "{\"Record_Type\":\"CIS_Client\",\"NHS_Number\":\"9912003888\",\"a\\u0000b\":\"1\","
              "\"\\u001b[2J\":\"2\",\"c\\u009bd\":\"3\"}\n");
  auto t = Caregate(dir, {"translate", "--from", "cis", "--to", "systmone", file});
  EXPECT_EQ(t.status, 0) << t.err;
  EXPECT_EQ(t.err.find('\0'), std::string::npos) << t.err;
  EXPECT_EQ(t.err.find('\x1b'), std::string::npos) << t.err;
  EXPECT_EQ(t.err.find("\xc2\x9b"), std::string::npos) << t.err;
  EXPECT_NE(t.err.find("/a\\x00b"), std::string::npos) << t.err;
  EXPECT_NE(t.err.find("/\\x1B[2J"), std::string::npos) << t.err;
  EXPECT_NE(t.err.find("/c\\u009Bd"), std::string::npos) << t.err;
  EXPECT_EQ(std::count(t.err.begin(), t.err.end(), '\n'), 3) << t.err;
}

// A SystmOne batch is a batch by its form, whatever the number of records in it: a
// batch of one translates to a batch of one (a job that loads batches gets one), and an
// empty batch to an empty batch. A single document stays a single document.
TEST(CliTranslate, ABatchOfOneIsStillABatch) {
  TempDir dir;
  const std::string one = dir.file("one.xml"), empty = dir.file("empty.xml"), single = dir.file("single.xml");
  const std::string record = S1Xml(PersonFields{.nhs = "9912003888", .s1 = "S-1"});
  Write(one, "<ClientIntegrationBatch>" + record + "</ClientIntegrationBatch>");
  Write(empty, "<ClientIntegrationBatch></ClientIntegrationBatch>");
  Write(single, record);
  auto b = Caregate(dir, {"translate", "--from", "systmone", "--to", "systmone", one});
  EXPECT_EQ(b.status, 0) << b.err;
  EXPECT_NE(b.out.find("<ClientIntegrationBatch>"), std::string::npos) << b.out;
  EXPECT_EQ(std::count(b.out.begin(), b.out.end(), '\n') > 0, true);
  auto c = Caregate(dir, {"translate", "--from", "systmone", "--to", "cis", one});
  EXPECT_EQ(c.status, 0) << c.err;
  EXPECT_EQ(std::count(c.out.begin(), c.out.end(), '\n'), 1) << c.out;  // one NDJSON line
  EXPECT_EQ(c.out.front(), '{');
  auto e = Caregate(dir, {"translate", "--from", "systmone", "--to", "systmone", empty});
  EXPECT_EQ(e.status, 0) << e.err;
  EXPECT_NE(e.out.find("<ClientIntegrationBatch>"), std::string::npos) << e.out;
  EXPECT_NE(e.out.find("</ClientIntegrationBatch>"), std::string::npos) << e.out;
  EXPECT_EQ(e.err, "");
  auto s1 = Caregate(dir, {"translate", "--from", "systmone", "--to", "systmone", single});
  EXPECT_EQ(s1.status, 0);
  EXPECT_EQ(s1.out.find("<ClientIntegrationBatch>"), std::string::npos) << s1.out;
  // Spec 6: one invalid record writes nothing, batch or not.
  Write(one, "<ClientIntegrationBatch>" + S1Xml(PersonFields{.nhs = "9912003889"}) + "</ClientIntegrationBatch>");
  auto bad = Caregate(dir, {"translate", "--from", "systmone", "--to", "systmone", one});
  EXPECT_EQ(bad.status, 65);
  EXPECT_EQ(bad.out, "");
}

// --out naming a FIFO or a device is written into, not replaced by a regular file (as
// root, `--out /dev/null` used to replace the device); --out naming the file stdout is
// redirected to (`--out /dev/stdout`) writes there without truncating it; --out naming a
// symbolic link replaces the file it points to and keeps the link; a directory is refused
// before any input is read.
TEST(CliOut, AFifoOrADeviceIsWrittenIntoAndALinkIsFollowed) {
  TempDir dir;
  const std::string in = dir.file("in.json");
  Write(in, SpecExample("cis-record.json"));
  // The FIFO's read end is open (non-blocking) before caregate runs, so that a
  // regression (a rename over the FIFO) fails the test instead of hanging it.
  const std::string fifo = dir.file("fifo");
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  const int rd = ::open(fifo.c_str(), O_RDONLY | O_NONBLOCK);
  ASSERT_GE(rd, 0);
  const auto t = Caregate(dir, {"translate", "--from", "cis", "--to", "systmone", "--out", fifo, in});
  std::string read_back;
  char buf[4096];
  for (ssize_t n; (n = ::read(rd, buf, sizeof buf)) > 0;) read_back.append(buf, static_cast<std::size_t>(n));
  ::close(rd);
  EXPECT_EQ(t.status, 0) << t.err;
  struct stat st {};
  ASSERT_EQ(::stat(fifo.c_str(), &st), 0);
  EXPECT_TRUE(S_ISFIFO(st.st_mode));
  EXPECT_NE(read_back.find("<ClientIntegrationResponse>"), std::string::npos) << read_back;
  EXPECT_FALSE(std::filesystem::exists(fifo + ".partial"));

  // stdout is the file "stdout" in dir (Caregate's redirection, which truncates but keeps
  // the file): --out /dev/stdout writes through it; a rename would put a new file there.
  struct stat before {}, after {};
  ASSERT_EQ(::stat(dir.file("stdout").c_str(), &before), 0);
  const auto so = Caregate(dir, {"translate", "--from", "cis", "--to", "systmone", "--out", "/dev/stdout", in});
  EXPECT_EQ(so.status, 0) << so.err;
  EXPECT_EQ(so.out.find("<?xml"), 0u) << so.out.substr(0, 100);
  ASSERT_EQ(::stat(dir.file("stdout").c_str(), &after), 0);
  EXPECT_EQ(after.st_ino, before.st_ino);
  EXPECT_FALSE(std::filesystem::exists(dir.file("stdout.partial")));

  const std::string target = dir.file("real.xml"), link = dir.file("link.xml");
  Write(target, "old");
  std::filesystem::create_symlink(target, link);
  const auto l = Caregate(dir, {"translate", "--from", "cis", "--to", "systmone", "--out", link, in});
  EXPECT_EQ(l.status, 0) << l.err;
  EXPECT_TRUE(std::filesystem::is_symlink(link));
  EXPECT_NE(ReadFile(target).find("<ClientIntegrationResponse>"), std::string::npos);
  EXPECT_FALSE(std::filesystem::exists(target + ".partial"));

  // A link planted under the temporary file's name is not followed: it is replaced.
  const std::string victim = dir.file("victim"), planted = dir.file("out.xml.partial");
  Write(victim, "keep me");
  std::filesystem::create_symlink(victim, planted);
  const auto p = Caregate(dir, {"translate", "--from", "cis", "--to", "systmone", "--out", dir.file("out.xml"), in});
  EXPECT_EQ(p.status, 0) << p.err;
  EXPECT_EQ(ReadFile(victim), "keep me");
  EXPECT_NE(ReadFile(dir.file("out.xml")).find("<ClientIntegrationResponse>"), std::string::npos);

  // A directory is refused with the reason, before the input is read (an invalid record
  // would otherwise give 65 and never mention the output), and nothing is left beside it.
  std::filesystem::create_directory(dir.file("outdir"));
  Write(dir.file("bad.json"), "{\"Record_Type\":\"CIS_Client\"}\n");
  for (const std::string& input : {in, dir.file("bad.json")}) {
    const auto d = Caregate(dir, {"translate", "--from", "cis", "--to", "systmone", "--out", dir.file("outdir"), input});
    EXPECT_EQ(d.status, 1) << input;
    EXPECT_EQ(d.err, "caregate: " + dir.file("outdir") + ": write failed: Is a directory\n") << input;
    EXPECT_FALSE(std::filesystem::exists(dir.file("outdir.partial")));
  }

  // A device: a null device of the test's own (mknod needs root, which CI is), so that a
  // regression replaces that node rather than the machine's /dev/null.
  const std::string null_dev = dir.file("null");
  if (::mknod(null_dev.c_str(), S_IFCHR | 0666, ::makedev(1, 3)) != 0) GTEST_SKIP() << "mknod needs root";
  const auto null = Caregate(dir, {"mappings", "report", "--out", null_dev});
  EXPECT_EQ(null.status, 0) << null.err;
  ASSERT_EQ(::stat(null_dev.c_str(), &st), 0);
  EXPECT_TRUE(S_ISCHR(st.st_mode));
  EXPECT_FALSE(std::filesystem::exists(null_dev + ".partial"));
}

// A report that cannot be written says so, as every other failure does.
TEST(CliMappingsReport, AnUnwritableOutIsNamed) {
  TempDir dir;
  auto r = Caregate(dir, {"mappings", "report", "--out", dir.file("no/such/dir/report.json")});
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find("no/such/dir/report.json: write failed"), std::string::npos) << r.err;
}

// README: every command takes --mappings DIR, before or after the command's name.
TEST(CliOptions, MappingsGoesBeforeOrAfterTheCommand) {
  TempDir dir;
  const std::string tables = std::string(CAREGATE_SOURCE_DIR) + "/mappings";
  auto before = Caregate(dir, {"--mappings", tables, "mappings", "check"});
  auto after = Caregate(dir, {"mappings", "check", "--mappings", tables});
  EXPECT_EQ(before.status, 0) << before.err;
  EXPECT_EQ(after.status, 0) << after.err;
  EXPECT_EQ(after.out, before.out);
  auto missing = Caregate(dir, {"mappings", "check", "--mappings", dir.file("nowhere")});
  EXPECT_NE(missing.status, 0);
  EXPECT_NE(missing.err.find("nowhere"), std::string::npos) << missing.err;
}

// A real date before 1800 is a date like any other (spec 3), both ways and into the store.
TEST(CliDates, ADateBefore1800TranslatesAndIsStored) {
  TempDir dir;
  Write(dir.file("c.json"), CisJson(PersonFields{.cis = "C-1", .dob = "1799-12-31"}));
  auto s1 = Caregate(dir, {"translate", "--from", "cis", "--to", "systmone", dir.file("c.json")});
  ASSERT_EQ(s1.status, 0) << s1.err;
  EXPECT_NE(s1.out.find("<DateOfBirth>1799-12-31</DateOfBirth>"), std::string::npos) << s1.out;
  Write(dir.file("s1.xml"), s1.out);
  auto back = Caregate(dir, {"translate", "--from", "systmone", "--to", "cis", dir.file("s1.xml")});
  ASSERT_EQ(back.status, 0) << back.err;
  EXPECT_NE(back.out.find("\"Date_of_Birth\":\"1799-12-31\""), std::string::npos) << back.out;
  Write(dir.file("y1.json"), CisJson(PersonFields{.cis = "C-2", .dob = "0001-01-01"}));
  auto r = Caregate(dir, {"ingest", "--from", "cis", "--db", dir.file("c.db"), dir.file("c.json"), dir.file("y1.json")});
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out, "stored 2 (new 2, updated 0), rejected 0\n");
  Write(dir.file("y0.json"), CisJson(PersonFields{.cis = "C-3", .dob = "0000-01-01"}));
  r = Caregate(dir, {"translate", "--from", "cis", "--to", "cis", dir.file("y0.json")});
  EXPECT_EQ(r.status, 65);
  EXPECT_NE(r.err.find("/Date_of_Birth: not a real calendar date"), std::string::npos) << r.err;
}

class CliAudit : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string ndjson;
    for (int i = 0; i < 5; ++i) ndjson += CisJson(PersonFields{.cis = "C-" + std::to_string(i), .surname = "P" + std::string(1, static_cast<char>('A' + i))}) + "\n";
    Write(dir_.file("in.ndjson"), ndjson);
    ASSERT_EQ(Caregate(dir_, {"ingest", "--from", "cis", "--db", db_, dir_.file("in.ndjson")}).status, 0);
    auto r = Caregate(dir_, {"audit", "verify", "--db", db_});
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_NE(r.out.find("\"ok\":true"), std::string::npos);
  }
  void ExpectTamperedAt(int seq) {
    auto r = Caregate(dir_, {"audit", "verify", "--db", db_});
    EXPECT_EQ(r.status, 1);
    EXPECT_NE(r.out.find("\"first_bad_seq\":" + std::to_string(seq)), std::string::npos) << r.out;
    EXPECT_NE(r.err.find("event " + std::to_string(seq)), std::string::npos) << r.err;
  }
  TempDir dir_;
  std::string db_ = dir_.file("c.db");
};

TEST_F(CliAudit, EditedEventIsFoundWhereItWasEdited) {
  Sql(db_, "UPDATE audit_events SET outcome = '403 consent-withheld' WHERE seq = 3");
  ExpectTamperedAt(3);
}

TEST_F(CliAudit, EditedPersonIdIsFound) {
  Sql(db_, "UPDATE audit_event_persons SET person_id = 'cis:someone-else' WHERE seq = 2");
  ExpectTamperedAt(2);
}

TEST_F(CliAudit, DeletedEventIsFound) {
  Sql(db_, "DELETE FROM audit_events WHERE seq = 4; DELETE FROM audit_event_persons WHERE seq = 4");
  auto r = Caregate(dir_, {"audit", "verify", "--db", db_});
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.out.find("\"ok\":false"), std::string::npos);
  EXPECT_NE(r.err.find("event"), std::string::npos);
}

TEST_F(CliAudit, InsertedEventIsFound) {
  Sql(db_, "INSERT INTO audit_events SELECT seq + 1000, time_utc, 'intruder', role, organisation, action, view,"
           " outcome, request_id, detail, prev_hash, hash FROM audit_events WHERE seq = 2");
  auto r = Caregate(dir_, {"audit", "verify", "--db", db_});
  EXPECT_EQ(r.status, 1) << r.out;
}

TEST_F(CliAudit, ReportForOnePersonAsJsonAndHtml) {
  auto r = Caregate(dir_, {"audit", "report", "--db", db_, "--person", "cis:C-2"});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find("\"count\":1"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("cis:C-2"), std::string::npos);
  r = Caregate(dir_, {"audit", "report", "--db", db_, "--format", "html"});
  ASSERT_EQ(r.status, 0);
  EXPECT_NE(r.out.find("<html"), std::string::npos);
  EXPECT_EQ(Caregate(dir_, {"audit", "report", "--db", db_, "--from", "soon"}).status, 2);
  EXPECT_EQ(Caregate(dir_, {"audit", "verify", "--db", dir_.file("missing.db")}).status, 1);
}

// A person asked for by one id gets the events that named them by any id the store knows
// them by: the council record's ingest, before the SystmOne record linked to it, is found
// by the SystmOne id too.
TEST(CliAuditReport, APersonIsFoundByAnyOfTheirIds) {
  TempDir dir;
  const std::string db = dir.file("c.db");
  Write(dir.file("c.json"), CisJson(PersonFields{.nhs = "9912003888", .cis = "C-1"}));
  Write(dir.file("s.xml"), S1Xml(PersonFields{.nhs = "9912003888", .s1 = "S-1"}));
  ASSERT_EQ(Caregate(dir, {"ingest", "--from", "cis", "--db", db, dir.file("c.json")}).status, 0);
  ASSERT_EQ(Caregate(dir, {"ingest", "--from", "systmone", "--db", db, dir.file("s.xml")}).status, 0);
  for (const char* id : {"s1:S-1", "cis:C-1", "nhs:9912003888"}) {
    auto r = Caregate(dir, {"audit", "report", "--db", db, "--person", id});
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_NE(r.out.find("\"count\":2"), std::string::npos) << id << ": " << r.out;
  }
  auto nobody = Caregate(dir, {"audit", "report", "--db", db, "--person", "cis:NOBODY"});
  EXPECT_NE(nobody.out.find("\"count\":0"), std::string::npos) << nobody.out;
}

// Spec 6: output goes to stdout unless --out is given; audit verify and report once
// refused the option as a usage error. The file holds what stdout would have, stdout
// stays empty, and an unwritable --out is named and exits 1.
TEST_F(CliAudit, OutWritesTheReportOrTheVerdictToAFileInsteadOfStdout) {
  const auto to_stdout = Caregate(dir_, {"audit", "report", "--db", db_, "--person", "cis:C-2"});
  ASSERT_EQ(to_stdout.status, 0) << to_stdout.err;
  auto r = Caregate(dir_, {"audit", "report", "--db", db_, "--person", "cis:C-2", "--out", dir_.file("r.json")});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(ReadFile(dir_.file("r.json")), to_stdout.out);
  r = Caregate(dir_, {"audit", "report", "--db", db_, "--format", "html", "--out", dir_.file("r.html")});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(ReadFile(dir_.file("r.html")).find("<html"), std::string::npos);
  r = Caregate(dir_, {"audit", "verify", "--db", db_, "--out", dir_.file("v.json")});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out, "");
  EXPECT_NE(ReadFile(dir_.file("v.json")).find("\"ok\":true"), std::string::npos);
  r = Caregate(dir_, {"audit", "report", "--db", db_, "--out", dir_.file("no-such-dir/r.json")});
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find(dir_.file("no-such-dir/r.json") + ": write failed"), std::string::npos) << r.err;
  // ingest's summary line likewise; the records are stored either way.
  Write(dir_.file("more.ndjson"), CisJson(PersonFields{.cis = "C-9"}) + "\n");
  r = Caregate(dir_, {"ingest", "--from", "cis", "--db", db_, "--out", dir_.file("s.txt"), dir_.file("more.ndjson")});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(ReadFile(dir_.file("s.txt")), "stored 1 (new 1, updated 0), rejected 0\n");
}

// One number from the database (a count), or -1 when the query fails.
long long QueryNumber(const std::string& db, const char* sql) {
  sqlite3* h = nullptr;
  long long v = -1;
  if (sqlite3_open_v2(db.c_str(), &h, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK) {
    sqlite3_busy_timeout(h, 5000);
    sqlite3_stmt* st = nullptr;
    if (sqlite3_prepare_v2(h, sql, -1, &st, nullptr) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
      v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
  }
  sqlite3_close(h);
  return v;
}

// A refused record is audited as over HTTP: action ingest, 422, the person named by the
// ids that were readable and by every id the store knows them by.
TEST(CliIngest, RefusedRecordsAreAuditedWithTheIdsThatWereReadable) {
  TempDir dir;
  const std::string db = dir.file("c.db");
  Write(dir.file("first.ndjson"), CisJson(PersonFields{.nhs = "9912003888", .cis = "C-1"}) + "\n");
  ASSERT_EQ(Caregate(dir, {"ingest", "--from", "cis", "--db", db, dir.file("first.ndjson")}).status, 0);
  Write(dir.file("in.ndjson"), CisJson(PersonFields{.cis = "C-1", .dob = "1950-02-30"}) + "\n" + "{not json\n" +
                                   CisJson(PersonFields{.cis = "C-3"}) + "\n");
  auto r = Caregate(dir, {"ingest", "--from", "cis", "--db", db, dir.file("in.ndjson")});
  EXPECT_EQ(r.status, 65) << r.err;
  EXPECT_EQ(r.out, "stored 1 (new 1, updated 0), rejected 2\n");
  r = Caregate(dir, {"audit", "report", "--db", db, "--person", "nhs:9912003888"});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find("\"count\":2"), std::string::npos) << r.out;  // stored, then refused
  EXPECT_NE(r.out.find("\"outcome\":\"422 invalid-record\""), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("record 1 (line 1): /Date_of_Birth"), std::string::npos) << r.out;
  EXPECT_EQ(QueryNumber(db, "SELECT count(*) FROM audit_events WHERE outcome = '422 invalid-record'"), 2);
  // The line that is not JSON names nobody.
  EXPECT_EQ(QueryNumber(db, "SELECT count(*) FROM audit_events e WHERE outcome = '422 invalid-record' AND NOT "
                            "EXISTS (SELECT 1 FROM audit_event_persons p WHERE p.seq = e.seq)"),
            1);
  EXPECT_EQ(Caregate(dir, {"audit", "verify", "--db", db}).status, 0);

  // In one file (one chunk): a stored record, then a refused one about the same person.
  // The refusal's event comes after the stored record's, and names the person by the ids
  // the chunk has just stored (review: it came first, without the NHS number).
  const std::string db2 = dir.file("c2.db");
  Write(dir.file("pair.ndjson"), CisJson(PersonFields{.nhs = "9912003888", .cis = "C-9"}) + "\n" +
                                     CisJson(PersonFields{.nhs = "12", .cis = "C-9"}) + "\n");
  r = Caregate(dir, {"ingest", "--from", "cis", "--db", db2, dir.file("pair.ndjson")});
  EXPECT_EQ(r.status, 65) << r.err;
  const auto events = audit::QueryAuditTrail(db2, {});
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].outcome, "201");
  EXPECT_EQ(events[1].outcome, "422 invalid-record");
  EXPECT_EQ(events[1].person_ids, (std::vector<std::string>{"cis:C-9", "nhs:9912003888"}));  // the store's order
}

// kill -9 during a command-line ingest: the database stays whole (integrity check, the
// audit chain verifies), and the same ingest run again stores every record, each with
// the audit event of an ingest. (The command acknowledges nothing before it ends, so
// what a kill may lose is only what the rerun stores.)
TEST(CliIngest, KillMidwayLeavesAWholeDatabaseAndTheRerunStoresEverything) {
  TempDir dir;
  const std::string db = dir.file("k.db"), in = dir.file("in.ndjson");
  const int n = 4000;
  {
    std::ofstream out(in, std::ios::binary);
    for (int i = 0; i < n; ++i)
      out << CisJson(PersonFields{.cis = "KI-" + std::to_string(i), .surname = "Kill" + std::to_string(i)}) << "\n";
  }
  pid_t pid = ::fork();
  if (pid == 0) {
    int o = ::open(dir.file("ingest.out").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    ::dup2(o, 1);
    ::dup2(o, 2);
    ::execl(CAREGATE_BIN, CAREGATE_BIN, "ingest", "--from", "cis", "--db", db.c_str(), in.c_str(),
            static_cast<char*>(nullptr));
    ::_exit(127);
  }
  const char* kStored = "SELECT count(*) FROM person_ids WHERE id LIKE 'cis:KI-%'";
  long long stored = 0;
  for (int i = 0; i < 1000 && stored < 256; ++i) {  // at least one chunk committed
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    stored = QueryNumber(db, kStored);
  }
  ::kill(pid, SIGKILL);
  int st = 0;
  ::waitpid(pid, &st, 0);
  ASSERT_TRUE(WIFSIGNALED(st)) << "the ingest ended before the kill: " << ReadFile(dir.file("ingest.out"));
  const long long before = QueryNumber(db, kStored);
  EXPECT_GE(before, 256);
  EXPECT_LT(before, n);

  EXPECT_EQ(QueryNumber(db, "SELECT count(*) FROM pragma_integrity_check WHERE integrity_check <> 'ok'"), 0);
  auto verify = Caregate(dir, {"audit", "verify", "--db", db});
  EXPECT_EQ(verify.status, 0) << verify.out << verify.err;

  auto again = Caregate(dir, {"ingest", "--from", "cis", "--db", db, in});
  ASSERT_EQ(again.status, 0) << again.out << again.err;
  EXPECT_EQ(QueryNumber(db, kStored), n);
  identity::PersonStore store(db);
  for (int i = 0; i < n; i += 97) EXPECT_TRUE(store.Find("cis:KI-" + std::to_string(i))) << i;
  // Every record of the rerun (stored or already there) has its ingest event.
  EXPECT_GE(static_cast<long long>(audit::QueryAuditTrail(db, {}).size()), n);
  verify = Caregate(dir, {"audit", "verify", "--db", db});
  EXPECT_EQ(verify.status, 0) << verify.out << verify.err;
}

// Starts `caregate serve ARGS --listen 127.0.0.1:0` as a child, stdout and stderr to
// `out`, and waits for it to say where it listens: its pid and port (0 if it never said).
struct Served {
  pid_t pid;
  std::uint16_t port;
};
Served StartServe(std::vector<std::string> args, const std::string& out) {
  args.insert(args.begin(), "serve");
  args.push_back("--listen");
  args.push_back("127.0.0.1:0");
  const pid_t pid = Spawn(std::move(args), out, out);
  std::uint16_t port = 0;
  for (int i = 0; i < 200 && port == 0; ++i) {
    std::smatch m;
    const std::string text = ReadFile(out);
    static const std::regex re("listening on 127\\.0\\.0\\.1:([0-9]+)");
    if (std::regex_search(text, m, re)) port = static_cast<std::uint16_t>(std::stoi(m[1]));
    else std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return {pid, port};
}

// A count past its type's range is refused, not clamped: `synth --records 10^20` once
// wrote records until the disk was full. Hex and exponents are refused too, and leading
// zeros are decimal (CLI11 read 010 as octal 8).
TEST(CliOptions, CountsAreWholeNumbersInRange) {
  TempDir dir;
  for (const std::vector<std::string>& bad :
       {std::vector<std::string>{"--records", "99999999999999999999"}, {"--records", "0x10"}, {"--records", "1e3"},
        {"--records", "-1"}, {"--records", ""}, {"--records", "1", "--seed", "18446744073709551616"},
        {"--records", "1", "--invalid-every", "+3"}}) {
    std::vector<std::string> args{"synth", "--format", "cis"};
    args.insert(args.end(), bad.begin(), bad.end());
    const auto r = Caregate(dir, args);
    EXPECT_EQ(r.status, 2) << bad[bad.size() - 1] << ": " << r.err;
    EXPECT_NE(r.err.find(bad[bad.size() - 2] + ": must be a whole number from 0 to 18446744073709551615"),
              std::string::npos)
        << r.err;
    EXPECT_TRUE(r.out.empty()) << r.out.substr(0, 200);
  }
  const auto largest = Caregate(dir, {"synth", "--format", "cis", "--records", "2", "--seed", "18446744073709551615"});
  EXPECT_EQ(largest.status, 0) << largest.err;
  EXPECT_EQ(std::count(largest.out.begin(), largest.out.end(), '\n'), 2);
  const auto smaller = Caregate(dir, {"synth", "--format", "cis", "--records", "2", "--seed", "18446744073709551614"});
  EXPECT_NE(largest.out, smaller.out);
  // Leading zeros: decimal, never octal.
  const auto ten = Caregate(dir, {"synth", "--format", "cis", "--records", "010", "--seed", "010"});
  EXPECT_EQ(ten.status, 0) << ten.err;
  EXPECT_EQ(std::count(ten.out.begin(), ten.out.end(), '\n'), 10);
  EXPECT_EQ(ten.out, Caregate(dir, {"synth", "--format", "cis", "--records", "10", "--seed", "10"}).out);
  const auto eight = Caregate(dir, {"synth", "--format", "cis", "--records", "08"});
  EXPECT_EQ(eight.status, 0) << eight.err;
  EXPECT_EQ(std::count(eight.out.begin(), eight.out.end(), '\n'), 8);
}

// A warm-up count that is not a non-negative number is a usage error naming the option,
// before anything is opened (a negative one was once read as "all").
TEST(CliServe, WarmPersonsMustBeANonNegativeNumber) {
  TempDir dir;
  Write(dir.file("tokens"), "sha256:" + Sha256Hex("svc") + " service job\n");
  for (const char* bad : {"-1", "many", "0x10", "1e2", "", "100000001"}) {
    const auto r = Caregate(dir, {"serve", "--db", dir.file("c.db"), "--tokens", dir.file("tokens"), "--listen",
                                 "127.0.0.1:0", "--warm-persons", bad});
    EXPECT_EQ(r.status, 2) << bad << ": " << r.err;
    EXPECT_NE(r.err.find("--warm-persons"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("must be a whole number from 0 to 100000000"), std::string::npos) << r.err;
    EXPECT_EQ(r.out.find("listening on"), std::string::npos) << r.out;
  }
  EXPECT_FALSE(std::filesystem::exists(dir.file("c.db")));
}

// A tokens file with a bad line is invalid input (exit 65, the problem table's status
// for `malformed`), named by file and line, before anything is opened or served; it
// once fell through to 70, "internal error". A missing one is an other failure (1).
TEST(CliServe, ABadTokensFileIsInvalidInputNamingItsLine) {
  TempDir dir;
  const std::string tokens = dir.file("tokens");
  Write(tokens, "# tokens\nsha256:" + Sha256Hex("svc") + " service job\nsha256:abc health x\n");
  auto r = Caregate(dir, {"serve", "--db", dir.file("c.db"), "--tokens", tokens, "--listen", "127.0.0.1:0"});
  EXPECT_EQ(r.status, 65) << r.err;
  EXPECT_NE(r.err.find(tokens + ":3: the digest has 3 hex digits, not 64"), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find("internal error"), std::string::npos) << r.err;
  Write(tokens, "sha256:" + Sha256Hex("svc") + " doctor x\n");
  r = Caregate(dir, {"serve", "--db", dir.file("c.db"), "--tokens", tokens, "--listen", "127.0.0.1:0"});
  EXPECT_EQ(r.status, 65) << r.err;
  EXPECT_NE(r.err.find(tokens + ":1: unknown role `doctor`"), std::string::npos) << r.err;
  r = Caregate(dir, {"serve", "--db", dir.file("c.db"), "--tokens", dir.file("none"), "--listen", "127.0.0.1:0"});
  EXPECT_EQ(r.status, 1) << r.err;
  EXPECT_NE(r.err.find(dir.file("none") + ": cannot open the tokens file"), std::string::npos) << r.err;
  EXPECT_EQ(r.out.find("listening on"), std::string::npos) << r.out;
  EXPECT_FALSE(std::filesystem::exists(dir.file("c.db")));
}

// kill -9 while a client is ingesting over HTTP: every record the server acknowledged
// (201/200) is in the store after the restart, with its audit event, and the chain verifies.
TEST(CliServe, KillDuringIngestLosesNoAcknowledgedWrite) {
  TempDir dir;
  const std::string db = dir.file("c.db");
  Write(dir.file("tokens"), "sha256:" + Sha256Hex("svc") + " service job\n");
  const std::string out = dir.file("serve.out");
  const Served served = StartServe({"--db", db, "--tokens", dir.file("tokens")}, out);
  const pid_t pid = served.pid;
  const std::uint16_t port = served.port;
  ASSERT_NE(port, 0) << ReadFile(out);

  std::atomic<int> acknowledged{0};
  std::atomic<bool> stop{false};
  std::thread client([&] {
    server::testing::Conn c(port);
    for (int i = 0; i < 2000 && !stop; ++i) {
      const std::string body = CisJson(PersonFields{.cis = "K-" + std::to_string(i)});
      const std::string req = "POST /v1/ingest/cis HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer svc\r\nContent-Length: " +
                              std::to_string(body.size()) + "\r\n\r\n" + body;
      if (!c.Send(req)) return;
      auto r = c.Read(std::chrono::seconds(5));
      if (!r || (r->status != 201 && r->status != 200)) return;
      acknowledged = i + 1;
    }
  });
  for (int i = 0; i < 200 && acknowledged < 20; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(25));
  ::kill(pid, SIGKILL);
  int st = 0;
  ::waitpid(pid, &st, 0);
  stop = true;
  client.join();
  const int acked = acknowledged.load();
  ASSERT_GE(acked, 1);
  identity::PersonStore store(db);
  for (int i = 0; i < acked; ++i) EXPECT_TRUE(store.Find("cis:K-" + std::to_string(i))) << "lost K-" << i;
  EXPECT_GE(static_cast<int>(audit::QueryAuditTrail(db, {}).size()), acked);
  auto r = Caregate(dir, {"audit", "verify", "--db", db});
  EXPECT_EQ(r.status, 0) << r.out << r.err;
}

// Stops the server with SIGTERM and expects a clean exit (its output `out` says why not).
void StopServe(pid_t pid, const std::string& out) {
  ::kill(pid, SIGTERM);
  int st = 0;
  ::waitpid(pid, &st, 0);
  EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << st << ": " << ReadFile(out);
}

// Sends the server SIGHUP, then waits until its output `out` holds `word` n times: its
// word of the n-th reload.
void HupAndWait(pid_t pid, const std::string& out, const std::string& word, int n) {
  ::kill(pid, SIGHUP);
  for (int i = 0; i < 200; ++i) {
    const std::string text = ReadFile(out);
    int seen = 0;
    for (std::size_t p = text.find(word); p != std::string::npos; p = text.find(word, p + 1)) ++seen;
    if (seen >= n) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
  }
  ADD_FAILURE() << "no word of SIGHUP " << n << " (\"" << word << "\"): " << ReadFile(out);
}

// Token rotation without a restart: SIGHUP reads the tokens file again; a bad file
// changes nothing. A kept-alive connection's next request meets the new tokens.
TEST(CliServe, SighupReloadsTheTokensFile) {
  TempDir dir;
  const std::string tokens = dir.file("tokens"), out = dir.file("serve.out");
  Write(tokens, "sha256:" + Sha256Hex("old") + " ig carol\n");
  const Served served = StartServe({"--db", dir.file("c.db"), "--tokens", tokens, "--warm-persons", "0"}, out);
  const pid_t pid = served.pid;
  const std::uint16_t port = served.port;
  ASSERT_NE(port, 0) << ReadFile(out);
  server::testing::Conn kept(port);
  auto status = [&](const std::string& token) {
    const std::string req = "GET /v1/mappings HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + token + "\r\n\r\n";
    if (!kept.Send(req)) return -1;
    auto r = kept.Read(std::chrono::seconds(5));
    return r ? r->status : -1;
  };
  auto hup = [&](int n) { HupAndWait(pid, out, "SIGHUP", n); };
  EXPECT_EQ(status("old"), 200);
  EXPECT_EQ(status("new"), 401);

  Write(tokens, "sha256:" + Sha256Hex("new") + " ig carol\nsha256:" + Sha256Hex("dave") + " council dave\n");
  hup(1);
  EXPECT_NE(ReadFile(out).find("SIGHUP: 2 tokens loaded from " + tokens), std::string::npos) << ReadFile(out);
  EXPECT_EQ(status("old"), 401);
  EXPECT_EQ(status("new"), 200);

  Write(tokens, "sha256:" + Sha256Hex("other") + " admin dave\n");  // no such role
  hup(2);
  EXPECT_NE(ReadFile(out).find("SIGHUP: tokens not reloaded, the 2 in use stay: " + tokens + ":1"), std::string::npos)
      << ReadFile(out);
  EXPECT_EQ(status("new"), 200);
  EXPECT_EQ(status("other"), 401);

  Write(tokens, "# being rewritten\n");  // no token at all: never a server that lets nobody in
  hup(3);
  EXPECT_NE(ReadFile(out).find("the 2 in use stay: " + tokens + ": holds no token"), std::string::npos)
      << ReadFile(out);
  EXPECT_EQ(status("new"), 200);

  Write(tokens, "sha256:" + Sha256Hex("new") + " ig carol\n");
  hup(4);
  EXPECT_EQ(status("new"), 200);

  StopServe(pid, out);

  // The audit trail says when access changed, and to whom: an IG officer's view of it.
  std::vector<audit::AuditEvent> reloads;
  for (auto& e : audit::QueryAuditTrail(dir.file("c.db"), {}))
    if (e.action == "tokens-reload") reloads.push_back(e);
  ASSERT_EQ(reloads.size(), 4u);
  EXPECT_EQ(reloads[0].outcome, "200");
  EXPECT_EQ(reloads[0].detail, "SIGHUP: 2 tokens loaded from " + tokens + "; access added: dave (council)");
  EXPECT_EQ(reloads[1].outcome, "400 tokens-file-refused");
  EXPECT_NE(reloads[1].detail.find("the 2 tokens in use stay"), std::string::npos) << reloads[1].detail;
  EXPECT_EQ(reloads[2].outcome, "400 tokens-file-refused");
  EXPECT_EQ(reloads[3].detail, "SIGHUP: 1 tokens loaded from " + tokens + "; removed: dave (council)");
  EXPECT_EQ(reloads[3].role, "service");
  EXPECT_EQ(reloads[3].organisation, "caregate");
  EXPECT_EQ(Caregate(dir, {"audit", "verify", "--db", dir.file("c.db")}).status, 0);
}

// A certificate renewal (SIGHUP with --tls-cert) is on the record too: what was loaded,
// or why not, as action tls-reload beside the tokens reload.
TEST(CliServe, SighupRecordsTheTlsReloadInTheAuditTrail) {
  TempDir dir;
  const std::string tokens = dir.file("tokens"), out = dir.file("serve.out");
  const std::string cert = dir.file("cert.pem"), key = dir.file("key.pem");
  ASSERT_TRUE(server::testing::MakeSelfSigned(cert, key, 1));
  Write(tokens, "sha256:" + Sha256Hex("tok") + " ig carol\n");
  const Served served = StartServe({"--db", dir.file("c.db"), "--tokens", tokens, "--warm-persons", "0",
                                    "--tls-cert", cert, "--tls-key", key},
                                   out);
  ASSERT_NE(served.port, 0) << ReadFile(out);
  auto hup = [&](const std::string& word, int n) { HupAndWait(served.pid, out, word, n); };
  ASSERT_TRUE(server::testing::MakeSelfSigned(cert, key, 0x2A));  // renewed
  hup("tokens loaded", 1);
  ASSERT_TRUE(server::testing::MakeSelfSigned(cert, dir.file("other-key.pem"), 0x2B));  // key does not match
  hup("tokens loaded", 2);
  StopServe(served.pid, out);

  std::vector<audit::AuditEvent> tls;
  for (auto& e : audit::QueryAuditTrail(dir.file("c.db"), {}))
    if (e.action == "tls-reload") tls.push_back(e);
  ASSERT_EQ(tls.size(), 2u);
  EXPECT_EQ(tls[0].outcome, "200");
  EXPECT_NE(tls[0].detail.find("SIGHUP: TLS certificate loaded from " + cert + ": subject CN=localhost, serial 2A"),
            std::string::npos)
      << tls[0].detail;
  EXPECT_EQ(tls[1].outcome, "400 tls-files-refused");
  EXPECT_NE(tls[1].detail.find("the one in use stays"), std::string::npos) << tls[1].detail;
  EXPECT_EQ(tls[1].role, "service");
  EXPECT_EQ(Caregate(dir, {"audit", "verify", "--db", dir.file("c.db")}).status, 0);
}

// A tokens file others can write (they could let themselves in) and a TLS key others can
// read are named on stderr at start and at each reload; owner-only files are not.
TEST(CliServe, WarnsOfATokensFileOrKeyOpenToOtherUsers) {
  TempDir dir;
  const std::string tokens = dir.file("tokens"), out = dir.file("serve.out");
  const std::string cert = dir.file("cert.pem"), key = dir.file("key.pem");
  ASSERT_TRUE(server::testing::MakeSelfSigned(cert, key, 1));
  Write(tokens, "sha256:" + Sha256Hex("tok") + " ig carol\n");
  ASSERT_EQ(::chmod(tokens.c_str(), 0664), 0);
  ASSERT_EQ(::chmod(key.c_str(), 0640), 0);
  Served served = StartServe({"--db", dir.file("c.db"), "--tokens", tokens, "--warm-persons", "0", "--tls-cert",
                              cert, "--tls-key", key},
                             out);
  ASSERT_NE(served.port, 0) << ReadFile(out);
  std::string text = ReadFile(out);
  EXPECT_NE(text.find("warning: the tokens file " + tokens + " has mode 0664: other users of this machine can "
                      "change who is let in (chmod go-w)"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("warning: the TLS key " + key + " has mode 0640"), std::string::npos) << text;
  // Modes tightened, then reloaded: no new word of them. A directory others may write
  // (they could swap the file) and, where the test may chown, a file of another user are
  // named at the reload.
  ASSERT_EQ(::chmod(tokens.c_str(), 0644), 0);
  ASSERT_EQ(::chmod(key.c_str(), 0600), 0);
  ASSERT_EQ(::chmod(dir.path().c_str(), 0777), 0);
  const bool chowned = ::geteuid() == 0 && ::chown(tokens.c_str(), 12345, 12345) == 0;
  HupAndWait(served.pid, out, "tokens loaded", 1);
  text = ReadFile(out);
  auto count = [&](const std::string& word) {
    std::size_t n = 0;
    for (std::size_t p = text.find(word); p != std::string::npos; p = text.find(word, p + 1)) ++n;
    return n;
  };
  EXPECT_EQ(count("warning: the tokens file " + tokens + " has mode"), 1u) << text;
  EXPECT_EQ(count("warning: the TLS key"), 1u) << text;
  EXPECT_NE(text.find("warning: the tokens file's directory " + dir.path().string() +
                      " has mode 0777: other users of this machine can put another tokens file in its place"),
            std::string::npos)
      << text;
  if (chowned) {
    EXPECT_NE(text.find("warning: the tokens file " + tokens + " belongs to uid 12345"), std::string::npos) << text;
  }
  ASSERT_EQ(::chmod(dir.path().c_str(), 0755), 0);
  StopServe(served.pid, out);
}

// A tokens file with no token (comments only) starts the server, which can serve only
// /healthz and /metrics: it says so, where a reload refuses such a file.
TEST(CliServe, WarnsOfATokensFileWithNoToken) {
  TempDir dir;
  const std::string tokens = dir.file("tokens"), out = dir.file("serve.out");
  Write(tokens, "# nobody yet\n");
  ASSERT_EQ(::chmod(tokens.c_str(), 0600), 0);
  Served served = StartServe({"--db", dir.file("c.db"), "--tokens", tokens, "--warm-persons", "0"}, out);
  ASSERT_NE(served.port, 0) << ReadFile(out);
  const std::string text = ReadFile(out);
  EXPECT_NE(text.find("warning: the tokens file " + tokens + " holds no token (every /v1 call is refused with 401"),
            std::string::npos)
      << text;
  StopServe(served.pid, out);
}

}  // namespace
}  // namespace caregate::testing
