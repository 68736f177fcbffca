// framework/report/html.cpp — heed::report::write_html (heed/report.hpp): one self-contained HTML file from
// a metrics log and a run folder. The page is static HTML (text escaped here) plus one JSON block with the
// charts' data, drawn by Chart.js copied into the file; pictures are data: URIs. docs/run-report.md shows it.
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

#include "heed/error.hpp"
#include "heed/report.hpp"

// The Chart.js file CMake found (framework/report/report.cmake), "" when none was installed.
#ifndef HEED_CHART_JS_PATH
#define HEED_CHART_JS_PATH ""
#endif

namespace heed::report {
namespace fs = std::filesystem;
using ordered_json = nlohmann::ordered_json;

namespace {

// Series colours (Tableau 10); a chart's first series is blue, its validation series orange.
constexpr std::array<std::array<int, 3>, 6> kPalette = {
    {{31, 119, 180}, {255, 127, 14}, {44, 160, 44}, {214, 39, 40}, {148, 103, 189}, {140, 86, 75}}};
constexpr int kBlue = 0, kOrange = 1, kGreen = 2;
constexpr std::size_t kMaxTableRows = 200;

std::string read_binary(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return {};
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::string base64(const std::string& bytes) {
  static const char* kAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  std::size_t i = 0;
  for (; i + 2 < bytes.size(); i += 3) {
    const uint32_t v = (uint32_t(uint8_t(bytes[i])) << 16) | (uint32_t(uint8_t(bytes[i + 1])) << 8) | uint8_t(bytes[i + 2]);
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += kAlphabet[(v >> 6) & 63];
    out += kAlphabet[v & 63];
  }
  if (i < bytes.size()) {
    const bool two = i + 1 < bytes.size();
    const uint32_t v = (uint32_t(uint8_t(bytes[i])) << 16) | (two ? uint32_t(uint8_t(bytes[i + 1])) << 8 : 0);
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += two ? kAlphabet[(v >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

// ---- pictures -----------------------------------------------------------------------------------------

struct Picture {
  std::string name;  // path relative to the run folder
  std::string data;  // the PNG's bytes
  uint32_t width = 0, height = 0;
};

uint32_t big_endian32(const std::string& s, std::size_t at) {
  return (uint32_t(uint8_t(s[at])) << 24) | (uint32_t(uint8_t(s[at + 1])) << 16) | (uint32_t(uint8_t(s[at + 2])) << 8) |
         uint32_t(uint8_t(s[at + 3]));
}

// Every *.png under `dir` (at most max_depth folders down), sorted by relative path. A file that is not a
// PNG (no PNG signature and IHDR chunk) is left out with a warning.
std::vector<Picture> find_pictures(const std::string& dir, int max_depth, std::vector<std::string>& warnings) {
  std::vector<Picture> pictures;
  if (dir.empty()) return pictures;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) {
    warnings.push_back(fmt::format("run folder '{}' is not a folder: no pictures", dir));
    return pictures;
  }
  const std::string signature("\x89PNG\r\n\x1a\n", 8);
  fs::recursive_directory_iterator it(dir, fs::directory_options::skip_permission_denied, ec), end;
  for (; !ec && it != end; it.increment(ec)) {
    if (it->is_directory(ec) && it.depth() >= max_depth) it.disable_recursion_pending();
    if (!it->is_regular_file(ec) || lower(it->path().extension().string()) != ".png") continue;
    Picture p;
    p.name = fs::relative(it->path(), dir, ec).generic_string();
    p.data = read_binary(it->path());
    if (p.data.size() < 24 || p.data.compare(0, 8, signature) != 0 || p.data.compare(12, 4, "IHDR") != 0) {
      warnings.push_back(fmt::format("{}: not a PNG file, not shown", p.name));
      continue;
    }
    p.width = big_endian32(p.data, 16);
    p.height = big_endian32(p.data, 20);
    pictures.push_back(std::move(p));
  }
  std::sort(pictures.begin(), pictures.end(), [](const Picture& a, const Picture& b) { return a.name < b.name; });
  return pictures;
}

// ---- charts -------------------------------------------------------------------------------------------

struct Series {
  std::string label;
  int color = kBlue;
  std::vector<std::pair<double, double>> points;  // y NaN/inf = not drawn (null in the page)
};

struct Chart {
  std::string title, x_label, y_label;
  std::vector<Series> series;
  int64_t nonfinite = 0;
};

using Getter = std::function<std::optional<double>(const MetricsRecord&)>;

// Points (x(r), get(r)) of the records that have the value; returns false when none has it.
template <class Map>
bool add_series(Chart& chart, const Map& rows, const std::string& label, int color, bool by_epoch, const Getter& get) {
  Series s{label, color, {}};
  for (const auto& [key, r] : rows) {
    const std::optional<double> y = get(r);
    if (!y) continue;
    if (!std::isfinite(*y)) ++chart.nonfinite;
    s.points.emplace_back(by_epoch ? double(r.epoch) : double(r.step), *y);
  }
  if (s.points.empty()) return false;
  chart.series.push_back(std::move(s));
  return true;
}

Getter metric(const std::string& name) {
  return [name](const MetricsRecord& r) -> std::optional<double> {
    auto it = r.metrics.find(name);
    if (it == r.metrics.end()) return std::nullopt;
    return it->second;
  };
}

// Metric names in the records, in sorted order.
template <class Map>
std::set<std::string> metric_names(const Map& rows) {
  std::set<std::string> names;
  for (const auto& [key, r] : rows)
    for (const auto& [name, value] : r.metrics) names.insert(name);
  return names;
}

// "val_top_k" -> "val top k" (labels); capital = true: "Val top k" (chart titles).
std::string pretty(const std::string& name, bool capital = false) {
  std::string s = name;
  std::replace(s.begin(), s.end(), '_', ' ');
  if (capital && !s.empty()) s[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(s[0])));
  return s;
}

ordered_json chart_json(const Chart& chart, const std::string& id) {
  ordered_json j;
  j["id"] = id;
  j["x_label"] = chart.x_label;
  j["y_label"] = chart.y_label;
  ordered_json series = ordered_json::array();
  for (const Series& s : chart.series) {
    ordered_json points = ordered_json::array();
    for (const auto& [x, y] : s.points) points.push_back({x, std::isfinite(y) ? ordered_json(y) : ordered_json(nullptr)});
    series.push_back({{"label", s.label}, {"color", s.color}, {"points", std::move(points)}});
  }
  j["series"] = std::move(series);
  return j;
}

std::string number_text(double v) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  return fmt::format("{:.6g}", v);
}

// ---- the page -----------------------------------------------------------------------------------------

const char* kStyle = R"CSS(
body { font: 14px/1.45 "DejaVu Sans", system-ui, sans-serif; color: #222; background: #fff;
       max-width: 1280px; margin: 0 auto; padding: 16px 24px 40px; }
h1 { font-size: 22px; margin: 0 0 4px; } h2 { font-size: 17px; margin: 28px 0 10px; }
.meta { color: #555; margin: 0 0 12px; }
.charts { display: grid; grid-template-columns: repeat(auto-fill, minmax(520px, 1fr)); gap: 14px; }
figure { margin: 0; border: 1px solid #ddd; border-radius: 6px; padding: 8px 12px 10px; background: #fff; }
figure h3 { font-size: 15px; margin: 0 0 4px; }
.chartbox { position: relative; height: 250px; }
.note { color: #8a5a00; font-size: 12px; margin: 4px 0 0; }
.pictures { display: flex; flex-wrap: wrap; gap: 14px; align-items: flex-start; }
.pictures img { max-width: 100%; height: auto; display: block; }
figcaption { font-size: 12px; color: #555; margin-top: 4px; }
table { border-collapse: collapse; font-size: 13px; }
th, td { border-bottom: 1px solid #e4e4e4; padding: 3px 12px 3px 0; text-align: left; vertical-align: top; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
pre { background: #f6f6f6; border: 1px solid #e4e4e4; padding: 10px; overflow: auto; font-size: 12px; }
#heed-errors { background: #fde8e8; border: 1px solid #c33; padding: 8px 12px; margin: 8px 0; }
)CSS";

// Runs first: keeps every script error (shown at the top of the page) and, once the page has loaded,
// records how many pictures decoded. body.dataset.* is what tests/browser reads from the DOM.
const char* kHeadScript = R"JS(
window.heedErrors = [];
function heedShowErrors() {
  var box = document.getElementById('heed-errors');
  if (!box) return;
  box.hidden = window.heedErrors.length === 0;
  box.textContent = 'This report\'s script failed (charts may be missing): ' + window.heedErrors.join(' | ');
  document.body.dataset.jsErrors = String(window.heedErrors.length);
}
window.addEventListener('error', function (e) {
  window.heedErrors.push(String(e.message || e.type));
  heedShowErrors();
});
window.addEventListener('load', function () {
  var pictures = document.querySelectorAll('img.heed-picture'), decoded = 0;
  for (var i = 0; i < pictures.length; i++) if (pictures[i].complete && pictures[i].naturalWidth > 0) decoded++;
  document.body.dataset.picturesTotal = String(pictures.length);
  document.body.dataset.picturesDecoded = String(decoded);
  heedShowErrors();
  document.body.dataset.loaded = '1';
});
)JS";

// Draws every chart of the JSON block, then counts the pixels of its series' colours inside its plot
// area: a chart whose lines did not draw has none. Each canvas gets data-coloured (that count) and
// data-area (the plot area in page pixels: x,y,width,height); body gets data-charts-total/-drawn.
const char* kMainScript = R"JS(
(function () {
  'use strict';
  var data = JSON.parse(document.getElementById('heed-data').textContent);
  function coloured(chart, colours) {
    var a = chart.chartArea, ratio = chart.currentDevicePixelRatio || window.devicePixelRatio || 1;
    var x = Math.floor(a.left * ratio), y = Math.floor(a.top * ratio);
    var w = Math.max(1, Math.floor((a.right - a.left) * ratio)), h = Math.max(1, Math.floor((a.bottom - a.top) * ratio));
    var px = chart.canvas.getContext('2d').getImageData(x, y, w, h).data, n = 0;
    for (var i = 0; i < px.length; i += 4) {
      for (var k = 0; k < colours.length; k++) {
        var c = colours[k];
        if (Math.abs(px[i] - c[0]) <= 10 && Math.abs(px[i + 1] - c[1]) <= 10 && Math.abs(px[i + 2] - c[2]) <= 10 &&
            px[i + 3] > 200) { n++; break; }
      }
    }
    return n;
  }
  var drawn = 0;
  data.charts.forEach(function (spec) {
    var canvas = document.getElementById(spec.id), colours = [];
    var datasets = spec.series.map(function (s) {
      var c = data.palette[s.color % data.palette.length], css = 'rgb(' + c.join(',') + ')';
      colours.push(c);
      return { label: s.label, data: s.points.map(function (p) { return { x: p[0], y: p[1] }; }),
               borderColor: css, backgroundColor: css, borderWidth: 2, pointRadius: s.points.length > 40 ? 0 : 3,
               tension: 0, spanGaps: false, clip: 6 };  // points at the axis ends drawn whole
    });
    // The x axis spans the data (Chart.js would round it up to a "nice" bound past the last step).
    var xs = [];
    spec.series.forEach(function (s) { s.points.forEach(function (p) { xs.push(p[0]); }); });
    var x_min = Math.min.apply(null, xs), x_max = Math.max.apply(null, xs), span = x_max > x_min;
    var chart = new Chart(canvas, {
      type: 'line', data: { datasets: datasets },
      options: {
        animation: false, parsing: false, normalized: true, responsive: true, maintainAspectRatio: false,
        interaction: { mode: 'nearest', axis: 'x', intersect: false },
        scales: { x: { type: 'linear', min: span ? x_min : undefined, max: span ? x_max : undefined,
                       title: { display: true, text: spec.x_label }, ticks: { precision: 0 } },
                  y: { type: 'linear', title: { display: spec.y_label !== '', text: spec.y_label } } },
        plugins: { legend: { display: true }, decimation: { enabled: true, algorithm: 'lttb', samples: 1000 } }
      }
    });
    var n = coloured(chart, colours), box = canvas.getBoundingClientRect(), a = chart.chartArea;
    canvas.dataset.coloured = String(n);
    canvas.dataset.area = [box.left + window.scrollX + a.left, box.top + window.scrollY + a.top,
                           a.right - a.left, a.bottom - a.top].map(Math.round).join(',');
    if (n > 0) drawn++;
  });
  document.body.dataset.chartsTotal = String(data.charts.length);
  document.body.dataset.chartsDrawn = String(drawn);
})();
)JS";

// Chart.js's source, checked to be safe inside <script>...</script>.
std::string load_chart_js(const HtmlOptions& options) {
  const std::string path = options.chart_js.empty() ? chart_js_path() : options.chart_js;
  HEED_CHECK(!path.empty(),
             "write_html: Chart.js was not found when heed was configured; install Debian's libjs-chart.js "
             "(apt-get install libjs-chart.js) and run cmake again, or pass HtmlOptions::chart_js / heed-report --chart-js");
  std::error_code ec;
  HEED_CHECK(fs::is_regular_file(path, ec),
             "write_html: Chart.js '{}' is missing (install Debian's libjs-chart.js: apt-get install libjs-chart.js)", path);
  std::string js = read_binary(path);
  HEED_CHECK(!js.empty(), "write_html: cannot read Chart.js '{}'", path);
  const std::string low = lower(js);
  HEED_CHECK(low.find("</script") == std::string::npos && low.find("<!--") == std::string::npos,
             "write_html: '{}' contains \"</script\" or \"<!--\" and cannot be inlined in a <script> element", path);
  return js;
}

void write_atomically(const std::string& path, const std::string& text) {
  const std::string tmp = fmt::format("{}.tmp-{}", path, static_cast<long>(::getpid()));
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    HEED_CHECK(out, "write_html: cannot write '{}'", tmp);
    out.write(text.data(), static_cast<std::streamsize>(text.size()));
    out.close();
    if (!out) {
      std::remove(tmp.c_str());
      throw Error(fmt::format("write_html: cannot write '{}'", tmp));
    }
  }
  std::error_code ec;
  fs::rename(tmp, path, ec);
  if (ec) {
    std::remove(tmp.c_str());
    throw Error(fmt::format("write_html: cannot rename '{}' to '{}': {}", tmp, path, ec.message()));
  }
}

}  // namespace

std::string chart_js_path() { return HEED_CHART_JS_PATH; }

std::string html_escape(const std::string& text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

std::string json_for_script(const std::string& json) {
  std::string out;
  out.reserve(json.size());
  for (std::size_t i = 0; i < json.size(); ++i) {
    const char c = json[i];
    if (c == '<') {
      out += "\\u003c";
    } else if (c == '>') {
      out += "\\u003e";
    } else if (c == '&') {
      out += "\\u0026";
    } else if (c == '\xe2' && i + 2 < json.size() && json[i + 1] == '\x80' && (json[i + 2] == '\xa8' || json[i + 2] == '\xa9')) {
      out += json[i + 2] == '\xa8' ? "\\u2028" : "\\u2029";  // line/paragraph separators
      i += 2;
    } else {
      out += c;
    }
  }
  return out;
}

void write_html(const std::string& metrics_log, const std::string& run_dir, const std::string& out_html,
                const HtmlOptions& options) {
  const std::string chart_js = load_chart_js(options);
  MetricsLog log = read_metrics_log(metrics_log);
  std::vector<std::string> warnings = log.warnings;

  // A resumed run may repeat steps or epochs: the later line wins (docs/run-report.md).
  std::map<int64_t, MetricsRecord> batches;
  std::map<int, MetricsRecord> epochs;
  int64_t repeated = 0;
  for (MetricsRecord& r : log.batches) repeated += !batches.insert_or_assign(r.step, r).second;
  for (MetricsRecord& r : log.epochs) repeated += !epochs.insert_or_assign(r.epoch, r).second;
  if (repeated > 0) {
    warnings.push_back(fmt::format("{} line{} repeated a step or epoch of an earlier line (a resumed run?): the later "
                                   "one is shown", repeated, repeated == 1 ? "" : "s"));
  }

  // ---- the charts, in the order of the page ----
  std::vector<Chart> charts;
  std::vector<std::string> missing;
  auto loss = [](const MetricsRecord& r) -> std::optional<double> { return r.loss; };
  if (!batches.empty()) {
    Chart c{"Loss per batch", "step", "loss", {}, 0};
    add_series(c, batches, "loss", kBlue, false, loss);
    charts.push_back(std::move(c));
  }
  if (!epochs.empty()) {
    Chart c{"Loss per epoch", "epoch", "loss", {}, 0};
    add_series(c, epochs, "loss", kBlue, true, loss);
    add_series(c, epochs, "val_loss", kOrange, true, metric("val_loss"));
    charts.push_back(std::move(c));
  }
  // Epoch metrics, each with its val_ twin ("accuracy" and "val_accuracy" in one chart).
  std::set<std::string> bases;
  for (const std::string& name : metric_names(epochs)) {
    const std::string base = name.rfind("val_", 0) == 0 ? name.substr(4) : name;
    if (base != "loss") bases.insert(base);
  }
  for (const std::string& base : bases) {
    Chart c{pretty(base, true) + " per epoch", "epoch", pretty(base), {}, 0};
    add_series(c, epochs, base, kBlue, true, metric(base));
    add_series(c, epochs, "val_" + base, kOrange, true, metric("val_" + base));
    charts.push_back(std::move(c));
  }
  for (const std::string& name : metric_names(batches)) {
    Chart c{pretty(name, true) + " per batch", "step", pretty(name), {}, 0};
    add_series(c, batches, name, kBlue, false, metric(name));
    charts.push_back(std::move(c));
  }
  // Learning rate, throughput and gradient norm: per batch when the batch lines have them, else per epoch.
  struct Optional {
    const char* title;
    const char* y_label;
    Getter get;
  };
  const Optional optionals[] = {
      {"Learning rate", "learning rate", [](const MetricsRecord& r) { return r.lr; }},
      {"Throughput", "samples/s", [](const MetricsRecord& r) { return r.samples_per_s; }},
      {"Gradient norm", "global L2 norm", [](const MetricsRecord& r) { return r.grad_norm; }},
  };
  for (const Optional& o : optionals) {
    Chart c{fmt::format("{} per batch", o.title), "step", o.y_label, {}, 0};
    if (add_series(c, batches, o.y_label, kGreen, false, o.get)) {
      charts.push_back(std::move(c));
      continue;
    }
    Chart e{fmt::format("{} per epoch", o.title), "epoch", o.y_label, {}, 0};
    if (add_series(e, epochs, o.y_label, kGreen, true, o.get)) {
      charts.push_back(std::move(e));
    } else {
      missing.push_back(lower(o.title));
    }
  }

  ordered_json data;
  data["palette"] = kPalette;
  data["charts"] = ordered_json::array();
  for (std::size_t i = 0; i < charts.size(); ++i) data["charts"].push_back(chart_json(charts[i], fmt::format("chart-{}", i)));

  const std::vector<Picture> pictures = find_pictures(run_dir, options.max_depth, warnings);
  const RunInfo run = log.runs.empty() ? RunInfo{} : log.runs.back();
  const std::string title = !options.title.empty() ? options.title
                            : run.name.empty()     ? std::string("heed run")
                                                   : "heed run: " + run.name;

  // ---- the page ----
  std::string h;
  h.reserve(chart_js.size() + 4096);
  h += "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n";
  h += "<meta name=\"generator\" content=\"heed::report::write_html\">\n";
  h += "<title>" + html_escape(title) + "</title>\n<style>" + kStyle + "</style>\n";
  h += "<script>" + std::string(kHeadScript) + "</script>\n</head>\n<body>\n";
  h += "<h1>" + html_escape(title) + "</h1>\n";
  std::vector<std::string> meta;
  if (!run.started.empty()) meta.push_back("started " + run.started);
  if (!run.heed_version.empty()) meta.push_back("heed " + run.heed_version);
  meta.push_back(fmt::format("{} epoch{}, {} batch line{}", epochs.size(), epochs.size() == 1 ? "" : "s", batches.size(),
                             batches.size() == 1 ? "" : "s"));
  if (log.runs.size() > 1) meta.push_back(fmt::format("{} runs in this log (resumed)", log.runs.size()));
  meta.push_back("log: " + fs::path(metrics_log).filename().string());
  std::string meta_line;
  for (std::size_t i = 0; i < meta.size(); ++i) meta_line += (i ? " · " : "") + meta[i];
  h += "<p class=\"meta\">" + html_escape(meta_line) + "</p>\n";
  h += "<div id=\"heed-errors\" hidden></div>\n";

  h += "<h2>Curves</h2>\n<div class=\"charts\">\n";
  for (std::size_t i = 0; i < charts.size(); ++i) {
    h += "<figure class=\"chart\"><h3>" + html_escape(charts[i].title) + "</h3>";
    h += fmt::format("<div class=\"chartbox\"><canvas id=\"chart-{}\" role=\"img\" aria-label=\"{}\"></canvas></div>", i,
                     html_escape(charts[i].title));
    if (charts[i].nonfinite > 0) {
      h += fmt::format("<p class=\"note\">{} value{} NaN or infinite, not drawn (gaps in the line).</p>",
                       charts[i].nonfinite, charts[i].nonfinite == 1 ? " is" : "s are");
    }
    h += "</figure>\n";
  }
  h += "</div>\n";
  if (charts.empty()) h += "<p class=\"note\">The log has no batch or epoch lines yet.</p>\n";
  if (!missing.empty()) {
    std::string list;
    for (std::size_t i = 0; i < missing.size(); ++i) list += (i ? ", " : "") + missing[i];
    h += "<p class=\"note\">Not in the log: " + html_escape(list) + ".</p>\n";
  }

  if (!pictures.empty()) {
    h += "<h2>Pictures</h2>\n<div class=\"pictures\">\n";
    for (const Picture& p : pictures) {
      h += fmt::format("<figure><img class=\"heed-picture\" width=\"{}\" height=\"{}\" alt=\"{}\" "
                       "src=\"data:image/png;base64,{}\"><figcaption>{} ({} x {})</figcaption></figure>\n",
                       p.width, p.height, html_escape(p.name), base64(p.data), html_escape(p.name), p.width, p.height);
    }
    h += "</div>\n";
  }

  if (!epochs.empty()) {
    const std::set<std::string> names = metric_names(epochs);
    h += "<h2>Epochs</h2>\n<table>\n<tr><th>epoch</th><th>step</th><th>loss</th>";
    for (const std::string& name : names) h += "<th>" + html_escape(name) + "</th>";
    h += "<th>lr</th><th>time (s)</th><th>samples/s</th></tr>\n";
    std::size_t skip = epochs.size() > kMaxTableRows ? epochs.size() - kMaxTableRows : 0;
    auto opt = [](const std::optional<double>& v) { return v ? number_text(*v) : std::string(); };
    for (const auto& [e, r] : epochs) {
      if (skip > 0) {
        --skip;
        continue;
      }
      h += fmt::format("<tr><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>", r.epoch, r.step,
                       number_text(r.loss));
      for (const std::string& name : names) {
        auto it = r.metrics.find(name);
        h += "<td class=\"num\">" + (it == r.metrics.end() ? std::string() : number_text(it->second)) + "</td>";
      }
      h += "<td class=\"num\">" + opt(r.lr) + "</td><td class=\"num\">" + opt(r.time) + "</td><td class=\"num\">" +
           opt(r.samples_per_s) + "</td></tr>\n";
    }
    h += "</table>\n";
    if (epochs.size() > kMaxTableRows) h += fmt::format("<p class=\"note\">The last {} epochs.</p>\n", kMaxTableRows);
  }

  h += "<h2>Settings</h2>\n";
  if (run.settings.empty()) {
    h += "<p class=\"note\">No settings in the log.</p>\n";
  } else {
    h += "<table>\n";
    for (const auto& [key, value] : run.settings) {
      h += "<tr><th>" + html_escape(key) + "</th><td>" + html_escape(value.to_string()) + "</td></tr>\n";
    }
    h += "</table>\n";
  }
  h += "<h2>Model</h2>\n";
  h += run.model_summary.empty() ? std::string("<p class=\"note\">No model summary in the log.</p>\n")
                                 : "<pre>" + html_escape(run.model_summary) + "</pre>\n";
  if (!warnings.empty()) {
    h += "<h2>Notes on the log</h2>\n<ul>\n";
    for (const std::string& w : warnings) h += "<li>" + html_escape(w) + "</li>\n";
    h += "</ul>\n";
  }

  h += "<script>" + chart_js + "\n</script>\n";
  h += "<script type=\"application/json\" id=\"heed-data\">" +
       json_for_script(data.dump(-1, ' ', false, ordered_json::error_handler_t::replace)) + "</script>\n";
  h += "<script>" + std::string(kMainScript) + "</script>\n</body>\n</html>\n";
  write_atomically(out_html, h);
}

}  // namespace heed::report
