// heed/layers.hpp — every layer: the modules and attention functions under layers/heed/nn/. A new layer
// header adds its line here (the test headers_reachable_from_umbrella fails until it does).
#pragma once
#include "heed/nn/attention.hpp"
#include "heed/nn/attention_pooling.hpp"
#include "heed/nn/basic.hpp"
#include "heed/nn/conv.hpp"
#include "heed/nn/decoding.hpp"
#include "heed/nn/draw_attention.hpp"
#include "heed/nn/gated_attention_pooling.hpp"
#include "heed/nn/graph_attention.hpp"
#include "heed/nn/linear_attention.hpp"
#include "heed/nn/luong_attention.hpp"
#include "heed/nn/recurrent.hpp"
#include "heed/nn/seq2seq_attention.hpp"
#include "heed/nn/sparse_attention.hpp"
#include "heed/nn/spatial_attention.hpp"
#include "heed/nn/transformer.hpp"
