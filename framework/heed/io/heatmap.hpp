// heed/io/heatmap.hpp — attention weights as a labelled heatmap PNG.
//
//   heed::io::save_heatmap_png("alignment.png", weights, target_tokens, source_tokens, "Luong dot");
//
// weights (R, C): rows are outputs (queries), columns are inputs (keys). Row labels go left of the grid,
// column labels above it (rotated, read bottom to top), a title on top and a colour bar (viridis, from
// vmin to vmax) on the right. Text uses a built-in bitmap font (stb_easy_font: printable ASCII; any
// other character prints as '?'); labels longer than 24 characters are shortened. The PNG is written
// with stb_image_write, atomically (a temporary file renamed over `path`).
//
// Several heatmaps with different shapes (e.g. one row of attention per sentence) go into one PNG,
// stacked top to bottom with one shared colour scale, with the panel overload.
#pragma once
#include <limits>
#include <string>
#include <vector>

#include "heed/options.hpp"
#include "heed/tensor.hpp"

namespace heed::io {

/// One heatmap of a multi-panel PNG (the panel overload of save_heatmap_png).
struct HeatmapPanel {
  Tensor weights;                       ///< (R, C), Float32 or Float64
  std::vector<std::string> row_labels;  ///< R labels, or empty for none
  std::vector<std::string> col_labels;  ///< C labels, or empty for none
  std::string title;                    ///< above this panel; may be empty
};

/// Colour scale and sizes of a heatmap PNG. Setters chain; the same names without arguments read.
struct HeatmapOptions {
  /// The colour scale's low end; NaN (the default) = from the data (min(0, smallest value)).
  HEED_ARG(double, vmin) = std::numeric_limits<double>::quiet_NaN();
  /// The colour scale's high end; NaN (the default) = from the data (the largest value).
  HEED_ARG(double, vmax) = std::numeric_limits<double>::quiet_NaN();
  HEED_ARG(int, cell) = 0;  ///< cell side in pixels; 0 = fits one line of text (26 at text_scale 2)
  HEED_ARG(int, text_scale) = 2;  ///< pixels per font unit (the font is about 5 x 7 units)
};

/// Throws heed::Error when weights is not a non-empty 2-D float tensor, when a label list has the wrong
/// length, or when the file cannot be written.
void save_heatmap_png(const std::string& path, const Tensor& weights, const std::vector<std::string>& row_labels = {},
                      const std::vector<std::string>& col_labels = {}, const std::string& title = "",
                      const HeatmapOptions& options = {});
/// Several panels stacked top to bottom, one shared colour scale (over all panels) and `title` on top.
/// Throws heed::Error like the single-heatmap overload, naming the panel, or when `panels` is empty.
void save_heatmap_png(const std::string& path, const std::vector<HeatmapPanel>& panels, const std::string& title = "",
                      const HeatmapOptions& options = {});

}  // namespace heed::io
