// layers/positional.cpp — PositionalEncoding (the paper's interleaved sinusoid) and
// LearnedPositionalEmbedding (heed/nn/positional.hpp).
#include "heed/nn/positional.hpp"

#include <cmath>

#include "heed/init.hpp"
#include "heed/ops.hpp"
#include "transformer_detail.hpp"

namespace heed::nn {

using detail::shape_or_undefined;

PositionalEncoding::PositionalEncoding(int64_t d_model, int64_t max_len)
    : Module("PositionalEncoding"), d_model_(d_model), max_len_(max_len) {
  HEED_CHECK(d_model > 0 && max_len > 0, "PositionalEncoding: d_model {} and max_len {} must be positive", d_model,
             max_len);
  pe_ = make_tensor({max_len, d_model}, DType::Float32);
  float* p = pe_.data<float>();
  for (int64_t pos = 0; pos < max_len; ++pos)
    for (int64_t i = 0; i < d_model; ++i) {
      // PE[pos, 2j] = sin(pos / 10000^(2j/d)), PE[pos, 2j+1] = cos(pos / 10000^(2j/d))
      const double freq = std::pow(10000.0, -static_cast<double>(i - i % 2) / static_cast<double>(d_model));
      const double angle = static_cast<double>(pos) * freq;
      p[pos * d_model + i] = static_cast<float>(i % 2 == 0 ? std::sin(angle) : std::cos(angle));
    }
}

Tensor PositionalEncoding::forward(const Tensor& x, int64_t start) {
  HEED_CHECK(x.defined() && x.dim() == 3 && x.size(2) == d_model_,
             "PositionalEncoding(d_model={}): input has shape {}, expected (N, T, {})", d_model_,
             shape_or_undefined(x), d_model_);
  HEED_CHECK(start >= 0 && start + x.size(1) <= max_len_,
             "PositionalEncoding: positions [{}, {}) exceed max_len {} (input {})", start, start + x.size(1), max_len_,
             shape_str(x.shape()));
  Tensor rows = narrow(pe_, 0, start, x.size(1));
  if (x.dtype() != DType::Float32) rows = rows.to(x.dtype());
  return x + rows;
}

std::string PositionalEncoding::extra_repr() const {
  return fmt::format("d_model={}, max_len={}", d_model_, max_len_);
}

LearnedPositionalEmbedding::LearnedPositionalEmbedding(int64_t max_len, int64_t d_model)
    : Module("LearnedPositionalEmbedding"), max_len_(max_len), d_model_(d_model) {
  HEED_CHECK(d_model > 0 && max_len > 0, "LearnedPositionalEmbedding: max_len {} and d_model {} must be positive",
             max_len, d_model);
  weight = register_parameter("weight", empty({max_len, d_model}));
  reset();
}

void LearnedPositionalEmbedding::reset() { init::normal_(weight, 0.0, 0.02); }

Tensor LearnedPositionalEmbedding::forward(const Tensor& x, int64_t start) {
  HEED_CHECK(x.defined() && x.dim() == 3 && x.size(2) == d_model_,
             "LearnedPositionalEmbedding(d_model={}): input has shape {}, expected (N, T, {})", d_model_,
             shape_or_undefined(x), d_model_);
  HEED_CHECK(start >= 0 && start + x.size(1) <= max_len_,
             "LearnedPositionalEmbedding: positions [{}, {}) exceed max_len {} (input {})", start,
             start + x.size(1), max_len_, shape_str(x.shape()));
  return x + narrow(weight, 0, start, x.size(1));
}

std::string LearnedPositionalEmbedding::extra_repr() const {
  return fmt::format("max_len={}, d_model={}", max_len_, d_model_);
}

}  // namespace heed::nn
