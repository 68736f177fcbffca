// heed/nn/decoding.hpp — greedy decoding, beam search and sampling over any autoregressive model.
//
// A model takes part through an IncrementalDecoder: step(tokens) feeds new tokens (B, T) — the
// prompt first, then one token per row — and returns the logits of the next token after the last fed
// position, (B, V). A cached implementation (Seq2SeqTransformer / TransformerLM ::incremental_decoder)
// keeps each layer's keys and values, so a step costs work proportional to the current length instead
// of a re-run of the prefix; select(rows) keeps the given rows of every cache (beam search reorders and
// duplicates hypotheses). Your own model plugs in by subclassing IncrementalDecoder, or with
// FunctionDecoder (two lambdas), or — without a cache — with PrefixDecoder, which re-runs a
// full-sequence function on the growing prefix (the reference the cached decoders are tested against).
//
// The algorithms run under NoGradGuard and return Int64 token tensors:
//   greedy_decode   argmax at every step
//   sample          softmax(logits / temperature), optionally restricted to the top_k most likely tokens
//                   and / or the smallest set whose probability reaches top_p (nucleus), drawn from a
//                   heed::Generator (reproducible)
//   beam_search     keeps beam_width hypotheses per row, scored by sum(log p) / lp(len) with GNMT's
//                   length penalty lp(len) = ((5 + len) / 6)^alpha (Wu et al. 2016, used by the
//                   Transformer paper with alpha = 0.6; alpha = 0 is the raw log-probability); a
//                   hypothesis is finished at eos; the search stops when every row has beam_width
//                   finished hypotheses or after max_new_tokens (unfinished ones then compete too).
// Rows that emitted eos keep producing eos (greedy / sample); decoding stops early once every row has.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "heed/options.hpp"
#include "heed/tensor.hpp"

namespace heed {
class Generator;
}

namespace heed::nn {

/// The interface the decoding algorithms drive (see the top of this file).
class IncrementalDecoder {
 public:
  virtual ~IncrementalDecoder() = default;
  /// tokens (B, T) Int64, T >= 1 -> logits (B, V) for the position after the last token.
  virtual Tensor step(const Tensor& tokens) = 0;
  /// Keep rows `rows` (Int64 (B'), values in [0, B)) of the state, in that order.
  virtual void select(const Tensor& rows) = 0;
};

/// An IncrementalDecoder from two functions.
class FunctionDecoder : public IncrementalDecoder {
 public:
  /// `step` and `select` implement step() and select().
  FunctionDecoder(std::function<Tensor(const Tensor&)> step, std::function<void(const Tensor&)> select)
      : step_(std::move(step)), select_(std::move(select)) {}
  Tensor step(const Tensor& tokens) override { return step_(tokens); }
  void select(const Tensor& rows) override { select_(rows); }

 private:
  std::function<Tensor(const Tensor&)> step_;
  std::function<void(const Tensor&)> select_;
};

/// No cache: keeps the token history and calls logits_fn(all tokens (B, T), source_rows (B) Int64) ->
/// (B, T, V) at every step, returning the last position. source_rows[b] is the original row (of the
/// first step's batch) that row b descends from, for models that condition on per-row inputs.
class PrefixDecoder : public IncrementalDecoder {
 public:
  /// (all tokens (B, T), source_rows (B)) -> logits (B, T, V).
  using LogitsFn = std::function<Tensor(const Tensor& tokens, const Tensor& source_rows)>;
  /// Decodes with logits_fn re-run on the whole prefix at each step.
  explicit PrefixDecoder(LogitsFn logits_fn) : logits_fn_(std::move(logits_fn)) {}
  Tensor step(const Tensor& tokens) override;
  void select(const Tensor& rows) override;

 private:
  LogitsFn logits_fn_;
  Tensor history_;  ///< (B, T) Int64
  Tensor rows_;     ///< (B) Int64
};

/// prompt (B, T0) -> (B, T0 + n), n <= max_new_tokens. eos < 0: none.
Tensor greedy_decode(IncrementalDecoder& decoder, const Tensor& prompt, int64_t max_new_tokens, int64_t eos = -1);

/// Settings of sample() (and TransformerLM::generate). Setters chain; the same names without arguments read.
struct SamplingOptions {
  HEED_ARG(double, temperature) = 1.0;  ///< > 0; 0 means greedy
  HEED_ARG(int64_t, top_k) = 0;  ///< 0: no limit
  HEED_ARG(double, top_p) = 1.0;  ///< in (0, 1]; 1: no limit
  HEED_ARG(int64_t, eos) = -1;  ///< token that ends a row; < 0: none
  HEED_ARG(Generator*, generator) = nullptr;  ///< null: heed's default generator
};

/// prompt (B, T0) -> (B, T0 + n), n <= max_new_tokens, each new token drawn from sampling_distribution().
Tensor sample(IncrementalDecoder& decoder, const Tensor& prompt, int64_t max_new_tokens,
              const SamplingOptions& options = SamplingOptions());

/// The probabilities sample() draws from for one row of logits (exposed for tests): temperature,
/// top-k and top-p applied, renormalized; zeros elsewhere.
std::vector<double> sampling_distribution(const std::vector<double>& logits, const SamplingOptions& options);

/// Settings of beam_search(). Setters chain; the same names without arguments read.
struct BeamSearchOptions {
  HEED_ARG(int64_t, beam_width) = 4;  ///< hypotheses kept per prompt row
  HEED_ARG(double, length_penalty) = 0.6;  ///< alpha of ((5 + len) / 6)^alpha
  HEED_ARG(int64_t, max_new_tokens) = 50;  ///< longest continuation
  HEED_ARG(int64_t, eos) = -1;  ///< token that finishes a hypothesis; < 0: none
};

/// One finished (or, at max_new_tokens, unfinished) beam.
struct BeamHypothesis {
  std::vector<int64_t> tokens;  ///< the generated tokens (prompt excluded), eos included when reached
  double log_prob = 0.0;        ///< sum of the tokens' log-probabilities
  double score = 0.0;           ///< log_prob / lp(tokens.size())
};

/// What beam_search() returns.
struct BeamSearchResult {
  /// Per prompt row, the hypotheses best first (up to beam_width).
  std::vector<std::vector<BeamHypothesis>> hypotheses;
  /// The best hypothesis of each row, right-padded with `pad` to a common length: (B, L) Int64.
  Tensor best(int64_t pad = 0) const;
};

/// Beam search from prompt (B, T0) (see the top of this file); runs under NoGradGuard.
BeamSearchResult beam_search(IncrementalDecoder& decoder, const Tensor& prompt, const BeamSearchOptions& options);

/// GNMT's length penalty ((5 + length) / 6)^alpha.
double length_penalty(int64_t length, double alpha);

}  // namespace heed::nn
