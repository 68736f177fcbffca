// framework/progress.cpp — terminal progress bar (heed/progress.hpp).
#include "heed/progress.hpp"

#include <unistd.h>

#include <algorithm>
#include <cstdio>

#include <fmt/format.h>

namespace heed {

std::string format_duration(double s) {
  if (s < 60) return fmt::format("{:.1f}s", s);
  const int total = static_cast<int>(s + 0.5);
  if (total < 3600) return fmt::format("{}m{:02d}s", total / 60, total % 60);
  return fmt::format("{}h{:02d}m", total / 3600, (total % 3600) / 60);
}

std::string format_metrics(const Metrics& metrics) {
  std::string out;
  for (const auto& [name, value] : metrics) {
    if (!out.empty()) out += "  ";
    out += fmt::format("{} {:.4f}", name, value);
  }
  return out;
}

ProgressBar::ProgressBar(int64_t total, std::string label, bool force_plain)
    : total_(std::max<int64_t>(total, 1)),
      label_(std::move(label)),
      tty_(!force_plain && isatty(fileno(stdout))),
      start_(std::chrono::steady_clock::now()),
      last_draw_(start_) {}

double ProgressBar::elapsed_seconds() const {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
}

void ProgressBar::update(int64_t steps, const Metrics& metrics) {
  done_ = std::min(total_, done_ + steps);
  if (!metrics.empty()) metrics_ = metrics;
  const auto now = std::chrono::steady_clock::now();
  if (tty_) {
    if (now - last_draw_ > std::chrono::milliseconds(100) || done_ == total_) {
      last_draw_ = now;
      draw(false);
    }
  } else if (done_ * 4 >= total_ * next_plain_quarter_ && done_ < total_) {
    while (done_ * 4 >= total_ * next_plain_quarter_) ++next_plain_quarter_;
    draw(false);
  }
}

void ProgressBar::draw(bool final_line) {
  const double frac = static_cast<double>(done_) / static_cast<double>(total_);
  const double elapsed = elapsed_seconds();
  std::string timing = final_line ? format_duration(elapsed)
                                  : fmt::format("{} eta {}", format_duration(elapsed),
                                                format_duration(frac > 0 ? elapsed * (1 - frac) / frac : 0.0));
  std::string line;
  if (tty_) {
    const int width = 28;
    const int filled = static_cast<int>(frac * width);
    std::string bar(static_cast<std::size_t>(filled), '=');
    if (filled < width) bar += '>' + std::string(static_cast<std::size_t>(width - filled - 1), ' ');
    line = fmt::format("\r{} [{}] {}/{} {}  {}\x1b[K", label_, bar, done_, total_, timing, format_metrics(metrics_));
  } else {
    line = fmt::format("{} {}/{} ({:.0f}%) {}  {}", label_, done_, total_, 100 * frac, timing, format_metrics(metrics_));
  }
  if (final_line || !tty_) line += '\n';
  std::fputs(line.c_str(), stdout);
  std::fflush(stdout);
}

void ProgressBar::finish(const Metrics& extra) {
  if (finished_) return;
  finished_ = true;
  done_ = total_;
  for (const auto& m : extra) metrics_.push_back(m);
  draw(true);
}

}  // namespace heed
