// heed/nn/graph_attention.hpp — graph attention, GAT (Veličković et al. 2018; docs/attention-spec.md M12), over a
// dense adjacency, in the shape of PyTorch Geometric's GATConv; GATv2Conv (Brody et al. 2022) is further down.
//
// For node features h (n, F) (or a batch of graphs, (B, n, F)) and K heads of width F':
//   z_i = W h_i                                        W (K F', F); head k uses rows k F' .. (k+1) F' - 1
//   e_ij = LeakyReLU_0.2(a_dst . z_i + a_src . z_j)    for j in N(i) u {i} (self-loops added)
//   alpha_ij = softmax_j(e_ij)                         over i's neighbours only (heed::masked_softmax)
//   h'_i = sum_j alpha_ij z_j  per head, then concatenated (K F') or averaged over the heads (F'), + bias.
// The paper's a = [a_1 ; a_2] is [att_dst ; att_src] here: a_1 scores the attending node i, a_2 the
// neighbour j. The nonlinearity sigma (ELU in hidden layers, softmax at the output) is applied by the
// model, as in PyG.
//
// Adjacency: Bool (n, n), or (B, n, n) for a batch of graphs; adjacency[i][j] = true when j is a
// neighbour of i (an edge j -> i: row = the node that attends). PyG's edge_index column (src, dst) is
// adjacency[dst][src]. The diagonal is added (add_self_loops, on by default); with it off, a node with no
// neighbour gets a zero output before the bias (heed's fully-masked-row policy).
//
// Dropout: options.dropout(p) drops attention coefficients alpha while training (PyG's `dropout`), and
// options.input_dropout(p) drops the input features first (in PyG and in the paper's code this sits in
// the model, F.dropout(x) before the layer; it is offered here for convenience, default 0). The returned
// attention is the one used, i.e. after dropout (as PyTorch's MultiheadAttention returns it).
//
// Parameters, PyG GATConv names and layouts (recent PyG, whose GATConv has one `lin` for an int
// in_channels; older releases call it lin_src / lin_dst):
//   lin.weight (K F', F)  glorot           att_src (1, K, F')  glorot     att_dst (1, K, F')  glorot
//   bias (K F') with concat, else (F')     zeros
// so a state_dict of torch_geometric.nn.GATConv(F, F', heads=K, concat=...) loads by name. Costs O(K n^2)
// memory per graph (dense); meant for graphs of up to a few thousand nodes.
//
//   heed::nn::GATConv conv(heed::nn::GATConvOptions(16, 8).heads(8).dropout(0.6));
//   auto [h, alpha] = conv.forward(x, adjacency);          // (n, 64), (K, n, n)
#pragma once
#include <cstdint>
#include <memory>
#include <string>

#include "heed/nn/basic.hpp"
#include "heed/nn/module.hpp"
#include "heed/options.hpp"
#include "heed/tensor.hpp"

namespace heed::nn {

/// Settings of GATConv and GATv2Conv (PyG's argument names). Setters chain; the same names read.
struct GATConvOptions {
  /// F (input features per node) and F' (output features per head).
  GATConvOptions(int64_t in_channels, int64_t out_channels) : in_channels_(in_channels), out_channels_(out_channels) {}
  HEED_ARG(int64_t, in_channels);  ///< F
  HEED_ARG(int64_t, out_channels);  ///< F'
  HEED_ARG(int64_t, heads) = 1;  ///< K attention heads
  HEED_ARG(bool, concat) = true;  ///< concatenate the heads (K F') or average them (F')
  HEED_ARG(double, negative_slope) = 0.2;  ///< LeakyReLU slope in the scores
  HEED_ARG(double, dropout) = 0.0;  ///< dropout on the attention coefficients while training
  HEED_ARG(double, input_dropout) = 0.0;  ///< dropout on the input features while training
  HEED_ARG(bool, add_self_loops) = true;  ///< let every node attend to itself
  HEED_ARG(bool, bias) = true;  ///< learn the output bias
};

/// What GATConv and GATv2Conv return.
struct GATConvOutput {
  Tensor output;     ///< (n, K F') or (n, F') when averaging; (B, n, .) for a batch
  Tensor attention;  ///< alpha: (K, n, n), or (B, K, n, n) for a batch; row i sums to 1 over N(i) u {i}
};

/// Graph attention layer (GAT) over a dense Bool adjacency (see the top of this file).
class GATConv : public Module {
 public:
  explicit GATConv(const GATConvOptions& options);  ///< throws on non-positive sizes or invalid dropout
  /// One head, concatenated, with self-loops and bias.
  GATConv(int64_t in_channels, int64_t out_channels) : GATConv(GATConvOptions(in_channels, out_channels)) {}
  void reset() override;  ///< glorot weights and attention vectors, zero bias (PyG's init)
  /// x (n, F) with adjacency (n, n), or x (B, n, F) with adjacency (n, n) (shared) or (B, n, n); Bool.
  GATConvOutput forward(const Tensor& x, const Tensor& adjacency);
  std::string extra_repr() const override;
  const GATConvOptions& options() const { return options_; }  ///< the settings it was made with

  std::shared_ptr<Linear> lin;  ///< lin.weight (K F', F), no bias
  Tensor att_src;               ///< a_src (1, K, F'): scores the neighbour j
  Tensor att_dst;               ///< a_dst (1, K, F'): scores the attending node i
  Tensor bias;                  ///< (K F') or (F'); undefined with bias(false)

 private:
  GATConvOptions options_;
};

using GATv2ConvOptions = GATConvOptions;  ///< GATv2Conv's options: the same type as GATConvOptions

/// GATv2 (Brody, Alon, Yahav 2022, "How attentive are graph attention networks?"), in the shape of PyTorch
/// Geometric's GATv2Conv. GAT's attention is "static": LeakyReLU is monotonic, so every node i ranks its
/// neighbours j by a_src . z_j alone, the same order for every i. GATv2 applies the nonlinearity before the
/// attention vector, which makes the ranking depend on the attending node ("dynamic" attention):
///   x^l_j = W_l h_j + b_l,  x^r_i = W_r h_i + b_r     W_l, W_r (K F', F); head k uses rows k F' .. (k+1) F' - 1
///   e_ij = a . LeakyReLU_0.2(x^r_i + x^l_j)          a (1, K, F'), per head; j in N(i) u {i}
///   alpha_ij = softmax_j(e_ij)                        over i's neighbours only (heed::masked_softmax)
///   h'_i = sum_j alpha_ij x^l_j  per head, then concatenated (K F') or averaged (F'), + bias.
/// Same adjacency, self-loop, dropout and output conventions as GATConv above (it takes GATConvOptions;
/// GATv2ConvOptions is the same type). PyG's share_weights (W_l = W_r) and edge features are not offered.
///
/// Parameters, PyG GATv2Conv names and layouts (PyG's Linear for lin_l / lin_r has a bias unless bias=False):
///   lin_l.weight (K F', F) glorot   lin_l.bias (K F')  uniform(+-1/sqrt(F)), as PyG's Linear
///   lin_r.weight (K F', F) glorot   lin_r.bias (K F')  uniform(+-1/sqrt(F))
///   att (1, K, F') glorot           bias (K F') with concat, else (F')   zeros
/// so a state_dict of torch_geometric.nn.GATv2Conv(F, F', heads=K, concat=...) loads by name. Dense, like
/// GATConv, and more memory: the pre-activation x^r_i + x^l_j is (K, n, n, F') per graph (GATConv's is
/// (K, n, n)), so keep n * F' modest (n = 400, K = 4, F' = 8 is 5 M elements).
///
///   heed::nn::GATv2Conv conv(heed::nn::GATv2ConvOptions(16, 8).heads(4));
///   auto [h, alpha] = conv.forward(x, adjacency);          // (n, 32), (K, n, n)
class GATv2Conv : public Module {
 public:
  explicit GATv2Conv(const GATv2ConvOptions& options);  ///< throws on non-positive sizes or invalid dropout
  /// One head, concatenated, with self-loops and bias.
  GATv2Conv(int64_t in_channels, int64_t out_channels) : GATv2Conv(GATv2ConvOptions(in_channels, out_channels)) {}
  void reset() override;  ///< PyG's init (see above)
  /// x (n, F) with adjacency (n, n), or x (B, n, F) with adjacency (n, n) (shared) or (B, n, n); Bool.
  GATConvOutput forward(const Tensor& x, const Tensor& adjacency);
  std::string extra_repr() const override;
  const GATv2ConvOptions& options() const { return options_; }  ///< the settings it was made with

  std::shared_ptr<Linear> lin_l;  ///< source / neighbour side j: lin_l.weight (K F', F), lin_l.bias (K F')
  std::shared_ptr<Linear> lin_r;  ///< target / attending side i: lin_r.weight (K F', F), lin_r.bias (K F')
  Tensor att;                     ///< (1, K, F')
  Tensor bias;                    ///< (K F') or (F'); undefined with bias(false)

 private:
  GATv2ConvOptions options_;
};

}  // namespace heed::nn
