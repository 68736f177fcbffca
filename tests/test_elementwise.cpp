// tests/test_elementwise.cpp — every op in framework/ops/elementwise.cpp: forward values (Float32 and
// Float64) against hand-computed numbers or an independent reference loop, gradients with heed::gradcheck
// in Float64 (broadcasting in every direction, non-contiguous inputs), the comparison and logic ops,
// sum_to, error messages, and a check that gradcheck itself catches a wrong backward.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include <heed/heed.hpp>

#include "testing.hpp"

namespace {

using heed::DType;
using heed::Shape;
using heed::Tensor;

Tensor t64(const std::vector<double>& values, const Shape& shape) { return heed::tensor(values, shape, DType::Float64); }

// |actual - expected| <= tol * (1 + |expected|) element by element, in row-major order.
void check_values(const Tensor& actual, const std::vector<double>& expected, double tol) {
  REQUIRE(actual.numel() == static_cast<int64_t>(expected.size()));
  const std::vector<double> v = actual.to_vector<double>();
  for (std::size_t i = 0; i < v.size(); ++i)
    CHECK_MESSAGE(std::fabs(v[i] - expected[i]) <= tol * (1 + std::fabs(expected[i])),
                  "element " << i << ": got " << v[i] << ", expected " << expected[i]);
}

double tolerance(DType d) { return d == DType::Float32 ? 2e-6 : 1e-13; }

std::vector<bool> bools(const Tensor& t) {
  REQUIRE(t.dtype() == DType::Bool);
  std::vector<bool> out;
  for (uint8_t b : t.to_vector<uint8_t>()) out.push_back(b != 0);
  return out;
}

// Broadcasting done independently of the library: NumPy rules on row-major values.
Shape broadcast(const Shape& a, const Shape& b) {
  const std::size_t n = std::max(a.size(), b.size());
  Shape out(n);
  for (std::size_t i = 0; i < n; ++i) {
    const int64_t da = i + a.size() < n ? 1 : a[i + a.size() - n];
    const int64_t db = i + b.size() < n ? 1 : b[i + b.size() - n];
    out[i] = da == 1 ? db : da;
  }
  return out;
}

// Row-major position in `shape` (right-aligned inside `full`, size-1 axes broadcast) of full index idx.
int64_t source_index(const Shape& full, const Shape& shape, const std::vector<int64_t>& idx) {
  int64_t flat = 0;
  const std::size_t lead = full.size() - shape.size();
  for (std::size_t d = 0; d < shape.size(); ++d) flat = flat * shape[d] + (shape[d] == 1 ? 0 : idx[lead + d]);
  return flat;
}

std::vector<double> reference_binary(const Tensor& a, const Tensor& b, const std::function<double(double, double)>& f) {
  const Shape full = broadcast(a.shape(), b.shape());
  const std::vector<double> va = a.to_vector<double>(), vb = b.to_vector<double>();
  std::vector<double> out(static_cast<std::size_t>(heed::shape_numel(full)));
  std::vector<int64_t> idx(full.size(), 0);
  for (std::size_t i = 0; i < out.size(); ++i) {
    int64_t rest = static_cast<int64_t>(i);
    for (int64_t d = static_cast<int64_t>(full.size()) - 1; d >= 0; --d) {
      idx[d] = rest % full[d];
      rest /= full[d];
    }
    out[i] = f(va[source_index(full, a.shape(), idx)], vb[source_index(full, b.shape(), idx)]);
  }
  return out;
}

// Moves every value closer than `margin` to one of `kinks` out to distance `margin`, so that a central
// difference with eps = 1e-6 never straddles a point where the op is not differentiable.
Tensor away_from(const Tensor& x, const std::vector<double>& kinks, double margin) {
  std::vector<double> v = x.to_vector<double>();
  for (double& e : v)
    for (double k : kinks)
      if (std::fabs(e - k) < margin) e = e >= k ? k + margin : k - margin;
  return heed::tensor(v, x.shape(), x.dtype());
}

enum class Domain { Any, Positive, NonZero };

// A Float64 input of `shape` drawn from the default generator, kept inside `domain`.
Tensor input(const Shape& shape, Domain domain = Domain::Any) {
  switch (domain) {
    case Domain::Positive: return heed::uniform(shape, 0.5, 2.0, DType::Float64);
    case Domain::NonZero: return away_from(heed::randn(shape, DType::Float64), {0.0}, 0.2);
    default: return heed::randn(shape, DType::Float64);
  }
}

// A leaf with permuted strides: the (2, 3, 4) view of a dense (4, 3, 2) buffer, i.e. its permute(2, 1, 0).
Tensor permuted_leaf(Domain domain = Domain::Any) {
  Tensor base = input({4, 3, 2}, domain);
  Tensor view = heed::make_view(base, {2, 3, 4}, {1, 2, 6}, 0);
  REQUIRE_FALSE(view.is_contiguous());
  return view;
}

// A leaf that is a window into a wider buffer: the (2, 3, 4) slice [:, :, 1:5] of a (2, 3, 6) tensor.
Tensor sliced_leaf(Domain domain = Domain::Any) {
  Tensor base = input({2, 3, 6}, domain);
  Tensor view = heed::make_view(base, {2, 3, 4}, {18, 6, 1}, 1);
  REQUIRE_FALSE(view.is_contiguous());
  return view;
}

void expect_gradients_match(const heed::GradcheckFn& f, std::vector<Tensor> inputs) {
  for (Tensor& x : inputs) x.requires_grad_();
  const heed::GradcheckResult r = heed::gradcheck(f, inputs);
  CHECK_MESSAGE(r.ok, r.report);
  CHECK(r.elements_checked > 0);
}

using heed::testing::error_of;

using heed::testing::contains;

using BinaryFn = Tensor (*)(const Tensor&, const Tensor&);
struct BinaryOp {
  const char* name;
  BinaryFn fn;
  std::function<double(double, double)> reference;
  Domain a_domain, b_domain;
};

const std::vector<BinaryOp>& binary_ops() {
  static const std::vector<BinaryOp> ops = {
      {"add", [](const Tensor& a, const Tensor& b) { return heed::add(a, b); },
       [](double u, double v) { return u + v; }, Domain::Any, Domain::Any},
      {"sub", [](const Tensor& a, const Tensor& b) { return heed::sub(a, b); },
       [](double u, double v) { return u - v; }, Domain::Any, Domain::Any},
      {"mul", [](const Tensor& a, const Tensor& b) { return heed::mul(a, b); },
       [](double u, double v) { return u * v; }, Domain::Any, Domain::Any},
      {"div", [](const Tensor& a, const Tensor& b) { return heed::div(a, b); },
       [](double u, double v) { return u / v; }, Domain::Any, Domain::NonZero},
      {"pow", [](const Tensor& a, const Tensor& b) { return heed::pow(a, b); },
       [](double u, double v) { return std::pow(u, v); }, Domain::Positive, Domain::Any},
      {"maximum", [](const Tensor& a, const Tensor& b) { return heed::maximum(a, b); },
       [](double u, double v) { return u >= v ? u : v; }, Domain::Any, Domain::Any},
      {"minimum", [](const Tensor& a, const Tensor& b) { return heed::minimum(a, b); },
       [](double u, double v) { return u <= v ? u : v; }, Domain::Any, Domain::Any},
  };
  return ops;
}

// (a, b) shape pairs: equal, b broadcast along trailing / middle / all / leading axes, b a 0-D scalar,
// the reverse (a broadcast), and both broadcast at once.
const std::vector<std::pair<Shape, Shape>>& broadcast_pairs() {
  static const std::vector<std::pair<Shape, Shape>> pairs = {
      {{2, 3, 4}, {2, 3, 4}}, {{2, 3, 4}, {4}}, {{2, 3, 4}, {3, 1}},    {{2, 3, 4}, {1}},  {{2, 3, 4}, {2, 1, 4}},
      {{2, 3, 4}, {}},        {{3, 1}, {2, 3, 4}}, {{}, {2, 3, 4}}, {{2, 1, 4}, {3, 1}}, {{1, 4}, {3, 1}},
  };
  return pairs;
}

struct UnaryOp {
  const char* name;
  std::function<Tensor(const Tensor&)> fn;
  Domain domain;
  std::vector<double> kinks;  // points to keep gradcheck inputs away from
};

const std::vector<UnaryOp>& unary_ops() {
  static const std::vector<UnaryOp> ops = {
      {"neg", [](const Tensor& x) { return heed::neg(x); }, Domain::Any, {}},
      {"exp", [](const Tensor& x) { return heed::exp(x); }, Domain::Any, {}},
      {"log", [](const Tensor& x) { return heed::log(x); }, Domain::Positive, {}},
      {"sqrt", [](const Tensor& x) { return heed::sqrt(x); }, Domain::Positive, {}},
      {"abs", [](const Tensor& x) { return heed::abs(x); }, Domain::Any, {0.0}},
      {"square", [](const Tensor& x) { return heed::square(x); }, Domain::Any, {}},
      {"sin", [](const Tensor& x) { return heed::sin(x); }, Domain::Any, {}},
      {"cos", [](const Tensor& x) { return heed::cos(x); }, Domain::Any, {}},
      {"tanh", [](const Tensor& x) { return heed::tanh(x); }, Domain::Any, {}},
      {"sigmoid", [](const Tensor& x) { return heed::sigmoid(x); }, Domain::Any, {}},
      {"relu", [](const Tensor& x) { return heed::relu(x); }, Domain::Any, {0.0}},
      {"leaky_relu", [](const Tensor& x) { return heed::leaky_relu(x); }, Domain::Any, {0.0}},
      {"leaky_relu(0.2)", [](const Tensor& x) { return heed::leaky_relu(x, 0.2); }, Domain::Any, {0.0}},
      {"gelu", [](const Tensor& x) { return heed::gelu(x); }, Domain::Any, {}},
      {"gelu(approximate)", [](const Tensor& x) { return heed::gelu(x, true); }, Domain::Any, {}},
      // beta x > threshold = 20 switches to the identity (a jump of 2e-9 at x = 20).
      {"softplus", [](const Tensor& x) { return heed::softplus(x); }, Domain::Any, {20.0}},
      // beta x > threshold switches to the identity at x = 0.5 (a jump, as in PyTorch).
      {"softplus(beta 2, threshold 1)", [](const Tensor& x) { return heed::softplus(x, 2.0, 1.0); }, Domain::Any, {0.5}},
      {"elu", [](const Tensor& x) { return heed::elu(x); }, Domain::Any, {0.0}},
      {"elu(0.5)", [](const Tensor& x) { return heed::elu(x, 0.5); }, Domain::Any, {0.0}},
      {"clamp", [](const Tensor& x) { return heed::clamp(x, -0.5, 0.7); }, Domain::Any, {-0.5, 0.7}},
      {"add scalar", [](const Tensor& x) { return heed::add(x, 2.5); }, Domain::Any, {}},
      {"sub scalar", [](const Tensor& x) { return heed::sub(x, 1.5); }, Domain::Any, {}},
      {"rsub", [](const Tensor& x) { return heed::rsub(3.0, x); }, Domain::Any, {}},
      {"mul scalar", [](const Tensor& x) { return heed::mul(x, -1.7); }, Domain::Any, {}},
      {"div scalar", [](const Tensor& x) { return heed::div(x, 0.8); }, Domain::Any, {}},
      {"rdiv", [](const Tensor& x) { return heed::rdiv(2.0, x); }, Domain::NonZero, {}},
      {"pow 2", [](const Tensor& x) { return heed::pow(x, 2.0); }, Domain::Any, {}},
      {"pow 3", [](const Tensor& x) { return heed::pow(x, 3.0); }, Domain::Any, {}},
      {"pow 0.5", [](const Tensor& x) { return heed::pow(x, 0.5); }, Domain::Positive, {}},
      {"pow -1.5", [](const Tensor& x) { return heed::pow(x, -1.5); }, Domain::Positive, {}},
      {"operators", [](const Tensor& x) { return (2.0 - x) * 3.0 + 1.0 / (x * x + 1.0) - x / 4.0 + (-x) + 0.5 * x; },
       Domain::Any, {}},
  };
  return ops;
}

}  // namespace

// ---- forward: binary ------------------------------------------------------------------------------

TEST_CASE("elementwise: binary forward values, Float32 and Float64, with a row broadcast") {
  for (DType dtype : {DType::Float32, DType::Float64}) {
    INFO(heed::dtype_name(dtype));
    const Tensor a = heed::tensor({1, 2, 3, 4, 5, 6}, {2, 3}, dtype);
    const Tensor b = heed::tensor({0.5, 2.5, 7}, {3}, dtype);
    const double tol = tolerance(dtype);
    check_values(heed::add(a, b), {1.5, 4.5, 10, 4.5, 7.5, 13}, tol);
    check_values(heed::sub(a, b), {0.5, -0.5, -4, 3.5, 2.5, -1}, tol);
    check_values(heed::mul(a, b), {0.5, 5, 21, 2, 12.5, 42}, tol);
    check_values(heed::div(a, b), {2, 0.8, 3.0 / 7, 8, 2, 6.0 / 7}, tol);
    check_values(heed::pow(a, b), {1, 5.656854249492381, 2187, 2, 55.90169943749474, 279936}, tol);
    check_values(heed::maximum(a, b), {1, 2.5, 7, 4, 5, 7}, tol);
    check_values(heed::minimum(a, b), {0.5, 2, 3, 0.5, 2.5, 6}, tol);
    check_values(a + b, {1.5, 4.5, 10, 4.5, 7.5, 13}, tol);
    check_values(a - b, {0.5, -0.5, -4, 3.5, 2.5, -1}, tol);
    check_values(a * b, {0.5, 5, 21, 2, 12.5, 42}, tol);
    check_values(a / b, {2, 0.8, 3.0 / 7, 8, 2, 6.0 / 7}, tol);
    CHECK(heed::add(a, b).dtype() == dtype);
    CHECK(heed::add(a, b).shape() == Shape{2, 3});
  }
}

TEST_CASE("elementwise: binary forward matches a reference loop for every broadcast pattern") {
  heed::manual_seed(100);
  for (const BinaryOp& op : binary_ops()) {
    for (const auto& shapes : broadcast_pairs()) {
      const Shape& sa = shapes.first;
      const Shape& sb = shapes.second;
      for (DType dtype : {DType::Float32, DType::Float64}) {
        INFO(std::string(op.name), " ", heed::shape_str(sa), " with ", heed::shape_str(sb), " ", heed::dtype_name(dtype));
        const Tensor a = input(sa, op.a_domain).to(dtype), b = input(sb, op.b_domain).to(dtype);
        const Tensor y = op.fn(a, b);
        CHECK(y.shape() == broadcast(sa, sb));
        check_values(y, reference_binary(a, b, op.reference), 4 * tolerance(dtype));
      }
    }
  }
}

TEST_CASE("elementwise: binary forward reads non-contiguous inputs through their strides") {
  heed::manual_seed(101);
  for (const BinaryOp& op : binary_ops()) {
    INFO(std::string(op.name));
    const Tensor a = permuted_leaf(op.a_domain), b = sliced_leaf(op.b_domain);
    check_values(op.fn(a, b), reference_binary(a, b, op.reference), 1e-13);
    check_values(op.fn(a, b), op.fn(a.contiguous(), b.contiguous()).to_vector<double>(), 0.0);
    // A non-contiguous operand that broadcasts: a (4, 3) transposed view against a (3,) row... and a
    // size-1 operand with an offset.
    const Tensor row = input({3}, op.b_domain);
    const Tensor base = input({3, 4}, op.a_domain);
    const Tensor at = heed::make_view(base, {4, 3}, {1, 4}, 0);
    check_values(op.fn(at, row), reference_binary(at, row, op.reference), 1e-13);
    const Tensor one = heed::make_view(row, {1}, {1}, 2);
    check_values(op.fn(at, one), reference_binary(at, one, op.reference), 1e-13);
  }
}

// ---- forward: scalar forms and unary --------------------------------------------------------------

TEST_CASE("elementwise: scalar forms and operators forward") {
  for (DType dtype : {DType::Float32, DType::Float64}) {
    INFO(heed::dtype_name(dtype));
    const Tensor a = heed::tensor({1, -2, 4}, {3}, dtype);
    const double tol = tolerance(dtype);
    check_values(heed::add(a, 2.5), {3.5, 0.5, 6.5}, tol);
    check_values(heed::sub(a, 1.5), {-0.5, -3.5, 2.5}, tol);
    check_values(heed::rsub(3.0, a), {2, 5, -1}, tol);
    check_values(heed::mul(a, -1.5), {-1.5, 3, -6}, tol);
    check_values(heed::div(a, 4.0), {0.25, -0.5, 1}, tol);
    check_values(heed::rdiv(2.0, a), {2, -1, 0.5}, tol);
    check_values(heed::pow(a, 2.0), {1, 4, 16}, tol);
    check_values(heed::pow(a, 3.0), {1, -8, 64}, tol);
    check_values(a + 2.5, {3.5, 0.5, 6.5}, tol);
    check_values(2.5 + a, {3.5, 0.5, 6.5}, tol);
    check_values(a - 1.5, {-0.5, -3.5, 2.5}, tol);
    check_values(3.0 - a, {2, 5, -1}, tol);
    check_values(a * -1.5, {-1.5, 3, -6}, tol);
    check_values(-1.5 * a, {-1.5, 3, -6}, tol);
    check_values(a / 4.0, {0.25, -0.5, 1}, tol);
    check_values(2.0 / a, {2, -1, 0.5}, tol);
    check_values(-a, {-1, 2, -4}, tol);
    const Tensor p = heed::tensor({0.25, 1.0, 2.5, 4.0}, {4}, dtype);
    check_values(heed::pow(p, 1.5), {0.125, 1.0, 3.952847075210474, 8.0}, tol);
    check_values(heed::pow(p, -0.5), {2.0, 1.0, 0.6324555320336759, 0.5}, tol);
    CHECK(heed::mul(a, 2.0).dtype() == dtype);
  }
}

TEST_CASE("elementwise: unary forward values, Float32 and Float64") {
  for (DType dtype : {DType::Float32, DType::Float64}) {
    INFO(heed::dtype_name(dtype));
    const Tensor x = heed::tensor({-1.5, -0.25, 0.0, 0.75, 2.0}, {5}, dtype);
    const Tensor p = heed::tensor({0.25, 1.0, 2.5, 4.0}, {2, 2}, dtype);
    const double tol = tolerance(dtype);
    check_values(heed::neg(x), {1.5, 0.25, 0.0, -0.75, -2.0}, tol);
    check_values(heed::abs(x), {1.5, 0.25, 0.0, 0.75, 2.0}, tol);
    check_values(heed::square(x), {2.25, 0.0625, 0.0, 0.5625, 4.0}, tol);
    check_values(heed::relu(x), {0.0, 0.0, 0.0, 0.75, 2.0}, tol);
    CHECK(heed::relu(heed::tensor({-INFINITY, INFINITY}, {2}, dtype)).to_vector<double>() ==
          std::vector<double>{0.0, INFINITY});  // relu(-inf) is 0, not NaN
    check_values(heed::leaky_relu(x), {-0.015, -0.0025, 0.0, 0.75, 2.0}, tol);
    check_values(heed::leaky_relu(x, 0.2), {-0.3, -0.05, 0.0, 0.75, 2.0}, tol);
    check_values(heed::clamp(x, -0.5, 1.0), {-0.5, -0.25, 0.0, 0.75, 1.0}, tol);
    check_values(heed::exp(x), {0.22313016014842982, 0.7788007830714049, 1.0, 2.117000016612675, 7.38905609893065}, tol);
    check_values(heed::sin(x), {-0.9974949866040544, -0.24740395925452294, 0.0, 0.6816387600233341, 0.9092974268256817}, tol);
    check_values(heed::cos(x), {0.0707372016677029, 0.9689124217106447, 1.0, 0.7316888688738209, -0.4161468365471424}, tol);
    check_values(heed::tanh(x), {-0.9051482536448664, -0.24491866240370913, 0.0, 0.6351489523872873, 0.9640275800758169}, tol);
    check_values(heed::sigmoid(x), {0.18242552380635635, 0.43782349911420193, 0.5, 0.679178699175393, 0.8807970779778823}, tol);
    check_values(heed::gelu(x), {-0.10021080190328713, -0.10032341857926907, 0.0, 0.5800294857173488, 1.9544997361036416}, tol);
    check_values(heed::gelu(x, true), {-0.10042842301976707, -0.100324649298315, 0.0, 0.5799605551656203, 1.954597694087775}, tol);
    check_values(heed::softplus(x), {0.2014132779827524, 0.5759394198788436, 0.6931471805599453, 1.1368710061148999, 2.1269280110429727}, tol);
    check_values(heed::softplus(x, 2.0, 1.0), {0.02429367578687103, 0.23703849209005334, 0.34657359027997264, 0.75, 2.0}, tol);
    check_values(heed::elu(x), {-0.7768698398515702, -0.22119921692859512, 0.0, 0.75, 2.0}, tol);
    check_values(heed::elu(x, 0.5), {-0.3884349199257851, -0.11059960846429756, 0.0, 0.75, 2.0}, tol);
    check_values(heed::log(p), {-1.3862943611198906, 0.0, 0.9162907318741551, 1.3862943611198906}, tol);
    check_values(heed::sqrt(p), {0.5, 1.0, 1.5811388300841898, 2.0}, tol);
    CHECK(heed::log(p).shape() == Shape{2, 2});
    CHECK(heed::exp(x).dtype() == dtype);
  }
}

TEST_CASE("elementwise: unary ops on non-contiguous and 0-D inputs") {
  heed::manual_seed(102);
  for (const UnaryOp& op : unary_ops()) {
    INFO(std::string(op.name));
    const Tensor v = permuted_leaf(op.domain);
    const Tensor y = op.fn(v);
    CHECK(y.shape() == Shape{2, 3, 4});
    check_values(y, op.fn(v.contiguous()).to_vector<double>(), 0.0);
    const Tensor s = input({}, op.domain);
    const Tensor ys = op.fn(s);
    CHECK(ys.dim() == 0);
    check_values(ys, op.fn(s.reshape({1})).to_vector<double>(), 0.0);
  }
  // Large |x|: sigmoid and softplus saturate without overflow to NaN.
  const Tensor big = heed::tensor({-800.0, 800.0}, {2}, DType::Float64);
  check_values(heed::sigmoid(big), {0.0, 1.0}, 0.0);
  check_values(heed::softplus(big), {0.0, 800.0}, 0.0);
}

// ---- gradients ------------------------------------------------------------------------------------

TEST_CASE("elementwise: binary gradients for every broadcast pattern (gradcheck)") {
  heed::manual_seed(200);
  for (const BinaryOp& op : binary_ops()) {
    for (const auto& shapes : broadcast_pairs()) {
      const Shape& sa = shapes.first;
      const Shape& sb = shapes.second;
      INFO(std::string(op.name), " ", heed::shape_str(sa), " with ", heed::shape_str(sb));
      const BinaryFn fn = op.fn;
      expect_gradients_match([fn](const std::vector<Tensor>& in) { return fn(in[0], in[1]); },
                             {input(sa, op.a_domain), input(sb, op.b_domain)});
    }
  }
}

TEST_CASE("elementwise: binary gradients with non-contiguous inputs (gradcheck)") {
  heed::manual_seed(201);
  for (const BinaryOp& op : binary_ops()) {
    INFO(std::string(op.name));
    const BinaryFn fn = op.fn;
    auto f = [fn](const std::vector<Tensor>& in) { return fn(in[0], in[1]); };
    // Leaves that are strided views.
    expect_gradients_match(f, {permuted_leaf(op.a_domain), sliced_leaf(op.b_domain)});
    expect_gradients_match(f, {permuted_leaf(op.a_domain), input({3, 1}, op.b_domain)});
    // A transpose taken inside the function: the op sees a view, the gradient flows back through it.
    expect_gradients_match(
        [fn](const std::vector<Tensor>& in) { return fn(in[0].transpose(0, 1), in[1]); },
        {input({3, 2, 4}, op.a_domain), input({2, 1, 4}, op.b_domain)});
    expect_gradients_match(
        [fn](const std::vector<Tensor>& in) { return fn(in[0], in[1].transpose(-1, -2)); },
        {input({2, 4, 3}, op.a_domain), input({3, 4}, op.b_domain)});
  }
}

TEST_CASE("elementwise: gradients reach only the inputs that require grad, and add up for a reused input") {
  heed::manual_seed(202);
  for (const BinaryOp& op : binary_ops()) {
    INFO(std::string(op.name));
    const BinaryFn fn = op.fn;
    // Only the first input requires grad; the second is a constant of a broadcast shape.
    Tensor a = input({2, 3}, op.a_domain).requires_grad_();
    const Tensor b = input({3}, op.b_domain);
    const heed::GradcheckResult r = heed::gradcheck([fn, b](const std::vector<Tensor>& in) { return fn(in[0], b); }, {a});
    CHECK_MESSAGE(r.ok, r.report);
    heed::clear_tape();
    Tensor y = fn(a, b);
    y.backward(heed::ones_like(y));
    CHECK(a.grad().defined());
    CHECK_FALSE(b.grad().defined());
    a.zero_grad();
  }
  // x op x: both branches accumulate into the same gradient.
  expect_gradients_match([](const std::vector<Tensor>& in) { return heed::mul(in[0], in[0]); }, {input({3, 4})});
  expect_gradients_match([](const std::vector<Tensor>& in) { return heed::add(in[0], in[0]); }, {input({3, 4})});
  expect_gradients_match([](const std::vector<Tensor>& in) { return heed::div(in[0], in[0] * in[0] + 1.0); },
                         {input({3, 4})});
  expect_gradients_match([](const std::vector<Tensor>& in) { return heed::pow(in[0], in[0]); },
                         {input({3, 4}, Domain::Positive)});
}

TEST_CASE("elementwise: unary and scalar-form gradients (gradcheck, dense and strided)") {
  heed::manual_seed(203);
  for (const UnaryOp& op : unary_ops()) {
    INFO(std::string(op.name));
    const auto fn = op.fn;
    auto f = [fn](const std::vector<Tensor>& in) { return fn(in[0]); };
    expect_gradients_match(f, {away_from(input({2, 3, 4}, op.domain), op.kinks, 0.1)});
    // A strided leaf: nudge its storage elements away from the kinks in place.
    Tensor v = permuted_leaf(op.domain);
    v.copy_(away_from(v, op.kinks, 0.1));
    expect_gradients_match(f, {v});
    expect_gradients_match(f, {away_from(input({}, op.domain), op.kinks, 0.1)});
  }
  // The saturating activations over a wide range: both tails, and softplus's linear region
  // (beta x > threshold). Integer points, nudged off the kink at 0.
  const Tensor wide = away_from(heed::linspace(-30.0, 30.0, 61, DType::Float64), {0.0}, 0.1);
  const std::vector<std::string> saturating = {"tanh", "sigmoid", "relu", "leaky_relu(0.2)", "gelu",
                                               "gelu(approximate)", "softplus", "softplus(beta 2, threshold 1)",
                                               "elu", "clamp"};
  for (const UnaryOp& op : unary_ops()) {
    if (std::find(saturating.begin(), saturating.end(), op.name) == saturating.end()) continue;
    INFO(std::string(op.name), " on [-30, 30]");
    const auto fn = op.fn;
    Tensor x = away_from(wide, op.kinks, 0.1).requires_grad_();
    const heed::GradcheckResult r = heed::gradcheck([fn](const std::vector<Tensor>& in) { return fn(in[0]); }, {x});
    CHECK_MESSAGE(r.ok, r.report);
  }
}

TEST_CASE("elementwise: gradient values at the kinks follow PyTorch") {
  auto grad_of = [](const std::function<Tensor(const Tensor&)>& f, const std::vector<double>& x) {
    heed::clear_tape();
    Tensor in = t64(x, {static_cast<int64_t>(x.size())}).requires_grad_();
    Tensor y = f(in);
    y.backward(heed::ones_like(y));
    return in.grad();
  };
  // relu'(0) = 0, abs'(0) = 0, leaky_relu'(0) = slope, elu'(0) = alpha.
  check_values(grad_of([](const Tensor& x) { return heed::relu(x); }, {-1, 0, 2}), {0, 0, 1}, 0.0);
  check_values(grad_of([](const Tensor& x) { return heed::abs(x); }, {-1, 0, 2}), {-1, 0, 1}, 0.0);
  check_values(grad_of([](const Tensor& x) { return heed::leaky_relu(x, 0.1); }, {-1, 0, 2}), {0.1, 0.1, 1}, 1e-15);
  check_values(grad_of([](const Tensor& x) { return heed::elu(x, 0.5); }, {0}), {0.5}, 1e-15);
  // clamp passes the gradient on the closed interval [low, high].
  check_values(grad_of([](const Tensor& x) { return heed::clamp(x, -1.0, 1.0); }, {-2, -1, 0, 1, 2}), {0, 1, 1, 1, 0}, 0.0);
  // d/dx x^0 = 0 everywhere, x = 0 included.
  check_values(grad_of([](const Tensor& x) { return heed::pow(x, 0.0); }, {0.0, 2.0}), {0.0, 0.0}, 0.0);
  check_values(grad_of([](const Tensor& x) { return heed::pow(x, 1.0); }, {0.0, 2.0}), {1.0, 1.0}, 0.0);

  // maximum / minimum send the gradient to a on ties.
  heed::clear_tape();
  Tensor a = t64({1, 2, 3}, {3}).requires_grad_(), b = t64({3, 2, 1}, {3}).requires_grad_();
  Tensor y = heed::maximum(a, b);
  y.backward(heed::ones_like(y));
  check_values(a.grad(), {0, 1, 1}, 0.0);
  check_values(b.grad(), {1, 0, 0}, 0.0);
  a.zero_grad();
  b.zero_grad();
  y = heed::minimum(a, b);
  y.backward(heed::ones_like(y));
  check_values(a.grad(), {1, 1, 0}, 0.0);
  check_values(b.grad(), {0, 0, 1}, 0.0);
}

TEST_CASE("elementwise: pow(a, b) with b = 0 at a = 0 has a zero gradient for a, as PyTorch") {
  heed::clear_tape();
  Tensor a = t64({0.0, 0.0, 2.0}, {3}).requires_grad_();
  Tensor b = t64({0.0, 2.0, 0.0}, {3});
  Tensor y = heed::pow(a, b);
  check_values(y, {1.0, 0.0, 1.0}, 0.0);
  y.backward(heed::ones_like(y));
  check_values(a.grad(), {0.0, 0.0, 0.0}, 0.0);
}

TEST_CASE("elementwise: Float32 gradients agree with Float64 ones") {
  heed::manual_seed(204);
  const Tensor a64 = input({2, 3, 4}), b64 = input({3, 1}, Domain::NonZero);
  auto run = [&](DType dtype) {
    heed::clear_tape();
    Tensor a = a64.to(dtype).requires_grad_(), b = b64.to(dtype).requires_grad_();
    Tensor y = heed::tanh(heed::div(heed::mul(a, b) + heed::sigmoid(a), b)) * heed::gelu(a);
    y.backward(heed::ones_like(y));
    CHECK(a.grad().dtype() == dtype);
    return std::make_pair(a.grad(), b.grad());
  };
  const auto [ga32, gb32] = run(DType::Float32);
  const auto [ga64, gb64] = run(DType::Float64);
  check_values(ga32, ga64.to_vector<double>(), 1e-5);
  check_values(gb32, gb64.to_vector<double>(), 1e-5);
}

// ---- gradcheck catches wrong backwards ------------------------------------------------------------
namespace {
// y = x^3 with the recipe from heed/autograd.hpp; `factor` scales the backward (3 is correct).
Tensor cube(const Tensor& x, double factor) {
  Tensor xd = x.detach();
  Tensor y = xd * xd * xd;
  heed::record("cube", y, {x}, [x, factor](const Tensor& gy) { heed::accumulate_grad(x, gy * x * x * factor); });
  return y;
}

// y = x + bias (bias broadcast over rows) whose backward forgets to sum over the broadcast axis.
Tensor bias_add_unsummed(const Tensor& x, const Tensor& bias) {
  Tensor y = x.detach() + bias.detach();
  heed::record("bias_add_unsummed", y, {x, bias}, [x, bias](const Tensor& gy) {
    heed::accumulate_grad(x, gy);
    heed::accumulate_grad(bias, gy);
  });
  return y;
}
}  // namespace

TEST_CASE("elementwise: gradcheck fails for a custom op with a wrong backward and passes for the right one") {
  heed::manual_seed(300);
  Tensor x = input({3, 4}).requires_grad_();
  const heed::GradcheckResult good =
      heed::gradcheck([](const std::vector<Tensor>& in) { return cube(in[0], 3.0); }, {x});
  CHECK_MESSAGE(good.ok, good.report);
  CHECK(good.elements_checked == 12);
  CHECK(good.report.empty());

  const heed::GradcheckResult off =
      heed::gradcheck([](const std::vector<Tensor>& in) { return cube(in[0], 3.3); }, {x});
  CHECK_FALSE(off.ok);
  CHECK(off.max_rel_error == doctest::Approx(0.1).epsilon(1e-3));
  CHECK(contains(off.report, "analytic"));
  CHECK(contains(off.report, "[3, 4]"));

  // A backward that adds nothing is caught too.
  const heed::GradcheckResult missing = heed::gradcheck(
      [](const std::vector<Tensor>& in) {
        Tensor y = in[0].detach() * 2.0;
        heed::record("forgetful", y, {in[0]}, [](const Tensor&) {});
        return y;
      },
      {x});
  CHECK_FALSE(missing.ok);

  // A backward that returns a gradient of the broadcast shape throws, naming the op and both shapes.
  Tensor rows = input({2, 3}).requires_grad_(), bias = input({3}).requires_grad_();
  const std::string msg = error_of([&] {
    heed::gradcheck([](const std::vector<Tensor>& in) { return bias_add_unsummed(in[0], in[1]); }, {rows, bias});
  });
  CHECK(contains(msg, "bias_add_unsummed"));
  CHECK(contains(msg, "[2, 3]"));
  CHECK(contains(msg, "[3]"));
  heed::clear_tape();
}

// ---- comparison and logic -------------------------------------------------------------------------

TEST_CASE("elementwise: comparisons broadcast and return Bool") {
  for (DType dtype : {DType::Float32, DType::Float64, DType::Int64}) {
    INFO(heed::dtype_name(dtype));
    const Tensor a = heed::tensor({1, 2, 3}, {3}, dtype);
    const Tensor b = heed::tensor({3, 2}, {2, 1}, dtype);  // rows compare against 3 and 2
    CHECK(heed::eq(a, b).dtype() == DType::Bool);
    CHECK(heed::eq(a, b).shape() == Shape{2, 3});
    CHECK(bools(heed::eq(a, b)) == std::vector<bool>{false, false, true, false, true, false});
    CHECK(bools(heed::ne(a, b)) == std::vector<bool>{true, true, false, true, false, true});
    CHECK(bools(heed::lt(a, b)) == std::vector<bool>{true, true, false, true, false, false});
    CHECK(bools(heed::le(a, b)) == std::vector<bool>{true, true, true, true, true, false});
    CHECK(bools(heed::gt(a, b)) == std::vector<bool>{false, false, false, false, false, true});
    CHECK(bools(heed::ge(a, b)) == std::vector<bool>{false, false, true, false, true, true});
    CHECK(bools(heed::eq(a, 2.0)) == std::vector<bool>{false, true, false});
    CHECK(bools(heed::lt(a, 2.0)) == std::vector<bool>{true, false, false});
    CHECK(bools(heed::gt(a, 2.0)) == std::vector<bool>{false, false, true});
  }
  // A fractional scalar is not truncated to an integer tensor's dtype (PyTorch promotes).
  const Tensor ints = heed::index_tensor({1, 2, 3});
  CHECK(bools(heed::eq(ints, 2.5)) == std::vector<bool>{false, false, false});
  CHECK(bools(heed::lt(ints, 2.5)) == std::vector<bool>{true, true, false});
  CHECK(bools(heed::gt(ints, 2.5)) == std::vector<bool>{false, false, true});
  CHECK(bools(heed::gt(ints, 1.5)) == std::vector<bool>{false, true, true});
  // Float32 tensors compare with a scalar in Float32, as PyTorch does.
  CHECK(bools(heed::eq(heed::tensor({0.1, 0.2}, {2}, DType::Float32), 0.1)) == std::vector<bool>{true, false});
  // Mixed dtypes compare by value.
  CHECK(bools(heed::eq(ints, heed::tensor({1, 2.5, 3}, {3}, DType::Float32))) == std::vector<bool>{true, false, true});
  CHECK(bools(heed::lt(heed::tensor({0.5}, {1}, DType::Float32), t64({0.75, 0.25}, {2}))) ==
        std::vector<bool>{true, false});
  // NaN compares unequal to everything, itself included.
  const Tensor nan = t64({std::nan(""), 1.0}, {2});
  CHECK(bools(heed::eq(nan, nan)) == std::vector<bool>{false, true});
  CHECK(bools(heed::ne(nan, nan)) == std::vector<bool>{true, false});
  // Strided operands.
  const Tensor base = heed::tensor({1, 2, 3, 4, 5, 6}, {2, 3}, DType::Float32);
  const Tensor bt = heed::make_view(base, {3, 2}, {1, 3}, 0);  // [[1,4],[2,5],[3,6]]
  CHECK(bools(heed::gt(bt, heed::tensor({2, 4}, {2}, DType::Float32))) ==
        std::vector<bool>{false, false, false, true, true, true});
}

TEST_CASE("elementwise: comparisons and logic ops record nothing and do not require grad") {
  heed::clear_tape();
  Tensor a = input({2, 3}).requires_grad_(), b = input({3}).requires_grad_();
  for (const Tensor& r : {heed::eq(a, b), heed::ne(a, b), heed::lt(a, b), heed::le(a, b), heed::gt(a, b),
                          heed::ge(a, b), heed::eq(a, 0.0), heed::lt(a, 0.0), heed::gt(a, 0.0),
                          heed::logical_and(a, b), heed::logical_or(a, b), heed::logical_not(a)}) {
    CHECK(r.dtype() == DType::Bool);
    CHECK_FALSE(r.requires_grad());
  }
  CHECK(heed::tape_size() == 0);
}

TEST_CASE("elementwise: logical_and, logical_or, logical_not") {
  const Tensor p = heed::bool_tensor({true, false, true}, {3});
  const Tensor q = heed::bool_tensor({true, false}, {2, 1});
  CHECK(heed::logical_and(p, q).shape() == Shape{2, 3});
  CHECK(bools(heed::logical_and(p, q)) == std::vector<bool>{true, false, true, false, false, false});
  CHECK(bools(heed::logical_or(p, q)) == std::vector<bool>{true, true, true, true, false, true});
  CHECK(bools(heed::logical_not(p)) == std::vector<bool>{false, true, false});
  // Non-Bool inputs count non-zero as true.
  const Tensor f = heed::tensor({0.0, -2.0, 0.5}, {3}, DType::Float32);
  const Tensor i = heed::index_tensor({0, 0, 7});
  CHECK(bools(heed::logical_and(f, i)) == std::vector<bool>{false, false, true});
  CHECK(bools(heed::logical_or(f, i)) == std::vector<bool>{false, true, true});
  CHECK(bools(heed::logical_not(f)) == std::vector<bool>{true, false, false});
  // Strided Bool input.
  const Tensor m = heed::bool_tensor({true, false, false, true, true, false}, {2, 3});
  const Tensor mt = heed::make_view(m, {3, 2}, {1, 3}, 0);  // [[T,T],[F,T],[F,F]]
  CHECK(bools(heed::logical_not(mt)) == std::vector<bool>{false, false, true, false, true, true});
  CHECK(bools(heed::logical_and(mt, heed::bool_tensor({true, false}, {2}))) ==
        std::vector<bool>{true, false, false, false, false, false});
}

// ---- sum_to ---------------------------------------------------------------------------------------

TEST_CASE("elementwise: sum_to sums over broadcast axes") {
  std::vector<double> values(24);
  for (std::size_t i = 0; i < values.size(); ++i) values[i] = static_cast<double>(i);  // g[i][j][k] = 12i + 4j + k
  for (DType dtype : {DType::Float32, DType::Float64}) {
    INFO(heed::dtype_name(dtype));
    const Tensor g = heed::tensor(values, {2, 3, 4}, dtype);
    // (4): sum over i, j of 12i + 4j + k = 12*3 + 4*3*2 + 6k = 60 + 6k.
    check_values(heed::sum_to(g, {4}), {60, 66, 72, 78}, 0.0);
    // (3, 1): sum over i, k = 12*4 + 16j*2/2 ... = 2*(4*4j + 6) + 12*4 = 32j + 60.
    check_values(heed::sum_to(g, {3, 1}), {60, 92, 124}, 0.0);
    CHECK(heed::sum_to(g, {3, 1}).shape() == Shape{3, 1});
    // (1,) and []: everything, 0 + 1 + ... + 23 = 276.
    check_values(heed::sum_to(g, {1}), {276}, 0.0);
    CHECK(heed::sum_to(g, {}).dim() == 0);
    check_values(heed::sum_to(g, {}), {276}, 0.0);
    // (2, 1, 4): sum over j: 3 * (12i + k) + 4*(0+1+2).
    check_values(heed::sum_to(g, {2, 1, 4}), {12, 15, 18, 21, 48, 51, 54, 57}, 0.0);
    // (1, 3, 4): sum over i: 2 * (4j + k) + 12.
    check_values(heed::sum_to(g, {1, 3, 4}), {12, 14, 16, 18, 20, 22, 24, 26, 28, 30, 32, 34}, 0.0);
    // (3, 4): drops the leading axis.
    check_values(heed::sum_to(g, {3, 4}), {12, 14, 16, 18, 20, 22, 24, 26, 28, 30, 32, 34}, 0.0);
    CHECK(heed::sum_to(g, {4}).dtype() == dtype);
    // The same shape returns the gradient itself.
    CHECK(heed::sum_to(g, {2, 3, 4}).impl() == g.impl());
  }
}

TEST_CASE("elementwise: sum_to reads strided gradients and rejects shapes it cannot reach") {
  // g^T of the (4, 3) buffer 0..11: a (3, 4) view with g[j][k] = 3k + j.
  std::vector<double> values(12);
  for (std::size_t i = 0; i < values.size(); ++i) values[i] = static_cast<double>(i);
  const Tensor base = t64(values, {4, 3});
  const Tensor g = heed::make_view(base, {3, 4}, {1, 3}, 0);
  check_values(heed::sum_to(g, {4}), {3, 12, 21, 30}, 0.0);    // sum_j 3k + j
  check_values(heed::sum_to(g, {3, 1}), {18, 22, 26}, 0.0);    // sum_k 3k + j
  check_values(heed::sum_to(g, {}), {66}, 0.0);

  const Tensor dense = heed::zeros({2, 3}, DType::Float64);
  std::string msg = error_of([&] { heed::sum_to(dense, {4}); });
  CHECK(contains(msg, "sum_to"));
  msg = error_of([&] { heed::sum_to(dense, {2, 2, 3}); });  // would need to grow, not reduce
  CHECK(contains(msg, "sum_to"));
  CHECK(contains(msg, "[2, 3]"));
  CHECK(contains(msg, "[2, 2, 3]"));
  CHECK_THROWS_AS(heed::sum_to(dense, {3, 2}), heed::Error);
}

// ---- errors ---------------------------------------------------------------------------------------

TEST_CASE("elementwise: shape mismatches name the op and both shapes") {
  const Tensor a = heed::zeros({2, 3}), b = heed::zeros({4});
  for (const BinaryOp& op : binary_ops()) {
    INFO(std::string(op.name));
    const std::string msg = error_of([&] { op.fn(a, b); });
    CHECK(contains(msg, op.name));
    CHECK(contains(msg, "[2, 3]"));
    CHECK(contains(msg, "[4]"));
  }
  for (const auto& named : std::vector<std::pair<std::string, BinaryFn>>{
           {"eq", [](const Tensor& x, const Tensor& y) { return heed::eq(x, y); }},
           {"lt", [](const Tensor& x, const Tensor& y) { return heed::lt(x, y); }},
           {"logical_and", [](const Tensor& x, const Tensor& y) { return heed::logical_and(x, y); }}}) {
    const std::string& name = named.first;
    const BinaryFn fn = named.second;
    INFO(name);
    const std::string msg = error_of([&] { fn(a, heed::zeros({2, 2})); });
    CHECK(contains(msg, name));
    CHECK(contains(msg, "[2, 3]"));
    CHECK(contains(msg, "[2, 2]"));
  }
}

TEST_CASE("elementwise: dtype errors name the op and the dtypes") {
  const Tensor f32 = heed::zeros({2, 3}), f64 = heed::zeros({2, 3}, DType::Float64);
  const Tensor ints = heed::index_tensor({1, 2, 3}), mask = heed::bool_tensor({true, false});
  for (const BinaryOp& op : binary_ops()) {
    INFO(std::string(op.name));
    std::string msg = error_of([&] { op.fn(f32, f64); });
    CHECK(contains(msg, op.name));
    CHECK(contains(msg, "Float32"));
    CHECK(contains(msg, "Float64"));
    msg = error_of([&] { op.fn(ints, ints); });
    CHECK(contains(msg, op.name));
    CHECK(contains(msg, "Int64"));
    CHECK(contains(msg, "[3]"));
  }
  for (const auto& named : std::vector<std::pair<std::string, std::function<Tensor(const Tensor&)>>>{
           {"neg", [](const Tensor& x) { return heed::neg(x); }},
           {"exp", [](const Tensor& x) { return heed::exp(x); }},
           {"log", [](const Tensor& x) { return heed::log(x); }},
           {"sqrt", [](const Tensor& x) { return heed::sqrt(x); }},
           {"abs", [](const Tensor& x) { return heed::abs(x); }},
           {"pow", [](const Tensor& x) { return heed::square(x); }},
           {"sin", [](const Tensor& x) { return heed::sin(x); }},
           {"cos", [](const Tensor& x) { return heed::cos(x); }},
           {"tanh", [](const Tensor& x) { return heed::tanh(x); }},
           {"sigmoid", [](const Tensor& x) { return heed::sigmoid(x); }},
           {"leaky_relu", [](const Tensor& x) { return heed::relu(x); }},
           {"gelu", [](const Tensor& x) { return heed::gelu(x); }},
           {"softplus", [](const Tensor& x) { return heed::softplus(x); }},
           {"elu", [](const Tensor& x) { return heed::elu(x); }},
           {"clamp", [](const Tensor& x) { return heed::clamp(x, 0.0, 1.0); }},
           {"add", [](const Tensor& x) { return heed::add(x, 1.0); }},
           {"rsub", [](const Tensor& x) { return heed::rsub(1.0, x); }},
           {"mul", [](const Tensor& x) { return heed::mul(x, 2.0); }},
           {"rdiv", [](const Tensor& x) { return heed::rdiv(1.0, x); }},
           {"pow", [](const Tensor& x) { return heed::pow(x, 3.0); }}}) {
    const std::string& name = named.first;
    const auto& fn = named.second;
    INFO(name);
    std::string msg = error_of([&] { fn(ints); });
    CHECK(contains(msg, name));
    CHECK(contains(msg, "Int64"));
    msg = error_of([&] { fn(mask); });
    CHECK(contains(msg, name));
    CHECK(contains(msg, "Bool"));
    CHECK_THROWS_AS(fn(Tensor()), heed::Error);
  }
}

TEST_CASE("elementwise: argument errors") {
  const Tensor x = heed::zeros({3});
  CHECK(contains(error_of([&] { heed::softplus(x, 0.0); }), "softplus"));
  CHECK(contains(error_of([&] { heed::clamp(x, 1.0, -1.0); }), "clamp"));
  CHECK_THROWS_AS(heed::add(x, Tensor()), heed::Error);
  CHECK_THROWS_AS(heed::eq(Tensor(), x), heed::Error);
  CHECK_THROWS_AS(heed::logical_not(Tensor()), heed::Error);
}
