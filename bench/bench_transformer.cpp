// bench/bench_transformer.cpp — Transformer training steps, the workloads of
// the PyTorch peer transformer_block.py (in PEERS_DIR) printed as the same JSON lines (impl "heed"), plus the
// speed of cached against uncached generation.
//
//   token_cls       Embedding(1000, 128) + learned positions (1, 64, 128) -> TransformerEncoder(2 x
//                   TransformerEncoderLayer(128, 4 heads, ff 512, dropout 0.1, post-LN, ReLU), no final
//                   norm) -> Linear(128, 16) per token; CE; Adam(1e-3); batch 32, seq 64; train mode
//   char_lm_causal  vocab 96, the same encoder with a causal mask, Linear(128, 96); batch 16, seq 128
//   generate        TransformerLM (vocab 96, d 128, 4 heads, ff 512, 2 layers), batch 1, a 16-token prompt
//                   continued by 240 tokens (greedy): tokens per second with the KV cache and re-running
//                   the whole prefix at every step
// One training step = zero_grad + forward + loss + backward + optimizer step on a fixed random batch.
//
// Usage: bench_transformer [token_cls] [char_lm_causal] [generate]   (no argument: all three)
// Timing as the peer: BENCH_WARMUP (5) untimed steps, one more, then BENCH_ITERS (20) timed steps;
// median, min and p90 in ms; foreign_cpu = other processes' share of all CPUs meanwhile.
// bench/run_transformer.sh runs this and the peer alternately and prints the ratios.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
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
using heed_bench::machine_busy_s;
using heed_bench::own_cpu_s;

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

struct Stats {
  double median, min, p90, foreign;
  size_t n;
};

template <class F>
Stats time_steps(F&& step, int warmup, int iters) {
  for (int i = 0; i < warmup + 1; ++i) step();
  const double busy0 = machine_busy_s(), own0 = own_cpu_s(), wall0 = now_ms();
  std::vector<double> times;
  for (int i = 0; i < iters; ++i) {
    const double t0 = now_ms();
    step();
    times.push_back(now_ms() - t0);
  }
  const double wall_s = (now_ms() - wall0) * 1e-3;
  const double cpus = static_cast<double>(sysconf(_SC_NPROCESSORS_ONLN));
  const double foreign = std::max(0.0, ((machine_busy_s() - busy0) - (own_cpu_s() - own0)) / (wall_s * cpus));
  std::sort(times.begin(), times.end());
  const size_t n = times.size();
  const double median = n % 2 ? times[n / 2] : 0.5 * (times[n / 2 - 1] + times[n / 2]);
  const double p90 = times[std::min(n - 1, static_cast<size_t>(0.9 * static_cast<double>(n - 1) + 0.5))];
  return {median, times.front(), p90, foreign, n};
}

void bench_train(const char* variant, int64_t vocab, int64_t n_out, int64_t seq, int64_t batch, bool causal) {
  heed::manual_seed(0);
  auto model = std::make_shared<TinyTransformer>(vocab, n_out, seq);
  model->train();
  heed::optim::Adam opt(model->parameters(), heed::optim::AdamOptions(1e-3));
  const Tensor x = heed::randint(0, vocab, {batch, seq});
  const Tensor y = heed::randint(0, n_out, {batch, seq});
  auto step = [&] {
    opt.zero_grad();
    Tensor loss = heed::cross_entropy(model->forward(x, causal), y);
    loss.backward();
    opt.step();
  };
  const int warmup = env_int("BENCH_WARMUP", 5), iters = env_int("BENCH_ITERS", 20);
  const Stats s = time_steps(step, warmup, iters);
  const char* blas_threads = std::getenv("OPENBLAS_NUM_THREADS");
  std::printf(
      "{\"bench\": \"transformer\", \"variant\": \"%s\", \"impl\": \"heed\", \"blas_threads\": \"%s\", "
      "\"dtype\": \"float32\", \"batch\": %lld, \"seq_len\": %lld, \"d_model\": 128, \"heads\": 4, \"ff\": 512, "
      "\"layers\": 2, \"vocab\": %lld, \"params\": %lld, \"tokens_per_step\": %lld, \"unit\": \"ms/train_step\", "
      "\"median_ms\": %.4f, \"min_ms\": %.4f, \"p90_ms\": %.4f, \"n_timed\": %zu, \"foreign_cpu\": %.3f, "
      "\"n_warmup\": %d}\n",
      variant, blas_threads ? blas_threads : "default", static_cast<long long>(batch), static_cast<long long>(seq),
      static_cast<long long>(vocab), static_cast<long long>(model->num_parameters()),
      static_cast<long long>(batch * seq), s.median, s.min, s.p90, s.n, s.foreign, warmup);
  std::fflush(stdout);
}

void bench_generate() {
  heed::manual_seed(0);
  nn::TransformerLM lm(nn::TransformerLMOptions(96, 128).nhead(4).num_layers(2).dim_feedforward(512).max_len(512));
  lm.eval();
  const int64_t prompt_len = 16, n_new = env_int("BENCH_GEN_TOKENS", 240);
  const Tensor prompt = heed::randint(0, 96, {1, prompt_len});
  for (bool cached : {true, false}) {
    const int iters = cached ? 5 : 2;
    Tensor out;
    auto run = [&] {
      auto decoder = cached ? lm.incremental_decoder() : lm.uncached_decoder();
      out = nn::greedy_decode(*decoder, prompt, n_new);
    };
    const Stats s = time_steps(run, 0, iters);
    std::printf(
        "{\"bench\": \"transformer\", \"variant\": \"generate_%s\", \"impl\": \"heed\", \"batch\": 1, "
        "\"prompt\": %lld, \"new_tokens\": %lld, \"unit\": \"ms/generation\", \"median_ms\": %.4f, \"min_ms\": %.4f, "
        "\"tokens_per_s\": %.1f, \"n_timed\": %zu, \"foreign_cpu\": %.3f}\n",
        cached ? "cached" : "uncached", static_cast<long long>(prompt_len), static_cast<long long>(n_new), s.median,
        s.min, 1000.0 * static_cast<double>(n_new) / s.median, s.n, s.foreign);
    std::fflush(stdout);
  }
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> variants(argv + 1, argv + argc);
  if (variants.empty()) variants = {"token_cls", "char_lm_causal", "generate"};
  for (const std::string& v : variants) {
    if (v == "token_cls") {
      bench_train("token_cls", 1000, 16, 64, 32, false);
    } else if (v == "char_lm_causal") {
      bench_train("char_lm_causal", 96, 96, 128, 16, true);
    } else if (v == "generate") {
      bench_generate();
    } else {
      std::fprintf(stderr, "bench_transformer: unknown variant '%s' (token_cls, char_lm_causal, generate)\n", v.c_str());
      return 2;
    }
  }
  return 0;
}
