// heed/nn/recurrent.hpp — Elman RNN, LSTM and GRU: single-step cells and multi-layer sequence layers.
//
// Equations, weights and gate order are PyTorch's (torch.nn.RNN / LSTM / GRU), so state dicts move
// between the two unchanged. With x the input and h the previous hidden state:
//   RNN   h' = act(W_ih x + b_ih + W_hh h + b_hh),                    act = tanh or relu
//   LSTM  i, f, g, o = σ, σ, tanh, σ of (W_ih x + b_ih + W_hh h + b_hh)  (gate rows in that order)
//         c' = f∘c + i∘g,   h' = o∘tanh(c')
//   GRU   r, z = σ(W_i{r,z} x + b_i{r,z} + W_h{r,z} h + b_h{r,z})
//         n = tanh(W_in x + b_in + r∘(W_hn h + b_hn)),   h' = (1 - z)∘n + z∘h
// Parameters of layer k: weight_ih_l{k} (G·H, in), weight_hh_l{k} (G·H, H), bias_ih_l{k} (G·H),
// bias_hh_l{k} (G·H), with G = 1, 4, 3 gates; the reverse direction adds the suffix "_reverse".
// Every parameter starts as U(-1/sqrt(H), 1/sqrt(H)).
//
// Sequence layers take input (T, N, in), or (N, T, in) with batch_first, or an unbatched (T, in), and
// return the output sequence (T, N, dirs·H) (batch_first: (N, T, dirs·H)) plus the final states h_n and
// c_n of shape (layers·dirs, N, H) whatever the layout, as PyTorch does. Layer k > 0 reads the output of
// layer k-1 (both directions concatenated), after dropout in training mode.
//
// Variable-length batches: pass `lengths` (Int64, shape (N), each in [0, T]). Step t of sequence n is
// padding when t >= lengths[n]: its output is zero and gets no gradient, and it does not change the
// state, so h_n is the state after each sequence's last real step and the reverse direction starts
// at each sequence's own last real step (as with PyTorch's packed sequences).
//
// Speed: one forward call (every layer and direction, dropout included) is one recorded op. Per layer
// and direction it runs one GEMM for the input projection of all time steps, then per step one GEMM
// h W_hh^T and a fused gate kernel; its backward is hand-written BPTT with one GEMM per step for dh and
// whole-sequence GEMMs for dW_ih, dW_hh and dx. That op is heed::rnn_fused (heed/ops/recurrent.hpp,
// framework/ops/recurrent.cpp); these modules own the parameters and call it.
//
//   auto lstm = std::make_shared<heed::nn::LSTM>(
//       heed::nn::LSTMOptions(32, 100).num_layers(2).bidirectional(true).batch_first(true).dropout(0.1));
//   auto [output, h_n, c_n] = lstm->forward(x, {}, lengths);   // {} = zero initial state
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "heed/nn/module.hpp"
#include "heed/ops/recurrent.hpp"
#include "heed/options.hpp"
#include "heed/tensor.hpp"

namespace heed::nn {


/// The activation of an Elman RNN.
enum class RNNNonlinearity {
  Tanh,  ///< h' = tanh(...) (PyTorch's default)
  ReLU,  ///< h' = max(0, ...)
};

/// Settings of an RNN layer (torch.nn.RNN's arguments).
struct RNNOptions {
  /// The two required sizes; every other option keeps PyTorch's default.
  RNNOptions(int64_t input_size, int64_t hidden_size) : input_size_(input_size), hidden_size_(hidden_size) {}
  HEED_ARG(int64_t, input_size);  ///< features of each input step (> 0)
  HEED_ARG(int64_t, hidden_size);  ///< H, the size of the hidden (and cell) state (> 0)
  HEED_ARG(int64_t, num_layers) = 1;  ///< stacked layers (>= 1)
  HEED_ARG(RNNNonlinearity, nonlinearity) = RNNNonlinearity::Tanh;  ///< act in h' = act(...)
  HEED_ARG(bool, bias) = true;  ///< learn bias_ih and bias_hh
  HEED_ARG(bool, batch_first) = false;  ///< input and output are (N, T, .) instead of (T, N, .)
  HEED_ARG(double, dropout) = 0.0;  ///< between layers, in training mode only
  HEED_ARG(bool, bidirectional) = false;  ///< add a reverse direction (output features 2 H)
};

/// Settings of an LSTM layer (torch.nn.LSTM's arguments).
struct LSTMOptions {
  /// The two required sizes; every other option keeps PyTorch's default.
  LSTMOptions(int64_t input_size, int64_t hidden_size) : input_size_(input_size), hidden_size_(hidden_size) {}
  HEED_ARG(int64_t, input_size);  ///< features of each input step (> 0)
  HEED_ARG(int64_t, hidden_size);  ///< H, the size of the hidden (and cell) state (> 0)
  HEED_ARG(int64_t, num_layers) = 1;  ///< stacked layers (>= 1)
  HEED_ARG(bool, bias) = true;  ///< learn bias_ih and bias_hh
  HEED_ARG(bool, batch_first) = false;  ///< input and output are (N, T, .) instead of (T, N, .)
  HEED_ARG(double, dropout) = 0.0;  ///< between layers, in training mode only; in [0, 1)
  HEED_ARG(bool, bidirectional) = false;  ///< add a reverse direction (output features 2 H)
};

/// Settings of a GRU layer (torch.nn.GRU's arguments).
struct GRUOptions {
  /// The two required sizes; every other option keeps PyTorch's default.
  GRUOptions(int64_t input_size, int64_t hidden_size) : input_size_(input_size), hidden_size_(hidden_size) {}
  HEED_ARG(int64_t, input_size);  ///< features of each input step (> 0)
  HEED_ARG(int64_t, hidden_size);  ///< H, the size of the hidden (and cell) state (> 0)
  HEED_ARG(int64_t, num_layers) = 1;  ///< stacked layers (>= 1)
  HEED_ARG(bool, bias) = true;  ///< learn bias_ih and bias_hh
  HEED_ARG(bool, batch_first) = false;  ///< input and output are (N, T, .) instead of (T, N, .)
  HEED_ARG(double, dropout) = 0.0;  ///< between layers, in training mode only; in [0, 1)
  HEED_ARG(bool, bidirectional) = false;  ///< add a reverse direction (output features 2 H)
};

/// Settings of an RNNCell.
struct RNNCellOptions {
  /// The two required sizes; every other option keeps PyTorch's default.
  RNNCellOptions(int64_t input_size, int64_t hidden_size) : input_size_(input_size), hidden_size_(hidden_size) {}
  HEED_ARG(int64_t, input_size);  ///< features of each input step (> 0)
  HEED_ARG(int64_t, hidden_size);  ///< H, the size of the hidden (and cell) state (> 0)
  HEED_ARG(bool, bias) = true;  ///< learn bias_ih and bias_hh
  HEED_ARG(RNNNonlinearity, nonlinearity) = RNNNonlinearity::Tanh;  ///< act in h' = act(...)
};

/// Settings of an LSTMCell.
struct LSTMCellOptions {
  /// The two required sizes; every other option keeps PyTorch's default.
  LSTMCellOptions(int64_t input_size, int64_t hidden_size) : input_size_(input_size), hidden_size_(hidden_size) {}
  HEED_ARG(int64_t, input_size);  ///< features of each input step (> 0)
  HEED_ARG(int64_t, hidden_size);  ///< H, the size of the hidden (and cell) state (> 0)
  HEED_ARG(bool, bias) = true;  ///< learn bias_ih and bias_hh
};

/// Settings of a GRUCell.
struct GRUCellOptions {
  /// The two required sizes; every other option keeps PyTorch's default.
  GRUCellOptions(int64_t input_size, int64_t hidden_size) : input_size_(input_size), hidden_size_(hidden_size) {}
  HEED_ARG(int64_t, input_size);  ///< features of each input step (> 0)
  HEED_ARG(int64_t, hidden_size);  ///< H, the size of the hidden (and cell) state (> 0)
  HEED_ARG(bool, bias) = true;  ///< learn bias_ih and bias_hh
};


/// (h, c). An undefined member means zeros.
struct LSTMState {
  Tensor h;  ///< hidden state: (layers·dirs, N, H) for LSTM, (N, H) or (H) for LSTMCell
  Tensor c;  ///< cell state, same shape as h
};

/// What RNN and GRU return: the output sequence and the final hidden state (layers·dirs, N, H).
struct RNNOutput {
  Tensor output;  ///< (T, N, dirs·H), (N, T, dirs·H) with batch_first, or (T, dirs·H) unbatched; 0 at padding
  Tensor h_n;     ///< (layers·dirs, N, H) (N dropped when unbatched): the state after each last real step
};

/// What LSTM returns; `auto [output, h_n, c_n] = lstm->forward(x, {})`.
struct LSTMOutput {
  Tensor output;  ///< as RNNOutput::output
  Tensor h_n;     ///< final hidden state (layers·dirs, N, H)
  Tensor c_n;     ///< final cell state (layers·dirs, N, H)
};

/// Which recurrence RecurrentBase runs (heed::RecurrentKind: RNNTanh, RNNReLU, LSTM, GRU).
using RecurrentKind = heed::RecurrentKind;

/// What RNN, LSTM and GRU share: the parameters of every layer and direction and the fused op that runs
/// them. Use the derived classes.
class RecurrentBase : public Module {
 public:
  /// Re-draws every parameter from U(-1/sqrt(H), 1/sqrt(H)).
  void reset_parameters();
  /// Per layer, then direction: weight_ih, weight_hh, bias_ih, bias_hh (biases only with bias=true).
  const std::vector<Tensor>& flat_weights() const { return flat_weights_; }
  std::string extra_repr() const override;

 protected:
  /// The derived layer's options in one form.
  struct Config {
    RecurrentKind kind;  ///< the recurrence
    int64_t input_size;   ///< features per input step
    int64_t hidden_size;  ///< H
    int64_t num_layers;   ///< stacked layers
    bool bias;            ///< with bias_ih/bias_hh
    bool batch_first;     ///< (N, T, .) layout
    bool bidirectional;   ///< two directions
    double dropout;       ///< between layers while training
  };
  /// Registers and initializes every layer's and direction's parameters; throws heed::Error on non-positive
  /// sizes, num_layers < 1 or dropout outside [0, 1).
  RecurrentBase(const char* type_name, const Config& config);
  /// h_0 and c_0 may be undefined (zeros); c_0 and the returned c_n only for LSTM.
  LSTMOutput run(const Tensor& input, const Tensor& h_0, const Tensor& c_0, const Tensor& lengths);

  Config config_;                     ///< the settings
  std::vector<Tensor> flat_weights_;  ///< the registered parameters, in flat_weights() order
};

/// Multi-layer Elman RNN over a sequence (torch.nn.RNN); see the header comment for shapes and lengths.
class RNN : public RecurrentBase {
 public:
  explicit RNN(const RNNOptions& options);  ///< throws heed::Error on invalid options
  /// One tanh layer, one direction, (T, N, in) layout.
  RNN(int64_t input_size, int64_t hidden_size) : RNN(RNNOptions(input_size, hidden_size)) {}
  /// h_0: (layers·dirs, N, H), or undefined for zeros. lengths: Int64 (N) or undefined (all T).
  RNNOutput forward(const Tensor& input, const Tensor& h_0, const Tensor& lengths = Tensor());
  Tensor forward(const Tensor& input) override;  ///< the output sequence, from a zero state
  const RNNOptions& options() const { return options_; }  ///< the settings it was made with

 private:
  RNNOptions options_;
};

/// Multi-layer LSTM over a sequence (torch.nn.LSTM); see the header comment for shapes and lengths.
class LSTM : public RecurrentBase {
 public:
  explicit LSTM(const LSTMOptions& options);  ///< throws heed::Error on invalid options
  /// One layer, one direction, (T, N, in) layout.
  LSTM(int64_t input_size, int64_t hidden_size) : LSTM(LSTMOptions(input_size, hidden_size)) {}
  /// state: (h_0, c_0), each (layers·dirs, N, H) or undefined for zeros.
  LSTMOutput forward(const Tensor& input, const LSTMState& state, const Tensor& lengths = Tensor());
  Tensor forward(const Tensor& input) override;  ///< the output sequence, from a zero state
  const LSTMOptions& options() const { return options_; }  ///< the settings it was made with

 private:
  LSTMOptions options_;
};

/// Multi-layer GRU over a sequence (torch.nn.GRU); see the header comment for shapes and lengths.
class GRU : public RecurrentBase {
 public:
  explicit GRU(const GRUOptions& options);  ///< throws heed::Error on invalid options
  /// One layer, one direction, (T, N, in) layout.
  GRU(int64_t input_size, int64_t hidden_size) : GRU(GRUOptions(input_size, hidden_size)) {}
  /// h_0: (layers·dirs, N, H), or undefined for zeros. lengths: Int64 (N) or undefined (all T).
  RNNOutput forward(const Tensor& input, const Tensor& h_0, const Tensor& lengths = Tensor());
  Tensor forward(const Tensor& input) override;  ///< the output sequence, from a zero state
  const GRUOptions& options() const { return options_; }  ///< the settings it was made with

 private:
  GRUOptions options_;
};

/// What RNNCell, LSTMCell and GRUCell share: the four parameters, their initialization and the step,
/// one heed::rnn_cell_fused op (two GEMMs and the gate kernel, like one step of the layers above). Input
/// (N, in) or (in); states (N, H) or (H); an undefined state means zeros. Use the derived classes.
class RecurrentCellBase : public Module {
 public:
  void reset_parameters();  ///< re-draws every parameter from U(-1/sqrt(H), 1/sqrt(H))
  std::string extra_repr() const override;
  Tensor weight_ih;  ///< (G H, input_size), G = 1, 4, 3 gates for RNN, LSTM, GRU
  Tensor weight_hh;  ///< (G H, H)
  Tensor bias_ih;    ///< (G H), undefined with bias(false)
  Tensor bias_hh;    ///< (G H), undefined with bias(false)

 protected:
  /// Registers weight_ih, weight_hh (and bias_ih, bias_hh with `bias`) and draws them; throws
  /// heed::Error on non-positive sizes.
  RecurrentCellBase(const char* type_name, RecurrentKind kind, int64_t input_size, int64_t hidden_size, bool bias);
  /// One step from (h, c); c only for an LSTM cell.
  RecurrentOpState step(const Tensor& input, const Tensor& h, const Tensor& c);

 private:
  RecurrentOpSpec spec_;
  std::vector<Tensor> weights_;  // the registered parameters, in registration order
};

/// One Elman RNN step (torch.nn.RNNCell): h' = act(W_ih x + b_ih + W_hh h + b_hh).
class RNNCell : public RecurrentCellBase {
 public:
  explicit RNNCell(const RNNCellOptions& options);  ///< throws heed::Error on non-positive sizes
  /// tanh, with bias.
  RNNCell(int64_t input_size, int64_t hidden_size) : RNNCell(RNNCellOptions(input_size, hidden_size)) {}
  Tensor forward(const Tensor& input, const Tensor& h);  ///< h'
  Tensor forward(const Tensor& input) override;          ///< h' from h = 0
  const RNNCellOptions& options() const { return options_; }  ///< the settings it was made with

 private:
  RNNCellOptions options_;
};

/// One LSTM step (torch.nn.LSTMCell); shapes as RecurrentCellBase.
class LSTMCell : public RecurrentCellBase {
 public:
  explicit LSTMCell(const LSTMCellOptions& options);  ///< throws heed::Error on non-positive sizes
  /// With bias.
  LSTMCell(int64_t input_size, int64_t hidden_size) : LSTMCell(LSTMCellOptions(input_size, hidden_size)) {}
  LSTMState forward(const Tensor& input, const LSTMState& state);  ///< (h', c')
  Tensor forward(const Tensor& input) override;                    ///< h' from (0, 0)
  const LSTMCellOptions& options() const { return options_; }  ///< the settings it was made with

 private:
  LSTMCellOptions options_;
};

/// One GRU step (torch.nn.GRUCell); shapes as RecurrentCellBase.
class GRUCell : public RecurrentCellBase {
 public:
  explicit GRUCell(const GRUCellOptions& options);  ///< throws heed::Error on non-positive sizes
  /// With bias.
  GRUCell(int64_t input_size, int64_t hidden_size) : GRUCell(GRUCellOptions(input_size, hidden_size)) {}
  Tensor forward(const Tensor& input, const Tensor& h);  ///< h'
  Tensor forward(const Tensor& input) override;          ///< h' from h = 0
  const GRUCellOptions& options() const { return options_; }  ///< the settings it was made with

 private:
  GRUCellOptions options_;
};

}  // namespace heed::nn
