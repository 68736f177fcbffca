// framework/dist/fit_support.cpp — heed::fit across processes (fit_support.hpp).
#include "dist/fit_support.hpp"

#include <cstdio>

#include "dist/backend.hpp"
#include "heed/dist.hpp"

namespace heed::dist::detail {

FitRun::FitRun() {
  if (is_initialized()) {
    rank_ = runtime().rank;
    size_ = runtime().size;
    return;
  }
  const int launched = launcher_world_size();
  static bool warned = false;
  if (launched > 1 && !warned) {
    warned = true;
    std::fprintf(stderr,
                 "heed::fit: this process is one of %d started by a launcher (mpirun?), but heed::dist::init() was not "
                 "called: each process trains alone on all the data. Call heed::dist::init(&argc, &argv) at the start "
                 "of main (docs/distributed.md).\n",
                 launched);
  }
}

FitRun::~FitRun() = default;

void FitRun::attach(nn::Module& model) {
  if (distributed() && !has_data_parallel(model)) ddp_ = std::make_unique<DataParallel>(model);
}

std::vector<double> FitRun::sum(const std::vector<double>& values) const {
  if (!distributed()) return values;
  const int64_t n = static_cast<int64_t>(values.size());
  std::vector<int64_t> counts(static_cast<std::size_t>(size_));
  raw_allgather(&n, sizeof n, counts.data());
  for (int r = 0; r < size_; ++r)
    HEED_CHECK(counts[r] == n, "fit: rank {} has {} values to average where rank {} has {} (seen from rank {})", r,
               counts[r], rank_, n, rank_);
  std::vector<double> all(static_cast<std::size_t>(n * size_));
  raw_allgather(values.data(), static_cast<std::size_t>(n) * sizeof(double), all.data());
  std::vector<double> out(all.begin(), all.begin() + n);
  for (int r = 1; r < size_; ++r)
    for (int64_t i = 0; i < n; ++i) out[static_cast<std::size_t>(i)] += all[static_cast<std::size_t>(r * n + i)];
  return out;
}

bool FitRun::rank0(bool value) const {
  if (!distributed()) return value;
  char v = value ? 1 : 0;
  raw_bcast(&v, 1, 0);
  return v != 0;
}

std::vector<std::string> FitRun::gather(const std::string& mine) const {
  if (!distributed()) return {mine};
  return allgather_strings(mine);
}

void FitRun::check_resume_agrees(const std::string& path, int epoch) const {
  if (!distributed()) return;
  const std::vector<double> mine = {static_cast<double>(epoch)};
  std::vector<double> all(static_cast<std::size_t>(size_));
  raw_allgather(mine.data(), sizeof(double), all.data());
  for (int r = 1; r < size_; ++r) {
    if (all[r] == all[0]) continue;
    auto state = [&](int who) {
      return all[who] < 0 ? std::string("finds no checkpoint")
                          : fmt::format("resumes after epoch {}", static_cast<int>(all[who]));
    };
    throw Error(fmt::format(
        "fit: the ranks disagree about the resume checkpoint '{}': rank 0 {}, rank {} {}. Every rank reads it, so it "
        "must be visible to every process (a shared file system, or a copy on every machine)",
        path, state(0), r, state(r)));
  }
}

void FitRun::check_resume_world(int saved_world_size) const {
  HEED_CHECK(saved_world_size == size_,
             "it was written by a run with {} process{}, this run has {}: resume with the same number of processes "
             "(mpirun -np {}), or delete the file to start afresh",
             saved_world_size, saved_world_size == 1 ? "" : "es", size_, saved_world_size);
}

void FitRun::barrier() const {
  if (distributed()) raw_barrier();
}

}  // namespace heed::dist::detail
