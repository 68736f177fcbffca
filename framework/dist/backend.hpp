// framework/dist/backend.hpp — heed::dist's private layer over MPI: the runtime state and raw operations
// on dense buffers, without the cross-rank checks of the public collectives (heed/dist.hpp). In a world
// of one process (no launcher, or heed built without MPI) every operation is a local copy or nothing.
// Only framework/dist/*.cpp include this file; HEED_HAVE_MPI is set when CMake found MPI.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#if HEED_HAVE_MPI
#include <mpi.h>
#endif

#include "heed/dist.hpp"

namespace heed::dist::detail {

struct Runtime {
  bool initialized = false;  // init() ran, finalize() not yet
  bool finalized = false;
  bool mpi = false;          // MPI is in use (a launcher started us, or the program initialized MPI itself)
  bool owns_mpi = false;     // heed called MPI_Init_thread, so heed calls MPI_Finalize
  int rank = 0, size = 1, local_rank = 0, local_size = 1;
};
Runtime& runtime();

// Throws heed::Error "dist::<what>: ..." unless init() ran (and finalize() did not).
void require_init(const char* what);

// The number of processes the launcher in the environment (mpirun, srun --mpi, hydra) started, 0 when this
// process was not started by one, -1 when it was but the launcher does not say how many.
int launcher_world_size();

// The first element's address, whatever the dtype.
void* raw_data(const Tensor& t);
// t itself when dense, else a dense copy (no grad recorded).
Tensor dense(const Tensor& t);
// Copies the dense `buffer` into t when buffer is a copy (not t itself).
void write_back(const Tensor& t, const Tensor& buffer);
// Divides every element of a dense Float32/Float64 tensor by p, in place.
void divide_(const Tensor& dense_buffer, int p);

// Raw operations on dense memory, on every rank (no shape checks).
void raw_bcast(void* data, std::size_t bytes, int root);
void raw_allgather(const void* send, std::size_t bytes, void* recv);  // recv: bytes x world size
void raw_allreduce_sum(void* data, int64_t count, DType dtype);
void raw_barrier();
// Every rank's string, in rank order.
std::vector<std::string> allgather_strings(const std::string& mine);

// A started nonblocking collective (MPI_Iallreduce / MPI_Iallgather). The caller keeps the buffers alive
// until done; a default-constructed Request is done.
class Request {
 public:
  Request() = default;
  static Request iallreduce_sum(void* data, int64_t count, DType dtype);  // in place
  static Request iallgather(const void* send, int64_t count, DType dtype, void* recv);
  bool test();       // lets MPI progress; true once finished
  void wait();       // blocks until finished
  bool pending() const { return pending_; }

 private:
  bool pending_ = false;
#if HEED_HAVE_MPI
  MPI_Request request_ = MPI_REQUEST_NULL;
#endif
};

// Keeps `state` alive until the process ends: the buffers of a collective that cannot be waited for
// (an exception is propagating) must not be freed while MPI may still write into them.
void keep_until_exit(std::shared_ptr<void> state);

}  // namespace heed::dist::detail
