// heed::optim against PyTorch 1.13: optimizer trajectories (tests/fixtures/make_optim_fixtures.py),
// parameter groups, state save/restore, gradient clipping, LR schedules, l2_penalty and error messages.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <memory>
#include <string>
#include <unistd.h>

#include <heed/heed.hpp>
#include <heed/io/safetensors.hpp>
#include <heed/optim.hpp>

#include "fixtures/optim_expected.inc"

using heed::DType;
using heed::Tensor;
namespace optim = heed::optim;

namespace {

const std::vector<heed::Shape> kShapes = {{2, 3}, {3}, {2}};

// p0, p1, p2 of the fixture problem at their initial values.
std::vector<Tensor> make_params(DType dtype) {
  std::vector<Tensor> params;
  for (std::size_t i = 0; i < kShapes.size(); ++i)
    params.push_back(heed::tensor(optim_fixture::kInit[i], kShapes[i], DType::Float64).to(dtype).requires_grad_());
  return params;
}

// grad p = k p + 3 cos(3 p) for p0 (k = 1) and p1 (k = 2); p2 gets no gradient.
void set_fixture_gradients(std::vector<Tensor>& params) {
  for (std::size_t i = 0; i < 2; ++i) {
    std::vector<double> grad = params[i].to_vector<double>();
    for (double& x : grad) x = optim_fixture::kCurvature[i] * x + 3.0 * std::cos(3.0 * x);
    params[i].set_grad(heed::tensor(grad, params[i].shape(), DType::Float64).to(params[i].dtype()));
  }
}

std::vector<double> flat_values(const std::vector<Tensor>& params) {
  std::vector<double> out;
  for (const Tensor& p : params)
    for (double x : p.to_vector<double>()) out.push_back(x);
  return out;
}

// The options struct of the fixture's optimizer with heed's defaults (SGD's lr 0.5), with the fixture's
// hyper-parameters (named as in the state dict) set on top.
std::unique_ptr<optim::OptimizerOptions> fixture_options(const std::string& name, const optim::Hyperparams& values) {
  std::unique_ptr<optim::OptimizerOptions> o;
  if (name == "SGD") o = std::make_unique<optim::SGDOptions>(0.5);
  if (name == "Adam") o = std::make_unique<optim::AdamOptions>();
  if (name == "AdamW") o = std::make_unique<optim::AdamWOptions>();
  if (name == "RMSprop") o = std::make_unique<optim::RMSpropOptions>();
  if (name == "Adagrad") o = std::make_unique<optim::AdagradOptions>();
  if (!o) throw std::runtime_error("unknown optimizer " + name);
  o->set_hyperparams(values);
  return o;
}

// The fixture's groups; without options they take the optimizer's defaults.
std::vector<optim::ParamGroup> fixture_groups(const optim_fixture::Case& c, const std::vector<Tensor>& params,
                                              bool with_options = true) {
  auto group = [&](std::vector<Tensor> members, std::size_t g) {
    return with_options ? optim::ParamGroup(std::move(members), *fixture_options(c.optimizer, c.groups.at(g)))
                        : optim::ParamGroup(std::move(members));
  };
  if (!c.two_groups) return {group(params, 0)};
  return {group({params[0]}, 0), group({params[1], params[2]}, 1)};
}

// The fixture's optimizer over `groups`; groups without options take heed's defaults.
std::unique_ptr<optim::Optimizer> make_optimizer(const std::string& name, std::vector<optim::ParamGroup> groups) {
  if (name == "SGD") return std::make_unique<optim::SGD>(std::move(groups), optim::SGDOptions(0.5));
  if (name == "Adam") return std::make_unique<optim::Adam>(std::move(groups));
  if (name == "AdamW") return std::make_unique<optim::AdamW>(std::move(groups));
  if (name == "RMSprop") return std::make_unique<optim::RMSprop>(std::move(groups));
  if (name == "Adagrad") return std::make_unique<optim::Adagrad>(std::move(groups));
  throw std::runtime_error("unknown optimizer " + name);
}

// A group's hyper-parameters in their state-dict form.
optim::Hyperparams named(const optim::Optimizer& opt, std::size_t g) {
  return opt.param_groups().at(g).options().hyperparams();
}

void run_steps(optim::Optimizer& opt, std::vector<Tensor>& params, int steps) {
  for (int s = 0; s < steps; ++s) {
    opt.zero_grad();
    set_fixture_gradients(params);
    opt.step();
  }
}

double max_diff(const std::vector<double>& a, const std::vector<double>& b) {
  REQUIRE(a.size() == b.size());
  double worst = 0.0;
  for (std::size_t i = 0; i < a.size(); ++i) worst = std::max(worst, std::abs(a[i] - b[i]));
  return worst;
}

const optim_fixture::Case& fixture_case(const std::string& name) {
  for (const auto& c : optim_fixture::kCases)
    if (name == c.name) return c;
  throw std::runtime_error("no fixture case " + name);
}

}  // namespace

TEST_CASE("optim: every optimizer's Float64 trajectory equals PyTorch 1.13's") {
  for (const auto& c : optim_fixture::kCases) {
    CAPTURE(std::string(c.name));
    std::vector<Tensor> params = make_params(DType::Float64);
    auto opt = make_optimizer(c.optimizer, fixture_groups(c, params));
    for (std::size_t step = 0; step < c.after_step.size(); ++step) {
      CAPTURE(step + 1);
      run_steps(*opt, params, 1);
      CHECK(max_diff(flat_values(params), c.after_step[step]) < 1e-10);
    }
  }
}

TEST_CASE("optim: the Float32 path follows the same trajectory to float precision") {
  for (const auto& c : optim_fixture::kCases) {
    CAPTURE(std::string(c.name));
    std::vector<Tensor> params = make_params(DType::Float32);
    auto opt = make_optimizer(c.optimizer, fixture_groups(c, params));
    run_steps(*opt, params, static_cast<int>(c.after_step.size()));
    CHECK(params[0].dtype() == DType::Float32);
    CHECK(max_diff(flat_values(params), c.after_step.back()) < 2e-5);
  }
}

TEST_CASE("optim: defaults and hyper-parameter names equal PyTorch's") {
  std::vector<Tensor> params = make_params(DType::Float64);
  CHECK(named(optim::SGD(params, optim::SGDOptions(0.1)), 0) == fixture_case("sgd_plain").groups[0]);
  CHECK(named(optim::Adam(params, optim::AdamOptions(0.1)), 0) == fixture_case("adam_default").groups[0]);
  CHECK(named(optim::AdamW(params, optim::AdamWOptions(0.1)), 0) == fixture_case("adamw_default").groups[0]);
  CHECK(optim::AdamWOptions().weight_decay() == 0.01);
  CHECK(optim::AdamOptions().weight_decay() == 0.0);
  CHECK(named(optim::RMSprop(params), 0) == fixture_case("rmsprop_default").groups[0]);
  CHECK(named(optim::Adagrad(params, optim::AdagradOptions(0.1)), 0) == fixture_case("adagrad_default").groups[0]);
  // The typed setters map to the names PyTorch uses in the state dict.
  optim::Adam adam(params, optim::AdamOptions().lr(0.1).betas({0.9, 0.5}).amsgrad(true));
  CHECK(named(adam, 0) == fixture_case("adam_amsgrad").groups[0]);
  optim::RMSprop rms(params,
                     optim::RMSpropOptions(0.02).alpha(0.9).eps(1e-6).centered(true).momentum(0.5).weight_decay(0.1));
  CHECK(named(rms, 0) == fixture_case("rmsprop_all").groups[0]);
  // ... and back: set_hyperparams of each fixture case gives the same typed options.
  for (const auto& c : optim_fixture::kCases)
    for (const auto& values : c.groups) {
      CAPTURE(std::string(c.name));
      CHECK(fixture_options(c.optimizer, values)->hyperparams() == values);
    }
  const auto& typed = static_cast<const optim::AdamOptions&>(adam.param_groups()[0].options());
  CHECK(std::get<1>(typed.betas()) == 0.5);
  CHECK(typed.amsgrad());
}

TEST_CASE("optim: parameters without a gradient are skipped and keep no state") {
  std::vector<Tensor> params = make_params(DType::Float64);
  optim::Adam opt(params, optim::AdamOptions(0.1));
  run_steps(opt, params, 2);
  CHECK(params[2].to_vector<double>() == optim_fixture::kInit[2]);
  bool any_state_for_p2 = false;
  int state_entries = 0;
  for (auto& [key, value] : opt.state_dict()) {
    if (key.rfind("state.2.", 0) == 0) any_state_for_p2 = true;
    if (key.rfind("state.", 0) == 0) ++state_entries;
  }
  CHECK_FALSE(any_state_for_p2);
  CHECK(state_entries == 6);  // step, exp_avg, exp_avg_sq for p0 and p1
  opt.zero_grad();
  CHECK_FALSE(params[0].grad().defined());
  CHECK_FALSE(params[1].grad().defined());
}

TEST_CASE("optim: per-group learning rates, lr() and set_lr()") {
  Tensor a = heed::tensor({1.0, 2.0}, {2}, DType::Float64).requires_grad_();
  Tensor b = heed::tensor({3.0}, {1}, DType::Float64).requires_grad_();
  optim::SGD opt({optim::ParamGroup({a}), optim::ParamGroup({b}, optim::SGDOptions(0.01))}, optim::SGDOptions(0.1));
  CHECK(opt.lr() == 0.1);
  CHECK(opt.param_groups()[1].options().get_lr() == 0.01);
  CHECK(opt.num_params() == 2);

  auto unit_grads = [&] {
    a.set_grad(heed::ones({2}, DType::Float64));
    b.set_grad(heed::ones({1}, DType::Float64));
  };
  unit_grads();
  opt.step();
  CHECK(a.to_vector<double>() == std::vector<double>{0.9, 1.9});
  CHECK(b.item() == doctest::Approx(2.99).epsilon(1e-14));

  opt.set_lr(0.5);
  CHECK(opt.param_groups()[0].options().get_lr() == 0.5);
  CHECK(static_cast<const optim::SGDOptions&>(opt.param_groups()[1].options()).lr() == 0.5);
  unit_grads();
  opt.step();
  CHECK(a.to_vector<double>()[0] == doctest::Approx(0.4).epsilon(1e-14));
  CHECK(b.item() == doctest::Approx(2.49).epsilon(1e-14));

  opt.param_groups()[1].options().set_lr(1.0);  // takes effect at the next step
  unit_grads();
  opt.step();
  CHECK(a.to_vector<double>()[0] == doctest::Approx(-0.1).epsilon(1e-14));
  CHECK(b.item() == doctest::Approx(1.49).epsilon(1e-14));

  Tensor c = heed::zeros({4}, DType::Float64).requires_grad_();
  opt.add_param_group(optim::ParamGroup({c}, optim::SGDOptions(0.1).momentum(0.9)));
  const auto& added = static_cast<const optim::SGDOptions&>(opt.param_groups()[2].options());
  CHECK(added.lr() == 0.1);
  CHECK(added.momentum() == 0.9);
  Tensor d = heed::zeros({1}, DType::Float64).requires_grad_();
  opt.add_param_group(optim::ParamGroup({d}));  // no options: a copy of the optimizer's defaults
  CHECK(named(opt, 3) == named(optim::SGD({heed::zeros({1}, DType::Float64).requires_grad_()}, optim::SGDOptions(0.1)), 0));
  opt.param_groups()[3].options().set_lr(0.2);  // a copy: the defaults do not change
  CHECK(opt.defaults().get_lr() == 0.1);
  CHECK(opt.num_params() == 4);
}

TEST_CASE("optim: state saved after 3 steps and loaded into a new optimizer continues identically") {
  for (const auto& c : optim_fixture::kCases) {
    CAPTURE(std::string(c.name));
    std::vector<Tensor> params = make_params(DType::Float64);
    auto first = make_optimizer(c.optimizer, fixture_groups(c, params));
    run_steps(*first, params, 3);
    heed::nn::NamedTensors saved = first->state_dict();
    std::vector<Tensor> restored;
    for (const Tensor& p : params) restored.push_back(p.detach().clone().requires_grad_());

    // The uninterrupted run.
    run_steps(*first, params, 2);
    CHECK(max_diff(flat_values(params), c.after_step[4]) < 1e-10);

    // A fresh optimizer with default hyper-parameters, restored: the loaded groups replace the defaults.
    auto second = make_optimizer(c.optimizer, fixture_groups(c, restored, /*with_options=*/false));
    second->load_state_dict(saved);
    for (std::size_t g = 0; g < c.groups.size(); ++g) CHECK(named(*second, g) == c.groups[g]);
    run_steps(*second, restored, 2);
    CHECK(flat_values(restored) == flat_values(params));
  }
}

TEST_CASE("optim: state_dict holds copies and survives a safetensors round trip") {
  const auto& c = fixture_case("adam_amsgrad");
  std::vector<Tensor> params = make_params(DType::Float64);
  optim::Adam opt(params, optim::AdamOptions().lr(0.1).betas({0.9, 0.5}).amsgrad(true));
  run_steps(opt, params, 3);
  heed::nn::NamedTensors saved = opt.state_dict();
  std::vector<std::string> keys;
  for (auto& [key, value] : saved) keys.push_back(key);
  for (const char* expected : {"state.0.step", "state.0.exp_avg", "state.0.exp_avg_sq", "state.0.max_exp_avg_sq",
                               "state.1.exp_avg", "param_groups.0.lr", "param_groups.0.beta2", "param_groups.0.amsgrad",
                               "param_groups.0.params"}) {
    CAPTURE(expected);
    CHECK(std::find(keys.begin(), keys.end(), expected) != keys.end());
  }
  for (auto& [key, value] : saved) {
    if (key == "state.1.exp_avg") CHECK(value.shape() == heed::Shape{3});
    if (key == "state.0.step") CHECK(value.item() == 3.0);
    if (key == "param_groups.0.lr") CHECK(value.dim() == 0);
  }
  const std::string path = fmt::format("/tmp/heed_test_optim_{}.safetensors", ::getpid());
  heed::io::save_safetensors(path, saved);
  std::vector<Tensor> restored;
  for (const Tensor& p : params) restored.push_back(p.detach().clone().requires_grad_());

  run_steps(opt, params, 1);  // the saved copies must not move with the optimizer
  for (auto& [key, value] : saved)
    if (key == "state.0.step") CHECK(value.item() == 3.0);

  optim::Adam loaded(restored);
  loaded.load_state_dict(heed::io::load_safetensors(path).tensors);
  std::remove(path.c_str());
  run_steps(loaded, restored, 3);
  CHECK(max_diff(flat_values(restored), c.after_step[5]) < 1e-10);
}

TEST_CASE("optim: load_state_dict rejects bad state naming the key, and changes nothing") {
  std::vector<Tensor> params = make_params(DType::Float64);
  optim::Adam opt(params, optim::AdamOptions(0.1));
  run_steps(opt, params, 2);
  const heed::nn::NamedTensors good = opt.state_dict();

  auto with = [&](const std::string& key, const Tensor& value) {
    heed::nn::NamedTensors state = good;
    for (auto& [k, v] : state)
      if (k == key) {
        v = value;
        return state;
      }
    state.emplace_back(key, value);
    return state;
  };
  auto without = [&](const std::string& key) {
    heed::nn::NamedTensors state;
    for (auto& [k, v] : good)
      if (k != key) state.emplace_back(k, v);
    return state;
  };

  optim::Adam target(make_params(DType::Float64));
  CHECK_THROWS_WITH_AS(target.load_state_dict(with("state.1.exp_avg", heed::zeros({2, 3}, DType::Float64))),
                       doctest::Contains("'state.1.exp_avg' has shape [2, 3], expected [3]"), heed::Error);
  CHECK_THROWS_WITH_AS(target.load_state_dict(with("state.0.step", heed::zeros({1}, DType::Float64))),
                       doctest::Contains("'state.0.step' has shape [1], expected []"), heed::Error);
  CHECK_THROWS_WITH_AS(target.load_state_dict(with("state.7.exp_avg", heed::zeros({3}, DType::Float64))),
                       doctest::Contains("'state.7.exp_avg' names parameter 7, but the optimizer has 3"), heed::Error);
  CHECK_THROWS_WITH_AS(target.load_state_dict(with("state.0.momentum_buffer", heed::zeros({2, 3}, DType::Float64))),
                       doctest::Contains("unexpected key 'state.0.momentum_buffer'"), heed::Error);
  CHECK_THROWS_WITH_AS(target.load_state_dict(with("param_groups.0.momentum", heed::scalar(0.9, DType::Float64))),
                       doctest::Contains("unexpected key 'param_groups.0.momentum'"), heed::Error);
  CHECK_THROWS_WITH_AS(target.load_state_dict(with("param_groups.1.lr", heed::scalar(0.1, DType::Float64))),
                       doctest::Contains("'param_groups.1.lr' names parameter group 1, but the optimizer has 1"),
                       heed::Error);
  CHECK_THROWS_WITH_AS(target.load_state_dict(without("param_groups.0.eps")),
                       doctest::Contains("missing key 'param_groups.0.eps'"), heed::Error);
  CHECK_THROWS_WITH_AS(target.load_state_dict(with("param_groups.0.beta1", heed::scalar(1.5, DType::Float64))),
                       doctest::Contains("invalid beta1 1.5"), heed::Error);
  CHECK_THROWS_WITH_AS(target.load_state_dict(with("model.weight", heed::zeros({2}))),
                       doctest::Contains("unexpected key 'model.weight'"), heed::Error);

  // Saved for a different grouping of the same parameters.
  std::vector<Tensor> regrouped = make_params(DType::Float64);
  optim::Adam two_groups({optim::ParamGroup({regrouped[0]}), optim::ParamGroup({regrouped[1], regrouped[2]})});
  CHECK_THROWS_WITH_AS(two_groups.load_state_dict(good), doctest::Contains("param_groups.0.params"), heed::Error);

  // Nothing changed by the failed loads: no state, default lr.
  CHECK(target.lr() == 1e-3);
  for (auto& [key, value] : target.state_dict()) CHECK(key.rfind("state.", 0) != 0);
  target.load_state_dict(good);
  CHECK(target.lr() == 0.1);
}

TEST_CASE("optim: invalid hyper-parameters and parameter lists throw naming the problem") {
  std::vector<Tensor> params = make_params(DType::Float64);
  CHECK_THROWS_WITH_AS(optim::SGD(params, optim::SGDOptions(0.1).nesterov(true)),
                       doctest::Contains("nesterov momentum requires momentum > 0"), heed::Error);
  CHECK_THROWS_WITH_AS(optim::SGD(params, optim::SGDOptions(-1.0)), doctest::Contains("SGD: invalid lr -1"),
                       heed::Error);
  CHECK_THROWS_WITH_AS(optim::Adam(params, optim::AdamOptions().betas({0.9, 1.0})),
                       doctest::Contains("Adam: invalid beta2 1"), heed::Error);
  CHECK_THROWS_WITH_AS(optim::RMSprop(params, optim::RMSpropOptions().alpha(-0.1)),
                       doctest::Contains("RMSprop: invalid alpha"), heed::Error);
  CHECK_THROWS_WITH_AS(optim::Adagrad(params, optim::AdagradOptions().lr_decay(-1)),
                       doctest::Contains("Adagrad: invalid lr_decay"), heed::Error);
  CHECK_THROWS_WITH_AS(optim::Adam({optim::ParamGroup(params, optim::SGDOptions(0.1))}),
                       doctest::Contains("Adam: parameter group 0 has the options of another optimizer (expected "
                                         "AdamOptions)"), heed::Error);
  CHECK_THROWS_WITH_AS(optim::AdamOptions().set_hyperparams({{"momentum", 0.9}}),
                       doctest::Contains("AdamOptions: no hyper-parameter 'momentum'"), heed::Error);
  CHECK_THROWS_WITH_AS(optim::Adam(std::vector<Tensor>{}), doctest::Contains("empty parameter list"), heed::Error);
  CHECK_THROWS_WITH_AS(optim::Adam({optim::ParamGroup({params[0]}), optim::ParamGroup({params[0]})}),
                       doctest::Contains("appears more than once"), heed::Error);
  Tensor computed = heed::mul(params[1], 2.0);
  CHECK_THROWS_WITH_AS(optim::Adam(std::vector<Tensor>{computed}), doctest::Contains("is not a leaf"), heed::Error);
  heed::clear_tape();
  CHECK_THROWS_WITH_AS(optim::Adam(std::vector<Tensor>{heed::index_tensor({1, 2})}),
                       doctest::Contains("only Float32 and Float64"), heed::Error);
  CHECK_THROWS_WITH_AS(optim::ParamGroup(params).options(), doctest::Contains("has no options yet"), heed::Error);
}

TEST_CASE("optim: clip_grad_norm_ scales by max_norm / (norm + 1e-6) and returns the norm") {
  Tensor a = heed::zeros({2}, DType::Float64).requires_grad_();
  Tensor b = heed::zeros({1}, DType::Float64).requires_grad_();
  Tensor no_grad = heed::zeros({3}, DType::Float64).requires_grad_();
  auto set = [&] {
    a.set_grad(heed::tensor({3.0, -4.0}, {2}, DType::Float64));
    b.set_grad(heed::tensor({12.0}, {1}, DType::Float64));
  };
  set();
  CHECK(optim::clip_grad_norm_({a, b, no_grad}, 100.0) == doctest::Approx(13.0).epsilon(1e-15));
  CHECK(a.grad().to_vector<double>() == std::vector<double>{3.0, -4.0});  // below the limit: unchanged

  const double scale = 6.5 / (13.0 + 1e-6);
  CHECK(optim::clip_grad_norm_({a, b, no_grad}, 6.5) == doctest::Approx(13.0).epsilon(1e-15));
  CHECK(a.grad().to_vector<double>()[0] == doctest::Approx(3.0 * scale).epsilon(1e-15));
  CHECK(a.grad().to_vector<double>()[1] == doctest::Approx(-4.0 * scale).epsilon(1e-15));
  CHECK(b.grad().item() == doctest::Approx(12.0 * scale).epsilon(1e-15));
  CHECK_FALSE(no_grad.grad().defined());

  set();  // the max-norm
  CHECK(optim::clip_grad_norm_({a, b}, 6.0, std::numeric_limits<double>::infinity()) == 12.0);
  CHECK(b.grad().item() == doctest::Approx(12.0 * 6.0 / (12.0 + 1e-6)).epsilon(1e-15));
  set();  // the 1-norm and the 3-norm
  CHECK(optim::clip_grad_norm_({a, b}, 100.0, 1.0) == doctest::Approx(19.0).epsilon(1e-15));
  CHECK(optim::clip_grad_norm_({a, b}, 100.0, 3.0) == doctest::Approx(std::cbrt(27.0 + 64.0 + 1728.0)).epsilon(1e-14));

  Tensor f = heed::zeros({2}).requires_grad_();  // Float32 gradients
  f.set_grad(heed::tensor({0.6f, 0.8f}, {2}));
  CHECK(optim::clip_grad_norm_({f}, 0.5) == doctest::Approx(1.0).epsilon(1e-6));
  CHECK(f.grad().to_vector<double>()[1] == doctest::Approx(0.4).epsilon(1e-6));

  CHECK(optim::clip_grad_norm_({no_grad}, 1.0) == 0.0);
  b.set_grad(heed::tensor({std::nan("")}, {1}, DType::Float64));
  CHECK_THROWS_WITH_AS(optim::clip_grad_norm_({a, b}, 1.0, 2.0, /*error_if_nonfinite=*/true),
                       doctest::Contains("non-finite"), heed::Error);
}

TEST_CASE("optim: clip_grad_value_ clamps every gradient element") {
  Tensor a = heed::zeros({4}, DType::Float64).requires_grad_();
  Tensor untouched = heed::zeros({1}, DType::Float64).requires_grad_();
  a.set_grad(heed::tensor({-3.0, -0.5, 0.25, 7.0}, {4}, DType::Float64));
  optim::clip_grad_value_({a, untouched}, 1.0);
  CHECK(a.grad().to_vector<double>() == std::vector<double>{-1.0, -0.5, 0.25, 1.0});
  CHECK_FALSE(untouched.grad().defined());
  CHECK_THROWS_WITH_AS(optim::clip_grad_value_({a}, -1.0), doctest::Contains("clip_value must be >= 0"), heed::Error);
}

TEST_CASE("optim: StepLR and ExponentialLR equal PyTorch's numbers") {
  auto check_against = [](optim::LRScheduler& schedule, optim::Optimizer& opt, const std::vector<double>& expected) {
    CHECK(opt.lr() == doctest::Approx(expected[0]).epsilon(1e-14));
    for (std::size_t t = 1; t < expected.size(); ++t) {
      CAPTURE(t);
      opt.step();
      schedule.step();
      CHECK(schedule.last_step() == static_cast<int64_t>(t));
      CHECK(opt.lr() == doctest::Approx(expected[t]).epsilon(1e-13));
      CHECK(schedule.get_last_lr() == std::vector<double>{opt.lr()});
    }
  };
  Tensor w = heed::zeros({1}, DType::Float64).requires_grad_();
  {
    optim::SGD opt({w}, optim::SGDOptions(0.1));
    optim::StepLR schedule(opt, 3, 0.5);
    check_against(schedule, opt, optim_fixture::kStepLR);
  }
  {
    optim::SGD opt({w}, optim::SGDOptions(0.1));
    optim::ExponentialLR schedule(opt, 0.9);
    check_against(schedule, opt, optim_fixture::kExponentialLR);
  }
  {  // CosineWithWarmup without warmup is CosineAnnealingLR up to T_max
    optim::SGD opt({w}, optim::SGDOptions(0.1));
    optim::CosineWithWarmup schedule(opt, 0, 10, 0.001);
    check_against(schedule, opt, optim_fixture::kCosineAnnealingLR);
    schedule.step();
    CHECK(opt.lr() == 0.001);  // constant after total_steps
  }
}

TEST_CASE("optim: CosineWithWarmup, NoamLR and LambdaLR follow their formulas on every group") {
  Tensor a = heed::zeros({1}, DType::Float64).requires_grad_();
  Tensor b = heed::zeros({1}, DType::Float64).requires_grad_();
  {
    optim::Adam opt({optim::ParamGroup({a}, optim::AdamOptions(1.0)), optim::ParamGroup({b}, optim::AdamOptions(0.5))});
    optim::CosineWithWarmup schedule(opt, 4, 12, 0.1);
    CHECK(schedule.base_lrs() == std::vector<double>{1.0, 0.5});
    const double pi = std::acos(-1.0);
    for (int64_t t = 0; t <= 14; ++t) {
      CAPTURE(t);
      for (std::size_t g = 0; g < 2; ++g) {
        const double base = g == 0 ? 1.0 : 0.5;
        const double expected = t < 4 ? base * t / 4.0
                                : t <= 12 ? 0.1 + (base - 0.1) * (1 + std::cos(pi * (t - 4) / 8.0)) / 2
                                          : 0.1;
        CHECK(opt.param_groups()[g].options().get_lr() == doctest::Approx(expected).epsilon(1e-14));
      }
      schedule.step();
    }
  }
  {
    optim::Adam opt({a, b});
    optim::NoamLR schedule(opt, 512, 4000, 2.0);
    // s = t + 1; the peak is at s = warmup, where both branches agree.
    auto noam = [](double s) {
      return 2.0 / std::sqrt(512.0) * std::min(1.0 / std::sqrt(s), s / std::pow(4000.0, 1.5));
    };
    CHECK(opt.lr() == doctest::Approx(2.0 / std::sqrt(512.0) / std::pow(4000.0, 1.5)).epsilon(1e-14));
    double previous = 0.0;
    for (int64_t t = 0; t < 8000; ++t) {
      const double lr = opt.lr();
      if (t % 997 == 0 || t == 3999) {
        CAPTURE(t);
        CHECK(lr == doctest::Approx(noam(double(t + 1))).epsilon(1e-14));
        CHECK(schedule.get_last_lr() == std::vector<double>{lr});
      }
      if (t < 3999) CHECK_MESSAGE(lr > previous, "Noam rises during warmup");
      if (t > 3999) CHECK_MESSAGE(lr < previous, "Noam decays after warmup");
      previous = lr;
      schedule.step();
    }
    CHECK(noam(4000.0) == doctest::Approx(2.0 / std::sqrt(512.0) / std::sqrt(4000.0)).epsilon(1e-14));
  }
  {
    optim::SGD opt({a}, optim::SGDOptions(0.2));
    optim::LambdaLR schedule(opt, [](int64_t t) { return 1.0 / (1.0 + t); });
    schedule.step();
    schedule.step();
    CHECK(opt.lr() == doctest::Approx(0.2 / 3.0).epsilon(1e-15));
  }
}

TEST_CASE("optim: a restored schedule continues identically; bad schedule state names the key") {
  Tensor w = heed::zeros({1}, DType::Float64).requires_grad_();
  optim::SGD opt({w}, optim::SGDOptions(0.1));
  optim::CosineWithWarmup schedule(opt, 3, 20, 0.01);
  for (int i = 0; i < 7; ++i) schedule.step();
  const heed::nn::NamedTensors saved = schedule.state_dict();

  optim::SGD other({w}, optim::SGDOptions(0.7));
  optim::CosineWithWarmup resumed(other, 3, 20, 0.01);
  resumed.load_state_dict(saved);
  CHECK(resumed.last_step() == 7);
  CHECK(resumed.base_lrs() == std::vector<double>{0.1});
  CHECK(other.lr() == opt.lr());
  for (int i = 0; i < 5; ++i) {
    schedule.step();
    resumed.step();
    CHECK(other.lr() == opt.lr());
  }

  heed::nn::NamedTensors bad = saved;
  bad.emplace_back("base_lrs.3", heed::scalar(0.1, DType::Float64));
  CHECK_THROWS_WITH_AS(resumed.load_state_dict(bad), doctest::Contains("'base_lrs.3' names group 3"), heed::Error);
  bad = saved;
  bad[0].second = heed::zeros({2}, DType::Int64);
  CHECK_THROWS_WITH_AS(resumed.load_state_dict(bad), doctest::Contains("'last_step' has shape [2]"), heed::Error);
  CHECK_THROWS_WITH_AS(resumed.load_state_dict({saved[1]}), doctest::Contains("missing key 'last_step'"), heed::Error);
  CHECK_THROWS_WITH_AS(optim::StepLR(opt, 0), doctest::Contains("step_size must be > 0"), heed::Error);
  CHECK_THROWS_WITH_AS(optim::CosineWithWarmup(opt, 10, 10), doctest::Contains("warmup_steps < total_steps"),
                       heed::Error);
}

TEST_CASE("optim: l2_penalty is coeff * sum(p^2) with gradient 2 * coeff * p") {
  Tensor embedding = heed::tensor({1.0, -2.0, 3.0, 0.5}, {2, 2}, DType::Float64).requires_grad_();
  Tensor penalty = optim::l2_penalty(embedding, 1e-3);
  CHECK(penalty.dim() == 0);
  CHECK(penalty.item() == doctest::Approx(1e-3 * (1 + 4 + 9 + 0.25)).epsilon(1e-15));
  penalty.backward();
  CHECK(heed::allclose(embedding.grad(), heed::mul(embedding.detach(), 2e-3), 1e-15, 0.0));

  auto check = heed::gradcheck([](const std::vector<Tensor>& in) { return optim::l2_penalty(in[0], 0.3); },
                               {heed::randn({3, 2}, DType::Float64).requires_grad_()});
  CHECK_MESSAGE(check.ok, check.report);
}

TEST_CASE("optim: Adam with autograd and an L2 penalty minimizes a small regression") {
  heed::manual_seed(7);
  Tensor x = heed::randn({16, 3}, DType::Float64);
  Tensor true_w = heed::tensor({1.5, -2.0, 0.5}, {3, 1}, DType::Float64);
  Tensor y = heed::matmul(x, true_w);
  Tensor w = heed::zeros({3, 1}, DType::Float64).requires_grad_();
  optim::Adam opt({w}, optim::AdamOptions(0.05));
  double first_loss = 0.0, last_loss = 0.0;
  for (int step = 0; step < 300; ++step) {
    opt.zero_grad();
    Tensor residual = heed::matmul(x, w) - y;
    Tensor loss = heed::mean(residual * residual) + optim::l2_penalty(w, 1e-4);
    if (step == 0) first_loss = loss.item();
    last_loss = loss.item();
    loss.backward();
    optim::clip_grad_norm_({w}, 10.0);
    opt.step();
  }
  CHECK(heed::tape_size() == 0);
  CHECK(last_loss < 1e-2 * first_loss);
  CHECK(heed::allclose(w.detach(), true_w, 0.0, 0.02));
}
