// QKLab engine — analysis of the bilinear forms: what rank does each head's form use?
//
// Per head, the standard variant's form is M_h = W_query[h]ᵀ·W_key[h] (d×d, rank ≤ qk) and the
// merged variant's is S_hᵀ. Singular values of the factored form come from QR of the two d×qk
// factors and the SVD of the small R_Q·R_Kᵀ — O(d·qk²) instead of the O(d³) dense SVD.
// Metrics per matrix: numerical rank (σ > σ_max·max(m,n)·ε), effective rank (exp of the entropy
// of σ/Σσ, Roy & Vetterli 2007), stable rank ‖·‖_F²/‖·‖₂², the ranks holding 90% / 99% of the
// energy Σσ², spectral and nuclear norm. Between two matrices: principal angles between their
// top-k left (or right) singular subspaces. Rank truncation, merged → standard conversion at rank
// r, attention maps with entropy and rank, and the KL divergence between paired models.
#pragma once
#include <torch/torch.h>

#include <string>
#include <vector>

#include "convert.h"
#include "data.h"
#include "tokenizer.h"
#include "linalg.h"
#include "model.h"
#include "views.h"

namespace qk {

// sigma sorted descending; rows/cols of the matrix (for the numerical-rank tolerance); eps of the
// dtype the matrix was stored in.
RankMetrics rank_metrics(const std::vector<double>& sigma, int64_t rows, int64_t cols, double eps);


struct HeadSpectrum {
  std::string variant, matrix;  // matrix: the variant's matrix_key (variants.h), e.g. "S" or "WqWk"
  int layer = 0, head = 0;
  std::vector<double> sigma;
  RankMetrics metrics;
};
std::vector<HeadSpectrum> model_spectra(GPTModelImpl& m);
// σ of one head only (cheap, for live views).
HeadSpectrum head_spectrum(GPTModelImpl& m, int layer, int head);

// Principal angles (radians, ascending) between the top-k left (left = true) or right singular
// subspaces of two d×d matrices.
std::vector<double> principal_angles(const torch::Tensor& M1, const torch::Tensor& M2, int k, bool left);

// Best rank-r approximation of every head's bilinear form (layer = -1: all layers), in place.
// Merged: S_h ← its rank-r truncation. Standard: W_query[h], W_key[h] ← factors of the rank-r
// truncation of M_h (rows beyond r zero). r = 0 zeroes the form: uniform causal attention.
void truncate_forms(GPTModelImpl& m, int64_t r, int layer = -1);
GPTModel clone_model(GPTModelImpl& m);

// Mean loss over batches, eval mode, no grad, and the accuracy of `accuracy`'s kind (names.h):
// Sequence = the fraction of sequences with every scored position right, Token = the fraction of
// scored positions right, None = NaN.
// fuse_tokens > 0 (fair mode's evaluations): consecutive batches of one sequence length go through
// the model together, up to that many tokens per forward (fewer where the logits would pass
// 256 MiB); each batch's loss is still its own mean, so only the floating-point rounding of the
// larger matrix products differs. 0: one forward per batch, the book's order.
constexpr int64_t kEvalFuseTokens = 16384;  // fair mode's evaluations and the analyses' probes
struct LossAcc { double loss = 0, acc = std::numeric_limits<double>::quiet_NaN(); };
LossAcc evaluate_batches(GPTModelImpl& m, const std::vector<Batch>& batches, AccuracyKind accuracy,
                         int64_t fuse_tokens = 0);
// The same per batch: (loss, correct, counted) of each batch, in order.
struct BatchScore { double loss = 0; int64_t correct = 0, counted = 0; };
std::vector<BatchScore> score_batches(GPTModelImpl& m, const std::vector<Batch>& batches, AccuracyKind accuracy,
                                      int64_t fuse_tokens = 0);
// Batches [from, to) of `scores` as evaluate_batches reports them: the mean of the batches' losses,
// the pooled accuracy (NaN when nothing was counted or the range is empty).
LossAcc combine_scores(const std::vector<BatchScore>& scores, size_t from, size_t to);

// Mean over (sequence, scored position) of KL(p_a ‖ p_b) of the next-token distributions.
double mean_kl(GPTModelImpl& a, GPTModelImpl& b, const std::vector<Batch>& batches);

// Continues `ids` by max_new tokens, eval mode, no grad, cropping to the context. temperature 0:
// greedy, argmax of the softmax as the book's generate_text_simple; otherwise softmax(logits/T)
// over the top_k logits (0 = all), sampled with `gen`.
std::vector<int64_t> generate_ids(GPTModelImpl& m, std::vector<int64_t> ids, int max_new,
                                  double temperature = 0, int top_k = 0, at::Generator* gen = nullptr);

struct AttentionMaps {
  std::vector<torch::Tensor> weights;        // per layer (H, T, T), float32
  std::vector<std::vector<double>> entropy;  // [layer][head] mean row entropy (nats)
  std::vector<std::vector<int64_t>> rank;    // [layer][head] numerical rank of the T×T matrix
  std::vector<std::vector<double>> diagonal; // [layer][head] diagonal mass (diagonal_mass)
};
// The mean weight a token gives itself, per head: mean over batch and positions of w[b, h, i, i].
// w (B, H, T, T) -> (H) float64. Uniform causal attention gives (1/T)·Σ_i 1/(i+1); shared-qk heads
// (q = k, so each token's own score is |q_i|²) tend to sit above it.
torch::Tensor diagonal_mass(const torch::Tensor& w);
// Per [layer][head] over the validation batches, eval mode.
std::vector<std::vector<double>> model_diagonal_mass(GPTModelImpl& m, const std::vector<Batch>& batches);
AttentionMaps attention_maps(GPTModelImpl& m, const std::vector<int64_t>& ids);

// The tokens attention maps are drawn for: a text prompt (tokenizer given and prompt not empty),
// or the validation sequence whose number the prompt holds ("" = 0), cropped to the context.
struct PromptTokens {
  std::vector<int64_t> ids;
  std::vector<std::string> labels;  // decoded tokens, or the ids as text
  // The token each position predicts: a text prompt's next token (-100 at the end), a validation
  // sequence's targets (-100 where the task scores none).
  std::vector<int64_t> targets;
};
PromptTokens prompt_tokens(const Tokenizer* tokenizer, const std::vector<Batch>& probe, const std::string& prompt,
                           int64_t context_length);
// One model's attention maps as plain values (views.h).
AttentionView attention_view(GPTModelImpl& m, const std::string& name, const PromptTokens& tokens);
// Validation loss (and accuracy) with every head's form truncated to each rank (layer -1: all layers).
// The forms are decomposed once (form_svd); each rank is a reconstruction. on_rank hears each rank done.
TruncationView truncation_curve(GPTModelImpl& m, const std::string& name, const std::vector<Batch>& probe,
                                const std::vector<int>& ranks, int layer, AccuracyKind accuracy,
                                const std::function<void(int)>& on_rank = {});

}  // namespace qk
