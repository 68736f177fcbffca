// heed/nn/attention.hpp — scaled dot-product attention, flash attention and multi-head attention
// (docs/attention-spec.md M5 and M11).
//
// Scaled dot-product attention (SDPA), q (..., L, E), k (..., S, E), v (..., S, Ev):
//   scores = scale · q kᵀ + bias                 scale defaults to 1/sqrt(E); bias float, additive
//   P      = softmax_j(scores) over the keys j where keep_mask (and the causal mask) allow
//   P      = dropout(P)                          inverted scaling 1/(1-p), training only
//   out    = P v                                 (..., L, Ev)
// Masks: heed's keep-masks are Bool, true = may attend. A masked position gets exactly zero weight and
// zero gradient; a fully masked query row gives a zero output row and zero gradient (no NaN; PyTorch's
// math path gives NaN there). An additive bias of -inf also blocks a position.
//
// Causal masks: keep j <= i + (S - L) when bottom_right (the default), j <= i when top-left. The two
// agree when L == S. Bottom-right is the alignment of decoding with a KV cache: the last query row sees
// every key, so a 1-token query attends to all cached positions. PyTorch's
// F.scaled_dot_product_attention(is_causal=True) is top-left; pass bottom_right = false to match it.
//
// Two kernels compute the same function:
//   Naive — composed from recorded heed ops (matmul, masked_softmax, dropout, matmul); materializes the
//           (..., L, S) score and weight tensors; the only kernel that returns weights or applies dropout.
//   Flash — one recorded op (heed::flash_attention from heed/ops/attention.hpp, re-exported below;
//           FlashAttention-2's algorithm, Dao 2022): blockwise online softmax; the forward keeps only
//           the output and one logsumexp per query row; the backward recomputes each block of P. Extra
//           memory O(L · block), not O(L · S); the causal mask is never materialized and blocks above
//           the causal diagonal are skipped.
// Auto (the default) picks Flash when weights are not requested and no dropout is active, else Naive.
//
// Multi-head attention (laid out exactly as torch.nn.MultiheadAttention, docs/attention-spec.md 1.1, so PyTorch
// state dicts load with Module::load_state_dict):
//   Q = query W_qᵀ + b_q,  K = key W_kᵀ + b_k,  V = value W_vᵀ + b_v         (N, L|S, E)
//   head h owns feature columns [h·hd, (h+1)·hd), hd = E / H
//   O_h = SDPA(Q_h, K_h, V_h, masks, scale = 1/sqrt(hd));  out = concat_h(O_h) W_oᵀ + b_o
// Always batch-first: query (N, L, E), key (N, S, kdim), value (N, S, vdim).
// Parameters (PyTorch names): in_proj_weight (3E, E) = [W_q; W_k; W_v] and in_proj_bias (3E) when
// kdim == vdim == E; otherwise q_proj_weight (E, E), k_proj_weight (E, kdim), v_proj_weight (E, vdim)
// and in_proj_bias (3E); out_proj: Linear(E, E) (out_proj.weight, out_proj.bias).
// Init as PyTorch: xavier_uniform_ on in_proj_weight (or each q/k/v_proj_weight), zero in_proj_bias and
// out_proj.bias, out_proj.weight Linear's default.
// Not implemented: add_bias_kv and add_zero_attn (PyTorch options that are off by default).
//
//   auto mha = std::make_shared<heed::nn::MultiheadAttention>(heed::nn::MultiheadAttentionOptions(64, 8));
//   heed::nn::MhaArgs args;
//   args.key_padding = batch.mask;                           // (N, S) Bool, true at real tokens
//   auto [out, weights] = mha->forward(x, x, x, args);      // (N, L, 64), (N, L, S)
#pragma once
#include <cstdint>
#include <optional>
#include <string>

#include "heed/nn/basic.hpp"
#include "heed/nn/module.hpp"
#include "heed/ops/attention.hpp"
#include "heed/tensor.hpp"

namespace heed {
class Generator;
}

namespace heed::nn {

/// What attention functions and layers return.
struct AttentionOutput {
  Tensor output;   ///< (..., L, Ev) for SDPA; (N, L, E) for MultiheadAttention
  Tensor weights;  ///< the post-dropout attention weights, or undefined when not requested
};

// ---- masks (Bool keep-masks, true = may attend) ----------------------------------------------------

/// (L, S): keep j <= i + (S - L) when bottom_right, j <= i when top-left (see above).
Tensor causal_keep_mask(int64_t L, int64_t S, bool bottom_right = true);
/// lengths Int64 (N) -> (N, S): keep j < lengths[n] (key padding from sequence lengths).
Tensor lengths_keep_mask(const Tensor& lengths, int64_t S);
/// PyTorch MHA's Bool attn_mask / key_padding_mask (true = NOT allowed) -> keep-mask.
Tensor keep_mask_from_torch_blocked(const Tensor& blocked);
/// A PyTorch float (additive) mask split into a keep-mask (false where the mask is -inf) and a finite
/// bias (0 where blocked), so a row of all -inf follows heed's zero-row policy instead of giving NaN.
struct KeepMaskAndBias {
  Tensor keep_mask;  ///< Bool, same shape as the input
  Tensor bias;       ///< same dtype and shape as the input
};
/// Splits a PyTorch additive float mask as described above.
KeepMaskAndBias keep_mask_from_torch_additive(const Tensor& additive);
/// a && b where both are defined; the defined one otherwise (undefined when neither). Broadcasts.
Tensor combine_keep_masks(const Tensor& a, const Tensor& b);

// ---- scaled dot-product attention -------------------------------------------------------------------

/// Which implementation computes SDPA (see the top of this file).
enum class AttentionKernel {
  Auto,   ///< Flash unless weights or dropout are needed, else Naive
  Naive,  ///< composed ops; materializes (..., L, S); returns weights, applies dropout
  Flash,  ///< one fused op, O(L · block) extra memory; no weights, no dropout (asking throws)
};

/// Options of scaled_dot_product_attention. Setters chain; the same names without arguments read.
/// Defaults: scale 1/sqrt(E), not causal, no dropout, no weights, kernel Auto.
struct SdpaOptions {
  /// Multiplies q kᵀ (instead of 1/sqrt(E)).
  SdpaOptions& scale(double s) {
    scale_ = s;
    return *this;
  }
  /// Adds the causal mask, bottom-right (default) or top-left aligned.
  SdpaOptions& causal(bool on, bool bottom_right = true) {
    causal_ = on;
    bottom_right_ = bottom_right;
    return *this;
  }
  /// Dropout on the attention weights with probability p, applied only when training is true.
  SdpaOptions& dropout(double p, bool training = true, Generator* gen = nullptr) {
    dropout_ = p;
    training_ = training;
    generator_ = gen;
    return *this;
  }
  /// Also return the (..., L, S) weights (forces the Naive kernel under Auto).
  SdpaOptions& need_weights(bool on) {
    need_weights_ = on;
    return *this;
  }
  /// Chooses the kernel (Auto by default).
  SdpaOptions& kernel(AttentionKernel k) {
    kernel_ = k;
    return *this;
  }
  std::optional<double> scale() const { return scale_; }  ///< nullopt: 1/sqrt(E)
  bool causal() const { return causal_; }              ///< apply the causal mask
  bool bottom_right() const { return bottom_right_; }  ///< causal alignment
  double dropout() const { return dropout_; }          ///< dropout probability on the weights
  bool training() const { return training_; }          ///< dropout applies only when true
  Generator* generator() const { return generator_; }  ///< dropout's generator; null = the default one
  bool need_weights() const { return need_weights_; }  ///< return the weights
  AttentionKernel kernel() const { return kernel_; }   ///< requested kernel
  bool dropout_active() const { return training_ && dropout_ > 0.0; }  ///< training and p > 0

 private:
  std::optional<double> scale_;
  bool causal_ = false;
  bool bottom_right_ = true;
  double dropout_ = 0.0;
  bool training_ = false;
  Generator* generator_ = nullptr;
  bool need_weights_ = false;
  AttentionKernel kernel_ = AttentionKernel::Auto;
};

/// q (..., L, E), k (..., S, E), v (..., S, Ev), leading axes equal (or broadcastable); keep_mask Bool and
/// bias (q's dtype) broadcastable to (..., L, S), or undefined. Returns the output (..., L, Ev) and, when
/// options.need_weights(), the weights (..., L, S) (Naive kernel; asking for weights with kernel Flash
/// throws, as does dropout with kernel Flash).
AttentionOutput scaled_dot_product_attention(const Tensor& q, const Tensor& k, const Tensor& v,
                                             const Tensor& keep_mask = Tensor(), const Tensor& bias = Tensor(),
                                             const SdpaOptions& options = {});

// The Flash kernel is an op (heed/ops/attention.hpp); heed::nn::flash_attention names the same function.
using heed::flash_attention;

// ---- multi-head attention ---------------------------------------------------------------------------

/// Settings of MultiheadAttention (torch.nn.MultiheadAttention's arguments). Setters chain.
struct MultiheadAttentionOptions {
  /// E and H; E must be divisible by H.
  MultiheadAttentionOptions(int64_t embed_dim, int64_t num_heads) : embed_dim_(embed_dim), num_heads_(num_heads) {}
  /// Dropout on the attention weights in training mode (default 0).
  MultiheadAttentionOptions& dropout(double p) {
    dropout_ = p;
    return *this;
  }
  /// Learn in_proj_bias and out_proj.bias (default true).
  MultiheadAttentionOptions& bias(bool on) {
    bias_ = on;
    return *this;
  }
  /// Feature size of `key` when it differs from E.
  MultiheadAttentionOptions& kdim(int64_t d) {
    kdim_ = d;
    return *this;
  }
  /// Feature size of `value` when it differs from E.
  MultiheadAttentionOptions& vdim(int64_t d) {
    vdim_ = d;
    return *this;
  }
  int64_t embed_dim() const { return embed_dim_; }              ///< E
  int64_t num_heads() const { return num_heads_; }              ///< H
  int64_t head_dim() const { return embed_dim_ / num_heads_; }  ///< hd = E / H
  double dropout() const { return dropout_; }                   ///< weight dropout probability
  bool bias() const { return bias_; }                           ///< with biases
  int64_t kdim() const { return kdim_ > 0 ? kdim_ : embed_dim_; }  ///< 0 (default): embed_dim
  int64_t vdim() const { return vdim_ > 0 ? vdim_ : embed_dim_; }  ///< 0 (default): embed_dim
  /// kdim == vdim == E: one packed in_proj_weight instead of q/k/v_proj_weight.
  bool same_qkv_dims() const { return kdim() == embed_dim_ && vdim() == embed_dim_; }

 private:
  int64_t embed_dim_, num_heads_;
  double dropout_ = 0.0;
  bool bias_ = true;
  int64_t kdim_ = 0, vdim_ = 0;
};

/// Per-call arguments of MultiheadAttention::forward. All masks are heed keep-masks (true = may attend);
/// convert PyTorch masks with keep_mask_from_torch_blocked / keep_mask_from_torch_additive.
struct MhaArgs {
  Tensor key_padding;  ///< Bool (N, S): false at padded keys
  Tensor attn_mask;    ///< Bool (L, S), (N*H, L, S) or (N, H, L, S)
  Tensor attn_bias;    ///< float, added to the scores: (L, S), (N*H, L, S) or (N, H, L, S)
  bool causal = false;          ///< add the causal mask
  bool bottom_right = true;     ///< causal alignment (see the top of this file)
  bool need_weights = true;     ///< as PyTorch; false also selects the Flash kernel (Auto)
  bool average_weights = true;  ///< weights (N, L, S) averaged over heads; false: (N, H, L, S)
  AttentionKernel kernel = AttentionKernel::Auto;  ///< SDPA kernel for every head
};

/// Projected keys and values of the positions seen so far, for incremental decoding.
struct KVCache {
  Tensor k;  ///< projected keys (N, H, S, hd), or undefined when empty
  Tensor v;  ///< projected values (N, H, S, hd), or undefined when empty
  int64_t length() const { return k.defined() ? k.size(2) : 0; }  ///< S, the cached positions
  bool empty() const { return !k.defined(); }                    ///< nothing cached yet
  void clear() { k = Tensor(), v = Tensor(); }                   ///< forget every position
};

/// torch.nn.MultiheadAttention, batch-first (see the top of this file for the equations and parameters).
class MultiheadAttention : public Module {
 public:
  /// Throws heed::Error when E is not divisible by H or a size is not positive.
  explicit MultiheadAttention(const MultiheadAttentionOptions& options);
  /// E and H, no dropout, with biases, kdim = vdim = E.
  MultiheadAttention(int64_t embed_dim, int64_t num_heads)
      : MultiheadAttention(MultiheadAttentionOptions(embed_dim, num_heads)) {}
  void reset();  ///< PyTorch's init (see the top of this file)

  /// query (N, L, E), key (N, S, kdim), value (N, S, vdim) -> output (N, L, E) and weights (see MhaArgs).
  AttentionOutput forward(const Tensor& query, const Tensor& key, const Tensor& value, const MhaArgs& args = {});
  Tensor forward(const Tensor& x) override;  ///< self-attention, no mask, output only

  /// Incremental decoding. With key and value defined, projects only these new rows and appends them to
  /// the cache (self-attention: pass the new tokens as query, key and value). With key and value
  /// undefined, attends to the cache as it is (cross-attention: fill the cache once, e.g. with
  /// forward_cached(q, memory, memory, cache), then pass undefined key/value on later steps).
  /// Masks in args refer to all cache.length() keys; causal uses args.bottom_right (keep it true, so
  /// a query of length L sees the keys before it and itself). The result equals forward() on the whole
  /// sequence for the corresponding query rows.
  AttentionOutput forward_cached(const Tensor& query, const Tensor& key, const Tensor& value, KVCache& cache,
                                 const MhaArgs& args = {});

  std::string extra_repr() const override;
  const MultiheadAttentionOptions& options() const { return options_; }  ///< the settings it was made with

  Tensor in_proj_weight;                               ///< (3E, E), when kdim == vdim == E
  Tensor q_proj_weight;                                ///< (E, E), when kdim or vdim differs from E
  Tensor k_proj_weight;                                ///< (E, kdim), likewise
  Tensor v_proj_weight;                                ///< (E, vdim), likewise
  Tensor in_proj_bias;                                 ///< (3E), undefined with bias(false)
  std::shared_ptr<Linear> out_proj;                    ///< Linear(E, E)

 private:
  Tensor project(const Tensor& x, int64_t which, const char* arg) const;  ///< (N, T, d) -> (N, H, T, hd)
  AttentionOutput attend(const Tensor& query, const Tensor& q_heads, const Tensor& k_heads, const Tensor& v_heads,
                         const MhaArgs& args);
  MultiheadAttentionOptions options_;
};

}  // namespace heed::nn
