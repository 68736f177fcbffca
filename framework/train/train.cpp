// framework/train/train.cpp — heed::fit and heed::evaluate (heed/train.hpp).
#include "heed/train.hpp"

#include <cmath>
#include <fstream>
#include <limits>

#include <nlohmann/json.hpp>

#include "dist/fit_support.hpp"
#include "heed/autograd.hpp"
#include "heed/io/safetensors.hpp"
#include "heed/ops.hpp"

namespace heed {

const EpochStats& History::last() const {
  HEED_CHECK(!epochs.empty(), "History::last: no epoch has run");
  return epochs.back();
}

int64_t count_binary_correct(const Tensor& logits, const Tensor& targets) {
  NoGradGuard no_grad;
  HEED_CHECK(logits.numel() == targets.numel(), "count_binary_correct: {} logits for {} targets ({} vs {})",
             logits.numel(), targets.numel(), shape_str(logits.shape()), shape_str(targets.shape()));
  const std::vector<double> l = logits.to_vector<double>(), t = targets.to_vector<double>();
  int64_t correct = 0;
  for (std::size_t i = 0; i < l.size(); ++i) correct += (l[i] > 0) == (t[i] > 0.5);
  return correct;
}

int64_t count_class_correct(const Tensor& logits, const Tensor& targets) {
  NoGradGuard no_grad;
  const std::vector<int64_t> predicted = argmax(logits, -1).to_vector<int64_t>();
  const std::vector<int64_t> t = targets.to_vector<int64_t>();
  HEED_CHECK(predicted.size() == t.size(), "count_class_correct: logits {} do not match targets {}",
             shape_str(logits.shape()), shape_str(targets.shape()));
  int64_t correct = 0;
  for (std::size_t i = 0; i < t.size(); ++i) correct += predicted[i] == t[i];
  return correct;
}

namespace {

struct Totals {
  double loss_sum = 0;
  int64_t batches = 0, correct = 0, count = 0;
  bool has_accuracy = false;
  void add(const StepOutput& out, double loss) {
    loss_sum += loss;
    ++batches;
    if (out.correct >= 0) {
      has_accuracy = true;
      correct += out.correct;
      count += out.count;
    }
  }
  double mean_loss() const { return batches ? loss_sum / static_cast<double>(batches) : 0.0; }
  double accuracy() const { return has_accuracy && count ? static_cast<double>(correct) / static_cast<double>(count) : -1; }
  Metrics metrics(const char* prefix = "") const {
    Metrics m{{std::string(prefix) + "loss", mean_loss()}};
    if (has_accuracy) m.push_back({std::string(prefix) + "acc", accuracy()});
    return m;
  }
  // A distributed fit: the totals of all ranks (the same on every rank; unchanged in one process).
  Totals over_ranks(const dist::detail::FitRun& run) const {
    if (!run.distributed()) return *this;
    const std::vector<double> v = run.sum({loss_sum, static_cast<double>(batches), static_cast<double>(correct),
                                           static_cast<double>(count), has_accuracy ? 1.0 : 0.0});
    return Totals{v[0], static_cast<int64_t>(v[1]), static_cast<int64_t>(v[2]), static_cast<int64_t>(v[3]), v[4] > 0};
  }
};

// A distributed fit: the batch losses from `first` on become the mean over ranks of each batch's loss
// (every rank has as many batches: the shards are equal).
void average_batch_losses(const dist::detail::FitRun& run, std::vector<double>& losses, std::size_t first) {
  if (!run.distributed()) return;
  std::vector<double> v = run.sum(std::vector<double>(losses.begin() + static_cast<std::ptrdiff_t>(first), losses.end()));
  for (std::size_t i = 0; i < v.size(); ++i) losses[first + i] = v[i] / run.size();
}

double loss_value(const StepOutput& out) {
  HEED_CHECK(out.loss.defined() && out.loss.numel() == 1,
             "fit: the step function must return a one-element loss, got {}",
             out.loss.defined() ? shape_str(out.loss.shape()) : std::string("an undefined tensor"));
  return out.loss.item();
}

nlohmann::json history_json(const History& h) {
  nlohmann::json epochs = nlohmann::json::array();
  for (const auto& e : h.epochs)
    epochs.push_back({e.epoch, e.loss, e.accuracy, e.val_loss, e.val_accuracy, e.seconds});
  return {{"epochs", epochs}, {"batch_losses", h.batch_losses}, {"best_epoch", h.best_epoch}};
}

void history_from_json(const nlohmann::json& j, History& h) {
  for (const auto& e : j.at("epochs"))
    h.epochs.push_back(EpochStats{e.at(0).get<int>(), e.at(1).get<double>(), e.at(2).get<double>(),
                                  e.at(3).get<double>(), e.at(4).get<double>(), e.at(5).get<double>()});
  h.batch_losses = j.at("batch_losses").get<std::vector<double>>();
  h.best_epoch = j.at("best_epoch").get<int>();
}

struct ResumeState {
  int epoch = 0;  // epochs completed
  double best = std::numeric_limits<double>::infinity();
  int bad_epochs = 0;
};

// `generators`: every rank's default generator state (one in a single process).
void save_resume(const std::string& path, const nn::Module& model, const optim::Optimizer& opt,
                 const optim::LRScheduler* scheduler, const data::DataLoader& loader, const History& history,
                 const ResumeState& rs, const std::vector<std::string>& generators) {
  nn::NamedTensors all;
  for (auto& [k, t] : model.state_dict()) all.emplace_back("model." + k, t);
  for (auto& [k, t] : opt.state_dict()) all.emplace_back("optimizer." + k, t);
  if (scheduler)
    for (auto& [k, t] : scheduler->state_dict()) all.emplace_back("scheduler." + k, t);
  nlohmann::json meta = {{"epoch", rs.epoch},     {"best", rs.best},
                         {"bad_epochs", rs.bad_epochs}, {"history", history_json(history)},
                         {"default_generator", default_generator().state()},
                         {"loader_generator", const_cast<data::DataLoader&>(loader).generator().state()}};
  if (generators.size() > 1) meta["world_size"] = generators.size(), meta["rank_generators"] = generators;
  io::save_safetensors(path, all, {{"heed_fit", meta.dump()}});
}

bool load_resume(const std::string& path, nn::Module& model, optim::Optimizer& opt, optim::LRScheduler* scheduler,
                 data::DataLoader& loader, History& history, ResumeState& rs, const dist::detail::FitRun& run) {
  if (!std::ifstream(path).good()) return false;
  io::SafetensorsFile file = io::load_safetensors(path);
  auto it = file.metadata.find("heed_fit");
  HEED_CHECK(it != file.metadata.end(), "fit: '{}' is not a heed::fit resume checkpoint (no heed_fit metadata)", path);
  nn::NamedTensors model_state, opt_state, sched_state;
  for (auto& [k, t] : file.tensors) {
    if (k.rfind("model.", 0) == 0) model_state.emplace_back(k.substr(6), t);
    else if (k.rfind("optimizer.", 0) == 0) opt_state.emplace_back(k.substr(10), t);
    else if (k.rfind("scheduler.", 0) == 0) sched_state.emplace_back(k.substr(10), t);
  }
  try {
    model.load_state_dict(model_state, true);
    opt.load_state_dict(opt_state);
    if (scheduler) scheduler->load_state_dict(sched_state);
    const nlohmann::json meta = nlohmann::json::parse(it->second);
    run.check_resume_world(meta.contains("world_size") ? meta.at("world_size").get<int>() : 1);
    rs.epoch = meta.at("epoch").get<int>();
    rs.best = meta.at("best").is_null() ? std::numeric_limits<double>::infinity() : meta.at("best").get<double>();
    rs.bad_epochs = meta.at("bad_epochs").get<int>();
    history_from_json(meta.at("history"), history);
    default_generator().set_state(run.distributed() ? meta.at("rank_generators").at(run.rank()).get<std::string>()
                                                    : meta.at("default_generator").get<std::string>());
    loader.generator().set_state(meta.at("loader_generator").get<std::string>());
  } catch (const Error& e) {
    throw Error(fmt::format("fit: cannot resume from '{}': {}", path, e.what()));
  } catch (const std::exception& e) {
    throw Error(fmt::format("fit: cannot resume from '{}': corrupted state ({})", path, e.what()));
  }
  return true;
}

}  // namespace

namespace {

// Batches first, first + stride, ... of `dataset` (a distributed fit: rank r of P evaluates r, r + P, ...).
Totals evaluate_totals(nn::Module& model, const data::TensorDataset& dataset, const StepFn& step, int64_t batch_size,
                       std::size_t first, std::size_t stride) {
  NoGradGuard no_grad;
  const bool was_training = model.is_training();
  model.eval();
  data::DataLoader loader(dataset, {batch_size, false, 0, false});
  Totals totals;
  try {
    for (std::size_t b = first; b < loader.size(); b += stride) {
      StepOutput out = step(loader.batch(b), false);
      totals.add(out, loss_value(out));
    }
  } catch (...) {
    model.train(was_training);
    throw;
  }
  model.train(was_training);
  return totals;
}

}  // namespace

EpochStats evaluate(nn::Module& model, const data::TensorDataset& dataset, const StepFn& step, int64_t batch_size) {
  const Totals totals = evaluate_totals(model, dataset, step, batch_size, 0, 1);
  EpochStats s;
  s.loss = totals.mean_loss();
  s.accuracy = totals.accuracy();
  return s;
}

History fit(nn::Module& model, optim::Optimizer& optimizer, const data::TensorDataset& train, const StepFn& step,
            const FitOptions& options, const data::TensorDataset* validation, optim::LRScheduler* scheduler) {
  HEED_CHECK(options.epochs >= 0, "fit: epochs must be >= 0, got {}", options.epochs);
  data::TensorDataset train_part = train, val_part;
  const data::TensorDataset* val = validation;
  if (!val && options.validation_split > 0) {
    std::tie(train_part, val_part) = train.split_tail(options.validation_split);
    val = &val_part;
  }
  // Across processes (heed::dist::init() ran under mpirun): each rank trains on its shard of every epoch,
  // DataParallel averages the gradients, the epoch's metrics are those of all ranks, and only rank 0
  // prints and writes files (docs/distributed.md). In one process `run` changes nothing.
  dist::detail::FitRun run;
  data::DataLoader loader(train_part, {options.batch_size, options.shuffle, options.seed, false}, run.sampler());
  const bool verbose = options.verbose && run.is_main();
  History history;
  ResumeState rs;
  if (!options.resume_checkpoint.empty() &&
      load_resume(options.resume_checkpoint, model, optimizer, scheduler, loader, history, rs, run)) {
    history.resumed = true;
    if (verbose) fmt::print("resuming from '{}' after epoch {}\n", options.resume_checkpoint, rs.epoch);
  }
  if (!options.resume_checkpoint.empty()) run.check_resume_agrees(options.resume_checkpoint, history.resumed ? rs.epoch : -1);
  run.attach(model);
  if (verbose && run.distributed())
    fmt::print("fit: {} processes, batch {} per process ({} per step)\n", run.size(), options.batch_size,
               options.batch_size * run.size());
  const std::vector<Tensor> params = model.parameters();
  for (int epoch = rs.epoch + 1; epoch <= options.epochs; ++epoch) {
    model.train(true);
    loader.reshuffle();
    ProgressBar bar(static_cast<int64_t>(loader.size()), fmt::format("epoch {}/{}", epoch, options.epochs),
                    options.plain_progress || !verbose || run.distributed());  // mpirun's pty is usually a log
    const std::size_t first_batch_loss = history.batch_losses.size();
    Totals totals;
    for (std::size_t b = 0; b < loader.size(); ++b) {
      optimizer.zero_grad();
      StepOutput out = step(loader.batch(b), true);
      const double loss = loss_value(out);
      HEED_CHECK(std::isfinite(loss), "fit: the loss became {} at epoch {}, batch {}", loss, epoch, b);
      out.loss.backward();
      if (options.clip_grad_norm > 0) optim::clip_grad_norm_(params, options.clip_grad_norm);
      optimizer.step();
      if (scheduler) scheduler->step();
      totals.add(out, loss);
      history.batch_losses.push_back(loss);
      if (verbose) bar.update(1, totals.metrics());
    }
    totals = totals.over_ranks(run);
    average_batch_losses(run, history.batch_losses, first_batch_loss);
    EpochStats stats;
    stats.epoch = epoch;
    stats.loss = totals.mean_loss();
    stats.accuracy = totals.accuracy();
    Metrics extra;
    if (val) {
      const Totals vt = evaluate_totals(model, *val, step, options.batch_size, static_cast<std::size_t>(run.rank()),
                                        static_cast<std::size_t>(run.size()))
                            .over_ranks(run);
      EpochStats v;
      v.loss = vt.mean_loss();
      v.accuracy = vt.accuracy();
      stats.val_loss = v.loss;
      stats.val_accuracy = v.accuracy;
      extra.push_back({"val_loss", v.loss});
      if (v.accuracy >= 0) extra.push_back({"val_acc", v.accuracy});
    }
    stats.seconds = bar.elapsed_seconds();
    if (verbose) {
      if (run.distributed()) bar.update(0, totals.metrics());  // the last line shows all ranks' metrics
      bar.finish(extra);
    }
    history.epochs.push_back(stats);

    const double monitored = val ? stats.val_loss : stats.loss;
    if (monitored < rs.best) {
      rs.best = monitored;
      rs.bad_epochs = 0;
      history.best_epoch = epoch;
      if (!options.best_checkpoint.empty() && run.is_main()) model.save(options.best_checkpoint);
    } else {
      ++rs.bad_epochs;
    }
    rs.epoch = epoch;
    if (!options.resume_checkpoint.empty()) {
      const std::vector<std::string> generators = run.gather(default_generator().state());
      if (run.is_main())
        save_resume(options.resume_checkpoint, model, optimizer, scheduler, loader, history, rs, generators);
    }
    // The metrics are the same bits on every rank, so is the decision; rank 0's is taken to be sure.
    if (run.rank0(options.early_stopping_patience > 0 && rs.bad_epochs >= options.early_stopping_patience)) {
      history.stopped_early = true;
      if (verbose)
        fmt::print("early stopping after epoch {}: no improvement for {} epochs (best epoch {})\n", epoch,
                   rs.bad_epochs, history.best_epoch);
      break;
    }
  }
  run.barrier();
  return history;
}

}  // namespace heed
