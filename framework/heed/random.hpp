// heed/random.hpp — seedable random numbers.
//
// One global default generator serves every random op (randn, dropout, initializers, shuffling) unless
// a Generator is passed explicitly. heed::manual_seed(n) reseeds it, making a whole single-threaded run
// reproducible. The state can be saved and restored (checkpoint resume continues the same stream).
#pragma once
#include <cstdint>
#include <random>
#include <string>

namespace heed {

/// A seedable random stream (std::mt19937_64) with platform-independent uniform and normal draws.
class Generator {
 public:
  /// 5489 is mt19937's default seed, also the default generator's.
  explicit Generator(uint64_t seed = 5489u) { this->seed(seed); }
  /// Restarts the stream from `seed` (and drops a cached second Box-Muller normal).
  void seed(uint64_t seed);
  /// The next raw 64-bit output of the engine.
  uint64_t next_u64() { return engine_(); }
  /// [0, 1), 53 random bits: (next_u64() >> 11) · 2^-53. Inline, so per-element loops (dropout) inline
  /// the engine too.
  double uniform() { return static_cast<double>(engine_() >> 11) * 0x1.0p-53; }
  /// [low, high): low + (high - low) * uniform().
  double uniform(double low, double high) { return low + (high - low) * uniform(); }
  double normal();                   ///< N(0, 1), Box-Muller (same numbers on every platform)
  int64_t randint(int64_t low, int64_t high);  ///< uniform in [low, high), unbiased; throws when high <= low
  std::string state() const;         ///< serialized engine state
  /// Restores a string from state(), spare normal included; throws heed::Error on any other string.
  void set_state(const std::string& state);

 private:
  std::mt19937_64 engine_;
  bool has_spare_normal_ = false;
  double spare_normal_ = 0.0;
};

/// The global generator every random op uses when none is passed (seeded 5489 at start).
Generator& default_generator();
/// Reseeds the default generator: a single-threaded run becomes reproducible.
void manual_seed(uint64_t seed);

}  // namespace heed
