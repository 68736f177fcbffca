// heed::MetricsWriter, heed::report::read_metrics_log and heed::report::write_html (heed/report.hpp): the
// log's lines and fields as docs/run-report.md defines them, non-finite numbers, append and torn lines,
// and the HTML: escaping, embedded pictures, the charts' data. The page drawn in a real browser is
// tests/browser/test_report_browser.cpp.
#include <doctest/doctest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <heed/heed.hpp>
#include <iterator>
#include <limits>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "testing.hpp"

namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using heed::testing::error_of;

const double kNaN = std::numeric_limits<double>::quiet_NaN();
const double kInf = std::numeric_limits<double>::infinity();

// A fresh, empty folder for one test case.
fs::path temp_dir(const std::string& name) {
  const fs::path dir = fs::temp_directory_path() / ("heed_test_report_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

std::string read_text(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

std::vector<std::string> raw_lines(const fs::path& path) {
  std::ifstream in(path);
  std::vector<std::string> lines;
  std::string line;
  while (std::getline(in, line)) lines.push_back(line);
  return lines;
}

std::vector<json> read_lines(const fs::path& path) {
  std::ifstream in(path);
  std::vector<json> lines;
  std::string line;
  while (std::getline(in, line)) lines.push_back(json::parse(line));
  return lines;
}

std::size_t count(const std::string& text, const std::string& what) {
  std::size_t n = 0;
  for (std::size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + what.size())) ++n;
  return n;
}

// A Chart.js stand-in for the tests that only read the HTML (the browser test uses the real one).
fs::path stub_chart_js(const fs::path& dir) {
  const fs::path path = dir / "chart-stub.js";
  std::ofstream(path) << "/* stand-in for Chart.js */ window.Chart = function () {};\n";
  return path;
}

heed::RunInfo sample_run() {
  heed::RunInfo run;
  run.name = "tiny";
  run.settings = {{"epochs", 3}, {"lr", 0.01}, {"optimizer", "adam"}, {"shuffle", true}, {"batch_size", 8}};
  run.model_summary = "Linear(in_features=2, out_features=1)";
  return run;
}

heed::MetricsRecord batch_record(int epoch, int64_t step, double loss) {
  heed::MetricsRecord r;
  r.epoch = epoch;
  r.step = step;
  r.batch = step;
  r.loss = loss;
  r.metrics["accuracy"] = 0.5;
  r.lr = 0.01;
  r.grad_norm = 1.5;
  r.samples = 8;
  return r;
}

// The JSON block the page's script draws the charts from.
json chart_data(const std::string& html) {
  const std::string open = "<script type=\"application/json\" id=\"heed-data\">";
  const std::size_t begin = html.find(open);
  REQUIRE(begin != std::string::npos);
  const std::size_t end = html.find("</script>", begin);
  REQUIRE(end != std::string::npos);
  return json::parse(html.substr(begin + open.size(), end - begin - open.size()));
}

}  // namespace

TEST_CASE("MetricsWriter: a run line, then one line per batch and epoch with the documented fields") {
  const fs::path dir = temp_dir("fields");
  const fs::path path = dir / "metrics.jsonl";
  {
    heed::MetricsWriter log(path.string(), sample_run());
    // The run line is on disk as soon as the constructor returns (no buffering in the process).
    std::vector<json> lines = read_lines(path);
    REQUIRE(lines.size() == 1);
    const json& run = lines[0];
    CHECK(run["kind"] == "run");
    CHECK(run["format"] == "heed-metrics/1");
    CHECK(run["name"] == "tiny");
    CHECK(run["heed_version"] == HEED_VERSION_STRING);
    CHECK(run["resumed"] == false);
    CHECK(run["started"].get<std::string>().size() == 20);  // 2024-05-01T12:00:00Z
    CHECK(raw_lines(path)[0].find(R"("settings":{"epochs":3,"lr":0.01,"optimizer":"adam","shuffle":true,"batch_size":8})") !=
          std::string::npos);  // in the order given
    CHECK(run["model_summary"] == "Linear(in_features=2, out_features=1)");

    log.batch(batch_record(1, 1, 0.75));
    lines = read_lines(path);
    REQUIRE(lines.size() == 2);
    const json& b = lines[1];
    CHECK(b["kind"] == "batch");
    CHECK(b["epoch"] == 1);
    CHECK(b["step"] == 1);
    CHECK(b["batch"] == 1);
    CHECK(b["loss"] == 0.75);
    CHECK(b["metrics"]["accuracy"] == 0.5);
    CHECK(b["lr"] == 0.01);
    CHECK(b["grad_norm"] == 1.5);
    CHECK(b["samples"] == 8);
    CHECK(b["time"].get<double>() >= 0);
    CHECK(b["samples_per_s"].get<double>() > 0);  // computed: samples / seconds since the previous line
    // The field order of docs/run-report.md.
    std::vector<std::string> keys;
    for (const auto& item : b.items()) keys.push_back(item.key());
    CHECK(keys.size() == 11);
    CHECK(raw_lines(path)[1].rfind(R"({"kind":"batch","epoch":1,"step":1,"batch":1,"loss":0.75,"metrics":{"accuracy":0.5},"lr":0.01,"grad_norm":1.5,"time":)", 0) == 0);

    // An epoch line with only what was measured: absent fields are left out, not written as null.
    heed::MetricsRecord e;
    e.epoch = 1;
    e.step = 4;
    e.loss = 0.5;
    e.metrics = {{"val_loss", 0.6}};
    e.time = 2.5;
    log.epoch(e);
    lines = read_lines(path);
    REQUIRE(lines.size() == 3);
    CHECK(raw_lines(path)[2] == R"({"kind":"epoch","epoch":1,"step":4,"loss":0.5,"metrics":{"val_loss":0.6},"time":2.5})");
  }
  fs::remove_all(dir);
}

TEST_CASE("MetricsWriter: NaN and infinities are written as strings and read back as numbers") {
  const fs::path dir = temp_dir("nonfinite");
  const fs::path path = dir / "metrics.jsonl";
  {
    heed::MetricsWriter log(path.string(), sample_run());
    heed::MetricsRecord r = batch_record(1, 1, kNaN);
    r.grad_norm = kInf;
    r.metrics["accuracy"] = -kInf;
    r.samples_per_s = 100.0;
    log.batch(r);
  }
  const std::vector<json> lines = read_lines(path);  // strict JSON: parses
  REQUIRE(lines.size() == 2);
  CHECK(lines[1]["loss"] == "nan");
  CHECK(lines[1]["grad_norm"] == "inf");
  CHECK(lines[1]["metrics"]["accuracy"] == "-inf");
  CHECK(lines[1]["samples_per_s"] == 100.0);

  const heed::report::MetricsLog log = heed::report::read_metrics_log(path.string());
  REQUIRE(log.batches.size() == 1);
  CHECK(std::isnan(log.batches[0].loss));
  CHECK(*log.batches[0].grad_norm == kInf);
  CHECK(log.batches[0].metrics.at("accuracy") == -kInf);
  CHECK(log.warnings.empty());
  fs::remove_all(dir);
}

TEST_CASE("read_metrics_log: what MetricsWriter wrote comes back field by field") {
  const fs::path dir = temp_dir("roundtrip");
  const fs::path path = dir / "metrics.jsonl";
  heed::RunInfo run = sample_run();
  run.started = "2024-05-01T12:00:00Z";
  {
    heed::MetricsWriter log(path.string(), run);
    heed::MetricsRecord b = batch_record(1, 7, 0.25);
    b.time = 1.25;
    b.samples_per_s = 64.0;
    log.batch(b);
    heed::MetricsRecord e;
    e.epoch = 1;
    e.step = 7;
    e.loss = 0.3;
    e.metrics = {{"accuracy", 0.9}, {"val_accuracy", 0.8}};
    e.time = 2.0;
    log.epoch(e);
  }
  const heed::report::MetricsLog log = heed::report::read_metrics_log(path.string());
  REQUIRE(log.runs.size() == 1);
  CHECK(log.runs[0].name == "tiny");
  CHECK(log.runs[0].started == "2024-05-01T12:00:00Z");
  CHECK(log.runs[0].settings == run.settings);
  CHECK(log.runs[0].model_summary == run.model_summary);
  REQUIRE(log.batches.size() == 1);
  const heed::MetricsRecord& b = log.batches[0];
  CHECK(b.epoch == 1);
  CHECK(b.step == 7);
  CHECK(b.batch == 7);
  CHECK(b.loss == 0.25);
  CHECK(b.metrics == std::map<std::string, double>{{"accuracy", 0.5}});
  CHECK(*b.lr == 0.01);
  CHECK(*b.grad_norm == 1.5);
  CHECK(*b.time == 1.25);
  CHECK(b.samples == 8);
  CHECK(*b.samples_per_s == 64.0);
  REQUIRE(log.epochs.size() == 1);
  CHECK(log.epochs[0].metrics.at("val_accuracy") == 0.8);
  CHECK(!log.epochs[0].lr);
  CHECK(!log.epochs[0].grad_norm);
  CHECK(!log.epochs[0].samples_per_s);
  CHECK(log.warnings.empty());
  fs::remove_all(dir);
}

TEST_CASE("MetricsWriter: append mode continues a log, a torn last line is skipped with a note") {
  const fs::path dir = temp_dir("append");
  const fs::path path = dir / "metrics.jsonl";
  {
    heed::MetricsWriter log(path.string(), sample_run());
    log.batch(batch_record(1, 1, 0.9));
    log.batch(batch_record(1, 2, 0.8));
  }
  // A killed run's last write, cut off in the middle.
  std::ofstream(path, std::ios::app) << R"({"kind":"batch","epoch":1,"step":3,"lo)";
  {
    heed::RunInfo resumed = sample_run();
    resumed.resumed = true;
    std::ofstream(path, std::ios::app) << "\n";  // what a resuming program does before appending
    heed::MetricsWriter log(path.string(), resumed, /*append=*/true);
    log.batch(batch_record(1, 2, 0.7));  // the resumed run repeats step 2
  }
  heed::report::MetricsLog log = heed::report::read_metrics_log(path.string());
  CHECK(log.runs.size() == 2);
  CHECK(log.runs[1].resumed);
  REQUIRE(log.batches.size() == 3);
  CHECK(log.batches[2].loss == 0.7);
  REQUIRE(log.warnings.size() == 1);
  CHECK(log.warnings[0].find("line 4: not a JSON object") == 0);

  // The torn line as the very last line (no newline after it): named as cut off.
  std::ofstream(path, std::ios::app) << R"({"kind":"epoch","epo)";
  log = heed::report::read_metrics_log(path.string());
  REQUIRE(log.warnings.size() == 2);
  CHECK(log.warnings[1].find("cut off") != std::string::npos);

  // append = false starts the file again.
  { heed::MetricsWriter fresh(path.string(), sample_run()); }
  CHECK(read_lines(path).size() == 1);
  fs::remove_all(dir);
}

TEST_CASE("MetricsWriter: a process killed mid-run leaves every line it wrote") {
  const fs::path dir = temp_dir("killed");
  const fs::path path = dir / "metrics.jsonl";
  const pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {  // the "run": 50 batch lines, then SIGKILL (no destructor, no exit handlers)
    try {
      heed::MetricsWriter log(path.string(), sample_run());
      for (int64_t step = 1; step <= 50; ++step) log.batch(batch_record(1, step, 1.0 / double(step)));
      ::raise(SIGKILL);
    } catch (...) {
    }
    ::_exit(3);  // never back into doctest from the child
  }
  int status = 0;
  REQUIRE(::waitpid(child, &status, 0) == child);
  REQUIRE(WIFSIGNALED(status));
  CHECK(WTERMSIG(status) == SIGKILL);
  const heed::report::MetricsLog log = heed::report::read_metrics_log(path.string());
  CHECK(log.runs.size() == 1);
  REQUIRE(log.batches.size() == 50);
  CHECK(log.batches.back().step == 50);
  CHECK(log.warnings.empty());
  fs::remove_all(dir);
}

TEST_CASE("read_metrics_log: bad files and bad lines") {
  const fs::path dir = temp_dir("bad");
  CHECK(error_of([&] { heed::report::read_metrics_log((dir / "none.jsonl").string()); }).find("cannot open") !=
        std::string::npos);
  std::ofstream(dir / "empty.jsonl") << "\n";
  CHECK(error_of([&] { heed::report::read_metrics_log((dir / "empty.jsonl").string()); })
            .find("not a heed metrics log") != std::string::npos);
  std::ofstream(dir / "other.jsonl") << "{\"a\":1}\n[1,2]\n";
  CHECK(error_of([&] { heed::report::read_metrics_log((dir / "other.jsonl").string()); })
            .find("not a heed metrics log") != std::string::npos);

  std::ofstream(dir / "mixed.jsonl") << R"({"kind":"batch","epoch":1,"step":1,"loss":0.5,"metrics":{}})" "\n"
                                     << R"({"kind":"batch","epoch":1,"step":2,"metrics":{}})" "\n"
                                     << R"({"kind":"batch","epoch":1,"step":3,"loss":"high"})" "\n"
                                     << R"({"kind":"batch","epoch":1,"step":4,"loss":0.4,"lr":"fast"})" "\n"
                                     << R"({"kind":"note","text":"ignored by this reader"})" "\n";
  const heed::report::MetricsLog log = heed::report::read_metrics_log((dir / "mixed.jsonl").string());
  REQUIRE(log.batches.size() == 2);
  CHECK(log.batches[1].step == 4);
  CHECK(!log.batches[1].lr);
  REQUIRE(log.warnings.size() == 3);
  CHECK(log.warnings[0] == "line 2: batch line skipped: no \"loss\"");
  CHECK(log.warnings[1] == "line 3: batch line skipped: \"loss\" is not a number");
  CHECK(log.warnings[2] == "line 4: \"lr\" is not a number (ignored)");

  CHECK(error_of([&] { heed::MetricsWriter w((dir / "no/such/folder/m.jsonl").string(), heed::RunInfo{}); })
            .find("MetricsWriter: cannot open") != std::string::npos);
  fs::remove_all(dir);
}

TEST_CASE("report: html_escape and json_for_script") {
  CHECK(heed::report::html_escape("a<b>&\"'c") == "a&lt;b&gt;&amp;&quot;&#39;c");
  const std::string json_text = json("</script><!-- & \u2028").dump();
  const std::string safe = heed::report::json_for_script(json_text);
  CHECK(safe.find('<') == std::string::npos);
  CHECK(safe.find('>') == std::string::npos);
  CHECK(safe.find('&') == std::string::npos);
  CHECK(safe.find("\u2028") == std::string::npos);
  CHECK(json::parse(safe) == json::parse(json_text));  // the same value
}

TEST_CASE("write_html: escaped text, the charts' data, pictures as data: URIs") {
  const fs::path dir = temp_dir("html");
  const fs::path log_path = dir / "metrics.jsonl";
  heed::RunInfo run = sample_run();
  run.name = "evil </script><script>window.pwned=1</script>";
  run.settings.emplace_back("note", "<b>not bold</b> & 'quoted'");
  run.model_summary = "Seq<Linear> </pre>";
  {
    heed::MetricsWriter log(log_path.string(), run);
    for (int64_t step = 1; step <= 4; ++step) {
      heed::MetricsRecord b = batch_record(step <= 2 ? 1 : 2, step, 1.0 / double(step));
      if (step == 3) b.grad_norm = kNaN;  // drawn as a gap
      log.batch(b);
      if (step % 2 == 0) {
        heed::MetricsRecord e;
        e.epoch = static_cast<int>(step / 2);
        e.step = step;
        e.loss = 1.0 / double(step);
        e.metrics = {{"accuracy", 0.5}, {"val_accuracy", 0.6}, {"val_loss", 0.7}};
        log.epoch(e);
      }
    }
  }
  heed::io::save_heatmap_png((dir / "attention.png").string(), heed::tensor({0.2, 0.8, 0.6, 0.4}, {2, 2}),
                             {"a", "b"}, {"x", "y"}, "weights");
  fs::create_directories(dir / "canvases");
  heed::io::save_heatmap_png((dir / "canvases" / "step.png").string(), heed::tensor({1.0, 0.0}, {1, 2}));
  std::ofstream(dir / "fake.png") << "not a png";
  const fs::path out = dir / "report.html";
  heed::report::HtmlOptions options;
  options.chart_js = stub_chart_js(dir).string();
  heed::report::write_html(log_path.string(), dir.string(), out.string(), options);
  const std::string html = read_text(out);

  // Text from the log appears only escaped; the page has exactly its own four script elements.
  CHECK(html.find("<script>window.pwned") == std::string::npos);
  CHECK(html.find("heed run: evil &lt;/script&gt;&lt;script&gt;") != std::string::npos);
  CHECK(html.find("&lt;b&gt;not bold&lt;/b&gt; &amp; &#39;quoted&#39;") != std::string::npos);
  CHECK(html.find("<pre>Seq&lt;Linear&gt; &lt;/pre&gt;</pre>") != std::string::npos);
  CHECK(count(html, "<script") == 4);
  CHECK(count(html, "</script>") == 4);
  CHECK(html.find("window.Chart = function") != std::string::npos);  // Chart.js inlined
  // Self-contained: nothing loaded from elsewhere.
  CHECK(html.find("src=\"http") == std::string::npos);
  CHECK(html.find("<link") == std::string::npos);

  // Both PNGs (the one in a subfolder too) as data: URIs, in path order; the fake one left out with a note.
  CHECK(count(html, "src=\"data:image/png;base64,iVBORw0KGgo") == 2);
  CHECK(html.find("attention.png") < html.find("canvases/step.png"));
  CHECK(html.find("fake.png: not a PNG file, not shown") != std::string::npos);

  // The charts: loss per batch and per epoch, accuracy per epoch (with val_accuracy) and per batch, then
  // learning rate, throughput and gradient norm per batch.
  const json data = chart_data(html);
  REQUIRE(data["charts"].size() == 7);
  CHECK(count(html, "<canvas id=\"chart-") == 7);
  std::vector<std::string> labels;
  for (const json& c : data["charts"]) labels.push_back(c["series"][0]["label"].get<std::string>());
  CHECK(labels == std::vector<std::string>{"loss", "loss", "accuracy", "accuracy", "learning rate", "samples/s",
                                           "global L2 norm"});
  const json& epoch_loss = data["charts"][1];
  REQUIRE(epoch_loss["series"].size() == 2);
  CHECK(epoch_loss["series"][1]["label"] == "val_loss");
  CHECK(epoch_loss["series"][1]["points"].dump() == "[[1.0,0.7],[2.0,0.7]]");
  CHECK(data["charts"][0]["series"][0]["points"].dump() == "[[1.0,1.0],[2.0,0.5],[3.0,0.3333333333333333],[4.0,0.25]]");
  CHECK(data["charts"][6]["series"][0]["points"][2].dump() == "[3.0,null]");  // the NaN gradient norm
  CHECK(html.find("1 value is NaN or infinite, not drawn") != std::string::npos);
  fs::remove_all(dir);
}

TEST_CASE("write_html: a missing or unsafe Chart.js is a clear error") {
  const fs::path dir = temp_dir("chartjs");
  const fs::path log_path = dir / "metrics.jsonl";
  { heed::MetricsWriter log(log_path.string(), sample_run()); }
  heed::report::HtmlOptions options;
  options.chart_js = (dir / "missing.js").string();
  const std::string missing = error_of([&] {
    heed::report::write_html(log_path.string(), "", (dir / "r.html").string(), options);
  });
  CHECK(missing.find("missing.js' is missing") != std::string::npos);
  CHECK(missing.find("apt-get install libjs-chart.js") != std::string::npos);
  options.chart_js = (dir / "bad.js").string();
  std::ofstream(options.chart_js) << "var s = '</SCRIPT>';";
  CHECK(error_of([&] { heed::report::write_html(log_path.string(), "", (dir / "r.html").string(), options); })
            .find("cannot be inlined") != std::string::npos);
  CHECK(!fs::exists(dir / "r.html"));
  // A log with only the run line: a page that says so, no charts.
  options.chart_js = stub_chart_js(dir).string();
  heed::report::write_html(log_path.string(), "", (dir / "r.html").string(), options);
  const std::string html = read_text(dir / "r.html");
  CHECK(html.find("no batch or epoch lines yet") != std::string::npos);
  CHECK(chart_data(html)["charts"].empty());
  fs::remove_all(dir);
}
