// framework/ops/recurrent_cells.hpp — one time step of an RNN / LSTM / GRU direction, forward and
// backward (internal, not installed). recurrent_cells.cpp defines the step kernels; recurrent.cpp runs
// them over the sequence, the layers and the directions, and records the op (heed/ops/recurrent.hpp).
//
// Rows. Every (T·N, ·) buffer of a layer keeps time step t of sequence n in row
//   row(t, n) = batch_first ? n·T + t : t·N + n,
// the layout of the input itself, so input, output and dx are never transposed: the rows of one step
// form a BLAS matrix with a row stride of (batch_first ? T : 1) rows. A padded step (t >= lengths[n])
// keeps the state and outputs 0; in backward dh and dc pass it unchanged and its dG rows are 0.
//
// Per-sequence dropout masks (heed/ops/recurrent.hpp) would enter around these kernels, in recurrent.cpp:
// an input mask scales the rows of X before the GI GEMM (and of dX after it), a recurrent mask scales h
// before the GH GEMM (dW_hh then needs the masked h) and the W_hh part of dh_prev.
#pragma once
#include <cstdint>

#include "heed/tensor.hpp"

namespace heed::detail::recurrent {

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

// One forward time step of one direction: this step's inputs, the running state and the cache.
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

// The step kernels, defined (and instantiated for T = float and double) in recurrent_cells.cpp.
template <class T> void lstm_step_forward(const Step<T>& s);
template <class T> void lstm_step_backward(const StepBack<T>& s);
template <class T> void gru_step_forward(const Step<T>& s);
template <class T> void gru_step_backward(const StepBack<T>& s);
template <class T> void rnn_step_forward(const Step<T>& s, bool relu);
template <class T> void rnn_step_backward(const StepBack<T>& s, bool relu);

}  // namespace heed::detail::recurrent
