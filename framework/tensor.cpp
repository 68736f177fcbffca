// framework/tensor.cpp — Tensor, Storage and the creation helpers.
#include "heed/tensor.hpp"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <functional>
#if defined(__GLIBC__)
#include <malloc.h>
#endif
#include <new>

#include "heed/autograd.hpp"
#include "heed/ops.hpp"
#include "heed/random.hpp"
#include "ops/common.hpp"

namespace heed {

std::string shape_str(const std::vector<int64_t>& shape) { return fmt::format("[{}]", fmt::join(shape, ", ")); }

std::size_t dtype_size(DType d) {
  switch (d) {
    case DType::Float32: return 4;
    case DType::Float64: return 8;
    case DType::Int64: return 8;
    case DType::Bool: return 1;
  }
  return 1;
}

const char* dtype_name(DType d) {
  switch (d) {
    case DType::Float32: return "Float32";
    case DType::Float64: return "Float64";
    case DType::Int64: return "Int64";
    case DType::Bool: return "Bool";
  }
  return "?";
}

int64_t shape_numel(const Shape& shape) {
  int64_t n = 1;
  for (int64_t s : shape)
    HEED_CHECK(!__builtin_mul_overflow(n, s, &n), "shape_numel: the sizes of {} multiply past 64 bits",
               shape_str(shape));
  return n;
}

// Every tensor and view heed makes passes here (make_tensor, make_view, and the readers and ops that take
// sizes from outside), so no element count, byte count, stride or offset computed from a shape can
// overflow later: the non-zero sizes must multiply to at most kMaxNumel, also when another size is 0
// (the strides still multiply them).
int64_t detail::checked_numel(const Shape& shape, const char* op) {
  int64_t product = 1;
  bool empty = false;
  for (int64_t s : shape) {
    HEED_CHECK(s >= 0, "{}: negative size in shape {}", op, shape_str(shape));
    if (s == 0) {
      empty = true;
      continue;
    }
    HEED_CHECK(!__builtin_mul_overflow(product, s, &product) && product <= kMaxNumel,
               "{}: shape {} is too large: its sizes multiply to more than 2^48 elements", op, shape_str(shape));
  }
  return empty ? 0 : product;
}

Shape contiguous_strides(const Shape& shape) {
  Shape strides(shape.size());
  int64_t s = 1;
  for (int64_t d = static_cast<int64_t>(shape.size()) - 1; d >= 0; --d) {
    strides[d] = s;
    s *= std::max<int64_t>(shape[d], 1);
  }
  return strides;
}

// ---- allocation ------------------------------------------------------------------------------------
// Every op result allocates a TensorImpl, a Storage (each with its shared_ptr control block) and a data
// buffer. The tape keeps every intermediate alive until backward, so glibc's per-thread cache (7 blocks
// per size) runs dry and further allocations take its slower arena path. Per-thread caches of these
// fixed-size blocks cut the per-op overhead of small ops by about 30% (bench/bench_core per_op_overhead).
namespace {

constexpr std::size_t kMaxCachedBlocks = 4096;  // per size and thread: at most ~0.6 MB for the 144-byte class

// The free blocks of `Size` bytes of this thread, or null once the thread's caches are being destroyed
// (a tensor freed after that, e.g. by a thread_local tape, goes straight back to malloc).
template <std::size_t Size>
std::vector<void*>* block_cache() {
  thread_local int state = 0;  // 0 not made yet, 1 alive, 2 destroyed; trivially destructible
  if (state == 2) return nullptr;
  struct Cache {
    std::vector<void*> blocks;
    int* state;
    ~Cache() {
      *state = 2;
      for (void* p : blocks) std::free(p);
    }
  };
  thread_local Cache cache{{}, &state};
  state = 1;
  return &cache.blocks;
}

template <std::size_t Size>
void* cached_malloc() {
  std::vector<void*>* cache = block_cache<Size>();
  if (cache && !cache->empty()) {
    void* p = cache->back();
    cache->pop_back();
    return p;
  }
  void* p = std::malloc(Size);
  if (!p) throw std::bad_alloc();
  return p;
}

template <std::size_t Size>
void cached_free(void* p) {
  std::vector<void*>* cache = block_cache<Size>();
  if (cache && cache->size() < kMaxCachedBlocks) {
    cache->push_back(p);
    return;
  }
  std::free(p);
}

// For allocate_shared: single objects (object + control block) come from the cache of their size.
template <class T>
struct CachingAllocator {
  using value_type = T;
  CachingAllocator() = default;
  template <class U>
  CachingAllocator(const CachingAllocator<U>&) {}
  T* allocate(std::size_t n) {
    static_assert(alignof(T) <= alignof(std::max_align_t), "malloc alignment");
    if (n == 1) return static_cast<T*>(cached_malloc<sizeof(T)>());
    void* p = std::malloc(n * sizeof(T));
    if (!p) throw std::bad_alloc();
    return static_cast<T*>(p);
  }
  void deallocate(T* p, std::size_t n) {
    if (n == 1) cached_free<sizeof(T)>(p);
    else std::free(p);
  }
  template <class U>
  bool operator==(const CachingAllocator<U>&) const { return true; }
  template <class U>
  bool operator!=(const CachingAllocator<U>&) const { return false; }
};

// Data buffers up to this size (16 floats) come from a block cache.
constexpr std::size_t kSmallData = 64;

}  // namespace

// glibc's malloc gives buffers of 128 KiB and more back to the kernel when they are freed (munmap, or
// trimming the top of the heap), so every training step faults the same pages in again: about 20% of a
// Transformer encoder step was the kernel zeroing and mapping pages (perf). Once per process, while the
// program starts (a static initializer of this file, which every heed program links), heed asks glibc to serve blocks below 32 MiB from the heap (M_MMAP_THRESHOLD) and
// to keep up to 1 GiB of freed heap top (M_TRIM_THRESHOLD): freed memory is reused, not re-faulted, and
// the resident size stays at the program's peak instead of shrinking. The step then takes about 0.6 of
// the time (bench/run_transformer.sh). It is left alone when the environment already tunes malloc
// (MALLOC_MMAP_THRESHOLD_, MALLOC_TRIM_THRESHOLD_, MALLOC_TOP_PAD_, GLIBC_TUNABLES) or says
// HEED_MALLOC_TUNING=0.
#if defined(__GLIBC__)
namespace {
bool tune_malloc() {
  const char* opt_out = std::getenv("HEED_MALLOC_TUNING");
  if (opt_out != nullptr && std::strcmp(opt_out, "0") == 0) return false;
  for (const char* name : {"MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_", "GLIBC_TUNABLES"})
    if (std::getenv(name) != nullptr) return false;
  return mallopt(M_MMAP_THRESHOLD, 32 << 20) == 1 && mallopt(M_TRIM_THRESHOLD, 1 << 30) == 1;
}
[[maybe_unused]] const bool kMallocTuned = tune_malloc();
}  // namespace
#endif

// 64-byte alignment by hand: malloc 64 bytes more and align up past a slot that remembers the block.
// (glibc's aligned_alloc always takes its slow memalign path, about 5x a malloc of the same size.)
Storage::Storage(std::size_t nbytes) : nbytes_(nbytes) {
  const std::size_t rounded = ((std::max<std::size_t>(nbytes, 1) + 63) / 64) * 64;
  void* block = nbytes <= kSmallData ? cached_malloc<kSmallData + 64>() : std::malloc(rounded + 64);
  if (!block) throw std::bad_alloc();
  const auto aligned = (reinterpret_cast<std::uintptr_t>(block) + sizeof(void*) + 63) & ~std::uintptr_t(63);
  data_ = reinterpret_cast<void*>(aligned);
  static_cast<void**>(data_)[-1] = block;
}

Storage::~Storage() {
  void* block = static_cast<void**>(data_)[-1];
  if (nbytes_ <= kSmallData) cached_free<kSmallData + 64>(block);
  else std::free(block);
}

// ---- Tensor ----------------------------------------------------------------------------------------

void Tensor::check_defined(const char* what) const {
  HEED_CHECK(impl_ != nullptr, "Tensor::{}: the tensor is undefined", what);
}

const Shape& Tensor::shape() const { check_defined("shape"); return impl_->shape; }
const Shape& Tensor::strides() const { check_defined("strides"); return impl_->strides; }
int64_t Tensor::offset() const { check_defined("offset"); return impl_->offset; }
int64_t Tensor::dim() const { check_defined("dim"); return static_cast<int64_t>(impl_->shape.size()); }
int64_t Tensor::size(int64_t axis) const {
  check_defined("size");
  return impl_->shape[detail::normalize_axis(axis, dim(), "Tensor::size")];
}
int64_t Tensor::numel() const { check_defined("numel"); return shape_numel(impl_->shape); }
DType Tensor::dtype() const { check_defined("dtype"); return impl_->dtype; }

bool Tensor::is_contiguous() const {
  check_defined("is_contiguous");
  // No element, nothing out of place (make_tensor's strides for {0, 0} are {1, 1}, which the loop below
  // would reject: fuzz_safetensors found an empty tensor that loaded "not contiguous").
  if (numel() == 0) return true;
  int64_t expected = 1;
  for (int64_t d = dim() - 1; d >= 0; --d) {
    if (impl_->shape[d] == 1) continue;
    if (impl_->strides[d] != expected) return false;
    expected *= impl_->shape[d];
  }
  return true;
}

namespace {
template <class T> constexpr DType dtype_of();
template <> constexpr DType dtype_of<float>() { return DType::Float32; }
template <> constexpr DType dtype_of<double>() { return DType::Float64; }
template <> constexpr DType dtype_of<int64_t>() { return DType::Int64; }
template <> constexpr DType dtype_of<uint8_t>() { return DType::Bool; }
template <> constexpr DType dtype_of<bool>() { return DType::Bool; }
}  // namespace

template <class T>
T* Tensor::data() const {
  check_defined("data");
  HEED_CHECK(impl_->dtype == dtype_of<T>(), "Tensor::data: the tensor is {}, not the requested type",
             dtype_name(impl_->dtype));
  return static_cast<T*>(impl_->storage->data()) + impl_->offset;
}
template float* Tensor::data<float>() const;
template double* Tensor::data<double>() const;
template int64_t* Tensor::data<int64_t>() const;
template uint8_t* Tensor::data<uint8_t>() const;
template bool* Tensor::data<bool>() const;

double Tensor::item() const {
  check_defined("item");
  HEED_CHECK(numel() == 1, "Tensor::item: needs a one-element tensor, got shape {}", shape_str(shape()));
  const char* base = static_cast<const char*>(impl_->storage->data());
  const int64_t off = impl_->offset;
  switch (impl_->dtype) {
    case DType::Float32: return reinterpret_cast<const float*>(base)[off];
    case DType::Float64: return reinterpret_cast<const double*>(base)[off];
    case DType::Int64: return static_cast<double>(reinterpret_cast<const int64_t*>(base)[off]);
    case DType::Bool: return reinterpret_cast<const uint8_t*>(base)[off] ? 1.0 : 0.0;
  }
  return 0.0;
}

template <class T>
std::vector<T> Tensor::to_vector() const {
  check_defined("to_vector");
  Tensor dense = contiguous();
  std::vector<T> out(static_cast<std::size_t>(numel()));
  HEED_DISPATCH_ALL(dtype(), [&] {
    const scalar_t* p = dense.data<scalar_t>();
    for (std::size_t i = 0; i < out.size(); ++i) out[i] = static_cast<T>(p[i]);
  });
  return out;
}
template std::vector<float> Tensor::to_vector<float>() const;
template std::vector<double> Tensor::to_vector<double>() const;
template std::vector<int64_t> Tensor::to_vector<int64_t>() const;
template std::vector<int> Tensor::to_vector<int>() const;
template std::vector<uint8_t> Tensor::to_vector<uint8_t>() const;

bool Tensor::requires_grad() const { check_defined("requires_grad"); return impl_->requires_grad; }

Tensor& Tensor::requires_grad_(bool on) {
  check_defined("requires_grad_");
  HEED_CHECK(is_leaf(), "requires_grad_: only leaf tensors can change requires_grad (this one was made by an op)");
  HEED_CHECK(!on || is_floating(impl_->dtype), "requires_grad_: only float tensors can require grad, got {}",
             dtype_name(impl_->dtype));
  impl_->requires_grad = on;
  return *this;
}

bool Tensor::is_leaf() const { check_defined("is_leaf"); return impl_->tape_index < 0; }

Tensor Tensor::grad() const {
  check_defined("grad");
  return impl_->grad ? Tensor(impl_->grad) : Tensor();
}

void Tensor::set_grad(const Tensor& g) {
  check_defined("set_grad");
  if (!g.defined()) { impl_->grad.reset(); return; }
  HEED_CHECK(g.shape() == shape() && g.dtype() == dtype(), "set_grad: gradient {} {} does not match tensor {} {}",
             dtype_name(g.dtype()), shape_str(g.shape()), dtype_name(dtype()), shape_str(shape()));
  impl_->grad = g.contiguous().impl_ptr();
}

void Tensor::zero_grad() { check_defined("zero_grad"); impl_->grad.reset(); }
void Tensor::retain_grad() { check_defined("retain_grad"); impl_->retains_grad = true; }

void Tensor::backward(const Tensor& seed, bool retain_graph) const { heed::backward(*this, seed, retain_graph); }

Tensor Tensor::detach() const {
  check_defined("detach");
  return make_view(*this, impl_->shape, impl_->strides, impl_->offset);
}

Tensor Tensor::contiguous() const {
  check_defined("contiguous");
  if (is_contiguous()) return *this;
  return clone();
}

Tensor Tensor::clone() const {
  check_defined("clone");
  Tensor out = make_tensor(shape(), dtype());
  detail::copy_to_dense(*this, out.impl()->storage->data());
  record("clone", out, {*this}, [self = *this](const Tensor& g) { accumulate_grad(self, g); });
  return out;
}

Tensor Tensor::to(DType target) const {
  check_defined("to");
  if (target == dtype()) return *this;
  Tensor dense = contiguous();
  Tensor out = make_tensor(shape(), target);
  const int64_t n = numel();
  HEED_DISPATCH_ALL(dtype(), [&] {
    using src_t = scalar_t;
    const src_t* s = dense.data<src_t>();
    HEED_DISPATCH_ALL(target, [&] {
      scalar_t* d = out.data<scalar_t>();
      for (int64_t i = 0; i < n; ++i) {
        if constexpr (std::is_same_v<scalar_t, uint8_t>) d[i] = s[i] != src_t(0);
        else d[i] = static_cast<scalar_t>(s[i]);
      }
    });
  });
  if (is_floating(dtype()) && is_floating(target)) {
    record("to", out, {*this}, [self = *this](const Tensor& g) { accumulate_grad(self, g.to(self.dtype())); });
  }
  return out;
}

Tensor& Tensor::fill_(double value) {
  check_defined("fill_");
  HEED_DISPATCH_ALL(dtype(), [&] {
    scalar_t* base = static_cast<scalar_t*>(impl_->storage->data());
    const scalar_t v = static_cast<scalar_t>(value);
    Shape st = impl_->strides;
    detail::strided_loop(impl_->shape, {&st}, [&](const int64_t* off, int64_t n, const int64_t* inner) {
      scalar_t* p = base + impl_->offset + off[0];
      for (int64_t i = 0; i < n; ++i) p[i * inner[0]] = v;
    });
  });
  return *this;
}

Tensor& Tensor::copy_(const Tensor& src) {
  check_defined("copy_");
  HEED_CHECK(src.defined(), "copy_: the source tensor is undefined");
  Tensor s = src.dtype() == dtype() ? src : src.detach().to(dtype());
  Shape bs = detail::broadcast_shapes(s.shape(), shape(), "copy_");
  HEED_CHECK(bs == shape(), "copy_: cannot broadcast source {} to destination {}", shape_str(src.shape()),
             shape_str(shape()));
  Shape src_strides = detail::broadcast_strides(s, shape());
  Shape dst_strides = impl_->strides;
  HEED_DISPATCH_ALL(dtype(), [&] {
    scalar_t* dbase = static_cast<scalar_t*>(impl_->storage->data()) + impl_->offset;
    const scalar_t* sbase = static_cast<const scalar_t*>(s.impl()->storage->data()) + s.offset();
    detail::strided_loop(impl_->shape, {&dst_strides, &src_strides},
                         [&](const int64_t* off, int64_t n, const int64_t* inner) {
                           scalar_t* d = dbase + off[0];
                           const scalar_t* p = sbase + off[1];
                           for (int64_t i = 0; i < n; ++i) d[i * inner[0]] = p[i * inner[1]];
                         });
  });
  return *this;
}

Tensor Tensor::reshape(const Shape& s) const { return heed::reshape(*this, s); }
Tensor Tensor::transpose(int64_t a, int64_t b) const { return heed::transpose(*this, a, b); }
Tensor Tensor::permute(const std::vector<int64_t>& dims) const { return heed::permute(*this, dims); }
Tensor Tensor::unsqueeze(int64_t axis) const { return heed::unsqueeze(*this, axis); }
Tensor Tensor::squeeze(int64_t axis) const { return heed::squeeze(*this, axis); }
Tensor Tensor::flatten(int64_t start, int64_t end) const { return heed::flatten(*this, start, end); }
Tensor Tensor::sum() const { return heed::sum(*this); }
Tensor Tensor::sum(int64_t axis, bool keepdim) const { return heed::sum(*this, {axis}, keepdim); }
Tensor Tensor::mean() const { return heed::mean(*this); }
Tensor Tensor::mean(int64_t axis, bool keepdim) const { return heed::mean(*this, {axis}, keepdim); }
Tensor Tensor::matmul(const Tensor& other) const { return heed::matmul(*this, other); }

// Tensor::to_string is in tensor_format.cpp.

// ---- construction ----------------------------------------------------------------------------------

Tensor make_tensor(const Shape& shape, DType dtype, const char* op) {
  // At most 2^48 elements of at most 8 bytes: the byte count cannot overflow.
  const auto nbytes = static_cast<std::size_t>(detail::checked_numel(shape, op)) * dtype_size(dtype);
  auto impl = std::allocate_shared<TensorImpl>(CachingAllocator<TensorImpl>());
  impl->shape = shape;
  impl->strides = contiguous_strides(shape);
  impl->dtype = dtype;
  try {
    impl->storage = std::allocate_shared<Storage>(CachingAllocator<Storage>(), nbytes);
  } catch (const std::bad_alloc&) {
    throw Error(fmt::format("{}: cannot allocate {} bytes for a {} tensor of shape {}", op, nbytes, dtype_name(dtype),
                            shape_str(shape)));
  }
  return Tensor(std::move(impl));
}

Tensor make_view(const Tensor& base, Shape shape, Shape strides, int64_t offset) {
  detail::checked_numel(shape, "make_view");
  auto impl = std::allocate_shared<TensorImpl>(CachingAllocator<TensorImpl>());
  impl->shape = std::move(shape);
  impl->strides = std::move(strides);
  impl->offset = offset;
  impl->dtype = base.dtype();
  impl->storage = base.impl()->storage;
  return Tensor(std::move(impl));
}

// The creation functions pass their own name to make_tensor, so that a bad shape is reported as the
// user's call ("zeros: negative size in shape [2, -3]").
namespace {
Tensor zeros_named(const Shape& shape, DType dtype, const char* op) {
  Tensor t = make_tensor(shape, dtype, op);
  std::memset(t.impl()->storage->data(), 0, t.impl()->storage->nbytes());
  return t;
}
}  // namespace

Tensor empty(const Shape& shape, DType dtype) { return make_tensor(shape, dtype, "empty"); }
Tensor zeros(const Shape& shape, DType dtype) { return zeros_named(shape, dtype, "zeros"); }
Tensor ones(const Shape& shape, DType dtype) { return make_tensor(shape, dtype, "ones").fill_(1.0); }
Tensor full(const Shape& shape, double value, DType dtype) { return make_tensor(shape, dtype, "full").fill_(value); }
Tensor zeros_like(const Tensor& t) { return zeros(t.shape(), t.dtype()); }
Tensor ones_like(const Tensor& t) { return ones(t.shape(), t.dtype()); }
Tensor full_like(const Tensor& t, double value) { return full(t.shape(), value, t.dtype()); }
Tensor scalar(double value, DType dtype) { return full({}, value, dtype); }

Tensor arange(double end, DType dtype) { return arange(0.0, end, 1.0, dtype); }
Tensor arange(double start, double end, double step, DType dtype) {
  HEED_CHECK(std::isfinite(start) && std::isfinite(end) && std::isfinite(step),
             "arange: start, end and step must be finite numbers, got {}, {}, {}", start, end, step);
  HEED_CHECK(step != 0.0, "arange: step must not be 0");
  // The count as a double first: converting a NaN or an out-of-range double to an integer is undefined.
  const double count = std::ceil((end - start) / step);
  HEED_CHECK(count <= static_cast<double>(detail::kMaxNumel),
             "arange: [{}, {}) in steps of {} would have {:g} elements, more than 2^48", start, end, step, count);
  const int64_t n = count > 0 ? static_cast<int64_t>(count) : 0;
  Tensor t = make_tensor({n}, dtype, "arange");
  HEED_DISPATCH_ALL(dtype, [&] {
    scalar_t* p = t.data<scalar_t>();
    for (int64_t i = 0; i < n; ++i) p[i] = static_cast<scalar_t>(start + step * static_cast<double>(i));
  });
  return t;
}

Tensor linspace(double start, double end, int64_t steps, DType dtype) {
  HEED_CHECK(steps >= 0, "linspace: steps must be >= 0, got {}", steps);
  Tensor t = make_tensor({steps}, dtype, "linspace");
  HEED_DISPATCH_FLOAT(dtype, "linspace", [&] {
    scalar_t* p = t.data<scalar_t>();
    for (int64_t i = 0; i < steps; ++i)
      p[i] = static_cast<scalar_t>(steps == 1 ? start : start + (end - start) * static_cast<double>(i) / (steps - 1));
  });
  return t;
}

Tensor eye(int64_t n, DType dtype) {
  Tensor t = zeros_named({n, n}, dtype, "eye");
  HEED_DISPATCH_ALL(dtype, [&] {
    scalar_t* p = t.data<scalar_t>();
    for (int64_t i = 0; i < n; ++i) p[i * n + i] = scalar_t(1);
  });
  return t;
}

namespace {
Shape resolve_values_shape(std::size_t count, Shape shape, const char* op) {
  if (shape.empty() && count != 1) shape = {static_cast<int64_t>(count)};
  HEED_CHECK(detail::checked_numel(shape, op) == static_cast<int64_t>(count), "{}: {} values do not fill shape {}", op, count,
             shape_str(shape));
  return shape;
}
template <class Src>
Tensor from_values(const Src& values, Shape shape, DType dtype, const char* op) {
  shape = resolve_values_shape(values.size(), std::move(shape), op);
  Tensor t = make_tensor(shape, dtype, op);
  HEED_DISPATCH_ALL(dtype, [&] {
    scalar_t* p = t.data<scalar_t>();
    std::size_t i = 0;
    for (auto v : values) p[i++] = static_cast<scalar_t>(v);
  });
  return t;
}
}  // namespace

Tensor tensor(const std::vector<float>& values, Shape shape) {
  return from_values(values, std::move(shape), DType::Float32, "tensor");
}
Tensor tensor(const std::vector<double>& values, Shape shape, DType dtype) {
  return from_values(values, std::move(shape), dtype, "tensor");
}
Tensor tensor(std::initializer_list<double> values, Shape shape, DType dtype) {
  return from_values(values, std::move(shape), dtype, "tensor");
}
Tensor index_tensor(const std::vector<int64_t>& values, Shape shape) {
  return from_values(values, std::move(shape), DType::Int64, "index_tensor");
}
Tensor bool_tensor(const std::vector<bool>& values, Shape shape) {
  return from_values(values, std::move(shape), DType::Bool, "bool_tensor");
}

namespace {
template <class Fill>
Tensor random_tensor(const Shape& shape, DType dtype, const char* op, Fill&& fill) {
  Tensor t = make_tensor(shape, dtype, op);
  HEED_DISPATCH_FLOAT(dtype, op, [&] {
    scalar_t* p = t.data<scalar_t>();
    const int64_t n = t.numel();
    for (int64_t i = 0; i < n; ++i) p[i] = static_cast<scalar_t>(fill());
  });
  return t;
}
}  // namespace

Tensor randn(const Shape& shape, DType dtype, Generator* gen) {
  Generator& g = gen ? *gen : default_generator();
  return random_tensor(shape, dtype, "randn", [&] { return g.normal(); });
}
Tensor rand(const Shape& shape, DType dtype, Generator* gen) {
  Generator& g = gen ? *gen : default_generator();
  return random_tensor(shape, dtype, "rand", [&] { return g.uniform(); });
}
Tensor uniform(const Shape& shape, double low, double high, DType dtype, Generator* gen) {
  Generator& g = gen ? *gen : default_generator();
  return random_tensor(shape, dtype, "uniform", [&] { return g.uniform(low, high); });
}
Tensor randint(int64_t low, int64_t high, const Shape& shape, Generator* gen) {
  HEED_CHECK(high > low, "randint: empty range [{}, {})", low, high);
  Generator& g = gen ? *gen : default_generator();
  Tensor t = make_tensor(shape, DType::Int64, "randint");
  int64_t* p = t.data<int64_t>();
  const int64_t n = t.numel();
  for (int64_t i = 0; i < n; ++i) p[i] = g.randint(low, high);
  return t;
}

bool allclose(const Tensor& a, const Tensor& b, double rtol, double atol) {
  if (a.shape() != b.shape()) return false;
  std::vector<double> x = a.to_vector<double>(), y = b.to_vector<double>();
  for (std::size_t i = 0; i < x.size(); ++i) {
    if (std::isnan(x[i]) || std::isnan(y[i])) return false;
    if (x[i] == y[i]) continue;  // equal infinities
    if (!(std::fabs(x[i] - y[i]) <= atol + rtol * std::fabs(y[i]))) return false;
  }
  return true;
}

double max_abs_diff(const Tensor& a, const Tensor& b) {
  HEED_CHECK(a.shape() == b.shape(), "max_abs_diff: shapes differ: {} vs {}", shape_str(a.shape()),
             shape_str(b.shape()));
  std::vector<double> x = a.to_vector<double>(), y = b.to_vector<double>();
  double m = 0.0;
  for (std::size_t i = 0; i < x.size(); ++i) m = std::max(m, std::fabs(x[i] - y[i]));
  return m;
}

}  // namespace heed
