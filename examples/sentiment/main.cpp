// sentiment — the seed experiment: does attention pooling beat the LSTM's last hidden state?
//
//   ./build/examples/sentiment/sentiment                      train both models on generated reviews
//   ./build/examples/sentiment/sentiment --data amazon_cells_labelled.txt,yelp_labelled.txt
//   ./build/examples/sentiment/sentiment --predict "despite the high price , the sound was great"
//   mpirun -np 2 ./build/examples/sentiment/sentiment         the same training on 2 processes (README.md)
//
// Two models, identical but for how the sequence of LSTM states becomes one vector:
//   Embedding(V, 32) -> LSTM(100, every step) -> last hidden state        -> Dropout -> Linear(1) -> sigmoid
//   Embedding(V, 32) -> LSTM(100, every step) -> AttentionPooling (masked) -> Dropout -> Linear(1) -> sigmoid
// trained with binary cross-entropy on logits + an L2 penalty on the embedding, Adam, batch 100, 10 epochs,
// validation split 0.2 (heed::fit). Writes both checkpoints, the vocabulary and attention.png to --out.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <heed/heed.hpp>
#include <heed/io/heatmap.hpp>
#include <heed/io/safetensors.hpp>
#include <sstream>
#include <unordered_map>

#include "data.hpp"

namespace {

using heed::Tensor;
namespace nn = heed::nn;

using sentiment::Example;
using sentiment::Form;
using sentiment::form_name;
using sentiment::kForms;
using sentiment::read_labelled_sentences;

// ---- the built-in review generator (grammar in README.md) -----------------------------------------------

class ReviewGenerator {
 public:
  explicit ReviewGenerator(uint64_t seed) : gen_(seed) {}

  Example next(int64_t max_len) {
    const bool positive = gen_.uniform() < 0.5;
    const int label = positive ? 1 : 0;
    std::vector<std::string> words;
    const double u = gen_.uniform();
    const Form form = u < 0.35   ? Form::VerdictFirst
                      : u < 0.6  ? Form::Contrast
                      : u < 0.85 ? Form::VerdictMiddle
                                 : Form::VerdictLast;
    switch (form) {
      case Form::VerdictLast:  // a neutral span, then the verdict at the very end
        append(words, filler(gen_.randint(max_len / 5, 3 * max_len / 5 + 1), max_len - 12));
        append(words, ", " + pick({"overall", "in the end", "all in all", "to sum up", "honestly"}) + " ,");
        append(words, verdict(positive));
        append(words, ".");
        return {join(words), label, form};
      case Form::VerdictFirst:
        append(words, verdict(positive));
        break;
      case Form::Contrast:  // a concession of the opposite polarity, then the verdict
        append(words, concession(!positive));
        append(words, verdict(positive));
        break;
      default:  // a short neutral span, then the verdict
        append(words, filler(4 + gen_.randint(0, 6), max_len / 4));
        append(words, ",");
        append(words, verdict(positive));
    }
    // ... then a long neutral span of 30% to 75% of max_len words (12 to 30 for max_len 40), as far as it fits.
    const int64_t room = max_len - static_cast<int64_t>(words.size()) - 2;
    const int64_t target = std::min<int64_t>(room, gen_.randint(3 * max_len / 10, 3 * max_len / 4 + 1));
    if (target >= 4) {
      append(words, ",");
      append(words, filler(target, target));
    }
    append(words, ".");
    return {join(words), label, form};
  }

 private:
  const std::string& pick(const std::vector<std::string>& options) {
    return options[static_cast<std::size_t>(gen_.randint(0, static_cast<int64_t>(options.size())))];
  }
  static void append(std::vector<std::string>& words, const std::string& phrase) {
    std::istringstream in(phrase);
    for (std::string w; in >> w;) words.push_back(w);
  }
  static std::string join(const std::vector<std::string>& words) {
    std::string text;
    for (const auto& w : words) text += (text.empty() ? "" : " ") + w;
    return text;
  }
  static void append(std::vector<std::string>& words, const std::vector<std::string>& more) {
    words.insert(words.end(), more.begin(), more.end());
  }

  // A judgement whose polarity is `positive`, possibly through a negation ("is not bad").
  std::string verdict(bool positive) {
    static const std::vector<std::string> good{"good",    "great",      "excellent", "amazing",
                                               "perfect", "nice",       "fantastic", "wonderful",
                                               "solid",   "impressive", "superb",    "awesome"};
    static const std::vector<std::string> bad{"bad",     "terrible", "awful",    "poor",  "horrible", "disappointing",
                                              "useless", "weak",     "mediocre", "lousy", "dreadful", "faulty"};
    static const std::vector<std::string> subjects{"the battery", "the screen",  "the sound",    "the camera",
                                                   "this phone",  "the headset", "the charger",  "the case",
                                                   "the food",    "the service", "the staff",    "this place",
                                                   "the pasta",   "the coffee",  "the keyboard", "the price"};
    static const std::vector<std::string> copulas{"is", "was", "seems", "looks", "felt"};
    static const std::vector<std::string> negated_copulas{"is not", "was not",  "isn't",
                                                          "wasn't", "is never", "was never"};
    static const std::vector<std::string> intensifiers{"very", "really", "extremely", "quite",
                                                       "so",   "truly",  "incredibly"};
    const double kind = gen_.uniform();
    const bool negated = gen_.uniform() < 0.35;
    if (kind < 0.7) {  // subject copula [not] [intensifier] adjective
      // A negated adjective flips the polarity: "not good" is negative, "not bad" positive.
      const bool adjective_positive = negated ? !positive : positive;
      std::string s = pick(subjects) + " " + (negated ? pick(negated_copulas) : pick(copulas));
      if (gen_.uniform() < 0.5) s += " " + pick(intensifiers);
      return s + " " + pick(adjective_positive ? good : bad);
    }
    if (kind < 0.85) {  // i [really] loved it / i did not like it
      static const std::vector<std::string> liked{"loved", "liked", "enjoyed", "adored"};
      static const std::vector<std::string> hated{"hated", "disliked", "regretted", "returned"};
      static const std::vector<std::string> like{"like", "love", "enjoy"};
      if (!positive && negated) return "i did not " + pick(like) + " it";
      const std::string adverb = gen_.uniform() < 0.5 ? pick({"really", "truly", "absolutely"}) + " " : "";
      return "i " + adverb + pick(positive ? liked : hated) + " it";
    }
    // i would [not|never] recommend it
    return positive ? "i would " + pick({"definitely", "happily", "certainly"}) + " recommend it"
                    : "i would " + pick({"not", "never"}) + " recommend it";
  }

  // A leading clause of polarity `positive` that the verdict overrides. Its words (price, delivery, ...)
  // are not the verdict's adjectives, so a word keeps one polarity wherever it appears.
  std::string concession(bool positive) {
    using Pairs = std::vector<std::pair<std::string, std::string>>;  // (noun, adjective)
    static const Pairs good{{"reviews", "glowing"}, {"price", "low"},      {"delivery", "fast"},
                            {"seller", "friendly"}, {"packaging", "neat"}, {"shipping", "free"}};
    static const Pairs bad{{"price", "high"},    {"wait", "long"},     {"box", "damaged"},
                           {"reviews", "mixed"}, {"delivery", "slow"}, {"manual", "confusing"}};
    const Pairs& pairs = positive ? good : bad;
    const auto& [noun, adjective] =
        pairs[static_cast<std::size_t>(gen_.randint(0, static_cast<int64_t>(pairs.size())))];
    switch (gen_.randint(0, 3)) {
      case 0:
        return "despite the " + adjective + " " + noun + " ,";
      case 1:
        return "although the " + noun + " was " + adjective + " ,";
      default:
        return "the " + noun + " was " + adjective + " , but";
    }
  }

  // Neutral clauses joined by connectives, `target` words or a little more (never above `limit`).
  std::vector<std::string> filler(int64_t target, int64_t limit) {
    static const std::vector<std::string> clauses{"i bought it for my sister",
                                                  "it arrived on a tuesday",
                                                  "the box was brown",
                                                  "we ordered it last month",
                                                  "my brother has the same model",
                                                  "the manual has twenty pages",
                                                  "it comes in three colors",
                                                  "we went there on a friday night",
                                                  "the store is near the station",
                                                  "i used it in the kitchen",
                                                  "the delivery took four days",
                                                  "my friend told me about it",
                                                  "we sat near the window",
                                                  "it was raining that evening",
                                                  "the package included a cable",
                                                  "i charged it overnight",
                                                  "we paid with a card",
                                                  "the receipt was in the box",
                                                  "my wife picked the color",
                                                  "it fits in my pocket",
                                                  "the parking lot is across the street",
                                                  "i read the instructions twice",
                                                  "we came back on sunday",
                                                  "the model number is on the back",
                                                  "i have owned it for two weeks",
                                                  "the menu has a lot of pages",
                                                  "we were a group of six",
                                                  "i took it on a trip to the coast",
                                                  "the courier called before arriving",
                                                  "it uses the usual plug"};
    static const std::vector<std::string> connectives{"and", ", and", ", then", ", also", "; after that ,"};
    std::vector<std::string> words;
    while (static_cast<int64_t>(words.size()) < target) {
      std::vector<std::string> clause;
      if (!words.empty()) append(clause, pick(connectives));
      append(clause, pick(clauses));
      if (static_cast<int64_t>(words.size() + clause.size()) > limit) break;
      append(words, clause);
    }
    if (words.empty()) append(words, "i bought it");
    return words;
  }

  heed::Generator gen_;
};

// ---- the models -------------------------------------------------------------------------------------------

struct SentimentOutput {
  Tensor logits;   // (N, 1)
  Tensor weights;  // (N, T) attention, or undefined for the last-hidden-state model
};

class SentimentModel : public nn::Module {
 public:
  SentimentModel(int64_t vocab, int64_t embed, int64_t hidden, bool use_attention, double dropout_p)
      : Module(use_attention ? "LSTMAttention" : "LSTMLastHidden") {
    embedding =
        register_module("embedding", std::make_shared<nn::Embedding>(vocab, embed, heed::data::Tokenizer::kPad));
    lstm = register_module("lstm", std::make_shared<nn::LSTM>(nn::LSTMOptions(embed, hidden).batch_first(true)));
    if (use_attention) attention = register_module("attention", std::make_shared<nn::AttentionPooling>(hidden));
    dropout = register_module("dropout", std::make_shared<nn::Dropout>(dropout_p));
    fc = register_module("fc", std::make_shared<nn::Linear>(hidden, 1));
    // Keras' Embedding starts at U(-0.05, 0.05) (PyTorch's at N(0, 1)); with the seed's L2 penalty of 1e-3
    // on the embedding, the Keras start keeps the penalty a small part of the loss, as in the seed.
    heed::init::uniform_(embedding->weight, -0.05, 0.05);
    heed::NoGradGuard no_grad;
    heed::select(embedding->weight.detach(), 0, heed::data::Tokenizer::kPad).fill_(0.0);
  }

  // ids Int64 (N, T), lengths Int64 (N), keep_mask Bool (N, T).
  SentimentOutput run(const Tensor& ids, const Tensor& lengths, const Tensor& keep_mask) {
    auto [states, h_n, c_n] = lstm->forward((*embedding)(ids), nn::LSTMState{}, lengths);
    if (!attention) return {(*fc)((*dropout)(heed::select(h_n, 0, 0))), Tensor()};  // h after each last real step
    auto [context, weights] = attention->forward(states, keep_mask);
    return {(*fc)((*dropout)(context)), weights};
  }

  std::shared_ptr<nn::Embedding> embedding;
  std::shared_ptr<nn::LSTM> lstm;
  std::shared_ptr<nn::AttentionPooling> attention;
  std::shared_ptr<nn::Dropout> dropout;
  std::shared_ptr<nn::Linear> fc;
};

struct Encoded {
  heed::data::TensorDataset dataset;            // ids (N, T), lengths (N), mask (N, T), labels (N, 1)
  std::vector<std::vector<std::string>> words;  // each example's words, as the model sees them
};

Encoded encode(const std::vector<Example>& examples, const heed::data::Tokenizer& tokenizer, int64_t max_len) {
  std::vector<std::string> texts;
  std::vector<float> labels;
  for (const auto& e : examples) texts.push_back(e.text), labels.push_back(static_cast<float>(e.label));
  const heed::data::PaddedBatch padded = heed::data::pad_sequences(tokenizer.encode(texts), max_len);
  Encoded out;
  const int64_t n = static_cast<int64_t>(examples.size());
  out.dataset = heed::data::TensorDataset({padded.ids, padded.lengths, padded.mask, heed::tensor(labels, {n, 1})});
  const auto ids = padded.ids.to_vector<int64_t>();
  const auto lengths = padded.lengths.to_vector<int64_t>();
  const int64_t t = padded.ids.size(1);
  for (int64_t i = 0; i < n; ++i) {
    std::vector<std::string> words;
    for (int64_t s = 0; s < lengths[i]; ++s) words.push_back(tokenizer.word(ids[i * t + s]));
    out.words.push_back(std::move(words));
  }
  return out;
}

struct RunResult {
  heed::History history;
  double seconds = 0;
};

RunResult train(SentimentModel& model, const heed::data::TensorDataset& train_set,
                const heed::data::TensorDataset& val_set, int epochs, int64_t batch, double lr, double l2,
                uint64_t seed) {
  heed::optim::Adam optimizer(model.parameters(), heed::optim::AdamOptions(lr));
  auto step = [&](const std::vector<Tensor>& b, bool training) {
    const SentimentOutput out = model.run(b[0], b[1], b[2]);
    Tensor loss = heed::binary_cross_entropy_with_logits(out.logits, b[3]);
    if (training) loss = loss + heed::optim::l2_penalty(model.embedding->weight, l2);
    return heed::StepOutput{loss, heed::count_binary_correct(out.logits, b[3]), b[3].numel()};
  };
  heed::FitOptions options;
  options.epochs(epochs);
  options.batch_size(batch);
  options.seed(seed);
  const auto start = std::chrono::steady_clock::now();
  RunResult result;
  result.history = heed::fit(model, optimizer, train_set, step, options, &val_set);
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return result;
}

// ---- prediction from the saved checkpoint ------------------------------------------------------------------

int predict(const std::string& dir, const std::string& sentence) {
  const std::string vocab_path = dir + "/sentiment_vocab.txt", model_path = dir + "/sentiment_attention.safetensors";
  std::ifstream vocab_file(vocab_path);
  HEED_CHECK(vocab_file.good(), "sentiment: cannot open '{}'; train first (run without --predict) with --out {}",
             vocab_path, dir);
  std::unordered_map<std::string, int64_t> ids;
  int64_t vocab = 0;
  for (std::string word; std::getline(vocab_file, word); ++vocab) ids.emplace(word, vocab);

  // The layer sizes come from the checkpoint itself.
  const heed::io::SafetensorsFile file = heed::io::load_safetensors(model_path);
  const Tensor embedding = file.get("embedding.weight"), weight_hh = file.get("lstm.weight_hh_l0");
  HEED_CHECK(embedding.size(0) == vocab, "sentiment: '{}' has {} words but the checkpoint's embedding has {} rows",
             vocab_path, vocab, embedding.size(0));
  SentimentModel model(vocab, embedding.size(1), weight_hh.size(1), /*use_attention=*/true, 0.0);
  model.load(model_path);
  model.eval();

  std::vector<int64_t> tokens;
  const std::vector<std::string> words = heed::data::Tokenizer::split(sentence);
  HEED_CHECK(!words.empty(), "sentiment: --predict needs a sentence with at least one word");
  for (const auto& w : words) {
    auto it = ids.find(w);
    tokens.push_back(it == ids.end() ? heed::data::Tokenizer::kOov : it->second);
  }
  const int64_t t = static_cast<int64_t>(tokens.size());
  heed::NoGradGuard no_grad;
  const SentimentOutput out =
      model.run(heed::index_tensor(tokens, {1, t}), heed::index_tensor({t}, {1}),
                heed::bool_tensor(std::vector<bool>(static_cast<std::size_t>(t), true), {1, t}));
  const double p = heed::sigmoid(out.logits).item();
  fmt::print("\"{}\"\np(positive) = {:.3f}  ->  {}\n\nword             attention\n", sentence, p,
             p >= 0.5 ? "positive" : "negative");
  const auto weights = out.weights.to_vector<float>();
  for (int64_t i = 0; i < t; ++i) {
    const std::string shown = tokens[i] == heed::data::Tokenizer::kOov ? words[i] + " (unknown)" : words[i];
    fmt::print("{:<16} {:.3f}  {}\n", shown, weights[i],
               std::string(static_cast<std::size_t>(std::lround(weights[i] * 50)), '#'));
  }
  return 0;
}


}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"heed sentiment: LSTM last hidden state versus LSTM + attention pooling"};
  int epochs = 10, hidden = 100;
  int64_t batch = 100, train_size = 4000, max_len = 50;
  uint64_t seed = 1;
  double lr = 1e-3, l2 = 1e-3, dropout_p = 0.3;
  std::vector<std::string> data;  // --data files, comma-separated
  std::string out_dir = ".", sentence;
  app.add_option("--epochs", epochs, "training epochs")->check(CLI::PositiveNumber);
  app.add_option("--batch", batch, "batch size")->check(CLI::PositiveNumber);
  app.add_option("--train-size", train_size,
                 "sentences to generate (with --data: use at most this many), 20% of them for validation")
      ->check(CLI::Range(10, 10000000));
  app.add_option("--max-len", max_len, "words per sentence kept (longer ones are cut at the end)")
      ->check(CLI::Range(4, 10000));
  app.add_option("--data", data,
                 "comma-separated files of 'sentence<TAB>label' lines (UCI sentiment labelled sentences)")
      ->delimiter(',');
  app.add_option("--out", out_dir, "directory for the checkpoints, the vocabulary and attention.png");
  app.add_option("--predict", sentence, "load the saved attention model from --out and classify this sentence");
  app.add_option("--seed", seed, "random seed (data, initialization, shuffling)");
  app.add_option("--hidden", hidden, "LSTM hidden units")->check(CLI::PositiveNumber);
  app.add_option("--lr", lr, "Adam learning rate")->check(CLI::PositiveNumber);
  CLI11_PARSE(app, argc, argv);
  // Under mpirun every process runs this program: heed::fit gives each its share of the training set and
  // averages the gradients (heed/dist.hpp), --batch is per process, and only rank 0 prints and writes
  // files. Started alone, it is one process as before. An error on one rank ends the whole job.
  heed::dist::init(&argc, &argv);
  const bool main_rank = heed::dist::is_main_process();

  try {
    if (app.count("--predict") > 0) {
      const int status = main_rank ? predict(out_dir, sentence) : 0;
      heed::dist::finalize();
      return status;
    }
    if (main_rank) std::filesystem::create_directories(out_dir);

    // Data: the user's files (shuffled once, so the validation tail mixes them) or generated reviews.
    std::vector<Example> examples;
    if (!data.empty()) {
      for (const auto& path : data) {
        auto more = read_labelled_sentences(path);
        examples.insert(examples.end(), more.begin(), more.end());
      }
      heed::Generator shuffle_gen(seed);
      heed::data::shuffle(examples, shuffle_gen);
      if (app.count("--train-size") > 0 && static_cast<int64_t>(examples.size()) > train_size)
        examples.resize(train_size);
    } else {
      ReviewGenerator generator(seed);
      for (int64_t i = 0; i < train_size; ++i) examples.push_back(generator.next(max_len));
    }
    heed::data::Tokenizer tokenizer;
    {
      std::vector<std::string> texts;
      for (const auto& e : examples) texts.push_back(e.text);
      tokenizer.fit(texts);
    }
    const Encoded encoded = encode(examples, tokenizer, max_len);
    auto [train_set, val_set] = encoded.dataset.split_tail(0.2);
    const int64_t n_train = train_set.size(), n_val = val_set.size();
    int64_t positives = 0;
    for (const auto& e : examples) positives += e.label;
    if (main_rank) fmt::print(
        "data: {} sentences ({}), {} train / {} validation, {:.0f}% positive, vocabulary {} words, max length {}\n",
        examples.size(), data.empty() ? "generated reviews" : fmt::format("{}", fmt::join(data, ", ")), n_train, n_val,
        100.0 * static_cast<double>(positives) / static_cast<double>(examples.size()), tokenizer.vocab_size(), max_len);
    if (main_rank) fmt::print("example: \"{}\" -> {}\n\n", examples.front().text, examples.front().label ? "positive" : "negative");

    struct Run {
      const char* title;
      bool attention;
      std::shared_ptr<SentimentModel> model;
      RunResult result;
    };
    std::vector<Run> runs{{"LSTM, last hidden state", false, nullptr, {}},
                          {"LSTM + attention pooling", true, nullptr, {}}};
    for (Run& run : runs) {
      heed::manual_seed(seed);  // the same start for the shared layers' random draws
      run.model = std::make_shared<SentimentModel>(tokenizer.vocab_size(), 32, hidden, run.attention, dropout_p);
      // Several processes: the same initial model everywhere (heed::fit copies rank 0's anyway), but each
      // rank its own dropout masks.
      if (heed::dist::is_distributed()) heed::manual_seed(seed + 7919 * static_cast<uint64_t>(heed::dist::rank()));
      if (main_rank) fmt::print("== {} ({} parameters)\n", run.title, run.model->num_parameters());
      run.result = train(*run.model, train_set, val_set, epochs, batch, lr, l2, seed);
      if (main_rank) {
        run.model->save(fmt::format("{}/sentiment_{}.safetensors", out_dir, run.attention ? "attention" : "lstm"));
        fmt::print("\n");
      }
    }
    if (!main_rank) {  // the evaluation, the picture and the report: rank 0's
      heed::dist::finalize();
      return 0;
    }
    {
      std::ofstream vocab(out_dir + "/sentiment_vocab.txt");
      for (int64_t id = 0; id < tokenizer.vocab_size(); ++id) vocab << tokenizer.word(id) << '\n';
      HEED_CHECK(vocab.good(), "sentiment: cannot write '{}/sentiment_vocab.txt'", out_dir);
    }

    // Both models on the whole validation set, for the per-form table and the picture.
    std::vector<std::vector<float>> probabilities;
    Tensor attention_weights;
    {
      heed::NoGradGuard no_grad;
      const std::vector<Tensor> all = val_set.tensors();
      for (Run& run : runs) {
        run.model->eval();
        const SentimentOutput out = run.model->run(all[0], all[1], all[2]);
        probabilities.push_back(heed::sigmoid(out.logits).to_vector<float>());
        if (run.attention) attention_weights = out.weights;
      }
    }
    auto correct = [&](std::size_t model, int64_t i) {
      return (probabilities[model][static_cast<std::size_t>(i)] >= 0.5f) ==
             (examples[static_cast<std::size_t>(n_train + i)].label == 1);
    };

    // The picture: the first validation sentence of each form, then the next ones, six in all.
    std::vector<int64_t> picked;
    for (int f = 0; f < kForms && data.empty(); ++f)
      for (int64_t i = 0; i < n_val; ++i)
        if (examples[static_cast<std::size_t>(n_train + i)].form == static_cast<Form>(f)) {
          picked.push_back(i);
          break;
        }
    for (int64_t i = 0; i < n_val && picked.size() < 6; ++i)
      if (std::find(picked.begin(), picked.end(), i) == picked.end()) picked.push_back(i);
    std::vector<heed::io::HeatmapPanel> panels;
    for (int64_t i : picked) {
      const Example& e = examples[static_cast<std::size_t>(n_train + i)];
      const auto& words = encoded.words[static_cast<std::size_t>(n_train + i)];
      const int64_t len = static_cast<int64_t>(words.size());
      const float p = probabilities[1][static_cast<std::size_t>(i)];
      const std::string kind = e.form == Form::Unknown ? "" : fmt::format(" ({})", form_name(e.form));
      panels.push_back({heed::narrow(heed::select(attention_weights, 0, i), 0, 0, len).reshape({1, len}),
                        {fmt::format("p={:.2f}", p)},
                        words,
                        fmt::format("{}{}: {}, predicted {}", panels.size() + 1, kind,
                                    e.label ? "positive" : "negative", p >= 0.5f ? "positive" : "negative")});
    }
    const std::string png = out_dir + "/attention.png";
    heed::io::save_heatmap_png(png, panels, "attention weights over the words (LSTM + attention pooling)");

    fmt::print("validation accuracy after {} epochs ({} validation sentences):\n", epochs, n_val);
    fmt::print("  {:<28} {:>8} {:>12} {:>10}\n", "model", "final", "best epoch", "time");
    for (const Run& run : runs) {
      double best = 0;
      for (const auto& epoch : run.result.history.epochs) best = std::max(best, epoch.val_accuracy);
      fmt::print("  {:<28} {:>8.4f} {:>12.4f} {:>9.1f}s\n", run.title, run.result.history.last().val_accuracy, best,
                 run.result.seconds);
    }
    if (data.empty()) {
      fmt::print("\nby where the deciding phrase sits (validation):\n  {:<24} {:>6} {:>14} {:>12}\n", "form", "count",
                 "last hidden", "attention");
      for (int f = 0; f < kForms; ++f) {
        int64_t count = 0, right[2] = {0, 0};
        for (int64_t i = 0; i < n_val; ++i) {
          if (examples[static_cast<std::size_t>(n_train + i)].form != static_cast<Form>(f)) continue;
          ++count;
          for (std::size_t m = 0; m < 2; ++m) right[m] += correct(m, i);
        }
        if (count > 0)
          fmt::print("  {:<24} {:>6} {:>14.3f} {:>12.3f}\n", form_name(static_cast<Form>(f)), count,
                     static_cast<double>(right[0]) / static_cast<double>(count),
                     static_cast<double>(right[1]) / static_cast<double>(count));
      }
    }
    const double plain = runs[0].result.history.last().val_accuracy,
                 attended = runs[1].result.history.last().val_accuracy;
    fmt::print(
        "\nwrote {0}/sentiment_lstm.safetensors, {0}/sentiment_attention.safetensors, {0}/sentiment_vocab.txt, {1}\n",
        out_dir, png);
    fmt::print("try:  sentiment --out {} --predict \"the screen was not good , we ordered it last month\"\n\n",
               out_dir);
    fmt::print("attention {} the last hidden state by {:.1f} points of validation accuracy ({:.1f}% vs {:.1f}%)\n",
               attended >= plain ? "beats" : "trails", 100.0 * std::abs(attended - plain), 100.0 * attended,
               100.0 * plain);
  } catch (const heed::Error& e) {
    fmt::print(stderr, "error: {}\n", e.what());
    return 1;
  } catch (const std::exception& e) {  // anything else (e.g. out of memory): a message, not std::terminate
    fmt::print(stderr, "error: {}\n", e.what());
    return 1;
  }
  heed::dist::finalize();
  return 0;
}
