// Learning-rate schedules (heed/optim/scheduler.hpp): closed-form functions of the step count that set
// each parameter group's lr through the options' generic set_lr.
#include "heed/optim/scheduler.hpp"

#include <algorithm>
#include <cmath>

#include "heed/ops.hpp"
#include "optim/common.hpp"

namespace heed::optim {

namespace {

constexpr double kPi = 3.14159265358979323846;

}  // namespace

using detail::scalar_f64;
using detail::split_indexed_key;

LRScheduler::LRScheduler(Optimizer& optimizer) : optimizer_(optimizer) {
  for (const ParamGroup& g : optimizer.param_groups()) base_lrs_.push_back(g.options().get_lr());
}

void LRScheduler::apply() {
  auto& groups = optimizer_.param_groups();
  HEED_CHECK(groups.size() == base_lrs_.size(), "LRScheduler: the optimizer has {} parameter groups but the schedule "
             "was made for {}; make the schedule after adding every group", groups.size(), base_lrs_.size());
  last_lrs_.clear();
  for (std::size_t g = 0; g < groups.size(); ++g) {
    const double lr = lr_at(last_step_, base_lrs_[g]);
    groups[g].options().set_lr(lr);
    last_lrs_.push_back(lr);
  }
}

void LRScheduler::step() {
  ++last_step_;
  apply();
}

std::vector<double> LRScheduler::get_last_lr() const { return last_lrs_; }

nn::NamedTensors LRScheduler::state_dict() const {
  nn::NamedTensors out;
  out.emplace_back("last_step", full({}, static_cast<double>(last_step_), DType::Int64));
  for (std::size_t g = 0; g < base_lrs_.size(); ++g)
    out.emplace_back(fmt::format("base_lrs.{}", g), scalar_f64(base_lrs_[g]));
  return out;
}

void LRScheduler::load_state_dict(const nn::NamedTensors& state) {
  int64_t last_step = -1;
  std::vector<double> base_lrs(base_lrs_.size());
  std::vector<bool> seen(base_lrs_.size(), false);
  for (const auto& [key, value] : state) {
    HEED_CHECK(value.defined() && value.dim() == 0, "LRScheduler::load_state_dict: '{}' has shape {}, expected []",
               key, value.defined() ? shape_str(value.shape()) : "(undefined)");
    int64_t g = -1;
    std::string rest;
    if (key == "last_step") {
      last_step = static_cast<int64_t>(value.item());
      HEED_CHECK(last_step >= 0, "LRScheduler::load_state_dict: 'last_step' is negative ({})", last_step);
    } else if (split_indexed_key(key, "base_lrs.", g, rest) && rest.empty()) {
      HEED_CHECK(g < static_cast<int64_t>(base_lrs.size()), "LRScheduler::load_state_dict: '{}' names group {}, but "
                 "the optimizer has {}", key, g, base_lrs.size());
      base_lrs[g] = value.item();
      seen[g] = true;
    } else {
      throw Error(fmt::format("LRScheduler::load_state_dict: unexpected key '{}' (expected last_step and "
                              "base_lrs.<g>)", key));
    }
  }
  HEED_CHECK(last_step >= 0, "LRScheduler::load_state_dict: missing key 'last_step'");
  for (std::size_t g = 0; g < seen.size(); ++g)
    HEED_CHECK(seen[g], "LRScheduler::load_state_dict: missing key 'base_lrs.{}'", g);
  last_step_ = last_step;
  base_lrs_ = base_lrs;
  apply();
}

StepLR::StepLR(Optimizer& optimizer, int64_t step_size, double gamma)
    : LRScheduler(optimizer), step_size_(step_size), gamma_(gamma) {
  HEED_CHECK(step_size > 0, "StepLR: step_size must be > 0, got {}", step_size);
  apply();
}

double StepLR::lr_at(int64_t step, double base_lr) const {
  return base_lr * std::pow(gamma_, static_cast<double>(step / step_size_));
}

ExponentialLR::ExponentialLR(Optimizer& optimizer, double gamma) : LRScheduler(optimizer), gamma_(gamma) { apply(); }

double ExponentialLR::lr_at(int64_t step, double base_lr) const {
  return base_lr * std::pow(gamma_, static_cast<double>(step));
}

CosineWithWarmup::CosineWithWarmup(Optimizer& optimizer, int64_t warmup_steps, int64_t total_steps, double min_lr)
    : LRScheduler(optimizer), warmup_steps_(warmup_steps), total_steps_(total_steps), min_lr_(min_lr) {
  HEED_CHECK(warmup_steps >= 0 && total_steps > warmup_steps,
             "CosineWithWarmup: need 0 <= warmup_steps < total_steps, got warmup_steps {}, total_steps {}",
             warmup_steps, total_steps);
  HEED_CHECK(min_lr >= 0.0, "CosineWithWarmup: min_lr must be >= 0, got {}", min_lr);
  apply();
}

double CosineWithWarmup::lr_at(int64_t step, double base_lr) const {
  if (step < warmup_steps_) return base_lr * static_cast<double>(step) / static_cast<double>(warmup_steps_);
  if (step > total_steps_) return min_lr_;
  const double progress =
      static_cast<double>(step - warmup_steps_) / static_cast<double>(total_steps_ - warmup_steps_);
  return min_lr_ + (base_lr - min_lr_) * (1.0 + std::cos(kPi * progress)) / 2.0;
}

NoamLR::NoamLR(Optimizer& optimizer, int64_t d_model, int64_t warmup, double factor)
    : LRScheduler(optimizer), d_model_(d_model), warmup_(warmup), factor_(factor) {
  HEED_CHECK(d_model > 0 && warmup > 0, "NoamLR: d_model and warmup must be > 0, got d_model {}, warmup {}", d_model,
             warmup);
  apply();
}

double NoamLR::lr_at(int64_t step, double /*base_lr*/) const {
  const double s = static_cast<double>(step + 1);
  return factor_ * std::pow(static_cast<double>(d_model_), -0.5) *
         std::min(std::pow(s, -0.5), s * std::pow(static_cast<double>(warmup_), -1.5));
}

LambdaLR::LambdaLR(Optimizer& optimizer, std::function<double(int64_t)> factor)
    : LRScheduler(optimizer), factor_(std::move(factor)) {
  HEED_CHECK(static_cast<bool>(factor_), "LambdaLR: the factor function is empty");
  apply();
}

double LambdaLR::lr_at(int64_t step, double base_lr) const { return base_lr * factor_(step); }

}  // namespace heed::optim
