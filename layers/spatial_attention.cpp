// layers/spatial_attention.cpp — SpatialAttention (soft and hard), the doubly stochastic penalty and the
// REINFORCE surrogate, composed from recorded heed ops (linear, tanh, masked_softmax, matmul, log), so
// their gradients are those ops' gradients. Only the sampling of s is done by hand, off the tape.
#include "heed/nn/spatial_attention.hpp"

#include <vector>

#include "heed/autograd.hpp"
#include "heed/ops.hpp"
#include "heed/random.hpp"

namespace heed::nn {

namespace {
std::string shape_or_undefined(const Tensor& t) { return t.defined() ? shape_str(t.shape()) : "undefined"; }
}  // namespace

SpatialAttention::SpatialAttention(const SpatialAttentionOptions& options)
    : Module("SpatialAttention"), options_(options) {
  HEED_CHECK(options.annotation_size() > 0 && options.hidden_size() > 0 && options.attention_size() > 0,
             "SpatialAttention: annotation_size, hidden_size and attention_size must be positive, got {}, {}, {}",
             options.annotation_size(), options.hidden_size(), options.attention_size());
  const int64_t d = options.annotation_size(), hd = options.hidden_size(), a = options.attention_size();
  encoder_att = register_module("encoder_att", std::make_shared<Linear>(d, a));
  decoder_att = register_module("decoder_att", std::make_shared<Linear>(hd, a, false));
  full_att = register_module("full_att", std::make_shared<Linear>(a, 1, options.score_bias()));
  if (options.gate()) f_beta = register_module("f_beta", std::make_shared<Linear>(hd, 1));
}

Tensor SpatialAttention::project_annotations(const Tensor& annotations) {
  const int64_t d = options_.annotation_size();
  HEED_CHECK(annotations.defined() && annotations.dim() == 3 && annotations.size(2) == d,
             "SpatialAttention(annotation_size={}): annotations have shape {}, expected (N, L, {})", d,
             shape_or_undefined(annotations), d);
  return encoder_att->forward(annotations);
}

std::pair<Tensor, Tensor> SpatialAttention::attention_weights(const Tensor& annotations, const Tensor& projected,
                                                              const Tensor& h, const Tensor& keep_mask,
                                                              const char* method) {
  const int64_t d = options_.annotation_size(), hd = options_.hidden_size(), a = options_.attention_size();
  HEED_CHECK(annotations.defined() && annotations.dim() == 3 && annotations.size(2) == d,
             "SpatialAttention(annotation_size={}).{}: annotations have shape {}, expected (N, L, {})", d, method,
             shape_or_undefined(annotations), d);
  const int64_t n = annotations.size(0), l = annotations.size(1);
  if (projected.defined())
    HEED_CHECK(projected.shape() == Shape({n, l, a}) && projected.dtype() == annotations.dtype(),
               "SpatialAttention.{}: projected annotations must be {} of shape [{}, {}, {}] (project_annotations of "
               "annotations {}), got {} of shape {}",
               method, dtype_name(annotations.dtype()), n, l, a, shape_str(annotations.shape()),
               dtype_name(projected.dtype()), shape_str(projected.shape()));
  if (h.defined())
    HEED_CHECK(h.shape() == Shape({n, hd}),
               "SpatialAttention(hidden_size={}).{}: h has shape {}, expected [{}, {}] for annotations {}", hd, method,
               shape_str(h.shape()), n, hd, shape_str(annotations.shape()));
  if (keep_mask.defined())
    HEED_CHECK(keep_mask.dtype() == DType::Bool && keep_mask.shape() == Shape({n, l}),
               "SpatialAttention.{}: keep_mask must be Bool of shape [{}, {}] for annotations {}, got {} of shape {}",
               method, n, l, shape_str(annotations.shape()), dtype_name(keep_mask.dtype()),
               shape_str(keep_mask.shape()));

  Tensor hidden = projected.defined() ? projected : encoder_att->forward(annotations);  // W_c a + b
  if (h.defined()) hidden = hidden + unsqueeze(decoder_att->forward(h), 1);          // + W_d h
  Tensor scores = squeeze(full_att->forward(tanh(hidden)), 2);                       // e (N, L)
  Tensor weights = keep_mask.defined() ? masked_softmax(scores, keep_mask, 1) : softmax(scores, 1);
  Tensor gate;
  if (f_beta) {
    gate = h.defined() ? sigmoid(f_beta->forward(h))
                       : expand(reshape(sigmoid(f_beta->bias), {1, 1}), {n, 1});  // h = 0: σ(b_β)
  }
  return {weights, gate};
}

SpatialAttentionOutput SpatialAttention::forward(const Tensor& annotations, const Tensor& projected, const Tensor& h,
                                                 const Tensor& keep_mask) {
  auto [weights, gate] = attention_weights(annotations, projected, h, keep_mask, "forward");
  Tensor context = squeeze(matmul(unsqueeze(weights, 1), annotations), 1);  // Σ_i α_i a_i (N, D)
  if (gate.defined()) context = context * gate;
  return {context, weights, gate};
}

Tensor SpatialAttention::forward(const Tensor& annotations) {
  return forward(annotations, Tensor(), Tensor(), Tensor()).context;
}

HardAttentionOutput SpatialAttention::forward_hard(const Tensor& annotations, const Tensor& projected, const Tensor& h,
                                                   const Tensor& keep_mask, Generator& gen, bool use_expectation) {
  auto [weights, gate] = attention_weights(annotations, projected, h, keep_mask, "forward_hard");
  const int64_t n = annotations.size(0), l = annotations.size(1);
  const DType dtype = annotations.dtype();

  // H[α] = -Σ α log α, with log α replaced by log 1 = 0 where α == 0 (masked or underflowed), so such
  // locations add 0 and pass 0 gradient.
  const Tensor is_zero = eq(weights.detach(), 0.0).to(dtype);
  Tensor entropy = -sum(weights * log(weights + is_zero), {1});

  HardAttentionOutput out;
  out.weights = weights;
  out.gate = gate;
  out.entropy = entropy;
  if (use_expectation) {
    out.context = squeeze(matmul(unsqueeze(weights, 1), annotations), 1);
    out.locations = full({n}, -1.0, DType::Int64);
    out.sample_log_prob = zeros({n}, dtype);
  } else {
    // s ~ Categorical(α) by inverting the cumulative sum with one uniform draw per example.
    const std::vector<double> alpha = weights.detach().to_vector<double>();
    std::vector<int64_t> locations(static_cast<std::size_t>(n), -1);
    std::vector<double> one_hot(static_cast<std::size_t>(n * l), 0.0), empty_row(static_cast<std::size_t>(n), 0.0);
    for (int64_t i = 0; i < n; ++i) {
      const double u = gen.uniform();
      double cumulative = 0.0;
      int64_t last_positive = -1;
      for (int64_t j = 0; j < l; ++j) {
        const double p = alpha[i * l + j];
        if (p <= 0.0) continue;
        last_positive = j;
        cumulative += p;
        if (u < cumulative) {
          locations[i] = j;
          break;
        }
      }
      if (locations[i] < 0) locations[i] = last_positive;  // rounding left u above the total
      if (locations[i] < 0) empty_row[i] = 1.0;               // fully masked: no location
      else one_hot[i * l + locations[i]] = 1.0;
    }
    const Tensor selector = tensor(one_hot, {n, l}, DType::Float64).to(dtype);
    out.context = squeeze(matmul(unsqueeze(selector, 1), annotations), 1);  // a_s
    // log α_s; a fully masked row reads log(0 + 1) = 0.
    out.sample_log_prob = log(sum(weights * selector, {1}) + tensor(empty_row, {n}, DType::Float64).to(dtype));
    out.locations = index_tensor(locations, {n});
  }
  if (gate.defined()) out.context = out.context * gate;
  return out;
}

std::string SpatialAttention::extra_repr() const {
  std::string s = fmt::format("annotation_size={}, hidden_size={}, attention_size={}", options_.annotation_size(),
                              options_.hidden_size(), options_.attention_size());
  if (!options_.gate()) s += ", gate=False";
  if (!options_.score_bias()) s += ", score_bias=False";
  return s;
}

Tensor doubly_stochastic_penalty(const Tensor& weights, const Tensor& step_mask, double lambda) {
  HEED_CHECK(weights.defined() && weights.dim() == 3 && is_floating(weights.dtype()),
             "doubly_stochastic_penalty: weights must be float (N, T, L), got {}", shape_or_undefined(weights));
  Tensor alphas = weights;
  if (step_mask.defined()) {
    HEED_CHECK(step_mask.dtype() == DType::Bool && step_mask.shape() == Shape({weights.size(0), weights.size(1)}),
               "doubly_stochastic_penalty: step_mask must be Bool of shape [{}, {}] for weights {}, got {} of shape {}",
               weights.size(0), weights.size(1), shape_str(weights.shape()), dtype_name(step_mask.dtype()),
               shape_str(step_mask.shape()));
    alphas = alphas * unsqueeze(step_mask.to(weights.dtype()), 2);  // padding steps count 0
  }
  Tensor per_location = square(rsub(1.0, sum(alphas, {1})));  // (1 - Σ_t α_ti)², (N, L)
  return mean(sum(per_location, {1})) * lambda;
}

Tensor reinforce_surrogate_loss(const Tensor& log_likelihood, const Tensor& sample_log_prob, const Tensor& entropy,
                                double baseline, double reward_scale, double entropy_weight) {
  HEED_CHECK(log_likelihood.defined() && log_likelihood.dim() == 1 && sample_log_prob.defined() &&
                 sample_log_prob.shape() == log_likelihood.shape() &&
                 (!entropy.defined() || entropy.shape() == log_likelihood.shape()),
             "reinforce_surrogate_loss: log_likelihood, sample_log_prob and entropy must all have shape (N), got {}, "
             "{} and {}",
             shape_or_undefined(log_likelihood), shape_or_undefined(sample_log_prob), shape_or_undefined(entropy));
  const Tensor advantage = sub(log_likelihood.detach(), baseline);  // stop-gradient on (log p - b)
  Tensor objective = log_likelihood + advantage * sample_log_prob * reward_scale;
  if (entropy.defined() && entropy_weight != 0.0) objective = objective + entropy * entropy_weight;
  return -mean(objective);
}

HardAttentionTrainer::HardAttentionTrainer(const HardAttentionTrainerOptions& options) : options_(options) {
  HEED_CHECK(options.semi_sampling_p() >= 0.0 && options.semi_sampling_p() <= 1.0,
             "HardAttentionTrainer: semi_sampling_p must be in [0, 1], got {}", options.semi_sampling_p());
  HEED_CHECK(options.baseline_decay() >= 0.0 && options.baseline_decay() <= 1.0,
             "HardAttentionTrainer: baseline_decay must be in [0, 1], got {}", options.baseline_decay());
}

bool HardAttentionTrainer::use_expectation(Generator& gen) const {
  return options_.semi_sampling_p() > 0.0 && gen.uniform() < options_.semi_sampling_p();
}

Tensor HardAttentionTrainer::surrogate(const Tensor& log_likelihood, const Tensor& sample_log_prob,
                                       const Tensor& entropy) {
  Tensor loss = reinforce_surrogate_loss(log_likelihood, sample_log_prob, entropy, baseline_, options_.reward_scale(),
                                         options_.entropy_weight());
  const double batch_mean = mean(log_likelihood.detach()).item();
  baseline_ = options_.baseline_decay() * baseline_ + (1.0 - options_.baseline_decay()) * batch_mean;
  return loss;
}

}  // namespace heed::nn
