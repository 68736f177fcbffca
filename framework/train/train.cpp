// framework/train/train.cpp — heed::fit and heed::evaluate (heed/train.hpp).
#include "heed/train.hpp"

#include <sys/stat.h>

#include <cerrno>
#include <cmath>
#include <cstring>
#include <fstream>
#include <limits>

#include <nlohmann/json.hpp>

#include "dist/fit_support.hpp"
#include "heed/autograd.hpp"
#include "heed/io/safetensors.hpp"
#include "heed/ops.hpp"
#include "ops/common.hpp"

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

// JSON has no NaN or Inf (nlohmann writes null, which then does not read back as a number): a non-finite
// value is stored as the string "nan", "inf" or "-inf", a finite one as a number (so files without
// non-finite values are unchanged). null reads back as NaN: that is what older versions wrote for it.
nlohmann::json number_json(double v) {
  if (std::isfinite(v)) return v;
  return std::isnan(v) ? "nan" : v > 0 ? "inf" : "-inf";
}

double number_from_json(const nlohmann::json& j) {
  if (j.is_number()) return j.get<double>();
  if (j.is_null()) return std::numeric_limits<double>::quiet_NaN();
  if (j.is_string()) {
    const std::string s = j.get<std::string>();
    if (s == "nan") return std::numeric_limits<double>::quiet_NaN();
    if (s == "inf") return std::numeric_limits<double>::infinity();
    if (s == "-inf") return -std::numeric_limits<double>::infinity();
  }
  throw Error(fmt::format("expected a number, \"nan\", \"inf\" or \"-inf\", got {}", j.dump().substr(0, 40)));
}

nlohmann::json history_json(const History& h) {
  nlohmann::json epochs = nlohmann::json::array();
  for (const auto& e : h.epochs) {
    nlohmann::json row = {e.epoch, number_json(e.loss), number_json(e.accuracy), number_json(e.val_loss),
                          number_json(e.val_accuracy), number_json(e.seconds)};
    if (e.skipped_steps) row.push_back(e.skipped_steps);  // only when some were skipped: files stay as they were
    epochs.push_back(row);
  }
  nlohmann::json losses = nlohmann::json::array();
  for (double l : h.batch_losses) losses.push_back(number_json(l));
  return {{"epochs", epochs}, {"batch_losses", losses}, {"best_epoch", h.best_epoch}};
}

void history_from_json(const nlohmann::json& j, History& h) {
  for (const auto& e : j.at("epochs")) {
    EpochStats s{e.at(0).get<int>(),          number_from_json(e.at(1)), number_from_json(e.at(2)),
                 number_from_json(e.at(3)),   number_from_json(e.at(4)), number_from_json(e.at(5))};
    if (e.size() > 6) s.skipped_steps = e.at(6).get<int64_t>();
    h.skipped_steps += s.skipped_steps;
    h.epochs.push_back(s);
  }
  for (const auto& l : j.at("batch_losses")) h.batch_losses.push_back(number_from_json(l));
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
  nlohmann::json meta = {{"epoch", rs.epoch},     {"best", number_json(rs.best)},
                         {"bad_epochs", rs.bad_epochs}, {"history", history_json(history)},
                         {"default_generator", default_generator().state()},
                         {"loader_generator", const_cast<data::DataLoader&>(loader).generator().state()}};
  if (generators.size() > 1) meta["world_size"] = generators.size(), meta["rank_generators"] = generators;
  io::save_safetensors(path, all, {{"heed_fit", meta.dump()}});
}

constexpr const char* kStartFreshHint =
    "; delete it, or set FitOptions::start_fresh to train from scratch and overwrite it";

// Loads the resume checkpoint into model, optimizer, scheduler, generators and history. Returns false
// only when there is no file at `path` (a first run); any other problem — a file that cannot be read, is
// not a regular file, is not a resume checkpoint or is damaged — throws heed::Error naming the file,
// rather than training from scratch and overwriting it.
bool load_resume(const std::string& path, nn::Module& model, optim::Optimizer& opt, optim::LRScheduler* scheduler,
                 data::DataLoader& loader, History& history, ResumeState& rs, const dist::detail::FitRun& run) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    const int err = errno;
    if (err == ENOENT) return false;
    throw Error(fmt::format("fit: cannot read the resume checkpoint '{}': {}{}", path, std::strerror(err),
                            kStartFreshHint));
  }
  HEED_CHECK(S_ISREG(st.st_mode), "fit: the resume checkpoint '{}' is not a regular file{}", path, kStartFreshHint);
  {
    std::ifstream probe(path, std::ios::binary);
    const int err = errno;
    HEED_CHECK(probe.good(), "fit: cannot read the resume checkpoint '{}': {}{}", path, std::strerror(err),
               kStartFreshHint);
  }
  try {
    io::SafetensorsFile file = io::load_safetensors(path);
    auto it = file.metadata.find("heed_fit");
    HEED_CHECK(it != file.metadata.end(), "it is not a heed::fit resume checkpoint (no heed_fit metadata)");
    nn::NamedTensors model_state, opt_state, sched_state;
    for (auto& [k, t] : file.tensors) {
      if (k.rfind("model.", 0) == 0) model_state.emplace_back(k.substr(6), t);
      else if (k.rfind("optimizer.", 0) == 0) opt_state.emplace_back(k.substr(10), t);
      else if (k.rfind("scheduler.", 0) == 0) sched_state.emplace_back(k.substr(10), t);
    }
    model.load_state_dict(model_state, true);
    opt.load_state_dict(opt_state);
    if (scheduler) scheduler->load_state_dict(sched_state);
    const nlohmann::json meta = nlohmann::json::parse(it->second);
    run.check_resume_world(meta.contains("world_size") ? meta.at("world_size").get<int>() : 1);
    rs.epoch = meta.at("epoch").get<int>();
    // null: an older version's +Inf (no improvement yet), not a NaN.
    rs.best = meta.at("best").is_null() ? std::numeric_limits<double>::infinity() : number_from_json(meta.at("best"));
    rs.bad_epochs = meta.at("bad_epochs").get<int>();
    history_from_json(meta.at("history"), history);
    default_generator().set_state(run.distributed() ? meta.at("rank_generators").at(run.rank()).get<std::string>()
                                                    : meta.at("default_generator").get<std::string>());
    loader.generator().set_state(meta.at("loader_generator").get<std::string>());
  } catch (const Error& e) {
    throw Error(fmt::format("fit: cannot resume from '{}': {}{}", path, e.what(), kStartFreshHint));
  } catch (const std::exception& e) {
    throw Error(fmt::format("fit: cannot resume from '{}': corrupted state ({}){}", path, e.what(), kStartFreshHint));
  }
  return true;
}

// The global 2-norm of the gradients of `params` (those that have one), summed in double, and the names
// of the parameters whose gradients hold NaN or Inf (with the first such value).
struct GradCheck {
  double norm = 0;
  std::vector<std::string> nonfinite;  // "name (NaN)"
};

// Sum of squares in double, four partial sums (independent chains, so the loop is not bound by the
// latency of one addition); NaN or Inf anywhere makes it non-finite.
template <class T>
double sum_of_squares(const T* d, int64_t n) {
  double s[4] = {0, 0, 0, 0};
  int64_t k = 0;
  for (; k + 4 <= n; k += 4)
    for (int j = 0; j < 4; ++j) s[j] += static_cast<double>(d[k + j]) * static_cast<double>(d[k + j]);
  for (; k < n; ++k) s[0] += static_cast<double>(d[k]) * static_cast<double>(d[k]);
  return (s[0] + s[1]) + (s[2] + s[3]);
}

GradCheck check_gradients(const nn::NamedTensors& params) {
  GradCheck check;
  double sum_sq = 0;
  for (const auto& named : params) {  // not a structured binding: the lambda below uses the name (C++17)
    const std::string& name = named.first;
    const Tensor& p = named.second;
    const Tensor g = p.defined() ? p.grad() : Tensor();
    if (!g.defined()) continue;
    const Tensor dense = g.is_contiguous() ? g : g.contiguous();
    const int64_t n = dense.numel();
    HEED_DISPATCH_FLOAT(dense.dtype(), "fit", [&] {
      const scalar_t* d = dense.data<scalar_t>();
      const double s = sum_of_squares(d, n);
      sum_sq += s;
      if (std::isfinite(s)) return;
      for (int64_t k = 0; k < n; ++k)  // which value: the error names the first
        if (!std::isfinite(d[k])) {
          check.nonfinite.push_back(fmt::format("{} ({})", name, std::isnan(d[k]) ? "NaN" : d[k] > 0 ? "+Inf" : "-Inf"));
          return;
        }
    });
  }
  check.norm = std::sqrt(sum_sq);
  return check;
}

}  // namespace

namespace {

// Batches first, first + stride, ... of `dataset` (a distributed fit: rank r of P evaluates r, r + P, ...).
Totals evaluate_totals(nn::Module& model, const data::TensorDataset& dataset, const StepFn& step, int64_t batch_size,
                       std::size_t first, std::size_t stride) {
  NoGradGuard no_grad;
  const bool was_training = model.is_training();
  model.eval();
  data::DataLoader loader(dataset, data::LoaderOptions().batch_size(batch_size).shuffle(false));
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
  HEED_CHECK(options.epochs() >= 0, "fit: epochs must be >= 0, got {}", options.epochs());
  data::TensorDataset train_part = train, val_part;
  const data::TensorDataset* val = validation;
  if (!val && options.validation_split() > 0) {
    std::tie(train_part, val_part) = train.split_tail(options.validation_split());
    val = &val_part;
  }
  // Across processes (heed::dist::init() ran under mpirun): each rank trains on its shard of every epoch,
  // DataParallel averages the gradients, the epoch's metrics are those of all ranks, and only rank 0
  // prints and writes files (docs/distributed.md). In one process `run` changes nothing.
  dist::detail::FitRun run;
  const auto loader_options =
      data::LoaderOptions().batch_size(options.batch_size()).shuffle(options.shuffle()).seed(options.seed());
  data::DataLoader loader(train_part, loader_options, run.sampler());
  const bool verbose = options.verbose() && run.is_main();
  History history;
  ResumeState rs;
  if (!options.resume_checkpoint().empty() && !options.start_fresh() &&
      load_resume(options.resume_checkpoint(), model, optimizer, scheduler, loader, history, rs, run)) {
    history.resumed = true;
    if (verbose) fmt::print("resuming from '{}' after epoch {}\n", options.resume_checkpoint(), rs.epoch);
  }
  if (!options.resume_checkpoint().empty())
    run.check_resume_agrees(options.resume_checkpoint(), history.resumed ? rs.epoch : -1);
  run.attach(model);
  if (verbose && run.distributed())
    fmt::print("fit: {} processes, batch {} per process ({} per step)\n", run.size(), options.batch_size(),
               options.batch_size() * run.size());
  const std::vector<Tensor> params = model.parameters();
  const nn::NamedTensors named_params = model.named_parameters();
  for (int epoch = rs.epoch + 1; epoch <= options.epochs(); ++epoch) {
    model.train(true);
    loader.reshuffle();
    ProgressBar bar(static_cast<int64_t>(loader.size()), fmt::format("epoch {}/{}", epoch, options.epochs()),
                    options.plain_progress() || !verbose || run.distributed());  // mpirun's pty is usually a log
    const std::size_t first_batch_loss = history.batch_losses.size();
    Totals totals;
    int64_t skipped = 0;     // steps skipped in this epoch (skip_nonfinite_steps)
    std::string first_skip;  // what the first one was, for the note after the bar
    for (std::size_t b = 0; b < loader.size(); ++b) {
      optimizer.zero_grad();
      StepOutput out = step(loader.batch(b), true);
      const double loss = loss_value(out);
      HEED_CHECK(std::isfinite(loss),
                 "fit: the loss became {} at epoch {}, batch {}; run the step under heed::AnomalyModeGuard to find "
                 "the op that makes it", loss, epoch, b);
      out.loss.backward();
      // A finite loss can still give NaN or Inf gradients (e.g. sqrt at 0, a log's backward at 0): the
      // optimizer would write them into the parameters. Stop (or skip the step) before that.
      const GradCheck grads = check_gradients(named_params);
      if (!std::isfinite(grads.norm)) {
        const std::string names =
            grads.nonfinite.empty() ? std::string("none (every value is finite; the sum of their squares overflows)")
                                    : fmt::format("{}", fmt::join(grads.nonfinite, ", "));
        HEED_CHECK(options.skip_nonfinite_steps(),
                   "fit: the gradient norm is {} at epoch {}, batch {} (step {}; the loss was {}), so the optimizer "
                   "step would make parameters non-finite. Parameters with non-finite gradients: {}. Run the step "
                   "under heed::AnomalyModeGuard to find the op that makes them, or set "
                   "FitOptions::skip_nonfinite_steps to skip such steps",
                   grads.norm, epoch, b, history.batch_losses.size() + 1, loss, names);
        if (!skipped++)
          first_skip = fmt::format("step {} (batch {}): non-finite gradients in {}", history.batch_losses.size() + 1,
                                   b, names);
        ++history.skipped_steps;
      } else {
        if (options.clip_grad_norm() > 0) optim::clip_grad_norm_(params, options.clip_grad_norm());
        optimizer.step();
        if (scheduler) scheduler->step();
      }
      totals.add(out, loss);
      history.batch_losses.push_back(loss);
      if (verbose) {
        Metrics m = totals.metrics();
        if (skipped) m.push_back({"skipped", static_cast<double>(skipped)});
        bar.update(1, m);
      }
    }
    totals = totals.over_ranks(run);
    average_batch_losses(run, history.batch_losses, first_batch_loss);
    EpochStats stats;
    stats.epoch = epoch;
    stats.skipped_steps = skipped;
    stats.loss = totals.mean_loss();
    stats.accuracy = totals.accuracy();
    Metrics extra;
    if (val) {
      const Totals vt = evaluate_totals(model, *val, step, options.batch_size(), static_cast<std::size_t>(run.rank()),
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
    if (skipped && verbose)
      fmt::print("epoch {}: skipped {} optimizer step{} with non-finite gradients; the first: {}\n", epoch, skipped,
                 skipped == 1 ? "" : "s", first_skip);
    history.epochs.push_back(stats);

    const double monitored = val ? stats.val_loss : stats.loss;
    if (!std::isfinite(monitored) && verbose)  // never an improvement (NaN < best is false)
      fmt::print("warning: the {} of epoch {} is {}; it does not count as an improvement\n",
                 val ? "validation loss" : "loss", epoch, monitored);
    if (monitored < rs.best) {
      rs.best = monitored;
      rs.bad_epochs = 0;
      history.best_epoch = epoch;
      if (!options.best_checkpoint().empty() && run.is_main()) model.save(options.best_checkpoint());
    } else {
      ++rs.bad_epochs;
    }
    rs.epoch = epoch;
    if (!options.resume_checkpoint().empty()) {
      const std::vector<std::string> generators = run.gather(default_generator().state());
      if (run.is_main())
        save_resume(options.resume_checkpoint(), model, optimizer, scheduler, loader, history, rs, generators);
    }
    // The metrics are the same bits on every rank, so is the decision; rank 0's is taken to be sure.
    if (run.rank0(options.early_stopping_patience() > 0 && rs.bad_epochs >= options.early_stopping_patience())) {
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
