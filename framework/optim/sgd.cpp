// SGD (heed/optim/sgd.hpp): one plain loop over a parameter's dense buffer, in double arithmetic,
// following torch/optim/sgd.py's single-tensor path in PyTorch 1.13 (same order of operations).
#include "heed/optim/sgd.hpp"

#include "heed/autograd.hpp"
#include "ops/common.hpp"
#include "optim/common.hpp"

namespace heed::optim {

using detail::flag;

Hyperparams SGDOptions::hyperparams() const {
  return {{"lr", lr()}, {"momentum", momentum()}, {"dampening", dampening()}, {"weight_decay", weight_decay()},
          {"nesterov", flag(nesterov())}};
}

void SGDOptions::set_hyperparams(const Hyperparams& values) {
  for (const auto& [name, value] : values) {
    if (name == "lr") lr(value);
    else if (name == "momentum") momentum(value);
    else if (name == "dampening") dampening(value);
    else if (name == "weight_decay") weight_decay(value);
    else if (name == "nesterov") nesterov(value != 0.0);
    else detail::unknown_hyperparam("SGDOptions", name, hyperparams());
  }
}

SGD::SGD(std::vector<Tensor> params, const SGDOptions& options)
    : SGD(std::vector<ParamGroup>{ParamGroup(std::move(params))}, options) {}

SGD::SGD(std::vector<ParamGroup> groups, const SGDOptions& defaults)
    : Optimizer("SGD", defaults.clone(), {"momentum_buffer"}, /*has_step=*/false) {
  add_param_groups(std::move(groups));
}

void SGD::check_options(const OptimizerOptions& options) const {
  const auto& o = static_cast<const SGDOptions&>(options);
  detail::require_at_least_zero(name(), "lr", o.lr());
  detail::require_at_least_zero(name(), "momentum", o.momentum());
  detail::require_at_least_zero(name(), "weight_decay", o.weight_decay());
  HEED_CHECK(!o.nesterov() || (o.momentum() > 0.0 && o.dampening() == 0.0),
             "SGD: nesterov momentum requires momentum > 0 and dampening == 0 (got momentum {}, dampening {})",
             o.momentum(), o.dampening());
}

void SGD::step() {
  NoGradGuard no_grad;
  for_each_param_with_grad([&](const ParamGroup& group, int64_t index, Tensor& param, const Tensor& grad) {
    const auto& o = static_cast<const SGDOptions&>(group.options());
    const double lr = o.lr(), momentum = o.momentum(), dampening = o.dampening(), weight_decay = o.weight_decay();
    const bool nesterov = o.nesterov();
    const bool first_step = momentum != 0.0 && !has_state(index, "momentum_buffer");
    Tensor momentum_buffer = momentum != 0.0 ? buffer(index, "momentum_buffer", param) : Tensor();
    const int64_t n = param.numel();
    HEED_DISPATCH_FLOAT(param.dtype(), "SGD::step", [&] {
      scalar_t* p = param.data<scalar_t>();
      const scalar_t* g = grad.data<scalar_t>();
      scalar_t* b = momentum_buffer.defined() ? momentum_buffer.data<scalar_t>() : nullptr;
      for (int64_t k = 0; k < n; ++k) {
        double d = weight_decay != 0.0 ? g[k] + weight_decay * p[k] : double(g[k]);
        if (b) {
          b[k] = static_cast<scalar_t>(first_step ? d : b[k] * momentum + (1.0 - dampening) * d);
          d = nesterov ? d + momentum * b[k] : double(b[k]);
        }
        p[k] = static_cast<scalar_t>(p[k] - lr * d);
      }
    });
  });
}

}  // namespace heed::optim
