// The steps of attention, by hand and with heed::nn::AttentionPooling: score, weights, context.
#include <heed/heed.hpp>

#include <cstdio>

int main() {
  heed::manual_seed(0);
  const int64_t N = 2, T = 5, F = 4;
  heed::Tensor h = heed::randn({N, T, F});    // encoder: one state per input step (here random)
  heed::Tensor keep = heed::bool_tensor({1, 1, 1, 1, 1,  1, 1, 1, 0, 0}, {N, T});  // 2nd row: 3 real steps

  auto pool = std::make_shared<heed::nn::AttentionPooling>(F);
  auto [context, weights] = pool->forward(h, keep);                 // (N, F), (N, T)

  // The same by hand: score e_t = tanh(h_t W + b), weights a = softmax over kept t, context = sum_t a_t h_t.
  heed::Tensor e = heed::tanh(heed::matmul(h, pool->weight) + pool->bias).squeeze(2);   // (N, T)
  heed::Tensor a = heed::masked_softmax(e, keep, 1);
  heed::Tensor c = heed::sum(a.unsqueeze(2) * h, {1});

  std::vector<float> w = weights.to_vector<float>();
  std::printf("weights %s\n", weights.to_string().c_str());
  bool ok = heed::allclose(weights, a) && heed::allclose(context, c, 1e-5, 1e-6);
  ok = ok && heed::allclose(heed::sum(weights, {1}), heed::ones({N}));   // each row sums to 1
  ok = ok && w[8] == 0.0f && w[9] == 0.0f;                                // padded steps get exactly 0
  return ok ? 0 : 1;
}
