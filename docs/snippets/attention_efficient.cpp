// Cheaper attention: linear attention (an RNN when causal) and block-sparse attention with a pattern.
#include <heed/heed.hpp>

#include <cstdio>

int main() {
  heed::manual_seed(0);
  const int64_t N = 1, H = 2, L = 16, d = 4;
  heed::Tensor q = heed::randn({N, H, L, d}), k = heed::randn({N, H, L, d}), v = heed::randn({N, H, L, d});

  // Linear attention: phi(x) = elu(x) + 1 replaces exp; O(L) time and memory, no L x L matrix.
  heed::Tensor fast = heed::nn::causal_linear_attention(q, k, v);
  auto slow = heed::nn::linear_attention_parallel(q, k, v, heed::nn::causal_keep_mask(L, L));   // the L x L form
  bool ok = heed::allclose(fast, slow.output, 1e-4, 1e-5);

  // Sparse attention: each query sees the last 4 keys and every 4th key back (Child et al.'s strided
  // pattern); the kernel visits only the 4 x 4 tiles that hold a kept entry.
  heed::Tensor pattern = heed::nn::strided_mask(L, /*stride=*/4);
  heed::nn::BlockLayout layout = heed::nn::make_block_layout(pattern, /*block_size=*/4);
  heed::Tensor sparse = heed::nn::block_sparse_attention(q, k, v, layout);
  auto dense = heed::nn::sparse_attention_reference(q, k, v, pattern);   // full scores, masked softmax
  ok = ok && heed::allclose(sparse, dense.output, 1e-4, 1e-5);

  std::vector<uint8_t> keep = pattern.to_vector<uint8_t>();
  std::vector<float> w = dense.weights.to_vector<float>();
  for (int64_t i = 0; i < L * L; ++i) ok = ok && (keep[i] || w[i] == 0.0f);   // outside the pattern: 0
  std::printf("strided pattern keeps %.0f%% of the tiles; linear and sparse kernels match their references: %s\n",
              100 * layout.density(), ok ? "yes" : "no");
  return ok ? 0 : 1;
}
