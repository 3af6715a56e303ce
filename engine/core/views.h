// QKLab engine — plain-value results of inspecting models (no torch): what the GUI's views and
// exports show. Produced by Inspector (inspect.h) on the worker thread, copied to the GUI.
#pragma once
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

namespace qk {

struct RankMetrics {
  int64_t numerical_rank = 0;
  double effective_rank = 0, stable_rank = 0;
  int64_t rank90 = 0, rank99 = 0;
  double spectral_norm = 0, nuclear_norm = 0;
};

struct AttentionView {
  std::string variant;
  std::vector<std::string> tokens;           // labels of the T positions
  int layers = 0, heads = 0, T = 0;
  std::vector<std::vector<float>> weights;   // [layer * heads + head] row-major T×T
  std::vector<std::vector<double>> entropy;  // [layer][head]
  std::vector<std::vector<int64_t>> rank;    // [layer][head]
  std::vector<std::vector<double>> diagonal; // [layer][head] mean weight a token gives itself
};

struct SpectrumView {
  std::string variant, matrix;  // matrix: S | WqWk
  int layer = 0, head = 0, head_dim = 0;
  std::vector<double> sigma;
  RankMetrics metrics;
};

struct TruncationView {
  std::string variant;
  std::vector<int> ranks;
  std::vector<double> val_loss, val_acc;
};

struct SampleView {
  std::string variant;
  std::string text;
};

}  // namespace qk
