#include "failover/hmac.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <cctype>
#include <fstream>
#include <sstream>

namespace ftd {

Mac hmac_sha256(std::span<const uint8_t> key, std::span<const uint8_t> data) {
  Mac out{};
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()), data.data(), data.size(), out.data(),
       &len);
  return out;
}

bool mac_equal(std::span<const uint8_t> a, std::span<const uint8_t> b) {
  return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

Result<Key> parse_hex_key(std::string_view hex) {
  std::string digits;
  for (char c : hex) {
    if (std::isspace(static_cast<unsigned char>(c))) continue;
    if (!std::isxdigit(static_cast<unsigned char>(c)))
      return make_error(ErrorCode::kInvalidArgument, "key: '{}' is not a hex digit", c);
    digits.push_back(c);
  }
  if (digits.size() % 2 != 0) return make_error(ErrorCode::kInvalidArgument, "key: odd hex length");
  Key key;
  for (size_t i = 0; i < digits.size(); i += 2)
    key.push_back(static_cast<uint8_t>(std::stoi(digits.substr(i, 2), nullptr, 16)));
  if (key.size() < 16)
    return make_error(ErrorCode::kInvalidArgument, "key: {} bytes, need at least 16", key.size());
  return key;
}

Result<Key> load_key_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) return make_error(ErrorCode::kNotFound, "cannot read key file {}", path);
  std::stringstream ss;
  ss << in.rdbuf();
  auto key = parse_hex_key(ss.str());
  if (!key) return std::unexpected(key.error().with_context(path));
  return key;
}

Result<uint64_t> random_u64() {
  uint64_t v = 0;
  if (RAND_bytes(reinterpret_cast<unsigned char*>(&v), sizeof v) != 1)
    return make_error(ErrorCode::kInternal, "RAND_bytes failed");
  return v;
}

}  // namespace ftd
