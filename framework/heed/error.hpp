// heed/error.hpp — the one exception type heed throws for bad input.
//
// Every check on user input throws heed::Error with a message that names the op, the argument and the
// shapes involved, e.g. "matmul: inner dimensions differ: [32, 100] x [64, 1]". heed never asserts or
// aborts on bad input.
#pragma once
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include <fmt/format.h>

namespace heed {

/// The exception for bad input (shapes, dtypes, arguments, files); what() names the op and the values.
class Error : public std::runtime_error {
 public:
  /// `what` is the complete message, e.g. "matmul: inner dimensions differ: [32, 100] x [64, 1]".
  explicit Error(const std::string& what) : std::runtime_error(what) {}
};

/// A shape as it appears in error messages: {2, 3, 4} -> "[2, 3, 4]", {} -> "[]".
std::string shape_str(const std::vector<int64_t>& shape);

// Throws heed::Error with a formatted message: HEED_CHECK(cond, "op: what {} {}", a, b).
#define HEED_CHECK(cond, ...)                                   \
  do {                                                          \
    if (!(cond)) throw ::heed::Error(::fmt::format(__VA_ARGS__)); \
  } while (0)

}  // namespace heed
