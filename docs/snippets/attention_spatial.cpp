// Show, Attend and Tell: soft and hard attention over the locations of a feature map.
#include <heed/heed.hpp>
#include <heed/nn/spatial_attention.hpp>

#include <cmath>
#include <cstdio>

int main() {
  heed::manual_seed(0);
  const int64_t N = 2, L = 3 * 3, D = 6, Hd = 5;        // a 3 x 3 feature map with 6 channels
  heed::Tensor annotations = heed::randn({N, L, D});     // a_i, e.g. conv features flattened to L = H W
  heed::Tensor h = heed::randn({N, Hd});                 // the caption decoder's previous state

  heed::nn::SpatialAttention attention(heed::nn::SpatialAttentionOptions(D, Hd, /*attention=*/8));
  heed::Tensor projected = attention.project_annotations(annotations);   // W_c a_i + b, once per image
  auto soft = attention.forward(annotations, projected, h);              // z = β Σ_i α_i a_i
  heed::Generator gen(7);
  auto hard = attention.forward_hard(annotations, projected, h, heed::Tensor(), gen);   // z = β a_s, s ~ α

  std::printf("soft weights %s\nhard locations %s\n", soft.weights.to_string(9).c_str(),
              hard.locations.to_string().c_str());
  heed::Tensor expected = soft.gate * heed::sum(soft.weights.unsqueeze(2) * annotations, {1});
  bool ok = heed::allclose(soft.context, expected, 1e-5, 1e-6);
  ok = ok && heed::allclose(heed::sum(soft.weights, {1}), heed::ones({N}));
  std::vector<int64_t> s = hard.locations.to_vector<int64_t>();
  std::vector<float> a = annotations.to_vector<float>(), z = hard.context.to_vector<float>();
  std::vector<float> beta = hard.gate.to_vector<float>();
  for (int64_t n = 0; n < N; ++n) {   // the hard context is the sampled location's annotation, gated by β
    ok = ok && s[n] >= 0 && s[n] < L;
    for (int64_t d = 0; ok && d < D; ++d) ok = std::abs(z[n * D + d] - beta[n] * a[(n * L + s[n]) * D + d]) < 1e-5f;
  }
  return ok ? 0 : 1;
}
