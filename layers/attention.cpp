// layers/attention.cpp — keep-masks, scaled_dot_product_attention (kernel choice and the naive kernel)
// and MultiheadAttention. The naive kernel is composed from recorded ops (matmul, masked_softmax,
// dropout), so its gradient is theirs; the flash kernel is its own op (framework/ops/flash_attention.cpp).
#include "heed/nn/attention.hpp"

#include <algorithm>
#include <cmath>
#include <initializer_list>
#include <limits>

#include "heed/autograd.hpp"
#include "heed/init.hpp"
#include "heed/ops.hpp"

namespace heed::nn {
namespace {

std::string describe(const Tensor& t) {
  return t.defined() ? fmt::format("{} {}", dtype_name(t.dtype()), shape_str(t.shape())) : std::string("undefined");
}

// True when `t` broadcasts to `target` without growing it.
bool broadcasts_to(const Tensor& t, const Shape& target) {
  if (t.dim() > static_cast<int64_t>(target.size())) return false;
  for (int64_t i = 1; i <= t.dim(); ++i) {
    const int64_t a = t.size(-i), want = target[target.size() - static_cast<std::size_t>(i)];
    if (a != 1 && a != want) return false;
  }
  return true;
}

// The broadcast of the axes before the last two of each tensor; false when they do not broadcast.
bool broadcast_leading(std::initializer_list<const Tensor*> ts, Shape& batch) {
  std::size_t nd = 0;
  for (const Tensor* t : ts) nd = std::max<std::size_t>(nd, static_cast<std::size_t>(t->dim() - 2));
  batch.assign(nd, 1);
  for (const Tensor* t : ts)
    for (int64_t i = 3; i <= t->dim(); ++i) {
      int64_t& d = batch[nd - static_cast<std::size_t>(i - 2)];
      const int64_t e = t->size(-i);
      if (e != 1 && d != 1 && e != d) return false;
      if (e != 1) d = e;
    }
  return true;
}

}  // namespace

// ---- masks -------------------------------------------------------------------------------------------

Tensor causal_keep_mask(int64_t L, int64_t S, bool bottom_right) {
  HEED_CHECK(L >= 0 && S >= 0, "causal_keep_mask: sizes must be non-negative, got L={} S={}", L, S);
  Tensor mask = make_tensor({L, S}, DType::Bool);
  uint8_t* m = mask.data<uint8_t>();
  const int64_t diagonal = bottom_right ? S - L : 0;
  for (int64_t i = 0; i < L; ++i)
    for (int64_t j = 0; j < S; ++j) m[i * S + j] = j <= i + diagonal;
  return mask;
}

Tensor lengths_keep_mask(const Tensor& lengths, int64_t S) {
  HEED_CHECK(lengths.defined() && lengths.dtype() == DType::Int64 && lengths.dim() == 1,
             "lengths_keep_mask: lengths must be Int64 of shape (N), got {}", describe(lengths));
  HEED_CHECK(S >= 0, "lengths_keep_mask: S must be non-negative, got {}", S);
  const std::vector<int64_t> len = lengths.to_vector<int64_t>();
  const int64_t n = lengths.size(0);
  Tensor mask = make_tensor({n, S}, DType::Bool);
  uint8_t* m = mask.data<uint8_t>();
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < S; ++j) m[i * S + j] = j < len[static_cast<std::size_t>(i)];
  return mask;
}

Tensor keep_mask_from_torch_blocked(const Tensor& blocked) {
  HEED_CHECK(blocked.defined() && blocked.dtype() == DType::Bool,
             "keep_mask_from_torch_blocked: expected a Bool mask (true = not allowed), got {}", describe(blocked));
  return logical_not(blocked);
}

KeepMaskAndBias keep_mask_from_torch_additive(const Tensor& additive) {
  HEED_CHECK(additive.defined() && is_floating(additive.dtype()),
             "keep_mask_from_torch_additive: expected a float (additive) mask, got {}; for a Bool mask use "
             "keep_mask_from_torch_blocked",
             describe(additive));
  const Tensor values = additive.detach();
  Tensor keep = gt(values, -std::numeric_limits<double>::infinity());
  return {keep, masked_fill(values, logical_not(keep), 0.0)};
}

Tensor combine_keep_masks(const Tensor& a, const Tensor& b) {
  if (!a.defined()) return b;
  if (!b.defined()) return a;
  HEED_CHECK(a.dtype() == DType::Bool && b.dtype() == DType::Bool,
             "combine_keep_masks: both masks must be Bool, got {} and {}", describe(a), describe(b));
  return logical_and(a, b);
}

// ---- scaled dot-product attention -----------------------------------------------------------------------

AttentionOutput scaled_dot_product_attention(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& keep_mask,
                                             const Tensor& bias, const SdpaOptions& options) {
  const char* op = "scaled_dot_product_attention";
  HEED_CHECK(q.defined() && k.defined() && v.defined() && q.dim() >= 2 && k.dim() >= 2 && v.dim() >= 2 &&
                 q.size(-1) == k.size(-1) && k.size(-2) == v.size(-2),
             "{}: expected q (..., L, E), k (..., S, E), v (..., S, Ev), got q {}, k {}, v {}", op, describe(q),
             describe(k), describe(v));
  HEED_CHECK(is_floating(q.dtype()) && q.dtype() == k.dtype() && q.dtype() == v.dtype(),
             "{}: q, k and v must share one float dtype, got q {}, k {}, v {}", op, describe(q), describe(k),
             describe(v));
  const int64_t L = q.size(-2), S = k.size(-2);
  Shape batch;
  HEED_CHECK(broadcast_leading({&q, &k, &v}, batch),
             "{}: the leading (batch) axes of q {}, k {} and v {} do not broadcast", op, shape_str(q.shape()),
             shape_str(k.shape()), shape_str(v.shape()));
  Shape scores_shape = batch;
  scores_shape.push_back(L);
  scores_shape.push_back(S);
  if (keep_mask.defined())
    HEED_CHECK(keep_mask.dtype() == DType::Bool && broadcasts_to(keep_mask, scores_shape),
               "{}: keep_mask must be Bool and broadcast to the scores {} (q {}, k {}), got {}", op,
               shape_str(scores_shape), shape_str(q.shape()), shape_str(k.shape()), describe(keep_mask));
  if (bias.defined())
    HEED_CHECK(bias.dtype() == q.dtype() && broadcasts_to(bias, scores_shape),
               "{}: bias must be {} and broadcast to the scores {} (q {}, k {}), got {}", op, dtype_name(q.dtype()),
               shape_str(scores_shape), shape_str(q.shape()), shape_str(k.shape()), describe(bias));
  HEED_CHECK(options.dropout() >= 0.0 && options.dropout() < 1.0, "{}: dropout must be in [0, 1), got {}", op,
             options.dropout());

  AttentionKernel kernel = options.kernel();
  if (kernel == AttentionKernel::Auto)
    kernel = options.need_weights() || options.dropout_active() ? AttentionKernel::Naive : AttentionKernel::Flash;
  if (kernel == AttentionKernel::Flash) {
    HEED_CHECK(!options.need_weights() && !options.dropout_active(),
               "{}: the Flash kernel neither returns weights nor applies dropout; use AttentionKernel::Naive or Auto",
               op);
    return {flash_attention(q, k, v, keep_mask, bias, options.scale(), options.causal(), options.bottom_right()),
            Tensor()};
  }

  // Naive: P = softmax(scale q kᵀ + bias) over the kept keys; out = dropout(P) v.
  const double scale = options.scale() ? *options.scale() : 1.0 / std::sqrt(static_cast<double>(q.size(-1)));
  Tensor scores = matmul(q * scale, k.transpose(-1, -2));
  if (bias.defined()) scores = scores + bias;
  Tensor keep = keep_mask;
  if (options.causal()) keep = combine_keep_masks(keep, causal_keep_mask(L, S, options.bottom_right()));
  Tensor weights = keep.defined() ? masked_softmax(scores, keep, -1) : softmax(scores, -1);
  if (options.dropout_active()) weights = dropout(weights, options.dropout(), true, options.generator());
  Tensor out = matmul(weights, v);
  return {out, options.need_weights() ? weights : Tensor()};
}

// ---- multi-head attention ----------------------------------------------------------------------------

MultiheadAttention::MultiheadAttention(const MultiheadAttentionOptions& options)
    : Module("MultiheadAttention"), options_(options) {
  const int64_t E = options.embed_dim(), H = options.num_heads();
  HEED_CHECK(E > 0 && H > 0 && E % H == 0,
             "MultiheadAttention: embed_dim must be a positive multiple of num_heads, got embed_dim={} num_heads={}", E,
             H);
  HEED_CHECK(options.kdim() > 0 && options.vdim() > 0, "MultiheadAttention: kdim and vdim must be positive, got {} {}",
             options.kdim(), options.vdim());
  HEED_CHECK(options.dropout() >= 0.0 && options.dropout() < 1.0, "MultiheadAttention: dropout must be in [0, 1), got {}",
             options.dropout());
  if (options.same_qkv_dims()) {
    in_proj_weight = register_parameter("in_proj_weight", empty({3 * E, E}));
  } else {
    q_proj_weight = register_parameter("q_proj_weight", empty({E, E}));
    k_proj_weight = register_parameter("k_proj_weight", empty({E, options.kdim()}));
    v_proj_weight = register_parameter("v_proj_weight", empty({E, options.vdim()}));
  }
  if (options.bias()) in_proj_bias = register_parameter("in_proj_bias", empty({3 * E}));
  out_proj = register_module("out_proj", std::make_shared<Linear>(E, E, options.bias()));
  reset();
}

void MultiheadAttention::reset() {
  if (in_proj_weight.defined()) {
    init::xavier_uniform_(in_proj_weight);
  } else {
    init::xavier_uniform_(q_proj_weight);
    init::xavier_uniform_(k_proj_weight);
    init::xavier_uniform_(v_proj_weight);
  }
  if (in_proj_bias.defined()) init::zeros_(in_proj_bias);
  out_proj->reset();
  if (out_proj->bias.defined()) init::zeros_(out_proj->bias);
}

// x (N, T, d) -> (N, H, T, hd) through rows [which·E, (which+1)·E) of the stacked projection.
Tensor MultiheadAttention::project(const Tensor& x, int64_t which, const char* arg) const {
  const int64_t E = options_.embed_dim(), H = options_.num_heads();
  const int64_t d = which == 0 ? E : which == 1 ? options_.kdim() : options_.vdim();
  HEED_CHECK(x.defined() && x.dim() == 3 && x.size(2) == d,
             "MultiheadAttention(embed_dim={}, num_heads={}): {} must have shape (N, T, {}), got {}", E, H, arg, d,
             describe(x));
  const Tensor weight = in_proj_weight.defined() ? narrow(in_proj_weight, 0, which * E, E)
                        : which == 0             ? q_proj_weight
                        : which == 1             ? k_proj_weight
                                                 : v_proj_weight;
  const Tensor bias = in_proj_bias.defined() ? narrow(in_proj_bias, 0, which * E, E) : Tensor();
  return linear(x, weight, bias).reshape({x.size(0), x.size(1), H, E / H}).transpose(1, 2);
}

AttentionOutput MultiheadAttention::attend(const Tensor& query, const Tensor& q_heads, const Tensor& k_heads,
                                           const Tensor& v_heads, const MhaArgs& args) {
  const int64_t E = options_.embed_dim(), H = options_.num_heads();
  const int64_t N = q_heads.size(0), L = q_heads.size(2), S = k_heads.size(2);
  const std::string who = fmt::format("MultiheadAttention(embed_dim={}, num_heads={})", E, H);
  Tensor keep;
  if (args.key_padding.defined()) {
    HEED_CHECK(args.key_padding.dtype() == DType::Bool && args.key_padding.shape() == Shape({N, S}),
               "{}: key_padding must be a Bool keep-mask of shape [{}, {}] (N, S), got {}", who, N, S,
               describe(args.key_padding));
    keep = args.key_padding.reshape({N, 1, 1, S});
  }
  // (L, S), (N*H, L, S) or (N, H, L, S) -> something that broadcasts to (N, H, L, S)
  const auto scores_arg = [&](const Tensor& t, const char* name) -> Tensor {
    if (!t.defined()) return t;
    const Shape& s = t.shape();
    if (s == Shape({L, S}) || s == Shape({N, H, L, S})) return t;
    if (s == Shape({N * H, L, S})) return t.reshape({N, H, L, S});
    throw Error(fmt::format("{}: {} must have shape [{}, {}], [{}, {}, {}] or [{}, {}, {}, {}], got {}", who, name, L, S,
                            N * H, L, S, N, H, L, S, describe(t)));
  };
  if (args.attn_mask.defined())
    HEED_CHECK(args.attn_mask.dtype() == DType::Bool, "{}: attn_mask must be a Bool keep-mask, got {}", who,
               describe(args.attn_mask));
  if (args.attn_bias.defined())
    HEED_CHECK(args.attn_bias.dtype() == query.dtype(), "{}: attn_bias must have the query's dtype {}, got {}", who,
               dtype_name(query.dtype()), describe(args.attn_bias));
  keep = combine_keep_masks(keep, scores_arg(args.attn_mask, "attn_mask"));
  const Tensor bias = scores_arg(args.attn_bias, "attn_bias");

  SdpaOptions sdpa;
  sdpa.causal(args.causal, args.bottom_right)
      .dropout(options_.dropout(), is_training())
      .need_weights(args.need_weights)
      .kernel(args.kernel);
  AttentionOutput heads = scaled_dot_product_attention(q_heads, k_heads, v_heads, keep, bias, sdpa);
  Tensor concat_heads = heads.output.transpose(1, 2).reshape({N, L, E});  // (N, L, H, hd) -> (N, L, E)
  Tensor weights = heads.weights;
  if (weights.defined() && args.average_weights) weights = mean(weights, {1});
  return {out_proj->forward(concat_heads), weights};
}

AttentionOutput MultiheadAttention::forward(const Tensor& query, const Tensor& key, const Tensor& value,
                                            const MhaArgs& args) {
  const int64_t E = options_.embed_dim(), H = options_.num_heads();
  HEED_CHECK(query.defined() && key.defined() && value.defined() && query.dim() == 3 && key.dim() == 3 &&
                 value.dim() == 3 && key.size(0) == query.size(0) && value.size(0) == query.size(0) &&
                 key.size(1) == value.size(1),
             "MultiheadAttention(embed_dim={}, num_heads={}): expected query (N, L, {}), key (N, S, {}), value (N, S, "
             "{}), got query {}, key {}, value {}",
             E, H, E, options_.kdim(), options_.vdim(), describe(query), describe(key), describe(value));
  Tensor qh, kh, vh;
  if (query.impl() == key.impl() && key.impl() == value.impl() && in_proj_weight.defined() && query.size(2) == E) {
    // Self-attention: one GEMM for Q, K and V, then views of its (N, L, 3, H, hd) result.
    Tensor qkv = linear(query, in_proj_weight, in_proj_bias)
                     .reshape({query.size(0), query.size(1), 3, H, E / H})
                     .permute({2, 0, 3, 1, 4});  // (3, N, H, L, hd)
    qh = select(qkv, 0, 0), kh = select(qkv, 0, 1), vh = select(qkv, 0, 2);
  } else {
    qh = project(query, 0, "query"), kh = project(key, 1, "key"), vh = project(value, 2, "value");
  }
  return attend(query, qh, kh, vh, args);
}

Tensor MultiheadAttention::forward(const Tensor& x) {
  MhaArgs args;
  args.need_weights = false;
  return forward(x, x, x, args).output;
}

AttentionOutput MultiheadAttention::forward_cached(const Tensor& query, const Tensor& key, const Tensor& value,
                                                   KVCache& cache, const MhaArgs& args) {
  const int64_t E = options_.embed_dim(), H = options_.num_heads();
  const std::string who = fmt::format("MultiheadAttention(embed_dim={}, num_heads={}).forward_cached", E, H);
  HEED_CHECK(key.defined() == value.defined(), "{}: key and value must both be defined or both undefined, got {} and {}",
             who, describe(key), describe(value));
  Tensor qh = project(query, 0, "query");
  if (key.defined()) {
    HEED_CHECK(key.dim() == 3 && value.dim() == 3 && key.size(0) == query.size(0) && value.size(0) == query.size(0) &&
                   key.size(1) == value.size(1),
               "{}: expected query (N, L, {}), key (N, S, {}), value (N, S, {}), got query {}, key {}, value {}", who, E,
               options_.kdim(), options_.vdim(), describe(query), describe(key), describe(value));
    Tensor kh = project(key, 1, "key"), vh = project(value, 2, "value");
    if (!cache.empty())
      HEED_CHECK(cache.k.size(0) == kh.size(0) && cache.k.dtype() == kh.dtype(),
                 "{}: the cache holds {} keys, the new keys are {}", who, describe(cache.k), describe(kh));
    cache.k = cache.empty() ? kh : concat({cache.k, kh}, 2);
    cache.v = cache.v.defined() ? concat({cache.v, vh}, 2) : vh;
  }
  HEED_CHECK(!cache.empty(), "{}: the cache is empty and no key/value was given", who);
  HEED_CHECK(cache.k.size(0) == query.size(0), "{}: the cache holds keys {} for a batch of {}, the query is {}", who,
             describe(cache.k), cache.k.size(0), describe(query));
  return attend(query, qh, cache.k, cache.v, args);
}

std::string MultiheadAttention::extra_repr() const {
  std::string s = fmt::format("embed_dim={}, num_heads={}", options_.embed_dim(), options_.num_heads());
  if (options_.dropout() > 0) s += fmt::format(", dropout={}", options_.dropout());
  if (!options_.bias()) s += ", bias=False";
  if (!options_.same_qkv_dims()) s += fmt::format(", kdim={}, vdim={}", options_.kdim(), options_.vdim());
  return s;
}

}  // namespace heed::nn
