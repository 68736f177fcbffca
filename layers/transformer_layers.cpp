// layers/transformer_layers.cpp — the Transformer encoder and decoder layers (heed/nn/transformer_layers.hpp)
// and the mask helpers. Composed from recorded heed ops and MultiheadAttention, so the gradients are theirs.
#include "heed/nn/transformer_layers.hpp"

#include "heed/autograd.hpp"
#include "heed/ops.hpp"
#include "transformer_detail.hpp"

namespace heed::nn {

using detail::check_input;
using detail::to_batch_first;

namespace {

const char* py_bool(bool b) { return b ? "True" : "False"; }

MhaArgs make_args(const AttentionMasks& masks, bool need_weights) {
  MhaArgs args;
  args.key_padding = masks.key_padding;
  if (masks.attn.defined()) {
    if (masks.attn.dtype() == DType::Bool) {
      args.attn_mask = masks.attn;
    } else {  // additive: -inf entries become a keep-mask, so a fully blocked row gives zeros, not NaN
      KeepMaskAndBias split = keep_mask_from_torch_additive(masks.attn);
      args.attn_mask = split.keep_mask;
      args.attn_bias = split.bias;
    }
  }
  args.causal = masks.causal;
  args.bottom_right = true;  // equal to top-left for L == S; the decoding alignment otherwise
  args.need_weights = need_weights;
  args.average_weights = false;  // (N, H, L, S): every head, for plotting
  return args;
}

void check_layer_options(const char* layer, const TransformerLayerOptions& o) {
  HEED_CHECK(o.d_model() > 0 && o.nhead() > 0 && o.d_model() % o.nhead() == 0,
             "{}: d_model ({}) must be a positive multiple of nhead ({})", layer, o.d_model(), o.nhead());
  HEED_CHECK(o.dim_feedforward() > 0, "{}: dim_feedforward must be positive, got {}", layer, o.dim_feedforward());
  HEED_CHECK(o.dropout() >= 0.0 && o.dropout() < 1.0, "{}: dropout must be in [0, 1), got {}", layer, o.dropout());
}

Tensor activate(const Tensor& x, TransformerActivation a) {
  return a == TransformerActivation::ReLU ? relu(x) : gelu(x);
}

std::shared_ptr<MultiheadAttention> make_mha(const TransformerLayerOptions& o) {
  return std::make_shared<MultiheadAttention>(MultiheadAttentionOptions(o.d_model(), o.nhead()).dropout(o.dropout()));
}

}  // namespace

Tensor from_pytorch_mask(const Tensor& mask) {
  if (!mask.defined()) return mask;
  return mask.dtype() == DType::Bool ? keep_mask_from_torch_blocked(mask) : mask;
}

Tensor padding_keep_mask(const Tensor& tokens, int64_t pad_id) {
  HEED_CHECK(tokens.defined() && tokens.dtype() == DType::Int64,
             "padding_keep_mask: tokens must be Int64, got {}", tokens.defined() ? dtype_name(tokens.dtype()) : "undefined");
  const std::vector<int64_t> ids = tokens.to_vector<int64_t>();
  std::vector<bool> keep(ids.size());
  for (size_t i = 0; i < ids.size(); ++i) keep[i] = ids[i] != pad_id;
  return bool_tensor(keep, tokens.shape());
}

// ---- encoder layer -------------------------------------------------------------------------------------

TransformerEncoderLayer::TransformerEncoderLayer(const TransformerLayerOptions& options)
    : Module("TransformerEncoderLayer"), options_(options) {
  check_layer_options("TransformerEncoderLayer", options);
  const int64_t d = options.d_model(), f = options.dim_feedforward();
  self_attn = register_module("self_attn", make_mha(options));
  linear1 = register_module("linear1", std::make_shared<Linear>(d, f));
  linear2 = register_module("linear2", std::make_shared<Linear>(f, d));
  norm1 = register_module("norm1", std::make_shared<LayerNorm>(Shape{d}, options.layer_norm_eps()));
  norm2 = register_module("norm2", std::make_shared<LayerNorm>(Shape{d}, options.layer_norm_eps()));
}

Tensor TransformerEncoderLayer::feed_forward(const Tensor& x) {
  const double p = options_.dropout();
  const bool train = is_training();
  return dropout(linear2->forward(dropout(activate(linear1->forward(x), options_.activation()), p, train)), p, train);
}

EncoderLayerOutput TransformerEncoderLayer::forward(const Tensor& src, const AttentionMasks& masks, bool need_weights) {
  check_input("TransformerEncoderLayer", "src", src, options_.d_model());
  const MhaArgs args = make_args(masks, need_weights);
  Tensor x = to_batch_first(src, options_.batch_first());
  Tensor weights;
  auto sa = [&](const Tensor& h) {
    AttentionOutput a = self_attn->forward(h, h, h, args);
    weights = a.weights;
    return dropout(a.output, options_.dropout(), is_training());
  };
  if (options_.norm_first()) {
    x = x + sa(norm1->forward(x));
    x = x + feed_forward(norm2->forward(x));
  } else {
    x = norm1->forward(x + sa(x));
    x = norm2->forward(x + feed_forward(x));
  }
  return {to_batch_first(x, options_.batch_first()), weights};
}

EncoderLayerOutput TransformerEncoderLayer::forward_cached(const Tensor& x_new, KVCache& cache,
                                                           const Tensor& key_padding, bool need_weights) {
  check_input("TransformerEncoderLayer::forward_cached", "x_new (batch-first)", x_new, options_.d_model());
  AttentionMasks masks;
  masks.key_padding = key_padding;
  masks.causal = true;
  const MhaArgs args = make_args(masks, need_weights);
  Tensor x = x_new, weights;
  auto sa = [&](const Tensor& h) {
    AttentionOutput a = self_attn->forward_cached(h, h, h, cache, args);
    weights = a.weights;
    return dropout(a.output, options_.dropout(), is_training());
  };
  if (options_.norm_first()) {
    x = x + sa(norm1->forward(x));
    x = x + feed_forward(norm2->forward(x));
  } else {
    x = norm1->forward(x + sa(x));
    x = norm2->forward(x + feed_forward(x));
  }
  return {x, weights};
}

std::string TransformerEncoderLayer::extra_repr() const {
  return fmt::format("d_model={}, nhead={}, dim_feedforward={}, dropout={}, activation={}, norm_first={}",
                     options_.d_model(), options_.nhead(), options_.dim_feedforward(), options_.dropout(),
                     options_.activation() == TransformerActivation::ReLU ? "relu" : "gelu",
                     py_bool(options_.norm_first()));
}

// ---- decoder layer -------------------------------------------------------------------------------------

TransformerDecoderLayer::TransformerDecoderLayer(const TransformerLayerOptions& options)
    : Module("TransformerDecoderLayer"), options_(options) {
  check_layer_options("TransformerDecoderLayer", options);
  const int64_t d = options.d_model(), f = options.dim_feedforward();
  self_attn = register_module("self_attn", make_mha(options));
  multihead_attn = register_module("multihead_attn", make_mha(options));
  linear1 = register_module("linear1", std::make_shared<Linear>(d, f));
  linear2 = register_module("linear2", std::make_shared<Linear>(f, d));
  norm1 = register_module("norm1", std::make_shared<LayerNorm>(Shape{d}, options.layer_norm_eps()));
  norm2 = register_module("norm2", std::make_shared<LayerNorm>(Shape{d}, options.layer_norm_eps()));
  norm3 = register_module("norm3", std::make_shared<LayerNorm>(Shape{d}, options.layer_norm_eps()));
}

Tensor TransformerDecoderLayer::feed_forward(const Tensor& x) {
  const double p = options_.dropout();
  const bool train = is_training();
  return dropout(linear2->forward(dropout(activate(linear1->forward(x), options_.activation()), p, train)), p, train);
}

namespace {

// The three residual blocks of a decoder layer, given the two attention calls.
template <class SelfAttend, class CrossAttend, class FeedForward>
Tensor decoder_blocks(Tensor x, bool norm_first, LayerNorm& n1, LayerNorm& n2, LayerNorm& n3, SelfAttend&& sa,
                      CrossAttend&& ca, FeedForward&& ff) {
  if (norm_first) {
    x = x + sa(n1.forward(x));
    x = x + ca(n2.forward(x));
    x = x + ff(n3.forward(x));
  } else {
    x = n1.forward(x + sa(x));
    x = n2.forward(x + ca(x));
    x = n3.forward(x + ff(x));
  }
  return x;
}

}  // namespace

DecoderLayerOutput TransformerDecoderLayer::forward(const Tensor& tgt, const Tensor& memory,
                                                    const AttentionMasks& tgt_masks,
                                                    const AttentionMasks& memory_masks, bool need_weights) {
  check_input("TransformerDecoderLayer", "tgt", tgt, options_.d_model());
  check_input("TransformerDecoderLayer", "memory", memory, options_.d_model());
  const bool bf = options_.batch_first();
  const Tensor mem = to_batch_first(memory, bf);
  HEED_CHECK(mem.size(0) == to_batch_first(tgt, bf).size(0),
             "TransformerDecoderLayer: tgt {} and memory {} have different batch sizes", shape_str(tgt.shape()),
             shape_str(memory.shape()));
  const MhaArgs self_args = make_args(tgt_masks, need_weights), cross_args = make_args(memory_masks, need_weights);
  DecoderLayerOutput out;
  const double p = options_.dropout();
  auto sa = [&](const Tensor& h) {
    AttentionOutput a = self_attn->forward(h, h, h, self_args);
    out.self_weights = a.weights;
    return dropout(a.output, p, is_training());
  };
  auto ca = [&](const Tensor& h) {
    AttentionOutput a = multihead_attn->forward(h, mem, mem, cross_args);
    out.cross_weights = a.weights;
    return dropout(a.output, p, is_training());
  };
  Tensor x = decoder_blocks(to_batch_first(tgt, bf), options_.norm_first(), *norm1, *norm2, *norm3, sa, ca,
                            [&](const Tensor& h) { return feed_forward(h); });
  out.output = to_batch_first(x, bf);
  return out;
}

DecoderLayerOutput TransformerDecoderLayer::forward_cached(const Tensor& x_new, const Tensor& memory,
                                                           DecoderLayerCache& cache,
                                                           const AttentionMasks& memory_masks,
                                                           const Tensor& tgt_key_padding, bool need_weights) {
  check_input("TransformerDecoderLayer::forward_cached", "x_new (batch-first)", x_new, options_.d_model());
  HEED_CHECK(!memory_masks.causal, "TransformerDecoderLayer::forward_cached: a causal memory mask is not supported");
  AttentionMasks self_masks;
  self_masks.key_padding = tgt_key_padding;
  self_masks.causal = true;
  const MhaArgs self_args = make_args(self_masks, need_weights), cross_args = make_args(memory_masks, need_weights);
  DecoderLayerOutput out;
  const double p = options_.dropout();
  auto sa = [&](const Tensor& h) {
    AttentionOutput a = self_attn->forward_cached(h, h, h, cache.self_attn, self_args);
    out.self_weights = a.weights;
    return dropout(a.output, p, is_training());
  };
  auto ca = [&](const Tensor& h) {
    const bool fill = cache.cross_attn.empty();
    if (fill) check_input("TransformerDecoderLayer::forward_cached", "memory (batch-first)", memory, options_.d_model());
    AttentionOutput a = fill ? multihead_attn->forward_cached(h, memory, memory, cache.cross_attn, cross_args)
                             : multihead_attn->forward_cached(h, Tensor(), Tensor(), cache.cross_attn, cross_args);
    out.cross_weights = a.weights;
    return dropout(a.output, p, is_training());
  };
  out.output = decoder_blocks(x_new, options_.norm_first(), *norm1, *norm2, *norm3, sa, ca,
                              [&](const Tensor& h) { return feed_forward(h); });
  return out;
}

std::string TransformerDecoderLayer::extra_repr() const {
  return fmt::format("d_model={}, nhead={}, dim_feedforward={}, dropout={}, activation={}, norm_first={}",
                     options_.d_model(), options_.nhead(), options_.dim_feedforward(), options_.dropout(),
                     options_.activation() == TransformerActivation::ReLU ? "relu" : "gelu",
                     py_bool(options_.norm_first()));
}

}  // namespace heed::nn
