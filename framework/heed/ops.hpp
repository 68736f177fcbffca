// heed/ops.hpp — every differentiable op, and the non-differentiable helpers around them.
//
// Each op's forward and backward sit side by side in one .cpp under framework/ops/:
//   elementwise.cpp  unary, binary (broadcasting), scalar, comparison ops
//   matmul.cpp       matmul (batched, broadcast, BLAS with transpose flags) and linear
//   reduce.cpp       sum, mean, max, min, argmax, argmin, logsumexp, var
//   softmax.cpp      softmax, log_softmax, masked variants, masked_fill
//   shape.cpp        reshape, transpose, permute, squeeze, expand, narrow, select, concat, stack, ...
//   index.cpp        index_select, gather, embedding lookup, where, pad, flip
//   loss.cpp         dropout and the losses
//   norm.cpp         layer_norm (fused)
//   conv.cpp         conv2d (im2col + BLAS), max_pool2d, avg_pool2d
//
// Conventions
//   - Axes may be negative (counted from the end). Out-of-range axes and indices throw heed::Error.
//   - Binary ops broadcast like NumPy/PyTorch; their backward sums the gradient over broadcast axes.
//   - Masks are Bool tensors; for heed's attention layers True means "may attend" (a keep-mask).
//     masked_fill follows PyTorch: True marks the positions to fill.
//   - Differentiable ops need float inputs of one dtype (Float32 or Float64); mixing throws.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "heed/tensor.hpp"

namespace heed {

class Generator;

// ---- elementwise: binary (broadcasting) ----------------------------------------------------------
Tensor add(const Tensor& a, const Tensor& b);  ///< a + b
Tensor sub(const Tensor& a, const Tensor& b);  ///< a - b
Tensor mul(const Tensor& a, const Tensor& b);  ///< a * b, elementwise
Tensor div(const Tensor& a, const Tensor& b);  ///< a / b, elementwise
Tensor pow(const Tensor& a, const Tensor& b);  ///< a > 0 where b is differentiated
Tensor maximum(const Tensor& a, const Tensor& b);  ///< ties send the gradient to a
Tensor minimum(const Tensor& a, const Tensor& b);  ///< ties send the gradient to a
Tensor add(const Tensor& a, double b);  ///< a + b elementwise (scalar forms: the result has a's shape and dtype)
Tensor sub(const Tensor& a, double b);  ///< a - b
Tensor rsub(double a, const Tensor& b);  ///< a - b
Tensor mul(const Tensor& a, double b);  ///< a * b
Tensor div(const Tensor& a, double b);  ///< a / b
Tensor rdiv(double a, const Tensor& b);  ///< a / b
Tensor pow(const Tensor& a, double exponent);  ///< a^exponent; gradient exponent * a^(exponent-1)

// ---- elementwise: unary --------------------------------------------------------------------------
Tensor neg(const Tensor& x);  ///< -x
Tensor exp(const Tensor& x);  ///< e^x
Tensor log(const Tensor& x);  ///< natural logarithm (-inf at 0, NaN below)
Tensor sqrt(const Tensor& x);  ///< square root; gradient 1 / (2 sqrt(x)) (inf at 0)
Tensor abs(const Tensor& x);  ///< gradient 0 at 0
Tensor square(const Tensor& x);  ///< x^2
Tensor sin(const Tensor& x);  ///< sine (radians)
Tensor cos(const Tensor& x);  ///< cosine (radians)
Tensor tanh(const Tensor& x);  ///< hyperbolic tangent; gradient 1 - tanh^2
Tensor sigmoid(const Tensor& x);  ///< 1 / (1 + e^-x); gradient y (1 - y)
Tensor relu(const Tensor& x);  ///< max(x, 0); gradient 0 at 0
Tensor leaky_relu(const Tensor& x, double negative_slope = 0.01);  ///< x for x > 0, negative_slope * x otherwise
/// GELU: exact x*Phi(x) (approximate=false) or PyTorch's tanh approximation.
Tensor gelu(const Tensor& x, bool approximate = false);
Tensor softplus(const Tensor& x, double beta = 1.0, double threshold = 20.0);  ///< PyTorch's definition
Tensor elu(const Tensor& x, double alpha = 1.0);  ///< x for x > 0, alpha * (e^x - 1) otherwise
Tensor clamp(const Tensor& x, double low, double high);  ///< gradient passes where low <= x <= high

// ---- comparison and logic (no gradient; the result is Bool) --------------------------------------
Tensor eq(const Tensor& a, const Tensor& b);  ///< a == b, broadcasting; mixed dtypes compare as Float64
Tensor ne(const Tensor& a, const Tensor& b);  ///< a != b
Tensor lt(const Tensor& a, const Tensor& b);  ///< a < b
Tensor le(const Tensor& a, const Tensor& b);  ///< a <= b
Tensor gt(const Tensor& a, const Tensor& b);  ///< a > b
Tensor ge(const Tensor& a, const Tensor& b);  ///< a >= b
Tensor eq(const Tensor& a, double b);  ///< a == b, b converted to a's dtype
Tensor lt(const Tensor& a, double b);  ///< a < b
Tensor gt(const Tensor& a, double b);  ///< a > b
Tensor logical_and(const Tensor& a, const Tensor& b);  ///< elementwise AND of Bool tensors (broadcasting)
Tensor logical_or(const Tensor& a, const Tensor& b);  ///< elementwise OR of Bool tensors
Tensor logical_not(const Tensor& a);  ///< elementwise NOT of a Bool tensor

// ---- matrix products (matmul.cpp) ----------------------------------------------------------------
/// NumPy/PyTorch matmul: 1-D operands are promoted and the added axis removed; leading (batch) axes
/// broadcast. Goes to BLAS; a transposed operand (e.g. x.transpose(-1,-2)) is passed with a transpose
/// flag instead of being copied.
Tensor matmul(const Tensor& a, const Tensor& b);
/// y = x W^T + b, x (..., in), weight (out, in) as PyTorch's Linear, bias (out) or undefined.
Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias = Tensor());

// ---- reductions (reduce.cpp) ---------------------------------------------------------------------
Tensor sum(const Tensor& x);  ///< all elements, shape []
/// over `axes`; keepdim keeps them as size 1
Tensor sum(const Tensor& x, const std::vector<int64_t>& axes, bool keepdim = false);
Tensor mean(const Tensor& x);  ///< mean of all elements, shape []
Tensor mean(const Tensor& x, const std::vector<int64_t>& axes, bool keepdim = false);  ///< over `axes`
Tensor max(const Tensor& x);  ///< gradient split evenly among tied maxima
Tensor max(const Tensor& x, int64_t axis, bool keepdim = false);  ///< gradient to the first maximum
Tensor min(const Tensor& x);  ///< gradient split evenly among tied minima
Tensor min(const Tensor& x, int64_t axis, bool keepdim = false);  ///< gradient to the first minimum
Tensor argmax(const Tensor& x, int64_t axis, bool keepdim = false);  ///< Int64, first maximum
Tensor argmin(const Tensor& x, int64_t axis, bool keepdim = false);  ///< Int64, first minimum
/// log(sum(exp(x))) over axis, max-shifted (no overflow)
Tensor logsumexp(const Tensor& x, int64_t axis, bool keepdim = false);
/// Variance with `correction` (1 = unbiased, PyTorch's default; 0 = population).
Tensor var(const Tensor& x, const std::vector<int64_t>& axes, int64_t correction = 1, bool keepdim = false);
/// Sums `grad` down to `shape` over broadcast axes (the inverse of broadcasting; not recorded).
Tensor sum_to(const Tensor& grad, const Shape& shape);

// ---- softmax family (softmax.cpp) ----------------------------------------------------------------
Tensor softmax(const Tensor& x, int64_t axis = -1);  ///< exp(x - max) / sum(exp(x - max)) along axis
Tensor log_softmax(const Tensor& x, int64_t axis = -1);  ///< x - logsumexp(x) along axis (stabler than log(softmax))
/// Softmax over `axis` where only positions with keep_mask == true take part (keep_mask is Bool and
/// broadcasts to x). Masked positions get exactly 0 weight and 0 gradient; a fully masked row gives all
/// zeros (no NaN).
Tensor masked_softmax(const Tensor& x, const Tensor& keep_mask, int64_t axis = -1);
/// Where mask (Bool, broadcast to x) is true the result is `value` (may be -inf) and gets no gradient.
Tensor masked_fill(const Tensor& x, const Tensor& mask, double value);

// ---- shape and views (shape.cpp) -----------------------------------------------------------------
Tensor reshape(const Tensor& x, const Shape& shape);  ///< one -1 allowed; a view when x is contiguous
Tensor flatten(const Tensor& x, int64_t start = 0, int64_t end = -1);  ///< axes start..end (inclusive) merged into one
Tensor transpose(const Tensor& x, int64_t a, int64_t b);  ///< view
Tensor permute(const Tensor& x, const std::vector<int64_t>& dims);  ///< view
Tensor squeeze(const Tensor& x);  ///< all size-1 axes
Tensor squeeze(const Tensor& x, int64_t axis);  ///< that axis if it has size 1
Tensor unsqueeze(const Tensor& x, int64_t axis);  ///< view with a new size-1 axis at `axis` (-1 appends)
Tensor expand(const Tensor& x, const Shape& shape);  ///< view; -1 keeps a size; gradient sums back
Tensor broadcast_to(const Tensor& x, const Shape& shape);  ///< view of x broadcast to `shape` (NumPy rules)
Tensor narrow(const Tensor& x, int64_t axis, int64_t start, int64_t length);  ///< view
Tensor slice(const Tensor& x, int64_t axis, int64_t start, int64_t end, int64_t step = 1);  ///< view
Tensor select(const Tensor& x, int64_t axis, int64_t index);  ///< view without that axis
/// joins along an existing axis; other sizes must agree
Tensor concat(const std::vector<Tensor>& xs, int64_t axis = 0);
Tensor stack(const std::vector<Tensor>& xs, int64_t axis = 0);  ///< joins equal shapes along a new axis
std::vector<Tensor> split(const Tensor& x, int64_t split_size, int64_t axis = 0);  ///< views
/// views of the given sizes (summing to the axis)
std::vector<Tensor> split(const Tensor& x, const std::vector<int64_t>& sizes, int64_t axis = 0);
/// split into pieces of ceil(n / chunks)
std::vector<Tensor> chunk(const Tensor& x, int64_t chunks, int64_t axis = 0);
std::vector<Tensor> unbind(const Tensor& x, int64_t axis = 0);  ///< select() of every index along axis
Tensor repeat(const Tensor& x, const std::vector<int64_t>& repeats);  ///< like torch.Tensor.repeat

// ---- indexing (index.cpp) ------------------------------------------------------------------------
/// Rows of x along `axis` picked by Int64 `index` (any shape): result shape is
/// x.shape[:axis] + index.shape + x.shape[axis+1:]. Repeated indices accumulate gradient.
Tensor index_select(const Tensor& x, int64_t axis, const Tensor& index);
/// torch.gather: out[i][j][k] = x[i][index[i][j][k]][k] for axis 1; index has x's rank.
Tensor gather(const Tensor& x, int64_t axis, const Tensor& index);
/// Embedding lookup: weight (V, D), indices Int64 (any shape) -> indices.shape + [D]. Rows equal to
/// padding_idx (if >= 0) get no gradient.
Tensor embedding(const Tensor& weight, const Tensor& indices, int64_t padding_idx = -1);
/// cond (Bool) ? a : b, broadcasting all three.
Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b);
/// Constant padding of the last axes, PyTorch F.pad order: {left, right} for the last axis, then
/// {top, bottom} for the one before, ... Negative padding crops.
Tensor pad(const Tensor& x, const std::vector<int64_t>& padding, double value = 0.0);
Tensor flip(const Tensor& x, const std::vector<int64_t>& axes);  ///< reverses the order along `axes` (a copy)

// ---- dropout and losses (loss.cpp) ---------------------------------------------------------------
/// Inverted dropout: in training zeroes each element with probability p and scales the rest by
/// 1/(1-p); in evaluation (training == false) or with p == 0 returns x.
Tensor dropout(const Tensor& x, double p, bool training, Generator* gen = nullptr);

/// How a loss combines its per-element values.
enum class Reduction {
  None,  ///< no reduction: one loss per element (per target for cross_entropy/nll_loss)
  Mean,  ///< the mean, shape []
  Sum,   ///< the sum, shape []
};
/// (input - target)^2, same shapes
Tensor mse_loss(const Tensor& input, const Tensor& target, Reduction reduction = Reduction::Mean);
/// input holds probabilities in (0,1); log terms are clamped at -100 as in PyTorch.
Tensor binary_cross_entropy(const Tensor& input, const Tensor& target, Reduction reduction = Reduction::Mean);
/// Numerically stable BCE on logits: max(x,0) - x*y + log(1 + exp(-|x|)).
Tensor binary_cross_entropy_with_logits(const Tensor& logits, const Tensor& target,
                                        Reduction reduction = Reduction::Mean);
/// Options of cross_entropy, PyTorch's defaults.
struct CrossEntropyOptions {
  int64_t ignore_index = -100;  ///< targets equal to this add no loss and no gradient (e.g. padding)
  double label_smoothing = 0.0;  ///< PyTorch's: target = (1-eps)*onehot + eps/C
  Reduction reduction = Reduction::Mean;  ///< Mean divides by the number of non-ignored targets
};
/// logits (..., C) with classes on the LAST axis, targets Int64 (...). For 2-D logits this is exactly
/// torch.nn.functional.cross_entropy; for more axes PyTorch wants classes on axis 1 instead.
Tensor cross_entropy(const Tensor& logits, const Tensor& targets, const CrossEntropyOptions& options = {});
/// log_probs (..., C), targets Int64 (...): -log_probs[target], with ignore_index and reduction.
Tensor nll_loss(const Tensor& log_probs, const Tensor& targets, int64_t ignore_index = -100,
                Reduction reduction = Reduction::Mean);
/// KL( N(mu, exp(logvar)) || N(0, 1) ) = 0.5 * sum(mu^2 + exp(logvar) - logvar - 1) over the last axis,
/// then reduced over the rest (the VAE / DRAW latent loss).
Tensor gaussian_kl(const Tensor& mu, const Tensor& logvar, Reduction reduction = Reduction::Mean);

// ---- normalization (norm.cpp) --------------------------------------------------------------------
/// Layer normalization over the last normalized_shape.size() axes of x, whose sizes must equal
/// normalized_shape: y = (x - mean) / sqrt(var + eps) * weight + bias, with the population variance.
/// weight and bias have shape normalized_shape, or are undefined (no affine transform). Fused: the
/// forward saves each row's mean and 1/std, and the backward is one loop (not a chain of generic ops).
Tensor layer_norm(const Tensor& x, const Shape& normalized_shape, const Tensor& weight = Tensor(),
                  const Tensor& bias = Tensor(), double eps = 1e-5);

// ---- convolution and pooling (conv.cpp) ----------------------------------------------------------
/// A (height, width) pair for kernel sizes, strides, padding and dilation; a single number means both,
/// as in PyTorch: conv2d(x, w, b, 2) or conv2d(x, w, b, {2, 1}).
struct Size2 {
  int64_t h = 0;  ///< along the height (rows)
  int64_t w = 0;  ///< along the width (columns)
  Size2(int64_t both = 0) : h(both), w(both) {}  ///< NOLINT: implicit, like PyTorch's int-or-tuple
  Size2(int64_t height, int64_t width) : h(height), w(width) {}  ///< distinct height and width
  bool operator==(const Size2& o) const { return h == o.h && w == o.w; }  ///< both components equal
  bool operator!=(const Size2& o) const { return !(*this == o); }  ///< some component differs
};
/// Output length of a sliding window: floor((in + 2 padding - dilation (kernel - 1) - 1) / stride) + 1.
int64_t conv_output_size(int64_t in, int64_t kernel, int64_t stride, int64_t padding, int64_t dilation = 1);

/// 2-D cross-correlation as torch.nn.functional.conv2d with groups = 1: x (N, C, H, W), weight
/// (O, C, kh, kw), bias (O) or undefined -> (N, O, H_out, W_out), zero padding. im2col + one BLAS GEMM
/// per sample; the backward is two GEMMs (weight and columns) and col2im.
Tensor conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias = Tensor(), Size2 stride = 1,
              Size2 padding = 0, Size2 dilation = 1);
/// Max over each window of x (N, C, H, W) (or (C, H, W)); padding counts as -inf and may be at most half
/// the kernel. stride defaults to the kernel size. The gradient goes to the window's first maximum.
Tensor max_pool2d(const Tensor& x, Size2 kernel, std::optional<Size2> stride = std::nullopt, Size2 padding = 0);
/// Mean over each window; with count_include_pad (PyTorch's default) padded zeros count in the divisor.
Tensor avg_pool2d(const Tensor& x, Size2 kernel, std::optional<Size2> stride = std::nullopt, Size2 padding = 0,
                  bool count_include_pad = true);

// ---- operators -----------------------------------------------------------------------------------
inline Tensor operator+(const Tensor& a, const Tensor& b) { return add(a, b); }  ///< add(a, b)
inline Tensor operator-(const Tensor& a, const Tensor& b) { return sub(a, b); }  ///< sub(a, b)
/// mul(a, b), elementwise (matmul is heed::matmul)
inline Tensor operator*(const Tensor& a, const Tensor& b) { return mul(a, b); }
inline Tensor operator/(const Tensor& a, const Tensor& b) { return div(a, b); }  ///< div(a, b)
inline Tensor operator+(const Tensor& a, double b) { return add(a, b); }  ///< add(a, b)
inline Tensor operator-(const Tensor& a, double b) { return sub(a, b); }  ///< sub(a, b)
inline Tensor operator*(const Tensor& a, double b) { return mul(a, b); }  ///< mul(a, b)
inline Tensor operator/(const Tensor& a, double b) { return div(a, b); }  ///< div(a, b)
inline Tensor operator+(double a, const Tensor& b) { return add(b, a); }  ///< add(b, a)
inline Tensor operator-(double a, const Tensor& b) { return rsub(a, b); }  ///< rsub(a, b) = a - b
inline Tensor operator*(double a, const Tensor& b) { return mul(b, a); }  ///< mul(b, a)
inline Tensor operator/(double a, const Tensor& b) { return rdiv(a, b); }  ///< rdiv(a, b) = a / b
inline Tensor operator-(const Tensor& x) { return neg(x); }  ///< neg(x)

}  // namespace heed
#include "heed/ops/recurrent.hpp"
#include "heed/ops/attention.hpp"  // the attention kernels: flash, block-sparse, causal linear
