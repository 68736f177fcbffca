// framework/data/idx.cpp — IDX reader (heed/idx.hpp). zlib's gzread reads gzip and, transparently, plain
// files, so one path serves both.
#include "heed/idx.hpp"

#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>

#include "heed/ops.hpp"
#include "ops/common.hpp"

namespace heed::data {
namespace {

struct GzCloser {
  void operator()(gzFile_s* f) const {
    if (f != nullptr) gzclose(f);
  }
};
using GzFile = std::unique_ptr<gzFile_s, GzCloser>;

// Reads up to `count` bytes; returns how many were read (fewer at the end of the file).
std::size_t read_some(gzFile file, uint8_t* out, std::size_t count, const std::string& path) {
  std::size_t done = 0;
  while (done < count) {
    const unsigned chunk = static_cast<unsigned>(std::min<std::size_t>(count - done, 1u << 20));
    const int got = gzread(file, out + done, chunk);
    if (got < 0) {
      int code = 0;
      const char* message = gzerror(file, &code);
      throw Error(fmt::format("read_idx: '{}': {} (corrupt gzip data?)", path, message ? message : "read error"));
    }
    if (got == 0) break;
    done += static_cast<std::size_t>(got);
  }
  return done;
}

}  // namespace

IdxArray read_idx(const std::string& path, int64_t expected_dims, int64_t max_items) {
  GzFile file(gzopen(path.c_str(), "rb"));
  HEED_CHECK(file != nullptr, "read_idx: cannot open '{}': {}", path, std::strerror(errno));
  uint8_t magic[4];
  HEED_CHECK(read_some(file.get(), magic, 4, path) == 4, "read_idx: '{}' is too short for an IDX header", path);
  HEED_CHECK(magic[0] == 0 && magic[1] == 0,
             "read_idx: '{}' is not an IDX file (magic bytes {:02x} {:02x} {:02x} {:02x}, expected 00 00 08 <dims>)",
             path, magic[0], magic[1], magic[2], magic[3]);
  HEED_CHECK(magic[2] == 0x08, "read_idx: '{}' holds element type 0x{:02x}; only unsigned bytes (0x08) are supported",
             path, magic[2]);
  const int64_t dims = magic[3];
  HEED_CHECK(dims >= 1, "read_idx: '{}' declares 0 dimensions", path);
  HEED_CHECK(expected_dims <= 0 || dims == expected_dims, "read_idx: '{}' has {} dimensions, expected {}", path, dims,
             expected_dims);
  IdxArray array;
  for (int64_t d = 0; d < dims; ++d) {
    uint8_t be[4];
    HEED_CHECK(read_some(file.get(), be, 4, path) == 4, "read_idx: '{}' ends inside its header ({} of {} sizes)", path,
               d, dims);
    array.shape.push_back((int64_t{be[0]} << 24) | (int64_t{be[1]} << 16) | (int64_t{be[2]} << 8) | int64_t{be[3]});
  }
  // The sizes are checked before anything is multiplied or allocated: a header can declare up to
  // 255 sizes of up to 2^32 - 1 each.
  const int64_t total = detail::checked_numel(array.shape, fmt::format("read_idx: '{}'", path).c_str());
  HEED_CHECK(total <= (int64_t{1} << 34), "read_idx: '{}' declares shape {}, too large to read (more than 2^34 bytes)",
             path, shape_str(array.shape));
  // Grow as data arrives (64 KiB first, then doubling), so that a corrupt header cannot make us allocate a
  // huge buffer up front.
  std::size_t have = 0;
  while (static_cast<int64_t>(have) < total) {
    const std::size_t want =
        std::min<std::size_t>(static_cast<std::size_t>(total) - have, std::max<std::size_t>(have, std::size_t{64} << 10));
    array.bytes.resize(have + want);
    const std::size_t got = read_some(file.get(), array.bytes.data() + have, want, path);
    have += got;
    if (got < want) break;
  }
  HEED_CHECK(static_cast<int64_t>(have) == total,
             "read_idx: '{}' is truncated: its header declares shape {} ({} bytes of data) but only {} follow", path,
             shape_str(array.shape), total, have);
  uint8_t extra;
  HEED_CHECK(read_some(file.get(), &extra, 1, path) == 0,
             "read_idx: '{}' holds more data than its header's shape {} declares (wrong dimensions?)", path,
             shape_str(array.shape));
  if (max_items > 0 && max_items < array.shape[0]) {
    const int64_t per_item = total / std::max<int64_t>(array.shape[0], 1);
    array.shape[0] = max_items;
    array.bytes.resize(static_cast<std::size_t>(max_items * per_item));
  }
  return array;
}

Tensor read_idx_images(const std::string& path, int64_t max_items) {
  const IdxArray a = read_idx(path, 3, max_items);
  Tensor images = empty(a.shape, DType::Float32);
  float* out = images.data<float>();
  for (std::size_t i = 0; i < a.bytes.size(); ++i) out[i] = static_cast<float>(a.bytes[i]) / 255.0f;
  return images;
}

Tensor read_idx_labels(const std::string& path, int64_t max_items) {
  const IdxArray a = read_idx(path, 1, max_items);
  Tensor labels = empty(a.shape, DType::Int64);
  int64_t* out = labels.data<int64_t>();
  for (std::size_t i = 0; i < a.bytes.size(); ++i) out[i] = a.bytes[i];
  return labels;
}

ImageClassSet read_idx_image_set(const std::string& images_path, const std::string& labels_path, int64_t max_items) {
  ImageClassSet set{read_idx_images(images_path), read_idx_labels(labels_path)};
  HEED_CHECK(set.images.size(0) == set.labels.size(0),
             "read_idx_image_set: '{}' holds {} images but '{}' holds {} labels", images_path, set.images.size(0),
             labels_path, set.labels.size(0));
  if (max_items > 0 && max_items < set.images.size(0)) {
    set.images = narrow(set.images, 0, 0, max_items).contiguous();
    set.labels = narrow(set.labels, 0, 0, max_items).contiguous();
  }
  return set;
}

ImageClassSet load_fashion_mnist(const std::string& split, const std::string& dir, int64_t max_items) {
  HEED_CHECK(split == "train" || split == "t10k", "load_fashion_mnist: split must be \"train\" or \"t10k\", got \"{}\"",
             split);
  return read_idx_image_set(dir + "/" + split + "-images-idx3-ubyte.gz", dir + "/" + split + "-labels-idx1-ubyte.gz",
                            max_items);
}

const std::vector<std::string>& fashion_mnist_classes() {
  static const std::vector<std::string> names{"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                              "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};
  return names;
}

}  // namespace heed::data
