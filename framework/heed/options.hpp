// heed/options.hpp — HEED_ARG, the one way heed declares options (layers, ops and optimizers alike).
//
// An options struct takes its required values in the constructor and declares every other field with
// HEED_ARG and its default, as libtorch's TORCH_ARG does:
//
//   struct LinearOptions {
//     LinearOptions(int64_t in, int64_t out) : in_features_(in), out_features_(out) {}
//     HEED_ARG(int64_t, in_features);
//     HEED_ARG(int64_t, out_features);
//     HEED_ARG(bool, bias) = true;
//   };
//   auto opts = LinearOptions(4, 16).bias(false);   // setters chain
//   if (opts.bias()) ...                            // the same name without an argument reads
//
// The fields are typed; string names appear only where a file format needs them (an optimizer's
// state dict). See docs/custom-layers.md, "Options".
#pragma once

/// Declares an option `name` of type T: `name(value)` sets it and returns the options (chainable),
/// `name()` reads it. Follow it with `= default_value;` or `;`. (`T const&`, not `const T&`: with
/// T = Generator* the reference must be to a const pointer, not to a pointer to const. A type with a
/// comma, such as std::tuple<double, double>, needs an alias first: `using betas_t = ...;`.)
#define HEED_ARG(T, name)                                   \
 public:                                                    \
  auto& name(T const& new_value) {                          \
    this->name##_ = new_value;                              \
    return *this;                                           \
  }                                                         \
  T const& name() const noexcept { return this->name##_; }  \
                                                            \
 private:                                                   \
  T name##_
