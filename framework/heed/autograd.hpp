// heed/autograd.hpp — the tape (Wengert list) and reverse-mode differentiation.
//
// How it works
//   While grad mode is on, every differentiable op whose inputs include a tensor with requires_grad
//   appends one entry to the calling thread's tape: the op's name, its output, and a backward closure
//   that, given the gradient of the output, adds the gradients of the inputs (accumulate_grad). The
//   output is marked non-leaf and remembers its entry's index.
//   `y.backward()` seeds y's gradient (1 for a one-element y), then walks the tape from y's entry down
//   to entry 0, running each entry whose output received a gradient. Gradients of a tensor used
//   several times add up. Leaves (tensors made by the user, e.g. parameters) keep their .grad and
//   accumulate across backward calls until zero_grad(); a non-leaf's gradient is dropped once its
//   entry has run, unless retain_grad() was called on it.
//
// Lifetime rules
//   1. Everything a recorded op's backward needs (its inputs, saved values, its output) is kept alive
//      by the tape until the tape is cleared — not by your variables. Memory grows with every recorded
//      op until then.
//   2. backward() clears the whole tape afterwards (all entries, including ones that did not lead to
//      the tensor you called it on), unless you pass retain_graph = true.
//   3. A tensor whose entry was cleared can no longer be differentiated: calling backward() on it, or
//      on something computed from it in a later graph, throws "backward through a freed tape" naming
//      the op. (Its values stay valid; only its history is gone.)
//   4. Run inference, evaluation and optimizer updates under heed::NoGradGuard: nothing is recorded,
//      so nothing accumulates. If you compute something with grad on and never call backward, call
//      heed::clear_tape() yourself.
//   5. The tape is per thread. Backward runs with grad mode off: backward closures are not recorded
//      (heed has no higher-order gradients).
//
// Writing a custom op (see docs/ and tests/test_custom_op.cpp)
//   Tensor my_square(const Tensor& x) {
//     Tensor y = heed::mul(x.detach(), x.detach());        // forward, not recorded
//     heed::record("my_square", y, {x}, [x](const Tensor& gy) {
//       heed::accumulate_grad(x, gy * x * 2.0);            // d(x^2)/dx = 2x
//     });
//     return y;
//   }
//   record() does nothing when grad mode is off or no input requires grad; the closure must capture
//   by value what it needs. Check it with heed::gradcheck (heed/gradcheck.hpp).
#pragma once
#include <cstdint>
#include <functional>
#include <initializer_list>

#include "heed/tensor.hpp"

namespace heed {

bool is_grad_enabled();  ///< grad mode of this thread (on by default): whether ops are recorded
void set_grad_enabled(bool enabled);  ///< sets this thread's grad mode; prefer NoGradGuard / EnableGradGuard

/// Turns recording off for its scope (inference, evaluation, optimizer updates).
class NoGradGuard {
 public:
  NoGradGuard() : previous_(is_grad_enabled()) { set_grad_enabled(false); }
  ~NoGradGuard() { set_grad_enabled(previous_); }
  NoGradGuard(const NoGradGuard&) = delete;
  NoGradGuard& operator=(const NoGradGuard&) = delete;

 private:
  bool previous_;
};

/// Turns recording on for its scope (e.g. inside a NoGradGuard).
class EnableGradGuard {
 public:
  EnableGradGuard() : previous_(is_grad_enabled()) { set_grad_enabled(true); }
  ~EnableGradGuard() { set_grad_enabled(previous_); }
  EnableGradGuard(const EnableGradGuard&) = delete;
  EnableGradGuard& operator=(const EnableGradGuard&) = delete;

 private:
  bool previous_;
};

// Anomaly mode (PyTorch's detect_anomaly): while it is on in a thread, heed checks for NaN and ±Inf
//   - the output of every op that calls record() / record_many() — every differentiable op, whether or
//     not it is recorded (grad mode off, or no input requiring grad: the detached forward of a custom op,
//     ops inside a backward closure), so the first op that makes a non-finite value is the one named.
//     The exceptions are matmul and linear, which skip record() when nothing is recorded: their output
//     is checked only when recorded (a NaN they make otherwise is reported by the next op that uses it).
//     Non-float outputs are not checked;
//   - every gradient a backward passes to accumulate_grad, before it is added.
// and throws heed::Error: "anomaly mode: log produced NaN in its output of shape [3] ..." (with whether
// the inputs were already non-finite, and the backward running if any), or "anomaly mode: the backward of
// log (output of shape [3]) produced NaN in the gradient for its input of shape [3] ...". It is off by
// default and per thread; when off it costs one flag test per op, made where should_record's test was.
// When on, every op's output is scanned once more: bench/bench_anomaly.cpp measures the cost.
bool is_anomaly_enabled();                ///< anomaly mode of this thread (off by default)
void set_anomaly_enabled(bool enabled);   ///< sets this thread's anomaly mode; prefer AnomalyModeGuard

/// Turns anomaly mode on (or off, with `false`) for its scope.
class AnomalyModeGuard {
 public:
  explicit AnomalyModeGuard(bool enabled = true) : previous_(is_anomaly_enabled()) { set_anomaly_enabled(enabled); }
  ~AnomalyModeGuard() { set_anomaly_enabled(previous_); }
  AnomalyModeGuard(const AnomalyModeGuard&) = delete;
  AnomalyModeGuard& operator=(const AnomalyModeGuard&) = delete;

 private:
  bool previous_;
};

/// A backward closure: receives the output's gradient and calls accumulate_grad for each input.
using BackwardFn = std::function<void(const Tensor& grad_output)>;

/// True when grad mode is on and some input requires grad: the op will be recorded.
bool should_record(std::initializer_list<Tensor> inputs);

namespace detail {
/// record()'s first half: the anomaly-mode check of `output` (when on), then should_record(inputs).
bool begin_record(const char* op, const Tensor& output, std::initializer_list<Tensor> inputs);
// `inputs` (n of them) are what the entry's backward may accumulate into; the tape remembers which
// leaves with a grad-ready hook an entry takes, nothing else about them.
void push_entry(const char* op, const Tensor& output, BackwardFn backward, const Tensor* inputs, std::size_t n);
}  // namespace detail

/// Records `output` as produced by `op` from `inputs`, with `backward` to run on the way back. `inputs`
/// must list every tensor the backward accumulates into (grad-ready hooks rely on it).
template <class F>
void record(const char* op, const Tensor& output, std::initializer_list<Tensor> inputs, F&& backward) {
  if (!detail::begin_record(op, output, inputs)) return;
  detail::push_entry(op, output, BackwardFn(std::forward<F>(backward)), inputs.begin(), inputs.size());
}
/// Same for ops with a run-time number of inputs (concat, stack).
void record_many(const char* op, const Tensor& output, const std::vector<Tensor>& inputs, BackwardFn backward);

/// Adds `grad` to input's gradient. Does nothing when `input` does not require grad. Throws when the
/// shape or dtype differs from the input's, naming the op whose backward is running (and, in anomaly
/// mode, when `grad` holds NaN or Inf).
void accumulate_grad(const Tensor& input, Tensor grad);

/// Reverse pass from `root` (what Tensor::backward calls).
void backward(const Tensor& root, const Tensor& seed = Tensor(), bool retain_graph = false);

// ---- grad-ready hooks ------------------------------------------------------------------------------
// A hook on a leaf runs once in every backward pass, as soon as the leaf's gradient for that pass is
// final: right after the walk has run the lowest tape entry that takes the leaf as an input (no entry
// below it can add to the leaf's gradient). A registered leaf that no entry of the walked part of the
// tape takes as an input gets its call at the end of the pass, with in_graph false (its gradient did not
// change). Within a pass the calls come in the order the walk passes the leaves, which is the reverse of
// the order in which the forward first used them; at the end of the pass, in registration order.
// heed::dist::DataParallel starts each bucket's allreduce from these hooks, while backward goes on.
// Like the tape, a hook belongs to a thread: it runs in the backward passes of the thread that registered
// it (with grad mode off). An exception thrown by a hook leaves backward (the tape is then not cleared).
// The registry keeps the leaf alive until the hook is removed.
// A gradient that reaches a leaf after its hook ran in the same pass (an op whose record() did not list
// that leaf among its inputs) throws heed::Error naming the op.

/// A grad-ready hook: `leaf` (its .grad() is final for this pass, possibly undefined); `in_graph` is true
/// when an entry of the walked tape takes the leaf as an input, false when the pass did not involve it.
using GradReadyHook = std::function<void(const Tensor& leaf, bool in_graph)>;
/// Registers `hook` on `leaf` (a tensor with requires_grad and no tape entry: a parameter) for this
/// thread's backward passes; returns an id for remove_grad_ready_hook. Several hooks on one leaf run in
/// registration order. Throws heed::Error when leaf is undefined, not a leaf, or does not require grad.
uint64_t register_grad_ready_hook(const Tensor& leaf, GradReadyHook hook);
/// Removes the hook with this id (from any thread); unknown ids are ignored.
void remove_grad_ready_hook(uint64_t id);

std::size_t tape_size();  ///< entries recorded on this thread's tape
void clear_tape();        ///< drop all entries (their tensors can no longer be differentiated)
const char* current_backward_op();  ///< the op whose backward is running, or "" (for error messages)

}  // namespace heed
