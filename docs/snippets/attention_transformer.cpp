// Transformer pieces: sinusoidal positions, residual + LayerNorm, masked self-attention in the decoder.
#include <heed/heed.hpp>

#include <cmath>
#include <cstdio>

int main() {
  heed::manual_seed(0);
  const int64_t N = 1, T = 4, S = 5, E = 8, H = 2;
  heed::nn::PositionalEncoding positions(E);
  heed::Tensor tgt = positions.forward(heed::zeros({N, T, E}));   // zeros + PE: the encoding itself
  heed::Tensor memory = heed::randn({N, S, E});                   // the encoder's output

  auto options = heed::nn::TransformerLayerOptions(E, H).dim_feedforward(16).dropout(0.0);
  heed::nn::TransformerDecoderLayer layer(options);   // post-LN: x = norm(x + sublayer(x)), three times
  heed::nn::AttentionMasks causal;
  causal.causal = true;                                // position i may not look at positions after i
  auto out = layer.forward(tgt, memory, causal, heed::nn::AttentionMasks(), /*need_weights=*/true);

  std::printf("masked self-attention, head 0:\n%s\n", out.self_weights.to_string().c_str());
  std::vector<float> pe = tgt.to_vector<float>(), w = out.self_weights.to_vector<float>();
  bool ok = std::abs(pe[2 * E + 0] - std::sin(2.0)) < 1e-6 && std::abs(pe[2 * E + 1] - std::cos(2.0)) < 1e-6;
  ok = ok && out.output.shape() == heed::Shape{N, T, E} && out.cross_weights.shape() == heed::Shape{N, H, T, S};
  for (int64_t h = 0; h < H; ++h)
    for (int64_t i = 0; i < T; ++i)
      for (int64_t j = i + 1; j < T; ++j) ok = ok && w[(h * T + i) * T + j] == 0.0f;   // the future is masked
  // The last sublayer ends in LayerNorm (weight 1, bias 0 at init): every position has mean 0, variance 1.
  heed::Tensor mean = heed::mean(out.output, {2});
  heed::Tensor var = heed::mean((out.output - mean.unsqueeze(2)) * (out.output - mean.unsqueeze(2)), {2});
  ok = ok && heed::allclose(mean, heed::zeros({N, T}), 0, 1e-5) && heed::allclose(var, heed::ones({N, T}), 0, 1e-3);
  return ok ? 0 : 1;
}
