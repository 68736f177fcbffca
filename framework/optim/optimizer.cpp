// Optimizer and ParamGroup (heed/optim/optimizer.hpp): parameter groups with typed options, per-parameter
// state, and the state dict, whose "param_groups.<g>.<name>" keys are the one place hyper-parameters are
// named by strings (OptimizerOptions::hyperparams / set_hyperparams).
#include "heed/optim/optimizer.hpp"

#include <algorithm>
#include <set>
#include <typeinfo>

#include "heed/autograd.hpp"
#include "heed/ops.hpp"
#include "ops/common.hpp"
#include "optim/common.hpp"

namespace heed::optim {

namespace detail {

void unknown_hyperparam(const char* options, const std::string& name, const Hyperparams& known) {
  std::string names;
  for (const auto& [key, value] : known) names += (names.empty() ? "" : ", ") + key;
  throw Error(fmt::format("{}: no hyper-parameter '{}' (it has: {})", options, name, names));
}

}  // namespace detail

using detail::scalar_f64;
using detail::split_indexed_key;

// ---- ParamGroup ---------------------------------------------------------------------------------------

OptimizerOptions& ParamGroup::options() {
  HEED_CHECK(options_ != nullptr, "optim: the parameter group has no options yet (an optimizer gives it its "
             "defaults when the group is added)");
  return *options_;
}

const OptimizerOptions& ParamGroup::options() const {
  HEED_CHECK(options_ != nullptr, "optim: the parameter group has no options yet (an optimizer gives it its "
             "defaults when the group is added)");
  return *options_;
}

// ---- Optimizer ----------------------------------------------------------------------------------------

Optimizer::Optimizer(std::string name, std::unique_ptr<OptimizerOptions> defaults,
                     std::vector<std::string> state_names, bool has_step)
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
    for (const Tensor& p : g.params()) seen.insert(p.impl());
  for (std::size_t k = 0; k < group.params().size(); ++k) {
    const Tensor& p = group.params()[k];
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
  if (!group.has_options()) group.set_options(defaults_->clone());
  const OptimizerOptions& options = group.options();
  HEED_CHECK(typeid(options) == typeid(*defaults_), "{}: parameter group {} has the options of another optimizer "
             "(expected {}Options)", name_, groups_.size(), name_);
  check_options(options);
  state_.resize(state_.size() + group.params().size());
  groups_.push_back(std::move(group));
}

int64_t Optimizer::num_params() const {
  int64_t n = 0;
  for (const ParamGroup& g : groups_) n += static_cast<int64_t>(g.params().size());
  return n;
}

void Optimizer::zero_grad() {
  for (ParamGroup& g : groups_)
    for (Tensor& p : g.params()) p.zero_grad();
}

double Optimizer::lr() const { return groups_.at(0).options().get_lr(); }

void Optimizer::set_lr(double lr) {
  HEED_CHECK(lr >= 0.0, "{}::set_lr: invalid learning rate {} (must be >= 0)", name_, lr);
  for (ParamGroup& g : groups_) g.options().set_lr(lr);
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

// ---- the state dict -----------------------------------------------------------------------------------

nn::NamedTensors Optimizer::state_dict() const {
  NoGradGuard no_grad;
  nn::NamedTensors out;
  for (std::size_t i = 0; i < state_.size(); ++i)
    for (auto& [name, value] : state_[i]) out.emplace_back(fmt::format("state.{}.{}", i, name), value.clone());
  int64_t index = 0;
  for (std::size_t g = 0; g < groups_.size(); ++g) {
    for (auto& [key, value] : groups_[g].options().hyperparams())
      out.emplace_back(fmt::format("param_groups.{}.{}", g, key), scalar_f64(value));
    std::vector<int64_t> members;
    for (std::size_t k = 0; k < groups_[g].params().size(); ++k) members.push_back(index++);
    out.emplace_back(fmt::format("param_groups.{}.params", g), index_tensor(members, {int64_t(members.size())}));
  }
  return out;
}

void Optimizer::load_state_dict(const nn::NamedTensors& state) {
  const std::string op = name_ + "::load_state_dict";
  std::vector<const Tensor*> params;
  for (const ParamGroup& g : groups_)
    for (const Tensor& p : g.params()) params.push_back(&p);
  const Hyperparams known = defaults_->hyperparams();

  // Validate everything first, collecting the new state; nothing changes until all keys pass.
  std::vector<std::map<std::string, Tensor>> new_state(params.size());
  std::vector<Hyperparams> new_values(groups_.size());
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
        for (int64_t g = 0; g < index; ++g) first += static_cast<int64_t>(groups_[g].params().size());
        for (std::size_t k = 0; k < groups_[index].params().size(); ++k) expected.push_back(first + int64_t(k));
        HEED_CHECK(value.dtype() == DType::Int64 && value.dim() == 1 && value.to_vector<int64_t>() == expected,
                   "{}: '{}' does not match the optimizer's parameter group {} (it holds parameters {} .. {}); the "
                   "state was saved for differently grouped parameters", op, key, index, first,
                   first + int64_t(expected.size()) - 1);
        members_seen[index] = true;
        continue;
      }
      HEED_CHECK(known.count(name), "{}: unexpected key '{}' ({} has no hyper-parameter '{}')", op, key, name_, name);
      HEED_CHECK(value.dim() == 0, "{}: '{}' has shape {}, expected [] (a hyper-parameter)", op, key,
                 shape_str(value.shape()));
      new_values[index][name] = value.item();
      continue;
    }
    throw Error(fmt::format("{}: unexpected key '{}' (expected state.<i>.<name> or param_groups.<g>.<name>)", op, key));
  }
  std::vector<std::unique_ptr<OptimizerOptions>> new_options;
  for (std::size_t g = 0; g < groups_.size(); ++g) {
    HEED_CHECK(members_seen[g], "{}: missing key 'param_groups.{}.params'", op, g);
    for (auto& [name, value] : known)
      HEED_CHECK(new_values[g].count(name), "{}: missing key 'param_groups.{}.{}'", op, g, name);
    new_options.push_back(defaults_->clone());
    new_options.back()->set_hyperparams(new_values[g]);
    check_options(*new_options.back());
  }
  state_ = std::move(new_state);
  for (std::size_t g = 0; g < groups_.size(); ++g) groups_[g].set_options(std::move(new_options[g]));
}

}  // namespace heed::optim
