// Graph attention (GAT): each node attends over its neighbours only.
#include <heed/heed.hpp>

#include <cstdio>

int main() {
  heed::manual_seed(0);
  const int64_t n = 4, F = 3;
  heed::Tensor x = heed::randn({n, F});   // node features
  // A path 0 - 1 - 2 - 3 (undirected): adjacency[i][j] = true when j is a neighbour of i.
  heed::Tensor adjacency = heed::bool_tensor({0, 1, 0, 0,
                                              1, 0, 1, 0,
                                              0, 1, 0, 1,
                                              0, 0, 1, 0}, {n, n});
  heed::nn::GATConv conv(heed::nn::GATConvOptions(F, /*out=*/5).heads(2));   // PyG GATConv's names
  auto [h, alpha] = conv.forward(x, adjacency);                             // (n, 2*5), (2, n, n)

  std::printf("attention (2 heads, n x n):\n%s\n", alpha.to_string().c_str());
  bool ok = h.shape() == heed::Shape{n, 10} && alpha.shape() == heed::Shape{2, n, n};
  ok = ok && heed::allclose(heed::sum(alpha, {2}), heed::ones({2, n}));   // over N(i) and i itself
  std::vector<float> a = alpha.to_vector<float>();
  ok = ok && a[0 * n + 2] == 0.0f && a[0 * n + 3] == 0.0f && a[3 * n + 0] == 0.0f;   // non-neighbours: 0
  ok = ok && a[0 * n + 0] > 0.0f;                                                    // self-loop added
  return ok ? 0 : 1;
}
