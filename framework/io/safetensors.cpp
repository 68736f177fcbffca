// framework/io/safetensors.cpp — safetensors reader/writer with atomic writes (heed/io/safetensors.hpp).
#include "heed/io/safetensors.hpp"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

#include "heed/utf8.hpp"
#include "io/atomic_file.hpp"
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
    keys += (keys.empty() ? "" : ", ") + printable(k, 80);
  }
  throw Error(fmt::format("safetensors: no tensor named '{}' (the file has: {})", printable(name), printable(keys)));
}

// ---- atomic writes ---------------------------------------------------------------------------------------

namespace detail {

std::string temporary_name(const std::string& path) {
  // Distinct per call within a process (the counter) and across processes (the pid in the name).
  static std::atomic<uint64_t> counter{0};
  uint64_t x = static_cast<uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count()) ^
               (counter.fetch_add(1) * 0x9E3779B97F4A7C15ull);
  x ^= x >> 31;  // splitmix64's finalizer
  x *= 0xBF58476D1CE4E5B9ull;
  x ^= x >> 27;
  return fmt::format("{}.tmp.{}.{:08x}", path, static_cast<long>(::getpid()), static_cast<uint32_t>(x));
}

int remove_stale_temporaries(const std::string& path) {
  namespace fs = std::filesystem;
  const fs::path target(path);
  const fs::path dir = target.has_parent_path() ? target.parent_path() : fs::path(".");
  const std::string prefix = target.filename().string() + ".tmp.";
  std::error_code ec;
  fs::directory_iterator it(dir, ec), end;
  int removed = 0;
  for (; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (name.compare(0, prefix.size(), prefix) != 0) continue;
    // <pid> or <pid>.<hex>: the names heed's writers use (without the hex part before issue #16).
    const std::string rest = name.substr(prefix.size());
    const std::size_t dot = rest.find('.');
    const std::string pid_text = rest.substr(0, dot);
    const std::string suffix = dot == std::string::npos ? "" : rest.substr(dot + 1);
    if (pid_text.empty() || pid_text.size() > 9 || pid_text.find_first_not_of("0123456789") != std::string::npos)
      continue;
    if (dot != std::string::npos &&
        (suffix.empty() || suffix.size() > 16 || suffix.find_first_not_of("0123456789abcdef") != std::string::npos))
      continue;
    const long pid = std::stol(pid_text);
    if (pid <= 0 || pid == static_cast<long>(::getpid())) continue;
    if (::kill(static_cast<pid_t>(pid), 0) == 0 || errno != ESRCH) continue;  // running (or not ours to ask)
    if (::unlink(it->path().c_str()) == 0) ++removed;
  }
  return removed;
}

void sync_and_close(int fd, const std::string& what) {
  const int sync_error = ::fsync(fd) == 0 ? 0 : errno;
  const int close_error = ::close(fd) == 0 ? 0 : errno;  // always closed, also when fsync failed
  const int err = sync_error != 0 ? sync_error : close_error;
  HEED_CHECK(err == 0, "save: flushing '{}' failed: {}", what, std::strerror(err));
}

void sync_directory_of(const std::string& path) {
  const std::filesystem::path target(path);
  const std::string dir = target.has_parent_path() ? target.parent_path().string() : std::string(".");
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  HEED_CHECK(fd >= 0, "save: cannot open the directory '{}' to sync it: {}", dir, std::strerror(errno));
  const int sync_error = ::fsync(fd) == 0 ? 0 : errno;
  ::close(fd);
  HEED_CHECK(sync_error == 0 || sync_error == EINVAL, "save: syncing the directory '{}' failed: {}", dir,
             std::strerror(sync_error));
}

}  // namespace detail

void write_file_atomic(const std::string& path, const std::string& bytes) {
  detail::remove_stale_temporaries(path);
  const std::string tmp = detail::temporary_name(path);
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
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
  try {
    detail::sync_and_close(fd, tmp);
  } catch (const Error&) {
    ::unlink(tmp.c_str());
    throw;
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    throw Error(fmt::format("save: renaming '{}' to '{}' failed: {}", tmp, path, std::strerror(err)));
  }
  detail::sync_directory_of(path);
}

// ---- writing ---------------------------------------------------------------------------------------------

namespace {

// JSON text is UTF-8: a name or metadata string that is not cannot go into the header.
void check_utf8(const std::string& text, const std::string& what, const std::string& path) {
  const std::size_t bad = utf8_error_at(text);
  HEED_CHECK(bad == std::string::npos,
             "save_safetensors: {} is not valid UTF-8 (byte 0x{:02x} at offset {}); the header is JSON, which must "
             "be UTF-8 ({})",
             what, bad == std::string::npos ? 0 : static_cast<unsigned char>(text[bad]), bad, path);
}

// The bytes of a safetensors file; `path` names it in messages.
std::string serialize(const NamedTensors& tensors, const Metadata& metadata, const std::string& path) {
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  for (const auto& [key, value] : metadata) {
    check_utf8(key, fmt::format("the metadata key '{}'", printable(key)), path);
    check_utf8(value, fmt::format("the metadata value of '{}'", printable(key)), path);
  }
  if (!metadata.empty()) header["__metadata__"] = metadata;
  std::set<std::string> seen;
  std::size_t offset = 0;
  std::vector<Tensor> dense;
  for (const auto& [name, t] : tensors) {
    HEED_CHECK(t.defined(), "save_safetensors: tensor '{}' is undefined ({})", printable(name), path);
    HEED_CHECK(name != "__metadata__" && seen.insert(name).second,
               "save_safetensors: duplicate or reserved tensor name '{}' ({})", printable(name), path);
    check_utf8(name, fmt::format("the tensor name '{}'", printable(name)), path);
    Tensor d = t.detach().contiguous();
    const std::size_t nbytes = static_cast<std::size_t>(d.numel()) * dtype_size(d.dtype());
    header[name] = {{"dtype", dtype_tag(d.dtype())}, {"shape", d.shape()}, {"data_offsets", {offset, offset + nbytes}}};
    offset += nbytes;
    dense.push_back(d);
  }
  std::string json;
  try {
    json = header.dump();
  } catch (const nlohmann::json::exception& e) {  // not expected after the checks above
    throw Error(fmt::format("save_safetensors: cannot write the header of '{}': {}", path, printable(e.what())));
  }
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
  return bytes;
}

}  // namespace

std::string serialize_safetensors(const NamedTensors& tensors, const Metadata& metadata) {
  return serialize(tensors, metadata, "<memory>");
}

void save_safetensors(const std::string& path, const NamedTensors& tensors, const Metadata& metadata) {
  write_file_atomic(path, serialize(tensors, metadata, path));
}

// ---- reading ---------------------------------------------------------------------------------------------

namespace {

// Deeper nesting than any safetensors header needs (3 levels: the header, an entry, its shape).
constexpr int kMaxHeaderDepth = 32;

// One tensor of the header, validated.
struct Entry {
  std::string name, tag;
  DType dtype;
  std::size_t file_elem;  // bytes per element in the file (2 for F16/BF16, which load as Float32)
  Shape shape;
  std::size_t numel, begin, end;
};

struct Header {
  std::vector<Entry> entries;  // sorted by data offset
  Metadata metadata;
};

// Brackets counted outside strings, before any parsing: the JSON library's parser and destructor would
// recurse (and overflow the stack) on a header like [[[[...]]]] nested 100,000 levels deep.
void check_nesting(std::string_view json, const std::string& path) {
  int depth = 0;
  bool in_string = false, escaped = false;
  for (std::size_t i = 0; i < json.size(); ++i) {
    const char c = json[i];
    if (in_string) {
      if (escaped) escaped = false;
      else if (c == '\\') escaped = true;
      else if (c == '"') in_string = false;
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      HEED_CHECK(++depth <= kMaxHeaderDepth,
                 "load_safetensors: '{}' has a corrupted header: arrays or objects nested more than {} levels deep "
                 "(at byte {})", path, kMaxHeaderDepth, 8 + i);
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
}

// A shape: an array of integers in [0, 2^63); its product checked by detail::checked_numel.
Shape parse_shape(const nlohmann::json& value, const std::string& where) {
  HEED_CHECK(value.is_array(), "{}: the shape must be an array of non-negative integers, got {}", where,
             printable(value.dump(), 80));
  Shape shape;
  for (const auto& v : value) {
    HEED_CHECK(v.is_number_unsigned() && v.get<uint64_t>() <= static_cast<uint64_t>(INT64_MAX),
               "{}: the shape must be an array of non-negative integers, got {}", where, printable(value.dump(), 80));
    shape.push_back(static_cast<int64_t>(v.get<uint64_t>()));
  }
  heed::detail::checked_numel(shape, where.c_str());
  return shape;
}

// Every check on a header, in one place: the JSON, its nesting, each entry's dtype, shape and offsets, and
// the offsets together (they must tile the data section: no overlap, no gap, nothing after the last).
Header parse_header(std::string_view json, std::size_t data_len, const std::string& path) {
  check_nesting(json, path);
  nlohmann::json header;
  try {
    header = nlohmann::json::parse(json.begin(), json.end());
  } catch (const std::exception& e) {
    throw Error(fmt::format("load_safetensors: '{}' has a corrupted header: {}", path, printable(e.what())));
  }
  HEED_CHECK(header.is_object(), "load_safetensors: '{}' header is not a JSON object", path);
  Header out;
  for (auto it = header.begin(); it != header.end(); ++it) {
    const std::string& key = it.key();
    if (key == "__metadata__") {
      HEED_CHECK(it->is_object(), "load_safetensors: '{}': __metadata__ must be an object", path);
      for (auto m = it->begin(); m != it->end(); ++m)
        out.metadata[m.key()] = m->is_string() ? m->get<std::string>() : m->dump();
      continue;
    }
    const std::string where = fmt::format("load_safetensors: '{}': tensor '{}'", path, printable(key));
    const auto& e = *it;
    HEED_CHECK(e.is_object() && e.contains("dtype") && e.contains("shape") && e.contains("data_offsets"),
               "{} lacks dtype, shape or data_offsets", where);
    Entry entry;
    entry.name = key;
    entry.tag = e["dtype"].is_string() ? e["dtype"].get<std::string>() : e["dtype"].dump();
    const std::string& tag = entry.tag;
    if (tag == "F32") entry.dtype = DType::Float32, entry.file_elem = 4;
    else if (tag == "F64") entry.dtype = DType::Float64, entry.file_elem = 8;
    else if (tag == "I64") entry.dtype = DType::Int64, entry.file_elem = 8;
    else if (tag == "BOOL") entry.dtype = DType::Bool, entry.file_elem = 1;
    else if (tag == "F16" || tag == "BF16") entry.dtype = DType::Float32, entry.file_elem = 2;
    else throw Error(fmt::format("{} has unsupported dtype '{}'", where, printable(tag, 40)));
    entry.shape = parse_shape(e["shape"], where);
    entry.numel = static_cast<std::size_t>(shape_numel(entry.shape));  // at most 2^48
    const auto& offs = e["data_offsets"];
    HEED_CHECK(offs.is_array() && offs.size() == 2 && offs[0].is_number_unsigned() && offs[1].is_number_unsigned(),
               "{} has malformed data_offsets (two non-negative integers expected): {}", where,
               printable(offs.dump(), 80));
    entry.begin = offs[0].get<std::size_t>();
    entry.end = offs[1].get<std::size_t>();
    HEED_CHECK(entry.begin <= entry.end && entry.end <= data_len,
               "load_safetensors: '{}' is truncated or corrupted: tensor '{}' needs bytes [{}, {}) of a {}-byte data "
               "section", path, printable(key), entry.begin, entry.end, data_len);
    HEED_CHECK(entry.numel * entry.file_elem == entry.end - entry.begin,
               "{} of shape {} and dtype {} needs {} bytes, its data_offsets give {}", where, shape_str(entry.shape),
               tag, entry.numel * entry.file_elem, entry.end - entry.begin);
    out.entries.push_back(std::move(entry));
  }
  // The tensors come out in file order of offsets (header order among tensors at the same offset).
  std::stable_sort(out.entries.begin(), out.entries.end(),
                   [](const Entry& a, const Entry& b) { return a.begin < b.begin; });
  std::vector<const Entry*> by_range;  // empty tensors before a non-empty one at the same offset
  for (const Entry& entry : out.entries) by_range.push_back(&entry);
  std::stable_sort(by_range.begin(), by_range.end(), [](const Entry* a, const Entry* b) {
    return a->begin < b->begin || (a->begin == b->begin && a->end < b->end);
  });
  std::size_t covered = 0;  // the data section up to here belongs to the tensors seen so far
  const Entry* previous = nullptr;
  for (const Entry* next : by_range) {
    const Entry& entry = *next;
    HEED_CHECK(entry.begin >= covered,
               "load_safetensors: '{}' is corrupted: tensor data overlap ('{}' at bytes [{}, {}) and '{}' at [{}, {}))",
               path, printable(previous->name), previous->begin, previous->end, printable(entry.name), entry.begin,
               entry.end);
    HEED_CHECK(entry.begin == covered,
               "load_safetensors: '{}' is corrupted: the data_offsets leave bytes [{}, {}) of the data section to no "
               "tensor (before '{}')", path, covered, entry.begin, printable(entry.name));
    covered = entry.end;
    previous = &entry;
  }
  HEED_CHECK(covered == data_len,
             "load_safetensors: '{}' is corrupted: the data_offsets end at byte {} of a {}-byte data section", path,
             covered, data_len);
  return out;
}

}  // namespace

SafetensorsFile parse_safetensors(std::string_view bytes, const std::string& path) {
  HEED_CHECK(bytes.size() >= 8, "load_safetensors: '{}' is truncated ({} bytes; a header length needs 8)", path,
             bytes.size());
  uint64_t header_len = 0;
  for (int i = 0; i < 8; ++i) header_len |= static_cast<uint64_t>(static_cast<unsigned char>(bytes[i])) << (8 * i);
  HEED_CHECK(header_len <= bytes.size() - 8,
             "load_safetensors: '{}' is truncated or not a safetensors file (header length {} but only {} bytes follow)",
             path, header_len, bytes.size() - 8);
  const std::size_t data_start = 8 + static_cast<std::size_t>(header_len);
  const Header header = parse_header(bytes.substr(8, header_len), bytes.size() - data_start, path);

  SafetensorsFile file;
  file.metadata = header.metadata;
  for (const Entry& e : header.entries) {
    Tensor t = make_tensor(e.shape, e.dtype, "load_safetensors");
    const char* src = bytes.data() + data_start + e.begin;
    if (e.file_elem == 2) {
      float* dst = t.data<float>();
      for (std::size_t i = 0; i < e.numel; ++i) {
        uint16_t h;
        std::memcpy(&h, src + 2 * i, 2);
        if (e.tag == "BF16") {
          const uint32_t bits = static_cast<uint32_t>(h) << 16;
          std::memcpy(dst + i, &bits, 4);
        } else {
          dst[i] = half_to_float(h);
        }
      }
    } else if (e.end > e.begin) {
      std::memcpy(t.impl()->storage->data(), src, e.end - e.begin);
    }
    file.tensors.emplace_back(e.name, std::move(t));
  }
  return file;
}

SafetensorsFile load_safetensors(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  HEED_CHECK(in.good(), "load_safetensors: cannot open '{}'", path);
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string bytes = ss.str();
  return parse_safetensors(bytes, path);
}

int64_t metadata_int(const Metadata& metadata, const std::string& key, const std::string& path) {
  const auto it = metadata.find(key);
  HEED_CHECK(it != metadata.end(), "'{}' has no '{}' in its metadata", path, printable(key));
  const std::string& text = it->second;
  int64_t value = 0;
  bool ok = !text.empty() && text.size() <= 18;  // at most 10^18 - 1: no overflow below
  for (char c : text) {
    ok = ok && c >= '0' && c <= '9';
    if (ok) value = value * 10 + (c - '0');
  }
  HEED_CHECK(ok, "'{}': metadata '{}' is \"{}\", not a non-negative integer", path, printable(key),
             printable(text, 40));
  return value;
}

}  // namespace heed::io
