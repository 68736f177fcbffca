// heed/optim/adam.hpp — Adam and AdamW (decoupled weight decay).
#pragma once
#include <memory>
#include <string>
#include <tuple>
#include <vector>

#include "heed/optim/optimizer.hpp"

namespace heed::optim {

/// Adam, at step t (per parameter, from 1), with g = grad + weight_decay * p (L2 added to the gradient):
///   m = beta1 * m + (1 - beta1) * g
///   v = beta2 * v + (1 - beta2) * g^2
///   v_hat = amsgrad ? (v_max = max(v_max, v)) : v
///   p -= lr / (1 - beta1^t) * m / (sqrt(v_hat) / sqrt(1 - beta2^t) + eps)
/// AdamW is the same with g = grad and decoupled weight decay applied first: p *= 1 - lr * weight_decay.
/// Defaults: lr 1e-3, betas (0.9, 0.999), eps 1e-8, weight_decay 0 (Adam) or 0.01 (AdamW), amsgrad off.
/// State: "step", "exp_avg" (m), "exp_avg_sq" (v), "max_exp_avg_sq" (amsgrad only). In the state dict
/// the betas are two hyper-parameters, "beta1" and "beta2".
struct AdamOptions : OptimizerCloneableOptions<AdamOptions> {
  using betas_t = std::tuple<double, double>;  ///< (beta1, beta2)
  /// PyTorch's Adam defaults with the given lr.
  explicit AdamOptions(double lr = 1e-3) : lr_(lr) {}
  Hyperparams hyperparams() const override;  ///< lr, beta1, beta2, eps, weight_decay, amsgrad
  void set_hyperparams(const Hyperparams& values) override;  ///< from the state-dict names above
  HEED_ARG(double, lr);  ///< learning rate (>= 0)
  HEED_ARG(betas_t, betas) = betas_t(0.9, 0.999);  ///< decay of the first and second moments, each in [0, 1)
  HEED_ARG(double, eps) = 1e-8;  ///< added to the denominator (>= 0)
  HEED_ARG(double, weight_decay) = 0.0;  ///< L2 coefficient added to the gradient (>= 0)
  HEED_ARG(bool, amsgrad) = false;  ///< use the running maximum of v (AMSGrad)
};

/// AdamW's hyper-parameters: Adam's, with decoupled weight_decay defaulting to 0.01 (see AdamOptions).
struct AdamWOptions : OptimizerCloneableOptions<AdamWOptions> {
  using betas_t = std::tuple<double, double>;  ///< (beta1, beta2)
  /// PyTorch's AdamW defaults with the given lr.
  explicit AdamWOptions(double lr = 1e-3) : lr_(lr) {}
  Hyperparams hyperparams() const override;  ///< lr, beta1, beta2, eps, weight_decay, amsgrad
  void set_hyperparams(const Hyperparams& values) override;  ///< from the state-dict names above
  HEED_ARG(double, lr);  ///< learning rate (>= 0)
  HEED_ARG(betas_t, betas) = betas_t(0.9, 0.999);  ///< decay of the first and second moments, each in [0, 1)
  HEED_ARG(double, eps) = 1e-8;  ///< added to the denominator (>= 0)
  HEED_ARG(double, weight_decay) = 0.01;  ///< decoupled decay: p *= 1 - lr * weight_decay before the step
  HEED_ARG(bool, amsgrad) = false;  ///< use the running maximum of v (AMSGrad)
};

/// Adam (Kingma & Ba), PyTorch's single-tensor update; see AdamOptions for the rule.
class Adam : public Optimizer {
 public:
  /// one group; throws heed::Error on an empty list or invalid options
  Adam(std::vector<Tensor> params, const AdamOptions& options = AdamOptions());
  /// groups without options take `defaults`
  Adam(std::vector<ParamGroup> groups, const AdamOptions& defaults = AdamOptions());
  void step() override;

 protected:
  /// For AdamW: sets up the state without adding groups (the derived constructor adds them, so that its
  /// own check_options runs).
  Adam(std::string name, std::unique_ptr<OptimizerOptions> defaults);
  void check_options(const OptimizerOptions& options) const override;
  /// One step with options of type Options (AdamOptions or AdamWOptions); decoupled_weight_decay decays
  /// p directly instead of adding to g.
  template <class Options>
  void update(bool decoupled_weight_decay);
  /// The range checks of either options type.
  template <class Options>
  void check(const OptimizerOptions& options) const;
};

/// Adam with decoupled weight decay (Loshchilov & Hutter); see AdamOptions for the rule.
class AdamW : public Adam {
 public:
  /// one group; throws heed::Error on an empty list or invalid options
  AdamW(std::vector<Tensor> params, const AdamWOptions& options = AdamWOptions());
  /// groups without options take `defaults`
  AdamW(std::vector<ParamGroup> groups, const AdamWOptions& defaults = AdamWOptions());
  void step() override;

 protected:
  void check_options(const OptimizerOptions& options) const override;
};

}  // namespace heed::optim
