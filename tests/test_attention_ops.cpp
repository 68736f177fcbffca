// The attention kernels as ops (heed/ops/attention.hpp): reachable from heed/ops.hpp alone, without any
// layer header — this file includes nothing from layers/ — under their heed:: names, with a gradient
// check of each (float64) and a check that they reject bad input naming the op. The kernels' full tests
// (against the naive and reference paths, masks, padding, strided views) are in test_flash_attention.cpp,
// test_sparse_attention.cpp and test_linear_attention.cpp, through the heed::nn names.
#include <doctest/doctest.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "heed/error.hpp"
#include "heed/gradcheck.hpp"
#include "heed/ops.hpp"
#include "heed/random.hpp"
#include "heed/tensor.hpp"

namespace {

using heed::DType;
using heed::Tensor;

void check_grad_of(const heed::GradcheckFn& f, const std::vector<Tensor>& inputs) {
  const heed::GradcheckResult r = heed::gradcheck(f, inputs);
  CHECK_MESSAGE(r.ok, r.report);
  CHECK(r.elements_checked > 0);
}

std::string error_text(const std::function<void()>& f) {
  try {
    f();
  } catch (const heed::Error& e) {
    return e.what();
  }
  return "";
}

// (L, S) keep-mask with a few holes and query row 0 fully masked.
Tensor holes(int64_t L, int64_t S) {
  std::vector<bool> m(static_cast<std::size_t>(L * S));
  for (std::size_t i = 0; i < m.size(); ++i) m[i] = i >= static_cast<std::size_t>(S) && (i * 7 + 3) % 5 != 0;
  return heed::bool_tensor(m, {L, S});
}

}  // namespace

TEST_CASE("attention ops: heed::flash_attention from heed/ops.hpp, gradcheck with a mask, a bias and causal") {
  heed::manual_seed(31);
  Tensor q = heed::randn({2, 4, 3}, DType::Float64).requires_grad_();
  Tensor k = heed::randn({2, 5, 3}, DType::Float64).requires_grad_();
  Tensor v = heed::randn({2, 5, 2}, DType::Float64).requires_grad_();
  Tensor bias = heed::randn({4, 5}, DType::Float64).requires_grad_();
  const Tensor keep = holes(4, 5);
  check_grad_of(
      [&](const std::vector<Tensor>& in) {
        return heed::flash_attention(in[0], in[1], in[2], keep, in[3], std::nullopt, /*causal=*/true);
      },
      {q, k, v, bias});
  CHECK(error_text([&] { heed::flash_attention(q, heed::narrow(k, 2, 0, 2), v); }).find("flash_attention: ") == 0);
}

TEST_CASE("attention ops: heed::block_sparse_attention over heed::make_block_layout, gradcheck") {
  heed::manual_seed(32);
  Tensor q = heed::randn({1, 2, 6, 3}, DType::Float64).requires_grad_();
  Tensor k = heed::randn({1, 2, 6, 3}, DType::Float64).requires_grad_();
  Tensor v = heed::randn({1, 2, 6, 2}, DType::Float64).requires_grad_();
  const heed::BlockLayout layout = heed::make_block_layout(holes(6, 6), 4);
  CHECK(layout.query_blocks == 2);
  CHECK(layout.kept_blocks() > 0);
  check_grad_of([&](const std::vector<Tensor>& in) { return heed::block_sparse_attention(in[0], in[1], in[2], layout); },
                {q, k, v});
  const heed::BlockLayout wrong = heed::make_block_layout(holes(5, 5), 4);
  CHECK(error_text([&] { heed::block_sparse_attention(q, k, v, wrong); }).find("block_sparse_attention: ") == 0);
}

TEST_CASE("attention ops: heed::causal_linear_attention, gradcheck with key padding") {
  heed::manual_seed(33);
  Tensor q = heed::randn({2, 2, 5, 3}, DType::Float64).requires_grad_();
  Tensor k = heed::randn({2, 2, 5, 3}, DType::Float64).requires_grad_();
  Tensor v = heed::randn({2, 2, 5, 2}, DType::Float64).requires_grad_();
  const Tensor key_keep = heed::bool_tensor({true, true, false, true, true, true, true, true, true, false}, {2, 5});
  check_grad_of(
      [&](const std::vector<Tensor>& in) { return heed::causal_linear_attention(in[0], in[1], in[2], key_keep); },
      {q, k, v});
  CHECK(heed::kLinearAttentionEps == 1e-6);
  CHECK(error_text([&] { heed::causal_linear_attention(q, heed::narrow(k, 2, 0, 4), heed::narrow(v, 2, 0, 4)); })
            .find("causal_linear_attention: ") == 0);
}
