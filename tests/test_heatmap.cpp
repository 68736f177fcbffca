// heed::io::save_heatmap_png: writes a real PNG (signature, IHDR size matching the layout), single and
// multi-panel, and rejects bad shapes, labels and options with heed::Error.
#include <doctest/doctest.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <heed/heed.hpp>
#include <heed/io/heatmap.hpp>
#include <iterator>
#include <string>
#include <vector>

namespace {

std::string temp_png(const char* name) {
  return std::string("/tmp/heed_test_heatmap_") + name + "_" + std::to_string(::getpid()) + ".png";
}

std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

uint32_t big_endian(const std::string& bytes, std::size_t at) {
  uint32_t v = 0;
  for (std::size_t i = 0; i < 4; ++i) v = (v << 8) | static_cast<unsigned char>(bytes[at + i]);
  return v;
}

struct PngInfo {
  uint32_t width = 0, height = 0;
  std::size_t bytes = 0;
};

// Checks the PNG signature and the IHDR chunk, returns the image size.
PngInfo read_png_header(const std::string& path) {
  const std::string bytes = read_bytes(path);
  REQUIRE(bytes.size() > 33);
  CHECK(bytes.substr(0, 8) == std::string("\x89PNG\r\n\x1a\n", 8));
  CHECK(bytes.substr(12, 4) == "IHDR");
  CHECK(bytes.substr(bytes.size() - 8, 4) == "IEND");
  return {big_endian(bytes, 16), big_endian(bytes, 20), bytes.size()};
}

}  // namespace

TEST_CASE("heatmap: writes a PNG of a labelled attention matrix") {
  const std::string path = temp_png("single");
  heed::Tensor weights = heed::softmax(heed::randn({3, 5}), 1);
  heed::io::save_heatmap_png(path, weights, {"le", "chat", "noir"}, {"the", "black", "cat", "<eos>", "!"}, "alignment");
  const PngInfo png = read_png_header(path);
  // 5 columns of 26-pixel cells plus labels and the colour bar; 3 rows plus column labels and the title.
  CHECK(png.width > 5 * 26);
  CHECK(png.width < 1000);
  CHECK(png.height > 3 * 26);
  CHECK(png.height < 1000);
  CHECK(png.bytes > 200);
  std::remove(path.c_str());
}

TEST_CASE("heatmap: panels of different shapes stack into one PNG, labels are optional, Float64 works") {
  const std::string one = temp_png("one"), many = temp_png("many");
  heed::Tensor row = heed::softmax(heed::randn({1, 12}, heed::DType::Float64), 1);
  heed::io::save_heatmap_png(one, {heed::io::HeatmapPanel{row, {}, {}, ""}});
  std::vector<heed::io::HeatmapPanel> panels;
  panels.push_back({row, {"p=0.93"}, std::vector<std::string>(12, "word"), "sentence 1"});
  panels.push_back({heed::softmax(heed::randn({2, 4}), 1), {"a", "b"}, {"w", "x", "y", "z"}, "sentence 2"});
  panels.push_back({heed::rand({1, 7}),
                    {},
                    {"unicode \xc3\xa9t\xc3\xa9", "a very long label that gets shortened", "", "c", "d", "e", "f"},
                    ""});
  heed::io::save_heatmap_png(many, panels, "three panels");
  const PngInfo small = read_png_header(one), big = read_png_header(many);
  CHECK(big.height > small.height + 2 * 26);  // the stacked panels add rows, labels and titles
  CHECK(big.width >= small.width);
  std::remove(one.c_str());
  std::remove(many.c_str());
}

TEST_CASE("heatmap: bad shapes, labels and options throw naming the problem") {
  const std::string path = temp_png("bad");
  using heed::io::save_heatmap_png;
  CHECK_THROWS_WITH_AS(save_heatmap_png(path, heed::zeros({3})), doctest::Contains("[3]"), heed::Error);
  CHECK_THROWS_WITH_AS(save_heatmap_png(path, heed::zeros({2, 2, 2})), doctest::Contains("(rows, cols)"), heed::Error);
  CHECK_THROWS_WITH_AS(save_heatmap_png(path, heed::zeros({0, 4})), doctest::Contains("non-empty"), heed::Error);
  CHECK_THROWS_WITH_AS(save_heatmap_png(path, heed::Tensor()), doctest::Contains("undefined"), heed::Error);
  CHECK_THROWS_WITH_AS(save_heatmap_png(path, heed::zeros({2, 2}, heed::DType::Int64)), doctest::Contains("Int64"),
                       heed::Error);
  CHECK_THROWS_WITH_AS(save_heatmap_png(path, heed::zeros({2, 3}), {"only one"}), doctest::Contains("1 row labels"),
                       heed::Error);
  CHECK_THROWS_WITH_AS(save_heatmap_png(path, heed::zeros({2, 3}), {}, {"a", "b"}),
                       doctest::Contains("2 column labels"), heed::Error);
  heed::io::HeatmapOptions inverted;
  inverted.vmin(1.0);
  inverted.vmax(0.0);
  CHECK_THROWS_WITH_AS(save_heatmap_png(path, heed::zeros({2, 3}), {}, {}, "", inverted), doctest::Contains("vmax"),
                       heed::Error);
  CHECK_THROWS_WITH_AS(save_heatmap_png(path, std::vector<heed::io::HeatmapPanel>{}), doctest::Contains("no panels"),
                       heed::Error);
  CHECK_THROWS_WITH_AS(save_heatmap_png("/nonexistent-dir/x.png", heed::zeros({2, 3})),
                       doctest::Contains("nonexistent-dir"), heed::Error);
  CHECK(read_bytes(path).empty());  // nothing was written by the failing calls
}
