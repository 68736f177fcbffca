// heed/nn/positional.hpp — positional encodings added to token embeddings: the paper's fixed sinusoid
// (interleaved sin/cos, see heed/nn/transformer.hpp) and a learned table (GPT-style).
#pragma once
#include <cstdint>
#include <string>

#include "heed/nn/module.hpp"
#include "heed/tensor.hpp"

namespace heed::nn {

/// x + PE[start : start + T] for x (N, T, d). The table (max_len, d) is a constant (not in state_dict).
class PositionalEncoding : public Module {
 public:
  /// PE[pos, 2i] = sin(pos / 10000^(2i/d)), PE[pos, 2i+1] = cos(...); throws unless both sizes are positive.
  PositionalEncoding(int64_t d_model, int64_t max_len = 5000);
  Tensor forward(const Tensor& x) override { return forward(x, 0); }  ///< positions 0..T-1
  /// Positions start..start+T-1 (incremental decoding); throws past max_len or on a wrong shape.
  Tensor forward(const Tensor& x, int64_t start);
  std::string extra_repr() const override;
  const Tensor& table() const { return pe_; }  ///< the (max_len, d) Float32 table

 private:
  int64_t d_model_, max_len_;
  Tensor pe_;  ///< (max_len, d) Float32; converted on use to x's dtype
};

/// x + weight[start : start + T]; weight (max_len, d) ~ N(0, 0.02^2) (GPT-2's init).
class LearnedPositionalEmbedding : public Module {
 public:
  LearnedPositionalEmbedding(int64_t max_len, int64_t d_model);  ///< note the order: max_len first
  void reset() override;  ///< weight ~ N(0, 0.02^2)
  Tensor forward(const Tensor& x) override { return forward(x, 0); }  ///< positions 0..T-1
  /// Positions start..start+T-1 of x (N, T, d); throws past max_len or on a wrong shape.
  Tensor forward(const Tensor& x, int64_t start);
  std::string extra_repr() const override;

  Tensor weight;  ///< (max_len, d_model), trained

 private:
  int64_t max_len_, d_model_;
};

/// Which positional encoding a model adds to its embeddings.
enum class PositionalKind {
  Sinusoidal,  ///< PositionalEncoding (fixed)
  Learned,     ///< LearnedPositionalEmbedding (GPT-style)
};

}  // namespace heed::nn
