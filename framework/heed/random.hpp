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

class Generator {
 public:
  explicit Generator(uint64_t seed = 5489u) { this->seed(seed); }
  void seed(uint64_t seed);
  uint64_t next_u64() { return engine_(); }
  double uniform();                  ///< [0, 1), 53 random bits
  double uniform(double low, double high) { return low + (high - low) * uniform(); }
  double normal();                   ///< N(0, 1), Box-Muller (same numbers on every platform)
  int64_t randint(int64_t low, int64_t high);  ///< [low, high)
  std::string state() const;         ///< serialized engine state
  void set_state(const std::string& state);

 private:
  std::mt19937_64 engine_;
  bool has_spare_normal_ = false;
  double spare_normal_ = 0.0;
};

Generator& default_generator();
void manual_seed(uint64_t seed);

}  // namespace heed
