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
// whole-sequence GEMMs for dW_ih, dW_hh and dx (layers/recurrent.cpp).
//
//   auto lstm = std::make_shared<heed::nn::LSTM>(
//       heed::nn::LSTMOptions(32, 100).num_layers(2).bidirectional(true).batch_first(true).dropout(0.1));
//   auto [output, h_n, c_n] = lstm->forward(x, {}, lengths);   // {} = zero initial state
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "heed/nn/module.hpp"
#include "heed/tensor.hpp"

namespace heed::nn {

/// A chainable option: `name(value)` sets it and returns the options, `name()` reads it.
#define HEED_RNN_ARG(T, name)                                        \
 public:                                                             \
  auto& name(const T& value) {                                       \
    this->name##_ = value;                                           \
    return *this;                                                    \
  }                                                                  \
  const T& name() const noexcept { return this->name##_; }          \
                                                                     \
 private:                                                            \
  T name##_

enum class RNNNonlinearity { Tanh, ReLU };

struct RNNOptions {
  RNNOptions(int64_t input_size, int64_t hidden_size) : input_size_(input_size), hidden_size_(hidden_size) {}
  HEED_RNN_ARG(int64_t, input_size);
  HEED_RNN_ARG(int64_t, hidden_size);
  HEED_RNN_ARG(int64_t, num_layers) = 1;
  HEED_RNN_ARG(RNNNonlinearity, nonlinearity) = RNNNonlinearity::Tanh;
  HEED_RNN_ARG(bool, bias) = true;
  HEED_RNN_ARG(bool, batch_first) = false;
  HEED_RNN_ARG(double, dropout) = 0.0;  ///< between layers, in training mode only
  HEED_RNN_ARG(bool, bidirectional) = false;
};

struct LSTMOptions {
  LSTMOptions(int64_t input_size, int64_t hidden_size) : input_size_(input_size), hidden_size_(hidden_size) {}
  HEED_RNN_ARG(int64_t, input_size);
  HEED_RNN_ARG(int64_t, hidden_size);
  HEED_RNN_ARG(int64_t, num_layers) = 1;
  HEED_RNN_ARG(bool, bias) = true;
  HEED_RNN_ARG(bool, batch_first) = false;
  HEED_RNN_ARG(double, dropout) = 0.0;
  HEED_RNN_ARG(bool, bidirectional) = false;
};

struct GRUOptions {
  GRUOptions(int64_t input_size, int64_t hidden_size) : input_size_(input_size), hidden_size_(hidden_size) {}
  HEED_RNN_ARG(int64_t, input_size);
  HEED_RNN_ARG(int64_t, hidden_size);
  HEED_RNN_ARG(int64_t, num_layers) = 1;
  HEED_RNN_ARG(bool, bias) = true;
  HEED_RNN_ARG(bool, batch_first) = false;
  HEED_RNN_ARG(double, dropout) = 0.0;
  HEED_RNN_ARG(bool, bidirectional) = false;
};

struct RNNCellOptions {
  RNNCellOptions(int64_t input_size, int64_t hidden_size) : input_size_(input_size), hidden_size_(hidden_size) {}
  HEED_RNN_ARG(int64_t, input_size);
  HEED_RNN_ARG(int64_t, hidden_size);
  HEED_RNN_ARG(bool, bias) = true;
  HEED_RNN_ARG(RNNNonlinearity, nonlinearity) = RNNNonlinearity::Tanh;
};

struct LSTMCellOptions {
  LSTMCellOptions(int64_t input_size, int64_t hidden_size) : input_size_(input_size), hidden_size_(hidden_size) {}
  HEED_RNN_ARG(int64_t, input_size);
  HEED_RNN_ARG(int64_t, hidden_size);
  HEED_RNN_ARG(bool, bias) = true;
};

struct GRUCellOptions {
  GRUCellOptions(int64_t input_size, int64_t hidden_size) : input_size_(input_size), hidden_size_(hidden_size) {}
  HEED_RNN_ARG(int64_t, input_size);
  HEED_RNN_ARG(int64_t, hidden_size);
  HEED_RNN_ARG(bool, bias) = true;
};

#undef HEED_RNN_ARG

/// (h, c). An undefined member means zeros.
struct LSTMState {
  Tensor h;
  Tensor c;
};

/// What RNN and GRU return: the output sequence and the final hidden state (layers·dirs, N, H).
struct RNNOutput {
  Tensor output;
  Tensor h_n;
};

/// What LSTM returns; `auto [output, h_n, c_n] = lstm->forward(x, {})`.
struct LSTMOutput {
  Tensor output;
  Tensor h_n;
  Tensor c_n;
};

enum class RecurrentKind { RNNTanh, RNNReLU, LSTM, GRU };

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
  struct Config {
    RecurrentKind kind;
    int64_t input_size, hidden_size, num_layers;
    bool bias, batch_first, bidirectional;
    double dropout;
  };
  RecurrentBase(const char* type_name, const Config& config);
  /// h_0 and c_0 may be undefined (zeros); c_0 and the returned c_n only for LSTM.
  LSTMOutput run(const Tensor& input, const Tensor& h_0, const Tensor& c_0, const Tensor& lengths);

  Config config_;
  std::vector<Tensor> flat_weights_;
};

class RNN : public RecurrentBase {
 public:
  explicit RNN(const RNNOptions& options);
  RNN(int64_t input_size, int64_t hidden_size) : RNN(RNNOptions(input_size, hidden_size)) {}
  /// h_0: (layers·dirs, N, H), or undefined for zeros. lengths: Int64 (N) or undefined (all T).
  RNNOutput forward(const Tensor& input, const Tensor& h_0, const Tensor& lengths = Tensor());
  Tensor forward(const Tensor& input) override;  ///< the output sequence, from a zero state
  const RNNOptions& options() const { return options_; }

 private:
  RNNOptions options_;
};

class LSTM : public RecurrentBase {
 public:
  explicit LSTM(const LSTMOptions& options);
  LSTM(int64_t input_size, int64_t hidden_size) : LSTM(LSTMOptions(input_size, hidden_size)) {}
  /// state: (h_0, c_0), each (layers·dirs, N, H) or undefined for zeros.
  LSTMOutput forward(const Tensor& input, const LSTMState& state, const Tensor& lengths = Tensor());
  Tensor forward(const Tensor& input) override;
  const LSTMOptions& options() const { return options_; }

 private:
  LSTMOptions options_;
};

class GRU : public RecurrentBase {
 public:
  explicit GRU(const GRUOptions& options);
  GRU(int64_t input_size, int64_t hidden_size) : GRU(GRUOptions(input_size, hidden_size)) {}
  RNNOutput forward(const Tensor& input, const Tensor& h_0, const Tensor& lengths = Tensor());
  Tensor forward(const Tensor& input) override;
  const GRUOptions& options() const { return options_; }

 private:
  GRUOptions options_;
};

/// One time step. Input (N, in) or (in); states (N, H) or (H); an undefined state means zeros. Each
/// step is one fused op (two GEMMs and the gate kernel), like one step of the layers above.
class RNNCell : public Module {
 public:
  explicit RNNCell(const RNNCellOptions& options);
  RNNCell(int64_t input_size, int64_t hidden_size) : RNNCell(RNNCellOptions(input_size, hidden_size)) {}
  Tensor forward(const Tensor& input, const Tensor& h);  ///< h'
  Tensor forward(const Tensor& input) override;          ///< h' from h = 0
  void reset_parameters();
  std::string extra_repr() const override;
  const RNNCellOptions& options() const { return options_; }
  Tensor weight_ih, weight_hh, bias_ih, bias_hh;

 private:
  RNNCellOptions options_;
};

class LSTMCell : public Module {
 public:
  explicit LSTMCell(const LSTMCellOptions& options);
  LSTMCell(int64_t input_size, int64_t hidden_size) : LSTMCell(LSTMCellOptions(input_size, hidden_size)) {}
  LSTMState forward(const Tensor& input, const LSTMState& state);  ///< (h', c')
  Tensor forward(const Tensor& input) override;                    ///< h' from (0, 0)
  void reset_parameters();
  std::string extra_repr() const override;
  const LSTMCellOptions& options() const { return options_; }
  Tensor weight_ih, weight_hh, bias_ih, bias_hh;

 private:
  LSTMCellOptions options_;
};

class GRUCell : public Module {
 public:
  explicit GRUCell(const GRUCellOptions& options);
  GRUCell(int64_t input_size, int64_t hidden_size) : GRUCell(GRUCellOptions(input_size, hidden_size)) {}
  Tensor forward(const Tensor& input, const Tensor& h);
  Tensor forward(const Tensor& input) override;
  void reset_parameters();
  std::string extra_repr() const override;
  const GRUCellOptions& options() const { return options_; }
  Tensor weight_ih, weight_hh, bias_ih, bias_hh;

 private:
  GRUCellOptions options_;
};

}  // namespace heed::nn
