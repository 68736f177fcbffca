// heed/nn/module.hpp — the base class of every layer and model, in the shape of PyTorch's C++ frontend.
//
//   class Net : public heed::nn::Module {
//    public:
//     Net() : Module("Net") {
//       fc1 = register_module("fc1", std::make_shared<heed::nn::Linear>(4, 16));
//       fc2 = register_module("fc2", std::make_shared<heed::nn::Linear>(16, 1));
//     }
//     heed::Tensor forward(const heed::Tensor& x) override { return fc2->forward(heed::relu(fc1->forward(x))); }
//     std::shared_ptr<heed::nn::Linear> fc1, fc2;
//   };
//
// A module registers its parameters (trainable tensors), buffers (saved state that is not trained) and
// child modules by name, in its constructor. named_parameters() yields dotted
// names such as "encoder.lstm.weight_ih_l0" — the same names PyTorch's state_dict uses, so checkpoints
// move between the two (heed/io/safetensors.hpp). train()/eval() propagate to children; layers such as
// Dropout read is_training().
//
// reset() re-initializes a whole model: the base calls reset() on each child in registration order, and
// a layer with parameters of its own overrides it to re-draw them (calling Module::reset() too when it
// also has children). Constructors initialize as they always have (a virtual call in a constructor only
// reaches the class under construction), so reset() after manual_seed(s) equals a fresh construction
// after manual_seed(s) only for layers whose constructor draws exactly what reset() draws (Linear,
// Conv2d, Embedding, the recurrent layers and any container of them).
//
// Parameter handles are shared: the Tensor a layer keeps as a member and the one in the registry are the
// same TensorImpl, so to(dtype) and load_state_dict() update both in place.
#pragma once
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "heed/tensor.hpp"

/// Modules and layers: Module, Sequential and every layer (heed/nn/*.hpp), with PyTorch's parameter names.
namespace heed::nn {

using NamedTensors = std::vector<std::pair<std::string, Tensor>>;  ///< a state dict: (dotted name, tensor)

/// What load_state_dict() / load() did not load.
struct LoadResult {
  std::vector<std::string> missing_keys;     ///< in the module, not in the file
  std::vector<std::string> unexpected_keys;  ///< in the file, not in the module
  std::vector<std::string> mismatched_keys;  ///< in both with different shapes (strict=false only)
  /// True when every key matched.
  bool ok() const { return missing_keys.empty() && unexpected_keys.empty() && mismatched_keys.empty(); }
  std::string to_string() const;  ///< the keys of each list, for messages
};

/// The base class of every layer and model (see the top of heed/nn/module.hpp).
class Module : public std::enable_shared_from_this<Module> {
 public:
  /// `type_name` is what to_string(), summary() and error messages call the module.
  explicit Module(std::string type_name = "Module") : type_name_(std::move(type_name)) {}
  virtual ~Module() = default;
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;

  /// The single-tensor forward that Sequential and most layers use. Modules with other signatures
  /// (recurrent layers, attention) offer their own methods; the default throws naming the module.
  virtual Tensor forward(const Tensor& input);
  Tensor operator()(const Tensor& input);  ///< forward(), plus output-shape capture for summary()

  // ---- registration (call from the constructor) ----------------------------------------------------
  /// Registers a trainable tensor under `name` (a leaf; requires_grad unless told otherwise) and returns
  /// the registered handle (keep it as a member: it is the same tensor).
  Tensor& register_parameter(const std::string& name, Tensor tensor, bool requires_grad = true);
  /// Registers saved state that is not trained: in state_dict(), not in parameters().
  Tensor& register_buffer(const std::string& name, Tensor tensor);
  /// Registers a child module; its parameters' names get the prefix "name.".
  template <class M>
  std::shared_ptr<M> register_module(const std::string& name, std::shared_ptr<M> module) {
    add_child(name, module);
    return module;
  }

  // ---- access --------------------------------------------------------------------------------------
  std::vector<Tensor> parameters(bool recurse = true) const;  ///< what an optimizer takes
  NamedTensors named_parameters(bool recurse = true) const;  ///< dotted names, registration order
  NamedTensors named_buffers(bool recurse = true) const;  ///< dotted names, registration order
  /// The direct children, in registration order.
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> named_children() const { return children_; }
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> named_modules() const;  ///< self as ""
  Tensor& parameter(const std::string& dotted_name);  ///< throws listing the names when absent
  int64_t num_parameters(bool trainable_only = false) const;  ///< a count of elements

  // ---- state ---------------------------------------------------------------------------------------
  NamedTensors state_dict() const;  ///< parameters then buffers, dotted names, sharing storage
  /// Copies matching tensors in place. strict: any missing, unexpected or mis-shaped key throws, naming
  /// it (and nothing is changed). Not strict: loads what matches and reports the rest.
  LoadResult load_state_dict(const NamedTensors& state, bool strict = true);
  void save(const std::string& path) const;  ///< safetensors, atomic
  LoadResult load(const std::string& path, bool strict = true);  ///< load_state_dict() from a file

  /// Re-initializes every parameter: the base resets each child in registration order; layers override
  /// it to re-draw their own parameters (and call Module::reset() when they also have children).
  virtual void reset();
  virtual void train(bool on = true);  ///< training mode for it and its children
  void eval() { train(false); }  ///< train(false)
  bool is_training() const { return training_; }  ///< dropout and the like read it
  void zero_grad();  ///< drops every parameter's gradient
  void to(DType dtype);  ///< converts parameters and float buffers in place (e.g. Float64 for gradcheck)

  // ---- printing ------------------------------------------------------------------------------------
  const std::string& type_name() const { return type_name_; }  ///< "Linear", "LSTM", ...
  virtual std::string extra_repr() const { return ""; }  ///< "in_features=4, out_features=16"
  std::string to_string() const;  ///< nested tree, like print(model) in PyTorch
  /// Keras-style table: layer, type, output shape (from one forward on `example_input` if given),
  /// parameter count; then totals.
  std::string summary(const Tensor& example_input = Tensor());

 private:
  void add_child(const std::string& name, std::shared_ptr<Module> module);
  void collect(const std::string& prefix, bool recurse, bool params, NamedTensors& out) const;
  std::string type_name_;
  bool training_ = true;
  NamedTensors parameters_;
  NamedTensors buffers_;
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> children_;
  Shape last_output_shape_;
  bool has_output_shape_ = false;
};

/// Runs its children in order on a single tensor.
class Sequential : public Module {
 public:
  Sequential() : Module("Sequential") {}
  explicit Sequential(std::vector<std::shared_ptr<Module>> modules);  ///< children named "0", "1", ...
  Sequential& push_back(std::shared_ptr<Module> module);  ///< appends, named by its index
  Sequential& push_back(const std::string& name, std::shared_ptr<Module> module);  ///< appends as `name`
  Tensor forward(const Tensor& input) override;
  std::size_t size() const { return named_children().size(); }  ///< the number of children
  /// The i-th child.
  std::shared_ptr<Module> operator[](std::size_t i) const { return named_children().at(i).second; }
};

}  // namespace heed::nn
