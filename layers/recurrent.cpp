// layers/recurrent.cpp — RNN, LSTM and GRU (cells and sequence layers) as fused ops.
//
// One recorded op runs a whole multi-layer, possibly bidirectional network ("lstm", "gru", "rnn_tanh",
// "rnn_relu"; a cell step is the same op with T = 1). Its output is one packed buffer
// [output | h_n | c_n]; the tensors handed out are views of it, each recorded as a small entry that
// adds its gradient into the packed buffer's, so the main entry's backward receives all of them at once.
//
// Rows. Every (T·N, ·) buffer of a layer keeps time step t of sequence n in row
//   row(t, n) = batch_first ? n·T + t : t·N + n,
// the layout of the input itself, so input, output and dx are never transposed: the rows of one step
// form a BLAS matrix with a row stride of (batch_first ? T : 1) rows.
//
// Per layer and direction:
//   forward   GI = X W_ih^T + b (one GEMM for all steps); per step GH = h W_hh^T (one GEMM), then the
//             gate kernel (σ and tanh from one SIMD exp pass), saving what backward needs.
//   backward  per step, latest first: the gate kernel's backward gives the step's rows of dGI (and dGH,
//             which differs for GRU), then dh_prev = dGH_t W_hh (one GEMM); after the loop
//             dW_ih = dGI^T X, dW_hh = dGH^T H_prev, dX = dGI W_ih (three GEMMs), db = column sums.
// A padded step (t >= lengths[n]) keeps the state and outputs 0; in backward dh and dc pass it
// unchanged and its dG rows are 0, so it contributes nothing anywhere.
//
// This file includes <cblas.h> and therefore must not include xtensor-blas (docs/toolchain.md, gotcha 3).
#include "heed/nn/recurrent.hpp"

#include <cblas.h>

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstring>
#include <memory>
#include <type_traits>
#include <utility>
#include <vector>

#include "heed/autograd.hpp"
#include "heed/init.hpp"
#include "heed/random.hpp"
#include "ops/common.hpp"
#include "ops/partial_grad.hpp"
#include "ops/vec_exp.hpp"

namespace heed::nn {
namespace {

int64_t gate_count(RecurrentKind kind) {
  return kind == RecurrentKind::LSTM ? 4 : kind == RecurrentKind::GRU ? 3 : 1;
}

template <class T>
constexpr DType dtype_for() {
  return std::is_same_v<T, float> ? DType::Float32 : DType::Float64;
}

int blas_int(int64_t v) {
  HEED_CHECK(v <= INT_MAX, "recurrent: dimension {} is too large for BLAS (32-bit indices)", v);
  return static_cast<int>(v);
}

// C (m x n, row stride ldc) = op(A) op(B) + beta C, row-major.
void gemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, const float* a, int64_t lda, const float* b,
          int64_t ldb, float beta, float* c, int64_t ldc) {
  cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, blas_int(m),
              blas_int(n), blas_int(k), 1.0f, a, blas_int(lda), b, blas_int(ldb), beta, c, blas_int(ldc));
}
void gemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, const double* a, int64_t lda, const double* b,
          int64_t ldb, double beta, double* c, int64_t ldc) {
  cblas_dgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, blas_int(m),
              blas_int(n), blas_int(k), 1.0, a, blas_int(lda), b, blas_int(ldb), beta, c, blas_int(ldc));
}

// σ(v) = 1/(1 + e^-v) and tanh(v) = 2σ(2v) - 1: the kernels write -v (or -2v) for a whole step, run one
// SIMD exp pass over it (detail::exp_inplace), then finish each element from e.
template <class T> inline T sigmoid_from_exp(T e) { return T(1) / (T(1) + e); }
template <class T> inline T tanh_from_exp(T e) { return T(2) / (T(1) + e) - T(1); }

struct Geometry {
  int64_t steps, batch, hidden, gates;  // T, N, H, G
  int64_t time_stride, batch_stride;    // row(t, n) = t·time_stride + n·batch_stride
  const int64_t* lengths;               // N entries in [0, T]
  int64_t rows() const { return steps * batch; }
  int64_t width() const { return gates * hidden; }
  int64_t row(int64_t t, int64_t n) const { return t * time_stride + n * batch_stride; }
  bool active(int64_t t, int64_t n) const { return t < lengths[n]; }
  int64_t time_at(int64_t s, bool reverse) const { return reverse ? steps - 1 - s : s; }
};

// What one layer-direction saves for backward; one row per (t, n), see Geometry::row.
struct DirectionCache {
  Tensor h_prev;  // (R, H) the state the step started from
  Tensor gates;   // (R, G·H) activated gates; for RNN h' itself
  Tensor c_prev;  // LSTM (R, H)
  Tensor tanh_c;  // LSTM (R, H) tanh(c')
  Tensor hh_n;    // GRU (R, H) W_hn h + b_hn
};

template <class T>
struct Weights {
  const T* w_ih;
  const T* w_hh;
  const T* b_ih;  // null without bias
  const T* b_hh;
};

// One time step of one direction: pointers to this step's inputs, the running state and the cache.
template <class T>
struct Step {
  const Geometry& g;
  int64_t t;
  const T* gi;      // (R, G·H) X W_ih^T; a step turns its rows into its gates
  const T* gh;      // (N, G·H) h W_hh^T (+ b_hn for GRU)
  const T* bias;    // (G·H) b_ih + b_hh (GRU: b_hn left out), or zeros
  T* act;           // (N, G·H) scratch
  T* aux;           // (N, H) scratch
  T* h;             // (N, H) running state
  T* c;             // (N, H) LSTM cell
  T* y;             // output rows, row stride y_stride
  int64_t y_stride;
  DirectionCache& cache;
};

// Writes the output row of step t for sequence n: h' when the step is real, else 0.
template <class T>
void write_output(const Step<T>& s, int64_t n, bool on, const T* h) {
  T* y = s.y + s.g.row(s.t, n) * s.y_stride;
  if (on) std::memcpy(y, h, static_cast<std::size_t>(s.g.hidden) * sizeof(T));
  else std::memset(y, 0, static_cast<std::size_t>(s.g.hidden) * sizeof(T));
}

// Row kernels: one sequence's slice of one step. The buffers never overlap; __restrict lets GCC
// vectorize the loops. `a` is the step's scratch row: pre-activations, then activations.

// LSTM step. a = GI_t + h W_hh^T;  i, f, o = σ(a_i, a_f, a_o),  g = tanh(a_g);
//   c' = f∘c + i∘g,  h' = o∘tanh(c').
template <class T>
void lstm_preact_row(int64_t H, const T* __restrict gi, const T* __restrict gh, const T* __restrict b,
                     T* __restrict a) {
  for (int64_t j = 0; j < 4 * H; ++j) a[j] = -(gi[j] + gh[j] + b[j]);
  for (int64_t j = 2 * H; j < 3 * H; ++j) a[j] *= T(2);  // g: tanh(v) = 2σ(2v) - 1
}
template <class T>
void lstm_gates_row(int64_t H, T* __restrict a, const T* __restrict c, T* __restrict e) {
  for (int64_t j = 0; j < 4 * H; ++j) a[j] = sigmoid_from_exp(a[j]);
  for (int64_t j = 2 * H; j < 3 * H; ++j) a[j] = T(2) * a[j] - T(1);
  for (int64_t j = 0; j < H; ++j) e[j] = T(-2) * (a[H + j] * c[j] + a[j] * a[2 * H + j]);  // -2c'
}
template <class T>
void lstm_state_row(int64_t H, const T* __restrict a, const T* __restrict e, T* __restrict c, T* __restrict h,
                    T* __restrict c_prev, T* __restrict tanh_c, bool on) {
  for (int64_t j = 0; j < H; ++j) {
    c_prev[j] = c[j];
    tanh_c[j] = tanh_from_exp(e[j]);
  }
  if (!on) return;
  for (int64_t j = 0; j < H; ++j) {
    c[j] = a[H + j] * c_prev[j] + a[j] * a[2 * H + j];
    h[j] = a[3 * H + j] * tanh_c[j];
  }
}

template <class T>
void lstm_step_forward(const Step<T>& s) {
  const int64_t N = s.g.batch, H = s.g.hidden, GH = 4 * H;
  for (int64_t n = 0; n < N; ++n) lstm_preact_row(H, s.gi + s.g.row(s.t, n) * GH, s.gh + n * GH, s.bias, s.act + n * GH);
  detail::exp_inplace(s.act, N * GH);
  for (int64_t n = 0; n < N; ++n) lstm_gates_row(H, s.act + n * GH, s.c + n * H, s.aux + n * H);
  detail::exp_inplace(s.aux, N * H);
  T* gates = s.cache.gates.template data<T>();
  T* c_prev = s.cache.c_prev.template data<T>();
  T* tanh_c = s.cache.tanh_c.template data<T>();
  for (int64_t n = 0; n < N; ++n) {
    const int64_t r = s.g.row(s.t, n);
    const bool on = s.g.active(s.t, n);
    lstm_state_row(H, s.act + n * GH, s.aux + n * H, s.c + n * H, s.h + n * H, c_prev + r * H, tanh_c + r * H, on);
    std::memcpy(gates + r * GH, s.act + n * GH, static_cast<std::size_t>(GH) * sizeof(T));
    write_output(s, n, on, s.h + n * H);
  }
}

// GRU step. r, z = σ(GI_rz + h W_hrz^T);  q = h W_hn^T + b_hn;  n = tanh(GI_n + r∘q);
//   h' = (1 - z)∘n + z∘h.
template <class T>
void gru_preact_row(int64_t H, const T* __restrict gi, const T* __restrict gh, const T* __restrict b,
                    T* __restrict a) {
  for (int64_t j = 0; j < 2 * H; ++j) a[j] = -(gi[j] + gh[j] + b[j]);
}
template <class T>
void gru_gates_row(int64_t H, T* __restrict a, const T* __restrict gi_n, const T* __restrict b_n,
                   const T* __restrict q, T* __restrict e) {
  for (int64_t j = 0; j < 2 * H; ++j) a[j] = sigmoid_from_exp(a[j]);
  for (int64_t j = 0; j < H; ++j) e[j] = T(-2) * (gi_n[j] + b_n[j] + a[j] * q[j]);
}
template <class T>
void gru_state_row(int64_t H, const T* __restrict a, const T* __restrict e, T* __restrict h, T* __restrict gate,
                   bool on) {
  for (int64_t j = 0; j < 2 * H; ++j) gate[j] = a[j];
  for (int64_t j = 0; j < H; ++j) gate[2 * H + j] = tanh_from_exp(e[j]);
  if (!on) return;
  for (int64_t j = 0; j < H; ++j) h[j] = (T(1) - a[H + j]) * gate[2 * H + j] + a[H + j] * h[j];
}

template <class T>
void gru_step_forward(const Step<T>& s) {
  const int64_t N = s.g.batch, H = s.g.hidden, GH = 3 * H;
  for (int64_t n = 0; n < N; ++n) gru_preact_row(H, s.gi + s.g.row(s.t, n) * GH, s.gh + n * GH, s.bias, s.act + n * 2 * H);
  detail::exp_inplace(s.act, N * 2 * H);
  for (int64_t n = 0; n < N; ++n)
    gru_gates_row(H, s.act + n * 2 * H, s.gi + s.g.row(s.t, n) * GH + 2 * H, s.bias + 2 * H, s.gh + n * GH + 2 * H,
                  s.aux + n * H);
  detail::exp_inplace(s.aux, N * H);
  T* gates = s.cache.gates.template data<T>();
  T* hh_n = s.cache.hh_n.template data<T>();
  for (int64_t n = 0; n < N; ++n) {
    const int64_t r = s.g.row(s.t, n);
    const bool on = s.g.active(s.t, n);
    std::memcpy(hh_n + r * H, s.gh + n * GH + 2 * H, static_cast<std::size_t>(H) * sizeof(T));
    gru_state_row(H, s.act + n * 2 * H, s.aux + n * H, s.h + n * H, gates + r * GH, on);
    write_output(s, n, on, s.h + n * H);
  }
}

// Elman step. h' = tanh(GI_t + h W_hh^T), or relu(.).
template <class T>
void rnn_preact_row(int64_t H, const T* __restrict gi, const T* __restrict gh, const T* __restrict b,
                    T* __restrict a, bool relu) {
  if (relu) {
    for (int64_t j = 0; j < H; ++j) a[j] = std::max(gi[j] + gh[j] + b[j], T(0));
  } else {
    for (int64_t j = 0; j < H; ++j) a[j] = T(-2) * (gi[j] + gh[j] + b[j]);
  }
}

template <class T>
void rnn_step_forward(const Step<T>& s, bool relu) {
  const int64_t N = s.g.batch, H = s.g.hidden;
  for (int64_t n = 0; n < N; ++n) rnn_preact_row(H, s.gi + s.g.row(s.t, n) * H, s.gh + n * H, s.bias, s.act + n * H, relu);
  if (!relu) {
    detail::exp_inplace(s.act, N * H);
    for (int64_t i = 0; i < N * H; ++i) s.act[i] = tanh_from_exp(s.act[i]);
  }
  T* gates = s.cache.gates.template data<T>();
  for (int64_t n = 0; n < N; ++n) {
    const T* a = s.act + n * H;
    T* h = s.h + n * H;
    std::memcpy(gates + s.g.row(s.t, n) * H, a, static_cast<std::size_t>(H) * sizeof(T));
    const bool on = s.g.active(s.t, n);
    if (on) std::memcpy(h, a, static_cast<std::size_t>(H) * sizeof(T));
    write_output(s, n, on, h);
  }
}

// Runs one direction of one layer over the whole sequence. x: (R, in) layer input; h0, c0: (N, H) or
// null for zeros; y: this direction's first output column (row stride y_stride); h_n, c_n: (N, H) out.
template <class T>
void direction_forward(RecurrentKind kind, const Geometry& g, bool reverse, const T* x, int64_t in,
                       const Weights<T>& w, const T* h0, const T* c0, T* y, int64_t y_stride, T* h_n, T* c_n,
                       DirectionCache& cache) {
  const int64_t N = g.batch, H = g.hidden, GH = g.width(), R = g.rows();
  const DType dt = dtype_for<T>();
  const bool gru = kind == RecurrentKind::GRU, lstm = kind == RecurrentKind::LSTM;
  // GI = X W_ih^T for all steps; the kernels add b_ih + b_hh, except b_hn for GRU, which sits inside
  // r∘(.) and goes into GH.
  Tensor gi_buffer = make_tensor({R, GH}, dt);
  T* gi = gi_buffer.data<T>();
  gemm(false, true, R, GH, in, x, in, w.w_ih, in, T(0), gi, GH);
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
    gemm(false, true, N, GH, H, h, H, w.w_hh, H, hn_bias ? T(1) : T(0), gh, GH);
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

// One backward time step: writes the step's rows of dGI / dGH and updates dc; the caller then forms
// dh_prev = dGH_t W_hh. dh enters as the gradient w.r.t. the state after the step (from later steps
// and h_n); gy is the gradient of the output rows.
template <class T>
struct StepBack {
  const Geometry& g;
  int64_t t;
  const DirectionCache& cache;
  const T* gy;
  int64_t y_stride;
  const T* dh;   // (N, H)
  T* dc;         // (N, H) LSTM, updated in place
  T* dgi;        // (R, G·H)
  T* dgh;        // (R, G·H); GRU only (else dgi)
  T* direct;     // (N, H) GRU: dh_t∘z, the part of dh_prev not through W_hh
};

// dh_t = dh + dy_t;  dc_t = dc + dh_t∘o∘(1 - tanh²c');
// da_i = dc_t∘g∘i(1-i),  da_f = dc_t∘c∘f(1-f),  da_g = dc_t∘i∘(1-g²),  da_o = dh_t∘tanh c'∘o(1-o);
// dc <- dc_t∘f.
template <class T>
void lstm_backward_row(int64_t H, const T* __restrict a, const T* __restrict c_prev, const T* __restrict tanh_c,
                       const T* __restrict gy, const T* __restrict dh, T* __restrict dc, T* __restrict da) {
  for (int64_t j = 0; j < H; ++j) {
    const T i = a[j], f = a[H + j], g = a[2 * H + j], o = a[3 * H + j], tc = tanh_c[j];
    const T dht = dh[j] + gy[j];
    const T dct = dc[j] + dht * o * (T(1) - tc * tc);
    da[j] = dct * g * i * (T(1) - i);
    da[H + j] = dct * c_prev[j] * f * (T(1) - f);
    da[2 * H + j] = dct * i * (T(1) - g * g);
    da[3 * H + j] = dht * tc * o * (T(1) - o);
    dc[j] = dct * f;
  }
}

template <class T>
void lstm_step_backward(const StepBack<T>& s) {
  const int64_t H = s.g.hidden, GH = 4 * H;
  const T* gates = s.cache.gates.template data<T>();
  const T* c_prev = s.cache.c_prev.template data<T>();
  const T* tanh_c = s.cache.tanh_c.template data<T>();
  for (int64_t n = 0; n < s.g.batch; ++n) {
    const int64_t r = s.g.row(s.t, n);
    if (s.g.active(s.t, n))
      lstm_backward_row(H, gates + r * GH, c_prev + r * H, tanh_c + r * H, s.gy + r * s.y_stride, s.dh + n * H,
                        s.dc + n * H, s.dgi + r * GH);
    else
      std::memset(s.dgi + r * GH, 0, static_cast<std::size_t>(GH) * sizeof(T));
  }
}

// dh_t = dh + dy_t;  dn = dh_t∘(1-z);  dz = dh_t∘(h - n);  da_n = dn∘(1-n²);  da_r = da_n∘q∘r(1-r);
// da_z = dz∘z(1-z);  dGI = [da_r, da_z, da_n],  dGH = [da_r, da_z, da_n∘r];  direct = dh_t∘z.
template <class T>
void gru_backward_row(int64_t H, const T* __restrict a, const T* __restrict h_prev, const T* __restrict q,
                      const T* __restrict gy, const T* __restrict dh, T* __restrict dai, T* __restrict dah,
                      T* __restrict direct) {
  for (int64_t j = 0; j < H; ++j) {
    const T r = a[j], z = a[H + j], n = a[2 * H + j];
    const T dht = dh[j] + gy[j];
    const T dan = dht * (T(1) - z) * (T(1) - n * n);
    const T dar = dan * q[j] * r * (T(1) - r);
    const T daz = dht * (h_prev[j] - n) * z * (T(1) - z);
    dai[j] = dar;
    dah[j] = dar;
    dai[H + j] = daz;
    dah[H + j] = daz;
    dai[2 * H + j] = dan;
    dah[2 * H + j] = dan * r;
    direct[j] = dht * z;
  }
}

template <class T>
void gru_step_backward(const StepBack<T>& s) {
  const int64_t H = s.g.hidden, GH = 3 * H;
  const T* gates = s.cache.gates.template data<T>();
  const T* h_prev = s.cache.h_prev.template data<T>();
  const T* hh_n = s.cache.hh_n.template data<T>();
  for (int64_t n = 0; n < s.g.batch; ++n) {
    const int64_t r = s.g.row(s.t, n);
    if (s.g.active(s.t, n)) {
      gru_backward_row(H, gates + r * GH, h_prev + r * H, hh_n + r * H, s.gy + r * s.y_stride, s.dh + n * H,
                       s.dgi + r * GH, s.dgh + r * GH, s.direct + n * H);
    } else {
      std::memset(s.dgi + r * GH, 0, static_cast<std::size_t>(GH) * sizeof(T));
      std::memset(s.dgh + r * GH, 0, static_cast<std::size_t>(GH) * sizeof(T));
    }
  }
}

// dh_t = dh + dy_t;  da = dh_t∘(1 - h'²) for tanh, dh_t∘[h' > 0] for relu.
template <class T>
void rnn_backward_row(int64_t H, const T* __restrict h_new, const T* __restrict gy, const T* __restrict dh,
                      T* __restrict da, bool relu) {
  if (relu) {
    for (int64_t j = 0; j < H; ++j) da[j] = h_new[j] > T(0) ? dh[j] + gy[j] : T(0);
  } else {
    for (int64_t j = 0; j < H; ++j) da[j] = (dh[j] + gy[j]) * (T(1) - h_new[j] * h_new[j]);
  }
}

template <class T>
void rnn_step_backward(const StepBack<T>& s, bool relu) {
  const int64_t H = s.g.hidden;
  const T* gates = s.cache.gates.template data<T>();
  for (int64_t n = 0; n < s.g.batch; ++n) {
    const int64_t r = s.g.row(s.t, n);
    if (s.g.active(s.t, n))
      rnn_backward_row(H, gates + r * H, s.gy + r * s.y_stride, s.dh + n * H, s.dgi + r * H, relu);
    else
      std::memset(s.dgi + r * H, 0, static_cast<std::size_t>(H) * sizeof(T));
  }
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
void direction_backward(RecurrentKind kind, const Geometry& g, bool reverse, const T* x, int64_t in,
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
    gemm(false, false, N, H, GH, dgh + g.row(t, 0) * GH, g.batch_stride * GH, w.w_hh, H, T(0), dh_next, H);
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
  if (out.dw_ih) gemm(true, false, GH, in, R, dgi, GH, x, in, T(0), out.dw_ih, in);
  if (out.dw_hh) gemm(true, false, GH, H, R, dgh, GH, cache.h_prev.data<T>(), H, T(0), out.dw_hh, H);
  auto column_sums = [&](const T* m, T* sums) {
    std::memset(sums, 0, static_cast<std::size_t>(GH) * sizeof(T));
    for (int64_t r = 0; r < R; ++r)
      for (int64_t j = 0; j < GH; ++j) sums[j] += m[r * GH + j];
  };
  if (out.db_ih) column_sums(dgi, out.db_ih);
  if (out.db_hh && out.db_ih && dgh == dgi) std::memcpy(out.db_hh, out.db_ih, static_cast<std::size_t>(GH) * sizeof(T));
  else if (out.db_hh) column_sums(dgh, out.db_hh);
  if (out.dx) gemm(false, false, R, in, GH, dgi, GH, w.w_ih, in, out.dx_accumulate ? T(1) : T(0), out.dx, in);
}

// ---- the fused op ----------------------------------------------------------------------------------

struct FusedSpec {
  RecurrentKind kind;
  const char* op;
  int64_t steps, batch, input_size, hidden, layers, dirs;
  bool batch_first, bias;
  double dropout;  // between layers; 0 in evaluation
  Shape output_shape, state_shape;
  bool want_output = true;  // cells only hand out the states
};

// Everything the backward needs, shared by the closure.
struct FusedRun {
  FusedSpec spec;
  std::vector<int64_t> lengths;
  Tensor x, h0, c0;                   // the inputs as given (gradients go to them)
  std::vector<Tensor> weights;        // per layer, direction: w_ih, w_hh[, b_ih, b_hh]
  std::vector<Tensor> weight_values;  // the same, dense and detached
  std::vector<Tensor> layer_inputs;   // X_l, dense (X_0 = the input)
  std::vector<Tensor> masks;          // dropout scale of layer l's output, l < L-1 (undefined: none)
  std::vector<DirectionCache> caches; // l·D + d

  int64_t per_direction() const { return spec.bias ? 4 : 2; }
  Geometry geometry() const {
    const int64_t T = spec.steps, N = spec.batch;
    return Geometry{T, N, spec.hidden, gate_count(spec.kind), spec.batch_first ? 1 : N, spec.batch_first ? T : 1,
                    lengths.data()};
  }
  int64_t layer_input_size(int64_t l) const { return l == 0 ? spec.input_size : spec.dirs * spec.hidden; }
  template <class T>
  Weights<T> values(int64_t index) const {
    const std::size_t b = static_cast<std::size_t>(index * per_direction());
    return Weights<T>{weight_values[b].data<T>(), weight_values[b + 1].data<T>(),
                      spec.bias ? weight_values[b + 2].data<T>() : nullptr,
                      spec.bias ? weight_values[b + 3].data<T>() : nullptr};
  }
};

template <class T>
void fused_forward(FusedRun& run, const Tensor& h0_values, const Tensor& c0_values, Tensor& packed) {
  const FusedSpec& sp = run.spec;
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
      direction_forward<T>(sp.kind, g, d == 1, run.layer_inputs[static_cast<std::size_t>(l)].data<T>(),
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
  const FusedSpec& sp = run.spec;
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
      direction_backward<T>(sp.kind, g, d == 1, run.layer_inputs[static_cast<std::size_t>(l)].data<T>(), in,
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

// A view of `packed` handed out as one of the op's results; its gradient is added into packed's.
Tensor packed_view(const Tensor& packed, const Shape& shape, int64_t offset, bool recording) {
  Tensor view = make_view(packed, shape, contiguous_strides(shape), offset);
  if (!recording) return view;
  record("rnn_state_view", view, {packed}, [packed, offset](const Tensor& gy) {
    const Tensor g = gy.contiguous();
    detail::add_to_grad(packed, g.dtype(), [&](const Tensor& buffer) {
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

// Runs the fused op: x as laid out by spec (any float dtype matching the weights), h0/c0 of
// spec.state_shape or undefined, lengths empty (all T) or N entries.
LSTMOutput run_fused(const FusedSpec& spec, const Tensor& x, const Tensor& h0, const Tensor& c0,
                     std::vector<int64_t> lengths, const std::vector<Tensor>& weights) {
  auto run = std::make_shared<FusedRun>();
  run->spec = spec;
  run->lengths = lengths.empty() ? std::vector<int64_t>(static_cast<std::size_t>(spec.batch), spec.steps)
                                 : std::move(lengths);
  run->x = x;
  run->h0 = h0;
  run->c0 = c0;
  run->weights = weights;
  for (const Tensor& w : weights) run->weight_values.push_back(w.detach().contiguous());
  run->layer_inputs.push_back(x.detach().contiguous());
  const int64_t R = spec.steps * spec.batch, S = spec.layers * spec.dirs * spec.batch * spec.hidden;
  const bool lstm = spec.kind == RecurrentKind::LSTM;
  Tensor packed = make_tensor({R * spec.dirs * spec.hidden + S * (lstm ? 2 : 1)}, x.dtype());
  // Dense copies of h0/c0 are read by the forward only; backward needs just the originals.
  const Tensor h0_values = h0.defined() ? h0.detach().contiguous() : Tensor();
  const Tensor c0_values = c0.defined() ? c0.detach().contiguous() : Tensor();
  HEED_DISPATCH_FLOAT(x.dtype(), spec.op, [&] { fused_forward<scalar_t>(*run, h0_values, c0_values, packed); });
  std::vector<Tensor> inputs{x, h0, c0};
  inputs.insert(inputs.end(), weights.begin(), weights.end());
  bool recording = is_grad_enabled();
  if (recording) {
    recording = false;
    for (const Tensor& t : inputs) recording = recording || (t.defined() && t.requires_grad());
  }
  if (recording) {
    record_many(spec.op, packed, inputs, [run](const Tensor& gp) {
      HEED_DISPATCH_FLOAT(gp.dtype(), run->spec.op, [&] { fused_backward<scalar_t>(*run, gp); });
    });
  }
  LSTMOutput out;
  const int64_t y_numel = R * spec.dirs * spec.hidden;
  if (spec.want_output) out.output = packed_view(packed, spec.output_shape, 0, recording);
  out.h_n = packed_view(packed, spec.state_shape, y_numel, recording);
  if (lstm) out.c_n = packed_view(packed, spec.state_shape, y_numel + S, recording);
  return out;
}

// Checks an initial state: undefined, or of `shape` and the input's dtype.
void check_state(const Tensor& s, const Shape& shape, DType dtype, const std::string& who, const char* name) {
  if (!s.defined()) return;
  HEED_CHECK(s.shape() == shape, "{}: {} must have shape {}, got {}", who, name, shape_str(shape), shape_str(s.shape()));
  HEED_CHECK(s.dtype() == dtype, "{}: {} is {} but the input is {}", who, name, dtype_name(s.dtype()),
             dtype_name(dtype));
}

void check_input(const Tensor& x, const Tensor& weight, int64_t input_size, const std::string& who) {
  HEED_CHECK(x.defined(), "{}: the input is undefined", who);
  HEED_CHECK(is_floating(x.dtype()), "{}: the input must be Float32 or Float64, got {}", who, dtype_name(x.dtype()));
  HEED_CHECK(x.dtype() == weight.dtype(),
             "{}: the input is {} but the parameters are {}; convert one (module.to(...) or x.to(...))", who,
             dtype_name(x.dtype()), dtype_name(weight.dtype()));
  HEED_CHECK(x.dim() >= 1 && x.size(-1) == input_size, "{}: the input {} must have {} features in its last axis",
             who, shape_str(x.shape()), input_size);
}

// Registers weight_ih / weight_hh / bias_ih / bias_hh + suffix on m and returns them in that order.
std::vector<Tensor> register_weights(Module& m, const std::string& suffix, int64_t gates, int64_t hidden,
                                     int64_t input, bool bias) {
  const int64_t GH = gates * hidden;
  std::vector<Tensor> w{m.register_parameter("weight_ih" + suffix, empty({GH, input})),
                        m.register_parameter("weight_hh" + suffix, empty({GH, hidden}))};
  if (bias) {
    w.push_back(m.register_parameter("bias_ih" + suffix, empty({GH})));
    w.push_back(m.register_parameter("bias_hh" + suffix, empty({GH})));
  }
  return w;
}

void init_uniform(std::vector<Tensor> weights, int64_t hidden) {
  const double k = 1.0 / std::sqrt(static_cast<double>(hidden));
  for (Tensor& w : weights) init::uniform_(w, -k, k);
}

// Cell step: the fused op with T = 1 and one layer. Returns (h', c').
LSTMState cell_step(RecurrentKind kind, const char* op, const Tensor& x, const Tensor& h, const Tensor& c,
                    const std::vector<Tensor>& weights, int64_t input_size, int64_t hidden, bool bias,
                    const std::string& who) {
  check_input(x, weights[0], input_size, who);
  HEED_CHECK(x.dim() == 1 || x.dim() == 2, "{}: the input must be (N, {}) or ({}), got {}", who, input_size,
             input_size, shape_str(x.shape()));
  FusedSpec spec{kind, op, 1, x.dim() == 2 ? x.size(0) : 1, input_size, hidden, 1, 1, false, bias, 0.0, {}, {}};
  HEED_CHECK(spec.batch >= 1, "{}: the batch is empty", who);
  spec.state_shape = x.dim() == 2 ? Shape{spec.batch, hidden} : Shape{hidden};
  spec.want_output = false;
  check_state(h, spec.state_shape, x.dtype(), who, "h");
  check_state(c, spec.state_shape, x.dtype(), who, "c");
  LSTMOutput out = run_fused(spec, x, h, c, {}, weights);
  return {out.h_n, out.c_n};
}

}  // namespace

// ---- sequence layers -------------------------------------------------------------------------------

RecurrentBase::RecurrentBase(const char* type_name, const Config& config) : Module(type_name), config_(config) {
  HEED_CHECK(config.input_size > 0 && config.hidden_size > 0, "{}: input_size and hidden_size must be positive, got {} and {}",
             type_name, config.input_size, config.hidden_size);
  HEED_CHECK(config.num_layers >= 1, "{}: num_layers must be at least 1, got {}", type_name, config.num_layers);
  HEED_CHECK(config.dropout >= 0 && config.dropout < 1, "{}: dropout must be in [0, 1), got {}", type_name,
             config.dropout);
  const int64_t dirs = config.bidirectional ? 2 : 1;
  for (int64_t l = 0; l < config.num_layers; ++l) {
    for (int64_t d = 0; d < dirs; ++d) {
      const std::string suffix = fmt::format("_l{}{}", l, d == 1 ? "_reverse" : "");
      const int64_t in = l == 0 ? config.input_size : dirs * config.hidden_size;
      for (Tensor& w : register_weights(*this, suffix, gate_count(config.kind), config.hidden_size, in, config.bias))
        flat_weights_.push_back(w);
    }
  }
  reset_parameters();
}

void RecurrentBase::reset_parameters() { init_uniform(flat_weights_, config_.hidden_size); }

// PyTorch's RNNBase.extra_repr (which leaves out the nonlinearity).
std::string RecurrentBase::extra_repr() const {
  std::string s = fmt::format("{}, {}", config_.input_size, config_.hidden_size);
  if (config_.num_layers != 1) s += fmt::format(", num_layers={}", config_.num_layers);
  if (!config_.bias) s += ", bias=False";
  if (config_.batch_first) s += ", batch_first=True";
  if (config_.dropout != 0) s += fmt::format(", dropout={}", config_.dropout);
  if (config_.bidirectional) s += ", bidirectional=True";
  return s;
}

LSTMOutput RecurrentBase::run(const Tensor& input, const Tensor& h_0, const Tensor& c_0, const Tensor& lengths) {
  const std::string who = type_name();
  check_input(input, flat_weights_[0], config_.input_size, who);
  HEED_CHECK(input.dim() == 2 || input.dim() == 3, "{}: the input must be {} or unbatched (T, {}), got {}", who,
             config_.batch_first ? "(N, T, in)" : "(T, N, in)", config_.input_size, shape_str(input.shape()));
  const RecurrentKind kind = config_.kind;
  const int64_t dirs = config_.bidirectional ? 2 : 1, H = config_.hidden_size;
  const bool batched = input.dim() == 3, batch_first = batched && config_.batch_first;
  const int64_t steps = batch_first ? input.size(1) : input.size(0);
  const int64_t batch = !batched ? 1 : batch_first ? input.size(0) : input.size(1);
  HEED_CHECK(steps >= 1 && batch >= 1, "{}: the input {} has no time steps or an empty batch", who,
             shape_str(input.shape()));
  const char* op = kind == RecurrentKind::LSTM ? "lstm"
                   : kind == RecurrentKind::GRU ? "gru"
                   : kind == RecurrentKind::RNNTanh ? "rnn_tanh"
                                                    : "rnn_relu";
  FusedSpec spec{kind, op, steps, batch, config_.input_size, H, config_.num_layers, dirs, batch_first,
                 config_.bias, is_training() ? config_.dropout : 0.0, {}, {}};
  const int64_t LD = config_.num_layers * dirs;
  spec.output_shape = !batched ? Shape{steps, dirs * H}
                      : batch_first ? Shape{batch, steps, dirs * H}
                                    : Shape{steps, batch, dirs * H};
  spec.state_shape = batched ? Shape{LD, batch, H} : Shape{LD, H};
  check_state(h_0, spec.state_shape, input.dtype(), who, "h_0");
  check_state(c_0, spec.state_shape, input.dtype(), who, "c_0");
  std::vector<int64_t> lens;
  if (lengths.defined()) {
    HEED_CHECK(batched, "{}: lengths need a batched input, got {}", who, shape_str(input.shape()));
    HEED_CHECK(lengths.dtype() == DType::Int64 && lengths.dim() == 1 && lengths.size(0) == batch,
               "{}: lengths must be Int64 of shape [{}], got {} of shape {}", who, batch, dtype_name(lengths.dtype()),
               shape_str(lengths.shape()));
    lens = lengths.to_vector<int64_t>();
    for (int64_t v : lens)
      HEED_CHECK(v >= 0 && v <= steps, "{}: every length must be in [0, {}], got {}", who, steps, v);
  }
  return run_fused(spec, input, h_0, c_0, std::move(lens), flat_weights_);
}

RNN::RNN(const RNNOptions& o)
    : RecurrentBase("RNN", Config{o.nonlinearity() == RNNNonlinearity::ReLU ? RecurrentKind::RNNReLU
                                                                           : RecurrentKind::RNNTanh,
                                  o.input_size(), o.hidden_size(), o.num_layers(), o.bias(), o.batch_first(),
                                  o.bidirectional(), o.dropout()}),
      options_(o) {}

RNNOutput RNN::forward(const Tensor& input, const Tensor& h_0, const Tensor& lengths) {
  LSTMOutput out = run(input, h_0, Tensor(), lengths);
  return {out.output, out.h_n};
}
Tensor RNN::forward(const Tensor& input) { return run(input, Tensor(), Tensor(), Tensor()).output; }

LSTM::LSTM(const LSTMOptions& o)
    : RecurrentBase("LSTM", Config{RecurrentKind::LSTM, o.input_size(), o.hidden_size(), o.num_layers(), o.bias(),
                                   o.batch_first(), o.bidirectional(), o.dropout()}),
      options_(o) {}

LSTMOutput LSTM::forward(const Tensor& input, const LSTMState& state, const Tensor& lengths) {
  return run(input, state.h, state.c, lengths);
}
Tensor LSTM::forward(const Tensor& input) { return run(input, Tensor(), Tensor(), Tensor()).output; }

GRU::GRU(const GRUOptions& o)
    : RecurrentBase("GRU", Config{RecurrentKind::GRU, o.input_size(), o.hidden_size(), o.num_layers(), o.bias(),
                                  o.batch_first(), o.bidirectional(), o.dropout()}),
      options_(o) {}

RNNOutput GRU::forward(const Tensor& input, const Tensor& h_0, const Tensor& lengths) {
  LSTMOutput out = run(input, h_0, Tensor(), lengths);
  return {out.output, out.h_n};
}
Tensor GRU::forward(const Tensor& input) { return run(input, Tensor(), Tensor(), Tensor()).output; }

// ---- cells -----------------------------------------------------------------------------------------

namespace {
std::string cell_repr(int64_t in, int64_t hidden, bool bias, bool relu) {
  return fmt::format("{}, {}{}{}", in, hidden, bias ? "" : ", bias=False", relu ? ", nonlinearity=relu" : "");
}
void check_cell_sizes(const char* who, int64_t in, int64_t hidden) {
  HEED_CHECK(in > 0 && hidden > 0, "{}: input_size and hidden_size must be positive, got {} and {}", who, in, hidden);
}
}  // namespace

RNNCell::RNNCell(const RNNCellOptions& o) : Module("RNNCell"), options_(o) {
  check_cell_sizes("RNNCell", o.input_size(), o.hidden_size());
  auto w = register_weights(*this, "", 1, o.hidden_size(), o.input_size(), o.bias());
  weight_ih = w[0];
  weight_hh = w[1];
  if (o.bias()) {
    bias_ih = w[2];
    bias_hh = w[3];
  }
  reset_parameters();
}
void RNNCell::reset_parameters() { init_uniform(parameters(false), options_.hidden_size()); }
std::string RNNCell::extra_repr() const {
  return cell_repr(options_.input_size(), options_.hidden_size(), options_.bias(),
                   options_.nonlinearity() == RNNNonlinearity::ReLU);
}
Tensor RNNCell::forward(const Tensor& input, const Tensor& h) {
  const bool relu = options_.nonlinearity() == RNNNonlinearity::ReLU;
  return cell_step(relu ? RecurrentKind::RNNReLU : RecurrentKind::RNNTanh, relu ? "rnn_relu_cell" : "rnn_tanh_cell",
                   input, h, Tensor(), parameters(false), options_.input_size(), options_.hidden_size(),
                   options_.bias(), "RNNCell")
      .h;
}
Tensor RNNCell::forward(const Tensor& input) { return forward(input, Tensor()); }

LSTMCell::LSTMCell(const LSTMCellOptions& o) : Module("LSTMCell"), options_(o) {
  check_cell_sizes("LSTMCell", o.input_size(), o.hidden_size());
  auto w = register_weights(*this, "", 4, o.hidden_size(), o.input_size(), o.bias());
  weight_ih = w[0];
  weight_hh = w[1];
  if (o.bias()) {
    bias_ih = w[2];
    bias_hh = w[3];
  }
  reset_parameters();
}
void LSTMCell::reset_parameters() { init_uniform(parameters(false), options_.hidden_size()); }
std::string LSTMCell::extra_repr() const {
  return cell_repr(options_.input_size(), options_.hidden_size(), options_.bias(), false);
}
LSTMState LSTMCell::forward(const Tensor& input, const LSTMState& state) {
  return cell_step(RecurrentKind::LSTM, "lstm_cell", input, state.h, state.c, parameters(false),
                   options_.input_size(), options_.hidden_size(), options_.bias(), "LSTMCell");
}
Tensor LSTMCell::forward(const Tensor& input) { return forward(input, LSTMState{}).h; }

GRUCell::GRUCell(const GRUCellOptions& o) : Module("GRUCell"), options_(o) {
  check_cell_sizes("GRUCell", o.input_size(), o.hidden_size());
  auto w = register_weights(*this, "", 3, o.hidden_size(), o.input_size(), o.bias());
  weight_ih = w[0];
  weight_hh = w[1];
  if (o.bias()) {
    bias_ih = w[2];
    bias_hh = w[3];
  }
  reset_parameters();
}
void GRUCell::reset_parameters() { init_uniform(parameters(false), options_.hidden_size()); }
std::string GRUCell::extra_repr() const {
  return cell_repr(options_.input_size(), options_.hidden_size(), options_.bias(), false);
}
Tensor GRUCell::forward(const Tensor& input, const Tensor& h) {
  return cell_step(RecurrentKind::GRU, "gru_cell", input, h, Tensor(), parameters(false), options_.input_size(),
                   options_.hidden_size(), options_.bias(), "GRUCell")
      .h;
}
Tensor GRUCell::forward(const Tensor& input) { return forward(input, Tensor()); }

}  // namespace heed::nn
