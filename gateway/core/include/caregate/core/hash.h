#pragma once
#include <cstddef>
#include <string>
#include <string_view>

#include <openssl/evp.h>

namespace caregate {

// Incremental SHA-256 (OpenSSL EVP); hex output in lower case.
class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;
  void update(std::string_view data);
  std::string hex_digest();  // finishes; the object may not be updated afterwards...
  void reset();              // ...until reset, which starts a new hash in the same context

 private:
  EVP_MD_CTX* ctx_;
};

// One-shot, in a context kept per thread (no allocation per hash).
std::string Sha256Hex(std::string_view data);
// SHA-256 of a whole file, streamed; throws FatalError(kIoFailure) if it cannot be read.
std::string Sha256File(const std::string& path);

}  // namespace caregate
