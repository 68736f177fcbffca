// heed/heed.hpp — the umbrella header: everything a model needs.
#pragma once
#include "heed/autograd.hpp"
#include "heed/data.hpp"
#include "heed/error.hpp"
#include "heed/gradcheck.hpp"
#include "heed/init.hpp"
#include "heed/nn/module.hpp"
#include "heed/ops.hpp"
#include "heed/optim.hpp"
#include "heed/progress.hpp"
#include "heed/random.hpp"
#include "heed/tensor.hpp"
