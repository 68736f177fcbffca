// framework/random.cpp — the seedable generator behind every random op.
#include "heed/random.hpp"

#include <atomic>
#include <cmath>
#include <sstream>

#include "heed/error.hpp"

namespace heed {

void Generator::seed(uint64_t s) {
  engine_.seed(s);
  has_spare_normal_ = false;
}

double Generator::normal() {
  if (has_spare_normal_) {
    has_spare_normal_ = false;
    return spare_normal_;
  }
  double u1 = uniform();
  while (u1 <= 0.0) u1 = uniform();
  const double u2 = uniform();
  const double radius = std::sqrt(-2.0 * std::log(u1));
  const double angle = 2.0 * M_PI * u2;
  spare_normal_ = radius * std::sin(angle);
  has_spare_normal_ = true;
  return radius * std::cos(angle);
}

int64_t Generator::randint(int64_t low, int64_t high) {
  HEED_CHECK(high > low, "Generator::randint: empty range [{}, {})", low, high);
  const uint64_t span = static_cast<uint64_t>(high - low);
  // Rejection sampling: unbiased for any span.
  const uint64_t limit = UINT64_MAX - UINT64_MAX % span;
  uint64_t r;
  do r = engine_(); while (r >= limit);
  return low + static_cast<int64_t>(r % span);
}

std::string Generator::state() const {
  std::ostringstream os;
  os << engine_ << ' ' << has_spare_normal_ << ' ';
  os.precision(17);
  os << spare_normal_;
  return os.str();
}

void Generator::set_state(const std::string& state) {
  std::istringstream is(state);
  std::mt19937_64 e;
  bool has = false;
  double spare = 0.0;
  is >> e >> has >> spare;
  HEED_CHECK(!is.fail(), "Generator::set_state: the state string is not one written by Generator::state()");
  engine_ = e;
  has_spare_normal_ = has;
  spare_normal_ = spare;
}

namespace {
// The seed of default generators not yet created: 5489 until manual_seed is called (heed/random.hpp).
std::atomic<uint64_t> g_default_seed{5489u};
}  // namespace

Generator& default_generator() {
  thread_local Generator g(g_default_seed.load(std::memory_order_relaxed));
  return g;
}

void manual_seed(uint64_t seed) {
  g_default_seed.store(seed, std::memory_order_relaxed);
  default_generator().seed(seed);
}

}  // namespace heed
