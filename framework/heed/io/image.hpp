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

/// An 8-bit RGB colour.
struct Color {
  uint8_t r = 0;  ///< red, 0-255
  uint8_t g = 0;  ///< green, 0-255
  uint8_t b = 0;  ///< blue, 0-255
};
inline constexpr Color kWhite{255, 255, 255};  ///< the default background
inline constexpr Color kBlack{0, 0, 0};        ///< black
inline constexpr Color kRed{230, 40, 40};      ///< a strong red, visible on grey-scale images
inline constexpr Color kGreen{40, 200, 60};    ///< a green that stays visible on grey-scale images
inline constexpr Color kGrey{128, 128, 128};   ///< image_grid's padding

/// An RGB picture in memory, (0, 0) at the top left, x to the right and y down; save it with save_png.
class Image {
 public:
  /// width x height pixels (each 1-16384) filled with `background`; throws heed::Error otherwise.
  Image(int width, int height, Color background = kWhite);
  int width() const { return width_; }    ///< pixels per row
  int height() const { return height_; }  ///< rows
  const uint8_t* data() const { return pixels_.data(); }  ///< width*height*3 bytes: RGB, row-major
  Color at(int x, int y) const;                           ///< the pixel at (x, y); throws outside the picture

  void fill_rect(int x0, int y0, int x1, int y1, Color c);  ///< fills [x0, x1) x [y0, y1), clipped
  /// Outline of the box with top-left (x, y) and the given size (fractional values are rounded), clipped.
  void draw_box(double x, double y, double width, double height, Color c, int thickness = 1);
  /// image (H, W) Float32/Float64 grey values in [0, 1] with top-left at (x, y), each pixel scale x scale.
  void draw_gray(const Tensor& image, int x, int y, int scale = 1);
  /// Text with its top-left at (x, y), `scale` pixels per font unit, clipped; characters outside
  /// printable ASCII print as '?'.
  void draw_text(int x, int y, const std::string& text, int scale, Color c);
  static int text_width(const std::string& text, int scale);  ///< pixels draw_text covers horizontally
  static int text_height(int scale);                          ///< pixels of one text line: 9 * scale

 private:
  int width_, height_;
  std::vector<uint8_t> pixels_;
};

/// images (N, H, W) in [0, 1] laid out in rows of `columns`, each enlarged `scale` times, `padding` grey
/// pixels between and around them. Throws heed::Error for other shapes or columns/scale < 1.
Image image_grid(const Tensor& images, int columns, int scale = 1, int padding = 1);

/// Writes `image` as a PNG (atomically). Throws heed::Error naming the path when the file cannot be written.
void save_png(const std::string& path, const Image& image);

}  // namespace heed::io
