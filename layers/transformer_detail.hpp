// Private helpers shared by layers/transformer_*.cpp and positional.cpp (not installed).
#pragma once
#include <cstdint>
#include <string>

#include "heed/ops.hpp"
#include "heed/tensor.hpp"

namespace heed::nn::detail {

/// "[N, T, E]", or "undefined", for messages.
inline std::string shape_or_undefined(const Tensor& t) { return t.defined() ? shape_str(t.shape()) : "undefined"; }

/// Throws unless x is a float (N, T, d_model) tensor (or (T, N, d_model) without batch_first).
inline void check_input(const char* layer, const char* what, const Tensor& x, int64_t d_model) {
  HEED_CHECK(x.defined() && x.dim() == 3 && x.size(2) == d_model && is_floating(x.dtype()),
             "{}: {} must be a float tensor of shape (N, T, {}) (or (T, N, {}) without batch_first), got {}", layer,
             what, d_model, d_model, shape_or_undefined(x));
}

/// (T, N, E) <-> (N, T, E) unless batch_first (the same transpose both ways).
inline Tensor to_batch_first(const Tensor& x, bool batch_first) { return batch_first ? x : transpose(x, 0, 1); }

}  // namespace heed::nn::detail
