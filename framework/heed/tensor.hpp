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

enum class DType : uint8_t { Float32, Float64, Int64, Bool };
std::size_t dtype_size(DType dtype);
const char* dtype_name(DType dtype);
inline bool is_floating(DType d) { return d == DType::Float32 || d == DType::Float64; }

using Shape = std::vector<int64_t>;
int64_t shape_numel(const Shape& shape);
Shape contiguous_strides(const Shape& shape);

/// A raw, 64-byte aligned, uninitialized byte buffer shared by a tensor and its views.
class Storage {
 public:
  explicit Storage(std::size_t nbytes);
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;
  void* data() const { return data_; }
  std::size_t nbytes() const { return nbytes_; }

 private:
  void* data_ = nullptr;
  std::size_t nbytes_ = 0;
};

class Tensor;

/// The state behind a Tensor handle. Public so that custom ops can reach it; most code uses Tensor.
struct TensorImpl {
  Shape shape;
  Shape strides;  ///< in elements
  int64_t offset = 0;  ///< in elements, into storage
  DType dtype = DType::Float32;
  std::shared_ptr<Storage> storage;

  bool requires_grad = false;
  bool retains_grad = false;           ///< keep .grad on a non-leaf after backward
  std::shared_ptr<TensorImpl> grad;    ///< same shape and dtype, contiguous
  /// Set on the output of a recorded op: the tape generation and the index of its entry.
  uint64_t tape_generation = 0;
  int64_t tape_index = -1;             ///< -1: a leaf (not produced by a recorded op)
};

class Tensor {
 public:
  Tensor() = default;  ///< an undefined tensor; defined() is false
  explicit Tensor(std::shared_ptr<TensorImpl> impl) : impl_(std::move(impl)) {}

  bool defined() const { return static_cast<bool>(impl_); }
  TensorImpl* impl() const { return impl_.get(); }
  const std::shared_ptr<TensorImpl>& impl_ptr() const { return impl_; }

  // ---- shape -------------------------------------------------------------------------------------
  const Shape& shape() const;
  const Shape& strides() const;
  int64_t offset() const;
  int64_t dim() const;
  int64_t size(int64_t axis) const;  ///< negative axes count from the end
  int64_t numel() const;
  DType dtype() const;
  bool is_contiguous() const;

  // ---- data --------------------------------------------------------------------------------------
  /// Pointer to the first element (offset applied). Checks the dtype; the memory is dense only when
  /// is_contiguous(). Use contiguous() first when in doubt.
  template <class T> T* data() const;
  double item() const;  ///< the single element of a one-element tensor, as double
  template <class T> std::vector<T> to_vector() const;  ///< elements in row-major order, converted to T

  // ---- autograd ----------------------------------------------------------------------------------
  bool requires_grad() const;
  Tensor& requires_grad_(bool on = true);  ///< only on leaves
  bool is_leaf() const;
  Tensor grad() const;  ///< undefined until a backward reached this tensor
  void set_grad(const Tensor& g);
  void zero_grad();  ///< drops the gradient (the next backward starts from zero)
  void retain_grad();  ///< keep the gradient of a non-leaf after backward
  /// Reverse-mode pass from this tensor. A one-element tensor seeds itself with 1; any other needs `seed`
  /// of its shape. Clears the tape afterwards unless retain_graph (see heed/autograd.hpp).
  void backward(const Tensor& seed = Tensor(), bool retain_graph = false) const;
  Tensor detach() const;  ///< same storage, no autograd history, requires_grad false

  // ---- conversion --------------------------------------------------------------------------------
  Tensor contiguous() const;  ///< itself if already dense, else a dense copy (recorded)
  Tensor clone() const;       ///< always a dense copy (recorded)
  Tensor to(DType dtype) const;  ///< a converted copy; float->float is recorded
  /// In-place, not recorded: for initializers and optimizer updates on leaves (use under NoGradGuard).
  Tensor& fill_(double value);
  Tensor& copy_(const Tensor& src);  ///< src broadcast to this shape, converted to this dtype

  // ---- method forms of common ops (see heed/ops.hpp) ---------------------------------------------
  Tensor reshape(const Shape& shape) const;
  Tensor view(const Shape& shape) const { return reshape(shape); }
  Tensor transpose(int64_t a, int64_t b) const;
  Tensor permute(const std::vector<int64_t>& dims) const;
  Tensor unsqueeze(int64_t axis) const;
  Tensor squeeze(int64_t axis) const;
  Tensor flatten(int64_t start = 0, int64_t end = -1) const;
  Tensor sum() const;
  Tensor sum(int64_t axis, bool keepdim = false) const;
  Tensor mean() const;
  Tensor mean(int64_t axis, bool keepdim = false) const;
  Tensor matmul(const Tensor& other) const;

  std::string to_string(int64_t max_per_axis = 6) const;

 private:
  void check_defined(const char* what) const;
  std::shared_ptr<TensorImpl> impl_;
};

/// Makes a new dense tensor (uninitialized data, no autograd state).
Tensor make_tensor(const Shape& shape, DType dtype = DType::Float32);
/// A view of `base`'s storage with its own shape/strides/offset (no autograd record; ops record it).
Tensor make_view(const Tensor& base, Shape shape, Shape strides, int64_t offset);

// ---- creation -------------------------------------------------------------------------------------
Tensor empty(const Shape& shape, DType dtype = DType::Float32);
Tensor zeros(const Shape& shape, DType dtype = DType::Float32);
Tensor ones(const Shape& shape, DType dtype = DType::Float32);
Tensor full(const Shape& shape, double value, DType dtype = DType::Float32);
Tensor zeros_like(const Tensor& t);
Tensor ones_like(const Tensor& t);
Tensor full_like(const Tensor& t, double value);
Tensor scalar(double value, DType dtype = DType::Float32);  ///< shape []
Tensor arange(double end, DType dtype = DType::Float32);
Tensor arange(double start, double end, double step = 1.0, DType dtype = DType::Float32);
Tensor linspace(double start, double end, int64_t steps, DType dtype = DType::Float32);
Tensor eye(int64_t n, DType dtype = DType::Float32);
/// From values in row-major order; the shape defaults to 1-D. Throws when the count does not match.
Tensor tensor(const std::vector<float>& values, Shape shape = {});
Tensor tensor(const std::vector<double>& values, Shape shape = {}, DType dtype = DType::Float64);
Tensor tensor(std::initializer_list<double> values, Shape shape = {}, DType dtype = DType::Float32);
Tensor index_tensor(const std::vector<int64_t>& values, Shape shape = {});  ///< Int64
Tensor bool_tensor(const std::vector<bool>& values, Shape shape = {});      ///< Bool

class Generator;  // heed/random.hpp
/// Random tensors draw from `gen`, or from the default generator (heed::manual_seed) when null.
Tensor randn(const Shape& shape, DType dtype = DType::Float32, Generator* gen = nullptr);
Tensor rand(const Shape& shape, DType dtype = DType::Float32, Generator* gen = nullptr);  ///< U[0,1)
Tensor uniform(const Shape& shape, double low, double high, DType dtype = DType::Float32,
               Generator* gen = nullptr);
Tensor randint(int64_t low, int64_t high, const Shape& shape, Generator* gen = nullptr);  ///< Int64

/// True when shapes agree and every element agrees within atol + rtol*|b| (NaNs never agree).
bool allclose(const Tensor& a, const Tensor& b, double rtol = 1e-5, double atol = 1e-8);
double max_abs_diff(const Tensor& a, const Tensor& b);

}  // namespace heed

// Printing: fmt::format("{}", t) and std::ostream << t.
#include <fmt/format.h>
#include <ostream>
template <>
struct fmt::formatter<heed::Tensor> : fmt::formatter<std::string> {
  template <class Ctx>
  auto format(const heed::Tensor& t, Ctx& ctx) const {
    return fmt::formatter<std::string>::format(t.to_string(), ctx);
  }
};
namespace heed {
inline std::ostream& operator<<(std::ostream& os, const Tensor& t) { return os << t.to_string(); }
}  // namespace heed
