// heed/nn/spatial_attention.hpp — soft and hard attention over the locations of an image
// (docs/attention-spec.md M6: Show, Attend and Tell, Xu et al. 2015; arctic-captions capgen.py).
//
// Annotations a (N, L, D): one D-vector per image location (e.g. a conv feature map flattened to L =
// H·W). With h the decoder's previous hidden state (N, Hd):
//   e_i   = u^T tanh(W_c a_i + b + W_d h) + c        W_c (A, D), b (A), W_d (A, Hd), u (1, A), c (1)
//   α     = softmax_i(e)                             over the locations where keep_mask is true
//   β     = σ(w_β^T h + b_β)                         the gating scalar ("selector"), optional
//   soft: z = β Σ_i α_i a_i
//   hard: s ~ Categorical(α), z = β a_s              (or the soft z with use_expectation, see below)
// The annotation projection W_c a + b does not depend on h: project_annotations() computes it once per
// image and every decoding step reuses it (forward(annotations, projected, h, ...)).
//
// Parameters, named as in the common PyTorch port of the model (sgrvinod's "a-PyTorch-Tutorial-to-Image-
// Captioning" Attention module + f_beta): encoder_att.{weight (A, D), bias (A)}, decoder_att.weight
// (A, Hd), full_att.{weight (1, A), bias (1)}, f_beta.{weight (1, Hd), bias (1)}. Differences from that
// port, and why: decoder_att has no bias (b already sits in encoder_att); f_beta gives one scalar per
// step as in the paper and arctic (the port gates every feature); tanh instead of ReLU, as in the paper.
// full_att.bias is c; it cancels in the softmax (its gradient is 0) and is kept for the equation and for
// loading arctic/port weights (score_bias(false) drops it). Every weight starts as PyTorch's Linear.
//
// Masks: keep_mask Bool (N, L), true = may attend. Masked locations get exactly zero weight and zero
// gradient; a fully masked row gives zero weights and a zero context (and, for hard attention,
// location -1, sample log-probability 0 and entropy 0). An undefined h means h = 0 (no W_d h term, β =
// σ(b_β)), for models that attend once without a decoder.
//
// Training with hard attention (REINFORCE, the paper's eq. 12 with arctic's choices):
//   ∂L ≈ ∂log p(y|s,a) + λ_r (log p(y|s,a) - b) ∂log p(s|a) + λ_e ∂H[α],
//   b_k = 0.9 b_{k-1} + 0.1 · mean_n log p(y|s,a)
// reinforce_surrogate_loss() builds a scalar whose gradient is minus that estimate (minimize it), with
// (log p - b) detached. HardAttentionTrainer holds the baseline b and draws arctic's semi-sampling coin:
// with probability semi_sampling_p a whole minibatch uses the expectation α instead of samples. In that
// mode z is the soft context (differentiable through α), the sample log-probability is 0, and the
// REINFORCE term vanishes for that minibatch.
//
// The doubly stochastic regularizer (paper eq. 14, arctic's alpha_c term):
//   λ · mean_n Σ_i (1 - Σ_t α_ti)²   with t over the real steps of example n only.
//
//   auto att = std::make_shared<heed::nn::SpatialAttention>(heed::nn::SpatialAttentionOptions(64, 128, 64));
//   Tensor projected = att->project_annotations(a);                    // once per image
//   auto [z, alpha, beta] = att->forward(a, projected, h, Tensor());   // every step
#pragma once
#include <cstdint>
#include <memory>
#include <string>

#include "heed/nn/basic.hpp"
#include "heed/nn/module.hpp"
#include "heed/options.hpp"
#include "heed/tensor.hpp"

namespace heed {
class Generator;
}

namespace heed::nn {

/// Settings of SpatialAttention. Setters chain; the same names without arguments read.
struct SpatialAttentionOptions {
  /// D: annotation size, Hd: decoder state size, A: attention (hidden) size.
  SpatialAttentionOptions(int64_t annotation_size, int64_t hidden_size, int64_t attention_size)
      : annotation_size_(annotation_size), hidden_size_(hidden_size), attention_size_(attention_size) {}
  HEED_ARG(int64_t, annotation_size);  ///< D
  HEED_ARG(int64_t, hidden_size);  ///< Hd
  HEED_ARG(int64_t, attention_size);  ///< A
  HEED_ARG(bool, gate) = true;  ///< the gating scalar β
  HEED_ARG(bool, score_bias) = true;  ///< the constant c in e
};

/// What soft attention (SpatialAttention::forward) returns.
struct SpatialAttentionOutput {
  Tensor context;  ///< z (N, D), gated by β when the gate is on
  Tensor weights;  ///< α (N, L); rows sum to 1, or are all zeros when fully masked
  Tensor gate;     ///< β (N, 1), undefined when the gate is off
};

/// What hard attention (SpatialAttention::forward_hard) returns.
struct HardAttentionOutput {
  Tensor context;     ///< z = β a_s (N, D); the soft context with use_expectation
  Tensor weights;     ///< α (N, L)
  Tensor gate;        ///< β (N, 1) or undefined
  Tensor locations;   ///< s (N) Int64; -1 with use_expectation or for a fully masked row
  Tensor sample_log_prob;  ///< log α_s (N), differentiable; 0 where locations is -1
  Tensor entropy;     ///< H[α] = -Σ_i α_i log α_i (N), differentiable (0 log 0 = 0)
};

/// Show, Attend and Tell's attention over image locations: soft (deterministic) or hard (sampled); see above.
class SpatialAttention : public Module {
 public:
  explicit SpatialAttention(const SpatialAttentionOptions& options);  ///< throws on non-positive sizes

  /// W_c a + b (N, L, A) for annotations (N, L, D): compute once per image, pass to every step.
  Tensor project_annotations(const Tensor& annotations);
  /// Soft attention. projected: from project_annotations(annotations), or undefined (computed here).
  /// h (N, Hd) or undefined (zeros); keep_mask Bool (N, L) or undefined.
  SpatialAttentionOutput forward(const Tensor& annotations, const Tensor& projected, const Tensor& h,
                                 const Tensor& keep_mask = Tensor());
  /// Hard attention: one location per example drawn from α with `gen` (reproducible for a seed), or the
  /// expectation when use_expectation.
  HardAttentionOutput forward_hard(const Tensor& annotations, const Tensor& projected, const Tensor& h,
                                   const Tensor& keep_mask, Generator& gen, bool use_expectation = false);
  Tensor forward(const Tensor& annotations) override;  ///< the soft context with h = 0, no mask
  std::string extra_repr() const override;
  const SpatialAttentionOptions& options() const { return options_; }  ///< the settings it was made with

  std::shared_ptr<Linear> encoder_att;  ///< W_c, b
  std::shared_ptr<Linear> decoder_att;  ///< W_d (no bias)
  std::shared_ptr<Linear> full_att;     ///< u, c
  std::shared_ptr<Linear> f_beta;       ///< w_β, b_β; null when the gate is off

 private:
  /// α (N, L) and β (N, 1) or undefined, after checking every shape.
  std::pair<Tensor, Tensor> attention_weights(const Tensor& annotations, const Tensor& projected, const Tensor& h,
                                              const Tensor& keep_mask, const char* method);
  SpatialAttentionOptions options_;
};

/// λ · mean_n Σ_i (1 - Σ_t α_nti)². weights (N, T, L); step_mask Bool (N, T), true at real steps, or
/// undefined (every step is real). Returns a scalar.
Tensor doubly_stochastic_penalty(const Tensor& weights, const Tensor& step_mask = Tensor(), double lambda = 1.0);

/// The REINFORCE surrogate for hard attention; minimizing it follows the estimator above:
///   -mean_n [ log_likelihood_n + reward_scale · detach(log_likelihood_n - baseline) · sample_log_prob_n
///             + entropy_weight · entropy_n ]
/// log_likelihood: log p(y|s,a) per example (N), e.g. minus the summed cross-entropy over a caption;
/// sample_log_prob: Σ_t log α_{t,s_t} (N); entropy: Σ_t H[α_t] (N) or undefined. Returns a scalar.
Tensor reinforce_surrogate_loss(const Tensor& log_likelihood, const Tensor& sample_log_prob, const Tensor& entropy,
                                double baseline, double reward_scale = 1.0, double entropy_weight = 0.0);

/// Settings of HardAttentionTrainer (arctic-captions' values by default). Setters chain.
struct HardAttentionTrainerOptions {
  HEED_ARG(double, reward_scale) = 0.1;  ///< λ_r (arctic: 1/10 via its x10 on the cost)
  HEED_ARG(double, entropy_weight) = 0.002;  ///< λ_e (arctic alpha_entropy_c = 0.002)
  HEED_ARG(double, baseline_decay) = 0.9;  ///< decay of the moving-average baseline (0.9 in the paper and arctic)
  HEED_ARG(double, semi_sampling_p) = 0.5;  ///< probability of an expectation minibatch
};

/// Holds the moving-average baseline and draws the semi-sampling coin, per minibatch:
///   bool expect = trainer.use_expectation(gen);     // then forward_hard(..., expect) at every step
///   Tensor loss = trainer.surrogate(log_likelihood, sample_log_prob, entropy);  // updates the baseline
class HardAttentionTrainer {
 public:
  explicit HardAttentionTrainer(const HardAttentionTrainerOptions& options = {});  ///< baseline starts at 0
  bool use_expectation(Generator& gen) const;  ///< true with probability semi_sampling_p
  /// reinforce_surrogate_loss with the current baseline, then b = decay b + (1 - decay) mean(log_likelihood).
  /// The first call starts the baseline at 0, as arctic does.
  Tensor surrogate(const Tensor& log_likelihood, const Tensor& sample_log_prob, const Tensor& entropy);
  double baseline() const { return baseline_; }  ///< b, the current moving average of the log-likelihood
  void set_baseline(double b) { baseline_ = b; }  ///< e.g. from a checkpoint
  const HardAttentionTrainerOptions& options() const { return options_; }  ///< the settings it was made with

 private:
  HardAttentionTrainerOptions options_;
  double baseline_ = 0.0;
};

}  // namespace heed::nn
