// caregate's HTTP framework with one bearer-token route, `GET /v1/bench`, answering 1 KB:
// the full path (parse, route, SHA-256 token lookup, role check, problem handling,
// metrics) that every /v1 call takes. tests/bench/http_floor.sh compares it with
// beast_floor_server.
//
//   caregate_http_bench_server [--listen 127.0.0.1:0] [--io-threads N] [--handler-threads N]
//                              [--commit-us US]
// Token: "bench-token" (role service). --commit-us simulates the audit trail's group
// commit: each request joins the next batch and waits until that batch's "fsync" (a sleep
// of US microseconds on one committer thread) is done, as a durable audit write would.
// Prints "listening on HOST:PORT"; SIGINT/SIGTERM stop it.
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>
#include <thread>

#include "caregate/core/error.h"
#include "caregate/core/hash.h"
#include "caregate/server/server.h"

using namespace caregate::server;

namespace {

class GroupCommit {
 public:
  explicit GroupCommit(std::chrono::microseconds fsync) : fsync_(fsync), thread_([this] { Loop(); }) {}
  ~GroupCommit() {
    {
      std::lock_guard lock(mutex_);
      quit_ = true;
    }
    wake_.notify_all();
    thread_.join();
  }
  void Wait() {
    std::unique_lock lock(mutex_);
    const std::uint64_t mine = open_batch_;
    ++waiting_;
    wake_.notify_all();
    done_cv_.wait(lock, [&] { return committed_ >= mine; });
  }

 private:
  void Loop() {
    std::unique_lock lock(mutex_);
    for (;;) {
      wake_.wait(lock, [&] { return quit_ || waiting_ > 0; });
      if (quit_) return;
      const std::uint64_t batch = open_batch_++;
      waiting_ = 0;
      lock.unlock();
      std::this_thread::sleep_for(fsync_);  // the fsync
      lock.lock();
      committed_ = batch;
      done_cv_.notify_all();
    }
  }

  std::chrono::microseconds fsync_;
  std::mutex mutex_;
  std::condition_variable wake_, done_cv_;
  std::uint64_t open_batch_ = 1, committed_ = 0, waiting_ = 0;
  bool quit_ = false;
  std::thread thread_;
};

}  // namespace

int main(int argc, char** argv) {
  ServerOptions options;
  options.listen = "127.0.0.1:0";
  long commit_us = 0;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    const char* value = argv[i + 1];
    if (flag == "--listen") options.listen = value;
    else if (flag == "--io-threads") options.io_threads = static_cast<unsigned>(std::atoi(value));
    else if (flag == "--handler-threads") options.handler_threads = static_cast<unsigned>(std::atoi(value));
    else if (flag == "--commit-us") commit_us = std::atol(value);
    else {
      std::fprintf(stderr, "unknown flag %s\n", flag.c_str());
      return 2;
    }
  }
  try {
    std::unique_ptr<GroupCommit> commit;
    if (commit_us > 0) commit = std::make_unique<GroupCommit>(std::chrono::microseconds(commit_us));
    const std::string body = "{\"data\":\"" + std::string(1024 - 11, 'x') + "\"}";
    Router router;
    router.Add("GET", "/v1/bench", Access::Roles({Role::kService, Role::kHealth}), [&](const RequestContext&) {
      if (commit) commit->Wait();
      return Response::Json(200, body);
    });
    TokenStore tokens;
    tokens.Add(caregate::Sha256Hex("bench-token"), Role::kService, "bench");
    auto handler = std::make_shared<RequestHandler>(std::move(router), std::move(tokens));
    Server server(options, handler);
    std::printf("listening on %s\n", server.endpoint().c_str());
    std::fflush(stdout);
    server.Run();
  } catch (const caregate::FatalError& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 1;
  }
}
