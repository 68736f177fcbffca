// Optimizers, gradient clipping, learning-rate schedules and the L2 penalty (heed/optim.hpp).
//
// Each update is one plain loop over a parameter's dense buffer, in double arithmetic, following the
// single-tensor code path of torch/optim/*.py in PyTorch 1.13 line by line (same order of operations,
// same stored intermediates), so trajectories agree with PyTorch to rounding.
#include "heed/optim.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <set>

#include "heed/autograd.hpp"
#include "heed/ops.hpp"
#include "ops/common.hpp"

namespace heed::optim {

namespace {

std::string join_keys(const Hyperparams& values) {
  std::string out;
  for (auto& [key, value] : values) out += (out.empty() ? "" : ", ") + key;
  return out;
}

void require_at_least_zero(const std::string& optimizer, const ParamGroup& group, const char* name) {
  const double value = group.get(name);
  HEED_CHECK(value >= 0.0, "{}: invalid {} {} (must be >= 0)", optimizer, name, value);
}

void require_beta(const std::string& optimizer, const ParamGroup& group, const char* name) {
  const double value = group.get(name);
  HEED_CHECK(value >= 0.0 && value < 1.0, "{}: invalid {} {} (must be in [0, 1))", optimizer, name, value);
}

// Splits "<prefix><index>.<rest>" (e.g. "state.3.exp_avg") into index and rest; false when `key` has another form.
bool split_indexed_key(const std::string& key, const std::string& prefix, int64_t& index, std::string& rest) {
  if (key.rfind(prefix, 0) != 0) return false;
  std::size_t pos = prefix.size();
  while (pos < key.size() && std::isdigit(static_cast<unsigned char>(key[pos]))) ++pos;
  const std::size_t digits = pos - prefix.size();
  if (digits == 0 || digits > 18) return false;
  index = std::stoll(key.substr(prefix.size(), digits));
  if (pos == key.size()) {
    rest.clear();
    return true;
  }
  if (key[pos] != '.' || pos + 1 == key.size()) return false;
  rest = key.substr(pos + 1);
  return true;
}

constexpr double kPi = 3.14159265358979323846;

Tensor scalar_f64(double value) { return scalar(value, DType::Float64); }

}  // namespace

// ---- ParamGroup and Optimizer -------------------------------------------------------------------------

double ParamGroup::get(const std::string& name) const {
  auto it = options.find(name);
  HEED_CHECK(it != options.end(), "optim: the parameter group has no hyper-parameter '{}' (it has: {})", name,
             join_keys(options));
  return it->second;
}

Optimizer::Optimizer(std::string name, Hyperparams defaults, std::vector<std::string> state_names, bool has_step)
    : name_(std::move(name)),
      defaults_(std::move(defaults)),
      state_names_(std::move(state_names)),
      has_step_(has_step) {}

void Optimizer::add_param_groups(std::vector<ParamGroup> groups) {
  HEED_CHECK(!groups.empty(), "{}: got an empty list of parameter groups", name_);
  for (ParamGroup& group : groups) add_param_group(std::move(group));
  HEED_CHECK(num_params() > 0, "{}: got an empty parameter list", name_);
}

void Optimizer::add_param_group(ParamGroup group) {
  std::set<const TensorImpl*> seen;
  for (const ParamGroup& g : groups_)
    for (const Tensor& p : g.params) seen.insert(p.impl());
  for (std::size_t k = 0; k < group.params.size(); ++k) {
    const Tensor& p = group.params[k];
    const int64_t index = num_params() + static_cast<int64_t>(k);
    HEED_CHECK(p.defined(), "{}: parameter {} is an undefined tensor", name_, index);
    HEED_CHECK(is_floating(p.dtype()), "{}: parameter {} of shape {} is {}; only Float32 and Float64 can be optimized",
               name_, index, shape_str(p.shape()), dtype_name(p.dtype()));
    HEED_CHECK(p.is_leaf(), "{}: parameter {} of shape {} is not a leaf (it was computed by an op); optimize the "
               "tensors it was computed from", name_, index, shape_str(p.shape()));
    HEED_CHECK(p.is_contiguous(), "{}: parameter {} of shape {} is a non-contiguous view; optimize the tensor it "
               "views", name_, index, shape_str(p.shape()));
    HEED_CHECK(seen.insert(p.impl()).second, "{}: parameter {} of shape {} appears more than once (in this or "
               "another parameter group)", name_, index, shape_str(p.shape()));
  }
  for (auto& [key, value] : group.options)
    HEED_CHECK(defaults_.count(key), "{}: unknown hyper-parameter '{}' (known: {})", name_, key, join_keys(defaults_));
  for (auto& [key, value] : defaults_) group.options.emplace(key, value);
  check_options(group);
  state_.resize(state_.size() + group.params.size());
  groups_.push_back(std::move(group));
}

int64_t Optimizer::num_params() const {
  int64_t n = 0;
  for (const ParamGroup& g : groups_) n += static_cast<int64_t>(g.params.size());
  return n;
}

void Optimizer::zero_grad() {
  for (ParamGroup& g : groups_)
    for (Tensor& p : g.params) p.zero_grad();
}

double Optimizer::lr() const { return groups_.at(0).get("lr"); }

void Optimizer::set_lr(double lr) {
  HEED_CHECK(lr >= 0.0, "{}::set_lr: invalid learning rate {} (must be >= 0)", name_, lr);
  for (ParamGroup& g : groups_) g.options["lr"] = lr;
}

bool Optimizer::has_state(int64_t index, const std::string& name) const { return state_.at(index).count(name) > 0; }

Tensor Optimizer::buffer(int64_t index, const std::string& name, const Tensor& param, double init) {
  auto& slots = state_.at(index);
  auto it = slots.find(name);
  if (it == slots.end()) return slots.emplace(name, full(param.shape(), init, param.dtype())).first->second;
  if (it->second.dtype() != param.dtype()) it->second = it->second.to(param.dtype());
  return it->second;
}

double Optimizer::increment_step(int64_t index) {
  auto& slots = state_.at(index);
  auto it = slots.find("step");
  if (it == slots.end()) it = slots.emplace("step", scalar_f64(0.0)).first;
  double& step = it->second.data<double>()[0];
  step += 1.0;
  return step;
}

nn::NamedTensors Optimizer::state_dict() const {
  NoGradGuard no_grad;
  nn::NamedTensors out;
  for (std::size_t i = 0; i < state_.size(); ++i)
    for (auto& [name, value] : state_[i]) out.emplace_back(fmt::format("state.{}.{}", i, name), value.clone());
  int64_t index = 0;
  for (std::size_t g = 0; g < groups_.size(); ++g) {
    for (auto& [key, value] : groups_[g].options)
      out.emplace_back(fmt::format("param_groups.{}.{}", g, key), scalar_f64(value));
    std::vector<int64_t> members;
    for (std::size_t k = 0; k < groups_[g].params.size(); ++k) members.push_back(index++);
    out.emplace_back(fmt::format("param_groups.{}.params", g), index_tensor(members, {int64_t(members.size())}));
  }
  return out;
}

void Optimizer::load_state_dict(const nn::NamedTensors& state) {
  const std::string op = name_ + "::load_state_dict";
  std::vector<const Tensor*> params;
  for (const ParamGroup& g : groups_)
    for (const Tensor& p : g.params) params.push_back(&p);

  // Validate everything first, collecting the new state; nothing changes until all keys pass.
  std::vector<std::map<std::string, Tensor>> new_state(params.size());
  std::vector<Hyperparams> new_options(groups_.size());
  std::vector<bool> members_seen(groups_.size(), false);
  for (const auto& [key, value] : state) {
    HEED_CHECK(value.defined(), "{}: '{}' is an undefined tensor", op, key);
    int64_t index = -1;
    std::string name;
    if (split_indexed_key(key, "state.", index, name) && !name.empty()) {
      HEED_CHECK(index < static_cast<int64_t>(params.size()), "{}: '{}' names parameter {}, but the optimizer has {}",
                 op, key, index, params.size());
      const bool is_step = has_step_ && name == "step";
      HEED_CHECK(is_step || std::count(state_names_.begin(), state_names_.end(), name),
                 "{}: unexpected key '{}' ({} keeps no state '{}')", op, key, name_, name);
      HEED_CHECK(is_floating(value.dtype()), "{}: '{}' is {}, expected a float tensor", op, key,
                 dtype_name(value.dtype()));
      const Tensor& param = *params[index];
      const Shape expected = is_step ? Shape{} : param.shape();
      HEED_CHECK(value.shape() == expected, "{}: '{}' has shape {}, expected {}{}", op, key, shape_str(value.shape()),
                 shape_str(expected), is_step ? "" : fmt::format(" (the shape of parameter {})", index));
      Tensor copy = is_step ? scalar_f64(value.item()) : zeros(param.shape(), param.dtype());
      if (!is_step) copy.copy_(value);
      new_state[index][name] = copy;
      continue;
    }
    if (split_indexed_key(key, "param_groups.", index, name) && !name.empty()) {
      HEED_CHECK(index < static_cast<int64_t>(groups_.size()), "{}: '{}' names parameter group {}, but the optimizer "
                 "has {}", op, key, index, groups_.size());
      if (name == "params") {
        std::vector<int64_t> expected;
        int64_t first = 0;
        for (int64_t g = 0; g < index; ++g) first += static_cast<int64_t>(groups_[g].params.size());
        for (std::size_t k = 0; k < groups_[index].params.size(); ++k) expected.push_back(first + int64_t(k));
        HEED_CHECK(value.dtype() == DType::Int64 && value.dim() == 1 && value.to_vector<int64_t>() == expected,
                   "{}: '{}' does not match the optimizer's parameter group {} (it holds parameters {} .. {}); the "
                   "state was saved for differently grouped parameters", op, key, index, first,
                   first + int64_t(expected.size()) - 1);
        members_seen[index] = true;
        continue;
      }
      HEED_CHECK(defaults_.count(name), "{}: unexpected key '{}' ({} has no hyper-parameter '{}')", op, key, name_,
                 name);
      HEED_CHECK(value.dim() == 0, "{}: '{}' has shape {}, expected [] (a hyper-parameter)", op, key,
                 shape_str(value.shape()));
      new_options[index][name] = value.item();
      continue;
    }
    throw Error(fmt::format("{}: unexpected key '{}' (expected state.<i>.<name> or param_groups.<g>.<name>)", op, key));
  }
  for (std::size_t g = 0; g < groups_.size(); ++g) {
    HEED_CHECK(members_seen[g], "{}: missing key 'param_groups.{}.params'", op, g);
    for (auto& [name, value] : defaults_)
      HEED_CHECK(new_options[g].count(name), "{}: missing key 'param_groups.{}.{}'", op, g, name);
    ParamGroup candidate{groups_[g].params, new_options[g]};
    check_options(candidate);
  }
  state_ = std::move(new_state);
  for (std::size_t g = 0; g < groups_.size(); ++g) groups_[g].options = std::move(new_options[g]);
}

// ---- SGD ----------------------------------------------------------------------------------------------

SGD::SGD(std::vector<Tensor> params, const SGDOptions& options)
    : SGD(std::vector<ParamGroup>{ParamGroup{std::move(params), {}}}, options) {}

SGD::SGD(std::vector<ParamGroup> groups, const SGDOptions& defaults)
    : Optimizer("SGD", defaults.values, {"momentum_buffer"}, /*has_step=*/false) {
  add_param_groups(std::move(groups));
}

void SGD::check_options(const ParamGroup& group) const {
  for (const char* name : {"lr", "momentum", "weight_decay"}) require_at_least_zero(this->name(), group, name);
  HEED_CHECK(group.get("nesterov") == 0.0 || (group.get("momentum") > 0.0 && group.get("dampening") == 0.0),
             "SGD: nesterov momentum requires momentum > 0 and dampening == 0 (got momentum {}, dampening {})",
             group.get("momentum"), group.get("dampening"));
}

void SGD::step() {
  NoGradGuard no_grad;
  for_each_param_with_grad([&](const ParamGroup& group, int64_t index, Tensor& param, const Tensor& grad) {
    const double lr = group.get("lr"), momentum = group.get("momentum"), dampening = group.get("dampening"),
                 weight_decay = group.get("weight_decay");
    const bool nesterov = group.get("nesterov") != 0.0;
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

// ---- Adam and AdamW -----------------------------------------------------------------------------------

Adam::Adam(std::vector<Tensor> params, const AdamOptions& options)
    : Adam(std::vector<ParamGroup>{ParamGroup{std::move(params), {}}}, options) {}

Adam::Adam(std::vector<ParamGroup> groups, const AdamOptions& defaults)
    : Adam("Adam", std::move(groups), defaults.values, /*decoupled_weight_decay=*/false) {}

Adam::Adam(std::string name, std::vector<ParamGroup> groups, Hyperparams defaults, bool decoupled_weight_decay)
    : Optimizer(std::move(name), std::move(defaults), {"exp_avg", "exp_avg_sq", "max_exp_avg_sq"}, /*has_step=*/true),
      decoupled_weight_decay_(decoupled_weight_decay) {
  add_param_groups(std::move(groups));
}

AdamW::AdamW(std::vector<Tensor> params, const AdamWOptions& options)
    : AdamW(std::vector<ParamGroup>{ParamGroup{std::move(params), {}}}, options) {}

AdamW::AdamW(std::vector<ParamGroup> groups, const AdamWOptions& defaults)
    : Adam("AdamW", std::move(groups), defaults.values, /*decoupled_weight_decay=*/true) {}

void Adam::check_options(const ParamGroup& group) const {
  for (const char* name : {"lr", "eps", "weight_decay"}) require_at_least_zero(this->name(), group, name);
  for (const char* name : {"beta1", "beta2"}) require_beta(this->name(), group, name);
}

void Adam::step() {
  NoGradGuard no_grad;
  for_each_param_with_grad([&](const ParamGroup& group, int64_t index, Tensor& param, const Tensor& grad) {
    const double lr = group.get("lr"), beta1 = group.get("beta1"), beta2 = group.get("beta2"),
                 eps = group.get("eps"), weight_decay = group.get("weight_decay");
    const bool amsgrad = group.get("amsgrad") != 0.0;
    const double t = increment_step(index);
    Tensor exp_avg = buffer(index, "exp_avg", param), exp_avg_sq = buffer(index, "exp_avg_sq", param);
    Tensor max_exp_avg_sq = amsgrad ? buffer(index, "max_exp_avg_sq", param) : Tensor();
    const double step_size = lr / (1.0 - std::pow(beta1, t));
    const double bias_correction2_sqrt = std::sqrt(1.0 - std::pow(beta2, t));
    const double l2 = decoupled_weight_decay_ ? 0.0 : weight_decay;
    const double decay = decoupled_weight_decay_ ? 1.0 - lr * weight_decay : 1.0;
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

// ---- RMSprop ------------------------------------------------------------------------------------------

RMSprop::RMSprop(std::vector<Tensor> params, const RMSpropOptions& options)
    : RMSprop(std::vector<ParamGroup>{ParamGroup{std::move(params), {}}}, options) {}

RMSprop::RMSprop(std::vector<ParamGroup> groups, const RMSpropOptions& defaults)
    : Optimizer("RMSprop", defaults.values, {"square_avg", "momentum_buffer", "grad_avg"}, /*has_step=*/true) {
  add_param_groups(std::move(groups));
}

void RMSprop::check_options(const ParamGroup& group) const {
  for (const char* name : {"lr", "eps", "momentum", "weight_decay", "alpha"})
    require_at_least_zero(this->name(), group, name);
}

void RMSprop::step() {
  NoGradGuard no_grad;
  for_each_param_with_grad([&](const ParamGroup& group, int64_t index, Tensor& param, const Tensor& grad) {
    const double lr = group.get("lr"), alpha = group.get("alpha"), eps = group.get("eps"),
                 weight_decay = group.get("weight_decay"), momentum = group.get("momentum");
    const bool centered = group.get("centered") != 0.0;
    increment_step(index);
    Tensor square_avg = buffer(index, "square_avg", param);
    Tensor grad_avg = centered ? buffer(index, "grad_avg", param) : Tensor();
    Tensor momentum_buffer = momentum > 0.0 ? buffer(index, "momentum_buffer", param) : Tensor();
    const int64_t n = param.numel();
    HEED_DISPATCH_FLOAT(param.dtype(), "RMSprop::step", [&] {
      scalar_t* p = param.data<scalar_t>();
      const scalar_t* g = grad.data<scalar_t>();
      scalar_t* v = square_avg.data<scalar_t>();
      scalar_t* a = centered ? grad_avg.data<scalar_t>() : nullptr;
      scalar_t* b = momentum > 0.0 ? momentum_buffer.data<scalar_t>() : nullptr;
      for (int64_t k = 0; k < n; ++k) {
        const double gk = weight_decay != 0.0 ? g[k] + weight_decay * p[k] : double(g[k]);
        v[k] = static_cast<scalar_t>(v[k] * alpha + (1.0 - alpha) * gk * gk);
        double avg;
        if (a) {
          a[k] = static_cast<scalar_t>(a[k] * alpha + (1.0 - alpha) * gk);
          avg = std::sqrt(v[k] - double(a[k]) * a[k]) + eps;
        } else {
          avg = std::sqrt(double(v[k])) + eps;
        }
        if (b) {
          b[k] = static_cast<scalar_t>(b[k] * momentum + gk / avg);
          p[k] = static_cast<scalar_t>(p[k] - lr * b[k]);
        } else {
          p[k] = static_cast<scalar_t>(p[k] - lr * (gk / avg));
        }
      }
    });
  });
}

// ---- Adagrad ------------------------------------------------------------------------------------------

Adagrad::Adagrad(std::vector<Tensor> params, const AdagradOptions& options)
    : Adagrad(std::vector<ParamGroup>{ParamGroup{std::move(params), {}}}, options) {}

Adagrad::Adagrad(std::vector<ParamGroup> groups, const AdagradOptions& defaults)
    : Optimizer("Adagrad", defaults.values, {"sum"}, /*has_step=*/true) {
  add_param_groups(std::move(groups));
}

void Adagrad::check_options(const ParamGroup& group) const {
  for (const char* name : {"lr", "lr_decay", "weight_decay", "initial_accumulator_value", "eps"})
    require_at_least_zero(this->name(), group, name);
}

void Adagrad::step() {
  NoGradGuard no_grad;
  for_each_param_with_grad([&](const ParamGroup& group, int64_t index, Tensor& param, const Tensor& grad) {
    const double lr = group.get("lr"), lr_decay = group.get("lr_decay"), eps = group.get("eps"),
                 weight_decay = group.get("weight_decay");
    const double t = increment_step(index);
    Tensor sum = buffer(index, "sum", param, group.get("initial_accumulator_value"));
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

// ---- gradient clipping --------------------------------------------------------------------------------

double clip_grad_norm_(const std::vector<Tensor>& params, double max_norm, double norm_type, bool error_if_nonfinite) {
  HEED_CHECK(norm_type > 0.0, "clip_grad_norm_: norm_type must be > 0 (or infinity), got {}", norm_type);
  std::vector<Tensor> grads;
  for (const Tensor& p : params)
    if (p.defined() && p.grad().defined()) grads.push_back(p.grad());
  if (grads.empty()) return 0.0;
  const bool max_norm_type = std::isinf(norm_type);
  double accumulated = 0.0;  // max |g| for the infinity norm, else sum |g|^p
  for (const Tensor& grad : grads) {
    const int64_t n = grad.numel();
    HEED_DISPATCH_FLOAT(grad.dtype(), "clip_grad_norm_", [&] {
      const scalar_t* g = grad.data<scalar_t>();
      for (int64_t k = 0; k < n; ++k) {
        const double a = std::abs(double(g[k]));
        if (max_norm_type) accumulated = std::isnan(a) ? a : std::max(accumulated, a);
        else accumulated += norm_type == 2.0 ? a * a : std::pow(a, norm_type);
      }
    });
  }
  const double total_norm = max_norm_type ? accumulated
                            : norm_type == 2.0 ? std::sqrt(accumulated)
                                               : std::pow(accumulated, 1.0 / norm_type);
  HEED_CHECK(!error_if_nonfinite || std::isfinite(total_norm),
             "clip_grad_norm_: the total norm of order {} of the gradients is non-finite ({}), so it cannot be "
             "clipped; pass error_if_nonfinite=false to scale by it anyway", norm_type, total_norm);
  const double clip_coef = max_norm / (total_norm + 1e-6);
  if (clip_coef >= 1.0) return total_norm;  // PyTorch multiplies by min(coef, 1); a NaN coef still scales
  for (const Tensor& grad : grads) {
    const int64_t n = grad.numel();
    HEED_DISPATCH_FLOAT(grad.dtype(), "clip_grad_norm_", [&] {
      scalar_t* g = grad.data<scalar_t>();
      for (int64_t k = 0; k < n; ++k) g[k] = static_cast<scalar_t>(g[k] * clip_coef);
    });
  }
  return total_norm;
}

void clip_grad_value_(const std::vector<Tensor>& params, double clip_value) {
  HEED_CHECK(clip_value >= 0.0, "clip_grad_value_: clip_value must be >= 0, got {}", clip_value);
  for (const Tensor& p : params) {
    if (!p.defined() || !p.grad().defined()) continue;
    Tensor grad = p.grad();
    const int64_t n = grad.numel();
    HEED_DISPATCH_FLOAT(grad.dtype(), "clip_grad_value_", [&] {
      scalar_t* g = grad.data<scalar_t>();
      const scalar_t hi = static_cast<scalar_t>(clip_value);
      for (int64_t k = 0; k < n; ++k) g[k] = std::min(std::max(g[k], -hi), hi);
    });
  }
}

// ---- L2 penalty ---------------------------------------------------------------------------------------

// d/dp coeff * sum(p^2) = 2 * coeff * p, through the recorded square and sum.
Tensor l2_penalty(const Tensor& param, double coeff) {
  HEED_CHECK(param.defined(), "l2_penalty: the parameter is an undefined tensor");
  return mul(sum(square(param)), coeff);
}

// ---- learning-rate schedules --------------------------------------------------------------------------

LRScheduler::LRScheduler(Optimizer& optimizer) : optimizer_(optimizer) {
  for (const ParamGroup& g : optimizer.param_groups()) base_lrs_.push_back(g.get("lr"));
}

void LRScheduler::apply() {
  auto& groups = optimizer_.param_groups();
  HEED_CHECK(groups.size() == base_lrs_.size(), "LRScheduler: the optimizer has {} parameter groups but the schedule "
             "was made for {}; make the schedule after adding every group", groups.size(), base_lrs_.size());
  last_lrs_.clear();
  for (std::size_t g = 0; g < groups.size(); ++g) {
    const double lr = lr_at(last_step_, base_lrs_[g]);
    groups[g].options["lr"] = lr;
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
