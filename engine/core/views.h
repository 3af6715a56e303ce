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

// Whether the mechanism analyses (every head's eigenvalues, read-outs, ablation) take minutes for
// this size: L·H·d² above 4M entries (a book-size 12×12×768² model is 85M). Large models compute
// them only when asked (the views' Compute button, `analyze --ablation`), never by default.
inline bool heavy_mechanisms(int layers, int heads, int emb_dim) {
  return int64_t(layers) * heads * int64_t(emb_dim) * emb_dim > (int64_t(1) << 22);
}

// Geometry of one head's form M_h (x_iᵀ·M_h·x_j: rows are the query side, columns the key side),
// or with head = -1 of the layer's summed form Σ_h M_h (= W_Qᵀ·W_K for standard: the matrix
// Saponati et al. 2025 score per layer, so these rows compare with their published medians).
struct HeadGeometry {
  int layer = 0, head = -1;
  double sym_fraction = 0, skew_fraction = 0;  // ‖sym(M)‖²/‖M‖², ‖skew(M)‖²/‖M‖² (sum to 1)
  double symmetry = 0;                         // (‖sym‖² − ‖skew‖²)/‖M‖² ∈ [−1, 1]
  double directionality = 0;                   // (col excess − row excess)/(col + row excess)
  double diagonal_mass = std::numeric_limits<double>::quiet_NaN();  // heads only
  std::vector<double> eig_re, eig_im;          // heads only: the non-zero eigenvalues of M_h
};
struct GeometryView {
  std::string variant;
  int layers = 0, heads = 0;
  double uniform_diagonal = 0;  // the diagonal mass of uniform causal attention at this length
  std::vector<HeadGeometry> rows;  // per layer: the layer row (head -1), then its heads
};

// Top singular directions of a token-level circuit, read out as the tokens with the largest
// coordinates of the left (query / source) and right (key / logit) singular vectors.
struct CircuitDirection {
  double sigma = 0;
  std::vector<std::string> left, right;
};
struct CircuitReadout {
  std::string circuit;  // "QK": LN₁(W_E)·M_h·LN₁(W_E)ᵀ; "OV": LN₁(W_E)·W_V,h·W_O,h·γ_f·W_U
  int layer = 0, head = 0;
  std::vector<double> sigma;                // leading singular values
  std::vector<CircuitDirection> directions;
  int64_t form_rank = 0, form_rank_read = 0;  // QK: the form's rank bound, and how many of its leading directions were read
};
struct CompositionScore {
  std::string kind;  // "Q", "K" or "V": the later head's query, key or value reads the earlier head
  int layer_from = 0, head_from = 0, layer_to = 0, head_to = 0;
  double score = 0;  // ‖L·R‖_F / (‖L‖_F·‖R‖_F)
};
struct CircuitsView {
  std::string variant;
  int layers = 0, heads = 0;
  double baseline = 0;  // the score of independent random d×d matrices (≈ 1/√d)
  std::vector<CircuitReadout> readouts;
  std::vector<CompositionScore> composition;
};

// Causal evidence: validation loss with one head ablated, and activation patching.
struct AblationView {
  std::string variant;
  int layers = 0, heads = 0;
  double base_loss = 0, base_acc = std::numeric_limits<double>::quiet_NaN();
  std::vector<double> zero_loss, mean_loss;  // [layer·heads + head]: loss with that head's output zeroed / set to its mean
  std::vector<int> ranks;                    // rank-r truncation of one head's form
  std::vector<std::vector<double>> rank_loss;  // [layer·heads + head][rank index]
  // Patching: the clean prompt's head output put into the corrupted run; the fraction of the
  // clean-vs-corrupted logit difference it restores (1 = the head carries the answer alone).
  std::string patch_clean, patch_corrupt;  // the first pair, as text
  int patch_pairs = 0;
  double clean_logit_diff = 0, corrupt_logit_diff = 0;
  std::vector<double> patch_restored;        // [layer·heads + head]
};

// Logit lens: the residual stream after each block read out through the final LayerNorm
// (recomputed on that stream) and the unembedding, for one sequence per position, and over the
// validation set per layer.
struct LogitLensView {
  std::string variant;
  int layers = 0, T = 0;
  std::vector<std::string> tokens;   // the T input positions
  std::vector<std::string> targets;  // the token each position predicts ("" where none)
  std::vector<double> loss;          // [layer·T + t] −log p(target) (NaN without a target)
  std::vector<int64_t> rank;         // [layer·T + t] the target's rank (0 = top; −1 without a target)
  std::vector<std::vector<std::string>> top_tokens;  // [layer·T + t] the most likely tokens
  std::vector<std::vector<double>> top_probs;
  int positions = 0;                 // validation positions with a target
  std::vector<double> mean_loss, top1;  // [layer] mean loss and top-1 accuracy over them
};

// Direct logit attribution: what each head, each attention bias, each MLP and the embeddings write
// straight into the logit difference logit[answer] − logit[wrong], through the final LayerNorm with
// its scale frozen at the clean run (centred over d, divided by the final stream's σ, times γ):
// the parts plus the LayerNorm's shift add up to the logit difference.
struct AttributionView {
  std::string variant;
  std::string source;   // "validation": the mean over its scored positions; "prompt": the last position
  int layers = 0, heads = 0;
  int positions = 0;
  std::string answer, wrong;  // prompt: the two tokens compared
  double logit_diff = 0;      // the whole, from the model's logits (mean over positions)
  double embed = 0, final_shift = 0;
  std::vector<double> head;              // [layer·heads + head]
  std::vector<double> attn_bias, mlp;    // [layer]: out_proj's bias, the feed-forward branch
  double max_error = 0;       // max over positions |Σ parts − logit difference|
};

// Head detectors (TransformerLens's head_detector, "mul"): per head, the share of its attention on
// a detection pattern's query-key pairs, Σ(A ∘ P)/ΣA per sequence, mean over sequences:
//   previous token   key = query − 1
//   duplicate token  an earlier key holding the query's token
//   induction        a key right after an earlier occurrence of the query's token
// on repeated random tokens (n random tokens, then the same n again) and on validation sequences.
struct DetectorView {
  std::string variant;
  int layers = 0, heads = 0;
  int repeated_len = 0;                          // 2n
  std::vector<std::vector<int64_t>> repeated;    // the repeated random sequences used
  int validation_sequences = 0;
  // [layer·heads + head]; rep: on the repeated random tokens, val: on the validation sequences
  std::vector<double> prev_rep, dup_rep, ind_rep, prev_val, dup_val, ind_val;
  double uniform_prev_rep = 0;  // what uniform causal attention scores as a previous-token head there
};

// Spectral health of one matrix: the eigenvalues λ of WᵀW/N (N ≥ M rows), a power law fitted to
// their tail (α by maximum likelihood, x_min by the Kolmogorov–Smirnov distance) and a
// Marchenko–Pastur fit of the bulk (σ², edge λ₊, spikes above it, soft rank λ₊/λ_max).
struct EsdRecord {
  std::string variant, matrix;  // a parameter name, or "form" for M_h
  int layer = -1, head = -1;
  int64_t step = 0;
  int64_t n = 0;  // eigenvalues (non-zero)
  double alpha = std::numeric_limits<double>::quiet_NaN(), xmin = 0, ks = 0;
  int64_t tail = 0;  // eigenvalues ≥ x_min
  double lambda_max = 0, mp_sigma2 = 0, mp_edge = 0, soft_rank = 0;
  int64_t spikes = 0;
};

}  // namespace qk
