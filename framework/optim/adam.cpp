// Adam and AdamW (heed/optim/adam.hpp): one plain loop over a parameter's dense buffer, in double
// arithmetic, following torch/optim/adam.py and adamw.py's single-tensor paths in PyTorch 1.13 (same
// order of operations, same stored intermediates).
#include "heed/optim/adam.hpp"

#include <algorithm>
#include <cmath>

#include "heed/autograd.hpp"
#include "ops/common.hpp"
#include "optim/common.hpp"

namespace heed::optim {

namespace {

const std::vector<std::string> kAdamState = {"exp_avg", "exp_avg_sq", "max_exp_avg_sq"};

// The state-dict form of Adam's and AdamW's options (the betas as beta1 and beta2).
template <class Options>
Hyperparams adam_hyperparams(const Options& o) {
  return {{"lr", o.lr()},
          {"beta1", std::get<0>(o.betas())},
          {"beta2", std::get<1>(o.betas())},
          {"eps", o.eps()},
          {"weight_decay", o.weight_decay()},
          {"amsgrad", detail::flag(o.amsgrad())}};
}

template <class Options>
void set_adam_hyperparams(Options& o, const Hyperparams& values, const char* type) {
  for (const auto& [name, value] : values) {
    if (name == "lr") o.lr(value);
    else if (name == "beta1") o.betas({value, std::get<1>(o.betas())});
    else if (name == "beta2") o.betas({std::get<0>(o.betas()), value});
    else if (name == "eps") o.eps(value);
    else if (name == "weight_decay") o.weight_decay(value);
    else if (name == "amsgrad") o.amsgrad(value != 0.0);
    else detail::unknown_hyperparam(type, name, adam_hyperparams(o));
  }
}

}  // namespace

Hyperparams AdamOptions::hyperparams() const { return adam_hyperparams(*this); }
void AdamOptions::set_hyperparams(const Hyperparams& values) { set_adam_hyperparams(*this, values, "AdamOptions"); }
Hyperparams AdamWOptions::hyperparams() const { return adam_hyperparams(*this); }
void AdamWOptions::set_hyperparams(const Hyperparams& values) { set_adam_hyperparams(*this, values, "AdamWOptions"); }

Adam::Adam(std::vector<Tensor> params, const AdamOptions& options)
    : Adam(std::vector<ParamGroup>{ParamGroup(std::move(params))}, options) {}

Adam::Adam(std::vector<ParamGroup> groups, const AdamOptions& defaults) : Adam("Adam", defaults.clone()) {
  add_param_groups(std::move(groups));
}

Adam::Adam(std::string name, std::unique_ptr<OptimizerOptions> defaults)
    : Optimizer(std::move(name), std::move(defaults), kAdamState, /*has_step=*/true) {}

AdamW::AdamW(std::vector<Tensor> params, const AdamWOptions& options)
    : AdamW(std::vector<ParamGroup>{ParamGroup(std::move(params))}, options) {}

AdamW::AdamW(std::vector<ParamGroup> groups, const AdamWOptions& defaults) : Adam("AdamW", defaults.clone()) {
  add_param_groups(std::move(groups));
}

template <class Options>
void Adam::check(const OptimizerOptions& options) const {
  const auto& o = static_cast<const Options&>(options);
  detail::require_at_least_zero(name(), "lr", o.lr());
  detail::require_at_least_zero(name(), "eps", o.eps());
  detail::require_at_least_zero(name(), "weight_decay", o.weight_decay());
  detail::require_beta(name(), "beta1", std::get<0>(o.betas()));
  detail::require_beta(name(), "beta2", std::get<1>(o.betas()));
}

void Adam::check_options(const OptimizerOptions& options) const { check<AdamOptions>(options); }
void AdamW::check_options(const OptimizerOptions& options) const { check<AdamWOptions>(options); }

template <class Options>
void Adam::update(bool decoupled_weight_decay) {
  NoGradGuard no_grad;
  for_each_param_with_grad([&](const ParamGroup& group, int64_t index, Tensor& param, const Tensor& grad) {
    const auto& o = static_cast<const Options&>(group.options());
    const double lr = o.lr(), beta1 = std::get<0>(o.betas()), beta2 = std::get<1>(o.betas()), eps = o.eps(),
                 weight_decay = o.weight_decay();
    const bool amsgrad = o.amsgrad();
    const double t = increment_step(index);
    Tensor exp_avg = buffer(index, "exp_avg", param), exp_avg_sq = buffer(index, "exp_avg_sq", param);
    Tensor max_exp_avg_sq = amsgrad ? buffer(index, "max_exp_avg_sq", param) : Tensor();
    const double step_size = lr / (1.0 - std::pow(beta1, t));
    const double bias_correction2_sqrt = std::sqrt(1.0 - std::pow(beta2, t));
    const double l2 = decoupled_weight_decay ? 0.0 : weight_decay;
    const double decay = decoupled_weight_decay ? 1.0 - lr * weight_decay : 1.0;
    const int64_t n = param.numel();
    HEED_DISPATCH_FLOAT(param.dtype(), "Adam::step", [&] {
      scalar_t* p = param.data<scalar_t>();
      const scalar_t* g = grad.data<scalar_t>();
      scalar_t* m = exp_avg.data<scalar_t>();
      scalar_t* v = exp_avg_sq.data<scalar_t>();
      scalar_t* v_max = amsgrad ? max_exp_avg_sq.data<scalar_t>() : nullptr;
      for (int64_t k = 0; k < n; ++k) {
        const double gk = l2 != 0.0 ? g[k] + l2 * p[k] : double(g[k]);
        if (decay != 1.0) p[k] = static_cast<scalar_t>(p[k] * decay);
        m[k] = static_cast<scalar_t>(m[k] * beta1 + (1.0 - beta1) * gk);
        v[k] = static_cast<scalar_t>(v[k] * beta2 + (1.0 - beta2) * gk * gk);
        double v_hat = v[k];
        if (v_max) v_hat = v_max[k] = std::max(v_max[k], v[k]);
        const double denom = std::sqrt(v_hat) / bias_correction2_sqrt + eps;
        p[k] = static_cast<scalar_t>(p[k] - step_size * (m[k] / denom));
      }
    });
  });
}

void Adam::step() { update<AdamOptions>(/*decoupled_weight_decay=*/false); }
void AdamW::step() { update<AdamWOptions>(/*decoupled_weight_decay=*/true); }

}  // namespace heed::optim
