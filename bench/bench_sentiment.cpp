// bench/bench_sentiment.cpp — one training step of the seed's sentiment model, the workload of
// the PyTorch peer sentiment_lstm_attn.py (in PEERS_DIR), printed as the same JSON line (impl "heed").
//
//   Embedding(5000, 32) -> LSTM(100, all hidden states H (B, T, 100), batch_first)
//   last_hidden: context = h_n[-1]
//   attn:        e = tanh(H W + b), W (100, 1), b (T, 1);  a = softmax over t;  context = sum_t a_t h_t
//   -> Linear(100, 1) -> sigmoid -> BCE;  Adam(lr 1e-3);  batch 100, length 32.
// One step = zero_grad + forward + loss + backward + optimizer step on a fixed random batch.
//
// Usage: bench_sentiment [last_hidden] [attn]   (no argument: both, in the peer's order)
// Timing as the peer: BENCH_WARMUP (5) untimed steps, one more, then BENCH_ITERS (20) timed steps;
// median, min and p90 in ms. foreign_cpu is the other processes' share of all CPUs meanwhile (near 0 =
// a quiet machine). bench/run_sentiment.sh runs this and the peer alternately and prints the ratio.
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include <heed/heed.hpp>

#include "bench_util.hpp"

namespace {

namespace nn = heed::nn;
using heed::Tensor;

constexpr int64_t kVocab = 5000, kEmbed = 32, kHidden = 100, kSteps = 32, kBatch = 100;

double now_ms() {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

using heed_bench::env_int;
using heed_bench::machine_busy_s;
using heed_bench::own_cpu_s;

class SentimentLSTM : public nn::Module {
 public:
  explicit SentimentLSTM(bool attention) : Module("SentimentLSTM"), attention_(attention) {
    emb = register_module("emb", std::make_shared<nn::Embedding>(kVocab, kEmbed));
    lstm = register_module("lstm", std::make_shared<nn::LSTM>(nn::LSTMOptions(kEmbed, kHidden).batch_first(true)));
    if (attention_) {
      W = register_parameter("W", heed::randn({kHidden, 1}) * 0.05);
      b = register_parameter("b", heed::zeros({kSteps, 1}));
    }
    fc = register_module("fc", std::make_shared<nn::Linear>(kHidden, 1));
  }

  Tensor forward(const Tensor& tokens) override {
    auto [states, h_n, c_n] = lstm->forward(emb->forward(tokens), {});  // states (B, T, H)
    Tensor context;
    if (attention_) {
      Tensor e = heed::tanh(heed::matmul(states, W) + b);          // (B, T, 1)
      Tensor a = heed::softmax(e, 1);                              // over time
      context = heed::sum(states * a, std::vector<int64_t>{1});    // (B, H)
    } else {
      context = heed::select(h_n, 0, h_n.size(0) - 1);             // (B, H), the last layer
    }
    return heed::squeeze(heed::sigmoid(fc->forward(context)), 1);
  }

  std::shared_ptr<nn::Embedding> emb;
  std::shared_ptr<nn::LSTM> lstm;
  std::shared_ptr<nn::Linear> fc;
  Tensor W, b;

 private:
  bool attention_;
};

void bench(bool attention) {
  heed::manual_seed(0);
  auto model = std::make_shared<SentimentLSTM>(attention);
  heed::optim::Adam opt(model->parameters(), heed::optim::AdamOptions(1e-3));
  const Tensor x = heed::randint(0, kVocab, {kBatch, kSteps});
  const Tensor y = heed::randint(0, 2, {kBatch}).to(heed::DType::Float32);
  auto step = [&] {
    opt.zero_grad();
    Tensor loss = heed::binary_cross_entropy(model->forward(x), y);
    loss.backward();
    opt.step();
  };
  const int warmup = env_int("BENCH_WARMUP", 5), iters = env_int("BENCH_ITERS", 20);
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
  const std::size_t n = times.size();
  const double median = n % 2 ? times[n / 2] : 0.5 * (times[n / 2 - 1] + times[n / 2]);
  const double p90 = times[std::min(n - 1, static_cast<std::size_t>(0.9 * static_cast<double>(n - 1) + 0.5))];
  const char* blas_threads = std::getenv("OPENBLAS_NUM_THREADS");
  std::printf(
      "{\"bench\": \"sentiment_lstm\", \"variant\": \"%s\", \"impl\": \"heed\", \"blas_threads\": \"%s\", "
      "\"dtype\": \"float32\", \"batch\": %lld, \"seq_len\": %lld, \"params\": %lld, \"unit\": \"ms/train_step\", "
      "\"median_ms\": %.4f, \"min_ms\": %.4f, \"p90_ms\": %.4f, \"n_timed\": %zu, \"foreign_cpu\": %.3f, "
      "\"n_warmup\": %d}\n",
      attention ? "attn" : "last_hidden", blas_threads ? blas_threads : "default", static_cast<long long>(kBatch),
      static_cast<long long>(kSteps), static_cast<long long>(model->num_parameters()), median, times.front(), p90, n,
      foreign, warmup);
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> variants(argv + 1, argv + argc);
  if (variants.empty()) variants = {"attn", "last_hidden"};
  for (const std::string& v : variants) {
    if (v != "attn" && v != "last_hidden") {
      std::fprintf(stderr, "bench_sentiment: unknown variant '%s' (attn, last_hidden)\n", v.c_str());
      return 2;
    }
    bench(v == "attn");
  }
  return 0;
}
