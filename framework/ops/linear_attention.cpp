// framework/ops/linear_attention.cpp — causal_linear_attention: linear attention's causal RNN form
// (Katharopoulos et al. 2020) as one recorded op with its O(L)-memory backward (heed/ops/attention.hpp;
// docs/attention-spec.md M9). The non-causal and parallel forms and the LinearAttention module compose
// ops and are layers (layers/linear_attention.cpp).
//
// Per (sample, head), with phi(x) = elu(x) + 1, q_i = phi(Q_i), k_i = keep_i phi(K_i) (0 for a padded key):
//   forward   S_i = S_{i-1} + k_i V_iᵀ,  Z_i = Z_{i-1} + k_i,  den_i = q_i · Z_i + eps,  O_i = S_iᵀ q_i / den_i
//   backward  u_i = dO_i / den_i,  w_i = (dO_i · O_i) / den_i
//             dq_i = S_i u_i - w_i Z_i                         (replaying S_i, Z_i forward)
//             R_j = sum_{i>=j} q_i u_iᵀ,  r_j = sum_{i>=j} w_i q_i   (reverse sums)
//             dk_j = R_j V_j - r_j,  dV_j = R_jᵀ k_j
//             dQ = dq ∘ phi'(Q),  dK = dk ∘ phi'(K) (0 for a padded key),  phi'(x) = 1 (x > 0), e^x (x <= 0)
// The forward saves phi(Q), phi(K), O and den: O(L (d + m)) per (sample, head), never L x L. The states
// accumulate in double for Float32 inputs too.
#include <cmath>
#include <string>
#include <vector>

#include "heed/autograd.hpp"
#include "heed/ops.hpp"

namespace heed {
namespace {

constexpr const char* kOp = "causal_linear_attention";

std::string shape_or_undefined(const Tensor& t) { return t.defined() ? shape_str(t.shape()) : "undefined"; }

// q (N, H, L, d), k (N, H, S, d), v (N, H, S, m), key_keep (N, S) Bool or undefined.
void check_qkv(const char* op, const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& key_keep) {
  HEED_CHECK(q.defined() && k.defined() && v.defined() && q.dim() == 4 && k.dim() == 4 && v.dim() == 4,
             "{}: expected q (N, H, L, d), k (N, H, S, d), v (N, H, S, m); got q {}, k {}, v {}", op,
             shape_or_undefined(q), shape_or_undefined(k), shape_or_undefined(v));
  HEED_CHECK(is_floating(q.dtype()) && q.dtype() == k.dtype() && q.dtype() == v.dtype(),
             "{}: q, k, v must be Float32 or Float64 of one dtype; got {}, {}, {}", op, dtype_name(q.dtype()),
             dtype_name(k.dtype()), dtype_name(v.dtype()));
  HEED_CHECK(q.size(0) == k.size(0) && q.size(0) == v.size(0) && q.size(1) == k.size(1) && q.size(1) == v.size(1) &&
                 q.size(3) == k.size(3) && k.size(2) == v.size(2),
             "{}: shapes do not fit q (N, H, L, d), k (N, H, S, d), v (N, H, S, m): q {}, k {}, v {}", op,
             shape_str(q.shape()), shape_str(k.shape()), shape_str(v.shape()));
  if (key_keep.defined())
    HEED_CHECK(key_keep.dtype() == DType::Bool && key_keep.shape() == Shape({k.size(0), k.size(2)}),
               "{}: key_keep must be Bool of shape [{}, {}] (N, S) for k {}, got {} of shape {}", op, k.size(0),
               k.size(2), shape_str(k.shape()), dtype_name(key_keep.dtype()), shape_str(key_keep.shape()));
}

// ---- the causal RNN form: forward and backward ---------------------------------------------------------

template <class T>
T phi(T x) {
  return x > 0 ? x + T(1) : std::exp(x);  // elu(x) + 1
}
template <class T>
T phi_grad(T x) {
  return x > 0 ? T(1) : std::exp(x);
}

struct CausalDims {
  int64_t batch_heads, heads, length, d, m;
};

// Writes q_i = phi(Q_i), k_i = keep_i phi(K_i) (features), O and den_i = q_i . Z_i + eps.
template <class T>
void causal_forward(const CausalDims& s, const T* Q, const T* K, const T* V, const uint8_t* keep, double eps, T* qf,
                    T* kf, T* out, T* den) {
  const int64_t L = s.length, d = s.d, m = s.m;
  std::vector<double> state(d * m), z(d), num(m);
  for (int64_t b = 0; b < s.batch_heads; ++b) {
    const uint8_t* keep_b = keep ? keep + (b / s.heads) * L : nullptr;
    std::fill(state.begin(), state.end(), 0.0);
    std::fill(z.begin(), z.end(), 0.0);
    for (int64_t i = 0; i < L; ++i) {
      const int64_t row = b * L + i;
      const T* v_i = V + row * m;
      T* k_i = kf + row * d;
      T* q_i = qf + row * d;
      const bool kept = !keep_b || keep_b[i];
      for (int64_t a = 0; a < d; ++a) k_i[a] = kept ? phi(K[row * d + a]) : T(0);
      for (int64_t a = 0; a < d; ++a) q_i[a] = phi(Q[row * d + a]);
      if (kept)  // S_i = S_{i-1} + k_i v_i^T, Z_i = Z_{i-1} + k_i
        for (int64_t a = 0; a < d; ++a) {
          const double ka = k_i[a];
          double* sa = state.data() + a * m;
          for (int64_t c = 0; c < m; ++c) sa[c] += ka * v_i[c];
          z[a] += ka;
        }
      double denominator = eps;
      for (int64_t a = 0; a < d; ++a) denominator += q_i[a] * z[a];
      std::fill(num.begin(), num.end(), 0.0);
      for (int64_t a = 0; a < d; ++a) {
        const double qa = q_i[a];
        const double* sa = state.data() + a * m;
        for (int64_t c = 0; c < m; ++c) num[c] += qa * sa[c];
      }
      for (int64_t c = 0; c < m; ++c) out[row * m + c] = static_cast<T>(num[c] / denominator);
      den[b * L + i] = static_cast<T>(denominator);
    }
  }
}

// Gradients w.r.t. the raw Q, K, V from gO (all dense (N*H, L, .)).
template <class T>
void causal_backward(const CausalDims& s, const T* Q, const T* K, const T* V, const uint8_t* keep, const T* qf,
                     const T* kf, const T* out, const T* den, const T* g_out, T* dQ, T* dK, T* dV) {
  const int64_t L = s.length, d = s.d, m = s.m;
  std::vector<double> state(d * m), z(d), u(L * m), w(L), reverse(d * m), r(d), dv(m);
  for (int64_t b = 0; b < s.batch_heads; ++b) {
    const uint8_t* keep_b = keep ? keep + (b / s.heads) * L : nullptr;
    // Forward replay: dq_i = S_i u_i - w_i Z_i with u_i = dO_i / den_i, w_i = (dO_i . O_i) / den_i.
    std::fill(state.begin(), state.end(), 0.0);
    std::fill(z.begin(), z.end(), 0.0);
    for (int64_t i = 0; i < L; ++i) {
      const int64_t row = b * L + i;
      const T *k_i = kf + row * d, *v_i = V + row * m, *go = g_out + row * m, *o = out + row * m;
      for (int64_t a = 0; a < d; ++a) {
        const double ka = k_i[a];
        if (ka == 0) continue;  // a padded key (phi > 0 otherwise)
        double* sa = state.data() + a * m;
        for (int64_t c = 0; c < m; ++c) sa[c] += ka * v_i[c];
        z[a] += ka;
      }
      const double inv_den = 1.0 / static_cast<double>(den[b * L + i]);
      double go_dot_o = 0.0;
      for (int64_t c = 0; c < m; ++c) {
        u[i * m + c] = go[c] * inv_den;
        go_dot_o += static_cast<double>(go[c]) * o[c];
      }
      w[i] = go_dot_o * inv_den;
      for (int64_t a = 0; a < d; ++a) {
        const double* sa = state.data() + a * m;
        double dq = -w[i] * z[a];
        for (int64_t c = 0; c < m; ++c) dq += sa[c] * u[i * m + c];
        dQ[row * d + a] = static_cast<T>(dq * phi_grad(Q[row * d + a]));
      }
    }
    // Reverse sums: R_j = sum_{i>=j} q_i u_i^T, r_j = sum_{i>=j} w_i q_i; dk_j = R_j v_j - r_j, dv_j = R_j^T k_j.
    std::fill(reverse.begin(), reverse.end(), 0.0);
    std::fill(r.begin(), r.end(), 0.0);
    for (int64_t j = L - 1; j >= 0; --j) {
      const int64_t row = b * L + j;
      const T *q_j = qf + row * d, *k_j = kf + row * d, *v_j = V + row * m;
      for (int64_t a = 0; a < d; ++a) {
        const double qa = q_j[a];
        double* ra = reverse.data() + a * m;
        for (int64_t c = 0; c < m; ++c) ra[c] += qa * u[j * m + c];
        r[a] += w[j] * qa;
      }
      const bool kept = !keep_b || keep_b[j];
      for (int64_t a = 0; a < d; ++a) {
        double dk = -r[a];
        const double* ra = reverse.data() + a * m;
        for (int64_t c = 0; c < m; ++c) dk += ra[c] * v_j[c];
        dK[row * d + a] = kept ? static_cast<T>(dk * phi_grad(K[row * d + a])) : T(0);
      }
      std::fill(dv.begin(), dv.end(), 0.0);
      for (int64_t a = 0; a < d; ++a) {
        const double ka = k_j[a];
        const double* ra = reverse.data() + a * m;
        for (int64_t c = 0; c < m; ++c) dv[c] += ra[c] * ka;
      }
      for (int64_t c = 0; c < m; ++c) dV[row * m + c] = static_cast<T>(dv[c]);
    }
  }
}

}  // namespace

Tensor causal_linear_attention(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& key_keep, double eps) {
  check_qkv(kOp, q, k, v, key_keep);
  HEED_CHECK(q.size(2) == k.size(2),
             "causal_linear_attention: queries and keys must have one length (L == S); got q {}, k {}",
             shape_str(q.shape()), shape_str(k.shape()));
  const CausalDims dims{q.size(0) * q.size(1), q.size(1), q.size(2), q.size(3), v.size(3)};
  Tensor Q = q.detach().contiguous(), K = k.detach().contiguous(), V = v.detach().contiguous();
  Tensor keep = key_keep.defined() ? key_keep.contiguous() : Tensor();
  Tensor qf = make_tensor(Q.shape(), q.dtype()), kf = make_tensor(K.shape(), q.dtype());
  Tensor out = make_tensor({q.size(0), q.size(1), q.size(2), v.size(3)}, q.dtype());
  Tensor den = make_tensor({q.size(0), q.size(1), q.size(2)}, q.dtype());
  const uint8_t* keep_data = keep.defined() ? keep.data<uint8_t>() : nullptr;
  if (q.dtype() == DType::Float64)
    causal_forward<double>(dims, Q.data<double>(), K.data<double>(), V.data<double>(), keep_data, eps,
                           qf.data<double>(), kf.data<double>(), out.data<double>(), den.data<double>());
  else
    causal_forward<float>(dims, Q.data<float>(), K.data<float>(), V.data<float>(), keep_data, eps, qf.data<float>(),
                          kf.data<float>(), out.data<float>(), den.data<float>());

  // Saved: the inputs, their features, O and den: O(L (d + m)) per (sample, head), never L x L.
  record(kOp, out, {q, k, v},
         [q, k, v, Q, K, V, keep, qf, kf, out, den, dims](const Tensor& g_out) {
           Tensor go = g_out.contiguous();
           Tensor dQ = make_tensor(Q.shape(), Q.dtype()), dK = make_tensor(K.shape(), K.dtype()),
                  dV = make_tensor(V.shape(), V.dtype());
           const uint8_t* keep_data = keep.defined() ? keep.data<uint8_t>() : nullptr;
           if (Q.dtype() == DType::Float64)
             causal_backward<double>(dims, Q.data<double>(), K.data<double>(), V.data<double>(), keep_data,
                                     qf.data<double>(), kf.data<double>(), out.data<double>(), den.data<double>(),
                                     go.data<double>(), dQ.data<double>(), dK.data<double>(), dV.data<double>());
           else
             causal_backward<float>(dims, Q.data<float>(), K.data<float>(), V.data<float>(), keep_data,
                                    qf.data<float>(), kf.data<float>(), out.data<float>(), den.data<float>(),
                                    go.data<float>(), dQ.data<float>(), dK.data<float>(), dV.data<float>());
           accumulate_grad(q, dQ);
           accumulate_grad(k, dK);
           accumulate_grad(v, dV);
         });
  return out;
}

}  // namespace heed
