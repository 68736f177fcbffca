// framework/dist/dist.cpp — heed::dist's runtime, failure handling and collectives (heed/dist.hpp).
#include <algorithm>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <mutex>
#include <utility>

#include "dist/backend.hpp"
#include "heed/autograd.hpp"
#include "heed/dist.hpp"

namespace heed::dist {
namespace detail {

Runtime& runtime() {
  static Runtime r;
  return r;
}

namespace {

#if HEED_HAVE_MPI
// heed's own communicators: a duplicate of MPI_COMM_WORLD, so that the program's own MPI calls never match
// heed's messages, and the processes of this machine.
MPI_Comm world_comm = MPI_COMM_NULL;
MPI_Comm node_comm = MPI_COMM_NULL;

MPI_Datatype mpi_type(DType dtype) {
  switch (dtype) {
    case DType::Float32:
      return MPI_FLOAT;
    case DType::Float64:
      return MPI_DOUBLE;
    case DType::Int64:
      return MPI_INT64_T;
    case DType::Bool:
      return MPI_UINT8_T;
  }
  return MPI_BYTE;
}

int mpi_count(int64_t count, const char* what) {
  HEED_CHECK(count <= INT_MAX, "dist::{}: {} elements exceed MPI's count limit ({})", what, count, INT_MAX);
  return static_cast<int>(count);
}
#endif

std::mutex keep_mutex;
std::vector<std::shared_ptr<void>>& kept() {
  static std::vector<std::shared_ptr<void>> k;
  return k;
}

}  // namespace

void keep_until_exit(std::shared_ptr<void> state) {
  std::lock_guard<std::mutex> lock(keep_mutex);
  kept().push_back(std::move(state));
}

void require_init(const char* what) {
  const Runtime& rt = runtime();
  HEED_CHECK(!rt.finalized, "dist::{}: heed::dist::finalize() was already called", what);
  HEED_CHECK(rt.initialized,
             "dist::{}: heed::dist::init() has not been called (call it at the start of main, before any other "
             "heed::dist function)",
             what);
}

int launcher_world_size() {
  // Open MPI's mpirun, then PMI (MPICH's hydra, srun --mpi=pmi2), then PMIx (srun --mpi=pmix, Open MPI 5).
  for (const char* name : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "MPI_LOCALNRANKS"}) {
    if (const char* v = std::getenv(name)) {
      const int n = std::atoi(v);
      if (n > 0) return n;
    }
  }
  if (std::getenv("PMIX_RANK") || std::getenv("PMI_RANK")) return -1;
  return 0;
}

void raw_bcast(void* data, std::size_t bytes, int root) {
#if HEED_HAVE_MPI
  if (runtime().mpi && runtime().size > 1) {
    auto* p = static_cast<char*>(data);
    for (std::size_t done = 0; done < bytes;) {  // MPI counts are int: chunks of at most 1 GiB
      const std::size_t n = std::min<std::size_t>(bytes - done, std::size_t{1} << 30);
      MPI_Bcast(p + done, static_cast<int>(n), MPI_BYTE, root, world_comm);
      done += n;
    }
  }
#else
  (void)data, (void)bytes, (void)root;
#endif
}

void raw_allgather(const void* send, std::size_t bytes, void* recv) {
#if HEED_HAVE_MPI
  if (runtime().mpi && runtime().size > 1) {
    MPI_Allgather(send, mpi_count(static_cast<int64_t>(bytes), "allgather"), MPI_BYTE, recv,
                  static_cast<int>(bytes), MPI_BYTE, world_comm);
    return;
  }
#endif
  if (bytes) std::memcpy(recv, send, bytes);
}

void raw_allreduce_sum(void* data, int64_t count, DType dtype) {
#if HEED_HAVE_MPI
  if (runtime().mpi && runtime().size > 1)
    MPI_Allreduce(MPI_IN_PLACE, data, mpi_count(count, "allreduce"), mpi_type(dtype), MPI_SUM, world_comm);
#else
  (void)data, (void)count, (void)dtype;
#endif
}

void raw_barrier() {
#if HEED_HAVE_MPI
  if (runtime().mpi && runtime().size > 1) MPI_Barrier(world_comm);
#endif
}

std::vector<std::string> allgather_strings(const std::string& mine) {
  const int p = runtime().size;
  std::vector<int64_t> lengths(static_cast<std::size_t>(p));
  const int64_t n = static_cast<int64_t>(mine.size());
  raw_allgather(&n, sizeof n, lengths.data());
  std::vector<std::string> out(static_cast<std::size_t>(p));
#if HEED_HAVE_MPI
  if (runtime().mpi && p > 1) {
    std::vector<int> counts(static_cast<std::size_t>(p)), offsets(static_cast<std::size_t>(p));
    int64_t total = 0;
    for (int r = 0; r < p; ++r) {
      counts[r] = mpi_count(lengths[r], "allgather");
      offsets[r] = mpi_count(total, "allgather");
      total += lengths[r];
    }
    std::string all(static_cast<std::size_t>(total), '\0');
    MPI_Allgatherv(mine.data(), counts[runtime().rank], MPI_CHAR, all.data(), counts.data(), offsets.data(), MPI_CHAR,
                   world_comm);
    for (int r = 0; r < p; ++r) out[r] = all.substr(static_cast<std::size_t>(offsets[r]), static_cast<std::size_t>(counts[r]));
    return out;
  }
#endif
  out[0] = mine;
  return out;
}

Request Request::iallreduce_sum(void* data, int64_t count, DType dtype) {
  Request r;
#if HEED_HAVE_MPI
  if (runtime().mpi && runtime().size > 1) {
    MPI_Iallreduce(MPI_IN_PLACE, data, mpi_count(count, "allreduce"), mpi_type(dtype), MPI_SUM, world_comm,
                   &r.request_);
    r.pending_ = true;
  }
#else
  (void)data, (void)count, (void)dtype;
#endif
  return r;
}

Request Request::iallgather(const void* send, int64_t count, DType dtype, void* recv) {
  Request r;
#if HEED_HAVE_MPI
  if (runtime().mpi && runtime().size > 1) {
    const int n = mpi_count(count, "allgather");
    MPI_Iallgather(send, n, mpi_type(dtype), recv, n, mpi_type(dtype), world_comm, &r.request_);
    r.pending_ = true;
    return r;
  }
#endif
  if (count) std::memcpy(recv, send, static_cast<std::size_t>(count) * dtype_size(dtype));
  return r;
}

// ---- dense buffers ----------------------------------------------------------------------------------------

// The first element's address, whatever the dtype.
void* raw_data(const Tensor& t) {
  return static_cast<char*>(t.impl()->storage->data()) + t.offset() * static_cast<int64_t>(dtype_size(t.dtype()));
}

// A dense copy of t's elements (t itself when already dense and starting at its storage's beginning).
Tensor dense(const Tensor& t) {
  NoGradGuard no_grad;
  return t.is_contiguous() ? t : t.detach().contiguous();
}

// Writes the dense `buffer` back into t when t was not dense (buffer is not t's storage).
void write_back(const Tensor& t, const Tensor& buffer) {
  if (buffer.impl() == t.impl()) return;
  NoGradGuard no_grad;
  Tensor target = t.detach();
  target.copy_(buffer);
}

void divide_(const Tensor& dense_buffer, int p) {
  const int64_t n = dense_buffer.numel();
  if (dense_buffer.dtype() == DType::Float32) {
    float* x = dense_buffer.data<float>();
    for (int64_t i = 0; i < n; ++i) x[i] /= static_cast<float>(p);
  } else {
    double* x = dense_buffer.data<double>();
    for (int64_t i = 0; i < n; ++i) x[i] /= static_cast<double>(p);
  }
}

bool Request::test() {
#if HEED_HAVE_MPI
  if (pending_) {
    int flag = 0;
    MPI_Test(&request_, &flag, MPI_STATUS_IGNORE);
    pending_ = !flag;
  }
#endif
  return !pending_;
}

void Request::wait() {
#if HEED_HAVE_MPI
  if (pending_) MPI_Wait(&request_, MPI_STATUS_IGNORE);
#endif
  pending_ = false;
}

}  // namespace detail

using detail::Runtime;
using detail::runtime;

namespace {

// ---- failure: one rank's error ends the job ---------------------------------------------------------------

#if HEED_HAVE_MPI
std::terminate_handler previous_terminate = nullptr;

[[noreturn]] void mpi_abort(int code) {
  std::fflush(stdout);
  std::fflush(stderr);
  MPI_Abort(MPI_COMM_WORLD, code);
  std::_Exit(code);  // MPI_Abort does not return; if it did, still end this process
}

// std::terminate (an exception escaped main, or a noexcept function threw): say what and end every rank.
void on_terminate() {
  const Runtime& rt = runtime();
  if (rt.mpi && !rt.finalized) {
    std::string what = "an exception that is not a std::exception";
    if (std::exception_ptr e = std::current_exception()) {
      try {
        std::rethrow_exception(e);
      } catch (const std::exception& ex) {
        what = ex.what();
      } catch (...) {
      }
    } else {
      what = "std::terminate called without an active exception";
    }
    std::fprintf(stderr, "heed::dist: rank %d of %d: uncaught exception: %s\nheed::dist: aborting the job (MPI_Abort)\n",
                 rt.rank, rt.size, what.c_str());
    mpi_abort(1);
  }
  if (previous_terminate) previous_terminate();
  std::abort();
}

// Leaving without finalize() (main returned an error, or exit() was called) while the other ranks may wait
// in a collective for this one: end the whole job instead.
void on_exit() {
  const Runtime& rt = runtime();
  if (!rt.mpi || rt.finalized) return;
  std::fprintf(stderr,
               "heed::dist: rank %d of %d is exiting without heed::dist::finalize() (after an error?): aborting the "
               "job so that the other ranks do not wait for it\n",
               rt.rank, rt.size);
  mpi_abort(1);
}
#endif

// ---- the cross-rank check of a collective's arguments ---------------------------------------------------

// What a rank passes to a collective, compared across ranks before the data moves.
struct Signature {
  int64_t collective;  // index into kCollectives
  int64_t extra;       // broadcast: the root; allreduce: the op
  int64_t dtype, ndim, numel;
  int64_t dims[8];     // the first 8 axes
  int64_t dims_hash;   // all axes
};
constexpr const char* kCollectives[] = {"allreduce", "broadcast", "allgather", "barrier"};
enum Collective : int64_t { kAllreduce, kBroadcast, kAllgather, kBarrier };

Signature signature_of(Collective c, int64_t extra, const Tensor* t) {
  Signature s{};
  s.collective = c;
  s.extra = extra;
  if (t) {
    s.dtype = static_cast<int64_t>(t->dtype());
    s.ndim = t->dim();
    s.numel = t->numel();
    uint64_t h = 1469598103934665603ull;
    for (int64_t i = 0; i < s.ndim; ++i) {
      if (i < 8) s.dims[i] = t->shape()[static_cast<std::size_t>(i)];
      h = (h ^ static_cast<uint64_t>(t->shape()[static_cast<std::size_t>(i)])) * 1099511628211ull;
    }
    s.dims_hash = static_cast<int64_t>(h);
  }
  return s;
}

std::string describe(const Signature& s) {
  std::string what = fmt::format("dist::{}", kCollectives[s.collective]);
  if (s.collective == kBroadcast) what += fmt::format(" (root {})", s.extra);
  if (s.collective == kAllreduce) what += s.extra == 0 ? " (sum)" : " (mean)";
  if (s.collective == kBarrier) return what;
  Shape shape;
  for (int64_t i = 0; i < std::min<int64_t>(s.ndim, 8); ++i) shape.push_back(s.dims[i]);
  std::string shape_text = shape_str(shape);
  if (s.ndim > 8) shape_text = fmt::format("{}-d, {} elements", s.ndim, s.numel);
  return fmt::format("{} on {} {}", what, shape_text, dtype_name(static_cast<DType>(s.dtype)));
}

// Every rank exchanges its signature; when any differs from rank 0's, every rank throws the same error.
void check_same_across_ranks(Collective c, int64_t extra, const Tensor* t) {
  const Runtime& rt = runtime();
  if (rt.size == 1) return;
  const Signature mine = signature_of(c, extra, t);
  std::vector<Signature> all(static_cast<std::size_t>(rt.size));
  detail::raw_allgather(&mine, sizeof mine, all.data());
  std::string differences;
  for (int r = 1; r < rt.size; ++r) {
    if (std::memcmp(&all[r], &all[0], sizeof(Signature)) == 0) continue;
    differences += fmt::format("; rank {} calls {}", r, describe(all[r]));
  }
  if (differences.empty()) return;
  throw Error(fmt::format("dist::{}: the ranks disagree (seen from rank {}): rank 0 calls {}{}", kCollectives[c],
                          rt.rank, describe(all[0]), differences));
}

void check_tensor(const char* what, const Tensor& t, bool allow_bool) {
  HEED_CHECK(t.defined(), "dist::{}: the tensor is undefined (rank {})", what, runtime().rank);
  const DType d = t.dtype();
  HEED_CHECK(d == DType::Float32 || d == DType::Float64 || d == DType::Int64 || (allow_bool && d == DType::Bool),
             "dist::{}: {} tensors are not supported (shape {}, rank {}); use Float32, Float64 or Int64", what,
             dtype_name(d), shape_str(t.shape()), runtime().rank);
}

}  // namespace

// ---- processes ------------------------------------------------------------------------------------------

bool available() {
#if HEED_HAVE_MPI
  return true;
#else
  return false;
#endif
}

void init(int* argc, char*** argv) {
  Runtime& rt = runtime();
  if (rt.initialized) return;
  HEED_CHECK(!rt.finalized, "dist::init: heed::dist::finalize() was already called; init() works once per process");
  const int launched = detail::launcher_world_size();
#if HEED_HAVE_MPI
  int already = 0;
  MPI_Initialized(&already);
  if (launched != 0 || already) {
    if (!already) {
      int provided = MPI_THREAD_SINGLE;
      MPI_Init_thread(argc, argv, MPI_THREAD_SERIALIZED, &provided);
      rt.owns_mpi = true;
      HEED_CHECK(provided >= MPI_THREAD_FUNNELED,
                 "dist::init: the MPI library offers thread level {}, heed needs MPI_THREAD_FUNNELED or more", provided);
    }
    MPI_Comm_dup(MPI_COMM_WORLD, &detail::world_comm);
    MPI_Comm_rank(detail::world_comm, &rt.rank);
    MPI_Comm_size(detail::world_comm, &rt.size);
    MPI_Comm_split_type(detail::world_comm, MPI_COMM_TYPE_SHARED, rt.rank, MPI_INFO_NULL, &detail::node_comm);
    MPI_Comm_rank(detail::node_comm, &rt.local_rank);
    MPI_Comm_size(detail::node_comm, &rt.local_size);
    rt.mpi = true;
    static bool handlers_installed = false;
    if (!handlers_installed) {
      handlers_installed = true;
      previous_terminate = std::set_terminate(on_terminate);
      std::atexit(on_exit);
    }
  }
#else
  (void)argc, (void)argv;
  HEED_CHECK(launched <= 1,
             "dist::init: this process was started by a launcher (mpirun?) with {} processes, but heed was built "
             "without MPI: every process would train alone. Install MPI (Debian: libopenmpi-dev openmpi-bin) and "
             "rebuild heed, or run one process",
             launched);
#endif
  rt.initialized = true;
}

void finalize() {
  Runtime& rt = runtime();
  if (!rt.initialized) return;
#if HEED_HAVE_MPI
  if (rt.mpi) {
    MPI_Comm_free(&detail::node_comm);
    MPI_Comm_free(&detail::world_comm);
    if (rt.owns_mpi) MPI_Finalize();
  }
#endif
  rt.initialized = false;
  rt.finalized = true;
}

bool is_initialized() { return runtime().initialized; }
bool is_distributed() { return runtime().initialized && runtime().size > 1; }

int rank() {
  detail::require_init("rank");
  return runtime().rank;
}
int world_size() {
  detail::require_init("world_size");
  return runtime().size;
}
int local_rank() {
  detail::require_init("local_rank");
  return runtime().local_rank;
}
int local_size() {
  detail::require_init("local_size");
  return runtime().local_size;
}
bool is_main_process() { return !runtime().initialized || runtime().rank == 0; }

void abort(const std::string& message, int exit_code) {
  const Runtime& rt = runtime();
  std::fprintf(stderr, "heed::dist: rank %d of %d: %s\n", rt.rank, rt.size, message.c_str());
#if HEED_HAVE_MPI
  if (rt.mpi && !rt.finalized) mpi_abort(exit_code);
#endif
  std::fflush(stdout);
  std::exit(exit_code);
}

// ---- collectives ----------------------------------------------------------------------------------------

void allreduce_(const Tensor& t, ReduceOp op) {
  detail::require_init("allreduce");
  check_tensor("allreduce", t, false);
  HEED_CHECK(op == ReduceOp::Sum || is_floating(t.dtype()),
             "dist::allreduce: the mean of an {} tensor (shape {}, rank {}) is not an integer; use ReduceOp::Sum",
             dtype_name(t.dtype()), shape_str(t.shape()), runtime().rank);
  check_same_across_ranks(kAllreduce, static_cast<int64_t>(op), &t);
  const Tensor buffer = detail::dense(t);
  detail::raw_allreduce_sum(detail::raw_data(buffer), buffer.numel(), buffer.dtype());
  if (op == ReduceOp::Mean) detail::divide_(buffer, runtime().size);
  detail::write_back(t, buffer);
}

void broadcast_(const Tensor& t, int root) {
  detail::require_init("broadcast");
  check_tensor("broadcast", t, true);
  const Runtime& rt = runtime();
  HEED_CHECK(root >= 0 && root < rt.size, "dist::broadcast: root {} is not a rank (world size {}, rank {})", root,
             rt.size, rt.rank);
  check_same_across_ranks(kBroadcast, root, &t);
  const Tensor buffer = detail::dense(t);
  detail::raw_bcast(detail::raw_data(buffer), static_cast<std::size_t>(buffer.numel()) * dtype_size(buffer.dtype()), root);
  detail::write_back(t, buffer);
}

Tensor allgather(const Tensor& t) {
  detail::require_init("allgather");
  check_tensor("allgather", t, true);
  check_same_across_ranks(kAllgather, 0, &t);
  const Tensor buffer = detail::dense(t);
  Shape shape = t.shape();
  shape.insert(shape.begin(), runtime().size);
  Tensor out = make_tensor(shape, t.dtype());
  detail::raw_allgather(detail::raw_data(buffer), static_cast<std::size_t>(buffer.numel()) * dtype_size(buffer.dtype()),
                        detail::raw_data(out));
  return out;
}

void barrier() {
  detail::require_init("barrier");
  check_same_across_ranks(kBarrier, 0, nullptr);
  detail::raw_barrier();
}

// ---- nonblocking allreduce ------------------------------------------------------------------------------

struct Work::State {
  detail::Request request;
  Tensor target, buffer;  // the user's tensor; its dense copy (the same tensor when it is dense)
  ReduceOp op = ReduceOp::Sum;
  int world = 1;
  bool finished = false;

  void complete() {
    if (finished) return;
    finished = true;
    if (op == ReduceOp::Mean) detail::divide_(buffer, world);
    detail::write_back(target, buffer);
  }
};

Work::Work() = default;
Work::Work(std::unique_ptr<State> state) : state_(std::move(state)) {}

Work::~Work() {
  if (!state_ || state_->finished) return;
  if (std::uncaught_exceptions() > 0) {
    detail::keep_until_exit(std::shared_ptr<State>(std::move(state_)));  // MPI may still write into it
    return;
  }
  try {
    wait();
  } catch (...) {
  }
}

Work::Work(Work&& other) noexcept = default;

Work& Work::operator=(Work&& other) noexcept {
  if (this != &other) {
    if (state_ && !state_->finished) {
      try {
        wait();
      } catch (...) {
      }
    }
    state_ = std::move(other.state_);
  }
  return *this;
}

bool Work::test() {
  if (!state_ || state_->finished) return true;
  if (state_->request.test()) state_->complete();
  return state_->finished;
}

void Work::wait() {
  if (!state_ || state_->finished) return;
  state_->request.wait();
  state_->complete();
}

bool Work::done() const { return !state_ || state_->finished; }

Work allreduce_async(const Tensor& t, ReduceOp op) {
  detail::require_init("allreduce_async");
  check_tensor("allreduce_async", t, false);
  HEED_CHECK(op == ReduceOp::Sum || is_floating(t.dtype()),
             "dist::allreduce_async: the mean of an {} tensor (shape {}, rank {}) is not an integer; use ReduceOp::Sum",
             dtype_name(t.dtype()), shape_str(t.shape()), runtime().rank);
  check_same_across_ranks(kAllreduce, static_cast<int64_t>(op), &t);
  auto state = std::make_unique<Work::State>();
  state->target = t;
  state->buffer = detail::dense(t);
  state->op = op;
  state->world = runtime().size;
  state->request = detail::Request::iallreduce_sum(detail::raw_data(state->buffer), state->buffer.numel(), t.dtype());
  Work work(std::move(state));
  work.test();  // a world of one (or a tiny message) is done at once
  return work;
}

}  // namespace heed::dist
