// bench/bench_util.hpp — what every heed benchmark needs to report times honestly: environment knobs and
// the CPU time other processes took while it measured (the peers' "foreign_cpu").
#pragma once
#include <sys/resource.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <string>

namespace heed_bench {

inline int env_int(const char* name, int fallback) {
  const char* v = std::getenv(name);
  return v ? std::atoi(v) : fallback;
}

// Busy CPU-seconds of the whole machine (all CPUs) from /proc/stat.
inline double machine_busy_s() {
  std::ifstream f("/proc/stat");
  std::string cpu;
  long long v[8] = {0};
  f >> cpu;
  for (long long& x : v) f >> x;
  return static_cast<double>(v[0] + v[1] + v[2] + v[5] + v[6]) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

// CPU-seconds used by this process.
inline double own_cpu_s() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
         static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1e-6;
}

}  // namespace heed_bench
