// A training loop of your own, logged with heed::MetricsWriter and turned into report.html.
#include <heed/heed.hpp>

#include <cstdio>
#include <filesystem>

int main() {
  heed::manual_seed(0);
  heed::Tensor x = heed::randn({256, 3});
  heed::Tensor y = heed::sum(x * 2.0, {1}, /*keepdim=*/true) + 1.0;  // a linear target
  auto model = std::make_shared<heed::nn::Linear>(3, 1);
  heed::optim::Adam opt(model->parameters(), heed::optim::AdamOptions(0.05));

  std::filesystem::create_directories("run");
  heed::RunInfo run;
  run.name = "linear regression";
  run.settings = {{"epochs", 5}, {"batch_size", 32}, {"lr", 0.05}, {"optimizer", "adam"}};
  run.model_summary = model->summary(heed::zeros({1, 3}));
  heed::MetricsWriter log("run/metrics.jsonl", run);  // writes the "run" line

  int64_t step = 0;
  for (int epoch = 1; epoch <= 5; ++epoch) {
    double loss_sum = 0;
    for (int64_t b = 0; b < 8; ++b) {
      heed::Tensor xb = heed::narrow(x, 0, b * 32, 32), yb = heed::narrow(y, 0, b * 32, 32);
      opt.zero_grad();
      heed::Tensor loss = heed::mse_loss((*model)(xb), yb);
      loss.backward();
      heed::MetricsRecord r;
      r.epoch = epoch;
      r.step = ++step;
      r.batch = b + 1;
      r.loss = loss.item();
      r.lr = opt.lr();
      r.grad_norm = heed::optim::clip_grad_norm_(model->parameters(), 10.0);  // the norm before clipping
      r.samples = 32;  // MetricsWriter turns it into samples_per_s
      opt.step();
      log.batch(r);  // one line, in the file before batch() returns
      loss_sum += r.loss;
    }
    heed::MetricsRecord e;
    e.epoch = epoch;
    e.step = step;
    e.loss = loss_sum / 8;
    e.samples = 256;
    log.epoch(e);
  }

  // Read back: 40 batch lines, 5 epoch lines, and the loss went down.
  heed::report::MetricsLog back = heed::report::read_metrics_log("run/metrics.jsonl");
  if (back.batches.size() != 40 || back.epochs.size() != 5) return 1;
  if (!(back.epochs.back().loss < 0.5 * back.epochs.front().loss)) return 1;
  if (!heed::report::chart_js_path().empty()) {  // Chart.js: Debian's libjs-chart.js
    heed::report::write_html("run/metrics.jsonl", "run", "run/report.html");
    std::printf("wrote run/report.html\n");
  }
}
