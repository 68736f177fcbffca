// heed/optim/scheduler.hpp — learning-rate schedules: each sets every parameter group's lr (through the
// options' generic set_lr) from a closed-form function of the step count.
#pragma once
#include <cstdint>
#include <functional>
#include <vector>

#include "heed/nn/module.hpp"
#include "heed/optim/optimizer.hpp"

namespace heed::optim {

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
