// heed/dist.hpp — training on several processes and machines (heed::dist), on MPI.
//
//   int main(int argc, char** argv) {
//     heed::dist::init(&argc, &argv);            // under mpirun: one process per rank; alone: world size 1
//     auto model = std::make_shared<Net>();
//     heed::dist::DataParallel ddp(*model);       // rank 0's parameters everywhere; gradients averaged
//     ...                                         // the usual loop: forward, loss.backward(), optimizer.step()
//     heed::dist::finalize();
//   }
//   mpirun -np 4 ./train                          (docs/distributed.md: several machines, --hostfile)
//
// Processes ("ranks") run the same program on different data (heed::data::DistributedSampler, or
// heed::fit, which shards and averages by itself). DataParallel averages the gradients during backward:
// when backward() returns, every rank holds the same averaged gradients, so the same optimizer step keeps
// the models identical.
//
// Without mpirun (no launcher in the environment), and in a heed built without MPI, init() makes a world
// of one process: rank 0 of 1, the collectives return their input, DataParallel does nothing. A heed built
// without MPI started by mpirun with several processes refuses to run (init throws) rather than train N
// unrelated copies.
//
// Collectives take heed tensors of dtype Float32, Float64 or Int64 (broadcast and allgather also Bool),
// contiguous or not, and check (one small extra message) that every rank passes the same collective with
// the same shape and dtype: a mismatch throws heed::Error on every rank, naming the collective, the ranks
// and their shapes, instead of hanging or mixing data. Call them from one thread at a time (MPI is
// initialized at MPI_THREAD_SERIALIZED), on every rank, in the same order.
//
// Failure: an error on one rank must not leave the others waiting forever in a collective. After init():
//   - an exception that escapes main (std::terminate) prints "heed::dist: rank R: <what()>" and calls
//     MPI_Abort, which ends every rank of the job;
//   - a process that exits before finalize() (e.g. main caught an error and returned 1) aborts the job
//     the same way from an atexit handler, after printing why;
//   - abort(message) does it explicitly.
// mpirun then exits with a non-zero status. So: call finalize() only on success, at the end of main.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "heed/options.hpp"
#include "heed/tensor.hpp"

namespace heed::nn {
class Module;
}

/// Distributed training: processes, collectives on tensors, DataParallel (see heed/dist.hpp).
namespace heed::dist {

// ---- processes ------------------------------------------------------------------------------------------

/// True when heed was built with MPI (CMake found it); false: every world has one process.
bool available();
/// Starts the distributed runtime: MPI_Init_thread (MPI_THREAD_SERIALIZED) when a launcher (mpirun, srun)
/// started this process, else a world of one process. Installs the failure handlers (see the header
/// comment). argc/argv may be null. Calling it again does nothing; after finalize() it throws.
void init(int* argc = nullptr, char*** argv = nullptr);
/// Ends the runtime (MPI_Finalize) after a successful run; every rank must call it. Later calls do nothing.
void finalize();
/// init() was called and finalize() not yet.
bool is_initialized();
/// init() was called and the world has more than one process (what heed::fit checks).
bool is_distributed();
/// This process's number, 0 .. world_size() - 1. Throws heed::Error before init(), as do the next three.
int rank();
/// The number of processes in the job.
int world_size();
/// This process's number among the processes on the same machine (e.g. to pick a GPU or a core set).
int local_rank();
/// The number of processes on this machine.
int local_size();
/// rank() == 0: the process that prints and writes files. Before init(): true (a single process).
bool is_main_process();
/// Prints "heed::dist: rank R: message" to stderr and ends the whole job with `exit_code` (MPI_Abort;
/// without MPI, std::exit). Never returns.
[[noreturn]] void abort(const std::string& message, int exit_code = 1);

// ---- collectives ----------------------------------------------------------------------------------------

/// How allreduce combines the ranks' values.
enum class ReduceOp {
  Sum,   ///< the elementwise sum over ranks
  Mean,  ///< the sum divided by world_size() (float dtypes only)
};

/// Replaces t's elements, on every rank, by their sum (or mean) over ranks (MPI_Allreduce; the order of
/// the floating-point additions is MPI's). t: Float32, Float64 or Int64, the same shape on every rank.
void allreduce_(const Tensor& t, ReduceOp op = ReduceOp::Sum);
/// Overwrites t on every rank with rank `root`'s values (MPI_Bcast). Same shape and dtype on every rank.
void broadcast_(const Tensor& t, int root = 0);
/// Every rank's t stacked along a new first axis: shape (world_size(), t.shape()...), rank r at index r.
Tensor allgather(const Tensor& t);
/// Waits until every rank has called barrier().
void barrier();

/// The handle of a nonblocking collective: the result is in the tensor once test() returned true or
/// wait() returned. MPI moves the data only while some MPI call runs: call test() now and then while
/// computing something else, then wait(). Destroying a pending handle waits for it (unless an exception
/// is propagating: then its buffers are kept until finalize() and it is not waited for).
class Work {
 public:
  Work();  ///< a finished, empty handle
  ~Work();
  Work(Work&&) noexcept;  ///< moves the pending operation
  Work& operator=(Work&&) noexcept;  ///< waits for the pending operation first
  Work(const Work&) = delete;
  Work& operator=(const Work&) = delete;
  /// Lets MPI progress; true once the collective has finished and the result is in place.
  bool test();
  void wait();  ///< blocks until the result is in place
  bool done() const;  ///< finished (or empty), without calling MPI
  /// Implementation state (heed's own; holds the MPI request).
  struct State;
  /// Wraps a started operation (what allreduce_async returns).
  explicit Work(std::unique_ptr<State> state);

 private:
  std::unique_ptr<State> state_;
};
/// Starts allreduce_(t, op) without waiting (MPI_Iallreduce); t must not be read or written until the
/// handle is done. Checks shapes across ranks before it starts (a short blocking exchange).
Work allreduce_async(const Tensor& t, ReduceOp op = ReduceOp::Sum);

// ---- data parallelism -----------------------------------------------------------------------------------

/// Settings of DataParallel.
struct DataParallelOptions {
  /// Gradient bytes per bucket, in MiB (PyTorch's bucket_cap_mb, 25). One allreduce per bucket.
  HEED_ARG(double, bucket_mb) = 25.0;
  /// The first bucket (the last-registered parameters, whose gradients are ready first) is smaller so
  /// that communication starts early; PyTorch uses 1 MiB too.
  HEED_ARG(double, first_bucket_mb) = 1.0;
  /// true: each bucket is all-gathered and every rank sums the ranks' gradients in rank order (0, 1, 2,
  /// ...), then divides by the world size: the result does not depend on MPI's algorithms and equals,
  /// bit for bit, one process that computes each rank's gradient separately and averages them in that
  /// order. Traffic per rank: (P - 1) x the gradients. false: MPI_Iallreduce (about 2 x the gradients
  /// per rank whatever P, the summation order is MPI's); prefer it beyond about 8 processes.
  HEED_ARG(bool, ordered) = true;
};

/// Data-parallel training of a module (PyTorch's DistributedDataParallel, in heed's shape).
///
/// Construction checks that every rank has the same parameters and buffers (names, shapes, dtypes; an
/// error names the first difference and the ranks) and copies rank 0's values to every rank. It then
/// splits the trainable parameters, in reverse registration order, into buckets (per dtype, about
/// options.bucket_mb each) and puts a grad-ready hook (heed/autograd.hpp) on each parameter. During
/// every backward pass that involves the module, a bucket is sent as soon as all its gradients are final
/// (buckets go out in bucket order on every rank), so communication overlaps the rest of the backward
/// walk; when the last parameter is final, backward waits for every bucket and writes the averaged
/// gradients into the parameters' .grad(). So after loss.backward() the gradients are averaged; call the
/// optimizer as usual.
///
/// The average is over all ranks (the sum divided by world_size()), which makes P ranks with batch B
/// each equal to one process with batch P x B when the loss is a mean over the batch. A parameter that
/// got no gradient on a rank (unused in its forward) counts as zeros there; one that got none on any rank
/// keeps no gradient (the optimizer skips it, as in a single process).
///
/// With one process it does nothing (no hooks): training is exactly single-process training.
/// Buffers are copied from rank 0 at construction only; call broadcast_buffers() to copy them again
/// (e.g. running statistics). Construct it on the thread that trains (the hooks run in that thread's
/// backward passes), before the forward pass of the first step, and keep it alive for as long as you
/// train; its hooks are removed when it is destroyed.
class DataParallel {
 public:
  /// See the class comment. Throws heed::Error before dist::init() or when the ranks' modules differ.
  explicit DataParallel(nn::Module& module, DataParallelOptions options = DataParallelOptions());
  ~DataParallel();
  DataParallel(const DataParallel&) = delete;
  DataParallel& operator=(const DataParallel&) = delete;

  nn::Module& module() const;  ///< the wrapped module

  /// While the returned guard lives, backward passes only accumulate local gradients (no communication):
  /// gradient accumulation over several micro-batches, where the last backward, outside the guard,
  /// averages the accumulated sums.
  ///   { auto local = ddp.no_sync(); loss1.backward(); }  loss2.backward();  optimizer.step();
  class NoSync {
   public:
    ~NoSync();
    NoSync(NoSync&& other) noexcept;  ///< the moved-from guard no longer ends the no-sync scope
    NoSync(const NoSync&) = delete;
    NoSync& operator=(const NoSync&) = delete;
    NoSync& operator=(NoSync&&) = delete;

   private:
    friend class DataParallel;
    explicit NoSync(DataParallel* owner);
    DataParallel* owner_;
  };
  NoSync no_sync();  ///< see NoSync

  /// Copies rank 0's buffers (the module's state that is not trained) to every rank; every rank must call it.
  void broadcast_buffers();

  /// The parameter names of each bucket, in the order the buckets are sent (for inspection and docs).
  std::vector<std::vector<std::string>> bucket_names() const;

  /// Counters since construction or reset_stats().
  struct Stats {
    int64_t syncs = 0;           ///< backward passes whose gradients were averaged
    int64_t buckets_sent = 0;    ///< bucket collectives started
    double megabytes_sent = 0;   ///< gradient data contributed by this rank (MB, 10^6 bytes)
    double wait_seconds = 0;     ///< time backward spent blocked on unfinished collectives at the end
    double comm_seconds = 0;     ///< time in packing, MPI calls and unpacking (wait_seconds included)
  };
  const Stats& stats() const;  ///< see Stats
  void reset_stats();  ///< zeroes the counters

  /// Implementation state (heed's own).
  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

/// True when a DataParallel currently wraps `module` (heed::fit then uses it instead of making its own).
bool has_data_parallel(const nn::Module& module);

}  // namespace heed::dist
