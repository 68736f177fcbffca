// heed/optim/sgd.hpp — stochastic gradient descent with optional (Nesterov) momentum.
#pragma once
#include <vector>

#include "heed/optim/optimizer.hpp"

namespace heed::optim {

/// With g = grad + weight_decay * p:
///   momentum == 0:  p -= lr * g
///   otherwise       b = g on the first step, then b = momentum * b + (1 - dampening) * g
///                   p -= lr * (nesterov ? g + momentum * b : b)
/// Nesterov needs momentum > 0 and dampening == 0. State: "momentum_buffer" (only when momentum != 0).
struct SGDOptions : OptimizerCloneableOptions<SGDOptions> {
  /// The lr, with momentum, dampening, weight_decay 0 and nesterov off.
  explicit SGDOptions(double lr) : lr_(lr) {}  // no default learning rate, as in PyTorch
  Hyperparams hyperparams() const override;  ///< lr, momentum, dampening, weight_decay, nesterov
  void set_hyperparams(const Hyperparams& values) override;  ///< from the state-dict names above
  HEED_ARG(double, lr);  ///< learning rate (>= 0)
  HEED_ARG(double, momentum) = 0.0;  ///< momentum factor (>= 0; 0 = plain SGD)
  HEED_ARG(double, dampening) = 0.0;  ///< damps the gradient's share of the momentum buffer
  HEED_ARG(double, weight_decay) = 0.0;  ///< L2 coefficient added to the gradient (>= 0)
  HEED_ARG(bool, nesterov) = false;  ///< Nesterov momentum (needs momentum > 0, dampening 0)
};

/// Stochastic gradient descent with optional (Nesterov) momentum; see SGDOptions for the rule.
class SGD : public Optimizer {
 public:
  /// one group; throws heed::Error on an empty list or invalid options
  SGD(std::vector<Tensor> params, const SGDOptions& options);
  /// groups without options take `defaults`
  SGD(std::vector<ParamGroup> groups, const SGDOptions& defaults);
  void step() override;

 protected:
  void check_options(const OptimizerOptions& options) const override;
};

}  // namespace heed::optim
