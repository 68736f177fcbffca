// heed/optim.hpp — optimizers, gradient clipping, learning-rate schedules and an L2 penalty.
//
//   heed::optim::Adam opt(model->parameters(), heed::optim::AdamOptions().lr(3e-4));
//   heed::optim::NoamLR schedule(opt, /*d_model=*/512, /*warmup=*/4000);
//   for (...) {
//     opt.zero_grad();
//     Tensor loss = heed::cross_entropy(model->forward(x), y);
//     loss.backward();
//     heed::optim::clip_grad_norm_(model->parameters(), 1.0);
//     opt.step();
//     schedule.step();
//   }
//
// Every optimizer follows PyTorch 1.13's update rule and defaults exactly (torch/optim/*.py, the
// single-tensor path), so a heed run and a PyTorch run from the same start take the same steps
// (tests/test_optim.cpp checks trajectories against tests/fixtures/make_optim_fixtures.py).
//
// Parameter groups. An optimizer holds one or more ParamGroups, each with its own hyper-parameters
// stored by name as in PyTorch's `optimizer.param_groups` ({"lr": 0.1, "momentum": 0.9}). Booleans
// (nesterov, amsgrad, centered) are stored as 0/1. A group's `options` need only name what differs
// from the optimizer's defaults; after construction they hold every hyper-parameter, and changing
// `param_groups()[g].options["lr"]` between steps takes effect at the next step.
//
// Updates run under NoGradGuard directly on the parameters' buffers (plain loops, Float32 or Float64;
// arithmetic in double). A parameter whose grad is undefined is skipped — no update and no state change.
// zero_grad() drops the gradients (PyTorch's zero_grad(set_to_none=True)), so a parameter that gets no
// gradient in a step is skipped in that step.
//
// State. Per-parameter state (moment estimates, momentum buffers, step counts) is created on the
// parameter's first update. Parameters are numbered across groups in order (group 0's parameters first),
// as in PyTorch's state_dict. state_dict() returns copies:
//   state.<i>.<name>           e.g. "state.3.exp_avg" (the parameter's shape and dtype), "state.3.step" ([])
//   param_groups.<g>.<hyper>   each hyper-parameter as a 0-d Float64 tensor, e.g. "param_groups.0.lr"
//   param_groups.<g>.params    the group's parameter numbers (Int64), which must match on load
// It is nn::NamedTensors, so heed::io::save_safetensors writes it to a checkpoint next to the model's.
// load_state_dict replaces all state and the groups' hyper-parameters; it validates every key first
// (unknown, missing or mis-shaped keys throw naming the key) and changes nothing when one is wrong.
#pragma once
#include <cstdint>
#include <functional>
#include <limits>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "heed/nn/module.hpp"
#include "heed/tensor.hpp"

/// Optimizers (SGD, Adam, AdamW, RMSprop, Adagrad, ...), learning-rate schedules and gradient clipping.
namespace heed::optim {

/// Hyper-parameters by name; booleans as 0/1.
using Hyperparams = std::map<std::string, double>;

/// Parameters that share hyper-parameters (PyTorch's optimizer.param_groups[g]).
struct ParamGroup {
  std::vector<Tensor> params;  ///< the tensors this group updates
  Hyperparams options;  ///< overrides of the optimizer's defaults; after construction, every hyper-parameter
  double get(const std::string& name) const;  ///< throws naming the key and the known ones
};

/// The base of every optimizer: parameter groups, per-parameter state and its (de)serialization.
/// Not copyable: it holds the parameter handles it updates.
class Optimizer {
 public:
  virtual ~Optimizer() = default;
  Optimizer(const Optimizer&) = delete;
  Optimizer& operator=(const Optimizer&) = delete;

  virtual void step() = 0;  ///< one update of every parameter that has a gradient
  void zero_grad();         ///< drops every parameter's gradient

  double lr() const;        ///< group 0's learning rate
  void set_lr(double lr);   ///< sets every group's learning rate
  std::vector<ParamGroup>& param_groups() { return groups_; }  ///< read or change hyper-parameters between steps
  const std::vector<ParamGroup>& param_groups() const { return groups_; }  ///< every hyper-parameter filled in
  /// Adds a group (e.g. layers unfrozen for fine-tuning); missing hyper-parameters take the defaults.
  void add_param_group(ParamGroup group);
  int64_t num_params() const;  ///< across all groups
  const std::string& name() const { return name_; }  ///< "SGD", "Adam", ... (for messages)

  nn::NamedTensors state_dict() const;  ///< hyper-parameters and per-parameter state, as copies
  void load_state_dict(const nn::NamedTensors& state);  ///< validates every key, then replaces all state

 protected:
  /// `state_names`: the per-parameter buffers this optimizer may keep (shaped like the parameter);
  /// `has_step`: whether it keeps a per-parameter step count "step".
  Optimizer(std::string name, Hyperparams defaults, std::vector<std::string> state_names, bool has_step);
  /// Adds the constructor's groups (throws on an empty list, as PyTorch does).
  void add_param_groups(std::vector<ParamGroup> groups);
  /// Throws heed::Error naming the optimizer and the hyper-parameter when a group's value is invalid.
  virtual void check_options(const ParamGroup& group) const = 0;

  /// Calls f(group, index, param, grad) for every parameter whose grad is defined; `index` numbers the
  /// parameter as in state_dict. grad is dense and of the parameter's dtype.
  template <class F>
  void for_each_param_with_grad(F&& f) {
    int64_t index = 0;
    for (ParamGroup& group : groups_)
      for (Tensor& param : group.params) {
        const int64_t i = index++;
        Tensor grad = param.grad();
        if (!grad.defined()) continue;
        f(static_cast<const ParamGroup&>(group), i, param, grad.contiguous());
      }
  }
  bool has_state(int64_t index, const std::string& name) const;  ///< parameter `index` has buffer `name`
  /// The parameter-shaped buffer `name` of parameter `index`, filled with `init` on first use (and
  /// converted if the parameter's dtype has changed since, e.g. by Module::to).
  Tensor buffer(int64_t index, const std::string& name, const Tensor& param, double init = 0.0);
  double increment_step(int64_t index);  ///< the parameter's step count after adding 1

 private:
  std::string name_;
  Hyperparams defaults_;
  std::vector<std::string> state_names_;
  bool has_step_;
  std::vector<ParamGroup> groups_;
  std::vector<std::map<std::string, Tensor>> state_;  ///< by parameter index, then name
};

// ---- SGD ----------------------------------------------------------------------------------------------
/// With g = grad + weight_decay * p:
///   momentum == 0:  p -= lr * g
///   otherwise       b = g on the first step, then b = momentum * b + (1 - dampening) * g
///                   p -= lr * (nesterov ? g + momentum * b : b)
/// Nesterov needs momentum > 0 and dampening == 0. State: "momentum_buffer" (only when momentum != 0).
struct SGDOptions {
  /// The lr, with momentum, dampening, weight_decay 0 and nesterov off.
  explicit SGDOptions(double lr)  // no default learning rate, as in PyTorch
      : values{{"lr", lr}, {"momentum", 0.0}, {"dampening", 0.0}, {"weight_decay", 0.0}, {"nesterov", 0.0}} {}
  SGDOptions& lr(double v) { return set("lr", v); }  ///< learning rate (>= 0)
  SGDOptions& momentum(double v) { return set("momentum", v); }  ///< momentum factor (>= 0; 0 = plain SGD)
  /// damps the gradient's share of the momentum buffer
  SGDOptions& dampening(double v) { return set("dampening", v); }
  /// L2 coefficient added to the gradient (>= 0)
  SGDOptions& weight_decay(double v) { return set("weight_decay", v); }
  /// Nesterov momentum (needs momentum > 0, dampening 0)
  SGDOptions& nesterov(bool v) { return set("nesterov", v ? 1.0 : 0.0); }
  Hyperparams values;  ///< the hyper-parameters by name, as the optimizer's defaults

 private:
  SGDOptions& set(const char* key, double v) { values[key] = v; return *this; }
};

/// Stochastic gradient descent with optional (Nesterov) momentum; see SGDOptions for the rule.
class SGD : public Optimizer {
 public:
  /// one group; throws heed::Error on an empty list or invalid options
  SGD(std::vector<Tensor> params, const SGDOptions& options);
  /// groups whose missing hyper-parameters come from `defaults`
  SGD(std::vector<ParamGroup> groups, const SGDOptions& defaults);
  void step() override;

 protected:
  void check_options(const ParamGroup& group) const override;
};

// ---- Adam and AdamW -----------------------------------------------------------------------------------
/// Adam, at step t (per parameter, from 1), with g = grad + weight_decay * p (L2 added to the gradient):
///   m = beta1 * m + (1 - beta1) * g
///   v = beta2 * v + (1 - beta2) * g^2
///   v_hat = amsgrad ? (v_max = max(v_max, v)) : v
///   p -= lr / (1 - beta1^t) * m / (sqrt(v_hat) / sqrt(1 - beta2^t) + eps)
/// AdamW is the same with g = grad and decoupled weight decay applied first: p *= 1 - lr * weight_decay.
/// Defaults: lr 1e-3, betas (0.9, 0.999), eps 1e-8, weight_decay 0 (Adam) or 0.01 (AdamW), amsgrad off.
/// State: "step", "exp_avg" (m), "exp_avg_sq" (v), "max_exp_avg_sq" (amsgrad only).
struct AdamOptions {
  /// PyTorch's Adam defaults with the given lr.
  explicit AdamOptions(double lr = 1e-3)
      : values{{"lr", lr},           {"beta1", 0.9},          {"beta2", 0.999},
               {"eps", 1e-8},        {"weight_decay", 0.0},   {"amsgrad", 0.0}} {}
  AdamOptions& lr(double v) { return set("lr", v); }  ///< learning rate (>= 0)
  /// decay of the first and second moments, each in [0, 1)
  AdamOptions& betas(double beta1, double beta2) { set("beta1", beta1); return set("beta2", beta2); }
  AdamOptions& eps(double v) { return set("eps", v); }  ///< added to the denominator (>= 0)
  /// L2 coefficient added to the gradient (>= 0)
  AdamOptions& weight_decay(double v) { return set("weight_decay", v); }
  AdamOptions& amsgrad(bool v) { return set("amsgrad", v ? 1.0 : 0.0); }  ///< use the running maximum of v (AMSGrad)
  Hyperparams values;  ///< the hyper-parameters by name, as the optimizer's defaults

 private:
  AdamOptions& set(const char* key, double v) { values[key] = v; return *this; }
};

/// AdamW's hyper-parameters: Adam's, with decoupled weight_decay defaulting to 0.01 (see AdamOptions).
struct AdamWOptions {
  /// PyTorch's AdamW defaults with the given lr.
  explicit AdamWOptions(double lr = 1e-3)
      : values{{"lr", lr},           {"beta1", 0.9},          {"beta2", 0.999},
               {"eps", 1e-8},        {"weight_decay", 0.01},  {"amsgrad", 0.0}} {}
  AdamWOptions& lr(double v) { return set("lr", v); }  ///< learning rate (>= 0)
  /// decay of the first and second moments, each in [0, 1)
  AdamWOptions& betas(double beta1, double beta2) { set("beta1", beta1); return set("beta2", beta2); }
  AdamWOptions& eps(double v) { return set("eps", v); }  ///< added to the denominator (>= 0)
  /// decoupled decay: p *= 1 - lr * weight_decay before the step
  AdamWOptions& weight_decay(double v) { return set("weight_decay", v); }
  AdamWOptions& amsgrad(bool v) { return set("amsgrad", v ? 1.0 : 0.0); }  ///< use the running maximum of v (AMSGrad)
  Hyperparams values;  ///< the hyper-parameters by name, as the optimizer's defaults

 private:
  AdamWOptions& set(const char* key, double v) { values[key] = v; return *this; }
};

/// Adam (Kingma & Ba), PyTorch's single-tensor update; see AdamOptions for the rule.
class Adam : public Optimizer {
 public:
  /// one group; throws heed::Error on an empty list or invalid options
  Adam(std::vector<Tensor> params, const AdamOptions& options = AdamOptions());
  /// groups whose missing hyper-parameters come from `defaults`
  Adam(std::vector<ParamGroup> groups, const AdamOptions& defaults = AdamOptions());
  void step() override;

 protected:
  /// For AdamW: `name` for messages; decoupled_weight_decay decays p directly instead of adding to g.
  Adam(std::string name, std::vector<ParamGroup> groups, Hyperparams defaults, bool decoupled_weight_decay);
  void check_options(const ParamGroup& group) const override;

 private:
  bool decoupled_weight_decay_ = false;
};

/// Adam with decoupled weight decay (Loshchilov & Hutter); see AdamOptions for the rule.
class AdamW : public Adam {
 public:
  /// one group; throws heed::Error on an empty list or invalid options
  AdamW(std::vector<Tensor> params, const AdamWOptions& options = AdamWOptions());
  /// groups whose missing hyper-parameters come from `defaults`
  AdamW(std::vector<ParamGroup> groups, const AdamWOptions& defaults = AdamWOptions());
};

// ---- RMSprop ------------------------------------------------------------------------------------------
/// With g = grad + weight_decay * p:
///   v = alpha * v + (1 - alpha) * g^2
///   centered:  a = alpha * a + (1 - alpha) * g;  d = sqrt(v - a^2) + eps     otherwise d = sqrt(v) + eps
///   momentum > 0:  b = momentum * b + g / d;  p -= lr * b                    otherwise p -= lr * g / d
/// Defaults: lr 1e-2, alpha 0.99, eps 1e-8, weight_decay 0, momentum 0, centered off. (eps is added
/// outside the square root, unlike Keras/TensorFlow's RMSprop.)
/// State: "step", "square_avg" (v), "momentum_buffer" (momentum > 0), "grad_avg" (centered).
struct RMSpropOptions {
  /// PyTorch's RMSprop defaults with the given lr.
  explicit RMSpropOptions(double lr = 1e-2)
      : values{{"lr", lr},           {"alpha", 0.99},  {"eps", 1e-8},
               {"weight_decay", 0.0}, {"momentum", 0.0}, {"centered", 0.0}} {}
  RMSpropOptions& lr(double v) { return set("lr", v); }  ///< learning rate (>= 0)
  RMSpropOptions& alpha(double v) { return set("alpha", v); }  ///< decay of the squared-gradient average (>= 0)
  RMSpropOptions& eps(double v) { return set("eps", v); }  ///< added to the denominator, outside the root (>= 0)
  /// L2 coefficient added to the gradient (>= 0)
  RMSpropOptions& weight_decay(double v) { return set("weight_decay", v); }
  RMSpropOptions& momentum(double v) { return set("momentum", v); }  ///< momentum factor (>= 0; 0 = none)
  /// divide by the gradient's estimated standard deviation
  RMSpropOptions& centered(bool v) { return set("centered", v ? 1.0 : 0.0); }
  Hyperparams values;  ///< the hyper-parameters by name, as the optimizer's defaults

 private:
  RMSpropOptions& set(const char* key, double v) { values[key] = v; return *this; }
};

/// RMSprop (Hinton), PyTorch's variant; see RMSpropOptions for the rule.
class RMSprop : public Optimizer {
 public:
  /// one group; throws heed::Error on an empty list or invalid options
  RMSprop(std::vector<Tensor> params, const RMSpropOptions& options = RMSpropOptions());
  /// groups whose missing hyper-parameters come from `defaults`
  RMSprop(std::vector<ParamGroup> groups, const RMSpropOptions& defaults = RMSpropOptions());
  void step() override;

 protected:
  void check_options(const ParamGroup& group) const override;
};

// ---- Adagrad ------------------------------------------------------------------------------------------
/// At step t (per parameter, from 1), with g = grad + weight_decay * p:
///   s = s + g^2            (s starts at initial_accumulator_value)
///   p -= lr / (1 + (t - 1) * lr_decay) * g / (sqrt(s) + eps)
/// Defaults: lr 1e-2, lr_decay 0, weight_decay 0, initial_accumulator_value 0, eps 1e-10.
/// State: "step", "sum" (s), created at a parameter's first update from its group's
/// initial_accumulator_value. (PyTorch fills every accumulator at construction from the constructor's
/// value, ignoring a per-group one; the two agree unless groups set different values.)
struct AdagradOptions {
  /// PyTorch's Adagrad defaults with the given lr.
  explicit AdagradOptions(double lr = 1e-2)
      : values{{"lr", lr},
               {"lr_decay", 0.0},
               {"weight_decay", 0.0},
               {"initial_accumulator_value", 0.0},
               {"eps", 1e-10}} {}
  AdagradOptions& lr(double v) { return set("lr", v); }  ///< learning rate (>= 0)
  AdagradOptions& lr_decay(double v) { return set("lr_decay", v); }  ///< lr is divided by 1 + (t - 1) * lr_decay (>= 0)
  /// L2 coefficient added to the gradient (>= 0)
  AdagradOptions& weight_decay(double v) { return set("weight_decay", v); }
  /// start value of the sum s (>= 0)
  AdagradOptions& initial_accumulator_value(double v) { return set("initial_accumulator_value", v); }
  AdagradOptions& eps(double v) { return set("eps", v); }  ///< added to the denominator (>= 0)
  Hyperparams values;  ///< the hyper-parameters by name, as the optimizer's defaults

 private:
  AdagradOptions& set(const char* key, double v) { values[key] = v; return *this; }
};

/// Adagrad (Duchi et al.); see AdagradOptions for the rule.
class Adagrad : public Optimizer {
 public:
  /// one group; throws heed::Error on an empty list or invalid options
  Adagrad(std::vector<Tensor> params, const AdagradOptions& options = AdagradOptions());
  /// groups whose missing hyper-parameters come from `defaults`
  Adagrad(std::vector<ParamGroup> groups, const AdagradOptions& defaults = AdagradOptions());
  void step() override;

 protected:
  void check_options(const ParamGroup& group) const override;
};

// ---- gradient clipping (torch.nn.utils semantics) -----------------------------------------------------
/// The norm of all gradients together, as if concatenated into one vector (norm_type = p of the p-norm,
/// or infinity for the max-norm). When it exceeds max_norm, every gradient is scaled in place by
/// max_norm / (total_norm + 1e-6). Parameters without a gradient are ignored. Returns the total norm
/// (before clipping; 0 when no parameter has a gradient). error_if_nonfinite: throw when the norm is
/// NaN or infinite instead of scaling by it.
double clip_grad_norm_(const std::vector<Tensor>& params, double max_norm, double norm_type = 2.0,
                       bool error_if_nonfinite = false);
/// Clamps every gradient element into [-clip_value, clip_value] in place.
void clip_grad_value_(const std::vector<Tensor>& params, double clip_value);

// ---- L2 regularization --------------------------------------------------------------------------------
/// coeff * sum(param^2), differentiable (gradient 2 * coeff * param). Adding it to the loss regularizes
/// one chosen parameter, like Keras' `embeddings_regularizer=l2(0.001)`:
///   Tensor loss = heed::cross_entropy(logits, y) + heed::optim::l2_penalty(embedding->weight, 1e-3);
/// (Unlike an optimizer's weight_decay, which applies to every parameter of a group.)
Tensor l2_penalty(const Tensor& param, double coeff);

// ---- learning-rate schedules --------------------------------------------------------------------------
/// A schedule sets every group's lr from a closed-form function of the number of step() calls so far, t
/// (t = 0 after construction), and of the group's base lr (its lr when the schedule was made):
///   lr_g = lr_at(t, base_lr_g)
/// Construction applies t = 0, so the first optimizer step already uses the schedule. Call step() once
/// per optimizer step (or per epoch), after opt.step(). state_dict(): "last_step" and "base_lrs.<g>"
/// (0-d Float64); load_state_dict validates the keys, restores them and re-applies the lr.
class LRScheduler {
 public:
  explicit LRScheduler(Optimizer& optimizer);  ///< remembers each group's lr as its base lr
  virtual ~LRScheduler() = default;
  LRScheduler(const LRScheduler&) = delete;
  LRScheduler& operator=(const LRScheduler&) = delete;

  void step();                             ///< t += 1, then sets the groups' lr
  std::vector<double> get_last_lr() const;  ///< the lr of each group set by the last step (or construction)
  int64_t last_step() const { return last_step_; }  ///< how many times step() has run
  const std::vector<double>& base_lrs() const { return base_lrs_; }  ///< each group's lr when the scheduler was made
  /// The schedule: the lr at `step` for a group whose base lr is `base_lr`.
  virtual double lr_at(int64_t step, double base_lr) const = 0;

  nn::NamedTensors state_dict() const;  ///< "last_step" and "base_lrs.<g>"
  void load_state_dict(const nn::NamedTensors& state);  ///< restores them and re-applies the lr

 protected:
  void apply();  ///< sets the groups' lr for last_step_ (derived constructors call it once)

 private:
  Optimizer& optimizer_;
  std::vector<double> base_lrs_;
  std::vector<double> last_lrs_;
  int64_t last_step_ = 0;
};

/// lr = base_lr * gamma^floor(t / step_size)   (torch.optim.lr_scheduler.StepLR)
class StepLR : public LRScheduler {
 public:
  /// lr *= gamma every step_size steps; throws when step_size <= 0
  StepLR(Optimizer& optimizer, int64_t step_size, double gamma = 0.1);
  double lr_at(int64_t step, double base_lr) const override;

 private:
  int64_t step_size_;
  double gamma_;
};

/// lr = base_lr * gamma^t   (torch.optim.lr_scheduler.ExponentialLR)
class ExponentialLR : public LRScheduler {
 public:
  ExponentialLR(Optimizer& optimizer, double gamma);  ///< lr *= gamma every step
  double lr_at(int64_t step, double base_lr) const override;

 private:
  double gamma_;
};

/// Linear warmup, then cosine annealing down to min_lr, then constant min_lr:
///   t < warmup_steps:             lr = base_lr * t / warmup_steps
///   warmup_steps <= t <= total:   lr = min_lr + (base_lr - min_lr) * (1 + cos(pi * progress)) / 2,
///                                 progress = (t - warmup_steps) / (total_steps - warmup_steps)
///   t > total_steps:              lr = min_lr
/// With min_lr = 0 this is transformers' get_cosine_schedule_with_warmup; with warmup_steps = 0 it is
/// torch's CosineAnnealingLR(T_max = total_steps, eta_min = min_lr) up to T_max.
class CosineWithWarmup : public LRScheduler {
 public:
  /// Throws heed::Error unless 0 <= warmup_steps < total_steps and min_lr >= 0.
  CosineWithWarmup(Optimizer& optimizer, int64_t warmup_steps, int64_t total_steps, double min_lr = 0.0);
  double lr_at(int64_t step, double base_lr) const override;

 private:
  int64_t warmup_steps_, total_steps_;
  double min_lr_;
};

/// The Transformer schedule ("Attention Is All You Need", section 5.3), with s = t + 1 the number of the
/// optimizer step about to run (counted from 1):
///   lr = factor * d_model^-0.5 * min(s^-0.5, s * warmup^-1.5)
/// It rises linearly for `warmup` steps, peaks at s = warmup, then decays as 1/sqrt(s). The groups' own
/// lr is ignored (every group gets this lr).
class NoamLR : public LRScheduler {
 public:
  /// throws when d_model or warmup <= 0
  NoamLR(Optimizer& optimizer, int64_t d_model, int64_t warmup, double factor = 1.0);
  double lr_at(int64_t step, double base_lr) const override;

 private:
  int64_t d_model_, warmup_;
  double factor_;
};

/// lr = base_lr * factor(t) for any function   (torch.optim.lr_scheduler.LambdaLR)
class LambdaLR : public LRScheduler {
 public:
  LambdaLR(Optimizer& optimizer, std::function<double(int64_t step)> factor);  ///< `factor(t)` multiplies each base lr
  double lr_at(int64_t step, double base_lr) const override;

 private:
  std::function<double(int64_t)> factor_;
};

}  // namespace heed::optim
