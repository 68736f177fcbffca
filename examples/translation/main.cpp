// translation — a character-level seq2seq with attention: a bidirectional GRU (or LSTM) encoder, a GRU (or
// LSTM) decoder and one of eight attention kinds, compared on date normalisation (docs/attention-spec.md §3).
//
//   ./build/examples/translation/translation                       train every kind, print one table
//   ./build/examples/translation/translation --attention bahdanau,dot --task dates --epochs 8
//   ./build/examples/translation/translation --predict "3rd of may 79"          greedy + beam + alignment
//   ./build/examples/translation/translation --pairs eng-fra.txt --attention general   your own sentence pairs
//
// Kinds (--attention): none (the encoder's final states only), bahdanau (additive, query s_{i-1}), and the
// Luong family (query h_t, attentional state h~ = tanh(W_c [c; h]) fed to the next step): dot, general,
// concat, location (a = softmax(W_a h_t), position only), local-m (window around p_t = t) and local-p
// (window around a predicted p_t = S·sigmoid(v_p^T tanh(W_p h_t)), Gaussian-weighted). The local kinds score
// with --local-score (general by default, the paper's best).
// Tasks (--task): dates (about ten formats, 1950-2049 -> "1979-05-03"), reverse (10 letters backwards: the
// spec's task for location), monotone (a transliteration, 1-2 letters per letter: the spec's task for
// local-m), and spec (the default: each kind on the spec's task for it, and location and local-m on dates as
// well). --pairs FILE reads english<TAB>french[<TAB>attribution] lines instead.
// Training: teacher forcing, cross-entropy of every output character, Adam, gradient clipping. Evaluation on
// the held-out test set: exact match with greedy and beam decoding (heed/nn/decoding.hpp), character
// accuracy, and how well the attention lines up (dates: the argmax input position of each year digit inside
// the input's year; reverse: on the mirrored position; monotone: |argmax_s - t·S/T| <= 3).
// Writes translation-<task>-<kind>.safetensors (the model; sizes and vocabularies in its metadata), one
// alignment-<task>-<kind>.png per kind (5 test examples) and alignments.png (one example per kind).
#include <CLI/CLI.hpp>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <heed/heed.hpp>
#include <heed/io/heatmap.hpp>
#include <heed/io/safetensors.hpp>
#include <heed/nn/decoding.hpp>
#include <heed/nn/seq2seq_attention.hpp>

#include "data.hpp"

namespace {

using heed::Tensor;
using translation::Pair;
using translation::Vocab;
namespace nn = heed::nn;

// ---- attention kinds and tasks --------------------------------------------------------------------------

enum class Kind { None, Bahdanau, Dot, General, Concat, Location, LocalM, LocalP };
const std::vector<Kind> kAllKinds{Kind::None,   Kind::Bahdanau, Kind::Dot,    Kind::General,
                                  Kind::Concat, Kind::Location, Kind::LocalM, Kind::LocalP};
const char* kind_name(Kind kind) {
  switch (kind) {
    case Kind::None: return "none";
    case Kind::Bahdanau: return "bahdanau";
    case Kind::Dot: return "dot";
    case Kind::General: return "general";
    case Kind::Concat: return "concat";
    case Kind::Location: return "location";
    case Kind::LocalM: return "local-m";
    case Kind::LocalP: return "local-p";
  }
  return "?";
}
Kind parse_kind(const std::string& name) {
  for (Kind kind : kAllKinds)
    if (name == kind_name(kind)) return kind;
  HEED_CHECK(false, "translation: unknown attention kind '{}'; expected none, bahdanau, dot, general, concat, "
             "location, local-m, local-p or all", name);
  return Kind::None;
}
bool is_luong(Kind kind) { return kind != Kind::None && kind != Kind::Bahdanau; }

// The spec's task for each kind (docs/attention-spec.md §3).
std::string spec_task(Kind kind) {
  return kind == Kind::Location ? "reverse" : kind == Kind::LocalM ? "monotone" : "dates";
}

// ---- the model ------------------------------------------------------------------------------------------

struct ModelConfig {
  Kind kind = Kind::Bahdanau;
  std::string cell = "gru";  // gru or lstm, encoder and decoder
  std::string local_score = "general";
  int64_t src_vocab = 0, tgt_vocab = 0, embed = 32, hidden = 64, window = 3, local_p_window = 5;
  int64_t max_source_length = 0, max_target_length = 0;

  int64_t key_size() const { return 2 * hidden; }      // the bidirectional encoder's outputs
  int64_t decoder_size() const { return 2 * hidden; }  // = key_size, so the dot score applies
  int64_t attention_window() const { return kind == Kind::LocalP ? local_p_window : window; }

  heed::io::Metadata to_metadata() const {
    return {{"attention", kind_name(kind)},
            {"cell", cell},
            {"local_score", local_score},
            {"embed", std::to_string(embed)},
            {"hidden", std::to_string(hidden)},
            {"window", std::to_string(window)},
            {"local_p_window", std::to_string(local_p_window)},
            {"max_source_length", std::to_string(max_source_length)},
            {"max_target_length", std::to_string(max_target_length)}};
  }
  static ModelConfig from_metadata(const heed::io::Metadata& metadata, const std::string& path) {
    auto get = [&](const char* key) {
      auto it = metadata.find(key);
      HEED_CHECK(it != metadata.end(), "translation: '{}' has no '{}' in its metadata; was it written by translation?",
                 path, key);
      return it->second;
    };
    ModelConfig config;
    config.kind = parse_kind(get("attention"));
    config.cell = get("cell");
    config.local_score = get("local_score");
    // Sizes are checked as decimal integers: a damaged checkpoint is a clear error, not std::stoll's throw.
    auto size = [&](const char* key) {
      get(key);
      return heed::io::metadata_int(metadata, key, path);
    };
    config.embed = size("embed");
    config.hidden = size("hidden");
    config.window = size("window");
    config.local_p_window = size("local_p_window");
    config.max_source_length = size("max_source_length");
    config.max_target_length = size("max_target_length");
    return config;
  }
};

// The decoder's recurrent state; `feed` is Luong's attentional state h~_{t-1} (input feeding).
struct DecoderState {
  Tensor h, c, feed;
};

struct StepResult {
  Tensor logits;   // (N, V)
  Tensor weights;  // (N, S), undefined without attention
};

struct Encoded {
  nn::AttentionMemory memory;
  DecoderState state;
};

// Encoder: Embedding -> bidirectional GRU/LSTM (hidden per direction), outputs h̄_s (N, S, 2·hidden).
// Decoder: GRU/LSTM cell of 2·hidden units, started from tanh(W_b [h→_S ; h←_1]).
//   none      s_i = cell(E y_{i-1}, s_{i-1});                 logits = W_s tanh(W_o s_i)
//   bahdanau  c_i = attend(s_{i-1}); s_i = cell([E y_{i-1}; c_i], s_{i-1}); logits = W_s tanh(W_o [s_i; c_i])
//   Luong     h_t = cell([E y_{t-1}; h~_{t-1}], h_{t-1}); c_t = attend(h_t); h~_t = tanh(W_c [c_t; h_t]);
//             logits = W_s h~_t
class Seq2Seq : public nn::Module {
 public:
  explicit Seq2Seq(const ModelConfig& config) : Module("Seq2Seq"), config(config) {
    const int64_t e = config.embed, h = config.hidden, dk = config.key_size(), hd = config.decoder_size();
    HEED_CHECK(config.cell == "gru" || config.cell == "lstm", "translation: --cell must be gru or lstm, got '{}'",
               config.cell);
    src_embedding = register_module("src_embedding", std::make_shared<nn::Embedding>(config.src_vocab, e, Vocab::kPad));
    if (config.cell == "gru")
      gru = register_module("encoder",
                            std::make_shared<nn::GRU>(nn::GRUOptions(e, h).bidirectional(true).batch_first(true)));
    else
      lstm = register_module("encoder",
                             std::make_shared<nn::LSTM>(nn::LSTMOptions(e, h).bidirectional(true).batch_first(true)));
    bridge = register_module("bridge", std::make_shared<nn::Linear>(2 * h, hd));
    tgt_embedding = register_module("tgt_embedding", std::make_shared<nn::Embedding>(config.tgt_vocab, e, Vocab::kPad));
    const int64_t cell_input = e + (config.kind == Kind::None ? 0 : config.kind == Kind::Bahdanau ? dk : hd);
    if (config.cell == "gru")
      gru_cell = register_module("decoder", std::make_shared<nn::GRUCell>(cell_input, hd));
    else
      lstm_cell = register_module("decoder", std::make_shared<nn::LSTMCell>(cell_input, hd));
    if (config.kind == Kind::Bahdanau)
      bahdanau = register_module("attention", std::make_shared<nn::BahdanauAttention>(hd, dk, hd));
    if (is_luong(config.kind)) {
      nn::LuongAttentionOptions options(hd);
      options.key_size(dk).units(hd).window(config.attention_window()).max_source_length(config.max_source_length);
      const nn::LuongScore local = config.local_score == "dot" ? nn::LuongScore::Dot : nn::LuongScore::General;
      HEED_CHECK(config.local_score == "dot" || config.local_score == "general",
                 "translation: --local-score must be dot or general, got '{}'", config.local_score);
      switch (config.kind) {
        case Kind::Dot: options.score(nn::LuongScore::Dot); break;
        case Kind::General: options.score(nn::LuongScore::General); break;
        case Kind::Concat: options.score(nn::LuongScore::Concat); break;
        case Kind::Location: options.score(nn::LuongScore::Location); break;
        case Kind::LocalM: options.score(local).align(nn::LuongAlign::LocalMonotonic); break;
        default: options.score(local).align(nn::LuongAlign::LocalPredictive); break;
      }
      luong = register_module("attention", std::make_shared<nn::LuongAttention>(options));
    } else {
      pre_output = register_module(
          "pre_output", std::make_shared<nn::Linear>(hd + (config.kind == Kind::Bahdanau ? dk : 0), hd));
    }
    output = register_module("output", std::make_shared<nn::Linear>(hd, config.tgt_vocab));
  }

  // src Int64 (N, S) padded with <pad>, lengths Int64 (N).
  Encoded encode(const Tensor& src, const Tensor& lengths) {
    const Tensor x = src_embedding->forward(src);
    Tensor states, h_n;
    if (gru) {
      auto out = gru->forward(x, Tensor(), lengths);
      states = out.output, h_n = out.h_n;
    } else {
      auto out = lstm->forward(x, nn::LSTMState{}, lengths);
      states = out.output, h_n = out.h_n;
    }
    Encoded encoded;
    // h_n (2, N, H): the forward direction after each last real step, the backward one after step 0.
    encoded.state.h = heed::tanh(bridge->forward(heed::concat({heed::select(h_n, 0, 0), heed::select(h_n, 0, 1)}, 1)));
    const Tensor keep = nn::keep_mask_from_lengths(lengths, src.size(1));
    if (bahdanau) {
      encoded.memory = bahdanau->precompute(states, keep);
    } else if (luong) {
      encoded.memory = luong->precompute(states, keep);
      encoded.state.feed = heed::zeros({src.size(0), config.decoder_size()});
    } else {
      encoded.memory.values = states;
    }
    return encoded;
  }

  // One decoder step from the previous output characters prev Int64 (N); t is the step (from 0).
  StepResult step(const Tensor& prev, DecoderState& state, const nn::AttentionMemory& memory, int64_t t) {
    const Tensor embedded = tgt_embedding->forward(prev);
    StepResult result;
    if (config.kind == Kind::None) {
      advance(embedded, state);
      result.logits = output->forward(heed::tanh(pre_output->forward(state.h)));
    } else if (bahdanau) {
      auto [context, weights] = bahdanau->forward(state.h, memory);  // the query is s_{i-1}
      advance(heed::concat({embedded, context}, 1), state);
      result.logits = output->forward(heed::tanh(pre_output->forward(heed::concat({state.h, context}, 1))));
      result.weights = weights;
    } else {
      advance(heed::concat({embedded, state.feed}, 1), state);
      const nn::LuongOutput out = luong->forward(state.h, memory, t);  // the query is h_t
      state.feed = out.attentional;
      result.logits = output->forward(out.attentional);
      result.weights = out.weights;
    }
    return result;
  }

  // Teacher forcing: decoder inputs tgt_in Int64 (N, T) (<s> then the target) -> logits (N, T, V) and the
  // attention weights (N, T, S) (undefined without attention).
  std::pair<Tensor, Tensor> forward_teacher(const Tensor& src, const Tensor& lengths, const Tensor& tgt_in) {
    Encoded encoded = encode(src, lengths);
    std::vector<Tensor> logits, weights;
    for (int64_t t = 0; t < tgt_in.size(1); ++t) {
      StepResult r = step(heed::select(tgt_in, 1, t).contiguous(), encoded.state, encoded.memory, t);
      logits.push_back(r.logits);
      if (r.weights.defined()) weights.push_back(r.weights);
    }
    return {heed::stack(logits, 1), weights.empty() ? Tensor() : heed::stack(weights, 1)};
  }

  ModelConfig config;
  std::shared_ptr<nn::Embedding> src_embedding, tgt_embedding;
  std::shared_ptr<nn::GRU> gru;
  std::shared_ptr<nn::LSTM> lstm;
  std::shared_ptr<nn::Linear> bridge, pre_output, output;
  std::shared_ptr<nn::GRUCell> gru_cell;
  std::shared_ptr<nn::LSTMCell> lstm_cell;
  std::shared_ptr<nn::BahdanauAttention> bahdanau;
  std::shared_ptr<nn::LuongAttention> luong;

 private:
  void advance(const Tensor& input, DecoderState& state) {
    if (gru_cell) {
      state.h = gru_cell->forward(input, state.h);
    } else {
      nn::LSTMState next = lstm_cell->forward(input, nn::LSTMState{state.h, state.c});
      state.h = next.h, state.c = next.c;
    }
  }
};

// The model as a heed::nn::IncrementalDecoder, for greedy_decode and beam_search: it keeps the encoded
// batch and the decoder state, and reorders both when beam search selects rows.
class Seq2SeqDecoder : public nn::IncrementalDecoder {
 public:
  Seq2SeqDecoder(Seq2Seq& model, const Tensor& src, const Tensor& lengths)
      : model_(model), lengths_(lengths), steps_(src.size(1)) {
    Encoded encoded = model.encode(src, lengths);
    memory_ = encoded.memory;
    state_ = encoded.state;
  }
  Tensor step(const Tensor& tokens) override {
    Tensor logits;
    for (int64_t j = 0; j < tokens.size(1); ++j)
      logits = model_.step(heed::select(tokens, 1, j).contiguous(), state_, memory_, t_++).logits;
    return logits;
  }
  void select(const Tensor& rows) override {
    auto pick = [&](Tensor& x) {
      if (x.defined()) x = heed::index_select(x, 0, rows);
    };
    pick(state_.h), pick(state_.c), pick(state_.feed);
    pick(memory_.values), pick(memory_.projected_keys), pick(memory_.lengths), pick(lengths_);
    if (memory_.keep_mask.defined()) memory_.keep_mask = nn::keep_mask_from_lengths(lengths_, steps_);
  }

 private:
  Seq2Seq& model_;
  nn::AttentionMemory memory_;
  DecoderState state_;
  Tensor lengths_;
  int64_t steps_, t_ = 0;
};

// ---- batches --------------------------------------------------------------------------------------------

struct Example {
  std::vector<int64_t> src, tgt;  // ids, without <s> / </s>
};

struct Batch {
  Tensor src, lengths, tgt_in, tgt_out;  // (N, S), (N), (N, T) <s> + target, (N, T) target + </s>
};

Batch make_batch(const std::vector<Example>& examples, const std::vector<std::size_t>& rows) {
  std::vector<std::vector<int64_t>> src, in, out;
  for (std::size_t r : rows) {
    const Example& e = examples[r];
    src.push_back(e.src);
    in.push_back({Vocab::kBos});
    in.back().insert(in.back().end(), e.tgt.begin(), e.tgt.end());
    out.push_back(e.tgt);
    out.back().push_back(Vocab::kEos);
  }
  const heed::data::PaddedBatch source = heed::data::pad_sequences(src, 0, Vocab::kPad);
  return {source.ids, source.lengths, heed::data::pad_sequences(in, 0, Vocab::kPad).ids,
          heed::data::pad_sequences(out, 0, Vocab::kPad).ids};
}

// ---- one task's data ------------------------------------------------------------------------------------

struct TaskData {
  std::string name, description;
  std::vector<Pair> train, test;
  Vocab src_vocab, tgt_vocab;
  std::vector<Example> train_examples, test_examples;
  int64_t max_source_length = 0, max_target_length = 0;
};

std::vector<Example> encode_pairs(const std::vector<Pair>& pairs, const Vocab& src, const Vocab& tgt) {
  std::vector<Example> out;
  for (const Pair& p : pairs) out.push_back({src.encode(p.source), tgt.encode(p.target)});
  return out;
}

TaskData make_task(const std::string& name, const std::string& pairs_path, int64_t train_size, int64_t test_size,
                   int64_t max_len, uint64_t seed) {
  TaskData data;
  data.name = name;
  if (name == "pairs") {
    int64_t skipped = 0;
    std::vector<Pair> all = translation::read_pairs(pairs_path, max_len, &skipped);
    heed::Generator gen(seed);
    heed::data::shuffle(all, gen);
    const auto total = static_cast<int64_t>(all.size());
    const int64_t test = total < 2 ? 0 : std::max<int64_t>(1, std::min<int64_t>(test_size, total / 10));
    const int64_t train = std::min<int64_t>(train_size, total - test);
    data.test.assign(all.begin(), all.begin() + test);
    data.train.assign(all.begin() + test, all.begin() + test + train);
    if (data.test.empty()) data.test = data.train;  // one pair: evaluate on it
    data.description = fmt::format("{} ({} pairs of at most {} characters, {} longer ones left out)", pairs_path,
                                   total, max_len, skipped);
  } else {
    HEED_CHECK(name == "dates" || name == "reverse" || name == "monotone",
               "translation: unknown --task '{}'; expected dates, reverse, monotone or spec", name);
    heed::Generator gen(seed + (name == "dates" ? 0 : name == "reverse" ? 1000 : 2000));
    auto next = [&]() {
      return name == "dates" ? translation::random_date(gen)
             : name == "reverse" ? translation::random_reversal(gen)
                                 : translation::random_transliteration(gen);
    };
    std::unordered_set<std::string> seen;
    for (int64_t i = 0; i < train_size; ++i) {
      data.train.push_back(next());
      seen.insert(data.train.back().source);
    }
    // The test set holds no source seen in training.
    for (int64_t tries = 0; static_cast<int64_t>(data.test.size()) < test_size && tries < 100 * test_size; ++tries) {
      Pair p = next();
      if (!seen.count(p.source)) seen.insert(p.source), data.test.push_back(std::move(p));
    }
    data.description = name == "dates"      ? "generated dates, 11 formats, 1950-2049 -> ISO 8601"
                       : name == "reverse" ? "10 random letters -> reversed"
                                           : "transliteration, 4-12 letters, each -> 1 or 2 letters";
  }
  std::vector<std::string> sources, targets;
  for (const Pair& p : data.train) sources.push_back(p.source), targets.push_back(p.target);
  data.src_vocab = Vocab::from_texts(sources);
  data.tgt_vocab = Vocab::from_texts(targets);
  data.train_examples = encode_pairs(data.train, data.src_vocab, data.tgt_vocab);
  data.test_examples = encode_pairs(data.test, data.src_vocab, data.tgt_vocab);
  for (const auto* set : {&data.train_examples, &data.test_examples})
    for (const Example& e : *set) {
      data.max_source_length = std::max<int64_t>(data.max_source_length, static_cast<int64_t>(e.src.size()));
      data.max_target_length = std::max<int64_t>(data.max_target_length, static_cast<int64_t>(e.tgt.size()));
    }
  return data;
}

// ---- training -------------------------------------------------------------------------------------------

struct TrainOptions {
  int epochs = 8;
  int64_t batch = 64;
  double lr = 3e-3, clip = 5.0;
  uint64_t seed = 1;
};

double train(Seq2Seq& model, const TaskData& data, const TrainOptions& options, const std::string& label) {
  heed::optim::Adam optimizer(model.parameters(), heed::optim::AdamOptions(options.lr));
  heed::Generator gen(options.seed + 7);
  const auto n = data.train_examples.size();
  std::vector<std::size_t> order(n);
  for (std::size_t i = 0; i < n; ++i) order[i] = i;
  const auto batches =
      static_cast<int64_t>((n + static_cast<std::size_t>(options.batch) - 1) / static_cast<std::size_t>(options.batch));
  const auto start = std::chrono::steady_clock::now();
  model.train();
  for (int epoch = 1; epoch <= options.epochs; ++epoch) {
    // Decay the learning rate to a tenth over the last half of training.
    const double progress = static_cast<double>(epoch - 1) / std::max(1, options.epochs - 1);
    optimizer.set_lr(options.lr * (progress <= 0.5 ? 1.0 : std::pow(0.1, (progress - 0.5) / 0.5)));
    heed::data::shuffle(order, gen);
    heed::ProgressBar bar(batches, fmt::format("{:<9} epoch {}/{}", label, epoch, options.epochs));
    double loss_sum = 0, correct = 0, count = 0;
    for (int64_t b = 0; b < batches; ++b) {
      const std::size_t first = static_cast<std::size_t>(b * options.batch);
      const std::vector<std::size_t> rows(
          order.begin() + static_cast<std::ptrdiff_t>(first),
          order.begin() + static_cast<std::ptrdiff_t>(std::min(n, first + static_cast<std::size_t>(options.batch))));
      const Batch batch = make_batch(data.train_examples, rows);
      optimizer.zero_grad();
      auto [logits, weights] = model.forward_teacher(batch.src, batch.lengths, batch.tgt_in);
      const Tensor loss =
          heed::cross_entropy(logits, batch.tgt_out, heed::CrossEntropyOptions().ignore_index(Vocab::kPad));
      loss.backward();
      heed::optim::clip_grad_norm_(model.parameters(), options.clip);
      optimizer.step();
      {
        heed::NoGradGuard no_grad;
        const auto predicted = heed::argmax(logits, 2).to_vector<int64_t>();
        const auto target = batch.tgt_out.to_vector<int64_t>();
        for (std::size_t i = 0; i < target.size(); ++i)
          if (target[i] != Vocab::kPad) correct += predicted[i] == target[i], count += 1;
      }
      loss_sum += loss.item();
      bar.update(1, {{"loss", loss_sum / static_cast<double>(b + 1)}, {"char_acc", correct / std::max(1.0, count)}});
    }
    bar.finish();
  }
  model.eval();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// ---- evaluation -----------------------------------------------------------------------------------------

struct Evaluation {
  double greedy_exact = 0, beam_exact = 0, char_accuracy = 0;
  double alignment = -1;  // the task's alignment measure (fraction), -1 when it has none
  std::string alignment_name;
  std::vector<std::vector<int64_t>> greedy;  // per test example, the output ids (without </s>)
  double seconds = 0;
};

std::vector<std::vector<int64_t>> strip_eos(const Tensor& tokens, int64_t skip) {
  const int64_t b = tokens.size(0), l = tokens.size(1);
  const auto ids = tokens.contiguous().to_vector<int64_t>();
  std::vector<std::vector<int64_t>> rows(static_cast<std::size_t>(b));
  for (int64_t i = 0; i < b; ++i)
    for (int64_t j = skip; j < l; ++j) {
      const int64_t id = ids[static_cast<std::size_t>(i * l + j)];
      if (id == Vocab::kEos || id == Vocab::kPad) break;
      rows[static_cast<std::size_t>(i)].push_back(id);
    }
  return rows;
}

// Attention weights (T + 1, S) of each example for the given output ids (teacher forcing: exactly what the
// decoder attends to while producing them, </s> last). Empty without attention.
std::vector<Tensor> alignments(Seq2Seq& model, const std::vector<Example>& examples,
                               const std::vector<std::vector<int64_t>>& outputs) {
  heed::NoGradGuard no_grad;
  std::vector<Tensor> out;
  if (model.config.kind == Kind::None) return out;
  for (std::size_t first = 0; first < examples.size(); first += 256) {
    std::vector<Example> chunk;
    std::vector<std::size_t> rows;
    for (std::size_t i = first; i < std::min(examples.size(), first + 256); ++i)
      rows.push_back(chunk.size()), chunk.push_back({examples[i].src, outputs[i]});
    const Batch batch = make_batch(chunk, rows);
    const Tensor weights = model.forward_teacher(batch.src, batch.lengths, batch.tgt_in).second;
    for (std::size_t i = 0; i < chunk.size(); ++i)
      out.push_back(heed::narrow(heed::narrow(heed::select(weights, 0, static_cast<int64_t>(i)), 0, 0,
                                              static_cast<int64_t>(chunk[i].tgt.size()) + 1),
                                 1, 0, static_cast<int64_t>(chunk[i].src.size()))
                        .contiguous());
  }
  return out;
}

Evaluation evaluate(Seq2Seq& model, const TaskData& data, int64_t beam_width, double length_penalty) {
  heed::NoGradGuard no_grad;
  const auto start = std::chrono::steady_clock::now();
  Evaluation ev;
  const auto& examples = data.test_examples;
  const int64_t max_new = data.max_target_length + 5;
  std::vector<std::vector<int64_t>> beam;
  for (std::size_t first = 0; first < examples.size(); first += 256) {
    std::vector<std::size_t> rows;
    for (std::size_t i = first; i < std::min(examples.size(), first + 256); ++i) rows.push_back(i);
    const Batch batch = make_batch(examples, rows);
    const auto b = static_cast<int64_t>(rows.size());
    const Tensor prompt = heed::full({b, 1}, static_cast<double>(Vocab::kBos), heed::DType::Int64);
    {
      Seq2SeqDecoder decoder(model, batch.src, batch.lengths);
      for (auto& row : strip_eos(nn::greedy_decode(decoder, prompt, max_new, Vocab::kEos), 1)) ev.greedy.push_back(row);
    }
    if (beam_width > 0) {
      Seq2SeqDecoder decoder(model, batch.src, batch.lengths);
      const nn::BeamSearchResult result = nn::beam_search(decoder, prompt,
                                                          nn::BeamSearchOptions()
                                                              .beam_width(beam_width)
                                                              .max_new_tokens(max_new)
                                                              .eos(Vocab::kEos)
                                                              .length_penalty(length_penalty));
      for (const auto& hyps : result.hypotheses) {
        std::vector<int64_t> best = hyps.empty() ? std::vector<int64_t>{} : hyps.front().tokens;
        if (!best.empty() && best.back() == Vocab::kEos) best.pop_back();
        beam.push_back(best);
      }
    }
  }
  double exact = 0, beam_exact = 0, chars_right = 0, chars = 0;
  for (std::size_t i = 0; i < examples.size(); ++i) {
    const auto& ref = examples[i].tgt;
    const auto& got = ev.greedy[i];
    exact += got == ref;
    if (beam_width > 0) beam_exact += beam[i] == ref;
    for (std::size_t j = 0; j < std::min(ref.size(), got.size()); ++j) chars_right += ref[j] == got[j];
    chars += static_cast<double>(std::max(ref.size(), got.size()));
  }
  const auto n = static_cast<double>(examples.size());
  ev.greedy_exact = exact / n;
  ev.beam_exact = beam_width > 0 ? beam_exact / n : -1;
  ev.char_accuracy = chars_right / std::max(1.0, chars);

  // How the attention lines up, on the reference outputs.
  std::vector<std::vector<int64_t>> refs;
  for (const auto& e : examples) refs.push_back(e.tgt);
  const std::vector<Tensor> weights = alignments(model, examples, refs);
  if (!weights.empty() && data.name != "pairs") {
    double hits = 0, total = 0;
    for (std::size_t i = 0; i < examples.size(); ++i) {
      const Tensor argmax = heed::argmax(weights[i], 1);
      const auto where = argmax.to_vector<int64_t>();
      const auto s = static_cast<double>(examples[i].src.size()), t_len = static_cast<double>(examples[i].tgt.size());
      const Pair& p = data.test[i];
      for (std::size_t t = 0; t < examples[i].tgt.size(); ++t) {
        const auto a = static_cast<double>(where[t]);
        if (data.name == "dates") {
          if (t >= 4) break;  // the year digits
          hits += where[t] >= p.year_begin && where[t] < p.year_begin + p.year_length;
        } else if (data.name == "reverse") {
          hits += a == s - 1 - static_cast<double>(t);
        } else {
          hits += std::abs(a - static_cast<double>(t) * s / t_len) <= 3.0;
        }
        total += 1;
      }
    }
    ev.alignment = hits / std::max(1.0, total);
  }
  ev.alignment_name = data.name == "dates"     ? "year digit -> input year"
                      : data.name == "reverse" ? "argmax = mirrored position"
                      : data.name == "monotone" ? "|argmax - t*S/T| <= 3"
                                                : "";
  ev.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return ev;
}

// ---- pictures -------------------------------------------------------------------------------------------

std::string char_label(const std::string& c) { return c == " " ? "_" : c; }
std::vector<std::string> char_labels(const std::vector<int64_t>& ids, const Vocab& vocab, bool eos) {
  std::vector<std::string> labels;
  for (int64_t id : ids) labels.push_back(char_label(vocab.token(id)));
  if (eos) labels.push_back("</s>");
  return labels;
}

heed::io::HeatmapPanel alignment_panel(const Tensor& weights, const std::vector<int64_t>& source,
                                       const std::vector<int64_t>& output, const Vocab& src_vocab,
                                       const Vocab& tgt_vocab, const std::string& title) {
  return {weights, char_labels(output, tgt_vocab, true), char_labels(source, src_vocab, false), title};
}

heed::io::HeatmapOptions picture_options() {
  heed::io::HeatmapOptions options;
  options.vmin(0.0);
  options.vmax(1.0);
  options.text_scale(1);
  options.cell(12);
  return options;
}

// ---- checkpoints ----------------------------------------------------------------------------------------

std::string checkpoint_path(const std::string& dir, const std::string& task, Kind kind) {
  return fmt::format("{}/translation-{}-{}.safetensors", dir, task, kind_name(kind));
}

struct Loaded {
  std::shared_ptr<Seq2Seq> model;
  Vocab src_vocab, tgt_vocab;
  heed::io::Metadata metadata;
};

Loaded load_checkpoint(const std::string& path) {
  HEED_CHECK(std::filesystem::exists(path),
             "translation: no checkpoint at '{}'; train first (run without --predict) with the same --out, --task "
             "and --attention", path);
  const heed::io::SafetensorsFile file = heed::io::load_safetensors(path);
  auto get = [&](const char* key) {
    auto it = file.metadata.find(key);
    HEED_CHECK(it != file.metadata.end(), "translation: '{}' has no '{}' in its metadata; was it written by "
               "translation?", path, key);
    return it->second;
  };
  Loaded loaded{nullptr, Vocab::from_chars(get("src_vocab")), Vocab::from_chars(get("tgt_vocab")), file.metadata};
  ModelConfig config = ModelConfig::from_metadata(file.metadata, path);
  config.src_vocab = loaded.src_vocab.size();
  config.tgt_vocab = loaded.tgt_vocab.size();
  loaded.model = std::make_shared<Seq2Seq>(config);
  loaded.model->load_state_dict(file.tensors);
  loaded.model->eval();
  return loaded;
}

// ---- --predict ------------------------------------------------------------------------------------------

int predict(const std::string& dir, const std::string& task, const std::vector<Kind>& kinds, const std::string& text,
            int64_t beam_width, double length_penalty) {
  std::vector<heed::io::HeatmapPanel> panels;
  for (Kind kind : kinds) {
    const std::string path = checkpoint_path(dir, task == "spec" ? spec_task(kind) : task, kind);
    Loaded loaded = load_checkpoint(path);
    Seq2Seq& model = *loaded.model;
    std::vector<int64_t> src = loaded.src_vocab.encode(text);
    HEED_CHECK(!src.empty(), "translation: --predict needs a non-empty input");
    if (model.config.kind == Kind::Location)
      HEED_CHECK(static_cast<int64_t>(src.size()) <= model.config.max_source_length,
                 "translation: the location model reads at most {} characters, '{}' has {}",
                 model.config.max_source_length, text, src.size());
    int64_t unknown = 0;
    for (int64_t id : src) unknown += id == Vocab::kUnk;
    const auto s = static_cast<int64_t>(src.size());
    const Tensor src_t = heed::index_tensor(src, {1, s}), lengths = heed::index_tensor({s}, {1});
    const Tensor prompt = heed::full({1, 1}, static_cast<double>(Vocab::kBos), heed::DType::Int64);
    const int64_t max_new = model.config.max_target_length + 5;
    std::vector<int64_t> greedy;
    nn::BeamSearchResult beams;
    {
      heed::NoGradGuard no_grad;
      Seq2SeqDecoder decoder(model, src_t, lengths);
      greedy = strip_eos(nn::greedy_decode(decoder, prompt, max_new, Vocab::kEos), 1).front();
      Seq2SeqDecoder beam_decoder(model, src_t, lengths);
      beams = nn::beam_search(beam_decoder, prompt,
                              nn::BeamSearchOptions()
                                  .beam_width(std::max<int64_t>(1, beam_width))
                                  .max_new_tokens(max_new)
                                  .eos(Vocab::kEos)
                                  .length_penalty(length_penalty));
    }
    auto meta = [&](const char* key) {
      auto it = loaded.metadata.find(key);
      return it == loaded.metadata.end() ? std::string("?") : it->second;
    };
    fmt::print("== {} ({}, trained on {}: test exact match {})\n", kind_name(kind), path, meta("task"),
               meta("test_exact_match"));
    fmt::print("input:  \"{}\"{}\n", text,
               unknown ? fmt::format("  ({} characters unknown to the model)", unknown) : "");
    fmt::print("greedy: \"{}\"\n", loaded.tgt_vocab.decode(greedy));
    fmt::print("beam (width {}):\n", std::max<int64_t>(1, beam_width));
    for (const auto& h : beams.hypotheses.front())
      fmt::print("  {:<24} log p = {:8.4f}   score = {:8.4f}\n",
                 fmt::format("\"{}\"", loaded.tgt_vocab.decode(h.tokens)), h.log_prob, h.score);
    if (model.config.kind == Kind::None) {
      fmt::print("(no attention, so no alignment)\n\n");
      continue;
    }
    const Tensor weights = alignments(model, {{src, greedy}}, {greedy}).front();  // (T + 1, S)
    const auto w = weights.to_vector<float>();
    const std::vector<std::string> in_chars = translation::utf8_chars(text);
    fmt::print("alignment of the greedy output (rows: output characters; columns: input characters; . - + # = "
               "weight 0.1 / 0.3 / 0.5 / 0.7 and up):\n      ");
    for (const auto& c : in_chars) fmt::print("{}", c);
    fmt::print("\n");
    const auto out_labels = char_labels(greedy, loaded.tgt_vocab, true);
    for (std::size_t t = 0; t < out_labels.size(); ++t) {
      std::string row;
      for (int64_t j = 0; j < s; ++j) {
        const float v = w[t * static_cast<std::size_t>(s) + static_cast<std::size_t>(j)];
        row += v >= 0.7f ? '#' : v >= 0.5f ? '+' : v >= 0.3f ? '-' : v >= 0.1f ? '.' : ' ';
      }
      fmt::print("{:>5} {}\n", out_labels[t], row);
    }
    fmt::print("\n");
    panels.push_back(
        alignment_panel(weights, src, greedy, loaded.src_vocab, loaded.tgt_vocab,
                        fmt::format("{}: \"{}\" -> \"{}\"", kind_name(kind), text, loaded.tgt_vocab.decode(greedy))));
  }
  if (!panels.empty()) {
    const std::string png = dir + "/predict.png";
    heed::io::save_heatmap_png(png, panels, "attention while decoding (rows: output, columns: input)",
                               picture_options());
    fmt::print("wrote {}\n", png);
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"heed translation: seq2seq with attention (Bahdanau, Luong global and local) on dates or your pairs"};
  ModelConfig config;
  TrainOptions train_options;
  std::vector<std::string> attention{"all"};  // --attention kinds, comma-separated
  std::string task = "spec", pairs_path, out_dir = ".", sentence;
  int64_t train_size = 8000, test_size = 1000, beam_width = 4, max_len = 40;
  double length_penalty = 0.6;
  app.add_option("--attention", attention,
                 "comma-separated kinds (none, bahdanau, dot, general, concat, location, local-m, local-p) or all")
      ->delimiter(',');
  app.add_option("--task", task,
                 "dates, reverse, monotone, or spec: each kind on the spec's task for it (location: reverse, "
                 "local-m: monotone, both also on dates; the rest: dates)");
  app.add_option("--pairs", pairs_path,
                 "train on english<TAB>french[<TAB>attribution] lines (Tatoeba / Anki eng-fra.txt)");
  app.add_option("--max-len", max_len, "with --pairs: leave out pairs with a side longer than this (characters)")
      ->check(CLI::Range(1, 100000));
  app.add_option("--epochs", train_options.epochs, "training epochs per kind")->check(CLI::PositiveNumber);
  app.add_option("--train-size", train_size, "training pairs per task")->check(CLI::Range(1, 100000000));
  app.add_option("--test-size", test_size, "held-out test pairs per task")->check(CLI::Range(1, 10000000));
  app.add_option("--batch", train_options.batch, "batch size")->check(CLI::PositiveNumber);
  app.add_option("--lr", train_options.lr, "Adam learning rate (decays to a tenth over the second half)")
      ->check(CLI::PositiveNumber);
  app.add_option("--hidden", config.hidden, "encoder units per direction (the decoder has twice as many)")
      ->check(CLI::PositiveNumber);
  app.add_option("--embed", config.embed, "character embedding size")->check(CLI::PositiveNumber);
  app.add_option("--cell", config.cell, "gru or lstm (encoder and decoder)")->check(CLI::IsMember({"gru", "lstm"}));
  app.add_option("--window", config.window, "local-m's half window D")->check(CLI::PositiveNumber);
  app.add_option("--local-p-window", config.local_p_window, "local-p's half window D (sigma = D/2)")
      ->check(CLI::PositiveNumber);
  app.add_option("--local-score", config.local_score, "score of the local kinds: dot or general")
      ->check(CLI::IsMember({"dot", "general"}));
  app.add_option("--beam", beam_width, "beam width for evaluation and --predict; 0 = greedy only")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--length-penalty", length_penalty,
                 "beam search's GNMT length penalty alpha: score = log p / ((5 + length) / 6)^alpha; 0 = raw log p")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--seed", train_options.seed, "random seed (data, initialization, shuffling)");
  app.add_option("--out", out_dir, "directory for the checkpoints and the PNGs");
  app.add_option("--predict", sentence, "load the checkpoint(s) from --out and translate this text");
  CLI11_PARSE(app, argc, argv);

  try {
    if (!pairs_path.empty()) task = "pairs";
    std::vector<Kind> kinds;
    if (attention == std::vector<std::string>{"all"}) {
      kinds = kAllKinds;
    } else {
      for (const auto& name : attention) kinds.push_back(parse_kind(name));
    }
    HEED_CHECK(!kinds.empty(), "translation: --attention names no kind");
    if (app.count("--predict") > 0) {
      if (app.count("--attention") == 0) kinds = {Kind::Bahdanau};
      return predict(out_dir, task == "spec" ? "dates" : task, kinds, sentence, beam_width, length_penalty);
    }
    std::filesystem::create_directories(out_dir);

    // Every (task, kind) run, the tasks' data made once.
    std::vector<std::pair<std::string, Kind>> runs;
    for (Kind kind : kinds) {
      if (task != "spec") {
        runs.emplace_back(task, kind);
        continue;
      }
      runs.emplace_back(spec_task(kind), kind);
      if (spec_task(kind) != "dates") runs.emplace_back("dates", kind);
    }
    std::map<std::string, TaskData> tasks;
    for (const auto& [name, kind] : runs)
      if (!tasks.count(name)) {
        tasks.emplace(name, make_task(name, pairs_path, train_size, test_size, max_len, train_options.seed));
        const TaskData& d = tasks.at(name);
        fmt::print("task {}: {}; {} train / {} test, vocabularies {} -> {} characters, lengths <= {} -> <= {}\n",
                   name, d.description, d.train.size(), d.test.size(), d.src_vocab.size() - Vocab::kSpecials,
                   d.tgt_vocab.size() - Vocab::kSpecials, d.max_source_length, d.max_target_length);
        fmt::print("  e.g. \"{}\" -> \"{}\"\n", d.train.front().source, d.train.front().target);
      }
    fmt::print("\n");

    struct Result {
      std::string task;
      Kind kind;
      int64_t parameters;
      double train_seconds;
      Evaluation eval;
    };
    std::vector<Result> results;
    std::vector<heed::io::HeatmapPanel> overview;
    const auto start = std::chrono::steady_clock::now();
    for (const auto& [name, kind] : runs) {
      const TaskData& data = tasks.at(name);
      ModelConfig c = config;
      c.kind = kind;
      c.src_vocab = data.src_vocab.size();
      c.tgt_vocab = data.tgt_vocab.size();
      c.max_source_length = data.max_source_length;
      c.max_target_length = data.max_target_length;
      heed::manual_seed(train_options.seed);
      Seq2Seq model(c);
      const std::string label =
          task == "spec" && name != "dates" ? fmt::format("{}/{}", kind_name(kind), name) : kind_name(kind);
      fmt::print("== {} on {} ({} parameters, {} encoder {}x2, decoder {})\n", kind_name(kind), name,
                 model.num_parameters(), c.cell, c.hidden, c.decoder_size());
      const double seconds = train(model, data, train_options, label);
      Evaluation ev = evaluate(model, data, beam_width, length_penalty);
      fmt::print("   test exact match: greedy {:.1f}%{}, character accuracy {:.1f}%{}  (eval {:.1f}s)\n\n",
                 100 * ev.greedy_exact, beam_width > 0 ? fmt::format(", beam {:.1f}%", 100 * ev.beam_exact) : "",
                 100 * ev.char_accuracy,
                 ev.alignment >= 0 ? fmt::format(", {}: {:.1f}%", ev.alignment_name, 100 * ev.alignment) : "",
                 ev.seconds);

      heed::io::Metadata metadata = c.to_metadata();
      metadata["src_vocab"] = data.src_vocab.chars();
      metadata["tgt_vocab"] = data.tgt_vocab.chars();
      metadata["task"] = name;
      metadata["epochs"] = std::to_string(train_options.epochs);
      metadata["train_size"] = std::to_string(data.train.size());
      metadata["test_exact_match"] = fmt::format("{:.4f}", ev.greedy_exact);
      heed::io::save_safetensors(checkpoint_path(out_dir, name, kind), model.state_dict(), metadata);

      if (kind != Kind::None) {
        // 5 test examples, each a different date format when there are several.
        std::vector<std::size_t> picked;
        std::unordered_set<std::string> formats;
        for (std::size_t i = 0; i < data.test.size() && picked.size() < 5; ++i)
          if (formats.insert(data.test[i].format).second) picked.push_back(i);
        for (std::size_t i = 0; i < data.test.size() && picked.size() < 5; ++i)
          if (std::find(picked.begin(), picked.end(), i) == picked.end()) picked.push_back(i);
        std::vector<Example> shown;
        std::vector<std::vector<int64_t>> outputs;
        for (std::size_t i : picked) shown.push_back(data.test_examples[i]), outputs.push_back(ev.greedy[i]);
        const std::vector<Tensor> weights = alignments(model, shown, outputs);
        std::vector<heed::io::HeatmapPanel> panels;
        for (std::size_t k = 0; k < picked.size(); ++k) {
          const Pair& p = data.test[picked[k]];
          const std::string got = data.tgt_vocab.decode(outputs[k]);
          panels.push_back(
              alignment_panel(weights[k], shown[k].src, outputs[k], data.src_vocab, data.tgt_vocab,
                              fmt::format("\"{}\" -> \"{}\"{}", p.source, got, got == p.target ? "" : " (wrong)")));
        }
        heed::io::save_heatmap_png(
            fmt::format("{}/alignment-{}-{}.png", out_dir, name, kind_name(kind)), panels,
            fmt::format("{} attention on {} (rows: output, columns: input)", kind_name(kind), name), picture_options());
        // The overview: the longest of the five (dates: the one with the most to skip).
        std::size_t longest = 0;
        for (std::size_t k = 1; k < shown.size(); ++k)
          if (shown[k].src.size() > shown[longest].src.size()) longest = k;
        heed::io::HeatmapPanel first = panels[longest];
        first.title = fmt::format("{} ({}): {}", kind_name(kind), name, first.title);
        overview.push_back(first);
      }
      results.push_back({name, kind, model.num_parameters(), seconds, ev});
    }
    const double total_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (!overview.empty())
      heed::io::save_heatmap_png(out_dir + "/alignments.png", overview,
                                 "attention weights (rows: output, columns: input)",
                                 picture_options());

    fmt::print("test set results ({} epochs of {} pairs per run, {} {}x2 encoder, greedy and beam width {}):\n",
               train_options.epochs, train_size, config.cell, config.hidden, beam_width);
    fmt::print("  {:<9} {:<9} {:>7} {:>7} {:>9}  {:>9}  {:<27} {:>7}\n", "attention", "task", "greedy", "beam",
               "char acc", "alignment", "(alignment measure)", "train");
    for (const Result& r : results)
      fmt::print(
          "  {:<9} {:<9} {:>6.1f}% {:>7} {:>8.1f}%  {:>9}  {:<27} {:>6.0f}s\n", kind_name(r.kind), r.task,
          100 * r.eval.greedy_exact, r.eval.beam_exact >= 0 ? fmt::format("{:.1f}%", 100 * r.eval.beam_exact) : "-",
          100 * r.eval.char_accuracy, r.eval.alignment >= 0 ? fmt::format("{:.1f}%", 100 * r.eval.alignment) : "-",
          r.eval.alignment >= 0 ? r.eval.alignment_name : "", r.train_seconds);
    fmt::print("\nwrote {}/translation-<task>-<kind>.safetensors, {}/alignment-<task>-<kind>.png{}\n", out_dir, out_dir,
               overview.empty() ? "" : fmt::format(", {}/alignments.png", out_dir));
    const std::string example = task == "pairs" ? tasks.begin()->second.test.front().source
                                : tasks.count("dates") ? "3rd of may 79"
                                                       : tasks.begin()->second.test.front().source;
    Kind suggested = results.front().kind;
    for (const Result& r : results)
      if (r.kind == Kind::Bahdanau) suggested = r.kind;
    fmt::print("try:  translation --out {} --task {} --attention {} --predict \"{}\"\n", out_dir,
               task == "spec" ? "dates" : task, kind_name(suggested), example);
    fmt::print("\n{} runs in {}\n", results.size(), heed::format_duration(total_seconds));
  } catch (const heed::Error& e) {
    fmt::print(stderr, "error: {}\n", e.what());
    return 1;
  } catch (const std::exception& e) {  // anything else (e.g. out of memory): a message, not std::terminate
    fmt::print(stderr, "error: {}\n", e.what());
    return 1;
  }
  return 0;
}
