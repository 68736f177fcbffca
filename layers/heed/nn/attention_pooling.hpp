// heed/nn/attention_pooling.hpp — attention pooling over time (docs/attention-spec.md M1, the seed's Keras layer).
//
// For a sequence x (N, T, F), e.g. every hidden state of an LSTM:
//   e_t = tanh(x_t W + b)                     W (F, 1); b a scalar, or b_t per time step (T, 1)
//   a   = softmax_t(e)                        over the steps where keep_mask is true
//   context = sum_t a_t x_t                   (N, F)
// forward() returns the context and the weights a (N, T), the attention to draw.
//
// Differences from the seed's layer (and why):
//   - The seed's bias is per time step, b (T, 1), which ties the layer to one sequence length. That form
//     is `AttentionPoolingOptions(F).step_bias(T)`; the default is a single scalar bias, so the layer
//     takes sequences of any length.
//   - An optional keep-mask (N, T), Bool, true at real steps (heed::data::PaddedBatch::mask): masked
//     steps take no part in the softmax, get exactly zero weight and zero gradient; a row with no real
//     step gives zero weights and a zero context (heed's policy, docs/attention-spec.md section 0). The seed has
//     no mask, so padding steps there share the attention.
// Parameters, PyTorch-style names: weight (F, 1) ~ N(0, 0.05^2) (Keras' "normal", as in the seed),
// bias (1) or (T, 1), zeros.
//
//   auto pool = std::make_shared<heed::nn::AttentionPooling>(100);
//   auto [context, weights] = pool->forward(lstm_output, batch.mask);   // (N, 100), (N, T)
#pragma once
#include <cstdint>
#include <string>

#include "heed/nn/module.hpp"
#include "heed/options.hpp"
#include "heed/tensor.hpp"

namespace heed::nn {

/// Settings of AttentionPooling. Setters chain; the same names without arguments read.
struct AttentionPoolingOptions {
  /// F, the feature size of each step.
  explicit AttentionPoolingOptions(int64_t features) : features_(features) {}
  HEED_ARG(int64_t, features);  ///< F
  /// T > 0: one bias per time step (the seed's form; inputs must then have exactly T steps).
  /// 0 (the default): one scalar bias for every step.
  HEED_ARG(int64_t, step_bias) = 0;
  HEED_ARG(bool, bias) = true;  ///< learn the bias b; false: e_t = tanh(x_t W)
};

/// What AttentionPooling::forward returns.
struct AttentionPoolingOutput {
  Tensor context;  ///< (N, F)
  Tensor weights;  ///< (N, T); each row sums to 1, or is all zeros when fully masked
};

/// Attention pooling over time: a learned softmax over the T steps, then their weighted sum (see above).
class AttentionPooling : public Module {
 public:
  explicit AttentionPooling(const AttentionPoolingOptions& options);  ///< throws on F <= 0 or T < 0
  /// One scalar bias.
  explicit AttentionPooling(int64_t features) : AttentionPooling(AttentionPoolingOptions(features)) {}
  void reset() override;  ///< weight ~ N(0, 0.05^2), bias = 0
  /// x (N, T, F); keep_mask Bool (N, T) or undefined (every step is real).
  AttentionPoolingOutput forward(const Tensor& x, const Tensor& keep_mask);
  Tensor forward(const Tensor& x) override;  ///< the context, no mask
  std::string extra_repr() const override;
  const AttentionPoolingOptions& options() const { return options_; }  ///< the settings it was made with

  Tensor weight;  ///< (F, 1)
  Tensor bias;    ///< (1), or (T, 1) with step_bias(T); undefined with bias(false)

 private:
  AttentionPoolingOptions options_;
};

}  // namespace heed::nn
