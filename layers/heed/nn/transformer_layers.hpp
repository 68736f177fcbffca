// heed/nn/transformer_layers.hpp — one Transformer encoder or decoder layer (torch.nn.TransformerEncoderLayer
// and TransformerDecoderLayer), the masks they take, and the layer options. Equations, parameter names and
// mask conventions: heed/nn/transformer.hpp.
#pragma once
#include <cstdint>
#include <memory>
#include <string>

#include "heed/nn/attention.hpp"
#include "heed/nn/basic.hpp"
#include "heed/nn/module.hpp"
#include "heed/options.hpp"
#include "heed/tensor.hpp"

namespace heed::nn {

/// The feed-forward block's nonlinearity.
enum class TransformerActivation {
  ReLU,  ///< PyTorch's default
  GELU,  ///< exact GELU (GPT-style models)
};

/// Masks of one attention block, keep convention. Any may be undefined.
struct AttentionMasks {
  Tensor key_padding;  ///< Bool (N, S): true at real keys
  Tensor attn;         ///< Bool keep-mask (L, S) or (N, L, S), or a float additive mask (L, S)
  bool causal = false;  ///< key j may be seen by query i only when j <= i (top-left aligned, L == S)
};

/// A PyTorch mask (bool: true = blocked; float: additive) in heed's form: a bool mask is negated, a
/// float mask is returned unchanged (MultiheadAttention adds it). Undefined stays undefined.
Tensor from_pytorch_mask(const Tensor& mask);
/// Key-padding keep-mask from token ids: true where tokens != pad_id. (N, S) Bool.
Tensor padding_keep_mask(const Tensor& tokens, int64_t pad_id);

/// Settings of one encoder or decoder layer (torch.nn.TransformerEncoderLayer's arguments).
struct TransformerLayerOptions {
  /// The two required sizes; the rest keep PyTorch's defaults except batch_first.
  TransformerLayerOptions(int64_t d_model, int64_t nhead) : d_model_(d_model), nhead_(nhead) {}
  HEED_ARG(int64_t, d_model);  ///< E, the model (embedding) width; divisible by nhead
  HEED_ARG(int64_t, nhead);  ///< H, attention heads
  HEED_ARG(int64_t, dim_feedforward) = 2048;  ///< hidden width of the position-wise feed-forward block
  HEED_ARG(double, dropout) = 0.1;  ///< in the feed-forward block and on each residual branch (training only)
  HEED_ARG(TransformerActivation, activation) = TransformerActivation::ReLU;  ///< of the feed-forward block
  HEED_ARG(double, layer_norm_eps) = 1e-5;  ///< eps of every LayerNorm
  HEED_ARG(bool, batch_first) = true;  ///< PyTorch's default is false; heed's tensors are batch-first
  HEED_ARG(bool, norm_first) = false;  ///< pre-LN: x + f(LN(x)); false: post-LN LN(x + f(x)) (PyTorch's default)
};

/// What TransformerEncoderLayer returns.
struct EncoderLayerOutput {
  Tensor output;   ///< like the input
  Tensor weights;  ///< (N, H, L, S) self-attention weights, when asked for
};

/// Self-attention + feed-forward with residuals and LayerNorms, as torch.nn.TransformerEncoderLayer:
///   post-LN: x = LN1(x + SA(x)); x = LN2(x + FF(x))     pre-LN (norm_first): x = x + SA(LN1(x)); x = x + FF(LN2(x))
class TransformerEncoderLayer : public Module {
 public:
  /// Throws heed::Error when d_model is not divisible by nhead or a size is not positive.
  explicit TransformerEncoderLayer(const TransformerLayerOptions& options);
  /// src (N, S, E) (batch_first) -> same shape; need_weights also returns the (N, H, S, S) weights.
  EncoderLayerOutput forward(const Tensor& src, const AttentionMasks& masks, bool need_weights = false);
  Tensor forward(const Tensor& src) override { return forward(src, AttentionMasks()).output; }
  /// Causal self-attention over the cached positions and the new ones: x_new (N, T_new, E) batch-first.
  /// Appends the new keys/values to `cache`. key_padding (N, S_cached + T_new) or undefined.
  EncoderLayerOutput forward_cached(const Tensor& x_new, KVCache& cache, const Tensor& key_padding = Tensor(),
                                    bool need_weights = false);
  std::string extra_repr() const override;
  const TransformerLayerOptions& options() const { return options_; }  ///< the settings it was made with

  std::shared_ptr<MultiheadAttention> self_attn;  ///< MultiheadAttention(E, H)
  std::shared_ptr<Linear> linear1;  ///< Linear(E, dim_feedforward)
  std::shared_ptr<Linear> linear2;  ///< Linear(dim_feedforward, E)
  std::shared_ptr<LayerNorm> norm1;  ///< around self-attention
  std::shared_ptr<LayerNorm> norm2;  ///< around the feed-forward block

 private:
  Tensor feed_forward(const Tensor& x);
  TransformerLayerOptions options_;
};

/// What TransformerDecoderLayer returns.
struct DecoderLayerOutput {
  Tensor output;         ///< (N, T, E)
  Tensor self_weights;   ///< (N, H, T, T)
  Tensor cross_weights;  ///< (N, H, T, S)
};

/// Keys and values of one decoder layer during incremental decoding.
struct DecoderLayerCache {
  KVCache self_attn;   ///< grows by the new positions at each call
  KVCache cross_attn;  ///< the projected memory, filled on the first call
};

/// Self-attention, cross-attention to the encoder memory and feed-forward, as torch.nn.TransformerDecoderLayer.
class TransformerDecoderLayer : public Module {
 public:
  /// Throws heed::Error when d_model is not divisible by nhead or a size is not positive.
  explicit TransformerDecoderLayer(const TransformerLayerOptions& options);
  /// tgt (N, T, E), memory (N, S, E).
  DecoderLayerOutput forward(const Tensor& tgt, const Tensor& memory, const AttentionMasks& tgt_masks,
                             const AttentionMasks& memory_masks, bool need_weights = false);
  /// x_new (N, T_new, E): causal self-attention over cache + new positions, cross-attention to memory
  /// (projected once into cache.cross_attn). memory_masks.causal must be false.
  DecoderLayerOutput forward_cached(const Tensor& x_new, const Tensor& memory, DecoderLayerCache& cache,
                                    const AttentionMasks& memory_masks, const Tensor& tgt_key_padding = Tensor(),
                                    bool need_weights = false);
  std::string extra_repr() const override;
  const TransformerLayerOptions& options() const { return options_; }  ///< the settings it was made with

  std::shared_ptr<MultiheadAttention> self_attn;       ///< over the target
  std::shared_ptr<MultiheadAttention> multihead_attn;  ///< target queries, memory keys/values
  std::shared_ptr<Linear> linear1;  ///< Linear(E, dim_feedforward)
  std::shared_ptr<Linear> linear2;  ///< Linear(dim_feedforward, E)
  std::shared_ptr<LayerNorm> norm1;  ///< around self-attention
  std::shared_ptr<LayerNorm> norm2;  ///< around cross-attention
  std::shared_ptr<LayerNorm> norm3;  ///< around the feed-forward block

 private:
  Tensor feed_forward(const Tensor& x);
  TransformerLayerOptions options_;
};

}  // namespace heed::nn
