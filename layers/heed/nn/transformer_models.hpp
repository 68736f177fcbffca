// heed/nn/transformer_models.hpp — the two full models built from the Transformer stacks: the
// encoder-decoder Seq2SeqTransformer and the decoder-only TransformerLM, with their step decoders for
// greedy, beam and sampled decoding (heed/nn/decoding.hpp). Embedding init and scaling:
// heed/nn/transformer.hpp.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "heed/nn/basic.hpp"
#include "heed/nn/decoding.hpp"
#include "heed/nn/module.hpp"
#include "heed/nn/positional.hpp"
#include "heed/nn/transformer_layers.hpp"
#include "heed/nn/transformer_stacks.hpp"
#include "heed/options.hpp"
#include "heed/tensor.hpp"

namespace heed::nn {

/// The output bias alone, for an output projection tied to an embedding ("generator.bias", "lm_head.bias").
class TiedBias : public Module {
 public:
  explicit TiedBias(int64_t size);  ///< a zero bias of `size`
  void reset() override;  ///< bias = 0
  std::string extra_repr() const override;
  Tensor bias;  ///< (size), starts at 0
};

// ---- the encoder-decoder model -------------------------------------------------------------------------

/// Settings of Seq2SeqTransformer.
struct Seq2SeqTransformerOptions {
  /// The two vocabulary sizes; the rest default to the paper's base model.
  Seq2SeqTransformerOptions(int64_t src_vocab, int64_t tgt_vocab) : src_vocab_(src_vocab), tgt_vocab_(tgt_vocab) {}
  HEED_ARG(int64_t, src_vocab);  ///< source token ids are 0..src_vocab-1
  HEED_ARG(int64_t, tgt_vocab);  ///< target token ids are 0..tgt_vocab-1 (the logits' last axis)
  HEED_ARG(int64_t, d_model) = 512;  ///< E, the model (embedding) width; divisible by nhead
  HEED_ARG(int64_t, nhead) = 8;  ///< H, attention heads
  HEED_ARG(int64_t, num_encoder_layers) = 6;  ///< encoder blocks
  HEED_ARG(int64_t, num_decoder_layers) = 6;  ///< decoder blocks
  HEED_ARG(int64_t, dim_feedforward) = 2048;  ///< hidden width of the position-wise feed-forward block
  HEED_ARG(double, dropout) = 0.1;  ///< in the feed-forward block and on each residual branch (training only)
  HEED_ARG(TransformerActivation, activation) = TransformerActivation::ReLU;  ///< of the feed-forward block
  HEED_ARG(bool, norm_first) = false;  ///< pre-LN: x + f(LN(x)); false: post-LN LN(x + f(x)) (PyTorch's default)
  HEED_ARG(int64_t, max_len) = 512;  ///< longest position the positional encoding covers
  HEED_ARG(int64_t, pad_id) = 0;  ///< source and target padding token (keep-masks come from it)
  HEED_ARG(PositionalKind, positional) = PositionalKind::Sinusoidal;  ///< sinusoidal table or learned positions
  HEED_ARG(bool, scale_embedding) = true;     ///< Emb * sqrt(d_model)
  HEED_ARG(bool, tie_output) = false;         ///< generator weight = target embedding weight
  HEED_ARG(bool, share_embeddings) = false;   ///< one table for source and target (needs equal vocabs)
};

/// Embeddings + positional encoding + nn.Transformer + generator Linear(d, tgt_vocab).
/// Parameter names: src_embed.weight, tgt_embed.weight (absent with share_embeddings), [src_pos.weight,
/// tgt_pos.weight with learned positions], transformer.*, generator.weight (absent with tie_output),
/// generator.bias.
class Seq2SeqTransformer : public Module {
 public:
  explicit Seq2SeqTransformer(const Seq2SeqTransformerOptions& options);  ///< throws on invalid options
  /// Every sub-module's init, then the embedding tables' N(0, 1/d) when scale_embedding (see the top).
  void reset() override;
  /// src (N, S), tgt_in (N, T) Int64 -> logits (N, T, tgt_vocab). Padding masks come from pad_id; the
  /// decoder's self-attention is causal. With need_weights, attention_weights() holds the weights.
  Tensor forward(const Tensor& src, const Tensor& tgt_in, bool need_weights = false);
  Tensor encode(const Tensor& src);                  ///< memory (N, S, d)
  /// Logits (N, T, V) of tgt_in given the memory (a full, uncached decoder pass).
  Tensor decode(const Tensor& memory, const Tensor& src_keep, const Tensor& tgt_in, bool need_weights = false);
  /// A cached step decoder over `memory` for greedy / beam / sampling (heed/nn/decoding.hpp).
  std::unique_ptr<IncrementalDecoder> incremental_decoder(const Tensor& src);
  /// The same, re-running the full decoder on the whole prefix at every step (reference, slower).
  std::unique_ptr<IncrementalDecoder> uncached_decoder(const Tensor& src);
  /// Weights of the last forward/decode with need_weights: per layer (N, H, L, S), detached.
  const TransformerOutput& attention_weights() const { return last_weights_; }
  const Seq2SeqTransformerOptions& options() const { return options_; }  ///< the settings it was made with

  std::shared_ptr<Embedding> src_embed;  ///< (src_vocab, d_model); also the target's with share_embeddings
  std::shared_ptr<Embedding> tgt_embed;  ///< (tgt_vocab, d_model); null with share_embeddings
  std::shared_ptr<Module> src_pos;       ///< PositionalEncoding or LearnedPositionalEmbedding
  std::shared_ptr<Module> tgt_pos;       ///< the same kind, for the target
  std::shared_ptr<Transformer> transformer;  ///< the encoder-decoder
  std::shared_ptr<Linear> generator;  ///< null with tie_output: the logits use tgt_embed.weight
  std::shared_ptr<TiedBias> tied_generator;  ///< with tie_output: the bias, named generator.bias

  /// Internal pieces used by the step decoders.
  /// Target ids (N, T) at positions start.. -> scaled embeddings + positions (N, T, d).
  Tensor embed_target(const Tensor& tokens, int64_t start);
  Tensor project(const Tensor& hidden);  ///< decoder states (N, T, d) -> logits (N, T, tgt_vocab)

 private:
  Tensor embed(Embedding& table, Module& pos, const Tensor& tokens, int64_t start);
  void init_embeddings();  ///< N(0, 1/d) tables (pad row zero) when scale_embedding; else Embedding's own
  Seq2SeqTransformerOptions options_;
  TransformerOutput last_weights_;
};

// ---- the decoder-only language model -------------------------------------------------------------------

/// Settings of TransformerLM (a small GPT by default).
struct TransformerLMOptions {
  /// The vocabulary size and width; the rest have the defaults below.
  TransformerLMOptions(int64_t vocab, int64_t d_model = 128) : vocab_(vocab), d_model_(d_model) {}
  HEED_ARG(int64_t, vocab);  ///< V: token ids are 0..V-1 (the logits' last axis)
  HEED_ARG(int64_t, d_model);  ///< E, the model (embedding) width; divisible by nhead
  HEED_ARG(int64_t, nhead) = 4;  ///< H, attention heads
  HEED_ARG(int64_t, num_layers) = 2;  ///< causal blocks
  HEED_ARG(int64_t, dim_feedforward) = 512;  ///< hidden width of the position-wise feed-forward block
  HEED_ARG(double, dropout) = 0.1;  ///< in the feed-forward block and on each residual branch (training only)
  HEED_ARG(TransformerActivation, activation) = TransformerActivation::GELU;  ///< of the feed-forward block
  HEED_ARG(bool, norm_first) = true;  ///< GPT-style pre-LN (the final norm is always present)
  HEED_ARG(int64_t, max_len) = 1024;  ///< longest position the positional encoding covers
  HEED_ARG(PositionalKind, positional) = PositionalKind::Learned;  ///< sinusoidal table or learned positions
  HEED_ARG(bool, scale_embedding) = false;  ///< Emb * sqrt(d_model)
  HEED_ARG(bool, tie_weights) = true;  ///< the output projection reuses the token embedding
};

/// A causal language model: tokens (N, T) -> logits (N, T, V).
///   h = Drop(Emb(tokens) [* sqrt(d)] + P[0:T]);  h = TransformerEncoder(h, causal);  logits = h W^T + b
/// The blocks are TransformerEncoderLayers with a causal mask (what PyTorch users build a GPT from).
/// Parameter names: embed.weight, [pos.weight], `encoder.layers.<i>.*`, encoder.norm.*, lm_head.weight
/// (absent when tied: the logits use embed.weight), lm_head.bias.
class TransformerLM : public Module {
 public:
  explicit TransformerLM(const TransformerLMOptions& options);  ///< throws on invalid options
  /// Every sub-module's init, then the token table's N(0, 1/d) (scale_embedding) or N(0, 0.02^2).
  void reset() override;
  Tensor forward(const Tensor& tokens) override { return forward(tokens, Tensor(), false); }
  /// key_padding (N, T) Bool keep-mask or undefined. need_weights keeps each layer's (N, H, T, T) weights.
  Tensor forward(const Tensor& tokens, const Tensor& key_padding, bool need_weights);
  /// Continues each prompt row (N, T0) by n tokens using the KV cache; returns (N, T0 + n') with n' <= n
  /// (shorter when every row produced options.eos). Runs under NoGradGuard in eval mode (restored after).
  Tensor generate(const Tensor& prompt, int64_t n, const SamplingOptions& options = SamplingOptions());
  std::unique_ptr<IncrementalDecoder> incremental_decoder();  ///< a KV-cached step decoder (heed/nn/decoding.hpp)
  /// A step decoder that re-runs the whole prefix at every step (reference, slower).
  std::unique_ptr<IncrementalDecoder> uncached_decoder();
  /// Per layer (N, H, T, T) from the last forward with need_weights (detached).
  const std::vector<Tensor>& attention_weights() const { return last_weights_; }
  const TransformerLMOptions& options() const { return options_; }  ///< the settings it was made with

  std::shared_ptr<Embedding> embed;            ///< (vocab, d_model)
  std::shared_ptr<Module> pos;                 ///< LearnedPositionalEmbedding or PositionalEncoding
  std::shared_ptr<TransformerEncoder> encoder; ///< num_layers causal blocks + final LayerNorm
  std::shared_ptr<Linear> lm_head;        ///< null when tied
  std::shared_ptr<TiedBias> tied_head;    ///< when tied: the bias, named lm_head.bias

  /// Ids (N, T) at positions start.. -> dropout(embeddings + positions) (N, T, d).
  Tensor embed_tokens(const Tensor& tokens, int64_t start);
  Tensor project(const Tensor& hidden);  ///< hidden (N, T, d) -> logits (N, T, vocab)

 private:
  void init_embedding();  ///< the token table's init (see reset())
  TransformerLMOptions options_;
  std::vector<Tensor> last_weights_;
};

}  // namespace heed::nn
