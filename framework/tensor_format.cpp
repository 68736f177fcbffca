// framework/tensor_format.cpp — Tensor::to_string: the values as nested lists, long axes elided.
#include <functional>
#include <string>
#include <vector>

#include "heed/tensor.hpp"

namespace heed {

namespace {
std::string format_element(double v, DType d) {
  if (d == DType::Int64) return fmt::format("{}", static_cast<int64_t>(v));
  if (d == DType::Bool) return v != 0 ? "true" : "false";
  return fmt::format("{:.4g}", v);
}
}  // namespace

std::string Tensor::to_string(int64_t max_per_axis) const {
  if (!impl_) return "Tensor(undefined)";
  std::vector<double> values = to_vector<double>();
  const Shape& s = shape();
  std::string body;
  const Shape strides = contiguous_strides(s);
  // Recursive printer with "..." for long axes.
  std::function<void(int64_t, int64_t)> rec = [&](int64_t d, int64_t base) {
    if (d == static_cast<int64_t>(s.size())) { body += format_element(values[base], dtype()); return; }
    body += "[";
    const int64_t n = s[d];
    const bool cut = n > max_per_axis;
    for (int64_t i = 0; i < n; ++i) {
      if (cut && i == max_per_axis / 2) {
        body += "..., ";
        i = n - max_per_axis / 2 - 1;
        continue;
      }
      rec(d + 1, base + i * strides[d]);
      if (i + 1 < n) body += ", ";
    }
    body += "]";
  };
  rec(0, 0);
  std::string extra;
  if (impl_->requires_grad) extra = ", requires_grad";
  return fmt::format("Tensor({}, shape={}, {}{})", body, shape_str(s), dtype_name(dtype()), extra);
}

}  // namespace heed
