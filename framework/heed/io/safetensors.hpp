// heed/io/safetensors.hpp — read and write the safetensors format (the one PyTorch's ecosystem shares).
//
// Layout: an 8-byte little-endian header length N, N bytes of JSON
//   {"name": {"dtype": "F32", "shape": [2, 3], "data_offsets": [begin, end]}, ..., "__metadata__": {...}}
// then the raw little-endian tensor bytes, offsets relative to the end of the header. heed reads and
// writes F32, F64, I64 and BOOL; F16/BF16 files load as Float32.
//
// Writes are atomic: the file is written to "<path>.tmp.<pid>", flushed, fsync'ed and renamed over
// <path>, so a crash never leaves a half-written checkpoint. Loading validates everything (header
// length against the file size, JSON, dtypes, shapes against byte counts, offsets inside the data and
// not overlapping) and throws heed::Error naming the file and the key.
#pragma once
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "heed/tensor.hpp"

/// Files: safetensors checkpoints, heatmap PNGs.
namespace heed::io {

/// (name, tensor) pairs in a chosen order, e.g. Module::named_parameters(); names must be unique.
using NamedTensors = std::vector<std::pair<std::string, Tensor>>;
/// The string-to-string "__metadata__" object of a safetensors header.
using Metadata = std::map<std::string, std::string>;

/// The contents of a loaded safetensors file.
struct SafetensorsFile {
  NamedTensors tensors;  ///< in file order of offsets
  Metadata metadata;     ///< the "__metadata__" entries; empty when the file has none
  Tensor get(const std::string& name) const;  ///< throws naming the file's keys when absent
};

/// Writes `tensors` (contiguous little-endian, F32/F64/I64/BOOL) and `metadata` to `path`, atomically.
/// Throws heed::Error on an undefined tensor, a duplicate or reserved name, or a write failure.
void save_safetensors(const std::string& path, const NamedTensors& tensors, const Metadata& metadata = {});
/// Reads and validates a whole safetensors file; throws heed::Error naming the file (and key) on any defect.
SafetensorsFile load_safetensors(const std::string& path);

/// Atomically replaces `path` with `bytes` (temporary file + fsync + rename).
void write_file_atomic(const std::string& path, const std::string& bytes);

}  // namespace heed::io
