// The run report in a real browser. Trains a tiny MLP with its own loop, logging through
// heed::MetricsWriter; writes two pictures (a heatmap with heed::io::save_heatmap_png, a strip of decision
// surfaces with heed::io::image_grid); turns them into report.html with the heed-report tool; then renders
// the page with headless Chromium (network names unresolvable, so it must work offline), taking a
// screenshot and the DOM after the page's scripts ran. It fails when:
//   - Chromium logged any console message (an uncaught JavaScript error, for one), or the page's own
//     error hook caught one;
//   - a chart is missing or did not draw: the page counts its series' colours inside each chart's plot
//     area (data-coloured), and this program counts them again in the screenshot (decoded with
//     stb_image), inside the plot area the page reported;
//   - a picture did not decode, text from the log was not escaped (a setting holds a "</script>"
//     injection), or the page did not finish loading.
// Exit 0 = passed, 1 = failed, 77 = skipped (Chromium or Chart.js not installed; CTest reports Skipped).
//
//   test_report_browser --tool build/tools/heed-report/heed-report --work /tmp/rb [--window 1280x2000]
//                       [--sabotage syntax|nodraw]   (break Chart.js on purpose: the check must fail)
// CTest runs it plainly and with each sabotage (tests/browser/CMakeLists.txt). docs/report.png is its
// screenshot (docs/run-report.md says how it was made).
#include <stb/stb_image.h>
#include <unistd.h>

#include <array>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <heed/heed.hpp>
#include <iterator>
#include <map>
#include <regex>
#include <string>
#include <vector>

namespace fs = std::filesystem;

namespace {

constexpr int kSkip = 77;
// The page's series colours (framework/report/html.cpp): blue, orange, green.
constexpr std::array<std::array<int, 3>, 3> kSeriesColours = {{{31, 119, 180}, {255, 127, 14}, {44, 160, 44}}};
constexpr int kMinColouredPixels = 20;
constexpr int kExpectedCharts = 7;    // loss and accuracy per batch and per epoch, lr, throughput, grad norm
constexpr int kExpectedPictures = 2;  // weights.png, canvases/decision.png

std::vector<std::string> failures;

void fail(const std::string& what) {
  std::printf("report-browser: FAIL: %s\n", what.c_str());
  failures.push_back(what);
}

std::string quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

std::string read_text(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

int run(const std::string& command) {
  const int status = std::system(command.c_str());
  return status == -1 ? -1 : WEXITSTATUS(status);
}

// data-* attributes of the first tag matching `tag_regex` (e.g. "<body[^>]*>").
std::map<std::string, std::string> data_attributes(const std::string& tag) {
  std::map<std::string, std::string> out;
  static const std::regex attribute("data-([a-z-]+)=\"([^\"]*)\"");
  for (std::sregex_iterator it(tag.begin(), tag.end(), attribute), end; it != end; ++it) out[(*it)[1]] = (*it)[2];
  return out;
}

// ---- the run: a tiny MLP on two interleaved classes, logged batch by batch -----------------------------

float label_of(float a, float b) { return a * b > 0 ? 1.0f : 0.0f; }  // XOR of the signs

void make_data(int64_t n, heed::Tensor& x, heed::Tensor& y) {
  x = heed::randn({n, 2});
  const std::vector<float> v = x.to_vector<float>();
  std::vector<float> labels(static_cast<std::size_t>(n));
  for (int64_t i = 0; i < n; ++i) labels[i] = label_of(v[2 * i], v[2 * i + 1]);
  y = heed::tensor(labels, {n, 1});
}

// P(class 1) on a side x side grid over [-2.5, 2.5]^2: the model's decision surface as a grey picture.
std::vector<float> decision_surface(heed::nn::Module& model, int side) {
  std::vector<float> grid;
  for (int r = 0; r < side; ++r)
    for (int c = 0; c < side; ++c) {
      grid.push_back(-2.5f + 5.0f * (c + 0.5f) / side);
      grid.push_back(2.5f - 5.0f * (r + 0.5f) / side);
    }
  heed::NoGradGuard no_grad;
  return heed::sigmoid(model(heed::tensor(grid, {int64_t(side) * side, 2}))).to_vector<float>();
}

void train_and_log(const fs::path& run_dir) {
  heed::manual_seed(7);
  heed::Tensor x, y, val_x, val_y;
  make_data(512, x, y);
  make_data(128, val_x, val_y);
  auto model = std::make_shared<heed::nn::Sequential>(std::vector<std::shared_ptr<heed::nn::Module>>{
      std::make_shared<heed::nn::Linear>(2, 16), std::make_shared<heed::nn::Tanh>(),
      std::make_shared<heed::nn::Linear>(16, 1)});
  const int epochs = 8;
  const int64_t batch = 32, batches = 512 / batch;
  heed::optim::Adam optimizer(model->parameters(), heed::optim::AdamOptions(0.05));
  heed::optim::CosineWithWarmup schedule(optimizer, 10, epochs * batches, 0.002);

  heed::RunInfo run;
  run.name = "tiny-mlp (browser test)";
  run.settings = {{"epochs", epochs},        {"batch_size", batch}, {"optimizer", "adam"}, {"lr", 0.05},
                  {"schedule", "cosine, 10 warmup steps"},         {"train_size", 512},  {"seed", 7},
                  {"escaping_check", "</script><script>document.body.dataset.injected='1'</script><b>not bold</b>"}};
  run.model_summary = model->summary(heed::zeros({1, 2}));
  heed::MetricsWriter log((run_dir / "metrics.jsonl").string(), run);

  const int side = 40;
  std::vector<float> surfaces;
  int64_t step = 0;
  for (int epoch = 1; epoch <= epochs; ++epoch) {
    model->train();
    double loss_sum = 0;
    int64_t correct = 0;
    for (int64_t b = 0; b < batches; ++b) {
      const heed::Tensor xb = heed::narrow(x, 0, b * batch, batch), yb = heed::narrow(y, 0, b * batch, batch);
      optimizer.zero_grad();
      const heed::Tensor logits = (*model)(xb);
      heed::Tensor loss = heed::binary_cross_entropy_with_logits(logits, yb);
      loss.backward();
      const double lr = optimizer.lr();
      const double norm = heed::optim::clip_grad_norm_(model->parameters(), 5.0);
      optimizer.step();
      schedule.step();
      const int64_t right = heed::count_binary_correct(logits, yb);
      heed::MetricsRecord r;
      r.epoch = epoch;
      r.step = ++step;
      r.batch = b + 1;
      r.loss = loss.item();
      r.metrics["accuracy"] = double(right) / double(batch);
      r.lr = lr;
      r.grad_norm = norm;
      r.samples = batch;
      log.batch(r);
      loss_sum += r.loss;
      correct += right;
    }
    model->eval();
    heed::NoGradGuard no_grad;
    const heed::Tensor val_logits = (*model)(val_x);
    heed::MetricsRecord e;
    e.epoch = epoch;
    e.step = step;
    e.loss = loss_sum / double(batches);
    e.metrics = {{"accuracy", double(correct) / 512.0},
                 {"val_loss", heed::binary_cross_entropy_with_logits(val_logits, val_y).item()},
                 {"val_accuracy", double(heed::count_binary_correct(val_logits, val_y)) / 128.0}};
    e.lr = optimizer.lr();
    e.samples = 512;
    log.epoch(e);
    if (epoch == 1 || epoch == epochs / 2 || epoch == epochs) {
      const std::vector<float> s = decision_surface(*model, side);
      surfaces.insert(surfaces.end(), s.begin(), s.end());
    }
  }
  // The pictures a run leaves: a heatmap of the first layer's weights, and a canvas strip.
  auto first = std::dynamic_pointer_cast<heed::nn::Linear>((*model)[0]);
  heed::io::save_heatmap_png((run_dir / "weights.png").string(), heed::transpose(first->weight, 0, 1), {"x0", "x1"}, {},
                             "first layer weights (input x unit)");
  fs::create_directories(run_dir / "canvases");
  const int64_t shots = static_cast<int64_t>(surfaces.size()) / (side * side);
  heed::io::save_png((run_dir / "canvases" / "decision.png").string(),
                     heed::io::image_grid(heed::tensor(surfaces, {shots, side, side}), int(shots), 3, 2));
}

// ---- the checks -----------------------------------------------------------------------------------------

int coloured_pixels(const unsigned char* rgb, int width, int x0, int y0, int w, int h) {
  int n = 0;
  for (int y = y0; y < y0 + h; ++y)
    for (int x = x0; x < x0 + w; ++x) {
      const unsigned char* p = rgb + 3 * (std::size_t(y) * width + x);
      for (const auto& c : kSeriesColours) {
        if (std::abs(p[0] - c[0]) <= 10 && std::abs(p[1] - c[1]) <= 10 && std::abs(p[2] - c[2]) <= 10) {
          ++n;
          break;
        }
      }
    }
  return n;
}

void check_page(const std::string& dom, const std::string& console, const fs::path& screenshot) {
  // Console: a page that works logs nothing.
  std::size_t console_lines = 0;
  for (std::size_t at = 0, end; at < console.size(); at = end + 1) {
    end = console.find('\n', at);
    if (end == std::string::npos) end = console.size();
    const std::string line = console.substr(at, end - at);
    if (line.find(":CONSOLE") != std::string::npos) {
      fail("javascript console: " + line.substr(line.find(":CONSOLE")));
      ++console_lines;
    }
  }
  std::smatch m;
  if (!std::regex_search(dom, m, std::regex("<body[^>]*>"))) {
    fail("no <body> in the DOM Chromium dumped");
    return;
  }
  std::map<std::string, std::string> body = data_attributes(m.str());
  if (body["loaded"] != "1") fail("the page did not finish loading (no data-loaded on <body>)");
  if (!body["js-errors"].empty() && body["js-errors"] != "0") {
    fail("the page's error hook caught " + body["js-errors"] + " script error(s)");
  }
  if (body.count("injected")) fail("a setting's \"</script>\" text ran as a script: escaping is broken");
  if (dom.find("&lt;b&gt;not bold&lt;/b&gt;") == std::string::npos) fail("the escaped setting text is not on the page");
  if (body["pictures-total"] != std::to_string(kExpectedPictures) || body["pictures-decoded"] != body["pictures-total"]) {
    fail("pictures: " + body["pictures-decoded"] + " of " + body["pictures-total"] + " decoded, expected " +
         std::to_string(kExpectedPictures));
  }
  if (body["charts-total"] != std::to_string(kExpectedCharts)) {
    fail("charts: the page made " + (body["charts-total"].empty() ? std::string("none") : body["charts-total"]) +
         ", expected " + std::to_string(kExpectedCharts));
  }

  int width = 0, height = 0, channels = 0;
  unsigned char* rgb = stbi_load(screenshot.c_str(), &width, &height, &channels, 3);
  if (!rgb) {
    fail("cannot decode the screenshot " + screenshot.string());
    return;
  }
  int canvases = 0, drawn = 0;
  static const std::regex canvas_tag("<canvas [^>]*>");
  for (std::sregex_iterator it(dom.begin(), dom.end(), canvas_tag), end; it != end; ++it) {
    ++canvases;
    const std::string tag = it->str();
    std::smatch id;
    const std::string name = std::regex_search(tag, id, std::regex("id=\"([^\"]*)\"")) ? id[1].str() : "canvas";
    std::map<std::string, std::string> a = data_attributes(tag);
    // Two independent checks: the page's own count (on the canvas) and the screenshot's (what Chromium
    // painted). Both must find the series' colours.
    bool ok = true;
    if (a["coloured"].empty() || std::stoi(a["coloured"]) < kMinColouredPixels) {
      fail(name + " did not draw: the page counted " +
           (a["coloured"].empty() ? std::string("no") : a["coloured"]) + " pixels of its series' colours in the plot area");
      ok = false;
    }
    int x = 0, y = 0, w = 0, h = 0;
    if (std::sscanf(a["area"].c_str(), "%d,%d,%d,%d", &x, &y, &w, &h) != 4 || w <= 0 || h <= 0) {
      fail(name + " has no plot area (data-area=\"" + a["area"] + "\")");
      continue;
    }
    if (x < 0 || y < 0 || x + w > width || y + h > height) {
      fail(name + "'s plot area " + a["area"] + " is outside the " + std::to_string(width) + "x" +
           std::to_string(height) + " screenshot (use a taller --window)");
      continue;
    }
    const int n = coloured_pixels(rgb, width, x, y, w, h);
    if (n < kMinColouredPixels) {
      fail(name + " did not draw in the screenshot: " + std::to_string(n) + " pixels of its colours in " + a["area"]);
      continue;
    }
    if (!ok) continue;
    std::printf("report-browser: %s drew %d coloured pixels (page) / %d (screenshot) in %s\n", name.c_str(),
                std::stoi(a["coloured"]), n, a["area"].c_str());
    ++drawn;
  }
  stbi_image_free(rgb);
  if (canvases != kExpectedCharts) fail(std::to_string(canvases) + " chart canvases on the page, expected " +
                                        std::to_string(kExpectedCharts));
  std::printf("report-browser: %d of %d charts drew, %zu console messages\n", drawn, canvases, console_lines);
}

}  // namespace

int main(int argc, char** argv) {
  std::string tool, sabotage = "none", window = "1280x1700";
  fs::path work = fs::temp_directory_path() / ("heed_report_browser_" + std::to_string(::getpid()));
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    const bool has_value = i + 1 < argc;
    if (arg == "--tool" && has_value) tool = argv[++i];
    else if (arg == "--work" && has_value) work = argv[++i];
    else if (arg == "--window" && has_value) window = argv[++i];
    else if (arg == "--sabotage" && has_value) sabotage = argv[++i];
    else {
      std::fprintf(stderr, "usage: %s --tool HEED_REPORT [--work DIR] [--window WxH] [--sabotage syntax|nodraw]\n", argv[0]);
      return 2;
    }
  }
  if (tool.empty() || (sabotage != "none" && sabotage != "syntax" && sabotage != "nodraw")) {
    std::fprintf(stderr, "%s: --tool is required; --sabotage is syntax or nodraw\n", argv[0]);
    return 2;
  }
  // HEED_CHROMIUM names another browser binary (or a missing one, to see this test skip).
  const char* env = std::getenv("HEED_CHROMIUM");
  const std::string chromium = env && *env ? env : "chromium";
  if (run("command -v " + quote(chromium) + " >/dev/null 2>&1") != 0) {
    std::printf("report-browser: skipped: %s is not installed (apt-get install chromium)\n", chromium.c_str());
    return kSkip;
  }
  const std::string chart_js = heed::report::chart_js_path();
  if (chart_js.empty() || !fs::exists(chart_js)) {
    std::printf("report-browser: skipped: Chart.js was not found (apt-get install libjs-chart.js, then cmake again)\n");
    return kSkip;
  }

  try {
    fs::remove_all(work);
    const fs::path run_dir = work / "run";
    fs::create_directories(run_dir);
    train_and_log(run_dir);

    // Break the chart library on purpose: the checks below must then fail.
    std::string chart_js_arg;
    if (sabotage == "syntax") {  // Chart.js cut in half: a SyntaxError, then no Chart at all
      const std::string js = read_text(chart_js);
      std::ofstream(work / "chart-cut.js") << js.substr(0, js.size() / 2);
      chart_js_arg = " --chart-js " + quote((work / "chart-cut.js").string());
    } else if (sabotage == "nodraw") {  // a Chart that lays out but never paints
      std::ofstream(work / "chart-blank.js")
          << "window.Chart = function (canvas) { this.canvas = canvas; this.currentDevicePixelRatio = 1;\n"
             "  this.chartArea = { left: 0, top: 0, right: canvas.width, bottom: canvas.height }; };\n";
      chart_js_arg = " --chart-js " + quote((work / "chart-blank.js").string());
    }

    const fs::path html = work / "report.html";
    const std::string report_cmd = quote(tool) + " " + quote((run_dir / "metrics.jsonl").string()) + " " +
                                   quote(run_dir.string()) + " -o " + quote(html.string()) + chart_js_arg;
    if (run(report_cmd) != 0) {
      fail("heed-report failed: " + report_cmd);
      return 1;
    }

    const std::string::size_type x = window.find('x');
    const fs::path profile = work / "chromium-profile", screenshot = work / "report.png", dom_file = work / "dom.html",
                   console_file = work / "chromium.log";
    // No sandbox (root in CI), no GPU, no network names (the page must need none), a bounded run time.
    const std::string browse =
        "timeout -k 10 120 " + quote(chromium) +
        " --headless --no-sandbox --disable-gpu --no-first-run --no-default-browser-check --disable-extensions"
        " --user-data-dir=" + quote(profile.string()) +
        " --host-resolver-rules='MAP * ~NOTFOUND' --hide-scrollbars --force-device-scale-factor=1"
        " --window-size=" + window.substr(0, x) + "," + window.substr(x + 1) +
        " --enable-logging=stderr --v=0 --screenshot=" + quote(screenshot.string()) + " --dump-dom " +
        quote("file://" + fs::absolute(html).string()) + " > " + quote(dom_file.string()) + " 2> " +
        quote(console_file.string());
    const int browser_status = run(browse);
    fs::remove_all(profile);
    const std::string dom = read_text(dom_file), console = read_text(console_file);
    if (browser_status != 0) fail("chromium exited with " + std::to_string(browser_status) + " (124: timed out); log: " + console_file.string());
    if (dom.empty() || !fs::exists(screenshot)) {
      fail("chromium wrote no DOM or no screenshot; log: " + console_file.string());
    } else {
      check_page(dom, console, screenshot);
    }
    if (!failures.empty()) {
      std::printf("report-browser: FAILED (%zu problems); page %s, screenshot %s\n", failures.size(), html.c_str(),
                  screenshot.c_str());
      return 1;
    }
    std::printf("report-browser: OK: %s rendered in %s; screenshot %s\n", html.c_str(), chromium.c_str(), screenshot.c_str());
    return 0;
  } catch (const std::exception& e) {
    fail(std::string("exception: ") + e.what());
    return 1;
  }
}
