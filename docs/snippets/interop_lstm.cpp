// PyTorch -> heed -> PyTorch. The file given as argv[1] was written by PyTorch
// (tests/fixtures/make_recurrent_fixtures.py): the state_dict of
// nn.LSTM(3, 4, num_layers=2, batch_first=True, bidirectional=True), plus an input, initial states and
// PyTorch's outputs for them.
#include <heed/heed.hpp>
#include <heed/io/safetensors.hpp>

#include <cstdio>
#include <string>

int main(int argc, char** argv) {
  const std::string path = argc > 1 ? argv[1] : "lstm.safetensors";
  heed::io::SafetensorsFile file = heed::io::load_safetensors(path);

  // The same layer in heed has the same parameter names and shapes: weight_ih_l0 (4*4, 3), ...
  heed::nn::LSTM lstm(heed::nn::LSTMOptions(3, 4).num_layers(2).batch_first(true).bidirectional(true));
  // Not strict, because the file also holds "input", "output", ...: those come back as unexpected keys.
  heed::nn::LoadResult loaded = lstm.load_state_dict(file.tensors, /*strict=*/false);
  std::printf("missing %zu, unexpected %zu (the test data)\n", loaded.missing_keys.size(),
              loaded.unexpected_keys.size());

  heed::NoGradGuard no_grad;
  lstm.eval();
  heed::Tensor input = file.get("input");                       // (N, T, 3), batch_first
  auto [output, h_n, c_n] = lstm.forward(input, {file.get("h0"), file.get("c0")});
  const double diff = heed::max_abs_diff(output, file.get("output"));
  std::printf("max |heed - pytorch| = %.2e\n", diff);

  // Back to PyTorch: the saved file loads with torch's load_state_dict(strict=True) (interop_lstm.py).
  lstm.save("heed_lstm.safetensors");
  heed::io::save_safetensors("heed_lstm_io.safetensors",
                             {{"input", input}, {"h0", file.get("h0")}, {"c0", file.get("c0")}, {"output", output}});
  return loaded.missing_keys.empty() && diff < 1e-5 ? 0 : 1;
}
