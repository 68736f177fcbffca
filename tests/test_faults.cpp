// Fault handling (issue #16): heed::fit with non-finite numbers and unloadable resume checkpoints, and
// crash safety — a process killed with SIGKILL while saving, or while training with a resume
// checkpoint, never leaves a file that loads wrong, and a killed run resumes to the same bits.
#include <doctest/doctest.h>

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <heed/heed.hpp>
#include <heed/nn/basic.hpp>
#include <random>
#include <stdexcept>
#include <thread>

#include "testing.hpp"

using heed::Tensor;
using heed::testing::error_of;

namespace {

class Net : public heed::nn::Module {
 public:
  explicit Net(int64_t hidden = 16) : Module("Net") {
    fc1 = register_module("fc1", std::make_shared<heed::nn::Linear>(4, hidden));
    drop = register_module("drop", std::make_shared<heed::nn::Dropout>(0.2));
    fc2 = register_module("fc2", std::make_shared<heed::nn::Linear>(hidden, 1));
  }
  Tensor forward(const Tensor& x) override { return (*fc2)((*drop)(heed::tanh((*fc1)(x)))); }
  std::shared_ptr<heed::nn::Linear> fc1, fc2;
  std::shared_ptr<heed::nn::Dropout> drop;
};

// y = 1 when x0 + x1 - x2 > 0.
heed::data::TensorDataset make_data(int64_t n, uint64_t seed) {
  heed::Generator g(seed);
  Tensor x = heed::randn({n, 4}, heed::DType::Float32, &g);
  std::vector<float> xs = x.to_vector<float>(), ys(static_cast<std::size_t>(n));
  for (int64_t i = 0; i < n; ++i) ys[i] = xs[4 * i] + xs[4 * i + 1] - xs[4 * i + 2] > 0 ? 1.0f : 0.0f;
  return heed::data::TensorDataset({x, heed::tensor(ys, {n, 1})});
}

heed::StepOutput bce_step(Net& model, const std::vector<Tensor>& batch) {
  Tensor logits = model(batch[0]);
  return heed::StepOutput{heed::binary_cross_entropy_with_logits(logits, batch[1]),
                          heed::count_binary_correct(logits, batch[1]), batch[1].numel()};
}

heed::FitOptions quiet(int epochs) {
  heed::FitOptions o;
  o.epochs(epochs);
  o.batch_size(16);
  o.seed(3);
  o.verbose(false);
  o.validation_split(0.25);
  return o;
}

// A fresh empty directory for one test, removed (with its files) by the destructor.
struct TempDir {
  std::string path;
  TempDir() {
    char tmpl[] = "/tmp/heed_faults_XXXXXX";
    REQUIRE(::mkdtemp(tmpl) != nullptr);
    path = tmpl;
  }
  ~TempDir() {
    for (const std::string& f : files()) ::unlink((path + "/" + f).c_str());
    ::rmdir(path.c_str());
  }
  std::string file(const std::string& name) const { return path + "/" + name; }
  std::vector<std::string> files() const {
    std::vector<std::string> out;
    if (DIR* d = ::opendir(path.c_str())) {
      while (const dirent* e = ::readdir(d))
        if (std::string(e->d_name) != "." && std::string(e->d_name) != "..") out.push_back(e->d_name);
      ::closedir(d);
    }
    return out;
  }
};

std::string read_bytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
}

std::vector<float> all_weights(const heed::nn::Module& m) {
  std::vector<float> out;
  for (const auto& [name, p] : m.named_parameters()) {
    const std::vector<float> v = p.to_vector<float>();
    out.insert(out.end(), v.begin(), v.end());
  }
  return out;
}

bool all_finite(const heed::nn::Module& m) {
  for (float v : all_weights(m))
    if (!std::isfinite(v)) return false;
  return true;
}

// Identity forward; the backward passes NaN instead of the gradient when *poison is set at backward time.
Tensor poison_grad(const Tensor& x, std::shared_ptr<bool> poison) {
  Tensor y = heed::mul(x.detach(), 1.0);
  heed::record("poison_grad", y, {x}, [x, poison](const Tensor& g) {
    heed::accumulate_grad(x, *poison ? heed::full(x.shape(), std::nan(""), x.dtype()) : g);
  });
  return y;
}

}  // namespace

// ---- non-finite numbers in fit ------------------------------------------------------------------------

TEST_CASE("fit: a NaN validation loss is kept in the resume checkpoint, which loads back") {
  TempDir dir;
  const std::string resume = dir.file("resume.safetensors");
  auto data = make_data(200, 9);
  // Training is normal; validation returns NaN in epoch 1 and +Inf in epoch 2.
  int evaluations = 0;
  auto make_step = [&](Net& model) {
    return [&model, &evaluations](const std::vector<Tensor>& batch, bool training) {
      heed::StepOutput out = bce_step(model, batch);
      if (!training) out.loss = heed::mul(out.loss, evaluations < 4 ? std::nan("") : HUGE_VAL);
      if (!training) ++evaluations;  // 4 validation batches per epoch (50 rows, batches of 16)
      return out;
    };
  };
  heed::manual_seed(3);
  Net model;
  heed::optim::Adam opt(model.parameters(), heed::optim::AdamOptions(0.01));
  heed::FitOptions o = quiet(2);
  o.resume_checkpoint(resume);
  heed::History h = heed::fit(model, opt, data, make_step(model), o);
  REQUIRE(h.epochs.size() == 2);
  CHECK(std::isnan(h.epochs[0].val_loss));
  CHECK(std::isinf(h.epochs[1].val_loss));
  CHECK(h.best_epoch == 0);  // a non-finite validation loss is never an improvement
  CHECK(all_finite(model));

  // The next run resumes (it used to fail: NaN was written as JSON null) and trains epoch 3.
  Net resumed_model;
  heed::optim::Adam resumed_opt(resumed_model.parameters(), heed::optim::AdamOptions(0.01));
  o.epochs(3);
  heed::History r;
  const std::string err = error_of([&] { r = heed::fit(resumed_model, resumed_opt, data, make_step(resumed_model), o); });
  REQUIRE_MESSAGE(err == "(no error)", err);
  CHECK(r.resumed);
  REQUIRE(r.epochs.size() == 3);
  CHECK(std::isnan(r.epochs[0].val_loss));
  CHECK(r.epochs[1].val_loss == HUGE_VAL);
  CHECK(r.epochs[1].loss == h.epochs[1].loss);
  CHECK(r.batch_losses.size() == 3 * h.batch_losses.size() / 2);
  CHECK(std::equal(h.batch_losses.begin(), h.batch_losses.end(), r.batch_losses.begin()));
  CHECK(all_finite(resumed_model));
}

TEST_CASE("fit: a resume checkpoint that exists but cannot be loaded stops fit naming it, unless start_fresh") {
  TempDir dir;
  auto data = make_data(100, 4);
  auto run = [&](const std::string& resume, bool start_fresh) {
    heed::manual_seed(1);
    Net model;
    heed::optim::SGD opt(model.parameters(), heed::optim::SGDOptions(0.1));
    heed::FitOptions o = quiet(1);
    o.resume_checkpoint(resume);
    o.start_fresh(start_fresh);
    return heed::fit(model, opt, data, [&model](const std::vector<Tensor>& b, bool) { return bce_step(model, b); },
                     o);
  };

  SUBCASE("a symbolic link loop (the file cannot be opened: it used to be ignored and replaced)") {
    const std::string resume = dir.file("loop.safetensors");
    REQUIRE(::symlink("loop.safetensors", resume.c_str()) == 0);
    const std::string err = error_of([&] { run(resume, false); });
    CHECK_MESSAGE(err.find("fit: cannot read the resume checkpoint '" + resume + "'") != std::string::npos, err);
    CHECK_MESSAGE(err.find("symbolic links") != std::string::npos, err);  // strerror(ELOOP)
    CHECK_MESSAGE(err.find("start_fresh") != std::string::npos, err);
    struct stat st {};
    CHECK(::lstat(resume.c_str(), &st) == 0);
    CHECK(S_ISLNK(st.st_mode));  // left alone
    // start_fresh trains from scratch and replaces it with a real checkpoint.
    const heed::History h = run(resume, true);
    CHECK_FALSE(h.resumed);
    CHECK(::lstat(resume.c_str(), &st) == 0);
    CHECK(S_ISREG(st.st_mode));
  }
  SUBCASE("a file without read permission (only testable when not root)") {
    const std::string resume = dir.file("locked.safetensors");
    run(resume, false);
    REQUIRE(::chmod(resume.c_str(), 0) == 0);
    if (::geteuid() != 0) {
      const std::string err = error_of([&] { run(resume, false); });
      CHECK_MESSAGE(err.find("'" + resume + "'") != std::string::npos, err);
      CHECK_MESSAGE(err.find("Permission denied") != std::string::npos, err);
    } else {
      MESSAGE("running as root: a mode-000 file is readable, so this case tests nothing here");
      CHECK(run(resume, false).resumed);
    }
  }
  SUBCASE("a directory") {
    const std::string resume = dir.file("adir");
    REQUIRE(::mkdir(resume.c_str(), 0700) == 0);
    const std::string err = error_of([&] { run(resume, false); });
    CHECK_MESSAGE(err.find("'" + resume + "' is not a regular file") != std::string::npos, err);
    ::rmdir(resume.c_str());
  }
  SUBCASE("a damaged file is kept, not overwritten") {
    const std::string resume = dir.file("damaged.safetensors");
    run(resume, false);
    const std::string good = read_bytes(resume);
    std::ofstream(resume, std::ios::binary | std::ios::trunc) << good.substr(0, good.size() / 2);
    const std::string err = error_of([&] { run(resume, false); });
    CHECK_MESSAGE(err.find("fit: cannot resume from '" + resume + "'") != std::string::npos, err);
    CHECK(read_bytes(resume) == good.substr(0, good.size() / 2));
  }
  SUBCASE("a model file that is not a resume checkpoint") {
    const std::string resume = dir.file("model.safetensors");
    Net().save(resume);
    const std::string err = error_of([&] { run(resume, false); });
    CHECK_MESSAGE(err.find("'" + resume + "'") != std::string::npos, err);
    CHECK_MESSAGE(err.find("not a heed::fit resume checkpoint") != std::string::npos, err);
  }
  SUBCASE("no file at all is a first run") {
    const std::string resume = dir.file("new.safetensors");
    CHECK_FALSE(run(resume, false).resumed);
    CHECK(run(resume, false).resumed);
  }
}

TEST_CASE("fit: a NaN gradient with a finite loss stops before the optimizer step, naming the step and parameters") {
  auto data = make_data(64, 2);
  heed::manual_seed(5);
  Net model;
  heed::optim::Adam opt(model.parameters(), heed::optim::AdamOptions(0.01));
  auto poison = std::make_shared<bool>(false);
  int steps = 0;
  auto step = [&](const std::vector<Tensor>& batch, bool training) {
    if (training) *poison = ++steps == 3;  // the third training step's fc2 gets a NaN gradient
    Tensor logits = (*model.fc2)(poison_grad((*model.drop)(heed::tanh((*model.fc1)(batch[0]))), poison));
    return heed::StepOutput{heed::binary_cross_entropy_with_logits(logits, batch[1]), -1, 0};
  };
  heed::FitOptions o = quiet(2);
  o.validation_split(0);
  // The weights after two steps, from a twin run (same seeds, same batches) whose third step stops the
  // run before its backward: what the weights must still be when fit refuses step 3.
  std::vector<float> before_step3;
  {
    heed::manual_seed(5);
    Net twin;
    heed::optim::Adam twin_opt(twin.parameters(), heed::optim::AdamOptions(0.01));
    heed::manual_seed(6);  // the dropout masks' stream, as for `model` below
    int twin_steps = 0;
    auto twin_step = [&](const std::vector<Tensor>& b, bool training) {
      heed::StepOutput out = bce_step(twin, b);
      if (training && ++twin_steps == 3) throw std::runtime_error("stop before step 3");
      return out;
    };
    CHECK_THROWS_AS(heed::fit(twin, twin_opt, data, twin_step, o), std::runtime_error);
    before_step3 = all_weights(twin);
  }
  heed::manual_seed(6);
  const std::string err = error_of([&] { heed::fit(model, opt, data, step, o); });
  CHECK_MESSAGE(err.find("fit: the gradient norm is nan at epoch 1, batch 2 (step 3") != std::string::npos, err);
  // The NaN enters below fc2, so fc1's weight and bias get it and fc2's parameters do not.
  CHECK_MESSAGE(err.find("Parameters with non-finite gradients: fc1.weight (NaN), fc1.bias (NaN).") !=
                    std::string::npos,
                err);
  CHECK_MESSAGE(err.find("fc2.") == std::string::npos, err);
  CHECK_MESSAGE(err.find("AnomalyModeGuard") != std::string::npos, err);
  CHECK_MESSAGE(err.find("skip_nonfinite_steps") != std::string::npos, err);
  CHECK(all_finite(model));
  CHECK(all_weights(model) == before_step3);  // the refused step changed nothing
}

TEST_CASE("fit: skip_nonfinite_steps skips the steps with non-finite gradients and counts them") {
  auto data = make_data(160, 2);  // 10 batches of 16 per epoch
  heed::manual_seed(5);
  Net model;
  heed::optim::SGD opt(model.parameters(), heed::optim::SGDOptions(0.1));
  auto poison = std::make_shared<bool>(false);
  int steps = 0;
  auto step = [&](const std::vector<Tensor>& batch, bool training) {
    if (training) *poison = ++steps % 4 == 0;  // steps 4, 8, 12, ...
    Tensor logits = (*model.fc2)(poison_grad(heed::tanh((*model.fc1)(batch[0])), poison));
    return heed::StepOutput{heed::binary_cross_entropy_with_logits(logits, batch[1]), -1, 0};
  };
  heed::FitOptions o = quiet(3);
  o.validation_split(0);
  o.skip_nonfinite_steps(true);
  o.shuffle(false);
  const heed::History h = heed::fit(model, opt, data, step, o);
  REQUIRE(h.epochs.size() == 3);
  CHECK(h.skipped_steps == 7);  // of 30 steps: 4, 8, ..., 28
  CHECK(h.epochs[0].skipped_steps == 2);
  CHECK(h.epochs[1].skipped_steps == 3);
  CHECK(h.epochs[2].skipped_steps == 2);
  CHECK(h.batch_losses.size() == 30);
  CHECK(all_finite(model));

  // The same run with those batches' updates left out by hand: SGD without momentum, so skipping a step
  // is the same as a zero gradient. Bit for bit the same weights.
  heed::manual_seed(5);
  Net twin;
  heed::optim::SGD twin_opt(twin.parameters(), heed::optim::SGDOptions(0.1));
  int twin_steps = 0;
  auto twin_step = [&](const std::vector<Tensor>& batch, bool training) {
    const bool zero = training && ++twin_steps % 4 == 0;
    Tensor logits = (*twin.fc2)(heed::tanh((*twin.fc1)(batch[0])));
    Tensor loss = heed::binary_cross_entropy_with_logits(logits, batch[1]);
    return heed::StepOutput{zero ? heed::mul(loss, 0.0) : loss, -1, 0};
  };
  heed::FitOptions to = o;
  to.skip_nonfinite_steps(false);
  heed::fit(twin, twin_opt, data, twin_step, to);
  CHECK(all_weights(twin) == all_weights(model));
}

// ---- crash safety ---------------------------------------------------------------------------------------

namespace {

// A module of about 1 MB, so a save takes long enough to be killed in the middle of it.
class Blob : public heed::nn::Module {
 public:
  Blob() : Module("Blob") {
    a = register_parameter("a", heed::zeros({256, 1000}));
    b = register_parameter("b", heed::zeros({1000}));
  }
  void set(double v) {
    heed::NoGradGuard g;
    a.fill_(v);
    b.fill_(-v);
  }
  // The state's value when the file holds one saved state (a = v, b = -v everywhere), else NaN.
  double state() const {
    const std::vector<float> va = a.to_vector<float>(), vb = b.to_vector<float>();
    for (float x : va)
      if (x != va[0]) return std::nan("");
    for (float x : vb)
      if (x != -va[0]) return std::nan("");
    return va[0];
  }
  Tensor a, b;
};

void sleep_us(int64_t us) { std::this_thread::sleep_for(std::chrono::microseconds(us)); }

}  // namespace

TEST_CASE("crash safety: SIGKILL at random moments while saving never leaves a file that loads wrong") {
  TempDir dir;
  const std::string path = dir.file("model.safetensors");
  // How long a save takes here, to spread the kills over whole saves.
  Blob probe;
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < 3; ++i) probe.save(dir.file("probe.safetensors"));
  const double save_us = std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count() / 3;
  ::unlink(dir.file("probe.safetensors").c_str());

  std::mt19937 rng(16);
  double previous = std::nan("");  // the state the file held before this round (NaN: no file yet)
  int rounds = 0, failed_loads = 0;
  const auto start = std::chrono::steady_clock::now();
  // At least 20 rounds, then more until 3 seconds have passed (at most 200).
  while (rounds < 20 || (rounds < 200 && std::chrono::steady_clock::now() - start < std::chrono::seconds(3))) {
    int fds[2];
    REQUIRE(::pipe(fds) == 0);
    const pid_t child = ::fork();
    REQUIRE(child >= 0);
    if (child == 0) {  // save states 1000 * round + k, k = 0, 1, ..., and report each finished save
      ::close(fds[0]);
      try {
        Blob m;
        for (int k = 0;; ++k) {
          m.set(1000.0 * rounds + k);
          m.save(path);
          if (::write(fds[1], "x", 1) != 1) ::_exit(3);
        }
      } catch (...) {
        ::_exit(2);
      }
    }
    ::close(fds[1]);
    std::uniform_real_distribution<double> delay(0.0, 4 * save_us + 2000);  // fork and start-up included
    sleep_us(static_cast<int64_t>(delay(rng)));
    ::kill(child, SIGKILL);
    int status = 0;
    REQUIRE(::waitpid(child, &status, 0) == child);
    REQUIRE(WIFSIGNALED(status));
    int acks = 0;
    char c;
    while (::read(fds[0], &c, 1) == 1) ++acks;
    ::close(fds[0]);

    // Finished saves: `acks`, or one more whose acknowledgement the kill cut off. The file holds the last
    // one: 1000 * round + (acks - 1) or + acks; with no acknowledged save, also the previous round's.
    Blob loaded;
    bool loaded_ok = false;
    std::string err;
    try {
      loaded.load(path);
      loaded_ok = true;
    } catch (const heed::Error& e) {
      err = e.what();
    }
    if (!loaded_ok) {
      // Only possible when no save ever finished (the first round, killed before its first rename).
      CHECK_MESSAGE(std::isnan(previous), "round " << rounds << ": " << err);
      CHECK(acks == 0);
      ++failed_loads;
    } else {
      const double got = loaded.state();
      const double newest = 1000.0 * rounds + acks, acked = newest - 1;
      const bool ok = got == newest || (acks > 0 && got == acked) || (acks == 0 && got == previous);
      CHECK_MESSAGE(ok, "round " << rounds << ": the file holds " << got << " after " << acks
                                 << " acknowledged saves (previous state " << previous << ")");
      previous = got;
    }
    ++rounds;
  }
  int stale = 0;
  for (const std::string& f : dir.files()) stale += f.rfind("model.safetensors.tmp", 0) == 0;
  MESSAGE(rounds << " kills (a save takes about " << static_cast<int>(save_us) << " us); " << failed_loads
                 << " before any save finished; " << stale << " temporary files left by killed saves");

  // A later successful save of the same path, then no <path>.tmp* remains.
  Blob last;
  last.set(-1);
  last.save(path);
  int remaining = 0;
  for (const std::string& f : dir.files()) remaining += f.rfind("model.safetensors.tmp", 0) == 0;
  // The killed children are gone, so write_file_atomic removes their temporary files (issue #16 item 8).
  CHECK_MESSAGE(remaining == 0, remaining << " stale temporary files remain after a successful save");
  Blob check;
  check.load(path);
  CHECK(check.state() == -1);
}

namespace {

// Trains Net on a fixed problem for `epochs` with a resume checkpoint: what the crash test runs.
struct TrainResult {
  std::vector<float> weights;
  std::vector<double> batch_losses;
  bool resumed = false;
};

TrainResult train_with_resume(const std::string& resume, int epochs) {
  static const heed::data::TensorDataset data = make_data(1200, 8);
  heed::manual_seed(77);
  Net model(64);
  heed::optim::Adam opt(model.parameters(), heed::optim::AdamOptions(0.005));
  heed::optim::StepLR sched(opt, 20, 0.9);
  heed::FitOptions o = quiet(epochs);
  o.resume_checkpoint(resume);
  o.batch_size(32);
  const heed::History h = heed::fit(
      model, opt, data, [&model](const std::vector<Tensor>& b, bool) { return bce_step(model, b); }, o, nullptr,
      &sched);
  return {all_weights(model), h.batch_losses, h.resumed};
}

}  // namespace

TEST_CASE("crash safety: fit killed with SIGKILL and resumed ends bitwise equal to an uninterrupted run") {
  TempDir dir;
  const int epochs = 8;
  const auto t0 = std::chrono::steady_clock::now();
  const TrainResult full = train_with_resume(dir.file("full.safetensors"), epochs);
  const double run_us = std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count();

  std::mt19937 rng(17);
  const std::string resume = dir.file("resume.safetensors");
  int trials = 0, resumed = 0;
  const auto start = std::chrono::steady_clock::now();
  while (trials < 12 && (trials < 3 || std::chrono::steady_clock::now() - start < std::chrono::seconds(4))) {
    ::unlink(resume.c_str());
    // Two runs killed at random moments, each continuing from what the one before left.
    for (int kill = 0; kill < 2; ++kill) {
      const pid_t child = ::fork();
      REQUIRE(child >= 0);
      if (child == 0) {
        try {
          train_with_resume(resume, epochs);
        } catch (...) {
          ::_exit(2);
        }
        ::_exit(0);
      }
      std::uniform_real_distribution<double> delay(0.0, 0.7 * run_us);
      sleep_us(static_cast<int64_t>(delay(rng)));
      ::kill(child, SIGKILL);
      int status = 0;
      REQUIRE(::waitpid(child, &status, 0) == child);
      CHECK_MESSAGE((WIFSIGNALED(status) || (WIFEXITED(status) && WEXITSTATUS(status) == 0)),
                    "the killed run failed by itself (status " << status << ")");
    }
    // The survivor finishes the training.
    const TrainResult r = train_with_resume(resume, epochs);
    resumed += r.resumed;
    CHECK(r.batch_losses == full.batch_losses);
    CHECK(r.weights == full.weights);
    ++trials;
  }
  MESSAGE(trials << " trials (2 kills each) of a " << static_cast<int>(run_us / 1000) << " ms run; " << resumed
                 << " resumed from a checkpoint");
  CHECK(resumed > 0);
}
