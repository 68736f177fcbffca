// heed/heed.hpp — the umbrella header: everything a model needs, the engine (heed/core.hpp) and every
// layer (heed/layers.hpp). It sits at the top of the stack, beside the layers: framework/ never
// includes it (the test framework_includes_no_layer checks this).
#pragma once
#include "heed/core.hpp"
#include "heed/layers.hpp"
