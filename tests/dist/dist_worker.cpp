// tests/dist/dist_worker.cpp — a distributed training job in which the last rank fails mid-training; run
// under mpirun by tests/dist/run_job.sh (tests/CMakeLists.txt), which checks that the whole job ends, with
// a non-zero status and the failing rank's message, instead of leaving the other ranks waiting forever in
// a collective.
//
//   dist_worker throw    the last rank throws heed::Error at step 3 and does not catch it (std::terminate)
//   dist_worker return   the last rank catches it, prints it and returns 1 from main (no finalize())
//   dist_worker fit      heed::fit; the step function throws on the last rank in the first epoch
//   dist_worker backward the last rank throws inside backward, after DataParallel sent its first buckets;
//                        main catches it and returns 1
//   dist_worker ok       nobody fails: the job ends with status 0 (the control)
#include <cstdio>
#include <heed/heed.hpp>
#include <string>

namespace {

using heed::Tensor;
namespace nn = heed::nn;

struct Net : nn::Module {
  Net() : Module("Net") {
    fc1 = register_module("fc1", std::make_shared<nn::Linear>(8, 32));
    fc2 = register_module("fc2", std::make_shared<nn::Linear>(32, 1));
  }
  Tensor forward(const Tensor& x) override { return fc2->forward(heed::tanh(fc1->forward(x))); }
  std::shared_ptr<nn::Linear> fc1, fc2;
};

bool failing = true;  // false in mode "ok"

void fail_if_last(int step) {
  const int last = heed::dist::world_size() - 1;
  if (failing && heed::dist::rank() == last && step == 3)
    throw heed::Error(fmt::format("dist_worker: simulated failure on rank {} at step {}", last, step));
}

// Far more steps than the test's time limit allows for a hung job: the other ranks are still training
// (waiting in an allreduce for the failed rank) when it fails.
// in_backward: the failure comes from the backward of an op between fc1 and fc2, when fc2's gradients are
// final and their buckets (one per parameter here) are on their way, and fc1's are not computed yet.
void train_loop(int steps, bool in_backward) {
  heed::manual_seed(1);
  Net net;
  heed::dist::DataParallel ddp(net, heed::dist::DataParallelOptions().bucket_mb(1e-6).first_bucket_mb(1e-6));
  heed::optim::SGD opt(net.parameters(), heed::optim::SGDOptions(0.01));
  heed::Generator gen(static_cast<uint64_t>(heed::dist::rank()));
  for (int step = 0; step < steps; ++step) {
    if (!in_backward) fail_if_last(step);
    opt.zero_grad();
    const Tensor x = heed::randn({16, 8}, heed::DType::Float32, &gen);
    const Tensor hidden = heed::tanh(net.fc1->forward(x));
    const Tensor same = hidden.detach() * 1.0;  // an identity whose backward fails on the last rank at step 3
    heed::record("failing_identity", same, {hidden}, [hidden, step](const Tensor& g) {
      fail_if_last(step);
      heed::accumulate_grad(hidden, g);
    });
    heed::mean(heed::square(net.fc2->forward(same))).backward();
    opt.step();
  }
}

void train_fit() {
  heed::manual_seed(1);
  Net net;
  heed::optim::SGD opt(net.parameters(), heed::optim::SGDOptions(0.01));
  heed::Generator gen(5);
  const heed::data::TensorDataset data({heed::randn({4000, 8}, heed::DType::Float32, &gen), heed::zeros({4000, 1})});
  int calls = 0;
  auto step = [&](const std::vector<Tensor>& batch, bool) {
    fail_if_last(calls++);
    return heed::StepOutput{heed::mean(heed::square(net.forward(batch[0]) - batch[1])), -1, 0};
  };
  heed::FitOptions options;
  options.epochs(1000);
  options.batch_size(8);
  options.verbose(false);
  heed::fit(net, opt, data, step, options);
}

}  // namespace

int main(int argc, char** argv) {
  const std::string mode = argc > 1 ? argv[1] : "";
  heed::dist::init(&argc, &argv);
  if (mode == "throw") {
    train_loop(1000000, false);  // the exception leaves main: std::terminate
  } else if (mode == "return" || mode == "fit" || mode == "backward") {
    try {
      if (mode == "fit") {
        train_fit();
      } else {
        train_loop(1000000, mode == "backward");
      }
    } catch (const heed::Error& e) {
      std::fprintf(stderr, "error: %s\n", e.what());
      return 1;  // without finalize(): the exit handler ends the job
    }
  } else if (mode == "ok") {
    failing = false;
    train_loop(20, true);
    if (heed::dist::is_main_process()) std::printf("dist_worker: all %d ranks trained\n", heed::dist::world_size());
  } else {
    std::fprintf(stderr, "usage: dist_worker throw|return|fit|backward|ok\n");
    return 2;
  }
  heed::dist::finalize();
  return 0;
}
