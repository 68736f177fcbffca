// heed/nn/transformer.hpp — the Transformer of "Attention Is All You Need" (docs/attention-spec.md M8) with
// PyTorch's module structure and parameter names, plus an encoder-decoder model and a decoder-only
// causal language model that decode with key-value caches (heed/nn/decoding.hpp).
//
// Layers (x (N, T, E) batch-first; PyTorch's batch_first=false layout (T, N, E) is accepted too):
//   SA(x) = MultiheadAttention(x, x, x), CA(x, m) = MultiheadAttention(x, m, m)
//   FF(x) = linear2(Drop(act(linear1(x)))),  act = ReLU or GELU
//   encoder, post-LN (norm_first=false, the paper and PyTorch's default):
//     x = norm1(x + Drop(SA(x)));  x = norm2(x + Drop(FF(x)))
//   encoder, pre-LN (norm_first=true):
//     x = x + Drop(SA(norm1(x)));  x = x + Drop(FF(norm2(x)))
//   decoder, post-LN: x = norm1(x + Drop(SA(x))); x = norm2(x + Drop(CA(x, m))); x = norm3(x + Drop(FF(x)))
//   decoder, pre-LN:  x = x + Drop(SA(norm1(x))); x = x + Drop(CA(norm2(x), m)); x = x + Drop(FF(norm3(x)))
// Parameters (PyTorch names): self_attn.{in_proj_weight, in_proj_bias, out_proj.weight, out_proj.bias},
// multihead_attn.* (decoder), linear1.{weight, bias} (F, E), linear2 (E, F), norm1..norm3.{weight, bias}.
// Stacks: layers.<i>.*, norm.* (the optional final LayerNorm; pre-LN stacks need it). Transformer:
// encoder.*, decoder.* with both final norms, as torch.nn.Transformer, so its state_dict loads as is.
//
// Masks use heed's keep convention (true = may attend) — AttentionMasks below. PyTorch-style masks
// (bool true = blocked, or float additive) are converted with from_pytorch_mask() at the API edge:
//   src key padding (N, S), tgt key padding (N, T), the causal target mask, memory key padding (N, S)
//   and an optional memory mask (T, S) for cross-attention.
//
// Positional encodings: PositionalEncoding is the paper's interleaved sinusoid
//   PE[pos, 2i] = sin(pos / 10000^(2i/d)),  PE[pos, 2i+1] = cos(pos / 10000^(2i/d))
// (tensor2tensor concatenates sin | cos halves instead; we follow the paper and the Annotated
// Transformer). LearnedPositionalEmbedding is a trained table (max_len, d). Models embed tokens as
// Drop(Emb(tokens) * sqrt(d) + PE); the sqrt(d) scaling can be switched off (GPT-style learned
// positions usually omit it). With the scaling, the models draw their embedding tables from N(0, 1/d)
// (tensor2tensor's init), so Emb * sqrt(d) has unit scale like PE; PyTorch's Embedding default N(0, 1)
// times sqrt(d) would drown the positions (a reversal task then barely learns). Without it, N(0, 0.02^2).
//
// Attention weights: every forward can return the weights of every layer and head, (N, H, L, S) per
// layer (need_weights); the models keep the last ones for plotting (attention_weights()).
//
// Training, as in the paper (tests/test_transformer.cpp, task F, does exactly this):
//   heed::optim::Adam opt(model.parameters(), heed::optim::AdamOptions(1.0).betas({0.9, 0.98}).eps(1e-9));
//   heed::optim::NoamLR schedule(opt, d_model, /*warmup=*/4000);        // sets the lr every step
//   auto ce = heed::CrossEntropyOptions().ignore_index(pad).label_smoothing(0.1);
//   Tensor loss = heed::cross_entropy(model.forward(src, tgt_in), tgt_out, ce);
// Label smoothing is PyTorch's variant (q = (1-eps) onehot + eps/C over all C classes, ignore_index rows
// dropped), not the Annotated Transformer's KL form with eps/(V-2) and a zero pad column (the two differ
// by a constant and in the pad class's share).
//
// Incremental decoding: forward_cached() on the layers feeds only the new positions; self-attention
// keys and values of earlier positions come from a KVCache (bottom-right aligned causal mask), and the
// cross-attention keys and values of the memory are projected once. A new token costs work
// proportional to the current length; the result equals a full forward of the whole prefix.
//
// The parts: heed/nn/transformer_layers.hpp (masks, layer options, the encoder and decoder layers),
// heed/nn/transformer_stacks.hpp (TransformerEncoder, TransformerDecoder, Transformer),
// heed/nn/positional.hpp (PositionalEncoding, LearnedPositionalEmbedding) and
// heed/nn/transformer_models.hpp (Seq2SeqTransformer, TransformerLM).
#pragma once

#include "heed/nn/positional.hpp"
#include "heed/nn/transformer_layers.hpp"
#include "heed/nn/transformer_models.hpp"
#include "heed/nn/transformer_stacks.hpp"
