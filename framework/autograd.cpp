// framework/autograd.cpp — the tape and the reverse pass (rules in heed/autograd.hpp).
#include "heed/autograd.hpp"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <mutex>
#include <string>
#include <thread>
#include <type_traits>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "ops/common.hpp"

namespace heed {
namespace {

struct TapeEntry {
  const char* op;
  std::shared_ptr<TensorImpl> output;
  BackwardFn backward;
};

struct Tape {
  std::vector<TapeEntry> entries;
  uint64_t generation = 1;
  bool grad_enabled = true;
  bool anomaly = false;                  // anomaly mode (heed/autograd.hpp)
  const char* running_op = "";
  const TensorImpl* running_output = nullptr;  // the output of the entry whose backward runs (anomaly messages)
  // Grad-ready hooks: for each hooked leaf, the lowest entry index that takes it as an input (entries are
  // appended in increasing order, so the first one recorded); cleared with the entries.
  std::unordered_map<TensorImpl*, int64_t> first_use;
  // During a pass: the hooked leaves whose hooks have run (a later gradient for one of them is an error).
  std::unordered_set<TensorImpl*> hooks_done;
};

Tape& tape() {
  thread_local Tape t;
  return t;
}

// Adds src into the dense buffer dst (same dtype, numel n); src may be any view of that shape.
void add_into(const Tensor& dst, const Tensor& src) {
  HEED_DISPATCH_FLOAT(dst.dtype(), "accumulate_grad", [&] {
    scalar_t* d = dst.data<scalar_t>();
    const scalar_t* s = src.data<scalar_t>();
    if (src.is_contiguous()) {
      const int64_t n = dst.numel();
      for (int64_t i = 0; i < n; ++i) d[i] += s[i];
      return;
    }
    const Shape& dst_strides = dst.strides();
    const Shape& src_strides = src.strides();
    detail::strided_loop(dst.shape(), {&dst_strides, &src_strides},
                         [&](const int64_t* off, int64_t n, const int64_t* inner) {
                           for (int64_t i = 0; i < n; ++i) d[off[0] + i * inner[0]] += s[off[1] + i * inner[1]];
                         });
  });
}

// Whether any of n consecutive values is NaN or ±Inf (all exponent bits set): the largest exponent field
// is the all-ones one. An integer max with no early exit, so the loop vectorizes — anomaly mode's scan of
// every output is mostly this loop.
template <class T>
bool any_nonfinite(const T* p, int64_t n) {
  using Bits = std::conditional_t<sizeof(T) == 4, uint32_t, uint64_t>;
  constexpr Bits exponent = sizeof(T) == 4 ? Bits(0x7f800000u) : Bits(0x7ff0000000000000ull);
  Bits largest = 0;
  for (int64_t i = 0; i < n; ++i) {
    Bits b;
    std::memcpy(&b, p + i, sizeof b);
    b &= exponent;
    largest = b > largest ? b : largest;
  }
  return largest == exponent;
}

// The first element of t (row-major) that is NaN or ±Inf: its index and value. Index -1: none (or t
// is not a float tensor). Reads any view directly: calling an op here would recurse into the check.
std::pair<int64_t, double> first_nonfinite(const Tensor& t) {
  if (!t.defined() || (t.dtype() != DType::Float32 && t.dtype() != DType::Float64)) return {-1, 0.0};
  std::pair<int64_t, double> found{-1, 0.0};
  HEED_DISPATCH_FLOAT(t.dtype(), "anomaly mode", [&] {
    const scalar_t* p = t.data<scalar_t>();
    if (t.is_contiguous() && !any_nonfinite(p, t.numel())) return;  // the common case, in one pass
    int64_t index = 0;
    const Shape& strides = t.strides();
    detail::strided_loop(t.shape(), {&strides}, [&](const int64_t* off, int64_t n, const int64_t* inner) {
      if (found.first >= 0) return;
      if (inner[0] == 1 && !any_nonfinite(p + off[0], n)) {
        index += n;
        return;
      }
      for (int64_t i = 0; i < n; ++i) {
        const scalar_t v = p[off[0] + i * inner[0]];
        if (!std::isfinite(v)) {
          found = {index + i, static_cast<double>(v)};
          return;
        }
      }
      index += n;
    });
  });
  return found;
}

std::string nonfinite_name(double v) { return std::isnan(v) ? "NaN" : v > 0 ? "+Inf" : "-Inf"; }

template <class Inputs>
void check_forward(const char* op, const Tensor& output, const Inputs& inputs) {
  const auto [index, value] = first_nonfinite(output);
  if (index < 0) return;
  std::string shapes, nonfinite_inputs;
  int k = 0;
  for (const Tensor& in : inputs) {
    if (!in.defined()) {
      ++k;
      continue;
    }
    shapes += (shapes.empty() ? "" : ", ") + shape_str(in.shape());
    const auto [i, v] = first_nonfinite(in);
    if (i >= 0)
      nonfinite_inputs += fmt::format("{}input {} already holds {} (element {})",
                                      nonfinite_inputs.empty() ? "" : "; ", k, nonfinite_name(v), i);
    ++k;
  }
  const char* running = tape().running_op;
  throw Error(fmt::format("anomaly mode: {} produced {} in its output of shape {} (element {}); inputs of shape {}: "
                          "{}{}",
                          op, nonfinite_name(value), shape_str(output.shape()), index, shapes,
                          nonfinite_inputs.empty() ? std::string("all finite") : nonfinite_inputs,
                          *running ? fmt::format(" (while running the backward of {})", running) : std::string()));
}

// The grad-ready hooks of every thread, by leaf (heed/autograd.hpp). Registration is rare; lookups happen
// once per recorded input while any hook exists (hook_count is the fast path when none does).
struct HookRecord {
  uint64_t id;
  std::shared_ptr<TensorImpl> leaf;  // keeps the leaf (and its address, the key) alive
  GradReadyHook fn;
  std::thread::id thread;  // runs in this thread's backward passes only
};
struct HookRegistry {
  std::mutex mutex;
  std::unordered_map<TensorImpl*, std::vector<HookRecord>> by_leaf;
  uint64_t next_id = 1;
};
HookRegistry& hooks() {
  static HookRegistry r;
  return r;
}
std::atomic<std::size_t> hook_count{0};

bool is_hooked(TensorImpl* leaf) {
  HookRegistry& r = hooks();
  std::lock_guard<std::mutex> lock(r.mutex);
  return r.by_leaf.count(leaf) > 0;
}

}  // namespace

bool is_anomaly_enabled() { return tape().anomaly; }
void set_anomaly_enabled(bool enabled) { tape().anomaly = enabled; }

uint64_t register_grad_ready_hook(const Tensor& leaf, GradReadyHook hook) {
  HEED_CHECK(leaf.defined(), "register_grad_ready_hook: the tensor is undefined");
  HEED_CHECK(leaf.impl()->tape_index < 0,
             "register_grad_ready_hook: the tensor of shape {} was made by a recorded op; hooks go on leaves "
             "(parameters)", shape_str(leaf.shape()));
  HEED_CHECK(leaf.impl()->requires_grad,
             "register_grad_ready_hook: the leaf of shape {} does not require grad", shape_str(leaf.shape()));
  HEED_CHECK(static_cast<bool>(hook), "register_grad_ready_hook: the hook is empty");
  HookRegistry& r = hooks();
  std::lock_guard<std::mutex> lock(r.mutex);
  const uint64_t id = r.next_id++;
  r.by_leaf[leaf.impl()].push_back(HookRecord{id, leaf.impl_ptr(), std::move(hook), std::this_thread::get_id()});
  ++hook_count;
  return id;
}

void remove_grad_ready_hook(uint64_t id) {
  HookRegistry& r = hooks();
  std::lock_guard<std::mutex> lock(r.mutex);
  for (auto it = r.by_leaf.begin(); it != r.by_leaf.end(); ++it) {
    auto& list = it->second;
    auto found = std::find_if(list.begin(), list.end(), [id](const HookRecord& h) { return h.id == id; });
    if (found == list.end()) continue;
    list.erase(found);
    --hook_count;
    if (list.empty()) r.by_leaf.erase(it);
    return;
  }
}

bool is_grad_enabled() { return tape().grad_enabled; }
void set_grad_enabled(bool enabled) { tape().grad_enabled = enabled; }
std::size_t tape_size() { return tape().entries.size(); }
const char* current_backward_op() { return tape().running_op; }

void clear_tape() {
  Tape& t = tape();
  t.entries.clear();
  t.first_use.clear();
  ++t.generation;
}

bool should_record(std::initializer_list<Tensor> inputs) {
  if (!tape().grad_enabled) return false;
  for (const Tensor& t : inputs)
    if (t.defined() && t.impl()->requires_grad) return true;
  return false;
}

bool detail::begin_record(const char* op, const Tensor& output, std::initializer_list<Tensor> inputs) {
  Tape& t = tape();
  if (t.anomaly) check_forward(op, output, inputs);
  if (!t.grad_enabled) return false;
  for (const Tensor& in : inputs)
    if (in.defined() && in.impl()->requires_grad) return true;
  return false;
}

void detail::push_entry(const char* op, const Tensor& output, BackwardFn backward, const Tensor* inputs,
                        std::size_t n) {
  Tape& t = tape();
  TensorImpl* out = output.impl();
  const int64_t index = static_cast<int64_t>(t.entries.size());
  if (hook_count.load(std::memory_order_relaxed) > 0) {
    for (std::size_t i = 0; i < n; ++i) {
      TensorImpl* in = inputs[i].impl();
      if (in && in->requires_grad && in->tape_index < 0 && is_hooked(in)) t.first_use.emplace(in, index);
    }
  }
  out->requires_grad = true;
  out->tape_generation = t.generation;
  out->tape_index = index;
  t.entries.push_back(TapeEntry{op, output.impl_ptr(), std::move(backward)});
}

void record_many(const char* op, const Tensor& output, const std::vector<Tensor>& inputs, BackwardFn backward) {
  if (tape().anomaly) check_forward(op, output, inputs);
  if (!tape().grad_enabled) return;
  bool any = false;
  for (const Tensor& t : inputs) any = any || (t.defined() && t.impl()->requires_grad);
  if (any) detail::push_entry(op, output, std::move(backward), inputs.data(), inputs.size());
}

void accumulate_grad(const Tensor& input, Tensor grad) {
  if (!input.defined() || !input.impl()->requires_grad) return;
  TensorImpl* impl = input.impl();
  const char* op = tape().running_op;
  HEED_CHECK(tape().hooks_done.empty() || tape().hooks_done.count(impl) == 0,
             "{}: added to the gradient of a leaf of shape {} after that leaf's grad-ready hook ran: the op's "
             "record() does not list the leaf among its inputs", op, shape_str(impl->shape));
  HEED_CHECK(impl->tape_index < 0 || impl->tape_generation == tape().generation,
             "{}: an input of shape {} was made by an op whose tape entry an earlier backward() freed; "
             "recompute it, detach() it, or pass retain_graph=true to that backward (backward through a freed tape)",
             op, shape_str(impl->shape));
  HEED_CHECK(grad.defined(), "{}: backward produced an undefined gradient for an input of shape {}", op,
             shape_str(impl->shape));
  HEED_CHECK(grad.shape() == impl->shape,
             "{}: backward produced a gradient of shape {} for an input of shape {}", op, shape_str(grad.shape()),
             shape_str(impl->shape));
  HEED_CHECK(grad.dtype() == impl->dtype, "{}: backward produced a {} gradient for a {} input of shape {}", op,
             dtype_name(grad.dtype()), dtype_name(impl->dtype), shape_str(impl->shape));
  if (tape().anomaly) {
    const auto [index, value] = first_nonfinite(grad);
    if (index >= 0) {
      const TensorImpl* out = tape().running_output;
      if (std::strcmp(op, "backward") == 0)
        throw Error(fmt::format("anomaly mode: the seed gradient given to backward() holds {} (element {}) for a "
                                "tensor of shape {}", nonfinite_name(value), index, shape_str(impl->shape)));
      throw Error(fmt::format(
          "anomaly mode: the backward of {}{} produced {} in the gradient for its input of shape {} (element {})",
          *op ? op : "(no op: accumulate_grad called outside backward)",
          out ? fmt::format(" (output of shape {})", shape_str(out->shape)) : std::string(), nonfinite_name(value),
          shape_str(impl->shape), index));
    }
  }
  if (!impl->grad) {
    // Adopt the buffer when nobody else can see it (moved in, dense, unshared); otherwise copy, so that
    // a later in-place accumulation never writes into a tensor that another gradient also uses.
    const bool sole_owner = grad.impl_ptr().use_count() == 1 && grad.impl()->storage.use_count() == 1 &&
                            grad.is_contiguous() && grad.offset() == 0 && !grad.impl()->requires_grad;
    if (sole_owner) {
      impl->grad = grad.impl_ptr();
    } else {
      Tensor copy = make_tensor(grad.shape(), grad.dtype());
      detail::copy_to_dense(grad, copy.impl()->storage->data());
      impl->grad = copy.impl_ptr();
    }
    return;
  }
  add_into(Tensor(impl->grad), grad);
}

void backward(const Tensor& root, const Tensor& seed, bool retain_graph) {
  HEED_CHECK(root.defined(), "backward: the tensor is undefined");
  TensorImpl* r = root.impl();
  HEED_CHECK(r->requires_grad,
             "backward: the tensor of shape {} does not require grad (no input of the ops that made it requires "
             "grad, or it was computed under NoGradGuard)",
             shape_str(r->shape));
  Tape& t = tape();
  if (r->tape_index >= 0) {
    HEED_CHECK(r->tape_generation == t.generation && r->tape_index < static_cast<int64_t>(t.entries.size()),
               "backward: the tape that recorded this tensor of shape {} was already freed by an earlier "
               "backward(); pass retain_graph=true to call backward twice (backward through a freed tape)",
               shape_str(r->shape));
  }
  Tensor seed_grad;
  if (seed.defined()) {
    HEED_CHECK(seed.shape() == r->shape, "backward: seed gradient shape {} differs from the tensor's shape {}",
               shape_str(seed.shape()), shape_str(r->shape));
    seed_grad = seed.to(r->dtype).detach();
  } else {
    HEED_CHECK(shape_numel(r->shape) == 1,
               "backward: the tensor has shape {}; backward without a seed gradient needs a one-element tensor "
               "(pass a seed of the same shape)",
               shape_str(r->shape));
    seed_grad = ones(r->shape, r->dtype);
  }
  NoGradGuard no_grad;
  // Grad-ready hooks (heed/autograd.hpp): those of leaves an entry at or below the root takes as input run
  // during the walk, right after their lowest such entry (in_walk, by descending entry); the others at the
  // end (at_end, in registration order).
  struct PendingHook {
    int64_t at;
    uint64_t id;
    std::shared_ptr<TensorImpl> leaf;
    GradReadyHook fn;
  };
  std::vector<PendingHook> in_walk, at_end;
  if (hook_count.load(std::memory_order_relaxed) > 0) {
    HookRegistry& reg = hooks();
    std::lock_guard<std::mutex> lock(reg.mutex);
    for (const auto& [leaf, list] : reg.by_leaf) {
      auto it = t.first_use.find(leaf);
      const bool walked = r->tape_index >= 0 && it != t.first_use.end() && it->second <= r->tape_index;
      for (const HookRecord& h : list)
        if (h.thread == std::this_thread::get_id())
          (walked ? in_walk : at_end).push_back({walked ? it->second : -1, h.id, h.leaf, h.fn});
    }
    std::sort(in_walk.begin(), in_walk.end(),
              [](const PendingHook& a, const PendingHook& b) { return a.at != b.at ? a.at > b.at : a.id < b.id; });
    std::sort(at_end.begin(), at_end.end(), [](const PendingHook& a, const PendingHook& b) { return a.id < b.id; });
  }
  struct PassReset {
    Tape& t;
    ~PassReset() {
      t.running_op = "";
      t.hooks_done.clear();
    }
  } pass_reset{t};
  auto fire = [&t](const PendingHook& h, bool in_graph) {
    t.hooks_done.insert(h.leaf.get());
    h.fn(Tensor(h.leaf), in_graph);
  };
  auto fire_at_end = [&] {
    for (const PendingHook& h : at_end) fire(h, false);
  };
  // A non-leaf that retains its gradient may still hold the gradient of an earlier backward (with
  // retain_graph). This pass must push only its own gradient through the graph, so such gradients are set
  // aside here and added back once the pass is over (PyTorch's semantics).
  std::vector<std::pair<TensorImpl*, std::shared_ptr<TensorImpl>>> earlier_grads;
  if (r->tape_index >= 0) {
    for (int64_t i = r->tape_index; i >= 0; --i) {
      TensorImpl* out = t.entries[static_cast<std::size_t>(i)].output.get();
      if (out && out->retains_grad && out->grad) earlier_grads.emplace_back(out, std::move(out->grad));
    }
  }
  {
    const char* saved = t.running_op;
    t.running_op = "backward";
    accumulate_grad(root, seed_grad);
    t.running_op = saved;
  }
  if (r->tape_index < 0) {  // a leaf: nothing to propagate
    fire_at_end();
    return;
  }

  struct RunningOpReset {
    Tape& t;
    ~RunningOpReset() {
      t.running_op = "";
      t.running_output = nullptr;
    }
  } reset{t};
  std::size_t next_hook = 0;
  for (int64_t i = r->tape_index; i >= 0; --i) {
    TapeEntry& e = t.entries[static_cast<std::size_t>(i)];
    if (e.output && e.output->grad) {
      Tensor grad_out(e.output->grad);
      if (!e.output->retains_grad) e.output->grad.reset();
      t.running_op = e.op;
      t.running_output = e.output.get();
      e.backward(grad_out);
    }
    t.running_output = nullptr;
    for (; next_hook < in_walk.size() && in_walk[next_hook].at == i; ++next_hook) {
      t.running_op = "grad-ready hook";
      fire(in_walk[next_hook], true);
    }
  }
  t.running_op = "grad-ready hook";
  fire_at_end();
  t.running_op = "backward";
  t.running_output = nullptr;
  for (auto& [out, earlier] : earlier_grads) {
    if (out->grad) {
      add_into(Tensor(out->grad), Tensor(earlier));
    } else {
      out->grad = std::move(earlier);
    }
  }
  if (!retain_graph) clear_tape();
}

}  // namespace heed
