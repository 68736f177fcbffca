// Sparse attention (docs/attention-spec.md M10): the pattern builders on small cases written out by hand, the block
// layout, gradient checks of the reference path and the block-sparse kernel, kernel == reference (fp64
// forward and gradients to 1e-12, several block sizes, per-head patterns, L != S, fully masked rows), and
// errors.
#include <doctest/doctest.h>

#include <cmath>
#include <heed/heed.hpp>
#include <string>
#include <type_traits>
#include <vector>

#include "heed/nn/sparse_attention.hpp"
#include "testing.hpp"

namespace {

using heed::DType;
using heed::Shape;
using heed::Tensor;
namespace nn = heed::nn;
using heed::testing::check_grad;
using heed::testing::error_of;

// A (L, S) Bool mask as rows of '1'/'0' separated by '/'.
std::string mask_string(const Tensor& mask) {
  const auto m = mask.to_vector<int64_t>();
  std::string s;
  for (int64_t i = 0; i < mask.size(0); ++i) {
    if (i) s += '/';
    for (int64_t j = 0; j < mask.size(1); ++j) s += m[i * mask.size(1) + j] ? '1' : '0';
  }
  return s;
}

Tensor random_mask(const Shape& shape, double keep_probability, heed::Generator& gen) {
  std::vector<bool> keep(static_cast<std::size_t>(heed::shape_numel(shape)));
  for (std::size_t i = 0; i < keep.size(); ++i) keep[i] = gen.uniform() < keep_probability;
  return heed::bool_tensor(keep, shape);
}

// Forward and the gradients of sum(out * g) for both paths; returns the largest difference.
double kernel_vs_reference(Tensor q, Tensor k, Tensor v, const Tensor& keep, int64_t block_size) {
  const nn::BlockLayout layout = nn::make_block_layout(keep, block_size);
  Tensor g = heed::randn({q.size(0), q.size(1), q.size(2), v.size(3)}, q.dtype());
  Tensor fast = nn::block_sparse_attention(q, k, v, layout);
  fast.backward(g);
  const std::vector<Tensor> fast_grads{q.grad(), k.grad(), v.grad()};
  q.zero_grad();
  k.zero_grad();
  v.zero_grad();
  Tensor slow = nn::sparse_attention_reference(q, k, v, keep).output;
  slow.backward(g);
  double diff = heed::max_abs_diff(fast, slow);
  diff = std::max(diff, heed::max_abs_diff(fast_grads[0], q.grad()));
  diff = std::max(diff, heed::max_abs_diff(fast_grads[1], k.grad()));
  diff = std::max(diff, heed::max_abs_diff(fast_grads[2], v.grad()));
  q.zero_grad();
  k.zero_grad();
  v.zero_grad();
  return diff;
}

}  // namespace

TEST_CASE("sparse attention: pattern masks on small cases, written out by hand") {
  // Strided, l = 3: the last 3 keys; every 3rd key back.
  CHECK(mask_string(nn::strided_local_mask(6, 3)) == "100000/110000/111000/011100/001110/000111");
  CHECK(mask_string(nn::strided_stride_mask(6, 3)) == "100000/010000/001000/100100/010010/001001");
  CHECK(mask_string(nn::strided_mask(6, 3)) == "100000/110000/111000/111100/011110/001111");
  // Fixed, l = 3: own block; summary column j mod 3 == 2 (c = 1), then c = 2.
  CHECK(mask_string(nn::fixed_block_mask(6, 3)) == "100000/110000/111000/000100/000110/000111");
  CHECK(mask_string(nn::fixed_summary_mask(6, 3, 1)) == "000000/000000/001000/001000/001000/001001");
  CHECK(mask_string(nn::fixed_summary_mask(6, 3, 2)) == "000000/010000/011000/011000/011010/011011");
  CHECK(mask_string(nn::fixed_mask(6, 3, 1)) == "100000/110000/111000/001100/001110/001111");
  // Local window w = 1, causal and not.
  CHECK(mask_string(nn::local_window_mask(5, 1)) == "10000/11000/01100/00110/00011");
  CHECK(mask_string(nn::local_window_mask(5, 1, false)) == "11000/11100/01110/00111/00011");
  CHECK(mask_string(nn::causal_keep_mask(3)) == "100/110/111");
  CHECK(mask_string(nn::mask_union({nn::local_window_mask(4, 0), nn::strided_stride_mask(4, 2)})) ==
        "1000/0100/1010/0101");
}

TEST_CASE("sparse attention: the block layout keeps exactly the tiles with a kept entry") {
  // Window 3 on 16 steps, tiles of 4: each query block keeps its diagonal tile (partly kept, causal) and
  // the tile before it (partly kept), except the first: 4 + 3 = 7 of 16 tiles.
  const nn::BlockLayout lay = nn::make_block_layout(nn::local_window_mask(16, 3), 4);
  CHECK(lay.query_blocks == 4);
  CHECK(lay.key_blocks == 4);
  CHECK(lay.kept_blocks() == 7);
  CHECK(lay.density() == doctest::Approx(7.0 / 16.0));
  CHECK(lay.row_start == std::vector<int64_t>{0, 1, 3, 5, 7});
  CHECK(lay.key_block == std::vector<int64_t>{0, 0, 1, 1, 2, 2, 3});
  CHECK(lay.full == std::vector<uint8_t>{0, 0, 0, 0, 0, 0, 0});
  // Causal on 7 steps with tiles of 3 (the last tile row and column are 1 wide): lower-triangular tiles,
  // the off-diagonal ones fully kept.
  const nn::BlockLayout causal = nn::make_block_layout(nn::causal_keep_mask(7), 3);
  CHECK(causal.query_blocks == 3);
  CHECK(causal.key_block == std::vector<int64_t>{0, 0, 1, 0, 1, 2});
  CHECK(causal.full == std::vector<uint8_t>{0, 1, 0, 1, 1, 1});
  // One pattern per head: (2, L, S).
  const nn::BlockLayout two = nn::make_block_layout(heed::stack({nn::fixed_block_mask(8, 4), nn::causal_keep_mask(8)}), 4);
  CHECK(two.heads == 2);
  CHECK(two.row_start == std::vector<int64_t>{0, 1, 2, 3, 5});
}

TEST_CASE("sparse attention: gradient checks of the reference path and the block-sparse kernel") {
  heed::manual_seed(21);
  Tensor q = heed::randn({2, 2, 7, 3}, DType::Float64).requires_grad_();
  Tensor k = heed::randn({2, 2, 7, 3}, DType::Float64).requires_grad_();
  Tensor v = heed::randn({2, 2, 7, 2}, DType::Float64).requires_grad_();
  const Tensor strided = nn::strided_mask(7, 3);
  check_grad([&](const std::vector<Tensor>& in) { return nn::sparse_attention_reference(in[0], in[1], in[2], strided).output; },
             {q, k, v}, "reference, strided");
  for (int64_t block : {1, 2, 3, 8}) {
    const nn::BlockLayout layout = nn::make_block_layout(strided, block);
    check_grad([&](const std::vector<Tensor>& in) { return nn::block_sparse_attention(in[0], in[1], in[2], layout); },
               {q, k, v}, "kernel, strided, block " + std::to_string(block));
  }
  // Per-head patterns (fixed on head 0, a local window on head 1) and a custom scale.
  const nn::BlockLayout per_head = nn::make_block_layout(heed::stack({nn::fixed_mask(7, 3, 1), nn::local_window_mask(7, 2)}), 2);
  check_grad([&](const std::vector<Tensor>& in) { return nn::block_sparse_attention(in[0], in[1], in[2], per_head, 0.7); },
             {q, k, v}, "kernel, per-head patterns");
  // Non-square (L = 5, S = 6) with a random mask and a fully masked row.
  heed::Generator gen(5);
  Tensor mask = random_mask({5, 6}, 0.5, gen);
  {
    heed::NoGradGuard no_grad;
    mask = heed::logical_and(mask, heed::bool_tensor({true, true, false, true, true}, {5, 1}));  // row 2: nothing
  }
  Tensor qs = heed::randn({1, 2, 5, 3}, DType::Float64).requires_grad_();
  Tensor ks = heed::randn({1, 2, 6, 3}, DType::Float64).requires_grad_();
  Tensor vs = heed::randn({1, 2, 6, 4}, DType::Float64).requires_grad_();
  const nn::BlockLayout rect = nn::make_block_layout(mask, 4);
  check_grad([&](const std::vector<Tensor>& in) { return nn::block_sparse_attention(in[0], in[1], in[2], rect); },
             {qs, ks, vs}, "kernel, L != S, random mask");
}

TEST_CASE("sparse attention: the block-sparse kernel equals the dense reference (fp64 1e-12, fp32 1e-5)") {
  heed::manual_seed(22);
  heed::Generator gen(6);
  for (DType dtype : {DType::Float64, DType::Float32}) {
    CAPTURE(heed::dtype_name(dtype));
    const double tol = dtype == DType::Float64 ? 1e-12 : 1e-5;
    const int64_t length = 37;
    Tensor q = heed::randn({2, 3, length, 8}, dtype).requires_grad_();
    Tensor k = heed::randn({2, 3, length, 8}, dtype).requires_grad_();
    Tensor v = heed::randn({2, 3, length, 5}, dtype).requires_grad_();
    const std::vector<std::pair<std::string, Tensor>> patterns{
        {"strided", nn::strided_mask(length, 6)},
        {"fixed", nn::fixed_mask(length, 6, 2)},
        {"local", nn::local_window_mask(length, 4)},
        {"causal", nn::causal_keep_mask(length)},
        {"random", random_mask({length, length}, 0.2, gen)},
        {"per-head", heed::stack({nn::strided_local_mask(length, 6), nn::strided_stride_mask(length, 6),
                                  nn::fixed_summary_mask(length, 6, 1)})}};
    for (const auto& [name, mask] : patterns)
      for (int64_t block : {1, 4, 8, 64}) {
        const std::string key = name;  // CAPTURE is a lambda: no structured binding in it (C++17)
        CAPTURE(key);
        CAPTURE(block);
        CHECK(kernel_vs_reference(q, k, v, mask, block) <= tol);
      }
    // L != S
    Tensor ks = heed::randn({2, 3, 20, 8}, dtype).requires_grad_();
    Tensor vs = heed::randn({2, 3, 20, 5}, dtype).requires_grad_();
    CHECK(kernel_vs_reference(q, ks, vs, random_mask({length, 20}, 0.3, gen), 8) <= tol);
  }
}

TEST_CASE("sparse attention: fully masked rows give zero output and zero gradient on both paths") {
  heed::manual_seed(23);
  Tensor q = heed::randn({1, 1, 4, 2}, DType::Float64).requires_grad_();
  Tensor k = heed::randn({1, 1, 4, 2}, DType::Float64).requires_grad_();
  Tensor v = heed::randn({1, 1, 4, 3}, DType::Float64).requires_grad_();
  // Rows 1 and 2 keep nothing; with tiles of 2, query block 0 keeps tile (0, 0) only for row 0.
  Tensor mask = heed::bool_tensor({true, false, false, false, false, false, false, false, false, false, false, false,
                                   true, true, false, true},
                                  {4, 4});
  for (bool kernel : {true, false}) {
    CAPTURE(kernel);
    Tensor out = kernel ? nn::block_sparse_attention(q, k, v, nn::make_block_layout(mask, 2))
                        : nn::sparse_attention_reference(q, k, v, mask).output;
    const auto o = out.to_vector<double>();
    for (int c = 0; c < 3; ++c) {
      CHECK(o[1 * 3 + c] == 0.0);
      CHECK(o[2 * 3 + c] == 0.0);
    }
    heed::sum(out * out).backward();
    const auto gq = q.grad().to_vector<double>(), gk = k.grad().to_vector<double>();
    for (int c = 0; c < 2; ++c) {
      CHECK(gq[1 * 2 + c] == 0.0);
      CHECK(gq[2 * 2 + c] == 0.0);
      CHECK(gk[2 * 2 + c] == 0.0);  // key 2 is never kept
      CHECK(std::isfinite(gq[0 * 2 + c]));
    }
    q.zero_grad();
    k.zero_grad();
    v.zero_grad();
  }
  // No kept entry at all: everything is zero.
  Tensor none = heed::zeros({4, 4}).to(DType::Bool);
  const nn::BlockLayout empty = nn::make_block_layout(none, 2);
  CHECK(empty.kept_blocks() == 0);
  CHECK(heed::max(heed::abs(nn::block_sparse_attention(q, k, v, empty))).item() == 0.0);
}

TEST_CASE("sparse attention: bad inputs throw naming the op and the shapes") {
  Tensor q = heed::zeros({1, 2, 6, 3}), k = heed::zeros({1, 2, 6, 3}), v = heed::zeros({1, 2, 6, 2});
  CHECK(error_of([] { nn::strided_mask(6, 0); }).find("strided_local_mask: stride must be positive") != std::string::npos);
  CHECK(error_of([] { nn::fixed_summary_mask(6, 3, 4); }).find("summary must be in [1, stride = 3]") !=
        std::string::npos);
  CHECK(error_of([] { nn::mask_union({nn::causal_keep_mask(3), nn::causal_keep_mask(4)}); }).find("mask 1") !=
        std::string::npos);
  CHECK(error_of([] { nn::make_block_layout(nn::causal_keep_mask(4), 0); }).find("block_size must be positive") !=
        std::string::npos);
  CHECK(error_of([] { nn::make_block_layout(heed::zeros({4, 4}), 2); }).find("must be Bool") != std::string::npos);
  const nn::BlockLayout wrong = nn::make_block_layout(nn::causal_keep_mask(5), 2);
  CHECK(error_of([&] { nn::block_sparse_attention(q, k, v, wrong); }).find("layout is for L = 5, S = 5") !=
        std::string::npos);
  CHECK(error_of([&] { nn::sparse_attention_reference(q, k, v, nn::causal_keep_mask(5)); }).find("[6, 6]") !=
        std::string::npos);
  CHECK(error_of([&] { nn::block_sparse_attention(q, k, heed::zeros({1, 2, 5, 2}), wrong); }).find("expected q") !=
        std::string::npos);
}

namespace {

// A small form of the spec's Task H: n = 12 random symbols from 10, a separator, the copy; every next
// token predicted by a one-layer decoder whose single attention head runs the block-sparse kernel. To
// predict the copy at position t the head must see position t - 12: the strided pattern with l = 6 keeps
// it ((i - j) mod 6 == 0), a local window of 6 does not (the spec's negative control); dense causal
// attention is the reference.
constexpr int64_t kCopyLength = 12, kSymbols = 10, kVocab = 11;

std::pair<Tensor, Tensor> copy_batch(int64_t batch, heed::Generator& gen) {
  std::vector<int64_t> in, tg;
  for (int64_t b = 0; b < batch; ++b) {
    std::vector<int64_t> seq(kCopyLength);
    for (auto& x : seq) x = gen.randint(0, kSymbols);
    seq.push_back(kSymbols);  // the separator
    seq.insert(seq.end(), seq.begin(), seq.begin() + kCopyLength);
    for (int64_t t = 0; t < 2 * kCopyLength; ++t) {
      in.push_back(seq[t]);
      tg.push_back(t >= kCopyLength ? seq[t + 1] : -100);
    }
  }
  return {heed::index_tensor(in, {batch, 2 * kCopyLength}), heed::index_tensor(tg, {batch, 2 * kCopyLength})};
}

struct SparseCopyModel : nn::Module {
  SparseCopyModel(const Tensor& pattern, int64_t dim) : Module("SparseCopyModel"), layout(nn::make_block_layout(pattern, 8)) {
    tokens = register_module("tokens", std::make_shared<nn::Embedding>(kVocab, dim));
    positions = register_module("positions", std::make_shared<nn::Embedding>(2 * kCopyLength, dim));
    q = register_module("q", std::make_shared<nn::Linear>(dim, dim));
    k = register_module("k", std::make_shared<nn::Linear>(dim, dim));
    v = register_module("v", std::make_shared<nn::Linear>(dim, dim));
    out = register_module("out", std::make_shared<nn::Linear>(dim, dim));
    norm1 = register_module("norm1", std::make_shared<nn::LayerNorm>(Shape{dim}));
    ff1 = register_module("ff1", std::make_shared<nn::Linear>(dim, 2 * dim));
    ff2 = register_module("ff2", std::make_shared<nn::Linear>(2 * dim, dim));
    norm2 = register_module("norm2", std::make_shared<nn::LayerNorm>(Shape{dim}));
    head = register_module("head", std::make_shared<nn::Linear>(dim, kVocab));
  }
  Tensor forward(const Tensor& ids) override {
    Tensor x = tokens->forward(ids) + positions->forward(heed::arange(0, 2.0 * kCopyLength, 1, DType::Int64));
    Tensor a = nn::block_sparse_attention(q->forward(x).unsqueeze(1), k->forward(x).unsqueeze(1),
                                          v->forward(x).unsqueeze(1), layout);
    x = norm1->forward(x + out->forward(a.squeeze(1)));
    x = norm2->forward(x + ff2->forward(heed::relu(ff1->forward(x))));
    return head->forward(x);
  }
  nn::BlockLayout layout;
  std::shared_ptr<nn::Embedding> tokens, positions;
  std::shared_ptr<nn::Linear> q, k, v, out, ff1, ff2, head;
  std::shared_ptr<nn::LayerNorm> norm1, norm2;
};

double train_copy(const Tensor& pattern, int64_t steps) {
  heed::manual_seed(51);
  heed::Generator gen(52);
  SparseCopyModel model(pattern, 32);
  heed::optim::Adam opt(model.parameters(), heed::optim::AdamOptions(3e-3));
  for (int64_t step = 0; step < steps; ++step) {
    auto [inputs, targets] = copy_batch(32, gen);
    opt.zero_grad();
    heed::cross_entropy(model(inputs), targets).backward();
    opt.step();
  }
  heed::NoGradGuard no_grad;
  auto [inputs, targets] = copy_batch(500, gen);
  const auto pred = heed::argmax(model(inputs), -1).to_vector<int64_t>(), tg = targets.to_vector<int64_t>();
  int64_t right = 0, total = 0;
  for (std::size_t i = 0; i < tg.size(); ++i)
    if (tg[i] >= 0) {
      ++total;
      right += pred[i] == tg[i];
    }
  return static_cast<double>(right) / static_cast<double>(total);
}

}  // namespace

TEST_CASE("[learning] sparse attention: small Task H, strided pattern copies like dense, local window fails (negative control)") {
  const int64_t length = 2 * kCopyLength, steps = 300;
  const double strided = train_copy(nn::strided_mask(length, 6), steps);
  const double dense = train_copy(nn::causal_keep_mask(length), steps);
  const double local = train_copy(nn::local_window_mask(length, 6), steps);
  MESSAGE("small Task H (n = 12, 1 layer, 1 head, block-sparse kernel, "
          << steps << " steps): copy-half token accuracy, strided l = 6: " << strided << ", dense causal: " << dense
          << ", local window w = 6: " << local);
  CHECK(strided >= 0.98);
  CHECK(strided >= dense - 0.02);  // the spec: within 2 points of dense attention
  CHECK(local <= 0.2);  // chance is 0.1: the source token is outside every query's window
}

TEST_CASE("sparse attention: the kernel's names in heed::nn are the ops of heed/ops/attention.hpp") {
  static_assert(std::is_same_v<nn::BlockLayout, heed::BlockLayout>);
  CHECK((&nn::make_block_layout == &heed::make_block_layout));
  CHECK((&nn::block_sparse_attention == &heed::block_sparse_attention));
}
