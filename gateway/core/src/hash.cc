#include "caregate/core/hash.h"

#include <cstdio>
#include <memory>

#include "caregate/core/error.h"

namespace caregate {

namespace {
// Fetched once: an implicit fetch on every init costs thousands of instructions per hash.
const EVP_MD* Sha256Md() {
  static EVP_MD* md = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  return md;
}
}  // namespace

Sha256::Sha256() : ctx_(EVP_MD_CTX_new()) {
  if (!ctx_ || !Sha256Md() || EVP_DigestInit_ex2(ctx_, Sha256Md(), nullptr) != 1)
    throw FatalError(Problem::kInternal, "OpenSSL: cannot initialise SHA-256");
}
Sha256::~Sha256() { EVP_MD_CTX_free(ctx_); }

void Sha256::reset() {
  if (EVP_DigestInit_ex2(ctx_, Sha256Md(), nullptr) != 1)
    throw FatalError(Problem::kInternal, "OpenSSL: cannot initialise SHA-256");
}

void Sha256::update(std::string_view data) { EVP_DigestUpdate(ctx_, data.data(), data.size()); }

std::string Sha256::hex_digest() {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_DigestFinal_ex(ctx_, md, &len);
  static const char* kHex = "0123456789abcdef";
  std::string out(len * 2, '0');
  for (unsigned i = 0; i < len; ++i) {
    out[2 * i] = kHex[md[i] >> 4];
    out[2 * i + 1] = kHex[md[i] & 15];
  }
  return out;
}

std::string Sha256Hex(std::string_view data) {
  thread_local Sha256 h;
  h.reset();
  h.update(data);
  return h.hex_digest();
}

std::string Sha256File(const std::string& path) {
  std::unique_ptr<FILE, int (*)(FILE*)> f(std::fopen(path.c_str(), "rb"), &std::fclose);
  if (!f) throw FatalError(Problem::kIoFailure, path + ": cannot open for reading");
  Sha256 h;
  std::string buf(1 << 16, '\0');
  size_t n;
  while ((n = std::fread(buf.data(), 1, buf.size(), f.get())) > 0) h.update({buf.data(), n});
  if (std::ferror(f.get())) throw FatalError(Problem::kIoFailure, path + ": read error");
  return h.hex_digest();
}

}  // namespace caregate
