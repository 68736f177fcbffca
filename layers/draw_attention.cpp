// layers/draw_attention.cpp — DRAW's Gaussian filterbank, read and write (equations in
// heed/nn/draw_attention.hpp), composed from recorded heed ops so the gradient is theirs.
#include "heed/nn/draw_attention.hpp"

#include <algorithm>
#include <cmath>

#include "heed/autograd.hpp"
#include "heed/ops.hpp"

namespace heed::nn {
namespace {

std::string shape_of(const Tensor& t) { return t.defined() ? shape_str(t.shape()) : "undefined"; }

// (i - N/2 - 0.5) for i = 1..N (paper) or 0..N-1 (reference codes), as a (1, N) row.
Tensor filter_offsets(int64_t n, DrawIndexing indexing, DType dtype) {
  const double first = indexing == DrawIndexing::OneBased ? 1.0 : 0.0;
  return add(arange(first, first + static_cast<double>(n), 1.0, dtype), -static_cast<double>(n) / 2.0 - 0.5)
      .reshape({1, n});
}

// exp(-(a - μ)² / (2σ²)) / (Σ_a exp(...) + eps) for μ (batch, N) and σ² (batch, 1) -> (batch, N, size).
Tensor gaussian_filters(const Tensor& mu, const Tensor& sigma2, int64_t size, const DrawFilterbankOptions& options) {
  const double first = options.indexing() == DrawIndexing::OneBased ? 1.0 : 0.0;
  const Tensor positions = arange(first, first + static_cast<double>(size), 1.0, mu.dtype()).reshape({1, 1, size});
  const Tensor distance = positions - unsqueeze(mu, 2);                               // (batch, N, size)
  const Tensor filters = exp(-square(distance) / (unsqueeze(sigma2, 2) * 2.0));       // σ² (batch, 1, 1)
  return filters / (sum(filters, {2}, /*keepdim=*/true) + options.eps());
}

void check_bank(const DrawFilterbank& bank, const char* op) {
  HEED_CHECK(bank.fx.defined() && bank.fy.defined() && bank.gamma.defined(),
             "{}: the filterbank is empty (make it with draw_filterbank)", op);
}

}  // namespace

DrawFilterbank draw_filterbank(const Tensor& params, int64_t n, int64_t height, int64_t width,
                               const DrawFilterbankOptions& options) {
  HEED_CHECK(params.defined() && params.dim() == 2 && params.size(1) == 5,
             "draw_filterbank: params must be (batch, 5) = (g_x, g_y, log sigma^2, log delta, log gamma), got {}",
             shape_of(params));
  HEED_CHECK(is_floating(params.dtype()), "draw_filterbank: params must be Float32 or Float64, got {}",
             dtype_name(params.dtype()));
  HEED_CHECK(n >= 1 && height >= 1 && width >= 1,
             "draw_filterbank: the grid size N and the image height and width must be positive, got N={}, "
             "height={}, width={}",
             n, height, width);
  HEED_CHECK(options.eps() >= 0.0, "draw_filterbank: eps must be >= 0, got {}", options.eps());
  const Tensor gx_tilde = narrow(params, 1, 0, 1), gy_tilde = narrow(params, 1, 1, 1);  // each (batch, 1)
  const Tensor log_sigma2 = narrow(params, 1, 2, 1), log_delta = narrow(params, 1, 3, 1);
  const Tensor log_gamma = narrow(params, 1, 4, 1);

  DrawFilterbank bank;
  bank.n = n;
  bank.indexing = options.indexing();
  bank.center_x = (gx_tilde + 1.0) * ((static_cast<double>(width) + 1.0) / 2.0);
  bank.center_y = (gy_tilde + 1.0) * ((static_cast<double>(height) + 1.0) / 2.0);
  // N = 1: one filter at g whatever δ is; the factor is kept finite (δ is reported, not used).
  const double stride_scale = static_cast<double>(std::max(width, height) - 1) / static_cast<double>(std::max<int64_t>(n - 1, 1));
  bank.delta = exp(log_delta) * stride_scale;
  bank.sigma2 = exp(log_sigma2);
  bank.gamma = exp(log_gamma);

  const Tensor offsets = filter_offsets(n, options.indexing(), params.dtype());  // (1, N)
  const Tensor spread = offsets * bank.delta;                                    // (batch, N)
  bank.fx = gaussian_filters(bank.center_x + spread, bank.sigma2, width, options);
  bank.fy = gaussian_filters(bank.center_y + spread, bank.sigma2, height, options);
  return bank;
}

Tensor draw_read(const Tensor& x, const DrawFilterbank& bank) {
  check_bank(bank, "draw_read");
  const int64_t batch = bank.fx.size(0), n = bank.n, width = bank.fx.size(2), height = bank.fy.size(2);
  HEED_CHECK(x.defined() && x.dim() == 3 && x.size(0) == batch && x.size(1) == height && x.size(2) == width,
             "draw_read: image has shape {}, expected (batch, height, width) = [{}, {}, {}] for an N={} filterbank",
             shape_of(x), batch, height, width, n);
  HEED_CHECK(x.dtype() == bank.fx.dtype(), "draw_read: image is {} but the filterbank is {}", dtype_name(x.dtype()),
             dtype_name(bank.fx.dtype()));
  const Tensor glimpse = matmul(matmul(bank.fy, x), transpose(bank.fx, 1, 2));  // (batch, N, N)
  return glimpse * unsqueeze(bank.gamma, 2);
}

Tensor draw_write(const Tensor& w, const DrawFilterbank& bank) {
  check_bank(bank, "draw_write");
  const int64_t batch = bank.fx.size(0), n = bank.n;
  HEED_CHECK(w.defined() && w.size(0) == batch &&
                 ((w.dim() == 3 && w.size(1) == n && w.size(2) == n) || (w.dim() == 2 && w.size(1) == n * n)),
             "draw_write: patch has shape {}, expected [{}, {}, {}] or [{}, {}] for an N={} filterbank", shape_of(w),
             batch, n, n, batch, n * n, n);
  HEED_CHECK(w.dtype() == bank.fx.dtype(), "draw_write: patch is {} but the filterbank is {}", dtype_name(w.dtype()),
             dtype_name(bank.fx.dtype()));
  const Tensor patch = w.dim() == 2 ? w.reshape({batch, n, n}) : w;
  const Tensor image = matmul(matmul(transpose(bank.fy, 1, 2), patch), bank.fx);  // (batch, B, A)
  return image / unsqueeze(bank.gamma, 2);
}

std::vector<DrawBox> draw_boxes(const DrawFilterbank& bank) {
  check_bank(bank, "draw_boxes");
  NoGradGuard no_grad;
  const auto cx = bank.center_x.to_vector<double>(), cy = bank.center_y.to_vector<double>();
  const auto delta = bank.delta.to_vector<double>(), sigma2 = bank.sigma2.to_vector<double>();
  const auto gamma = bank.gamma.to_vector<double>();
  const double n = static_cast<double>(bank.n);
  // Mean filter centre: g + (mean(i) - N/2 - 0.5) δ, i.e. g (1-based) or g - δ (0-based); then one-based
  // coordinates shift by one to 0-based pixels.
  const bool one_based = bank.indexing == DrawIndexing::OneBased;
  const double mean_offset = (one_based ? (n + 1.0) / 2.0 : (n - 1.0) / 2.0) - n / 2.0 - 0.5;
  const double pixel_shift = one_based ? 1.0 : 0.0;
  std::vector<DrawBox> boxes(cx.size());
  for (std::size_t i = 0; i < cx.size(); ++i) {
    const double stride = bank.n > 1 ? delta[i] : 0.0;
    boxes[i].center_x = cx[i] + mean_offset * stride - pixel_shift;
    boxes[i].center_y = cy[i] + mean_offset * stride - pixel_shift;
    boxes[i].stride = stride;
    boxes[i].size = n * stride;
    boxes[i].sigma = std::sqrt(sigma2[i]);
    boxes[i].gamma = gamma[i];
  }
  return boxes;
}

// ---- layers --------------------------------------------------------------------------------------------

namespace {
void check_options(const DrawAttentionOptions& o, const char* layer) {
  HEED_CHECK(o.hidden_size() > 0 && o.n() > 0 && o.height() > 0 && o.width() > 0,
             "{}: hidden_size, N, height and width must be positive, got hidden_size={}, N={}, height={}, width={}",
             layer, o.hidden_size(), o.n(), o.height(), o.width());
}

void check_hidden(const Tensor& h_dec, const DrawAttentionOptions& o, const char* layer) {
  HEED_CHECK(h_dec.defined() && h_dec.dim() == 2 && h_dec.size(1) == o.hidden_size(),
             "{}(hidden_size={}): decoder state has shape {}, expected (batch, {})", layer, o.hidden_size(),
             shape_of(h_dec), o.hidden_size());
}

std::string repr(const DrawAttentionOptions& o) {
  return fmt::format("hidden_size={}, N={}, height={}, width={}{}", o.hidden_size(), o.n(), o.height(), o.width(),
                     o.filterbank().indexing() == DrawIndexing::ZeroBased ? ", indexing=zero_based" : "");
}
}  // namespace

DrawRead::DrawRead(const DrawAttentionOptions& options) : Module("DrawRead"), options_(options) {
  check_options(options, "DrawRead");
  params = register_module("params", std::make_shared<Linear>(options.hidden_size(), 5));
}

DrawReadOutput DrawRead::forward(const Tensor& x, const Tensor& x_hat, const Tensor& h_dec) {
  check_hidden(h_dec, options_, "DrawRead");
  HEED_CHECK(x.defined() && x_hat.defined() && x.shape() == x_hat.shape(),
             "DrawRead: x and x_hat must have the same shape, got {} and {}", shape_of(x), shape_of(x_hat));
  HEED_CHECK(x.dim() == 3 && x.size(0) == h_dec.size(0),
             "DrawRead: images have shape {}, expected (batch, height, width) with batch {} (the decoder state's)",
             shape_of(x), h_dec.size(0));
  DrawFilterbank bank = draw_filterbank((*params)(h_dec), options_.n(), options_.height(), options_.width(),
                                        options_.filterbank());
  const int64_t batch = x.size(0), nn2 = options_.n() * options_.n();
  Tensor glimpse = concat({draw_read(x, bank).reshape({batch, nn2}), draw_read(x_hat, bank).reshape({batch, nn2})}, 1);
  return {glimpse, bank};
}

std::string DrawRead::extra_repr() const { return repr(options_); }

DrawWrite::DrawWrite(const DrawAttentionOptions& options) : Module("DrawWrite"), options_(options) {
  check_options(options, "DrawWrite");
  params = register_module("params", std::make_shared<Linear>(options.hidden_size(), 5));
  patch = register_module("patch", std::make_shared<Linear>(options.hidden_size(), options.n() * options.n()));
}

DrawWriteOutput DrawWrite::forward_write(const Tensor& h_dec) {
  check_hidden(h_dec, options_, "DrawWrite");
  DrawFilterbank bank = draw_filterbank((*params)(h_dec), options_.n(), options_.height(), options_.width(),
                                        options_.filterbank());
  return {draw_write((*patch)(h_dec), bank), bank};
}

std::string DrawWrite::extra_repr() const { return repr(options_); }

}  // namespace heed::nn
