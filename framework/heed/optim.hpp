// heed/optim.hpp — optimizers, gradient clipping, learning-rate schedules and an L2 penalty.
//
//   heed::optim::Adam opt(model->parameters(), heed::optim::AdamOptions().lr(3e-4));
//   heed::optim::NoamLR schedule(opt, /*d_model=*/512, /*warmup=*/4000);
//   for (...) {
//     opt.zero_grad();
//     Tensor loss = heed::cross_entropy(model->forward(x), y);
//     loss.backward();
//     heed::optim::clip_grad_norm_(model->parameters(), 1.0);
//     opt.step();
//     schedule.step();
//   }
//
// Every optimizer follows PyTorch 1.13's update rule and defaults exactly (torch/optim/*.py, the
// single-tensor path), so a heed run and a PyTorch run from the same start take the same steps
// (tests/test_optim.cpp checks trajectories against tests/fixtures/make_optim_fixtures.py).
//
// Options are typed structs declared with HEED_ARG (heed/options.hpp), as libtorch's: SGDOptions(0.1)
// .momentum(0.9), AdamOptions().betas({0.9, 0.98}).eps(1e-9). Parameter groups: an optimizer holds one or
// more ParamGroups, each with its own copy of the optimizer's options struct (a group given no options
// takes the optimizer's defaults). Change a group's hyper-parameters between steps through it:
//   opt.param_groups()[1].options().set_lr(0.01);   // the generic lr every schedule uses
//   static_cast<heed::optim::AdamOptions&>(opt.param_groups()[1].options()).weight_decay(0.1);
//
// Updates run under NoGradGuard directly on the parameters' buffers (plain loops, Float32 or Float64;
// arithmetic in double). A parameter whose grad is undefined is skipped — no update and no state change.
// zero_grad() drops the gradients (PyTorch's zero_grad(set_to_none=True)), so a parameter that gets no
// gradient in a step is skipped in that step.
//
// State. Per-parameter state (moment estimates, momentum buffers, step counts) is created on the
// parameter's first update. Parameters are numbered across groups in order (group 0's parameters first),
// as in PyTorch's state_dict. state_dict() returns copies:
//   state.<i>.<name>           e.g. "state.3.exp_avg" (the parameter's shape and dtype), "state.3.step" ([])
//   param_groups.<g>.<hyper>   each hyper-parameter as a 0-d Float64 tensor under PyTorch's name, booleans
//                              as 0/1, e.g. "param_groups.0.lr", "param_groups.0.beta2"
//   param_groups.<g>.params    the group's parameter numbers (Int64), which must match on load
// These names are the only place hyper-parameters have string names (OptimizerOptions::hyperparams).
// It is nn::NamedTensors, so heed::io::save_safetensors writes it to a checkpoint next to the model's.
// load_state_dict replaces all state and the groups' hyper-parameters; it validates every key first
// (unknown, missing or mis-shaped keys throw naming the key) and changes nothing when one is wrong.
//
// The parts: heed/optim/optimizer.hpp (options base, ParamGroup, Optimizer), sgd.hpp, adam.hpp (Adam,
// AdamW), rmsprop.hpp, adagrad.hpp, scheduler.hpp (LRScheduler and the schedules), clip.hpp (gradient
// clipping, l2_penalty).
#pragma once

#include "heed/optim/adagrad.hpp"
#include "heed/optim/adam.hpp"
#include "heed/optim/clip.hpp"
#include "heed/optim/optimizer.hpp"
#include "heed/optim/rmsprop.hpp"
#include "heed/optim/scheduler.hpp"
#include "heed/optim/sgd.hpp"

/// Optimizers (SGD, Adam, AdamW, RMSprop, Adagrad, ...), learning-rate schedules and gradient clipping.
namespace heed::optim {}
