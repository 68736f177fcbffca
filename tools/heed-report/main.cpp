// heed-report: turns a run's metrics log (heed::MetricsWriter, format in docs/run-report.md) and its
// output folder into one self-contained report.html (heed::report::write_html).
//
//   heed-report out/mlp/metrics.jsonl                 # pictures from out/mlp, writes out/mlp/report.html
//   heed-report metrics.jsonl runs/7 -o /tmp/r.html --title "run 7"
#include <cstdio>
#include <filesystem>
#include <string>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "heed/error.hpp"
#include "heed/report.hpp"

int main(int argc, char** argv) {
  std::string log_path, run_dir, out;
  heed::report::HtmlOptions options;
  bool no_pictures = false;
  CLI::App app{"heed-report: a metrics log and a run folder -> one self-contained report.html (opens offline)"};
  app.add_option("metrics_log", log_path, "the run's metrics log (JSON Lines, written by heed::MetricsWriter)")
      ->required()
      ->check(CLI::ExistingFile);
  app.add_option("run_dir", run_dir, "folder whose PNG pictures are embedded (default: the log's folder)")
      ->check(CLI::ExistingDirectory);
  app.add_option("-o,--out", out, "the HTML file to write (default: report.html in the run folder)");
  app.add_option("--title", options.title, "page title (default: \"heed run: <run name>\")");
  app.add_option("--chart-js", options.chart_js,
                 fmt::format("Chart.js file to inline (default: {})",
                             heed::report::chart_js_path().empty() ? std::string("none found at configure time")
                                                                   : heed::report::chart_js_path()));
  app.add_option("--depth", options.max_depth, "how many folder levels below the run folder to search for PNGs")
      ->check(CLI::NonNegativeNumber);
  app.add_flag("--no-pictures", no_pictures, "embed no pictures");
  CLI11_PARSE(app, argc, argv);

  namespace fs = std::filesystem;
  if (run_dir.empty()) {
    run_dir = fs::path(log_path).parent_path().string();
    if (run_dir.empty()) run_dir = ".";
  }
  if (out.empty()) out = (fs::path(run_dir) / "report.html").string();
  try {
    heed::report::write_html(log_path, no_pictures ? std::string() : run_dir, out, options);
    std::error_code ec;
    const auto bytes = fs::file_size(out, ec);
    fmt::print("heed-report: wrote {} ({} KiB)\n", out, ec ? 0 : (bytes + 1023) / 1024);
  } catch (const heed::Error& e) {
    fmt::print(stderr, "heed-report: {}\n", e.what());
    return 1;
  }
  return 0;
}
