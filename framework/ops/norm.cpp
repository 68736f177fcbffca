// framework/ops/norm.cpp — layer normalization, fused: one forward loop and one backward loop.
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

}  // namespace

// x_hat = (x - mean) * rstd,  y = x_hat * w + b   (mean, var over each row of N elements)
// Backward, with g = gy * w:
//   dx = rstd * (g - mean(g) - x_hat * mean(g * x_hat)),  dw = sum_rows(gy * x_hat),  db = sum_rows(gy)
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
    for (int64_t row = 0; row < r.rows; ++row) {
      const scalar_t* xr = px + row * n;
      scalar_t* yr = py + row * n;
      double sum = 0.0;
      for (int64_t i = 0; i < n; ++i) sum += xr[i];
      const double mu = sum / static_cast<double>(n);
      double sq = 0.0;
      for (int64_t i = 0; i < n; ++i) sq += (xr[i] - mu) * (xr[i] - mu);
      const double inv = 1.0 / std::sqrt(sq / static_cast<double>(n) + eps);
      pm[row] = static_cast<scalar_t>(mu);
      ps[row] = static_cast<scalar_t>(inv);
      const scalar_t m = static_cast<scalar_t>(mu), s = static_cast<scalar_t>(inv);
      for (int64_t i = 0; i < n; ++i) {
        const scalar_t xhat = (xr[i] - m) * s;
        yr[i] = xhat * (pw ? pw[i] : scalar_t(1)) + (pb ? pb[i] : scalar_t(0));
      }
    }
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
      for (int64_t row = 0; row < r.rows; ++row) {
        const scalar_t* xr = px + row * n;
        const scalar_t* gr = pg + row * n;
        const scalar_t m = pm[row], s = ps[row];
        if (pdw || pdb) {
          for (int64_t i = 0; i < n; ++i) {
            if (pdw) pdw[i] += gr[i] * (xr[i] - m) * s;
            if (pdb) pdb[i] += gr[i];
          }
        }
        if (!pdx) continue;
        double sum_g = 0.0, sum_g_xhat = 0.0;
        for (int64_t i = 0; i < n; ++i) {
          const double g = gr[i] * (pw ? pw[i] : scalar_t(1));
          sum_g += g;
          sum_g_xhat += g * ((xr[i] - m) * s);
        }
        const scalar_t mean_g = static_cast<scalar_t>(sum_g / static_cast<double>(n));
        const scalar_t mean_g_xhat = static_cast<scalar_t>(sum_g_xhat / static_cast<double>(n));
        scalar_t* dr = pdx + row * n;
        for (int64_t i = 0; i < n; ++i) {
          const scalar_t g = gr[i] * (pw ? pw[i] : scalar_t(1));
          dr[i] = s * (g - mean_g - (xr[i] - m) * s * mean_g_xhat);
        }
      }
    });
    if (want_x) accumulate_grad(x, std::move(dx));
    if (want_w) accumulate_grad(weight, std::move(dw));
    if (want_b) accumulate_grad(bias, std::move(db));
  });
  return y;
}

}  // namespace heed
