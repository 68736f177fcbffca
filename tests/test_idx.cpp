// IDX reader (heed/idx.hpp): small files written here, plain and gzip; every rejection names the file.
#include <doctest/doctest.h>
#include <zlib.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <heed/heed.hpp>
#include <heed/idx.hpp>
#include <string>
#include <vector>

#include "testing.hpp"

namespace {

using heed::testing::error_of;

std::vector<uint8_t> idx_bytes(uint8_t type, const std::vector<uint32_t>& dims, const std::vector<uint8_t>& data) {
  std::vector<uint8_t> b{0, 0, type, static_cast<uint8_t>(dims.size())};
  for (uint32_t d : dims)
    for (int shift = 24; shift >= 0; shift -= 8) b.push_back(static_cast<uint8_t>(d >> shift));
  b.insert(b.end(), data.begin(), data.end());
  return b;
}

class TempDir {
 public:
  TempDir() : path_(std::filesystem::temp_directory_path() / ("heed_idx_test_" + std::to_string(::getpid()))) {
    std::filesystem::create_directories(path_);
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  std::string write(const std::string& name, const std::vector<uint8_t>& bytes, bool gzip = false) const {
    const std::string file = (path_ / name).string();
    if (gzip) {
      gzFile f = gzopen(file.c_str(), "wb");
      REQUIRE(f != nullptr);
      REQUIRE(gzwrite(f, bytes.data(), static_cast<unsigned>(bytes.size())) == static_cast<int>(bytes.size()));
      gzclose(f);
    } else {
      std::ofstream out(file, std::ios::binary);
      out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
    }
    return file;
  }

 private:
  std::filesystem::path path_;
};

// Three 2 x 3 images with bytes 0, 10, 20, ... and labels 7, 0, 9.
std::vector<uint8_t> image_data() {
  std::vector<uint8_t> d;
  for (int i = 0; i < 18; ++i) d.push_back(static_cast<uint8_t>(i * 15));
  return d;
}

}  // namespace

TEST_CASE("idx: images and labels, plain and gzip, read back exactly; max_items keeps the first ones") {
  TempDir dir;
  const auto images = idx_bytes(0x08, {3, 2, 3}, image_data());
  const auto labels = idx_bytes(0x08, {3}, {7, 0, 9});
  for (bool gzip : {false, true}) {
    CAPTURE(gzip);
    const std::string ip = dir.write(gzip ? "i.gz" : "i", images, gzip), lp = dir.write(gzip ? "l.gz" : "l", labels, gzip);
    auto set = heed::data::read_idx_image_set(ip, lp);
    REQUIRE(set.images.dtype() == heed::DType::Float32);
    std::vector<double> want;
    for (uint8_t v : image_data()) want.push_back(v / 255.0);
    heed::testing::check_values(set.images, {3, 2, 3}, want, 1e-6);
    REQUIRE(set.labels.dtype() == heed::DType::Int64);
    CHECK(set.labels.to_vector<int64_t>() == std::vector<int64_t>{7, 0, 9});
    auto two = heed::data::read_idx_image_set(ip, lp, 2);
    CHECK(two.images.shape() == heed::Shape{2, 2, 3});
    CHECK(two.labels.to_vector<int64_t>() == std::vector<int64_t>{7, 0});
    CHECK(two.images.to_vector<float>()[11] == doctest::Approx(165 / 255.0));
    const auto raw = heed::data::read_idx(ip);
    CHECK(raw.shape == heed::Shape{3, 2, 3});
    CHECK(raw.bytes == image_data());
  }
}

TEST_CASE("idx: truncated, mismatched and malformed files are rejected naming the file") {
  TempDir dir;
  const auto data = image_data();
  auto contains = [](const std::string& message, const std::string& part) {
    CHECK_MESSAGE(message.find(part) != std::string::npos, message);
  };
  {  // bad magic
    const auto p = dir.write("magic", {1, 2, 8, 3, 0, 0, 0, 1});
    const std::string e = error_of([&] { heed::data::read_idx_images(p); });
    contains(e, "'" + p + "' is not an IDX file");
  }
  {  // an element type other than unsigned byte (0x0D = float)
    const auto p = dir.write("float", idx_bytes(0x0D, {1, 2, 3}, std::vector<uint8_t>(24)));
    contains(error_of([&] { heed::data::read_idx_images(p); }), "element type 0x0d");
  }
  {  // labels where images are expected (wrong number of dimensions)
    const auto p = dir.write("labels", idx_bytes(0x08, {3}, {1, 2, 3}));
    contains(error_of([&] { heed::data::read_idx_images(p); }), "'" + p + "' has 1 dimensions, expected 3");
  }
  {  // too short: the data ends early, plain and gzip
    for (bool gzip : {false, true}) {
      const auto p = dir.write(gzip ? "short.gz" : "short", idx_bytes(0x08, {3, 2, 3}, {data.begin(), data.end() - 1}), gzip);
      contains(error_of([&] { heed::data::read_idx_images(p); }),
               "'" + p + "' is truncated: its header declares shape [3, 2, 3] (18 bytes of data) but only 17 follow");
    }
  }
  {  // the header itself cut short
    const auto p = dir.write("header", {0, 0, 8, 3, 0, 0});
    contains(error_of([&] { heed::data::read_idx_images(p); }), "ends inside its header");
    const auto q = dir.write("tiny", {0, 0});
    contains(error_of([&] { heed::data::read_idx_images(q); }), "'" + q + "' is too short");
  }
  {  // more data than the dimensions say (e.g. wrong dims in the header)
    auto longer = data;
    longer.push_back(1);
    const auto p = dir.write("long", idx_bytes(0x08, {3, 2, 3}, longer));
    contains(error_of([&] { heed::data::read_idx_images(p); }), "holds more data than its header's shape [3, 2, 3]");
  }
  {  // image and label counts differ
    const auto ip = dir.write("i", idx_bytes(0x08, {3, 2, 3}, data));
    const auto lp = dir.write("l", idx_bytes(0x08, {2}, {1, 2}));
    contains(error_of([&] { heed::data::read_idx_image_set(ip, lp); }),
             "'" + ip + "' holds 3 images but '" + lp + "' holds 2 labels");
  }
  {  // corrupt gzip: a valid gzip header followed by garbage
    const auto good = dir.write("ok.gz", idx_bytes(0x08, {3, 2, 3}, data), true);
    std::ifstream in(good, std::ios::binary);
    std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)), {});
    for (std::size_t i = 12; i < bytes.size(); ++i) bytes[i] = static_cast<uint8_t>(0xA5 ^ i);
    const auto p = dir.write("bad.gz", bytes);
    contains(error_of([&] { heed::data::read_idx_images(p); }), "'" + p + "'");
  }
  contains(error_of([&] { heed::data::read_idx_labels("/nonexistent/labels.idx"); }),
           "cannot open '/nonexistent/labels.idx'");
  contains(error_of([&] { heed::data::load_fashion_mnist("test"); }), "split must be \"train\" or \"t10k\"");
}
