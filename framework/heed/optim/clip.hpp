// heed/optim/clip.hpp — gradient clipping (torch.nn.utils' clip_grad_norm_ and clip_grad_value_) and the
// L2 penalty: the helpers that act on gradients and parameters outside an optimizer's step.
#pragma once
#include <vector>

#include "heed/tensor.hpp"

namespace heed::optim {

/// The norm of all gradients together, as if concatenated into one vector (norm_type = p of the p-norm,
/// or infinity for the max-norm). When it exceeds max_norm, every gradient is scaled in place by
/// max_norm / (total_norm + 1e-6). Parameters without a gradient are ignored. Returns the total norm
/// (before clipping; 0 when no parameter has a gradient). error_if_nonfinite: throw when the norm is
/// NaN or infinite instead of scaling by it.
double clip_grad_norm_(const std::vector<Tensor>& params, double max_norm, double norm_type = 2.0,
                       bool error_if_nonfinite = false);
/// Clamps every gradient element into [-clip_value, clip_value] in place.
void clip_grad_value_(const std::vector<Tensor>& params, double clip_value);

/// coeff * sum(param^2), differentiable (gradient 2 * coeff * param). Adding it to the loss regularizes
/// one chosen parameter, like Keras' `embeddings_regularizer=l2(0.001)`:
///   Tensor loss = heed::cross_entropy(logits, y) + heed::optim::l2_penalty(embedding->weight, 1e-3);
/// (Unlike an optimizer's weight_decay, which applies to every parameter of a group.)
Tensor l2_penalty(const Tensor& param, double coeff);

}  // namespace heed::optim
