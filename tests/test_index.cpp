// tests/test_index.cpp — index_select, gather, embedding, where, pad, flip: forward values, gradchecks
// (repeated indices, padding_idx, non-contiguous inputs, broadcasting) and error messages.
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
Tensor iota(const heed::Shape& shape) { return heed::arange(double(heed::shape_numel(shape))).reshape(shape); }

}  // namespace

TEST_CASE("index: index_select forward") {
  Tensor x = iota({4, 3});  // rows [0,1,2], [3,4,5], [6,7,8], [9,10,11]
  Tensor rows = heed::index_select(x, 0, heed::index_tensor({2, 0, 2}));
  CHECK(rows.shape() == heed::Shape{3, 3});
  CHECK(values(rows) == std::vector<double>{6, 7, 8, 0, 1, 2, 6, 7, 8});
  Tensor cols = heed::index_select(x, -1, heed::index_tensor({1, 1, 0, 2}, {2, 2}));
  CHECK(cols.shape() == heed::Shape{4, 2, 2});
  CHECK(values(heed::select(cols, 0, 1)) == std::vector<double>{4, 4, 3, 5});
  // non-contiguous input and a 0-d index
  Tensor t = heed::index_select(heed::transpose(x, 0, 1), 0, heed::index_tensor({1}, {}));
  CHECK(t.shape() == heed::Shape{4});
  CHECK(values(t) == std::vector<double>{1, 4, 7, 10});
  Tensor ints = heed::index_select(heed::index_tensor({5, 6, 7}), 0, heed::index_tensor({2, 2}));
  CHECK(ints.to_vector<int64_t>() == std::vector<int64_t>{7, 7});
}

TEST_CASE("index: index_select gradients accumulate over repeated indices") {
  Tensor x = f64({4, 3});
  Tensor idx = heed::index_tensor({2, 0, 2, 2});
  check_grad([&](const Inputs& in) { return heed::index_select(in[0], 0, idx); }, {x});
  check_grad([&](const Inputs& in) { return heed::index_select(in[0], 1, heed::index_tensor({1, 1, 0}, {3, 1})); }, {x});
  check_grad([&](const Inputs& in) { return heed::index_select(heed::transpose(in[0], 0, 1), 1, idx); }, {x});
  Tensor w = heed::zeros({4, 2}, DType::Float64).requires_grad_();
  heed::index_select(w, 0, heed::index_tensor({3, 1, 3})).backward(heed::ones({3, 2}, DType::Float64));
  CHECK(values(w.grad()) == std::vector<double>{0, 0, 1, 1, 0, 0, 2, 2});
}

TEST_CASE("index: index_select errors") {
  Tensor x = heed::zeros({5, 3});
  CHECK_THROWS_WITH_AS(heed::index_select(x, 0, heed::index_tensor({1, 7})),
                       "index_select: index 7 is out of range for axis 0 of size 5 (input shape [5, 3])", heed::Error);
  CHECK_THROWS_WITH_AS(heed::index_select(x, 1, heed::index_tensor({-1})),
                       "index_select: index -1 is out of range for axis 1 of size 3 (input shape [5, 3])", heed::Error);
  CHECK_THROWS_WITH_AS(heed::index_select(x, 0, heed::tensor({1.0, 2.0})),
                       "index_select: index must be Int64, got Float32 of shape [2]", heed::Error);
  CHECK(error_of([&] { heed::index_select(x, 2, heed::index_tensor({0})); })
            .find("index_select: axis 2 is out of range for a tensor of shape [5, 3]") == 0);
}

TEST_CASE("index: gather forward") {
  Tensor x = heed::tensor({1.0, 2.0, 3.0, 4.0}, {2, 2});
  // torch.gather(x, 1, [[0,0],[1,0]]) = [[1,1],[4,3]]
  Tensor g1 = heed::gather(x, 1, heed::index_tensor({0, 0, 1, 0}, {2, 2}));
  CHECK(values(g1) == std::vector<double>{1, 1, 4, 3});
  // axis 0: out[i][j] = x[index[i][j]][j]
  Tensor g0 = heed::gather(x, 0, heed::index_tensor({1, 0, 1, 1, 0, 0}, {3, 2}));
  CHECK(values(g0) == std::vector<double>{3, 2, 3, 4, 1, 2});
  // index smaller than x outside the axis; non-contiguous x and index
  Tensor y = iota({3, 4});
  Tensor g2 = heed::gather(heed::transpose(y, 0, 1), 1, heed::transpose(heed::index_tensor({2, 0, 1, 2}, {2, 2}), 0, 1));
  // yt = [[0,4,8],[1,5,9],...]; index^T = [[2,1],[0,2]] -> [[8,4],[1,9]]
  CHECK(values(g2) == std::vector<double>{8, 4, 1, 9});
  // Typical use: pick the target class of each row.
  Tensor logits = iota({3, 5});
  CHECK(values(heed::gather(logits, 1, heed::index_tensor({4, 0, 2}, {3, 1}))) == std::vector<double>{4, 5, 12});
}

TEST_CASE("index: gather gradients (repeated indices, non-contiguous)") {
  Tensor x = f64({3, 4});
  Tensor idx = heed::index_tensor({0, 0, 3, 1, 1, 1, 2, 0, 3}, {3, 3});
  check_grad([&](const Inputs& in) { return heed::gather(in[0], 1, idx); }, {x});
  check_grad([&](const Inputs& in) { return heed::gather(in[0], 0, heed::index_tensor({2, 2, 0, 1, 0, 2}, {2, 3})); }, {x});
  check_grad([&](const Inputs& in) { return heed::gather(heed::transpose(in[0], 0, 1), 0, heed::index_tensor({2, 2, 1}, {1, 3})); },
             {x});
  Tensor z = heed::zeros({2, 3}, DType::Float64).requires_grad_();
  heed::gather(z, 1, heed::index_tensor({2, 2, 0, 1}, {2, 2})).backward(heed::ones({2, 2}, DType::Float64));
  CHECK(values(z.grad()) == std::vector<double>{0, 0, 2, 1, 1, 0});
}

TEST_CASE("index: gather errors") {
  Tensor x = heed::zeros({2, 5});
  CHECK_THROWS_WITH_AS(heed::gather(x, 1, heed::index_tensor({0, 7}, {2, 1})),
                       "gather: index 7 is out of range for axis 1 of size 5 (input shape [2, 5], index shape [2, 1])",
                       heed::Error);
  CHECK_THROWS_WITH_AS(heed::gather(x, 1, heed::index_tensor({0, 1})),
                       "gather: index has shape [2] but input has shape [2, 5]; they need the same number of axes",
                       heed::Error);
  CHECK(error_of([&] { heed::gather(x, 1, heed::index_tensor({0, 0, 0}, {3, 1})); })
            .find("gather: index shape [3, 1] exceeds input shape [2, 5] along axis 0") == 0);
  CHECK(error_of([&] { heed::gather(x, 0, heed::bool_tensor({true, false}, {1, 2})); }).find("gather: index must be Int64") == 0);
}

TEST_CASE("index: embedding forward, padding_idx and repeated indices") {
  Tensor w = iota({4, 2});  // rows [0,1], [2,3], [4,5], [6,7]
  Tensor e = heed::embedding(w, heed::index_tensor({3, 0, 3, 1}, {2, 2}));
  CHECK(e.shape() == heed::Shape{2, 2, 2});
  CHECK(values(e) == std::vector<double>{6, 7, 0, 1, 6, 7, 2, 3});
  CHECK(heed::embedding(w, heed::index_tensor({2}, {})).shape() == heed::Shape{2});

  // Gradient: repeated indices accumulate, padding_idx rows get none.
  Tensor weight = heed::zeros({4, 2}, DType::Float64).requires_grad_();
  Tensor idx = heed::index_tensor({1, 0, 1, 3, 0});
  Tensor y = heed::embedding(weight, idx, 0);
  y.backward(heed::tensor({1.0, 1.0, 2.0, 2.0, 3.0, 3.0, 4.0, 4.0, 5.0, 5.0}, {5, 2}, DType::Float64));
  CHECK(values(weight.grad()) == std::vector<double>{0, 0, 4, 4, 0, 0, 4, 4});

  Tensor wg = f64({5, 3});
  check_grad([](const Inputs& in) { return heed::embedding(in[0], heed::index_tensor({4, 1, 4, 4, 0, 2}, {2, 3})); }, {wg});
  // padding_idx gives its row no gradient although the forward reads it, so a finite difference cannot
  // check that row (the values above do). Here row 2 is a constant, so the numeric gradient is 0 there
  // too, and gradcheck verifies that skipping the padded lookups leaves every other row's gradient right.
  Tensor frozen = heed::randn({5, 3}, DType::Float64);
  check_grad([&](const Inputs& in) {
    Tensor keep = heed::tensor({1.0, 1.0, 0.0, 1.0, 1.0}, {5, 1}, DType::Float64);
    Tensor table = heed::add(heed::mul(in[0], keep), heed::mul(frozen, heed::rsub(1.0, keep)));
    return heed::embedding(table, heed::index_tensor({2, 1, 2, 4, 1}), 2);
  }, {wg});
}

TEST_CASE("index: embedding accumulates across several lookups of one table") {
  Tensor weight = heed::zeros({3, 2}, DType::Float64).requires_grad_();
  Tensor a = heed::embedding(weight, heed::index_tensor({2}, {1}));
  Tensor b = heed::embedding(weight, heed::index_tensor({2, 1}));
  heed::add(a, heed::narrow(b, 0, 0, 1)).backward(heed::ones({1, 2}, DType::Float64));
  CHECK(values(weight.grad()) == std::vector<double>{0, 0, 0, 0, 2, 2});
}

TEST_CASE("index: embedding errors") {
  Tensor w = heed::zeros({10, 4});
  CHECK_THROWS_WITH_AS(heed::embedding(w, heed::index_tensor({3, 12})),
                       "embedding: index 12 is out of range for a weight of shape [10, 4] (indices shape [2])", heed::Error);
  CHECK_THROWS_WITH_AS(heed::embedding(heed::zeros({10}), heed::index_tensor({1})),
                       "embedding: weight must be 2-D (num_embeddings, embedding_dim), got shape [10]", heed::Error);
  CHECK(error_of([&] { heed::embedding(w, heed::tensor({1.0})); }).find("embedding: indices must be Int64") == 0);
  CHECK(error_of([&] { heed::embedding(w, heed::index_tensor({1}), 10); })
            .find("embedding: padding_idx 10 is out of range for a weight of shape [10, 4]") == 0);
}

TEST_CASE("index: where forward with broadcasting") {
  Tensor cond = heed::bool_tensor({true, false, false, true}, {2, 2});
  Tensor a = heed::tensor({1.0, 2.0, 3.0, 4.0}, {2, 2});
  Tensor b = heed::tensor({-1.0, -2.0, -3.0, -4.0}, {2, 2});
  CHECK(values(heed::where(cond, a, b)) == std::vector<double>{1, -2, -3, 4});
  // cond (2,1), a (2,3), b scalar
  Tensor c2 = heed::bool_tensor({true, false}, {2, 1});
  Tensor w = heed::where(c2, iota({2, 3}), heed::scalar(9.0));
  CHECK(w.shape() == heed::Shape{2, 3});
  CHECK(values(w) == std::vector<double>{0, 1, 2, 9, 9, 9});
  // non-contiguous operands
  Tensor wt = heed::where(heed::transpose(cond, 0, 1), heed::transpose(a, 0, 1), b);
  CHECK(values(wt) == std::vector<double>{1, -2, -3, 4});
  // Int64 operands
  Tensor wi = heed::where(heed::bool_tensor({false, true}), heed::index_tensor({1, 2}), heed::index_tensor({7, 8}));
  CHECK(wi.to_vector<int64_t>() == std::vector<int64_t>{7, 2});
}

TEST_CASE("index: where gradients go to a where cond holds, to b elsewhere, summed to their shapes") {
  Tensor cond = heed::bool_tensor({true, false, false, true, true, false}, {2, 3});
  check_grad([&](const Inputs& in) { return heed::where(cond, in[0], in[1]); }, {f64({2, 3}), f64({2, 3})});
  check_grad([&](const Inputs& in) { return heed::where(cond, in[0], in[1]); }, {f64({3}), f64({2, 1})});
  check_grad([&](const Inputs& in) { return heed::where(heed::bool_tensor({true, false}, {2, 1, 1}), in[0], in[1]); },
             {f64({3, 1}), f64({4})});
  check_grad([&](const Inputs& in) { return heed::where(cond, heed::transpose(in[0], 0, 1), in[1]); },
             {f64({3, 2}), f64({})});
  Tensor a = heed::zeros({3}, DType::Float64).requires_grad_();
  Tensor b = heed::zeros({}, DType::Float64).requires_grad_();
  heed::where(heed::bool_tensor({true, false, false}), a, b).backward(heed::tensor({1.0, 2.0, 3.0}, {3}, DType::Float64));
  CHECK(values(a.grad()) == std::vector<double>{1, 0, 0});
  CHECK(b.grad().item() == 5.0);
}

TEST_CASE("index: where errors") {
  Tensor x = heed::zeros({2, 3});
  CHECK_THROWS_WITH_AS(heed::where(x, x, x), "where: cond must be Bool, got Float32 of shape [2, 3]", heed::Error);
  CHECK_THROWS_WITH_AS(heed::where(heed::bool_tensor({true, false}), x, x),
                       "where: shapes [2] (cond), [2, 3] (a) and [2, 3] (b) do not broadcast", heed::Error);
  CHECK(error_of([&] { heed::where(heed::bool_tensor({true}), x, heed::zeros({2, 3}, DType::Float64)); })
            .find("where: a and b differ in dtype: Float32 [2, 3] and Float64 [2, 3]") == 0);
}

TEST_CASE("index: pad follows F.pad (constant value, negative crops)") {
  Tensor x = heed::tensor({1.0, 2.0, 3.0, 4.0}, {2, 2});
  Tensor p = heed::pad(x, {1, 0});
  CHECK(p.shape() == heed::Shape{2, 3});
  CHECK(values(p) == std::vector<double>{0, 1, 2, 0, 3, 4});
  Tensor q = heed::pad(x, {0, 1, 1, 0}, -1.0);  // last axis right +1, first axis top +1
  CHECK(q.shape() == heed::Shape{3, 3});
  CHECK(values(q) == std::vector<double>{-1, -1, -1, 1, 2, -1, 3, 4, -1});
  Tensor crop = heed::pad(iota({3, 4}), {-1, -1, 0, -1});  // keep rows 0..1, cols 1..2
  CHECK(crop.shape() == heed::Shape{2, 2});
  CHECK(values(crop) == std::vector<double>{1, 2, 5, 6});
  Tensor mixed = heed::pad(iota({1, 3}), {-2, 1});  // crop 2 on the left, pad 1 on the right
  CHECK(values(mixed) == std::vector<double>{2, 0});
  CHECK(heed::pad(iota({2, 2}), {-2, 0}).shape() == heed::Shape{2, 0});
  CHECK(values(heed::pad(heed::transpose(x, 0, 1), {1, 1}, 5.0)) == std::vector<double>{5, 1, 3, 5, 5, 2, 4, 5});
  CHECK(values(heed::pad(x, {})) == values(x));

  check_grad([](const Inputs& in) { return heed::pad(in[0], {1, 2, 0, 1}, 0.5); }, {f64({2, 3, 4})});
  check_grad([](const Inputs& in) { return heed::pad(in[0], {-1, 2, 1, -1}); }, {f64({2, 3, 4})});
  check_grad([](const Inputs& in) { return heed::pad(heed::transpose(in[0], 1, 2), {2, -1}); }, {f64({2, 3, 4})});

  CHECK_THROWS_WITH_AS(heed::pad(x, {1}), "pad: padding [1] must have an even number of entries (input shape [2, 2])",
                       heed::Error);
  CHECK_THROWS_WITH_AS(heed::pad(x, {1, 1, 1, 1, 1, 1}), "pad: padding [1, 1, 1, 1, 1, 1] covers 3 axes but the input shape [2, 2] has 2",
                       heed::Error);
  CHECK(error_of([&] { heed::pad(x, {-2, -1}); }).find("pad: padding (-2, -1) of axis 1 leaves a negative size -1") == 0);
}

TEST_CASE("index: flip") {
  Tensor x = iota({2, 3});
  CHECK(values(heed::flip(x, {1})) == std::vector<double>{2, 1, 0, 5, 4, 3});
  CHECK(values(heed::flip(x, {0})) == std::vector<double>{3, 4, 5, 0, 1, 2});
  CHECK(values(heed::flip(x, {0, -1})) == std::vector<double>{5, 4, 3, 2, 1, 0});
  CHECK(values(heed::flip(x, {})) == values(x));
  Tensor f = heed::flip(x, {1});
  CHECK(f.is_contiguous());
  CHECK(f.impl()->storage != x.impl()->storage);
  CHECK(values(heed::flip(heed::transpose(x, 0, 1), {0})) == std::vector<double>{2, 5, 1, 4, 0, 3});

  check_grad([](const Inputs& in) { return heed::flip(in[0], {0, 2}); }, {f64({2, 3, 4})});
  check_grad([](const Inputs& in) { return heed::flip(heed::narrow(in[0], 1, 1, 2), {1}); }, {f64({2, 3, 4})});

  CHECK_THROWS_WITH_AS(heed::flip(x, {1, -1}), "flip: axes [1, -1] repeat axis 1 (shape [2, 3])", heed::Error);
  CHECK(error_of([&] { heed::flip(x, {2}); }).find("flip: axis 2 is out of range for a tensor of shape [2, 3]") == 0);
}
