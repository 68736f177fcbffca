// framework/ops/conv.cpp — conv2d (im2col + GEMM), max_pool2d and avg_pool2d.
//
// conv2d unfolds each sample's receptive fields into a column matrix (im2col: C*kh*kw rows, one column
// per output position) and multiplies it by the weight seen as an (O, C*kh*kw) matrix with one BLAS call
// per sample. The backward recomputes the columns instead of saving them (they are kh*kw times the input):
//   dW += gY_n cols_n^T,   dcols = W^T gY_n  folded back onto the input by col2im,   db = sum gY.
// A 1x1 kernel with stride 1 and no padding skips im2col: the input itself is the column matrix.
// The pools loop over windows directly; max_pool2d saves the flat position of each window's maximum.
//
#include <algorithm>
#include <climits>
#include <cmath>
#include <cstring>
#include <limits>
#include <utility>

#include "heed/ops.hpp"
#include "ops/blas.hpp"
#include "ops/common.hpp"

namespace heed {
namespace {

using detail::blas_int;
using detail::check_float;

// C (m x n) = op(A) op(B) + beta C, row-major, dense operands.
template <class T>
void gemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, const T* a, const T* b, T beta, T* c) {
  detail::gemm_dense("conv2d", ta, tb, m, n, k, T(1), a, b, beta, c);
}

std::string pair_str(Size2 s) { return fmt::format("({}, {})", s.h, s.w); }

// Everything about one conv2d call's shapes, checked once.
struct ConvGeometry {
  int64_t batch, channels, height, width;
  int64_t out_channels, kh, kw;
  Size2 stride, padding, dilation;
  int64_t out_h, out_w;
  int64_t patch() const { return channels * kh * kw; }  // rows of the column matrix
  int64_t positions() const { return out_h * out_w; }  // its columns
  bool direct() const {  // the input already is the column matrix
    return kh == 1 && kw == 1 && stride == Size2(1) && padding == Size2(0);
  }
};

ConvGeometry conv_geometry(const Tensor& x, const Tensor& weight, const Tensor& bias, Size2 stride, Size2 padding,
                           Size2 dilation) {
  check_float(x, "conv2d", "input");
  check_float(weight, "conv2d", "weight");
  HEED_CHECK(x.dim() == 4, "conv2d: input must be (N, C, H, W), got shape {}", shape_str(x.shape()));
  HEED_CHECK(weight.dim() == 4, "conv2d: weight must be (out_channels, in_channels, kh, kw), got shape {}",
             shape_str(weight.shape()));
  HEED_CHECK(weight.dtype() == x.dtype(), "conv2d: weight is {} but the input is {}", dtype_name(weight.dtype()),
             dtype_name(x.dtype()));
  const Shape& xs = x.shape();
  const Shape& ws = weight.shape();
  HEED_CHECK(ws[1] == xs[1], "conv2d: weight {} expects {} input channels, but the input {} has {}",
             shape_str(ws), ws[1], shape_str(xs), xs[1]);
  HEED_CHECK(ws[0] > 0 && ws[1] > 0 && ws[2] > 0 && ws[3] > 0, "conv2d: weight shape {} has an empty axis",
             shape_str(ws));
  if (bias.defined()) {
    HEED_CHECK(bias.dtype() == x.dtype(), "conv2d: bias is {} but the input is {}", dtype_name(bias.dtype()),
               dtype_name(x.dtype()));
    HEED_CHECK(bias.dim() == 1 && bias.size(0) == ws[0], "conv2d: bias has shape {}, expected [{}] for weight {}",
               shape_str(bias.shape()), ws[0], shape_str(ws));
  }
  HEED_CHECK(stride.h > 0 && stride.w > 0 && dilation.h > 0 && dilation.w > 0 && padding.h >= 0 && padding.w >= 0,
             "conv2d: stride {} and dilation {} must be positive and padding {} non-negative", pair_str(stride),
             pair_str(dilation), pair_str(padding));
  ConvGeometry g{xs[0], xs[1], xs[2], xs[3], ws[0], ws[2], ws[3], stride, padding, dilation, 0, 0};
  g.out_h = conv_output_size(g.height, g.kh, stride.h, padding.h, dilation.h);
  g.out_w = conv_output_size(g.width, g.kw, stride.w, padding.w, dilation.w);
  HEED_CHECK(g.out_h > 0 && g.out_w > 0,
             "conv2d: the kernel {} with dilation {} does not fit the padded input: input {}, padding {} "
             "(output would be {}x{})",
             pair_str({g.kh, g.kw}), pair_str(dilation), shape_str(xs), pair_str(padding), g.out_h, g.out_w);
  const char* op = "conv2d";
  blas_int(g.patch(), op);
  blas_int(g.positions(), op);
  blas_int(g.out_channels, op);
  return g;
}

// cols[(c, i, j), (oh, ow)] = x[c, oh*sh - ph + i*dh, ow*sw - pw + j*dw], zero outside the input.
template <class T>
void im2col(const T* x, T* cols, const ConvGeometry& g) {
  const int64_t L = g.positions();
  for (int64_t c = 0; c < g.channels; ++c)
    for (int64_t i = 0; i < g.kh; ++i)
      for (int64_t j = 0; j < g.kw; ++j) {
        T* row = cols + ((c * g.kh + i) * g.kw + j) * L;
        const T* plane = x + c * g.height * g.width;
        for (int64_t oh = 0; oh < g.out_h; ++oh) {
          T* out = row + oh * g.out_w;
          const int64_t ih = oh * g.stride.h - g.padding.h + i * g.dilation.h;
          if (ih < 0 || ih >= g.height) {
            std::fill(out, out + g.out_w, T(0));
            continue;
          }
          const T* in = plane + ih * g.width;
          for (int64_t ow = 0; ow < g.out_w; ++ow) {
            const int64_t iw = ow * g.stride.w - g.padding.w + j * g.dilation.w;
            out[ow] = (iw >= 0 && iw < g.width) ? in[iw] : T(0);
          }
        }
      }
}

// The adjoint of im2col: x[c, ih, iw] += cols[(c, i, j), (oh, ow)] for every (i, j, oh, ow) reading it.
template <class T>
void col2im(const T* cols, T* x, const ConvGeometry& g) {
  const int64_t L = g.positions();
  for (int64_t c = 0; c < g.channels; ++c)
    for (int64_t i = 0; i < g.kh; ++i)
      for (int64_t j = 0; j < g.kw; ++j) {
        const T* row = cols + ((c * g.kh + i) * g.kw + j) * L;
        T* plane = x + c * g.height * g.width;
        for (int64_t oh = 0; oh < g.out_h; ++oh) {
          const int64_t ih = oh * g.stride.h - g.padding.h + i * g.dilation.h;
          if (ih < 0 || ih >= g.height) continue;
          const T* in = row + oh * g.out_w;
          T* out = plane + ih * g.width;
          for (int64_t ow = 0; ow < g.out_w; ++ow) {
            const int64_t iw = ow * g.stride.w - g.padding.w + j * g.dilation.w;
            if (iw >= 0 && iw < g.width) out[iw] += in[ow];
          }
        }
      }
}

// Pooling windows over the last two axes of x; the leading axes are independent planes.
struct PoolGeometry {
  Shape out_shape;
  int64_t planes, height, width;
  int64_t kh, kw, sh, sw, ph, pw;
  int64_t out_h, out_w;
};

PoolGeometry pool_geometry(const Tensor& x, Size2 kernel, const std::optional<Size2>& stride_opt, Size2 padding,
                           const char* op) {
  check_float(x, op);
  HEED_CHECK(x.dim() == 3 || x.dim() == 4, "{}: input must be (N, C, H, W) or (C, H, W), got shape {}", op,
             shape_str(x.shape()));
  const Size2 stride = stride_opt ? *stride_opt : kernel;
  HEED_CHECK(kernel.h > 0 && kernel.w > 0 && stride.h > 0 && stride.w > 0,
             "{}: kernel {} and stride {} must be positive (input {})", op, pair_str(kernel), pair_str(stride),
             shape_str(x.shape()));
  HEED_CHECK(padding.h >= 0 && padding.w >= 0 && padding.h <= kernel.h / 2 && padding.w <= kernel.w / 2,
             "{}: padding {} must be non-negative and at most half the kernel {} (input {})", op, pair_str(padding),
             pair_str(kernel), shape_str(x.shape()));
  PoolGeometry g;
  const int64_t d = x.dim();
  g.height = x.size(d - 2);
  g.width = x.size(d - 1);
  g.planes = g.height * g.width == 0 ? 0 : x.numel() / (g.height * g.width);
  g.kh = kernel.h, g.kw = kernel.w, g.sh = stride.h, g.sw = stride.w, g.ph = padding.h, g.pw = padding.w;
  g.out_h = conv_output_size(g.height, g.kh, g.sh, g.ph);
  g.out_w = conv_output_size(g.width, g.kw, g.sw, g.pw);
  HEED_CHECK(g.out_h > 0 && g.out_w > 0, "{}: kernel {} with padding {} does not fit the input {} (output {}x{})", op,
             pair_str(kernel), pair_str(padding), shape_str(x.shape()), g.out_h, g.out_w);
  g.out_shape = Shape(x.shape().begin(), x.shape().end() - 2);
  g.out_shape.push_back(g.out_h);
  g.out_shape.push_back(g.out_w);
  return g;
}

}  // namespace

int64_t conv_output_size(int64_t in, int64_t kernel, int64_t stride, int64_t padding, int64_t dilation) {
  HEED_CHECK(stride > 0, "conv_output_size: stride must be positive, got {}", stride);
  const int64_t span = in + 2 * padding - dilation * (kernel - 1) - 1;
  return span < 0 ? 0 : span / stride + 1;
}

// y[n, o, oh, ow] = b[o] + sum_{c,i,j} W[o, c, i, j] x[n, c, oh*sh - ph + i*dh, ow*sw - pw + j*dw]
// As matrices per sample: Y_n (O, L) = W (O, C kh kw) cols_n (C kh kw, L) + b.
// Backward: dW += gY_n cols_n^T;  dx_n = col2im(W^T gY_n);  db[o] = sum_{n, l} gY[n, o, l]
Tensor conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias, Size2 stride, Size2 padding, Size2 dilation) {
  const ConvGeometry g = conv_geometry(x, weight, bias, stride, padding, dilation);
  const Tensor xc = x.detach().contiguous();
  const Tensor wc = weight.detach().contiguous();
  const Tensor bc = bias.defined() ? bias.detach().contiguous() : Tensor();
  Tensor y = make_tensor({g.batch, g.out_channels, g.out_h, g.out_w}, x.dtype());
  const int64_t K = g.patch(), L = g.positions(), O = g.out_channels;
  HEED_DISPATCH_FLOAT(x.dtype(), "conv2d", [&] {
    std::vector<scalar_t> cols(g.direct() ? 0 : static_cast<std::size_t>(K * L));
    const scalar_t* px = xc.data<scalar_t>();
    const scalar_t* pb = bc.defined() ? bc.data<scalar_t>() : nullptr;
    scalar_t* py = y.data<scalar_t>();
    for (int64_t n = 0; n < g.batch; ++n) {
      const scalar_t* xn = px + n * g.channels * g.height * g.width;
      const scalar_t* cn = xn;
      if (!g.direct()) {
        im2col(xn, cols.data(), g);
        cn = cols.data();
      }
      scalar_t* yn = py + n * O * L;
      gemm(false, false, int(O), int(L), int(K), wc.data<scalar_t>(), cn, scalar_t(0), yn);
      if (pb)
        for (int64_t o = 0; o < O; ++o)
          for (int64_t l = 0; l < L; ++l) yn[o * L + l] += pb[o];
    }
  });
  record("conv2d", y, {x, weight, bias}, [x, weight, bias, xc, wc, g](const Tensor& gy) {
    const Tensor gc = gy.contiguous();
    const int64_t K = g.patch(), L = g.positions(), O = g.out_channels;
    const bool want_x = x.requires_grad();
    const bool want_w = weight.requires_grad();
    const bool want_b = bias.defined() && bias.requires_grad();
    Tensor dx = want_x ? zeros(x.shape(), x.dtype()) : Tensor();
    Tensor dw = want_w ? zeros(weight.shape(), x.dtype()) : Tensor();
    Tensor db = want_b ? zeros(bias.shape(), x.dtype()) : Tensor();
    HEED_DISPATCH_FLOAT(x.dtype(), "conv2d", [&] {
      std::vector<scalar_t> cols(g.direct() ? 0 : static_cast<std::size_t>(K * L));
      const scalar_t* px = xc.data<scalar_t>();
      const scalar_t* pg = gc.data<scalar_t>();
      const int64_t plane = g.channels * g.height * g.width;
      for (int64_t n = 0; n < g.batch; ++n) {
        const scalar_t* gn = pg + n * O * L;
        if (want_w) {
          const scalar_t* cn = px + n * plane;
          if (!g.direct()) {
            im2col(cn, cols.data(), g);
            cn = cols.data();
          }
          gemm(false, true, int(O), int(K), int(L), gn, cn, scalar_t(1), dw.data<scalar_t>());
        }
        if (want_x) {
          scalar_t* dxn = dx.data<scalar_t>() + n * plane;
          if (g.direct()) {
            gemm(true, false, int(K), int(L), int(O), wc.data<scalar_t>(), gn, scalar_t(0), dxn);
          } else {
            gemm(true, false, int(K), int(L), int(O), wc.data<scalar_t>(), gn, scalar_t(0), cols.data());
            col2im(cols.data(), dxn, g);
          }
        }
        if (want_b) {
          scalar_t* pdb = db.data<scalar_t>();
          for (int64_t o = 0; o < O; ++o) {
            scalar_t acc = 0;
            for (int64_t l = 0; l < L; ++l) acc += gn[o * L + l];
            pdb[o] += acc;
          }
        }
      }
    });
    if (want_x) accumulate_grad(x, std::move(dx));
    if (want_w) accumulate_grad(weight, std::move(dw));
    if (want_b) accumulate_grad(bias, std::move(db));
  });
  return y;
}

// y[p, oh, ow] = max over the window of x[p] (padding = -inf);  dx[p, argmax] += gy[p, oh, ow]
Tensor max_pool2d(const Tensor& x, Size2 kernel, std::optional<Size2> stride, Size2 padding) {
  const PoolGeometry g = pool_geometry(x, kernel, stride, padding, "max_pool2d");
  const Tensor xc = x.detach().contiguous();
  Tensor y = make_tensor(g.out_shape, x.dtype());
  Tensor argmax = make_tensor(g.out_shape, DType::Int64);  // flat position inside the plane
  HEED_DISPATCH_FLOAT(x.dtype(), "max_pool2d", [&] {
    const scalar_t* px = xc.data<scalar_t>();
    scalar_t* py = y.data<scalar_t>();
    int64_t* pa = argmax.data<int64_t>();
    for (int64_t p = 0; p < g.planes; ++p) {
      const scalar_t* plane = px + p * g.height * g.width;
      for (int64_t oh = 0; oh < g.out_h; ++oh)
        for (int64_t ow = 0; ow < g.out_w; ++ow) {
          const int64_t h0 = std::max<int64_t>(oh * g.sh - g.ph, 0), h1 = std::min(oh * g.sh - g.ph + g.kh, g.height);
          const int64_t w0 = std::max<int64_t>(ow * g.sw - g.pw, 0), w1 = std::min(ow * g.sw - g.pw + g.kw, g.width);
          scalar_t best = -std::numeric_limits<scalar_t>::infinity();
          int64_t at = h0 * g.width + w0;
          for (int64_t ih = h0; ih < h1; ++ih)
            for (int64_t iw = w0; iw < w1; ++iw) {
              const scalar_t v = plane[ih * g.width + iw];
              if (v > best || std::isnan(v)) {  // NaN propagates, as in PyTorch
                best = v;
                at = ih * g.width + iw;
              }
            }
          const int64_t o = (p * g.out_h + oh) * g.out_w + ow;
          py[o] = best;
          pa[o] = at;
        }
    }
  });
  record("max_pool2d", y, {x}, [x, argmax, g](const Tensor& gy) {
    const Tensor gc = gy.contiguous();
    Tensor dx = zeros(x.shape(), x.dtype());
    HEED_DISPATCH_FLOAT(x.dtype(), "max_pool2d", [&] {
      const scalar_t* pg = gc.data<scalar_t>();
      const int64_t* pa = argmax.data<int64_t>();
      scalar_t* pd = dx.data<scalar_t>();
      const int64_t per_plane = g.out_h * g.out_w;
      for (int64_t p = 0; p < g.planes; ++p) {
        scalar_t* plane = pd + p * g.height * g.width;
        for (int64_t o = 0; o < per_plane; ++o) plane[pa[p * per_plane + o]] += pg[p * per_plane + o];
      }
    });
    accumulate_grad(x, std::move(dx));
  });
  return y;
}

// y[p, oh, ow] = sum over the window of x[p] / divisor, where the divisor counts the window's padded
// positions too (count_include_pad) or only those inside x;  dx[p, window] += gy[p, oh, ow] / divisor
Tensor avg_pool2d(const Tensor& x, Size2 kernel, std::optional<Size2> stride, Size2 padding, bool count_include_pad) {
  const PoolGeometry g = pool_geometry(x, kernel, stride, padding, "avg_pool2d");
  // The window of output (oh, ow), clipped to x, and its divisor (PyTorch's definition).
  struct Window {
    int64_t h0, h1, w0, w1, divisor;
  };
  auto window = [g, count_include_pad](int64_t oh, int64_t ow) {
    int64_t h0 = oh * g.sh - g.ph, w0 = ow * g.sw - g.pw;
    int64_t h1 = std::min(h0 + g.kh, g.height + g.ph), w1 = std::min(w0 + g.kw, g.width + g.pw);
    const int64_t padded_size = (h1 - h0) * (w1 - w0);
    h0 = std::max<int64_t>(h0, 0), w0 = std::max<int64_t>(w0, 0);
    h1 = std::min(h1, g.height), w1 = std::min(w1, g.width);
    return Window{h0, h1, w0, w1, count_include_pad ? padded_size : (h1 - h0) * (w1 - w0)};
  };
  const Tensor xc = x.detach().contiguous();
  Tensor y = make_tensor(g.out_shape, x.dtype());
  HEED_DISPATCH_FLOAT(x.dtype(), "avg_pool2d", [&] {
    const scalar_t* px = xc.data<scalar_t>();
    scalar_t* py = y.data<scalar_t>();
    for (int64_t p = 0; p < g.planes; ++p) {
      const scalar_t* plane = px + p * g.height * g.width;
      for (int64_t oh = 0; oh < g.out_h; ++oh)
        for (int64_t ow = 0; ow < g.out_w; ++ow) {
          const Window win = window(oh, ow);
          scalar_t acc = 0;
          for (int64_t ih = win.h0; ih < win.h1; ++ih)
            for (int64_t iw = win.w0; iw < win.w1; ++iw) acc += plane[ih * g.width + iw];
          py[(p * g.out_h + oh) * g.out_w + ow] = win.divisor > 0 ? acc / static_cast<scalar_t>(win.divisor) : 0;
        }
    }
  });
  record("avg_pool2d", y, {x}, [x, g, window](const Tensor& gy) {
    const Tensor gc = gy.contiguous();
    Tensor dx = zeros(x.shape(), x.dtype());
    HEED_DISPATCH_FLOAT(x.dtype(), "avg_pool2d", [&] {
      const scalar_t* pg = gc.data<scalar_t>();
      scalar_t* pd = dx.data<scalar_t>();
      for (int64_t p = 0; p < g.planes; ++p) {
        scalar_t* plane = pd + p * g.height * g.width;
        for (int64_t oh = 0; oh < g.out_h; ++oh)
          for (int64_t ow = 0; ow < g.out_w; ++ow) {
            const Window win = window(oh, ow);
            if (win.divisor <= 0) continue;
            const scalar_t share = pg[(p * g.out_h + oh) * g.out_w + ow] / static_cast<scalar_t>(win.divisor);
            for (int64_t ih = win.h0; ih < win.h1; ++ih)
              for (int64_t iw = win.w0; iw < win.w1; ++iw) plane[ih * g.width + iw] += share;
          }
      }
    });
    accumulate_grad(x, std::move(dx));
  });
  return y;
}

}  // namespace heed
