// heed/nn/transformer_stacks.hpp — stacks of Transformer layers (torch.nn.TransformerEncoder and
// TransformerDecoder) and the encoder-decoder torch.nn.Transformer. See heed/nn/transformer.hpp.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "heed/nn/attention.hpp"
#include "heed/nn/basic.hpp"
#include "heed/nn/module.hpp"
#include "heed/nn/transformer_layers.hpp"
#include "heed/options.hpp"
#include "heed/tensor.hpp"

namespace heed::nn {

/// A numbered list of child modules ("0", "1", ...), like torch.nn.ModuleList.
class ModuleList : public Module {
 public:
  ModuleList() : Module("ModuleList") {}
  /// Registers m under the next number and returns it.
  template <class M>
  std::shared_ptr<M> push_back(std::shared_ptr<M> m) {
    return register_module(std::to_string(named_children().size()), std::move(m));
  }
};

/// What TransformerEncoder returns.
struct EncoderOutput {
  Tensor output;                ///< like the input
  std::vector<Tensor> weights;  ///< per layer (N, H, S, S), when asked for
};

/// A stack of num_layers TransformerEncoderLayers (torch.nn.TransformerEncoder), optionally a final LayerNorm.
class TransformerEncoder : public Module {
 public:
  /// final_norm: a LayerNorm(d_model) after the last layer (nn.TransformerEncoder's `norm`).
  TransformerEncoder(const TransformerLayerOptions& layer, int64_t num_layers, bool final_norm);
  /// src (N, S, E) through every layer with the same masks.
  EncoderOutput forward(const Tensor& src, const AttentionMasks& masks, bool need_weights = false);
  Tensor forward(const Tensor& src) override { return forward(src, AttentionMasks()).output; }
  /// Incremental causal pass (decoder-only models): one cache per layer, resized on first use.
  EncoderOutput forward_cached(const Tensor& x_new, std::vector<KVCache>& caches, const Tensor& key_padding = Tensor(),
                               bool need_weights = false);
  int64_t num_layers() const { return static_cast<int64_t>(layers_.size()); }  ///< stacked layers
  /// Layer i (0-based); throws std::out_of_range past the end.
  std::shared_ptr<TransformerEncoderLayer> layer(int64_t i) const { return layers_.at(static_cast<size_t>(i)); }

  std::shared_ptr<ModuleList> layers;  ///< the layers, named "layers.0", "layers.1", ...
  std::shared_ptr<LayerNorm> norm;  ///< null without final_norm

 private:
  std::vector<std::shared_ptr<TransformerEncoderLayer>> layers_;
  bool batch_first_;
};

/// What TransformerDecoder returns.
struct DecoderOutput {
  Tensor output;                     ///< (N, T, E)
  std::vector<Tensor> self_weights;   ///< per layer (N, H, T, T), when asked for
  std::vector<Tensor> cross_weights;  ///< per layer (N, H, T, S), when asked for
};

/// A stack of num_layers TransformerDecoderLayers (torch.nn.TransformerDecoder), optionally a final LayerNorm.
class TransformerDecoder : public Module {
 public:
  /// final_norm: a LayerNorm(d_model) after the last layer.
  TransformerDecoder(const TransformerLayerOptions& layer, int64_t num_layers, bool final_norm);
  /// tgt (N, T, E), memory (N, S, E); every layer sees the same masks.
  DecoderOutput forward(const Tensor& tgt, const Tensor& memory, const AttentionMasks& tgt_masks,
                        const AttentionMasks& memory_masks, bool need_weights = false);
  /// Incremental pass of x_new (N, T_new, E): one DecoderLayerCache per layer, resized on first use.
  DecoderOutput forward_cached(const Tensor& x_new, const Tensor& memory, std::vector<DecoderLayerCache>& caches,
                               const AttentionMasks& memory_masks, bool need_weights = false);
  int64_t num_layers() const { return static_cast<int64_t>(layers_.size()); }  ///< stacked layers
  /// Layer i (0-based); throws std::out_of_range past the end.
  std::shared_ptr<TransformerDecoderLayer> layer(int64_t i) const { return layers_.at(static_cast<size_t>(i)); }

  std::shared_ptr<ModuleList> layers;  ///< the layers, named "layers.0", "layers.1", ...
  std::shared_ptr<LayerNorm> norm;     ///< null without final_norm

 private:
  std::vector<std::shared_ptr<TransformerDecoderLayer>> layers_;
  bool batch_first_;
};

/// Settings of Transformer (torch.nn.Transformer's arguments and defaults, batch_first aside).
struct TransformerOptions {
  /// The paper's base model by default.
  TransformerOptions(int64_t d_model = 512, int64_t nhead = 8) : d_model_(d_model), nhead_(nhead) {}
  HEED_ARG(int64_t, d_model);  ///< E, the model (embedding) width; divisible by nhead
  HEED_ARG(int64_t, nhead);  ///< H, attention heads
  HEED_ARG(int64_t, num_encoder_layers) = 6;  ///< encoder blocks
  HEED_ARG(int64_t, num_decoder_layers) = 6;  ///< decoder blocks
  HEED_ARG(int64_t, dim_feedforward) = 2048;  ///< hidden width of the position-wise feed-forward block
  HEED_ARG(double, dropout) = 0.1;  ///< in the feed-forward block and on each residual branch (training only)
  HEED_ARG(TransformerActivation, activation) = TransformerActivation::ReLU;  ///< of the feed-forward block
  HEED_ARG(double, layer_norm_eps) = 1e-5;  ///< eps of every LayerNorm
  HEED_ARG(bool, batch_first) = true;  ///< (N, T, E) tensors; false: (T, N, E)
  HEED_ARG(bool, norm_first) = false;  ///< pre-LN: x + f(LN(x)); false: post-LN LN(x + f(x)) (PyTorch's default)

 public:
  TransformerLayerOptions layer() const;  ///< the per-layer options these imply
};

/// What Transformer returns; the weight lists are filled only with need_weights.
struct TransformerOutput {
  Tensor output;  ///< (N, T, E)
  std::vector<Tensor> encoder_weights;        ///< per encoder layer (N, H, S, S)
  std::vector<Tensor> decoder_self_weights;   ///< per decoder layer (N, H, T, T)
  std::vector<Tensor> decoder_cross_weights;  ///< per decoder layer (N, H, T, S)
};

/// torch.nn.Transformer: encoder (with final norm) + decoder (with final norm) on embedded sequences.
class Transformer : public Module {
 public:
  explicit Transformer(const TransformerOptions& options = TransformerOptions());  ///< throws on invalid sizes
  /// src (N, S, E), tgt (N, T, E). src_masks apply to encoder self-attention, tgt_masks to decoder
  /// self-attention (set .causal for the usual target mask), memory_masks to cross-attention (its
  /// key_padding is usually the source padding).
  TransformerOutput forward(const Tensor& src, const Tensor& tgt, const AttentionMasks& src_masks = {},
                            const AttentionMasks& tgt_masks = {}, const AttentionMasks& memory_masks = {},
                            bool need_weights = false);
  const TransformerOptions& options() const { return options_; }  ///< the settings it was made with

  std::shared_ptr<TransformerEncoder> encoder;  ///< num_encoder_layers layers + final LayerNorm
  std::shared_ptr<TransformerDecoder> decoder;  ///< num_decoder_layers layers + final LayerNorm

 private:
  TransformerOptions options_;
};

}  // namespace heed::nn
