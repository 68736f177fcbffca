// heed/nn/draw_attention.hpp — DRAW's selective read and write attention (Gregor et al. 2015;
// docs/attention-spec.md M7): an N x N grid of Gaussian filters placed on a B x A image (B rows, A columns).
//
// Five numbers per example, usually a linear map of the decoder state h^dec:
//   (g̃_X, g̃_Y, log σ², log δ̃, log γ) = W h^dec + b
//   g_X = (A+1)/2 (g̃_X + 1)        g_Y = (B+1)/2 (g̃_Y + 1)        grid centre
//   δ   = (max(A,B) - 1)/(N - 1) δ̃                                stride between filters (δ̃ = exp(log δ̃))
//   μ_X^i = g_X + (i - N/2 - 0.5) δ,  μ_Y^j = g_Y + (j - N/2 - 0.5) δ
//   F_X[i,a] = exp(-(a - μ_X^i)² / (2σ²)) / Z_X^i,   Z_X^i = Σ_a exp(...) + eps      F_X (N, A)
//   F_Y[j,b] = exp(-(b - μ_Y^j)² / (2σ²)) / Z_Y^j                                   F_Y (N, B)
//   read(x, x̂)  = γ [F_Y x F_X^T ; F_Y x̂ F_X^T]       (2 N²), x and x̂ (B, A)
//   write(w)    = (1/γ) F_Y^T w F_X                     (B, A), w (N_w, N_w)
// Indexing: by default the paper's, i, j = 1..N and a = 1..A, b = 1..B (DrawIndexing::OneBased). Both
// reference codes (ericjang/draw, jbornschein/draw) use 0-based aranges in the same formula
// (DrawIndexing::ZeroBased). In 0-based pixels the paper's grid is centred at g - 1 and the references' at
// g - δ, so the two agree when δ = 1 and otherwise differ by δ - 1 pixels; with the paper's form g̃ = 0 is
// exactly the image's middle whatever δ is.
// Z is guarded with + eps (default 1e-8, the size of ericjang's max(Z, 1e-8); jbornschein adds 1e-4) so a
// grid far outside the image gives zero filters, not NaN. N = 1 places the single filter at g (δ unused).
//
// Everything is batch-first and composed from recorded heed ops, so gradients reach all five
// parameters, the images and the write patch. The functional forms work without the layers:
//   auto bank = heed::nn::draw_filterbank(params, /*n=*/12, /*height=*/60, /*width=*/60);
//   Tensor glimpse = heed::nn::draw_read(x, bank);            // (batch, 12, 12), times γ
//   auto boxes = heed::nn::draw_boxes(bank);                  // where the grid sits, for drawing
// The layers hold the linear map(s) from h^dec (PyTorch equivalent: a module with child nn.Linear
// "params" (5, hidden) and, for writing, "patch" (N_w², hidden); state-dict names "params.weight",
// "params.bias", "patch.weight", "patch.bias"):
//   nn::DrawRead read(nn::DrawAttentionOptions(/*hidden=*/128, /*n=*/2, 28, 28));
//   auto [r, bank] = read.forward(x, x_hat, h_dec);           // r (batch, 2·2·2)
//   nn::DrawWrite write(nn::DrawAttentionOptions(128, 5, 28, 28));
//   auto [canvas_update, wbank] = write.forward_write(h_dec); // (batch, 28, 28)
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "heed/nn/basic.hpp"
#include "heed/nn/module.hpp"
#include "heed/options.hpp"
#include "heed/tensor.hpp"

namespace heed::nn {

/// Where the filter and pixel indices start in the filterbank formula (see the top of this file).
enum class DrawIndexing {
  OneBased,   ///< the paper's: i, j = 1..N, a = 1..A, b = 1..B
  ZeroBased,  ///< the reference codes' aranges from 0
};

/// Options of draw_filterbank. Setters chain; the same names without arguments read.
struct DrawFilterbankOptions {
  HEED_ARG(DrawIndexing, indexing) = DrawIndexing::OneBased;  ///< index convention (the paper's by default)
  /// Added to each normalizer Z (default 1e-8) so a grid off the image gives zeros, not NaN.
  HEED_ARG(double, eps) = 1e-8;
};

/// The filters and the derived parameters for a batch. Shapes: batch = params.size(0).
struct DrawFilterbank {
  Tensor fx;        ///< (batch, N, A), rows sum to 1 (up to eps) when the grid overlaps the image
  Tensor fy;        ///< (batch, N, B)
  Tensor gamma;     ///< (batch, 1) intensity γ
  Tensor center_x;  ///< (batch, 1) g_X, in the indexing's coordinates
  Tensor center_y;  ///< (batch, 1) g_Y
  Tensor delta;     ///< (batch, 1) stride δ
  Tensor sigma2;    ///< (batch, 1) variance σ²
  int64_t n = 0;                                   ///< N, filters per side
  DrawIndexing indexing = DrawIndexing::OneBased;  ///< the convention the bank was built with
};

/// Where a grid sits, in 0-based pixel coordinates (column x, row y; pixel k covers [k - 0.5, k + 0.5]):
/// the centre is the mean of the filter centres μ, the box is N δ wide (each filter covers one stride),
/// so its left edge is center_x - size/2.
struct DrawBox {
  double center_x = 0;  ///< column of the grid centre
  double center_y = 0;  ///< row of the grid centre
  double stride = 0;    ///< δ, pixels between filter centres
  double size = 0;      ///< N δ, the side of the box
  double sigma = 0;     ///< σ, the filters' standard deviation in pixels
  double gamma = 0;     ///< γ, the intensity
};

/// params (batch, 5) = (g̃_X, g̃_Y, log σ², log δ̃, log γ); n >= 1 filters a side; the image is height (B)
/// rows by width (A) columns.
DrawFilterbank draw_filterbank(const Tensor& params, int64_t n, int64_t height, int64_t width,
                               const DrawFilterbankOptions& options = {});
/// γ F_Y x F_X^T: x (batch, B, A) -> (batch, N, N).
Tensor draw_read(const Tensor& x, const DrawFilterbank& bank);
/// (1/γ) F_Y^T w F_X: w (batch, N, N) or (batch, N·N) -> (batch, B, A).
Tensor draw_write(const Tensor& w, const DrawFilterbank& bank);
std::vector<DrawBox> draw_boxes(const DrawFilterbank& bank);  ///< one per example (values, not recorded)

/// Settings of DrawRead and DrawWrite: decoder state size, N, and the image's height (B) and width (A).
struct DrawAttentionOptions {
  /// hidden_size of h^dec, n filters a side, an image of height rows by width columns.
  DrawAttentionOptions(int64_t hidden_size, int64_t n, int64_t height, int64_t width)
      : hidden_size_(hidden_size), n_(n), height_(height), width_(width) {}
  HEED_ARG(int64_t, hidden_size);  ///< size of h^dec
  HEED_ARG(int64_t, n);  ///< N, filters per side
  HEED_ARG(int64_t, height);  ///< B, image rows
  HEED_ARG(int64_t, width);  ///< A, image columns
  HEED_ARG(DrawFilterbankOptions, filterbank);  ///< indexing and eps of the filterbank
};

/// What DrawRead::forward returns.
struct DrawReadOutput {
  Tensor glimpse;  ///< (batch, 2 N²): γ [F_Y x F_X^T ; F_Y x̂ F_X^T], each N x N flattened row-major
  DrawFilterbank bank;  ///< the filters used (e.g. for draw_boxes)
};

/// What DrawWrite::forward_write returns.
struct DrawWriteOutput {
  Tensor canvas_update;  ///< (batch, B, A)
  DrawFilterbank bank;   ///< the filters used
};

/// Read attention: the filterbank parameters come from h^dec_{t-1} through `params`.
class DrawRead : public Module {
 public:
  explicit DrawRead(const DrawAttentionOptions& options);  ///< throws on non-positive sizes
  /// x, x_hat (batch, B, A); h_dec (batch, hidden).
  DrawReadOutput forward(const Tensor& x, const Tensor& x_hat, const Tensor& h_dec);
  using Module::forward;  ///< the one-tensor form throws: a read needs x, x̂ and h^dec
  std::string extra_repr() const override;
  const DrawAttentionOptions& options() const { return options_; }  ///< the settings it was made with
  std::shared_ptr<Linear> params;  ///< (5, hidden)

 private:
  DrawAttentionOptions options_;
};

/// Write attention: the N x N patch w = patch(h^dec_t) and the filterbank from params(h^dec_t).
class DrawWrite : public Module {
 public:
  explicit DrawWrite(const DrawAttentionOptions& options);  ///< throws on non-positive sizes
  /// h_dec (batch, hidden) -> the canvas update (1/γ) F_Y^T w F_X (batch, B, A) and the filterbank.
  DrawWriteOutput forward_write(const Tensor& h_dec);
  Tensor forward(const Tensor& h_dec) override { return forward_write(h_dec).canvas_update; }
  std::string extra_repr() const override;
  const DrawAttentionOptions& options() const { return options_; }  ///< the settings it was made with
  std::shared_ptr<Linear> params;  ///< (5, hidden)
  std::shared_ptr<Linear> patch;   ///< (N², hidden)

 private:
  DrawAttentionOptions options_;
};

}  // namespace heed::nn
