// Adagrad (heed/optim/adagrad.hpp): one plain loop over a parameter's dense buffer, in double arithmetic,
// following torch/optim/adagrad.py's single-tensor path in PyTorch 1.13 (same order of operations).
#include "heed/optim/adagrad.hpp"

#include <cmath>

#include "heed/autograd.hpp"
#include "ops/common.hpp"
#include "optim/common.hpp"

namespace heed::optim {

Hyperparams AdagradOptions::hyperparams() const {
  return {{"lr", lr()},
          {"lr_decay", lr_decay()},
          {"weight_decay", weight_decay()},
          {"initial_accumulator_value", initial_accumulator_value()},
          {"eps", eps()}};
}

void AdagradOptions::set_hyperparams(const Hyperparams& values) {
  for (const auto& [name, value] : values) {
    if (name == "lr") lr(value);
    else if (name == "lr_decay") lr_decay(value);
    else if (name == "weight_decay") weight_decay(value);
    else if (name == "initial_accumulator_value") initial_accumulator_value(value);
    else if (name == "eps") eps(value);
    else detail::unknown_hyperparam("AdagradOptions", name, hyperparams());
  }
}

Adagrad::Adagrad(std::vector<Tensor> params, const AdagradOptions& options)
    : Adagrad(std::vector<ParamGroup>{ParamGroup(std::move(params))}, options) {}

Adagrad::Adagrad(std::vector<ParamGroup> groups, const AdagradOptions& defaults)
    : Optimizer("Adagrad", defaults.clone(), {"sum"}, /*has_step=*/true) {
  add_param_groups(std::move(groups));
}

void Adagrad::check_options(const OptimizerOptions& options) const {
  const auto& o = static_cast<const AdagradOptions&>(options);
  detail::require_at_least_zero(name(), "lr", o.lr());
  detail::require_at_least_zero(name(), "lr_decay", o.lr_decay());
  detail::require_at_least_zero(name(), "weight_decay", o.weight_decay());
  detail::require_at_least_zero(name(), "initial_accumulator_value", o.initial_accumulator_value());
  detail::require_at_least_zero(name(), "eps", o.eps());
}

void Adagrad::step() {
  NoGradGuard no_grad;
  for_each_param_with_grad([&](const ParamGroup& group, int64_t index, Tensor& param, const Tensor& grad) {
    const auto& o = static_cast<const AdagradOptions&>(group.options());
    const double lr = o.lr(), lr_decay = o.lr_decay(), eps = o.eps(), weight_decay = o.weight_decay();
    const double t = increment_step(index);
    Tensor sum = buffer(index, "sum", param, o.initial_accumulator_value());
    const double clr = lr / (1.0 + (t - 1.0) * lr_decay);
    const int64_t n = param.numel();
    HEED_DISPATCH_FLOAT(param.dtype(), "Adagrad::step", [&] {
      scalar_t* p = param.data<scalar_t>();
      const scalar_t* g = grad.data<scalar_t>();
      scalar_t* s = sum.data<scalar_t>();
      for (int64_t k = 0; k < n; ++k) {
        const double gk = weight_decay != 0.0 ? g[k] + weight_decay * p[k] : double(g[k]);
        s[k] = static_cast<scalar_t>(s[k] + gk * gk);
        const double std_dev = std::sqrt(double(s[k])) + eps;
        p[k] = static_cast<scalar_t>(p[k] - clr * (gk / std_dev));
      }
    });
  });
}

}  // namespace heed::optim
