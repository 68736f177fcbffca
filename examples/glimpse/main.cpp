// glimpse — reading with attention on cluttered images (docs/attention-spec.md M7, Task E).
//
//   ./build/examples/glimpse/glimpse                        both models on cluttered Fashion-MNIST, ~3 min
//   ./build/examples/glimpse/glimpse --steps 20000          a longer run
//   ./build/examples/glimpse/glimpse --classify --out DIR   load both checkpoints, classify new canvases (of the
//                                                           kind the checkpoint was trained on)
//   ./build/examples/glimpse/glimpse --synthetic ...        generated shapes instead of Fashion-MNIST (no package)
//
// Data: each 28 x 28 item is pasted at a random spot of a 60 x 60 canvas together with 4 clutter pieces,
// 8 x 8 crops cut from other items at random spots (pixels combine by max). Training canvases are made fresh
// for every batch from the training items; the test canvases are made once from the test items.
//
// Two classifiers with about the same number of parameters:
//   attention: h_0 = c_0 = 0; for t = 1..T (T = 4):
//                (g̃_X, g̃_Y, log σ², log δ̃, log γ) = W h_{t-1} + b                 ("read", as in DRAW)
//                r_t = γ F_Y x F_X^T  (12 x 12, heed::nn::draw_read)
//                (h_t, c_t) = LSTMCell_128(r_t, (h_{t-1}, c_{t-1}))
//              logits = fc(h_T)
//              The first glimpse comes from h_0 = 0, so it is the bias b alone; b starts at the whole canvas
//              (centre, stride 5 = 60/12, σ = 2.5) and later glimpses move and zoom through W h.
//              The read is of x only: the classifier has no canvas, so DRAW's error image x̂ does not exist.
//   MLP:       3600 -> hidden (ReLU) -> 10, with hidden chosen so the parameter counts match.
// Both see the same batches for the same number of steps (cross-entropy, Adam, gradient clip).
#include <CLI/CLI.hpp>
#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <ctime>
#include <filesystem>
#include <fmt/ranges.h>
#include <heed/heed.hpp>
#include <heed/idx.hpp>
#include <heed/io/image.hpp>
#include <heed/io/safetensors.hpp>
#include <heed/nn/draw_attention.hpp>

namespace {

using heed::Tensor;
namespace nn = heed::nn;

// ---- data -----------------------------------------------------------------------------------------------

struct Items {  // 28 x 28 items in [0, 1] with labels, kept as plain vectors for fast pasting
  int64_t count = 0, size = 28;
  std::vector<float> pixels;  // count x size x size
  std::vector<int64_t> labels;
  std::vector<std::string> class_names;
};

struct CanvasSpec {
  int64_t canvas = 60, clutter = 4, clutter_size = 8;
};

struct Canvases {
  Tensor images;  // (n, canvas, canvas)
  Tensor labels;  // Int64 (n)
  std::vector<std::pair<int64_t, int64_t>> item_top_left;  // (row, column) of the item's box
  std::vector<std::array<int64_t, 4>> ink_box;             // rows [r0, r1], columns [c0, c1] of its pixels > 0.1
};

// n canvases; the items are picked at random (or item i for the i-th canvas when `in_order`).
Canvases make_canvases(const Items& items, int64_t n, const CanvasSpec& spec, heed::Generator& gen, bool in_order = false) {
  const int64_t s = items.size, c = spec.canvas, k = spec.clutter_size;
  HEED_CHECK(c >= s && k <= s, "glimpse: a {} x {} item and {} x {} clutter need a canvas of at least {}, got {}", s, s,
             k, k, s, c);
  Canvases out;
  out.images = heed::zeros({n, c, c});
  out.labels = heed::zeros({n}, heed::DType::Int64);
  float* img = out.images.data<float>();
  int64_t* lab = out.labels.data<int64_t>();
  auto paste_max = [&](float* canvas, const float* src, int64_t src_stride, int64_t h, int64_t w, int64_t top, int64_t left) {
    for (int64_t r = 0; r < h; ++r)
      for (int64_t q = 0; q < w; ++q) {
        float& dst = canvas[(top + r) * c + left + q];
        dst = std::max(dst, src[r * src_stride + q]);
      }
  };
  for (int64_t i = 0; i < n; ++i) {
    float* canvas = img + i * c * c;
    // Clutter first: crops of other items, each tried a few times to find one with some ink.
    for (int64_t j = 0; j < spec.clutter; ++j) {
      const float* crop = nullptr;
      for (int attempt = 0; attempt < 10; ++attempt) {
        const float* other = items.pixels.data() + gen.randint(0, items.count) * s * s;
        const int64_t r0 = gen.randint(0, s - k + 1), c0 = gen.randint(0, s - k + 1);
        crop = other + r0 * s + c0;
        double ink = 0;
        for (int64_t r = 0; r < k; ++r)
          for (int64_t q = 0; q < k; ++q) ink += crop[r * s + q];
        if (ink >= 0.15 * static_cast<double>(k * k)) break;
      }
      paste_max(canvas, crop, s, k, k, gen.randint(0, c - k + 1), gen.randint(0, c - k + 1));
    }
    const int64_t which = in_order ? i % items.count : gen.randint(0, items.count);
    const int64_t top = gen.randint(0, c - s + 1), left = gen.randint(0, c - s + 1);
    paste_max(canvas, items.pixels.data() + which * s * s, s, s, s, top, left);
    lab[i] = items.labels[static_cast<std::size_t>(which)];
    out.item_top_left.emplace_back(top, left);
    std::array<int64_t, 4> ink{top + s, top - 1, left + s, left - 1};
    for (int64_t r = 0; r < s; ++r)
      for (int64_t q = 0; q < s; ++q)
        if (items.pixels[static_cast<std::size_t>((which * s + r) * s + q)] > 0.1f)
          ink = {std::min(ink[0], top + r), std::max(ink[1], top + r), std::min(ink[2], left + q), std::max(ink[3], left + q)};
    if (ink[1] < ink[0]) ink = {top, top + s - 1, left, left + s - 1};  // a blank item: its whole box
    out.ink_box.push_back(ink);
  }
  return out;
}

Items items_from(const heed::data::ImageClassSet& set) {
  Items items;
  items.count = set.images.size(0);
  items.size = set.images.size(1);
  HEED_CHECK(set.images.size(2) == items.size, "glimpse: items must be square, got {} x {}", set.images.size(1),
             set.images.size(2));
  items.pixels = set.images.to_vector<float>();
  items.labels = set.labels.to_vector<int64_t>();
  items.class_names = heed::data::fashion_mnist_classes();
  return items;
}

// --synthetic: ten classes of 28 x 28 shapes with random size, position and brightness (no dataset needed).
Items synthetic_items(int64_t n, uint64_t seed) {
  static const std::vector<std::string> names = {"block", "frame", "plus",  "cross",  "h-stripes",
                                                 "v-stripes", "disc", "ring", "triangle", "tee"};
  heed::Generator gen(seed);
  Items items;
  items.count = n;
  items.pixels.assign(static_cast<std::size_t>(n * 28 * 28), 0.0f);
  items.class_names = names;
  for (int64_t i = 0; i < n; ++i) {
    const int64_t label = gen.randint(0, 10);
    items.labels.push_back(label);
    const double half = gen.uniform(7.0, 12.5), cx = 13.5 + gen.uniform(-1.5, 1.5), cy = 13.5 + gen.uniform(-1.5, 1.5);
    const float bright = static_cast<float>(gen.uniform(0.6, 1.0));
    for (int r = 0; r < 28; ++r)
      for (int q = 0; q < 28; ++q) {
        const double u = (q - cx) / half, v = (r - cy) / half, rad = std::hypot(u, v);
        const bool inside = std::abs(u) <= 1 && std::abs(v) <= 1;
        const double t = 0.3;  // stroke width in units of `half`
        bool on = false;
        switch (label) {
          case 0: on = inside; break;
          case 1: on = inside && (std::abs(u) > 1 - t || std::abs(v) > 1 - t); break;
          case 2: on = inside && (std::abs(u) < t / 1.5 || std::abs(v) < t / 1.5); break;
          case 3: on = inside && (std::abs(u - v) < t || std::abs(u + v) < t); break;
          case 4: on = inside && std::fmod(v + 1.0, 0.66) < 0.3; break;
          case 5: on = inside && std::fmod(u + 1.0, 0.66) < 0.3; break;
          case 6: on = rad <= 1; break;
          case 7: on = rad <= 1 && rad > 1 - t; break;
          case 8: on = inside && std::abs(u) <= (v + 1) / 2; break;
          default: on = inside && (v < -1 + t || std::abs(u) < t / 1.5); break;
        }
        if (on) items.pixels[static_cast<std::size_t>((i * 28 + r) * 28 + q)] = bright;
      }
  }
  return items;
}

// ---- models ---------------------------------------------------------------------------------------------

struct GlimpseConfig {
  int64_t canvas = 60, glimpses = 4, read_n = 12, hidden = 128, classes = 10;
};

struct GlimpseTrace {  // what a picture and the statistics need, per glimpse
  std::vector<std::vector<nn::DrawBox>> boxes;  // T x batch
  std::vector<Tensor> reads;                    // T x (batch, N, N)
};

class GlimpseClassifier : public nn::Module {
 public:
  explicit GlimpseClassifier(const GlimpseConfig& config) : Module("GlimpseClassifier"), config_(config) {
    lstm = register_module("lstm", std::make_shared<nn::LSTMCell>(config.read_n * config.read_n, config.hidden));
    read = register_module("read", std::make_shared<nn::Linear>(config.hidden, 5));
    fc = register_module("fc", std::make_shared<nn::Linear>(config.hidden, config.classes));
    // First glimpse (h_0 = 0, so params = b): the whole canvas, centred, N δ = canvas, σ = δ/2, γ = 1.
    const double stride = static_cast<double>(config.canvas) / static_cast<double>(config.read_n);
    const double stride_scale = static_cast<double>(config.canvas - 1) / static_cast<double>(std::max<int64_t>(config.read_n - 1, 1));
    heed::NoGradGuard no_grad;
    const std::vector<double> bias = {0.0, 0.0, std::log(stride * stride / 4.0), std::log(stride / stride_scale), 0.0};
    for (int64_t j = 0; j < 5; ++j) heed::select(read->bias, 0, j).fill_(bias[static_cast<std::size_t>(j)]);
  }

  // x (batch, canvas, canvas) -> logits (batch, classes).
  Tensor forward_trace(const Tensor& x, GlimpseTrace* trace = nullptr) {
    const int64_t batch = x.size(0), n = config_.read_n;
    nn::LSTMState state{heed::zeros({batch, config_.hidden}), heed::zeros({batch, config_.hidden})};
    for (int64_t t = 0; t < config_.glimpses; ++t) {
      const nn::DrawFilterbank bank = nn::draw_filterbank((*read)(state.h), n, config_.canvas, config_.canvas);
      const Tensor r = nn::draw_read(x, bank);
      if (trace) trace->boxes.push_back(nn::draw_boxes(bank)), trace->reads.push_back(r);
      state = lstm->forward(r.reshape({batch, n * n}), state);
    }
    return (*fc)(state.h);
  }
  Tensor forward(const Tensor& x) override { return forward_trace(x); }
  const GlimpseConfig& config() const { return config_; }
  std::shared_ptr<nn::LSTMCell> lstm;
  std::shared_ptr<nn::Linear> read, fc;

 private:
  GlimpseConfig config_;
};

class CanvasMLP : public nn::Module {
 public:
  CanvasMLP(int64_t canvas, int64_t hidden, int64_t classes) : Module("CanvasMLP"), canvas_(canvas), hidden_(hidden) {
    fc1 = register_module("fc1", std::make_shared<nn::Linear>(canvas * canvas, hidden));
    fc2 = register_module("fc2", std::make_shared<nn::Linear>(hidden, classes));
  }
  Tensor forward(const Tensor& x) override { return (*fc2)(heed::relu((*fc1)(x.reshape({x.size(0), -1})))); }
  int64_t canvas() const { return canvas_; }
  int64_t hidden() const { return hidden_; }
  std::shared_ptr<nn::Linear> fc1, fc2;

 private:
  int64_t canvas_, hidden_;
};

// The MLP width whose parameter count (c² h + h + 10 h + 10) is closest to `target`.
int64_t matching_mlp_hidden(int64_t target, int64_t canvas, int64_t classes) {
  const double per_unit = static_cast<double>(canvas * canvas + 1 + classes);
  return std::max<int64_t>(1, std::llround(static_cast<double>(target - classes) / per_unit));
}

// ---- evaluation -----------------------------------------------------------------------------------------

struct Evaluation {
  double accuracy = 0;
  std::vector<double> on_item;  // per glimpse: fraction of centres inside the item's 28 x 28 box
  std::vector<double> on_ink;   // per glimpse: inside the bounding box of the item's own pixels (stricter)
  std::vector<double> stride;   // per glimpse: mean stride δ in pixels
  std::vector<int64_t> predictions;
};

// The glimpse centre (0-based pixels, pixel k covers [k - 0.5, k + 0.5]) lies in the item's box.
bool centre_on_item(const nn::DrawBox& box, std::pair<int64_t, int64_t> top_left, int64_t item) {
  const double top = static_cast<double>(top_left.first) - 0.5, left = static_cast<double>(top_left.second) - 0.5;
  return box.center_x >= left && box.center_x <= left + static_cast<double>(item) && box.center_y >= top &&
         box.center_y <= top + static_cast<double>(item);
}

bool centre_on_ink(const nn::DrawBox& box, const std::array<int64_t, 4>& ink) {
  return box.center_y >= static_cast<double>(ink[0]) - 0.5 && box.center_y <= static_cast<double>(ink[1]) + 0.5 &&
         box.center_x >= static_cast<double>(ink[2]) - 0.5 && box.center_x <= static_cast<double>(ink[3]) + 0.5;
}

Evaluation evaluate(nn::Module& model, const Canvases& data, int64_t batch, int64_t item_size) {
  heed::NoGradGuard no_grad;
  auto* attention = dynamic_cast<GlimpseClassifier*>(&model);
  Evaluation e;
  const int64_t n = data.images.size(0);
  std::vector<int64_t> on_item, on_ink;
  std::vector<double> stride_sum;
  int64_t correct = 0;
  const auto labels = data.labels.to_vector<int64_t>();
  for (int64_t start = 0; start < n; start += batch) {
    const int64_t len = std::min(batch, n - start);
    const Tensor x = heed::narrow(data.images, 0, start, len);
    GlimpseTrace trace;
    const Tensor logits = attention ? attention->forward_trace(x, &trace) : model.forward(x);
    const auto pred = heed::argmax(logits, 1).to_vector<int64_t>();
    for (int64_t i = 0; i < len; ++i) {
      e.predictions.push_back(pred[static_cast<std::size_t>(i)]);
      correct += pred[static_cast<std::size_t>(i)] == labels[static_cast<std::size_t>(start + i)];
    }
    on_item.resize(trace.boxes.size(), 0);
    on_ink.resize(trace.boxes.size(), 0);
    stride_sum.resize(trace.boxes.size(), 0.0);
    for (std::size_t t = 0; t < trace.boxes.size(); ++t)
      for (int64_t i = 0; i < len; ++i) {
        const auto& box = trace.boxes[t][static_cast<std::size_t>(i)];
        const auto j = static_cast<std::size_t>(start + i);
        on_item[t] += centre_on_item(box, data.item_top_left[j], item_size);
        on_ink[t] += centre_on_ink(box, data.ink_box[j]);
        stride_sum[t] += box.stride;
      }
  }
  e.accuracy = static_cast<double>(correct) / static_cast<double>(n);
  for (int64_t v : on_item) e.on_item.push_back(static_cast<double>(v) / static_cast<double>(n));
  for (int64_t v : on_ink) e.on_ink.push_back(static_cast<double>(v) / static_cast<double>(n));
  for (double v : stride_sum) e.stride.push_back(v / static_cast<double>(n));
  return e;
}

// Mean over the glimpses after the first (the ones the LSTM state places) of a per-glimpse fraction.
double after_first(const std::vector<double>& per_glimpse) {
  if (per_glimpse.size() < 2) return per_glimpse.empty() ? 0.0 : per_glimpse[0];
  double sum = 0;
  for (std::size_t t = 1; t < per_glimpse.size(); ++t) sum += per_glimpse[t];
  return sum / static_cast<double>(per_glimpse.size() - 1);
}
double learned_on_item(const Evaluation& e) { return after_first(e.on_item); }

// ---- training -------------------------------------------------------------------------------------------

struct TrainOptions {
  int64_t steps = 5000, batch = 64, eval_batch = 500;
  double lr = 2e-3, clip = 5.0;
  uint64_t seed = 1;
};

struct RunResult {
  double seconds = 0, cpu_seconds = 0;
};

double cpu_seconds() { return static_cast<double>(std::clock()) / CLOCKS_PER_SEC; }

// Both models see the same sequence of canvases (the generator restarts from the seed).
RunResult train(nn::Module& model, const std::string& label, const Items& items, const CanvasSpec& spec,
                const TrainOptions& o) {
  heed::optim::Adam opt(model.parameters(), heed::optim::AdamOptions(o.lr));
  heed::Generator gen(o.seed * 7919 + 17);
  const auto start = std::chrono::steady_clock::now();
  const double cpu_start = cpu_seconds();
  heed::ProgressBar bar(o.steps, label);
  double loss_avg = 0, acc_avg = 0;
  for (int64_t step = 0; step < o.steps; ++step) {
    const Canvases batch = make_canvases(items, o.batch, spec, gen);
    opt.zero_grad();
    const Tensor logits = model.forward(batch.images);
    const Tensor loss = heed::cross_entropy(logits, batch.labels);
    loss.backward();
    heed::optim::clip_grad_norm_(model.parameters(), o.clip);
    opt.step();
    double acc;
    {
      heed::NoGradGuard no_grad;
      acc = heed::eq(heed::argmax(logits, 1), batch.labels).to(heed::DType::Float32).mean().item();
    }
    const double w = step == 0 ? 1.0 : 0.02;
    loss_avg += w * (loss.item() - loss_avg);
    acc_avg += w * (acc - acc_avg);
    bar.update(1, {{"loss", loss_avg}, {"acc", acc_avg}});
  }
  bar.finish();
  RunResult r;
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  r.cpu_seconds = cpu_seconds() - cpu_start;
  return r;
}

// ---- pictures -------------------------------------------------------------------------------------------

constexpr int kScale = 3;
const heed::io::Color kGlimpseColors[] = {{40, 110, 255}, {30, 180, 60}, {255, 140, 0}, {220, 30, 30}, {160, 60, 200}};

heed::io::Color glimpse_color(std::size_t t) { return kGlimpseColors[t % (sizeof(kGlimpseColors) / sizeof(kGlimpseColors[0]))]; }

// A box outline in canvas pixels, clipped to the cell [x0, x0 + cell) x [y0, y0 + cell).
void outline(heed::io::Image& img, double left, double top, double size, int x0, int y0, int cell,
             heed::io::Color color, int thickness) {
  if (!std::isfinite(left + top + size)) return;
  auto px = [](double v) { return static_cast<int>(std::lround(std::clamp(v, -1e5, 1e5))); };
  const int l = px(x0 + (left + 0.5) * kScale), t = px(y0 + (top + 0.5) * kScale);
  const int r = px(x0 + (left + size + 0.5) * kScale) - 1, b = px(y0 + (top + size + 0.5) * kScale) - 1;
  auto clipped = [&](int a0, int b0, int a1, int b1) {
    img.fill_rect(std::max(a0, x0), std::max(b0, y0), std::min(a1, x0 + cell), std::min(b1, y0 + cell), color);
  };
  clipped(l, t, r + 1, t + thickness);
  clipped(l, b - thickness + 1, r + 1, b + 1);
  clipped(l, t, l + thickness, b + 1);
  clipped(r - thickness + 1, t, r + 1, b + 1);
}

// One row per canvas: the canvas with the item's box (grey) and the glimpse boxes (coloured by step, a dot
// at each centre), the T glimpses as read (two a row, each scaled to its maximum, framed in its colour), and
// the labels.
heed::io::Image glimpse_picture(GlimpseClassifier& model, const Canvases& data, const std::vector<int64_t>& rows,
                                const std::vector<int64_t>& mlp_predictions, const std::vector<std::string>& names,
                                int64_t item_size) {
  heed::NoGradGuard no_grad;
  const auto& c = model.config();
  const int64_t count = static_cast<int64_t>(rows.size());
  Tensor x = heed::index_select(data.images, 0, heed::tensor(std::vector<double>(rows.begin(), rows.end()), {count},
                                                                   heed::DType::Int64));
  GlimpseTrace trace;
  const auto pred = heed::argmax(model.forward_trace(x, &trace), 1).to_vector<int64_t>();
  const auto labels = data.labels.to_vector<int64_t>();
  const int steps = static_cast<int>(c.glimpses), grid_rows = (steps + 1) / 2, pad = 4, header = 16, text_w = 150;
  const int cell = static_cast<int>(c.canvas) * kScale;
  const int read_scale = std::max(1, (cell - (grid_rows - 1) * pad) / (grid_rows * static_cast<int>(c.read_n)));
  const int read_cell = static_cast<int>(c.read_n) * read_scale;
  const int row_h = std::max(cell, grid_rows * (read_cell + pad) - pad);
  const int width = pad + cell + pad + 2 * (read_cell + pad) + text_w;
  heed::io::Image img(width, header + static_cast<int>(count) * (row_h + pad) + pad, heed::io::kWhite);
  int hx = pad;
  img.draw_text(hx, 4, "item box", 1, heed::io::kGrey);
  hx += heed::io::Image::text_width("item box ", 1);
  for (int t = 0; t < steps; ++t) {
    const std::string word = fmt::format("glimpse {} ", t + 1);
    img.draw_text(hx, 4, word, 1, glimpse_color(static_cast<std::size_t>(t)));
    hx += heed::io::Image::text_width(word, 1);
  }
  for (int64_t k = 0; k < count; ++k) {
    const int y = header + static_cast<int>(k) * (row_h + pad);
    const auto row = static_cast<std::size_t>(rows[static_cast<std::size_t>(k)]);
    img.draw_gray(heed::select(x, 0, k), pad, y, kScale);
    const auto [top, left] = data.item_top_left[row];
    outline(img, static_cast<double>(left) - 0.5, static_cast<double>(top) - 0.5, static_cast<double>(item_size), pad, y,
            cell, heed::io::kGrey, 1);
    for (int t = 0; t < steps; ++t) {
      const nn::DrawBox& box = trace.boxes[static_cast<std::size_t>(t)][static_cast<std::size_t>(k)];
      const heed::io::Color color = glimpse_color(static_cast<std::size_t>(t));
      outline(img, box.center_x - box.size / 2.0, box.center_y - box.size / 2.0, box.size, pad, y, cell, color, 2);
      outline(img, box.center_x - 0.6, box.center_y - 0.6, 1.2, pad, y, cell, color, 3);  // the centre
      Tensor r = heed::select(trace.reads[static_cast<std::size_t>(t)], 0, k);
      const double peak = heed::max(r).item();
      if (peak > 0) r = r / peak;
      const int rx = pad + cell + pad + (t % 2) * (read_cell + pad), ry = y + (t / 2) * (read_cell + pad);
      img.fill_rect(rx - 2, ry - 2, rx + read_cell + 2, ry + read_cell + 2, color);
      img.draw_gray(r, rx, ry, read_scale);
    }
    const int tx = pad + cell + pad + 2 * (read_cell + pad) + 4;
    const std::size_t truth = static_cast<std::size_t>(labels[row]);
    const std::size_t p = static_cast<std::size_t>(pred[static_cast<std::size_t>(k)]);
    img.draw_text(tx, y + 4, "true: " + names[truth], 1, heed::io::kBlack);
    img.draw_text(tx, y + 18, "attention: " + names[p], 1, p == truth ? heed::io::kGreen : heed::io::kRed);
    if (!mlp_predictions.empty()) {
      const std::size_t m = static_cast<std::size_t>(mlp_predictions[row]);
      img.draw_text(tx, y + 32, "MLP: " + names[m], 1, m == truth ? heed::io::kGreen : heed::io::kRed);
    }
  }
  return img;
}

// ---- checkpoints ----------------------------------------------------------------------------------------

void save_attention(const GlimpseClassifier& model, const CanvasSpec& spec, bool synthetic, const std::string& path) {
  const auto& c = model.config();
  heed::io::save_safetensors(path, model.state_dict(),
                             {{"model", "glimpse-attention"},
                              {"data", synthetic ? "synthetic" : "fashion-mnist"},
                              {"canvas", std::to_string(c.canvas)},
                              {"glimpses", std::to_string(c.glimpses)},
                              {"read_n", std::to_string(c.read_n)},
                              {"hidden", std::to_string(c.hidden)},
                              {"classes", std::to_string(c.classes)},
                              {"clutter", std::to_string(spec.clutter)},
                              {"clutter_size", std::to_string(spec.clutter_size)}});
}

void save_mlp(const CanvasMLP& model, const std::string& path) {
  heed::io::save_safetensors(path, model.state_dict(),
                             {{"model", "glimpse-mlp"},
                              {"canvas", std::to_string(model.canvas())},
                              {"hidden", std::to_string(model.hidden())},
                              {"classes", std::to_string(model.fc2->out_features)}});
}

heed::io::SafetensorsFile open_checkpoint(const std::string& path, const std::string& kind) {
  HEED_CHECK(std::filesystem::exists(path), "glimpse: no checkpoint at '{}' (train first, with the same --out)", path);
  auto file = heed::io::load_safetensors(path);
  auto it = file.metadata.find("model");
  HEED_CHECK(it != file.metadata.end() && it->second == kind, "glimpse: '{}' is not a {} checkpoint", path, kind);
  return file;
}

int64_t meta_int(const heed::io::SafetensorsFile& file, const std::string& path, const char* key) {
  auto it = file.metadata.find(key);
  HEED_CHECK(it != file.metadata.end(), "glimpse: checkpoint '{}' has no '{}' in its metadata", path, key);
  return std::stoll(it->second);
}

std::string percent(double v) { return fmt::format("{:.1f}%", 100.0 * v); }

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"heed glimpse: a recurrent classifier with DRAW read attention vs an MLP on cluttered canvases"};
  GlimpseConfig config;
  CanvasSpec spec;
  TrainOptions topt;
  std::string data_dir = heed::data::kFashionMnistDir, out_dir = ".", models = "both";
  int64_t train_size = 0, test_size = 2000, mlp_hidden = 0, count = 6;
  bool classify = false, synthetic = false;
  app.add_option("--models", models, "attention, mlp or both")->check(CLI::IsMember({"attention", "mlp", "both"}));
  app.add_option("--steps", topt.steps, "training steps (batches) per model")->check(CLI::PositiveNumber);
  app.add_option("--batch", topt.batch, "batch size")->check(CLI::PositiveNumber);
  app.add_option("--lr", topt.lr, "Adam learning rate")->check(CLI::PositiveNumber);
  app.add_option("--clip", topt.clip, "gradient norm clip")->check(CLI::PositiveNumber);
  app.add_option("--glimpses", config.glimpses, "glimpses T")->check(CLI::PositiveNumber);
  app.add_option("--read-n", config.read_n, "read grid N x N")->check(CLI::PositiveNumber);
  app.add_option("--hidden", config.hidden, "LSTM units")->check(CLI::PositiveNumber);
  app.add_option("--mlp-hidden", mlp_hidden, "MLP hidden units (0 = match the attention model's parameter count)")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--canvas", spec.canvas, "canvas side in pixels")->check(CLI::PositiveNumber);
  app.add_option("--clutter", spec.clutter, "clutter pieces per canvas")->check(CLI::NonNegativeNumber);
  app.add_option("--clutter-size", spec.clutter_size, "clutter piece side")->check(CLI::PositiveNumber);
  app.add_option("--train-size", train_size, "use the first N training items (0 = all)")->check(CLI::NonNegativeNumber);
  app.add_option("--test-size", test_size, "test canvases, one per test item (0 = all 10000)")->check(CLI::NonNegativeNumber);
  app.add_option("--data", data_dir, "directory with Fashion-MNIST's IDX files (Debian: dataset-fashion-mnist)");
  app.add_flag("--synthetic", synthetic, "generated shapes instead of Fashion-MNIST (needs no dataset)");
  app.add_option("--out", out_dir, "directory for checkpoints and pictures");
  app.add_flag("--classify", classify, "load the checkpoints from --out and classify new canvases, no training");
  app.add_option("--count", count, "canvases to classify and draw with --classify")->check(CLI::PositiveNumber);
  app.add_option("--seed", topt.seed, "random seed");
  CLI11_PARSE(app, argc, argv);

  try {
    std::filesystem::create_directories(out_dir);
    const std::string attention_path = out_dir + "/glimpse_attention.safetensors", mlp_path = out_dir + "/glimpse_mlp.safetensors";
    auto load_items = [&](const char* split, int64_t max_items, uint64_t seed) {
      if (synthetic) return synthetic_items(max_items > 0 ? max_items : 2000, seed);
      return items_from(heed::data::load_fashion_mnist(split, data_dir, max_items));
    };

    if (classify) {
      // New canvases from test items the test set did not use (or fresh shapes), with a seed of their own.
      auto afile = open_checkpoint(attention_path, "glimpse-attention");
      GlimpseConfig c;
      c.canvas = meta_int(afile, attention_path, "canvas"), c.glimpses = meta_int(afile, attention_path, "glimpses");
      c.read_n = meta_int(afile, attention_path, "read_n"), c.hidden = meta_int(afile, attention_path, "hidden");
      c.classes = meta_int(afile, attention_path, "classes");
      spec.canvas = c.canvas, spec.clutter = meta_int(afile, attention_path, "clutter");
      spec.clutter_size = meta_int(afile, attention_path, "clutter_size");
      const auto data_kind = afile.metadata.find("data");
      if (data_kind != afile.metadata.end()) synthetic = data_kind->second == "synthetic";  // the data it learned
      GlimpseClassifier attention(c);
      attention.load_state_dict(afile.tensors);
      std::vector<int64_t> mlp_pred;
      std::unique_ptr<CanvasMLP> mlp;
      if (std::filesystem::exists(mlp_path)) {
        auto mfile = open_checkpoint(mlp_path, "glimpse-mlp");
        mlp = std::make_unique<CanvasMLP>(meta_int(mfile, mlp_path, "canvas"), meta_int(mfile, mlp_path, "hidden"),
                                          meta_int(mfile, mlp_path, "classes"));
        mlp->load_state_dict(mfile.tensors);
      }
      fmt::print("loaded {} ({} glimpses of {}x{}, LSTM {}){}\n", attention_path, c.glimpses, c.read_n, c.read_n,
                 c.hidden, mlp ? fmt::format(" and {} (hidden {})", mlp_path, mlp->hidden()) : "");
      const Items items = load_items("t10k", 0, topt.seed + 5000);
      heed::Generator gen(topt.seed * 104729 + 3);
      const Canvases data = make_canvases(items, count, spec, gen);
      const int64_t item = items.size;
      const Evaluation ea = evaluate(attention, data, 500, item);
      if (mlp) mlp_pred = evaluate(*mlp, data, 500, item).predictions;
      const auto labels = data.labels.to_vector<int64_t>();
      fmt::print("\n  {:>3}  {:<12} {:<12} {:<12}  item at (row, col)\n", "#", "true", "attention", mlp ? "MLP" : "");
      for (int64_t i = 0; i < count; ++i) {
        const auto u = static_cast<std::size_t>(i);
        fmt::print("  {:>3}  {:<12} {:<12} {:<12}  ({}, {})\n", i, items.class_names[static_cast<std::size_t>(labels[u])],
                   items.class_names[static_cast<std::size_t>(ea.predictions[u])],
                   mlp ? items.class_names[static_cast<std::size_t>(mlp_pred[u])] : "", data.item_top_left[u].first,
                   data.item_top_left[u].second);
      }
      std::vector<int64_t> rows;
      for (int64_t i = 0; i < std::min<int64_t>(count, 8); ++i) rows.push_back(i);
      const std::string png = out_dir + "/glimpses_new.png";
      heed::io::save_png(png, glimpse_picture(attention, data, rows, mlp_pred, items.class_names, item));
      int64_t mlp_correct = 0;
      for (std::size_t i = 0; i < mlp_pred.size(); ++i) mlp_correct += mlp_pred[i] == labels[i];
      fmt::print("\nattention {} correct{}; glimpse centres on the item box: {} (glimpses 2..{}); "
                 "mean stride by glimpse {:.2f} pixels\nwrote {}\n",
                 percent(ea.accuracy),
                 mlp ? fmt::format(", MLP {}", percent(static_cast<double>(mlp_correct) / static_cast<double>(count))) : "",
                 percent(learned_on_item(ea)), c.glimpses, fmt::join(ea.stride, " "), png);
      return 0;
    }

    // ---- data
    const Items train_items = load_items("train", train_size, topt.seed);
    const Items test_items = load_items("t10k", test_size, topt.seed + 1000);
    heed::Generator test_gen(topt.seed * 31 + 5);
    const Canvases test = make_canvases(test_items, test_items.count, spec, test_gen, /*in_order=*/true);
    fmt::print("data: {} {} train / {} test; each on a {}x{} canvas with {} clutter pieces of {}x{}\n",
               synthetic ? std::string("generated shapes,") : "Fashion-MNIST from " + data_dir + ",", train_items.count, test_items.count,
               spec.canvas, spec.canvas, spec.clutter, spec.clutter_size, spec.clutter_size);
    fmt::print("      training canvases are made fresh for every batch; {} fixed test canvases\n\n", test_items.count);
    config.canvas = spec.canvas;
    config.classes = static_cast<int64_t>(train_items.class_names.size());

    heed::manual_seed(topt.seed);
    GlimpseClassifier attention(config);
    if (mlp_hidden == 0) mlp_hidden = matching_mlp_hidden(attention.num_parameters(), spec.canvas, config.classes);
    CanvasMLP mlp(spec.canvas, mlp_hidden, config.classes);

    struct Row {
      std::string name;
      int64_t params;
      Evaluation eval;
      RunResult run;
    };
    std::vector<Row> table;
    std::vector<std::string> written;
    std::vector<int64_t> mlp_pred;
    if (models != "attention") {
      fmt::print("== MLP {}-{}-{} on the whole canvas ({} parameters): {} steps of {}, Adam {}, clip {}\n",
                 spec.canvas * spec.canvas, mlp_hidden, config.classes, mlp.num_parameters(), topt.steps, topt.batch,
                 topt.lr, topt.clip);
      const RunResult r = train(mlp, "  mlp", train_items, spec, topt);
      Evaluation e = evaluate(mlp, test, topt.eval_batch, test_items.size);
      fmt::print("  test accuracy {}\n\n", percent(e.accuracy));
      save_mlp(mlp, mlp_path);
      written.push_back(mlp_path);
      mlp_pred = e.predictions;
      table.push_back({"MLP on the whole canvas", mlp.num_parameters(), e, r});
    }
    if (models != "mlp") {
      fmt::print("== recurrent attention ({} parameters): {} glimpses of {}x{} (DRAW read), LSTMCell {}, "
                 "{} steps of {}, Adam {}, clip {}\n",
                 attention.num_parameters(), config.glimpses, config.read_n, config.read_n, config.hidden, topt.steps,
                 topt.batch, topt.lr, topt.clip);
      const RunResult r = train(attention, "  attention", train_items, spec, topt);
      Evaluation e = evaluate(attention, test, topt.eval_batch, test_items.size);
      auto percents = [](const std::vector<double>& v) {
        std::vector<std::string> out;
        for (double f : v) out.push_back(percent(f));
        return fmt::format("{}", fmt::join(out, " "));
      };
      fmt::print("  test accuracy {}; by glimpse: centre on the item box {}, on the item's ink box {}; "
                 "mean stride {:.2f} pixels\n\n",
                 percent(e.accuracy), percents(e.on_item), percents(e.on_ink), fmt::join(e.stride, " "));
      save_attention(attention, spec, synthetic, attention_path);
      written.push_back(attention_path);
      std::vector<int64_t> rows;
      for (int64_t i = 0; i < std::min<int64_t>(6, test.images.size(0)); ++i) rows.push_back(i);
      const std::string png = out_dir + "/glimpses.png";
      heed::io::save_png(png, glimpse_picture(attention, test, rows, mlp_pred, test_items.class_names, test_items.size));
      written.push_back(png);
      table.push_back({fmt::format("{} glimpses {}x{} + LSTM {}", config.glimpses, config.read_n, config.read_n, config.hidden),
                       attention.num_parameters(), e, r});
    }

    fmt::print("test accuracy on {} cluttered {}x{} canvases (train: {} steps of {} fresh canvases):\n",
               test_items.count, spec.canvas, spec.canvas, topt.steps, topt.batch);
    fmt::print("  {:<30} {:>10} {:>10} {:>12} {:>12} {:>9} {:>9}\n", "model", "params", "accuracy", "on item box",
               "on ink box", "wall", "CPU");
    for (const Row& row : table)
      fmt::print("  {:<30} {:>10} {:>10} {:>12} {:>12} {:>8.0f}s {:>8.0f}s\n", row.name, row.params,
                 percent(row.eval.accuracy), row.eval.on_item.empty() ? "" : percent(learned_on_item(row.eval)),
                 row.eval.on_ink.empty() ? "" : percent(after_first(row.eval.on_ink)), row.run.seconds,
                 row.run.cpu_seconds);
    fmt::print("  (glimpses 2..{} whose centre lies in the item's {}x{} box, or in the bounding box of its pixels > 0.1;\n"
               "   a uniformly random centre would land in the {}x{} box {} of the time)\n",
               config.glimpses, test_items.size, test_items.size, test_items.size, test_items.size,
               percent(std::pow(static_cast<double>(test_items.size) / static_cast<double>(spec.canvas), 2)));
    fmt::print("\nwrote {}\n", fmt::join(written, ", "));
    fmt::print("try:  glimpse --classify --out {}\n", out_dir);
    if (table.size() == 2) {
      const double gain = 100.0 * (table[1].eval.accuracy - table[0].eval.accuracy);
      const double on_item = learned_on_item(table[1].eval);
      fmt::print("\nattention {} the MLP by {:+.1f} points (target: +5); glimpse centres on the item {} (target: 70%)\n",
                 gain >= 5.0 ? "beats" : "does NOT beat", gain, percent(on_item));
    }
  } catch (const heed::Error& e) {
    fmt::print(stderr, "error: {}\n", e.what());
    return 1;
  } catch (const std::exception& e) {  // anything else (e.g. out of memory): a message, not std::terminate
    fmt::print(stderr, "error: {}\n", e.what());
    return 1;
  }
  return 0;
}
