// heed/io/image.hpp — small RGB pictures of images: grids of samples, boxes, labels, written as PNG.
//
//   heed::io::save_png("samples.png", heed::io::image_grid(images, /*columns=*/8, /*scale=*/2));
//
//   heed::io::Image frame(28 * 4, 28 * 4);
//   frame.draw_gray(digit, 0, 0, 4);                       // digit (28, 28) in [0, 1], 4x enlarged
//   frame.draw_box(10.0 * 4, 12.0 * 4, 40.0, 40.0, heed::io::kRed);   // outline, clipped to the picture
//   frame.draw_text(2, 2, "t=3", 1, heed::io::kRed);
//   heed::io::save_png("frame.png", frame);
//
// Grey values are clamped to [0, 1] (0 black, 1 white). Text uses stb_easy_font (printable ASCII); PNGs
// are written with stb_image_write, atomically.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "heed/tensor.hpp"

namespace heed::io {

struct Color {
  uint8_t r = 0, g = 0, b = 0;
};
inline constexpr Color kWhite{255, 255, 255}, kBlack{0, 0, 0}, kRed{230, 40, 40}, kGreen{40, 200, 60},
    kGrey{128, 128, 128};

class Image {
 public:
  Image(int width, int height, Color background = kWhite);
  int width() const { return width_; }
  int height() const { return height_; }
  const uint8_t* data() const { return pixels_.data(); }  // RGB, row-major
  Color at(int x, int y) const;                           // throws outside the picture

  void fill_rect(int x0, int y0, int x1, int y1, Color c);  // [x0, x1) x [y0, y1), clipped
  // Outline of the box with top-left (x, y) and the given size (fractional values are rounded), clipped.
  void draw_box(double x, double y, double width, double height, Color c, int thickness = 1);
  // image (H, W) Float32/Float64 grey values in [0, 1] with top-left at (x, y), each pixel scale x scale.
  void draw_gray(const Tensor& image, int x, int y, int scale = 1);
  void draw_text(int x, int y, const std::string& text, int scale, Color c);  // top-left at (x, y)
  static int text_width(const std::string& text, int scale);
  static int text_height(int scale);

 private:
  int width_, height_;
  std::vector<uint8_t> pixels_;
};

// images (N, H, W) in [0, 1] laid out in rows of `columns`, each enlarged `scale` times, `padding` grey
// pixels between and around them.
Image image_grid(const Tensor& images, int columns, int scale = 1, int padding = 1);

// Throws heed::Error naming the path when the file cannot be written.
void save_png(const std::string& path, const Image& image);

}  // namespace heed::io
