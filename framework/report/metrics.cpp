// framework/report/metrics.cpp — the metrics log (heed/report.hpp, format in docs/run-report.md):
// MetricsWriter appends JSON lines, read_metrics_log reads them back.
#include <fcntl.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstring>
#include <ctime>
#include <fstream>
#include <limits>

#include <nlohmann/json.hpp>

#include "heed/error.hpp"
#include "heed/report.hpp"
#include "heed/version.hpp"

namespace heed {
namespace {

using ordered_json = nlohmann::ordered_json;

constexpr const char* kFormat = "heed-metrics/1";

double steady_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

std::string utc_now() {
  const std::time_t now = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  std::tm tm{};
  gmtime_r(&now, &tm);
  char buffer[32];
  std::strftime(buffer, sizeof buffer, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buffer;
}

// JSON has no NaN or infinity: they are written as the strings "nan", "inf", "-inf".
ordered_json number(double value) {
  if (std::isnan(value)) return "nan";
  if (std::isinf(value)) return value > 0 ? "inf" : "-inf";
  return value;
}

ordered_json setting_json(const SettingValue& value) {
  switch (value.kind()) {
    case SettingValue::Kind::String: return value.text();
    case SettingValue::Kind::Integer: return value.integer();
    case SettingValue::Kind::Number: return number(value.number());
    case SettingValue::Kind::Boolean: return value.boolean();
  }
  return nullptr;
}

// One line of JSON: invalid UTF-8 in names or summaries becomes U+FFFD instead of an exception.
std::string dump_line(const ordered_json& j) {
  return j.dump(-1, ' ', false, ordered_json::error_handler_t::replace) + "\n";
}

}  // namespace

// ---- SettingValue -------------------------------------------------------------------------------------

std::string SettingValue::to_string() const {
  if (kind_ == Kind::String) return text_;
  const ordered_json j = setting_json(*this);
  return j.is_string() ? j.get<std::string>() : j.dump();
}

bool SettingValue::operator==(const SettingValue& other) const {
  if (kind_ != other.kind_) return false;
  switch (kind_) {
    case Kind::String: return text_ == other.text_;
    case Kind::Integer: return integer_ == other.integer_;
    case Kind::Number: return number_ == other.number_ || (std::isnan(number_) && std::isnan(other.number_));
    case Kind::Boolean: return boolean_ == other.boolean_;
  }
  return false;
}

// ---- MetricsWriter ------------------------------------------------------------------------------------

MetricsWriter::MetricsWriter(const std::string& path, const RunInfo& run, bool append) : path_(path) {
  const int flags = O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | (append ? 0 : O_TRUNC);
  fd_ = ::open(path.c_str(), flags, 0644);
  HEED_CHECK(fd_ >= 0, "MetricsWriter: cannot open '{}' for writing: {}", path, std::strerror(errno));
  start_ = steady_seconds();
  ordered_json header;
  header["kind"] = "run";
  header["format"] = kFormat;
  header["name"] = run.name;
  header["started"] = run.started.empty() ? utc_now() : run.started;
  header["heed_version"] = HEED_VERSION_STRING;
  header["resumed"] = run.resumed;
  ordered_json settings = ordered_json::object();
  for (const auto& [key, value] : run.settings) settings[key] = setting_json(value);
  header["settings"] = std::move(settings);
  header["model_summary"] = run.model_summary;
  try {
    write_line(dump_line(header));
  } catch (...) {
    ::close(fd_);
    throw;
  }
}

MetricsWriter::~MetricsWriter() {
  if (fd_ >= 0) ::close(fd_);
}

double MetricsWriter::seconds() const { return steady_seconds() - start_; }

void MetricsWriter::batch(const MetricsRecord& record) { write_record("batch", record, last_line_); }

void MetricsWriter::epoch(const MetricsRecord& record) { write_record("epoch", record, last_epoch_line_); }

void MetricsWriter::write_record(const char* kind, const MetricsRecord& r, double& since) {
  std::lock_guard<std::mutex> lock(mutex_);
  const double now = seconds();
  ordered_json j;
  j["kind"] = kind;
  j["epoch"] = r.epoch;
  j["step"] = r.step;
  if (r.batch > 0) j["batch"] = r.batch;
  j["loss"] = number(r.loss);
  ordered_json metrics = ordered_json::object();
  for (const auto& [name, value] : r.metrics) metrics[name] = number(value);
  j["metrics"] = std::move(metrics);
  if (r.lr) j["lr"] = number(*r.lr);
  if (r.grad_norm) j["grad_norm"] = number(*r.grad_norm);
  const double time = r.time ? *r.time : now;
  j["time"] = number(time);
  if (r.samples > 0) j["samples"] = r.samples;
  if (r.samples_per_s) {
    j["samples_per_s"] = number(*r.samples_per_s);
  } else if (r.samples > 0 && now > since) {
    j["samples_per_s"] = static_cast<double>(r.samples) / (now - since);
  }
  write_line(dump_line(j));
  since = now;
  last_line_ = now;
}

// The whole line in one write(2) on an O_APPEND descriptor: it reaches the file (the kernel's page
// cache) before this returns, so a crash of the process loses no line and tears none. A short write
// (disk full, a signal) is continued; an error throws.
void MetricsWriter::write_line(const std::string& line) {
  const char* data = line.data();
  std::size_t left = line.size();
  while (left > 0) {
    const ssize_t n = ::write(fd_, data, left);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw Error(fmt::format("MetricsWriter: cannot write to '{}': {}", path_, std::strerror(errno)));
    }
    data += n;
    left -= static_cast<std::size_t>(n);
  }
}

void MetricsWriter::sync() {
  std::lock_guard<std::mutex> lock(mutex_);
  HEED_CHECK(::fsync(fd_) == 0, "MetricsWriter: cannot sync '{}': {}", path_, std::strerror(errno));
}

// ---- reading ------------------------------------------------------------------------------------------

namespace report {
namespace {

// A number, or one of the strings "nan", "inf", "-inf" (also "infinity", "+inf"; case ignored).
std::optional<double> read_number(const ordered_json& j) {
  if (j.is_number()) return j.get<double>();
  if (!j.is_string()) return std::nullopt;
  std::string s = j.get<std::string>();
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (s == "nan" || s == "-nan" || s == "+nan") return std::numeric_limits<double>::quiet_NaN();
  if (s == "inf" || s == "+inf" || s == "infinity" || s == "+infinity") return std::numeric_limits<double>::infinity();
  if (s == "-inf" || s == "-infinity") return -std::numeric_limits<double>::infinity();
  return std::nullopt;
}

SettingValue read_setting(const ordered_json& j) {
  if (j.is_string()) return SettingValue(j.get<std::string>());
  if (j.is_boolean()) return SettingValue(j.get<bool>());
  if (j.is_number_integer()) return SettingValue(j.get<int64_t>());
  if (j.is_number()) return SettingValue(j.get<double>());
  return SettingValue(j.dump());  // arrays, objects, null: shown as their JSON text
}

RunInfo read_run(const ordered_json& j) {
  RunInfo run;
  if (j.contains("name") && j["name"].is_string()) run.name = j["name"].get<std::string>();
  if (j.contains("started") && j["started"].is_string()) run.started = j["started"].get<std::string>();
  if (j.contains("heed_version") && j["heed_version"].is_string()) run.heed_version = j["heed_version"].get<std::string>();
  if (j.contains("resumed") && j["resumed"].is_boolean()) run.resumed = j["resumed"].get<bool>();
  if (j.contains("model_summary") && j["model_summary"].is_string()) run.model_summary = j["model_summary"].get<std::string>();
  if (j.contains("settings") && j["settings"].is_object()) {
    for (const auto& [key, value] : j["settings"].items()) run.settings.emplace_back(key, read_setting(value));
  }
  return run;
}

// A batch or epoch line; throws std::string (the reason) when a required field is missing or wrong.
MetricsRecord read_record(const ordered_json& j, std::vector<std::string>& field_notes) {
  auto integer = [&](const char* key, bool required) -> int64_t {
    if (!j.contains(key)) {
      if (required) throw std::string(fmt::format("no \"{}\"", key));
      return 0;
    }
    const ordered_json& v = j[key];
    if (v.is_number_integer()) return v.get<int64_t>();
    if (v.is_number_float() && std::floor(v.get<double>()) == v.get<double>()) return static_cast<int64_t>(v.get<double>());
    throw std::string(fmt::format("\"{}\" is not an integer", key));
  };
  auto optional_number = [&](const char* key) -> std::optional<double> {
    if (!j.contains(key) || j[key].is_null()) return std::nullopt;
    std::optional<double> v = read_number(j[key]);
    if (!v) field_notes.push_back(fmt::format("\"{}\" is not a number (ignored)", key));
    return v;
  };
  MetricsRecord r;
  r.epoch = static_cast<int>(integer("epoch", true));
  r.step = integer("step", true);
  r.batch = integer("batch", false);
  if (!j.contains("loss")) throw std::string("no \"loss\"");
  const std::optional<double> loss = read_number(j["loss"]);
  if (!loss) throw std::string("\"loss\" is not a number");
  r.loss = *loss;
  if (j.contains("metrics") && j["metrics"].is_object()) {
    for (const auto& [name, value] : j["metrics"].items()) {
      if (std::optional<double> v = read_number(value)) {
        r.metrics[name] = *v;
      } else {
        field_notes.push_back(fmt::format("metric \"{}\" is not a number (ignored)", name));
      }
    }
  }
  r.lr = optional_number("lr");
  r.grad_norm = optional_number("grad_norm");
  r.time = optional_number("time");
  r.samples = j.contains("samples") && j["samples"].is_number() ? j["samples"].get<int64_t>() : 0;
  r.samples_per_s = optional_number("samples_per_s");
  return r;
}

}  // namespace

MetricsLog read_metrics_log(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  HEED_CHECK(in, "read_metrics_log: cannot open '{}'", path);
  MetricsLog log;
  std::string line;
  int64_t number_of_line = 0;
  while (std::getline(in, line)) {
    ++number_of_line;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.find_first_not_of(" \t") == std::string::npos) continue;
    // ordered_json: the settings keep the order they were written in.
    const ordered_json j = ordered_json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded() || !j.is_object()) {
      log.warnings.push_back(fmt::format("line {}: not a JSON object, skipped{}", number_of_line,
                                         in.eof() ? " (the last line: cut off by a run that was stopped?)" : ""));
      continue;
    }
    if (!j.contains("kind") || !j["kind"].is_string()) {
      log.warnings.push_back(fmt::format("line {}: no \"kind\", skipped", number_of_line));
      continue;
    }
    const std::string kind = j["kind"].get<std::string>();
    if (kind == "run") {
      if (j.contains("format") && j["format"].is_string()) {
        const std::string format = j["format"].get<std::string>();
        if (format != kFormat) {
          log.warnings.push_back(fmt::format("line {}: format \"{}\" (this reader knows {}): unknown fields are ignored",
                                             number_of_line, format, kFormat));
        }
      }
      log.runs.push_back(read_run(j));
    } else if (kind == "batch" || kind == "epoch") {
      std::vector<std::string> notes;
      try {
        MetricsRecord r = read_record(j, notes);
        (kind == "batch" ? log.batches : log.epochs).push_back(std::move(r));
      } catch (const std::string& why) {
        log.warnings.push_back(fmt::format("line {}: {} line skipped: {}", number_of_line, kind, why));
      }
      for (const std::string& note : notes) log.warnings.push_back(fmt::format("line {}: {}", number_of_line, note));
    }
    // Other kinds are left to newer readers (docs/run-report.md: readers ignore unknown kinds).
  }
  HEED_CHECK(!log.runs.empty() || !log.batches.empty() || !log.epochs.empty(),
             "read_metrics_log: '{}' has no \"run\", \"batch\" or \"epoch\" line: not a heed metrics log ({})", path,
             log.warnings.empty() ? "empty" : log.warnings.front());
  return log;
}

}  // namespace report
}  // namespace heed
