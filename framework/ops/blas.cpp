// framework/ops/blas.cpp — detail::gemm (framework/ops/blas.hpp) on OpenBLAS's CBLAS interface.
//
// This is the only file that includes <cblas.h>; it must not include xtensor-blas, whose own CBLAS
// declarations clash with it (docs/toolchain.md).
#include "ops/blas.hpp"

#include <cblas.h>

#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "heed/error.hpp"

namespace heed::detail {
namespace {

// OpenBLAS 0.3.21 does not recognise some recent CPUs (seen: an Intel Xeon of family 6, model 207) and then
// runs its SSE3 "Prescott" kernels, several times slower than its AVX2 ones. heed's default build needs AVX2
// + FMA anyway, so Haswell's kernels always work there: say so once, on the first GEMM, instead of letting a
// run be slow for no visible reason. OPENBLAS_CORETYPE (set by scripts/heed.sh) silences the check, and a
// BLAS other than OpenBLAS has no openblas_get_corename (the weak reference is then null).
extern "C" char* openblas_get_corename(void) __attribute__((weak));

void warn_once_if_slow_blas_kernels() {
  static const bool checked = [] {
#if defined(__AVX2__) && defined(__FMA__)
    if (openblas_get_corename == nullptr || std::getenv("OPENBLAS_CORETYPE") != nullptr) return true;
    const char* core = openblas_get_corename();
    if (core == nullptr) return true;
    static const char* const avx2_cores[] = {"Haswell", "Zen", "SkylakeX", "Cooperlake", "SapphireRapids",
                                             "Excavator"};
    for (const char* fast : avx2_cores)
      if (std::strcmp(core, fast) == 0) return true;
    std::fprintf(stderr,
                 "heed: OpenBLAS chose its '%s' kernels on this CPU (it does not recognise it), and matrix "
                 "products run several times slower than they could. Set OPENBLAS_CORETYPE=Haswell in the "
                 "environment before starting the program (heed's build already requires AVX2 + FMA).\n",
                 core);
#endif
    return true;
  }();
  (void)checked;
}

CBLAS_TRANSPOSE flag(bool trans) { return trans ? CblasTrans : CblasNoTrans; }

}  // namespace

int blas_int(int64_t v, const char* op) {
  HEED_CHECK(v >= 0 && v <= INT_MAX, "{}: dimension or stride {} is out of range for BLAS (32-bit indices)", op,
             v);
  return static_cast<int>(v);
}

void gemm(const char* op, bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
          int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc) {
  warn_once_if_slow_blas_kernels();
  cblas_sgemm(CblasRowMajor, flag(trans_a), flag(trans_b), blas_int(m, op), blas_int(n, op), blas_int(k, op), alpha,
              a, blas_int(lda, op), b, blas_int(ldb, op), beta, c, blas_int(ldc, op));
}

void gemm(const char* op, bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, double alpha,
          const double* a, int64_t lda, const double* b, int64_t ldb, double beta, double* c, int64_t ldc) {
  warn_once_if_slow_blas_kernels();
  cblas_dgemm(CblasRowMajor, flag(trans_a), flag(trans_b), blas_int(m, op), blas_int(n, op), blas_int(k, op), alpha,
              a, blas_int(lda, op), b, blas_int(ldb, op), beta, c, blas_int(ldc, op));
}

}  // namespace heed::detail
