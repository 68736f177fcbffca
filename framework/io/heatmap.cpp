// framework/io/heatmap.cpp — heatmap PNGs of attention weights: an RGB canvas, stb_easy_font's bitmap
// glyphs (axis-aligned quads on an integer grid, drawn as filled rectangles, scaled and optionally
// rotated), a viridis colour scale, and stb_image_write's PNG encoder.
#include "heed/io/heatmap.hpp"

#include <stb/stb_easy_font.h>
#include <stb/stb_image_write.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "heed/io/safetensors.hpp"

namespace heed::io {
namespace {

struct Rgb {
  uint8_t r, g, b;
};
constexpr Rgb kBlack{0, 0, 0}, kGrey{150, 150, 150}, kGridLine{255, 255, 255};

class Canvas {
 public:
  Canvas(int width, int height)
      : width_(width), height_(height), pixels_(static_cast<std::size_t>(width) * height * 3, 255) {}
  // Fills [x0, x1) x [y0, y1), clipped to the canvas.
  void fill(int x0, int y0, int x1, int y1, Rgb c) {
    x0 = std::max(x0, 0), y0 = std::max(y0, 0), x1 = std::min(x1, width_), y1 = std::min(y1, height_);
    for (int y = y0; y < y1; ++y)
      for (int x = x0; x < x1; ++x) {
        uint8_t* p = &pixels_[(static_cast<std::size_t>(y) * width_ + x) * 3];
        p[0] = c.r, p[1] = c.g, p[2] = c.b;
      }
  }
  int width() const { return width_; }
  int height() const { return height_; }
  const uint8_t* data() const { return pixels_.data(); }

 private:
  int width_, height_;
  std::vector<uint8_t> pixels_;
};

// ---- text ----------------------------------------------------------------------------------------------
// stb_easy_font glyphs span font rows 0..9 (capitals 0..7, descenders to 9) and advance about 6 units.
constexpr int kGlyphRows = 9;
constexpr std::size_t kMaxLabel = 24;

// Printable ASCII only (stb_easy_font indexes its tables by byte - 32): any other character, UTF-8
// sequences included, becomes one '?'. Shortened to max_chars.
std::string printable(const std::string& text, std::size_t max_chars = kMaxLabel) {
  std::string out;
  for (unsigned char c : text) {
    if ((c & 0xC0) == 0x80) continue;  // a UTF-8 continuation byte
    out += (c >= 32 && c < 127) ? static_cast<char>(c) : '?';
  }
  if (out.size() > max_chars) out = out.substr(0, max_chars - 2) + "..";
  return out;
}

int text_width(const std::string& text, int scale) {
  if (text.empty()) return 0;
  std::string buffer = text;
  return (stb_easy_font_width(buffer.data()) - 1) * scale;  // the last advance's spacing is not ink
}

int text_height(int scale) { return kGlyphRows * scale; }

// Draws `text` with its top-left corner at (x, y). rotated: turned 90 degrees counter-clockwise (read
// bottom to top), (x, y) is then the bottom-left corner and the text runs upwards.
void draw_text(Canvas& canvas, int x, int y, const std::string& text, int scale, Rgb color, bool rotated = false) {
  if (text.empty()) return;
  std::string buffer = text;
  std::vector<char> quads(buffer.size() * 12 * 64);  // at most 11 quads of 64 bytes per glyph
  const int count = stb_easy_font_print(0, 0, buffer.data(), nullptr, quads.data(), static_cast<int>(quads.size()));
  for (int q = 0; q < count; ++q) {
    // Each quad is 4 vertices of 16 bytes (x, y, z floats, RGBA); vertices 0 and 2 are opposite corners.
    float u0, v0, u1, v1;
    std::memcpy(&u0, &quads[q * 64 + 0], 4), std::memcpy(&v0, &quads[q * 64 + 4], 4);
    std::memcpy(&u1, &quads[q * 64 + 32], 4), std::memcpy(&v1, &quads[q * 64 + 36], 4);
    const int a0 = static_cast<int>(u0) * scale, a1 = static_cast<int>(u1) * scale;
    const int b0 = static_cast<int>(v0) * scale, b1 = static_cast<int>(v1) * scale;
    if (rotated)  // font (u, v) -> canvas (x + v, y - u)
      canvas.fill(x + b0, y - a1, x + b1, y - a0, color);
    else
      canvas.fill(x + a0, y + b0, x + a1, y + b1, color);
  }
}

// ---- colour --------------------------------------------------------------------------------------------
// Viridis at 9 evenly spaced points, linearly interpolated: dark purple (low) to yellow (high).
Rgb viridis(double t) {
  static constexpr std::array<std::array<double, 3>, 9> kStops{{{68, 1, 84},
                                                                {71, 44, 122},
                                                                {59, 81, 139},
                                                                {44, 113, 142},
                                                                {33, 144, 141},
                                                                {39, 173, 129},
                                                                {92, 200, 99},
                                                                {170, 220, 50},
                                                                {253, 231, 37}}};
  t = std::clamp(t, 0.0, 1.0) * 8.0;
  const int i = std::min(static_cast<int>(t), 7);
  const double f = t - i;
  auto mix = [&](int k) {
    return static_cast<uint8_t>(std::lround(kStops[i][k] + f * (kStops[i + 1][k] - kStops[i][k])));
  };
  return {mix(0), mix(1), mix(2)};
}

std::string format_tick(double v) {
  std::string s = fmt::format("{:.3g}", v);
  return s == "-0" ? "0" : s;
}

// ---- layout --------------------------------------------------------------------------------------------

struct PanelData {
  int64_t rows = 0, cols = 0;
  std::vector<double> values;
  std::vector<std::string> row_labels, col_labels;
  std::string title;
  int col_label_height = 0;  // pixels above the grid for the rotated column labels
};

PanelData check_panel(const HeatmapPanel& panel, std::size_t index, std::size_t count) {
  const std::string which = count > 1 ? fmt::format(" (panel {})", index) : "";
  const Tensor& w = panel.weights;
  HEED_CHECK(w.defined(), "save_heatmap_png: weights{} is undefined", which);
  HEED_CHECK(w.dim() == 2 && w.numel() > 0,
             "save_heatmap_png: weights{} must be a non-empty (rows, cols) matrix, got shape {}", which,
             shape_str(w.shape()));
  HEED_CHECK(is_floating(w.dtype()), "save_heatmap_png: weights{} must be Float32 or Float64, got {}", which,
             dtype_name(w.dtype()));
  PanelData p;
  p.rows = w.size(0), p.cols = w.size(1);
  HEED_CHECK(panel.row_labels.empty() || static_cast<int64_t>(panel.row_labels.size()) == p.rows,
             "save_heatmap_png: {} row labels for weights{} of shape {}", panel.row_labels.size(), which,
             shape_str(w.shape()));
  HEED_CHECK(panel.col_labels.empty() || static_cast<int64_t>(panel.col_labels.size()) == p.cols,
             "save_heatmap_png: {} column labels for weights{} of shape {}", panel.col_labels.size(), which,
             shape_str(w.shape()));
  HEED_CHECK(p.rows <= 4096 && p.cols <= 4096,
             "save_heatmap_png: weights{} of shape {} is too large to draw (at most 4096 a side)", which,
             shape_str(w.shape()));
  p.values = w.to_vector<double>();
  for (const auto& l : panel.row_labels) p.row_labels.push_back(printable(l));
  for (const auto& l : panel.col_labels) p.col_labels.push_back(printable(l));
  p.title = printable(panel.title, 200);
  return p;
}

void write_png(const std::string& path, const Canvas& canvas) {
  std::string bytes;
  auto append = [](void* context, void* data, int size) {
    static_cast<std::string*>(context)->append(static_cast<const char*>(data), static_cast<std::size_t>(size));
  };
  const int ok =
      stbi_write_png_to_func(append, &bytes, canvas.width(), canvas.height(), 3, canvas.data(), canvas.width() * 3);
  HEED_CHECK(ok != 0 && !bytes.empty(), "save_heatmap_png: the PNG encoder failed for a {} x {} image", canvas.width(),
             canvas.height());
  try {
    write_file_atomic(path, bytes);
  } catch (const Error& e) {
    throw Error(fmt::format("save_heatmap_png: cannot write '{}' ({})", path, e.what()));
  }
}

}  // namespace

void save_heatmap_png(const std::string& path, const std::vector<HeatmapPanel>& panels, const std::string& title,
                      const HeatmapOptions& options) {
  HEED_CHECK(!panels.empty(), "save_heatmap_png: no panels to draw");
  HEED_CHECK(options.text_scale() >= 1 && options.text_scale() <= 8,
             "save_heatmap_png: text_scale must be in [1, 8], got {}", options.text_scale());
  HEED_CHECK(options.cell() >= 0, "save_heatmap_png: cell must be >= 0, got {}", options.cell());
  std::vector<PanelData> data;
  for (std::size_t i = 0; i < panels.size(); ++i) data.push_back(check_panel(panels[i], i, panels.size()));

  // The colour scale, shared by all panels.
  double lo = std::numeric_limits<double>::infinity(), hi = -lo;
  for (const PanelData& p : data)
    for (double v : p.values)
      if (std::isfinite(v)) lo = std::min(lo, v), hi = std::max(hi, v);
  if (!std::isfinite(lo)) lo = 0.0, hi = 1.0;  // nothing finite to scale by
  const double vmin = std::isnan(options.vmin()) ? std::min(lo, 0.0) : options.vmin();
  double vmax = std::isnan(options.vmax()) ? hi : options.vmax();
  HEED_CHECK(vmax >= vmin, "save_heatmap_png: vmax {} is below vmin {}", vmax, vmin);
  if (vmax == vmin) vmax = vmin + 1.0;

  const int s = options.text_scale(), line = text_height(s), pad = 4 * s;
  const int cell = options.cell() > 0 ? options.cell() : line + 4 * s;
  int label_width = 0, grid_width = 0;
  for (PanelData& p : data) {
    for (const auto& l : p.row_labels) label_width = std::max(label_width, text_width(l, s));
    for (const auto& l : p.col_labels) p.col_label_height = std::max(p.col_label_height, text_width(l, s));
    if (p.col_label_height > 0) p.col_label_height += pad;
    grid_width = std::max(grid_width, static_cast<int>(p.cols) * cell);
  }
  const int grid_left = 3 * pad + label_width + (label_width > 0 ? pad : 0);
  const int bar_width = 2 * cell / 3, bar_left = grid_left + grid_width + 3 * pad;
  const std::string tick_max = format_tick(vmax), tick_mid = format_tick((vmin + vmax) / 2),
                    tick_min = format_tick(vmin);
  const int tick_width = std::max({text_width(tick_max, s), text_width(tick_mid, s), text_width(tick_min, s)});
  const std::string fig_title = printable(title, 200);

  // Heights: figure title, then per panel its title, column labels and grid.
  int height = 2 * pad + (fig_title.empty() ? 0 : line + 2 * pad);
  const int first_grid_top = height + (data[0].title.empty() ? 0 : line + pad) + data[0].col_label_height;
  for (const PanelData& p : data)
    height += (p.title.empty() ? 0 : line + pad) + p.col_label_height + static_cast<int>(p.rows) * cell + 3 * pad;
  const int bar_height = std::max(4 * cell, static_cast<int>(data[0].rows) * cell);
  height = std::max(height, first_grid_top + bar_height + 2 * pad);
  int width = bar_left + bar_width + pad + tick_width + 3 * pad;
  width = std::max(width, 2 * pad + text_width(fig_title, s));
  for (const PanelData& p : data) width = std::max(width, grid_left + text_width(p.title, s) + pad);
  HEED_CHECK(static_cast<int64_t>(width) * height <= 64LL << 20,
             "save_heatmap_png: the image would be {} x {} pixels; draw fewer or smaller panels", width, height);

  Canvas canvas(width, height);
  int y = 2 * pad;
  if (!fig_title.empty()) {
    draw_text(canvas, 2 * pad, y, fig_title, s, kBlack);
    y += line + 2 * pad;
  }
  for (const PanelData& p : data) {
    if (!p.title.empty()) {
      draw_text(canvas, grid_left, y, p.title, s, kBlack);
      y += line + pad;
    }
    y += p.col_label_height;
    for (int64_t c = 0; c < static_cast<int64_t>(p.col_labels.size());
         ++c)  // centred on the column, ending above the grid
      draw_text(canvas, grid_left + static_cast<int>(c) * cell + (cell - line) / 2, y - pad, p.col_labels[c], s, kBlack,
                /*rotated=*/true);
    for (int64_t r = 0; r < p.rows; ++r) {
      const int top = y + static_cast<int>(r) * cell;
      if (!p.row_labels.empty())
        draw_text(canvas, grid_left - pad - text_width(p.row_labels[r], s), top + (cell - line) / 2, p.row_labels[r], s,
                  kBlack);
      for (int64_t c = 0; c < p.cols; ++c) {
        const double v = p.values[r * p.cols + c];
        const Rgb colour = std::isnan(v) ? kGrey : viridis((v - vmin) / (vmax - vmin));
        const int left = grid_left + static_cast<int>(c) * cell;
        canvas.fill(left, top, left + cell, top + cell, kGridLine);
        canvas.fill(left + 1, top + 1, left + cell - 1, top + cell - 1, colour);  // 1-pixel white grid
      }
    }
    y += static_cast<int>(p.rows) * cell + 3 * pad;
  }

  // Colour bar beside the first panel: vmax at the top, vmin at the bottom, three ticks.
  for (int i = 0; i < bar_height; ++i)
    canvas.fill(bar_left, first_grid_top + i, bar_left + bar_width, first_grid_top + i + 1,
                viridis(1.0 - static_cast<double>(i) / std::max(bar_height - 1, 1)));
  const int tick_x = bar_left + bar_width + pad;
  draw_text(canvas, tick_x, first_grid_top, tick_max, s, kBlack);
  draw_text(canvas, tick_x, first_grid_top + (bar_height - line) / 2, tick_mid, s, kBlack);
  draw_text(canvas, tick_x, first_grid_top + bar_height - line, tick_min, s, kBlack);
  write_png(path, canvas);
}

void save_heatmap_png(const std::string& path, const Tensor& weights, const std::vector<std::string>& row_labels,
                      const std::vector<std::string>& col_labels, const std::string& title,
                      const HeatmapOptions& options) {
  save_heatmap_png(path, {HeatmapPanel{weights, row_labels, col_labels, ""}}, title, options);
}

}  // namespace heed::io
