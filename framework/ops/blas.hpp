// framework/ops/blas.hpp — the one way heed's kernels call BLAS (internal, not installed).
//
// detail::gemm computes C (m x n, row stride ldc) = alpha op(A) op(B) + beta C on row-major operands,
// where op(X) is X or X^T (trans_a / trans_b) and lda / ldb are the row strides of A and B as stored.
// Sizes are int64_t here and checked against BLAS's 32-bit int in one place (the error names the op).
// The definitions live in blas.cpp, the only file that includes <cblas.h>: <cblas.h> and xtensor-blas
// cannot share a translation unit (docs/toolchain.md), and a kernel file should not need to care.
#pragma once
#include <cstdint>

namespace heed::detail {

/// C = alpha op(A) op(B) + beta C (float32), row-major; `op` names the caller in errors.
void gemm(const char* op, bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha,
          const float* a, int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc);
/// C = alpha op(A) op(B) + beta C (float64), row-major; `op` names the caller in errors.
void gemm(const char* op, bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, double alpha,
          const double* a, int64_t lda, const double* b, int64_t ldb, double beta, double* c, int64_t ldc);

/// The same for dense operands: lda, ldb and ldc follow from the shapes (k or m, n or k, n).
template <class T>
inline void gemm_dense(const char* op, bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, T alpha,
                       const T* a, const T* b, T beta, T* c) {
  gemm(op, trans_a, trans_b, m, n, k, alpha, a, trans_a ? m : k, b, trans_b ? k : n, beta, c, n);
}

/// BLAS's 32-bit int for a size or stride; throws heed::Error naming `op` when it does not fit.
int blas_int(int64_t v, const char* op);

}  // namespace heed::detail
