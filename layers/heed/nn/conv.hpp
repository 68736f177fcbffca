// heed/nn/conv.hpp — 2-D convolution and pooling layers on (N, C, H, W) images.
//
//   Conv2d     y[n, o] = b[o] + sum_c W[o, c] (*) x[n, c]   (cross-correlation, zero padding, groups = 1)
//              weight (out_channels, in_channels, kh, kw), bias (out_channels);
//              W, b ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)), fan_in = in_channels * kh * kw (PyTorch's init)
//   MaxPool2d  y = max over each kernel window (padding counts as -inf)
//   AvgPool2d  y = mean over each kernel window (padded zeros count, as PyTorch's count_include_pad)
//   Output size per axis: floor((in + 2 padding - dilation (kernel - 1) - 1) / stride) + 1.
//
// Options follow PyTorch's C++ frontend:
//   auto conv = std::make_shared<heed::nn::Conv2d>(heed::nn::Conv2dOptions(3, 16, 3).stride(1).padding(1));
//   auto pool = std::make_shared<heed::nn::MaxPool2d>(heed::nn::MaxPool2dOptions(2).stride(2));
#pragma once
#include <cstdint>
#include <string>

#include "heed/nn/module.hpp"
#include "heed/ops.hpp"
#include "heed/options.hpp"

namespace heed::nn {

/// Conv2d's settings: stride 1, padding 0, dilation 1 and a bias unless set otherwise. Setters return
/// *this for chaining; the same names without arguments read the value.
struct Conv2dOptions {
  /// The required sizes: input channels, output channels (filters) and the kernel (kh, kw).
  Conv2dOptions(int64_t in_channels, int64_t out_channels, Size2 kernel_size)
      : in_channels_(in_channels), out_channels_(out_channels), kernel_size_(kernel_size) {}
  HEED_ARG(int64_t, in_channels);  ///< C_in
  HEED_ARG(int64_t, out_channels);  ///< C_out
  HEED_ARG(Size2, kernel_size);  ///< (kh, kw)
  HEED_ARG(Size2, stride) = 1;  ///< step of the window
  HEED_ARG(Size2, padding) = 0;  ///< zeros added on each side
  HEED_ARG(Size2, dilation) = 1;  ///< spacing between kernel taps
  HEED_ARG(bool, bias) = true;  ///< learn a per-channel bias
};

/// 2-D convolution layer: x (N, C_in, H, W) -> (N, C_out, H_out, W_out) (see the header comment).
class Conv2d : public Module {
 public:
  explicit Conv2d(const Conv2dOptions& options);  ///< PyTorch's init; throws on non-positive channels or kernel
  /// Stride 1, no padding, with bias.
  Conv2d(int64_t in_channels, int64_t out_channels, Size2 kernel_size)
      : Conv2d(Conv2dOptions(in_channels, out_channels, kernel_size)) {}
  void reset() override;  ///< re-draws the parameters (PyTorch's reset_parameters)
  Tensor forward(const Tensor& x) override;
  std::string extra_repr() const override;

  Conv2dOptions options;  ///< the settings it was made with
  Tensor weight;  ///< (out_channels, in_channels, kh, kw)
  Tensor bias;    ///< (out_channels), undefined when options.bias() is false
};

/// Settings of MaxPool2d and AvgPool2d: kernel, stride (defaults to the kernel), padding 0.
struct Pool2dOptions {
  /// A kernel_size window moved by kernel_size (implicit, as in MaxPool2d(2)).
  Pool2dOptions(Size2 kernel_size) : kernel_size_(kernel_size), stride_(kernel_size) {}  // NOLINT: implicit
  HEED_ARG(Size2, kernel_size);  ///< (kh, kw) of the window
  HEED_ARG(Size2, stride);  ///< step of the window (default: the kernel size, as in PyTorch)
  /// Added on each side (-inf for max, 0 for average); at most half the kernel.
  HEED_ARG(Size2, padding) = 0;
};
using MaxPool2dOptions = Pool2dOptions;  ///< PyTorch's name
using AvgPool2dOptions = Pool2dOptions;  ///< PyTorch's name

/// Max pooling of (N, C, H, W) or (C, H, W) inputs; the gradient goes to each window's first maximum.
class MaxPool2d : public Module {
 public:
  explicit MaxPool2d(const MaxPool2dOptions& options) : Module("MaxPool2d"), options(options) {}  ///< from options
  /// stride = kernel_size, no padding
  explicit MaxPool2d(Size2 kernel_size) : MaxPool2d(MaxPool2dOptions(kernel_size)) {}
  Tensor forward(const Tensor& x) override;
  std::string extra_repr() const override;
  MaxPool2dOptions options;  ///< kernel, stride, padding
};

/// Average pooling of (N, C, H, W) or (C, H, W) inputs (padded zeros count in the divisor).
class AvgPool2d : public Module {
 public:
  explicit AvgPool2d(const AvgPool2dOptions& options) : Module("AvgPool2d"), options(options) {}  ///< from options
  /// stride = kernel_size, no padding
  explicit AvgPool2d(Size2 kernel_size) : AvgPool2d(AvgPool2dOptions(kernel_size)) {}
  Tensor forward(const Tensor& x) override;
  std::string extra_repr() const override;
  AvgPool2dOptions options;  ///< kernel, stride, padding
};

}  // namespace heed::nn
