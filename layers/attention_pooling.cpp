// layers/attention_pooling.cpp — AttentionPooling, composed from recorded heed ops (matmul, tanh,
// masked_softmax), so its gradient is theirs.
#include "heed/nn/attention_pooling.hpp"

#include "heed/autograd.hpp"
#include "heed/init.hpp"
#include "heed/ops.hpp"

namespace heed::nn {

AttentionPooling::AttentionPooling(const AttentionPoolingOptions& options)
    : Module("AttentionPooling"), options_(options) {
  HEED_CHECK(options.features() > 0, "AttentionPooling: features must be positive, got {}", options.features());
  HEED_CHECK(options.step_bias() >= 0,
             "AttentionPooling: step_bias must be 0 (a scalar bias) or the number of steps, "
             "got {}",
             options.step_bias());
  weight = register_parameter("weight", empty({options.features(), 1}));
  if (options.bias()) {
    const Shape bias_shape = options.step_bias() > 0 ? Shape{options.step_bias(), 1} : Shape{1};
    bias = register_parameter("bias", empty(bias_shape));
  }
  reset();
}

void AttentionPooling::reset() {
  init::normal_(weight, 0.0, 0.05);
  if (bias.defined()) init::zeros_(bias);
}

AttentionPoolingOutput AttentionPooling::forward(const Tensor& x, const Tensor& keep_mask) {
  const int64_t features = options_.features(), steps = options_.step_bias();
  HEED_CHECK(x.defined() && x.dim() == 3 && x.size(2) == features,
             "AttentionPooling(features={}): input has shape {}, expected (N, T, {})", features,
             x.defined() ? shape_str(x.shape()) : "undefined", features);
  const int64_t n = x.size(0), t = x.size(1);
  HEED_CHECK(steps == 0 || t == steps,
             "AttentionPooling: the per-step bias was made for {} steps, but the input has shape {}", steps,
             shape_str(x.shape()));
  if (keep_mask.defined())
    HEED_CHECK(keep_mask.dtype() == DType::Bool && keep_mask.shape() == Shape({n, t}),
               "AttentionPooling: keep_mask must be Bool of shape [{}, {}] for input {}, got {} of shape {}", n, t,
               shape_str(x.shape()), dtype_name(keep_mask.dtype()), shape_str(keep_mask.shape()));

  Tensor scores = matmul(x, weight);           // (N, T, 1)
  if (bias.defined()) scores = scores + bias;  // (1) or (T, 1), broadcast over N
  scores = squeeze(tanh(scores), 2);           // e (N, T)
  Tensor weights = keep_mask.defined() ? masked_softmax(scores, keep_mask, 1) : softmax(scores, 1);
  Tensor context = squeeze(matmul(unsqueeze(weights, 1), x), 1);  // (N, 1, T) x (N, T, F) -> (N, F)
  return {context, weights};
}

Tensor AttentionPooling::forward(const Tensor& x) { return forward(x, Tensor()).context; }

std::string AttentionPooling::extra_repr() const {
  std::string s = fmt::format("features={}", options_.features());
  if (!bias.defined()) return s + ", bias=False";
  return options_.step_bias() > 0 ? s + fmt::format(", step_bias={}", options_.step_bias()) : s;
}

}  // namespace heed::nn
