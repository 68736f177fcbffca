// bench/bench_anomaly.cpp — what anomaly mode (heed::AnomalyModeGuard, heed/autograd.hpp) costs.
//
//   token_cls       the Transformer training step of bench_transformer (Embedding(1000, 128) + learned
//                   positions -> 2 x TransformerEncoderLayer(128, 4 heads, ff 512, dropout 0.1) ->
//                   Linear(128, 16); CE; Adam; batch 32, seq 64)
//   char_lm_causal  the same with a causal mask, vocab 96, batch 16, seq 128
//   small_ops       a chain of 64 elementwise ops on (8, 16) tensors that require grad, plus backward:
//                   the per-op overhead, where the scan of each output is cheapest and the bookkeeping
//                   is most visible
// Off and on alternate step by step (the same model and batch), so both see the same machine load.
// Prints one JSON line per workload: median ms off and on, and their ratio.
//
// Usage: bench_anomaly [token_cls] [char_lm_causal] [small_ops]   (no argument: all three)
// BENCH_WARMUP (3) untimed pairs, then BENCH_ITERS (15) timed pairs.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include <heed/heed.hpp>
#include <heed/nn/transformer.hpp>

#include "bench_util.hpp"

namespace {

namespace nn = heed::nn;
using heed::Tensor;
using heed_bench::env_int;

double now_ms() {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

class TinyTransformer : public nn::Module {
 public:
  TinyTransformer(int64_t vocab, int64_t n_out, int64_t seq) : Module("TinyTransformer") {
    tok = register_module("tok", std::make_shared<nn::Embedding>(vocab, 128));
    pos = register_parameter("pos", heed::randn({1, seq, 128}) * 0.02);
    enc = register_module("enc", std::make_shared<nn::TransformerEncoder>(
                                     nn::TransformerLayerOptions(128, 4).dim_feedforward(512).dropout(0.1), 2, false));
    head = register_module("head", std::make_shared<nn::Linear>(128, n_out));
  }
  Tensor forward(const Tensor& x, bool causal) {
    nn::AttentionMasks masks;
    masks.causal = causal;
    Tensor h = tok->forward(x) + heed::narrow(pos, 1, 0, x.size(1));
    return head->forward(enc->forward(h, masks).output);
  }
  std::shared_ptr<nn::Embedding> tok;
  Tensor pos;
  std::shared_ptr<nn::TransformerEncoder> enc;
  std::shared_ptr<nn::Linear> head;
};

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

// Times step() with anomaly mode off and on, alternating; prints the JSON line.
template <class F>
void off_vs_on(const char* variant, const char* unit, F&& step) {
  const int warmup = env_int("BENCH_WARMUP", 3), iters = env_int("BENCH_ITERS", 15);
  std::vector<double> off, on;
  for (int i = 0; i < warmup + iters; ++i) {
    for (bool anomaly : {false, true}) {
      heed::AnomalyModeGuard guard(anomaly);
      const double t0 = now_ms();
      step();
      const double dt = now_ms() - t0;
      if (i >= warmup) (anomaly ? on : off).push_back(dt);
    }
  }
  const double m_off = median(off), m_on = median(on);
  std::printf(
      "{\"bench\": \"anomaly\", \"variant\": \"%s\", \"unit\": \"%s\", \"off_median_ms\": %.4f, "
      "\"on_median_ms\": %.4f, \"on_over_off\": %.3f, \"n_timed\": %zu}\n",
      variant, unit, m_off, m_on, m_on / m_off, off.size());
  std::fflush(stdout);
}

void bench_train(const char* variant, int64_t vocab, int64_t n_out, int64_t seq, int64_t batch, bool causal) {
  heed::manual_seed(0);
  auto model = std::make_shared<TinyTransformer>(vocab, n_out, seq);
  model->train();
  heed::optim::Adam opt(model->parameters(), heed::optim::AdamOptions(1e-3));
  const Tensor x = heed::randint(0, vocab, {batch, seq});
  const Tensor y = heed::randint(0, n_out, {batch, seq});
  off_vs_on(variant, "ms/train_step", [&] {
    opt.zero_grad();
    Tensor loss = heed::cross_entropy(model->forward(x, causal), y);
    loss.backward();
    opt.step();
  });
}

void bench_small_ops() {
  heed::manual_seed(0);
  Tensor w = heed::randn({8, 16}).requires_grad_();
  const Tensor b = heed::randn({8, 16});
  off_vs_on("small_ops", "ms/64 ops + backward", [&] {
    Tensor h = w;
    for (int i = 0; i < 16; ++i) h = heed::tanh(h * 0.5 + b) - b * 0.1;
    heed::sum(h).backward();
    w.zero_grad();
  });
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> variants(argv + 1, argv + argc);
  if (variants.empty()) variants = {"token_cls", "char_lm_causal", "small_ops"};
  for (const std::string& v : variants) {
    if (v == "token_cls") {
      bench_train("token_cls", 1000, 16, 64, 32, false);
    } else if (v == "char_lm_causal") {
      bench_train("char_lm_causal", 96, 96, 128, 16, true);
    } else if (v == "small_ops") {
      bench_small_ops();
    } else {
      std::fprintf(stderr, "bench_anomaly: unknown variant '%s' (token_cls, char_lm_causal, small_ops)\n", v.c_str());
      return 2;
    }
  }
  return 0;
}
