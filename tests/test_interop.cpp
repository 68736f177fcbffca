// heed -> PyTorch: a model saved by heed loads into the same PyTorch model with strict=True and gives
// the same outputs. (PyTorch -> heed is covered by the fixtures of test_layers.cpp and
// test_recurrent.cpp, written by the Python scripts beside them.) The PyTorch side is its own test case;
// without torch (Debian's python3-torch, for /usr/bin/python3 or $HEED_PYTHON) it prints
// HEED_TEST_SKIPPED before asserting anything, and CTest reports it as skipped (tests/CMakeLists.txt).
#include <doctest/doctest.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>
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

// The Python interpreter that should have torch: $HEED_PYTHON, else Debian's /usr/bin/python3.
std::string python() {
  const char* p = std::getenv("HEED_PYTHON");
  return p != nullptr && *p != '\0' ? p : "/usr/bin/python3";
}

bool python_torch_available() { return std::system((python() + " -c 'import torch' >/dev/null 2>&1").c_str()) == 0; }

// A TaggerModel with non-trivial LayerNorm parameters, saved to `path` with its input ids and output (under
// "__input_ids" and "__expected_output") after the model part reloaded strictly into a fresh model
// reproduces the output.
void save_tagger_checkpoint(const std::string& path) {
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
}

std::string checkpoint_path() { return "/tmp/heed_interop_" + std::to_string(::getpid()) + ".safetensors"; }

}  // namespace

TEST_CASE("interop: a heed checkpoint reloads into heed (strict) and gives the same outputs") {
  const std::string path = checkpoint_path();
  save_tagger_checkpoint(path);
  std::remove(path.c_str());
}

TEST_CASE("interop: a heed checkpoint loads into PyTorch (strict) and gives the same outputs") {
  if (!python_torch_available()) {
    MESSAGE("HEED_TEST_SKIPPED: " << python() << " cannot import torch (apt-get install python3-torch)");
    return;
  }
  const std::string path = checkpoint_path();
  save_tagger_checkpoint(path);
  const std::string cmd = python() + " " + HEED_FIXTURE_DIR + "/check_heed_checkpoint.py " + path;
  CHECK_MESSAGE(std::system(cmd.c_str()) == 0, "PyTorch rejected heed's checkpoint or computed other outputs");
  std::remove(path.c_str());
}
