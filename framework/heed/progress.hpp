// heed/progress.hpp — a progress bar with ETA and live metrics for training loops.
//
//   heed::ProgressBar bar(steps, "epoch 1/10");
//   for (...) { ...; bar.update(1, {{"loss", loss}, {"acc", acc}}); }
//   bar.finish({{"val_acc", 0.81}});
//
// On a terminal it redraws one line (at most 10 times a second); when stdout is not a TTY (CI, a pipe)
// it prints a plain line at about every 25% and one at the end, so logs stay readable.
#pragma once
#include <chrono>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace heed {

using Metrics = std::vector<std::pair<std::string, double>>;

class ProgressBar {
 public:
  ProgressBar(int64_t total, std::string label = "", bool force_plain = false);
  void update(int64_t steps = 1, const Metrics& metrics = {});
  void finish(const Metrics& extra = {});  ///< final line with elapsed time; idempotent
  double elapsed_seconds() const;

 private:
  void draw(bool final_line);
  int64_t total_, done_ = 0;
  std::string label_;
  bool tty_, finished_ = false;
  int next_plain_quarter_ = 1;
  Metrics metrics_;
  std::chrono::steady_clock::time_point start_, last_draw_;
};

std::string format_metrics(const Metrics& metrics);
std::string format_duration(double seconds);

}  // namespace heed
