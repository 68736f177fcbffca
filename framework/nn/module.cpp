// framework/nn/module.cpp — Module registry, state dicts, printing; Sequential.
#include "heed/nn/module.hpp"

#include <algorithm>
#include <array>
#include <set>

#include "heed/autograd.hpp"
#include "heed/io/safetensors.hpp"

namespace heed::nn {

namespace {
thread_local bool capture_output_shapes = false;

void check_name(const std::string& name, const std::string& type, const char* what) {
  HEED_CHECK(!name.empty() && name.find('.') == std::string::npos,
             "{}::register_{}: name '{}' must be non-empty and contain no '.'", type, what, name);
}
}  // namespace

std::string LoadResult::to_string() const {
  std::string s;
  auto list = [&](const char* title, const std::vector<std::string>& keys) {
    if (keys.empty()) return;
    s += fmt::format("{}{}: {}", s.empty() ? "" : "; ", title, fmt::join(keys, ", "));
  };
  list("missing", missing_keys);
  list("unexpected", unexpected_keys);
  list("shape mismatch", mismatched_keys);
  return s.empty() ? "all keys matched" : s;
}

Tensor Module::forward(const Tensor&) {
  throw Error(fmt::format("{}: this module has no single-tensor forward(); call its own methods", type_name_));
}

Tensor Module::operator()(const Tensor& input) {
  Tensor out = forward(input);
  if (capture_output_shapes && out.defined()) {
    last_output_shape_ = out.shape();
    has_output_shape_ = true;
  }
  return out;
}

Tensor& Module::register_parameter(const std::string& name, Tensor tensor, bool requires_grad) {
  check_name(name, type_name_, "parameter");
  HEED_CHECK(tensor.defined(), "{}::register_parameter: '{}' is undefined", type_name_, name);
  for (const auto& p : parameters_)
    HEED_CHECK(p.first != name, "{}::register_parameter: '{}' is already registered", type_name_, name);
  if (!tensor.is_leaf()) tensor = tensor.detach();
  tensor.requires_grad_(requires_grad);
  parameters_.emplace_back(name, tensor);
  return parameters_.back().second;
}

Tensor& Module::register_buffer(const std::string& name, Tensor tensor) {
  check_name(name, type_name_, "buffer");
  HEED_CHECK(tensor.defined(), "{}::register_buffer: '{}' is undefined", type_name_, name);
  for (const auto& b : buffers_)
    HEED_CHECK(b.first != name, "{}::register_buffer: '{}' is already registered", type_name_, name);
  buffers_.emplace_back(name, tensor.detach());
  return buffers_.back().second;
}

void Module::add_child(const std::string& name, std::shared_ptr<Module> module) {
  check_name(name, type_name_, "module");
  HEED_CHECK(module != nullptr, "{}::register_module: '{}' is null", type_name_, name);
  for (const auto& c : children_)
    HEED_CHECK(c.first != name, "{}::register_module: '{}' is already registered", type_name_, name);
  children_.emplace_back(name, std::move(module));
}

void Module::collect(const std::string& prefix, bool recurse, bool params, NamedTensors& out) const {
  for (const auto& [name, t] : params ? parameters_ : buffers_) out.emplace_back(prefix + name, t);
  if (!recurse) return;
  for (const auto& [name, child] : children_) child->collect(prefix + name + ".", true, params, out);
}

NamedTensors Module::named_parameters(bool recurse) const {
  NamedTensors out;
  collect("", recurse, true, out);
  return out;
}

NamedTensors Module::named_buffers(bool recurse) const {
  NamedTensors out;
  collect("", recurse, false, out);
  return out;
}

std::vector<Tensor> Module::parameters(bool recurse) const {
  std::vector<Tensor> out;
  for (auto& [name, t] : named_parameters(recurse)) out.push_back(t);
  return out;
}

std::vector<std::pair<std::string, std::shared_ptr<Module>>> Module::named_modules() const {
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> out;
  // A module that no shared_ptr owns (a layer on the stack) lists itself through a non-owning handle;
  // shared_from_this() would throw std::bad_weak_ptr.
  std::shared_ptr<Module> self = std::const_pointer_cast<Module>(weak_from_this().lock());
  if (!self) self = std::shared_ptr<Module>(std::shared_ptr<Module>(), const_cast<Module*>(this));
  out.emplace_back("", std::move(self));
  for (const auto& [name, child] : children_)
    for (auto& [sub, m] : child->named_modules()) out.emplace_back(sub.empty() ? name : name + "." + sub, m);
  return out;
}

Tensor& Module::parameter(const std::string& dotted) {
  // Walk down the children here (not recursively), so that a miss reports the full name and all names.
  Module* owner = this;
  std::string rest = dotted;
  for (std::size_t dot = rest.find('.'); owner && dot != std::string::npos; dot = rest.find('.')) {
    Module* next = nullptr;
    for (auto& [name, child] : owner->children_)
      if (name == rest.substr(0, dot)) next = child.get();
    owner = next;
    rest = rest.substr(dot + 1);
  }
  if (owner)
    for (auto& [name, t] : owner->parameters_)
      if (name == rest) return t;
  std::vector<std::string> names;
  for (auto& [name, t] : named_parameters()) names.push_back(name);
  throw Error(fmt::format("{}: no parameter '{}' (parameters: {})", type_name_, dotted, fmt::join(names, ", ")));
}

int64_t Module::num_parameters(bool trainable_only) const {
  int64_t n = 0;
  for (const auto& [name, t] : named_parameters())
    if (!trainable_only || t.requires_grad()) n += t.numel();
  return n;
}

NamedTensors Module::state_dict() const {
  NamedTensors out = named_parameters();
  for (auto& b : named_buffers()) out.push_back(b);
  return out;
}

LoadResult Module::load_state_dict(const NamedTensors& state, bool strict) {
  LoadResult result;
  NamedTensors own = state_dict();
  std::set<std::string> own_names;
  for (auto& [name, t] : own) own_names.insert(name);
  std::vector<std::pair<Tensor, Tensor>> copies;  // (destination, source)
  for (auto& entry : own) {
    // Named references, not a structured binding: a lambda cannot capture a binding before C++20 (clang
    // rejects it; GCC accepts it as an extension).
    const std::string& name = entry.first;
    Tensor& dst = entry.second;
    auto it = std::find_if(state.begin(), state.end(), [&](const auto& kv) { return kv.first == name; });
    if (it == state.end()) {
      result.missing_keys.push_back(name);
      continue;
    }
    if (it->second.shape() != dst.shape()) {
      result.mismatched_keys.push_back(fmt::format("{} (file {} vs model {})", name, shape_str(it->second.shape()),
                                                   shape_str(dst.shape())));
      continue;
    }
    copies.emplace_back(dst, it->second);
  }
  for (auto& [name, t] : state)
    if (!own_names.count(name)) result.unexpected_keys.push_back(name);
  if (strict && !result.ok())
    throw Error(fmt::format("{}::load_state_dict: {}", type_name_, result.to_string()));
  NoGradGuard no_grad;
  for (auto& [dst, src] : copies) const_cast<Tensor&>(dst).copy_(src);
  return result;
}

void Module::save(const std::string& path) const {
  io::save_safetensors(path, state_dict(), {{"format", "pt"}, {"framework", "heed"}});
}

LoadResult Module::load(const std::string& path, bool strict) {
  io::SafetensorsFile file = io::load_safetensors(path);
  try {
    return load_state_dict(file.tensors, strict);
  } catch (const Error& e) {
    throw Error(fmt::format("{} (loading '{}')", e.what(), path));
  }
}

void Module::reset() {
  for (auto& [name, child] : children_) child->reset();
}

void Module::train(bool on) {
  training_ = on;
  for (auto& [name, child] : children_) child->train(on);
}

void Module::zero_grad() {
  for (auto& t : parameters()) t.zero_grad();
}

void Module::to(DType dtype) {
  HEED_CHECK(is_floating(dtype), "{}::to: parameters must be Float32 or Float64, not {}", type_name_, dtype_name(dtype));
  NoGradGuard no_grad;
  auto convert = [&](Tensor& t) {
    if (!is_floating(t.dtype()) || t.dtype() == dtype) return;
    Tensor converted = t.to(dtype);
    TensorImpl* impl = t.impl();  // swap the data under the shared handle
    impl->storage = converted.impl()->storage;
    impl->shape = converted.shape();
    impl->strides = converted.strides();
    impl->offset = 0;
    impl->dtype = dtype;
    impl->grad.reset();
  };
  for (auto& [name, t] : parameters_) convert(t);
  for (auto& [name, t] : buffers_) convert(t);
  for (auto& [name, child] : children_) child->to(dtype);
}

std::string Module::to_string() const {
  auto indent = [](const std::string& text) {  // PyTorch's _addindent: lines after the first move right
    std::string out;
    for (char c : text) {
      out += c;
      if (c == '\n') out += "  ";
    }
    return out;
  };
  const std::string extra = extra_repr();
  if (children_.empty()) return type_name_ + "(" + extra + ")";
  // With children, PyTorch puts extra_repr on its own line before them.
  std::string out = type_name_ + "(\n";
  if (!extra.empty()) out += "  " + indent(extra) + "\n";
  for (const auto& [name, child] : children_) out += "  (" + name + "): " + indent(child->to_string()) + "\n";
  return out + ")";
}

std::string Module::summary(const Tensor& example_input) {
  auto modules = named_modules();
  for (auto& [name, m] : modules) m->has_output_shape_ = false;
  if (example_input.defined()) {
    NoGradGuard no_grad;
    // Run in eval mode, then give every module back its own mode (a child may have been in eval alone):
    // train() in pre-order, so that each call's propagation is corrected by the calls on the children.
    std::vector<bool> was_training;
    for (auto& [name, m] : modules) was_training.push_back(m->training_);
    auto restore = [&] {
      capture_output_shapes = false;
      for (std::size_t i = 0; i < modules.size(); ++i) modules[i].second->train(was_training[i]);
    };
    eval();
    capture_output_shapes = true;
    try {
      (*this)(example_input);
    } catch (...) {
      restore();
      throw;
    }
    restore();
  }
  std::vector<std::array<std::string, 4>> rows;
  for (auto& [name, m] : modules) {
    int64_t own = 0;
    for (auto& [pn, t] : m->parameters_) own += t.numel();
    rows.push_back({name.empty() ? "(model)" : name, m->type_name_,
                    m->has_output_shape_ ? shape_str(m->last_output_shape_) : "-", fmt::format("{}", own)});
  }
  std::array<std::size_t, 4> width = {5, 4, 12, 7};
  for (auto& r : rows)
    for (std::size_t c = 0; c < 4; ++c) width[c] = std::max(width[c], r[c].size());
  auto line = [&](const std::array<std::string, 4>& r) {
    return fmt::format("{:<{}}  {:<{}}  {:<{}}  {:>{}}\n", r[0], width[0], r[1], width[1], r[2], width[2], r[3], width[3]);
  };
  std::string out = line({"Layer", "Type", "Output shape", "Params"});
  out += std::string(width[0] + width[1] + width[2] + width[3] + 6, '-') + "\n";
  for (auto& r : rows) out += line(r);
  out += fmt::format("Total params: {}\nTrainable params: {}\n", num_parameters(), num_parameters(true));
  return out;
}

// ---- Sequential ------------------------------------------------------------------------------------

Sequential::Sequential(std::vector<std::shared_ptr<Module>> modules) : Module("Sequential") {
  for (auto& m : modules) push_back(std::move(m));
}

Sequential& Sequential::push_back(std::shared_ptr<Module> module) {
  return push_back(std::to_string(named_children().size()), std::move(module));
}

Sequential& Sequential::push_back(const std::string& name, std::shared_ptr<Module> module) {
  register_module(name, std::move(module));
  return *this;
}

Tensor Sequential::forward(const Tensor& input) {
  Tensor x = input;
  for (auto& [name, m] : named_children()) x = (*m)(x);
  return x;
}

}  // namespace heed::nn
