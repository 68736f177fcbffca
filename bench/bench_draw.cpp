// bench/bench_draw.cpp — one DRAW training step, the workload of the PyTorch peer draw_step.py (in
// PEERS_DIR), printed as the same JSON line (impl "heed").
//
//   28 x 28 images, batch 64, T = 10, read N = 2, write N = 5, encoder LSTMCell(2·2² + 256 -> 256), decoder
//   LSTMCell(100 -> 256), z 100; attention parameters from h_dec through Linear(256, 5) (heed::nn::DrawRead,
//   DrawWrite: 1-based filterbank, Z + 1e-8, as the peer). Loss: Σ-over-pixels BCE on logits c_T + Σ_t KL,
//   mean over the batch. Adam(1e-3), no clipping, a fixed uniform [0, 1) batch.
// Timing as the peer: BENCH_WARMUP (5) untimed steps, one more, then BENCH_ITERS (20) timed steps; median,
// min and p90 in ms, foreign_cpu = the other processes' share of all CPUs meanwhile.
// bench/run_draw.sh runs this and the peer alternately and prints the ratio.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <heed/heed.hpp>
#include <heed/nn/draw_attention.hpp>
#include <memory>
#include <vector>

#include "bench_util.hpp"

namespace {

namespace nn = heed::nn;
using heed::Tensor;

constexpr int64_t kSide = 28, kBatch = 64, kSteps = 10, kReadN = 2, kWriteN = 5, kHidden = 256, kLatent = 100;

double now_ms() {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

class DrawStep : public nn::Module {
 public:
  DrawStep() : Module("DRAW") {
    enc = register_module("enc", std::make_shared<nn::LSTMCell>(2 * kReadN * kReadN + kHidden, kHidden));
    dec = register_module("dec", std::make_shared<nn::LSTMCell>(kLatent, kHidden));
    mu = register_module("mu", std::make_shared<nn::Linear>(kHidden, kLatent));
    logsigma = register_module("logsigma", std::make_shared<nn::Linear>(kHidden, kLatent));
    read = register_module("read", std::make_shared<nn::DrawRead>(nn::DrawAttentionOptions(kHidden, kReadN, kSide, kSide)));
    write = register_module("write", std::make_shared<nn::DrawWrite>(nn::DrawAttentionOptions(kHidden, kWriteN, kSide, kSide)));
  }
  Tensor loss(const Tensor& x) {
    Tensor c = heed::zeros({kBatch, kSide, kSide});
    nn::LSTMState e{heed::zeros({kBatch, kHidden}), heed::zeros({kBatch, kHidden})}, d = e;
    Tensor kl = heed::scalar(0.0);
    for (int64_t t = 0; t < kSteps; ++t) {
      const Tensor r = read->forward(x, x - heed::sigmoid(c), d.h).glimpse;
      e = enc->forward(heed::concat({r, d.h}, 1), e);
      const Tensor m = (*mu)(e.h), ls = (*logsigma)(e.h);
      d = dec->forward(m + heed::exp(ls) * heed::randn(m.shape()), d);
      c = c + write->forward_write(d.h).canvas_update;
      kl = kl + heed::gaussian_kl(m, ls * 2.0, heed::Reduction::Sum);
    }
    return (heed::binary_cross_entropy_with_logits(c, x, heed::Reduction::Sum) + kl) / static_cast<double>(kBatch);
  }
  std::shared_ptr<nn::LSTMCell> enc, dec;
  std::shared_ptr<nn::Linear> mu, logsigma;
  std::shared_ptr<nn::DrawRead> read;
  std::shared_ptr<nn::DrawWrite> write;
};

}  // namespace

int main() {
  using heed_bench::env_int;
  heed::manual_seed(0);
  DrawStep model;
  heed::optim::Adam opt(model.parameters(), heed::optim::AdamOptions(1e-3));
  const Tensor x = heed::rand({kBatch, kSide, kSide});
  auto step = [&] {
    opt.zero_grad();
    model.loss(x).backward();
    opt.step();
  };
  const int warmup = env_int("BENCH_WARMUP", 5), iters = env_int("BENCH_ITERS", 20);
  for (int i = 0; i < warmup + 1; ++i) step();
  const double busy0 = heed_bench::machine_busy_s(), own0 = heed_bench::own_cpu_s(), wall0 = now_ms();
  std::vector<double> times;
  for (int i = 0; i < iters; ++i) {
    const double t0 = now_ms();
    step();
    times.push_back(now_ms() - t0);
  }
  const double wall_s = (now_ms() - wall0) * 1e-3, cpus = static_cast<double>(sysconf(_SC_NPROCESSORS_ONLN));
  const double foreign =
      std::max(0.0, ((heed_bench::machine_busy_s() - busy0) - (heed_bench::own_cpu_s() - own0)) / (wall_s * cpus));
  std::sort(times.begin(), times.end());
  const std::size_t n = times.size();
  const double median = n % 2 ? times[n / 2] : 0.5 * (times[n / 2 - 1] + times[n / 2]);
  const double p90 = times[std::min(n - 1, static_cast<std::size_t>(0.9 * static_cast<double>(n - 1) + 0.5))];
  const char* blas_threads = std::getenv("OPENBLAS_NUM_THREADS");
  std::printf(
      "{\"bench\": \"draw\", \"variant\": \"read2_write5_T10\", \"impl\": \"heed\", \"blas_threads\": \"%s\", "
      "\"batch\": %lld, \"glimpses\": %lld, \"read_N\": %lld, \"write_N\": %lld, \"lstm\": %lld, \"z\": %lld, "
      "\"params\": %lld, \"unit\": \"ms/train_step\", \"median_ms\": %.4f, \"min_ms\": %.4f, \"p90_ms\": %.4f, "
      "\"n_timed\": %zu, \"foreign_cpu\": %.3f, \"n_warmup\": %d}\n",
      blas_threads ? blas_threads : "default", static_cast<long long>(kBatch), static_cast<long long>(kSteps),
      static_cast<long long>(kReadN), static_cast<long long>(kWriteN), static_cast<long long>(kHidden),
      static_cast<long long>(kLatent), static_cast<long long>(model.num_parameters()), median, times.front(), p90, n,
      foreign, warmup);
  return 0;
}
