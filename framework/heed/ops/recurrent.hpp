// heed/ops/recurrent.hpp — the fused RNN / LSTM / GRU op: a whole multi-layer, possibly bidirectional
// recurrent network (or one cell step) as one recorded op with a hand-written backward.
//
// heed::nn::RNN, LSTM, GRU and their cells (heed/nn/recurrent.hpp) own the parameters and call these two
// functions; call them directly to run a recurrence on weights you hold yourself. Equations, gate order
// and weight layouts are PyTorch's (torch.nn.RNN / LSTM / GRU):
//   RNN   h' = act(W_ih x + b_ih + W_hh h + b_hh),                      act = tanh or relu
//   LSTM  i, f, g, o = σ, σ, tanh, σ of (W_ih x + b_ih + W_hh h + b_hh)   (gate rows in that order)
//         c' = f∘c + i∘g,   h' = o∘tanh(c')
//   GRU   r, z = σ(W_i{r,z} x + b_i{r,z} + W_h{r,z} h + b_h{r,z})
//         n = tanh(W_in x + b_in + r∘(W_hn h + b_hn)),   h' = (1 - z)∘n + z∘h
// The kernels (one GEMM for the input projection of all steps, then per step one GEMM and a fused gate
// kernel; backpropagation through time by hand) are in framework/ops/recurrent.cpp and
// framework/ops/recurrent_cells.cpp, each cell's step forward next to its step backward.
//
//   heed::RecurrentOpSpec spec(heed::RecurrentKind::LSTM, 32, 100);
//   spec.num_layers(2).bidirectional(true).batch_first(true);
//   auto [output, h_n, c_n] = heed::rnn_fused(spec, x, Tensor(), Tensor(), weights, lengths);
//
// New settings arrive as further HEED_ARG fields of RecurrentOpSpec, so existing calls keep compiling.
// That is also where per-sequence dropout masks (Keras' dropout / recurrent_dropout: one mask per
// sequence, held for every step, on x before W_ih and on h before W_hh) would go, as tensors per layer and
// direction; the op does not offer them yet.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "heed/options.hpp"
#include "heed/tensor.hpp"

namespace heed {

/// Which recurrence the fused op runs.
enum class RecurrentKind {
  RNNTanh,  ///< Elman RNN with tanh (1 gate)
  RNNReLU,  ///< Elman RNN with relu (1 gate)
  LSTM,     ///< 4 gates (i, f, g, o) and a cell state
  GRU,      ///< 3 gates (r, z, n)
};

/// Gates per step of `kind`: 1 (RNN), 4 (LSTM) or 3 (GRU); weight matrices have gates·H rows.
int64_t recurrent_gate_count(RecurrentKind kind);

/// What heed::rnn_fused and heed::rnn_cell_fused run: the recurrence, its sizes and its layout.
struct RecurrentOpSpec {
  /// The recurrence and its two sizes; every other setting keeps PyTorch's default.
  RecurrentOpSpec(RecurrentKind kind, int64_t input_size, int64_t hidden_size)
      : kind_(kind), input_size_(input_size), hidden_size_(hidden_size) {}
  HEED_ARG(RecurrentKind, kind);  ///< RNN (tanh or relu), LSTM or GRU
  HEED_ARG(int64_t, input_size);  ///< features of each input step (> 0)
  HEED_ARG(int64_t, hidden_size);  ///< H, the size of the hidden (and cell) state (> 0)
  HEED_ARG(int64_t, num_layers) = 1;  ///< stacked layers (>= 1); layer k > 0 reads layer k-1's output
  HEED_ARG(bool, bias) = true;  ///< the weights include bias_ih and bias_hh
  HEED_ARG(bool, batch_first) = false;  ///< x and the output are (N, T, .) instead of (T, N, .)
  HEED_ARG(bool, bidirectional) = false;  ///< add a reverse direction (output features 2 H)
  /// Inverted dropout on every layer's output but the last, in [0, 1), drawn from
  /// heed::default_generator(). The op applies it whenever it is positive: pass 0 in evaluation.
  HEED_ARG(double, dropout) = 0.0;
  /// What error messages start with (a layer passes its type name, "LSTM"); empty = the op's name:
  /// "lstm", "gru", "rnn_tanh" or "rnn_relu", with "_cell" appended for rnn_cell_fused.
  HEED_ARG(std::string, name);
};

/// The results of heed::rnn_fused. The three are views of one buffer written by one recorded op.
struct RecurrentOpOutput {
  /// (T, N, dirs·H), (N, T, dirs·H) with batch_first, or (T, dirs·H) unbatched: the last layer's h at
  /// every step, both directions side by side; 0 at padded steps.
  Tensor output;
  Tensor h_n;  ///< (layers·dirs, N, H), or (layers·dirs, H) unbatched: the state after each last real step
  Tensor c_n;  ///< LSTM's cell state, shaped as h_n; undefined for RNN and GRU
};

/// The results of heed::rnn_cell_fused: the state after one step.
struct RecurrentOpState {
  Tensor h;  ///< h', shaped as the cell's h: (N, H), or (H) for an unbatched input
  Tensor c;  ///< LSTM's c'; undefined for RNN and GRU
};

/// Runs a multi-layer, possibly bidirectional RNN / LSTM / GRU over a sequence as one recorded op.
///
/// - x: (T, N, input_size), (N, T, input_size) with batch_first, or unbatched (T, input_size); Float32 or
///   Float64, the weights' dtype.
/// - h0, c0: initial states (layers·dirs, N, H) ((layers·dirs, H) unbatched), or undefined for zeros;
///   c0 only for LSTM.
/// - weights: per layer, then direction (forward, reverse): weight_ih (G·H, in_l), weight_hh (G·H, H),
///   then with bias bias_ih (G·H) and bias_hh (G·H), where G = recurrent_gate_count(kind) and in_l is
///   input_size for layer 0 and dirs·H above it (PyTorch's flat weights, in its order).
/// - lengths: Int64 (N), each in [0, T], or undefined (every sequence has T steps). Step t of sequence n
///   is padding when t >= lengths[n]: its output is 0 and gets no gradient, the state passes it
///   unchanged, and the reverse direction starts at each sequence's own last real step.
///
/// Gradients reach x, h0, c0 and every weight that requires grad. Throws heed::Error, naming
/// spec.name() and the shapes, on any mismatch.
RecurrentOpOutput rnn_fused(const RecurrentOpSpec& spec, const Tensor& x, const Tensor& h0, const Tensor& c0,
                            const std::vector<Tensor>& weights, const Tensor& lengths = Tensor());

/// One step of a single-layer RNN / LSTM / GRU cell as one recorded op (the T = 1 case of rnn_fused).
///
/// x: (N, input_size) or unbatched (input_size); h, c: (N, H) or (H), or undefined for zeros (c only for
/// LSTM); weights: weight_ih, weight_hh[, bias_ih, bias_hh] as for rnn_fused. spec.num_layers() must be 1
/// and spec.bidirectional() false; batch_first and dropout have no effect on a single step.
RecurrentOpState rnn_cell_fused(const RecurrentOpSpec& spec, const Tensor& x, const Tensor& h, const Tensor& c,
                                const std::vector<Tensor>& weights);

}  // namespace heed
