// tests/test_shape.cpp — reshape, transpose, permute, squeeze, expand, narrow, slice, select, concat, stack,
// split, chunk, unbind, repeat: forward values, gradchecks (incl. views of views and non-contiguous
// inputs), storage sharing, and error messages.
#include <doctest/doctest.h>

#include <heed/heed.hpp>

#include "testing.hpp"

#include <string>
#include <vector>

namespace {

using heed::testing::error_of;
using heed::testing::check_grad;

using heed::DType;
using heed::Tensor;
using Inputs = std::vector<Tensor>;

Tensor f64(const heed::Shape& shape) { return heed::randn(shape, DType::Float64).requires_grad_(); }

std::vector<double> values(const Tensor& t) { return t.to_vector<double>(); }

// arange(n) as Float32 in `shape`.
Tensor iota(const heed::Shape& shape) { return heed::arange(double(heed::shape_numel(shape))).reshape(shape); }

// The message of the heed::Error that f throws ("" if none).
bool shares_storage(const Tensor& a, const Tensor& b) { return a.impl()->storage == b.impl()->storage; }

}  // namespace

TEST_CASE("shape: reshape is a view of contiguous input and infers -1") {
  Tensor x = iota({2, 3, 4});
  Tensor y = heed::reshape(x, {4, -1});
  CHECK(y.shape() == heed::Shape{4, 6});
  CHECK(shares_storage(x, y));
  CHECK(values(y) == values(x));
  // Writing to the base shows through the view.
  x.data<float>()[7] = 100.0f;
  CHECK(y.to_vector<float>()[7] == 100.0f);
  CHECK(heed::reshape(x, {-1}).shape() == heed::Shape{24});
  CHECK(heed::reshape(heed::scalar(3.0), {1, 1}).shape() == heed::Shape{1, 1});
  CHECK(heed::reshape(heed::ones({1, 1}), {}).shape() == heed::Shape{});
  CHECK(x.view({6, 4}).shape() == heed::Shape{6, 4});
}

TEST_CASE("shape: reshape of a non-contiguous tensor copies in row-major order") {
  Tensor x = iota({2, 3});           // [[0,1,2],[3,4,5]]
  Tensor t = heed::transpose(x, 0, 1);  // [[0,3],[1,4],[2,5]]
  CHECK_FALSE(t.is_contiguous());
  Tensor y = heed::reshape(t, {6});
  CHECK(values(y) == std::vector<double>{0, 3, 1, 4, 2, 5});
  CHECK_FALSE(shares_storage(x, y));
  // Changing the base afterwards does not change the copy.
  x.data<float>()[1] = 50.0f;
  CHECK(values(y) == std::vector<double>{0, 3, 1, 4, 2, 5});
}

TEST_CASE("shape: reshape keeps a view when strides allow it (split and merge within a run)") {
  Tensor x = iota({4, 6});
  Tensor n = heed::narrow(x, 0, 1, 2);  // rows 1..2: contiguous rows with offset
  Tensor y = heed::reshape(n, {2, 2, 3});
  CHECK(shares_storage(x, y));
  CHECK(values(y) == values(n));
  Tensor cols = heed::narrow(x, 1, 0, 4);  // non-contiguous rows of 4
  Tensor z = heed::reshape(cols, {4, 2, 2});  // splits only the inner run: still a view
  CHECK(shares_storage(x, z));
  CHECK(values(z) == values(cols));
  Tensor w = heed::reshape(cols, {16});  // merges across the gap: a copy
  CHECK_FALSE(shares_storage(x, w));
  CHECK(values(w) == values(cols));
  // Expanded tensors: merging a stride-0 axis needs a copy, but splitting the other one does not.
  Tensor e = heed::expand(heed::tensor({1.0, 2.0, 3.0, 4.0}, {1, 4}), {3, 4});
  CHECK(values(heed::reshape(e, {12})) == std::vector<double>{1, 2, 3, 4, 1, 2, 3, 4, 1, 2, 3, 4});
  Tensor e2 = heed::reshape(e, {3, 2, 2});
  CHECK(shares_storage(e, e2));
  CHECK(values(e2) == std::vector<double>{1, 2, 3, 4, 1, 2, 3, 4, 1, 2, 3, 4});
}

TEST_CASE("shape: reshape gradients (contiguous, non-contiguous, views of views)") {
  Tensor x = f64({2, 3, 4});
  check_grad([](const Inputs& in) { return heed::reshape(in[0], {6, -1}); }, {x});
  check_grad([](const Inputs& in) { return heed::reshape(heed::transpose(in[0], 0, 2), {4, 6}); }, {x});
  check_grad([](const Inputs& in) { return heed::reshape(heed::narrow(in[0], 2, 1, 2), {2, 6}); }, {x});
  check_grad([](const Inputs& in) { return heed::reshape(heed::reshape(in[0], {24}), {4, 3, 2}) * 2.0; }, {x});
}

TEST_CASE("shape: reshape errors name the op and the shapes") {
  Tensor x = heed::zeros({2, 3});
  CHECK_THROWS_WITH_AS(heed::reshape(x, {4, 2}),
                       "reshape: cannot reshape a tensor of shape [2, 3] (6 elements) into [4, 2] (8 elements)",
                       heed::Error);
  CHECK(error_of([&] { heed::reshape(x, {-1, -1}); }).find("only one -1") != std::string::npos);
  CHECK(error_of([&] { heed::reshape(x, {4, -1}); }).find("reshape: cannot reshape a tensor of shape [2, 3]") == 0);
  CHECK(error_of([&] { heed::reshape(x, {-2, 3}); }).find("reshape: invalid size -2") == 0);
  CHECK(error_of([&] { heed::reshape(Tensor(), {1}); }).find("reshape") == 0);
}

TEST_CASE("shape: flatten") {
  Tensor x = iota({2, 3, 4});
  CHECK(heed::flatten(x).shape() == heed::Shape{24});
  CHECK(heed::flatten(x, 1).shape() == heed::Shape{2, 12});
  CHECK(heed::flatten(x, 0, 1).shape() == heed::Shape{6, 4});
  CHECK(x.flatten(-2, -1).shape() == heed::Shape{2, 12});
  CHECK(heed::flatten(heed::scalar(2.0)).shape() == heed::Shape{1});
  CHECK(values(heed::flatten(heed::transpose(iota({2, 2}), 0, 1))) == std::vector<double>{0, 2, 1, 3});
  check_grad([](const Inputs& in) { return heed::flatten(heed::permute(in[0], {2, 0, 1}), 1); }, {f64({2, 3, 4})});
  CHECK(error_of([&] { heed::flatten(x, 2, 1); }).find("flatten: start axis 2 comes after end axis 1") == 0);
  CHECK(error_of([&] { heed::flatten(x, 3); }).find("flatten: axis 3 is out of range for a tensor of shape [2, 3, 4]") == 0);
}

TEST_CASE("shape: transpose and permute are views with permuted strides") {
  Tensor x = iota({2, 3});
  Tensor t = heed::transpose(x, 0, 1);
  CHECK(t.shape() == heed::Shape{3, 2});
  CHECK(t.strides() == heed::Shape{1, 3});
  CHECK(shares_storage(x, t));
  CHECK(values(t) == std::vector<double>{0, 3, 1, 4, 2, 5});
  x.data<float>()[1] = -1.0f;  // x[0][1] -> t[1][0]
  CHECK(values(t)[2] == -1.0);

  Tensor y = iota({2, 3, 4});
  Tensor p = heed::permute(y, {2, 0, 1});
  CHECK(p.shape() == heed::Shape{4, 2, 3});
  CHECK(shares_storage(y, p));
  // p[k][i][j] = y[i][j][k] = 12 i + 4 j + k
  const std::vector<double> pv = values(p);
  CHECK(pv[0 * 6 + 1 * 3 + 2] == 12 * 1 + 4 * 2 + 0);
  CHECK(pv[3 * 6 + 0 * 3 + 1] == 4 * 1 + 3);
  CHECK(values(heed::permute(y, {-3, -2, -1})) == values(y));
  CHECK(heed::transpose(heed::scalar(1.0), 0, -1).shape() == heed::Shape{});
}

TEST_CASE("shape: transpose and permute gradients, including views of views") {
  Tensor x = f64({2, 3, 4});
  check_grad([](const Inputs& in) { return heed::transpose(in[0], 0, 2); }, {x});
  check_grad([](const Inputs& in) { return heed::transpose(in[0], -1, -2); }, {x});
  check_grad([](const Inputs& in) { return heed::permute(in[0], {1, 2, 0}); }, {x});
  check_grad([](const Inputs& in) { return heed::permute(heed::transpose(in[0], 0, 1), {2, 1, 0}); }, {x});
  check_grad([](const Inputs& in) { return heed::transpose(heed::slice(in[0], 2, 0, 4, 2), 0, 2); }, {x});
}

TEST_CASE("shape: transpose/permute errors") {
  Tensor x = heed::zeros({2, 3});
  CHECK_THROWS_WITH_AS(heed::transpose(x, 0, 2), "transpose: axis 2 is out of range for a tensor of shape [2, 3]",
                       heed::Error);
  CHECK_THROWS_WITH_AS(heed::permute(x, {0, 0}), "permute: dims [0, 0] repeat axis 0 (shape [2, 3])", heed::Error);
  CHECK_THROWS_WITH_AS(heed::permute(x, {0}), "permute: dims [0] do not match the 2 axes of shape [2, 3]", heed::Error);
  CHECK(error_of([&] { heed::permute(x, {0, 5}); }).find("permute: axis 5 is out of range") == 0);
}

TEST_CASE("shape: squeeze and unsqueeze") {
  Tensor x = iota({1, 3, 1, 2});
  Tensor s = heed::squeeze(x);
  CHECK(s.shape() == heed::Shape{3, 2});
  CHECK(shares_storage(x, s));
  CHECK(values(s) == values(x));
  CHECK(heed::squeeze(x, 0).shape() == heed::Shape{3, 1, 2});
  CHECK(heed::squeeze(x, -2).shape() == heed::Shape{1, 3, 2});
  CHECK(heed::squeeze(x, 1).shape() == heed::Shape{1, 3, 1, 2});  // not size 1: unchanged
  CHECK(heed::squeeze(heed::scalar(1.0), 0).shape() == heed::Shape{});
  Tensor v = heed::arange(3.0);
  CHECK(heed::unsqueeze(v, 0).shape() == heed::Shape{1, 3});
  CHECK(heed::unsqueeze(v, 1).shape() == heed::Shape{3, 1});
  CHECK(heed::unsqueeze(v, -1).shape() == heed::Shape{3, 1});
  CHECK(heed::unsqueeze(heed::scalar(1.0), 0).shape() == heed::Shape{1});
  Tensor u = v.unsqueeze(0);
  CHECK(shares_storage(u, v));
  CHECK(u.is_contiguous());
  // unsqueeze of a transposed view keeps the element order
  Tensor t = heed::transpose(iota({2, 3}), 0, 1);
  CHECK(values(heed::unsqueeze(t, 1)) == values(t));

  Tensor g = f64({1, 3, 1, 2});
  check_grad([](const Inputs& in) { return heed::squeeze(in[0]); }, {g});
  check_grad([](const Inputs& in) { return heed::squeeze(in[0], 2); }, {g});
  check_grad([](const Inputs& in) { return heed::unsqueeze(heed::transpose(in[0], 1, 3), 0); }, {g});
  check_grad([](const Inputs& in) { return heed::unsqueeze(heed::squeeze(in[0]), -1); }, {g});

  CHECK_THROWS_WITH_AS(heed::unsqueeze(v, 2), "unsqueeze: axis 2 is out of range for a tensor of shape [3] (valid: -2..1)",
                       heed::Error);
  CHECK(error_of([&] { heed::squeeze(x, 4); }).find("squeeze: axis 4 is out of range for a tensor of shape [1, 3, 1, 2]") == 0);
}

TEST_CASE("shape: expand and broadcast_to are stride-0 views whose gradient sums back") {
  Tensor x = heed::tensor({1.0, 2.0, 3.0}, {3, 1});
  Tensor e = heed::expand(x, {2, 3, 4});
  CHECK(e.shape() == heed::Shape{2, 3, 4});
  CHECK(e.strides()[0] == 0);
  CHECK(e.strides()[2] == 0);
  CHECK(shares_storage(x, e));
  const std::vector<double> ev = values(e);
  CHECK(ev[0] == 1.0);
  CHECK(ev[4] == 2.0);
  CHECK(ev[12 + 11] == 3.0);
  CHECK(heed::expand(x, {-1, 5}).shape() == heed::Shape{3, 5});
  CHECK(heed::broadcast_to(x, {3, 3}).shape() == heed::Shape{3, 3});
  x.data<float>()[1] = 9.0f;
  CHECK(values(e)[5] == 9.0);

  check_grad([](const Inputs& in) { return heed::expand(in[0], {2, 3, 4}); }, {f64({3, 1})});
  check_grad([](const Inputs& in) { return heed::broadcast_to(in[0], {3, 2, 4}); }, {f64({4})});
  check_grad([](const Inputs& in) { return heed::expand(heed::transpose(in[0], 0, 1), {5, 3, 2}); }, {f64({2, 3})});
  // Backward of a gradient that reaches the same input twice through an expanded view.
  Tensor w = heed::ones({3}, DType::Float64).requires_grad_();
  Tensor y = heed::mul(heed::expand(w, {2, 3}), heed::expand(w, {2, 3}));
  y.backward(heed::ones({2, 3}, DType::Float64));
  CHECK(values(w.grad()) == std::vector<double>{4, 4, 4});

  CHECK_THROWS_WITH_AS(heed::expand(heed::zeros({2, 3}), {4, 3}),
                       "expand: cannot expand shape [2, 3] to [4, 3]: axis 0 has size 2, not 1", heed::Error);
  CHECK(error_of([] { heed::broadcast_to(heed::zeros({2, 3}), {3}); })
            .find("broadcast_to: the target shape [3] has fewer axes than the input shape [2, 3]") == 0);
}

TEST_CASE("shape: narrow, slice and select are views") {
  Tensor x = iota({3, 4});  // rows [0..3], [4..7], [8..11]
  Tensor n = heed::narrow(x, 1, 1, 2);
  CHECK(values(n) == std::vector<double>{1, 2, 5, 6, 9, 10});
  CHECK(shares_storage(x, n));
  CHECK(values(heed::narrow(x, 0, -1, 1)) == std::vector<double>{8, 9, 10, 11});
  Tensor s = heed::slice(x, 1, 0, 4, 2);
  CHECK(values(s) == std::vector<double>{0, 2, 4, 6, 8, 10});
  CHECK(values(heed::slice(x, 1, 1, 100, 2)) == std::vector<double>{1, 3, 5, 7, 9, 11});
  CHECK(values(heed::slice(x, 0, -2, 3)) == std::vector<double>{4, 5, 6, 7, 8, 9, 10, 11});
  CHECK(heed::slice(x, 0, 2, 1).shape() == heed::Shape{0, 4});
  Tensor r = heed::select(x, 0, 1);
  CHECK(r.shape() == heed::Shape{4});
  CHECK(values(r) == std::vector<double>{4, 5, 6, 7});
  CHECK(values(heed::select(x, 1, -1)) == std::vector<double>{3, 7, 11});
  // views of views: select of a slice of a transpose
  Tensor vv = heed::select(heed::slice(heed::transpose(x, 0, 1), 0, 1, 4, 2), 1, 2);  // x[2][1], x[2][3]
  CHECK(values(vv) == std::vector<double>{9, 11});
  CHECK(shares_storage(x, vv));
  x.data<float>()[11] = 42.0f;
  CHECK(values(vv) == std::vector<double>{9, 42});
  // writing through a view changes the base
  heed::select(x, 0, 0).fill_(-1.0);
  CHECK(values(heed::select(x, 0, 0)) == std::vector<double>{-1, -1, -1, -1});
}

TEST_CASE("shape: narrow, slice and select gradients") {
  Tensor x = f64({3, 4, 5});
  check_grad([](const Inputs& in) { return heed::narrow(in[0], 1, 1, 2); }, {x});
  check_grad([](const Inputs& in) { return heed::slice(in[0], 2, 1, 5, 3); }, {x});
  check_grad([](const Inputs& in) { return heed::select(in[0], 0, -1); }, {x});
  check_grad([](const Inputs& in) { return heed::select(heed::narrow(heed::transpose(in[0], 0, 2), 0, 1, 3), 1, 2); }, {x});
  // The same input sliced twice, overlapping: gradients add up.
  check_grad([](const Inputs& in) { return heed::narrow(in[0], 1, 0, 3) * heed::narrow(in[0], 1, 1, 3); }, {x});
}

TEST_CASE("shape: partial gradients accumulate into an existing gradient") {
  // Two selects of one row: the second backward adds into the first's buffer.
  Tensor x = heed::zeros({3, 2}, DType::Float64).requires_grad_();
  Tensor y = heed::add(heed::select(x, 0, 1), heed::select(x, 0, 1));
  y.backward(heed::tensor({1.0, 2.0}, {2}, DType::Float64));
  CHECK(values(x.grad()) == std::vector<double>{0, 0, 2, 4, 0, 0});
  // A second backward adds to the leaf's gradient.
  Tensor z = heed::select(x, 1, 0);
  z.backward(heed::ones({3}, DType::Float64));
  CHECK(values(x.grad()) == std::vector<double>{1, 0, 3, 4, 1, 0});
}

TEST_CASE("shape: narrow/slice/select errors") {
  Tensor x = heed::zeros({3, 4});
  CHECK_THROWS_WITH_AS(heed::select(x, 0, 3), "select: index 3 is out of range for axis 0 of size 3 (input shape [3, 4])",
                       heed::Error);
  CHECK_THROWS_WITH_AS(heed::narrow(x, 1, 2, 3), "narrow: start 2 + length 3 exceeds size 4 of axis 1 (shape [3, 4])",
                       heed::Error);
  CHECK(error_of([&] { heed::slice(x, 1, 0, 4, 0); }).find("slice: step must be positive") == 0);
  CHECK(error_of([&] { heed::select(x, 2, 0); }).find("select: axis 2 is out of range for a tensor of shape [3, 4]") == 0);
  CHECK(error_of([] { heed::select(heed::scalar(1.0), 0, 0); }).find("select: axis 0 is out of range") == 0);
}

TEST_CASE("shape: concat") {
  Tensor a = iota({2, 2});                        // [[0,1],[2,3]]
  Tensor b = heed::tensor({10.0, 11.0, 12.0, 13.0, 14.0, 15.0}, {2, 3});
  Tensor c = heed::concat({a, b}, 1);
  CHECK(c.shape() == heed::Shape{2, 5});
  CHECK(values(c) == std::vector<double>{0, 1, 10, 11, 12, 2, 3, 13, 14, 15});
  Tensor r = heed::concat({a, heed::transpose(a, 0, 1)}, 0);  // a non-contiguous part
  CHECK(values(r) == std::vector<double>{0, 1, 2, 3, 0, 2, 1, 3});
  CHECK(values(heed::concat({a}, -1)) == values(a));
  Tensor ints = heed::concat({heed::index_tensor({1, 2}), heed::index_tensor({3}, {1})});
  CHECK(ints.to_vector<int64_t>() == std::vector<int64_t>{1, 2, 3});

  Tensor x = f64({2, 3}), y = f64({2, 1}), z = f64({3, 2});
  check_grad([](const Inputs& in) { return heed::concat({in[0], in[1], heed::transpose(in[2], 0, 1)}, 1); }, {x, y, z});
  check_grad([](const Inputs& in) { return heed::concat({in[0], in[0]}, 0); }, {x});  // the same input twice
  Tensor constant = heed::randn({2, 2}, DType::Float64);
  check_grad([&](const Inputs& in) { return heed::concat({constant, in[0]}, -1); }, {x});

  CHECK_THROWS_WITH_AS(heed::concat({a, heed::zeros({3, 3})}, 1),
                       "concat: input 1 has shape [3, 3] but input 0 has shape [2, 2]; shapes may differ only along axis 1 "
                       "(shapes [2, 2], [3, 3])",
                       heed::Error);
  CHECK(error_of([&] { heed::concat({a, heed::zeros({2, 2}, DType::Float64)}); }).find("concat: input 1 is Float64") == 0);
  CHECK(error_of([] { heed::concat({}); }).find("concat: needs at least one tensor") == 0);
  CHECK(error_of([&] { heed::concat({a, a}, 2); }).find("concat: axis 2 is out of range") == 0);
}

TEST_CASE("shape: stack") {
  Tensor a = heed::tensor({1.0, 2.0, 3.0}), b = heed::tensor({4.0, 5.0, 6.0});
  CHECK(heed::stack({a, b}).shape() == heed::Shape{2, 3});
  CHECK(values(heed::stack({a, b})) == std::vector<double>{1, 2, 3, 4, 5, 6});
  Tensor s1 = heed::stack({a, b}, 1);
  CHECK(s1.shape() == heed::Shape{3, 2});
  CHECK(values(s1) == std::vector<double>{1, 4, 2, 5, 3, 6});
  CHECK(heed::stack({a, b}, -1).shape() == heed::Shape{3, 2});

  Tensor x = f64({2, 3}), y = f64({3, 2});
  check_grad([](const Inputs& in) { return heed::stack({in[0], heed::transpose(in[1], 0, 1)}, 1); }, {x, y});
  check_grad([](const Inputs& in) { return heed::stack({in[0], in[0], in[0]}, 2); }, {x});

  CHECK_THROWS_WITH_AS(heed::stack({a, heed::zeros({2})}), "stack: input 1 has shape [2] but input 0 has shape [3] (shapes [3], [2])",
                       heed::Error);
  CHECK(error_of([&] { heed::stack({a, b}, 2); }).find("stack: axis 2 is out of range") == 0);
}

TEST_CASE("shape: split, chunk and unbind give views") {
  Tensor x = iota({5, 2});
  std::vector<Tensor> parts = heed::split(x, 2);
  REQUIRE(parts.size() == 3);
  CHECK(parts[0].shape() == heed::Shape{2, 2});
  CHECK(parts[2].shape() == heed::Shape{1, 2});
  CHECK(values(parts[2]) == std::vector<double>{8, 9});
  CHECK(shares_storage(x, parts[1]));
  std::vector<Tensor> sized = heed::split(x, std::vector<int64_t>{1, 4}, 0);
  REQUIRE(sized.size() == 2);
  CHECK(values(sized[1]) == std::vector<double>{2, 3, 4, 5, 6, 7, 8, 9});
  std::vector<Tensor> cols = heed::split(x, 1, 1);
  REQUIRE(cols.size() == 2);
  CHECK(values(cols[1]) == std::vector<double>{1, 3, 5, 7, 9});
  std::vector<Tensor> ch = heed::chunk(x, 2);
  REQUIRE(ch.size() == 2);
  CHECK(ch[0].shape() == heed::Shape{3, 2});
  CHECK(ch[1].shape() == heed::Shape{2, 2});
  CHECK(heed::chunk(heed::zeros({6}), 4).size() == 3);  // like torch.chunk: pieces of ceil(6/4) = 2
  std::vector<Tensor> rows = heed::unbind(x);
  REQUIRE(rows.size() == 5);
  CHECK(rows[3].shape() == heed::Shape{2});
  CHECK(values(rows[3]) == std::vector<double>{6, 7});
  std::vector<Tensor> cs = heed::unbind(x, 1);
  REQUIRE(cs.size() == 2);
  CHECK(values(cs[0]) == std::vector<double>{0, 2, 4, 6, 8});

  Tensor g = f64({5, 3});
  check_grad([](const Inputs& in) { auto p = heed::split(in[0], 2); return heed::concat({p[2], p[0]}, 0); }, {g});
  check_grad([](const Inputs& in) {
    auto p = heed::split(in[0], std::vector<int64_t>{1, 2}, 1);
    return heed::mul(p[0], heed::narrow(p[1], 1, 1, 1));
  }, {g});
  check_grad([](const Inputs& in) { auto p = heed::chunk(heed::transpose(in[0], 0, 1), 2, 1); return p[1] * 3.0; }, {g});
  // Every piece of an unbind used: the pieces' gradients fill the whole input.
  check_grad([](const Inputs& in) {
    auto p = heed::unbind(in[0], 0);
    Tensor acc = p[0];
    for (std::size_t i = 1; i < p.size(); ++i) acc = heed::add(heed::mul(acc, 0.5), p[i]);
    return acc;
  }, {g});

  CHECK_THROWS_WITH_AS(heed::split(x, std::vector<int64_t>{1, 2}),
                       "split: sizes [1, 2] sum to 3, but axis 0 of shape [5, 2] has size 5", heed::Error);
  CHECK(error_of([&] { heed::split(x, 0); }).find("split: split_size must be positive") == 0);
  CHECK(error_of([&] { heed::chunk(x, 0); }).find("chunk: chunks must be positive") == 0);
  CHECK(error_of([&] { heed::unbind(x, 2); }).find("unbind: axis 2 is out of range for a tensor of shape [5, 2]") == 0);
}

TEST_CASE("shape: repeat tiles like torch.Tensor.repeat") {
  Tensor x = heed::tensor({1.0, 2.0, 3.0});
  Tensor r = heed::repeat(x, {2, 2});
  CHECK(r.shape() == heed::Shape{2, 6});
  CHECK(values(r) == std::vector<double>{1, 2, 3, 1, 2, 3, 1, 2, 3, 1, 2, 3});
  Tensor m = heed::tensor({1.0, 2.0, 3.0, 4.0}, {2, 2});
  CHECK(values(heed::repeat(m, {2, 1})) == std::vector<double>{1, 2, 3, 4, 1, 2, 3, 4});
  CHECK(values(heed::repeat(m, {1, 2})) == std::vector<double>{1, 2, 1, 2, 3, 4, 3, 4});
  CHECK(values(heed::repeat(heed::transpose(m, 0, 1), {1, 2})) == std::vector<double>{1, 3, 1, 3, 2, 4, 2, 4});
  CHECK(heed::repeat(m, {3, 1, 1}).shape() == heed::Shape{3, 2, 2});
  CHECK(heed::repeat(m, {0, 1}).shape() == heed::Shape{0, 2});
  CHECK(values(heed::repeat(heed::tensor({5.0, 6.0}, {2, 1}), {1, 3})) == std::vector<double>{5, 5, 5, 6, 6, 6});

  check_grad([](const Inputs& in) { return heed::repeat(in[0], {2, 3}); }, {f64({2, 3})});
  check_grad([](const Inputs& in) { return heed::repeat(in[0], {2, 1, 2}); }, {f64({3, 2})});
  check_grad([](const Inputs& in) { return heed::repeat(heed::transpose(in[0], 0, 1), {1, 1}); }, {f64({3, 2})});

  CHECK_THROWS_WITH_AS(heed::repeat(m, {2}), "repeat: 1 repeats [2] given for a tensor of shape [2, 2]; needs at least 2",
                       heed::Error);
  CHECK(error_of([&] { heed::repeat(m, {1, -1}); }).find("repeat: repeats [1, -1] contain a negative count") == 0);
}

TEST_CASE("shape: method forms and Int64/Bool views") {
  Tensor idx = heed::index_tensor({0, 1, 2, 3, 4, 5}, {2, 3});
  CHECK(idx.transpose(0, 1).to_vector<int64_t>() == std::vector<int64_t>{0, 3, 1, 4, 2, 5});
  CHECK(idx.reshape({3, 2}).dtype() == DType::Int64);
  Tensor mask = heed::bool_tensor({true, false, true, false}, {2, 2});
  CHECK(heed::select(mask, 1, 0).to_vector<int>() == std::vector<int>{1, 1});
  CHECK(heed::permute(heed::zeros({2, 3, 4}), {1, 0, 2}).shape() == heed::Shape{3, 2, 4});
  // Views are not recorded when nothing requires grad.
  heed::clear_tape();
  heed::transpose(heed::reshape(heed::zeros({4}), {2, 2}), 0, 1);
  CHECK(heed::tape_size() == 0);
}
