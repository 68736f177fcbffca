// layers/transformer_stacks.cpp — TransformerEncoder, TransformerDecoder and nn.Transformer
// (heed/nn/transformer_stacks.hpp): layers run in order, with the optional final LayerNorm.
#include "heed/nn/transformer_stacks.hpp"

#include "heed/ops.hpp"
#include "transformer_detail.hpp"

namespace heed::nn {

using detail::check_input;
using detail::to_batch_first;

// ---- stacks --------------------------------------------------------------------------------------------

TransformerEncoder::TransformerEncoder(const TransformerLayerOptions& layer, int64_t num_layers, bool final_norm)
    : Module("TransformerEncoder"), batch_first_(layer.batch_first()) {
  HEED_CHECK(num_layers >= 1, "TransformerEncoder: num_layers must be >= 1, got {}", num_layers);
  TransformerLayerOptions inner = layer;
  inner.batch_first(true);  // the stack converts the layout once
  layers = register_module("layers", std::make_shared<ModuleList>());
  for (int64_t i = 0; i < num_layers; ++i)
    layers_.push_back(layers->push_back(std::make_shared<TransformerEncoderLayer>(inner)));
  if (final_norm) norm = register_module("norm", std::make_shared<LayerNorm>(Shape{layer.d_model()}, layer.layer_norm_eps()));
}

EncoderOutput TransformerEncoder::forward(const Tensor& src, const AttentionMasks& masks, bool need_weights) {
  check_input("TransformerEncoder", "src", src, layers_.front()->options().d_model());
  EncoderOutput out;
  Tensor x = to_batch_first(src, batch_first_);
  for (auto& l : layers_) {
    EncoderLayerOutput o = l->forward(x, masks, need_weights);
    x = o.output;
    if (need_weights) out.weights.push_back(o.weights);
  }
  if (norm) x = norm->forward(x);
  out.output = to_batch_first(x, batch_first_);
  return out;
}

EncoderOutput TransformerEncoder::forward_cached(const Tensor& x_new, std::vector<KVCache>& caches,
                                                 const Tensor& key_padding, bool need_weights) {
  if (caches.empty()) caches.resize(layers_.size());
  HEED_CHECK(caches.size() == layers_.size(), "TransformerEncoder::forward_cached: {} caches for {} layers",
             caches.size(), layers_.size());
  EncoderOutput out;
  Tensor x = x_new;
  for (size_t i = 0; i < layers_.size(); ++i) {
    EncoderLayerOutput o = layers_[i]->forward_cached(x, caches[i], key_padding, need_weights);
    x = o.output;
    if (need_weights) out.weights.push_back(o.weights);
  }
  if (norm) x = norm->forward(x);
  out.output = x;
  return out;
}

TransformerDecoder::TransformerDecoder(const TransformerLayerOptions& layer, int64_t num_layers, bool final_norm)
    : Module("TransformerDecoder"), batch_first_(layer.batch_first()) {
  HEED_CHECK(num_layers >= 1, "TransformerDecoder: num_layers must be >= 1, got {}", num_layers);
  TransformerLayerOptions inner = layer;
  inner.batch_first(true);
  layers = register_module("layers", std::make_shared<ModuleList>());
  for (int64_t i = 0; i < num_layers; ++i)
    layers_.push_back(layers->push_back(std::make_shared<TransformerDecoderLayer>(inner)));
  if (final_norm) norm = register_module("norm", std::make_shared<LayerNorm>(Shape{layer.d_model()}, layer.layer_norm_eps()));
}

DecoderOutput TransformerDecoder::forward(const Tensor& tgt, const Tensor& memory, const AttentionMasks& tgt_masks,
                                          const AttentionMasks& memory_masks, bool need_weights) {
  const int64_t d = layers_.front()->options().d_model();
  check_input("TransformerDecoder", "tgt", tgt, d);
  check_input("TransformerDecoder", "memory", memory, d);
  DecoderOutput out;
  Tensor x = to_batch_first(tgt, batch_first_);
  const Tensor mem = to_batch_first(memory, batch_first_);
  for (auto& l : layers_) {
    DecoderLayerOutput o = l->forward(x, mem, tgt_masks, memory_masks, need_weights);
    x = o.output;
    if (need_weights) {
      out.self_weights.push_back(o.self_weights);
      out.cross_weights.push_back(o.cross_weights);
    }
  }
  if (norm) x = norm->forward(x);
  out.output = to_batch_first(x, batch_first_);
  return out;
}

DecoderOutput TransformerDecoder::forward_cached(const Tensor& x_new, const Tensor& memory,
                                                 std::vector<DecoderLayerCache>& caches,
                                                 const AttentionMasks& memory_masks, bool need_weights) {
  if (caches.empty()) caches.resize(layers_.size());
  HEED_CHECK(caches.size() == layers_.size(), "TransformerDecoder::forward_cached: {} caches for {} layers",
             caches.size(), layers_.size());
  DecoderOutput out;
  Tensor x = x_new;
  for (size_t i = 0; i < layers_.size(); ++i) {
    DecoderLayerOutput o = layers_[i]->forward_cached(x, memory, caches[i], memory_masks, Tensor(), need_weights);
    x = o.output;
    if (need_weights) {
      out.self_weights.push_back(o.self_weights);
      out.cross_weights.push_back(o.cross_weights);
    }
  }
  if (norm) x = norm->forward(x);
  out.output = x;
  return out;
}

// ---- nn.Transformer ------------------------------------------------------------------------------------

TransformerLayerOptions TransformerOptions::layer() const {
  return TransformerLayerOptions(d_model_, nhead_)
      .dim_feedforward(dim_feedforward_)
      .dropout(dropout_)
      .activation(activation_)
      .layer_norm_eps(layer_norm_eps_)
      .batch_first(batch_first_)
      .norm_first(norm_first_);
}

Transformer::Transformer(const TransformerOptions& options) : Module("Transformer"), options_(options) {
  encoder = register_module("encoder",
                            std::make_shared<TransformerEncoder>(options.layer(), options.num_encoder_layers(), true));
  decoder = register_module("decoder",
                            std::make_shared<TransformerDecoder>(options.layer(), options.num_decoder_layers(), true));
}

TransformerOutput Transformer::forward(const Tensor& src, const Tensor& tgt, const AttentionMasks& src_masks,
                                       const AttentionMasks& tgt_masks, const AttentionMasks& memory_masks,
                                       bool need_weights) {
  EncoderOutput enc = encoder->forward(src, src_masks, need_weights);
  DecoderOutput dec = decoder->forward(tgt, enc.output, tgt_masks, memory_masks, need_weights);
  return {dec.output, enc.weights, dec.self_weights, dec.cross_weights};
}

}  // namespace heed::nn
