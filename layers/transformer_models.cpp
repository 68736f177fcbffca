// layers/transformer_models.cpp — Seq2SeqTransformer and TransformerLM (heed/nn/transformer_models.hpp):
// embeddings, positions, the Transformer stacks and the output projection, plus the cached step decoders
// that plug the models into greedy, beam and sampled decoding (heed/nn/decoding.hpp).
#include "heed/nn/transformer_models.hpp"

#include <cmath>

#include "heed/autograd.hpp"
#include "heed/init.hpp"
#include "heed/ops.hpp"
#include "transformer_detail.hpp"

namespace heed::nn {

using detail::shape_or_undefined;

namespace {

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

std::shared_ptr<Module> make_positional(PositionalKind kind, int64_t max_len, int64_t d) {
  if (kind == PositionalKind::Learned) return std::make_shared<LearnedPositionalEmbedding>(max_len, d);
  return std::make_shared<PositionalEncoding>(d, max_len);
}

Tensor add_positions(Module& pos, const Tensor& x, int64_t start) {
  if (auto* s = dynamic_cast<PositionalEncoding*>(&pos)) return s->forward(x, start);
  return static_cast<LearnedPositionalEmbedding&>(pos).forward(x, start);
}

}  // namespace

TiedBias::TiedBias(int64_t size) : Module("TiedBias") {
  bias = register_parameter("bias", zeros({size}));
}

void TiedBias::reset() { init::zeros_(bias); }

std::string TiedBias::extra_repr() const { return fmt::format("size={}", bias.size(0)); }

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
