// heed/idx.hpp — the IDX format of MNIST and Fashion-MNIST (heed::data).
//
//   auto train = heed::data::load_fashion_mnist("train");   // images (60000, 28, 28) in [0,1], labels Int64
//   auto test = heed::data::load_fashion_mnist("t10k");     // from /usr/share/datasets/fashion-mnist
//
// An IDX file is: two zero bytes, a type byte (0x08 = unsigned byte, the only type MNIST uses and the only
// one read here), the number of dimensions k, k big-endian uint32 sizes, then the elements in row-major
// order. Files may be gzip-compressed (detected by their first bytes) or plain. Every check throws
// heed::Error naming the file: a bad magic number or type, the wrong number of dimensions, data shorter
// or longer than the header says, and images and labels that disagree in count.
//
// Fashion-MNIST on Debian: `apt-get install dataset-fashion-mnist` installs
// /usr/share/datasets/fashion-mnist/{train,t10k}-{images-idx3,labels-idx1}-ubyte.gz.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "heed/tensor.hpp"

namespace heed::data {

/// The raw contents of an IDX file of unsigned bytes.
struct IdxArray {
  Shape shape;                 ///< the k sizes from the header
  std::vector<uint8_t> bytes;  ///< shape_numel(shape) elements, row-major
};

/// Reads any unsigned-byte IDX file (gzip or plain); expected_dims > 0 also checks the number of dimensions.
/// max_items > 0 reads only the first max_items entries along the first axis (the file must still hold the
/// rest: a truncated file is an error either way).
IdxArray read_idx(const std::string& path, int64_t expected_dims = 0, int64_t max_items = 0);
/// idx3 images (N, rows, cols) -> Float32 (N, rows, cols) with values byte / 255.
Tensor read_idx_images(const std::string& path, int64_t max_items = 0);
/// idx1 labels (N) -> Int64 (N).
Tensor read_idx_labels(const std::string& path, int64_t max_items = 0);

/// Images with one class label each, as read from an idx3/idx1 pair.
struct ImageClassSet {
  Tensor images;  ///< Float32 (N, rows, cols) in [0, 1]
  Tensor labels;  ///< Int64 (N), the class of each image
};
/// Reads a matching pair of image and label files; throws when their counts differ.
ImageClassSet read_idx_image_set(const std::string& images_path, const std::string& labels_path, int64_t max_items = 0);

/// Where Debian's dataset-fashion-mnist package installs the four .gz files.
inline const char* kFashionMnistDir = "/usr/share/datasets/fashion-mnist";
/// Fashion-MNIST split "train" (60000) or "t10k" (10000), from `<dir>/<split>-images-idx3-ubyte.gz` and
/// `-labels-idx1-ubyte.gz`; throws heed::Error for another split or a missing/bad file.
ImageClassSet load_fashion_mnist(const std::string& split, const std::string& dir = kFashionMnistDir,
                                 int64_t max_items = 0);
/// The ten Fashion-MNIST class names, by label.
const std::vector<std::string>& fashion_mnist_classes();

}  // namespace heed::data
