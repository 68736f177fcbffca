// framework/dist/fit_support.hpp — what heed::fit (framework/train/train.cpp) calls to train across
// processes. In a single process every function here is the identity or does nothing, so fit's numbers and
// files are exactly those of a plain single-process run.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "heed/data.hpp"

namespace heed::nn {
class Module;
}
namespace heed::dist {
class DataParallel;
}

namespace heed::dist::detail {

// One fit() call's view of the job. Every member that communicates must be called by every rank, in the
// same order.
class FitRun {
 public:
  // Reads the runtime (heed::dist::init() ran, or a single process). Warns once when a launcher started
  // several processes but init() was not called: each of them would train alone.
  FitRun();
  ~FitRun();
  FitRun(const FitRun&) = delete;
  FitRun& operator=(const FitRun&) = delete;

  bool distributed() const { return size_ > 1; }
  int rank() const { return rank_; }
  int size() const { return size_; }
  bool is_main() const { return rank_ == 0; }
  // This rank's share of the training set (the identity in a single process).
  data::DistributedSampler sampler() const { return data::DistributedSampler(size_, rank_); }
  // Wraps `model` in a DataParallel (rank 0's weights everywhere, gradients averaged during backward)
  // unless the program already did.
  void attach(nn::Module& model);
  // The element-wise sums over ranks, added in rank order: the same bits on every rank.
  std::vector<double> sum(const std::vector<double>& values) const;
  // Rank 0's value, on every rank.
  bool rank0(bool value) const;
  // Every rank's string, in rank order (one element in a single process).
  std::vector<std::string> gather(const std::string& mine) const;
  // Resume: every rank must have found the same checkpoint (a shared file system); `epoch` -1 = not found.
  void check_resume_agrees(const std::string& path, int epoch) const;
  // Throws unless the checkpoint was written by a run with as many processes as this one.
  void check_resume_world(int saved_world_size) const;
  // Waits for every rank (fit's end: rank 0's files are complete when fit returns on any rank).
  void barrier() const;

 private:
  int rank_ = 0, size_ = 1;
  std::unique_ptr<DataParallel> ddp_;
};

}  // namespace heed::dist::detail
