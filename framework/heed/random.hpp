// heed/random.hpp — seedable random numbers.
//
// A default generator serves every random op (randn, dropout, initializers, shuffling) unless a Generator
// is passed explicitly. There is one per thread, so models trained in different threads never share (or
// race on) a stream:
//   - heed::manual_seed(n) reseeds the calling thread's default generator with n and makes n the seed of
//     every thread's default generator that does not exist yet;
//   - a thread's default generator is made at that thread's first random draw, seeded with the seed of
//     the latest manual_seed call from any thread (5489, mt19937's default, before any call). It is not
//     derived from a thread id, so a thread that trains a model draws exactly the numbers the main thread
//     would draw for the same work after the same manual_seed: the same result as training it alone;
//   - manual_seed never reseeds another thread's generator that already exists (that would change its
//     stream at an arbitrary point); call manual_seed in that thread instead.
// A single-threaded program therefore sees exactly the one stream it always had. The state can be saved
// and restored (checkpoint resume continues the same stream).
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

/// The calling thread's default generator, which every random op uses when none is passed (see above
/// for its seed: 5489, or the latest manual_seed's seed when the thread first draws).
Generator& default_generator();
/// Reseeds the calling thread's default generator and sets the seed of default generators created later
/// (in threads that have not drawn yet): a run becomes reproducible.
void manual_seed(uint64_t seed);

}  // namespace heed
