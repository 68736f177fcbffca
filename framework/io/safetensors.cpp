// framework/io/safetensors.cpp — safetensors reader/writer with atomic writes (heed/io/safetensors.hpp).
#include "heed/io/safetensors.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

#include "ops/common.hpp"

namespace heed::io {
namespace {

const char* dtype_tag(DType d) {
  switch (d) {
    case DType::Float32: return "F32";
    case DType::Float64: return "F64";
    case DType::Int64: return "I64";
    case DType::Bool: return "BOOL";
  }
  return "?";
}

float half_to_float(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  uint32_t exp = (h >> 10) & 0x1fu, mant = h & 0x3ffu, bits;
  if (exp == 0) {
    if (mant == 0) bits = sign;
    else {  // subnormal
      exp = 127 - 15 + 1;
      while (!(mant & 0x400u)) { mant <<= 1; --exp; }
      bits = sign | (exp << 23) | ((mant & 0x3ffu) << 13);
    }
  } else if (exp == 31) {
    bits = sign | 0x7f800000u | (mant << 13);
  } else {
    bits = sign | ((exp + 127 - 15) << 23) | (mant << 13);
  }
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

}  // namespace

Tensor SafetensorsFile::get(const std::string& name) const {
  std::string keys;
  for (const auto& [k, t] : tensors) {
    if (k == name) return t;
    keys += (keys.empty() ? "" : ", ") + k;
  }
  throw Error(fmt::format("safetensors: no tensor named '{}' (the file has: {})", name, keys));
}

void write_file_atomic(const std::string& path, const std::string& bytes) {
  const std::string tmp = fmt::format("{}.tmp.{}", path, static_cast<long>(::getpid()));
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  HEED_CHECK(fd >= 0, "save: cannot create '{}': {}", tmp, std::strerror(errno));
  std::size_t written = 0;
  while (written < bytes.size()) {
    const ssize_t n = ::write(fd, bytes.data() + written, bytes.size() - written);
    if (n < 0) {
      if (errno == EINTR) continue;
      const int err = errno;
      ::close(fd);
      ::unlink(tmp.c_str());
      throw Error(fmt::format("save: writing '{}' failed: {}", tmp, std::strerror(err)));
    }
    written += static_cast<std::size_t>(n);
  }
  if (::fsync(fd) != 0 || ::close(fd) != 0) {
    ::unlink(tmp.c_str());
    throw Error(fmt::format("save: flushing '{}' failed: {}", tmp, std::strerror(errno)));
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    throw Error(fmt::format("save: renaming '{}' to '{}' failed: {}", tmp, path, std::strerror(err)));
  }
}

void save_safetensors(const std::string& path, const NamedTensors& tensors, const Metadata& metadata) {
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  std::set<std::string> seen;
  std::size_t offset = 0;
  std::vector<Tensor> dense;
  for (const auto& [name, t] : tensors) {
    HEED_CHECK(t.defined(), "save_safetensors: tensor '{}' is undefined ({})", name, path);
    HEED_CHECK(name != "__metadata__" && seen.insert(name).second,
               "save_safetensors: duplicate or reserved tensor name '{}' ({})", name, path);
    Tensor d = t.detach().contiguous();
    const std::size_t nbytes = static_cast<std::size_t>(d.numel()) * dtype_size(d.dtype());
    header[name] = {{"dtype", dtype_tag(d.dtype())}, {"shape", d.shape()}, {"data_offsets", {offset, offset + nbytes}}};
    offset += nbytes;
    dense.push_back(d);
  }
  std::string json = header.dump();
  while ((json.size() + 8) % 8 != 0) json += ' ';  // align the data start to 8 bytes (as the reference does)
  std::string bytes;
  bytes.reserve(8 + json.size() + offset);
  const uint64_t n = json.size();
  for (int i = 0; i < 8; ++i) bytes += static_cast<char>((n >> (8 * i)) & 0xff);
  bytes += json;
  for (const Tensor& d : dense) {
    const std::size_t nbytes = static_cast<std::size_t>(d.numel()) * dtype_size(d.dtype());
    bytes.append(static_cast<const char*>(d.impl()->storage->data()) + d.offset() * dtype_size(d.dtype()), nbytes);
  }
  write_file_atomic(path, bytes);
}

SafetensorsFile load_safetensors(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  HEED_CHECK(in.good(), "load_safetensors: cannot open '{}'", path);
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string bytes = ss.str();
  HEED_CHECK(bytes.size() >= 8, "load_safetensors: '{}' is truncated ({} bytes; a header length needs 8)", path,
             bytes.size());
  uint64_t header_len = 0;
  for (int i = 0; i < 8; ++i) header_len |= static_cast<uint64_t>(static_cast<unsigned char>(bytes[i])) << (8 * i);
  HEED_CHECK(header_len <= bytes.size() - 8,
             "load_safetensors: '{}' is truncated or not a safetensors file (header length {} but only {} bytes follow)",
             path, header_len, bytes.size() - 8);
  nlohmann::json header;
  try {
    header = nlohmann::json::parse(bytes.begin() + 8, bytes.begin() + 8 + static_cast<std::ptrdiff_t>(header_len));
  } catch (const std::exception& e) {
    throw Error(fmt::format("load_safetensors: '{}' has a corrupted header: {}", path, e.what()));
  }
  HEED_CHECK(header.is_object(), "load_safetensors: '{}' header is not a JSON object", path);
  const std::size_t data_start = 8 + header_len;
  const std::size_t data_len = bytes.size() - data_start;

  SafetensorsFile file;
  std::vector<std::pair<std::size_t, std::size_t>> ranges;
  std::vector<std::pair<std::size_t, std::pair<std::string, Tensor>>> ordered;
  for (auto it = header.begin(); it != header.end(); ++it) {
    const std::string& key = it.key();
    if (key == "__metadata__") {
      HEED_CHECK(it->is_object(), "load_safetensors: '{}': __metadata__ must be an object", path);
      for (auto m = it->begin(); m != it->end(); ++m)
        file.metadata[m.key()] = m->is_string() ? m->get<std::string>() : m->dump();
      continue;
    }
    const auto& e = *it;
    HEED_CHECK(e.is_object() && e.contains("dtype") && e.contains("shape") && e.contains("data_offsets"),
               "load_safetensors: '{}': entry '{}' lacks dtype, shape or data_offsets", path, key);
    Shape shape;
    try {
      shape = e["shape"].get<Shape>();
    } catch (const std::exception&) {
      throw Error(fmt::format("load_safetensors: '{}': entry '{}' has a malformed shape", path, key));
    }
    // Sizes are checked against the data section one by one, so that their product cannot overflow.
    std::size_t numel = 1;
    for (int64_t s : shape) {
      HEED_CHECK(s >= 0, "load_safetensors: '{}': entry '{}' has a negative size", path, key);
      HEED_CHECK(s == 0 || numel == 0 || static_cast<std::size_t>(s) <= data_len / numel,
                 "load_safetensors: '{}' is corrupted: tensor '{}' has shape {}, larger than the {}-byte data section",
                 path, key, shape_str(shape), data_len);
      numel *= static_cast<std::size_t>(s);
    }
    const auto& offs = e["data_offsets"];
    HEED_CHECK(offs.is_array() && offs.size() == 2 && offs[0].is_number_unsigned() && offs[1].is_number_unsigned(),
               "load_safetensors: '{}': entry '{}' has malformed data_offsets", path, key);
    const std::size_t begin = offs[0].get<std::size_t>(), end = offs[1].get<std::size_t>();
    HEED_CHECK(begin <= end && end <= data_len,
               "load_safetensors: '{}' is truncated or corrupted: tensor '{}' needs bytes [{}, {}) of a {}-byte data section",
               path, key, begin, end, data_len);
    const std::string tag = e["dtype"].is_string() ? e["dtype"].get<std::string>() : "";
    DType dtype;
    std::size_t file_elem = 0;
    if (tag == "F32") { dtype = DType::Float32; file_elem = 4; }
    else if (tag == "F64") { dtype = DType::Float64; file_elem = 8; }
    else if (tag == "I64") { dtype = DType::Int64; file_elem = 8; }
    else if (tag == "BOOL") { dtype = DType::Bool; file_elem = 1; }
    else if (tag == "F16" || tag == "BF16") { dtype = DType::Float32; file_elem = 2; }
    else throw Error(fmt::format("load_safetensors: '{}': tensor '{}' has unsupported dtype '{}'", path, key, tag));
    HEED_CHECK(numel * file_elem == end - begin,
               "load_safetensors: '{}': tensor '{}' of shape {} and dtype {} needs {} bytes, the file gives {}", path, key,
               shape_str(shape), tag, numel * file_elem, end - begin);
    Tensor t = make_tensor(shape, dtype);
    const char* src = bytes.data() + data_start + begin;
    if (file_elem == 2) {
      float* dst = t.data<float>();
      for (std::size_t i = 0; i < numel; ++i) {
        uint16_t h;
        std::memcpy(&h, src + 2 * i, 2);
        if (tag == "BF16") {
          const uint32_t bits = static_cast<uint32_t>(h) << 16;
          std::memcpy(dst + i, &bits, 4);
        } else {
          dst[i] = half_to_float(h);
        }
      }
    } else {
      std::memcpy(t.impl()->storage->data(), src, end - begin);
    }
    ranges.push_back({begin, end});
    ordered.push_back({begin, {key, t}});
  }
  std::sort(ranges.begin(), ranges.end());
  for (std::size_t i = 1; i < ranges.size(); ++i)
    HEED_CHECK(ranges[i].first >= ranges[i - 1].second, "load_safetensors: '{}' is corrupted: tensor data overlap", path);
  std::stable_sort(ordered.begin(), ordered.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  for (auto& o : ordered) file.tensors.push_back(std::move(o.second));
  return file;
}

}  // namespace heed::io
