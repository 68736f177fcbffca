// Multi-head attention as self-attention and as cross-attention, with key padding.
#include <heed/heed.hpp>

#include <cstdio>

int main() {
  heed::manual_seed(0);
  const int64_t N = 2, T = 5, S = 6, E = 16, H = 4;
  heed::Tensor target = heed::randn({N, T, E});   // e.g. the decoder's tokens
  heed::Tensor source = heed::randn({N, S, E});   // e.g. the encoder's output ("memory")
  heed::Tensor source_keep = heed::nn::lengths_keep_mask(heed::index_tensor({6, 3}), S);   // 2nd: 3 real keys

  heed::nn::MultiheadAttention mha(heed::nn::MultiheadAttentionOptions(E, H));   // PyTorch's parameter names
  heed::nn::MhaArgs self_args;
  self_args.average_weights = false;                        // one weight matrix per head
  auto self = mha.forward(target, target, target, self_args);   // Q, K, V from the same sequence
  heed::nn::MhaArgs cross_args;
  cross_args.key_padding = source_keep;
  auto cross = mha.forward(target, source, source, cross_args); // Q from target, K and V from source

  std::printf("cross-attention weights, 2nd example (averaged over heads):\n%s\n",
              cross.weights.to_string().c_str());
  bool ok = self.output.shape() == heed::Shape{N, T, E} && self.weights.shape() == heed::Shape{N, H, T, T};
  ok = ok && cross.weights.shape() == heed::Shape{N, T, S};
  ok = ok && heed::allclose(heed::sum(cross.weights, {2}), heed::ones({N, T}));
  std::vector<float> w = cross.weights.to_vector<float>();
  for (int64_t t = 0; t < T; ++t)
    for (int64_t s = 3; s < S; ++s) ok = ok && w[(1 * T + t) * S + s] == 0.0f;   // padded keys get exactly 0
  return ok ? 0 : 1;
}
