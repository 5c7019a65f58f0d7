// End-to-end tests of `caregate export` (spec section 7, docs/export.md): the built
// binary is run on extracts made by `caregate synth`, with malformed lines mixed in,
// killed with SIGKILL at several points and run again.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <libxml/parser.h>
#include <libxml/tree.h>
#include <libxml/xmlschemas.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <regex>
#include <set>
#include <sstream>
#include <thread>

#include "caregate/audit/audit_log.h"
#include "caregate/core/hash.h"
#include "caregate/export/warehouse.h"
#include "caregate/format/json.h"
#include "caregate/store/database.h"

namespace caregate::exporter {
namespace {

namespace fs = std::filesystem;

std::string ReadFile(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void WriteFile(const fs::path& p, const std::string& s) { std::ofstream(p, std::ios::binary) << s; }

std::vector<std::string> Lines(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  std::string l;
  while (std::getline(ss, l)) out.push_back(l);
  return out;
}

std::string JoinLines(const std::vector<std::string>& lines) {
  std::string s;
  for (const auto& l : lines) s += l + "\n";
  return s;
}

struct Proc {
  bool exited = false;
  int code = -1;
  int signal = 0;
  std::string out, err;
};

struct RunOptions {
  std::vector<std::string> env;  // NAME=value, added to the environment
  int kill_after_ms = -1;        // SIGKILL from outside after this long
  rlim_t file_size_limit = 0;    // RLIMIT_FSIZE for the child (0: none), SIGXFSZ ignored
  std::string stdin_path;        // the child's standard input (default: the test's)
};

class ExportTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/caregate-export-test-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    std::error_code ec;
    if (!HasFailure()) fs::remove_all(dir_, ec);
    else std::fprintf(stderr, "test files kept in %s\n", dir_.c_str());
  }

  Proc Run(const std::vector<std::string>& args, const RunOptions& o = {}) {
    static int n = 0;
    fs::path out = dir_ / ("stdout." + std::to_string(++n)), err = dir_ / ("stderr." + std::to_string(n));
    std::vector<std::string> argv_s = {CAREGATE_BIN};
    argv_s.insert(argv_s.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (auto& a : argv_s) argv.push_back(a.data());
    argv.push_back(nullptr);
    std::vector<std::string> env_s;
    for (char** e = environ; *e; ++e) {
      std::string v = *e;
      if (v.starts_with("CAREGATE_EXPORT_TEST_")) continue;
      // A variable the test sets replaces the inherited one (getenv finds the first).
      const std::string name = v.substr(0, v.find('=') + 1);
      if (std::any_of(o.env.begin(), o.env.end(), [&](const std::string& x) { return x.starts_with(name); }))
        continue;
      env_s.push_back(v);
    }
    env_s.insert(env_s.end(), o.env.begin(), o.env.end());
    std::vector<char*> envp;
    for (auto& e : env_s) envp.push_back(e.data());
    envp.push_back(nullptr);
    std::string out_s = out.string(), err_s = err.string();
    pid_t pid = ::fork();
    if (pid == 0) {
      int fo = ::open(out_s.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      int fe = ::open(err_s.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      ::dup2(fo, 1);
      ::dup2(fe, 2);
      if (!o.stdin_path.empty()) ::dup2(::open(o.stdin_path.c_str(), O_RDONLY), 0);
      if (o.file_size_limit) {
        ::signal(SIGXFSZ, SIG_IGN);
        struct rlimit rl {o.file_size_limit, o.file_size_limit};
        ::setrlimit(RLIMIT_FSIZE, &rl);
      }
      ::execve(argv[0], argv.data(), envp.data());
      ::_exit(127);
    }
    if (o.kill_after_ms >= 0) {
      std::this_thread::sleep_for(std::chrono::milliseconds(o.kill_after_ms));
      ::kill(pid, SIGKILL);
    }
    int status = 0;
    ::waitpid(pid, &status, 0);
    Proc p;
    p.exited = WIFEXITED(status);
    if (p.exited) p.code = WEXITSTATUS(status);
    if (WIFSIGNALED(status)) p.signal = WTERMSIG(status);
    p.out = ReadFile(out);
    p.err = ReadFile(err);
    return p;
  }

  std::string Synth(int records, int seed, int invalid_every = 0) {
    fs::path f = dir_ / ("synth-" + std::to_string(records) + "-" + std::to_string(seed) + "-" +
                         std::to_string(invalid_every) + ".ndjson");
    std::vector<std::string> args = {"synth", "--records", std::to_string(records), "--seed", std::to_string(seed),
                                     "--format", "cis", "--out", f.string()};
    if (invalid_every) {
      args.push_back("--invalid-every");
      args.push_back(std::to_string(invalid_every));
    }
    Proc p = Run(args);
    EXPECT_EQ(p.code, 0) << p.err;
    return ReadFile(f);
  }

  Proc Export(const fs::path& in, const fs::path& out, const fs::path& db, std::vector<std::string> extra = {},
              const RunOptions& o = {}) {
    std::vector<std::string> args = {"export", "--in", in.string(), "--out", out.string(), "--db", db.string()};
    args.insert(args.end(), extra.begin(), extra.end());
    return Run(args, o);
  }

  fs::path dir_;
};

// --- helpers over the outputs ---------------------------------------------------------

SourceNode Manifest(const fs::path& out) {
  auto m = format::ParseJson(ReadFile(out / "manifest.json"));
  EXPECT_TRUE(m.ok()) << (m.ok() ? "" : m.errors()[0].problem);
  return m.ok() ? m.value() : SourceNode{};
}

std::uint64_t Count(const SourceNode& manifest, std::string_view name) {
  const SourceNode* c = manifest.child("counts");
  const SourceNode* v = c ? c->child(name) : nullptr;
  return v ? std::stoull(v->value) : ~0ull;
}

// Every output file (relative path) -> bytes, without the manifest.
std::map<std::string, std::string> DataFiles(const fs::path& out) {
  std::map<std::string, std::string> files;
  for (const auto& e : fs::recursive_directory_iterator(out)) {
    if (!e.is_regular_file()) continue;
    std::string rel = fs::relative(e.path(), out).generic_string();
    if (rel == "manifest.json") continue;
    files[rel] = ReadFile(e.path());
  }
  return files;
}

// The manifest without its two wall-clock fields.
std::string ManifestWithoutTimes(const fs::path& out) {
  std::string m = ReadFile(out / "manifest.json");
  std::string kept;
  for (const auto& l : Lines(m))
    if (l.find("\"started_at\"") == std::string::npos && l.find("\"finished_at\"") == std::string::npos)
      kept += l + "\n";
  return kept;
}

// RFC 4180 reader: rows of fields; false when the text is not valid CSV.
bool ParseCsv(const std::string& s, std::vector<std::vector<std::string>>& rows) {
  std::vector<std::string> row;
  std::string field;
  std::size_t i = 0;
  bool quoted = false, in_field = false;
  while (i < s.size()) {
    char c = s[i];
    if (quoted) {
      if (c == '"') {
        if (i + 1 < s.size() && s[i + 1] == '"') {
          field += '"';
          i += 2;
          continue;
        }
        quoted = false;
        ++i;
        continue;
      }
      field += c;
      ++i;
      continue;
    }
    if (c == '"') {
      if (in_field && !field.empty()) return false;
      quoted = true;
      in_field = true;
      ++i;
    } else if (c == ',') {
      row.push_back(field);
      field.clear();
      in_field = false;
      ++i;
    } else if (c == '\r') {
      if (i + 1 >= s.size() || s[i + 1] != '\n') return false;
      row.push_back(field);
      rows.push_back(row);
      row.clear();
      field.clear();
      in_field = false;
      i += 2;
    } else if (c == '\n') {
      return false;  // bare LF outside quotes: not RFC 4180
    } else {
      field += c;
      in_field = true;
      ++i;
    }
  }
  return !quoted && row.empty() && field.empty();
}

std::set<std::string> PersonKeys(const fs::path& out) {
  std::vector<std::vector<std::string>> rows;
  EXPECT_TRUE(ParseCsv(ReadFile(out / "warehouse" / "persons.csv"), rows));
  std::set<std::string> keys;
  for (std::size_t i = 1; i < rows.size(); ++i) EXPECT_TRUE(keys.insert(rows[i][0]).second) << rows[i][0];
  return keys;
}

std::set<std::string> S1Ids(const fs::path& out) {
  std::set<std::string> ids;
  std::string s = ReadFile(out / "systmone-import.xml");
  std::regex re("<LocalAuthorityIdentifier>([^<]*)</LocalAuthorityIdentifier>");
  for (auto it = std::sregex_iterator(s.begin(), s.end(), re); it != std::sregex_iterator(); ++it)
    ids.insert("cis:" + (*it)[1].str());
  return ids;
}

std::string CisId(const std::string& line) {
  std::smatch m;
  static const std::regex re("\"LA_Person_Unique_Identifier\":\"([^\"]*)\"");
  return std::regex_search(line, m, re) ? "cis:" + m[1].str() : std::string();
}

std::int64_t DbCount(const fs::path& db, const std::string& sql) {
  store::Database d(db.string());
  auto q = d.Prepare(sql);
  EXPECT_TRUE(q.Step());
  return q.ColumnInt64(0);
}

// Well-formed, the right root, and valid against schemas/systmone.xsd when present.
void CheckSystmOneFile(const fs::path& file, std::uint64_t expected_records) {
  xmlDocPtr doc = xmlReadFile(file.c_str(), nullptr, XML_PARSE_NONET);
  ASSERT_NE(doc, nullptr) << file << " is not well-formed XML";
  xmlNodePtr root = xmlDocGetRootElement(doc);
  ASSERT_NE(root, nullptr);
  EXPECT_STREQ(reinterpret_cast<const char*>(root->name), "ClientIntegrationBatch");
  std::uint64_t n = 0;
  for (xmlNodePtr c = root->children; c; c = c->next)
    if (c->type == XML_ELEMENT_NODE) {
      EXPECT_STREQ(reinterpret_cast<const char*>(c->name), "ClientIntegrationResponse");
      ++n;
    }
  EXPECT_EQ(n, expected_records);
  fs::path xsd = fs::path(CAREGATE_SOURCE_DIR) / "schemas" / "systmone.xsd";
  if (fs::exists(xsd) && fs::file_size(xsd) > 0) {
    xmlSchemaParserCtxtPtr pctx = xmlSchemaNewParserCtxt(xsd.c_str());
    xmlSchemaPtr schema = xmlSchemaParse(pctx);
    ASSERT_NE(schema, nullptr) << "schemas/systmone.xsd does not load";
    xmlSchemaValidCtxtPtr vctx = xmlSchemaNewValidCtxt(schema);
    std::string errors;
    xmlSchemaSetValidStructuredErrors(
        vctx,
        [](void* ctx, xmlErrorPtr e) {
          auto* s = static_cast<std::string*>(ctx);
          if (s->size() < 2000) *s += "line " + std::to_string(e->line) + ": " + (e->message ? e->message : "") + "\n";
        },
        &errors);
    EXPECT_EQ(xmlSchemaValidateDoc(vctx, doc), 0) << errors;
    xmlSchemaFreeValidCtxt(vctx);
    xmlSchemaFree(schema);
    xmlSchemaFreeParserCtxt(pctx);
  }
  xmlFreeDoc(doc);
}

// The manifest lists exactly the files in the directory, with their sizes and hashes.
void CheckManifestHashes(const fs::path& out) {
  SourceNode m = Manifest(out);
  const SourceNode* outputs = m.child("outputs");
  ASSERT_NE(outputs, nullptr);
  std::set<std::string> listed;
  for (const auto& o : outputs->children) {
    std::string file = o.child("file")->value;
    listed.insert(file);
    EXPECT_EQ(o.child("sha256")->value, Sha256File((out / file).string())) << file;
    EXPECT_EQ(std::stoull(o.child("bytes")->value), fs::file_size(out / file)) << file;
  }
  std::set<std::string> expected = {"systmone-import.xml", "rejects.ndjson"};
  for (const auto& t : WarehouseTables()) expected.insert("warehouse/" + t.file());
  EXPECT_EQ(listed, expected);
  std::set<std::string> present;
  for (const auto& e : fs::recursive_directory_iterator(out))
    if (e.is_regular_file()) present.insert(fs::relative(e.path(), out).generic_string());
  expected.insert("manifest.json");
  EXPECT_EQ(present, expected) << "the output directory holds exactly the files of spec section 7";
}

void CheckCsvTables(const fs::path& out) {
  for (const auto& t : WarehouseTables()) {
    std::vector<std::vector<std::string>> rows;
    std::string text = ReadFile(out / "warehouse" / t.file());
    ASSERT_TRUE(ParseCsv(text, rows)) << t.file() << " is not RFC 4180";
    ASSERT_FALSE(rows.empty()) << t.file();
    EXPECT_EQ(rows[0].size(), t.columns.size()) << t.file();
    for (const auto& r : rows) EXPECT_EQ(r.size(), rows[0].size()) << t.file();
  }
}

// A generated extract with malformed lines mixed in; `bad` gets their line numbers.
std::string MixedExtract(const std::string& synth, int invalid_every, std::set<std::uint64_t>& bad,
                         std::uint64_t& read) {
  std::vector<std::string> in = Lines(synth), out;
  const std::vector<std::string> extra = {
      "this is not JSON",
      "{\"Record_Type\":\"CIS_Client\",\"LA_Person_Unique_Identifier\":\"LCC-X1\",\"Surname\":\"\xff\xfe\"}",
      "[1,2,3]",
      "{\"Record_Type\":\"CIS_Client\",\"Surname\":\"Nobody\"}",
      "{\"Record_Type\":\"CIS_Client\",\"LA_Person_Unique_Identifier\":\"LCC-X2\",\"NHS_Number\":\"123\"",
      "{\"Record_Type\":\"CIS_Client\",\"LA_Person_Unique_Identifier\":\"LCC-X3\",\"Date_of_Birth\":\"2001-13-01\"}",
  };
  std::size_t next_extra = 0;
  for (std::size_t i = 0; i < in.size(); ++i) {
    if (i % 97 == 50 && next_extra < extra.size()) {
      out.push_back(extra[next_extra++]);
      bad.insert(out.size());
    }
    if (i % 211 == 100) out.push_back("   ");  // blank: not a record, not a reject
    out.push_back(in[i]);
    if (invalid_every && (i + 1) % static_cast<std::size_t>(invalid_every) == 0) bad.insert(out.size());
  }
  read = 0;
  for (const auto& l : out)
    if (l.find_first_not_of(" \t") != std::string::npos) ++read;
  return JoinLines(out);
}

// --- tests ------------------------------------------------------------------------------

TEST_F(ExportTest, CountsRejectsHashesAndFormats) {
  std::set<std::uint64_t> bad;
  std::uint64_t read = 0;
  std::string extract = MixedExtract(Synth(1000, 11, 29), 29, bad, read);
  WriteFile(dir_ / "in.ndjson", extract);
  std::uint64_t withheld = 0;
  auto lines = Lines(extract);
  for (std::size_t i = 0; i < lines.size(); ++i)
    if (!bad.count(i + 1) && lines[i].find("\"Consent_To_Share\":\"No\"") != std::string::npos) ++withheld;

  Proc p = Export(dir_ / "in.ndjson", dir_ / "out", dir_ / "state.db", {"--run-date", "2024-05-01"});
  ASSERT_EQ(p.code, 0) << p.err;
  EXPECT_NE(p.out.find("caregate export: run 2024-05-01 completed: read " + std::to_string(read)), std::string::npos)
      << p.out;
  EXPECT_EQ(std::count(p.out.begin(), p.out.end(), '\n'), 1) << "one summary line";
  const fs::path out = dir_ / "out";
  SourceNode m = Manifest(out);
  EXPECT_EQ(m.child("run_date")->value, "2024-05-01");
  EXPECT_EQ(m.child("input")->child("sha256")->value, Sha256File((dir_ / "in.ndjson").string()));
  EXPECT_EQ(Count(m, "read"), read);
  EXPECT_EQ(Count(m, "rejected"), bad.size());
  EXPECT_EQ(Count(m, "withheld"), withheld);
  EXPECT_EQ(Count(m, "unchanged"), 0u);
  EXPECT_EQ(Count(m, "exported"), read - bad.size() - withheld);
  EXPECT_GT(withheld, 0u);

  // Every bad line, and only those, in rejects.ndjson, each with its errors.
  std::set<std::uint64_t> rejected;
  for (const auto& l : Lines(ReadFile(out / "rejects.ndjson"))) {
    auto r = format::ParseJson(l);
    ASSERT_TRUE(r.ok()) << l;
    std::uint64_t n = std::stoull(r->child("line")->value);
    rejected.insert(n);
    const SourceNode* errors = r->child("errors");
    ASSERT_TRUE(errors && errors->kind == NodeKind::kArray && !errors->children.empty()) << l;
    for (const auto& e : errors->children) {
      EXPECT_NE(e.child("path"), nullptr) << l;
      EXPECT_FALSE(e.child("problem")->value.empty()) << l;
    }
    const SourceNode* id = r->child("person_id");
    ASSERT_NE(id, nullptr) << l;
    std::string expected_id = CisId(lines[n - 1]);
    if (!expected_id.empty()) {
      EXPECT_EQ(id->value, expected_id) << l;
    } else {
      EXPECT_EQ(id->kind, NodeKind::kNull) << l;
    }
  }
  EXPECT_EQ(rejected, bad);

  CheckManifestHashes(out);
  CheckSystmOneFile(out / "systmone-import.xml", Count(m, "exported"));
  CheckCsvTables(out);
  EXPECT_EQ(PersonKeys(out).size(), Count(m, "exported") + withheld);
  EXPECT_EQ(DbCount(dir_ / "state.db", "SELECT count(*) FROM export_state"),
            static_cast<std::int64_t>(Count(m, "exported") + withheld));
}

// A reject line names the person by the record's own ids. For a record the mapping
// refuses (well-formed JSON) the id is read as JSON, escapes decoded; for a line that is
// not JSON it is read as written, and only when it has no escape.
TEST_F(ExportTest, RejectLinesNameThePersonByTheDecodedId) {
  auto lines = Lines(Synth(4, 9));
  std::regex id("\"LA_Person_Unique_Identifier\":\"[^\"]*\"");
  std::regex gender("\"Gender\":(\"[^\"]*\"|null)");
  // 1: mapping refuses it (a gender outside the code list); its id written with escapes.
  lines[0] = std::regex_replace(lines[0], id, "\"LA_Person_Unique_Identifier\":\"LCC-\\u0039\\u00e9 \"");
  lines[0] = std::regex_replace(lines[0], gender, "\"Gender\":\"Q\"");
  // 2: the same refusal, plain id.
  lines[1] = std::regex_replace(lines[1], id, "\"LA_Person_Unique_Identifier\":\"LCC-77\"");
  lines[1] = std::regex_replace(lines[1], gender, "\"Gender\":\"Q\"");
  // 3: not JSON (truncated), plain id: named as written.
  lines[2] = std::regex_replace(lines[2], id, "\"LA_Person_Unique_Identifier\":\"LCC-78\"");
  lines[2] = lines[2].substr(0, lines[2].size() - 5);
  // 4: not JSON, id with an escape: not named.
  lines[3] = std::regex_replace(lines[3], id, "\"LA_Person_Unique_Identifier\":\"LCC-\\u0039\"");
  lines[3] = lines[3].substr(0, lines[3].size() - 5);
  WriteFile(dir_ / "in.ndjson", JoinLines(lines));
  Proc p = Export(dir_ / "in.ndjson", dir_ / "out", dir_ / "state.db", {"--run-date", "2024-05-01"});
  ASSERT_EQ(p.code, 0) << p.err;
  std::vector<std::string> names;
  for (const auto& l : Lines(ReadFile(dir_ / "out" / "rejects.ndjson"))) {
    auto r = format::ParseJson(l);
    ASSERT_TRUE(r.ok()) << l;
    const SourceNode* n = r->child("person_id");
    ASSERT_NE(n, nullptr) << l;
    names.push_back(n->kind == NodeKind::kNull ? "null" : n->value);
  }
  EXPECT_EQ(names, (std::vector<std::string>{"cis:LCC-9\xC3\xA9", "cis:LCC-77", "cis:LCC-78", "null"}));
}

// The id a reject names is the person's own: a top-level member, never one of the same
// name nested in an event or a note of a line that is not JSON; and an NHS number that
// fails its checks names nobody (the error then says the record identifies nobody).
TEST_F(ExportTest, RejectLinesNameOnlyTheTopLevelIdsAndOnlyAValidNhsNumber) {
  const std::vector<std::string> lines = {
      // not JSON (cut short); a nested id before the person's own
      R"({"Record_Type":"CIS_Client","Events":[{"LA_Person_Unique_Identifier":"NESTED"}],)"
      R"("LA_Person_Unique_Identifier":"TOP","Gender":"1")",
      // not JSON; only a nested id
      R"({"Record_Type":"CIS_Client","Case_Notes":[{"LA_Person_Unique_Identifier":"NESTED"}],"Gender":)",
      // JSON, refused: its only id is an NHS number failing Modulus 11
      R"({"Record_Type":"CIS_Client","NHS_Number":"9991000012"})",
      // not JSON; an NHS number failing Modulus 11, then one that is valid but nested
      R"({"Record_Type":"CIS_Client","NHS_Number":"9991000012","X":{"NHS_Number":"9912003888"},)",
      // not JSON; a valid NHS number
      R"({"Record_Type":"CIS_Client","NHS_Number":"9912003888",)"};
  WriteFile(dir_ / "in.ndjson", JoinLines(lines));
  Proc p = Export(dir_ / "in.ndjson", dir_ / "out", dir_ / "state.db", {"--run-date", "2024-05-01"});
  ASSERT_EQ(p.code, 0) << p.err;
  std::vector<std::string> names;
  for (const auto& l : Lines(ReadFile(dir_ / "out" / "rejects.ndjson"))) {
    auto r = format::ParseJson(l);
    ASSERT_TRUE(r.ok()) << l;
    const SourceNode* n = r->child("person_id");
    ASSERT_NE(n, nullptr) << l;
    names.push_back(n->kind == NodeKind::kNull ? "null" : n->value);
  }
  EXPECT_EQ(names, (std::vector<std::string>{"cis:TOP", "null", "null", "null", "nhs:9912003888"}));
}

// A record longer than the 1 MiB limit is rejected the same way wherever it lies in
// the file, whether or not one of the reader's reads holds all of it (lines of 1 and
// 2.5 MiB at offsets up to 4.6 MiB). The line is not kept, but its first 4 KiB are, so
// the reject names the person when the id comes early; the records around it go through.
TEST_F(ExportTest, OverLongLinesAreRejectedAlikeWherever) {
  auto lines = Lines(Synth(6, 5));
  const std::string ids[2] = {CisId(lines[1]), CisId(lines[3])};
  ASSERT_FALSE(ids[0].empty() || ids[1].empty());
  for (std::size_t i : {1, 3}) {
    lines[i] = lines[i].substr(0, lines[i].size() - 1) + ",\"Padding\":\"" + std::string(1 << 20, 'p') + "\"}";
  }
  lines[3] += "\r";  // CRLF
  // The last one's padding comes first, so its ids lie beyond the head kept: not named.
  lines[4] = "{\"Padding\":\"" + std::string(5 << 19, 'p') + "\"," + lines[4].substr(1);
  WriteFile(dir_ / "in.ndjson", JoinLines(lines));
  Proc p = Export(dir_ / "in.ndjson", dir_ / "out", dir_ / "state.db", {"--run-date", "2024-05-01"});
  ASSERT_EQ(p.code, 0) << p.err;
  SourceNode m = Manifest(dir_ / "out");
  EXPECT_EQ(Count(m, "read"), 6u);
  EXPECT_EQ(Count(m, "rejected"), 3u);
  const std::vector<std::string> got = Lines(ReadFile(dir_ / "out" / "rejects.ndjson"));
  const auto reject = [](int line, const std::string& id) {
    return "{\"line\":" + std::to_string(line) + ",\"person_id\":" + id +
           ",\"errors\":[{\"path\":\"\",\"problem\":\"line longer than 1048576 bytes, the limit for one record\"}]}";
  };
  EXPECT_EQ(got, (std::vector<std::string>{reject(2, "\"" + ids[0] + "\""), reject(4, "\"" + ids[1] + "\""),
                                           reject(5, "null")}));
}

TEST_F(ExportTest, ConsentNoIsWithheldFromSystmOneButKeptInTheWarehouse) {
  auto lines = Lines(Synth(3, 5));
  std::regex consent("\"Consent_To_Share\":(\"[^\"]*\"|null)");
  lines[0] = std::regex_replace(lines[0], consent, "\"Consent_To_Share\":\"No\"");
  lines[1] = std::regex_replace(lines[1], consent, "\"Consent_To_Share\":\"Not asked\"");
  lines[2] = std::regex_replace(lines[2], consent, "\"Consent_To_Share\":\"Yes\"");
  WriteFile(dir_ / "in.ndjson", JoinLines(lines));
  Proc p = Export(dir_ / "in.ndjson", dir_ / "out", dir_ / "state.db", {"--run-date", "2024-05-01"});
  ASSERT_EQ(p.code, 0) << p.err;
  SourceNode m = Manifest(dir_ / "out");
  EXPECT_EQ(Count(m, "withheld"), 1u);
  EXPECT_EQ(Count(m, "exported"), 2u);
  EXPECT_EQ(Count(m, "rejected"), 0u);
  EXPECT_EQ(S1Ids(dir_ / "out"), (std::set<std::string>{CisId(lines[1]), CisId(lines[2])}));
  EXPECT_EQ(PersonKeys(dir_ / "out"), (std::set<std::string>{CisId(lines[0]), CisId(lines[1]), CisId(lines[2])}));
  EXPECT_EQ(ReadFile(dir_ / "out" / "rejects.ndjson"), "");
}

// The SystmOne file is the council's records going to health, the other organisation:
// a sensitive record goes without its address, phone numbers and email (spec 8's rule,
// as consent follows spec 8 here too). The council's own warehouse keeps them.
TEST_F(ExportTest, SensitiveRecordsGoToSystmOneWithoutContactDetails) {
  const std::string base =
      R"({"Record_Type":"CIS_Client","LA_Person_Unique_Identifier":"C-%d","Surname":"Smith",)"
      R"("Address":{"Line_1":"Flat %d, Secret House","Town":"Leeds","Postcode":"LS9 9ZZ"},)"
      R"("Phone_Home":"0113 999 %04d","Phone_Mobile":"07700 90%04d","Email":"p%d@example.net",)"
      R"("Consent_To_Share":"Yes","Sensitive_Record":%s})";
  auto line = [&](int i, const char* sensitive) {
    char buf[512];
    std::snprintf(buf, sizeof buf, base.c_str(), i, i, i, i, i, sensitive);
    return std::string(buf);
  };
  WriteFile(dir_ / "in.ndjson", line(1, "true") + "\n" + line(2, "false") + "\n");
  Proc p = Export(dir_ / "in.ndjson", dir_ / "out", dir_ / "state.db", {"--run-date", "2024-05-01"});
  ASSERT_EQ(p.code, 0) << p.err;
  const std::string s1 = ReadFile(dir_ / "out" / "systmone-import.xml");
  EXPECT_EQ(S1Ids(dir_ / "out"), (std::set<std::string>{"cis:C-1", "cis:C-2"}));
  for (const char* secret : {"Flat 1, Secret House", "0113 999 0001", "07700 900001", "p1@example.net"})
    EXPECT_EQ(s1.find(secret), std::string::npos) << secret;
  for (const char* open : {"Flat 2, Secret House", "0113 999 0002", "07700 900002", "p2@example.net"})
    EXPECT_NE(s1.find(open), std::string::npos) << open;
  const std::string persons = ReadFile(dir_ / "out" / "warehouse" / "persons.csv");
  for (const char* kept : {"Flat 1, Secret House", "0113 999 0001", "p1@example.net"})
    EXPECT_NE(persons.find(kept), std::string::npos) << kept;
}

TEST_F(ExportTest, RerunOfACompletedRunChangesNothing) {
  WriteFile(dir_ / "in.ndjson", Synth(400, 2, 50));
  Proc first = Export(dir_ / "in.ndjson", dir_ / "out", dir_ / "state.db", {"--run-date", "2024-05-01"});
  ASSERT_EQ(first.code, 0) << first.err;
  std::map<std::string, fs::file_time_type> times;
  for (const auto& e : fs::recursive_directory_iterator(dir_ / "out"))
    times[e.path().string()] = fs::last_write_time(e.path());
  std::string manifest = ReadFile(dir_ / "out" / "manifest.json");
  auto files = DataFiles(dir_ / "out");
  std::this_thread::sleep_for(std::chrono::milliseconds(20));

  Proc again = Export(dir_ / "in.ndjson", dir_ / "out", dir_ / "state.db", {"--run-date", "2024-05-01"});
  ASSERT_EQ(again.code, 0) << again.err;
  EXPECT_NE(again.out.find("already completed"), std::string::npos) << again.out;
  EXPECT_NE(again.out.find("nothing changed"), std::string::npos) << again.out;
  EXPECT_EQ(ReadFile(dir_ / "out" / "manifest.json"), manifest);
  EXPECT_EQ(DataFiles(dir_ / "out"), files);
  for (const auto& [path, t] : times) EXPECT_EQ(fs::last_write_time(path), t) << path;
  EXPECT_EQ(DbCount(dir_ / "state.db", "SELECT count(*) FROM export_runs"), 1);
  EXPECT_EQ(DbCount(dir_ / "state.db", "SELECT count(*) FROM audit_events"), 1);  // no event for the rerun
}

// The same extract again under a new run date (a retry after midnight with the default
// run date, say) is a new run with nothing changed: it runs, and says on stderr what it
// did to the night it repeats. A changed extract, or the same run again, says nothing.
TEST_F(ExportTest, TheSameExtractUnderANewRunDateIsNamedOnStderr) {
  WriteFile(dir_ / "in.ndjson", Synth(200, 2, 40));
  Proc first = Export(dir_ / "in.ndjson", dir_ / "out", dir_ / "state.db", {"--run-date", "2024-05-01"});
  ASSERT_EQ(first.code, 0) << first.err;
  EXPECT_EQ(first.err.find("warning"), std::string::npos) << first.err;
  Proc again = Export(dir_ / "in.ndjson", dir_ / "out", dir_ / "state.db", {"--run-date", "2024-05-01"});
  ASSERT_EQ(again.code, 0) << again.err;
  EXPECT_EQ(again.err.find("warning"), std::string::npos) << again.err;
  Proc retry = Export(dir_ / "in.ndjson", dir_ / "out", dir_ / "state.db", {"--run-date", "2024-05-02"});
  ASSERT_EQ(retry.code, 0) << retry.err;
  EXPECT_EQ(Count(Manifest(dir_ / "out"), "exported"), 0u);
  EXPECT_NE(retry.err.find("warning: the extract is byte for byte run 2024-05-01's, so run 2024-05-02 found "
                           "nothing changed"),
            std::string::npos)
      << retry.err;
  EXPECT_NE(retry.err.find("if this was a retry of 2024-05-01 and SystmOne had not taken its files, send "
                           "everything again with --full"),
            std::string::npos)
      << retry.err;
  // Asked for as that night again, the old run cannot rebuild its files (the state moved
  // on), so --full, as the warning says, is the way back.
  Proc repeat = Export(dir_ / "in.ndjson", dir_ / "out", dir_ / "state.db", {"--run-date", "2024-05-01"});
  EXPECT_EQ(repeat.code, 1);
  EXPECT_NE(repeat.err.find("export again with --full"), std::string::npos) << repeat.err;
  // Into another directory, the night's files are untouched: nothing to say.
  Proc elsewhere = Export(dir_ / "in.ndjson", dir_ / "out-04", dir_ / "state.db", {"--run-date", "2024-05-04"});
  ASSERT_EQ(elsewhere.code, 0) << elsewhere.err;
  EXPECT_EQ(elsewhere.err.find("warning"), std::string::npos) << elsewhere.err;
  WriteFile(dir_ / "in3.ndjson", Synth(200, 3, 40));
  Proc next = Export(dir_ / "in3.ndjson", dir_ / "out", dir_ / "state.db", {"--run-date", "2024-05-03"});
  ASSERT_EQ(next.code, 0) << next.err;
  EXPECT_EQ(next.err.find("warning"), std::string::npos) << next.err;
}

// Every completed run is one audit event (docs/export.md, "The audit trail"): who ran it,
// the counts, and the SHA-256 of the input and of the manifest, which ties the event to
// the exact files; recorded in the run's own commit, in a chain that verifies, beside the
// events of the other subcommands on the same database.
TEST_F(ExportTest, EachCompletedRunIsOneAuditEvent) {
  WriteFile(dir_ / "in.ndjson", Synth(300, 2, 40));
  const fs::path db = dir_ / "state.db";
  Proc first = Run({"export", "--in", (dir_ / "in.ndjson").string(), "--out", (dir_ / "out").string(), "--db",
                    db.string(), "--run-date", "2024-05-01"},
                   {{"USER=amy.night"}, -1, 0, {}});
  ASSERT_EQ(first.code, 0) << first.err;
  const std::string manifest = ReadFile(dir_ / "out" / "manifest.json");
  auto events = audit::QueryAuditTrail(db.string(), {});
  ASSERT_EQ(events.size(), 1u);
  const audit::AuditEvent& e = events[0];
  EXPECT_EQ(e.user, "amy.night");
  EXPECT_EQ(e.role, "service");
  EXPECT_EQ(e.action, "export");
  EXPECT_EQ(e.view, "systmone");
  EXPECT_EQ(e.outcome, "completed");
  EXPECT_EQ(e.request_id, "export-run-" + std::to_string(DbCount(db, "SELECT max(seq) FROM export_runs")));
  EXPECT_TRUE(e.person_ids.empty());
  const auto m = Manifest(dir_ / "out");
  for (const char* count : {"read", "exported", "unchanged", "rejected", "withheld"})
    EXPECT_NE(e.detail.find(std::string(count) + " " + std::to_string(Count(m, count))), std::string::npos)
        << count << ": " << e.detail;
  EXPECT_NE(e.detail.find("run date 2024-05-01:"), std::string::npos) << e.detail;
  EXPECT_NE(e.detail.find("input SHA-256 " + Sha256File((dir_ / "in.ndjson").string())), std::string::npos)
      << e.detail;
  EXPECT_NE(e.detail.find("manifest SHA-256 " + Sha256Hex(manifest)), std::string::npos) << e.detail;

  // The next night, with --full, and an audit report of the database.
  WriteFile(dir_ / "in2.ndjson", Synth(300, 3, 40));
  Proc second = Export(dir_ / "in2.ndjson", dir_ / "out2", db, {"--run-date", "2024-05-02", "--full"});
  ASSERT_EQ(second.code, 0) << second.err;
  events = audit::QueryAuditTrail(db.string(), {});
  ASSERT_EQ(events.size(), 2u);
  EXPECT_NE(events[1].detail.find("run date 2024-05-02 (--full):"), std::string::npos) << events[1].detail;
  Proc verify = Run({"audit", "verify", "--db", db.string()});
  EXPECT_EQ(verify.code, 0) << verify.out << verify.err;
  Proc report = Run({"audit", "report", "--db", db.string()});
  EXPECT_EQ(report.code, 0) << report.err;
  EXPECT_NE(report.out.find("export-run-"), std::string::npos) << report.out;
}

// `--in -` is standard input, as for translate and ingest: the same outputs as the file.
TEST_F(ExportTest, InDashReadsStandardInput) {
  WriteFile(dir_ / "in.ndjson", Synth(50, 6, 20));
  Proc file = Export(dir_ / "in.ndjson", dir_ / "out-file", dir_ / "file.db", {"--run-date", "2024-05-01"});
  ASSERT_EQ(file.code, 0) << file.err;
  RunOptions from_stdin;
  from_stdin.stdin_path = (dir_ / "in.ndjson").string();
  Proc dash = Run({"export", "--in", "-", "--out", (dir_ / "out-dash").string(), "--db", (dir_ / "dash.db").string(),
                   "--run-date", "2024-05-01"},
                  from_stdin);
  ASSERT_EQ(dash.code, 0) << dash.err;
  EXPECT_NE(dash.out.find("completed: read 50"), std::string::npos) << dash.out;
  EXPECT_EQ(ReadFile(dir_ / "out-dash" / "systmone-import.xml"), ReadFile(dir_ / "out-file" / "systmone-import.xml"));
  EXPECT_EQ(DataFiles(dir_ / "out-dash"), DataFiles(dir_ / "out-file"));
}

// An extract fed through a pipe (`zcat extract.gz | caregate export --in /dev/stdin`)
// has no size to match before it is read, and it cannot be read twice. The rerun of a
// completed night is recognised once the input has been read and hashed: its own files
// are dropped unpublished and nothing is committed. (Before, it published a second,
// empty delta run over the night's files.) A different extract through the same pipe
// is a new run.
TEST_F(ExportTest, RerunThroughAPipeChangesNothing) {
  const fs::path fifo = dir_ / "in.fifo";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  auto through_pipe = [&](const std::string& extract, const std::string& date) {
    std::thread feeder([&] {
      std::ofstream f(fifo, std::ios::binary);
      f << extract;
    });
    Proc p = Export(fifo, dir_ / "out", dir_ / "state.db", {"--run-date", date});
    feeder.join();
    return p;
  };
  const std::string extract = Synth(300, 4, 40);
  Proc first = through_pipe(extract, "2024-05-01");
  ASSERT_EQ(first.code, 0) << first.err;
  EXPECT_NE(first.out.find("completed: read 300"), std::string::npos) << first.out;
  std::map<std::string, fs::file_time_type> times;
  for (const auto& e : fs::recursive_directory_iterator(dir_ / "out"))
    if (e.is_regular_file()) times[e.path().string()] = fs::last_write_time(e.path());
  const std::string manifest = ReadFile(dir_ / "out" / "manifest.json");
  const auto files = DataFiles(dir_ / "out");
  ASSERT_GT(Count(Manifest(dir_ / "out"), "exported"), 0u);
  std::this_thread::sleep_for(std::chrono::milliseconds(20));

  Proc again = through_pipe(extract, "2024-05-01");
  ASSERT_EQ(again.code, 0) << again.err;
  EXPECT_NE(again.out.find("already completed"), std::string::npos) << again.out;
  EXPECT_NE(again.out.find("nothing changed"), std::string::npos) << again.out;
  EXPECT_EQ(ReadFile(dir_ / "out" / "manifest.json"), manifest);
  EXPECT_EQ(DataFiles(dir_ / "out"), files);
  std::size_t entries = 0;
  for (const auto& e : fs::recursive_directory_iterator(dir_ / "out")) {
    if (!e.is_regular_file()) continue;
    ++entries;
    EXPECT_EQ(fs::last_write_time(e.path()), times[e.path().string()]) << e.path();
  }
  EXPECT_EQ(entries, times.size()) << "no partial file left behind";
  EXPECT_EQ(DbCount(dir_ / "state.db", "SELECT count(*) FROM export_runs"), 1);

  auto lines = Lines(extract);
  lines.resize(250);
  Proc other = through_pipe(JoinLines(lines), "2024-05-01");
  ASSERT_EQ(other.code, 0) << other.err;
  EXPECT_NE(other.out.find("completed: read 250"), std::string::npos) << other.out;
  EXPECT_EQ(DbCount(dir_ / "state.db", "SELECT count(*) FROM export_runs"), 2);
}

// The line and content hashes are keyed with the database's own random seed (export
// migration 202). Two databases hold different hashes for the same records and yet the
// outputs are the same bytes; a state written before the migration (hashes of another
// function) makes every record "changed" once, then the delta works as before.
TEST_F(ExportTest, KeyedHashesPerDatabaseAndAStateFromBeforeThemIsWrittenAgainOnce) {
  WriteFile(dir_ / "in.ndjson", Synth(200, 5, 60));
  const std::vector<std::string> night1 = {"--run-date", "2024-05-01"};
  Proc a = Export(dir_ / "in.ndjson", dir_ / "a", dir_ / "a.db", night1);
  Proc b = Export(dir_ / "in.ndjson", dir_ / "b", dir_ / "b.db", night1);
  ASSERT_EQ(a.code, 0) << a.err;
  ASSERT_EQ(b.code, 0) << b.err;
  EXPECT_EQ(DataFiles(dir_ / "a"), DataFiles(dir_ / "b"));
  EXPECT_EQ(ManifestWithoutTimes(dir_ / "a"), ManifestWithoutTimes(dir_ / "b"));
  const std::string seed_sql = "SELECT seed FROM export_hash_seed";
  EXPECT_NE(DbCount(dir_ / "a.db", seed_sql), DbCount(dir_ / "b.db", seed_sql));
  const std::string state_sql = "SELECT sum(hash_lo % 1000003) FROM export_state";
  EXPECT_NE(DbCount(dir_ / "a.db", state_sql), DbCount(dir_ / "b.db", state_sql));
  SourceNode m1 = Manifest(dir_ / "a");
  const std::uint64_t valid = Count(m1, "exported") + Count(m1, "withheld");
  ASSERT_GT(valid, 150u);

  {  // a.db as a binary before migration 202 left it
    store::Database d((dir_ / "a.db").string());
    d.Exec(
        "DELETE FROM schema_migrations WHERE module = 'export' AND version = 202;"
        "DROP TABLE export_hash_seed;"
        "UPDATE export_state SET hash_hi = 1, hash_lo = 2, line_hi = 3, line_lo = 4;");
  }
  Proc a2 = Export(dir_ / "in.ndjson", dir_ / "a2", dir_ / "a.db", {"--run-date", "2024-05-02"});
  ASSERT_EQ(a2.code, 0) << a2.err;
  SourceNode m2 = Manifest(dir_ / "a2");
  EXPECT_EQ(Count(m2, "unchanged"), 0u);
  EXPECT_EQ(Count(m2, "exported") + Count(m2, "withheld"), valid);
  EXPECT_EQ(DbCount(dir_ / "a.db", "SELECT count(*) FROM export_hash_seed"), 1);
  Proc a3 = Export(dir_ / "in.ndjson", dir_ / "a3", dir_ / "a.db", {"--run-date", "2024-05-03"});
  ASSERT_EQ(a3.code, 0) << a3.err;
  SourceNode m3 = Manifest(dir_ / "a3");
  EXPECT_EQ(Count(m3, "unchanged"), valid);
  EXPECT_EQ(Count(m3, "exported") + Count(m3, "withheld"), 0u);
}

TEST_F(ExportTest, OutputsDoNotDependOnTheNumberOfWorkers) {
  WriteFile(dir_ / "in.ndjson", Synth(500, 8, 23));
  Proc a = Export(dir_ / "in.ndjson", dir_ / "a", dir_ / "a.db", {"--run-date", "2024-05-01", "--workers", "1"});
  Proc b = Export(dir_ / "in.ndjson", dir_ / "b", dir_ / "b.db", {"--run-date", "2024-05-01", "--workers", "4"});
  ASSERT_EQ(a.code, 0) << a.err;
  ASSERT_EQ(b.code, 0) << b.err;
  EXPECT_EQ(DataFiles(dir_ / "a"), DataFiles(dir_ / "b"));
  EXPECT_EQ(ManifestWithoutTimes(dir_ / "a"), ManifestWithoutTimes(dir_ / "b"));
}

// kill -9 at several points, then the same command again: the same bytes as a run that
// was never interrupted.
TEST_F(ExportTest, KilledAnywhereThenRerunGivesIdenticalBytes) {
  std::set<std::uint64_t> bad;
  std::uint64_t read = 0;
  WriteFile(dir_ / "in.ndjson", MixedExtract(Synth(900, 4, 41), 41, bad, read));
  // A previous night, so the delta is part of what must come out the same: its state
  // database is copied for every attempt.
  WriteFile(dir_ / "night1.ndjson", Synth(500, 4));
  Proc night1 = Export(dir_ / "night1.ndjson", dir_ / "night1", dir_ / "night1.db", {"--run-date", "2024-05-01"});
  ASSERT_EQ(night1.code, 0) << night1.err;
  auto prepare = [&](const std::string& name) {
    fs::copy_file(dir_ / "night1.db", dir_ / (name + ".db"), fs::copy_options::overwrite_existing);
  };
  const std::vector<std::string> args = {"--run-date", "2024-05-02"};
  prepare("reference");
  Proc ref = Export(dir_ / "in.ndjson", dir_ / "reference", dir_ / "reference.db", args);
  ASSERT_EQ(ref.code, 0) << ref.err;
  const auto ref_files = DataFiles(dir_ / "reference");
  const std::string ref_manifest = ManifestWithoutTimes(dir_ / "reference");
  const auto ref_state = DbCount(dir_ / "reference.db", "SELECT sum(hash_lo % 1000003) FROM export_state");
  ASSERT_GT(Count(Manifest(dir_ / "reference"), "unchanged"), 0u);

  struct Kill {
    std::string name;
    RunOptions options;
  };
  std::vector<Kill> kills = {
      {"after-1-record", {{"CAREGATE_EXPORT_TEST_KILL_AFTER=1"}, -1, 0, {}}},
      {"after-450-records", {{"CAREGATE_EXPORT_TEST_KILL_AFTER=450"}, -1, 0, {}}},
      {"at-last-record", {{"CAREGATE_EXPORT_TEST_KILL_AFTER=" + std::to_string(read - 1)}, -1, 0, {}}},
      {"files-fsynced", {{"CAREGATE_EXPORT_TEST_KILL_AT=finished"}, -1, 0, {}}},
      {"files-published", {{"CAREGATE_EXPORT_TEST_KILL_AT=published"}, -1, 0, {}}},
      {"state-committed", {{"CAREGATE_EXPORT_TEST_KILL_AT=committed"}, -1, 0, {}}},
  };
  std::random_device seed;
  std::mt19937 rng(seed());
  for (int i = 0; i < 2; ++i) {
    int ms = static_cast<int>(rng() % 150);
    kills.push_back({"external-" + std::to_string(ms) + "ms", {{}, ms, 0, {}}});
  }
  for (const auto& k : kills) {
    SCOPED_TRACE(k.name);
    prepare(k.name);
    Proc killed = Export(dir_ / "in.ndjson", dir_ / k.name, dir_ / (k.name + ".db"), args, k.options);
    if (k.options.kill_after_ms < 0) {
      ASSERT_EQ(killed.signal, SIGKILL) << killed.err;
    }
    Proc rerun = Export(dir_ / "in.ndjson", dir_ / k.name, dir_ / (k.name + ".db"), args);
    ASSERT_EQ(rerun.code, 0) << rerun.err;
    EXPECT_EQ(DataFiles(dir_ / k.name), ref_files);
    EXPECT_EQ(ManifestWithoutTimes(dir_ / k.name), ref_manifest);
    EXPECT_EQ(DbCount(dir_ / (k.name + ".db"), "SELECT count(*) FROM export_runs"), 2);
    // Night 1's event and this night's, once, whatever the kill interrupted.
    EXPECT_EQ(DbCount(dir_ / (k.name + ".db"), "SELECT count(*) FROM audit_events WHERE action = 'export'"), 2);
    EXPECT_EQ(DbCount(dir_ / (k.name + ".db"), "SELECT sum(hash_lo % 1000003) FROM export_state"), ref_state);
    if (k.name == "state-committed") {
      // Killed between the commit and the manifest: the rerun restores the manifest
      // from the database, and a third run finds nothing to do.
      EXPECT_NE(rerun.out.find("manifest.json restored"), std::string::npos) << rerun.out;
      Proc third = Export(dir_ / "in.ndjson", dir_ / k.name, dir_ / (k.name + ".db"), args);
      EXPECT_EQ(third.code, 0) << third.err;
      EXPECT_NE(third.out.find("nothing changed"), std::string::npos) << third.out;
      EXPECT_EQ(DbCount(dir_ / (k.name + ".db"), "SELECT count(*) FROM audit_events"), 2);
    }
  }
}

TEST_F(ExportTest, NextNightExportsOnlyWhatChanged) {
  auto night1 = Lines(Synth(600, 3));
  auto more = Lines(Synth(606, 3));
  WriteFile(dir_ / "night1.ndjson", JoinLines(night1));
  Proc p1 = Export(dir_ / "night1.ndjson", dir_ / "n1", dir_ / "state.db", {"--run-date", "2024-05-01"});
  ASSERT_EQ(p1.code, 0) << p1.err;
  SourceNode m1 = Manifest(dir_ / "n1");
  EXPECT_EQ(Count(m1, "unchanged"), 0u);

  auto night2 = night1;
  std::set<std::string> changed;  // person keys that must be written again
  for (std::size_t i = 10; i < night2.size(); i += 40) {
    auto pos = night2[i].find("\"Surname\":\"");
    ASSERT_NE(pos, std::string::npos);
    night2[i].insert(pos + 11, "Changed-");
    changed.insert(CisId(night2[i]));
  }
  std::regex consent("\"Consent_To_Share\":(\"[^\"]*\"|null)");
  night2[7] = std::regex_replace(night2[7], consent, "\"Consent_To_Share\":\"No\"");  // flips to No
  changed.insert(CisId(night2[7]));
  night2.erase(night2.begin() + 3);  // a person no longer in the extract
  for (std::size_t i = 600; i < more.size(); ++i) {
    night2.push_back(more[i]);
    changed.insert(CisId(more[i]));
  }
  std::set<std::string> withheld_changed, exported_changed;
  for (const auto& l : night2)
    if (changed.count(CisId(l)))
      (l.find("\"Consent_To_Share\":\"No\"") != std::string::npos ? withheld_changed : exported_changed)
          .insert(CisId(l));
  WriteFile(dir_ / "night2.ndjson", JoinLines(night2));
  Proc p2 = Export(dir_ / "night2.ndjson", dir_ / "n2", dir_ / "state.db", {"--run-date", "2024-05-02"});
  ASSERT_EQ(p2.code, 0) << p2.err;
  SourceNode m2 = Manifest(dir_ / "n2");
  EXPECT_EQ(Count(m2, "read"), night2.size());
  EXPECT_EQ(Count(m2, "exported"), exported_changed.size());
  EXPECT_EQ(Count(m2, "withheld"), withheld_changed.size());
  EXPECT_EQ(Count(m2, "unchanged"), night2.size() - changed.size());
  EXPECT_EQ(S1Ids(dir_ / "n2"), exported_changed);
  EXPECT_EQ(PersonKeys(dir_ / "n2"), changed);
  EXPECT_EQ(m2.child("delta_base")->child("run_date")->value, "2024-05-01");
  CheckManifestHashes(dir_ / "n2");
  CheckSystmOneFile(dir_ / "n2" / "systmone-import.xml", exported_changed.size());

  // --full writes everyone again.
  Proc p3 = Export(dir_ / "night2.ndjson", dir_ / "n2-full", dir_ / "state.db", {"--run-date", "2024-05-02", "--full"});
  ASSERT_EQ(p3.code, 0) << p3.err;
  SourceNode m3 = Manifest(dir_ / "n2-full");
  EXPECT_EQ(Count(m3, "unchanged"), 0u);
  EXPECT_EQ(Count(m3, "exported") + Count(m3, "withheld"), night2.size());
  EXPECT_EQ(m3.child("delta_base")->kind, NodeKind::kNull);

  // The night after, with nothing changed: nothing written.
  Proc p4 = Export(dir_ / "night2.ndjson", dir_ / "n3", dir_ / "state.db", {"--run-date", "2024-05-03"});
  ASSERT_EQ(p4.code, 0) << p4.err;
  SourceNode m4 = Manifest(dir_ / "n3");
  EXPECT_EQ(Count(m4, "unchanged"), night2.size());
  EXPECT_EQ(PersonKeys(dir_ / "n3").size(), 0u);
  CheckSystmOneFile(dir_ / "n3" / "systmone-import.xml", 0);
}

// Unchanged lines are recognised without parsing when they are byte for byte the
// stored ones; the result must be the same as comparing the mapped content.
TEST_F(ExportTest, IdenticalLinesAndReformattedLinesGiveTheSameDelta) {
  auto night1 = Lines(Synth(300, 9));  // all valid: reformatting would move the byte offsets in reject messages
  WriteFile(dir_ / "night1.ndjson", JoinLines(night1));
  Proc p1 = Export(dir_ / "night1.ndjson", dir_ / "n1", dir_ / "a.db", {"--run-date", "2024-05-01"});
  ASSERT_EQ(p1.code, 0) << p1.err;
  fs::copy_file(dir_ / "a.db", dir_ / "b.db");
  auto night2 = night1;
  for (std::size_t i = 0; i < night2.size(); i += 25) {
    auto pos = night2[i].find("\"First_Name\":\"");
    if (pos != std::string::npos) night2[i].insert(pos + 14, "New-");
  }
  auto reformatted = night2;  // same content, different bytes: no line matches
  for (auto& l : reformatted)
    if (!l.empty() && l[0] == '{') l.insert(1, " ");
  WriteFile(dir_ / "night2.ndjson", JoinLines(night2));
  WriteFile(dir_ / "night2-reformatted.ndjson", JoinLines(reformatted));
  Proc a = Export(dir_ / "night2.ndjson", dir_ / "a", dir_ / "a.db", {"--run-date", "2024-05-02"});
  Proc b = Export(dir_ / "night2-reformatted.ndjson", dir_ / "b", dir_ / "b.db", {"--run-date", "2024-05-02"});
  ASSERT_EQ(a.code, 0) << a.err;
  ASSERT_EQ(b.code, 0) << b.err;
  EXPECT_EQ(DataFiles(dir_ / "a"), DataFiles(dir_ / "b"));
  SourceNode ma = Manifest(dir_ / "a"), mb = Manifest(dir_ / "b");
  for (const char* c : {"read", "exported", "unchanged", "rejected", "withheld"}) EXPECT_EQ(Count(ma, c), Count(mb, c)) << c;
  EXPECT_GT(Count(ma, "unchanged"), 250u);
  // The night after: the reformatted lines are now the stored ones, so both databases
  // find everything unchanged in their own extract.
  Proc a3 = Export(dir_ / "night2.ndjson", dir_ / "a3", dir_ / "a.db", {"--run-date", "2024-05-03"});
  Proc b3 = Export(dir_ / "night2-reformatted.ndjson", dir_ / "b3", dir_ / "b.db", {"--run-date", "2024-05-03"});
  ASSERT_EQ(a3.code, 0) << a3.err;
  ASSERT_EQ(b3.code, 0) << b3.err;
  EXPECT_EQ(Count(Manifest(dir_ / "a3"), "exported") + Count(Manifest(dir_ / "a3"), "withheld"), 0u);
  EXPECT_EQ(Count(Manifest(dir_ / "b3"), "exported") + Count(Manifest(dir_ / "b3"), "withheld"), 0u);
}

// A person twice in one extract: each occurrence is compared with the latest version
// seen, so the receiving side ends with the last one.
TEST_F(ExportTest, APersonTwiceInOneExtractEndsWithTheLastVersion) {
  auto lines = Lines(Synth(3, 12));
  std::regex consent("\"Consent_To_Share\":(\"[^\"]*\"|null)");
  for (auto& l : lines) l = std::regex_replace(l, consent, "\"Consent_To_Share\":\"Yes\"");
  WriteFile(dir_ / "night1.ndjson", JoinLines(lines));
  Proc p1 = Export(dir_ / "night1.ndjson", dir_ / "n1", dir_ / "state.db", {"--run-date", "2024-05-01"});
  ASSERT_EQ(p1.code, 0) << p1.err;
  std::string changed = lines[0];
  changed.insert(changed.find("\"Surname\":\"") + 11, "Other-");
  // The changed version, then the stored version again (identical bytes).
  WriteFile(dir_ / "night2.ndjson", JoinLines({changed, lines[0], lines[1]}));
  Proc p2 = Export(dir_ / "night2.ndjson", dir_ / "n2", dir_ / "state.db", {"--run-date", "2024-05-02"});
  ASSERT_EQ(p2.code, 0) << p2.err;
  SourceNode m2 = Manifest(dir_ / "n2");
  EXPECT_EQ(Count(m2, "exported"), 2u);
  EXPECT_EQ(Count(m2, "unchanged"), 1u);
  std::string s1 = ReadFile(dir_ / "n2" / "systmone-import.xml");
  auto first = s1.find("Other-"), second = s1.find(CisId(lines[0]).substr(4), first);
  EXPECT_NE(first, std::string::npos);
  EXPECT_NE(second, std::string::npos) << "the stored version is sent again after the changed one";
  // Night 3 with the stored version only: it is what the state ends with.
  WriteFile(dir_ / "night3.ndjson", JoinLines({lines[0]}));
  Proc p3 = Export(dir_ / "night3.ndjson", dir_ / "n3", dir_ / "state.db", {"--run-date", "2024-05-03"});
  ASSERT_EQ(p3.code, 0) << p3.err;
  EXPECT_EQ(Count(Manifest(dir_ / "n3"), "unchanged"), 1u);
}

// Spec 5: "the gateway fills in the other system's id when it knows the link". When the
// export's database is also the gateway's store, a CIS record without a SystmOne id gets
// the one its NHS number links to, in the SystmOne file and the warehouse; never one only
// a consent-withheld SystmOne record carries, and never over the record's own. A link
// stored after a night sends the unchanged line again the next night, with the id.
TEST_F(ExportTest, TheStoresLinksFillInTheSystmOneId) {
  const std::regex consent("\"Consent_To_Share\":(\"[^\"]*\"|null)"), own_s1("\"SystmOne_Identifier\":(\"[^\"]*\"|null)"),
      nhs_re("\"NHS_Number\":\"([0-9]{10})\""), has_s1("\"SystmOne_Identifier\":\"");
  std::vector<std::string> lines;  // four people with an NHS number and a SystmOne id
  for (const auto& l : Lines(Synth(40, 21)))
    if (lines.size() < 4 && std::regex_search(l, nhs_re) && std::regex_search(l, has_s1)) lines.push_back(l);
  ASSERT_EQ(lines.size(), 4u);
  std::vector<std::string> nhs;
  for (std::size_t i = 0; i < lines.size(); ++i) {
    lines[i] = std::regex_replace(lines[i], consent, "\"Consent_To_Share\":\"Yes\"");
    if (i < 3) lines[i] = std::regex_replace(lines[i], own_s1, "\"SystmOne_Identifier\":null");
    std::smatch m;
    ASSERT_TRUE(std::regex_search(lines[i], m, nhs_re)) << lines[i];
    nhs.push_back(m[1]);
  }
  ASSERT_EQ(std::set<std::string>(nhs.begin(), nhs.end()).size(), 4u);
  const std::string own = [&] {
    std::smatch m;
    const std::regex re("\"SystmOne_Identifier\":\"([^\"]*)\"");
    return std::regex_search(lines[3], m, re) ? m[1].str() : std::string();
  }();
  ASSERT_FALSE(own.empty());
  // SystmOne records of the same people (linked by NHS number only), as `ingest` stores them.
  const std::string example = ReadFile(fs::path(CAREGATE_SPEC_DIR) / "examples" / "systmone-record.xml");
  auto s1_record = [&](const std::string& nhs_number, const std::string& s1_id, bool shares) {
    std::string x = example;
    x.replace(x.find("9912003888"), 10, nhs_number);
    x.replace(x.find("700412"), 6, s1_id);
    x.erase(x.find("<LocalAuthorityIdentifier>"), std::string("<LocalAuthorityIdentifier>LCC-0048213</LocalAuthorityIdentifier>").size());
    if (!shares) x.replace(x.find("<ConsentToShare>Yes"), 19, "<ConsentToShare>No");
    return x;
  };
  auto ingest = [&](const std::string& xml, const std::string& name) {
    WriteFile(dir_ / name, xml);
    Proc p = Run({"ingest", "--from", "systmone", "--db", (dir_ / "state.db").string(), (dir_ / name).string()});
    ASSERT_EQ(p.code, 0) << p.err;
  };
  ingest(s1_record(nhs[0], "800001", true), "a.xml");   // linked: filled in
  ingest(s1_record(nhs[1], "800002", false), "b.xml");  // its consent withheld: not filled in
  ingest(s1_record(nhs[3], "800004", true), "d.xml");   // the CIS record has its own id: kept
  WriteFile(dir_ / "extract.ndjson", JoinLines(lines));

  auto person_row = [&](const fs::path& out, std::size_t i) {
    const std::string key = CisId(lines[i]) + ",";
    for (const auto& row : Lines(ReadFile(out / "warehouse" / "persons.csv")))
      if (row.starts_with(key)) return row;
    return std::string();
  };
  auto response_of = [&](const fs::path& out, std::size_t i) {
    const std::string s1 = ReadFile(out / "systmone-import.xml");
    const auto at = s1.find("<NHSNumber>" + nhs[i] + "</NHSNumber>");
    if (at == std::string::npos) return std::string();
    const auto begin = s1.rfind("<ClientIntegrationResponse>", at);
    return s1.substr(begin, s1.find("</ClientIntegrationResponse>", at) - begin);
  };
  Proc p1 = Export(dir_ / "extract.ndjson", dir_ / "n1", dir_ / "state.db", {"--run-date", "2024-05-01"});
  ASSERT_EQ(p1.code, 0) << p1.err;
  EXPECT_EQ(Count(Manifest(dir_ / "n1"), "exported"), 4u);
  EXPECT_NE(response_of(dir_ / "n1", 0).find("<StrategicReportingIdentifier>800001<"), std::string::npos)
      << response_of(dir_ / "n1", 0);
  EXPECT_NE(person_row(dir_ / "n1", 0).find(",800001,"), std::string::npos) << person_row(dir_ / "n1", 0);
  EXPECT_EQ(response_of(dir_ / "n1", 1).find("StrategicReportingIdentifier"), std::string::npos);
  EXPECT_EQ(response_of(dir_ / "n1", 2).find("StrategicReportingIdentifier"), std::string::npos);
  EXPECT_NE(response_of(dir_ / "n1", 3).find("<StrategicReportingIdentifier>" + own + "<"), std::string::npos);
  for (const auto& f : fs::recursive_directory_iterator(dir_ / "n1"))
    if (f.is_regular_file()) {
      EXPECT_EQ(ReadFile(f.path()).find("800002"), std::string::npos) << f.path();
      EXPECT_EQ(ReadFile(f.path()).find("800004"), std::string::npos) << f.path();
    }

  // A link learnt during the day: the same line the next night goes out again, with it.
  ingest(s1_record(nhs[2], "800003", true), "c.xml");
  Proc p2 = Export(dir_ / "extract.ndjson", dir_ / "n2", dir_ / "state.db", {"--run-date", "2024-05-02"});
  ASSERT_EQ(p2.code, 0) << p2.err;
  SourceNode m2 = Manifest(dir_ / "n2");
  EXPECT_EQ(Count(m2, "exported"), 1u);
  EXPECT_EQ(Count(m2, "unchanged"), 3u);
  EXPECT_NE(response_of(dir_ / "n2", 2).find("<StrategicReportingIdentifier>800003<"), std::string::npos);
  EXPECT_NE(person_row(dir_ / "n2", 2).find(",800003,"), std::string::npos);
  // And then nothing more to send.
  Proc p3 = Export(dir_ / "extract.ndjson", dir_ / "n3", dir_ / "state.db", {"--run-date", "2024-05-03"});
  ASSERT_EQ(p3.code, 0) << p3.err;
  EXPECT_EQ(Count(Manifest(dir_ / "n3"), "unchanged"), 4u);
  // The patient withdraws consent on the SystmOne side: the record goes out once more,
  // without the id.
  ingest(s1_record(nhs[0], "800001", false), "a2.xml");
  Proc p4 = Export(dir_ / "extract.ndjson", dir_ / "n4", dir_ / "state.db", {"--run-date", "2024-05-04"});
  ASSERT_EQ(p4.code, 0) << p4.err;
  EXPECT_EQ(Count(Manifest(dir_ / "n4"), "exported"), 1u);
  EXPECT_NE(response_of(dir_ / "n4", 0).find("<NHSNumber>"), std::string::npos);
  EXPECT_EQ(response_of(dir_ / "n4", 0).find("StrategicReportingIdentifier"), std::string::npos);
  EXPECT_EQ(person_row(dir_ / "n4", 0).find("800001"), std::string::npos) << person_row(dir_ / "n4", 0);

  // Each night's audit event says how many ids went out filled in: 1, 1, 0, 0.
  auto events = audit::QueryAuditTrail((dir_ / "state.db").string(), {});
  std::vector<std::string> filled;
  for (const auto& e : events)
    if (e.action == "export") {
      const auto at = e.detail.find("SystmOne ids filled in from the store ");
      filled.push_back(at == std::string::npos ? "?" : e.detail.substr(at + 38, 1));
    }
  EXPECT_EQ(filled, (std::vector<std::string>{"1", "1", "0", "0"}));

  // One worker or four on a store with links: the same bytes.
  fs::copy_file(dir_ / "state.db", dir_ / "w1.db");
  fs::copy_file(dir_ / "state.db", dir_ / "w4.db");
  Proc w1 = Export(dir_ / "extract.ndjson", dir_ / "w1", dir_ / "w1.db", {"--run-date", "2024-05-09", "--full", "--workers", "1"});
  Proc w4 = Export(dir_ / "extract.ndjson", dir_ / "w4", dir_ / "w4.db", {"--run-date", "2024-05-09", "--full", "--workers", "4"});
  ASSERT_EQ(w1.code, 0) << w1.err;
  ASSERT_EQ(w4.code, 0) << w4.err;
  EXPECT_EQ(DataFiles(dir_ / "w1"), DataFiles(dir_ / "w4"));
  EXPECT_NE(response_of(dir_ / "w1", 2).find("<StrategicReportingIdentifier>800003<"), std::string::npos);
}

TEST_F(ExportTest, FatalProblemsExitOneAndLeaveThePreviousNightIntact) {
  WriteFile(dir_ / "night1.ndjson", Synth(300, 6));
  Proc p1 = Export(dir_ / "night1.ndjson", dir_ / "out", dir_ / "state.db", {"--run-date", "2024-05-01"});
  ASSERT_EQ(p1.code, 0) << p1.err;
  const auto files = DataFiles(dir_ / "out");
  const std::string manifest = ReadFile(dir_ / "out" / "manifest.json");
  const auto state = DbCount(dir_ / "state.db", "SELECT sum(hash_lo % 1000003) FROM export_state");
  auto intact = [&] {
    EXPECT_EQ(DataFiles(dir_ / "out"), files);
    EXPECT_EQ(ReadFile(dir_ / "out" / "manifest.json"), manifest);
    EXPECT_EQ(DbCount(dir_ / "state.db", "SELECT count(*) FROM export_runs"), 1);
    EXPECT_EQ(DbCount(dir_ / "state.db", "SELECT sum(hash_lo % 1000003) FROM export_state"), state);
  };

  // Unreadable input.
  Proc missing = Export(dir_ / "no-such.ndjson", dir_ / "out", dir_ / "state.db", {"--run-date", "2024-05-02"});
  EXPECT_EQ(missing.code, 1);
  EXPECT_NE(missing.err.find("no-such.ndjson: cannot open the extract"), std::string::npos) << missing.err;
  intact();

  // "Disk full" (the file size limit) while writing the outputs.
  WriteFile(dir_ / "night2.ndjson", Synth(900, 7));
  Proc full = Export(dir_ / "night2.ndjson", dir_ / "out", dir_ / "state.db", {"--run-date", "2024-05-02"},
                     {{}, -1, 256 * 1024, {}});
  EXPECT_EQ(full.code, 1) << full.err;
  EXPECT_NE(full.err.find("write failed"), std::string::npos) << full.err;
  intact();

  // Broken mapping tables.
  fs::copy(fs::path(CAREGATE_SOURCE_DIR) / "mappings", dir_ / "mappings", fs::copy_options::recursive);
  std::ofstream(dir_ / "mappings" / "cis.csv", std::ios::app) << "CIS-999,person.no_such_field,X,text,both,no,x\n";
  Proc broken = Run({"--mappings", (dir_ / "mappings").string(), "export", "--in", (dir_ / "night2.ndjson").string(),
                     "--out", (dir_ / "out").string(), "--db", (dir_ / "state.db").string()});
  EXPECT_EQ(broken.code, 1);
  EXPECT_NE(broken.err.find("mapping tables"), std::string::npos) << broken.err;
  intact();
  for (const auto& e : fs::recursive_directory_iterator(dir_ / "out"))
    EXPECT_FALSE(e.path().filename().string().ends_with(".partial")) << e.path();

  // An audit trail that cannot take the run's event (an event added behind the chain's
  // back): stopped before anything is written, not after the night's files are out.
  const std::string forged =
      "INSERT INTO audit_events(seq, time_utc, user, role, organisation, action, view, outcome, request_id, "
      "detail, prev_hash, hash) VALUES (2, '2024-05-02T00:00:00.000Z', 'x', 'ig', 'x', 'read', '', '200', '', '', "
      "'x', 'x')";
  store::Database((dir_ / "state.db").string()).Exec(forged);
  Proc damaged = Export(dir_ / "night2.ndjson", dir_ / "out", dir_ / "state.db", {"--run-date", "2024-05-02"});
  EXPECT_EQ(damaged.code, 1);
  EXPECT_NE(damaged.err.find("the audit trail is damaged: the head names event 1 but the last event is 2"),
            std::string::npos)
      << damaged.err;
  intact();
  store::Database((dir_ / "state.db").string()).Exec("DELETE FROM audit_events WHERE seq = 2");

  // And the failed night then runs fine.
  Proc p2 = Export(dir_ / "night2.ndjson", dir_ / "out", dir_ / "state.db", {"--run-date", "2024-05-02"});
  EXPECT_EQ(p2.code, 0) << p2.err;
  EXPECT_EQ(DbCount(dir_ / "state.db", "SELECT count(*) FROM audit_events"), 2);  // the two completed nights
  EXPECT_TRUE(audit::VerifyAuditTrail((dir_ / "state.db").string()).ok);
}

TEST_F(ExportTest, UsageErrorsExitTwo) {
  WriteFile(dir_ / "in.ndjson", Synth(2, 1));
  Proc no_out = Run({"export", "--in", (dir_ / "in.ndjson").string()});
  EXPECT_EQ(no_out.code, 2) << no_out.err;
  Proc bad_date = Export(dir_ / "in.ndjson", dir_ / "out", dir_ / "state.db", {"--run-date", "2024-02-30"});
  EXPECT_EQ(bad_date.code, 2) << bad_date.err;
  EXPECT_NE(bad_date.err.find("--run-date"), std::string::npos) << bad_date.err;
  EXPECT_FALSE(fs::exists(dir_ / "state.db"));
}

}  // namespace
}  // namespace caregate::exporter
