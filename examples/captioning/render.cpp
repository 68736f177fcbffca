// examples/captioning/render.cpp — see render.hpp. An RGB canvas, stb_easy_font for the words and
// stb_image_write for the PNG (the same libraries as heed/io/heatmap.hpp).
#include "render.hpp"

#include <stb/stb_easy_font.h>
#include <stb/stb_image_write.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <heed/error.hpp>
#include <heed/io/safetensors.hpp>

namespace captioning {
namespace {

constexpr int kScale = 3;  // pixels per scene pixel
constexpr int kTextScale = 2, kGap = 6, kLabelHeight = 24, kTitleHeight = 26;

struct Image {
  int width, height;
  std::vector<uint8_t> rgb;
  Image(int w, int h) : width(w), height(h), rgb(static_cast<std::size_t>(w) * h * 3, 255) {}
  void set(int x, int y, uint8_t r, uint8_t g, uint8_t b) {
    if (x < 0 || y < 0 || x >= width || y >= height) return;
    uint8_t* p = &rgb[(static_cast<std::size_t>(y) * width + x) * 3];
    p[0] = r, p[1] = g, p[2] = b;
  }
  void fill(int x0, int y0, int x1, int y1, uint8_t r, uint8_t g, uint8_t b) {
    for (int y = y0; y < y1; ++y)
      for (int x = x0; x < x1; ++x) set(x, y, r, g, b);
  }
};

void draw_text(Image& image, int x, int y, const std::string& text) {
  if (text.empty()) return;
  std::string buffer = text;
  std::vector<char> quads(buffer.size() * 12 * 64);
  const int count = stb_easy_font_print(0, 0, buffer.data(), nullptr, quads.data(), static_cast<int>(quads.size()));
  for (int q = 0; q < count; ++q) {
    float u0, v0, u1, v1;
    std::memcpy(&u0, &quads[q * 64 + 0], 4), std::memcpy(&v0, &quads[q * 64 + 4], 4);
    std::memcpy(&u1, &quads[q * 64 + 32], 4), std::memcpy(&v1, &quads[q * 64 + 36], 4);
    image.fill(x + static_cast<int>(u0) * kTextScale, y + static_cast<int>(v0) * kTextScale,
               x + static_cast<int>(u1) * kTextScale, y + static_cast<int>(v1) * kTextScale, 0, 0, 0);
  }
}

// α of one word, bilinearly upsampled from grid_side^2 cells to canvas^2 pixels, on a fixed scale: 0 at
// α = 0, full at α >= 9 / L (a weight spread evenly over 9 locations; an object covers about 4), so a
// near-uniform α stays dark instead of being stretched to full brightness.
std::vector<float> upsample(const std::vector<float>& alpha, int grid_side, int canvas) {
  const float peak = 9.0f / static_cast<float>(alpha.size());
  std::vector<float> out(static_cast<std::size_t>(canvas) * canvas);
  const float step = static_cast<float>(grid_side) / canvas;
  auto at = [&](int gy, int gx) {
    gy = std::clamp(gy, 0, grid_side - 1), gx = std::clamp(gx, 0, grid_side - 1);
    return std::min(1.0f, alpha[static_cast<std::size_t>(gy * grid_side + gx)] / peak);
  };
  for (int y = 0; y < canvas; ++y)
    for (int x = 0; x < canvas; ++x) {
      const float fy = (y + 0.5f) * step - 0.5f, fx = (x + 0.5f) * step - 0.5f;
      const int y0 = static_cast<int>(std::floor(fy)), x0 = static_cast<int>(std::floor(fx));
      const float wy = fy - y0, wx = fx - x0;
      out[static_cast<std::size_t>(y * canvas + x)] =
          (1 - wy) * ((1 - wx) * at(y0, x0) + wx * at(y0, x0 + 1)) + wy * ((1 - wx) * at(y0 + 1, x0) + wx * at(y0 + 1, x0 + 1));
    }
  return out;
}

// One panel at (x0, y0): the scene, dimmed and glowing where `heat` (or null: the plain scene).
void draw_panel(Image& image, int x0, int y0, const std::vector<float>& pixels, const std::vector<float>* heat,
                int canvas) {
  for (int y = 0; y < canvas * kScale; ++y)
    for (int x = 0; x < canvas * kScale; ++x) {
      const std::size_t i = static_cast<std::size_t>((y / kScale) * canvas + x / kScale);
      const float v = pixels[i];
      if (!heat) {
        const auto g = static_cast<uint8_t>(std::lround(255 * v));
        image.set(x0 + x, y0 + y, g, g, g);
        continue;
      }
      const float h = (*heat)[i], base = 0.35f * v;
      // Dark red at low weight, through orange to yellow at the peak, over the dimmed scene.
      const float r = std::min(1.0f, base + 1.2f * h), g = std::min(1.0f, base + 0.9f * h * h), b = base * (1 - h);
      image.set(x0 + x, y0 + y, static_cast<uint8_t>(255 * r), static_cast<uint8_t>(255 * g),
                static_cast<uint8_t>(255 * b));
    }
}

}  // namespace

void save_caption_png(const std::string& path, const std::vector<CaptionStrip>& strips, int canvas, int grid_side,
                      const std::string& title) {
  HEED_CHECK(!strips.empty(), "save_caption_png: no strips for '{}'", path);
  const int panel = canvas * kScale;
  std::size_t most_words = 0;
  for (const CaptionStrip& s : strips) {
    HEED_CHECK(s.pixels.size() == static_cast<std::size_t>(canvas * canvas) && s.alphas.size() == s.words.size(),
               "save_caption_png: a strip has {} pixels and {} words but {} attention maps", s.pixels.size(),
               s.words.size(), s.alphas.size());
    most_words = std::max(most_words, s.words.size());
  }
  int width = kGap + static_cast<int>(most_words + 1) * (panel + kGap);
  auto text_width = [](const std::string& text) {
    std::string buffer = text;
    return stb_easy_font_width(buffer.data()) * kTextScale + 2 * kGap;
  };
  width = std::max(width, text_width(title));
  for (const CaptionStrip& s : strips) width = std::max(width, text_width(s.title));
  const int strip_height = kTitleHeight + panel + kLabelHeight + kGap;
  Image image(width, kTitleHeight + static_cast<int>(strips.size()) * strip_height);
  draw_text(image, kGap, 6, title);
  for (std::size_t r = 0; r < strips.size(); ++r) {
    const CaptionStrip& s = strips[r];
    const int top = kTitleHeight + static_cast<int>(r) * strip_height;
    draw_text(image, kGap, top + 6, s.title);
    const int y0 = top + kTitleHeight;
    draw_panel(image, kGap, y0, s.pixels, nullptr, canvas);
    draw_text(image, kGap, y0 + panel + 4, "scene");
    for (std::size_t w = 0; w < s.words.size(); ++w) {
      HEED_CHECK(s.alphas[w].size() == static_cast<std::size_t>(grid_side * grid_side),
                 "save_caption_png: an attention map has {} values for a {} x {} grid", s.alphas[w].size(), grid_side,
                 grid_side);
      const int x0 = kGap + static_cast<int>(w + 1) * (panel + kGap);
      const std::vector<float> heat = upsample(s.alphas[w], grid_side, canvas);
      draw_panel(image, x0, y0, s.pixels, &heat, canvas);
      const int location = w < s.locations.size() ? s.locations[w] : -1;
      if (location >= 0) {  // box the sampled glimpse's cell of the annotation grid
        const int side = panel / grid_side, bx = x0 + (location % grid_side) * side, by = y0 + (location / grid_side) * side;
        image.fill(bx, by, bx + side, by + 2, 0, 255, 255), image.fill(bx, by + side - 2, bx + side, by + side, 0, 255, 255);
        image.fill(bx, by, bx + 2, by + side, 0, 255, 255), image.fill(bx + side - 2, by, bx + side, by + side, 0, 255, 255);
      }
      draw_text(image, x0, y0 + panel + 4, s.words[w]);
    }
  }
  std::string bytes;
  auto append = [](void* context, void* data, int size) {
    static_cast<std::string*>(context)->append(static_cast<const char*>(data), static_cast<std::size_t>(size));
  };
  const int ok = stbi_write_png_to_func(append, &bytes, image.width, image.height, 3, image.rgb.data(), image.width * 3);
  HEED_CHECK(ok != 0, "save_caption_png: the PNG encoder failed for '{}'", path);
  heed::io::write_file_atomic(path, bytes);
}

}  // namespace captioning
