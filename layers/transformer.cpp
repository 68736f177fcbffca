// layers/transformer.cpp — Transformer layers, stacks, nn.Transformer, positional encodings, the
// encoder-decoder and decoder-only models and their cached step decoders. Everything is composed from
// recorded heed ops and MultiheadAttention, so the gradients are theirs.
#include "heed/nn/transformer.hpp"

#include <cmath>

#include "heed/autograd.hpp"
#include "heed/init.hpp"
#include "heed/ops.hpp"

namespace heed::nn {
namespace {

const char* py_bool(bool b) { return b ? "True" : "False"; }

std::string shape_or_undefined(const Tensor& t) { return t.defined() ? shape_str(t.shape()) : "undefined"; }

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

void check_input(const char* layer, const char* what, const Tensor& x, int64_t d_model) {
  HEED_CHECK(x.defined() && x.dim() == 3 && x.size(2) == d_model && is_floating(x.dtype()),
             "{}: {} must be a float tensor of shape (N, T, {}) (or (T, N, {}) without batch_first), got {}", layer,
             what, d_model, d_model, shape_or_undefined(x));
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

Tensor to_batch_first(const Tensor& x, bool batch_first) { return batch_first ? x : transpose(x, 0, 1); }

std::shared_ptr<MultiheadAttention> make_mha(const TransformerLayerOptions& o) {
  return std::make_shared<MultiheadAttention>(MultiheadAttentionOptions(o.d_model(), o.nhead()).dropout(o.dropout()));
}

Tensor select_rows(const Tensor& t, const Tensor& rows) { return t.defined() ? index_select(t, 0, rows) : t; }

void select_cache(KVCache& c, const Tensor& rows) {
  c.k = select_rows(c.k, rows);
  c.v = select_rows(c.v, rows);
}

void check_tokens(const char* model, const Tensor& tokens, int64_t vocab) {
  HEED_CHECK(tokens.defined() && tokens.dtype() == DType::Int64 && tokens.dim() == 2,
             "{}: tokens must be Int64 of shape (N, T), got {} of shape {}", model,
             tokens.defined() ? dtype_name(tokens.dtype()) : "undefined", shape_or_undefined(tokens));
  for (int64_t t : tokens.to_vector<int64_t>())
    HEED_CHECK(t >= 0 && t < vocab, "{}: token {} out of range [0, {}) in tokens of shape {}", model, t, vocab,
               shape_str(tokens.shape()));
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

TiedBias::TiedBias(int64_t size) : Module("TiedBias") {
  bias = register_parameter("bias", zeros({size}));
}

void TiedBias::reset() { init::zeros_(bias); }

std::string TiedBias::extra_repr() const { return fmt::format("size={}", bias.size(0)); }

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

// ---- positional encodings ------------------------------------------------------------------------------

PositionalEncoding::PositionalEncoding(int64_t d_model, int64_t max_len)
    : Module("PositionalEncoding"), d_model_(d_model), max_len_(max_len) {
  HEED_CHECK(d_model > 0 && max_len > 0, "PositionalEncoding: d_model {} and max_len {} must be positive", d_model,
             max_len);
  pe_ = make_tensor({max_len, d_model}, DType::Float32);
  float* p = pe_.data<float>();
  for (int64_t pos = 0; pos < max_len; ++pos)
    for (int64_t i = 0; i < d_model; ++i) {
      // PE[pos, 2j] = sin(pos / 10000^(2j/d)), PE[pos, 2j+1] = cos(pos / 10000^(2j/d))
      const double freq = std::pow(10000.0, -static_cast<double>(i - i % 2) / static_cast<double>(d_model));
      const double angle = static_cast<double>(pos) * freq;
      p[pos * d_model + i] = static_cast<float>(i % 2 == 0 ? std::sin(angle) : std::cos(angle));
    }
}

Tensor PositionalEncoding::forward(const Tensor& x, int64_t start) {
  HEED_CHECK(x.defined() && x.dim() == 3 && x.size(2) == d_model_,
             "PositionalEncoding(d_model={}): input has shape {}, expected (N, T, {})", d_model_,
             shape_or_undefined(x), d_model_);
  HEED_CHECK(start >= 0 && start + x.size(1) <= max_len_,
             "PositionalEncoding: positions [{}, {}) exceed max_len {} (input {})", start, start + x.size(1), max_len_,
             shape_str(x.shape()));
  Tensor rows = narrow(pe_, 0, start, x.size(1));
  if (x.dtype() != DType::Float32) rows = rows.to(x.dtype());
  return x + rows;
}

std::string PositionalEncoding::extra_repr() const {
  return fmt::format("d_model={}, max_len={}", d_model_, max_len_);
}

LearnedPositionalEmbedding::LearnedPositionalEmbedding(int64_t max_len, int64_t d_model)
    : Module("LearnedPositionalEmbedding"), max_len_(max_len), d_model_(d_model) {
  HEED_CHECK(d_model > 0 && max_len > 0, "LearnedPositionalEmbedding: max_len {} and d_model {} must be positive",
             max_len, d_model);
  weight = register_parameter("weight", empty({max_len, d_model}));
  reset();
}

void LearnedPositionalEmbedding::reset() { init::normal_(weight, 0.0, 0.02); }

Tensor LearnedPositionalEmbedding::forward(const Tensor& x, int64_t start) {
  HEED_CHECK(x.defined() && x.dim() == 3 && x.size(2) == d_model_,
             "LearnedPositionalEmbedding(d_model={}): input has shape {}, expected (N, T, {})", d_model_,
             shape_or_undefined(x), d_model_);
  HEED_CHECK(start >= 0 && start + x.size(1) <= max_len_,
             "LearnedPositionalEmbedding: positions [{}, {}) exceed max_len {} (input {})", start,
             start + x.size(1), max_len_, shape_str(x.shape()));
  return x + narrow(weight, 0, start, x.size(1));
}

std::string LearnedPositionalEmbedding::extra_repr() const {
  return fmt::format("max_len={}, d_model={}", max_len_, d_model_);
}

namespace {

std::shared_ptr<Module> make_positional(PositionalKind kind, int64_t max_len, int64_t d) {
  if (kind == PositionalKind::Learned) return std::make_shared<LearnedPositionalEmbedding>(max_len, d);
  return std::make_shared<PositionalEncoding>(d, max_len);
}

Tensor add_positions(Module& pos, const Tensor& x, int64_t start) {
  if (auto* s = dynamic_cast<PositionalEncoding*>(&pos)) return s->forward(x, start);
  return static_cast<LearnedPositionalEmbedding&>(pos).forward(x, start);
}

}  // namespace

// ---- Seq2SeqTransformer --------------------------------------------------------------------------------

Seq2SeqTransformer::Seq2SeqTransformer(const Seq2SeqTransformerOptions& o)
    : Module("Seq2SeqTransformer"), options_(o) {
  HEED_CHECK(o.src_vocab() > 0 && o.tgt_vocab() > 0, "Seq2SeqTransformer: vocabularies must be non-empty ({}, {})",
             o.src_vocab(), o.tgt_vocab());
  HEED_CHECK(!o.share_embeddings() || o.src_vocab() == o.tgt_vocab(),
             "Seq2SeqTransformer: share_embeddings needs equal vocabularies, got {} and {}", o.src_vocab(),
             o.tgt_vocab());
  HEED_CHECK(o.pad_id() >= -1 && o.pad_id() < std::min(o.src_vocab(), o.tgt_vocab()),
             "Seq2SeqTransformer: pad_id {} must be -1 (none) or a token of both vocabularies", o.pad_id());
  const int64_t d = o.d_model();
  src_embed = register_module("src_embed", std::make_shared<Embedding>(o.src_vocab(), d, o.pad_id()));
  tgt_embed = o.share_embeddings()
                  ? src_embed
                  : register_module("tgt_embed", std::make_shared<Embedding>(o.tgt_vocab(), d, o.pad_id()));
  src_pos = register_module("src_pos", make_positional(o.positional(), o.max_len(), d));
  tgt_pos = register_module("tgt_pos", make_positional(o.positional(), o.max_len(), d));
  transformer = register_module("transformer", std::make_shared<Transformer>(TransformerOptions(d, o.nhead())
                                                                                  .num_encoder_layers(o.num_encoder_layers())
                                                                                  .num_decoder_layers(o.num_decoder_layers())
                                                                                  .dim_feedforward(o.dim_feedforward())
                                                                                  .dropout(o.dropout())
                                                                                  .activation(o.activation())
                                                                                  .batch_first(true)
                                                                                  .norm_first(o.norm_first())));
  init_embeddings();
  if (o.tie_output())
    tied_generator = register_module("generator", std::make_shared<TiedBias>(o.tgt_vocab()));
  else
    generator = register_module("generator", std::make_shared<Linear>(d, o.tgt_vocab()));
}

void Seq2SeqTransformer::init_embeddings() {
  if (!options_.scale_embedding()) return;  // N(0, 1/d): Emb * sqrt(d) is then N(0, 1), on the scale of the sinusoid
  const double d = static_cast<double>(options_.d_model());
  for (auto* e : {src_embed.get(), tgt_embed.get()}) {
    init::normal_(e->weight, 0.0, 1.0 / std::sqrt(d));
    NoGradGuard no_grad;
    if (e->padding_idx >= 0) heed::select(e->weight.detach(), 0, e->padding_idx).fill_(0.0);
  }
}

void Seq2SeqTransformer::reset() {
  Module::reset();
  init_embeddings();
}

Tensor Seq2SeqTransformer::embed(Embedding& table, Module& pos, const Tensor& tokens, int64_t start) {
  Tensor e = table.forward(tokens);
  if (options_.scale_embedding()) e = e * std::sqrt(static_cast<double>(options_.d_model()));
  return dropout(add_positions(pos, e, start), options_.dropout(), is_training());
}

Tensor Seq2SeqTransformer::embed_target(const Tensor& tokens, int64_t start) {
  check_tokens("Seq2SeqTransformer (target)", tokens, options_.tgt_vocab());
  return embed(*tgt_embed, *tgt_pos, tokens, start);
}

Tensor Seq2SeqTransformer::project(const Tensor& hidden) {
  if (generator) return generator->forward(hidden);
  return linear(hidden, tgt_embed->weight, tied_generator->bias);
}

Tensor Seq2SeqTransformer::encode(const Tensor& src) {
  check_tokens("Seq2SeqTransformer (source)", src, options_.src_vocab());
  AttentionMasks masks;
  if (options_.pad_id() >= 0) masks.key_padding = padding_keep_mask(src, options_.pad_id());
  return transformer->encoder->forward(embed(*src_embed, *src_pos, src, 0), masks).output;
}

Tensor Seq2SeqTransformer::decode(const Tensor& memory, const Tensor& src_keep, const Tensor& tgt_in,
                                  bool need_weights) {
  AttentionMasks tgt_masks, memory_masks;
  tgt_masks.causal = true;
  memory_masks.key_padding = src_keep;
  DecoderOutput out = transformer->decoder->forward(embed_target(tgt_in, 0), memory, tgt_masks, memory_masks, need_weights);
  if (need_weights) {
    last_weights_.decoder_self_weights.clear();
    last_weights_.decoder_cross_weights.clear();
    for (auto& w : out.self_weights) last_weights_.decoder_self_weights.push_back(w.detach());
    for (auto& w : out.cross_weights) last_weights_.decoder_cross_weights.push_back(w.detach());
  }
  return project(out.output);
}

Tensor Seq2SeqTransformer::forward(const Tensor& src, const Tensor& tgt_in, bool need_weights) {
  check_tokens("Seq2SeqTransformer (source)", src, options_.src_vocab());
  check_tokens("Seq2SeqTransformer (target)", tgt_in, options_.tgt_vocab());
  HEED_CHECK(src.size(0) == tgt_in.size(0), "Seq2SeqTransformer: src {} and tgt_in {} have different batch sizes",
             shape_str(src.shape()), shape_str(tgt_in.shape()));
  AttentionMasks src_masks, tgt_masks, memory_masks;
  if (options_.pad_id() >= 0) {
    src_masks.key_padding = padding_keep_mask(src, options_.pad_id());
    tgt_masks.key_padding = padding_keep_mask(tgt_in, options_.pad_id());
  }
  tgt_masks.causal = true;
  memory_masks.key_padding = src_masks.key_padding;
  TransformerOutput out = transformer->forward(embed(*src_embed, *src_pos, src, 0), embed_target(tgt_in, 0), src_masks,
                                               tgt_masks, memory_masks, need_weights);
  if (need_weights) {
    last_weights_ = TransformerOutput{};
    for (auto& w : out.encoder_weights) last_weights_.encoder_weights.push_back(w.detach());
    for (auto& w : out.decoder_self_weights) last_weights_.decoder_self_weights.push_back(w.detach());
    for (auto& w : out.decoder_cross_weights) last_weights_.decoder_cross_weights.push_back(w.detach());
  }
  return project(out.output);
}

namespace {

class Seq2SeqCachedDecoder : public IncrementalDecoder {
 public:
  Seq2SeqCachedDecoder(Seq2SeqTransformer& model, Tensor memory, Tensor src_keep)
      : model_(model), memory_(std::move(memory)) {
    masks_.key_padding = std::move(src_keep);
  }
  Tensor step(const Tensor& tokens) override {
    NoGradGuard no_grad;
    HEED_CHECK(tokens.dim() == 2 && tokens.size(0) == memory_.size(0),
               "Seq2SeqTransformer decoder: tokens {} for {} rows of memory", shape_or_undefined(tokens),
               memory_.size(0));
    Tensor x = model_.embed_target(tokens, position_);
    DecoderOutput out = model_.transformer->decoder->forward_cached(x, memory_, caches_, masks_);
    position_ += tokens.size(1);
    return model_.project(heed::select(out.output, 1, out.output.size(1) - 1)).contiguous();
  }
  void select(const Tensor& rows) override {
    memory_ = index_select(memory_, 0, rows);
    masks_.key_padding = select_rows(masks_.key_padding, rows);
    for (auto& c : caches_) {
      select_cache(c.self_attn, rows);
      select_cache(c.cross_attn, rows);
    }
  }

 private:
  Seq2SeqTransformer& model_;
  Tensor memory_;
  AttentionMasks masks_;
  std::vector<DecoderLayerCache> caches_;
  int64_t position_ = 0;
};

}  // namespace

std::unique_ptr<IncrementalDecoder> Seq2SeqTransformer::incremental_decoder(const Tensor& src) {
  NoGradGuard no_grad;
  Tensor keep = options_.pad_id() >= 0 ? padding_keep_mask(src, options_.pad_id()) : Tensor();
  return std::make_unique<Seq2SeqCachedDecoder>(*this, encode(src), keep);
}

std::unique_ptr<IncrementalDecoder> Seq2SeqTransformer::uncached_decoder(const Tensor& src) {
  NoGradGuard no_grad;
  Tensor keep = options_.pad_id() >= 0 ? padding_keep_mask(src, options_.pad_id()) : Tensor();
  Tensor memory = encode(src);
  return std::make_unique<PrefixDecoder>([this, memory, keep](const Tensor& tokens, const Tensor& rows) {
    NoGradGuard guard;
    return decode(index_select(memory, 0, rows), select_rows(keep, rows), tokens);
  });
}

// ---- TransformerLM -------------------------------------------------------------------------------------

TransformerLM::TransformerLM(const TransformerLMOptions& o) : Module("TransformerLM"), options_(o) {
  HEED_CHECK(o.vocab() > 0, "TransformerLM: vocab must be positive, got {}", o.vocab());
  const int64_t d = o.d_model();
  embed = register_module("embed", std::make_shared<Embedding>(o.vocab(), d));
  pos = register_module("pos", make_positional(o.positional(), o.max_len(), d));
  encoder = register_module("encoder", std::make_shared<TransformerEncoder>(TransformerLayerOptions(d, o.nhead())
                                                                                .dim_feedforward(o.dim_feedforward())
                                                                                .dropout(o.dropout())
                                                                                .activation(o.activation())
                                                                                .batch_first(true)
                                                                                .norm_first(o.norm_first()),
                                                                            o.num_layers(), true));
  init_embedding();
  if (o.tie_weights())
    tied_head = register_module("lm_head", std::make_shared<TiedBias>(o.vocab()));
  else
    lm_head = register_module("lm_head", std::make_shared<Linear>(d, o.vocab()));
}

void TransformerLM::init_embedding() {
  // N(0, 1/d) with sqrt(d) scaling (as Seq2SeqTransformer), else GPT-2's N(0, 0.02^2).
  const double d = static_cast<double>(options_.d_model());
  init::normal_(embed->weight, 0.0, options_.scale_embedding() ? 1.0 / std::sqrt(d) : 0.02);
}

void TransformerLM::reset() {
  Module::reset();
  init_embedding();
}

Tensor TransformerLM::embed_tokens(const Tensor& tokens, int64_t start) {
  check_tokens("TransformerLM", tokens, options_.vocab());
  Tensor e = embed->forward(tokens);
  if (options_.scale_embedding()) e = e * std::sqrt(static_cast<double>(options_.d_model()));
  return dropout(add_positions(*pos, e, start), options_.dropout(), is_training());
}

Tensor TransformerLM::project(const Tensor& hidden) {
  if (lm_head) return lm_head->forward(hidden);
  return linear(hidden, embed->weight, tied_head->bias);
}

Tensor TransformerLM::forward(const Tensor& tokens, const Tensor& key_padding, bool need_weights) {
  AttentionMasks masks;
  masks.key_padding = key_padding;
  masks.causal = true;
  EncoderOutput out = encoder->forward(embed_tokens(tokens, 0), masks, need_weights);
  if (need_weights) {
    last_weights_.clear();
    for (auto& w : out.weights) last_weights_.push_back(w.detach());
  }
  return project(out.output);
}

namespace {

class LMCachedDecoder : public IncrementalDecoder {
 public:
  explicit LMCachedDecoder(TransformerLM& model) : model_(model) {}
  Tensor step(const Tensor& tokens) override {
    NoGradGuard no_grad;
    HEED_CHECK(tokens.dim() == 2 && (caches_.empty() || caches_.front().k.size(0) == tokens.size(0)),
               "TransformerLM decoder: tokens {} do not match the cached batch", shape_or_undefined(tokens));
    EncoderOutput out = model_.encoder->forward_cached(model_.embed_tokens(tokens, position_), caches_);
    position_ += tokens.size(1);
    return model_.project(heed::select(out.output, 1, out.output.size(1) - 1)).contiguous();
  }
  void select(const Tensor& rows) override {
    for (auto& c : caches_) select_cache(c, rows);
  }

 private:
  TransformerLM& model_;
  std::vector<KVCache> caches_;
  int64_t position_ = 0;
};

}  // namespace

std::unique_ptr<IncrementalDecoder> TransformerLM::incremental_decoder() {
  return std::make_unique<LMCachedDecoder>(*this);
}

std::unique_ptr<IncrementalDecoder> TransformerLM::uncached_decoder() {
  return std::make_unique<PrefixDecoder>([this](const Tensor& tokens, const Tensor&) {
    NoGradGuard guard;
    return forward(tokens, Tensor(), false);
  });
}

Tensor TransformerLM::generate(const Tensor& prompt, int64_t n, const SamplingOptions& options) {
  const bool was_training = is_training();
  eval();
  Tensor out;
  try {
    auto decoder = incremental_decoder();
    out = sample(*decoder, prompt, n, options);
  } catch (...) {
    train(was_training);
    throw;
  }
  train(was_training);
  return out;
}

}  // namespace heed::nn
