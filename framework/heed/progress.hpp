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

/// Named values shown after the bar, in this order, e.g. {{"loss", 0.31}, {"acc", 0.87}}.
using Metrics = std::vector<std::pair<std::string, double>>;

/// A one-line progress bar on stdout with elapsed time, ETA and the latest metrics.
class ProgressBar {
 public:
  /// `total` steps (at least 1), `label` printed first; force_plain prints plain lines even on a terminal.
  ProgressBar(int64_t total, std::string label = "", bool force_plain = false);
  /// Advances by `steps` (capped at total); non-empty `metrics` replace the shown ones.
  void update(int64_t steps = 1, const Metrics& metrics = {});
  void finish(const Metrics& extra = {});  ///< final line with elapsed time; idempotent
  double elapsed_seconds() const;  ///< wall-clock seconds since construction (steady clock)

 private:
  void draw(bool final_line);
  int64_t total_, done_ = 0;
  std::string label_;
  bool tty_, finished_ = false;
  int next_plain_quarter_ = 1;
  Metrics metrics_;
  std::chrono::steady_clock::time_point start_, last_draw_;
};

/// "loss 0.3100  acc 0.8700": each value with 4 decimals, two spaces between.
std::string format_metrics(const Metrics& metrics);
/// "12.3s" under a minute, "4m05s" under an hour, else "2h07m".
std::string format_duration(double seconds);

}  // namespace heed
