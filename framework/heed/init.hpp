// heed/init.hpp — parameter initializers with PyTorch's definitions (torch.nn.init).
//
// Each fills a tensor in place (not recorded) from the given generator, or the default one. fan_in and
// fan_out follow PyTorch: for a (out, in, k...) weight, fan_in = in * prod(k), fan_out = out * prod(k).
#pragma once
#include <string>

#include "heed/tensor.hpp"

namespace heed {
class Generator;
namespace init {

enum class FanMode { FanIn, FanOut };

/// The recommended gain for a nonlinearity: "linear"/"sigmoid" 1, "tanh" 5/3, "relu" sqrt(2),
/// "leaky_relu" sqrt(2/(1+slope^2)), "selu" 3/4.
double calculate_gain(const std::string& nonlinearity, double param = 0.01);
std::pair<int64_t, int64_t> fan_in_and_fan_out(const Tensor& t);

void uniform_(Tensor& t, double low = 0.0, double high = 1.0, Generator* gen = nullptr);
void normal_(Tensor& t, double mean = 0.0, double std = 1.0, Generator* gen = nullptr);
void constant_(Tensor& t, double value);
void zeros_(Tensor& t);
void ones_(Tensor& t);
void xavier_uniform_(Tensor& t, double gain = 1.0, Generator* gen = nullptr);
void xavier_normal_(Tensor& t, double gain = 1.0, Generator* gen = nullptr);
void kaiming_uniform_(Tensor& t, double a = 0.0, FanMode mode = FanMode::FanIn,
                      const std::string& nonlinearity = "leaky_relu", Generator* gen = nullptr);
void kaiming_normal_(Tensor& t, double a = 0.0, FanMode mode = FanMode::FanIn,
                     const std::string& nonlinearity = "leaky_relu", Generator* gen = nullptr);
/// A (semi-)orthogonal matrix from the QR decomposition of a Gaussian matrix (LAPACK via xtensor-blas);
/// tensors with more than 2 axes are flattened to (rows, rest) as in PyTorch.
void orthogonal_(Tensor& t, double gain = 1.0, Generator* gen = nullptr);

}  // namespace init
}  // namespace heed
