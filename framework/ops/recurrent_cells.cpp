// framework/ops/recurrent_cells.cpp — the step kernels of the fused recurrent op: for each cell (LSTM,
// GRU, Elman RNN), its step forward and its step backward side by side, the equations above each.
//
// A step forward reads the step's rows of GI = X W_ih^T (one GEMM for all steps, recurrent.cpp) and
// GH = h W_hh^T (one GEMM per step), turns them into the gates and the new state, and saves what the
// backward needs in the DirectionCache. A step backward turns dh (and dc) into the step's rows of dGI
// and dGH; recurrent.cpp then forms dh_prev = dGH_t W_hh and, after the loop, the weight gradients.
//
// Row kernels do one sequence's slice of one step. The buffers never overlap; __restrict lets GCC
// vectorize the loops. `a` is the step's scratch row: pre-activations, then activations. σ(v) =
// 1/(1 + e^-v) and tanh(v) = 2σ(2v) - 1: the kernels write -v (or -2v) for a whole step, run one SIMD exp
// pass over it (detail::exp_inplace), then finish each element from e.
#include "ops/recurrent_cells.hpp"

#include <algorithm>
#include <cstring>

#include "ops/vec_exp.hpp"

namespace heed::detail::recurrent {
namespace {

template <class T> inline T sigmoid_from_exp(T e) { return T(1) / (T(1) + e); }
template <class T> inline T tanh_from_exp(T e) { return T(2) / (T(1) + e) - T(1); }

// Writes the output row of step t for sequence n: h' when the step is real, else 0.
template <class T>
void write_output(const Step<T>& s, int64_t n, bool on, const T* h) {
  T* y = s.y + s.g.row(s.t, n) * s.y_stride;
  if (on) std::memcpy(y, h, static_cast<std::size_t>(s.g.hidden) * sizeof(T));
  else std::memset(y, 0, static_cast<std::size_t>(s.g.hidden) * sizeof(T));
}

// Zeroes row r of a (R, width) gradient buffer: a padded step contributes nothing.
template <class T>
void zero_row(T* m, int64_t r, int64_t width) {
  std::memset(m + r * width, 0, static_cast<std::size_t>(width) * sizeof(T));
}

// ---- LSTM: row kernels -----------------------------------------------------------------------------

template <class T>
void lstm_preact_row(int64_t H, const T* __restrict gi, const T* __restrict gh, const T* __restrict b,
                     T* __restrict a) {
  for (int64_t j = 0; j < 4 * H; ++j) a[j] = -(gi[j] + gh[j] + b[j]);
  for (int64_t j = 2 * H; j < 3 * H; ++j) a[j] *= T(2);  // g: tanh(v) = 2σ(2v) - 1
}
template <class T>
void lstm_gates_row(int64_t H, T* __restrict a, const T* __restrict c, T* __restrict e) {
  for (int64_t j = 0; j < 4 * H; ++j) a[j] = sigmoid_from_exp(a[j]);
  for (int64_t j = 2 * H; j < 3 * H; ++j) a[j] = T(2) * a[j] - T(1);
  for (int64_t j = 0; j < H; ++j) e[j] = T(-2) * (a[H + j] * c[j] + a[j] * a[2 * H + j]);  // -2c'
}
template <class T>
void lstm_state_row(int64_t H, const T* __restrict a, const T* __restrict e, T* __restrict c, T* __restrict h,
                    T* __restrict c_prev, T* __restrict tanh_c, bool on) {
  for (int64_t j = 0; j < H; ++j) {
    c_prev[j] = c[j];
    tanh_c[j] = tanh_from_exp(e[j]);
  }
  if (!on) return;
  for (int64_t j = 0; j < H; ++j) {
    c[j] = a[H + j] * c_prev[j] + a[j] * a[2 * H + j];
    h[j] = a[3 * H + j] * tanh_c[j];
  }
}
template <class T>
void lstm_backward_row(int64_t H, const T* __restrict a, const T* __restrict c_prev, const T* __restrict tanh_c,
                       const T* __restrict gy, const T* __restrict dh, T* __restrict dc, T* __restrict da) {
  for (int64_t j = 0; j < H; ++j) {
    const T i = a[j], f = a[H + j], g = a[2 * H + j], o = a[3 * H + j], tc = tanh_c[j];
    const T dht = dh[j] + gy[j];
    const T dct = dc[j] + dht * o * (T(1) - tc * tc);
    da[j] = dct * g * i * (T(1) - i);
    da[H + j] = dct * c_prev[j] * f * (T(1) - f);
    da[2 * H + j] = dct * i * (T(1) - g * g);
    da[3 * H + j] = dht * tc * o * (T(1) - o);
    dc[j] = dct * f;
  }
}

}  // namespace

// ---- LSTM: step forward and backward ---------------------------------------------------------------

// a = GI_t + h W_hh^T + b;  i, f, o = σ(a_i, a_f, a_o),  g = tanh(a_g);  c' = f∘c + i∘g,  h' = o∘tanh(c').
// Saves the gates, c and tanh(c').
template <class T>
void lstm_step_forward(const Step<T>& s) {
  const int64_t N = s.g.batch, H = s.g.hidden, GH = 4 * H;
  for (int64_t n = 0; n < N; ++n) lstm_preact_row(H, s.gi + s.g.row(s.t, n) * GH, s.gh + n * GH, s.bias, s.act + n * GH);
  detail::exp_inplace(s.act, N * GH);
  for (int64_t n = 0; n < N; ++n) lstm_gates_row(H, s.act + n * GH, s.c + n * H, s.aux + n * H);
  detail::exp_inplace(s.aux, N * H);
  T* gates = s.cache.gates.template data<T>();
  T* c_prev = s.cache.c_prev.template data<T>();
  T* tanh_c = s.cache.tanh_c.template data<T>();
  for (int64_t n = 0; n < N; ++n) {
    const int64_t r = s.g.row(s.t, n);
    const bool on = s.g.active(s.t, n);
    lstm_state_row(H, s.act + n * GH, s.aux + n * H, s.c + n * H, s.h + n * H, c_prev + r * H, tanh_c + r * H, on);
    std::memcpy(gates + r * GH, s.act + n * GH, static_cast<std::size_t>(GH) * sizeof(T));
    write_output(s, n, on, s.h + n * H);
  }
}

// dh_t = dh + dy_t;  dc_t = dc + dh_t∘o∘(1 - tanh²c');
// da_i = dc_t∘g∘i(1-i),  da_f = dc_t∘c∘f(1-f),  da_g = dc_t∘i∘(1-g²),  da_o = dh_t∘tanh c'∘o(1-o);
// dGI = dGH = da;  dc <- dc_t∘f.
template <class T>
void lstm_step_backward(const StepBack<T>& s) {
  const int64_t H = s.g.hidden, GH = 4 * H;
  const T* gates = s.cache.gates.template data<T>();
  const T* c_prev = s.cache.c_prev.template data<T>();
  const T* tanh_c = s.cache.tanh_c.template data<T>();
  for (int64_t n = 0; n < s.g.batch; ++n) {
    const int64_t r = s.g.row(s.t, n);
    if (s.g.active(s.t, n))
      lstm_backward_row(H, gates + r * GH, c_prev + r * H, tanh_c + r * H, s.gy + r * s.y_stride, s.dh + n * H,
                        s.dc + n * H, s.dgi + r * GH);
    else
      zero_row(s.dgi, r, GH);
  }
}

// ---- GRU: row kernels ------------------------------------------------------------------------------

namespace {

template <class T>
void gru_preact_row(int64_t H, const T* __restrict gi, const T* __restrict gh, const T* __restrict b,
                    T* __restrict a) {
  for (int64_t j = 0; j < 2 * H; ++j) a[j] = -(gi[j] + gh[j] + b[j]);
}
template <class T>
void gru_gates_row(int64_t H, T* __restrict a, const T* __restrict gi_n, const T* __restrict b_n,
                   const T* __restrict q, T* __restrict e) {
  for (int64_t j = 0; j < 2 * H; ++j) a[j] = sigmoid_from_exp(a[j]);
  for (int64_t j = 0; j < H; ++j) e[j] = T(-2) * (gi_n[j] + b_n[j] + a[j] * q[j]);
}
template <class T>
void gru_state_row(int64_t H, const T* __restrict a, const T* __restrict e, T* __restrict h, T* __restrict gate,
                   bool on) {
  for (int64_t j = 0; j < 2 * H; ++j) gate[j] = a[j];
  for (int64_t j = 0; j < H; ++j) gate[2 * H + j] = tanh_from_exp(e[j]);
  if (!on) return;
  for (int64_t j = 0; j < H; ++j) h[j] = (T(1) - a[H + j]) * gate[2 * H + j] + a[H + j] * h[j];
}
template <class T>
void gru_backward_row(int64_t H, const T* __restrict a, const T* __restrict h_prev, const T* __restrict q,
                      const T* __restrict gy, const T* __restrict dh, T* __restrict dai, T* __restrict dah,
                      T* __restrict direct) {
  for (int64_t j = 0; j < H; ++j) {
    const T r = a[j], z = a[H + j], n = a[2 * H + j];
    const T dht = dh[j] + gy[j];
    const T dan = dht * (T(1) - z) * (T(1) - n * n);
    const T dar = dan * q[j] * r * (T(1) - r);
    const T daz = dht * (h_prev[j] - n) * z * (T(1) - z);
    dai[j] = dar;
    dah[j] = dar;
    dai[H + j] = daz;
    dah[H + j] = daz;
    dai[2 * H + j] = dan;
    dah[2 * H + j] = dan * r;
    direct[j] = dht * z;
  }
}

}  // namespace

// ---- GRU: step forward and backward ----------------------------------------------------------------

// r, z = σ(GI_rz + h W_hrz^T + b_rz);  q = h W_hn^T + b_hn (in GH);  n = tanh(GI_n + b_in + r∘q);
// h' = (1 - z)∘n + z∘h.  Saves the gates and q.
template <class T>
void gru_step_forward(const Step<T>& s) {
  const int64_t N = s.g.batch, H = s.g.hidden, GH = 3 * H;
  for (int64_t n = 0; n < N; ++n) gru_preact_row(H, s.gi + s.g.row(s.t, n) * GH, s.gh + n * GH, s.bias, s.act + n * 2 * H);
  detail::exp_inplace(s.act, N * 2 * H);
  for (int64_t n = 0; n < N; ++n)
    gru_gates_row(H, s.act + n * 2 * H, s.gi + s.g.row(s.t, n) * GH + 2 * H, s.bias + 2 * H, s.gh + n * GH + 2 * H,
                  s.aux + n * H);
  detail::exp_inplace(s.aux, N * H);
  T* gates = s.cache.gates.template data<T>();
  T* hh_n = s.cache.hh_n.template data<T>();
  for (int64_t n = 0; n < N; ++n) {
    const int64_t r = s.g.row(s.t, n);
    const bool on = s.g.active(s.t, n);
    std::memcpy(hh_n + r * H, s.gh + n * GH + 2 * H, static_cast<std::size_t>(H) * sizeof(T));
    gru_state_row(H, s.act + n * 2 * H, s.aux + n * H, s.h + n * H, gates + r * GH, on);
    write_output(s, n, on, s.h + n * H);
  }
}

// dh_t = dh + dy_t;  dn = dh_t∘(1-z);  dz = dh_t∘(h - n);  da_n = dn∘(1-n²);  da_r = da_n∘q∘r(1-r);
// da_z = dz∘z(1-z);  dGI = [da_r, da_z, da_n],  dGH = [da_r, da_z, da_n∘r];  direct = dh_t∘z, the part
// of dh_prev that does not go through W_hh.
template <class T>
void gru_step_backward(const StepBack<T>& s) {
  const int64_t H = s.g.hidden, GH = 3 * H;
  const T* gates = s.cache.gates.template data<T>();
  const T* h_prev = s.cache.h_prev.template data<T>();
  const T* hh_n = s.cache.hh_n.template data<T>();
  for (int64_t n = 0; n < s.g.batch; ++n) {
    const int64_t r = s.g.row(s.t, n);
    if (s.g.active(s.t, n)) {
      gru_backward_row(H, gates + r * GH, h_prev + r * H, hh_n + r * H, s.gy + r * s.y_stride, s.dh + n * H,
                       s.dgi + r * GH, s.dgh + r * GH, s.direct + n * H);
    } else {
      zero_row(s.dgi, r, GH);
      zero_row(s.dgh, r, GH);
    }
  }
}

// ---- Elman RNN: row kernels ------------------------------------------------------------------------

namespace {

template <class T>
void rnn_preact_row(int64_t H, const T* __restrict gi, const T* __restrict gh, const T* __restrict b,
                    T* __restrict a, bool relu) {
  if (relu) {
    for (int64_t j = 0; j < H; ++j) a[j] = std::max(gi[j] + gh[j] + b[j], T(0));
  } else {
    for (int64_t j = 0; j < H; ++j) a[j] = T(-2) * (gi[j] + gh[j] + b[j]);
  }
}
template <class T>
void rnn_backward_row(int64_t H, const T* __restrict h_new, const T* __restrict gy, const T* __restrict dh,
                      T* __restrict da, bool relu) {
  if (relu) {
    for (int64_t j = 0; j < H; ++j) da[j] = h_new[j] > T(0) ? dh[j] + gy[j] : T(0);
  } else {
    for (int64_t j = 0; j < H; ++j) da[j] = (dh[j] + gy[j]) * (T(1) - h_new[j] * h_new[j]);
  }
}

}  // namespace

// ---- Elman RNN: step forward and backward ----------------------------------------------------------

// h' = tanh(GI_t + h W_hh^T + b), or relu(.).  Saves h' (as the gates).
template <class T>
void rnn_step_forward(const Step<T>& s, bool relu) {
  const int64_t N = s.g.batch, H = s.g.hidden;
  for (int64_t n = 0; n < N; ++n) rnn_preact_row(H, s.gi + s.g.row(s.t, n) * H, s.gh + n * H, s.bias, s.act + n * H, relu);
  if (!relu) {
    detail::exp_inplace(s.act, N * H);
    for (int64_t i = 0; i < N * H; ++i) s.act[i] = tanh_from_exp(s.act[i]);
  }
  T* gates = s.cache.gates.template data<T>();
  for (int64_t n = 0; n < N; ++n) {
    const T* a = s.act + n * H;
    T* h = s.h + n * H;
    std::memcpy(gates + s.g.row(s.t, n) * H, a, static_cast<std::size_t>(H) * sizeof(T));
    const bool on = s.g.active(s.t, n);
    if (on) std::memcpy(h, a, static_cast<std::size_t>(H) * sizeof(T));
    write_output(s, n, on, h);
  }
}

// dh_t = dh + dy_t;  da = dh_t∘(1 - h'²) for tanh, dh_t∘[h' > 0] for relu;  dGI = dGH = da.
template <class T>
void rnn_step_backward(const StepBack<T>& s, bool relu) {
  const int64_t H = s.g.hidden;
  const T* gates = s.cache.gates.template data<T>();
  for (int64_t n = 0; n < s.g.batch; ++n) {
    const int64_t r = s.g.row(s.t, n);
    if (s.g.active(s.t, n))
      rnn_backward_row(H, gates + r * H, s.gy + r * s.y_stride, s.dh + n * H, s.dgi + r * H, relu);
    else
      zero_row(s.dgi, r, H);
  }
}

template void lstm_step_forward<float>(const Step<float>&);
template void lstm_step_forward<double>(const Step<double>&);
template void lstm_step_backward<float>(const StepBack<float>&);
template void lstm_step_backward<double>(const StepBack<double>&);
template void gru_step_forward<float>(const Step<float>&);
template void gru_step_forward<double>(const Step<double>&);
template void gru_step_backward<float>(const StepBack<float>&);
template void gru_step_backward<double>(const StepBack<double>&);
template void rnn_step_forward<float>(const Step<float>&, bool);
template void rnn_step_forward<double>(const Step<double>&, bool);
template void rnn_step_backward<float>(const StepBack<float>&, bool);
template void rnn_step_backward<double>(const StepBack<double>&, bool);

}  // namespace heed::detail::recurrent
