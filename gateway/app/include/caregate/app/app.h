#pragma once
// caregate's application layer on the server framework (spec section 8, docs/lookups.md):
// the /v1 routes for lookups, ingest, translation, lineage, audit and link review, each
// leaving a durable audit event before it answers.
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "caregate/audit/audit_log.h"
#include "caregate/engine/engine.h"
#include "caregate/identity/person_store.h"
#include "caregate/server/handler.h"
#include "caregate/server/metrics.h"
#include "caregate/server/router.h"

namespace caregate::app {

// $CAREGATE_DB when set, else "caregate.db" in the current directory (the same default
// as `caregate export`).
std::string DefaultDatabasePath();

class App {
 public:
  // Opens the record store and the audit trail in `db_path`. Throws FatalError.
  // The store asks the file for other processes' changes at most every 20 ms by default
  // (PersonStoreOptions::recheck_interval, docs/lookups.md "Caching and other processes").
  static constexpr std::chrono::milliseconds kDefaultRecheck{20};
  App(std::shared_ptr<const engine::Engine> engine, const std::string& db_path,
      std::shared_ptr<server::Metrics> metrics = std::make_shared<server::Metrics>(),
      identity::PersonStoreOptions store_options = {.recheck_interval = kDefaultRecheck});
  ~App();
  App(const App&) = delete;
  App& operator=(const App&) = delete;

  // The route table (including GET /metrics with the application's gauges).
  server::Router Routes();
  // A request handler serving Routes(), with every framework refusal (401/403) audited.
  std::shared_ptr<server::RequestHandler> MakeHandler(server::TokenStore tokens);

  // Warm start (docs/lookups.md "Warm start"): reads up to `max_persons` persons, the
  // most recently updated first, into the store's cache and renders each one's default
  // view for every role in `roles` (health: SystmOne, council: CIS), on `threads`
  // threads, so that the first lookup of each after a start costs what a repeated one
  // does. Lookups stay authorised and audited one by one; only the rendering is shared.
  // Returns the number of persons warmed.
  std::size_t Warm(std::size_t max_persons, const std::vector<server::Role>& roles, unsigned threads = 2);

  identity::PersonStore& store();
  audit::AuditLog& audit();
  const engine::Engine& engine() const;
  server::Metrics& metrics();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace caregate::app
