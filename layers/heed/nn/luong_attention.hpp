// heed/nn/luong_attention.hpp — Luong et al. 2015 attention (docs/attention-spec.md M3 global, M4 local).
// Include heed/nn/seq2seq_attention.hpp (it declares AttentionMemory and includes this header).
//
// The query is the CURRENT top decoder state h_t (Dq), computed before attending (unlike Bahdanau's
// s_{i-1}); the memory holds the source states h̄_s (N, S, Dk).
//
// Scores (LuongScore):
//   Dot       score(h_t, h̄_s) = h_t^T h̄_s                          needs Dq == Dk
//   General   score = h_t^T W_a h̄_s                                 key_proj.weight W_a (Dq, Dk)
//   Concat    score = v_a^T tanh(W_a [h_t ; h̄_s])                    W_a (units, Dq + Dk) is stored as its
//             two halves, query_proj.weight (units, Dq) and key_proj.weight (units, Dk), because the key
//             half is applied once per sequence; v.weight (1, units)
//   Location  a_t = softmax(W_a h_t)                                 location_proj.weight W_a (S_max, Dq);
//             positions s >= S (the batch's padded length) and masked ones are left out of the softmax
// General's W_a h̄_s and Concat's key half are computed once per sequence by precompute().
//
// Alignment (LuongAlign):
//   Global          a_t = softmax_s(score) over every kept s.
//   LocalMonotonic  (local-m) p_t = t, the decoder step passed to forward(); a_t = softmax of the score
//                   over the window [p_t - D, p_t + D] clipped to [0, S_i - 1].
//   LocalPredictive (local-p) p_t = S_i·σ(v_p^T tanh(W_p h_t)), W_p = position_proj.weight (units, Dq),
//                   v_p = position_v.weight (1, units); window [round(p_t) - D, round(p_t) + D] clipped to
//                   [0, S_i - 1]; a_t(s) = softmax_window(score)_s · exp(-(s - p_t)² / (2σ²)), σ = D/2,
//                   NOT renormalised after the Gaussian (as the paper). The gradient reaches W_p and v_p
//                   through the Gaussian's p_t; round(p_t) (the window) is treated as a constant.
//   S_i is the TRUE source length of example i: 1 + its last kept position (AttentionMemory::lengths).
//   Weights outside the window are exactly 0 and are returned over the full length S.
//   The paper's window is D = 10; for short inputs (dates, D = 3) pass window().
//
// Attentional hidden state (always computed, returned as `attentional`):
//   h~_t = tanh(W_c [c_t ; h_t])          output_proj.weight W_c (output_size, Dk + Dq), no bias (paper)
// Input feeding is the decoder's business: feed h~_t into the next step's input ([emb(y_t) ; h~_t]),
// with h~_0 = 0, and predict p(y_t) = softmax(W_s h~_t).
//
//   auto attention = std::make_shared<heed::nn::LuongAttention>(
//       heed::nn::LuongAttentionOptions(128).score(heed::nn::LuongScore::General)
//           .align(heed::nn::LuongAlign::LocalPredictive).window(3));
//   auto memory = attention->precompute(encoder_outputs, batch.mask);
//   for (t ...) { h = cell->forward(concat({emb_t, h_tilde}, 1), h);
//                 auto out = attention->forward(h, memory, t); h_tilde = out.attentional; }
#pragma once
#include <cstdint>
#include <memory>
#include <string>

#include "heed/nn/basic.hpp"
#include "heed/nn/module.hpp"
#include "heed/options.hpp"
#include "heed/tensor.hpp"

namespace heed::nn {

/// Luong's score functions (see the table above).
enum class LuongScore {
  Dot,       ///< h_t^T h̄_s
  General,   ///< h_t^T W_a h̄_s
  Concat,    ///< v_a^T tanh(W_a [h_t ; h̄_s])
  Location,  ///< softmax(W_a h_t), no keys
};
/// Luong's alignments: attend everywhere, or in a window around p_t.
enum class LuongAlign {
  Global,           ///< every kept source position
  LocalMonotonic,   ///< local-m: p_t = t
  LocalPredictive,  ///< local-p: p_t predicted from h_t, Gaussian-weighted window
};
const char* luong_score_name(LuongScore score);  ///< "dot", "general", "concat", "location"
const char* luong_align_name(LuongAlign align);  ///< "global", "local-m", "local-p"

/// Settings of LuongAttention. Setters chain; the same names without arguments read.
struct LuongAttentionOptions {
  /// query_size Dq = the decoder's hidden size; key_size defaults to it (required for Dot).
  explicit LuongAttentionOptions(int64_t query_size) : query_size_(query_size), key_size_(query_size) {}
  HEED_ARG(int64_t, query_size);  ///< Dq, the decoder state size
  HEED_ARG(int64_t, key_size);  ///< Dk, the encoder state size (default Dq)
  HEED_ARG(LuongScore, score) = LuongScore::Dot;  ///< score function
  HEED_ARG(LuongAlign, align) = LuongAlign::Global;  ///< alignment
  HEED_ARG(int64_t, units) = 0;  ///< Concat's and local-p's hidden width; 0 = query_size
  HEED_ARG(int64_t, window) = 10;  ///< D for local alignment
  HEED_ARG(int64_t, max_source_length) = 0;  ///< S_max for the Location score
  HEED_ARG(int64_t, output_size) = 0;  ///< rows of W_c; 0 = query_size
};

struct AttentionMemory;

/// What LuongAttention::forward returns for one decoder step.
struct LuongOutput {
  Tensor context;      ///< c_t (N, Dk)
  Tensor weights;      ///< a_t (N, S), zeros outside the mask / window
  Tensor attentional;  ///< h~_t = tanh(W_c [c_t ; h_t]) (N, output_size)
  Tensor position;     ///< local-p: p_t (N, 1); local-m: t; undefined for global attention
};

/// Luong attention for one decoder step: score, align, context and the attentional state h~_t (see above).
class LuongAttention : public Module {
 public:
  /// Creates the projections the score and alignment need; throws on inconsistent sizes (e.g. Dot with
  /// Dq != Dk, Location without max_source_length).
  explicit LuongAttention(const LuongAttentionOptions& options);
  /// keys (N, S, Dk), keep_mask Bool (N, S) or undefined.
  AttentionMemory precompute(const Tensor& keys, const Tensor& keep_mask = Tensor());
  /// query h_t (N, Dq). step = t, the decoder step (needed by local-m only).
  LuongOutput forward(const Tensor& query, const AttentionMemory& memory, int64_t step = -1);
  /// The same after precompute(keys, keep_mask) (convenient for one-off calls).
  LuongOutput forward(const Tensor& query, const Tensor& keys, const Tensor& keep_mask, int64_t step = -1);
  /// The alignment scores before the softmax (N, S) (Location: W_a h_t cut to S). For tests and plots.
  Tensor scores(const Tensor& query, const AttentionMemory& memory);
  std::string extra_repr() const override;
  const LuongAttentionOptions& options() const { return options_; }  ///< the settings it was made with

  // Present depending on the score and alignment (see the table above), null otherwise.
  std::shared_ptr<Linear> query_proj;     ///< Concat: query half of W_a (units, Dq)
  std::shared_ptr<Linear> key_proj;       ///< General: W_a (Dq, Dk); Concat: key half (units, Dk)
  std::shared_ptr<Linear> v;              ///< Concat: v_a (1, units)
  std::shared_ptr<Linear> location_proj;  ///< Location: W_a (S_max, Dq)
  std::shared_ptr<Linear> position_proj;  ///< local-p: W_p (units, Dq)
  std::shared_ptr<Linear> position_v;     ///< local-p: v_p (1, units)
  std::shared_ptr<Linear> output_proj;    ///< always: W_c (output_size, Dk + Dq), no bias

 private:
  std::string name() const;  ///< "LuongAttention(general, local-p)" for error messages
  LuongAttentionOptions options_;
};

}  // namespace heed::nn
