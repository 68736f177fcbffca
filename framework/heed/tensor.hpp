// heed/tensor.hpp — the n-dimensional array every part of heed works on.
//
// A Tensor is a cheap handle (a shared pointer) to a TensorImpl: a shape, strides and an offset into a
// shared, 64-byte aligned Storage. Copying a Tensor copies the handle, not the data. Views (transpose,
// permute, narrow, select, expand, unsqueeze, reshape of contiguous data) share storage; every kernel
// that needs dense input calls contiguous() first, which copies only when the view is not already dense.
//
// Elements are row-major. dtypes: Float32 (default), Float64 (gradient checks), Int64 (indices, class
// targets, argmax) and Bool (masks; one byte per element). Differentiable ops take float tensors.
//
// Autograd state lives on the tensor: requires_grad, grad, and — for a tensor made by a recorded op — its
// entry on the tape (see heed/autograd.hpp for the tape's lifetime rules).
//
// No xtensor type appears here or in any public header: the library's kernels adapt raw buffers inside
// its .cpp files, so user code compiles fast and cannot disagree with the library about SIMD flags.
#pragma once
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

#include "heed/error.hpp"

/// heed: tensors, the autograd tape, ops, initializers, gradient checks (everything outside a sub-namespace).
namespace heed {

/// Element types.
enum class DType : uint8_t {
  Float32,  ///< float, the default (parameters, activations)
  Float64,  ///< double (gradient checks)
  Int64,    ///< int64_t (indices, class targets, argmax results)
  Bool,     ///< one byte per element, 0 or 1 (masks)
};
std::size_t dtype_size(DType dtype);  ///< bytes per element: 4, 8, 8, 1
const char* dtype_name(DType dtype);  ///< "Float32", "Float64", "Int64" or "Bool" (as in error messages)
/// Float32 or Float64: the dtypes that can require grad
inline bool is_floating(DType d) { return d == DType::Float32 || d == DType::Float64; }

/// Axis sizes, outermost first; {} is a scalar (one element).
using Shape = std::vector<int64_t>;
int64_t shape_numel(const Shape& shape);  ///< product of the sizes (1 for {}); throws if it overflows 64 bits
Shape contiguous_strides(const Shape& shape);  ///< row-major strides in elements (size-0 axes count as 1)

/// A raw, 64-byte aligned, uninitialized byte buffer shared by a tensor and its views.
class Storage {
 public:
  explicit Storage(std::size_t nbytes);  ///< allocates nbytes (64-byte aligned), uninitialized
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;
  void* data() const { return data_; }  ///< start of the buffer
  std::size_t nbytes() const { return nbytes_; }  ///< size in bytes

 private:
  void* data_ = nullptr;
  std::size_t nbytes_ = 0;
};

class Tensor;

/// The state behind a Tensor handle. Public so that custom ops can reach it; most code uses Tensor.
struct TensorImpl {
  Shape shape;  ///< axis sizes
  Shape strides;  ///< in elements
  int64_t offset = 0;  ///< in elements, into storage
  DType dtype = DType::Float32;  ///< element type of the storage
  std::shared_ptr<Storage> storage;  ///< the bytes, shared with views

  bool requires_grad = false;  ///< backward computes .grad for this tensor (float only)
  bool retains_grad = false;           ///< keep .grad on a non-leaf after backward
  std::shared_ptr<TensorImpl> grad;    ///< same shape and dtype, contiguous
  /// Set on the output of a recorded op: the tape generation and the index of its entry.
  uint64_t tape_generation = 0;
  int64_t tape_index = -1;             ///< -1: a leaf (not produced by a recorded op)
};

/// A handle to an n-dimensional array with autograd state; copies share data (see the header comment).
/// Most operations are free functions in heed/ops.hpp; the methods below are the common ones.
class Tensor {
 public:
  Tensor() = default;  ///< an undefined tensor; defined() is false
  /// wraps an existing state (custom ops, make_view)
  explicit Tensor(std::shared_ptr<TensorImpl> impl) : impl_(std::move(impl)) {}

  /// false for a default-constructed Tensor; other methods then throw
  bool defined() const { return static_cast<bool>(impl_); }
  TensorImpl* impl() const { return impl_.get(); }  ///< the state, or null when undefined
  /// the shared state (share it to alias this tensor)
  const std::shared_ptr<TensorImpl>& impl_ptr() const { return impl_; }

  // ---- shape -------------------------------------------------------------------------------------
  const Shape& shape() const;  ///< axis sizes; throws heed::Error when undefined, as do the next ones
  const Shape& strides() const;  ///< element step per axis (views may have 0 or permuted strides)
  int64_t offset() const;  ///< first element's index into the storage, in elements
  int64_t dim() const;  ///< number of axes (0 for a scalar)
  int64_t size(int64_t axis) const;  ///< negative axes count from the end
  int64_t numel() const;  ///< number of elements
  DType dtype() const;  ///< element type
  bool is_contiguous() const;  ///< dense row-major strides (data<T>() then covers numel() elements)

  // ---- data --------------------------------------------------------------------------------------
  /// Pointer to the first element (offset applied). Checks the dtype; the memory is dense only when
  /// is_contiguous(). Use contiguous() first when in doubt.
  template <class T> T* data() const;
  double item() const;  ///< the single element of a one-element tensor, as double
  template <class T> std::vector<T> to_vector() const;  ///< elements in row-major order, converted to T

  // ---- autograd ----------------------------------------------------------------------------------
  bool requires_grad() const;  ///< backward will compute a gradient for this tensor
  Tensor& requires_grad_(bool on = true);  ///< only on leaves
  bool is_leaf() const;  ///< made by the user (or detached), not by a recorded op
  Tensor grad() const;  ///< undefined until a backward reached this tensor
  void set_grad(const Tensor& g);  ///< replaces .grad (undefined g clears it); throws on a shape/dtype mismatch
  void zero_grad();  ///< drops the gradient (the next backward starts from zero)
  void retain_grad();  ///< keep the gradient of a non-leaf after backward
  /// Reverse-mode pass from this tensor. A one-element tensor seeds itself with 1; any other needs `seed`
  /// of its shape. Clears the tape afterwards unless retain_graph (see heed/autograd.hpp).
  void backward(const Tensor& seed = Tensor(), bool retain_graph = false) const;
  Tensor detach() const;  ///< same storage, no autograd history, requires_grad false

  // ---- conversion --------------------------------------------------------------------------------
  Tensor contiguous() const;  ///< itself if already dense, else a dense copy (recorded)
  Tensor clone() const;       ///< always a dense copy (recorded)
  Tensor to(DType dtype) const;  ///< a converted copy (itself when already `dtype`); float->float is recorded
  /// In-place, not recorded: for initializers and optimizer updates on leaves (use under NoGradGuard).
  Tensor& fill_(double value);
  Tensor& copy_(const Tensor& src);  ///< src broadcast to this shape, converted to this dtype

  // ---- method forms of common ops (see heed/ops.hpp) ---------------------------------------------
  Tensor reshape(const Shape& shape) const;  ///< heed::reshape: one -1 allowed; a view when contiguous
  Tensor view(const Shape& shape) const { return reshape(shape); }  ///< alias of reshape (PyTorch's name)
  Tensor transpose(int64_t a, int64_t b) const;  ///< view with axes a and b swapped
  Tensor permute(const std::vector<int64_t>& dims) const;  ///< view with axis i taken from dims[i]
  Tensor unsqueeze(int64_t axis) const;  ///< view with a size-1 axis inserted at `axis`
  Tensor squeeze(int64_t axis) const;  ///< removes `axis` if its size is 1
  Tensor flatten(int64_t start = 0, int64_t end = -1) const;  ///< axes start..end (inclusive) merged into one
  Tensor sum() const;  ///< all elements, shape []
  Tensor sum(int64_t axis, bool keepdim = false) const;  ///< over one axis
  Tensor mean() const;  ///< all elements, shape []
  Tensor mean(int64_t axis, bool keepdim = false) const;  ///< over one axis
  Tensor matmul(const Tensor& other) const;  ///< heed::matmul(*this, other)

  /// nested [..] text; axes longer than max_per_axis elide the middle
  std::string to_string(int64_t max_per_axis = 6) const;

 private:
  void check_defined(const char* what) const;
  std::shared_ptr<TensorImpl> impl_;
};

/// Makes a new dense tensor (uninitialized data, no autograd state). Throws heed::Error naming `op` when a
/// size is negative, when the sizes multiply to more than 2^48 elements, or when the memory is not there.
Tensor make_tensor(const Shape& shape, DType dtype = DType::Float32, const char* op = "make_tensor");
/// A view of `base`'s storage with its own shape/strides/offset (no autograd record; ops record it). The
/// shape is checked as make_tensor's is.
Tensor make_view(const Tensor& base, Shape shape, Shape strides, int64_t offset);

// ---- creation -------------------------------------------------------------------------------------
Tensor empty(const Shape& shape, DType dtype = DType::Float32);  ///< uninitialized values
Tensor zeros(const Shape& shape, DType dtype = DType::Float32);  ///< all 0
Tensor ones(const Shape& shape, DType dtype = DType::Float32);  ///< all 1
Tensor full(const Shape& shape, double value, DType dtype = DType::Float32);  ///< all `value`
Tensor zeros_like(const Tensor& t);  ///< zeros of t's shape and dtype
Tensor ones_like(const Tensor& t);  ///< ones of t's shape and dtype
Tensor full_like(const Tensor& t, double value);  ///< `value` in t's shape and dtype
Tensor scalar(double value, DType dtype = DType::Float32);  ///< shape []
Tensor arange(double end, DType dtype = DType::Float32);  ///< 0, 1, ..., below end
/// start, start + step, ... below end (above it for step < 0); throws for step 0, for a bound or step that
/// is NaN or infinite, and for more than 2^48 elements
Tensor arange(double start, double end, double step = 1.0, DType dtype = DType::Float32);
/// `steps` evenly spaced floats from start to end inclusive
Tensor linspace(double start, double end, int64_t steps, DType dtype = DType::Float32);
Tensor eye(int64_t n, DType dtype = DType::Float32);  ///< the (n, n) identity
/// From values in row-major order; the shape defaults to 1-D. Throws when the count does not match.
Tensor tensor(const std::vector<float>& values, Shape shape = {});
/// as above; Float64 by default
Tensor tensor(const std::vector<double>& values, Shape shape = {}, DType dtype = DType::Float64);
/// heed::tensor({1, 2, 3}, {3, 1}); Float32 by default
Tensor tensor(std::initializer_list<double> values, Shape shape = {}, DType dtype = DType::Float32);
Tensor index_tensor(const std::vector<int64_t>& values, Shape shape = {});  ///< Int64
Tensor bool_tensor(const std::vector<bool>& values, Shape shape = {});      ///< Bool

class Generator;  // heed/random.hpp
/// Random tensors draw from `gen`, or from the default generator (heed::manual_seed) when null.
Tensor randn(const Shape& shape, DType dtype = DType::Float32, Generator* gen = nullptr);
Tensor rand(const Shape& shape, DType dtype = DType::Float32, Generator* gen = nullptr);  ///< U[0,1)
/// U[low, high)
Tensor uniform(const Shape& shape, double low, double high, DType dtype = DType::Float32,
               Generator* gen = nullptr);
Tensor randint(int64_t low, int64_t high, const Shape& shape, Generator* gen = nullptr);  ///< Int64

/// True when shapes agree and every element agrees within atol + rtol*|b| (NaNs never agree).
bool allclose(const Tensor& a, const Tensor& b, double rtol = 1e-5, double atol = 1e-8);
double max_abs_diff(const Tensor& a, const Tensor& b);  ///< max |a - b| over elements; throws when shapes differ

}  // namespace heed

// Printing: fmt::format("{}", t) and std::ostream << t.
#include <fmt/format.h>
#include <ostream>
// fmt's formatter specialisation is not heed API (and Doxygen cannot place it in namespace fmt).
/// @cond
template <>
struct fmt::formatter<heed::Tensor> : fmt::formatter<std::string> {
  template <class Ctx>
  auto format(const heed::Tensor& t, Ctx& ctx) const {
    return fmt::formatter<std::string>::format(t.to_string(), ctx);
  }
};
/// @endcond
namespace heed {
/// writes t.to_string()
inline std::ostream& operator<<(std::ostream& os, const Tensor& t) { return os << t.to_string(); }
}  // namespace heed
