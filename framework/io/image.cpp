// framework/io/image.cpp — RGB pictures (heed/io/image.hpp): rectangles, grey images, stb_easy_font text,
// PNG via stb_image_write (its implementation comes from libstb).
#include "heed/io/image.hpp"

#include <stb/stb_easy_font.h>
#include <stb/stb_image_write.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "heed/io/safetensors.hpp"
#include "heed/ops.hpp"

namespace heed::io {

Image::Image(int width, int height, Color background) : width_(width), height_(height) {
  HEED_CHECK(width > 0 && height > 0 && width <= 16384 && height <= 16384,
             "Image: size must be between 1 and 16384 a side, got {} x {}", width, height);
  pixels_.resize(static_cast<std::size_t>(width) * height * 3);
  fill_rect(0, 0, width, height, background);
}

Color Image::at(int x, int y) const {
  HEED_CHECK(x >= 0 && y >= 0 && x < width_ && y < height_, "Image::at: ({}, {}) is outside the {} x {} picture", x, y,
             width_, height_);
  const uint8_t* p = &pixels_[(static_cast<std::size_t>(y) * width_ + x) * 3];
  return {p[0], p[1], p[2]};
}

void Image::fill_rect(int x0, int y0, int x1, int y1, Color c) {
  x0 = std::max(x0, 0), y0 = std::max(y0, 0), x1 = std::min(x1, width_), y1 = std::min(y1, height_);
  for (int y = y0; y < y1; ++y)
    for (int x = x0; x < x1; ++x) {
      uint8_t* p = &pixels_[(static_cast<std::size_t>(y) * width_ + x) * 3];
      p[0] = c.r, p[1] = c.g, p[2] = c.b;
    }
}

void Image::draw_box(double x, double y, double width, double height, Color c, int thickness) {
  if (!(std::isfinite(x) && std::isfinite(y) && std::isfinite(width) && std::isfinite(height))) return;
  auto clamp_int = [](double v) { return static_cast<int>(std::clamp(std::lround(v), -100000L, 100000L)); };
  const int x0 = clamp_int(x), y0 = clamp_int(y), x1 = clamp_int(x + width), y1 = clamp_int(y + height);
  const int t = std::max(thickness, 1);
  fill_rect(x0, y0, x1 + t, y0 + t, c);  // top
  fill_rect(x0, y1, x1 + t, y1 + t, c);  // bottom
  fill_rect(x0, y0, x0 + t, y1 + t, c);  // left
  fill_rect(x1, y0, x1 + t, y1 + t, c);  // right
}

void Image::draw_gray(const Tensor& image, int x, int y, int scale) {
  HEED_CHECK(image.defined() && image.dim() == 2 && is_floating(image.dtype()),
             "Image::draw_gray: expected a (height, width) float image, got {}",
             image.defined() ? shape_str(image.shape()) + " " + dtype_name(image.dtype()) : "undefined");
  HEED_CHECK(scale >= 1, "Image::draw_gray: scale must be >= 1, got {}", scale);
  const int64_t h = image.size(0), w = image.size(1);
  const std::vector<double> v = image.to_vector<double>();
  for (int64_t r = 0; r < h; ++r)
    for (int64_t col = 0; col < w; ++col) {
      const double g = std::isfinite(v[r * w + col]) ? std::clamp(v[r * w + col], 0.0, 1.0) : 0.0;
      const auto level = static_cast<uint8_t>(std::lround(g * 255.0));
      const int px = x + static_cast<int>(col) * scale, py = y + static_cast<int>(r) * scale;
      fill_rect(px, py, px + scale, py + scale, {level, level, level});
    }
}

// stb_easy_font emits axis-aligned quads (4 vertices of 16 bytes: x, y, z floats and RGBA); vertices 0 and
// 2 are opposite corners.
void Image::draw_text(int x, int y, const std::string& text, int scale, Color c) {
  std::string buffer;
  for (unsigned char ch : text) buffer += (ch >= 32 && ch < 127) ? static_cast<char>(ch) : '?';
  if (buffer.empty()) return;
  std::vector<char> quads(buffer.size() * 12 * 64);
  const int count = stb_easy_font_print(0, 0, buffer.data(), nullptr, quads.data(), static_cast<int>(quads.size()));
  for (int q = 0; q < count; ++q) {
    float u0, v0, u1, v1;
    std::memcpy(&u0, &quads[q * 64 + 0], 4), std::memcpy(&v0, &quads[q * 64 + 4], 4);
    std::memcpy(&u1, &quads[q * 64 + 32], 4), std::memcpy(&v1, &quads[q * 64 + 36], 4);
    fill_rect(x + static_cast<int>(u0) * scale, y + static_cast<int>(v0) * scale, x + static_cast<int>(u1) * scale,
              y + static_cast<int>(v1) * scale, c);
  }
}

int Image::text_width(const std::string& text, int scale) {
  if (text.empty()) return 0;
  std::string buffer = text;
  return (stb_easy_font_width(buffer.data()) - 1) * scale;
}

int Image::text_height(int scale) { return 9 * scale; }

Image image_grid(const Tensor& images, int columns, int scale, int padding) {
  HEED_CHECK(images.defined() && images.dim() == 3 && images.size(0) > 0,
             "image_grid: expected images (N, height, width), got {}",
             images.defined() ? shape_str(images.shape()) : "undefined");
  HEED_CHECK(columns >= 1 && scale >= 1 && padding >= 0,
             "image_grid: columns and scale must be >= 1 and padding >= 0, got {}, {}, {}", columns, scale, padding);
  const int n = static_cast<int>(images.size(0)), h = static_cast<int>(images.size(1)) * scale,
            w = static_cast<int>(images.size(2)) * scale;
  const int cols = std::min(columns, n), rows = (n + cols - 1) / cols;
  Image grid(cols * (w + padding) + padding, rows * (h + padding) + padding, kGrey);
  for (int i = 0; i < n; ++i)
    grid.draw_gray(select(images, 0, i), padding + (i % cols) * (w + padding), padding + (i / cols) * (h + padding),
                   scale);
  return grid;
}

void save_png(const std::string& path, const Image& image) {
  std::string bytes;
  auto append = [](void* context, void* data, int size) {
    static_cast<std::string*>(context)->append(static_cast<const char*>(data), static_cast<std::size_t>(size));
  };
  const int ok = stbi_write_png_to_func(append, &bytes, image.width(), image.height(), 3, image.data(), image.width() * 3);
  HEED_CHECK(ok != 0 && !bytes.empty(), "save_png: the PNG encoder failed for a {} x {} image", image.width(),
             image.height());
  try {
    write_file_atomic(path, bytes);
  } catch (const Error& e) {
    throw Error(fmt::format("save_png: cannot write '{}' ({})", path, e.what()));
  }
}

}  // namespace heed::io
