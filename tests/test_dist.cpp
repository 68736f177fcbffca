// heed::dist: collectives, DataParallel and heed::fit across processes. Every case runs alone (one
// process: world size 1) through ctest's discovery, and all of them together under mpirun with 2 and 3
// processes (tests/CMakeLists.txt: dist_mpirun_np2, dist_mpirun_np3), where they check the real thing:
// P ranks with batch B each train to the same parameters as one process with batch P x B.
#include <doctest/doctest.h>

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <heed/dist.hpp>
#include <heed/heed.hpp>

#include "testing.hpp"

using heed::Tensor;
namespace dist = heed::dist;
namespace nn = heed::nn;

namespace {

// Every case calls this first; finalize() runs at exit (registered after init's own exit handler, so it
// runs before it: a process that finalized is not aborted).
void ensure_dist() {
  if (dist::is_initialized()) return;
  dist::init();
  std::atexit([] { dist::finalize(); });
}

// Embedding + LSTM (last step) or one Transformer encoder layer (mean over time) + Linear; no dropout.
class TinySeq : public nn::Module {
 public:
  explicit TinySeq(bool transformer) : Module("TinySeq"), transformer_(transformer) {
    embed = register_module("embed", std::make_shared<nn::Embedding>(kVocab, 8));
    if (transformer) {
      enc = register_module("enc", std::make_shared<nn::TransformerEncoderLayer>(
                                       nn::TransformerLayerOptions(8, 2).dim_feedforward(16).dropout(0.0)));
    } else {
      lstm = register_module("lstm", std::make_shared<nn::LSTM>(nn::LSTMOptions(8, 12).batch_first(true)));
    }
    head = register_module("head", std::make_shared<nn::Linear>(transformer ? 8 : 12, kClasses));
  }
  Tensor forward(const Tensor& ids) override {
    const Tensor x = embed->forward(ids);
    if (transformer_) return head->forward(heed::mean(enc->forward(x), {1}));
    const Tensor out = lstm->forward(x, {}).output;  // (N, T, H)
    return head->forward(heed::select(out, 1, out.size(1) - 1));
  }
  static constexpr int64_t kVocab = 20, kClasses = 3, kSteps = 6;
  std::shared_ptr<nn::Embedding> embed;
  std::shared_ptr<nn::LSTM> lstm;
  std::shared_ptr<nn::TransformerEncoderLayer> enc;
  std::shared_ptr<nn::Linear> head;

 private:
  bool transformer_;
};

// The same data on every rank: step k's global batch is rows [k P B, (k + 1) P B); rank r's part of it
// rows [k P B + r B, k P B + (r + 1) B).
struct Data {
  Tensor ids, labels;
  int64_t per_rank = 0, world = 1;
  std::vector<Tensor> global(int64_t step) const {
    return {heed::narrow(ids, 0, step * per_rank * world, per_rank * world),
            heed::narrow(labels, 0, step * per_rank * world, per_rank * world)};
  }
  std::vector<Tensor> part(int64_t step, int64_t rank) const {
    return {heed::narrow(ids, 0, (step * world + rank) * per_rank, per_rank),
            heed::narrow(labels, 0, (step * world + rank) * per_rank, per_rank)};
  }
};

Data make_data(int64_t per_rank) {
  Data d;
  d.per_rank = per_rank;
  d.world = dist::world_size();
  heed::Generator gen(42);
  const int64_t rows = TinySeq::kSteps * d.world * per_rank;
  d.ids = heed::randint(0, TinySeq::kVocab, {rows, 5}, &gen);
  d.labels = heed::randint(0, TinySeq::kClasses, {rows}, &gen);
  return d;
}

std::shared_ptr<TinySeq> make_model(bool transformer, uint64_t seed) {
  heed::manual_seed(seed);
  return std::make_shared<TinySeq>(transformer);
}

Tensor loss_of(TinySeq& model, const std::vector<Tensor>& batch) {
  return heed::cross_entropy(model.forward(batch[0]), batch[1]);
}

// Every parameter, flattened and concatenated (Float32).
Tensor flat_params(const nn::Module& model) {
  heed::NoGradGuard no_grad;
  std::vector<Tensor> parts;
  for (const Tensor& p : model.parameters()) parts.push_back(p.detach().reshape({-1}));
  return heed::concat(parts, 0);
}

// True when every rank holds exactly these values (bit for bit).
bool same_on_every_rank(const Tensor& t) {
  const Tensor all = dist::allgather(t);
  for (int64_t r = 1; r < all.size(0); ++r)
    if (heed::max_abs_diff(heed::select(all, 0, r), heed::select(all, 0, 0)) != 0.0) return false;
  return true;
}

// One process trained on the concatenated batches of all ranks (SGD with momentum).
Tensor train_single(bool transformer, const Data& data) {
  auto model = make_model(transformer, 7);
  heed::optim::SGD opt(model->parameters(), heed::optim::SGDOptions(0.1).momentum(0.9));
  for (int64_t s = 0; s < TinySeq::kSteps; ++s) {
    opt.zero_grad();
    loss_of(*model, data.global(s)).backward();
    opt.step();
  }
  return flat_params(*model);
}

enum class Averaging { DataParallel, SumByHand };

// Every rank trains on its part; gradients averaged by DataParallel, or (the broken control) summed.
Tensor train_distributed(bool transformer, const Data& data, Averaging how) {
  // A different initialization on every rank: DataParallel must start them all from rank 0's (seed 7).
  auto model = make_model(transformer, 7 + 1000 * static_cast<uint64_t>(dist::rank()));
  std::unique_ptr<dist::DataParallel> ddp;
  if (how == Averaging::DataParallel) {
    ddp = std::make_unique<dist::DataParallel>(*model);
  } else {
    for (const Tensor& p : model->parameters()) dist::broadcast_(p, 0);
  }
  heed::optim::SGD opt(model->parameters(), heed::optim::SGDOptions(0.1).momentum(0.9));
  for (int64_t s = 0; s < TinySeq::kSteps; ++s) {
    opt.zero_grad();
    loss_of(*model, data.part(s, dist::rank())).backward();
    if (how == Averaging::SumByHand)
      for (const Tensor& p : model->parameters())
        if (p.grad().defined()) dist::allreduce_(p.grad(), dist::ReduceOp::Sum);
    opt.step();
  }
  if (ddp) CHECK(ddp->stats().syncs == (dist::world_size() > 1 ? TinySeq::kSteps : 0));
  return flat_params(*model);
}

}  // namespace

// First in this file, so that under mpirun it runs before any case calls init().
TEST_CASE("dist: use before init is an error naming the function") {
  if (dist::is_initialized()) return;  // another case of this process initialized already
  CHECK(heed::testing::error_of([] { dist::rank(); }).find("dist::rank: heed::dist::init() has not been called") !=
        std::string::npos);
  CHECK(heed::testing::error_of([] { dist::allreduce_(heed::ones({2})); }).find("dist::allreduce") !=
        std::string::npos);
  heed::nn::Linear lin(2, 2);
  CHECK(heed::testing::error_of([&] { dist::DataParallel ddp(lin); }).find("DataParallel") != std::string::npos);
  CHECK(dist::is_main_process());
  CHECK_FALSE(dist::is_distributed());
}

TEST_CASE("dist: runtime facts") {
  ensure_dist();
  const int p = dist::world_size(), r = dist::rank();
  CHECK(p >= 1);
  CHECK(r >= 0);
  CHECK(r < p);
  CHECK(dist::local_rank() < dist::local_size());
  CHECK(dist::local_size() <= p);
  CHECK(dist::is_main_process() == (r == 0));
  CHECK(dist::is_distributed() == (p > 1));
  if (p > 1) CHECK(dist::available());
  // Every rank sees the same world size, and the ranks are 0..P-1.
  const Tensor ranks = dist::allgather(heed::index_tensor({r, p}));
  for (int64_t i = 0; i < p; ++i) {
    CHECK(ranks.to_vector<int64_t>()[static_cast<std::size_t>(2 * i)] == i);
    CHECK(ranks.to_vector<int64_t>()[static_cast<std::size_t>(2 * i + 1)] == p);
  }
}

TEST_CASE("dist: allreduce, broadcast, allgather, barrier on Float32, Float64, Int64, contiguous or not") {
  ensure_dist();
  const int p = dist::world_size(), r = dist::rank();
  const double tri = p * (p + 1) / 2.0;  // 1 + 2 + ... + P
  {
    Tensor t = heed::full({2, 3}, r + 1.0);
    dist::allreduce_(t);
    heed::testing::check_values(t, {2, 3}, std::vector<double>(6, tri));
  }
  {
    Tensor t = heed::full({4}, r + 1.0, heed::DType::Float64);
    dist::allreduce_(t, dist::ReduceOp::Mean);
    heed::testing::check_values(t, {4}, std::vector<double>(4, tri / p));
  }
  {
    Tensor t = heed::index_tensor({r, 10 * r}, {2});
    dist::allreduce_(t);
    CHECK(t.to_vector<int64_t>() == std::vector<int64_t>{static_cast<int64_t>(tri - p), static_cast<int64_t>(10 * (tri - p))});
  }
  {
    // A transposed view: the base tensor's elements are the ones reduced.
    Tensor base = heed::tensor({1, 2, 3, 4, 5, 6}, {3, 2}) * static_cast<double>(r + 1);
    Tensor view = base.transpose(0, 1);
    CHECK_FALSE(view.is_contiguous());
    dist::allreduce_(view);
    heed::testing::check_values(base, {3, 2}, {tri, 2 * tri, 3 * tri, 4 * tri, 5 * tri, 6 * tri});
  }
  {
    const int root = p - 1;
    Tensor t = heed::arange(5, heed::DType::Float64) + 100.0 * r;
    dist::broadcast_(t, root);
    heed::testing::check_values(t, {5}, {100.0 * root, 100.0 * root + 1, 100.0 * root + 2, 100.0 * root + 3, 100.0 * root + 4});
    Tensor base = heed::zeros({2, 2});
    if (r == 0) base = heed::tensor({1, 2, 3, 4}, {2, 2});
    Tensor view = base.transpose(0, 1);
    dist::broadcast_(view, 0);
    heed::testing::check_values(base, {2, 2}, {1, 2, 3, 4});
  }
  {
    const Tensor mine = heed::tensor({1, 2, 3, 4, 5, 6}, {2, 3}).transpose(0, 1) + static_cast<double>(10 * r);
    const Tensor all = dist::allgather(mine);
    REQUIRE(all.shape() == heed::Shape{p, 3, 2});
    for (int q = 0; q < p; ++q)
      heed::testing::check_values(heed::select(all, 0, q), {3, 2},
                                  {1.0 + 10 * q, 4.0 + 10 * q, 2.0 + 10 * q, 5.0 + 10 * q, 3.0 + 10 * q, 6.0 + 10 * q});
    const Tensor flags = dist::allgather(heed::bool_tensor({r % 2 == 0}, {1}));
    for (int q = 0; q < p; ++q) CHECK(flags.to_vector<int64_t>()[static_cast<std::size_t>(q)] == (q % 2 == 0 ? 1 : 0));
  }
  dist::barrier();
}

TEST_CASE("dist: allreduce_async returns a handle; the result is there after wait()") {
  ensure_dist();
  const int p = dist::world_size(), r = dist::rank();
  Tensor a = heed::full({1000}, r + 1.0);
  Tensor b = heed::full({3, 4}, 2.0 * (r + 1), heed::DType::Float64).transpose(0, 1);
  dist::Work wa = dist::allreduce_async(a, dist::ReduceOp::Mean);
  dist::Work wb = dist::allreduce_async(b);
  int polls = 0;
  while (!wa.test() && polls < 1000000) ++polls;
  wb.wait();
  wa.wait();
  CHECK(wa.done());
  CHECK(wb.done());
  CHECK(a.to_vector<double>() == std::vector<double>(1000, (p + 1) / 2.0));
  CHECK(b.to_vector<double>() == std::vector<double>(12, p * (p + 1.0)));
  dist::Work empty;
  CHECK(empty.done());
}

TEST_CASE("dist: mismatched shapes, dtypes or roots across ranks throw on every rank, naming them") {
  ensure_dist();
  const int p = dist::world_size(), r = dist::rank();
  CHECK(heed::testing::error_of([] { dist::allreduce_(heed::index_tensor({1, 2}), dist::ReduceOp::Mean); })
            .find("dist::allreduce: the mean of an Int64 tensor") != std::string::npos);
  CHECK(heed::testing::error_of([] { dist::allreduce_(heed::bool_tensor({true})); }).find("Bool tensors are not supported") !=
        std::string::npos);
  if (p == 1) return;
  const std::string shapes = heed::testing::error_of([&] { dist::allreduce_(r == 0 ? heed::zeros({2, 3}) : heed::zeros({3, 2})); });
  CHECK(shapes.find("dist::allreduce: the ranks disagree") != std::string::npos);
  CHECK(shapes.find("rank 0 calls dist::allreduce (sum) on [2, 3] Float32") != std::string::npos);
  CHECK(shapes.find("rank 1 calls dist::allreduce (sum) on [3, 2] Float32") != std::string::npos);
  const std::string dtypes = heed::testing::error_of(
      [&] { dist::broadcast_(heed::zeros({4}, r == 1 ? heed::DType::Float64 : heed::DType::Float32)); });
  CHECK(dtypes.find("rank 1 calls dist::broadcast (root 0) on [4] Float64") != std::string::npos);
  const std::string roots = heed::testing::error_of([&] { dist::broadcast_(heed::zeros({4}), r == 0 ? 0 : 1); });
  CHECK(roots.find("rank 1 calls dist::broadcast (root 1)") != std::string::npos);
  const std::string kinds = heed::testing::error_of([&] {
    if (r == 0) {
      dist::barrier();
    } else {
      dist::allgather(heed::zeros({1}));
    }
  });
  CHECK(kinds.find("rank 0 calls dist::barrier") != std::string::npos);
  // The ranks are still in step: a good collective works.
  Tensor t = heed::ones({1});
  dist::allreduce_(t);
  CHECK(t.item() == p);
}

TEST_CASE("dist: DataParallel with batch B per rank equals one process with the concatenated batch") {
  ensure_dist();
  for (bool transformer : {false, true}) {
    CAPTURE(transformer);
    const Data data = make_data(4);
    const Tensor single = train_single(transformer, data);
    const Tensor parallel = train_distributed(transformer, data, Averaging::DataParallel);
    const double diff = heed::max_abs_diff(parallel, single);
    MESSAGE("world size " << dist::world_size() << ", max |difference| " << diff);
    CHECK(diff < 2e-5);
    CHECK(same_on_every_rank(parallel));
    // The control: summing instead of averaging must be caught by the comparison above.
    if (dist::world_size() > 1) CHECK(heed::max_abs_diff(train_distributed(transformer, data, Averaging::SumByHand), single) > 1e-3);
  }
}

TEST_CASE("dist: ordered DataParallel equals, bit for bit, one process averaging each rank's gradient in rank order") {
  ensure_dist();
  const int p = dist::world_size();
  const Data data = make_data(3);
  // Reference: every rank's gradient computed one after the other in this process, summed in rank order,
  // divided by P (float arithmetic, as DataParallel does); Adam.
  auto reference = make_model(false, 11);
  heed::optim::Adam ref_opt(reference->parameters(), heed::optim::AdamOptions(0.01));
  std::vector<Tensor> ref_params = reference->parameters();
  for (int64_t s = 0; s < TinySeq::kSteps; ++s) {
    std::vector<std::vector<float>> sums(ref_params.size());
    for (int q = 0; q < p; ++q) {
      reference->zero_grad();
      loss_of(*reference, data.part(s, q)).backward();
      for (std::size_t i = 0; i < ref_params.size(); ++i) {
        const std::vector<float> g = ref_params[i].grad().to_vector<float>();
        if (q == 0) {
          sums[i] = g;
        } else {
          for (std::size_t j = 0; j < g.size(); ++j) sums[i][j] += g[j];
        }
      }
    }
    for (std::size_t i = 0; i < ref_params.size(); ++i) {
      for (float& v : sums[i]) v /= static_cast<float>(p);
      ref_params[i].set_grad(heed::tensor(sums[i], ref_params[i].shape()));
    }
    ref_opt.step();
  }
  auto model = make_model(false, 11 + 1000 * static_cast<uint64_t>(dist::rank()));
  dist::DataParallel ddp(*model, dist::DataParallelOptions().bucket_mb(0.001).first_bucket_mb(0.0005));
  if (p > 1) CHECK(ddp.bucket_names().size() > 2);  // small buckets: several collectives per backward
  heed::optim::Adam opt(model->parameters(), heed::optim::AdamOptions(0.01));
  for (int64_t s = 0; s < TinySeq::kSteps; ++s) {
    opt.zero_grad();
    loss_of(*model, data.part(s, dist::rank())).backward();
    opt.step();
  }
  CHECK(heed::max_abs_diff(flat_params(*model), flat_params(*reference)) == 0.0);
}

TEST_CASE("dist: MPI's own allreduce (ordered false) averages to float tolerance and keeps the ranks identical") {
  ensure_dist();
  const Data data = make_data(4);
  const Tensor single = train_single(false, data);
  auto model = make_model(false, 7 + 1000 * static_cast<uint64_t>(dist::rank()));
  dist::DataParallel ddp(*model, dist::DataParallelOptions().ordered(false).first_bucket_mb(0.001));
  heed::optim::SGD opt(model->parameters(), heed::optim::SGDOptions(0.1).momentum(0.9));
  for (int64_t s = 0; s < TinySeq::kSteps; ++s) {
    opt.zero_grad();
    loss_of(*model, data.part(s, dist::rank())).backward();
    opt.step();
  }
  const Tensor mine = flat_params(*model);
  CHECK(heed::max_abs_diff(mine, single) < 2e-5);
  CHECK(same_on_every_rank(mine));
}

TEST_CASE("dist: DataParallel buckets go in reverse registration order; unused parameters count as zeros") {
  ensure_dist();
  const int p = dist::world_size(), r = dist::rank();
  struct TwoHeads : nn::Module {
    TwoHeads() : Module("TwoHeads") {
      body = register_module("body", std::make_shared<nn::Linear>(4, 4));
      used_by_rank0 = register_module("used_by_rank0", std::make_shared<nn::Linear>(4, 1));
      never_used = register_module("never_used", std::make_shared<nn::Linear>(4, 1));
      head = register_module("head", std::make_shared<nn::Linear>(4, 1));
    }
    std::shared_ptr<nn::Linear> body, used_by_rank0, never_used, head;
  };
  heed::manual_seed(3);
  TwoHeads model;
  dist::DataParallel ddp(model);
  if (p > 1) {
    const auto buckets = ddp.bucket_names();
    REQUIRE(buckets.size() >= 1);
    CHECK(buckets[0].front() == "head.bias");   // last registered, first sent
    CHECK(buckets.back().back() == "body.weight");
  }
  heed::Generator gen(9);
  const Tensor x = heed::randn({5, 4}, heed::DType::Float32, &gen) + static_cast<double>(r);
  auto loss_fn = [&] {
    const Tensor h = heed::tanh(model.body->forward(x));
    Tensor loss = heed::mean(model.head->forward(h));
    if (r == 0) loss = loss + heed::mean(model.used_by_rank0->forward(h));
    return loss;
  };
  // Each rank's own gradient (no communication), then the averaged one.
  std::vector<Tensor> local;
  {
    auto guard = ddp.no_sync();
    model.zero_grad();
    loss_fn().backward();
    for (const Tensor& param : model.parameters()) local.push_back(param.grad().defined() ? param.grad().clone() : Tensor());
  }
  model.zero_grad();
  loss_fn().backward();
  const std::vector<Tensor> params = model.parameters();
  for (std::size_t i = 0; i < params.size(); ++i) {
    const bool never = params[i].impl() == model.never_used->weight.impl() || params[i].impl() == model.never_used->bias.impl();
    if (never) {
      CHECK_FALSE(params[i].grad().defined());  // no rank had a gradient: none anywhere, like one process
      continue;
    }
    REQUIRE(params[i].grad().defined());
    CHECK(same_on_every_rank(params[i].grad()));
    // The mean over ranks of the local gradients, zeros where a rank had none.
    Tensor expected = local[i].defined() ? local[i].clone() : heed::zeros_like(params[i]);
    dist::allreduce_(expected, dist::ReduceOp::Mean);
    CHECK(heed::max_abs_diff(params[i].grad(), expected) < 1e-6);
  }
}

TEST_CASE("dist: no_sync accumulates locally; the next synced backward averages the sums") {
  ensure_dist();
  const Data data = make_data(2);
  auto model = make_model(false, 5);
  dist::DataParallel ddp(*model);
  const int r = dist::rank();
  // The reference: each rank's local sum of two micro-batch gradients, averaged over ranks by hand.
  std::vector<Tensor> expected;
  {
    auto guard = ddp.no_sync();
    model->zero_grad();
    loss_of(*model, data.part(0, r)).backward();
    loss_of(*model, data.part(1, r)).backward();
    for (const Tensor& p : model->parameters()) {
      Tensor g = p.grad().clone();
      dist::allreduce_(g, dist::ReduceOp::Mean);
      expected.push_back(g);
    }
  }
  const int64_t syncs = ddp.stats().syncs;
  model->zero_grad();
  {
    auto guard = ddp.no_sync();
    loss_of(*model, data.part(0, r)).backward();
  }
  CHECK(ddp.stats().syncs == syncs);
  loss_of(*model, data.part(1, r)).backward();
  CHECK(ddp.stats().syncs == syncs + (dist::world_size() > 1 ? 1 : 0));
  const std::vector<Tensor> params = model->parameters();
  for (std::size_t i = 0; i < params.size(); ++i) CHECK(heed::max_abs_diff(params[i].grad(), expected[i]) < 1e-6);
}

TEST_CASE("dist: DataParallel refuses modules that differ across ranks, naming the parameter") {
  ensure_dist();
  if (dist::world_size() == 1) return;
  heed::nn::Linear lin(3, dist::rank() == 1 ? 5 : 4);
  const std::string e = heed::testing::error_of([&] { dist::DataParallel ddp(lin); });
  CHECK(e.find("DataParallel: the ranks' modules differ") != std::string::npos);
  CHECK(e.find("rank 0 has parameter 'weight' [4, 3] Float32 where rank 1 has parameter 'weight' [5, 3] Float32") !=
        std::string::npos);
}

namespace {

class Classifier : public nn::Module {
 public:
  Classifier() : Module("Classifier") {
    fc1 = register_module("fc1", std::make_shared<nn::Linear>(4, 8));
    fc2 = register_module("fc2", std::make_shared<nn::Linear>(8, 1));
  }
  Tensor forward(const Tensor& x) override { return fc2->forward(heed::tanh(fc1->forward(x))); }
  std::shared_ptr<nn::Linear> fc1, fc2;
};

heed::data::TensorDataset classification_data(int64_t n, uint64_t seed) {
  heed::Generator g(seed);
  const Tensor x = heed::randn({n, 4}, heed::DType::Float32, &g);
  const std::vector<float> xs = x.to_vector<float>();
  std::vector<float> ys(static_cast<std::size_t>(n));
  for (int64_t i = 0; i < n; ++i) ys[static_cast<std::size_t>(i)] = xs[4 * i] - xs[4 * i + 1] + 0.5f * xs[4 * i + 3] > 0 ? 1.0f : 0.0f;
  return heed::data::TensorDataset({x, heed::tensor(ys, {n, 1})});
}

heed::StepFn classifier_step(Classifier& model) {
  return [&model](const std::vector<Tensor>& b, bool) {
    const Tensor logits = model.forward(b[0]);
    return heed::StepOutput{heed::binary_cross_entropy_with_logits(logits, b[1]), heed::count_binary_correct(logits, b[1]),
                            b[1].numel()};
  };
}

// A path every rank agrees on (rank 0's process id).
std::string shared_path(const char* name) {
  const Tensor pid = heed::index_tensor({static_cast<int64_t>(::getpid())});
  dist::broadcast_(pid, 0);
  return fmt::format("/tmp/heed_test_dist_{}_{}", name, pid.to_vector<int64_t>()[0]);
}

}  // namespace

TEST_CASE("dist: fit on P processes with batch B equals one process with batch P x B; metrics averaged") {
  ensure_dist();
  const int p = dist::world_size();
  const heed::data::TensorDataset train = classification_data(48, 1), val = classification_data(20, 2);
  heed::FitOptions options;
  options.epochs(3);
  options.batch_size(4);
  options.seed(5);
  options.verbose(false);
  // fit, distributed: every rank starts from a different model; fit's DataParallel takes rank 0's.
  heed::manual_seed(21 + 100 * static_cast<uint64_t>(dist::rank()));
  Classifier model;
  heed::optim::SGD opt(model.parameters(), heed::optim::SGDOptions(0.2).momentum(0.5));
  const heed::History history = heed::fit(model, opt, train, classifier_step(model), options, &val);
  // One process, batch P x B, the same seed: the loop fit runs.
  heed::manual_seed(21);
  Classifier single;
  heed::optim::SGD single_opt(single.parameters(), heed::optim::SGDOptions(0.2).momentum(0.5));
  heed::data::DataLoader loader(train, heed::data::LoaderOptions().batch_size(options.batch_size() * p).shuffle(true).seed(options.seed()));
  std::vector<double> epoch_losses;
  for (int epoch = 1; epoch <= options.epochs(); ++epoch) {
    loader.reshuffle();
    double sum = 0;
    for (std::size_t b = 0; b < loader.size(); ++b) {
      single_opt.zero_grad();
      const Tensor loss = classifier_step(single)(loader.batch(b), true).loss;
      loss.backward();
      single_opt.step();
      sum += loss.item();
    }
    epoch_losses.push_back(sum / static_cast<double>(loader.size()));
  }
  CHECK(heed::max_abs_diff(flat_params(model), flat_params(single)) < 1e-5);
  CHECK(same_on_every_rank(flat_params(model)));
  REQUIRE(history.epochs.size() == 3);
  for (int e = 0; e < 3; ++e) CHECK(history.epochs[e].loss == doctest::Approx(epoch_losses[e]).epsilon(1e-5));
  CHECK(history.batch_losses.size() == 3 * 48 / static_cast<std::size_t>(4 * p));
  // Validation over all ranks is the whole validation set: the same accuracy as evaluating it here.
  const heed::EpochStats v = heed::evaluate(model, val, classifier_step(model), options.batch_size());
  CHECK(history.last().val_accuracy == doctest::Approx(v.accuracy));
  CHECK(history.last().val_loss == doctest::Approx(v.loss).epsilon(1e-4));
  // Every rank has the same history, bit for bit.
  CHECK(same_on_every_rank(heed::tensor(history.batch_losses, {static_cast<int64_t>(history.batch_losses.size())})));
}

TEST_CASE("dist: fit resumes with the same number of processes and refuses another") {
  ensure_dist();
  const heed::data::TensorDataset train = classification_data(36, 3);
  const std::string path = shared_path("resume");
  std::remove(path.c_str());
  heed::FitOptions options;
  options.batch_size(3);
  options.seed(8);
  options.verbose(false);
  options.early_stopping_patience(50);
  auto run = [&](int epochs, const std::string& resume) {
    heed::manual_seed(2);
    Classifier model;
    heed::optim::Adam opt(model.parameters(), heed::optim::AdamOptions(0.05));
    heed::FitOptions o = options;
    o.epochs(epochs);
    o.resume_checkpoint(resume);
    const heed::History h = heed::fit(model, opt, train, classifier_step(model), o);
    return std::make_pair(flat_params(model), h);
  };
  const auto straight = run(4, "");
  run(2, path);
  const auto resumed = run(4, path);
  CHECK(resumed.second.resumed);
  CHECK(heed::max_abs_diff(resumed.first, straight.first) == 0.0);
  CHECK(resumed.second.batch_losses == straight.second.batch_losses);
  // A checkpoint from a run with another number of processes is refused, clearly.
  if (dist::is_main_process()) {
    heed::io::SafetensorsFile file = heed::io::load_safetensors(path);
    auto meta = file.metadata;
    const std::string text = meta.at("heed_fit");
    const std::string key = "\"world_size\":";
    std::string changed = text;
    if (dist::world_size() > 1) {
      const std::size_t at = changed.find(key);
      REQUIRE(at != std::string::npos);
      changed.replace(at, key.size() + 1, key + "9");
    } else {
      changed.insert(1, key + "9,");
    }
    meta["heed_fit"] = changed;
    heed::nn::NamedTensors tensors(file.tensors.begin(), file.tensors.end());
    heed::io::save_safetensors(path, tensors, meta);
  }
  dist::barrier();
  const std::string e = heed::testing::error_of([&] { run(6, path); });
  CHECK(e.find(fmt::format("written by a run with 9 processes, this run has {}", dist::world_size())) != std::string::npos);
  CHECK(e.find("mpirun -np 9") != std::string::npos);
  dist::barrier();
  if (dist::is_main_process()) std::remove(path.c_str());
}

TEST_CASE("dist: the grad-ready hook runs once per backward, after the leaf's last contribution") {
  // Plain autograd (no communication), here because DataParallel is its user.
  Tensor w = heed::tensor({1.0, 2.0}, {2}).requires_grad_();
  Tensor u = heed::tensor({3.0}, {1}).requires_grad_();
  Tensor unused = heed::tensor({5.0}, {1}).requires_grad_();
  std::vector<std::string> calls;
  const uint64_t hw = heed::register_grad_ready_hook(w, [&](const Tensor& leaf, bool in_graph) {
    calls.push_back(fmt::format("w {} {}", fmt::join(leaf.grad().to_vector<double>(), ","), in_graph));
  });
  const uint64_t hu = heed::register_grad_ready_hook(u, [&](const Tensor& leaf, bool in_graph) {
    calls.push_back(fmt::format("u {} {}", fmt::join(leaf.grad().to_vector<double>(), ","), in_graph));
  });
  const uint64_t hn = heed::register_grad_ready_hook(unused, [&](const Tensor& leaf, bool in_graph) {
    calls.push_back(fmt::format("unused {} {}", leaf.grad().defined(), in_graph));
  });
  // w is used twice (first by the first op); u only by the last op: u's hook runs first, w's after the
  // walk passed w's first use, with both contributions in.
  const Tensor a = w * 2.0;
  const Tensor b = heed::sum(a * w) + heed::sum(u * 4.0);
  b.backward();
  REQUIRE(calls.size() == 3);
  CHECK(calls[0] == "u 4 true");
  CHECK(calls[1] == "w 4,8 true");
  CHECK(calls[2] == "unused false false");
  heed::remove_grad_ready_hook(hw);
  heed::remove_grad_ready_hook(hu);
  heed::remove_grad_ready_hook(hn);
  calls.clear();
  heed::sum(w * u).backward();
  CHECK(calls.empty());
  CHECK(heed::testing::error_of([&] { heed::register_grad_ready_hook(a, [](const Tensor&, bool) {}); })
            .find("hooks go on leaves") != std::string::npos);
}

TEST_CASE("dist: a gradient that reaches a leaf after its hook ran is an error naming the op") {
  Tensor x = heed::tensor({3.0, 4.0}, {2}).requires_grad_();
  Tensor w = heed::tensor({1.0, 2.0}, {2}).requires_grad_();
  const uint64_t id = heed::register_grad_ready_hook(w, [](const Tensor&, bool) {});
  // Entry 0, "sneaky_op", adds to w's gradient without listing w among its inputs; w's first listed use
  // is entry 1, so its hook runs before entry 0's backward: the late gradient is caught.
  const Tensor a = x.detach() * 1.0;
  heed::record("sneaky_op", a, {x}, [x, w](const Tensor& g) {
    heed::accumulate_grad(x, g);
    heed::accumulate_grad(w, g);
  });
  const Tensor y = heed::sum(a * w);
  const std::string e = heed::testing::error_of([&] { y.backward(); });
  heed::remove_grad_ready_hook(id);
  heed::clear_tape();
  CHECK(e == "sneaky_op: added to the gradient of a leaf of shape [2] after that leaf's grad-ready hook ran: the op's "
             "record() does not list the leaf among its inputs");
  // Without the hook nothing checks (and the gradient adds up).
  w.zero_grad();
  const Tensor a2 = x.detach() * 1.0;
  heed::record("sneaky_op", a2, {x}, [x, w](const Tensor& g) { heed::accumulate_grad(w, g); });
  heed::sum(a2 * w).backward();
  heed::testing::check_values(w.grad(), {2}, {4.0, 6.0});  // a2 + the sneaky w
}
