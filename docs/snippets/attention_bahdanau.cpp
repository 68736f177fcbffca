// Additive (Bahdanau) attention for one decoder step: e_s = v^T tanh(W s_{i-1} + U h_s).
#include <heed/nn/seq2seq_attention.hpp>
#include <heed/ops.hpp>
#include <heed/random.hpp>

#include <cstdio>

int main() {
  heed::manual_seed(0);
  const int64_t N = 2, S = 6, Dk = 8, Dq = 5;
  heed::Tensor encoder_outputs = heed::randn({N, S, Dk});            // h_1 .. h_S
  heed::Tensor lengths = heed::index_tensor({6, 4});                 // 2nd sentence: 4 real words
  heed::Tensor keep = heed::nn::keep_mask_from_lengths(lengths, S);  // (N, S) Bool, true = may attend

  auto attention = std::make_shared<heed::nn::BahdanauAttention>(Dq, Dk, /*units=*/16);
  heed::nn::AttentionMemory memory = attention->precompute(encoder_outputs, keep);   // U h_s, once
  heed::Tensor state = heed::randn({N, Dq});                          // s_{i-1}, the previous decoder state
  auto [context, weights] = attention->forward(state, memory);       // (N, Dk), (N, S)

  // e_s by hand from the parameters, then a = softmax over the real words and c = sum_s a_s h_s.
  heed::Tensor e = heed::matmul(heed::tanh(heed::matmul(state, attention->query_proj->weight.transpose(0, 1)).unsqueeze(1) +
                                           heed::matmul(encoder_outputs, attention->key_proj->weight.transpose(0, 1))),
                                attention->v->weight.transpose(0, 1)).squeeze(2);
  heed::Tensor a = heed::masked_softmax(e, keep, 1);
  std::printf("weights %s\n", weights.to_string().c_str());
  bool ok = heed::allclose(weights, a, 1e-5, 1e-6) &&
            heed::allclose(context, heed::sum(a.unsqueeze(2) * encoder_outputs, {1}), 1e-5, 1e-6);
  ok = ok && heed::allclose(heed::sum(weights, {1}), heed::ones({N}));
  ok = ok && weights.to_vector<float>()[S + 4] == 0.0f && weights.to_vector<float>()[S + 5] == 0.0f;
  return ok ? 0 : 1;
}
