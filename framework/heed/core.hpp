// heed/core.hpp — the engine without the layers: tensors, autograd, ops, options, initialization, random
// numbers, gradient checking, nn::Module, optimizers, data loading, IDX files, safetensors/image/heatmap
// I/O, UTF-8 checks, progress bars, the training loop and the version. Everything under framework/heed/ is
// reachable from here; nothing here includes a layer (layers/heed/). heed/layers.hpp adds the layers, and
// heed/heed.hpp includes both.
#pragma once
#include "heed/autograd.hpp"
#include "heed/data.hpp"
#include "heed/dist.hpp"
#include "heed/error.hpp"
#include "heed/gradcheck.hpp"
#include "heed/idx.hpp"
#include "heed/init.hpp"
#include "heed/io/heatmap.hpp"
#include "heed/io/image.hpp"
#include "heed/io/safetensors.hpp"
#include "heed/nn/module.hpp"
#include "heed/ops.hpp"
#include "heed/optim.hpp"
#include "heed/options.hpp"
#include "heed/progress.hpp"
#include "heed/random.hpp"
#include "heed/report.hpp"
#include "heed/tensor.hpp"
#include "heed/train.hpp"
#include "heed/utf8.hpp"
#include "heed/version.hpp"
