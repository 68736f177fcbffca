// bench/bench_core.cpp — heed's core costs, one JSON line per row (the format of the PyTorch
// peer scripts that bench/run_core.sh runs beside it).
//
//   gemm             float32 n x n matmul (n = 256, 512, 1024) through heed::matmul and through a direct
//                    cblas_sgemm on the same buffers, timed call by call in alternation; GFLOP/s and ratio
//   elementwise      add, mul, tanh, exp, sigmoid, relu forward on 1M floats, ns per element
//   per_op_overhead  chains of 100 ops on 1-element tensors, microseconds per op, the rows of
//                    per_op_overhead.py: add_nograd_fwd, add_grad_fwd, add_grad_fwd_bwd, mul_tanh_grad_fwd_bwd
//
// Usage: bench_core [gemm] [elementwise] [per_op_overhead]   (no argument: all three)
// Timing: warm-up calls, then timed calls until at least BENCH_ITERS (20; 200 chains for per-op) and
// at least 0.4 s (gemm, elementwise); median, min and p90 are reported. Each section first waits up to
// BENCH_QUIET_WAIT (30) s for the machine to be < 10% busy and reports the other processes' CPU share
// during the measurement as foreign_cpu, like the peers.
#include <cblas.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include <heed/heed.hpp>

#include "bench_util.hpp"

extern "C" char* openblas_get_corename(void);
extern "C" int openblas_get_num_threads(void);

namespace {

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

using heed_bench::env_int;
using heed_bench::machine_busy_s;
using heed_bench::own_cpu_s;
const double kCpus = static_cast<double>(sysconf(_SC_NPROCESSORS_ONLN));

// Waits until the machine is < 10% busy, at most BENCH_QUIET_WAIT seconds; returns the wait or -1.
double wait_quiet() {
  const double max_wait = env_int("BENCH_QUIET_WAIT", 30), t0 = now_s();
  for (;;) {
    const double b0 = machine_busy_s();
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    const double waited = now_s() - t0;
    if ((machine_busy_s() - b0) / (0.5 * kCpus) < 0.10) return waited;
    if (waited >= max_wait) return -1;
  }
}

// Other processes' share of all CPUs between construction and foreign().
struct LoadMonitor {
  double busy0 = machine_busy_s(), own0 = own_cpu_s(), wall0 = now_s();
  double foreign() const {
    const double wall = now_s() - wall0;
    const double f = ((machine_busy_s() - busy0) - (own_cpu_s() - own0)) / (wall * kCpus);
    return std::max(0.0, f);
  }
};

struct Stats {
  double median = 0, min = 0, p90 = 0;  // seconds
  std::size_t n = 0;
};
Stats summarize(std::vector<double> t) {
  std::sort(t.begin(), t.end());
  Stats s;
  s.n = t.size();
  s.min = t.front();
  s.median = t.size() % 2 ? t[t.size() / 2] : 0.5 * (t[t.size() / 2 - 1] + t[t.size() / 2]);
  s.p90 = t[std::min(t.size() - 1, static_cast<std::size_t>(0.9 * static_cast<double>(t.size() - 1) + 0.5))];
  return s;
}

// Times fn() until both min_calls and min_seconds are reached (at most 5000 calls).
std::vector<double> collect(const std::function<void()>& fn, int min_calls, double min_seconds) {
  std::vector<double> t;
  const double start = now_s();
  while (t.size() < 5000 && (static_cast<int>(t.size()) < min_calls || now_s() - start < min_seconds)) {
    const double t0 = now_s();
    fn();
    t.push_back(now_s() - t0);
  }
  return t;
}

volatile double g_sink = 0;  // keeps results observable

// ---- (a) GEMM ------------------------------------------------------------------------------------
void bench_gemm() {
  const int iters = env_int("BENCH_ITERS", 20);
  for (int n : {256, 512, 1024}) {
    heed::manual_seed(42);
    heed::Tensor a = heed::randn({n, n}), b = heed::randn({n, n});
    heed::Tensor c = heed::zeros({n, n});  // the cblas baseline's preallocated output (like the peers' out=)
    const float* pa = a.data<float>();
    const float* pb = b.data<float>();
    float* pc = c.data<float>();
    auto direct = [&] {
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, pa, n, pb, n, 0.0f, pc, n);
    };
    heed::Tensor y;
    auto through_heed = [&] { y = heed::matmul(a, b); };
    for (int w = 0; w < 3; ++w) {
      direct();
      through_heed();
    }
    const double waited = wait_quiet();
    // Alternate the two call by call so that both see the same machine state.
    std::vector<double> t_direct, t_heed;
    LoadMonitor mon;
    const double start = now_s();
    while (t_direct.size() < 5000 && (static_cast<int>(t_direct.size()) < iters || now_s() - start < 0.8)) {
      double t0 = now_s();
      direct();
      t_direct.push_back(now_s() - t0);
      t0 = now_s();
      through_heed();
      t_heed.push_back(now_s() - t0);
    }
    const double foreign = mon.foreign();
    const double diff = heed::max_abs_diff(y, c);
    g_sink = g_sink + y.data<float>()[0];
    const double flops = 2.0 * n * static_cast<double>(n) * n;
    const Stats sd = summarize(t_direct), sh = summarize(t_heed);
    const char* coretype = std::getenv("OPENBLAS_CORETYPE");
    for (int which = 0; which < 2; ++which) {
      const Stats& s = which == 0 ? sd : sh;
      std::string extra = which == 0 ? "" : fmt::format(", \"ratio_vs_cblas\": {:.3f}, \"max_abs_diff_vs_cblas\": {:.3g}",
                                                        sd.median / sh.median, diff);
      fmt::print("{{\"bench\": \"gemm\", \"variant\": \"{}\", \"impl\": \"{}\", \"n\": {}, \"dtype\": \"float32\", "
                 "\"openblas_core\": \"{}\", \"blas_threads\": {}, \"coretype_env\": \"{}\", \"median_ms\": {:.4f}, "
                 "\"min_ms\": {:.4f}, \"p90_ms\": {:.4f}, \"n_timed\": {}, \"gflops_median\": {:.1f}, "
                 "\"gflops_best\": {:.1f}, \"foreign_cpu\": {:.3f}, \"quiet_wait_s\": {:.1f}{}}}\n",
                 which == 0 ? "cblas_sgemm" : "heed.matmul", which == 0 ? "openblas-c" : "heed", n,
                 openblas_get_corename(), openblas_get_num_threads(), coretype ? coretype : "unset(autodetect)",
                 s.median * 1e3, s.min * 1e3, s.p90 * 1e3, s.n, flops / s.median / 1e9, flops / s.min / 1e9, foreign,
                 waited, extra);
    }
    std::fflush(stdout);
  }
}

// ---- (b) elementwise -----------------------------------------------------------------------------
void bench_elementwise() {
  const int64_t n = 1 << 20;
  heed::manual_seed(7);
  heed::Tensor x = heed::randn({n}), z = heed::randn({n});
  using Op = std::function<heed::Tensor()>;
  const std::vector<std::pair<const char*, Op>> ops{
      {"add", [&] { return heed::add(x, z); }},       {"mul", [&] { return heed::mul(x, z); }},
      {"tanh", [&] { return heed::tanh(x); }},        {"exp", [&] { return heed::exp(x); }},
      {"sigmoid", [&] { return heed::sigmoid(x); }},  {"relu", [&] { return heed::relu(x); }},
  };
  const double waited = wait_quiet();
  for (const auto& [name, op] : ops) {
    heed::Tensor y;
    for (int w = 0; w < 5; ++w) y = op();
    LoadMonitor mon;
    const Stats s = summarize(collect([&] { y = op(); }, env_int("BENCH_ITERS", 20), 0.4));
    g_sink = g_sink + y.data<float>()[0];
    fmt::print("{{\"bench\": \"elementwise\", \"variant\": \"{}\", \"impl\": \"heed\", \"numel\": {}, \"dtype\": "
               "\"float32\", \"median_ms\": {:.4f}, \"min_ms\": {:.4f}, \"p90_ms\": {:.4f}, \"n_timed\": {}, "
               "\"ns_per_element_median\": {:.3f}, \"ns_per_element_best\": {:.3f}, \"foreign_cpu\": {:.3f}, "
               "\"quiet_wait_s\": {:.1f}}}\n",
               name, n, s.median * 1e3, s.min * 1e3, s.p90 * 1e3, s.n, s.median * 1e9 / static_cast<double>(n),
               s.min * 1e9 / static_cast<double>(n), mon.foreign(), waited);
  }
  std::fflush(stdout);
}

// ---- (c) per-op tape overhead --------------------------------------------------------------------
void bench_per_op_overhead() {
  constexpr int kOps = 100, kReps = 200, kWarmup = 20;
  heed::Tensor a = heed::ones({1}).requires_grad_(), b = heed::full({1}, 0.001).requires_grad_();
  heed::Tensor a0 = heed::ones({1}), b0 = heed::full({1}, 0.001);
  heed::Tensor y;
  auto nograd = [&] {
    heed::NoGradGuard no_grad;
    y = a0;
    for (int i = 0; i < kOps; ++i) y = y + b0;
  };
  auto grad_fwd = [&] {  // PyTorch frees the graph when y dies; heed's tape is freed by clear_tape
    y = a;
    for (int i = 0; i < kOps; ++i) y = y + b;
    heed::clear_tape();
  };
  auto grad_fwd_bwd = [&] {
    a.zero_grad();
    b.zero_grad();
    y = a;
    for (int i = 0; i < kOps; ++i) y = y + b;
    y.backward();
  };
  auto mul_tanh = [&] {
    a.zero_grad();
    b.zero_grad();
    y = a;
    for (int i = 0; i < kOps; ++i) y = heed::tanh(y * b);
    y.backward();
  };
  const std::vector<std::tuple<const char*, std::function<void()>, int>> rows{
      {"add_nograd_fwd", nograd, kOps},
      {"add_grad_fwd", grad_fwd, kOps},
      {"add_grad_fwd_bwd", grad_fwd_bwd, kOps},
      {"mul_tanh_grad_fwd_bwd", mul_tanh, 2 * kOps}};
  for (const auto& [name, fn, nops] : rows) {
    for (int w = 0; w < kWarmup; ++w) fn();
    const double waited = wait_quiet();
    fn();
    LoadMonitor mon;
    const Stats s = summarize(collect(fn, kReps, 0.0));
    g_sink = g_sink + y.item();
    const double per_op = 1e6 / nops;
    fmt::print("{{\"bench\": \"per_op_overhead\", \"variant\": \"{}\", \"impl\": \"heed\", \"dtype\": \"float32\", "
               "\"ops_per_step\": {}, \"tensor_numel\": 1, \"median_ms\": {:.4f}, \"min_ms\": {:.4f}, "
               "\"p90_ms\": {:.4f}, \"n_timed\": {}, \"median_us_per_op\": {:.3f}, \"min_us_per_op\": {:.3f}, "
               "\"p90_us_per_op\": {:.3f}, \"foreign_cpu\": {:.3f}, \"quiet_wait_s\": {:.1f}}}\n",
               name, nops, s.median * 1e3, s.min * 1e3, s.p90 * 1e3, s.n, s.median * per_op, s.min * per_op,
               s.p90 * per_op, mon.foreign(), waited);
    std::fflush(stdout);
  }
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> sections(argv + 1, argv + argc);
  if (sections.empty()) sections = {"gemm", "elementwise", "per_op_overhead"};
  for (const std::string& s : sections) {
    if (s == "gemm") bench_gemm();
    else if (s == "elementwise") bench_elementwise();
    else if (s == "per_op_overhead") bench_per_op_overhead();
    else {
      std::fprintf(stderr, "bench_core: unknown section '%s' (gemm, elementwise, per_op_overhead)\n", s.c_str());
      return 2;
    }
  }
  return 0;
}
