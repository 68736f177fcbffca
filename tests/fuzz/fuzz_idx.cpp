// tests/fuzz/fuzz_idx.cpp — heed::data::read_idx on arbitrary bytes, read twice: from a plain file and
// from the same bytes gzip-compressed (zlib's gzread serves both; the seeds hold both kinds). Either both
// reads throw heed::Error, or both return the same array, whose size matches its shape; max_items keeps a
// prefix of it, and the image/label readers agree with it.
#include <zlib.h>

#include <heed/error.hpp>
#include <heed/idx.hpp>
#include <heed/tensor.hpp>
#include <heed/utf8.hpp>
#include <optional>

#include "fuzz_common.hpp"

namespace {

std::optional<heed::data::IdxArray> read(const std::string& path, int64_t max_items = 0) {
  try {
    return heed::data::read_idx(path, 0, max_items);
  } catch (const heed::Error& e) {
    FUZZ_CHECK(heed::is_valid_utf8(e.what()));
    return std::nullopt;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  static const heed_fuzz::ScratchFile plain("idx_plain"), packed("idx_gzip");
  const std::optional<heed::data::IdxArray> a = read(plain.write(data, size));
  if (a) {
    FUZZ_CHECK(!a->shape.empty());
    FUZZ_CHECK(static_cast<int64_t>(a->bytes.size()) == heed::shape_numel(a->shape));
    const std::optional<heed::data::IdxArray> first = read(plain.path(), 1);
    FUZZ_CHECK(first.has_value());
    if (a->shape[0] > 1) {
      FUZZ_CHECK(first->shape[0] == 1);
      FUZZ_CHECK(std::equal(first->bytes.begin(), first->bytes.end(), a->bytes.begin()));
    }
    if (a->shape.size() == 1) {
      const heed::Tensor labels = heed::data::read_idx_labels(plain.path());
      FUZZ_CHECK(labels.shape() == a->shape);
    } else if (a->shape.size() == 3) {
      const heed::Tensor images = heed::data::read_idx_images(plain.path());
      FUZZ_CHECK(images.shape() == a->shape);
    }
  }
  // The same bytes through gzip (unless they are gzip data already: then the plain read unpacked them).
  if (size >= 2 && data[0] == 0x1f && data[1] == 0x8b) return 0;
  gzFile f = gzdopen(packed.reopen_empty(), "wb1");
  FUZZ_CHECK(f != nullptr);
  FUZZ_CHECK(size == 0 || gzwrite(f, data, static_cast<unsigned>(size)) == static_cast<int>(size));
  FUZZ_CHECK(gzclose(f) == Z_OK);
  const std::optional<heed::data::IdxArray> b = read(packed.path());
  FUZZ_CHECK(a.has_value() == b.has_value());
  if (a && b) FUZZ_CHECK(a->shape == b->shape && a->bytes == b->bytes);
  return 0;
}
