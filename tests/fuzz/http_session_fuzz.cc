// Fuzz target for the server's sessions (gateway/server/src/server.cc) over a real
// loopback socket: the input is sent as it is to a running caregate::server::Server in
// front of the application (app_world.h), the client then shuts its sending side, and
// everything the server answers is read until it closes.
//
// What must hold (spec section 8, issue 5's server requirements):
//   - the server closes the connection soon after the client has finished sending
//     (within its timeouts: no session is left hanging);
//   - what it sends is a sequence of well-formed HTTP/1.1 responses: a status line, header
//     fields, and exactly Content-Length bytes of body; 1xx answers only `100 Continue`.
//     The answer to a HEAD has no body: when the input holds a HEAD request, a response
//     followed at once by the next status line (or by the end) is taken as one;
//   - never a 500, and every error is problem+json;
//   - the server is still serving afterwards (checked with /healthz every 64 inputs, and
//     whenever an input got no answer at all).
// Run under the sanitizers (the fuzz build, or the ASan build's replay), this covers the
// session's state machine: keep-alive, pipelining, 413/431 with draining, 100-continue,
// timeouts and the audit writer's completions posted back to the I/O threads.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <thread>

#include "app_world.h"
#include "caregate/server/server.h"
#include "fuzz_util.h"

namespace {

using caregate::fuzz::Check;
using caregate::fuzz::Fail;
namespace server = caregate::server;
using Clock = std::chrono::steady_clock;

struct Running {
  std::unique_ptr<server::Server> srv;
  std::thread thread;
  Running() {
    server::ServerOptions o;
    o.listen = "127.0.0.1:0";
    o.io_threads = 2;
    o.handler_threads = 2;
    o.handle_signals = false;
    o.body_limit = 64 << 10;  // small, so that inputs can reach it
    o.header_limit = 2 << 10;
    o.timeouts.header = std::chrono::milliseconds(300);
    o.timeouts.body = std::chrono::milliseconds(300);
    o.timeouts.idle = std::chrono::milliseconds(300);
    o.timeouts.write = std::chrono::milliseconds(1000);
    o.timeouts.linger = std::chrono::milliseconds(100);
    srv = std::make_unique<server::Server>(o, caregate::fuzz::TheWorld().handler);
    thread = std::thread([this] { srv->Run(); });
  }
  ~Running() {
    srv->Stop();
    thread.join();
  }
};

Running& TheServer() {
  static Running r;
  return r;
}

int Connect(std::uint16_t port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  ::inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
  // At hundreds of connections a second the client's ports can all be in TIME_WAIT (a
  // libFuzzer run hit EADDRNOTAVAIL after ~150k inputs): wait for one rather than fail.
  for (int attempt = 0;; ++attempt) {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    Check(fd >= 0, "socket() failed", std::strerror(errno));
    if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0) {
      int one = 1;
      ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      return fd;
    }
    const int err = errno;
    ::close(fd);
    Check(err == EADDRNOTAVAIL && attempt < 100, "cannot connect to the server", std::strerror(err));
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}

// Closes without TIME_WAIT (a reset): the exchange is over, and the fuzzer would
// otherwise use up the client's ports.
void CloseAbortively(int fd) {
  linger l{1, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
  ::close(fd);
}

// Sends `in` (the server may close early: an error answer, a limit), shuts the sending
// side, and returns all the server sent until it closed. Fails if it does not close
// within `limit`.
std::string Exchange(std::uint16_t port, std::string_view in, std::chrono::milliseconds limit) {
  int fd = Connect(port);
  std::string out;
  char buf[16384];
  const auto deadline = Clock::now() + limit;
  std::size_t sent = 0;
  bool shut = false;
  for (;;) {
    if (!shut && sent == in.size()) {
      ::shutdown(fd, SHUT_WR);
      shut = true;
    }
    pollfd p{fd, static_cast<short>(POLLIN | (shut ? 0 : POLLOUT)), 0};
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) {
      ::close(fd);
      Fail("the server did not close the connection in time", std::string(in.substr(0, 400)) + "\n--- got ---\n" +
                                                                   out.substr(0, 400));
    }
    if (::poll(&p, 1, static_cast<int>(left)) <= 0) continue;
    if (p.revents & POLLIN || p.revents & (POLLHUP | POLLERR)) {
      long n = ::recv(fd, buf, sizeof buf, 0);
      if (n <= 0) break;  // closed (or reset after an error answer)
      out.append(buf, static_cast<std::size_t>(n));
      continue;
    }
    if (p.revents & POLLOUT) {
      long n = ::send(fd, in.data() + sent, in.size() - sent, MSG_NOSIGNAL);
      if (n <= 0) {  // the server closed its side: stop sending
        sent = in.size();
        continue;
      }
      sent += static_cast<std::size_t>(n);
    }
  }
  CloseAbortively(fd);
  return out;
}

// Checks `out` is a sequence of HTTP/1.1 responses; returns how many (1xx not counted).
int CheckResponses(std::string_view out, std::string_view in) {
  const std::string context = std::string(in.substr(0, 400)) + "\n--- got ---\n" + std::string(out.substr(0, 600));
  const bool may_have_head = in.find("HEAD") != std::string_view::npos;
  int n = 0;
  while (!out.empty()) {
    std::size_t head_end = out.find("\r\n\r\n");
    Check(head_end != std::string_view::npos, "response head without its end", context);
    std::string_view head = out.substr(0, head_end);
    out.remove_prefix(head_end + 4);
    Check(head.starts_with("HTTP/1.1 ") && head.size() >= 12, "malformed status line", context);
    const int status = std::stoi(std::string(head.substr(9, 3)));
    Check(status >= 100 && status <= 599, "status out of range", context);
    if (status < 200) {
      Check(status == 100, "an interim response other than 100 Continue", context);
      continue;
    }
    Check(status != 500, "500 Internal Server Error", context);
    std::size_t length = 0;
    bool has_length = false;
    std::string content_type;
    std::size_t pos = head.find("\r\n");
    while (pos != std::string_view::npos) {
      std::size_t next = head.find("\r\n", pos + 2);
      std::string_view line = head.substr(pos + 2, next == std::string_view::npos ? std::string_view::npos
                                                                                   : next - pos - 2);
      pos = next;
      std::size_t colon = line.find(':');
      Check(colon != std::string_view::npos && colon > 0, "malformed header field", context);
      std::string name(line.substr(0, colon));
      for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      std::string_view value = line.substr(colon + 1);
      while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
      if (name == "content-length") {
        Check(!has_length, "two Content-Length fields", context);
        has_length = true;
        length = std::stoul(std::string(value));
      } else if (name == "content-type") {
        content_type = std::string(value);
      }
    }
    if (status == 204 || status == 304) {
      Check(!has_length || length == 0, "a 204/304 with a body", context);
    } else {
      Check(has_length, "a response without Content-Length", context);
    }
    if (may_have_head && length > 0 && (out.empty() || out.starts_with("HTTP/1.1 ")))
      length = 0;  // the answer to a HEAD (no body the server sends starts with a status line)
    Check(out.size() >= length, "body shorter than its Content-Length", context);
    if (status >= 400) Check(content_type == "application/problem+json", "error is not problem+json", context);
    out.remove_prefix(length);
    ++n;
  }
  return n;
}

void CheckStillServing(std::uint16_t port) {
  std::string out = Exchange(port, "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                             std::chrono::milliseconds(5000));
  Check(out.starts_with("HTTP/1.1 200 "), "the server stopped answering /healthz", out.substr(0, 400));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size > (256 << 10)) return 0;
  std::string_view in(reinterpret_cast<const char*>(data), size);
  const std::uint16_t port = TheServer().srv->port();
  // Header, body and idle timeouts are 300 ms each, linger 100 ms; a request's handler
  // and its audit write take a few ms. Generous, so a slow sanitizer build does not fail.
  std::string out = Exchange(port, in, std::chrono::milliseconds(10000));
  const int responses = CheckResponses(out, in);
  static unsigned calls = 0;
  if (responses == 0 || ++calls % 64 == 0) CheckStillServing(port);
  return 0;
}
