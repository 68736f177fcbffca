// layers/conv.cpp — Conv2d, MaxPool2d, AvgPool2d (the ops are in framework/ops/conv.cpp).
#include "heed/nn/conv.hpp"

#include <cmath>

#include "heed/init.hpp"

namespace heed::nn {
namespace {

std::string tuple_str(Size2 s) { return fmt::format("({}, {})", s.h, s.w); }
// Pools print a square size as one number, as PyTorch does when given an int.
std::string size_str(Size2 s) { return s.h == s.w ? fmt::format("{}", s.h) : tuple_str(s); }

}  // namespace

Conv2d::Conv2d(const Conv2dOptions& opts) : Module("Conv2d"), options(opts) {
  const Size2 k = opts.kernel_size();
  HEED_CHECK(opts.in_channels() > 0 && opts.out_channels() > 0 && k.h > 0 && k.w > 0,
             "Conv2d: in_channels {}, out_channels {} and kernel_size {} must be positive", opts.in_channels(),
             opts.out_channels(), tuple_str(k));
  weight = register_parameter("weight", empty({opts.out_channels(), opts.in_channels(), k.h, k.w}));
  if (opts.bias()) bias = register_parameter("bias", empty({opts.out_channels()}));
  reset();
}

void Conv2d::reset() {
  // PyTorch: kaiming_uniform_(a = sqrt(5)) gives bound = 1/sqrt(fan_in); the bias uses the same bound.
  init::kaiming_uniform_(weight, std::sqrt(5.0));
  if (bias.defined()) {
    const int64_t fan_in = init::fan_in_and_fan_out(weight).first;
    const double bound = 1.0 / std::sqrt(static_cast<double>(fan_in));
    init::uniform_(bias, -bound, bound);
  }
}

Tensor Conv2d::forward(const Tensor& x) {
  return conv2d(x, weight, bias, options.stride(), options.padding(), options.dilation());
}

std::string Conv2d::extra_repr() const {
  std::string s = fmt::format("{}, {}, kernel_size={}, stride={}", options.in_channels(), options.out_channels(),
                              tuple_str(options.kernel_size()), tuple_str(options.stride()));
  if (options.padding() != Size2(0)) s += ", padding=" + tuple_str(options.padding());
  if (options.dilation() != Size2(1)) s += ", dilation=" + tuple_str(options.dilation());
  if (!options.bias()) s += ", bias=False";
  return s;
}

Tensor MaxPool2d::forward(const Tensor& x) {
  return max_pool2d(x, options.kernel_size(), options.stride(), options.padding());
}

std::string MaxPool2d::extra_repr() const {  // heed has no dilation or ceil_mode; PyTorch prints both
  return fmt::format("kernel_size={}, stride={}, padding={}, dilation=1, ceil_mode=False",
                     size_str(options.kernel_size()), size_str(options.stride()), size_str(options.padding()));
}

Tensor AvgPool2d::forward(const Tensor& x) {
  return avg_pool2d(x, options.kernel_size(), options.stride(), options.padding());
}

std::string AvgPool2d::extra_repr() const {
  return fmt::format("kernel_size={}, stride={}, padding={}", size_str(options.kernel_size()),
                     size_str(options.stride()), size_str(options.padding()));
}

}  // namespace heed::nn
