// layers/gated_attention_pooling.cpp — GatedAttentionPooling, composed from recorded heed ops (linear,
// tanh, sigmoid, mul, masked_softmax, matmul), so its gradient is theirs.
#include "heed/nn/gated_attention_pooling.hpp"

#include "heed/error.hpp"
#include "heed/ops.hpp"

namespace heed::nn {

GatedAttentionPooling::GatedAttentionPooling(const GatedAttentionPoolingOptions& options)
    : Module("GatedAttentionPooling"), options_(options) {
  HEED_CHECK(options.in_features() > 0 && options.attention_size() > 0,
             "GatedAttentionPooling: in_features ({}) and attention_size ({}) must be positive",
             options.in_features(), options.attention_size());
  const int64_t f = options.in_features(), l = options.attention_size();
  attention_V = register_module("attention_V", std::make_shared<Linear>(f, l, options.bias()));
  if (options.gated()) attention_U = register_module("attention_U", std::make_shared<Linear>(f, l, options.bias()));
  attention_w = register_module("attention_w", std::make_shared<Linear>(l, 1, options.bias()));
}

GatedAttentionPoolingOutput GatedAttentionPooling::forward(const Tensor& x, const Tensor& keep_mask) {
  const int64_t f = options_.in_features();
  HEED_CHECK(x.defined() && x.dim() == 3 && x.size(2) == f,
             "GatedAttentionPooling(in_features={}): input has shape {}, expected (N, T, {})", f,
             x.defined() ? shape_str(x.shape()) : "undefined", f);
  const int64_t n = x.size(0), t = x.size(1);
  if (keep_mask.defined())
    HEED_CHECK(keep_mask.dtype() == DType::Bool && keep_mask.shape() == Shape({n, t}),
               "GatedAttentionPooling: keep_mask must be Bool of shape [{}, {}] for input {}, got {} of shape {}", n,
               t, shape_str(x.shape()), dtype_name(keep_mask.dtype()), shape_str(keep_mask.shape()));

  Tensor hidden = tanh(attention_V->forward(x));                        // (N, T, L)
  if (attention_U) hidden = hidden * sigmoid(attention_U->forward(x));  // the gate
  Tensor scores = squeeze(attention_w->forward(hidden), 2);            // (N, T)
  Tensor weights = keep_mask.defined() ? masked_softmax(scores, keep_mask, 1) : softmax(scores, 1);
  Tensor context = squeeze(matmul(unsqueeze(weights, 1), x), 1);  // (N, 1, T) x (N, T, F) -> (N, F)
  return {context, weights};
}

Tensor GatedAttentionPooling::forward(const Tensor& x) { return forward(x, Tensor()).context; }

std::string GatedAttentionPooling::extra_repr() const {
  std::string s = fmt::format("in_features={}, attention_size={}", options_.in_features(), options_.attention_size());
  if (!options_.gated()) s += ", gated=False";
  if (!options_.bias()) s += ", bias=False";
  return s;
}

}  // namespace heed::nn
