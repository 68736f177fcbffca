// examples/captioning/render.hpp — a PNG strip per caption: the scene, then one panel per generated word
// with the attended region highlighted (α upsampled bilinearly from the annotation grid to the canvas,
// drawn as a red-to-yellow glow over the dimmed scene; a hard glimpse's sampled location is boxed).
#pragma once
#include <string>
#include <vector>

namespace captioning {

struct CaptionStrip {
  std::vector<float> pixels;               // the scene, canvas x canvas in [0, 1]
  std::vector<std::string> words;          // the generated words
  std::vector<std::vector<float>> alphas;  // per word: α over the grid_side x grid_side annotations
  std::vector<int> locations;              // per word: the sampled location, or -1 (empty: none)
  std::string title;                       // above the strip
};

// Throws heed::Error when the file cannot be written or the strips are inconsistent.
void save_caption_png(const std::string& path, const std::vector<CaptionStrip>& strips, int canvas, int grid_side,
                      const std::string& title);

}  // namespace captioning
