// layers/seq2seq_attention.cpp — the attention memory (keys, keep-mask, true lengths) shared by the
// encoder-decoder attentions, and BahdanauAttention. Composed from recorded heed ops (linear, tanh,
// masked_softmax, matmul), so the gradients are theirs.
#include "heed/nn/seq2seq_attention.hpp"

#include "heed/autograd.hpp"
#include "heed/ops.hpp"

namespace heed::nn {

Tensor keep_mask_from_lengths(const Tensor& lengths, int64_t steps) {
  HEED_CHECK(lengths.defined() && lengths.dtype() == DType::Int64 && lengths.dim() == 1,
             "keep_mask_from_lengths: lengths must be Int64 of shape (N), got {}",
             lengths.defined() ? shape_str(lengths.shape()) : "undefined");
  const auto len = lengths.to_vector<int64_t>();
  std::vector<bool> keep;
  keep.reserve(len.size() * static_cast<std::size_t>(steps));
  for (int64_t l : len) {
    HEED_CHECK(l >= 0 && l <= steps, "keep_mask_from_lengths: length {} is outside [0, {}]", l, steps);
    for (int64_t s = 0; s < steps; ++s) keep.push_back(s < l);
  }
  return bool_tensor(keep, {static_cast<int64_t>(len.size()), steps});
}

AttentionMemory make_attention_memory(const std::string& layer, const Tensor& keys, int64_t key_size,
                                      const Tensor& keep_mask) {
  HEED_CHECK(keys.defined() && keys.dim() == 3 && keys.size(2) == key_size && is_floating(keys.dtype()),
             "{}: keys have shape {}, expected float (N, S, {})", layer,
             keys.defined() ? shape_str(keys.shape()) : "undefined", key_size);
  const int64_t n = keys.size(0), steps = keys.size(1);
  AttentionMemory memory;
  memory.values = keys;
  std::vector<double> lengths(static_cast<std::size_t>(n), static_cast<double>(steps));
  if (keep_mask.defined()) {
    HEED_CHECK(keep_mask.dtype() == DType::Bool && keep_mask.shape() == Shape({n, steps}),
               "{}: keep_mask must be Bool of shape [{}, {}] for keys {}, got {} of shape {}", layer, n, steps,
               shape_str(keys.shape()), dtype_name(keep_mask.dtype()), shape_str(keep_mask.shape()));
    memory.keep_mask = keep_mask;
    const Tensor dense = keep_mask.contiguous();
    const bool* keep = dense.data<bool>();
    for (int64_t i = 0; i < n; ++i) {
      int64_t last = -1;
      for (int64_t s = 0; s < steps; ++s)
        if (keep[i * steps + s]) last = s;
      lengths[i] = static_cast<double>(last + 1);
    }
  }
  memory.lengths = tensor(lengths, {n, 1}, keys.dtype());
  return memory;
}

// ---- BahdanauAttention -------------------------------------------------------------------------------

BahdanauAttention::BahdanauAttention(const BahdanauAttentionOptions& options)
    : Module("BahdanauAttention"), options_(options) {
  HEED_CHECK(options.query_size() > 0 && options.key_size() > 0 && options.units() > 0,
             "BahdanauAttention: query_size {}, key_size {} and units {} must be positive", options.query_size(),
             options.key_size(), options.units());
  query_proj = register_module("query_proj", std::make_shared<Linear>(options.query_size(), options.units(), false));
  key_proj = register_module("key_proj", std::make_shared<Linear>(options.key_size(), options.units(), false));
  v = register_module("v", std::make_shared<Linear>(options.units(), 1, false));
}

AttentionMemory BahdanauAttention::precompute(const Tensor& keys, const Tensor& keep_mask) {
  AttentionMemory memory = make_attention_memory("BahdanauAttention", keys, options_.key_size(), keep_mask);
  memory.projected_keys = key_proj->forward(keys);  // U h̄_s, once per sequence
  return memory;
}

Seq2SeqAttentionOutput BahdanauAttention::forward(const Tensor& query, const AttentionMemory& memory) {
  HEED_CHECK(memory.values.defined() && memory.projected_keys.defined() &&
                 memory.projected_keys.size(-1) == options_.units(),
             "BahdanauAttention: the memory was not made by this layer's precompute() (projected keys {})",
             memory.projected_keys.defined() ? shape_str(memory.projected_keys.shape()) : "undefined");
  const int64_t n = memory.values.size(0);
  HEED_CHECK(query.defined() && query.dim() == 2 && query.size(0) == n && query.size(1) == options_.query_size(),
             "BahdanauAttention(query_size={}): query has shape {}, expected ({}, {}) for keys {}",
             options_.query_size(), query.defined() ? shape_str(query.shape()) : "undefined", n,
             options_.query_size(), shape_str(memory.values.shape()));
  // e_s = v^T tanh(W q + U h̄_s): (N, S, units) -> (N, S)
  Tensor hidden = tanh(memory.projected_keys + unsqueeze(query_proj->forward(query), 1));
  Tensor scores = squeeze(v->forward(hidden), 2);
  Tensor weights = memory.keep_mask.defined() ? masked_softmax(scores, memory.keep_mask, 1) : softmax(scores, 1);
  Tensor context = squeeze(matmul(unsqueeze(weights, 1), memory.values), 1);
  return {context, weights};
}

Seq2SeqAttentionOutput BahdanauAttention::forward(const Tensor& query, const Tensor& keys, const Tensor& keep_mask) {
  return forward(query, precompute(keys, keep_mask));
}

std::string BahdanauAttention::extra_repr() const {
  return fmt::format("query_size={}, key_size={}, units={}", options_.query_size(), options_.key_size(),
                     options_.units());
}

}  // namespace heed::nn
