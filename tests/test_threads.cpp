// Threads: each thread has its own default generator and tape, so models trained in two threads at once
// give exactly the results each gives alone. This file is also built on its own with ThreadSanitizer
// (tests/tsan/), which must report no data race.
#include <doctest/doctest.h>

#include <atomic>
#include <exception>
#include <heed/heed.hpp>
#include <heed/nn/basic.hpp>
#include <thread>

using heed::Tensor;

namespace {

class DropoutNet : public heed::nn::Module {
 public:
  DropoutNet() : Module("DropoutNet") {
    fc1 = register_module("fc1", std::make_shared<heed::nn::Linear>(8, 32));
    drop = register_module("drop", std::make_shared<heed::nn::Dropout>(0.3));
    fc2 = register_module("fc2", std::make_shared<heed::nn::Linear>(32, 1));
  }
  Tensor forward(const Tensor& x) override { return (*fc2)((*drop)(heed::relu((*fc1)(x)))); }
  std::shared_ptr<heed::nn::Linear> fc1, fc2;
  std::shared_ptr<heed::nn::Dropout> drop;
};

struct Run {
  std::vector<float> weights;
  std::vector<double> losses;
  std::vector<float> randn_after;  // the default generator's next draws, after training
};

// Seeds the calling thread's default generator, builds a model (random init), trains it with dropout
// (random masks) and a shuffling DataLoader. With `start`, waits until `parties` threads have seeded and
// built theirs, so that the threads' seeding, initialization and training overlap.
Run train(uint64_t seed, std::atomic<int>* start = nullptr, int parties = 0) {
  heed::manual_seed(seed);
  heed::Generator data_gen(seed + 100);
  const Tensor x = heed::randn({256, 8}, heed::DType::Float32, &data_gen);
  const Tensor y = heed::sum(heed::narrow(x, 1, 0, 3), {1}, true);
  if (start) {
    start->fetch_add(1);
    while (start->load() < parties) std::this_thread::yield();
  }
  DropoutNet model;
  heed::optim::Adam opt(model.parameters(), heed::optim::AdamOptions(0.01));
  heed::FitOptions o;
  o.epochs = 3;
  o.batch_size = 16;
  o.verbose = false;
  o.seed = seed;
  const heed::History h = heed::fit(
      model, opt, heed::data::TensorDataset({x, y}),
      [&model](const std::vector<Tensor>& b, bool) { return heed::StepOutput{heed::mse_loss(model(b[0]), b[1])}; },
      o);
  Run r;
  for (const Tensor& p : model.parameters()) {
    const std::vector<float> v = p.to_vector<float>();
    r.weights.insert(r.weights.end(), v.begin(), v.end());
  }
  r.losses = h.batch_losses;
  r.randn_after = heed::randn({4}).to_vector<float>();
  return r;
}

// Runs f in a new thread and rethrows what it threw.
template <class F>
std::thread spawn(F f, std::exception_ptr& error) {
  return std::thread([f, &error] {
    try {
      f();
    } catch (...) {
      error = std::current_exception();
    }
  });
}

}  // namespace

TEST_CASE("threads: two models with dropout trained in two threads give the same results as each alone") {
  const Run alone1 = train(1), alone2 = train(2);
  REQUIRE(alone1.weights != alone2.weights);
  for (int repeat = 0; repeat < 2; ++repeat) {
    Run t1, t2;
    std::exception_ptr e1, e2;
    std::atomic<int> start{0};
    std::thread a = spawn([&] { t1 = train(1, &start, 2); }, e1), b = spawn([&] { t2 = train(2, &start, 2); }, e2);
    a.join();
    b.join();
    if (e1) std::rethrow_exception(e1);
    if (e2) std::rethrow_exception(e2);
    CHECK(t1.weights == alone1.weights);
    CHECK(t1.losses == alone1.losses);
    CHECK(t1.randn_after == alone1.randn_after);
    CHECK(t2.weights == alone2.weights);
    CHECK(t2.losses == alone2.losses);
    CHECK(t2.randn_after == alone2.randn_after);
  }
}

TEST_CASE("threads: a thread's default generator starts from the latest manual_seed's seed") {
  heed::manual_seed(42);
  const std::vector<float> main_draws = heed::randn({5}).to_vector<float>();
  heed::manual_seed(42);
  std::vector<float> thread_draws, thread_after_reseed;
  std::exception_ptr error;
  std::thread t = spawn(
      [&] {
        thread_draws = heed::randn({5}).to_vector<float>();  // first draw in this thread: seeded 42
      },
      error);
  t.join();
  if (error) std::rethrow_exception(error);
  CHECK(thread_draws == main_draws);
  // The main thread's stream was not touched by the other thread's draws.
  CHECK(heed::randn({5}).to_vector<float>() == main_draws);

  // manual_seed in one thread does not reseed another thread's existing generator.
  heed::manual_seed(7);
  const std::vector<float> first = heed::randn({3}).to_vector<float>(), second = heed::randn({3}).to_vector<float>();
  heed::manual_seed(7);
  CHECK(heed::randn({3}).to_vector<float>() == first);
  std::thread u = spawn(
      [&] {
        heed::manual_seed(8);  // reseeds this thread's generator only
        thread_after_reseed = heed::randn({3}).to_vector<float>();
      },
      error);
  u.join();
  if (error) std::rethrow_exception(error);
  CHECK(thread_after_reseed != first);
  CHECK(heed::randn({3}).to_vector<float>() == second);  // the main thread's stream went on undisturbed
}
