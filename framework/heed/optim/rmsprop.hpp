// heed/optim/rmsprop.hpp — RMSprop, PyTorch's variant.
#pragma once
#include <vector>

#include "heed/optim/optimizer.hpp"

namespace heed::optim {

/// With g = grad + weight_decay * p:
///   v = alpha * v + (1 - alpha) * g^2
///   centered:  a = alpha * a + (1 - alpha) * g;  d = sqrt(v - a^2) + eps     otherwise d = sqrt(v) + eps
///   momentum > 0:  b = momentum * b + g / d;  p -= lr * b                    otherwise p -= lr * g / d
/// Defaults: lr 1e-2, alpha 0.99, eps 1e-8, weight_decay 0, momentum 0, centered off. (eps is added
/// outside the square root, unlike Keras/TensorFlow's RMSprop.)
/// State: "step", "square_avg" (v), "momentum_buffer" (momentum > 0), "grad_avg" (centered).
struct RMSpropOptions : OptimizerCloneableOptions<RMSpropOptions> {
  /// PyTorch's RMSprop defaults with the given lr.
  explicit RMSpropOptions(double lr = 1e-2) : lr_(lr) {}
  Hyperparams hyperparams() const override;  ///< lr, alpha, eps, weight_decay, momentum, centered
  void set_hyperparams(const Hyperparams& values) override;  ///< from the state-dict names above
  HEED_ARG(double, lr);  ///< learning rate (>= 0)
  HEED_ARG(double, alpha) = 0.99;  ///< decay of the squared-gradient average (>= 0)
  HEED_ARG(double, eps) = 1e-8;  ///< added to the denominator, outside the root (>= 0)
  HEED_ARG(double, weight_decay) = 0.0;  ///< L2 coefficient added to the gradient (>= 0)
  HEED_ARG(double, momentum) = 0.0;  ///< momentum factor (>= 0; 0 = none)
  HEED_ARG(bool, centered) = false;  ///< divide by the gradient's estimated standard deviation
};

/// RMSprop (Hinton), PyTorch's variant; see RMSpropOptions for the rule.
class RMSprop : public Optimizer {
 public:
  /// one group; throws heed::Error on an empty list or invalid options
  RMSprop(std::vector<Tensor> params, const RMSpropOptions& options = RMSpropOptions());
  /// groups without options take `defaults`
  RMSprop(std::vector<ParamGroup> groups, const RMSpropOptions& defaults = RMSpropOptions());
  void step() override;

 protected:
  void check_options(const OptimizerOptions& options) const override;
};

}  // namespace heed::optim
