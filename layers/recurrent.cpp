// layers/recurrent.cpp — RNN, LSTM, GRU and their cells: modules that own PyTorch's parameters and run
// the fused recurrent op (heed::rnn_fused / heed::rnn_cell_fused, heed/ops/recurrent.hpp; the kernels are
// in framework/ops/recurrent.cpp and recurrent_cells.cpp). The op checks the input, the states and the
// lengths, naming the module in its errors.
#include "heed/nn/recurrent.hpp"

#include <cmath>
#include <string>
#include <vector>

#include "heed/error.hpp"
#include "heed/init.hpp"
#include "heed/ops/recurrent.hpp"

namespace heed::nn {
namespace {

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
      for (Tensor& w : register_weights(*this, suffix, recurrent_gate_count(config.kind), config.hidden_size, in, config.bias))
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
  RecurrentOpSpec spec(config_.kind, config_.input_size, config_.hidden_size);
  spec.num_layers(config_.num_layers)
      .bias(config_.bias)
      .batch_first(config_.batch_first)
      .bidirectional(config_.bidirectional)
      .dropout(is_training() ? config_.dropout : 0.0)
      .name(type_name());
  RecurrentOpOutput out = rnn_fused(spec, input, h_0, c_0, flat_weights_, lengths);
  return {out.output, out.h_n, out.c_n};
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

RecurrentCellBase::RecurrentCellBase(const char* type_name, RecurrentKind kind, int64_t input_size,
                                     int64_t hidden_size, bool bias)
    : Module(type_name), spec_(RecurrentOpSpec(kind, input_size, hidden_size).bias(bias).name(type_name)) {
  HEED_CHECK(input_size > 0 && hidden_size > 0, "{}: input_size and hidden_size must be positive, got {} and {}",
             type_name, input_size, hidden_size);
  weights_ = register_weights(*this, "", recurrent_gate_count(kind), hidden_size, input_size, bias);
  weight_ih = weights_[0];
  weight_hh = weights_[1];
  if (bias) {
    bias_ih = weights_[2];
    bias_hh = weights_[3];
  }
  reset_parameters();
}

void RecurrentCellBase::reset_parameters() { init_uniform(parameters(false), spec_.hidden_size()); }

std::string RecurrentCellBase::extra_repr() const {
  return fmt::format("{}, {}{}{}", spec_.input_size(), spec_.hidden_size(), spec_.bias() ? "" : ", bias=False",
                     spec_.kind() == RecurrentKind::RNNReLU ? ", nonlinearity=relu" : "");
}

RecurrentOpState RecurrentCellBase::step(const Tensor& input, const Tensor& h, const Tensor& c) {
  return rnn_cell_fused(spec_, input, h, c, weights_);
}

RNNCell::RNNCell(const RNNCellOptions& o)
    : RecurrentCellBase("RNNCell",
                        o.nonlinearity() == RNNNonlinearity::ReLU ? RecurrentKind::RNNReLU : RecurrentKind::RNNTanh,
                        o.input_size(), o.hidden_size(), o.bias()),
      options_(o) {}
Tensor RNNCell::forward(const Tensor& input, const Tensor& h) { return step(input, h, Tensor()).h; }
Tensor RNNCell::forward(const Tensor& input) { return forward(input, Tensor()); }

LSTMCell::LSTMCell(const LSTMCellOptions& o)
    : RecurrentCellBase("LSTMCell", RecurrentKind::LSTM, o.input_size(), o.hidden_size(), o.bias()), options_(o) {}
LSTMState LSTMCell::forward(const Tensor& input, const LSTMState& state) {
  const RecurrentOpState s = step(input, state.h, state.c);
  return {s.h, s.c};
}
Tensor LSTMCell::forward(const Tensor& input) { return forward(input, LSTMState{}).h; }

GRUCell::GRUCell(const GRUCellOptions& o)
    : RecurrentCellBase("GRUCell", RecurrentKind::GRU, o.input_size(), o.hidden_size(), o.bias()), options_(o) {}
Tensor GRUCell::forward(const Tensor& input, const Tensor& h) { return step(input, h, Tensor()).h; }
Tensor GRUCell::forward(const Tensor& input) { return forward(input, Tensor()); }

}  // namespace heed::nn
