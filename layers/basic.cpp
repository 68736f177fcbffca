// layers/basic.cpp — Linear, Embedding, Dropout, LayerNorm, Flatten and the activation modules.
#include "heed/nn/basic.hpp"

#include <cmath>

#include "heed/autograd.hpp"
#include "heed/init.hpp"
#include "heed/ops.hpp"

namespace heed::nn {
namespace {

// A double as Python prints it (1.0, 0.5, 1e-05), so extra_repr reads like PyTorch's.
std::string py_float(double v) {
  std::string s = fmt::format("{}", v);
  if (s.find_first_of(".eni") == std::string::npos) s += ".0";
  return s;
}

const char* py_bool(bool b) { return b ? "True" : "False"; }

}  // namespace

// ---- Linear ----------------------------------------------------------------------------------------

Linear::Linear(int64_t in, int64_t out, bool with_bias) : Module("Linear"), in_features(in), out_features(out) {
  HEED_CHECK(in >= 0 && out >= 0, "Linear: in_features {} and out_features {} must be non-negative", in, out);
  weight = register_parameter("weight", empty({out, in}));
  if (with_bias) bias = register_parameter("bias", empty({out}));
  reset();
}

void Linear::reset() {
  // PyTorch: kaiming_uniform_(a = sqrt(5)) gives bound = 1/sqrt(fan_in); the bias uses the same bound.
  init::kaiming_uniform_(weight, std::sqrt(5.0));
  if (bias.defined()) {
    const double bound = in_features > 0 ? 1.0 / std::sqrt(static_cast<double>(in_features)) : 0.0;
    init::uniform_(bias, -bound, bound);
  }
}

Tensor Linear::forward(const Tensor& x) {
  HEED_CHECK(x.dim() >= 1 && x.size(-1) == in_features,
             "Linear(in_features={}): input has shape {}, expected (..., {})", in_features, shape_str(x.shape()),
             in_features);
  return linear(x, weight, bias);
}

std::string Linear::extra_repr() const {
  return fmt::format("in_features={}, out_features={}, bias={}", in_features, out_features, py_bool(bias.defined()));
}

// ---- Embedding -------------------------------------------------------------------------------------

Embedding::Embedding(int64_t num, int64_t dim, int64_t pad)
    : Module("Embedding"), num_embeddings(num), embedding_dim(dim), padding_idx(pad) {
  HEED_CHECK(num > 0 && dim > 0, "Embedding: num_embeddings {} and embedding_dim {} must be positive", num, dim);
  HEED_CHECK(pad >= -1 && pad < num, "Embedding: padding_idx {} must be -1 (none) or in [0, {})", pad, num);
  weight = register_parameter("weight", empty({num, dim}));
  reset();
}

void Embedding::reset() {
  init::normal_(weight, 0.0, 1.0);
  if (padding_idx >= 0) {
    NoGradGuard no_grad;
    select(weight.detach(), 0, padding_idx).fill_(0.0);
  }
}

Tensor Embedding::forward(const Tensor& indices) { return embedding(weight, indices, padding_idx); }

std::string Embedding::extra_repr() const {
  std::string s = fmt::format("{}, {}", num_embeddings, embedding_dim);
  if (padding_idx >= 0) s += fmt::format(", padding_idx={}", padding_idx);
  return s;
}

// ---- Dropout -----------------------------------------------------------------------------------------

Dropout::Dropout(double p) : Module("Dropout"), p(p) {
  HEED_CHECK(p >= 0.0 && p <= 1.0, "Dropout: p must be in [0, 1], got {}", p);
}

Tensor Dropout::forward(const Tensor& x) { return dropout(x, p, is_training()); }

std::string Dropout::extra_repr() const { return fmt::format("p={}", py_float(p)); }

// ---- LayerNorm -------------------------------------------------------------------------------------

LayerNorm::LayerNorm(Shape shape, double eps, bool affine)
    : Module("LayerNorm"), normalized_shape(std::move(shape)), eps(eps), elementwise_affine(affine) {
  HEED_CHECK(!normalized_shape.empty(), "LayerNorm: normalized_shape must name at least one axis");
  for (int64_t s : normalized_shape)
    HEED_CHECK(s > 0, "LayerNorm: normalized_shape {} has a non-positive size", shape_str(normalized_shape));
  if (affine) {
    weight = register_parameter("weight", empty(normalized_shape));
    bias = register_parameter("bias", empty(normalized_shape));
  }
  reset();
}

void LayerNorm::reset() {
  if (!elementwise_affine) return;
  init::ones_(weight);
  init::zeros_(bias);
}

Tensor LayerNorm::forward(const Tensor& x) { return layer_norm(x, normalized_shape, weight, bias, eps); }

std::string LayerNorm::extra_repr() const {
  // PyTorch prints the shape as a Python tuple: (5,) or (4, 5).
  std::string dims = normalized_shape.size() == 1 ? fmt::format("({},)", normalized_shape[0])
                                                  : fmt::format("({})", fmt::join(normalized_shape, ", "));
  return fmt::format("{}, eps={}, elementwise_affine={}", dims, py_float(eps), py_bool(elementwise_affine));
}

// ---- Flatten ---------------------------------------------------------------------------------------

Flatten::Flatten(int64_t start, int64_t end) : Module("Flatten"), start_dim(start), end_dim(end) {}

Tensor Flatten::forward(const Tensor& x) { return flatten(x, start_dim, end_dim); }

std::string Flatten::extra_repr() const { return fmt::format("start_dim={}, end_dim={}", start_dim, end_dim); }

// ---- activations -----------------------------------------------------------------------------------

Tensor ReLU::forward(const Tensor& x) { return relu(x); }

Tensor LeakyReLU::forward(const Tensor& x) { return leaky_relu(x, negative_slope); }
std::string LeakyReLU::extra_repr() const { return fmt::format("negative_slope={}", py_float(negative_slope)); }

Tensor Tanh::forward(const Tensor& x) { return tanh(x); }

Tensor Sigmoid::forward(const Tensor& x) { return sigmoid(x); }

Tensor GELU::forward(const Tensor& x) { return gelu(x, approximate); }
std::string GELU::extra_repr() const { return approximate ? "approximate='tanh'" : "approximate='none'"; }

Tensor ELU::forward(const Tensor& x) { return elu(x, alpha); }
std::string ELU::extra_repr() const { return fmt::format("alpha={}", py_float(alpha)); }

Tensor Softplus::forward(const Tensor& x) { return softplus(x, beta, threshold); }
std::string Softplus::extra_repr() const {
  return fmt::format("beta={}, threshold={}", py_float(beta), py_float(threshold));
}

Tensor Softmax::forward(const Tensor& x) { return softmax(x, axis); }
std::string Softmax::extra_repr() const { return fmt::format("dim={}", axis); }

}  // namespace heed::nn
