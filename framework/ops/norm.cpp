// framework/ops/norm.cpp — layer normalization, fused: a forward and a backward row kernel side by side
// (layer_norm_row_forward, layer_norm_row_backward), and the op that runs them over the rows.
//
// x is read as rows of N = prod(normalized_shape) elements. The forward saves each row's mean and
// rstd = 1 / sqrt(var + eps) (population variance, as PyTorch); the backward recomputes
// x_hat = (x - mean) * rstd from them instead of keeping a second copy of x. Statistics accumulate in
// double for float inputs so that rows of thousands of elements keep float32 accuracy.
#include <cmath>
#include <utility>

#include "heed/ops.hpp"
#include "ops/common.hpp"

namespace heed {
namespace {

using detail::check_float;

// Rows of `x` normalized over its last k axes: (rows, row_size).
struct NormRows {
  int64_t rows = 0;
  int64_t row_size = 1;
};

NormRows check_layer_norm(const Tensor& x, const Shape& normalized_shape, const Tensor& weight, const Tensor& bias) {
  check_float(x, "layer_norm");
  const int64_t k = static_cast<int64_t>(normalized_shape.size());
  HEED_CHECK(k >= 1, "layer_norm: normalized_shape must name at least one axis (input shape {})", shape_str(x.shape()));
  HEED_CHECK(x.dim() >= k && Shape(x.shape().end() - k, x.shape().end()) == normalized_shape,
             "layer_norm: input shape {} does not end with normalized_shape {}", shape_str(x.shape()),
             shape_str(normalized_shape));
  for (const auto& [t, name] : {std::pair{weight, "weight"}, std::pair{bias, "bias"}}) {
    if (!t.defined()) continue;
    HEED_CHECK(t.dtype() == x.dtype(), "layer_norm: {} is {} but the input is {}", name, dtype_name(t.dtype()),
               dtype_name(x.dtype()));
    HEED_CHECK(t.shape() == normalized_shape, "layer_norm: {} has shape {}, expected normalized_shape {} (input {})",
               name, shape_str(t.shape()), shape_str(normalized_shape), shape_str(x.shape()));
  }
  NormRows r;
  r.row_size = shape_numel(normalized_shape);
  r.rows = r.row_size == 0 ? 0 : x.numel() / r.row_size;
  return r;
}

// ---- row kernels: one row of n elements, forward and backward -------------------------------------------

// mean = sum_i x_i / n,  rstd = 1 / sqrt(sum_i (x_i - mean)^2 / n + eps),
// y_i = (x_i - mean) rstd w_i + b_i   (w = 1, b = 0 when absent); mean and rstd are kept for the backward.
template <class T>
void layer_norm_row_forward(const T* x, const T* w, const T* b, int64_t n, double eps, T* y, T& mean, T& rstd) {
  double sum = 0.0;
  for (int64_t i = 0; i < n; ++i) sum += x[i];
  const double mu = sum / static_cast<double>(n);
  double sq = 0.0;
  for (int64_t i = 0; i < n; ++i) sq += (x[i] - mu) * (x[i] - mu);
  const double inv = 1.0 / std::sqrt(sq / static_cast<double>(n) + eps);
  mean = static_cast<T>(mu);
  rstd = static_cast<T>(inv);
  const T m = static_cast<T>(mu), s = static_cast<T>(inv);
  for (int64_t i = 0; i < n; ++i) {
    const T xhat = (x[i] - m) * s;
    y[i] = xhat * (w ? w[i] : T(1)) + (b ? b[i] : T(0));
  }
}

// With x_hat = (x - mean) rstd and g = gy w (w = 1 when absent):
//   dx = rstd (g - mean(g) - x_hat mean(g x_hat)),  dw += gy x_hat,  db += gy
// dw and db accumulate over the rows; dx, dw and db may each be null (not wanted).
template <class T>
void layer_norm_row_backward(const T* x, const T* gy, const T* w, T mean, T rstd, int64_t n, T* dx, T* dw, T* db) {
  if (dw || db) {
    for (int64_t i = 0; i < n; ++i) {
      if (dw) dw[i] += gy[i] * (x[i] - mean) * rstd;
      if (db) db[i] += gy[i];
    }
  }
  if (!dx) return;
  double sum_g = 0.0, sum_g_xhat = 0.0;
  for (int64_t i = 0; i < n; ++i) {
    const double g = gy[i] * (w ? w[i] : T(1));
    sum_g += g;
    sum_g_xhat += g * ((x[i] - mean) * rstd);
  }
  const T mean_g = static_cast<T>(sum_g / static_cast<double>(n));
  const T mean_g_xhat = static_cast<T>(sum_g_xhat / static_cast<double>(n));
  for (int64_t i = 0; i < n; ++i) {
    const T g = gy[i] * (w ? w[i] : T(1));
    dx[i] = rstd * (g - mean_g - (x[i] - mean) * rstd * mean_g_xhat);
  }
}

}  // namespace

// x_hat = (x - mean) * rstd,  y = x_hat * w + b   (mean, var over each row of N elements); the backward
// is layer_norm_row_backward on every row.
Tensor layer_norm(const Tensor& x, const Shape& normalized_shape, const Tensor& weight, const Tensor& bias,
                  double eps) {
  const NormRows r = check_layer_norm(x, normalized_shape, weight, bias);
  HEED_CHECK(eps >= 0.0, "layer_norm: eps must be >= 0, got {}", eps);
  const Tensor xc = x.detach().contiguous();
  const Tensor wc = weight.defined() ? weight.detach().contiguous() : Tensor();
  const Tensor bc = bias.defined() ? bias.detach().contiguous() : Tensor();
  Tensor y = make_tensor(x.shape(), x.dtype());
  Tensor mean = make_tensor({r.rows}, x.dtype());
  Tensor rstd = make_tensor({r.rows}, x.dtype());
  HEED_DISPATCH_FLOAT(x.dtype(), "layer_norm", [&] {
    const scalar_t* px = xc.data<scalar_t>();
    const scalar_t* pw = wc.defined() ? wc.data<scalar_t>() : nullptr;
    const scalar_t* pb = bc.defined() ? bc.data<scalar_t>() : nullptr;
    scalar_t* py = y.data<scalar_t>();
    scalar_t* pm = mean.data<scalar_t>();
    scalar_t* ps = rstd.data<scalar_t>();
    const int64_t n = r.row_size;
    for (int64_t row = 0; row < r.rows; ++row)
      layer_norm_row_forward(px + row * n, pw, pb, n, eps, py + row * n, pm[row], ps[row]);
  });
  record("layer_norm", y, {x, weight, bias}, [x, weight, bias, xc, wc, mean, rstd, r](const Tensor& gy) {
    const Tensor gc = gy.contiguous();
    const bool want_x = x.requires_grad();
    const bool want_w = weight.defined() && weight.requires_grad();
    const bool want_b = bias.defined() && bias.requires_grad();
    Tensor dx = want_x ? make_tensor(x.shape(), x.dtype()) : Tensor();
    Tensor dw = want_w ? zeros(weight.shape(), x.dtype()) : Tensor();
    Tensor db = want_b ? zeros(bias.shape(), x.dtype()) : Tensor();
    HEED_DISPATCH_FLOAT(x.dtype(), "layer_norm", [&] {
      const scalar_t* px = xc.data<scalar_t>();
      const scalar_t* pg = gc.data<scalar_t>();
      const scalar_t* pw = wc.defined() ? wc.data<scalar_t>() : nullptr;
      const scalar_t* pm = mean.data<scalar_t>();
      const scalar_t* ps = rstd.data<scalar_t>();
      scalar_t* pdx = want_x ? dx.data<scalar_t>() : nullptr;
      scalar_t* pdw = want_w ? dw.data<scalar_t>() : nullptr;
      scalar_t* pdb = want_b ? db.data<scalar_t>() : nullptr;
      const int64_t n = r.row_size;
      for (int64_t row = 0; row < r.rows; ++row)
        layer_norm_row_backward(px + row * n, pg + row * n, pw, pm[row], ps[row], n, pdx ? pdx + row * n : nullptr,
                                pdw, pdb);
    });
    if (want_x) accumulate_grad(x, std::move(dx));
    if (want_w) accumulate_grad(weight, std::move(dw));
    if (want_b) accumulate_grad(bias, std::move(db));
  });
  return y;
}

}  // namespace heed
