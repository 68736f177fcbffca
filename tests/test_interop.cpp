// heed -> PyTorch: a model saved by heed loads into the same PyTorch model with strict=True and gives
// the same outputs. (PyTorch -> heed is covered by the fixtures of test_layers.cpp and
// test_recurrent.cpp, written by the Python scripts beside them.) Skips, with a message, when Debian's
// python3-torch is not installed.
#include <doctest/doctest.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <heed/heed.hpp>
#include <heed/io/safetensors.hpp>

namespace {

class TaggerModel : public heed::nn::Module {
 public:
  TaggerModel() : Module("TaggerModel") {
    embedding = register_module("embedding", std::make_shared<heed::nn::Embedding>(20, 8, 0));
    lstm = register_module("lstm", std::make_shared<heed::nn::LSTM>(
                                       heed::nn::LSTMOptions(8, 6).num_layers(2).batch_first(true).bidirectional(true)));
    norm = register_module("norm", std::make_shared<heed::nn::LayerNorm>(std::vector<int64_t>{12}));
    fc = register_module("fc", std::make_shared<heed::nn::Linear>(12, 3));
  }
  heed::Tensor forward(const heed::Tensor& ids) override {
    return (*fc)((*norm)(lstm->forward((*embedding)(ids))));
  }
  std::shared_ptr<heed::nn::Embedding> embedding;
  std::shared_ptr<heed::nn::LSTM> lstm;
  std::shared_ptr<heed::nn::LayerNorm> norm;
  std::shared_ptr<heed::nn::Linear> fc;
};

bool python_torch_available() { return std::system("/usr/bin/python3 -c 'import torch' >/dev/null 2>&1") == 0; }

}  // namespace

TEST_CASE("interop: a heed checkpoint loads into PyTorch (strict) and gives the same outputs") {
  heed::manual_seed(17);
  TaggerModel model;
  {
    heed::NoGradGuard no_grad;  // non-trivial LayerNorm parameters, so the check covers them
    model.norm->weight.copy_(heed::uniform({12}, 0.5, 1.5));
    model.norm->bias.copy_(heed::uniform({12}, -0.5, 0.5));
  }
  heed::Tensor ids = heed::index_tensor({3, 7, 1, 0, 19, 2, 2, 5, 11, 4}, {2, 5});
  heed::Tensor out;
  {
    heed::NoGradGuard no_grad;
    model.eval();
    out = model(ids);
  }
  CHECK(out.shape() == heed::Shape{2, 5, 3});
  const std::string path = "/tmp/heed_interop_" + std::to_string(::getpid()) + ".safetensors";
  heed::nn::NamedTensors state = model.state_dict();
  state.emplace_back("__input_ids", ids);
  state.emplace_back("__expected_output", out);
  heed::io::save_safetensors(path, state);

  // The same file read back by heed: the model's part loads strictly and reproduces the output.
  TaggerModel reloaded;
  heed::io::SafetensorsFile file = heed::io::load_safetensors(path);
  heed::nn::NamedTensors model_part;
  for (auto& [k, t] : file.tensors)
    if (k.rfind("__", 0) != 0) model_part.emplace_back(k, t);
  reloaded.load_state_dict(model_part, true);
  reloaded.eval();
  {
    heed::NoGradGuard no_grad;
    CHECK(heed::allclose(reloaded(ids), out, 0, 0));
  }

  if (!python_torch_available()) {
    MESSAGE("skipped the PyTorch side: /usr/bin/python3 with torch is not installed (apt-get install python3-torch)");
  } else {
    const std::string cmd = std::string("/usr/bin/python3 ") + HEED_FIXTURE_DIR + "/check_heed_checkpoint.py " + path;
    CHECK_MESSAGE(std::system(cmd.c_str()) == 0, "PyTorch rejected heed's checkpoint or computed other outputs");
  }
  std::remove(path.c_str());
}
