// framework/ops/recurrent.cpp — the fused RNN / LSTM / GRU op (heed/ops/recurrent.hpp): the direction
// loops around the step kernels of recurrent_cells.cpp, the layers and dropout around them, and the
// recorded op.
//
// One recorded op runs a whole multi-layer, possibly bidirectional network ("lstm", "gru", "rnn_tanh",
// "rnn_relu"; a cell step is the same op with T = 1). Its output is one packed buffer
// [output | h_n | c_n]; the tensors handed out are views of it, each recorded as a small entry that
// adds its gradient into the packed buffer's, so the main entry's backward receives all of them at once.
//
// Per layer and direction (rows as in recurrent_cells.hpp):
//   forward   GI = X W_ih^T + b (one GEMM for all steps); per step GH = h W_hh^T (one GEMM), then the
//             step kernel (σ and tanh from one SIMD exp pass), saving what backward needs.
//   backward  per step, latest first: the step kernel's backward gives the step's rows of dGI (and dGH,
//             which differs for GRU), then dh_prev = dGH_t W_hh (one GEMM); after the loop
//             dW_ih = dGI^T X, dW_hh = dGH^T H_prev, dX = dGI W_ih (three GEMMs), db = column sums.
#include "heed/ops/recurrent.hpp"

#include <cstring>
#include <memory>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "heed/autograd.hpp"
#include "heed/random.hpp"
#include "ops/blas.hpp"
#include "ops/common.hpp"
#include "ops/partial_grad.hpp"
#include "ops/recurrent_cells.hpp"

namespace heed {

int64_t recurrent_gate_count(RecurrentKind kind) {
  return kind == RecurrentKind::LSTM ? 4 : kind == RecurrentKind::GRU ? 3 : 1;
}

namespace detail::recurrent {
namespace {

template <class T>
constexpr DType dtype_for() {
  return std::is_same_v<T, float> ? DType::Float32 : DType::Float64;
}

template <class T>
struct Weights {
  const T* w_ih;
  const T* w_hh;
  const T* b_ih;  // null without bias
  const T* b_hh;
};

// ---- one direction of one layer --------------------------------------------------------------------

// Runs one direction of one layer over the whole sequence. x: (R, in) layer input; h0, c0: (N, H) or
// null for zeros; y: this direction's first output column (row stride y_stride); h_n, c_n: (N, H) out.
template <class T>
void direction_forward(RecurrentKind kind, const char* op, const Geometry& g, bool reverse, const T* x, int64_t in,
                       const Weights<T>& w, const T* h0, const T* c0, T* y, int64_t y_stride, T* h_n, T* c_n,
                       DirectionCache& cache) {
  const int64_t N = g.batch, H = g.hidden, GH = g.width(), R = g.rows();
  const DType dt = dtype_for<T>();
  const bool gru = kind == RecurrentKind::GRU, lstm = kind == RecurrentKind::LSTM;
  // GI = X W_ih^T for all steps; the kernels add b_ih + b_hh, except b_hn for GRU, which sits inside
  // r∘(.) and goes into GH.
  Tensor gi_buffer = make_tensor({R, GH}, dt);
  T* gi = gi_buffer.data<T>();
  gemm_dense(op, false, true, R, GH, in, T(1), x, w.w_ih, T(0), gi);
  const bool bias = w.b_ih != nullptr;
  std::vector<T> bias_row(static_cast<std::size_t>(GH), T(0));
  if (bias)
    for (int64_t j = 0; j < GH; ++j) bias_row[j] = w.b_ih[j] + (gru && j >= 2 * H ? T(0) : w.b_hh[j]);

  cache.h_prev = make_tensor({R, H}, dt);
  cache.gates = gi_buffer;  // step t overwrites its rows of GI (read once, by that step) with the gates
  if (lstm) {
    cache.c_prev = make_tensor({R, H}, dt);
    cache.tanh_c = make_tensor({R, H}, dt);
  }
  if (gru) cache.hh_n = make_tensor({R, H}, dt);
  Tensor scratch = zeros({N * (2 * GH + 3 * H)}, dt);
  T* gh = scratch.data<T>();
  T* act = gh + N * GH;
  T* aux = act + N * GH;
  T* h = aux + N * H;
  T* c = h + N * H;
  const std::size_t state_bytes = static_cast<std::size_t>(N * H) * sizeof(T);
  if (h0) std::memcpy(h, h0, state_bytes);
  if (lstm && c0) std::memcpy(c, c0, state_bytes);
  T* h_prev = cache.h_prev.data<T>();
  const bool hn_bias = gru && bias;
  for (int64_t s = 0; s < g.steps; ++s) {
    const int64_t t = g.time_at(s, reverse);
    for (int64_t n = 0; n < N; ++n)
      std::memcpy(h_prev + g.row(t, n) * H, h + n * H, static_cast<std::size_t>(H) * sizeof(T));
    if (hn_bias) {  // GH starts as [0, 0, b_hn] in every row
      for (int64_t n = 0; n < N; ++n) {
        T* row = gh + n * GH;
        std::memset(row, 0, static_cast<std::size_t>(2 * H) * sizeof(T));
        std::memcpy(row + 2 * H, w.b_hh + 2 * H, static_cast<std::size_t>(H) * sizeof(T));
      }
    }
    gemm_dense(op, false, true, N, GH, H, T(1), h, w.w_hh, hn_bias ? T(1) : T(0), gh);
    const Step<T> step{g, t, gi, gh, bias_row.data(), act, aux, h, c, y, y_stride, cache};
    switch (kind) {
      case RecurrentKind::LSTM: lstm_step_forward(step); break;
      case RecurrentKind::GRU: gru_step_forward(step); break;
      case RecurrentKind::RNNTanh: rnn_step_forward(step, false); break;
      case RecurrentKind::RNNReLU: rnn_step_forward(step, true); break;
    }
  }
  std::memcpy(h_n, h, state_bytes);
  if (lstm) std::memcpy(c_n, c, state_bytes);
}

// Where one direction's gradients go; null pointers are not wanted.
template <class T>
struct DirectionGrads {
  T* dx;  // (R, in)
  bool dx_accumulate;
  T* dw_ih;
  T* dw_hh;
  T* db_ih;
  T* db_hh;
  T* dh0;  // (N, H)
  T* dc0;
};

// Backpropagation through time for one direction of one layer (see the file comment).
template <class T>
void direction_backward(RecurrentKind kind, const char* op, const Geometry& g, bool reverse, const T* x, int64_t in,
                        const Weights<T>& w, const DirectionCache& cache, const T* gy, int64_t y_stride,
                        const T* g_hn, const T* g_cn, const DirectionGrads<T>& out) {
  const int64_t N = g.batch, H = g.hidden, GH = g.width(), R = g.rows();
  const DType dt = dtype_for<T>();
  const bool gru = kind == RecurrentKind::GRU, lstm = kind == RecurrentKind::LSTM;
  Tensor dgi_buffer = make_tensor({R, GH}, dt);
  Tensor dgh_buffer = gru ? make_tensor({R, GH}, dt) : dgi_buffer;
  T* dgi = dgi_buffer.data<T>();
  T* dgh = dgh_buffer.data<T>();
  Tensor state = zeros({4 * N * H}, dt);
  T* dh = state.data<T>();
  T* dh_next = dh + N * H;
  T* dc = dh_next + N * H;
  T* direct = dc + N * H;
  const std::size_t state_bytes = static_cast<std::size_t>(N * H) * sizeof(T);
  std::memcpy(dh, g_hn, state_bytes);
  if (lstm) std::memcpy(dc, g_cn, state_bytes);
  for (int64_t s = g.steps - 1; s >= 0; --s) {
    const int64_t t = g.time_at(s, reverse);
    const StepBack<T> step{g, t, cache, gy, y_stride, dh, dc, dgi, dgh, direct};
    switch (kind) {
      case RecurrentKind::LSTM: lstm_step_backward(step); break;
      case RecurrentKind::GRU: gru_step_backward(step); break;
      case RecurrentKind::RNNTanh: rnn_step_backward(step, false); break;
      case RecurrentKind::RNNReLU: rnn_step_backward(step, true); break;
    }
    // dh_prev = dGH_t W_hh: the step's rows of dGH as one matrix with row stride batch_stride·GH.
    gemm(op, false, false, N, H, GH, T(1), dgh + g.row(t, 0) * GH, g.batch_stride * GH, w.w_hh, H, T(0), dh_next, H);
    for (int64_t n = 0; n < N; ++n) {
      T* next = dh_next + n * H;
      if (!g.active(t, n)) {
        std::memcpy(next, dh + n * H, static_cast<std::size_t>(H) * sizeof(T));
      } else if (gru) {
        for (int64_t j = 0; j < H; ++j) next[j] += direct[n * H + j];
      }
    }
    std::swap(dh, dh_next);
  }
  if (out.dh0) std::memcpy(out.dh0, dh, state_bytes);
  if (out.dc0) std::memcpy(out.dc0, dc, state_bytes);
  if (out.dw_ih) gemm_dense(op, true, false, GH, in, R, T(1), dgi, x, T(0), out.dw_ih);
  if (out.dw_hh) gemm_dense(op, true, false, GH, H, R, T(1), dgh, cache.h_prev.data<T>(), T(0), out.dw_hh);
  auto column_sums = [&](const T* m, T* sums) {
    std::memset(sums, 0, static_cast<std::size_t>(GH) * sizeof(T));
    for (int64_t r = 0; r < R; ++r)
      for (int64_t j = 0; j < GH; ++j) sums[j] += m[r * GH + j];
  };
  if (out.db_ih) column_sums(dgi, out.db_ih);
  if (out.db_hh && out.db_ih && dgh == dgi) std::memcpy(out.db_hh, out.db_ih, static_cast<std::size_t>(GH) * sizeof(T));
  else if (out.db_hh) column_sums(dgh, out.db_hh);
  if (out.dx) gemm_dense(op, false, false, R, in, GH, T(1), dgi, w.w_ih, out.dx_accumulate ? T(1) : T(0), out.dx);
}

// ---- every layer and direction ---------------------------------------------------------------------

// The checked call: sizes, the layout and the result shapes.
struct Plan {
  RecurrentKind kind;
  const char* op;  // the recorded op's name
  int64_t steps, batch, input_size, hidden, layers, dirs;
  bool batch_first, bias;
  double dropout;  // between layers; 0 = none
  Shape output_shape, state_shape;
  bool want_output;  // cells only hand out the states
};

// Everything the backward needs, shared by the closure.
struct FusedRun {
  Plan plan;
  std::vector<int64_t> lengths;
  Tensor x, h0, c0;                   // the inputs as given (gradients go to them)
  std::vector<Tensor> weights;        // per layer, direction: w_ih, w_hh[, b_ih, b_hh]
  std::vector<Tensor> weight_values;  // the same, dense and detached
  std::vector<Tensor> layer_inputs;   // X_l, dense (X_0 = the input)
  std::vector<Tensor> masks;          // dropout scale of layer l's output, l < L-1 (undefined: none)
  std::vector<DirectionCache> caches; // l·D + d

  int64_t per_direction() const { return plan.bias ? 4 : 2; }
  Geometry geometry() const {
    const int64_t T = plan.steps, N = plan.batch;
    return Geometry{T, N, plan.hidden, recurrent_gate_count(plan.kind), plan.batch_first ? 1 : N,
                    plan.batch_first ? T : 1, lengths.data()};
  }
  int64_t layer_input_size(int64_t l) const { return l == 0 ? plan.input_size : plan.dirs * plan.hidden; }
  template <class T>
  Weights<T> values(int64_t index) const {
    const std::size_t b = static_cast<std::size_t>(index * per_direction());
    return Weights<T>{weight_values[b].data<T>(), weight_values[b + 1].data<T>(),
                      plan.bias ? weight_values[b + 2].data<T>() : nullptr,
                      plan.bias ? weight_values[b + 3].data<T>() : nullptr};
  }
};

template <class T>
void fused_forward(FusedRun& run, const Tensor& h0_values, const Tensor& c0_values, Tensor& packed) {
  const Plan& sp = run.plan;
  const Geometry g = run.geometry();
  const int64_t R = g.rows(), H = sp.hidden, D = sp.dirs, DH = D * H, NH = sp.batch * H;
  const int64_t S = sp.layers * D * NH;
  const bool lstm = sp.kind == RecurrentKind::LSTM;
  T* p = packed.data<T>();
  T* h_n = p + R * DH;
  T* c_n = h_n + S;
  const T* h0 = h0_values.defined() ? h0_values.data<T>() : nullptr;
  const T* c0 = c0_values.defined() ? c0_values.data<T>() : nullptr;
  run.caches.resize(static_cast<std::size_t>(sp.layers * D));
  for (int64_t l = 0; l < sp.layers; ++l) {
    const bool last = l == sp.layers - 1;
    Tensor y_buffer = last ? Tensor() : make_tensor({R, DH}, dtype_for<T>());
    T* y = last ? p : y_buffer.data<T>();
    for (int64_t d = 0; d < D; ++d) {
      const int64_t k = l * D + d;
      direction_forward<T>(sp.kind, sp.op, g, d == 1, run.layer_inputs[static_cast<std::size_t>(l)].data<T>(),
                           run.layer_input_size(l), run.values<T>(k), h0 ? h0 + k * NH : nullptr,
                           c0 ? c0 + k * NH : nullptr, y + d * H, DH, h_n + k * NH, lstm ? c_n + k * NH : nullptr,
                           run.caches[static_cast<std::size_t>(k)]);
    }
    if (last) break;
    Tensor mask;
    if (sp.dropout > 0) {  // inverted dropout: keep with probability 1-p, scale by 1/(1-p)
      mask = make_tensor({R, DH}, dtype_for<T>());
      T* m = mask.data<T>();
      Generator& gen = default_generator();
      const T scale = static_cast<T>(1.0 / (1.0 - sp.dropout));
      for (int64_t i = 0; i < R * DH; ++i) {
        m[i] = gen.uniform() < sp.dropout ? T(0) : scale;
        y[i] *= m[i];
      }
    }
    run.masks.push_back(mask);
    run.layer_inputs.push_back(y_buffer);
  }
}

template <class T>
void fused_backward(const FusedRun& run, const Tensor& grad_packed) {
  const Plan& sp = run.plan;
  const Geometry g = run.geometry();
  const int64_t R = g.rows(), H = sp.hidden, D = sp.dirs, DH = D * H, NH = sp.batch * H;
  const int64_t S = sp.layers * D * NH;
  const bool lstm = sp.kind == RecurrentKind::LSTM;
  const Tensor gp = grad_packed.contiguous();
  const T* g_out = gp.data<T>();
  const T* g_hn = g_out + R * DH;
  const T* g_cn = g_hn + S;
  const DType dt = dtype_for<T>();
  const bool want_h0 = run.h0.defined() && run.h0.requires_grad();
  const bool want_c0 = run.c0.defined() && run.c0.requires_grad();
  Tensor dh0 = want_h0 ? make_tensor(run.h0.shape(), dt) : Tensor();
  Tensor dc0 = want_c0 ? make_tensor(run.c0.shape(), dt) : Tensor();
  Tensor gy_below;  // dL/d(output of the layer being processed), for every layer but the last
  for (int64_t l = sp.layers - 1; l >= 0; --l) {
    const T* gy = l == sp.layers - 1 ? g_out : gy_below.data<T>();
    const int64_t in = run.layer_input_size(l);
    Tensor dx;
    if (l > 0) dx = make_tensor({R, in}, dt);
    else if (run.x.requires_grad()) dx = make_tensor(run.x.shape(), dt);
    for (int64_t d = 0; d < D; ++d) {
      const int64_t k = l * D + d;
      const std::size_t b = static_cast<std::size_t>(k * run.per_direction());
      std::vector<Tensor> dw(static_cast<std::size_t>(run.per_direction()));
      for (std::size_t i = 0; i < dw.size(); ++i)
        if (run.weights[b + i].requires_grad()) dw[i] = make_tensor(run.weights[b + i].shape(), dt);
      auto ptr = [](const Tensor& t) { return t.defined() ? t.data<T>() : nullptr; };
      const DirectionGrads<T> out{ptr(dx), d > 0, ptr(dw[0]), ptr(dw[1]), sp.bias ? ptr(dw[2]) : nullptr,
                                  sp.bias ? ptr(dw[3]) : nullptr, want_h0 ? dh0.data<T>() + k * NH : nullptr,
                                  want_c0 ? dc0.data<T>() + k * NH : nullptr};
      direction_backward<T>(sp.kind, sp.op, g, d == 1, run.layer_inputs[static_cast<std::size_t>(l)].data<T>(), in,
                            run.values<T>(k), run.caches[static_cast<std::size_t>(k)], gy + d * H, DH,
                            g_hn + k * NH, lstm ? g_cn + k * NH : nullptr, out);
      for (std::size_t i = 0; i < dw.size(); ++i)
        if (dw[i].defined()) accumulate_grad(run.weights[b + i], std::move(dw[i]));
    }
    if (l > 0) {
      const Tensor& mask = run.masks[static_cast<std::size_t>(l - 1)];
      if (mask.defined()) {
        T* px = dx.data<T>();
        const T* m = mask.data<T>();
        for (int64_t i = 0; i < R * in; ++i) px[i] *= m[i];
      }
      gy_below = dx;
    } else if (dx.defined()) {
      accumulate_grad(run.x, std::move(dx));
    }
  }
  if (want_h0) accumulate_grad(run.h0, std::move(dh0));
  if (want_c0) accumulate_grad(run.c0, std::move(dc0));
}

// ---- the recorded op -------------------------------------------------------------------------------

// A view of `packed` handed out as one of the op's results; its gradient is added into packed's.
Tensor packed_view(const Tensor& packed, const Shape& shape, int64_t offset, bool recording) {
  Tensor view = make_view(packed, shape, contiguous_strides(shape), offset);
  if (!recording) return view;
  record("rnn_state_view", view, {packed}, [packed, offset](const Tensor& gy) {
    const Tensor g = gy.contiguous();
    add_to_grad(packed, g.dtype(), [&](const Tensor& buffer) {
      HEED_DISPATCH_FLOAT(g.dtype(), "rnn_state_view", [&] {
        scalar_t* dst = buffer.data<scalar_t>() + offset;
        const scalar_t* src = g.data<scalar_t>();
        const int64_t n = g.numel();
        for (int64_t i = 0; i < n; ++i) dst[i] += src[i];
      });
    });
  });
  return view;
}

// Runs the checked plan: x as laid out by the plan, h0/c0 of plan.state_shape or undefined, lengths
// empty (all T) or N entries. Records one op (and a view entry per result) when some input needs grad.
RecurrentOpOutput run_fused(const Plan& plan, const Tensor& x, const Tensor& h0, const Tensor& c0,
                            std::vector<int64_t> lengths, const std::vector<Tensor>& weights) {
  auto run = std::make_shared<FusedRun>();
  run->plan = plan;
  run->lengths = lengths.empty() ? std::vector<int64_t>(static_cast<std::size_t>(plan.batch), plan.steps)
                                 : std::move(lengths);
  run->x = x;
  run->h0 = h0;
  run->c0 = c0;
  run->weights = weights;
  for (const Tensor& w : weights) run->weight_values.push_back(w.detach().contiguous());
  run->layer_inputs.push_back(x.detach().contiguous());
  const int64_t R = plan.steps * plan.batch, S = plan.layers * plan.dirs * plan.batch * plan.hidden;
  const bool lstm = plan.kind == RecurrentKind::LSTM;
  Tensor packed = make_tensor({R * plan.dirs * plan.hidden + S * (lstm ? 2 : 1)}, x.dtype());
  // Dense copies of h0/c0 are read by the forward only; backward needs just the originals.
  const Tensor h0_values = h0.defined() ? h0.detach().contiguous() : Tensor();
  const Tensor c0_values = c0.defined() ? c0.detach().contiguous() : Tensor();
  HEED_DISPATCH_FLOAT(x.dtype(), plan.op, [&] { fused_forward<scalar_t>(*run, h0_values, c0_values, packed); });
  std::vector<Tensor> inputs{x, h0, c0};
  inputs.insert(inputs.end(), weights.begin(), weights.end());
  bool recording = is_grad_enabled();
  if (recording) {
    recording = false;
    for (const Tensor& t : inputs) recording = recording || (t.defined() && t.requires_grad());
  }
  if (recording) {
    record_many(plan.op, packed, inputs, [run](const Tensor& gp) {
      HEED_DISPATCH_FLOAT(gp.dtype(), run->plan.op, [&] { fused_backward<scalar_t>(*run, gp); });
    });
  }
  RecurrentOpOutput out;
  const int64_t y_numel = R * plan.dirs * plan.hidden;
  if (plan.want_output) out.output = packed_view(packed, plan.output_shape, 0, recording);
  out.h_n = packed_view(packed, plan.state_shape, y_numel, recording);
  if (lstm) out.c_n = packed_view(packed, plan.state_shape, y_numel + S, recording);
  return out;
}

// ---- checks ----------------------------------------------------------------------------------------

const char* op_name(RecurrentKind kind, bool cell) {
  switch (kind) {
    case RecurrentKind::LSTM: return cell ? "lstm_cell" : "lstm";
    case RecurrentKind::GRU: return cell ? "gru_cell" : "gru";
    case RecurrentKind::RNNTanh: return cell ? "rnn_tanh_cell" : "rnn_tanh";
    case RecurrentKind::RNNReLU: return cell ? "rnn_relu_cell" : "rnn_relu";
  }
  return "rnn";
}

// The settings themselves, then the weights' count and shapes (PyTorch's flat weights).
void check_spec_and_weights(const RecurrentOpSpec& spec, const std::vector<Tensor>& weights, const std::string& who) {
  const int64_t in = spec.input_size(), H = spec.hidden_size(), L = spec.num_layers();
  HEED_CHECK(in > 0 && H > 0, "{}: input_size and hidden_size must be positive, got {} and {}", who, in, H);
  HEED_CHECK(L >= 1, "{}: num_layers must be at least 1, got {}", who, L);
  HEED_CHECK(spec.dropout() >= 0 && spec.dropout() < 1, "{}: dropout must be in [0, 1), got {}", who, spec.dropout());
  const int64_t dirs = spec.bidirectional() ? 2 : 1, per = spec.bias() ? 4 : 2;
  HEED_CHECK(static_cast<int64_t>(weights.size()) == L * dirs * per,
             "{}: expected {} weights ({} per layer and direction), got {}", who, L * dirs * per, per, weights.size());
  const int64_t GH = recurrent_gate_count(spec.kind()) * H;
  for (std::size_t i = 0; i < weights.size(); ++i) {
    const int64_t l = static_cast<int64_t>(i) / (dirs * per), j = static_cast<int64_t>(i) % per;
    const Shape want = j == 0 ? Shape{GH, l == 0 ? in : dirs * H} : j == 1 ? Shape{GH, H} : Shape{GH};
    HEED_CHECK(weights[i].defined() && weights[i].shape() == want, "{}: weight {} must have shape {}, got {}", who,
               i, shape_str(want), weights[i].defined() ? shape_str(weights[i].shape()) : "undefined");
  }
}

void check_input(const Tensor& x, const std::vector<Tensor>& weights, int64_t input_size, const std::string& who) {
  HEED_CHECK(x.defined(), "{}: the input is undefined", who);
  HEED_CHECK(is_floating(x.dtype()), "{}: the input must be Float32 or Float64, got {}", who, dtype_name(x.dtype()));
  for (const Tensor& w : weights)
    HEED_CHECK(x.dtype() == w.dtype(),
               "{}: the input is {} but the parameters are {}; convert one (module.to(...) or x.to(...))", who,
               dtype_name(x.dtype()), dtype_name(w.dtype()));
  HEED_CHECK(x.dim() >= 1 && x.size(-1) == input_size, "{}: the input {} must have {} features in its last axis",
             who, shape_str(x.shape()), input_size);
}

// Checks an initial state: undefined, or of `shape` and the input's dtype (and a cell state only for LSTM).
void check_state(const Tensor& s, const Shape& shape, DType dtype, const std::string& who, const char* name,
                 bool allowed = true) {
  if (!s.defined()) return;
  HEED_CHECK(allowed, "{}: {} is given, but only an LSTM has a cell state", who, name);
  HEED_CHECK(s.shape() == shape, "{}: {} must have shape {}, got {}", who, name, shape_str(shape), shape_str(s.shape()));
  HEED_CHECK(s.dtype() == dtype, "{}: {} is {} but the input is {}", who, name, dtype_name(s.dtype()),
             dtype_name(dtype));
}

}  // namespace
}  // namespace detail::recurrent

// ---- the public ops --------------------------------------------------------------------------------

RecurrentOpOutput rnn_fused(const RecurrentOpSpec& spec, const Tensor& x, const Tensor& h0, const Tensor& c0,
                            const std::vector<Tensor>& weights, const Tensor& lengths) {
  using namespace detail::recurrent;
  const RecurrentKind kind = spec.kind();
  const std::string who = spec.name().empty() ? op_name(kind, false) : spec.name();
  check_spec_and_weights(spec, weights, who);
  const int64_t in = spec.input_size(), H = spec.hidden_size(), L = spec.num_layers();
  check_input(x, weights, in, who);
  HEED_CHECK(x.dim() == 2 || x.dim() == 3, "{}: the input must be {} or unbatched (T, {}), got {}", who,
             spec.batch_first() ? "(N, T, in)" : "(T, N, in)", in, shape_str(x.shape()));
  const int64_t dirs = spec.bidirectional() ? 2 : 1;
  const bool batched = x.dim() == 3, batch_first = batched && spec.batch_first();
  const int64_t steps = batch_first ? x.size(1) : x.size(0);
  const int64_t batch = !batched ? 1 : batch_first ? x.size(0) : x.size(1);
  HEED_CHECK(steps >= 1 && batch >= 1, "{}: the input {} has no time steps or an empty batch", who,
             shape_str(x.shape()));
  Plan plan{kind, op_name(kind, false), steps, batch, in, H, L, dirs, batch_first, spec.bias(), spec.dropout(), {}, {},
            true};
  const int64_t LD = L * dirs;
  plan.output_shape = !batched ? Shape{steps, dirs * H}
                      : batch_first ? Shape{batch, steps, dirs * H}
                                    : Shape{steps, batch, dirs * H};
  plan.state_shape = batched ? Shape{LD, batch, H} : Shape{LD, H};
  check_state(h0, plan.state_shape, x.dtype(), who, "h_0");
  check_state(c0, plan.state_shape, x.dtype(), who, "c_0", kind == RecurrentKind::LSTM);
  std::vector<int64_t> lens;
  if (lengths.defined()) {
    HEED_CHECK(batched, "{}: lengths need a batched input, got {}", who, shape_str(x.shape()));
    HEED_CHECK(lengths.dtype() == DType::Int64 && lengths.dim() == 1 && lengths.size(0) == batch,
               "{}: lengths must be Int64 of shape [{}], got {} of shape {}", who, batch, dtype_name(lengths.dtype()),
               shape_str(lengths.shape()));
    lens = lengths.to_vector<int64_t>();
    for (int64_t v : lens)
      HEED_CHECK(v >= 0 && v <= steps, "{}: every length must be in [0, {}], got {}", who, steps, v);
  }
  return run_fused(plan, x, h0, c0, std::move(lens), weights);
}

RecurrentOpState rnn_cell_fused(const RecurrentOpSpec& spec, const Tensor& x, const Tensor& h, const Tensor& c,
                                const std::vector<Tensor>& weights) {
  using namespace detail::recurrent;
  const RecurrentKind kind = spec.kind();
  const std::string who = spec.name().empty() ? op_name(kind, true) : spec.name();
  HEED_CHECK(spec.num_layers() == 1 && !spec.bidirectional(),
             "{}: a cell step has one layer and one direction, got num_layers {} and bidirectional {}", who,
             spec.num_layers(), spec.bidirectional());
  check_spec_and_weights(spec, weights, who);
  const int64_t in = spec.input_size(), H = spec.hidden_size();
  check_input(x, weights, in, who);
  HEED_CHECK(x.dim() == 1 || x.dim() == 2, "{}: the input must be (N, {}) or ({}), got {}", who, in, in,
             shape_str(x.shape()));
  const int64_t batch = x.dim() == 2 ? x.size(0) : 1;
  HEED_CHECK(batch >= 1, "{}: the batch is empty", who);
  const Shape state_shape = x.dim() == 2 ? Shape{batch, H} : Shape{H};
  check_state(h, state_shape, x.dtype(), who, "h");
  check_state(c, state_shape, x.dtype(), who, "c", kind == RecurrentKind::LSTM);
  const Plan plan{kind, op_name(kind, true), 1, batch, in, H, 1, 1, false, spec.bias(), 0.0, {}, state_shape, false};
  const RecurrentOpOutput out = run_fused(plan, x, h, c, {}, weights);
  return {out.h_n, out.c_n};
}

}  // namespace heed
