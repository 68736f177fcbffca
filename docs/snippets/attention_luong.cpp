// Luong attention: the four global scores, and local attention (monotonic and predictive).
#include <heed/nn/seq2seq_attention.hpp>
#include <heed/ops.hpp>
#include <heed/random.hpp>

#include <cmath>
#include <cstdio>

int main() {
  heed::manual_seed(0);
  const int64_t N = 2, S = 9, D = 8;
  heed::Tensor source = heed::randn({N, S, D});   // h̄_s, the encoder's states
  heed::Tensor h = heed::randn({N, D});           // h_t, the decoder's current state
  using heed::nn::LuongAlign;
  using heed::nn::LuongScore;
  bool ok = true;
  for (LuongScore score : {LuongScore::Dot, LuongScore::General, LuongScore::Concat, LuongScore::Location}) {
    heed::nn::LuongAttention attention(heed::nn::LuongAttentionOptions(D).score(score).max_source_length(S));
    heed::nn::LuongOutput out = attention.forward(h, attention.precompute(source), /*step=*/0);
    ok = ok && heed::allclose(heed::sum(out.weights, {1}), heed::ones({N}), 1e-5, 1e-6);  // global: sums to 1
    ok = ok && out.attentional.shape() == heed::Shape{N, D};   // h~_t = tanh(W_c [c_t; h_t])
    std::printf("global %-8s weights[0] %s\n", heed::nn::luong_score_name(score), out.weights.to_string(9).c_str());
  }
  // Local attention looks at the window [p_t - 2, p_t + 2] only: local-m sets p_t = t (here 4), local-p
  // predicts p_t from h_t and multiplies the weights by a Gaussian around it.
  for (LuongAlign align : {LuongAlign::LocalMonotonic, LuongAlign::LocalPredictive}) {
    heed::nn::LuongAttention attention(heed::nn::LuongAttentionOptions(D).score(LuongScore::General).align(align).window(2));
    heed::nn::LuongOutput out = attention.forward(h, attention.precompute(source), /*step=*/4);
    std::vector<float> w = out.weights.to_vector<float>();
    std::vector<float> p = out.position.to_vector<float>();
    for (int64_t n = 0; n < N; ++n) {
      const int64_t centre = align == LuongAlign::LocalMonotonic ? 4 : static_cast<int64_t>(std::lround(p[n]));
      for (int64_t s = 0; s < S; ++s) {
        if (s < centre - 2 || s > centre + 2) ok = ok && w[n * S + s] == 0.0f;   // outside the window: exactly 0
      }
    }
    std::printf("%s weights %s\n", heed::nn::luong_align_name(align), out.weights.to_string(9).c_str());
  }
  return ok ? 0 : 1;
}
