// RMSprop (heed/optim/rmsprop.hpp): one plain loop over a parameter's dense buffer, in double arithmetic,
// following torch/optim/rmsprop.py's single-tensor path in PyTorch 1.13 (same order of operations).
#include "heed/optim/rmsprop.hpp"

#include <cmath>

#include "heed/autograd.hpp"
#include "ops/common.hpp"
#include "optim/common.hpp"

namespace heed::optim {

using detail::flag;

Hyperparams RMSpropOptions::hyperparams() const {
  return {{"lr", lr()},
          {"alpha", alpha()},
          {"eps", eps()},
          {"weight_decay", weight_decay()},
          {"momentum", momentum()},
          {"centered", flag(centered())}};
}

void RMSpropOptions::set_hyperparams(const Hyperparams& values) {
  for (const auto& [name, value] : values) {
    if (name == "lr") lr(value);
    else if (name == "alpha") alpha(value);
    else if (name == "eps") eps(value);
    else if (name == "weight_decay") weight_decay(value);
    else if (name == "momentum") momentum(value);
    else if (name == "centered") centered(value != 0.0);
    else detail::unknown_hyperparam("RMSpropOptions", name, hyperparams());
  }
}

RMSprop::RMSprop(std::vector<Tensor> params, const RMSpropOptions& options)
    : RMSprop(std::vector<ParamGroup>{ParamGroup(std::move(params))}, options) {}

RMSprop::RMSprop(std::vector<ParamGroup> groups, const RMSpropOptions& defaults)
    : Optimizer("RMSprop", defaults.clone(), {"square_avg", "momentum_buffer", "grad_avg"}, /*has_step=*/true) {
  add_param_groups(std::move(groups));
}

void RMSprop::check_options(const OptimizerOptions& options) const {
  const auto& o = static_cast<const RMSpropOptions&>(options);
  detail::require_at_least_zero(name(), "lr", o.lr());
  detail::require_at_least_zero(name(), "eps", o.eps());
  detail::require_at_least_zero(name(), "momentum", o.momentum());
  detail::require_at_least_zero(name(), "weight_decay", o.weight_decay());
  detail::require_at_least_zero(name(), "alpha", o.alpha());
}

void RMSprop::step() {
  NoGradGuard no_grad;
  for_each_param_with_grad([&](const ParamGroup& group, int64_t index, Tensor& param, const Tensor& grad) {
    const auto& o = static_cast<const RMSpropOptions&>(group.options());
    const double lr = o.lr(), alpha = o.alpha(), eps = o.eps(), weight_decay = o.weight_decay(),
                 momentum = o.momentum();
    const bool centered = o.centered();
    increment_step(index);
    Tensor square_avg = buffer(index, "square_avg", param);
    Tensor grad_avg = centered ? buffer(index, "grad_avg", param) : Tensor();
    Tensor momentum_buffer = momentum > 0.0 ? buffer(index, "momentum_buffer", param) : Tensor();
    const int64_t n = param.numel();
    HEED_DISPATCH_FLOAT(param.dtype(), "RMSprop::step", [&] {
      scalar_t* p = param.data<scalar_t>();
      const scalar_t* g = grad.data<scalar_t>();
      scalar_t* v = square_avg.data<scalar_t>();
      scalar_t* a = centered ? grad_avg.data<scalar_t>() : nullptr;
      scalar_t* b = momentum > 0.0 ? momentum_buffer.data<scalar_t>() : nullptr;
      for (int64_t k = 0; k < n; ++k) {
        const double gk = weight_decay != 0.0 ? g[k] + weight_decay * p[k] : double(g[k]);
        v[k] = static_cast<scalar_t>(v[k] * alpha + (1.0 - alpha) * gk * gk);
        double avg;
        if (a) {
          a[k] = static_cast<scalar_t>(a[k] * alpha + (1.0 - alpha) * gk);
          avg = std::sqrt(v[k] - double(a[k]) * a[k]) + eps;
        } else {
          avg = std::sqrt(double(v[k])) + eps;
        }
        if (b) {
          b[k] = static_cast<scalar_t>(b[k] * momentum + gk / avg);
          p[k] = static_cast<scalar_t>(p[k] - lr * b[k]);
        } else {
          p[k] = static_cast<scalar_t>(p[k] - lr * (gk / avg));
        }
      }
    });
  });
}

}  // namespace heed::optim
