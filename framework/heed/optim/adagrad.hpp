// heed/optim/adagrad.hpp — Adagrad.
#pragma once
#include <vector>

#include "heed/optim/optimizer.hpp"

namespace heed::optim {

/// At step t (per parameter, from 1), with g = grad + weight_decay * p:
///   s = s + g^2            (s starts at initial_accumulator_value)
///   p -= lr / (1 + (t - 1) * lr_decay) * g / (sqrt(s) + eps)
/// Defaults: lr 1e-2, lr_decay 0, weight_decay 0, initial_accumulator_value 0, eps 1e-10.
/// State: "step", "sum" (s), created at a parameter's first update from its group's
/// initial_accumulator_value. (PyTorch fills every accumulator at construction from the constructor's
/// value, ignoring a per-group one; the two agree unless groups set different values.)
struct AdagradOptions : OptimizerCloneableOptions<AdagradOptions> {
  /// PyTorch's Adagrad defaults with the given lr.
  explicit AdagradOptions(double lr = 1e-2) : lr_(lr) {}
  Hyperparams hyperparams() const override;  ///< lr, lr_decay, weight_decay, initial_accumulator_value, eps
  void set_hyperparams(const Hyperparams& values) override;  ///< from the state-dict names above
  HEED_ARG(double, lr);  ///< learning rate (>= 0)
  HEED_ARG(double, lr_decay) = 0.0;  ///< lr is divided by 1 + (t - 1) * lr_decay (>= 0)
  HEED_ARG(double, weight_decay) = 0.0;  ///< L2 coefficient added to the gradient (>= 0)
  HEED_ARG(double, initial_accumulator_value) = 0.0;  ///< start value of the sum s (>= 0)
  HEED_ARG(double, eps) = 1e-10;  ///< added to the denominator (>= 0)
};

/// Adagrad (Duchi et al.); see AdagradOptions for the rule.
class Adagrad : public Optimizer {
 public:
  /// one group; throws heed::Error on an empty list or invalid options
  Adagrad(std::vector<Tensor> params, const AdagradOptions& options = AdagradOptions());
  /// groups without options take `defaults`
  Adagrad(std::vector<ParamGroup> groups, const AdagradOptions& defaults = AdagradOptions());
  void step() override;

 protected:
  void check_options(const OptimizerOptions& options) const override;
};

}  // namespace heed::optim
