// GATConv (docs/attention-spec.md M12): PyG parameter names, a tiny graph against a hand loop of the equations,
// a node whose only neighbour is itself, gradient checks (concat / average heads, a batch of graphs,
// dropout on inputs and on alpha), errors; the same for GATv2Conv plus a hand-computed case of dynamic
// attention; and the spec's Task I (contextual stochastic block model): GAT and GATv2 must beat a
// feature-only MLP by 20 points, and GATv2's attention must favour same-class neighbours (see that test).
#include <doctest/doctest.h>

#include <cmath>
#include <heed/heed.hpp>
#include <memory>
#include <vector>

#include "heed/nn/graph_attention.hpp"
#include "testing.hpp"

namespace {

using heed::DType;
using heed::Shape;
using heed::Tensor;
namespace nn = heed::nn;
using heed::testing::check_grad;
using heed::testing::error_of;

Tensor adjacency_from_edges(int64_t n, const std::vector<std::pair<int64_t, int64_t>>& undirected) {
  std::vector<bool> adj(static_cast<std::size_t>(n * n), false);
  for (auto [a, b] : undirected) adj[a * n + b] = adj[b * n + a] = true;
  return heed::bool_tensor(adj, {n, n});
}

std::vector<Tensor> inputs_with_params(const std::vector<Tensor>& xs, nn::Module& m) {
  std::vector<Tensor> in = xs;
  for (const Tensor& p : m.parameters()) in.push_back(p);
  return in;
}

template <class Conv>
void randomize_bias(Conv& conv) {
  heed::NoGradGuard no_grad;
  if (conv.bias.defined()) conv.bias.copy_(heed::randn(conv.bias.shape(), conv.bias.dtype()));
}

}  // namespace

TEST_CASE("GAT: PyTorch Geometric parameter names, shapes and repr") {
  nn::GATConv conv(nn::GATConvOptions(5, 3).heads(4));
  const auto params = conv.named_parameters();
  REQUIRE(params.size() == 4);
  CHECK(params[0].first == "att_src");
  CHECK(params[0].second.shape() == Shape{1, 4, 3});
  CHECK(params[1].first == "att_dst");
  CHECK(params[2].first == "bias");
  CHECK(params[2].second.shape() == Shape{12});
  CHECK(params[3].first == "lin.weight");
  CHECK(params[3].second.shape() == Shape{12, 5});
  CHECK(conv.extra_repr() == "5, 3, heads=4");
  CHECK(conv.to_string().find("(lin): Linear(in_features=5, out_features=12, bias=False)") != std::string::npos);
  nn::GATConv avg(nn::GATConvOptions(5, 3).heads(4).concat(false).bias(true));
  CHECK(avg.bias.shape() == Shape{3});
  CHECK(avg.extra_repr() == "5, 3, heads=4, concat=False");
}

TEST_CASE("GAT: a tiny graph against a hand loop of the equations, and a node whose only neighbour is itself") {
  heed::manual_seed(31);
  // 4 nodes: path 0 - 1 - 2, node 3 isolated (self-loop only). 2 heads of width 2, concatenated.
  const int64_t n = 4, f = 3, k = 2, c = 2;
  nn::GATConv conv(nn::GATConvOptions(f, c).heads(k));
  conv.to(DType::Float64);
  randomize_bias(conv);
  Tensor x = heed::randn({n, f}, DType::Float64);
  Tensor adj = adjacency_from_edges(n, {{0, 1}, {1, 2}});
  auto [out, alpha] = conv.forward(x, adj);
  REQUIRE(out.shape() == Shape{n, k * c});
  REQUIRE(alpha.shape() == Shape{k, n, n});

  const auto W = conv.lin->weight.to_vector<double>(), X = x.to_vector<double>();
  const auto a_src = conv.att_src.to_vector<double>(), a_dst = conv.att_dst.to_vector<double>();
  const auto bias = conv.bias.to_vector<double>();
  std::vector<double> z(n * k * c, 0.0);  // z[i][head][ch] = sum_f W[head*c + ch][f] x[i][f]
  for (int64_t i = 0; i < n; ++i)
    for (int64_t o = 0; o < k * c; ++o)
      for (int64_t q = 0; q < f; ++q) z[i * k * c + o] += W[o * f + q] * X[i * f + q];
  const std::vector<std::vector<int64_t>> neighbours{{0, 1}, {0, 1, 2}, {1, 2}, {3}};
  std::vector<double> expected_out, expected_alpha(k * n * n, 0.0);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t head = 0; head < k; ++head) {
      auto score = [&](const std::vector<double>& a, int64_t node) {
        double s = 0;
        for (int64_t ch = 0; ch < c; ++ch) s += a[head * c + ch] * z[node * k * c + head * c + ch];
        return s;
      };
      std::vector<double> e;
      double total = 0;
      for (int64_t j : neighbours[i]) {
        double v = score(a_dst, i) + score(a_src, j);
        v = v > 0 ? v : 0.2 * v;
        e.push_back(std::exp(v));
        total += e.back();
      }
      std::vector<double> h(c, 0.0);
      for (std::size_t t = 0; t < e.size(); ++t) {
        const int64_t j = neighbours[i][t];
        expected_alpha[(head * n + i) * n + j] = e[t] / total;
        for (int64_t ch = 0; ch < c; ++ch) h[ch] += e[t] / total * z[j * k * c + head * c + ch];
      }
      for (int64_t ch = 0; ch < c; ++ch) expected_out.push_back(h[ch] + bias[head * c + ch]);
    }
  heed::testing::check_values(out, {n, k * c}, expected_out, 1e-12);
  heed::testing::check_values(alpha, {k, n, n}, expected_alpha, 1e-12);
  // The isolated node attends only to itself: alpha = 1, output = z_3 + bias.
  for (int64_t head = 0; head < k; ++head) CHECK(alpha.to_vector<double>()[(head * n + 3) * n + 3] == 1.0);

  // Without self-loops the isolated node has nothing to attend to: zero attention, output = bias.
  nn::GATConv no_loops(nn::GATConvOptions(f, c).heads(k).add_self_loops(false));
  no_loops.to(DType::Float64);
  randomize_bias(no_loops);
  auto bare = no_loops.forward(x, adj);
  const auto o = bare.output.to_vector<double>(), b = no_loops.bias.to_vector<double>();
  for (int64_t ch = 0; ch < k * c; ++ch) CHECK(o[3 * k * c + ch] == b[ch]);
  for (double a : heed::select(bare.attention, 1, 3).to_vector<double>()) CHECK(a == 0.0);
  Tensor xr = x.detach().requires_grad_();
  check_grad([&](const std::vector<Tensor>& in) { return no_loops.forward(in[0], adj).output; },
             inputs_with_params({xr}, no_loops), "no self-loops, isolated node");
}

TEST_CASE("GAT: gradient checks (concat and averaged heads, a batch of graphs, dropout on inputs and alpha)") {
  heed::manual_seed(32);
  const int64_t n = 5, f = 3;
  Tensor x = heed::randn({n, f}, DType::Float64).requires_grad_();
  Tensor adj = adjacency_from_edges(n, {{0, 1}, {1, 2}, {2, 3}, {0, 3}});  // node 4 alone

  nn::GATConv concat(nn::GATConvOptions(f, 2).heads(3));
  concat.to(DType::Float64);
  randomize_bias(concat);
  check_grad([&](const std::vector<Tensor>& in) {
    auto r = concat.forward(in[0], adj);
    return heed::concat({heed::flatten(r.output), heed::flatten(r.attention)}, 0);
  }, inputs_with_params({x}, concat), "concat heads, output and attention");

  nn::GATConv average(nn::GATConvOptions(f, 2).heads(3).concat(false).negative_slope(0.1));
  average.to(DType::Float64);
  randomize_bias(average);
  check_grad([&](const std::vector<Tensor>& in) { return average.forward(in[0], adj).output; },
             inputs_with_params({x}, average), "averaged heads");

  // A batch of two graphs with their own adjacency.
  Tensor xb = heed::randn({2, n, f}, DType::Float64).requires_grad_();
  Tensor adj_b = heed::stack({adj, adjacency_from_edges(n, {{0, 4}, {1, 4}, {2, 4}})});
  check_grad([&](const std::vector<Tensor>& in) { return concat.forward(in[0], adj_b).output; },
             inputs_with_params({xb}, concat), "batch of graphs");
  // Batched output equals the graphs one by one.
  Tensor both = concat.forward(xb, adj_b).output;
  CHECK(heed::max_abs_diff(heed::select(both, 0, 1),
                           concat.forward(heed::select(xb, 0, 1), heed::select(adj_b, 0, 1)).output) <= 1e-14);

  // Dropout on the inputs and on alpha, with the generator reseeded inside f.
  nn::GATConv drop(nn::GATConvOptions(f, 2).heads(2).dropout(0.4).input_dropout(0.3));
  drop.to(DType::Float64);
  check_grad([&](const std::vector<Tensor>& in) {
    heed::manual_seed(77);
    return drop.forward(in[0], adj).output;
  }, inputs_with_params({x}, drop), "dropout");
  heed::manual_seed(78);
  auto dropped = drop.forward(x, adj);
  int64_t zeros = 0;
  for (double a : dropped.attention.to_vector<double>()) zeros += a == 0.0;
  CHECK(zeros > 2 * n * n - 2 * (n + 8));  // more zeros than the non-edges alone: some alpha were dropped
  drop.eval();
  auto kept = drop.forward(x, adj);
  CHECK(heed::max_abs_diff(heed::sum(kept.attention, {2}), heed::ones({2, n}, DType::Float64)) <= 1e-12);
}

TEST_CASE("GAT: bad inputs throw naming the layer and the shapes") {
  nn::GATConv conv(4, 2);
  CHECK(error_of([&] { conv.forward(heed::zeros({5, 3}), heed::zeros({5, 5}).to(DType::Bool)); })
            .find("GATConv(in_channels=4): x must be (n, 4)") != std::string::npos);
  CHECK(error_of([&] { conv.forward(heed::zeros({5, 4}), heed::zeros({5, 5})); }).find("adjacency must be Bool") !=
        std::string::npos);
  CHECK(error_of([&] { conv.forward(heed::zeros({5, 4}), heed::zeros({4, 4}).to(DType::Bool)); }).find("[4, 4]") !=
        std::string::npos);
  CHECK(error_of([] { nn::GATConv(nn::GATConvOptions(4, 2).dropout(1.0)); }).find("dropout") != std::string::npos);
  CHECK(error_of([] { nn::GATConv(nn::GATConvOptions(4, 0)); }).find("must be positive") != std::string::npos);
}

// ---- GATv2Conv (Brody et al. 2022): e_ij = att . LeakyReLU(lin_r(h_i) + lin_l(h_j)) ----

TEST_CASE("GATv2: PyTorch Geometric parameter names, shapes and repr") {
  nn::GATv2Conv conv(nn::GATv2ConvOptions(5, 3).heads(4));
  const auto params = conv.named_parameters();
  REQUIRE(params.size() == 6);
  CHECK(params[0].first == "att");
  CHECK(params[0].second.shape() == Shape{1, 4, 3});
  CHECK(params[1].first == "bias");
  CHECK(params[1].second.shape() == Shape{12});
  CHECK(params[2].first == "lin_l.weight");
  CHECK(params[2].second.shape() == Shape{12, 5});
  CHECK(params[3].first == "lin_l.bias");
  CHECK(params[3].second.shape() == Shape{12});
  CHECK(params[4].first == "lin_r.weight");
  CHECK(params[4].second.shape() == Shape{12, 5});
  CHECK(params[5].first == "lin_r.bias");
  CHECK(conv.extra_repr() == "5, 3, heads=4");
  nn::GATv2Conv avg(nn::GATv2ConvOptions(5, 3).heads(4).concat(false).dropout(0.5));
  CHECK(avg.bias.shape() == Shape{3});
  CHECK(avg.extra_repr() == "5, 3, heads=4, concat=False, dropout=0.5");
  nn::GATv2Conv no_bias(nn::GATv2ConvOptions(5, 3).bias(false));  // PyG: bias=False also drops lin_l/lin_r's
  CHECK(no_bias.named_parameters().size() == 3);
}

TEST_CASE("GATv2: hand-computed attention that ranks the same neighbours differently for different nodes") {
  // F = 1, one head of width 2: lin_l.weight = (1, -1), lin_r.weight = (-1, 1), biases 0, att = (-1, -1).
  // Then x^r_i + x^l_j = (h_j - h_i, h_i - h_j) and e_ij = -(LReLU(d) + LReLU(-d)) = -0.8 |h_j - h_i|:
  // every node prefers neighbours whose feature is close to its own, which static GAT cannot express.
  // Graph (no self-loops): nodes 0 (h = 1) and 1 (h = -1) each linked to nodes 2 (h = 1) and 3 (h = -1).
  //   node 0: e_02 = 0, e_03 = -1.6  ->  alpha_02 = sigmoid(1.6) = 0.83201838..., alpha_03 = 1 - that
  //   node 1: e_12 = -1.6, e_13 = 0  ->  the other way round; nodes 2 and 3 likewise over {0, 1}.
  //   out_0 = alpha_02 x^l_2 + alpha_03 x^l_3 = (2 sigmoid(1.6) - 1) (1, -1) = tanh(0.8) (1, -1), bias 0.
  nn::GATv2Conv conv(nn::GATv2ConvOptions(1, 2).add_self_loops(false));
  conv.to(DType::Float64);
  {
    heed::NoGradGuard no_grad;
    conv.lin_l->weight.copy_(heed::tensor({1.0, -1.0}, {2, 1}, DType::Float64));
    conv.lin_r->weight.copy_(heed::tensor({-1.0, 1.0}, {2, 1}, DType::Float64));
    conv.lin_l->bias.copy_(heed::zeros({2}, DType::Float64));
    conv.lin_r->bias.copy_(heed::zeros({2}, DType::Float64));
    conv.att.copy_(heed::tensor({-1.0, -1.0}, {1, 1, 2}, DType::Float64));
  }
  Tensor x = heed::tensor({1.0, -1.0, 1.0, -1.0}, {4, 1}, DType::Float64);
  auto [out, alpha] = conv.forward(x, adjacency_from_edges(4, {{0, 2}, {0, 3}, {1, 2}, {1, 3}}));
  const double hi = 0.8320183851339245, lo = 1 - hi, t = std::tanh(0.8);
  heed::testing::check_values(alpha, {1, 4, 4}, {0, 0, hi, lo, 0, 0, lo, hi, hi, lo, 0, 0, lo, hi, 0, 0}, 1e-15);
  heed::testing::check_values(out, {4, 2}, {t, -t, -t, t, t, -t, -t, t}, 1e-15);
}

TEST_CASE("GATv2: a tiny graph against a hand loop of the equations, and a node whose only neighbour is itself") {
  heed::manual_seed(33);
  // 4 nodes: path 0 - 1 - 2, node 3 isolated (self-loop only). 2 heads of width 2, concatenated.
  const int64_t n = 4, f = 3, k = 2, c = 2;
  nn::GATv2Conv conv(nn::GATv2ConvOptions(f, c).heads(k).negative_slope(0.3));
  conv.to(DType::Float64);
  randomize_bias(conv);
  Tensor x = heed::randn({n, f}, DType::Float64);
  Tensor adj = adjacency_from_edges(n, {{0, 1}, {1, 2}});
  auto [out, alpha] = conv.forward(x, adj);
  REQUIRE(out.shape() == Shape{n, k * c});
  REQUIRE(alpha.shape() == Shape{k, n, n});

  const auto X = x.to_vector<double>(), att = conv.att.to_vector<double>(), bias = conv.bias.to_vector<double>();
  auto project = [&](const nn::Linear& lin) {  // y[i][o] = sum_f W[o][f] x[i][f] + b[o]
    const auto W = lin.weight.to_vector<double>(), b = lin.bias.to_vector<double>();
    std::vector<double> y(n * k * c);
    for (int64_t i = 0; i < n; ++i)
      for (int64_t o = 0; o < k * c; ++o) {
        y[i * k * c + o] = b[o];
        for (int64_t q = 0; q < f; ++q) y[i * k * c + o] += W[o * f + q] * X[i * f + q];
      }
    return y;
  };
  const auto xl = project(*conv.lin_l), xr = project(*conv.lin_r);
  const std::vector<std::vector<int64_t>> neighbours{{0, 1}, {0, 1, 2}, {1, 2}, {3}};
  std::vector<double> expected_out, expected_alpha(k * n * n, 0.0);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t head = 0; head < k; ++head) {
      std::vector<double> e;
      double total = 0;
      for (int64_t j : neighbours[i]) {
        double score = 0;
        for (int64_t ch = 0; ch < c; ++ch) {
          const int64_t o = head * c + ch;
          const double v = xr[i * k * c + o] + xl[j * k * c + o];
          score += att[o] * (v > 0 ? v : 0.3 * v);
        }
        e.push_back(std::exp(score));
        total += e.back();
      }
      std::vector<double> h(c, 0.0);
      for (std::size_t t = 0; t < e.size(); ++t) {
        const int64_t j = neighbours[i][t];
        expected_alpha[(head * n + i) * n + j] = e[t] / total;
        for (int64_t ch = 0; ch < c; ++ch) h[ch] += e[t] / total * xl[j * k * c + head * c + ch];
      }
      for (int64_t ch = 0; ch < c; ++ch) expected_out.push_back(h[ch] + bias[head * c + ch]);
    }
  heed::testing::check_values(out, {n, k * c}, expected_out, 1e-12);
  heed::testing::check_values(alpha, {k, n, n}, expected_alpha, 1e-12);
  for (int64_t head = 0; head < k; ++head) CHECK(alpha.to_vector<double>()[(head * n + 3) * n + 3] == 1.0);

  // Without self-loops the isolated node has nothing to attend to: zero attention, output = bias.
  nn::GATv2Conv no_loops(nn::GATv2ConvOptions(f, c).heads(k).add_self_loops(false));
  no_loops.to(DType::Float64);
  randomize_bias(no_loops);
  auto bare = no_loops.forward(x, adj);
  const auto o = bare.output.to_vector<double>(), b = no_loops.bias.to_vector<double>();
  for (int64_t ch = 0; ch < k * c; ++ch) CHECK(o[3 * k * c + ch] == b[ch]);
  for (double a : heed::select(bare.attention, 1, 3).to_vector<double>()) CHECK(a == 0.0);
  Tensor xr_in = x.detach().requires_grad_();
  check_grad([&](const std::vector<Tensor>& in) { return no_loops.forward(in[0], adj).output; },
             inputs_with_params({xr_in}, no_loops), "GATv2 no self-loops, isolated node");
}

TEST_CASE("GATv2: gradient checks (concat and averaged heads, isolated node, a batch of graphs, dropout)") {
  heed::manual_seed(34);
  const int64_t n = 5, f = 3;
  Tensor x = heed::randn({n, f}, DType::Float64).requires_grad_();
  Tensor adj = adjacency_from_edges(n, {{0, 1}, {1, 2}, {2, 3}, {0, 3}});  // node 4 alone

  nn::GATv2Conv concat(nn::GATv2ConvOptions(f, 2).heads(3));
  concat.to(DType::Float64);
  randomize_bias(concat);
  check_grad([&](const std::vector<Tensor>& in) {
    auto r = concat.forward(in[0], adj);
    return heed::concat({heed::flatten(r.output), heed::flatten(r.attention)}, 0);
  }, inputs_with_params({x}, concat), "GATv2 concat heads, output and attention");

  nn::GATv2Conv average(nn::GATv2ConvOptions(f, 2).heads(3).concat(false).negative_slope(0.1));
  average.to(DType::Float64);
  randomize_bias(average);
  check_grad([&](const std::vector<Tensor>& in) { return average.forward(in[0], adj).output; },
             inputs_with_params({x}, average), "GATv2 averaged heads");

  Tensor xb = heed::randn({2, n, f}, DType::Float64).requires_grad_();
  Tensor adj_b = heed::stack({adj, adjacency_from_edges(n, {{0, 4}, {1, 4}, {2, 4}})});
  check_grad([&](const std::vector<Tensor>& in) { return concat.forward(in[0], adj_b).output; },
             inputs_with_params({xb}, concat), "GATv2 batch of graphs");
  Tensor both = concat.forward(xb, adj_b).output;
  CHECK(heed::max_abs_diff(heed::select(both, 0, 1),
                           concat.forward(heed::select(xb, 0, 1), heed::select(adj_b, 0, 1)).output) <= 1e-14);

  nn::GATv2Conv drop(nn::GATv2ConvOptions(f, 2).heads(2).dropout(0.4).input_dropout(0.3));
  drop.to(DType::Float64);
  check_grad([&](const std::vector<Tensor>& in) {
    heed::manual_seed(79);
    return drop.forward(in[0], adj).output;
  }, inputs_with_params({x}, drop), "GATv2 dropout");
  drop.eval();
  auto kept = drop.forward(x, adj);
  CHECK(heed::max_abs_diff(heed::sum(kept.attention, {2}), heed::ones({2, n}, DType::Float64)) <= 1e-12);
}

TEST_CASE("GATv2: bad inputs throw naming the layer and the shapes") {
  nn::GATv2Conv conv(4, 2);
  CHECK(error_of([&] { conv.forward(heed::zeros({5, 3}), heed::zeros({5, 5}).to(DType::Bool)); })
            .find("GATv2Conv(in_channels=4): x must be (n, 4) or (B, n, 4), got [5, 3]") != std::string::npos);
  CHECK(error_of([&] { conv.forward(heed::zeros({5, 4}), heed::zeros({5, 5})); })
            .find("GATv2Conv: adjacency must be Bool of shape [5, 5]") != std::string::npos);
  CHECK(error_of([&] { conv.forward(heed::zeros({2, 5, 4}), heed::zeros({3, 5, 5}).to(DType::Bool)); })
            .find("[5, 5] or [2, 5, 5] for x [2, 5, 4], got Bool of shape [3, 5, 5]") != std::string::npos);
  CHECK(error_of([] { nn::GATv2Conv(nn::GATv2ConvOptions(4, 2).input_dropout(-0.1)); })
            .find("GATv2Conv: dropout (0) and input_dropout (-0.1)") != std::string::npos);
  CHECK(error_of([] { nn::GATv2Conv(nn::GATv2ConvOptions(4, 2).heads(0)); })
            .find("GATv2Conv: in_channels (4), out_channels (2) and heads (0) must be positive") != std::string::npos);
}

namespace {

// Task I: a contextual stochastic block model. 4 classes x 100 nodes; edges inside a class with p_in =
// 0.05, across with p_out = 0.01; features = the class mean + N(0, sigma^2) noise, sigma chosen so that
// a feature-only MLP gets about 55-65%.
struct Csbm {
  Tensor features;        // (n, F)
  Tensor adjacency;       // (n, n) Bool, symmetric, no self-loops
  Tensor labels;          // (n) Int64
  Tensor train_index, test_index;
  std::vector<int64_t> label_list;
};

Csbm make_csbm(int64_t per_class, int64_t classes, int64_t features, double sigma, heed::Generator& gen) {
  const int64_t n = per_class * classes;
  Csbm g;
  for (int64_t i = 0; i < n; ++i) g.label_list.push_back(i % classes);
  std::vector<double> means(classes * features);
  for (auto& m : means) m = gen.normal();
  std::vector<double> x(n * features);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t q = 0; q < features; ++q) x[i * features + q] = means[g.label_list[i] * features + q] + sigma * gen.normal();
  std::vector<bool> adj(n * n, false);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = i + 1; j < n; ++j)
      if (gen.uniform() < (g.label_list[i] == g.label_list[j] ? 0.05 : 0.01)) adj[i * n + j] = adj[j * n + i] = true;
  std::vector<int64_t> train, test, seen(classes, 0);
  for (int64_t i = 0; i < n; ++i) (seen[g.label_list[i]]++ < 20 ? train : test).push_back(i);
  g.features = heed::tensor(x, {n, features}, DType::Float32);
  g.adjacency = heed::bool_tensor(adj, {n, n});
  g.labels = heed::index_tensor(g.label_list, {n});
  g.train_index = heed::index_tensor(train, {static_cast<int64_t>(train.size())});
  g.test_index = heed::index_tensor(test, {static_cast<int64_t>(test.size())});
  return g;
}

double accuracy_on(const Tensor& logits, const Csbm& g, const Tensor& index) {
  const auto pred = heed::argmax(heed::index_select(logits, 0, index), 1).to_vector<int64_t>();
  const auto idx = index.to_vector<int64_t>();
  int64_t right = 0;
  for (std::size_t t = 0; t < idx.size(); ++t) right += pred[t] == g.label_list[idx[t]];
  return static_cast<double>(right) / static_cast<double>(idx.size());
}

struct Mlp : nn::Module {
  Mlp(int64_t f, int64_t hidden, int64_t classes) : Module("Mlp") {
    fc1 = register_module("fc1", std::make_shared<nn::Linear>(f, hidden));
    fc2 = register_module("fc2", std::make_shared<nn::Linear>(hidden, classes));
  }
  Tensor forward(const Tensor& x) override {
    return fc2->forward(heed::dropout(heed::relu(fc1->forward(heed::dropout(x, 0.5, is_training()))), 0.5, is_training()));
  }
  std::shared_ptr<nn::Linear> fc1, fc2;
};

// The paper's transductive model, smaller to run in seconds: 4 heads x 8 (ELU, concat) instead of 8 x 8,
// then one averaged output head; dropout 0.3 on every layer's input and on alpha (the paper's 0.6 is for
// Cora's 1433 sparse features; on 16 dense features it slowed learning so much that 100 epochs ended near
// chance), Adam lr 0.02 (paper 0.005) for 120 full-batch epochs, weight decay 5e-4.
// GATv2 uses 2 heads x 8 in its first layer and 60 epochs at lr 0.04: its dense (K, n, n, F') pre-activation
// made the GAT setup (4 heads, 120 epochs) 4x slower than GAT (14 s against 3.5 s on a loaded 2-core machine).
// Measured with this seed: 4 heads / 120 epochs gave accuracy 0.897 and same-class attention shares 0.663 / 0.647,
// 2 heads / 120 epochs 0.884 and 0.654 / 0.658, 2 heads / 60 epochs / lr 0.04 0.869 and 0.650 / 0.657;
// 1 head / 120 epochs learned too little (0.70, shares 0.637 / 0.635).
constexpr int64_t kHeads = 4;
constexpr int64_t kHeadsV2 = 2;
constexpr double kDropout = 0.3;

template <class Conv>  // nn::GATConv or nn::GATv2Conv
struct Gat : nn::Module {
  Gat(int64_t f, int64_t classes, int64_t heads, int64_t width) : Module("Gat") {
    conv1 = register_module("conv1", std::make_shared<Conv>(
                                         nn::GATConvOptions(f, width).heads(heads).dropout(kDropout).input_dropout(kDropout)));
    conv2 = register_module("conv2", std::make_shared<Conv>(
                                         nn::GATConvOptions(width * heads, classes).concat(false).dropout(kDropout).input_dropout(kDropout)));
  }
  Tensor forward(const Tensor& x) override { return run(x).output; }
  nn::GATConvOutput run(const Tensor& x) {
    auto first = conv1->forward(x, adjacency);
    last_hidden_attention = first.attention;
    return conv2->forward(heed::elu(first.output), adjacency);
  }
  std::shared_ptr<Conv> conv1, conv2;
  Tensor adjacency, last_hidden_attention;
};

template <class Model>
void train_full_batch(Model& model, const Csbm& g, int64_t epochs, double lr) {
  heed::optim::Adam opt(model.parameters(), heed::optim::AdamOptions(lr).weight_decay(5e-4));
  model.train();
  for (int64_t e = 0; e < epochs; ++e) {
    opt.zero_grad();
    Tensor logits = heed::index_select(model.forward(g.features), 0, g.train_index);
    heed::cross_entropy(logits, heed::index_select(g.labels, 0, g.train_index)).backward();
    opt.step();
  }
  model.eval();
}

// Mean over attending nodes (with at least one neighbour) of the attention share on same-class neighbours,
// self-loops left out, against the mean same-class share of their neighbours (what uniform attention gives).
std::pair<double, double> same_class_attention(const Tensor& alpha_heads, const Csbm& g) {
  const int64_t heads = alpha_heads.size(0), n = alpha_heads.size(1);
  const auto alpha = alpha_heads.to_vector<double>();
  const auto adj = g.adjacency.to_vector<int64_t>();
  double attention_share = 0, edge_share = 0;
  int64_t count = 0;
  for (int64_t i = 0; i < n; ++i) {
    int64_t degree = 0, same = 0;
    for (int64_t j = 0; j < n; ++j)
      if (adj[i * n + j]) {
        ++degree;
        same += g.label_list[i] == g.label_list[j];
      }
    if (degree == 0) continue;
    for (int64_t h = 0; h < heads; ++h) {
      double on_same = 0, on_neighbours = 0;
      for (int64_t j = 0; j < n; ++j)
        if (adj[i * n + j]) {
          on_neighbours += alpha[(h * n + i) * n + j];
          if (g.label_list[i] == g.label_list[j]) on_same += alpha[(h * n + i) * n + j];
        }
      attention_share += on_same / on_neighbours;
      edge_share += static_cast<double>(same) / static_cast<double>(degree);
      ++count;
    }
  }
  return {attention_share / count, edge_share / count};
}

struct TaskIResult {
  double accuracy, hidden_share, output_share, edge_share;
};

template <class Conv>
TaskIResult run_task_i(const Csbm& g, int64_t heads, int64_t width, int64_t epochs, double lr) {
  Gat<Conv> gat(g.features.size(1), 4, heads, width);
  gat.adjacency = g.adjacency;
  train_full_batch(gat, g, epochs, lr);
  heed::NoGradGuard no_grad;
  auto out = gat.run(g.features);
  const auto [hidden_share, edge_share] = same_class_attention(gat.last_hidden_attention, g);
  return {accuracy_on(out.output, g, g.test_index), hidden_share, same_class_attention(out.attention, g).first,
          edge_share};
}

}  // namespace

// The spec's pass has two parts: test accuracy >= MLP + 20 points, and a mean attention share on same-class
// neighbours above their share of the edges (the attention learned to re-weight). GAT meets the first but not
// the second: its share equals the edge share to within about 0.01 in both layers (printed, not asserted).
// GAT's attention is "static" (Brody et al. 2022): LeakyReLU is monotonic, so every node ranks its neighbours
// j by a_src . z_j alone, the same order for every attending node i; in a symmetric 4-class graph it cannot
// prefer "my class" over "your class", only sharpen or flatten per node, and its accuracy gain comes from
// neighbourhood averaging. GATv2's dynamic attention does re-weight (measured 0.650 / 0.657 against 0.631),
// so both criteria are asserted on GATv2, with a 0.01 margin on the share so noise alone cannot pass it.
TEST_CASE("[learning] GAT: Task I (contextual SBM), GAT and GATv2 beat the MLP by 20 points, GATv2 re-weights") {
  heed::manual_seed(41);
  heed::Generator gen(42);
  const Csbm g = make_csbm(100, 4, 16, 2.2, gen);

  Mlp mlp(16, 32, 4);
  train_full_batch(mlp, g, 200, 0.01);
  double mlp_acc;
  {
    heed::NoGradGuard no_grad;
    mlp_acc = accuracy_on(mlp.forward(g.features), g, g.test_index);
  }
  const TaskIResult v1 = run_task_i<nn::GATConv>(g, kHeads, 8, 120, 0.02);
  const TaskIResult v2 = run_task_i<nn::GATv2Conv>(g, kHeadsV2, 8, 60, 0.04);
  MESSAGE("Task I: MLP test accuracy " << mlp_acc << "; same-class share of edges " << v1.edge_share);
  MESSAGE("  GAT   accuracy " << v1.accuracy << ", same-class share of attention: layer 1 (" << kHeads << " heads) "
                              << v1.hidden_share << ", layer 2 " << v1.output_share);
  MESSAGE("  GATv2 accuracy " << v2.accuracy << ", same-class share of attention: layer 1 (" << kHeadsV2 << " heads) "
                              << v2.hidden_share << ", layer 2 " << v2.output_share);
  CHECK(mlp_acc >= 0.5);
  CHECK(mlp_acc <= 0.7);
  CHECK(v1.accuracy >= mlp_acc + 0.2);
  CHECK(v2.accuracy >= mlp_acc + 0.2);
  CHECK(v2.hidden_share > v2.edge_share + 0.01);
  CHECK(v2.output_share > v2.edge_share + 0.01);
}
