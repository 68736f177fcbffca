// heed/io/safetensors.hpp — read and write the safetensors format (the one PyTorch's ecosystem shares).
//
// Layout: an 8-byte little-endian header length N, N bytes of JSON
//   {"name": {"dtype": "F32", "shape": [2, 3], "data_offsets": [begin, end]}, ..., "__metadata__": {...}}
// then the raw little-endian tensor bytes, offsets relative to the end of the header. heed reads and
// writes F32, F64, I64 and BOOL; F16/BF16 files load as Float32.
//
// Writes are atomic: the file is written to "<path>.tmp.<pid>.<8 hex digits>", fsync'ed, closed, renamed
// over <path>, and the directory is fsync'ed, so a crash never leaves a half-written checkpoint. A save
// killed before its rename leaves its temporary file behind; the next save of the same path removes every
// "<path>.tmp.<pid>[.<hex>]" whose process no longer exists (files of running processes stay).
//
// Loading validates everything and throws heed::Error naming the file and the key: the header length
// against the file size; the JSON (nested at most 32 levels, checked before parsing); each entry's dtype,
// its shape (non-negative integers whose product is at most 2^48) and its data_offsets (non-negative
// integers, the byte count the shape and dtype need); and that the offsets tile the data section exactly
// (no overlap, no gap, no trailing bytes). Bytes quoted from the file in a message are escaped
// (heed::printable). Saving checks that every name and metadata string is UTF-8, as JSON requires.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
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
/// Throws heed::Error on an undefined tensor, a duplicate or reserved name, a name or metadata key or
/// value that is not valid UTF-8 (naming it), or a write failure.
void save_safetensors(const std::string& path, const NamedTensors& tensors, const Metadata& metadata = {});
/// The bytes save_safetensors writes (same checks; messages name "<memory>" instead of a path).
std::string serialize_safetensors(const NamedTensors& tensors, const Metadata& metadata = {});
/// Reads and validates a whole safetensors file; throws heed::Error naming the file (and key) on any defect.
SafetensorsFile load_safetensors(const std::string& path);
/// The same checks on the bytes of a safetensors file already in memory; `path` names it in messages.
SafetensorsFile parse_safetensors(std::string_view bytes, const std::string& path = "<memory>");

/// metadata[key] as a non-negative decimal integer (at most 18 digits); throws heed::Error naming `path`
/// and the key when it is missing or is anything else ("", "-3", "12abc", "1e3").
int64_t metadata_int(const Metadata& metadata, const std::string& key, const std::string& path);

/// Atomically replaces `path` with `bytes` (temporary file + fsync + rename + fsync of the directory),
/// first removing the temporary files that killed saves of `path` left behind (see above).
void write_file_atomic(const std::string& path, const std::string& bytes);

}  // namespace heed::io
