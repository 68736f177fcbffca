// heed::fit: learning, validation split, early stopping, best checkpoint, and exact resume.
#include <doctest/doctest.h>

#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <memory>
#include <tuple>
#include <heed/heed.hpp>
#include <heed/io/safetensors.hpp>
#include <heed/nn/basic.hpp>

using heed::Tensor;

namespace {

class Classifier : public heed::nn::Module {
 public:
  Classifier() : Module("Classifier") {
    fc1 = register_module("fc1", std::make_shared<heed::nn::Linear>(4, 16));
    drop = register_module("drop", std::make_shared<heed::nn::Dropout>(0.2));
    fc2 = register_module("fc2", std::make_shared<heed::nn::Linear>(16, 1));
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

heed::StepFn make_step(Classifier& model) {
  return [&model](const std::vector<Tensor>& batch, bool) {
    Tensor logits = model(batch[0]);
    return heed::StepOutput{heed::binary_cross_entropy_with_logits(logits, batch[1]),
                            heed::count_binary_correct(logits, batch[1]), batch[1].numel()};
  };
}

heed::FitOptions quiet_options(int epochs) {
  heed::FitOptions o;
  o.epochs(epochs);
  o.batch_size(16);
  o.seed(3);
  o.verbose(false);
  o.validation_split(0.25);
  return o;
}

std::string temp_path(const char* name) { return std::string("/tmp/heed_test_") + name + std::to_string(::getpid()); }

}  // namespace

TEST_CASE("fit: learns a separable problem and reports validation accuracy") {
  heed::manual_seed(11);
  Classifier model;
  heed::optim::Adam opt(model.parameters(), heed::optim::AdamOptions(0.02));
  auto data = make_data(400, 5);
  heed::History h = heed::fit(model, opt, data, make_step(model), quiet_options(15));
  REQUIRE(h.epochs.size() == 15);
  CHECK(h.epochs.back().loss < h.epochs.front().loss);
  CHECK(h.last().val_accuracy > 0.9);
  CHECK(h.batch_losses.size() == 15 * ((300 + 15) / 16));
  CHECK(model.is_training());  // evaluate restored train mode
  heed::EpochStats eval = heed::evaluate(model, data, make_step(model), 64);
  CHECK(eval.accuracy > 0.9);
}

TEST_CASE("fit: a resumed run reproduces the uninterrupted run's losses exactly") {
  const std::string resume = temp_path("resume.safetensors");
  std::remove(resume.c_str());
  auto data = make_data(200, 9);

  heed::manual_seed(21);
  Classifier full_model;
  heed::optim::Adam full_opt(full_model.parameters(), heed::optim::AdamOptions(0.01));
  heed::History full = heed::fit(full_model, full_opt, data, make_step(full_model), quiet_options(4));

  heed::manual_seed(21);
  Classifier part_model;
  heed::optim::Adam part_opt(part_model.parameters(), heed::optim::AdamOptions(0.01));
  heed::FitOptions first = quiet_options(2);
  first.resume_checkpoint(resume);
  heed::fit(part_model, part_opt, data, make_step(part_model), first);

  heed::manual_seed(999);  // a fresh process would start from anything; the checkpoint restores it
  Classifier resumed_model;
  heed::optim::Adam resumed_opt(resumed_model.parameters(), heed::optim::AdamOptions(0.01));
  heed::FitOptions second = quiet_options(4);
  second.resume_checkpoint(resume);
  heed::History resumed = heed::fit(resumed_model, resumed_opt, data, make_step(resumed_model), second);
  CHECK(resumed.resumed);
  REQUIRE(resumed.batch_losses.size() == full.batch_losses.size());
  for (std::size_t i = 0; i < full.batch_losses.size(); ++i) CHECK(resumed.batch_losses[i] == full.batch_losses[i]);
  CHECK(heed::allclose(resumed_model.fc1->weight, full_model.fc1->weight, 0, 0));
  std::remove(resume.c_str());
}

// The AdamW (two groups, the second with its own lr, weight_decay and amsgrad) and StepLR of the
// checkpoint tests/fixtures/fit_resume_before_typed_options.safetensors, which heed::fit wrote after 2 of
// these epochs (manual_seed(21), make_data(200, 9), quiet_options) at commit f9bb968, when optimizer options
// were string-keyed.
struct TwoGroupSetup {
  TwoGroupSetup() {
    heed::manual_seed(21);
    model = std::make_unique<Classifier>();
    heed::optim::AdamWOptions fc2_options(0.005);
    fc2_options.weight_decay(0.0).amsgrad(true).betas({0.9, 0.98});
    opt = std::make_unique<heed::optim::AdamW>(
        std::vector<heed::optim::ParamGroup>{heed::optim::ParamGroup(model->fc1->parameters()),
                                             heed::optim::ParamGroup(model->fc2->parameters(), fc2_options)},
        heed::optim::AdamWOptions(0.01).betas({0.9, 0.98}));
    schedule = std::make_unique<heed::optim::StepLR>(*opt, 5, 0.5);
  }
  heed::History fit(const heed::data::TensorDataset& data, heed::FitOptions options) {
    return heed::fit(*model, *opt, data, make_step(*model), options, nullptr, schedule.get());
  }
  std::unique_ptr<Classifier> model;
  std::unique_ptr<heed::optim::AdamW> opt;
  std::unique_ptr<heed::optim::StepLR> schedule;
};

TEST_CASE("fit: a resume checkpoint written before typed optimizer options loads and continues the run") {
  const std::string fixture = std::string(HEED_FIXTURE_DIR) + "/fit_resume_before_typed_options.safetensors";
  const std::string resume = temp_path("old_resume.safetensors"), fresh = temp_path("new_resume.safetensors");
  auto data = make_data(200, 9);
  {  // The same file format: the first 2 epochs now write the same keys and (to rounding) values.
    std::remove(fresh.c_str());
    TwoGroupSetup now;
    heed::FitOptions first = quiet_options(2);
    first.resume_checkpoint(fresh);
    now.fit(data, first);
    const heed::nn::NamedTensors old_state = heed::io::load_safetensors(fixture).tensors;
    const heed::nn::NamedTensors new_state = heed::io::load_safetensors(fresh).tensors;
    REQUIRE(old_state.size() == new_state.size());
    for (std::size_t i = 0; i < old_state.size(); ++i) {
      CAPTURE(old_state[i].first);
      CHECK(new_state[i].first == old_state[i].first);
      CHECK(new_state[i].second.dtype() == old_state[i].second.dtype());
      CHECK(heed::allclose(new_state[i].second, old_state[i].second, 1e-5, 1e-6));
    }
    std::remove(fresh.c_str());
  }
  TwoGroupSetup full;
  heed::History uninterrupted = full.fit(data, quiet_options(4));

  {  // fit writes into its resume file, so resume from a copy
    std::ifstream in(fixture, std::ios::binary);
    std::ofstream out(resume, std::ios::binary);
    out << in.rdbuf();
  }
  heed::manual_seed(999);
  TwoGroupSetup resumed;
  heed::FitOptions second = quiet_options(4);
  second.resume_checkpoint(resume);
  heed::History h = resumed.fit(data, second);
  std::remove(resume.c_str());
  CHECK(h.resumed);
  REQUIRE(h.epochs.size() == 4);
  const auto& g1 = static_cast<const heed::optim::AdamWOptions&>(resumed.opt->param_groups()[1].options());
  CHECK(g1.amsgrad());
  CHECK(g1.weight_decay() == 0.0);
  CHECK(std::get<1>(g1.betas()) == 0.98);
  CHECK(resumed.schedule->last_step() == full.schedule->last_step());
  REQUIRE(h.batch_losses.size() == uninterrupted.batch_losses.size());
  for (std::size_t i = 0; i < h.batch_losses.size(); ++i)
    CHECK(h.batch_losses[i] == doctest::Approx(uninterrupted.batch_losses[i]).epsilon(1e-5));
  CHECK(heed::allclose(resumed.model->fc1->weight, full.model->fc1->weight, 1e-4, 1e-5));
}

TEST_CASE("fit: early stopping and best checkpoint") {
  const std::string best = temp_path("best.safetensors");
  std::remove(best.c_str());
  heed::manual_seed(5);
  Classifier model;
  heed::optim::SGD opt(model.parameters(), heed::optim::SGDOptions(0.0));  // lr 0: nothing improves
  heed::FitOptions o = quiet_options(20);
  o.early_stopping_patience(2);
  o.best_checkpoint(best);
  heed::History h = heed::fit(model, opt, make_data(100, 2), make_step(model), o);
  CHECK(h.stopped_early);
  CHECK(h.epochs.size() < 20);
  CHECK(h.best_epoch >= 1);
  Classifier loaded;
  loaded.load(best);
  CHECK(heed::allclose(loaded.fc2->weight, model.fc2->weight, 0, 0));
  std::remove(best.c_str());
}

TEST_CASE("fit: a step function returning a non-scalar loss is rejected") {
  Classifier model;
  heed::optim::SGD opt(model.parameters(), heed::optim::SGDOptions(0.1));
  heed::StepFn bad = [&](const std::vector<Tensor>& batch, bool) { return heed::StepOutput{model(batch[0])}; };
  CHECK_THROWS_WITH_AS(heed::fit(model, opt, make_data(32, 1), bad, quiet_options(1)), doctest::Contains("one-element"),
                       heed::Error);
  heed::clear_tape();
}
