// heed/nn/seq2seq_attention.hpp — attention for RNN encoder-decoders (docs/attention-spec.md M2, M3, M4).
//
// One decoder step attends over the encoder's outputs ("memory", the keys and values h̄_s, (N, S, Dk)):
//
//   BahdanauAttention (M2, additive; Bahdanau et al. 2015)     this header
//     e_s = v^T tanh(W q + U h̄_s)          W (units, Dq), U (units, Dk), v (units)
//     a = softmax_s(e) over kept s;  context = Σ_s a_s h̄_s
//     The query q is the PREVIOUS decoder state s_{i-1}. U h̄_s does not depend on the step: it is
//     computed once per sequence by precompute() and reused at every step.
//
//   LuongAttention (M3 global with dot / general / concat / location scores, M4 local-m and local-p,
//   and the attentional hidden state h~ = tanh(W_c [c; h]))   heed/nn/luong_attention.hpp
//
// Usage, once per batch and then once per decoder step:
//   auto attention = std::make_shared<heed::nn::BahdanauAttention>(/*query*/ 128, /*keys*/ 128, /*units*/ 64);
//   heed::nn::AttentionMemory memory = attention->precompute(encoder_outputs, batch.mask);
//   for (t ...) {
//     auto [context, weights] = attention->forward(state, memory);   // (N, Dk), (N, S)
//     state = cell->forward(concat({embedded_t, context}, 1), state);
//   }
//
// Masks (docs/attention-spec.md section 0): a Bool keep-mask (N, S), true where the decoder may attend (the
// real source positions: heed::data::PaddedBatch::mask, or keep_mask_from_lengths()). A masked position
// gets exactly zero weight and zero gradient, and its key/value never reaches the output; a row with
// no kept position gives zero weights and a zero context (no NaN). PyTorch-style padding masks (true =
// blocked) convert with heed::logical_not at the call site.
//
// Weights are returned over the full padded length S (zeros where masked or, for local attention,
// outside the window), so they can be drawn and compared across variants.
#pragma once
#include <cstdint>
#include <string>

#include "heed/nn/basic.hpp"
#include "heed/nn/module.hpp"
#include "heed/options.hpp"
#include "heed/tensor.hpp"

namespace heed::nn {

/// Encoder outputs prepared for one batch (see the layers' precompute()).
struct AttentionMemory {
  Tensor values;          ///< (N, S, Dk): the encoder outputs h̄_s (context = Σ_s a_s h̄_s)
  Tensor projected_keys;  ///< (N, S, ·): the step-independent part of the score (U h̄_s, W_a h̄_s, ...)
  Tensor keep_mask;       ///< Bool (N, S), or undefined (every position is kept)
  Tensor lengths;         ///< Float (N, 1) like values: S_i = 1 + last kept position (S without a mask)
};

/// What one attention step returns.
struct Seq2SeqAttentionOutput {
  Tensor context;  ///< (N, Dk)
  Tensor weights;  ///< (N, S): sums to 1 over kept positions, or 0 for a fully masked row (and, for local-p
                   ///< attention, to the Gaussian-weighted sum, which is at most 1)
};

/// Bool (N, S) keep-mask from Int64 (N) lengths: keep s < lengths[i].
Tensor keep_mask_from_lengths(const Tensor& lengths, int64_t steps);

/// Checks keys (N, S, key_size) and the keep-mask, then fills values, keep_mask and lengths (the
/// layers' precompute() adds projected_keys). `layer` names the caller in error messages.
AttentionMemory make_attention_memory(const std::string& layer, const Tensor& keys, int64_t key_size,
                                      const Tensor& keep_mask);

/// Sizes of BahdanauAttention.
struct BahdanauAttentionOptions {
  /// Dq (decoder state), Dk (encoder output) and the hidden width of the score.
  BahdanauAttentionOptions(int64_t query_size, int64_t key_size, int64_t units)
      : query_size_(query_size), key_size_(key_size), units_(units) {}
  HEED_ARG(int64_t, query_size);  ///< Dq
  HEED_ARG(int64_t, key_size);  ///< Dk
  HEED_ARG(int64_t, units);  ///< width of W q and U h̄_s in the score
};

/// Additive attention, the paper's form: no biases, no normalisation (TFA's BahdanauAttention with
/// normalize=False).
/// Parameters: query_proj.weight W (units, Dq), key_proj.weight U (units, Dk), v.weight (1, units), all
/// Linear(bias=False) modules with PyTorch's Linear init, so a PyTorch module with three bias-free
/// nn.Linear of these names loads the checkpoint.
class BahdanauAttention : public Module {
 public:
  explicit BahdanauAttention(const BahdanauAttentionOptions& options);  ///< throws on non-positive sizes
  /// Same as BahdanauAttention(BahdanauAttentionOptions(query_size, key_size, units)).
  BahdanauAttention(int64_t query_size, int64_t key_size, int64_t units)
      : BahdanauAttention(BahdanauAttentionOptions(query_size, key_size, units)) {}
  /// keys (N, S, Dk); keep_mask Bool (N, S) or undefined. Computes U h̄_s once: (N, S, units).
  AttentionMemory precompute(const Tensor& keys, const Tensor& keep_mask = Tensor());
  /// query (N, Dq): the previous decoder state.
  Seq2SeqAttentionOutput forward(const Tensor& query, const AttentionMemory& memory);
  /// The same after precompute(keys, keep_mask) (convenient for one-off calls).
  Seq2SeqAttentionOutput forward(const Tensor& query, const Tensor& keys, const Tensor& keep_mask);
  std::string extra_repr() const override;
  const BahdanauAttentionOptions& options() const { return options_; }  ///< the settings it was made with

  std::shared_ptr<Linear> query_proj;  ///< W (units, Dq), no bias
  std::shared_ptr<Linear> key_proj;    ///< U (units, Dk), no bias
  std::shared_ptr<Linear> v;           ///< v (1, units), no bias

 private:
  BahdanauAttentionOptions options_;
};

}  // namespace heed::nn

#include "heed/nn/luong_attention.hpp"
