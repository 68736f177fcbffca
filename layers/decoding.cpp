// layers/decoding.cpp — greedy decoding, sampling and beam search over an IncrementalDecoder. The
// per-step work outside the model is O(B·V) on plain vectors (the logits are small next to the model).
#include "heed/nn/decoding.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "heed/autograd.hpp"
#include "heed/ops.hpp"
#include "heed/random.hpp"

namespace heed::nn {
namespace {

void check_prompt(const char* op, const Tensor& prompt) {
  HEED_CHECK(prompt.defined() && prompt.dtype() == DType::Int64 && prompt.dim() == 2 && prompt.size(0) > 0 &&
                 prompt.size(1) > 0,
             "{}: prompt must be Int64 of shape (B, T) with B, T >= 1, got {} of shape {}", op,
             prompt.defined() ? dtype_name(prompt.dtype()) : "undefined",
             prompt.defined() ? shape_str(prompt.shape()) : "[]");
}

// The logits as B rows of V doubles, checking the shape.
std::vector<std::vector<double>> logit_rows(const char* op, const Tensor& logits, int64_t rows) {
  HEED_CHECK(logits.defined() && is_floating(logits.dtype()) && logits.dim() == 2 && logits.size(0) == rows &&
                 logits.size(1) > 0,
             "{}: the decoder's step must return float logits of shape ({}, V), got {}", op, rows,
             logits.defined() ? shape_str(logits.shape()) : "undefined");
  const int64_t v = logits.size(1);
  const std::vector<double> flat = logits.to_vector<double>();
  std::vector<std::vector<double>> out(static_cast<size_t>(rows));
  for (int64_t r = 0; r < rows; ++r) out[r].assign(flat.begin() + r * v, flat.begin() + (r + 1) * v);
  return out;
}

int64_t argmax_of(const std::vector<double>& row) {
  return static_cast<int64_t>(std::max_element(row.begin(), row.end()) - row.begin());
}

void log_softmax_inplace(std::vector<double>& row) {
  const double m = *std::max_element(row.begin(), row.end());
  double s = 0.0;
  for (double v : row) s += std::exp(v - m);
  const double lse = m + std::log(s);
  for (double& v : row) v -= lse;
}

Tensor rows_to_tensor(const std::vector<std::vector<int64_t>>& rows, int64_t pad) {
  size_t len = 0;
  for (const auto& r : rows) len = std::max(len, r.size());
  std::vector<int64_t> flat;
  flat.reserve(rows.size() * len);
  for (const auto& r : rows) {
    flat.insert(flat.end(), r.begin(), r.end());
    flat.insert(flat.end(), len - r.size(), pad);
  }
  return index_tensor(flat, {static_cast<int64_t>(rows.size()), static_cast<int64_t>(len)});
}

// Shared loop of greedy_decode and sample: choose(row logits) -> token.
template <class Choose>
Tensor decode_loop(const char* op, IncrementalDecoder& decoder, const Tensor& prompt, int64_t max_new_tokens,
                   int64_t eos, Choose&& choose) {
  check_prompt(op, prompt);
  HEED_CHECK(max_new_tokens >= 0, "{}: max_new_tokens must be >= 0, got {}", op, max_new_tokens);
  NoGradGuard no_grad;
  const int64_t b = prompt.size(0), t0 = prompt.size(1);
  const std::vector<int64_t> flat = prompt.to_vector<int64_t>();
  std::vector<std::vector<int64_t>> out(static_cast<size_t>(b));
  for (int64_t r = 0; r < b; ++r) out[r].assign(flat.begin() + r * t0, flat.begin() + (r + 1) * t0);
  if (max_new_tokens == 0) return prompt;
  std::vector<bool> done(static_cast<size_t>(b), false);
  Tensor logits = decoder.step(prompt);
  for (int64_t i = 0; i < max_new_tokens; ++i) {
    const auto rows = logit_rows(op, logits, b);
    std::vector<int64_t> next(static_cast<size_t>(b));
    bool all_done = true;
    for (int64_t r = 0; r < b; ++r) {
      next[r] = done[r] ? eos : choose(rows[r]);
      out[r].push_back(next[r]);
      if (eos >= 0 && next[r] == eos) done[r] = true;
      all_done = all_done && done[r];
    }
    if (all_done || i + 1 == max_new_tokens) break;
    logits = decoder.step(index_tensor(next, {b, 1}));
  }
  return rows_to_tensor(out, eos >= 0 ? eos : 0);
}

}  // namespace

// ---- PrefixDecoder -------------------------------------------------------------------------------------

Tensor PrefixDecoder::step(const Tensor& tokens) {
  check_prompt("PrefixDecoder::step", tokens);
  if (!history_.defined()) {
    history_ = tokens;
    rows_ = arange(static_cast<double>(tokens.size(0)), DType::Int64);
  } else {
    HEED_CHECK(tokens.size(0) == history_.size(0), "PrefixDecoder::step: {} rows of tokens for {} rows of history",
               tokens.size(0), history_.size(0));
    history_ = concat({history_, tokens}, 1);
  }
  Tensor logits = logits_fn_(history_, rows_);
  HEED_CHECK(logits.defined() && logits.dim() == 3 && logits.size(0) == history_.size(0) &&
                 logits.size(1) == history_.size(1),
             "PrefixDecoder: logits_fn must return (B, T, V) = ({}, {}, V), got {}", history_.size(0),
             history_.size(1), logits.defined() ? shape_str(logits.shape()) : "undefined");
  return heed::select(logits, 1, logits.size(1) - 1).contiguous();
}

void PrefixDecoder::select(const Tensor& rows) {
  HEED_CHECK(history_.defined(), "PrefixDecoder::select: called before the first step");
  const std::vector<int64_t> keep = rows.to_vector<int64_t>();
  const int64_t b = history_.size(0), t = history_.size(1);
  const std::vector<int64_t> hist = history_.to_vector<int64_t>(), src = rows_.to_vector<int64_t>();
  std::vector<int64_t> new_hist, new_src;
  for (int64_t r : keep) {
    HEED_CHECK(r >= 0 && r < b, "PrefixDecoder::select: row {} out of range [0, {})", r, b);
    new_hist.insert(new_hist.end(), hist.begin() + r * t, hist.begin() + (r + 1) * t);
    new_src.push_back(src[r]);
  }
  const auto n = static_cast<int64_t>(keep.size());
  history_ = index_tensor(new_hist, {n, t});
  rows_ = index_tensor(new_src, {n});
}

// ---- greedy and sampling -------------------------------------------------------------------------------

Tensor greedy_decode(IncrementalDecoder& decoder, const Tensor& prompt, int64_t max_new_tokens, int64_t eos) {
  return decode_loop("greedy_decode", decoder, prompt, max_new_tokens, eos, argmax_of);
}

std::vector<double> sampling_distribution(const std::vector<double>& logits, const SamplingOptions& options) {
  HEED_CHECK(!logits.empty(), "sample: empty logits");
  HEED_CHECK(options.temperature() >= 0.0, "sample: temperature must be >= 0, got {}", options.temperature());
  HEED_CHECK(options.top_k() >= 0, "sample: top_k must be >= 0, got {}", options.top_k());
  HEED_CHECK(options.top_p() > 0.0 && options.top_p() <= 1.0, "sample: top_p must be in (0, 1], got {}",
             options.top_p());
  const size_t v = logits.size();
  std::vector<double> p(v, 0.0);
  if (options.temperature() == 0.0) {
    p[static_cast<size_t>(argmax_of(logits))] = 1.0;
    return p;
  }
  const double m = *std::max_element(logits.begin(), logits.end());
  double s = 0.0;
  for (size_t i = 0; i < v; ++i) s += (p[i] = std::exp((logits[i] - m) / options.temperature()));
  for (double& x : p) x /= s;
  // Most likely first; ties keep the lower index first.
  std::vector<size_t> order(v);
  std::iota(order.begin(), order.end(), size_t{0});
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return p[a] > p[b]; });
  size_t keep = v;
  if (options.top_k() > 0) keep = std::min(keep, static_cast<size_t>(options.top_k()));
  if (options.top_p() < 1.0) {
    double kept_mass = 0.0;
    for (size_t i = 0; i < keep; ++i) kept_mass += p[order[i]];
    double cum = 0.0;
    size_t n = 0;
    while (n < keep) {  // the smallest prefix whose (top-k renormalized) mass reaches top_p
      cum += p[order[n]] / kept_mass;
      ++n;
      if (cum >= options.top_p()) break;
    }
    keep = n;
  }
  double kept = 0.0;
  for (size_t i = 0; i < keep; ++i) kept += p[order[i]];
  std::vector<double> q(v, 0.0);
  for (size_t i = 0; i < keep; ++i) q[order[i]] = p[order[i]] / kept;
  return q;
}

Tensor sample(IncrementalDecoder& decoder, const Tensor& prompt, int64_t max_new_tokens,
              const SamplingOptions& options) {
  Generator& gen = options.generator() ? *options.generator() : default_generator();
  return decode_loop("sample", decoder, prompt, max_new_tokens, options.eos(), [&](const std::vector<double>& row) {
    const std::vector<double> q = sampling_distribution(row, options);
    const double u = gen.uniform();
    double cum = 0.0;
    int64_t last = 0;
    for (size_t i = 0; i < q.size(); ++i) {
      if (q[i] <= 0.0) continue;
      last = static_cast<int64_t>(i);
      cum += q[i];
      if (u < cum) return last;
    }
    return last;  // rounding: the last token with mass
  });
}

// ---- beam search ---------------------------------------------------------------------------------------

double length_penalty(int64_t length, double alpha) {
  return std::pow((5.0 + static_cast<double>(length)) / 6.0, alpha);
}

Tensor BeamSearchResult::best(int64_t pad) const {
  std::vector<std::vector<int64_t>> rows;
  for (const auto& h : hypotheses) rows.push_back(h.empty() ? std::vector<int64_t>{} : h.front().tokens);
  return rows_to_tensor(rows, pad);
}

BeamSearchResult beam_search(IncrementalDecoder& decoder, const Tensor& prompt, const BeamSearchOptions& options) {
  check_prompt("beam_search", prompt);
  HEED_CHECK(options.beam_width() >= 1, "beam_search: beam_width must be >= 1, got {}", options.beam_width());
  HEED_CHECK(options.max_new_tokens() >= 1, "beam_search: max_new_tokens must be >= 1, got {}",
             options.max_new_tokens());
  NoGradGuard no_grad;
  const int64_t b = prompt.size(0), k = options.beam_width(), eos = options.eos();
  struct Alive {
    BeamHypothesis hyp;
    int64_t row;  // the decoder row holding this hypothesis's state
  };
  std::vector<std::vector<Alive>> alive(static_cast<size_t>(b));
  std::vector<std::vector<BeamHypothesis>> finished(static_cast<size_t>(b));
  std::vector<bool> done(static_cast<size_t>(b), false);
  for (int64_t r = 0; r < b; ++r) alive[r].push_back({BeamHypothesis{}, r});
  auto finalize = [&](BeamHypothesis h) {
    h.score = h.log_prob / length_penalty(static_cast<int64_t>(h.tokens.size()), options.length_penalty());
    return h;
  };
  auto by_score = [](const BeamHypothesis& a, const BeamHypothesis& c) { return a.score > c.score; };

  int64_t rows = b;
  Tensor logits = decoder.step(prompt);
  for (int64_t step = 1;; ++step) {
    auto lp = logit_rows("beam_search", logits, rows);
    for (auto& row : lp) log_softmax_inplace(row);
    const auto v = static_cast<int64_t>(lp.front().size());
    for (int64_t r = 0; r < b; ++r) {
      if (done[r]) continue;
      // The best 2k continuations over all alive hypotheses of row r.
      struct Cand {
        double log_prob;
        size_t parent;
        int64_t token;
      };
      std::vector<Cand> cands;
      for (size_t h = 0; h < alive[r].size(); ++h) {
        const auto& row_lp = lp[static_cast<size_t>(alive[r][h].row)];
        for (int64_t t = 0; t < v; ++t) cands.push_back({alive[r][h].hyp.log_prob + row_lp[t], h, t});
      }
      const size_t top = std::min(cands.size(), static_cast<size_t>(2 * k));
      std::partial_sort(cands.begin(), cands.begin() + static_cast<std::ptrdiff_t>(top), cands.end(),
                        [](const Cand& a, const Cand& c) { return a.log_prob > c.log_prob; });
      std::vector<Alive> next;
      for (size_t i = 0; i < top && static_cast<int64_t>(next.size()) < k; ++i) {
        BeamHypothesis h = alive[r][cands[i].parent].hyp;
        h.tokens.push_back(cands[i].token);
        h.log_prob = cands[i].log_prob;
        if (eos >= 0 && cands[i].token == eos) {
          if (static_cast<int64_t>(i) < k) finished[r].push_back(finalize(std::move(h)));
        } else {
          next.push_back({std::move(h), alive[r][cands[i].parent].row});
        }
      }
      alive[r] = std::move(next);
      std::sort(finished[r].begin(), finished[r].end(), by_score);
      if (static_cast<int64_t>(finished[r].size()) >= k || alive[r].empty()) done[r] = true;
    }
    if (step >= options.max_new_tokens() || std::all_of(done.begin(), done.end(), [](bool d) { return d; })) break;
    // Gather the surviving hypotheses' states and feed their last tokens.
    std::vector<int64_t> keep, tokens;
    for (int64_t r = 0; r < b; ++r) {
      if (done[r]) continue;
      for (auto& a : alive[r]) {
        keep.push_back(a.row);
        tokens.push_back(a.hyp.tokens.back());
        a.row = static_cast<int64_t>(keep.size()) - 1;
      }
    }
    rows = static_cast<int64_t>(keep.size());
    decoder.select(index_tensor(keep, {rows}));
    logits = decoder.step(index_tensor(tokens, {rows, 1}));
  }
  BeamSearchResult result;
  for (int64_t r = 0; r < b; ++r) {
    std::vector<BeamHypothesis> all = finished[r];
    if (!done[r] || static_cast<int64_t>(all.size()) < k)
      for (const auto& a : alive[r]) all.push_back(finalize(a.hyp));
    std::stable_sort(all.begin(), all.end(), by_score);
    if (static_cast<int64_t>(all.size()) > k) all.resize(static_cast<size_t>(k));
    result.hypotheses.push_back(std::move(all));
  }
  return result;
}

}  // namespace heed::nn
