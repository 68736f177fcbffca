// tests/fuzz/fuzz_safetensors.cpp — heed::io::parse_safetensors (what load_safetensors runs on a file's
// bytes) on arbitrary bytes. Either it throws heed::Error, or what it returns is consistent: every name
// and metadata string is UTF-8 (so that it can be saved again), and saving it and parsing the result
// gives the same tensors, bit for bit, and the same metadata.
#include <cstring>
#include <heed/error.hpp>
#include <heed/io/safetensors.hpp>
#include <heed/utf8.hpp>
#include <string_view>

#include "fuzz_common.hpp"

namespace {

bool same_bits(const heed::Tensor& a, const heed::Tensor& b) {
  if (a.shape() != b.shape() || a.dtype() != b.dtype()) return false;
  const std::size_t n = static_cast<std::size_t>(a.numel()) * heed::dtype_size(a.dtype());
  return n == 0 || std::memcmp(a.impl()->storage->data(), b.impl()->storage->data(), n) == 0;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  heed::io::SafetensorsFile file;
  try {
    file = heed::io::parse_safetensors(bytes, "fuzz");
  } catch (const heed::Error& e) {
    FUZZ_CHECK(heed::is_valid_utf8(e.what()));  // messages quote the file's bytes escaped
    return 0;
  }
  std::size_t total = 0;
  for (const auto& [name, t] : file.tensors) {
    FUZZ_CHECK(heed::is_valid_utf8(name));
    FUZZ_CHECK(t.is_contiguous());
    total += static_cast<std::size_t>(t.numel());
  }
  FUZZ_CHECK(total <= size);  // at least one byte per element (F16/BF16 two, loaded as 4)
  for (const auto& [key, value] : file.metadata) FUZZ_CHECK(heed::is_valid_utf8(key) && heed::is_valid_utf8(value));
  // The round trip: what loads can be saved, and loads back the same.
  const std::string again = heed::io::serialize_safetensors(file.tensors, file.metadata);
  const heed::io::SafetensorsFile reloaded = heed::io::parse_safetensors(again, "round trip");
  FUZZ_CHECK(reloaded.metadata == file.metadata);
  FUZZ_CHECK(reloaded.tensors.size() == file.tensors.size());
  for (std::size_t i = 0; i < file.tensors.size(); ++i) {
    FUZZ_CHECK(reloaded.tensors[i].first == file.tensors[i].first);
    FUZZ_CHECK(same_bits(reloaded.tensors[i].second, file.tensors[i].second));
  }
  return 0;
}
