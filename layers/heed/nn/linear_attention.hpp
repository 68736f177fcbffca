// heed/nn/linear_attention.hpp — linear attention, "Transformers are RNNs" (Katharopoulos et al. 2020;
// docs/attention-spec.md M9).
//
// With the feature map phi(x) = elu(x) + 1 (> 0, elementwise, no 1/sqrt(d) scaling) and eps = 1e-6
// (fast-transformers' value), for queries Q (N, H, L, d), keys K (N, H, S, d), values V (N, H, S, m):
//   non-causal   O_i = phi(Q_i)^T (sum_j phi(K_j) V_j^T) / (phi(Q_i) . sum_j phi(K_j) + eps)
//   causal       the same with the sums over j <= i only (L == S). As an RNN, with q_i = phi(Q_i),
//                k_j = phi(K_j):  S_i = S_{i-1} + k_i V_i^T (d x m),  Z_i = Z_{i-1} + k_i (d),
//                O_i = S_i^T q_i / (q_i . Z_i + eps).
// Key padding (key_keep (N, S) Bool, true = a real key) sets phi(K_j) = 0 for padded j, so a padded key
// contributes nothing and gets zero gradient (its value too). A query whose keys are all padded gives 0.
// Cost: O((L + S) d m) time and O(d m) state per (sample, head); no L x S matrix is formed.
//
// causal_linear_attention is one heed op (heed/ops/attention.hpp, re-exported below; forward and backward
// side by side in framework/ops/linear_attention.cpp) with the spec's O(L)-memory backward: it saves
// phi(Q), phi(K), V, O and the denominators, replays the prefix states S_i, Z_i for
// dq_i = S_i u_i - w_i Z_i (u_i = dO_i / den_i, w_i = dO_i . O_i / den_i), then runs the reverse sums
// R_j = sum_{i>=j} q_i u_i^T, r_j = sum_{i>=j} w_i q_i for dk_j = R_j V_j - r_j and dV_j = R_j^T k_j, and
// chains through phi'(x) = 1 (x > 0), e^x (x <= 0). The states are accumulated in double for Float32
// inputs too. linear_attention (non-causal) is composed from recorded heed ops
// (BLAS matmuls of (d x m) summaries), so its gradient is theirs.
//
// linear_attention_parallel is the quadratic reference form: A_ij = keep_ij q_i . k_j, O = A V / (rowsum A
// + eps). It MATERIALIZES the (N, H, L, S) matrix and exists for tests (it equals the causal RNN form
// with a causal keep mask) and for drawing: its normalized A is the "attention weights" of linear
// attention, which the efficient forms never compute.
//
// LinearAttention is the multi-head module. Its parameters have PyTorch MultiheadAttention's names and
// layouts (embed_dim E, kdim = vdim = E): in_proj_weight (3E, E) = [W_q; W_k; W_v] (xavier_uniform),
// in_proj_bias (3E) (zeros), out_proj.weight (E, E), out_proj.bias (E) (zeros); so an MHA state_dict
// loads into it (the computation differs: no softmax, no scaling; no attention dropout, since the
// efficient forms never form probabilities).
//
//   heed::nn::LinearAttention attn(heed::nn::LinearAttentionOptions(64, 4).causal(true));
//   heed::Tensor y = attn.forward(x, x, x, keep).output;     // (N, L, 64)
#pragma once
#include <cstdint>
#include <string>

#include "heed/nn/basic.hpp"
#include "heed/nn/module.hpp"
#include "heed/ops/attention.hpp"
#include "heed/tensor.hpp"

namespace heed::nn {

using heed::kLinearAttentionEps;  // default eps added to the normalizer (heed/ops/attention.hpp)

/// phi(x) = elu(x) + 1, recorded.
Tensor linear_attention_feature_map(const Tensor& x);

/// q (N, H, L, d), k (N, H, S, d), v (N, H, S, m) -> (N, H, L, m). key_keep (N, S) Bool or undefined.
Tensor linear_attention(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& key_keep = Tensor(),
                        double eps = kLinearAttentionEps);
// The causal RNN form (L == S) is an op with its own O(L)-memory backward (heed/ops/attention.hpp).
using heed::causal_linear_attention;

/// What linear_attention_parallel and LinearAttention::forward return.
struct LinearAttentionOutput {
  Tensor output;   ///< (N, H, L, m) for the functions, (N, L, E) for the module
  Tensor weights;  ///< (N, H, L, S): A_ij / (sum_j A_ij + eps); only from the parallel form
};
/// Quadratic reference form. keep_mask Bool broadcastable to (N, H, L, S) (e.g. a causal (L, S) mask),
/// or undefined; key_keep (N, S) as above. Materializes L x S.
LinearAttentionOutput linear_attention_parallel(const Tensor& q, const Tensor& k, const Tensor& v,
                                                const Tensor& keep_mask = Tensor(), const Tensor& key_keep = Tensor(),
                                                double eps = kLinearAttentionEps);

/// Settings of LinearAttention. Setters chain; the same names without arguments read.
struct LinearAttentionOptions {
  /// E and H; E must be divisible by H.
  LinearAttentionOptions(int64_t embed_dim, int64_t num_heads) : embed_dim_(embed_dim), num_heads_(num_heads) {}
  /// Causal (autoregressive) attention via the RNN form (default false).
  LinearAttentionOptions& causal(bool on) {
    causal_ = on;
    return *this;
  }
  /// Learn in_proj_bias and out_proj.bias (default true).
  LinearAttentionOptions& bias(bool on) {
    bias_ = on;
    return *this;
  }
  /// Added to the normalizer (default kLinearAttentionEps).
  LinearAttentionOptions& eps(double value) {
    eps_ = value;
    return *this;
  }
  int64_t embed_dim() const { return embed_dim_; }  ///< E
  int64_t num_heads() const { return num_heads_; }  ///< H
  bool causal() const { return causal_; }           ///< causal form
  bool bias() const { return bias_; }               ///< with biases
  double eps() const { return eps_; }               ///< normalizer guard

 private:
  int64_t embed_dim_, num_heads_;
  bool causal_ = false;
  bool bias_ = true;
  double eps_ = kLinearAttentionEps;
};

/// Multi-head linear attention (Katharopoulos et al. 2020) with MultiheadAttention's projections: SDPA's
/// softmax replaced by the feature map phi, O(L) instead of O(L S) (see the top of this file).
class LinearAttention : public Module {
 public:
  explicit LinearAttention(const LinearAttentionOptions& options);  ///< throws when E % H != 0
  /// Not causal, with biases.
  LinearAttention(int64_t embed_dim, int64_t num_heads)
      : LinearAttention(LinearAttentionOptions(embed_dim, num_heads)) {}
  void reset();  ///< xavier_uniform_ in_proj_weight, zero biases (as MultiheadAttention)
  /// query (N, L, E), key and value (N, S, E) (S == L when causal); key_keep (N, S) Bool (true = real
  /// key) or undefined. need_weights = true runs the quadratic parallel form instead (same output up to
  /// rounding) and also returns its weights (N, H, L, S), for drawing.
  LinearAttentionOutput forward(const Tensor& query, const Tensor& key, const Tensor& value,
                                const Tensor& key_keep = Tensor(), bool need_weights = false);
  Tensor forward(const Tensor& x) override;  ///< self-attention, no padding
  std::string extra_repr() const override;
  const LinearAttentionOptions& options() const { return options_; }  ///< the settings it was made with

  Tensor in_proj_weight;  ///< (3E, E)
  Tensor in_proj_bias;    ///< (3E), undefined with bias(false)
  std::shared_ptr<Linear> out_proj;  ///< Linear(E, E)

 private:
  LinearAttentionOptions options_;
};

}  // namespace heed::nn
