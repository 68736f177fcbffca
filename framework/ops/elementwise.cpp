// framework/ops/elementwise.cpp — unary, binary (broadcasting), scalar and comparison ops.
//
// Each op: forward kernel, then record(...) with its backward right below. Kernels are plain loops over
// dense memory (GCC -O3 vectorizes them); transcendental functions go through xtensor + xsimd on the
// whole buffer (exp/tanh about 20x faster than std:: per element with AVX2). A backward closure gets a
// dense gradient of the output's shape; binary backwards sum it over broadcast axes with sum_to.
#include <cmath>

#include <xtensor/xadapt.hpp>
#include <xtensor/xmath.hpp>
#include <xtensor/xnoalias.hpp>

#include "heed/ops.hpp"
#include "ops/common.hpp"

namespace heed {
namespace {

using detail::broadcast_shapes;
using detail::broadcast_strides;
using detail::check_float;
using detail::check_same_float;

// out[i] = f(a[i], b[i]) with broadcasting; Out is the output element type (scalar_t or uint8_t).
template <class Out, class In, class F>
Tensor binary_map(const Tensor& a, const Tensor& b, DType out_dtype, const char* op, F f) {
  const Shape shape = broadcast_shapes(a.shape(), b.shape(), op);
  Tensor out = make_tensor(shape, out_dtype);
  Out* o = out.data<Out>();
  const In* pa = a.data<In>();
  const In* pb = b.data<In>();
  const int64_t n = out.numel();
  if (a.shape() == b.shape() && a.is_contiguous() && b.is_contiguous()) {
    for (int64_t i = 0; i < n; ++i) o[i] = f(pa[i], pb[i]);
  } else if (b.numel() == 1 && a.shape() == shape && a.is_contiguous()) {
    const In vb = pb[0];
    for (int64_t i = 0; i < n; ++i) o[i] = f(pa[i], vb);
  } else if (a.numel() == 1 && b.shape() == shape && b.is_contiguous()) {
    const In va = pa[0];
    for (int64_t i = 0; i < n; ++i) o[i] = f(va, pb[i]);
  } else {
    const Shape dense = contiguous_strides(shape);
    const Shape sa = broadcast_strides(a, shape), sb = broadcast_strides(b, shape);
    detail::strided_loop(shape, {&dense, &sa, &sb}, [&](const int64_t* off, int64_t len, const int64_t* inner) {
      Out* po = o + off[0];
      const In* qa = pa + off[1];
      const In* qb = pb + off[2];
      for (int64_t i = 0; i < len; ++i) po[i] = f(qa[i * inner[1]], qb[i * inner[2]]);
    });
  }
  return out;
}

// out[i] = f(x[i]) over a dense copy of x.
template <class T, class F>
Tensor unary_map(const Tensor& x, F f) {
  Tensor xc = x.is_contiguous() ? x : x.detach().contiguous();  // detach: no "clone" entry on the tape
  Tensor out = make_tensor(x.shape(), x.dtype());
  const T* px = xc.data<T>();
  T* o = out.data<T>();
  const int64_t n = out.numel();
  for (int64_t i = 0; i < n; ++i) o[i] = f(px[i]);
  return out;
}

// dx[i] = f(gy[i], s[i]) where s is a saved dense tensor of the same shape (x or y).
template <class T, class F>
Tensor unary_grad(const Tensor& gy, const Tensor& saved, F f) {
  Tensor sc = saved.is_contiguous() ? saved : saved.detach().contiguous();
  Tensor dx = make_tensor(gy.shape(), gy.dtype());
  const T* g = gy.data<T>();
  const T* s = sc.data<T>();
  T* d = dx.data<T>();
  const int64_t n = dx.numel();
  for (int64_t i = 0; i < n; ++i) d[i] = f(g[i], s[i]);
  return dx;
}

// Runs an xtensor expression `expr(in)` over the dense buffer of x (SIMD through xsimd).
template <class T, class Expr>
Tensor unary_simd(const Tensor& x, Expr expr) {
  Tensor xc = x.is_contiguous() ? x : x.detach().contiguous();  // detach: no "clone" entry on the tape
  Tensor out = make_tensor(x.shape(), x.dtype());
  const std::size_t n = static_cast<std::size_t>(out.numel());
  auto in = xt::adapt(xc.data<T>(), n, xt::no_ownership(), std::array<std::size_t, 1>{n});
  auto o = xt::adapt(out.data<T>(), n, xt::no_ownership(), std::array<std::size_t, 1>{n});
  xt::noalias(o) = expr(in);
  return out;
}

}  // namespace

// ---- sum_to: the inverse of broadcasting ------------------------------------------------------------
Tensor sum_to(const Tensor& grad, const Shape& shape) {
  if (grad.shape() == shape) return grad;
  const Shape full = broadcast_shapes(shape, grad.shape(), "sum_to");
  HEED_CHECK(full == grad.shape(), "sum_to: cannot reduce shape {} to {}", shape_str(grad.shape()), shape_str(shape));
  Tensor out = zeros(shape, grad.dtype());
  const Shape gs = grad.strides();
  const Shape os = broadcast_strides(out, grad.shape());
  HEED_DISPATCH_FLOAT(grad.dtype(), "sum_to", [&] {
    const scalar_t* g = grad.data<scalar_t>();
    scalar_t* o = out.data<scalar_t>();
    detail::strided_loop(grad.shape(), {&gs, &os}, [&](const int64_t* off, int64_t n, const int64_t* inner) {
      const scalar_t* pg = g + off[0];
      scalar_t* po = o + off[1];
      if (inner[1] == 0) {
        scalar_t acc = 0;
        for (int64_t i = 0; i < n; ++i) acc += pg[i * inner[0]];
        *po += acc;
      } else {
        for (int64_t i = 0; i < n; ++i) po[i * inner[1]] += pg[i * inner[0]];
      }
    });
  });
  return out;
}

// ---- binary ops ------------------------------------------------------------------------------------

// y = a + b;  da = gy, db = gy (summed over broadcast axes)
Tensor add(const Tensor& a, const Tensor& b) {
  check_same_float(a, b, "add");
  Tensor y = HEED_DISPATCH_FLOAT(a.dtype(), "add", [&] {
    return binary_map<scalar_t, scalar_t>(a, b, a.dtype(), "add", [](scalar_t u, scalar_t v) { return u + v; });
  });
  record("add", y, {a, b}, [a, b](const Tensor& gy) {
    if (a.requires_grad()) accumulate_grad(a, sum_to(gy, a.shape()));
    if (b.requires_grad()) accumulate_grad(b, sum_to(gy, b.shape()));
  });
  return y;
}

// y = a - b;  da = gy, db = -gy
Tensor sub(const Tensor& a, const Tensor& b) {
  check_same_float(a, b, "sub");
  Tensor y = HEED_DISPATCH_FLOAT(a.dtype(), "sub", [&] {
    return binary_map<scalar_t, scalar_t>(a, b, a.dtype(), "sub", [](scalar_t u, scalar_t v) { return u - v; });
  });
  record("sub", y, {a, b}, [a, b](const Tensor& gy) {
    if (a.requires_grad()) accumulate_grad(a, sum_to(gy, a.shape()));
    if (b.requires_grad()) accumulate_grad(b, sum_to(neg(gy), b.shape()));
  });
  return y;
}

// y = a * b;  da = gy * b, db = gy * a
Tensor mul(const Tensor& a, const Tensor& b) {
  check_same_float(a, b, "mul");
  Tensor y = HEED_DISPATCH_FLOAT(a.dtype(), "mul", [&] {
    return binary_map<scalar_t, scalar_t>(a, b, a.dtype(), "mul", [](scalar_t u, scalar_t v) { return u * v; });
  });
  record("mul", y, {a, b}, [a, b](const Tensor& gy) {
    if (a.requires_grad()) accumulate_grad(a, sum_to(mul(gy, b), a.shape()));
    if (b.requires_grad()) accumulate_grad(b, sum_to(mul(gy, a), b.shape()));
  });
  return y;
}

// y = a / b;  da = gy / b, db = -gy * y / b
Tensor div(const Tensor& a, const Tensor& b) {
  check_same_float(a, b, "div");
  Tensor y = HEED_DISPATCH_FLOAT(a.dtype(), "div", [&] {
    return binary_map<scalar_t, scalar_t>(a, b, a.dtype(), "div", [](scalar_t u, scalar_t v) { return u / v; });
  });
  record("div", y, {a, b}, [a, b, y](const Tensor& gy) {
    Tensor g_over_b = div(gy, b);
    if (a.requires_grad()) accumulate_grad(a, sum_to(g_over_b, a.shape()));
    if (b.requires_grad()) accumulate_grad(b, sum_to(neg(mul(g_over_b, y)), b.shape()));
  });
  return y;
}

// y = a^b;  da = gy * b * a^(b-1) (0 where b = 0), db = gy * y * log(a) (0 where a = 0 and b >= 0),
// the zeros as in PyTorch, so that 0^0 and 0^b with b > 0 do not produce 0 * inf = NaN.
Tensor pow(const Tensor& a, const Tensor& b) {
  check_same_float(a, b, "pow");
  Tensor y = HEED_DISPATCH_FLOAT(a.dtype(), "pow", [&] {
    return binary_map<scalar_t, scalar_t>(a, b, a.dtype(), "pow",
                                          [](scalar_t u, scalar_t v) { return std::pow(u, v); });
  });
  record("pow", y, {a, b}, [a, b](const Tensor& gy) {
    HEED_DISPATCH_FLOAT(gy.dtype(), "pow", [&] {
      if (a.requires_grad()) {
        Tensor dy_da = binary_map<scalar_t, scalar_t>(a, b, a.dtype(), "pow", [](scalar_t u, scalar_t v) {
          return v == 0 ? scalar_t(0) : v * std::pow(u, v - 1);
        });
        accumulate_grad(a, sum_to(mul(gy, dy_da), a.shape()));
      }
      if (b.requires_grad()) {
        Tensor dy_db = binary_map<scalar_t, scalar_t>(a, b, a.dtype(), "pow", [](scalar_t u, scalar_t v) {
          return (u == 0 && v >= 0) ? scalar_t(0) : std::pow(u, v) * std::log(u);
        });
        accumulate_grad(b, sum_to(mul(gy, dy_db), b.shape()));
      }
    });
  });
  return y;
}

namespace {
// maximum / minimum: the gradient goes to the selected input (a on ties).
Tensor select_binary(const Tensor& a, const Tensor& b, bool take_max, const char* op) {
  check_same_float(a, b, op);
  Tensor y = HEED_DISPATCH_FLOAT(a.dtype(), op, [&] {
    return binary_map<scalar_t, scalar_t>(a, b, a.dtype(), op, [take_max](scalar_t u, scalar_t v) {
      return take_max ? (u >= v ? u : v) : (u <= v ? u : v);
    });
  });
  record(op, y, {a, b}, [a, b, take_max](const Tensor& gy) {
    Tensor pick_a = take_max ? ge(a, b) : le(a, b);  // Bool, broadcast shape
    Tensor zero = zeros({}, gy.dtype());
    if (a.requires_grad()) accumulate_grad(a, sum_to(where(pick_a, gy, zero), a.shape()));
    if (b.requires_grad()) accumulate_grad(b, sum_to(where(pick_a, zero, gy), b.shape()));
  });
  return y;
}
}  // namespace

Tensor maximum(const Tensor& a, const Tensor& b) { return select_binary(a, b, true, "maximum"); }
Tensor minimum(const Tensor& a, const Tensor& b) { return select_binary(a, b, false, "minimum"); }

// ---- scalar forms ----------------------------------------------------------------------------------

// y = a + c;  da = gy
Tensor add(const Tensor& a, double c) {
  check_float(a, "add");
  Tensor y = HEED_DISPATCH_FLOAT(a.dtype(), "add", [&] {
    const scalar_t v = static_cast<scalar_t>(c);
    return unary_map<scalar_t>(a, [v](scalar_t u) { return u + v; });
  });
  record("add_scalar", y, {a}, [a](const Tensor& gy) { accumulate_grad(a, gy); });
  return y;
}

Tensor sub(const Tensor& a, double c) { return add(a, -c); }

// y = c - b;  db = -gy
Tensor rsub(double c, const Tensor& b) {
  check_float(b, "rsub");
  Tensor y = HEED_DISPATCH_FLOAT(b.dtype(), "rsub", [&] {
    const scalar_t v = static_cast<scalar_t>(c);
    return unary_map<scalar_t>(b, [v](scalar_t u) { return v - u; });
  });
  record("rsub_scalar", y, {b}, [b](const Tensor& gy) { accumulate_grad(b, neg(gy)); });
  return y;
}

// y = a * c;  da = c * gy
Tensor mul(const Tensor& a, double c) {
  check_float(a, "mul");
  Tensor y = HEED_DISPATCH_FLOAT(a.dtype(), "mul", [&] {
    const scalar_t v = static_cast<scalar_t>(c);
    return unary_map<scalar_t>(a, [v](scalar_t u) { return u * v; });
  });
  record("mul_scalar", y, {a}, [a, c](const Tensor& gy) { accumulate_grad(a, mul(gy, c)); });
  return y;
}

Tensor div(const Tensor& a, double c) { return mul(a, 1.0 / c); }

// y = c / b;  db = -gy * y / b
Tensor rdiv(double c, const Tensor& b) {
  check_float(b, "rdiv");
  Tensor y = HEED_DISPATCH_FLOAT(b.dtype(), "rdiv", [&] {
    const scalar_t v = static_cast<scalar_t>(c);
    return unary_map<scalar_t>(b, [v](scalar_t u) { return v / u; });
  });
  record("rdiv_scalar", y, {b}, [b, y](const Tensor& gy) {
    accumulate_grad(b, neg(div(mul(gy, y), b)));
  });
  return y;
}

// y = x^p;  dx = gy * p * x^(p-1)
Tensor pow(const Tensor& x, double p) {
  check_float(x, "pow");
  Tensor y = HEED_DISPATCH_FLOAT(x.dtype(), "pow", [&] {
    const scalar_t e = static_cast<scalar_t>(p);
    if (p == 2.0) return unary_map<scalar_t>(x, [](scalar_t u) { return u * u; });
    return unary_map<scalar_t>(x, [e](scalar_t u) { return std::pow(u, e); });
  });
  record("pow_scalar", y, {x}, [x, p](const Tensor& gy) {
    Tensor dx = HEED_DISPATCH_FLOAT(gy.dtype(), "pow", [&] {
      const scalar_t e = static_cast<scalar_t>(p);
      return unary_grad<scalar_t>(gy, x, [e](scalar_t g, scalar_t u) {
        if (e == scalar_t(0)) return scalar_t(0);  // d/dx x^0 = 0, also at x = 0 (0 * 0^-1 would be NaN)
        return e == scalar_t(2) ? g * 2 * u : g * e * std::pow(u, e - 1);
      });
    });
    accumulate_grad(x, std::move(dx));
  });
  return y;
}

// ---- unary ops -------------------------------------------------------------------------------------

// y = -x;  dx = -gy
Tensor neg(const Tensor& x) {
  check_float(x, "neg");
  Tensor y = HEED_DISPATCH_FLOAT(x.dtype(), "neg", [&] { return unary_map<scalar_t>(x, [](scalar_t u) { return -u; }); });
  record("neg", y, {x}, [x](const Tensor& gy) { accumulate_grad(x, neg(gy)); });
  return y;
}

// y = e^x;  dx = gy * y
Tensor exp(const Tensor& x) {
  check_float(x, "exp");
  Tensor y = HEED_DISPATCH_FLOAT(x.dtype(), "exp", [&] { return unary_simd<scalar_t>(x, [](auto& v) { return xt::exp(v); }); });
  record("exp", y, {x}, [x, y](const Tensor& gy) {
    accumulate_grad(x, HEED_DISPATCH_FLOAT(gy.dtype(), "exp", [&] {
      return unary_grad<scalar_t>(gy, y, [](scalar_t g, scalar_t v) { return g * v; });
    }));
  });
  return y;
}

// y = ln x;  dx = gy / x
Tensor log(const Tensor& x) {
  check_float(x, "log");
  Tensor y = HEED_DISPATCH_FLOAT(x.dtype(), "log", [&] { return unary_simd<scalar_t>(x, [](auto& v) { return xt::log(v); }); });
  record("log", y, {x}, [x](const Tensor& gy) {
    accumulate_grad(x, HEED_DISPATCH_FLOAT(gy.dtype(), "log", [&] {
      return unary_grad<scalar_t>(gy, x, [](scalar_t g, scalar_t u) { return g / u; });
    }));
  });
  return y;
}

// y = sqrt(x);  dx = gy / (2 y)
Tensor sqrt(const Tensor& x) {
  check_float(x, "sqrt");
  Tensor y = HEED_DISPATCH_FLOAT(x.dtype(), "sqrt", [&] { return unary_simd<scalar_t>(x, [](auto& v) { return xt::sqrt(v); }); });
  record("sqrt", y, {x}, [x, y](const Tensor& gy) {
    accumulate_grad(x, HEED_DISPATCH_FLOAT(gy.dtype(), "sqrt", [&] {
      return unary_grad<scalar_t>(gy, y, [](scalar_t g, scalar_t v) { return g / (2 * v); });
    }));
  });
  return y;
}

// y = |x|;  dx = gy * sign(x)  (0 at 0)
Tensor abs(const Tensor& x) {
  check_float(x, "abs");
  Tensor y = HEED_DISPATCH_FLOAT(x.dtype(), "abs", [&] { return unary_map<scalar_t>(x, [](scalar_t u) { return std::abs(u); }); });
  record("abs", y, {x}, [x](const Tensor& gy) {
    accumulate_grad(x, HEED_DISPATCH_FLOAT(gy.dtype(), "abs", [&] {
      return unary_grad<scalar_t>(gy, x, [](scalar_t g, scalar_t u) {
        return u > 0 ? g : (u < 0 ? -g : scalar_t(0));
      });
    }));
  });
  return y;
}

Tensor square(const Tensor& x) { return pow(x, 2.0); }

// y = sin x;  dx = gy cos x
Tensor sin(const Tensor& x) {
  check_float(x, "sin");
  Tensor y = HEED_DISPATCH_FLOAT(x.dtype(), "sin", [&] { return unary_simd<scalar_t>(x, [](auto& v) { return xt::sin(v); }); });
  record("sin", y, {x}, [x](const Tensor& gy) {
    accumulate_grad(x, HEED_DISPATCH_FLOAT(gy.dtype(), "sin", [&] {
      return unary_grad<scalar_t>(gy, x, [](scalar_t g, scalar_t u) { return g * std::cos(u); });
    }));
  });
  return y;
}

// y = cos x;  dx = -gy sin x
Tensor cos(const Tensor& x) {
  check_float(x, "cos");
  Tensor y = HEED_DISPATCH_FLOAT(x.dtype(), "cos", [&] { return unary_simd<scalar_t>(x, [](auto& v) { return xt::cos(v); }); });
  record("cos", y, {x}, [x](const Tensor& gy) {
    accumulate_grad(x, HEED_DISPATCH_FLOAT(gy.dtype(), "cos", [&] {
      return unary_grad<scalar_t>(gy, x, [](scalar_t g, scalar_t u) { return -g * std::sin(u); });
    }));
  });
  return y;
}

// y = tanh x;  dx = gy (1 - y^2)
Tensor tanh(const Tensor& x) {
  check_float(x, "tanh");
  Tensor y = HEED_DISPATCH_FLOAT(x.dtype(), "tanh", [&] { return unary_simd<scalar_t>(x, [](auto& v) { return xt::tanh(v); }); });
  record("tanh", y, {x}, [x, y](const Tensor& gy) {
    accumulate_grad(x, HEED_DISPATCH_FLOAT(gy.dtype(), "tanh", [&] {
      return unary_grad<scalar_t>(gy, y, [](scalar_t g, scalar_t v) { return g * (1 - v * v); });
    }));
  });
  return y;
}

// y = 1 / (1 + e^-x);  dx = gy y (1 - y)
Tensor sigmoid(const Tensor& x) {
  check_float(x, "sigmoid");
  Tensor y = HEED_DISPATCH_FLOAT(x.dtype(), "sigmoid", [&] {
    return unary_simd<scalar_t>(x, [](auto& v) { return scalar_t(1) / (scalar_t(1) + xt::exp(-v)); });
  });
  record("sigmoid", y, {x}, [x, y](const Tensor& gy) {
    accumulate_grad(x, HEED_DISPATCH_FLOAT(gy.dtype(), "sigmoid", [&] {
      return unary_grad<scalar_t>(gy, y, [](scalar_t g, scalar_t v) { return g * v * (1 - v); });
    }));
  });
  return y;
}

// y = max(x, 0);  dx = gy [x > 0]
Tensor relu(const Tensor& x) { return leaky_relu(x, 0.0); }

// y = x if x > 0 else s x;  dx = gy if x > 0 else s gy
// Written as (x > 0 ? v : 0) + s (x > 0 ? 0 : v) with a quiet comparison: GCC (under -ftrapping-math) turns
// only such selects into SIMD blends, while `x > 0 ? v : s * v` stays a branch that random signs
// mispredict half the time (measured 17 ns instead of about 0.5 ns per element).
Tensor leaky_relu(const Tensor& x, double negative_slope) {
  check_float(x, "leaky_relu");
  Tensor y = HEED_DISPATCH_FLOAT(x.dtype(), "leaky_relu", [&] {
    const scalar_t s = static_cast<scalar_t>(negative_slope);
    // relu on its own: 0 * -inf would make relu(-inf) NaN instead of 0.
    if (negative_slope == 0.0)
      return unary_map<scalar_t>(x, [](scalar_t u) { return std::isgreater(u, scalar_t(0)) ? u : scalar_t(0); });
    return unary_map<scalar_t>(x, [s](scalar_t u) {
      const bool positive = std::isgreater(u, scalar_t(0));
      return (positive ? u : scalar_t(0)) + s * (positive ? scalar_t(0) : u);
    });
  });
  record(negative_slope == 0.0 ? "relu" : "leaky_relu", y, {x}, [x, negative_slope](const Tensor& gy) {
    accumulate_grad(x, HEED_DISPATCH_FLOAT(gy.dtype(), "leaky_relu", [&] {
      const scalar_t s = static_cast<scalar_t>(negative_slope);
      return unary_grad<scalar_t>(gy, x, [s](scalar_t g, scalar_t u) {
        const bool positive = std::isgreater(u, scalar_t(0));
        return (positive ? g : scalar_t(0)) + s * (positive ? scalar_t(0) : g);
      });
    }));
  });
  return y;
}

// exact:  y = x Phi(x), Phi(x) = (1 + erf(x/sqrt2))/2;  dx = gy (Phi(x) + x phi(x))
// approximate (tanh): y = x/2 (1 + tanh(k (x + 0.044715 x^3))), k = sqrt(2/pi)
Tensor gelu(const Tensor& x, bool approximate) {
  check_float(x, "gelu");
  Tensor y = HEED_DISPATCH_FLOAT(x.dtype(), "gelu", [&] {
    return unary_map<scalar_t>(x, [approximate](scalar_t u) -> scalar_t {
      if (approximate) {
        const scalar_t k = scalar_t(0.7978845608028654);
        return scalar_t(0.5) * u * (1 + std::tanh(k * (u + scalar_t(0.044715) * u * u * u)));
      }
      return scalar_t(0.5) * u * (1 + std::erf(u * scalar_t(0.7071067811865476)));
    });
  });
  record("gelu", y, {x}, [x, approximate](const Tensor& gy) {
    accumulate_grad(x, HEED_DISPATCH_FLOAT(gy.dtype(), "gelu", [&] {
      return unary_grad<scalar_t>(gy, x, [approximate](scalar_t g, scalar_t u) -> scalar_t {
        if (approximate) {
          const scalar_t k = scalar_t(0.7978845608028654);
          const scalar_t inner = k * (u + scalar_t(0.044715) * u * u * u);
          const scalar_t t = std::tanh(inner);
          const scalar_t dinner = k * (1 + 3 * scalar_t(0.044715) * u * u);
          return g * (scalar_t(0.5) * (1 + t) + scalar_t(0.5) * u * (1 - t * t) * dinner);
        }
        const scalar_t cdf = scalar_t(0.5) * (1 + std::erf(u * scalar_t(0.7071067811865476)));
        const scalar_t pdf = std::exp(scalar_t(-0.5) * u * u) * scalar_t(0.3989422804014327);
        return g * (cdf + u * pdf);
      });
    }));
  });
  return y;
}

// y = log(1 + e^(b x)) / b, or x where b x > threshold;  dx = gy sigmoid(b x) (gy where linear)
Tensor softplus(const Tensor& x, double beta, double threshold) {
  check_float(x, "softplus");
  HEED_CHECK(beta > 0, "softplus: beta must be positive, got {}", beta);
  Tensor y = HEED_DISPATCH_FLOAT(x.dtype(), "softplus", [&] {
    const scalar_t b = static_cast<scalar_t>(beta), th = static_cast<scalar_t>(threshold);
    return unary_map<scalar_t>(x, [b, th](scalar_t u) {
      const scalar_t z = b * u;
      return z > th ? u : std::log1p(std::exp(z)) / b;
    });
  });
  record("softplus", y, {x}, [x, beta, threshold](const Tensor& gy) {
    accumulate_grad(x, HEED_DISPATCH_FLOAT(gy.dtype(), "softplus", [&] {
      const scalar_t b = static_cast<scalar_t>(beta), th = static_cast<scalar_t>(threshold);
      return unary_grad<scalar_t>(gy, x, [b, th](scalar_t g, scalar_t u) {
        const scalar_t z = b * u;
        return z > th ? g : g / (1 + std::exp(-z));
      });
    }));
  });
  return y;
}

// y = x if x > 0 else a (e^x - 1);  dx = gy if x > 0 else gy (y + a)
Tensor elu(const Tensor& x, double alpha) {
  check_float(x, "elu");
  Tensor y = HEED_DISPATCH_FLOAT(x.dtype(), "elu", [&] {
    const scalar_t a = static_cast<scalar_t>(alpha);
    return unary_map<scalar_t>(x, [a](scalar_t u) { return u > 0 ? u : a * std::expm1(u); });
  });
  record("elu", y, {x}, [x, alpha](const Tensor& gy) {
    accumulate_grad(x, HEED_DISPATCH_FLOAT(gy.dtype(), "elu", [&] {
      const scalar_t a = static_cast<scalar_t>(alpha);
      return unary_grad<scalar_t>(gy, x, [a](scalar_t g, scalar_t u) { return u > 0 ? g : g * a * std::exp(u); });
    }));
  });
  return y;
}

// y = min(max(x, lo), hi);  dx = gy where lo <= x <= hi, else 0
Tensor clamp(const Tensor& x, double low, double high) {
  check_float(x, "clamp");
  HEED_CHECK(low <= high, "clamp: low ({}) must not exceed high ({})", low, high);
  Tensor y = HEED_DISPATCH_FLOAT(x.dtype(), "clamp", [&] {
    const scalar_t lo = static_cast<scalar_t>(low), hi = static_cast<scalar_t>(high);
    return unary_map<scalar_t>(x, [lo, hi](scalar_t u) { return u < lo ? lo : (u > hi ? hi : u); });
  });
  record("clamp", y, {x}, [x, low, high](const Tensor& gy) {
    accumulate_grad(x, HEED_DISPATCH_FLOAT(gy.dtype(), "clamp", [&] {
      const scalar_t lo = static_cast<scalar_t>(low), hi = static_cast<scalar_t>(high);
      return unary_grad<scalar_t>(gy, x, [lo, hi](scalar_t g, scalar_t u) { return (u >= lo && u <= hi) ? g : scalar_t(0); });
    }));
  });
  return y;
}

// ---- comparison and logic (no gradient) ------------------------------------------------------------
namespace {
template <class Cmp>
Tensor compare(const Tensor& a, const Tensor& b, const char* op, Cmp cmp) {
  HEED_CHECK(a.defined() && b.defined(), "{}: an input is undefined", op);
  Tensor x = a, y = b;
  if (x.dtype() != y.dtype()) {
    x = a.detach().to(DType::Float64);
    y = b.detach().to(DType::Float64);
  }
  return HEED_DISPATCH_ALL(x.dtype(), [&] {
    return binary_map<uint8_t, scalar_t>(x, y, DType::Bool, op, [cmp](scalar_t u, scalar_t v) -> uint8_t {
      return cmp(u, v) ? 1 : 0;
    });
  });
}
// The scalar takes a float tensor's dtype (as in PyTorch); against Int64 or Bool it stays Float64, so that
// a fractional scalar is not truncated (ints < 2.5 must include 2).
Tensor scalar_like(const Tensor& a, double v) { return full({}, v, is_floating(a.dtype()) ? a.dtype() : DType::Float64); }
}  // namespace

Tensor eq(const Tensor& a, const Tensor& b) { return compare(a, b, "eq", [](auto u, auto v) { return u == v; }); }
Tensor ne(const Tensor& a, const Tensor& b) { return compare(a, b, "ne", [](auto u, auto v) { return u != v; }); }
Tensor lt(const Tensor& a, const Tensor& b) { return compare(a, b, "lt", [](auto u, auto v) { return u < v; }); }
Tensor le(const Tensor& a, const Tensor& b) { return compare(a, b, "le", [](auto u, auto v) { return u <= v; }); }
Tensor gt(const Tensor& a, const Tensor& b) { return compare(a, b, "gt", [](auto u, auto v) { return u > v; }); }
Tensor ge(const Tensor& a, const Tensor& b) { return compare(a, b, "ge", [](auto u, auto v) { return u >= v; }); }
Tensor eq(const Tensor& a, double b) { return eq(a, scalar_like(a, b)); }
Tensor lt(const Tensor& a, double b) { return lt(a, scalar_like(a, b)); }
Tensor gt(const Tensor& a, double b) { return gt(a, scalar_like(a, b)); }

namespace {
Tensor as_bool(const Tensor& t, const char* op) {
  HEED_CHECK(t.defined(), "{}: an input is undefined", op);
  return t.dtype() == DType::Bool ? t : t.detach().to(DType::Bool);
}
}  // namespace

Tensor logical_and(const Tensor& a, const Tensor& b) {
  return binary_map<uint8_t, uint8_t>(as_bool(a, "logical_and"), as_bool(b, "logical_and"), DType::Bool, "logical_and",
                                      [](uint8_t u, uint8_t v) -> uint8_t { return u && v; });
}
Tensor logical_or(const Tensor& a, const Tensor& b) {
  return binary_map<uint8_t, uint8_t>(as_bool(a, "logical_or"), as_bool(b, "logical_or"), DType::Bool, "logical_or",
                                      [](uint8_t u, uint8_t v) -> uint8_t { return u || v; });
}
Tensor logical_not(const Tensor& a) {
  Tensor x = as_bool(a, "logical_not").contiguous();
  Tensor out = make_tensor(x.shape(), DType::Bool);
  const uint8_t* p = x.data<uint8_t>();
  uint8_t* o = out.data<uint8_t>();
  for (int64_t i = 0; i < out.numel(); ++i) o[i] = !p[i];
  return out;
}

}  // namespace heed
