// examples/captioning/scenes.hpp — the generated scenes and their captions (README.md, "the data").
//
// A 48x48 grey canvas split into a 3x3 grid of 16-pixel cells. 1 to max_objects cells (distinct, uniform)
// each hold one of six shapes, drawn with jitter: the centre moves up to ±2 pixels, the half-size is 4 to
// 6 pixels, the brightness 0.7 to 1; every pixel gets N(0, 0.08^2) noise, clamped to [0, 1].
// The caption names every object in raster order as "<shape> <place>", then <eos>:
//   "circle top-left square bottom-right <eos>"
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include <heed/random.hpp>

namespace captioning {

constexpr int kCanvas = 48, kGrid = 3, kCell = kCanvas / kGrid;
constexpr int kShapes = 6, kPlaces = kGrid * kGrid;
// Token ids: shapes 0..5, places 6..14, then <eos> and <bos> (the decoder's first input).
constexpr int64_t kEos = kShapes + kPlaces, kBos = kEos + 1, kVocab = kBos + 1;

inline const std::vector<std::string>& vocabulary() {
  static const std::vector<std::string> words{"square",   "circle", "triangle",  "cross",       "bar",
                                              "ring",     "top-left", "top",     "top-right",   "left",
                                              "center",   "right",  "bottom-left", "bottom",    "bottom-right",
                                              "<eos>",    "<bos>"};
  return words;
}

struct Scene {
  std::vector<float> pixels;     // kCanvas * kCanvas, row-major
  std::vector<int64_t> caption;  // token ids, ending with kEos
  std::vector<int> cells;        // the filled cells in raster order (one per object)
};

// Whether pixel offset (dx, dy) from the centre is ink for `shape` of half-size s.
inline bool inside(int shape, int dx, int dy, int s) {
  const int ax = std::abs(dx), ay = std::abs(dy), r2 = dx * dx + dy * dy;
  switch (shape) {
    case 0: return ax <= s && ay <= s;                                      // square (filled)
    case 1: return r2 <= s * s;                                             // circle (filled disc)
    case 2: return dy >= -s && dy <= s && 2 * ax <= dy + s;                 // triangle, apex up
    case 3: return (ax <= 1 && ay <= s) || (ay <= 1 && ax <= s);            // cross (+)
    case 4: return ay <= 1 && ax <= s + 1;                                  // bar (horizontal)
    default: return r2 <= s * s && r2 >= (s - 2) * (s - 2);                 // ring
  }
}

inline Scene make_scene(heed::Generator& gen, int max_objects) {
  Scene scene;
  scene.pixels.assign(kCanvas * kCanvas, 0.0f);
  const int count = static_cast<int>(gen.randint(1, max_objects + 1));
  std::vector<bool> used(kPlaces, false);
  for (int placed = 0; placed < count;) {
    const int cell = static_cast<int>(gen.randint(0, kPlaces));
    if (!used[cell]) used[cell] = true, ++placed;
  }
  for (int cell = 0; cell < kPlaces; ++cell) {
    if (!used[cell]) continue;
    const int shape = static_cast<int>(gen.randint(0, kShapes));
    const int cx = (cell % kGrid) * kCell + kCell / 2 + static_cast<int>(gen.randint(-2, 3));
    const int cy = (cell / kGrid) * kCell + kCell / 2 + static_cast<int>(gen.randint(-2, 3));
    const int half = static_cast<int>(gen.randint(4, 7));
    const float ink = static_cast<float>(gen.uniform(0.7, 1.0));
    for (int y = cy - kCell / 2; y < cy + kCell / 2; ++y)
      for (int x = cx - kCell / 2; x < cx + kCell / 2; ++x)
        if (x >= 0 && y >= 0 && x < kCanvas && y < kCanvas && inside(shape, x - cx, y - cy, half))
          scene.pixels[y * kCanvas + x] = ink;
    scene.caption.push_back(shape);
    scene.caption.push_back(kShapes + cell);
    scene.cells.push_back(cell);
  }
  scene.caption.push_back(kEos);
  for (float& p : scene.pixels) p = std::clamp(p + static_cast<float>(0.08 * gen.normal()), 0.0f, 1.0f);
  return scene;
}

inline std::string caption_text(const std::vector<int64_t>& tokens) {
  std::string text;
  for (int64_t t : tokens) {
    if (!text.empty()) text += ' ';
    text += vocabulary()[static_cast<std::size_t>(t)];
    if (t == kEos) break;
  }
  return text;
}

}  // namespace captioning
