// heed/report.hpp — a run's metrics log (JSON Lines) and the self-contained HTML report made from it.
//
//   heed::RunInfo run;
//   run.name = "mlp";
//   run.settings = {{"epochs", 10}, {"lr", 1e-3}, {"optimizer", "adam"}};
//   run.model_summary = model->summary();
//   heed::MetricsWriter log("out/mlp/metrics.jsonl", run);      // writes the "run" line
//   for (...) {                                                  // your own training loop
//     heed::MetricsRecord b;
//     b.epoch = epoch; b.step = ++step; b.batch = i + 1; b.loss = loss.item();
//     b.lr = optimizer.lr(); b.grad_norm = norm; b.samples = batch_size;
//     log.batch(b);                                              // one "batch" line, on disk at once
//   }
//   ...
//   heed::report::write_html("out/mlp/metrics.jsonl", "out/mlp", "out/mlp/report.html");
//
// The log format (one JSON object per line: a "run" header, then "batch" and "epoch" lines) is defined
// in docs/run-report.md. Numbers that JSON cannot hold are written as the strings "nan", "inf" and
// "-inf"; read_metrics_log turns them back into doubles. Each line reaches the file with one write(2)
// of the whole line, so a run that crashes leaves a log that reads up to its last complete line.
//
// The report (write_html, and the heed-report tool around it) is one HTML file that opens offline: the
// charts are drawn by Chart.js (Debian's libjs-chart.js, found by CMake at configure time and copied into
// the file), the run's PNG pictures are embedded as data: URIs, and all text from the log is escaped.
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace heed {

/// One value of RunInfo::settings: a string, a number (integer or floating point) or a boolean.
class SettingValue {
 public:
  /// Which JSON type the value is written as.
  enum class Kind {
    String,   ///< a JSON string
    Integer,  ///< a JSON integer
    Number,   ///< a JSON number (floating point)
    Boolean,  ///< true / false
  };
  SettingValue(std::string value) : kind_(Kind::String), text_(std::move(value)) {}  ///< a string
  SettingValue(const char* value) : kind_(Kind::String), text_(value ? value : "") {}  ///< a string
  SettingValue(bool value) : kind_(Kind::Boolean), boolean_(value) {}                 ///< true / false
  /// Any integer type but bool: written as a JSON integer.
  template <class T, std::enable_if_t<std::is_integral_v<T> && !std::is_same_v<T, bool>, int> = 0>
  SettingValue(T value) : kind_(Kind::Integer), integer_(static_cast<int64_t>(value)) {}
  /// float or double: written as a JSON number ("nan" / "inf" / "-inf" strings when not finite).
  template <class T, std::enable_if_t<std::is_floating_point_v<T>, int> = 0>
  SettingValue(T value) : kind_(Kind::Number), number_(static_cast<double>(value)) {}

  Kind kind() const { return kind_; }                 ///< the type
  const std::string& text() const { return text_; }   ///< the string (Kind::String)
  int64_t integer() const { return integer_; }        ///< the integer (Kind::Integer)
  double number() const { return number_; }           ///< the number (Kind::Number)
  bool boolean() const { return boolean_; }           ///< the boolean (Kind::Boolean)
  /// As shown in a report: the string itself, or the number / true / false as JSON writes it.
  std::string to_string() const;
  bool operator==(const SettingValue& other) const;   ///< same kind and value (NaN equals NaN)

 private:
  Kind kind_;
  std::string text_;
  int64_t integer_ = 0;
  double number_ = 0;
  bool boolean_ = false;
};

/// What the "run" line of a metrics log says about a run.
struct RunInfo {
  std::string name;  ///< the run's name, e.g. the example's ("sentiment"); any text
  /// The run's settings in the order given (command-line options, hyperparameters), e.g.
  /// {{"epochs", 10}, {"lr", 1e-3}, {"optimizer", "adam"}}. A key given twice keeps its last value.
  std::vector<std::pair<std::string, SettingValue>> settings;
  std::string model_summary;  ///< free text, e.g. nn::Module::summary(); shown as preformatted text
  bool resumed = false;       ///< this run continues an earlier one in the same log (append mode)
  std::string started;        ///< UTC start time, ISO 8601 ("2024-05-01T12:00:00Z"); "" = now, when written
  std::string heed_version;   ///< read back from the log; MetricsWriter writes HEED_VERSION_STRING
};

/// One "batch" or "epoch" line of a metrics log. Unset optional fields are left out of the line (absent
/// means "not measured"; a measured NaN is written as "nan").
struct MetricsRecord {
  int epoch = 0;      ///< 1-based epoch
  int64_t step = 0;   ///< optimizer steps so far in the whole run (1-based; an epoch line: at its end)
  int64_t batch = 0;  ///< batch line: 1-based batch within the epoch; 0 = not written (epoch lines)
  double loss = 0;    ///< the batch's loss, or the epoch's mean training loss
  /// Other numbers by name, Keras-style: "accuracy", and for validation "val_loss", "val_accuracy", ...
  std::map<std::string, double> metrics;
  std::optional<double> lr;             ///< learning rate used for the step (epoch: at the epoch's end)
  std::optional<double> grad_norm;      ///< global L2 norm of the gradients before clipping
  std::optional<double> time;           ///< seconds since the writer opened; unset = MetricsWriter fills it
  int64_t samples = 0;                  ///< samples in the batch / epoch; 0 = not written
  std::optional<double> samples_per_s;  ///< throughput; unset and samples > 0 = MetricsWriter computes it
};

/// Appends a run's metrics to a JSON Lines file (format: docs/run-report.md). The constructor writes
/// the "run" line; batch() and epoch() write one line each. Every line is written whole with one
/// write(2) on a file opened O_APPEND, before the call returns (no buffering in the process), so a run
/// that crashes or is killed leaves every line written so far. Safe to call from several threads.
class MetricsWriter {
 public:
  /// Opens `path` (its directory must exist) and writes the "run" line. append = false starts a new
  /// file (an existing one is replaced); append = true adds to it, e.g. when a run resumes (set
  /// run.resumed). Throws heed::Error when the file cannot be opened or written.
  MetricsWriter(const std::string& path, const RunInfo& run, bool append = false);
  ~MetricsWriter();  ///< closes the file (every line is already in it)
  MetricsWriter(const MetricsWriter&) = delete;             ///< one writer per file
  MetricsWriter& operator=(const MetricsWriter&) = delete;  ///< one writer per file

  /// Writes a "batch" line. record.time unset: seconds since the writer opened. record.samples_per_s
  /// unset and record.samples > 0: samples / seconds since the previous line (or since opening).
  void batch(const MetricsRecord& record);
  /// Writes an "epoch" line. time as for batch(); samples_per_s unset and samples > 0: samples / seconds
  /// since the previous epoch line (or since opening).
  void epoch(const MetricsRecord& record);
  /// Forces the lines written so far onto the disk (fsync); each line already reached the file.
  void sync();
  const std::string& path() const { return path_; }  ///< the log's path
  double seconds() const;  ///< seconds since the writer opened (what an unset record.time becomes)

 private:
  void write_record(const char* kind, const MetricsRecord& record, double& last_line_time);
  void write_line(const std::string& line);
  std::string path_;
  int fd_ = -1;
  std::mutex mutex_;
  double start_ = 0;            // steady clock, seconds
  double last_line_ = 0;        // time (since start) of the previous line of any kind
  double last_epoch_line_ = 0;  // time of the previous epoch line
};

namespace report {

/// A metrics log read back (read_metrics_log).
struct MetricsLog {
  std::vector<RunInfo> runs;             ///< every "run" line, in order (more than one after a resume)
  std::vector<MetricsRecord> batches;    ///< "batch" lines, in file order
  std::vector<MetricsRecord> epochs;     ///< "epoch" lines, in file order
  std::vector<std::string> warnings;     ///< lines skipped and why ("line 7: not JSON ..."), for the report
};

/// Reads a metrics log. Lines that are not JSON objects (e.g. the torn last line of a killed run), lines
/// of an unknown kind and blank lines are skipped (not-JSON and bad-field lines with a warning); numbers
/// written as "nan", "inf", "-inf" come back as such. Throws heed::Error when the file cannot be read
/// or has no "run", "batch" or "epoch" line at all.
MetricsLog read_metrics_log(const std::string& path);

/// Options of write_html.
struct HtmlOptions {
  std::string title;     ///< "" = "heed run: <the run's name>"
  std::string chart_js;  ///< Chart.js (UMD build) to inline; "" = the file CMake found (chart_js_path())
  /// Search the run folder's subfolders for PNGs too (at most `max_depth` levels below it).
  int max_depth = 2;
};

/// The Chart.js file CMake found at configure time (Debian's libjs-chart.js, e.g.
/// /usr/share/javascript/chart.js/chart.min.js), or "" when it was not installed then.
std::string chart_js_path();

/// Writes one self-contained HTML file `out_html` for the run whose log is `metrics_log`: loss and metric
/// curves per batch and per epoch, learning rate, throughput and gradient norm (Chart.js, inlined), the
/// run's settings and model summary, and every PNG under `run_dir` (to options.max_depth levels, sorted
/// by path) embedded as a data: URI. The file is written atomically (a temporary file renamed over it).
/// Throws heed::Error when the log cannot be read (read_metrics_log), when Chart.js is missing (with the
/// package to install), or when `out_html` cannot be written. `run_dir` = "" embeds no pictures.
void write_html(const std::string& metrics_log, const std::string& run_dir, const std::string& out_html,
                const HtmlOptions& options = {});

/// `text` with & < > " ' replaced by character references: safe in HTML text and quoted attributes.
std::string html_escape(const std::string& text);
/// `json` (a JSON text) made safe inside <script>: '<', '>', '&' and U+2028/U+2029 written as \\u escapes
/// (so no "</script>" or "<!--" can appear); the JSON value is unchanged.
std::string json_for_script(const std::string& json);

}  // namespace report
}  // namespace heed
