// captioning — Show, Attend and Tell (Xu et al. 2015) on generated scenes: soft versus hard attention.
//
//   ./build/examples/captioning/captioning                 train both variants, print the table, write PNGs
//   ./build/examples/captioning/captioning --variant soft --epochs 20 --train-size 20000
//   ./build/examples/captioning/captioning --predict 4     caption 4 fresh scenes with the saved checkpoints
//
// Encoder: 3 x [Conv2d 3x3 (pad 1) -> ReLU -> MaxPool2d 2] on the 48x48 scene (1 -> 8 -> 16 -> 32
// channels), giving a 6x6 grid of L = 36 annotation vectors of D = 32, plus a learned position embedding
// (L, D) (the shapes' places must be named, and three small convolutions carry little absolute position).
// Decoder (docs/attention-spec.md M6): h_0, c_0 = tanh(FF(mean_i a_i)); per step the attention (SpatialAttention,
// with the gating scalar β) gives z_t from h_{t-1}; LSTMCell input [E y_{t-1}; z_t]; deep output
// p(y_t) ∝ exp(L_o tanh(L_h h_t + E y_{t-1} + L_z z_t)).
//   soft: loss = mean token cross-entropy + λ Σ_i (1 - Σ_t α_ti)² (doubly stochastic, mean over the batch)
//   hard: z_t = β a_{s_t}, s_t ~ Categorical(α_t); REINFORCE surrogate with a moving-average baseline,
//         entropy bonus and arctic's semi-sampling (half the minibatches use the expectation), + the same λ term.
// Adam, gradient-norm clipping at 5. Scenes, captions and the model's sizes are in README.md.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <filesystem>
#include <heed/heed.hpp>
#include <heed/io/safetensors.hpp>
#include <heed/nn/conv.hpp>
#include <heed/nn/spatial_attention.hpp>
#include <string>
#include <vector>

#include "render.hpp"
#include "scenes.hpp"

namespace {

using heed::Tensor;
namespace nn = heed::nn;
using namespace captioning;

constexpr int64_t kGridSide = kCanvas / 8, kLocations = kGridSide * kGridSide;

struct Config {
  int64_t channels = 8;  // first conv's channels; then 2x and 4x; D = 4x
  int64_t embed = 32, hidden = 64, attention = 32;
  int64_t max_objects = 3;
  int64_t steps() const { return 2 * max_objects + 1; }
  int64_t annotation_size() const { return 4 * channels; }
  heed::io::Metadata metadata(const std::string& variant) const {
    return {{"variant", variant},
            {"channels", std::to_string(channels)},
            {"embed", std::to_string(embed)},
            {"hidden", std::to_string(hidden)},
            {"attention", std::to_string(attention)},
            {"max_objects", std::to_string(max_objects)}};
  }
};

// ---- data ----------------------------------------------------------------------------------------------

struct Dataset {
  std::vector<Scene> scenes;
  Tensor images;   // (N, 1, 48, 48)
  Tensor inputs;   // (N, T) Int64: <bos>, then the caption (padded with <eos>)
  Tensor targets;  // (N, T) Int64: the caption with <eos>, then -100 (ignored)
};

Dataset make_dataset(int64_t n, const Config& config, heed::Generator& gen) {
  Dataset data;
  const int64_t steps = config.steps();
  std::vector<float> pixels;
  std::vector<int64_t> inputs(static_cast<std::size_t>(n * steps), kEos), targets(static_cast<std::size_t>(n * steps), -100);
  for (int64_t i = 0; i < n; ++i) {
    Scene s = make_scene(gen, static_cast<int>(config.max_objects));
    pixels.insert(pixels.end(), s.pixels.begin(), s.pixels.end());
    inputs[i * steps] = kBos;
    for (std::size_t t = 0; t < s.caption.size(); ++t) {
      targets[i * steps + static_cast<int64_t>(t)] = s.caption[t];
      if (t + 1 < s.caption.size()) inputs[i * steps + static_cast<int64_t>(t) + 1] = s.caption[t];
    }
    data.scenes.push_back(std::move(s));
  }
  data.images = heed::tensor(pixels, {n, 1, kCanvas, kCanvas});
  data.inputs = heed::index_tensor(inputs, {n, steps});
  data.targets = heed::index_tensor(targets, {n, steps});
  return data;
}

// ---- model ---------------------------------------------------------------------------------------------

enum class Variant { Soft, Hard };
const char* variant_name(Variant v) { return v == Variant::Soft ? "soft" : "hard"; }

struct Decoded {
  Tensor logits;           // (N, T, V)
  Tensor alphas;           // (N, T, L)
  Tensor locations;        // (N, T) Int64 for hard attention (-1: expectation), else undefined
  Tensor sample_log_prob;  // (N): Σ over real steps of log α_{t,s_t} (hard only)
  Tensor entropy;          // (N): Σ over real steps of H[α_t] (hard only)
};

class Captioner : public nn::Module {
 public:
  Captioner(const Config& config, Variant variant) : Module("Captioner"), config_(config), variant_(variant) {
    const int64_t c = config.channels, d = config.annotation_size();
    conv1 = register_module("conv1", std::make_shared<nn::Conv2d>(nn::Conv2dOptions(1, c, 3).padding(1)));
    conv2 = register_module("conv2", std::make_shared<nn::Conv2d>(nn::Conv2dOptions(c, 2 * c, 3).padding(1)));
    conv3 = register_module("conv3", std::make_shared<nn::Conv2d>(nn::Conv2dOptions(2 * c, d, 3).padding(1)));
    pos_embedding = register_parameter("pos_embedding", heed::randn({kLocations, d}) * 0.1);
    embedding = register_module("embedding", std::make_shared<nn::Embedding>(kVocab, config.embed));
    attention = register_module("attention", std::make_shared<nn::SpatialAttention>(
                                                 nn::SpatialAttentionOptions(d, config.hidden, config.attention)));
    lstm = register_module("lstm", std::make_shared<nn::LSTMCell>(config.embed + d, config.hidden));
    init_h = register_module("init_h", std::make_shared<nn::Linear>(d, config.hidden));
    init_c = register_module("init_c", std::make_shared<nn::Linear>(d, config.hidden));
    out_h = register_module("out_h", std::make_shared<nn::Linear>(config.hidden, config.embed));
    out_z = register_module("out_z", std::make_shared<nn::Linear>(d, config.embed));
    out = register_module("out", std::make_shared<nn::Linear>(config.embed, kVocab));
  }

  // (N, 1, 48, 48) -> annotations (N, L, D).
  Tensor encode(const Tensor& images) {
    Tensor x = heed::max_pool2d(heed::relu((*conv1)(images)), 2);
    x = heed::max_pool2d(heed::relu((*conv2)(x)), 2);
    x = heed::max_pool2d(heed::relu((*conv3)(x)), 2);                        // (N, D, 6, 6)
    return heed::transpose(heed::flatten(x, 2), 1, 2) + pos_embedding;       // (N, L, D)
  }

  // Runs the decoder over `inputs` (teacher forcing), or greedily from <bos> when inputs is undefined
  // (then `steps` words). For hard attention, `gen` draws the glimpses; expectation = use α instead.
  // step_mask (N, T) Bool marks the real steps (for the sums of log-probabilities and entropies).
  Decoded decode(const Tensor& annotations, const Tensor& inputs, int64_t steps, heed::Generator* gen,
                 bool expectation, const Tensor& step_mask = Tensor()) {
    const int64_t n = annotations.size(0);
    const Tensor projected = attention->project_annotations(annotations);
    const Tensor mean_annotation = heed::mean(annotations, {1});
    nn::LSTMState state{heed::tanh((*init_h)(mean_annotation)), heed::tanh((*init_c)(mean_annotation))};
    Tensor previous = heed::full({n}, static_cast<double>(kBos), heed::DType::Int64);
    std::vector<Tensor> logits, alphas, locations, log_probs, entropies;
    for (int64_t t = 0; t < steps; ++t) {
      const Tensor y_prev = (*embedding)(inputs.defined() ? heed::select(inputs, 1, t) : previous);
      Tensor context;
      if (variant_ == Variant::Soft) {
        auto att = attention->forward(annotations, projected, state.h);
        context = att.context;
        alphas.push_back(att.weights);
      } else {
        auto att = attention->forward_hard(annotations, projected, state.h, Tensor(), *gen, expectation);
        context = att.context;
        alphas.push_back(att.weights);
        locations.push_back(att.locations);
        log_probs.push_back(att.sample_log_prob);
        entropies.push_back(att.entropy);
      }
      state = lstm->forward(heed::concat({y_prev, context}, 1), state);
      logits.push_back((*out)(heed::tanh((*out_h)(state.h) + y_prev + (*out_z)(context))));  // deep output
      if (!inputs.defined()) previous = heed::argmax(logits.back(), 1);
    }
    Decoded d{heed::stack(logits, 1), heed::stack(alphas, 1), Tensor(), Tensor(), Tensor()};
    if (variant_ == Variant::Hard) {
      d.locations = heed::stack(locations, 1);
      const Tensor real = step_mask.defined() ? step_mask.to(annotations.dtype())
                                              : heed::ones({n, steps}, annotations.dtype());
      d.sample_log_prob = heed::sum(heed::stack(log_probs, 1) * real, {1});
      d.entropy = heed::sum(heed::stack(entropies, 1) * real, {1});
    }
    return d;
  }

  Variant variant() const { return variant_; }
  const Config& config() const { return config_; }

  std::shared_ptr<nn::Conv2d> conv1, conv2, conv3;
  Tensor pos_embedding;
  std::shared_ptr<nn::Embedding> embedding;
  std::shared_ptr<nn::SpatialAttention> attention;
  std::shared_ptr<nn::LSTMCell> lstm;
  std::shared_ptr<nn::Linear> init_h, init_c, out_h, out_z, out;

 private:
  Config config_;
  Variant variant_;
};

// ---- training and evaluation ---------------------------------------------------------------------------

struct TrainOptions {
  int epochs = 20;
  int64_t batch = 32;
  double lr = 1e-2, alpha_c = 0.02, entropy = 0.002, reward_scale = 0.3, semi_sampling = 0.5;
  uint64_t seed = 1;
  std::string checkpoint;
};

struct Scores {
  double token_accuracy = 0, exact_match = 0;
};

struct Generated {
  std::vector<std::vector<int64_t>> tokens;  // per scene, up to and including <eos> (or T words)
  Tensor alphas;                             // (N, T, L)
  Tensor locations;                          // (N, T) or undefined
};

// Greedy captions. Hard attention: sampled glimpses (expectation = false) or the expectation α.
Generated generate(Captioner& model, const Tensor& images, heed::Generator& gen, bool expectation) {
  heed::NoGradGuard no_grad;
  model.eval();
  const int64_t steps = model.config().steps();
  Decoded d = model.decode(model.encode(images), Tensor(), steps, &gen, expectation);
  model.train();
  Generated g{{}, d.alphas, d.locations};
  const auto words = heed::argmax(d.logits, 2).to_vector<int64_t>();
  for (int64_t i = 0; i < images.size(0); ++i) {
    std::vector<int64_t> caption;
    for (int64_t t = 0; t < steps; ++t) {
      caption.push_back(words[i * steps + t]);
      if (caption.back() == kEos) break;
    }
    g.tokens.push_back(caption);
  }
  return g;
}

// Token accuracy: reference tokens (with <eos>) matched at their position; exact match: whole captions.
Scores score(const Generated& g, const std::vector<Scene>& scenes) {
  int64_t tokens = 0, right = 0, exact = 0;
  for (std::size_t i = 0; i < scenes.size(); ++i) {
    const auto& ref = scenes[i].caption;
    for (std::size_t t = 0; t < ref.size(); ++t) right += t < g.tokens[i].size() && g.tokens[i][t] == ref[t];
    tokens += static_cast<int64_t>(ref.size());
    exact += g.tokens[i] == ref;
  }
  return {static_cast<double>(right) / tokens, static_cast<double>(exact) / static_cast<double>(scenes.size())};
}

Scores evaluate(Captioner& model, const Dataset& data, bool expectation, uint64_t seed) {
  Generated all;
  heed::Generator gen(seed);
  const int64_t n = data.images.size(0), chunk = 250;
  for (int64_t start = 0; start < n; start += chunk) {
    Generated part = generate(model, heed::narrow(data.images, 0, start, std::min(chunk, n - start)), gen, expectation);
    all.tokens.insert(all.tokens.end(), part.tokens.begin(), part.tokens.end());
  }
  return score(all, data.scenes);
}

double train(Captioner& model, const Dataset& train_set, const Dataset& val_set, const TrainOptions& options) {
  heed::optim::Adam opt(model.parameters(), heed::optim::AdamOptions(options.lr));
  nn::HardAttentionTrainer reinforce(nn::HardAttentionTrainerOptions()
                                         .reward_scale(options.reward_scale)
                                         .entropy_weight(options.entropy)
                                         .semi_sampling_p(options.semi_sampling));
  heed::Generator shuffle_gen(options.seed + 100), sample_gen(options.seed + 200);
  const int64_t n = train_set.images.size(0), steps = model.config().steps();
  const auto start_time = std::chrono::steady_clock::now();
  for (int epoch = 1; epoch <= options.epochs; ++epoch) {
    std::vector<int64_t> order(static_cast<std::size_t>(n));
    for (int64_t i = 0; i < n; ++i) order[i] = i;
    heed::data::shuffle(order, shuffle_gen);
    const int64_t batches = n / options.batch;
    heed::ProgressBar bar(batches, fmt::format("{} epoch {}/{}", variant_name(model.variant()), epoch, options.epochs));
    double loss_sum = 0.0;
    int64_t right = 0, counted = 0;
    for (int64_t b = 0; b < batches; ++b) {
      const Tensor rows = heed::index_tensor(
          std::vector<int64_t>(order.begin() + b * options.batch, order.begin() + (b + 1) * options.batch));
      const Tensor images = heed::index_select(train_set.images, 0, rows);
      const Tensor inputs = heed::index_select(train_set.inputs, 0, rows);
      const Tensor targets = heed::index_select(train_set.targets, 0, rows);
      const Tensor real = heed::ne(targets, heed::full_like(targets, -100));
      const bool expectation = model.variant() == Variant::Hard && reinforce.use_expectation(sample_gen);
      Decoded d = model.decode(model.encode(images), inputs, steps, &sample_gen, expectation, real);
      Tensor loss;
      if (model.variant() == Variant::Soft) {
        loss = heed::cross_entropy(d.logits, targets);
      } else {
        const Tensor token_nll =
            heed::cross_entropy(d.logits, targets, heed::CrossEntropyOptions().reduction(heed::Reduction::None));
        loss = reinforce.surrogate(heed::neg(heed::sum(token_nll, {1})), d.sample_log_prob, d.entropy);
      }
      if (options.alpha_c > 0) loss = loss + nn::doubly_stochastic_penalty(d.alphas, real, options.alpha_c);
      opt.zero_grad();
      loss.backward();
      heed::optim::clip_grad_norm_(model.parameters(), 5.0);
      opt.step();
      loss_sum += loss.item();
      right += heed::count_class_correct(d.logits.detach(), targets);
      for (int64_t t : targets.to_vector<int64_t>()) counted += t != -100;
      bar.update(1, {{"loss", loss_sum / static_cast<double>(b + 1)},
                     {"tok_acc", static_cast<double>(right) / static_cast<double>(counted)}});
    }
    const Scores val = evaluate(model, val_set, false, options.seed + 300);
    bar.finish({{"val_tok_acc", val.token_accuracy}, {"val_exact", val.exact_match}});
    if (!options.checkpoint.empty())
      heed::io::save_safetensors(options.checkpoint, model.state_dict(), model.config().metadata(variant_name(model.variant())));
  }
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_time).count();
}

// ---- pictures ------------------------------------------------------------------------------------------

void write_png(Captioner& model, const Dataset& data, int64_t count, bool expectation, uint64_t seed,
               const std::string& path, const std::string& title) {
  count = std::min(count, data.images.size(0));
  heed::Generator gen(seed);
  const Generated g = generate(model, heed::narrow(data.images, 0, 0, count), gen, expectation);
  std::vector<CaptionStrip> strips;
  const int64_t steps = g.alphas.size(1);
  const auto alphas = g.alphas.to_vector<float>();
  const std::vector<int64_t> locations = g.locations.defined() ? g.locations.to_vector<int64_t>() : std::vector<int64_t>{};
  for (int64_t i = 0; i < count; ++i) {
    CaptionStrip s;
    s.pixels = data.scenes[static_cast<std::size_t>(i)].pixels;
    const bool right = g.tokens[static_cast<std::size_t>(i)] == data.scenes[static_cast<std::size_t>(i)].caption;
    s.title = fmt::format("{}: \"{}\"", right ? "right" : "WRONG", caption_text(g.tokens[static_cast<std::size_t>(i)]));
    if (!right) s.title += fmt::format("  (truth: {})", caption_text(data.scenes[static_cast<std::size_t>(i)].caption));
    for (std::size_t t = 0; t < g.tokens[static_cast<std::size_t>(i)].size(); ++t) {
      s.words.push_back(vocabulary()[static_cast<std::size_t>(g.tokens[static_cast<std::size_t>(i)][t])]);
      const auto begin = alphas.begin() + (i * steps + static_cast<int64_t>(t)) * kLocations;
      s.alphas.emplace_back(begin, begin + kLocations);
      s.locations.push_back(locations.empty() ? -1 : static_cast<int>(locations[i * steps + static_cast<int64_t>(t)]));
    }
    strips.push_back(std::move(s));
  }
  save_caption_png(path, strips, kCanvas, static_cast<int>(kGridSide), title);
}

// ---- --predict -----------------------------------------------------------------------------------------

int64_t meta_int(const heed::io::SafetensorsFile& file, const std::string& key, const std::string& path) {
  const auto it = file.metadata.find(key);
  HEED_CHECK(it != file.metadata.end(), "captioning: checkpoint '{}' has no '{}' in its metadata", path, key);
  return std::stoll(it->second);
}

int predict(const std::string& out_dir, int64_t count, uint64_t seed, const std::vector<Variant>& variants) {
  int loaded = 0;
  for (Variant v : variants) {
    const std::string path = fmt::format("{}/captioning_{}.safetensors", out_dir, variant_name(v));
    if (!std::filesystem::exists(path)) {
      fmt::print("no checkpoint {} (train first: captioning --out {})\n", path, out_dir);
      continue;
    }
    const heed::io::SafetensorsFile file = heed::io::load_safetensors(path);
    Config config;
    config.channels = meta_int(file, "channels", path);
    config.embed = meta_int(file, "embed", path);
    config.hidden = meta_int(file, "hidden", path);
    config.attention = meta_int(file, "attention", path);
    config.max_objects = meta_int(file, "max_objects", path);
    Captioner model(config, v);
    model.load_state_dict(file.tensors);
    heed::Generator scene_gen(seed + 7777);  // scenes the training never saw
    const Dataset fresh = make_dataset(count, config, scene_gen);
    heed::Generator gen(seed);
    const Generated g = generate(model, fresh.images, gen, false);
    fmt::print("== {} attention ({}):\n", variant_name(v), path);
    for (int64_t i = 0; i < count; ++i) {
      const auto& ref = fresh.scenes[static_cast<std::size_t>(i)].caption;
      fmt::print("  scene {}: {:<48} truth: {}{}\n", i + 1, caption_text(g.tokens[static_cast<std::size_t>(i)]),
                 caption_text(ref), g.tokens[static_cast<std::size_t>(i)] == ref ? "  (right)" : "");
    }
    const std::string png = fmt::format("{}/predict_{}.png", out_dir, variant_name(v));
    write_png(model, fresh, std::min<int64_t>(count, 6), false, seed, png,
              fmt::format("{} attention on fresh scenes (yellow = most attended)", variant_name(v)));
    fmt::print("  wrote {}\n", png);
    ++loaded;
  }
  return loaded > 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"heed captioning: Show, Attend and Tell (soft and hard attention) on generated scenes"};
  Config config;
  TrainOptions options;
  int64_t train_size = 5000, val_size = 300, test_size = 1000, predict_count = 0, pictures = 4;
  std::string variant = "both", out_dir = "captioning_out";
  app.add_option("--variant", variant, "soft, hard or both")->check(CLI::IsMember({"soft", "hard", "both"}));
  app.add_option("--epochs", options.epochs, "training epochs per variant")->check(CLI::PositiveNumber);
  app.add_option("--batch", options.batch, "batch size")->check(CLI::PositiveNumber);
  app.add_option("--train-size", train_size, "training scenes")->check(CLI::Range(int64_t{1}, int64_t{10000000}));
  app.add_option("--val-size", val_size, "validation scenes (scored after every epoch)")->check(CLI::PositiveNumber);
  app.add_option("--test-size", test_size, "test scenes for the final table")->check(CLI::PositiveNumber);
  app.add_option("--max-objects", config.max_objects, "objects per scene: 1 to this")->check(CLI::Range(1, 9));
  app.add_option("--channels", config.channels, "first conv's channels (then 2x, 4x = annotation size)")
      ->check(CLI::PositiveNumber);
  app.add_option("--hidden", config.hidden, "LSTM hidden units")->check(CLI::PositiveNumber);
  app.add_option("--embed", config.embed, "word embedding size")->check(CLI::PositiveNumber);
  app.add_option("--attention", config.attention, "attention MLP size")->check(CLI::PositiveNumber);
  app.add_option("--lr", options.lr, "Adam learning rate")->check(CLI::PositiveNumber);
  app.add_option("--alpha-c", options.alpha_c, "λ of the doubly stochastic penalty (0 = off)")->check(CLI::NonNegativeNumber);
  app.add_option("--entropy", options.entropy, "hard: entropy bonus λ_e")->check(CLI::NonNegativeNumber);
  app.add_option("--reward-scale", options.reward_scale, "hard: λ_r on the REINFORCE term")->check(CLI::NonNegativeNumber);
  app.add_option("--semi-sampling", options.semi_sampling, "hard: probability of an expectation minibatch")
      ->check(CLI::Range(0.0, 1.0));
  app.add_option("--pictures", pictures, "scenes per PNG")->check(CLI::Range(1, 20));
  app.add_option("--seed", options.seed, "random seed (data, initialization, shuffling, glimpses)");
  app.add_option("--out", out_dir, "directory for checkpoints and PNGs");
  app.add_option("--predict", predict_count, "load the checkpoints from --out and caption this many fresh scenes")
      ->check(CLI::PositiveNumber);
  CLI11_PARSE(app, argc, argv);

  std::vector<Variant> variants;
  if (variant != "hard") variants.push_back(Variant::Soft);
  if (variant != "soft") variants.push_back(Variant::Hard);
  try {
    if (predict_count > 0) return predict(out_dir, predict_count, options.seed, variants);
    std::filesystem::create_directories(out_dir);
    heed::Generator data_gen(options.seed);
    const Dataset train_set = make_dataset(train_size, config, data_gen);
    const Dataset val_set = make_dataset(val_size, config, data_gen);
    const Dataset test_set = make_dataset(test_size, config, data_gen);
    fmt::print("data: {} train / {} validation / {} test scenes, 48x48, 3x3 cells, 1-{} objects; vocabulary {}\n",
               train_size, val_size, test_size, config.max_objects, kVocab);
    fmt::print("example caption: \"{}\"\n\n", caption_text(train_set.scenes[0].caption));

    struct Row {
      std::string name;
      Scores scores;
      double seconds;
    };
    std::vector<Row> rows;
    std::vector<std::string> written;
    for (Variant v : variants) {
      heed::manual_seed(options.seed);
      Captioner model(config, v);
      options.checkpoint = fmt::format("{}/captioning_{}.safetensors", out_dir, variant_name(v));
      fmt::print("== {} attention ({} parameters)\n", variant_name(v), model.num_parameters());
      const double seconds = train(model, train_set, val_set, options);
      written.push_back(options.checkpoint);
      if (v == Variant::Soft) {
        rows.push_back({"soft", evaluate(model, test_set, false, options.seed + 400), seconds});
      } else {
        rows.push_back({"hard (sampled glimpses)", evaluate(model, test_set, false, options.seed + 400), seconds});
        rows.push_back({"hard (expectation at test)", evaluate(model, test_set, true, options.seed + 400), seconds});
      }
      const std::string png = fmt::format("{}/attention_{}.png", out_dir, variant_name(v));
      write_png(model, test_set, pictures, false, options.seed + 500, png,
                v == Variant::Soft ? "soft attention: alpha per generated word (yellow = most attended)"
                                   : "hard attention: alpha per word, the sampled glimpse boxed in cyan");
      written.push_back(png);
      fmt::print("\n");
    }
    fmt::print("test set ({} scenes), greedy decoding:\n  {:<28} {:>10} {:>12} {:>10}\n", test_size, "variant",
               "token acc", "exact match", "train time");
    for (const Row& r : rows)
      fmt::print("  {:<28} {:>10.4f} {:>12.4f} {:>9.1f}s\n", r.name, r.scores.token_accuracy, r.scores.exact_match,
                 r.seconds);
    fmt::print("\nwrote");
    for (const auto& w : written) fmt::print(" {}", w);
    fmt::print("\ntry:  captioning --out {} --predict 4\n", out_dir);
  } catch (const heed::Error& e) {
    fmt::print(stderr, "error: {}\n", e.what());
    return 1;
  } catch (const std::exception& e) {  // anything else (e.g. out of memory): a message, not std::terminate
    fmt::print(stderr, "error: {}\n", e.what());
    return 1;
  }
  return 0;
}
