// heed/io/image.hpp: grids, grey levels, boxes, text and PNG output.
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <heed/heed.hpp>
#include <heed/io/image.hpp>

#include "testing.hpp"

TEST_CASE("image: grid layout, grey levels, boxes clipped to the picture, PNG file, errors") {
  // Two 2 x 3 images: all black and a ramp; 2x enlarged, 1 pixel padding, 2 columns.
  heed::Tensor images = heed::tensor({0, 0, 0, 0, 0, 0, 0.0, 0.2, 0.4, 0.6, 0.8, 1.5}, {2, 2, 3});
  heed::io::Image grid = heed::io::image_grid(images, 2, 2, 1);
  CHECK(grid.width() == 2 * (6 + 1) + 1);
  CHECK(grid.height() == 4 + 2);
  CHECK(grid.at(0, 0).r == heed::io::kGrey.r);  // padding
  CHECK(grid.at(1, 1).r == 0);                  // first image
  CHECK(grid.at(8 + 4, 1).r == 102);            // second image, column 2: 0.4 * 255 rounded
  CHECK(grid.at(8 + 5, 4).r == 255);            // 1.5 clamps to white
  heed::io::Image boxed(20, 10);
  boxed.draw_box(2.2, 3.0, 5.0, 4.0, heed::io::kRed);
  CHECK(boxed.at(2, 3).r == heed::io::kRed.r);
  CHECK(boxed.at(7, 7).g == heed::io::kRed.g);
  CHECK(boxed.at(4, 5).g == 255);  // inside stays white
  boxed.draw_box(-50, -50, 500, 500, heed::io::kGreen);  // far outside: clipped, no crash
  boxed.draw_text(1, 1, "t=3", 1, heed::io::kBlack);
  const std::string path = (std::filesystem::temp_directory_path() / "heed_image_test.png").string();
  heed::io::save_png(path, grid);
  std::ifstream in(path, std::ios::binary);
  char signature[8] = {};
  in.read(signature, 8);
  CHECK(std::string(signature + 1, 3) == "PNG");
  std::filesystem::remove(path);

  using heed::testing::error_of;
  CHECK(error_of([&] { heed::io::image_grid(heed::zeros({4, 4}), 2); }).find("image_grid: expected images") != std::string::npos);
  CHECK(error_of([&] { heed::io::Image(0, 5); }).find("0 x 5") != std::string::npos);
  CHECK(error_of([&] { grid.at(100, 0); }).find("outside") != std::string::npos);
  CHECK(error_of([&] { heed::io::save_png("/nonexistent/dir/x.png", grid); }).find("/nonexistent/dir/x.png") != std::string::npos);
}
