// bench/bench_dist.cpp — data-parallel training throughput: the token_cls Transformer training step of
// bench_transformer.cpp (Embedding(1000, 128) + learned positions + TransformerEncoder(2 x (128, 4 heads,
// ff 512, dropout 0.1, post-LN)) + Linear(128, 16) per token; CE; Adam(1e-3); batch 32 x seq 64 per
// process, train mode) under heed::dist::DataParallel, one process per rank. Run it with mpirun (or alone:
// one process); bench/run_dist.sh runs 1 and 2 processes beside the PyTorch DDP peer (bench/peers_dist).
//
// Each rank draws its own fixed random batch. Timing as bench_transformer: BENCH_WARMUP (5) untimed steps,
// one more, BENCH_ITERS (20) timed steps, every rank in step (each step's averaging is a collective).
// Rank 0 prints one JSON line: the median step time, samples per second of the whole job (processes x 32 /
// median), the share of the timed steps backward spent blocked waiting for the last buckets
// ("wait_share") and the share spent in all of DataParallel's work (packing, MPI calls, unpacking;
// "comm_share"), then the same step timed with no gradient averaging (DataParallel::no_sync) for the
// communication overhead ("nosync_median_ms").
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include <heed/dist.hpp>
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

// The model of bench_transformer.cpp's token_cls.
class TinyTransformer : public nn::Module {
 public:
  TinyTransformer(int64_t vocab, int64_t n_out, int64_t seq) : Module("TinyTransformer") {
    tok = register_module("tok", std::make_shared<nn::Embedding>(vocab, 128));
    pos = register_parameter("pos", heed::randn({1, seq, 128}) * 0.02);
    enc = register_module("enc", std::make_shared<nn::TransformerEncoder>(
                                     nn::TransformerLayerOptions(128, 4).dim_feedforward(512).dropout(0.1), 2, false));
    head = register_module("head", std::make_shared<nn::Linear>(128, n_out));
  }
  Tensor forward(const Tensor& x) override {
    Tensor h = tok->forward(x) + heed::narrow(pos, 1, 0, x.size(1));
    return head->forward(enc->forward(h, nn::AttentionMasks()).output);
  }
  std::shared_ptr<nn::Embedding> tok;
  Tensor pos;
  std::shared_ptr<nn::TransformerEncoder> enc;
  std::shared_ptr<nn::Linear> head;
};

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

}  // namespace

int main(int argc, char** argv) {
  heed::dist::init(&argc, &argv);
  const int world = heed::dist::world_size(), rank = heed::dist::rank();
  const int64_t vocab = 1000, n_out = 16, seq = 64, batch = 32;
  heed::manual_seed(0);
  auto model = std::make_shared<TinyTransformer>(vocab, n_out, seq);
  model->train();
  heed::dist::DataParallel ddp(*model);
  heed::optim::Adam opt(model->parameters(), heed::optim::AdamOptions(1e-3));
  heed::Generator gen(100 + static_cast<uint64_t>(rank));
  const Tensor x = heed::randint(0, vocab, {batch, seq}, &gen);
  const Tensor y = heed::randint(0, n_out, {batch, seq}, &gen);
  auto step = [&] {
    opt.zero_grad();
    Tensor loss = heed::cross_entropy(model->forward(x), y);
    loss.backward();
    opt.step();
  };
  const int warmup = env_int("BENCH_WARMUP", 5), iters = env_int("BENCH_ITERS", 20);
  auto time_steps = [&](bool sync) {
    std::vector<double> times;
    for (int i = 0; i < warmup + 1 + iters; ++i) {
      if (i == warmup + 1) ddp.reset_stats();
      const double t0 = now_ms();
      if (sync) {
        step();
      } else {
        auto local = ddp.no_sync();
        step();
      }
      if (i > warmup) times.push_back(now_ms() - t0);
    }
    return times;
  };
  heed::dist::barrier();
  const double busy0 = heed_bench::machine_busy_s(), own0 = heed_bench::own_cpu_s(), wall0 = now_ms();
  const std::vector<double> times = time_steps(true);
  const double wall_s = (now_ms() - wall0) * 1e-3;
  const heed::dist::DataParallel::Stats stats = ddp.stats();
  double timed_ms = 0;
  for (double t : times) timed_ms += t;
  // Other processes' CPU use meanwhile (the other ranks of this job count as foreign too: see foreign_cpu
  // against world / cpus).
  const double cpus = static_cast<double>(sysconf(_SC_NPROCESSORS_ONLN));
  const double foreign =
      std::max(0.0, ((heed_bench::machine_busy_s() - busy0) - (heed_bench::own_cpu_s() - own0)) / (wall_s * cpus));
  heed::dist::barrier();
  const std::vector<double> nosync = time_steps(false);
  // The slowest rank's shares (every rank's numbers to rank 0).
  const Tensor shares = heed::dist::allgather(
      heed::tensor({stats.wait_seconds * 1e3 / timed_ms, stats.comm_seconds * 1e3 / timed_ms}, {2}, heed::DType::Float64));
  if (rank == 0) {
    const std::vector<double> s = shares.to_vector<double>();
    double wait_share = 0, comm_share = 0;
    for (int r = 0; r < world; ++r) wait_share = std::max(wait_share, s[2 * r]), comm_share = std::max(comm_share, s[2 * r + 1]);
    const double med = median(times);
    const char* blas_threads = std::getenv("OPENBLAS_NUM_THREADS");
    std::printf(
        "{\"bench\": \"dist\", \"variant\": \"token_cls\", \"impl\": \"heed\", \"processes\": %d, \"blas_threads\": \"%s\", "
        "\"batch_per_process\": %lld, \"seq_len\": %lld, \"params\": %lld, \"buckets\": %zu, \"median_ms\": %.4f, "
        "\"min_ms\": %.4f, \"samples_per_s\": %.2f, \"nosync_median_ms\": %.4f, \"wait_share\": %.4f, "
        "\"comm_share\": %.4f, \"mb_sent_per_step\": %.3f, \"n_timed\": %zu, \"foreign_cpu\": %.3f}\n",
        world, blas_threads ? blas_threads : "default", static_cast<long long>(batch), static_cast<long long>(seq),
        static_cast<long long>(model->num_parameters()), ddp.bucket_names().size(), med,
        *std::min_element(times.begin(), times.end()), 1000.0 * static_cast<double>(world * batch) / med, median(nosync),
        wait_share, comm_share, stats.megabytes_sent / static_cast<double>(std::max<int64_t>(1, stats.syncs)), times.size(),
        foreign);
    std::fflush(stdout);
  }
  heed::dist::finalize();
  return 0;
}
