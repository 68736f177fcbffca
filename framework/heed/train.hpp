// heed/train.hpp — heed::fit, the Keras model.fit of heed, for the common supervised case.
//
//   auto step = [&](const std::vector<heed::Tensor>& batch, bool training) {
//     heed::Tensor logits = (*model)(batch[0]);
//     heed::Tensor loss = heed::binary_cross_entropy_with_logits(logits, batch[1]);
//     return heed::StepOutput{loss, heed::count_binary_correct(logits, batch[1]), batch[1].numel()};
//   };
//   heed::FitOptions options;
//   options.epochs = 10; options.batch_size = 100; options.validation_split = 0.2;
//   heed::History history = heed::fit(*model, optimizer, train_set, step, options);
//
// For each epoch fit shuffles the training set (its own seeded generator), runs `step` on every batch
// with grad on, calls loss.backward(), clips (optional), steps the optimizer and the scheduler (per
// batch), then evaluates the validation set under NoGradGuard with the model in eval mode. It prints a
// progress bar with loss/accuracy (plain lines when not on a terminal).
//
// Checkpoints: `best_checkpoint` saves the model (safetensors) whenever the monitored loss improves
// (val_loss, or the training loss without validation). `resume_checkpoint` is written atomically after
// every epoch with the model, optimizer, scheduler, both random generators, the epoch and the history;
// if the file exists when fit starts, training continues from there, so a stopped run and an
// uninterrupted one see the same batches and (single-threaded) the same losses. If it exists but cannot
// be loaded (unreadable, not a resume checkpoint, damaged), fit throws heed::Error naming it instead of
// overwriting it; `start_fresh` ignores it.
//
// Before each optimizer step fit computes the global norm of the gradients: a NaN or Inf there (a
// finite loss can still have non-finite gradients) stops with heed::Error naming the step and the
// parameters, or with `skip_nonfinite_steps` skips that step and counts it. heed::AnomalyModeGuard
// (heed/autograd.hpp) then finds the op that produced it.
// `early_stopping_patience` > 0 stops after that many epochs without improvement.
#pragma once
#include <functional>
#include <string>
#include <vector>

#include "heed/data.hpp"
#include "heed/nn/module.hpp"
#include "heed/optim.hpp"
#include "heed/progress.hpp"

namespace heed {

/// What the user's step function returns for one batch.
struct StepOutput {
  Tensor loss;            ///< a one-element tensor; fit calls backward() on it in training
  int64_t correct = -1;   ///< correct predictions in the batch, or -1 when accuracy does not apply
  int64_t count = 0;      ///< predictions in the batch (the accuracy's denominator)
};
/// Runs the model on one batch (the dataset's tensors, rows of this batch); `training` is false during
/// validation (run under NoGradGuard, model in eval mode). fit calls backward; the step only computes.
using StepFn = std::function<StepOutput(const std::vector<Tensor>& batch, bool training)>;

/// Settings of heed::fit.
struct FitOptions {
  int epochs = 10;                ///< last epoch to run (a resumed run continues up to it); >= 0
  int64_t batch_size = 32;        ///< rows per batch, for training and validation (the last batch may be smaller)
  bool shuffle = true;            ///< a new order of the training rows every epoch
  uint64_t seed = 0;              ///< the shuffling generator's seed
  double validation_split = 0.0;  ///< used when no validation set is passed: the last fraction of rows
  double clip_grad_norm = 0.0;    ///< > 0: clip the global gradient norm before each step
  int early_stopping_patience = 0;  ///< > 0: stop after this many epochs without a better monitored loss
  std::string best_checkpoint;    ///< "" = off
  std::string resume_checkpoint;  ///< "" = off
  /// Ignore an existing resume_checkpoint: train from scratch (the file is overwritten after the first
  /// epoch). Without it a resume_checkpoint that exists but cannot be loaded stops fit with heed::Error.
  bool start_fresh = false;
  /// A step whose gradients hold NaN or Inf (their global norm is not finite) is skipped — no optimizer
  /// or scheduler step; its (finite) loss still counts in the epoch's mean — and counted
  /// (History::skipped_steps, EpochStats::skipped_steps, "skipped" in the progress bar, a note after the
  /// epoch) instead of stopping fit with heed::Error naming the step and the parameters.
  bool skip_nonfinite_steps = false;
  bool verbose = true;            ///< print the progress bar and resume/early-stopping notes
  bool plain_progress = false;    ///< force plain lines even on a terminal
};

/// One epoch's results: the mean of its batch losses, and correct / count summed over its batches.
struct EpochStats {
  int epoch = 0;             ///< 1-based epoch number
  double loss = 0;           ///< mean training loss
  double accuracy = -1;      ///< training accuracy in [0, 1], or -1 when the step reports none
  double val_loss = -1;      ///< mean validation loss, or -1 without validation data
  double val_accuracy = -1;  ///< validation accuracy, or -1
  double seconds = 0;        ///< wall-clock time of the epoch, validation included
  int64_t skipped_steps = 0;  ///< steps skipped for non-finite gradients (FitOptions::skip_nonfinite_steps)
};

/// What heed::fit returns: per-epoch statistics and per-batch losses.
struct History {
  std::vector<EpochStats> epochs;    ///< one entry per epoch run (resumed ones included)
  std::vector<double> batch_losses;  ///< every training batch's loss, in order (this run and resumed ones)
  int best_epoch = 0;                ///< the epoch with the lowest monitored loss (val_loss, else loss); 0 = none
  bool stopped_early = false;        ///< early_stopping_patience ended training before options.epochs
  bool resumed = false;              ///< training continued from an existing resume_checkpoint
  int64_t skipped_steps = 0;         ///< steps skipped for non-finite gradients, over all epochs (resumed ones too)
  const EpochStats& last() const;    ///< the final epoch's statistics; throws heed::Error when none ran
};

/// Trains `model` on `train` for options.epochs epochs (see the header comment), validating on
/// `validation` (or on options.validation_split of `train`). Throws heed::Error when a training loss is
/// not finite, and when the gradients' global norm is not finite (unless options.skip_nonfinite_steps),
/// naming the epoch, batch, step and parameters. A non-finite validation loss does not stop training: it is
/// kept in the history (and the resume checkpoint, which stores NaN/Inf as "nan"/"inf"/"-inf"), printed
/// with a warning, and never counts as an improvement.
History fit(nn::Module& model, optim::Optimizer& optimizer, const data::TensorDataset& train, const StepFn& step,
            const FitOptions& options, const data::TensorDataset* validation = nullptr,
            optim::LRScheduler* scheduler = nullptr);

/// Mean loss and accuracy over a dataset, under NoGradGuard with the model in eval mode (restored after).
EpochStats evaluate(nn::Module& model, const data::TensorDataset& dataset, const StepFn& step, int64_t batch_size);

/// StepOutput.correct for binary logits (N) or (N, 1) against 0/1 targets: logit > 0 predicts 1.
int64_t count_binary_correct(const Tensor& logits, const Tensor& targets);
/// StepOutput.correct for logits (..., C) against Int64 class targets (...): the argmax of the last axis.
int64_t count_class_correct(const Tensor& logits, const Tensor& targets);

}  // namespace heed
