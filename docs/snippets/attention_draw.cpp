// DRAW's read and write attention: an N x N grid of Gaussian filters placed on the image.
#include <heed/heed.hpp>

#include <cmath>
#include <cstdio>

int main() {
  heed::manual_seed(0);
  const int64_t batch = 2, B = 28, A = 28, N = 5;   // 28 x 28 images (B rows, A columns), a 5 x 5 grid
  // (g̃_X, g̃_Y, log σ², log δ̃, log γ) per example, usually W h^dec + b: row 0 is the centred grid that spans
  // the image; row 1 a smaller, sharper grid up and to the left, read with γ = e^0.5.
  heed::Tensor params = heed::tensor({0.0, 0.0, 0.0, 0.0, 0.0,  -0.5, -0.5, -1.0, -1.0, 0.5}, {batch, 5});
  auto bank = heed::nn::draw_filterbank(params, N, B, A);     // F_X (batch, N, A), F_Y (batch, N, B)
  heed::Tensor x = heed::rand({batch, B, A});                 // images in [0, 1)
  heed::Tensor glimpse = heed::nn::draw_read(x, bank);        // γ F_Y x F_Xᵀ        (batch, N, N)
  heed::Tensor canvas = heed::nn::draw_write(glimpse, bank);  // (1/γ) F_Yᵀ w F_X    (batch, B, A)
  std::vector<heed::nn::DrawBox> boxes = heed::nn::draw_boxes(bank);   // where each grid sits, in pixels
  for (const auto& b : boxes)
    std::printf("grid centre (%.2f, %.2f), %.2f pixels wide, sigma %.2f\n", b.center_x, b.center_y, b.size, b.sigma);

  bool ok = glimpse.shape() == heed::Shape{batch, N, N} && canvas.shape() == heed::Shape{batch, B, A};
  ok = ok && heed::allclose(heed::sum(bank.fx, {2}), heed::ones({batch, N}), 1e-5, 1e-6);   // rows sum to 1
  // So reading a blank white image gives γ in every glimpse pixel.
  heed::Tensor white = heed::nn::draw_read(heed::ones({batch, B, A}), bank);
  ok = ok && heed::allclose(white, heed::ones({batch, N, N}) * bank.gamma.unsqueeze(2), 1e-5, 1e-6);
  ok = ok && std::abs(boxes[0].center_x - (A - 1) / 2.0) < 1e-4 && boxes[1].size < boxes[0].size;

  // The layers learn the five numbers from the decoder state; DrawWrite also learns the N x N patch.
  heed::nn::DrawWrite write(heed::nn::DrawAttentionOptions(/*hidden=*/16, N, B, A));
  auto [update, write_bank] = write.forward_write(heed::randn({batch, 16}));   // what to add to the canvas
  ok = ok && update.shape() == heed::Shape{batch, B, A} && write_bank.n == N;
  return ok ? 0 : 1;
}
