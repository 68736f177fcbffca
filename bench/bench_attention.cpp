// bench/bench_attention.cpp — attention forward + backward against sequence length: heed's naive and
// flash SDPA kernels on the workload of the PyTorch peer mha_scaling.py in PEERS_DIR (q, k, v (1, 4, T, 64)
// float32, random upstream gradient), and heed's MultiheadAttention (E = 256, 4 heads of 64, batch 1,
// self-attention) with weights (naive kernel) and without (flash). One JSON line per row, the peer's
// fields plus impl "heed".
//
//   variant    what one step runs
//   naive      scaled_dot_product_attention, AttentionKernel::Naive (softmax(q kᵀ / 8) v, recorded ops)
//   flash      flash_attention (one op; blockwise forward, recomputing backward)
//   mha_naive  MultiheadAttention::forward(x, x, x) with need_weights (naive kernel) + backward
//   mha_flash  the same with need_weights = false (flash kernel) + backward
//   naive_fwd, flash_fwd  forward only, under NoGradGuard (inference): the memory a kernel needs beyond
//              its output, without gradients (the spec's M11 bound; the output alone is T x 256 floats)
//
// Usage: bench_attention [T ...]            every variant at each T (default 128 256 512 1024 2048 4096)
//        bench_attention --child T VARIANT  one row, in this process
// Each row runs in a fresh child process started with MALLOC_MMAP_THRESHOLD_=65536 and
// MALLOC_TRIM_THRESHOLD_=0 (freed tensors go back to the OS), measured the peer's way: one warm-up step,
// free its results, baseline = VmRSS, reset the peak (echo 5 > /proc/self/clear_refs), one step keeping
// its results, peak_delta = VmHWM - baseline ("vmhwm_delta_MB": the extra resident memory one training
// step needs, including the gradients of q, k, v). Then BENCH_WARMUP (3) untimed and BENCH_ITERS (10)
// timed steps (fewer when a step takes over 250 ms); median, min, p90 in ms, and cpu_ms: the median
// CPU time of this process per step (less disturbed than wall time when other processes share the cores).
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <heed/heed.hpp>

#include "bench_util.hpp"
#include "heed/nn/attention.hpp"

namespace {

namespace nn = heed::nn;
using heed::Tensor;
using heed_bench::env_int;
using heed_bench::machine_busy_s;
using heed_bench::own_cpu_s;

constexpr int64_t kBatch = 1, kHeads = 4, kHeadDim = 64;

double now_ms() {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

long status_kb(const char* key) {
  std::ifstream f("/proc/self/status");
  std::string line;
  const std::string prefix = std::string(key) + ":";
  while (std::getline(f, line))
    if (line.rfind(prefix, 0) == 0) return std::atol(line.c_str() + prefix.size());
  return -1;
}

int child(int64_t T, const std::string& variant) {
  heed::manual_seed(0);
  const bool mha_variant = variant.rfind("mha_", 0) == 0;
  std::function<Tensor()> step;  // one forward + backward; returns the output (kept alive by the caller)
  Tensor q, k, v, g, x;
  std::shared_ptr<nn::MultiheadAttention> mha;
  if (!mha_variant) {
    q = heed::randn({kBatch, kHeads, T, kHeadDim}).requires_grad_();
    k = heed::randn({kBatch, kHeads, T, kHeadDim}).requires_grad_();
    v = heed::randn({kBatch, kHeads, T, kHeadDim}).requires_grad_();
    g = heed::randn({kBatch, kHeads, T, kHeadDim});
    const bool forward_only = variant == "naive_fwd" || variant == "flash_fwd";
    const nn::AttentionKernel kernel =
        variant.rfind("naive", 0) == 0 ? nn::AttentionKernel::Naive : nn::AttentionKernel::Flash;
    if (variant != "naive" && variant != "flash" && !forward_only) {
      std::fprintf(stderr, "bench_attention: unknown variant '%s' (naive, flash, mha_naive, mha_flash)\n", variant.c_str());
      return 2;
    }
    step = [&, kernel, forward_only] {
      if (forward_only) {
        heed::NoGradGuard no_grad;
        return nn::scaled_dot_product_attention(q, k, v, Tensor(), Tensor(), nn::SdpaOptions().kernel(kernel)).output;
      }
      q.zero_grad(), k.zero_grad(), v.zero_grad();
      Tensor o = nn::scaled_dot_product_attention(q, k, v, Tensor(), Tensor(), nn::SdpaOptions().kernel(kernel)).output;
      o.backward(g);
      return o;
    };
  } else {
    if (variant != "mha_naive" && variant != "mha_flash") {
      std::fprintf(stderr, "bench_attention: unknown variant '%s'\n", variant.c_str());
      return 2;
    }
    const int64_t E = kHeads * kHeadDim;
    mha = std::make_shared<nn::MultiheadAttention>(E, kHeads);
    x = heed::randn({kBatch, T, E}).requires_grad_();
    g = heed::randn({kBatch, T, E});
    nn::MhaArgs args;
    args.need_weights = variant == "mha_naive";
    step = [&, args] {
      x.zero_grad();
      mha->zero_grad();
      nn::AttentionOutput o = mha->forward(x, x, x, args);
      o.output.backward(g);
      return o.output;
    };
  }

  // memory, the peer's method
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  const long ru0 = ru.ru_maxrss;
  { Tensor o = step(); }
  getrusage(RUSAGE_SELF, &ru);
  const long ru1 = ru.ru_maxrss;
  if (mha) {
    x.zero_grad();
    mha->zero_grad();
  } else {
    q.zero_grad(), k.zero_grad(), v.zero_grad();
  }
  const long base = status_kb("VmRSS");
  { std::ofstream("/proc/self/clear_refs") << "5"; }
  double first_ms = 0.0, vmhwm_delta_mb = 0.0;
  {
    const double t0 = now_ms();
    Tensor o = step();
    first_ms = now_ms() - t0;
    const long hwm = status_kb("VmHWM");
    vmhwm_delta_mb = static_cast<double>(hwm - base) / 1024.0;
  }

  // time
  int warmup = env_int("BENCH_WARMUP", 3), iters = env_int("BENCH_ITERS", 10);
  if (first_ms > 250.0) warmup = 1, iters = std::min(iters, 5);
  for (int i = 0; i < warmup; ++i) step();
  std::vector<double> times, cpu_times;
  const double busy0 = machine_busy_s(), own0 = own_cpu_s(), wall0 = now_ms();
  for (int i = 0; i < iters; ++i) {
    const double t0 = now_ms(), c0 = own_cpu_s();
    step();
    times.push_back(now_ms() - t0);
    cpu_times.push_back((own_cpu_s() - c0) * 1000.0);
  }
  const double wall_s = (now_ms() - wall0) / 1000.0;
  const long cpus = sysconf(_SC_NPROCESSORS_ONLN);
  const double foreign =
      std::max(0.0, ((machine_busy_s() - busy0) - (own_cpu_s() - own0)) / (wall_s * static_cast<double>(cpus)));
  std::sort(times.begin(), times.end());
  std::sort(cpu_times.begin(), cpu_times.end());
  const std::size_t n = times.size();
  const double median = n % 2 ? times[n / 2] : 0.5 * (times[n / 2 - 1] + times[n / 2]);
  const double p90 = times[std::min(n - 1, static_cast<std::size_t>(std::lround(0.9 * static_cast<double>(n - 1))))];
  const double attn_matrix_mb = static_cast<double>(kBatch * kHeads * T * T * 4) / (1 << 20);
  std::printf(
      "{\"bench\": \"mha_scaling\", \"impl\": \"heed\", \"variant\": \"%s\", \"B\": %lld, \"heads\": %lld, "
      "\"head_dim\": %lld, \"seq_len\": %lld, \"median_ms\": %.4f, \"min_ms\": %.4f, \"p90_ms\": %.4f, "
      "\"n_timed\": %zu, \"cpu_ms\": %.4f, \"foreign_cpu\": %.3f, \"attn_matrix_MB\": %.2f, \"vmhwm_delta_MB\": %.2f, "
      "\"ru_maxrss_delta_MB\": %.2f, \"mem_method\": \"fresh proc, glibc mmap_threshold=64K, clear_refs=5, "
      "VmHWM-VmRSS\", \"unit\": \"ms/fwd+bwd\"}\n",
      variant.c_str(), static_cast<long long>(kBatch), static_cast<long long>(kHeads),
      static_cast<long long>(kHeadDim), static_cast<long long>(T), median, times.front(), p90, n, cpu_times[n / 2], foreign,
      attn_matrix_mb, vmhwm_delta_mb, static_cast<double>(ru1 - ru0) / 1024.0);
  std::fflush(stdout);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 4 && std::string(argv[1]) == "--child") return child(std::atoll(argv[2]), argv[3]);
  std::vector<std::string> seqs;
  for (int i = 1; i < argc; ++i) seqs.push_back(argv[i]);
  if (seqs.empty()) seqs = {"128", "256", "512", "1024", "2048", "4096"};
  setenv("MALLOC_MMAP_THRESHOLD_", "65536", 1);
  setenv("MALLOC_TRIM_THRESHOLD_", "0", 1);
  int status_all = 0;
  for (const std::string& T : seqs)
    for (const char* variant : {"naive", "flash", "naive_fwd", "flash_fwd", "mha_naive", "mha_flash"}) {
      std::fflush(stdout);
      const pid_t pid = fork();
      if (pid == 0) {
        execl("/proc/self/exe", argv[0], "--child", T.c_str(), variant, static_cast<char*>(nullptr));
        std::_Exit(127);
      }
      int status = 0;
      waitpid(pid, &status, 0);
      if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        std::printf("{\"bench\": \"mha_scaling\", \"impl\": \"heed\", \"variant\": \"%s\", \"seq_len\": %s, \"error\": %d}\n",
                    variant, T.c_str(), status);
        status_all = 1;
      }
    }
  return status_all;
}
