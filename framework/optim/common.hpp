// Private helpers of framework/optim/*.cpp: state-dict keys, range checks of hyper-parameters, 0-d tensors.
#pragma once
#include <cctype>
#include <cstdint>
#include <string>

#include "heed/error.hpp"
#include "heed/optim/optimizer.hpp"
#include "heed/tensor.hpp"

namespace heed::optim::detail {

/// Splits "<prefix><index>.<rest>" (e.g. "state.3.exp_avg") into index and rest; false when `key` has
/// another form. "<prefix><index>" alone gives an empty rest.
inline bool split_indexed_key(const std::string& key, const std::string& prefix, int64_t& index, std::string& rest) {
  if (key.rfind(prefix, 0) != 0) return false;
  std::size_t pos = prefix.size();
  while (pos < key.size() && std::isdigit(static_cast<unsigned char>(key[pos]))) ++pos;
  const std::size_t digits = pos - prefix.size();
  if (digits == 0 || digits > 18) return false;
  index = std::stoll(key.substr(prefix.size(), digits));
  if (pos == key.size()) {
    rest.clear();
    return true;
  }
  if (key[pos] != '.' || pos + 1 == key.size()) return false;
  rest = key.substr(pos + 1);
  return true;
}

/// Throws "<optimizer>: invalid <name> <value> (must be >= 0)".
inline void require_at_least_zero(const std::string& optimizer, const char* name, double value) {
  HEED_CHECK(value >= 0.0, "{}: invalid {} {} (must be >= 0)", optimizer, name, value);
}

/// Throws "<optimizer>: invalid <name> <value> (must be in [0, 1))".
inline void require_beta(const std::string& optimizer, const char* name, double value) {
  HEED_CHECK(value >= 0.0 && value < 1.0, "{}: invalid {} {} (must be in [0, 1))", optimizer, name, value);
}

/// The error of OptimizerOptions::set_hyperparams for a name the options do not have.
[[noreturn]] void unknown_hyperparam(const char* options, const std::string& name, const Hyperparams& known);

/// A 0-d Float64 tensor (hyper-parameters and step counts in a state dict).
inline Tensor scalar_f64(double value) { return scalar(value, DType::Float64); }

/// A boolean hyper-parameter in its state-dict form.
inline double flag(bool on) { return on ? 1.0 : 0.0; }

}  // namespace heed::optim::detail
