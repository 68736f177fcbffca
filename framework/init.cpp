// framework/init.cpp — parameter initializers with torch.nn.init's definitions (see heed/init.hpp).
//
// Every initializer draws a dense tensor of the target's shape and copies it in with copy_, so views
// (a transposed or narrowed weight) are filled element by element and nothing is recorded on the tape.
// Random values are drawn in double and rounded once to the tensor's dtype.
#include "heed/init.hpp"

#include <cmath>
#include <tuple>

#include <xtensor/xadapt.hpp>
#include <xtensor/xtensor.hpp>
#include <xtensor-blas/xlinalg.hpp>

#include "heed/autograd.hpp"
#include "heed/random.hpp"

namespace heed::init {
namespace {

// Initializers fill float tensors only; the message names the initializer and the tensor.
void check_target(const Tensor& t, const char* op) {
  HEED_CHECK(t.defined(), "{}: the tensor is undefined", op);
  HEED_CHECK(is_floating(t.dtype()), "{}: expected a Float32 or Float64 tensor, got {} of shape {}", op,
             dtype_name(t.dtype()), shape_str(t.shape()));
}

Generator& pick(Generator* gen) { return gen ? *gen : default_generator(); }

// Copies a dense Float64 `values` of t's shape into t (any strides), converting to t's dtype.
void assign(Tensor& t, const Tensor& values) {
  NoGradGuard no_grad;
  t.copy_(values);
}

// PyTorch's _calculate_correct_fan.
int64_t correct_fan(const Tensor& t, FanMode mode) {
  const auto [fan_in, fan_out] = fan_in_and_fan_out(t);
  return mode == FanMode::FanIn ? fan_in : fan_out;
}

}  // namespace

double calculate_gain(const std::string& nonlinearity, double param) {
  if (nonlinearity == "linear" || nonlinearity == "sigmoid" || nonlinearity == "conv1d" ||
      nonlinearity == "conv2d" || nonlinearity == "conv3d" || nonlinearity == "conv_transpose1d" ||
      nonlinearity == "conv_transpose2d" || nonlinearity == "conv_transpose3d")
    return 1.0;
  if (nonlinearity == "tanh") return 5.0 / 3.0;
  if (nonlinearity == "relu") return std::sqrt(2.0);
  // gain = sqrt(2 / (1 + negative_slope^2))
  if (nonlinearity == "leaky_relu") return std::sqrt(2.0 / (1.0 + param * param));
  if (nonlinearity == "selu") return 3.0 / 4.0;
  throw Error(fmt::format("calculate_gain: unsupported nonlinearity \"{}\" (expected linear, conv1d, conv2d, "
                          "conv3d, conv_transpose1d/2d/3d, sigmoid, tanh, relu, leaky_relu or selu)",
                          nonlinearity));
}

// For a (out, in, k...) weight: fan_in = in * prod(k), fan_out = out * prod(k).
std::pair<int64_t, int64_t> fan_in_and_fan_out(const Tensor& t) {
  HEED_CHECK(t.defined(), "fan_in_and_fan_out: the tensor is undefined");
  HEED_CHECK(t.dim() >= 2,
             "fan_in_and_fan_out: fan in and fan out can not be computed for a tensor with fewer than 2 "
             "dimensions, got shape {}",
             shape_str(t.shape()));
  int64_t receptive_field = 1;
  for (int64_t d = 2; d < t.dim(); ++d) receptive_field *= t.shape()[static_cast<std::size_t>(d)];
  return {t.shape()[1] * receptive_field, t.shape()[0] * receptive_field};
}

void uniform_(Tensor& t, double low, double high, Generator* gen) {
  check_target(t, "uniform_");
  HEED_CHECK(low <= high, "uniform_: low ({}) must not exceed high ({}) for shape {}", low, high,
             shape_str(t.shape()));
  assign(t, uniform(t.shape(), low, high, DType::Float64, &pick(gen)));
}

void normal_(Tensor& t, double mean, double std, Generator* gen) {
  check_target(t, "normal_");
  HEED_CHECK(std >= 0, "normal_: std must be non-negative, got {} for shape {}", std, shape_str(t.shape()));
  Generator& g = pick(gen);
  Tensor values = make_tensor(t.shape(), DType::Float64);
  double* p = values.data<double>();
  for (int64_t i = 0; i < values.numel(); ++i) p[i] = mean + std * g.normal();
  assign(t, values);
}

void constant_(Tensor& t, double value) {
  check_target(t, "constant_");
  t.fill_(value);
}

void zeros_(Tensor& t) {
  check_target(t, "zeros_");
  t.fill_(0.0);
}

void ones_(Tensor& t) {
  check_target(t, "ones_");
  t.fill_(1.0);
}

// std = gain * sqrt(2 / (fan_in + fan_out));  U(-a, a) with a = sqrt(3) * std
void xavier_uniform_(Tensor& t, double gain, Generator* gen) {
  check_target(t, "xavier_uniform_");
  const auto [fan_in, fan_out] = fan_in_and_fan_out(t);
  const double std = gain * std::sqrt(2.0 / static_cast<double>(fan_in + fan_out));
  const double bound = std::sqrt(3.0) * std;
  assign(t, uniform(t.shape(), -bound, bound, DType::Float64, &pick(gen)));
}

// N(0, std^2) with std = gain * sqrt(2 / (fan_in + fan_out))
void xavier_normal_(Tensor& t, double gain, Generator* gen) {
  check_target(t, "xavier_normal_");
  const auto [fan_in, fan_out] = fan_in_and_fan_out(t);
  const double std = gain * std::sqrt(2.0 / static_cast<double>(fan_in + fan_out));
  normal_(t, 0.0, std, gen);
}

// std = calculate_gain(nonlinearity, a) / sqrt(fan);  U(-bound, bound) with bound = sqrt(3) * std
void kaiming_uniform_(Tensor& t, double a, FanMode mode, const std::string& nonlinearity, Generator* gen) {
  check_target(t, "kaiming_uniform_");
  const int64_t fan = correct_fan(t, mode);
  if (t.numel() == 0) return;  // PyTorch warns and leaves a zero-element tensor alone
  const double std = calculate_gain(nonlinearity, a) / std::sqrt(static_cast<double>(fan));
  const double bound = std::sqrt(3.0) * std;
  assign(t, uniform(t.shape(), -bound, bound, DType::Float64, &pick(gen)));
}

// N(0, std^2) with std = calculate_gain(nonlinearity, a) / sqrt(fan)
void kaiming_normal_(Tensor& t, double a, FanMode mode, const std::string& nonlinearity, Generator* gen) {
  check_target(t, "kaiming_normal_");
  const int64_t fan = correct_fan(t, mode);
  if (t.numel() == 0) return;
  const double std = calculate_gain(nonlinearity, a) / std::sqrt(static_cast<double>(fan));
  normal_(t, 0.0, std, gen);
}

// PyTorch: A ~ N(0,1) of (rows, cols) (transposed when rows < cols so that it is tall); A = QR;
// Q *= sign(diag(R)) makes the result uniform over (semi-)orthogonal matrices; transpose back; * gain.
void orthogonal_(Tensor& t, double gain, Generator* gen) {
  check_target(t, "orthogonal_");
  HEED_CHECK(t.dim() >= 2, "orthogonal_: only tensors with 2 or more dimensions are supported, got shape {}",
             shape_str(t.shape()));
  if (t.numel() == 0) return;
  const std::size_t rows = static_cast<std::size_t>(t.shape()[0]);
  const std::size_t cols = static_cast<std::size_t>(t.numel()) / rows;
  const bool wide = rows < cols;
  const std::size_t tall_rows = wide ? cols : rows, tall_cols = wide ? rows : cols;

  Tensor gaussian = randn({static_cast<int64_t>(rows), static_cast<int64_t>(cols)}, DType::Float64, &pick(gen));
  auto flat = xt::adapt(gaussian.data<double>(), rows * cols, xt::no_ownership(),
                        std::array<std::size_t, 2>{rows, cols});
  xt::xtensor<double, 2> a = wide ? xt::xtensor<double, 2>(xt::transpose(flat)) : xt::xtensor<double, 2>(flat);
  auto [q, r] = xt::linalg::qr(a, xt::linalg::qrmode::reduced);  // q (tall_rows, tall_cols), r square

  Tensor result = make_tensor(t.shape(), DType::Float64);
  double* out = result.data<double>();
  for (std::size_t j = 0; j < tall_cols; ++j) {
    const double d = r(j, j);
    const double sign = d > 0 ? 1.0 : (d < 0 ? -1.0 : 0.0);  // torch.sign: 0 stays 0
    for (std::size_t i = 0; i < tall_rows; ++i) {
      const double v = gain * sign * q(i, j);
      if (wide) out[j * cols + i] = v;  // the transpose back to (rows, cols)
      else out[i * cols + j] = v;
    }
  }
  assign(t, result);
}

}  // namespace heed::init
