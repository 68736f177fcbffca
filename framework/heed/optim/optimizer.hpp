// heed/optim/optimizer.hpp — the base of every optimizer: typed options, parameter groups, per-parameter
// state and the state dict (see heed/optim.hpp for the overview).
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "heed/nn/module.hpp"
#include "heed/options.hpp"
#include "heed/tensor.hpp"

namespace heed::optim {

/// Hyper-parameters by PyTorch's name, booleans as 0/1: the form they take in a state dict
/// ("param_groups.<g>.<name>"), and nowhere else.
using Hyperparams = std::map<std::string, double>;

/// The base of SGDOptions, AdamOptions, ...: what an optimizer and its schedules need to know about any
/// optimizer's options. Derive through OptimizerCloneableOptions.
class OptimizerOptions {
 public:
  OptimizerOptions() = default;  ///< no fields here: the derived struct declares them
  OptimizerOptions(const OptimizerOptions&) = default;  ///< options are values: copyable
  OptimizerOptions& operator=(const OptimizerOptions&) = default;  ///< options are values: assignable
  virtual ~OptimizerOptions() = default;
  virtual std::unique_ptr<OptimizerOptions> clone() const = 0;  ///< a copy of the derived struct
  virtual double get_lr() const = 0;  ///< the learning rate (every optimizer has one; schedules set it)
  virtual void set_lr(double lr) = 0;  ///< sets the learning rate
  /// Every hyper-parameter under its state-dict name (sorted by name).
  virtual Hyperparams hyperparams() const = 0;
  /// Sets the named hyper-parameters from their state-dict form; throws heed::Error naming an unknown name.
  virtual void set_hyperparams(const Hyperparams& values) = 0;
};

/// clone(), get_lr() and set_lr() for an options struct `Derived` with a HEED_ARG(double, lr).
template <class Derived>
class OptimizerCloneableOptions : public OptimizerOptions {
 public:
  /// A copy of the Derived struct.
  std::unique_ptr<OptimizerOptions> clone() const override {
    return std::make_unique<Derived>(static_cast<const Derived&>(*this));
  }
  double get_lr() const override { return static_cast<const Derived&>(*this).lr(); }  ///< Derived::lr()
  void set_lr(double lr) override { static_cast<Derived&>(*this).lr(lr); }  ///< Derived::lr(lr)
};

/// Parameters that share hyper-parameters (PyTorch's optimizer.param_groups[g]): the tensors and a copy
/// of the optimizer's options struct. A group made without options takes the optimizer's defaults when
/// it is added; one made with options must use the optimizer's own type (AdamOptions for Adam). Read or
/// change a group's hyper-parameters between steps through its options:
///   opt.param_groups()[1].options().set_lr(0.01);                                   // any optimizer
///   static_cast<heed::optim::SGDOptions&>(opt.param_groups()[1].options()).momentum(0.9);
class ParamGroup {
 public:
  /// Parameters that take the optimizer's defaults.
  explicit ParamGroup(std::vector<Tensor> params) : params_(std::move(params)) {}
  /// Parameters with their own hyper-parameters (copied).
  ParamGroup(std::vector<Tensor> params, const OptimizerOptions& options)
      : params_(std::move(params)), options_(options.clone()) {}
  ParamGroup(const ParamGroup& other)  ///< copies the options
      : params_(other.params_), options_(other.options_ ? other.options_->clone() : nullptr) {}
  ParamGroup& operator=(const ParamGroup& other) {  ///< copies the options
    if (this != &other) {
      params_ = other.params_;
      options_ = other.options_ ? other.options_->clone() : nullptr;
    }
    return *this;
  }
  ParamGroup(ParamGroup&&) = default;  ///< moves
  ParamGroup& operator=(ParamGroup&&) = default;  ///< moves

  std::vector<Tensor>& params() { return params_; }  ///< the tensors this group updates
  const std::vector<Tensor>& params() const { return params_; }  ///< the tensors this group updates
  bool has_options() const { return options_ != nullptr; }  ///< false until given options or added
  OptimizerOptions& options();  ///< throws heed::Error when the group has none
  const OptimizerOptions& options() const;  ///< throws heed::Error when the group has none
  void set_options(std::unique_ptr<OptimizerOptions> options) { options_ = std::move(options); }  ///< replaces them

 private:
  std::vector<Tensor> params_;
  std::unique_ptr<OptimizerOptions> options_;
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
  const std::vector<ParamGroup>& param_groups() const { return groups_; }  ///< each with its options
  /// Adds a group (e.g. layers unfrozen for fine-tuning); without options it takes the defaults.
  void add_param_group(ParamGroup group);
  int64_t num_params() const;  ///< across all groups
  const std::string& name() const { return name_; }  ///< "SGD", "Adam", ... (for messages)
  const OptimizerOptions& defaults() const { return *defaults_; }  ///< the options given at construction

  nn::NamedTensors state_dict() const;  ///< hyper-parameters and per-parameter state, as copies
  void load_state_dict(const nn::NamedTensors& state);  ///< validates every key, then replaces all state

 protected:
  /// `defaults`: the optimizer's options struct (its type is the one every group must have);
  /// `state_names`: the per-parameter buffers this optimizer may keep (shaped like the parameter);
  /// `has_step`: whether it keeps a per-parameter step count "step".
  Optimizer(std::string name, std::unique_ptr<OptimizerOptions> defaults, std::vector<std::string> state_names,
            bool has_step);
  /// Adds the constructor's groups (throws on an empty list, as PyTorch does).
  void add_param_groups(std::vector<ParamGroup> groups);
  /// Throws heed::Error naming the optimizer and the hyper-parameter when a value is invalid. `options`
  /// has the type of defaults().
  virtual void check_options(const OptimizerOptions& options) const = 0;

  /// Calls f(group, index, param, grad) for every parameter whose grad is defined; `index` numbers the
  /// parameter as in state_dict. grad is dense and of the parameter's dtype.
  template <class F>
  void for_each_param_with_grad(F&& f) {
    int64_t index = 0;
    for (ParamGroup& group : groups_)
      for (Tensor& param : group.params()) {
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
  std::unique_ptr<OptimizerOptions> defaults_;
  std::vector<std::string> state_names_;
  bool has_step_;
  std::vector<ParamGroup> groups_;
  std::vector<std::map<std::string, Tensor>> state_;  ///< by parameter index, then name
};

}  // namespace heed::optim
