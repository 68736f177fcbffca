// heed/init.hpp — parameter initializers with PyTorch's definitions (torch.nn.init).
//
// Each fills a tensor in place (not recorded) from the given generator, or the default one. fan_in and
// fan_out follow PyTorch: for a (out, in, k...) weight, fan_in = in * prod(k), fan_out = out * prod(k).
#pragma once
#include <string>

#include "heed/tensor.hpp"

namespace heed {
class Generator;
/// Parameter initializers (torch.nn.init): fill a float tensor in place, unrecorded. Each throws heed::Error
/// on an undefined or non-float tensor; the fan-based ones also need at least 2 axes.
namespace init {

/// Which fan kaiming_* scales by.
enum class FanMode {
  FanIn,   ///< keeps the forward activations' variance (PyTorch's default)
  FanOut,  ///< keeps the backward gradients' variance
};

/// The recommended gain for a nonlinearity: "linear"/"sigmoid" 1, "tanh" 5/3, "relu" sqrt(2),
/// "leaky_relu" sqrt(2/(1+slope^2)), "selu" 3/4.
double calculate_gain(const std::string& nonlinearity, double param = 0.01);
/// (fan_in, fan_out) of a weight with >= 2 axes (see above); throws for fewer axes.
std::pair<int64_t, int64_t> fan_in_and_fan_out(const Tensor& t);

/// Values from U[low, high); throws when low > high.
void uniform_(Tensor& t, double low = 0.0, double high = 1.0, Generator* gen = nullptr);
/// Values from N(mean, std^2); throws when std < 0.
void normal_(Tensor& t, double mean = 0.0, double std = 1.0, Generator* gen = nullptr);
void constant_(Tensor& t, double value);  ///< every element = value
void zeros_(Tensor& t);  ///< every element = 0
void ones_(Tensor& t);  ///< every element = 1
/// Glorot: U(-a, a) with a = gain * sqrt(6 / (fan_in + fan_out)).
void xavier_uniform_(Tensor& t, double gain = 1.0, Generator* gen = nullptr);
/// Glorot: N(0, std^2) with std = gain * sqrt(2 / (fan_in + fan_out)).
void xavier_normal_(Tensor& t, double gain = 1.0, Generator* gen = nullptr);
/// He: U(-b, b) with b = sqrt(3) * calculate_gain(nonlinearity, a) / sqrt(fan); `a` is the leaky_relu
/// slope. PyTorch's Linear/Conv default is a = sqrt(5).
void kaiming_uniform_(Tensor& t, double a = 0.0, FanMode mode = FanMode::FanIn,
                      const std::string& nonlinearity = "leaky_relu", Generator* gen = nullptr);
/// He: N(0, std^2) with std = calculate_gain(nonlinearity, a) / sqrt(fan).
void kaiming_normal_(Tensor& t, double a = 0.0, FanMode mode = FanMode::FanIn,
                     const std::string& nonlinearity = "leaky_relu", Generator* gen = nullptr);
/// A (semi-)orthogonal matrix from the QR decomposition of a Gaussian matrix (LAPACK via xtensor-blas);
/// tensors with more than 2 axes are flattened to (rows, rest) as in PyTorch.
void orthogonal_(Tensor& t, double gain = 1.0, Generator* gen = nullptr);

}  // namespace init
}  // namespace heed
