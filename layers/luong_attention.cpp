// layers/luong_attention.cpp — LuongAttention: global (dot, general, concat, location), local-m and local-p
// alignment, and the attentional hidden state. Composed from recorded heed ops, so the gradients are
// theirs; the local window is a keep-mask built from round(p_t) (a constant for the gradient), and the
// Gaussian exp(-(s - p_t)^2 / (2 sigma^2)) is recorded, so dL/dp_t reaches W_p and v_p.
#include <cmath>

#include "heed/autograd.hpp"
#include "heed/nn/seq2seq_attention.hpp"
#include "heed/ops.hpp"

namespace heed::nn {

const char* luong_score_name(LuongScore score) {
  switch (score) {
    case LuongScore::Dot: return "dot";
    case LuongScore::General: return "general";
    case LuongScore::Concat: return "concat";
    case LuongScore::Location: return "location";
  }
  return "?";
}

const char* luong_align_name(LuongAlign align) {
  switch (align) {
    case LuongAlign::Global: return "global";
    case LuongAlign::LocalMonotonic: return "local-m";
    case LuongAlign::LocalPredictive: return "local-p";
  }
  return "?";
}

LuongAttention::LuongAttention(const LuongAttentionOptions& options) : Module("LuongAttention"), options_(options) {
  const int64_t dq = options.query_size(), dk = options.key_size();
  const int64_t units = options.units() > 0 ? options.units() : dq;
  const int64_t out = options.output_size() > 0 ? options.output_size() : dq;
  HEED_CHECK(dq > 0 && dk > 0 && options.units() >= 0 && options.output_size() >= 0,
             "{}: query_size {} and key_size {} must be positive, units {} and output_size {} non-negative", name(),
             dq, dk, options.units(), options.output_size());
  HEED_CHECK(options.score() != LuongScore::Dot || dq == dk,
             "{}: the dot score needs query_size == key_size, got {} and {} (use general or concat)", name(), dq, dk);
  HEED_CHECK(options.score() != LuongScore::Location || options.max_source_length() > 0,
             "{}: the location score needs max_source_length > 0 (rows of W_a), got {}", name(),
             options.max_source_length());
  HEED_CHECK(options.align() == LuongAlign::Global || options.window() >= 1,
             "{}: the local window D must be at least 1, got {}", name(), options.window());
  switch (options.score()) {
    case LuongScore::Dot: break;
    case LuongScore::General:
      key_proj = register_module("key_proj", std::make_shared<Linear>(dk, dq, false));  // W_a (Dq, Dk)
      break;
    case LuongScore::Concat:
      query_proj = register_module("query_proj", std::make_shared<Linear>(dq, units, false));
      key_proj = register_module("key_proj", std::make_shared<Linear>(dk, units, false));
      v = register_module("v", std::make_shared<Linear>(units, 1, false));
      break;
    case LuongScore::Location:
      location_proj =
          register_module("location_proj", std::make_shared<Linear>(dq, options.max_source_length(), false));
      break;
  }
  if (options.align() == LuongAlign::LocalPredictive) {
    position_proj = register_module("position_proj", std::make_shared<Linear>(dq, units, false));  // W_p
    position_v = register_module("position_v", std::make_shared<Linear>(units, 1, false));        // v_p
  }
  output_proj = register_module("output_proj", std::make_shared<Linear>(dk + dq, out, false));  // W_c
}

std::string LuongAttention::name() const {
  return fmt::format("LuongAttention({}, {})", luong_score_name(options_.score()), luong_align_name(options_.align()));
}

AttentionMemory LuongAttention::precompute(const Tensor& keys, const Tensor& keep_mask) {
  AttentionMemory memory = make_attention_memory(name(), keys, options_.key_size(), keep_mask);
  if (options_.score() == LuongScore::Location) {
    HEED_CHECK(keys.size(1) <= options_.max_source_length(),
               "{}: keys {} are longer than max_source_length {} (the rows of location_proj.weight)", name(),
               shape_str(keys.shape()), options_.max_source_length());
  }
  // General: W_a h̄_s (N, S, Dq); Concat: the key half of W_a (N, S, units). Dot, Location: nothing.
  memory.projected_keys = key_proj ? key_proj->forward(keys) : keys;
  return memory;
}

Tensor LuongAttention::scores(const Tensor& query, const AttentionMemory& memory) {
  HEED_CHECK(memory.values.defined() && memory.lengths.defined() && memory.projected_keys.defined() &&
                 memory.values.size(2) == options_.key_size() &&
                 memory.projected_keys.size(2) == (key_proj ? key_proj->out_features : options_.key_size()),
             "{}: the memory was not made by this layer's precompute() (values {}, projected keys {})", name(),
             memory.values.defined() ? shape_str(memory.values.shape()) : "undefined",
             memory.projected_keys.defined() ? shape_str(memory.projected_keys.shape()) : "undefined");
  const int64_t n = memory.values.size(0), steps = memory.values.size(1);
  HEED_CHECK(query.defined() && query.dim() == 2 && query.size(0) == n && query.size(1) == options_.query_size(),
             "{}: query has shape {}, expected ({}, {}) for keys {}", name(),
             query.defined() ? shape_str(query.shape()) : "undefined", n, options_.query_size(),
             shape_str(memory.values.shape()));
  switch (options_.score()) {
    case LuongScore::Dot:
    case LuongScore::General:  // h_t^T (W_a h̄_s): (N, S, Dq) x (N, Dq, 1)
      return squeeze(matmul(memory.projected_keys, unsqueeze(query, 2)), 2);
    case LuongScore::Concat:  // v^T tanh(W_q h_t + W_k h̄_s)
      return squeeze(v->forward(tanh(memory.projected_keys + unsqueeze(query_proj->forward(query), 1))), 2);
    case LuongScore::Location:  // W_a h_t, positions s < S
      HEED_CHECK(steps <= options_.max_source_length(), "{}: keys {} are longer than max_source_length {}", name(),
                 shape_str(memory.values.shape()), options_.max_source_length());
      return narrow(location_proj->forward(query), 1, 0, steps);
  }
  return Tensor();
}

LuongOutput LuongAttention::forward(const Tensor& query, const AttentionMemory& memory, int64_t step) {
  Tensor score = scores(query, memory);
  const int64_t n = score.size(0), steps = score.size(1), window = options_.window();
  LuongOutput out;
  if (options_.align() == LuongAlign::Global) {
    out.weights = memory.keep_mask.defined() ? masked_softmax(score, memory.keep_mask, 1) : softmax(score, 1);
  } else {
    // The window [round(p_t) - D, round(p_t) + D] clipped to [0, S_i - 1], ANDed with the keep-mask.
    std::vector<double> centre(static_cast<std::size_t>(n));
    if (options_.align() == LuongAlign::LocalMonotonic) {
      HEED_CHECK(step >= 0, "{}: local-m attention needs the decoder step t (p_t = t), got step {}", name(), step);
      out.position = full({n, 1}, static_cast<double>(step), score.dtype());
      for (auto& c : centre) c = static_cast<double>(step);
    } else {
      // p_t = S_i sigmoid(v_p^T tanh(W_p h_t))  (N, 1)
      out.position = memory.lengths * sigmoid(position_v->forward(tanh(position_proj->forward(query))));
      const auto p = out.position.to_vector<double>();
      for (int64_t i = 0; i < n; ++i) centre[i] = std::round(p[i]);
    }
    const auto lengths = memory.lengths.to_vector<double>();
    const Tensor keep = memory.keep_mask.defined() ? memory.keep_mask.contiguous() : Tensor();
    const bool* kept = keep.defined() ? keep.data<bool>() : nullptr;
    std::vector<bool> in_window(static_cast<std::size_t>(n * steps));
    for (int64_t i = 0; i < n; ++i)
      for (int64_t s = 0; s < steps; ++s)
        in_window[i * steps + s] = std::abs(static_cast<double>(s) - centre[i]) <= static_cast<double>(window) &&
                                   static_cast<double>(s) < lengths[i] && (!kept || kept[i * steps + s]);
    out.weights = masked_softmax(score, bool_tensor(in_window, {n, steps}), 1);
    if (options_.align() == LuongAlign::LocalPredictive) {
      // a_t(s) = align(s) exp(-(s - p_t)^2 / (2 sigma^2)), sigma = D / 2: 2 sigma^2 = D^2 / 2.
      const double two_sigma_sq = static_cast<double>(window * window) / 2.0;
      Tensor offset = reshape(arange(static_cast<double>(steps), score.dtype()), {1, steps}) - out.position;
      out.weights = out.weights * exp(square(offset) * (-1.0 / two_sigma_sq));
    }
  }
  out.context = squeeze(matmul(unsqueeze(out.weights, 1), memory.values), 1);
  out.attentional = tanh(output_proj->forward(concat({out.context, query}, 1)));  // h~ = tanh(W_c [c; h])
  return out;
}

LuongOutput LuongAttention::forward(const Tensor& query, const Tensor& keys, const Tensor& keep_mask, int64_t step) {
  return forward(query, precompute(keys, keep_mask), step);
}

std::string LuongAttention::extra_repr() const {
  std::string s = fmt::format("query_size={}, key_size={}, score={}, align={}", options_.query_size(),
                              options_.key_size(), luong_score_name(options_.score()), luong_align_name(options_.align()));
  if (options_.align() != LuongAlign::Global) s += fmt::format(", window={}", options_.window());
  if (options_.score() == LuongScore::Location) s += fmt::format(", max_source_length={}", options_.max_source_length());
  return s;
}

}  // namespace heed::nn
