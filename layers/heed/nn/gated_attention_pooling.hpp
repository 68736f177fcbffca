// heed/nn/gated_attention_pooling.hpp — gated attention pooling (Ilse, Tomczak and Welling 2018,
// "Attention-based Deep Multiple Instance Learning"): a learned weighted average of a set or sequence of
// feature vectors, e.g. the instances of a bag in multiple-instance learning or the states of an RNN.
//
// For x (N, T, F) (T instances or steps of F features each):
//   a_t     = softmax_t( w^T (tanh(V x_t + b_V) ∘ σ(U x_t + b_U)) + b_w )   over the t where keep_mask is true
//   context = Σ_t a_t x_t                                                    (N, F)
// V, U (L, F) and w (1, L), with L = attention_size (the paper's L = 128 for F = 500). The sigmoid branch
// is the gate: tanh alone is nearly linear for small inputs, and the gate lets the score depend on the
// features non-linearly. gated(false) drops it: a_t = softmax_t(w^T tanh(V x_t + b_V) + b_w), the paper's
// plain attention-based MIL pooling. forward() returns the context and the weights a (N, T).
//
// Parameters: three Linear children named as the paper's reference code names its layers
// (AttentionDeepMIL's GatedAttention): attention_V.{weight (L, F), bias (L)}, attention_U.{weight (L, F),
// bias (L)} (absent with gated(false)), attention_w.{weight (1, L), bias (1)}. The reference code wraps V
// and U in nn.Sequential, so its keys read attention_V.0.weight: drop the ".0" when converting. Every weight
// starts as PyTorch's Linear. The biases are the reference code's; bias(false) gives the paper's equation
// exactly (b_w cancels in the softmax either way: its gradient is 0).
//
// keep_mask: Bool (N, T), true at real instances (heed::data::PaddedBatch::mask for padded bags). Masked
// instances take no part in the softmax and get exactly zero weight and zero gradient; a row with no
// real instance gives zero weights and a zero context (heed's policy, docs/attention-spec.md section 0).
//
//   auto pool = std::make_shared<heed::nn::GatedAttentionPooling>(
//       heed::nn::GatedAttentionPoolingOptions(/*in_features=*/500, /*attention_size=*/128));
//   auto [context, weights] = pool->forward(instances, batch.mask);   // (N, 500), (N, T)
#pragma once
#include <cstdint>
#include <memory>
#include <string>

#include "heed/nn/basic.hpp"
#include "heed/nn/module.hpp"
#include "heed/options.hpp"
#include "heed/tensor.hpp"

namespace heed::nn {

/// Settings of GatedAttentionPooling. Setters chain; the same names without arguments read.
struct GatedAttentionPoolingOptions {
  /// F, the features of each instance, and L, the width of the attention's hidden layer.
  GatedAttentionPoolingOptions(int64_t in_features, int64_t attention_size)
      : in_features_(in_features), attention_size_(attention_size) {}
  HEED_ARG(int64_t, in_features);     ///< F (> 0)
  HEED_ARG(int64_t, attention_size);  ///< L (> 0)
  HEED_ARG(bool, gated) = true;       ///< multiply by the sigmoid gate σ(U x + b_U)
  HEED_ARG(bool, bias) = true;        ///< learn b_V, b_U and b_w
};

/// What GatedAttentionPooling::forward returns.
struct GatedAttentionPoolingOutput {
  Tensor context;  ///< (N, F)
  Tensor weights;  ///< (N, T); each row sums to 1, or is all zeros when fully masked
};

/// Gated attention pooling over the T instances of each example (see the top of this file).
class GatedAttentionPooling : public Module {
 public:
  /// Throws unless in_features and attention_size are positive.
  explicit GatedAttentionPooling(const GatedAttentionPoolingOptions& options);
  /// x (N, T, F); keep_mask Bool (N, T) or undefined (every instance is real).
  GatedAttentionPoolingOutput forward(const Tensor& x, const Tensor& keep_mask);
  Tensor forward(const Tensor& x) override;  ///< the context, no mask
  std::string extra_repr() const override;
  const GatedAttentionPoolingOptions& options() const { return options_; }  ///< the settings it was made with

  std::shared_ptr<Linear> attention_V;  ///< V x + b_V, (F -> L)
  std::shared_ptr<Linear> attention_U;  ///< U x + b_U, (F -> L); null with gated(false)
  std::shared_ptr<Linear> attention_w;  ///< w^T h + b_w, (L -> 1)

 private:
  GatedAttentionPoolingOptions options_;
};

}  // namespace heed::nn
