#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <iterator>
#include <memory>
#include <string>

#include "caregate/app/app.h"
#include "caregate/audit/audit_log.h"
#include "caregate/cli/cli.h"
#include "caregate/core/text.h"
#include "caregate/engine/engine.h"
#include "caregate/server/server.h"

namespace caregate::cli {

namespace {

// Stderr lines when a file that decides who is let in, or proves who the server is, is
// open to other users of the machine (the threat model): the tokens file writable by
// group or others, owned by a user other than root and the server's, or in a directory
// others may write (they could put another file in its place before the next reload);
// the TLS key readable by group or others. A warning, not a refusal: the file may sit on
// a share whose modes mean little.
void Warn(const std::string& what, const std::string& path, const std::string& problem, const char* fix) {
  std::fprintf(stderr, "caregate server: warning: %s %s %s (%s)\n", what.c_str(), path.c_str(), problem.c_str(),
               fix);
}

std::string Mode(const struct stat& st) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "%04o", static_cast<unsigned>(st.st_mode & 07777));
  return buf;
}

void WarnIfTokensOpen(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return;
  if (st.st_mode & (S_IWGRP | S_IWOTH))
    Warn("the tokens file", path, "has mode " + Mode(st) + ": other users of this machine can change who is let in",
         "chmod go-w");
  if (st.st_uid != 0 && st.st_uid != ::geteuid())
    Warn("the tokens file", path,
         "belongs to uid " + std::to_string(st.st_uid) + ", who is neither root nor this server and can change who "
         "is let in", "chown it to root or to the server's account");
  std::string dir = std::filesystem::path(path).parent_path().string();
  if (dir.empty()) dir = ".";
  struct stat ds {};
  if (::stat(dir.c_str(), &ds) == 0 && (ds.st_mode & (S_IWGRP | S_IWOTH)) && !(ds.st_mode & S_ISVTX))
    Warn("the tokens file's directory", dir,
         "has mode " + Mode(ds) + ": other users of this machine can put another tokens file in its place",
         "chmod go-w");
}

void WarnIfKeyOpen(const std::string& path) {
  struct stat st {};
  if (path.empty() || ::stat(path.c_str(), &st) != 0) return;
  if (st.st_mode & (S_IRGRP | S_IROTH))
    Warn("the TLS key", path, "has mode " + Mode(st) + ": other users of this machine can read the server's private key",
         "chmod go-r");
}

// "; access added: bob (council); removed: alice (health)", or "" when the same users have
// the same roles (a token rotated for the same user and role is not a change of access).
std::string AccessChanges(const std::vector<std::pair<std::string, server::Role>>& before,
                          const std::vector<std::pair<std::string, server::Role>>& after) {
  auto list = [](const std::vector<std::pair<std::string, server::Role>>& a,
                 const std::vector<std::pair<std::string, server::Role>>& b) {
    std::vector<std::pair<std::string, server::Role>> only;
    std::set_difference(a.begin(), a.end(), b.begin(), b.end(), std::back_inserter(only));
    std::string out;
    for (const auto& [user, role] : only) {
      if (!out.empty()) out += ", ";
      out += user + " (" + std::string(server::RoleName(role)) + ")";
    }
    return out;
  };
  std::string out;
  if (auto added = list(after, before); !added.empty()) out += "; access added: " + added;
  if (auto removed = list(before, after); !removed.empty()) out += "; removed: " + removed;
  return out;
}

}  // namespace

Command AddServeCommand(CLI::App& root, std::string& mappings_dir) {
  auto* app = root.add_subcommand("serve", "Serve the HTTP API (spec section 8)");
  struct Opts {
    std::string db, tokens;
    unsigned recheck_ms = app::App::kDefaultRecheck.count();
    unsigned warm_persons = 20'000;  // unsigned, as the other counts: CLI11 refuses a negative one
    server::ServerOptions server;
  };
  auto o = std::make_shared<Opts>();
  app->add_option("--db", o->db, "Database (default: $CAREGATE_DB, else ./caregate.db)");
  app->add_option("--listen", o->server.listen, "HOST:PORT (default 127.0.0.1:8080; port 0 picks one)");
  app->add_option("--tokens", o->tokens, "Tokens file (sha256:<hex> <role> <user-id> per line); read again on SIGHUP")->required();
  app->add_option("--tls-cert", o->server.tls_cert, "PEM certificate chain (TLS with --tls-key)");
  app->add_option("--tls-key", o->server.tls_key, "PEM private key");
  // Every count is checked by WholeNumber (cli.h): its bounds, digits only, not empty.
  app->add_option("--io-threads", o->server.io_threads, "Socket I/O threads (default: one per core)")
      ->transform(WholeNumber(1024));
  app->add_option("--handler-threads", o->server.handler_threads,
                  "Threads for handlers that may block: ingest, audit queries (default 64)")
      ->transform(WholeNumber(4096));
  app->add_option("--max-connections", o->server.max_connections,
                  "Client connections open at once; one more is answered 503 and closed (default 0: the "
                  "descriptor limit, raised to its hard limit, less 256)")
      ->transform(WholeNumber(std::uint64_t{1} << 24));
  app->add_option("--recheck-ms", o->recheck_ms,
                  "Longest a cached person is served before the store asks the file whether another "
                  "process changed it (default 20; 0 = every lookup). This server's own writes are seen at once")
      ->capture_default_str()
      ->transform(WholeNumber(3'600'000));
  app->add_option("--warm-persons", o->warm_persons,
                  "Before listening, read this many persons (the most recently updated first) into the "
                  "cache and render their default views for the roles in the tokens file, so that first "
                  "lookups after a start are not slower than repeated ones (0 = none)")
      ->capture_default_str()
      ->transform(WholeNumber(100'000'000));
  return {app, [o, &mappings_dir]() -> int {
            if (o->server.tls_cert.empty() != o->server.tls_key.empty()) {
              Error("", "usage: --tls-cert and --tls-key go together");
              return kExitUsage;
            }
            // SIGHUP asks for a reload (below), never for the end of the process: until the
            // server handles it, and after, it is ignored (its default would end the server
            // during a long warm start or the audit log's close).
            std::signal(SIGHUP, SIG_IGN);
            auto engine = engine::Engine::Load(mappings_dir);
            auto tokens = server::TokenStore::LoadFile(o->tokens);
            WarnIfTokensOpen(o->tokens);
            // A reload refuses a file with no token (likely one being rewritten); at start
            // the server may have nobody to serve yet, but should say so.
            if (tokens.size() == 0)
              Warn("the tokens file", o->tokens, "holds no token",
                   "every /v1 call is refused with 401 until tokens are added and SIGHUP is sent");
            WarnIfKeyOpen(o->server.tls_key);
            app::App application(engine, o->db.empty() ? app::DefaultDatabasePath() : o->db,
                                 std::make_shared<server::Metrics>(),
                                 {.recheck_interval = std::chrono::milliseconds(o->recheck_ms)});
            if (o->warm_persons > 0) {
              const auto start = std::chrono::steady_clock::now();
              const std::size_t n = application.Warm(o->warm_persons, tokens.Roles());
              std::fprintf(stderr, "warmed %zu persons in %.2f s\n", n,
                           std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
            }
            auto handler = application.MakeHandler(std::move(tokens));
            // Token rotation without a restart: on SIGHUP the tokens file is read again.
            // A file that cannot be read, has a bad line or holds no token changes nothing.
            // Either way the audit trail records it, with who was let in or out, so an IG
            // officer sees when access changed. (The callback lives in this run's options,
            // not in `o`, which it must not hold.)
            server::ServerOptions options = o->server;
            options.on_reload = [path = o->tokens, cert = o->server.tls_cert, key = o->server.tls_key, handler,
                                 audit = &application.audit(), user = CliUser()](const server::ReloadReport& report) {
              WarnIfTokensOpen(path);
              if (report.tls) WarnIfKeyOpen(key);
              auto append = [audit](audit::AuditEvent&& event) {
                audit->Append(std::move(event), [](std::int64_t, std::exception_ptr) {});  // never waited for on the I/O thread
              };
              // The certificate first, as the server read it: who connects to whom changes
              // with it, so it is on the record beside the tokens (action tls-reload).
              if (report.tls) {
                audit::AuditEvent t = CommandEvent(user, "tls-reload");
                t.outcome = report.tls_loaded ? "200" : "400 tls-files-refused";
                t.detail = report.tls_loaded
                               ? "SIGHUP: TLS certificate loaded from " + cert + ": " + report.tls_detail +
                                     "; new connections get it"
                               : "SIGHUP: TLS certificate not reloaded, the one in use stays: " + report.tls_detail;
                append(std::move(t));
              }
              audit::AuditEvent e = CommandEvent(user, "tokens-reload");
              auto keep = [&](const std::string& why) {
                const std::string line = OneLine(why);
                std::fprintf(stderr, "caregate server: SIGHUP: tokens not reloaded, the %zu in use stay: %s\n",
                             handler->token_count(), line.c_str());
                e.outcome = "400 tokens-file-refused";
                e.detail = "SIGHUP: " + line + "; the " + std::to_string(handler->token_count()) + " tokens in use stay";
              };
              try {
                server::TokenStore next = server::TokenStore::LoadFile(path);
                if (next.size() == 0) {
                  keep(path + ": holds no token (a file being rewritten?)");
                } else {
                  const auto before = handler->Principals(), after = next.Principals();
                  handler->ReplaceTokens(std::move(next));
                  std::fprintf(stderr, "caregate server: SIGHUP: %zu tokens loaded from %s\n", handler->token_count(),
                               path.c_str());
                  e.outcome = "200";
                  e.detail = "SIGHUP: " + std::to_string(handler->token_count()) + " tokens loaded from " + path +
                             AccessChanges(before, after);
                }
              } catch (const std::exception& e2) {
                keep(e2.what());
              }
              append(std::move(e));
            };
            {
              server::Server srv(std::move(options), handler);
              std::fprintf(stderr, "serving at most %zu connections at once\n", srv.max_connections());
              std::printf("listening on %s\n", srv.endpoint().c_str());
              std::fflush(stdout);
              srv.Run();
            }
            std::signal(SIGHUP, SIG_IGN);  // the server's handler is gone with it
            application.audit().Close();
            return kExitOk;
          }};
}

}  // namespace caregate::cli
