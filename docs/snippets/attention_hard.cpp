// Soft versus hard attention: the soft context is the expectation of the hard (sampled) one.
#include <heed/heed.hpp>

#include <cmath>
#include <cstdio>

int main() {
  heed::manual_seed(0);
  const int64_t N = 1, L = 4, D = 3, Hd = 5;      // one image with 4 locations of 3 features
  heed::Tensor a = heed::randn({N, L, D});         // annotations a_i
  heed::Tensor h = heed::randn({N, Hd});           // the decoder's previous state
  heed::nn::SpatialAttention attention(heed::nn::SpatialAttentionOptions(D, Hd, /*attention=*/8));

  auto soft = attention.forward(a, heed::Tensor(), h);   // soft: z = β Σ_i α_i a_i, differentiable
  heed::Generator gen(1);
  const int samples = 4000;
  heed::Tensor mean_z = heed::zeros({N, D});
  std::vector<double> frequency(L, 0.0);
  {
    heed::NoGradGuard no_grad;
    for (int k = 0; k < samples; ++k) {               // hard: s ~ Categorical(α), z = β a_s
      auto hard = attention.forward_hard(a, heed::Tensor(), h, heed::Tensor(), gen);
      mean_z = mean_z + hard.context / samples;
      frequency[hard.locations.to_vector<int64_t>()[0]] += 1.0 / samples;
    }
  }
  std::vector<float> alpha = soft.weights.to_vector<float>();
  std::printf("alpha      %s\nfrequency  %.3f %.3f %.3f %.3f\n", soft.weights.to_string().c_str(), frequency[0],
              frequency[1], frequency[2], frequency[3]);
  std::printf("soft z     %s\nmean hard z %s\n", soft.context.to_string().c_str(), mean_z.to_string().c_str());
  bool ok = heed::max_abs_diff(mean_z, soft.context.detach()) < 0.05;   // E[hard z] = soft z
  for (int64_t i = 0; i < L; ++i) ok = ok && std::abs(frequency[i] - alpha[i]) < 0.03;

  // The sample has no gradient, so hard attention trains with REINFORCE: the surrogate's gradient
  // reaches the attention weights through log α_s, scaled by how good the sample was.
  auto hard = attention.forward_hard(a, heed::Tensor(), h, heed::Tensor(), gen);
  heed::Tensor log_likelihood = -heed::sum(heed::square(hard.context - 1.0), {1});   // stand-in for log p(y|s,a)
  heed::nn::HardAttentionTrainer trainer;
  heed::Tensor loss = trainer.surrogate(log_likelihood, hard.sample_log_prob, hard.entropy);
  loss.backward();
  heed::Tensor g = attention.encoder_att->weight.grad();
  ok = ok && g.defined() && heed::max(heed::abs(g)).item() > 0.0;
  return ok ? 0 : 1;
}
