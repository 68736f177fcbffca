// heed/nn/basic.hpp — the everyday layers: Linear, Embedding, Dropout, LayerNorm, Flatten, activations.
//
// Each layer has PyTorch's constructor arguments, parameter names, initialization and printout, so
// `torch.save(model.state_dict())` converted to safetensors loads into the same heed model:
//
//   Linear(in, out, bias)        y = x W^T + b                 weight (out, in), bias (out)
//                                W ~ U(-1/sqrt(in), 1/sqrt(in)) (kaiming_uniform with a = sqrt(5)), b the same
//   Embedding(num, dim, pad)     y[...] = W[index[...]]        weight (num, dim) ~ N(0, 1); row pad zeroed
//   Dropout(p)                   y = x * m / (1 - p), m ~ Bernoulli(1 - p) while training; y = x in eval()
//   LayerNorm(shape, eps, aff)   y = (x - E[x]) / sqrt(Var[x] + eps) * weight + bias over the last axes
//                                weight = 1, bias = 0 of `shape`
//   Flatten(start, end)          merges axes start..end (default: all but the batch axis)
//   ReLU max(x, 0)  LeakyReLU max(x, 0) + slope min(x, 0)  Tanh  Sigmoid 1/(1+e^-x)  GELU x Phi(x)
//   ELU x or alpha (e^x - 1)  Softplus log(1 + e^(beta x)) / beta  Softmax e^x_i / sum_j e^x_j along an axis
#pragma once
#include <cstdint>
#include <string>

#include "heed/nn/module.hpp"
#include "heed/tensor.hpp"

namespace heed::nn {

/// y = x W^T + b for x (..., in_features) -> (..., out_features).
class Linear : public Module {
 public:
  Linear(int64_t in_features, int64_t out_features, bool bias = true);  ///< PyTorch's init; throws on negative sizes
  void reset() override;  ///< re-draws the parameters (PyTorch's reset_parameters)
  Tensor forward(const Tensor& x) override;
  std::string extra_repr() const override;

  int64_t in_features;   ///< size of the input's last axis
  int64_t out_features;  ///< size of the output's last axis
  Tensor weight;  ///< (out_features, in_features)
  Tensor bias;    ///< (out_features), undefined when bias = false
};

/// A lookup table: Int64 indices of any shape -> indices.shape + [embedding_dim]. Rows equal to
/// padding_idx start at zero and receive no gradient. padding_idx = -1 (the default) means none; unlike
/// PyTorch, negative values do not count from the end.
class Embedding : public Module {
 public:
  /// Weight ~ N(0, 1), row padding_idx zeroed; throws unless sizes > 0 and -1 <= padding_idx < num_embeddings.
  Embedding(int64_t num_embeddings, int64_t embedding_dim, int64_t padding_idx = -1);
  void reset() override;  ///< re-draws the weight (and re-zeroes the padding row)
  Tensor forward(const Tensor& indices) override;
  std::string extra_repr() const override;

  int64_t num_embeddings;  ///< rows of the table: valid indices are 0..num_embeddings-1
  int64_t embedding_dim;   ///< length of each vector
  int64_t padding_idx;     ///< the row kept at zero with no gradient, or -1 for none
  Tensor weight;  ///< (num_embeddings, embedding_dim)
};

/// Zeroes each element with probability p while training and scales the rest by 1/(1-p).
class Dropout : public Module {
 public:
  explicit Dropout(double p = 0.5);  ///< throws unless 0 <= p <= 1
  Tensor forward(const Tensor& x) override;
  std::string extra_repr() const override;

  double p;  ///< the probability of zeroing an element
};

/// Normalizes over the last normalized_shape.size() axes (heed::layer_norm, fused).
class LayerNorm : public Module {
 public:
  /// Normalizes over trailing axes equal to normalized_shape; throws on an empty or non-positive shape.
  explicit LayerNorm(Shape normalized_shape, double eps = 1e-5, bool elementwise_affine = true);
  void reset() override;  ///< weight = 1, bias = 0 (nothing without elementwise_affine)
  Tensor forward(const Tensor& x) override;
  std::string extra_repr() const override;

  Shape normalized_shape;  ///< sizes of the normalized trailing axes
  double eps;  ///< added to the variance
  bool elementwise_affine;  ///< learn weight and bias
  Tensor weight;  ///< normalized_shape, undefined without elementwise_affine
  Tensor bias;    ///< normalized_shape, undefined without elementwise_affine
};

/// Merges axes start_dim..end_dim into one: (N, C, H, W) -> (N, C*H*W) by default (a view when contiguous).
class Flatten : public Module {
 public:
  explicit Flatten(int64_t start_dim = 1, int64_t end_dim = -1);  ///< negative axes count from the end
  Tensor forward(const Tensor& x) override;
  std::string extra_repr() const override;

  int64_t start_dim;  ///< first merged axis (1 keeps the batch axis)
  int64_t end_dim;    ///< last merged axis, inclusive (-1: the last)
};

// ---- activations (no parameters) --------------------------------------------------------------------

/// max(x, 0), elementwise.
class ReLU : public Module {
 public:
  ReLU() : Module("ReLU") {}
  Tensor forward(const Tensor& x) override;
};

/// x for x > 0, negative_slope * x otherwise.
class LeakyReLU : public Module {
 public:
  /// the slope for x < 0
  explicit LeakyReLU(double negative_slope = 0.01) : Module("LeakyReLU"), negative_slope(negative_slope) {}
  Tensor forward(const Tensor& x) override;
  std::string extra_repr() const override;
  double negative_slope;  ///< the slope for x < 0
};

/// tanh(x), elementwise.
class Tanh : public Module {
 public:
  Tanh() : Module("Tanh") {}
  Tensor forward(const Tensor& x) override;
};

/// 1 / (1 + e^-x), elementwise.
class Sigmoid : public Module {
 public:
  Sigmoid() : Module("Sigmoid") {}
  Tensor forward(const Tensor& x) override;
};

/// approximate = false: exact x Phi(x) (PyTorch approximate='none'); true: the tanh form ('tanh').
class GELU : public Module {
 public:
  explicit GELU(bool approximate = false) : Module("GELU"), approximate(approximate) {}  ///< see the class comment
  Tensor forward(const Tensor& x) override;
  std::string extra_repr() const override;
  bool approximate;  ///< use the tanh approximation
};

/// x for x > 0, alpha (e^x - 1) otherwise.
class ELU : public Module {
 public:
  explicit ELU(double alpha = 1.0) : Module("ELU"), alpha(alpha) {}  ///< the negative saturation value is -alpha
  Tensor forward(const Tensor& x) override;
  std::string extra_repr() const override;
  double alpha;  ///< the negative saturation value is -alpha
};

/// PyTorch's definition: linear where beta x > threshold.
class Softplus : public Module {
 public:
  /// beta and threshold as in torch.nn.Softplus.
  explicit Softplus(double beta = 1.0, double threshold = 20.0)
      : Module("Softplus"), beta(beta), threshold(threshold) {}
  Tensor forward(const Tensor& x) override;
  std::string extra_repr() const override;
  double beta;       ///< sharpness: log(1 + e^(beta x)) / beta
  double threshold;  ///< where beta x > threshold the output is x itself
};

/// e^x_i / sum_j e^x_j along `axis` (each slice sums to 1).
class Softmax : public Module {
 public:
  explicit Softmax(int64_t axis = -1) : Module("Softmax"), axis(axis) {}  ///< the axis that sums to 1
  Tensor forward(const Tensor& x) override;
  std::string extra_repr() const override;
  int64_t axis;  ///< the axis that sums to 1
};

}  // namespace heed::nn
