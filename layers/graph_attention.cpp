// layers/graph_attention.cpp — GATConv and GATv2Conv over a dense adjacency, composed from recorded heed ops (linear,
// matmul, leaky_relu, masked_softmax, dropout), so its gradient is theirs. Equations in
// heed/nn/graph_attention.hpp.
#include "heed/nn/graph_attention.hpp"

#include <cmath>

#include "heed/autograd.hpp"
#include "heed/init.hpp"
#include "heed/ops.hpp"

namespace heed::nn {

namespace {

// x (n, F) or (B, n, F); adjacency Bool (n, n), or (B, n, n) for a batch.
void check_inputs(const char* layer, int64_t f, const Tensor& x, const Tensor& adjacency) {
  HEED_CHECK(x.defined() && (x.dim() == 2 || x.dim() == 3) && x.size(-1) == f,
             "{}(in_channels={}): x must be (n, {}) or (B, n, {}), got {}", layer, f, f, f,
             x.defined() ? shape_str(x.shape()) : "undefined");
  const bool batched = x.dim() == 3;
  const int64_t b = batched ? x.size(0) : 1, n = x.size(-2);
  HEED_CHECK(adjacency.defined() && adjacency.dtype() == DType::Bool &&
                 (adjacency.shape() == Shape({n, n}) || (batched && adjacency.shape() == Shape({b, n, n}))),
             "{}: adjacency must be Bool of shape [{}, {}]{} for x {}, got {} of shape {}", layer, n, n,
             batched ? fmt::format(" or [{}, {}, {}]", b, n, n) : "", shape_str(x.shape()),
             adjacency.defined() ? dtype_name(adjacency.dtype()) : "undefined",
             adjacency.defined() ? shape_str(adjacency.shape()) : "undefined");
}

// The keep-mask over (B, K, n, n) scores: adjacency (+ the diagonal), broadcast over the heads.
Tensor keep_mask(const Tensor& adjacency, int64_t n, bool self_loops) {
  Tensor keep = adjacency;
  if (self_loops) keep = logical_or(keep, eye(n).to(DType::Bool));
  return keep.dim() == 3 ? keep.unsqueeze(1) : keep;
}

void check_options(const char* layer, const GATConvOptions& options) {
  HEED_CHECK(options.in_channels() > 0 && options.out_channels() > 0 && options.heads() > 0,
             "{}: in_channels ({}), out_channels ({}) and heads ({}) must be positive", layer, options.in_channels(),
             options.out_channels(), options.heads());
  HEED_CHECK(options.dropout() >= 0 && options.dropout() < 1 && options.input_dropout() >= 0 &&
                 options.input_dropout() < 1,
             "{}: dropout ({}) and input_dropout ({}) must be in [0, 1)", layer, options.dropout(),
             options.input_dropout());
}

}  // namespace

GATConv::GATConv(const GATConvOptions& options) : Module("GATConv"), options_(options) {
  check_options("GATConv", options);
  const int64_t k = options.heads(), c = options.out_channels();
  lin = register_module("lin", std::make_shared<Linear>(options.in_channels(), k * c, false));
  att_src = register_parameter("att_src", empty({1, k, c}));
  att_dst = register_parameter("att_dst", empty({1, k, c}));
  if (options.bias()) bias = register_parameter("bias", empty({options.concat() ? k * c : c}));
  reset();
}

// PyG: glorot(lin.weight), glorot(att_src), glorot(att_dst), zeros(bias). lin has no bias, so re-drawing its
// weight here re-initializes the child too (no Module::reset(), whose Linear draw would be overwritten).
void GATConv::reset() {
  init::xavier_uniform_(lin->weight);
  const double a = std::sqrt(6.0 / static_cast<double>(options_.heads() + options_.out_channels()));
  init::uniform_(att_src, -a, a);
  init::uniform_(att_dst, -a, a);
  if (bias.defined()) init::zeros_(bias);
}

GATConvOutput GATConv::forward(const Tensor& x, const Tensor& adjacency) {
  const int64_t f = options_.in_channels(), k = options_.heads(), c = options_.out_channels();
  check_inputs("GATConv", f, x, adjacency);
  const bool batched = x.dim() == 3;
  const int64_t b = batched ? x.size(0) : 1, n = x.size(-2);

  Tensor h = batched ? x : x.unsqueeze(0);                                       // (B, n, F)
  h = dropout(h, options_.input_dropout(), is_training());
  Tensor z = lin->forward(h).reshape({b, n, k, c}).permute({0, 2, 1, 3});         // (B, K, n, F')
  Tensor score_dst = matmul(z, att_dst.reshape({k, c, 1}));                      // a_dst . z_i: (B, K, n, 1)
  Tensor score_src = matmul(z, att_src.reshape({k, c, 1})).transpose(2, 3);      // a_src . z_j: (B, K, 1, n)
  Tensor e = leaky_relu(score_dst + score_src, options_.negative_slope());        // (B, K, n, n)

  const Tensor keep = keep_mask(adjacency, n, options_.add_self_loops());
  Tensor alpha = dropout(masked_softmax(e, keep, -1), options_.dropout(), is_training());
  Tensor out = matmul(alpha, z);                                                  // (B, K, n, F')
  out = options_.concat() ? out.permute({0, 2, 1, 3}).reshape({b, n, k * c}) : mean(out, {1});
  if (bias.defined()) out = out + bias;
  if (!batched) return {out.squeeze(0), alpha.squeeze(0)};
  return {out, alpha};
}

std::string GATConv::extra_repr() const {
  std::string s = fmt::format("{}, {}, heads={}", options_.in_channels(), options_.out_channels(), options_.heads());
  if (!options_.concat()) s += ", concat=False";
  if (options_.dropout() > 0) s += fmt::format(", dropout={}", options_.dropout());
  return s;
}

GATv2Conv::GATv2Conv(const GATv2ConvOptions& options) : Module("GATv2Conv"), options_(options) {
  check_options("GATv2Conv", options);
  const int64_t k = options.heads(), c = options.out_channels();
  lin_l = register_module("lin_l", std::make_shared<Linear>(options.in_channels(), k * c, options.bias()));
  lin_r = register_module("lin_r", std::make_shared<Linear>(options.in_channels(), k * c, options.bias()));
  att = register_parameter("att", empty({1, k, c}));
  if (options.bias()) bias = register_parameter("bias", empty({options.concat() ? k * c : c}));
  reset();
}

void GATv2Conv::reset() {  // PyG: Linear(weight_initializer='glorot') for lin_l / lin_r, glorot(att), zeros(bias)
  Module::reset();        // lin_l, lin_r; their biases: PyG's Linear draws uniform(+-1/sqrt(in_channels)), as heed's
  init::xavier_uniform_(lin_l->weight);
  init::xavier_uniform_(lin_r->weight);
  const double a = std::sqrt(6.0 / static_cast<double>(options_.heads() + options_.out_channels()));
  init::uniform_(att, -a, a);
  if (bias.defined()) init::zeros_(bias);
}

GATConvOutput GATv2Conv::forward(const Tensor& x, const Tensor& adjacency) {
  const int64_t f = options_.in_channels(), k = options_.heads(), c = options_.out_channels();
  check_inputs("GATv2Conv", f, x, adjacency);
  const bool batched = x.dim() == 3;
  const int64_t b = batched ? x.size(0) : 1, n = x.size(-2);

  Tensor h = batched ? x : x.unsqueeze(0);                                        // (B, n, F)
  h = dropout(h, options_.input_dropout(), is_training());
  Tensor xl = lin_l->forward(h).reshape({b, n, k, c}).permute({0, 2, 1, 3});     // x^l_j: (B, K, n, F')
  Tensor xr = lin_r->forward(h).reshape({b, n, k, c}).permute({0, 2, 1, 3});     // x^r_i: (B, K, n, F')
  Tensor pre = xr.unsqueeze(3) + xl.unsqueeze(2);                                 // x^r_i + x^l_j: (B, K, n, n, F')
  Tensor e = sum(leaky_relu(pre, options_.negative_slope()) * att.reshape({k, 1, 1, c}), {4});  // (B, K, n, n)

  const Tensor keep = keep_mask(adjacency, n, options_.add_self_loops());
  Tensor alpha = dropout(masked_softmax(e, keep, -1), options_.dropout(), is_training());
  Tensor out = matmul(alpha, xl);                                                 // (B, K, n, F')
  out = options_.concat() ? out.permute({0, 2, 1, 3}).reshape({b, n, k * c}) : mean(out, {1});
  if (bias.defined()) out = out + bias;
  if (!batched) return {out.squeeze(0), alpha.squeeze(0)};
  return {out, alpha};
}

std::string GATv2Conv::extra_repr() const {
  std::string s = fmt::format("{}, {}, heads={}", options_.in_channels(), options_.out_channels(), options_.heads());
  if (!options_.concat()) s += ", concat=False";
  if (options_.dropout() > 0) s += fmt::format(", dropout={}", options_.dropout());
  return s;
}

}  // namespace heed::nn
