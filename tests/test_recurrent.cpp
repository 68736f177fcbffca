// RNN / LSTM / GRU and their cells: PyTorch parity (tests/fixtures/make_recurrent_fixtures.py), gradient
// checks of every input, state and weight (2 layers, bidirectional, variable lengths, dropout), padding
// semantics against sequences run alone, layouts, dtypes and errors.
#include <doctest/doctest.h>

#include <memory>
#include <string>
#include <vector>

#include <heed/heed.hpp>
#include <heed/io/safetensors.hpp>

#include "heed/nn/recurrent.hpp"
#include "testing.hpp"

namespace {

using heed::DType;
using heed::Shape;
using heed::Tensor;
namespace nn = heed::nn;

heed::io::SafetensorsFile fixture(const std::string& name) {
  return heed::io::load_safetensors(std::string(HEED_FIXTURE_DIR) + "/" + name + ".safetensors");
}

// Loads the tensors of `file` whose names start with `prefix` (prefix removed) into m; all must be there.
void load_weights(nn::Module& m, const heed::io::SafetensorsFile& file, const std::string& prefix = "") {
  nn::NamedTensors state;
  for (const auto& [name, t] : file.tensors)
    if (name.rfind(prefix, 0) == 0) state.emplace_back(name.substr(prefix.size()), t);
  const nn::LoadResult r = m.load_state_dict(state, /*strict=*/false);
  REQUIRE_MESSAGE(r.missing_keys.empty(), r.to_string());
  REQUIRE_MESSAGE(r.mismatched_keys.empty(), r.to_string());
}

void check_close(const Tensor& got, const Tensor& want, const std::string& what, double tol = 1e-5) {
  REQUIRE_MESSAGE(got.defined(), what << " is undefined");
  REQUIRE_MESSAGE(got.shape() == want.shape(),
                  what << ": shape " << heed::shape_str(got.shape()) << " vs " << heed::shape_str(want.shape()));
  const double diff = heed::max_abs_diff(got, want);
  CHECK_MESSAGE(diff <= tol, what << ": max |difference| = " << diff);
}

Tensor flat(const std::vector<Tensor>& parts) {
  std::vector<Tensor> flats;
  for (const Tensor& p : parts)
    if (p.defined()) flats.push_back(heed::flatten(p));
  return heed::concat(flats, 0);
}

using heed::testing::randn64;

// gradcheck of f w.r.t. `inputs` (leaves that require grad) plus every parameter of m.
template <class F>
void check_grads(nn::Module& m, std::vector<Tensor> inputs, F f) {
  const std::size_t n_inputs = inputs.size();
  for (const Tensor& p : m.parameters()) inputs.push_back(p);
  const heed::GradcheckResult r =
      heed::gradcheck([&](const std::vector<Tensor>& in) { return f(std::vector<Tensor>(in.begin(), in.begin() + n_inputs)); },
                      inputs);
  CHECK_MESSAGE(r.ok, r.report);
  CHECK(r.elements_checked > 0);
}

using heed::testing::error_of;

// The PyTorch fixtures: N = 3, T = 5, input 3, hidden 4, 2 layers, bidirectional, batch_first.
template <class M, class Options>
std::shared_ptr<M> fixture_module(Options options) {
  return std::make_shared<M>(options.num_layers(2).bidirectional(true).batch_first(true));
}

}  // namespace

// ---- PyTorch parity ------------------------------------------------------------------------------------

TEST_CASE("lstm: output, h_n and c_n equal PyTorch, full and packed (variable lengths)") {
  const auto f = fixture("lstm");
  auto lstm = fixture_module<nn::LSTM>(nn::LSTMOptions(3, 4));
  load_weights(*lstm, f);
  CHECK(lstm->to_string() == f.metadata.at("repr"));
  heed::NoGradGuard no_grad;
  auto [output, h_n, c_n] = lstm->forward(f.get("input"), {f.get("h0"), f.get("c0")});
  check_close(output, f.get("output"), "lstm output");
  check_close(h_n, f.get("h_n"), "lstm h_n");
  check_close(c_n, f.get("c_n"), "lstm c_n");
  auto packed = lstm->forward(f.get("input"), {f.get("h0"), f.get("c0")}, f.get("lengths"));
  check_close(packed.output, f.get("packed_output"), "lstm packed output");
  check_close(packed.h_n, f.get("packed_h_n"), "lstm packed h_n");
  check_close(packed.c_n, f.get("packed_c_n"), "lstm packed c_n");
}

TEST_CASE("gru: output and h_n equal PyTorch, full and packed (variable lengths)") {
  const auto f = fixture("gru");
  auto gru = fixture_module<nn::GRU>(nn::GRUOptions(3, 4));
  load_weights(*gru, f);
  CHECK(gru->to_string() == f.metadata.at("repr"));
  heed::NoGradGuard no_grad;
  auto [output, h_n] = gru->forward(f.get("input"), f.get("h0"));
  check_close(output, f.get("output"), "gru output");
  check_close(h_n, f.get("h_n"), "gru h_n");
  auto packed = gru->forward(f.get("input"), f.get("h0"), f.get("lengths"));
  check_close(packed.output, f.get("packed_output"), "gru packed output");
  check_close(packed.h_n, f.get("packed_h_n"), "gru packed h_n");
}

TEST_CASE("rnn: tanh and relu outputs and h_n equal PyTorch, full and packed (variable lengths)") {
  for (auto nonlinearity : {nn::RNNNonlinearity::Tanh, nn::RNNNonlinearity::ReLU}) {
    const std::string name = nonlinearity == nn::RNNNonlinearity::Tanh ? "rnn_tanh" : "rnn_relu";
    CAPTURE(name);
    const auto f = fixture(name);
    auto rnn = fixture_module<nn::RNN>(nn::RNNOptions(3, 4).nonlinearity(nonlinearity));
    load_weights(*rnn, f);
    CHECK(rnn->to_string() == f.metadata.at("repr"));
    heed::NoGradGuard no_grad;
    auto [output, h_n] = rnn->forward(f.get("input"), f.get("h0"));
    check_close(output, f.get("output"), name + " output");
    check_close(h_n, f.get("h_n"), name + " h_n");
    auto packed = rnn->forward(f.get("input"), f.get("h0"), f.get("lengths"));
    check_close(packed.output, f.get("packed_output"), name + " packed output");
    check_close(packed.h_n, f.get("packed_h_n"), name + " packed h_n");
  }
}

TEST_CASE("lstm cell, gru cell, rnn cell: one step equals PyTorch") {
  const auto f = fixture("cells");
  const Tensor x = f.get("cell_input"), h = f.get("cell_h"), c = f.get("cell_c");
  heed::NoGradGuard no_grad;
  nn::LSTMCell lstm(3, 4);
  load_weights(lstm, f, "lstm_cell.");
  const nn::LSTMState s = lstm.forward(x, {h, c});
  check_close(s.h, f.get("lstm_cell.h1"), "lstm cell h'");
  check_close(s.c, f.get("lstm_cell.c1"), "lstm cell c'");
  nn::GRUCell gru(3, 4);
  load_weights(gru, f, "gru_cell.");
  check_close(gru.forward(x, h), f.get("gru_cell.h1"), "gru cell h'");
  nn::RNNCell rnn(3, 4);
  load_weights(rnn, f, "rnn_cell.");
  check_close(rnn.forward(x, h), f.get("rnn_cell.h1"), "rnn cell h'");
}

// ---- parameters --------------------------------------------------------------------------------------

TEST_CASE("lstm / gru / rnn: PyTorch parameter names, shapes and U(-1/sqrt(H), 1/sqrt(H)) init") {
  nn::LSTM lstm(nn::LSTMOptions(5, 7).num_layers(2).bidirectional(true));
  const std::vector<std::pair<std::string, Shape>> expected = {
      {"weight_ih_l0", {28, 5}},          {"weight_hh_l0", {28, 7}},          {"bias_ih_l0", {28}},
      {"bias_hh_l0", {28}},               {"weight_ih_l0_reverse", {28, 5}},  {"weight_hh_l0_reverse", {28, 7}},
      {"bias_ih_l0_reverse", {28}},       {"bias_hh_l0_reverse", {28}},       {"weight_ih_l1", {28, 14}},
      {"weight_hh_l1", {28, 7}},          {"bias_ih_l1", {28}},               {"bias_hh_l1", {28}},
      {"weight_ih_l1_reverse", {28, 14}}, {"weight_hh_l1_reverse", {28, 7}},  {"bias_ih_l1_reverse", {28}},
      {"bias_hh_l1_reverse", {28}}};
  const auto named = lstm.named_parameters();
  REQUIRE(named.size() == expected.size());
  const double bound = 1.0 / std::sqrt(7.0);
  for (std::size_t i = 0; i < named.size(); ++i) {
    CHECK(named[i].first == expected[i].first);
    CHECK(named[i].second.shape() == expected[i].second);
    for (float v : named[i].second.to_vector<float>()) CHECK(std::abs(v) <= bound);
  }
  CHECK(nn::GRU(nn::GRUOptions(5, 7).bias(false)).named_parameters().size() == 2);
  CHECK(nn::GRU(5, 7).parameter("weight_hh_l0").shape() == Shape{21, 7});
  CHECK(nn::RNN(5, 7).parameter("weight_ih_l0").shape() == Shape{7, 5});
  CHECK(nn::LSTMCell(5, 7).parameter("weight_hh").shape() == Shape{28, 7});
  CHECK(nn::GRUCell(5, 7).parameter("bias_hh").shape() == Shape{21});
  CHECK(nn::RNNCell(nn::RNNCellOptions(5, 7).bias(false)).named_parameters().size() == 2);
  CHECK(nn::RNN(nn::RNNOptions(5, 7).nonlinearity(nn::RNNNonlinearity::ReLU).dropout(0.5)).to_string() ==
        "RNN(5, 7, dropout=0.5)");
  CHECK(nn::LSTMCell(5, 7).to_string() == "LSTMCell(5, 7)");
  CHECK(nn::RNNCell(nn::RNNCellOptions(5, 7).nonlinearity(nn::RNNNonlinearity::ReLU)).to_string() ==
        "RNNCell(5, 7, nonlinearity=relu)");
}

// ---- gradient checks (Float64) -----------------------------------------------------------------------

TEST_CASE("lstm cell, gru cell, rnn cell: gradcheck w.r.t. input, state and every weight") {
  heed::manual_seed(1);
  const Tensor x = randn64({2, 3}), h = randn64({2, 4}), c = randn64({2, 4});
  nn::LSTMCell lstm(3, 4);
  lstm.to(DType::Float64);
  check_grads(lstm, {x, h, c}, [&](const std::vector<Tensor>& in) {
    const nn::LSTMState s = lstm.forward(in[0], {in[1], in[2]});
    return flat({s.h, s.c});
  });
  nn::GRUCell gru(3, 4);
  gru.to(DType::Float64);
  check_grads(gru, {x, h}, [&](const std::vector<Tensor>& in) { return gru.forward(in[0], in[1]); });
  for (auto act : {nn::RNNNonlinearity::Tanh, nn::RNNNonlinearity::ReLU}) {
    nn::RNNCell rnn(nn::RNNCellOptions(3, 4).nonlinearity(act));
    rnn.to(DType::Float64);
    check_grads(rnn, {x, h}, [&](const std::vector<Tensor>& in) { return rnn.forward(in[0], in[1]); });
  }
  // unbatched step, zero initial state
  nn::LSTMCell plain(nn::LSTMCellOptions(3, 4).bias(false));
  plain.to(DType::Float64);
  const Tensor x1 = randn64({3});
  check_grads(plain, {x1}, [&](const std::vector<Tensor>& in) {
    const nn::LSTMState s = plain.forward(in[0], {});
    return flat({s.h, s.c});
  });
}

TEST_CASE("lstm: gradcheck, 2 layers, bidirectional, variable lengths, both layouts") {
  for (bool batch_first : {true, false}) {
    CAPTURE(batch_first);
    heed::manual_seed(2);
    nn::LSTM lstm(nn::LSTMOptions(3, 4).num_layers(2).bidirectional(true).batch_first(batch_first));
    lstm.to(DType::Float64);
    const Tensor x = randn64(batch_first ? Shape{3, 5, 3} : Shape{5, 3, 3});
    const Tensor h0 = randn64({4, 3, 4}), c0 = randn64({4, 3, 4});
    const Tensor lengths = heed::index_tensor({5, 2, 4});
    check_grads(lstm, {x, h0, c0}, [&](const std::vector<Tensor>& in) {
      auto out = lstm.forward(in[0], {in[1], in[2]}, lengths);
      return flat({out.output, out.h_n, out.c_n});
    });
  }
}

TEST_CASE("gru: gradcheck, 2 layers, bidirectional, variable lengths") {
  heed::manual_seed(3);
  nn::GRU gru(nn::GRUOptions(3, 4).num_layers(2).bidirectional(true).batch_first(true));
  gru.to(DType::Float64);
  const Tensor x = randn64({3, 5, 3}), h0 = randn64({4, 3, 4});
  const Tensor lengths = heed::index_tensor({3, 5, 1});
  check_grads(gru, {x, h0}, [&](const std::vector<Tensor>& in) {
    auto out = gru.forward(in[0], in[1], lengths);
    return flat({out.output, out.h_n});
  });
}

TEST_CASE("rnn: gradcheck tanh and relu, 2 layers, bidirectional, variable lengths, no bias") {
  for (auto act : {nn::RNNNonlinearity::Tanh, nn::RNNNonlinearity::ReLU}) {
    heed::manual_seed(4);
    nn::RNN rnn(nn::RNNOptions(3, 4).num_layers(2).bidirectional(true).nonlinearity(act).bias(act ==
                                                                                           nn::RNNNonlinearity::Tanh));
    rnn.to(DType::Float64);
    const Tensor x = randn64({5, 2, 3}), h0 = randn64({4, 2, 4});
    const Tensor lengths = heed::index_tensor({4, 5});
    check_grads(rnn, {x, h0}, [&](const std::vector<Tensor>& in) {
      auto out = rnn.forward(in[0], in[1], lengths);
      return flat({out.output, out.h_n});
    });
  }
}

TEST_CASE("lstm: gradcheck with dropout between 3 layers (training mode, reseeded)") {
  heed::manual_seed(5);
  nn::LSTM lstm(nn::LSTMOptions(3, 4).num_layers(3).dropout(0.4).batch_first(true));
  lstm.to(DType::Float64);
  const Tensor x = randn64({2, 4, 3});
  check_grads(lstm, {x}, [&](const std::vector<Tensor>& in) {
    heed::manual_seed(77);  // the same dropout masks on every call
    auto out = lstm.forward(in[0], {});
    return flat({out.output, out.h_n, out.c_n});
  });
}

TEST_CASE("lstm: dropout is active in training and off in eval") {
  heed::manual_seed(6);
  nn::LSTM lstm(nn::LSTMOptions(3, 8).num_layers(2).dropout(0.5));
  const Tensor x = heed::randn({6, 2, 3});
  heed::NoGradGuard no_grad;
  const Tensor a = lstm.forward(x), b = lstm.forward(x);
  CHECK(heed::max_abs_diff(a, b) > 1e-4);  // different masks
  lstm.eval();
  const Tensor c = lstm.forward(x), d = lstm.forward(x);
  CHECK(heed::max_abs_diff(c, d) == 0.0);
  nn::LSTM no_dropout(nn::LSTMOptions(3, 8).num_layers(2));
  no_dropout.load_state_dict(lstm.state_dict());
  CHECK(heed::max_abs_diff(no_dropout.forward(x), c) == 0.0);
}

// ---- variable lengths --------------------------------------------------------------------------------

TEST_CASE("lstm, gru: padded steps change nothing, get no gradient, and match each sequence run alone") {
  heed::manual_seed(7);
  nn::LSTM lstm(nn::LSTMOptions(3, 4).num_layers(2).bidirectional(true).batch_first(true));
  nn::GRU gru(nn::GRUOptions(3, 4).num_layers(2).bidirectional(true).batch_first(true));
  lstm.to(DType::Float64);
  gru.to(DType::Float64);
  const std::vector<int64_t> lens{6, 2, 4};
  const Tensor lengths = heed::index_tensor(lens);
  const Tensor x = randn64({3, 6, 3});
  const Tensor h0 = heed::randn({4, 3, 4}, DType::Float64), c0 = heed::randn({4, 3, 4}, DType::Float64);

  // Garbage in the padding must not change anything.
  Tensor x_noisy = x.detach().clone();
  {
    double* p = x_noisy.data<double>();
    for (int64_t n = 0; n < 3; ++n)
      for (int64_t t = lens[n]; t < 6; ++t)
        for (int64_t j = 0; j < 3; ++j) p[(n * 6 + t) * 3 + j] = 100.0 + t;
  }

  auto lstm_out = lstm.forward(x, {h0, c0}, lengths);
  auto gru_out = gru.forward(x, h0, lengths);
  heed::sum(flat({lstm_out.output, lstm_out.h_n, lstm_out.c_n, gru_out.output, gru_out.h_n})).backward();
  const std::vector<double> gx = x.grad().to_vector<double>();
  for (int64_t n = 0; n < 3; ++n)
    for (int64_t t = lens[n]; t < 6; ++t)
      for (int64_t j = 0; j < 3; ++j) CHECK(gx[static_cast<std::size_t>((n * 6 + t) * 3 + j)] == 0.0);

  heed::NoGradGuard no_grad;
  auto noisy = lstm.forward(x_noisy, {h0, c0}, lengths);
  CHECK(heed::max_abs_diff(noisy.output, lstm_out.output) == 0.0);
  CHECK(heed::max_abs_diff(noisy.h_n, lstm_out.h_n) == 0.0);
  CHECK(heed::max_abs_diff(noisy.c_n, lstm_out.c_n) == 0.0);
  CHECK(heed::max_abs_diff(gru.forward(x_noisy, h0, lengths).output, gru_out.output) == 0.0);

  for (int64_t n = 0; n < 3; ++n) {
    CAPTURE(n);
    const Tensor xn = heed::narrow(heed::narrow(x.detach(), 0, n, 1), 1, 0, lens[n]);
    const Tensor hn = heed::narrow(h0, 1, n, 1).contiguous(), cn = heed::narrow(c0, 1, n, 1).contiguous();
    auto alone = lstm.forward(xn, {hn, cn});
    CHECK(heed::max_abs_diff(alone.output, heed::narrow(heed::narrow(lstm_out.output, 0, n, 1), 1, 0, lens[n])) < 1e-12);
    CHECK(heed::max_abs_diff(alone.h_n, heed::narrow(lstm_out.h_n, 1, n, 1)) < 1e-12);
    CHECK(heed::max_abs_diff(alone.c_n, heed::narrow(lstm_out.c_n, 1, n, 1)) < 1e-12);
    auto gru_alone = gru.forward(xn, hn);
    CHECK(heed::max_abs_diff(gru_alone.output, heed::narrow(heed::narrow(gru_out.output, 0, n, 1), 1, 0, lens[n])) < 1e-12);
    CHECK(heed::max_abs_diff(gru_alone.h_n, heed::narrow(gru_out.h_n, 1, n, 1)) < 1e-12);
    // outputs at padded steps are exactly zero
    if (lens[n] < 6) {
      const Tensor pad = heed::narrow(heed::narrow(lstm_out.output, 0, n, 1), 1, lens[n], 6 - lens[n]);
      CHECK(heed::max_abs_diff(pad, heed::zeros(pad.shape(), DType::Float64)) == 0.0);
    }
  }
}

TEST_CASE("lstm: a zero length keeps the initial state and outputs zeros") {
  nn::LSTM lstm(nn::LSTMOptions(2, 3).bidirectional(true));
  const Tensor x = heed::randn({4, 2, 2}), h0 = heed::randn({2, 2, 3}), c0 = heed::randn({2, 2, 3});
  heed::NoGradGuard no_grad;
  auto out = lstm.forward(x, {h0, c0}, heed::index_tensor({0, 4}));
  CHECK(heed::max_abs_diff(heed::narrow(out.h_n, 1, 0, 1), heed::narrow(h0, 1, 0, 1)) == 0.0);
  CHECK(heed::max_abs_diff(heed::narrow(out.c_n, 1, 0, 1), heed::narrow(c0, 1, 0, 1)) == 0.0);
  CHECK(heed::max_abs_diff(heed::select(out.output, 1, 0), heed::zeros({4, 6})) == 0.0);
}

// ---- layouts, consistency, errors ------------------------------------------------------------------------

TEST_CASE("lstm: batch_first, time-major and unbatched inputs agree; the cell equals one step") {
  heed::manual_seed(8);
  nn::LSTM tm(nn::LSTMOptions(3, 5).num_layers(2).bidirectional(true));
  nn::LSTM bf(nn::LSTMOptions(3, 5).num_layers(2).bidirectional(true).batch_first(true));
  bf.load_state_dict(tm.state_dict());
  const Tensor x = heed::randn({6, 2, 3});  // (T, N, in)
  heed::NoGradGuard no_grad;
  auto a = tm.forward(x, {});
  auto b = bf.forward(x.transpose(0, 1), {});
  CHECK(b.output.shape() == Shape{2, 6, 10});
  CHECK(a.h_n.shape() == Shape{4, 2, 5});
  CHECK(heed::max_abs_diff(a.output, b.output.transpose(0, 1)) < 1e-6);
  CHECK(heed::max_abs_diff(a.h_n, b.h_n) < 1e-6);
  CHECK(heed::max_abs_diff(a.c_n, b.c_n) < 1e-6);
  auto u = tm.forward(heed::select(x, 1, 1), {});  // unbatched (T, in)
  CHECK(u.output.shape() == Shape{6, 10});
  CHECK(u.h_n.shape() == Shape{4, 5});
  CHECK(heed::max_abs_diff(u.output, heed::select(a.output, 1, 1)) < 1e-6);
  CHECK(heed::max_abs_diff(u.c_n, heed::select(a.c_n, 1, 1)) < 1e-6);

  nn::LSTM one(3, 5);
  nn::LSTMCell cell(3, 5);
  cell.load_state_dict({{"weight_ih", one.parameter("weight_ih_l0")}, {"weight_hh", one.parameter("weight_hh_l0")},
                        {"bias_ih", one.parameter("bias_ih_l0")}, {"bias_hh", one.parameter("bias_hh_l0")}});
  nn::LSTMState s;
  for (int64_t t = 0; t < 6; ++t) s = cell.forward(heed::select(x, 0, t), s);
  auto full = one.forward(x, {});
  CHECK(heed::max_abs_diff(s.h, heed::select(full.h_n, 0, 0)) < 1e-6);
  CHECK(heed::max_abs_diff(s.c, heed::select(full.c_n, 0, 0)) < 1e-6);
}

TEST_CASE("lstm, gru: Float32 forward and gradients agree with Float64; one forward records one op") {
  heed::manual_seed(9);
  const Tensor x = heed::randn({3, 7, 4}), lengths = heed::index_tensor({7, 3, 5});
  const Tensor x64 = x.to(DType::Float64);
  auto grads_of = [](nn::Module& m, const Tensor& input, auto run) {
    m.zero_grad();
    Tensor xi = input.detach().clone().requires_grad_();
    heed::sum(heed::square(run(xi))).backward();
    std::vector<Tensor> g{xi.grad()};
    for (const Tensor& p : m.parameters()) g.push_back(p.grad().to(DType::Float64));
    return g;
  };
  auto compare = [&](nn::Module& m32, nn::Module& m64, auto run) {
    const std::vector<Tensor> g32 = grads_of(m32, x, run), g64 = grads_of(m64, x64, run);
    REQUIRE(g32.size() == g64.size());
    for (std::size_t i = 0; i < g32.size(); ++i) {
      CAPTURE(i);
      CHECK(heed::max_abs_diff(g32[i].to(DType::Float64), g64[i]) < 1e-4);
    }
  };
  nn::LSTM lstm(nn::LSTMOptions(4, 6).num_layers(2).bidirectional(true).batch_first(true));
  nn::LSTM lstm64(nn::LSTMOptions(4, 6).num_layers(2).bidirectional(true).batch_first(true));
  lstm64.load_state_dict(lstm.state_dict());
  lstm64.to(DType::Float64);
  heed::clear_tape();
  lstm.forward(x, {}, lengths);
  CHECK(heed::tape_size() == 4);  // the fused op and its three result views
  heed::clear_tape();
  compare(lstm, lstm64, [&](const Tensor& in) {
    nn::LSTM& m = in.dtype() == DType::Float32 ? lstm : lstm64;
    auto out = m.forward(in, {}, lengths);
    return flat({out.output, out.h_n, out.c_n});
  });
  nn::GRU gru(nn::GRUOptions(4, 6).num_layers(2).bidirectional(true).batch_first(true));
  nn::GRU gru64(nn::GRUOptions(4, 6).num_layers(2).bidirectional(true).batch_first(true));
  gru64.load_state_dict(gru.state_dict());
  gru64.to(DType::Float64);
  compare(gru, gru64, [&](const Tensor& in) {
    nn::GRU& m = in.dtype() == DType::Float32 ? gru : gru64;
    auto out = m.forward(in, Tensor(), lengths);
    return flat({out.output, out.h_n});
  });
  nn::RNN rnn(4, 6);
  heed::NoGradGuard no_grad;
  CHECK(heed::max_abs_diff(rnn.forward(x), rnn.forward(x, Tensor()).output) == 0.0);
}

TEST_CASE("recurrent layers: errors name the layer, the argument and the shapes") {
  nn::LSTM lstm(nn::LSTMOptions(3, 4).num_layers(2));
  const Tensor x = heed::randn({5, 2, 3});
  using heed::testing::contains;
  CHECK(contains(error_of([&] { lstm.forward(heed::randn({5, 2, 4})); }), "LSTM: the input [5, 2, 4] must have 3 features"));
  CHECK(contains(error_of([&] { lstm.forward(x, {heed::zeros({1, 2, 4}), Tensor()}); }),
                 "LSTM: h_0 must have shape [2, 2, 4], got [1, 2, 4]"));
  CHECK(contains(error_of([&] { lstm.forward(x, {}, heed::index_tensor({5, 6})); }), "every length must be in [0, 5]"));
  CHECK(contains(error_of([&] { lstm.forward(x, {}, heed::index_tensor({5})); }), "lengths must be Int64 of shape [2]"));
  CHECK(contains(error_of([&] { lstm.forward(x.to(DType::Float64)); }), "the input is Float64 but the parameters are Float32"));
  CHECK(contains(error_of([&] { nn::LSTM bad(nn::LSTMOptions(3, 4).dropout(1.0)); }), "LSTM: dropout must be in [0, 1)"));
  nn::GRUCell cell(3, 4);
  CHECK(contains(error_of([&] { cell.forward(heed::randn({2, 3}), heed::zeros({3, 4})); }),
                 "GRUCell: h must have shape [2, 4], got [3, 4]"));
}

// ---- the op itself: heed::rnn_fused / heed::rnn_cell_fused on weights held outside a module ---------------

namespace {

// PyTorch's flat weights for `spec`, Float64 leaves: per layer, direction: w_ih, w_hh[, b_ih, b_hh].
std::vector<Tensor> op_weights(const heed::RecurrentOpSpec& spec) {
  const int64_t GH = heed::recurrent_gate_count(spec.kind()) * spec.hidden_size();
  const int64_t dirs = spec.bidirectional() ? 2 : 1;
  std::vector<Tensor> w;
  for (int64_t l = 0; l < spec.num_layers(); ++l) {
    for (int64_t d = 0; d < dirs; ++d) {
      const int64_t in = l == 0 ? spec.input_size() : dirs * spec.hidden_size();
      w.push_back(heed::mul(heed::randn({GH, in}, DType::Float64), 0.5).requires_grad_());
      w.push_back(heed::mul(heed::randn({GH, spec.hidden_size()}, DType::Float64), 0.5).requires_grad_());
      if (spec.bias()) {
        w.push_back(heed::mul(heed::randn({GH}, DType::Float64), 0.5).requires_grad_());
        w.push_back(heed::mul(heed::randn({GH}, DType::Float64), 0.5).requires_grad_());
      }
    }
  }
  return w;
}

// gradcheck of f w.r.t. `inputs` followed by `weights`; f receives both in that order.
template <class F>
void check_op_grads(std::vector<Tensor> inputs, const std::vector<Tensor>& weights, F f) {
  const std::size_t n_inputs = inputs.size();
  inputs.insert(inputs.end(), weights.begin(), weights.end());
  const heed::GradcheckResult r = heed::gradcheck(
      [&](const std::vector<Tensor>& in) {
        return f(std::vector<Tensor>(in.begin(), in.begin() + n_inputs),
                 std::vector<Tensor>(in.begin() + n_inputs, in.end()));
      },
      inputs);
  CHECK_MESSAGE(r.ok, r.report);
  CHECK(r.elements_checked > 0);
}

}  // namespace

TEST_CASE("rnn_fused: gradcheck of the op for every kind, 2 layers, bidirectional, variable lengths") {
  using heed::RecurrentKind;
  for (RecurrentKind kind : {RecurrentKind::LSTM, RecurrentKind::GRU, RecurrentKind::RNNTanh, RecurrentKind::RNNReLU}) {
    CAPTURE(static_cast<int>(kind));
    heed::manual_seed(10);
    heed::RecurrentOpSpec spec(kind, 3, 4);
    spec.num_layers(2).bidirectional(true).batch_first(true);
    const std::vector<Tensor> weights = op_weights(spec);
    const bool lstm = kind == RecurrentKind::LSTM;
    const Tensor x = randn64({3, 5, 3}), h0 = randn64({4, 3, 4});
    const Tensor c0 = lstm ? randn64({4, 3, 4}) : Tensor();
    const Tensor lengths = heed::index_tensor({5, 2, 4});
    std::vector<Tensor> inputs{x, h0};
    if (lstm) inputs.push_back(c0);
    check_op_grads(inputs, weights, [&](const std::vector<Tensor>& in, const std::vector<Tensor>& w) {
      const heed::RecurrentOpOutput out = heed::rnn_fused(spec, in[0], in[1], lstm ? in[2] : Tensor(), w, lengths);
      CHECK(out.output.shape() == Shape{3, 5, 8});
      CHECK(out.h_n.shape() == Shape{4, 3, 4});
      CHECK(out.c_n.defined() == lstm);
      return flat({out.output, out.h_n, out.c_n});
    });
  }
}

TEST_CASE("rnn_fused: unbatched time-major input without bias; a module with the same weights agrees") {
  heed::manual_seed(11);
  heed::RecurrentOpSpec spec(heed::RecurrentKind::GRU, 2, 3);
  spec.bias(false);
  const std::vector<Tensor> weights = op_weights(spec);
  const Tensor x = randn64({4, 2});
  check_op_grads({x}, weights, [&](const std::vector<Tensor>& in, const std::vector<Tensor>& w) {
    const heed::RecurrentOpOutput out = heed::rnn_fused(spec, in[0], Tensor(), Tensor(), w);
    CHECK(out.output.shape() == Shape{4, 3});
    CHECK(out.h_n.shape() == Shape{1, 3});
    return flat({out.output, out.h_n});
  });
  nn::GRU gru(nn::GRUOptions(2, 3).bias(false));
  gru.to(DType::Float64);
  gru.load_state_dict({{"weight_ih_l0", weights[0].detach()}, {"weight_hh_l0", weights[1].detach()}});
  heed::NoGradGuard no_grad;
  CHECK(heed::max_abs_diff(gru.forward(x), heed::rnn_fused(spec, x, Tensor(), Tensor(), weights).output) == 0.0);
}

TEST_CASE("rnn_cell_fused: gradcheck of one step for every kind, batched and unbatched") {
  using heed::RecurrentKind;
  for (RecurrentKind kind : {RecurrentKind::LSTM, RecurrentKind::GRU, RecurrentKind::RNNTanh, RecurrentKind::RNNReLU}) {
    CAPTURE(static_cast<int>(kind));
    heed::manual_seed(12);
    const heed::RecurrentOpSpec spec(kind, 3, 4);
    const std::vector<Tensor> weights = op_weights(spec);
    const bool lstm = kind == RecurrentKind::LSTM;
    for (const Shape& batch : {Shape{2}, Shape{}}) {
      Shape xs = batch, hs = batch;
      xs.push_back(3);
      hs.push_back(4);
      const Tensor x = randn64(xs), h = randn64(hs), c = lstm ? randn64(hs) : Tensor();
      std::vector<Tensor> inputs{x, h};
      if (lstm) inputs.push_back(c);
      check_op_grads(inputs, weights, [&](const std::vector<Tensor>& in, const std::vector<Tensor>& w) {
        const heed::RecurrentOpState s = heed::rnn_cell_fused(spec, in[0], in[1], lstm ? in[2] : Tensor(), w);
        CHECK(s.h.shape() == hs);
        return flat({s.h, s.c});
      });
    }
  }
}

TEST_CASE("rnn_fused, rnn_cell_fused: errors name the op (or spec.name), the argument and the shapes") {
  auto contains = [](const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; };
  heed::RecurrentOpSpec spec(heed::RecurrentKind::GRU, 3, 4);
  const std::vector<Tensor> weights = op_weights(spec);
  const Tensor x = heed::randn({5, 2, 3}, DType::Float64);
  CHECK(contains(error_of([&] { heed::rnn_fused(spec, x, Tensor(), Tensor(), {weights[0], weights[1]}); }),
                 "gru: expected 4 weights (4 per layer and direction), got 2"));
  CHECK(contains(error_of([&] { heed::rnn_fused(spec, x, Tensor(), Tensor(), {weights[1], weights[0], weights[2], weights[3]}); }),
                 "gru: weight 0 must have shape [12, 3], got [12, 4]"));
  CHECK(contains(error_of([&] { heed::rnn_fused(spec, x, Tensor(), heed::zeros({1, 2, 4}, DType::Float64), weights); }),
                 "gru: c_0 is given, but only an LSTM has a cell state"));
  CHECK(contains(error_of([&] { heed::rnn_fused(spec, heed::randn({5, 2, 3}), Tensor(), Tensor(), weights); }),
                 "gru: the input is Float32 but the parameters are Float64"));
  CHECK(contains(error_of([&] { heed::rnn_fused(heed::RecurrentOpSpec(spec).name("Encoder"), x, heed::zeros({2, 2, 4}, DType::Float64), Tensor(), weights); }),
                 "Encoder: h_0 must have shape [1, 2, 4], got [2, 2, 4]"));
  CHECK(contains(error_of([&] { heed::rnn_fused(heed::RecurrentOpSpec(spec).dropout(1.0), x, Tensor(), Tensor(), weights); }),
                 "gru: dropout must be in [0, 1)"));
  CHECK(contains(error_of([&] { heed::rnn_cell_fused(spec, heed::randn({2, 3}, DType::Float64), heed::zeros({3, 4}, DType::Float64), Tensor(), weights); }),
                 "gru_cell: h must have shape [2, 4], got [3, 4]"));
  CHECK(contains(error_of([&] { heed::rnn_cell_fused(heed::RecurrentOpSpec(spec).num_layers(2), x, Tensor(), Tensor(), weights); }),
                 "gru_cell: a cell step has one layer and one direction"));
}
