// layers/linear_attention.cpp — linear attention (docs/attention-spec.md M9): the non-causal and parallel forms
// composed from recorded ops, and the multi-head LinearAttention module. Equations in
// heed/nn/linear_attention.hpp; the causal RNN form is an op (framework/ops/linear_attention.cpp).
#include "heed/nn/linear_attention.hpp"

#include <string>

#include "heed/init.hpp"
#include "heed/ops.hpp"

namespace heed::nn {
namespace {

std::string shape_or_undefined(const Tensor& t) { return t.defined() ? shape_str(t.shape()) : "undefined"; }

// q (N, H, L, d), k (N, H, S, d), v (N, H, S, m), key_keep (N, S) Bool or undefined.
void check_qkv(const char* op, const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& key_keep) {
  HEED_CHECK(q.defined() && k.defined() && v.defined() && q.dim() == 4 && k.dim() == 4 && v.dim() == 4,
             "{}: expected q (N, H, L, d), k (N, H, S, d), v (N, H, S, m); got q {}, k {}, v {}", op,
             shape_or_undefined(q), shape_or_undefined(k), shape_or_undefined(v));
  HEED_CHECK(is_floating(q.dtype()) && q.dtype() == k.dtype() && q.dtype() == v.dtype(),
             "{}: q, k, v must be Float32 or Float64 of one dtype; got {}, {}, {}", op, dtype_name(q.dtype()),
             dtype_name(k.dtype()), dtype_name(v.dtype()));
  HEED_CHECK(q.size(0) == k.size(0) && q.size(0) == v.size(0) && q.size(1) == k.size(1) && q.size(1) == v.size(1) &&
                 q.size(3) == k.size(3) && k.size(2) == v.size(2),
             "{}: shapes do not fit q (N, H, L, d), k (N, H, S, d), v (N, H, S, m): q {}, k {}, v {}", op,
             shape_str(q.shape()), shape_str(k.shape()), shape_str(v.shape()));
  if (key_keep.defined())
    HEED_CHECK(key_keep.dtype() == DType::Bool && key_keep.shape() == Shape({k.size(0), k.size(2)}),
               "{}: key_keep must be Bool of shape [{}, {}] (N, S) for k {}, got {} of shape {}", op, k.size(0),
               k.size(2), shape_str(k.shape()), dtype_name(key_keep.dtype()), shape_str(key_keep.shape()));
}

// phi(K) with padded keys set to zero: (N, H, S, d).
Tensor key_features(const Tensor& k, const Tensor& key_keep) {
  Tensor kf = linear_attention_feature_map(k);
  if (!key_keep.defined()) return kf;
  Tensor keep = key_keep.to(k.dtype()).reshape({k.size(0), 1, k.size(2), 1});
  return kf * keep;
}

}  // namespace

Tensor linear_attention_feature_map(const Tensor& x) { return elu(x) + 1.0; }

Tensor linear_attention(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& key_keep, double eps) {
  check_qkv("linear_attention", q, k, v, key_keep);
  Tensor qf = linear_attention_feature_map(q);                 // (N, H, L, d)
  Tensor kf = key_features(k, key_keep);                       // (N, H, S, d)
  Tensor kv = matmul(kf.transpose(-1, -2), v);                 // sum_j phi(K_j) V_j^T: (N, H, d, m)
  Tensor z = sum(kf, {2}, true);                               // sum_j phi(K_j): (N, H, 1, d)
  Tensor den = sum(qf * z, {3}, true) + eps;                   // (N, H, L, 1)
  return matmul(qf, kv) / den;
}

LinearAttentionOutput linear_attention_parallel(const Tensor& q, const Tensor& k, const Tensor& v,
                                                const Tensor& keep_mask, const Tensor& key_keep, double eps) {
  check_qkv("linear_attention_parallel", q, k, v, key_keep);
  Tensor scores = matmul(linear_attention_feature_map(q), key_features(k, key_keep).transpose(-1, -2));  // (N,H,L,S)
  if (keep_mask.defined()) {
    HEED_CHECK(keep_mask.dtype() == DType::Bool,
               "linear_attention_parallel: keep_mask must be Bool, got {} of shape {}", dtype_name(keep_mask.dtype()),
               shape_str(keep_mask.shape()));
    scores = scores * keep_mask.to(q.dtype());  // masked products are exactly 0 and pass no gradient
  }
  Tensor weights = scores / (sum(scores, {3}, true) + eps);
  return {matmul(weights, v), weights};
}

// ---- the module -----------------------------------------------------------------------------------------

LinearAttention::LinearAttention(const LinearAttentionOptions& options) : Module("LinearAttention"), options_(options) {
  const int64_t e = options.embed_dim(), h = options.num_heads();
  HEED_CHECK(e > 0 && h > 0 && e % h == 0,
             "LinearAttention: embed_dim ({}) must be positive and divisible by num_heads ({})", e, h);
  HEED_CHECK(options.eps() > 0, "LinearAttention: eps must be positive, got {}", options.eps());
  in_proj_weight = register_parameter("in_proj_weight", empty({3 * e, e}));
  if (options.bias()) in_proj_bias = register_parameter("in_proj_bias", empty({3 * e}));
  out_proj = register_module("out_proj", std::make_shared<Linear>(e, e, options.bias()));
  reset();
}

void LinearAttention::reset() {  // PyTorch MultiheadAttention._reset_parameters
  init::xavier_uniform_(in_proj_weight);
  if (in_proj_bias.defined()) init::zeros_(in_proj_bias);
  out_proj->reset();
  if (out_proj->bias.defined()) init::zeros_(out_proj->bias);
}

LinearAttentionOutput LinearAttention::forward(const Tensor& query, const Tensor& key, const Tensor& value,
                                               const Tensor& key_keep, bool need_weights) {
  const int64_t e = options_.embed_dim(), h = options_.num_heads(), hd = e / h;
  HEED_CHECK(query.defined() && key.defined() && value.defined() && query.dim() == 3 && key.dim() == 3 &&
                 value.dim() == 3 && query.size(2) == e && key.size(2) == e && value.size(2) == e &&
                 query.size(0) == key.size(0) && key.size(0) == value.size(0) && key.size(1) == value.size(1),
             "LinearAttention(embed_dim={}): expected query (N, L, {}), key and value (N, S, {}); got {}, {}, {}", e,
             e, e, shape_or_undefined(query), shape_or_undefined(key), shape_or_undefined(value));
  HEED_CHECK(!options_.causal() || query.size(1) == key.size(1),
             "LinearAttention(causal): query and key must have one length; got query {}, key {}",
             shape_str(query.shape()), shape_str(key.shape()));
  const int64_t n = query.size(0), l = query.size(1), s = key.size(1);
  auto project = [&](const Tensor& x, int64_t part, int64_t len) {
    Tensor w = narrow(in_proj_weight, 0, part * e, e);
    Tensor b = in_proj_bias.defined() ? narrow(in_proj_bias, 0, part * e, e) : Tensor();
    return linear(x, w, b).reshape({n, len, h, hd}).permute({0, 2, 1, 3});  // (N, H, len, hd)
  };
  Tensor q = project(query, 0, l), k = project(key, 1, s), v = project(value, 2, s);
  LinearAttentionOutput heads;
  if (need_weights) {
    Tensor causal_keep;
    if (options_.causal()) causal_keep = le(arange(s).unsqueeze(0), arange(l).unsqueeze(1));  // j <= i
    heads = linear_attention_parallel(q, k, v, causal_keep, key_keep, options_.eps());
  } else {
    heads.output = options_.causal() ? causal_linear_attention(q, k, v, key_keep, options_.eps())
                                     : linear_attention(q, k, v, key_keep, options_.eps());
  }
  Tensor merged = heads.output.permute({0, 2, 1, 3}).reshape({n, l, e});
  return {out_proj->forward(merged), heads.weights};
}

Tensor LinearAttention::forward(const Tensor& x) { return forward(x, x, x).output; }

std::string LinearAttention::extra_repr() const {
  std::string s = fmt::format("embed_dim={}, num_heads={}", options_.embed_dim(), options_.num_heads());
  if (options_.causal()) s += ", causal=True";
  if (!options_.bias()) s += ", bias=False";
  return s;
}

}  // namespace heed::nn
