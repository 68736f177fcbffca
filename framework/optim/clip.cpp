// Gradient clipping and the L2 penalty (heed/optim/clip.hpp), with torch.nn.utils' semantics: plain
// loops over each gradient's dense buffer, in double arithmetic.
#include "heed/optim/clip.hpp"

#include <algorithm>
#include <cmath>

#include "heed/ops.hpp"
#include "ops/common.hpp"

namespace heed::optim {

double clip_grad_norm_(const std::vector<Tensor>& params, double max_norm, double norm_type, bool error_if_nonfinite) {
  HEED_CHECK(norm_type > 0.0, "clip_grad_norm_: norm_type must be > 0 (or infinity), got {}", norm_type);
  std::vector<Tensor> grads;
  for (const Tensor& p : params)
    if (p.defined() && p.grad().defined()) grads.push_back(p.grad());
  if (grads.empty()) return 0.0;
  const bool max_norm_type = std::isinf(norm_type);
  double accumulated = 0.0;  // max |g| for the infinity norm, else sum |g|^p
  for (const Tensor& grad : grads) {
    const int64_t n = grad.numel();
    HEED_DISPATCH_FLOAT(grad.dtype(), "clip_grad_norm_", [&] {
      const scalar_t* g = grad.data<scalar_t>();
      for (int64_t k = 0; k < n; ++k) {
        const double a = std::abs(double(g[k]));
        if (max_norm_type) accumulated = std::isnan(a) ? a : std::max(accumulated, a);
        else accumulated += norm_type == 2.0 ? a * a : std::pow(a, norm_type);
      }
    });
  }
  const double total_norm = max_norm_type ? accumulated
                            : norm_type == 2.0 ? std::sqrt(accumulated)
                                               : std::pow(accumulated, 1.0 / norm_type);
  HEED_CHECK(!error_if_nonfinite || std::isfinite(total_norm),
             "clip_grad_norm_: the total norm of order {} of the gradients is non-finite ({}), so it cannot be "
             "clipped; pass error_if_nonfinite=false to scale by it anyway", norm_type, total_norm);
  const double clip_coef = max_norm / (total_norm + 1e-6);
  if (clip_coef >= 1.0) return total_norm;  // PyTorch multiplies by min(coef, 1); a NaN coef still scales
  for (const Tensor& grad : grads) {
    const int64_t n = grad.numel();
    HEED_DISPATCH_FLOAT(grad.dtype(), "clip_grad_norm_", [&] {
      scalar_t* g = grad.data<scalar_t>();
      for (int64_t k = 0; k < n; ++k) g[k] = static_cast<scalar_t>(g[k] * clip_coef);
    });
  }
  return total_norm;
}

void clip_grad_value_(const std::vector<Tensor>& params, double clip_value) {
  HEED_CHECK(clip_value >= 0.0, "clip_grad_value_: clip_value must be >= 0, got {}", clip_value);
  for (const Tensor& p : params) {
    if (!p.defined() || !p.grad().defined()) continue;
    Tensor grad = p.grad();
    const int64_t n = grad.numel();
    HEED_DISPATCH_FLOAT(grad.dtype(), "clip_grad_value_", [&] {
      scalar_t* g = grad.data<scalar_t>();
      const scalar_t hi = static_cast<scalar_t>(clip_value);
      for (int64_t k = 0; k < n; ++k) g[k] = std::min(std::max(g[k], -hi), hi);
    });
  }
}

// d/dp coeff * sum(p^2) = 2 * coeff * p, through the recorded square and sum.
Tensor l2_penalty(const Tensor& param, double coeff) {
  HEED_CHECK(param.defined(), "l2_penalty: the parameter is an undefined tensor");
  return mul(sum(square(param)), coeff);
}

}  // namespace heed::optim
