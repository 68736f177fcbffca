// charlm — a character-level decoder-only Transformer language model on the King James Bible.
//
//   ./build/examples/charlm/charlm                          train with the defaults (a few minutes on 2 cores)
//   ./build/examples/charlm/charlm --text FILE              train on any text file instead
//   ./build/examples/charlm/charlm --sample --prompt "And Jesus said"     sample from the saved model
//
// Text: by default the King James Bible, printed by `bible` from Debian's bible-kjv package and stripped
// of its verse references (text.hpp). The first 90% trains, the last 10% validates. Training draws random
// windows of --context characters; the loss is the cross-entropy of every next character, reported in
// bits per character (nats / ln 2). The unigram baseline is the cross-entropy of the validation text under
// the training text's character frequencies: what a model that ignores context achieves.
// Writes charlm.safetensors (the model and, in its metadata, the vocabulary and sizes), and attention.png
// (every head's attention over a prompt), and prints a sample drawn with the key-value cache.
#include <CLI/CLI.hpp>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <heed/heed.hpp>
#include <heed/io/heatmap.hpp>
#include <heed/io/safetensors.hpp>
#include <heed/nn/decoding.hpp>
#include <heed/nn/transformer.hpp>
#include <heed/utf8.hpp>
#include <limits>
#include <map>

#include "text.hpp"

namespace {

using heed::Tensor;
using charlm::CharVocab;
namespace nn = heed::nn;

constexpr double kLn2 = 0.69314718055994530942;
constexpr const char* kDefaultPrompt = "And God said, Let there be light";
constexpr const char* kCheckpointName = "charlm.safetensors";

// ---- the model -------------------------------------------------------------------------------------------

struct ModelConfig {
  int64_t vocab = 0, d_model = 128, heads = 4, layers = 2, ff = 512, context = 64;
  double dropout = 0.0;

  heed::io::Metadata to_metadata() const {
    return {{"d_model", std::to_string(d_model)}, {"heads", std::to_string(heads)},
            {"layers", std::to_string(layers)},   {"ff", std::to_string(ff)},
            {"context", std::to_string(context)}};
  }
  static ModelConfig from_metadata(const heed::io::Metadata& metadata, int64_t vocab, const std::string& path) {
    auto get = [&](const char* key) {
      auto it = metadata.find(key);
      HEED_CHECK(it != metadata.end(), "charlm: '{}' has no '{}' in its metadata; was it written by charlm?", path,
                 key);
      return heed::io::metadata_int(metadata, key, path);  // a clear error for anything but a decimal integer
    };
    ModelConfig config;
    config.vocab = vocab;
    config.d_model = get("d_model");
    config.heads = get("heads");
    config.layers = get("layers");
    config.ff = get("ff");
    config.context = get("context");
    return config;
  }
};

// The decoder-only Transformer (heed/nn/transformer.hpp): GPT-style pre-LN blocks with GELU, learned
// positions for the --context positions it trains on, the output projection tied to the embedding.
struct CharModel {
  explicit CharModel(const ModelConfig& config)
      : config(config),
        lm(std::make_shared<nn::TransformerLM>(nn::TransformerLMOptions(config.vocab, config.d_model)
                                                   .nhead(config.heads)
                                                   .num_layers(config.layers)
                                                   .dim_feedforward(config.ff)
                                                   .dropout(config.dropout)
                                                   .max_len(config.context))) {
    // GPT-2's initialization of the (tied) token embedding, N(0, 0.02^2). Embedding's default, N(0, 1)
    // like PyTorch's, makes the tied output layer's first logits about sqrt(d) times too large: the
    // first steps then cost 40+ bits per character instead of log2(V) (about 6).
    heed::NoGradGuard no_grad;
    heed::init::normal_(lm->embed->weight, 0.0, 0.02);
  }

  Tensor logits(const Tensor& tokens) { return lm->forward(tokens); }  // (B, T) -> (B, T, V)

  // Per layer: the (heads, T, T) attention weights over one sequence (1, T).
  std::vector<Tensor> attention(const Tensor& tokens) {
    lm->forward(tokens, Tensor(), /*need_weights=*/true);
    std::vector<Tensor> per_layer;
    for (const Tensor& w : lm->attention_weights()) per_layer.push_back(heed::select(w, 0, 0));
    return per_layer;
  }

  // Draws `count` characters after `prompt` with the key-value cache. The model knows only `context`
  // positions, so when a cache is full, a new one starts from the last context/2 characters (one
  // batched pass over them) and sampling goes on from there.
  std::vector<int64_t> sample(const std::vector<int64_t>& prompt, int64_t count,
                              const nn::SamplingOptions& options) {
    std::vector<int64_t> history = prompt;
    int64_t keep = config.context - 1;  // the first window: as much of the prompt as fits
    while (static_cast<int64_t>(history.size()) - static_cast<int64_t>(prompt.size()) < count) {
      const int64_t window = std::min<int64_t>(keep, static_cast<int64_t>(history.size()));
      const int64_t done = static_cast<int64_t>(history.size()) - static_cast<int64_t>(prompt.size());
      const int64_t n = std::min(count - done, config.context - window);
      std::unique_ptr<nn::IncrementalDecoder> decoder = lm->incremental_decoder();
      const Tensor out =
          nn::sample(*decoder, heed::index_tensor(std::vector<int64_t>(history.end() - window, history.end()), {1, window}),
                     n, options);
      const std::vector<int64_t> tokens = out.to_vector<int64_t>();
      history.insert(history.end(), tokens.begin() + window, tokens.end());
      keep = config.context / 2;
    }
    return std::vector<int64_t>(history.begin() + static_cast<std::ptrdiff_t>(prompt.size()), history.end());
  }

  ModelConfig config;
  std::shared_ptr<nn::TransformerLM> lm;
};

// ---- evaluation ----------------------------------------------------------------------------------------

// Mean cross-entropy of every next character in the batches, in bits per character.
double bits_per_char(CharModel& model, const std::vector<charlm::Batch>& batches) {
  heed::NoGradGuard no_grad;
  const bool was_training = model.lm->is_training();
  model.lm->eval();
  double nats = 0;
  int64_t count = 0;
  for (const charlm::Batch& batch : batches) {
    const Tensor loss = heed::cross_entropy(model.logits(batch.inputs), batch.targets,
                                            heed::CrossEntropyOptions().reduction(heed::Reduction::Sum));
    nats += loss.item();
    count += batch.targets.numel();
  }
  model.lm->train(was_training);
  return nats / static_cast<double>(count) / kLn2;
}

// ---- the checkpoint ------------------------------------------------------------------------------------

void save_checkpoint(const std::string& path, const CharModel& model, const CharVocab& vocab,
                     const heed::io::Metadata& extra) {
  heed::io::Metadata metadata = model.config.to_metadata();
  metadata["vocab"] = vocab.to_metadata();  // bytes as Latin-1 characters: JSON strings must be UTF-8
  for (const auto& [key, value] : extra) metadata[key] = value;
  heed::io::save_safetensors(path, model.lm->state_dict(), metadata);
}

struct Loaded {
  CharVocab vocab;
  std::shared_ptr<CharModel> model;
  heed::io::Metadata metadata;
};

Loaded load_checkpoint(const std::string& path) {
  HEED_CHECK(std::filesystem::exists(path), "charlm: no checkpoint at '{}'; train first (run without --sample) with "
             "the same --out", path);
  const heed::io::SafetensorsFile file = heed::io::load_safetensors(path);
  auto it = file.metadata.find("vocab");
  HEED_CHECK(it != file.metadata.end() && !it->second.empty(),
             "charlm: '{}' has no vocabulary in its metadata; was it written by charlm?", path);
  Loaded loaded{CharVocab::from_metadata(it->second), nullptr, file.metadata};
  const ModelConfig config = ModelConfig::from_metadata(file.metadata, loaded.vocab.size(), path);
  loaded.model = std::make_shared<CharModel>(config);
  loaded.model->lm->load_state_dict(file.tensors);
  loaded.model->lm->eval();
  return loaded;
}

// ---- the picture and the sample ------------------------------------------------------------------------

std::string char_label(char c) {
  if (c == ' ') return "_";
  if (c == '\n') return "\\n";
  return std::string(1, c);
}

// One panel per layer; inside it the heads side by side, left to right, a grey column between them. Row
// i is the query at prompt character i, column j the key at character j; the grey upper triangle is the
// future, which the causal mask hides.
// Shows the prompt's last kPictureChars characters (at most the context); returns how many.
constexpr std::size_t kPictureChars = 48;
std::size_t save_attention_png(const std::string& path, CharModel& model, const CharVocab& vocab,
                               const std::string& full_prompt) {
  const std::size_t shown = std::min({full_prompt.size(), kPictureChars, static_cast<std::size_t>(model.config.context)});
  const std::string prompt = full_prompt.substr(full_prompt.size() - shown);
  const std::vector<int64_t> ids = vocab.encode(prompt, "the prompt");
  const auto t = static_cast<int64_t>(ids.size());
  std::vector<Tensor> per_layer;
  {
    heed::NoGradGuard no_grad;
    model.lm->eval();
    per_layer = model.attention(heed::index_tensor(ids, {1, t}));
  }
  std::vector<std::string> row_labels, col_labels;
  for (char c : prompt) row_labels.push_back(char_label(c));
  const int64_t heads = per_layer.front().size(0), width = heads * (t + 1) - 1;
  for (int64_t h = 0; h < heads; ++h) {
    if (h > 0) col_labels.push_back("");
    col_labels.insert(col_labels.end(), row_labels.begin(), row_labels.end());
  }
  std::vector<heed::io::HeatmapPanel> panels;
  for (std::size_t layer = 0; layer < per_layer.size(); ++layer) {
    const std::vector<float> weights = per_layer[layer].contiguous().to_vector<float>();  // (H, T, T)
    std::vector<double> grid(static_cast<std::size_t>(t * width), std::numeric_limits<double>::quiet_NaN());
    for (int64_t h = 0; h < heads; ++h)
      for (int64_t i = 0; i < t; ++i)
        for (int64_t j = 0; j <= i; ++j)
          grid[static_cast<std::size_t>(i * width + h * (t + 1) + j)] =
              weights[static_cast<std::size_t>((h * t + i) * t + j)];
    panels.push_back({heed::tensor(grid, {t, width}), row_labels, col_labels,
                      fmt::format("layer {}: heads 1 to {}, left to right", layer + 1, heads)});
  }
  heed::io::HeatmapOptions options;
  options.text_scale(1);
  options.vmin(0.0);
  options.vmax(1.0);
  heed::io::save_heatmap_png(path, panels, "self-attention weights over the prompt (row: query, column: key)",
                             options);
  return shown;
}

// The prompt for the picture: the user's, else the default when the text has its characters, else the
// start of the validation text.
std::string picture_prompt(const std::string& prompt, const CharVocab& vocab, const std::string& fallback) {
  bool ok = !prompt.empty();
  for (char c : prompt) ok = ok && vocab.contains(c);
  return ok ? prompt : fallback;
}

std::string indent(const std::string& text) {
  std::string out = "    ";
  for (char c : text) {
    out.push_back(c);
    if (c == '\n') out += "    ";
  }
  return out;
}

struct SampleOptions {
  int64_t length = 300, top_k = 10;
  double temperature = 0.8;
  uint64_t seed = 1;
};

std::string draw_sample(CharModel& model, const CharVocab& vocab, const std::string& prompt,
                        const SampleOptions& options) {
  HEED_CHECK(!prompt.empty(), "charlm: --prompt is empty; the sample needs at least one character to continue");
  const std::vector<int64_t> ids = vocab.encode(prompt, "the prompt");
  heed::Generator gen(options.seed);
  heed::NoGradGuard no_grad;
  model.lm->eval();
  return vocab.decode(model.sample(
      ids, options.length,
      nn::SamplingOptions().temperature(options.temperature).top_k(options.top_k).generator(&gen)));
}

int sample_from_checkpoint(const std::string& out_dir, const std::string& prompt_arg, bool prompt_given,
                           const SampleOptions& options) {
  const std::string path = out_dir + "/" + kCheckpointName;
  Loaded loaded = load_checkpoint(path);
  const std::string prompt = prompt_given ? prompt_arg : picture_prompt(prompt_arg, loaded.vocab, "\n");
  auto meta = [&](const char* key) {
    auto it = loaded.metadata.find(key);
    return it == loaded.metadata.end() ? std::string("?") : it->second;
  };
  fmt::print("loaded {}: {} parameters, trained {} steps on {}, validation {} bits per character\n", path,
             loaded.model->lm->num_parameters(), meta("steps"), meta("source"), meta("val_bpc"));
  const auto start = std::chrono::steady_clock::now();
  const std::string sample = draw_sample(*loaded.model, loaded.vocab, prompt, options);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  fmt::print("sample (temperature {}, top-k {}, seed {}; {} characters in {:.2f} s with the key-value cache):\n{}\n\n",
             options.temperature, options.top_k, options.seed, options.length, seconds,
             indent(prompt + sample));
  const std::string png = out_dir + "/attention.png";
  const std::size_t shown = save_attention_png(png, *loaded.model, loaded.vocab, prompt);
  fmt::print("wrote {} (attention over the prompt's last {} characters)\n", png, shown);
  return 0;
}

// ---- training ------------------------------------------------------------------------------------------

struct TrainOptions {
  int64_t steps = 1200, batch = 16, warmup = -1, eval_every = 200, eval_windows = 256;
  double lr = 3e-3, weight_decay = 0.01, clip = 1.0;
  uint64_t seed = 1;
};

struct TrainResult {
  double seconds = 0, train_bpc = 0, val_bpc = 0;
  int64_t characters = 0;
};

TrainResult train(CharModel& model, const charlm::Split& split, const TrainOptions& options,
                  const std::vector<charlm::Batch>& val_batches, const std::vector<charlm::Batch>& train_eval_batches,
                  const std::function<void(int64_t step, double val_bpc)>& on_eval) {
  // Weight decay on the matrices only (GPT's practice): not on biases, LayerNorm gains or positions.
  std::vector<Tensor> decayed, not_decayed;
  for (const auto& [name, param] : model.lm->named_parameters())
    (param.dim() >= 2 && name != "pos.weight" ? decayed : not_decayed).push_back(param);
  const auto adamw = heed::optim::AdamWOptions(options.lr).betas({0.9, 0.99}).weight_decay(options.weight_decay);
  auto no_decay = adamw;
  no_decay.weight_decay(0.0);
  heed::optim::AdamW opt({heed::optim::ParamGroup(decayed), heed::optim::ParamGroup(not_decayed, no_decay)}, adamw);
  heed::optim::CosineWithWarmup schedule(opt, options.warmup, options.steps, options.lr / 10);
  heed::Generator gen(options.seed);
  const int64_t context = model.config.context;
  TrainResult result;
  double train_seconds = 0;
  model.lm->train();
  for (int64_t first = 0; first < options.steps; first += options.eval_every) {
    const int64_t last = std::min(options.steps, first + options.eval_every);
    heed::ProgressBar bar(last - first, fmt::format("steps {:>4}-{:<4}", first + 1, last));
    double interval_nats = 0;
    for (int64_t step = first; step < last; ++step) {
      const charlm::Batch batch = charlm::random_batch(split.train, options.batch, context, gen);
      opt.zero_grad();
      const Tensor loss = heed::cross_entropy(model.logits(batch.inputs), batch.targets);
      loss.backward();
      heed::optim::clip_grad_norm_(model.lm->parameters(), options.clip);
      opt.step();
      schedule.step();
      interval_nats += loss.item();
      result.characters += batch.targets.numel();
      bar.update(1, {{"bpc", loss.item() / kLn2}, {"lr", opt.lr()}});
    }
    train_seconds += bar.elapsed_seconds();
    const double val_bpc = bits_per_char(model, val_batches);
    bar.finish({{"mean_bpc", interval_nats / static_cast<double>(last - first) / kLn2}, {"val_bpc", val_bpc}});
    result.val_bpc = val_bpc;
    on_eval(last, val_bpc);
  }
  result.seconds = train_seconds;
  result.train_bpc = bits_per_char(model, train_eval_batches);
  return result;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"heed charlm: a character-level decoder-only Transformer language model (King James Bible)"};
  ModelConfig config;
  TrainOptions train_options;
  SampleOptions sample_options;
  std::string text_path, out_dir = ".", prompt = kDefaultPrompt;
  double val_fraction = 0.1;
  bool sample_only = false;
  app.add_option("--text", text_path, "train on this text file instead of the King James Bible (bible-kjv)");
  app.add_option("--out", out_dir, "directory for charlm.safetensors and attention.png");
  app.add_flag("--sample", sample_only, "load charlm.safetensors from --out and sample from --prompt (no training)");
  app.add_option("--prompt", prompt, "text the sample continues; the attention picture shows its last 48 characters");
  app.add_option("--length", sample_options.length, "characters to sample")->check(CLI::Range(0, 1000000));
  app.add_option("--temperature", sample_options.temperature, "sampling temperature (lower: safer, more repetitive)")
      ->check(CLI::PositiveNumber);
  app.add_option("--top-k", sample_options.top_k, "sample among the k most likely characters; 0 = all")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--steps", train_options.steps, "optimizer steps")->check(CLI::PositiveNumber);
  app.add_option("--batch", train_options.batch, "windows per step")->check(CLI::PositiveNumber);
  app.add_option("--context", config.context, "characters per window (the model's maximum context)")
      ->check(CLI::Range(2, 1 << 16));
  app.add_option("--d-model", config.d_model, "model width")->check(CLI::PositiveNumber);
  app.add_option("--heads", config.heads, "attention heads per layer (must divide --d-model)")
      ->check(CLI::PositiveNumber);
  app.add_option("--layers", config.layers, "decoder layers")->check(CLI::PositiveNumber);
  app.add_option("--ff", config.ff, "feed-forward width")->check(CLI::PositiveNumber);
  app.add_option("--dropout", config.dropout, "dropout while training")->check(CLI::Range(0.0, 0.9));
  app.add_option("--lr", train_options.lr, "peak AdamW learning rate (linear warmup, then cosine to a tenth)")
      ->check(CLI::PositiveNumber);
  app.add_option("--warmup", train_options.warmup, "warmup steps (default: a tenth of --steps)")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--weight-decay", train_options.weight_decay, "AdamW weight decay")->check(CLI::NonNegativeNumber);
  app.add_option("--eval-every", train_options.eval_every, "steps between validation evaluations")
      ->check(CLI::PositiveNumber);
  app.add_option("--eval-windows", train_options.eval_windows,
                 "validation (and training) windows of --context characters evaluated, spread evenly")
      ->check(CLI::PositiveNumber);
  app.add_option("--val-fraction", val_fraction, "the tail of the text kept for validation")
      ->check(CLI::Range(0.01, 0.5));
  app.add_option("--seed", train_options.seed, "random seed (initialization, windows)");
  app.add_option("--sample-seed", sample_options.seed, "random seed of the sample");
  CLI11_PARSE(app, argc, argv);

  try {
    if (sample_only) return sample_from_checkpoint(out_dir, prompt, app.count("--prompt") > 0, sample_options);
    if (train_options.warmup < 0) train_options.warmup = train_options.steps / 10;
    HEED_CHECK(train_options.warmup < train_options.steps, "charlm: --warmup {} must be less than --steps {}",
               train_options.warmup, train_options.steps);
    HEED_CHECK(config.d_model % config.heads == 0, "charlm: --heads {} does not divide --d-model {}", config.heads,
               config.d_model);
    std::filesystem::create_directories(out_dir);

    // The text, its characters and the split.
    const std::string source = text_path.empty() ? "the King James Bible (bible-kjv)" : text_path;
    const std::string text = text_path.empty() ? charlm::read_bible() : charlm::read_text_file(text_path);
    const CharVocab vocab(text);
    const charlm::Split split = charlm::split_tail(vocab.encode(text, "the text"), val_fraction);
    HEED_CHECK(static_cast<int64_t>(split.validation.size()) > config.context,
               "charlm: the validation tail has {} characters, not more than --context {}; give a longer text, a "
               "larger --val-fraction or a smaller --context", split.validation.size(), config.context);
    config.vocab = vocab.size();
    fmt::print("text: {}, {} characters, {} distinct; {} train / {} validation (the last {:.0f}%)\n", source,
               text.size(), vocab.size(), split.train.size(), split.validation.size(), 100 * val_fraction);
    const double unigram_val = charlm::unigram_bits_per_char(split.train, split.validation, vocab.size());
    const double unigram_train = charlm::unigram_bits_per_char(split.train, split.train, vocab.size());
    fmt::print("unigram baseline (training character frequencies, no context): {:.3f} bits/char on validation\n",
               unigram_val);

    const auto val_batches =
        charlm::evaluation_batches(split.validation, config.context, train_options.eval_windows, train_options.batch);
    const auto train_eval_batches =
        charlm::evaluation_batches(split.train, config.context, train_options.eval_windows, train_options.batch);

    heed::manual_seed(train_options.seed);
    auto model = std::make_shared<CharModel>(config);
    fmt::print("model: {} parameters; {} steps x {} windows x {} characters\n\n", model->lm->num_parameters(),
               train_options.steps, train_options.batch, config.context);

    const std::string checkpoint = out_dir + "/" + kCheckpointName;
    int64_t steps_done = 0;
    double last_val = 0;
    auto save = [&]() {
      save_checkpoint(checkpoint, *model, vocab,
                      {{"source", heed::printable(source, 4096)}, {"steps", std::to_string(steps_done)},
                       {"val_bpc", fmt::format("{:.4f}", last_val)},
                       {"unigram_val_bpc", fmt::format("{:.4f}", unigram_val)}});
    };
    const TrainResult result = train(*model, split, train_options, val_batches, train_eval_batches,
                                     [&](int64_t step, double val_bpc) {
                                       steps_done = step;
                                       last_val = val_bpc;
                                       save();  // after every evaluation, so an interrupted run keeps its model
                                     });

    // The sample and the picture, from the trained model.
    const std::string fallback(text.begin() + static_cast<std::ptrdiff_t>(split.train.size()),
                               text.begin() + static_cast<std::ptrdiff_t>(split.train.size()) +
                                   std::min<std::ptrdiff_t>(32, static_cast<std::ptrdiff_t>(split.validation.size())));
    const std::string shown_prompt = picture_prompt(prompt, vocab, fallback);
    const auto sample_start = std::chrono::steady_clock::now();
    const std::string sample = draw_sample(*model, vocab, shown_prompt, sample_options);
    const double sample_seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - sample_start).count();
    const std::string png = out_dir + "/attention.png";
    save_attention_png(png, *model, vocab, shown_prompt);

    int64_t evaluated = 0;
    for (const auto& batch : val_batches) evaluated += batch.targets.numel();
    fmt::print("\nsample (temperature {}, top-k {}; {} characters in {:.2f} s with the key-value cache):\n{}\n\n",
               sample_options.temperature, sample_options.top_k, sample_options.length, sample_seconds,
               indent(shown_prompt + sample));
    fmt::print("trained {} steps on {} characters in {} ({:.0f} characters/s)\n", train_options.steps,
               result.characters, heed::format_duration(result.seconds),
               static_cast<double>(result.characters) / result.seconds);
    fmt::print("bits per character (the unigram model on all of each part; the Transformer on {} characters of "
               "each, {} windows of {}):\n",
               evaluated, evaluated / config.context, config.context);
    fmt::print("  {:<38} {:>8} {:>12}\n", "model", "train", "validation");
    fmt::print("  {:<38} {:>8.3f} {:>12.3f}\n", "unigram (character frequencies)", unigram_train, unigram_val);
    fmt::print("  {:<38} {:>8.3f} {:>12.3f}\n",
               fmt::format("Transformer ({} layers, d {}, {} heads)", config.layers, config.d_model, config.heads),
               result.train_bpc, result.val_bpc);
    fmt::print("\nwrote {}, {}\n", checkpoint, png);
    fmt::print("try:  charlm --out {} --sample --prompt \"{}\" --temperature 0.8\n\n", out_dir,
               CharVocab::escaped(shown_prompt));
    fmt::print("validation: {:.3f} bits per character, {:.3f} {} the unigram baseline ({:.3f})\n", result.val_bpc,
               std::abs(unigram_val - result.val_bpc), result.val_bpc < unigram_val ? "below" : "ABOVE", unigram_val);
  } catch (const heed::Error& e) {
    fmt::print(stderr, "error: {}\n", e.what());
    return 1;
  } catch (const std::exception& e) {  // anything else (e.g. out of memory): a message, not std::terminate
    fmt::print(stderr, "error: {}\n", e.what());
    return 1;
  }
  return 0;
}
