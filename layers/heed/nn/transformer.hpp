// heed/nn/transformer.hpp — the Transformer of "Attention Is All You Need" (docs/attention-spec.md M8) with
// PyTorch's module structure and parameter names, plus an encoder-decoder model and a decoder-only
// causal language model that decode with key-value caches (heed/nn/decoding.hpp).
//
// Layers (x (N, T, E) batch-first; PyTorch's batch_first=false layout (T, N, E) is accepted too):
//   SA(x) = MultiheadAttention(x, x, x), CA(x, m) = MultiheadAttention(x, m, m)
//   FF(x) = linear2(Drop(act(linear1(x)))),  act = ReLU or GELU
//   encoder, post-LN (norm_first=false, the paper and PyTorch's default):
//     x = norm1(x + Drop(SA(x)));  x = norm2(x + Drop(FF(x)))
//   encoder, pre-LN (norm_first=true):
//     x = x + Drop(SA(norm1(x)));  x = x + Drop(FF(norm2(x)))
//   decoder, post-LN: x = norm1(x + Drop(SA(x))); x = norm2(x + Drop(CA(x, m))); x = norm3(x + Drop(FF(x)))
//   decoder, pre-LN:  x = x + Drop(SA(norm1(x))); x = x + Drop(CA(norm2(x), m)); x = x + Drop(FF(norm3(x)))
// Parameters (PyTorch names): self_attn.{in_proj_weight, in_proj_bias, out_proj.weight, out_proj.bias},
// multihead_attn.* (decoder), linear1.{weight, bias} (F, E), linear2 (E, F), norm1..norm3.{weight, bias}.
// Stacks: layers.<i>.*, norm.* (the optional final LayerNorm; pre-LN stacks need it). Transformer:
// encoder.*, decoder.* with both final norms, as torch.nn.Transformer, so its state_dict loads as is.
//
// Masks use heed's keep convention (true = may attend) — AttentionMasks below. PyTorch-style masks
// (bool true = blocked, or float additive) are converted with from_pytorch_mask() at the API edge:
//   src key padding (N, S), tgt key padding (N, T), the causal target mask, memory key padding (N, S)
//   and an optional memory mask (T, S) for cross-attention.
//
// Positional encodings: PositionalEncoding is the paper's interleaved sinusoid
//   PE[pos, 2i] = sin(pos / 10000^(2i/d)),  PE[pos, 2i+1] = cos(pos / 10000^(2i/d))
// (tensor2tensor concatenates sin | cos halves instead; we follow the paper and the Annotated
// Transformer). LearnedPositionalEmbedding is a trained table (max_len, d). Models embed tokens as
// Drop(Emb(tokens) * sqrt(d) + PE); the sqrt(d) scaling can be switched off (GPT-style learned
// positions usually omit it). With the scaling, the models draw their embedding tables from N(0, 1/d)
// (tensor2tensor's init), so Emb * sqrt(d) has unit scale like PE; PyTorch's Embedding default N(0, 1)
// times sqrt(d) would drown the positions (a reversal task then barely learns). Without it, N(0, 0.02^2).
//
// Attention weights: every forward can return the weights of every layer and head, (N, H, L, S) per
// layer (need_weights); the models keep the last ones for plotting (attention_weights()).
//
// Training, as in the paper (tests/test_transformer.cpp, task F, does exactly this):
//   heed::optim::Adam opt(model.parameters(), heed::optim::AdamOptions(1.0).betas({0.9, 0.98}).eps(1e-9));
//   heed::optim::NoamLR schedule(opt, d_model, /*warmup=*/4000);        // sets the lr every step
//   auto ce = heed::CrossEntropyOptions().ignore_index(pad).label_smoothing(0.1);
//   Tensor loss = heed::cross_entropy(model.forward(src, tgt_in), tgt_out, ce);
// Label smoothing is PyTorch's variant (q = (1-eps) onehot + eps/C over all C classes, ignore_index rows
// dropped), not the Annotated Transformer's KL form with eps/(V-2) and a zero pad column (the two differ
// by a constant and in the pad class's share).
//
// Incremental decoding: forward_cached() on the layers feeds only the new positions; self-attention
// keys and values of earlier positions come from a KVCache (bottom-right aligned causal mask), and the
// cross-attention keys and values of the memory are projected once. A new token costs work
// proportional to the current length; the result equals a full forward of the whole prefix.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "heed/nn/attention.hpp"
#include "heed/nn/basic.hpp"
#include "heed/nn/decoding.hpp"
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

/// The output bias alone, for an output projection tied to an embedding ("generator.bias", "lm_head.bias").
class TiedBias : public Module {
 public:
  explicit TiedBias(int64_t size);  ///< a zero bias of `size`
  void reset() override;  ///< bias = 0
  std::string extra_repr() const override;
  Tensor bias;  ///< (size), starts at 0
};

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

// ---- positional encodings ------------------------------------------------------------------------------

/// x + PE[start : start + T] for x (N, T, d). The table (max_len, d) is a constant (not in state_dict).
class PositionalEncoding : public Module {
 public:
  /// PE[pos, 2i] = sin(pos / 10000^(2i/d)), PE[pos, 2i+1] = cos(...); throws unless both sizes are positive.
  PositionalEncoding(int64_t d_model, int64_t max_len = 5000);
  Tensor forward(const Tensor& x) override { return forward(x, 0); }  ///< positions 0..T-1
  /// Positions start..start+T-1 (incremental decoding); throws past max_len or on a wrong shape.
  Tensor forward(const Tensor& x, int64_t start);
  std::string extra_repr() const override;
  const Tensor& table() const { return pe_; }  ///< the (max_len, d) Float32 table

 private:
  int64_t d_model_, max_len_;
  Tensor pe_;  ///< (max_len, d) Float32; converted on use to x's dtype
};

/// x + weight[start : start + T]; weight (max_len, d) ~ N(0, 0.02^2) (GPT-2's init).
class LearnedPositionalEmbedding : public Module {
 public:
  LearnedPositionalEmbedding(int64_t max_len, int64_t d_model);  ///< note the order: max_len first
  void reset() override;  ///< weight ~ N(0, 0.02^2)
  Tensor forward(const Tensor& x) override { return forward(x, 0); }  ///< positions 0..T-1
  /// Positions start..start+T-1 of x (N, T, d); throws past max_len or on a wrong shape.
  Tensor forward(const Tensor& x, int64_t start);
  std::string extra_repr() const override;

  Tensor weight;  ///< (max_len, d_model), trained

 private:
  int64_t max_len_, d_model_;
};

/// Which positional encoding a model adds to its embeddings.
enum class PositionalKind {
  Sinusoidal,  ///< PositionalEncoding (fixed)
  Learned,     ///< LearnedPositionalEmbedding (GPT-style)
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
