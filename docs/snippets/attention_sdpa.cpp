// Scaled dot-product self-attention with a causal mask: softmax(Q K^T / sqrt(d)) V.
#include <heed/heed.hpp>

#include <cmath>
#include <cstdio>

int main() {
  heed::manual_seed(0);
  const int64_t L = 4, E = 8;
  heed::Tensor x = heed::randn({1, L, E});
  heed::Tensor Wq = heed::randn({E, E}), Wk = heed::randn({E, E}), Wv = heed::randn({E, E});
  heed::Tensor q = heed::matmul(x, Wq), k = heed::matmul(x, Wk), v = heed::matmul(x, Wv);   // self: all from x

  auto [out, weights] = heed::nn::scaled_dot_product_attention(
      q, k, v, heed::Tensor(), heed::Tensor(), heed::nn::SdpaOptions().causal(true).need_weights(true));

  // By hand: scores, then a softmax that keeps j <= i only.
  heed::Tensor scores = heed::matmul(q, k.transpose(1, 2)) / std::sqrt(double(E));
  heed::Tensor p = heed::masked_softmax(scores, heed::nn::causal_keep_mask(L, L), -1);
  // The flash kernel computes the same output without forming the L x S weights.
  heed::Tensor flash = heed::nn::flash_attention(q, k, v, heed::Tensor(), heed::Tensor(), std::nullopt, /*causal=*/true);

  std::printf("weights %s\n", weights.to_string().c_str());
  std::vector<float> w = weights.to_vector<float>();
  bool ok = heed::allclose(weights, p, 1e-5, 1e-6) && heed::allclose(out, heed::matmul(p, v), 1e-4, 1e-5);
  ok = ok && heed::allclose(flash, out, 1e-4, 1e-5);
  ok = ok && w[0 * L + 1] == 0.0f && w[1 * L + 3] == 0.0f;   // no query sees a later key
  ok = ok && heed::allclose(heed::sum(weights, {2}), heed::ones({1, L}));
  return ok ? 0 : 1;
}
