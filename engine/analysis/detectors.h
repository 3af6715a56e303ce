// QKLab engine — head detectors, for any variant, as TransformerLens's head_detector defines them
// (error measure "mul"): a head's score on one sequence is Σ(A ∘ P) / ΣA over its attention
// pattern A (T, T) and a 0/1 detection pattern P; over several sequences, the mean of the scores.
//   previous token   P[i][i−1] = 1
//   duplicate token  P[i][j] = 1 for j < i with token_j = token_i
//   induction        P[i][j] = 1 for 1 ≤ j ≤ i with token_{j−1} = token_i (the duplicate pattern
//                    shifted one key to the right)
// The repeated random sequences: n tokens drawn uniformly from the vocabulary, then the same n again,
// 2n < the context (TransformerLens requires a sequence shorter than it); fixed seed, so every
// variant and every run sees the same ones.
#pragma once
#include <torch/torch.h>

#include <string>
#include <vector>

#include "data.h"
#include "model.h"
#include "views.h"

namespace qk {

enum class DetectorKind { PreviousToken, DuplicateToken, Induction };
// The detection pattern for one sequence of token ids: (T, T) float32, lower triangular.
torch::Tensor detection_pattern(DetectorKind kind, const std::vector<int64_t>& ids);
// Σ(A ∘ P) / ΣA of every head: patterns (H, T, T) -> (H) float64.
torch::Tensor detector_scores(const torch::Tensor& patterns, const torch::Tensor& P);
// `count` sequences of n random tokens repeated once (2n = the largest even length < context).
std::vector<std::vector<int64_t>> repeated_random_tokens(int64_t vocab, int64_t context, int count = 8,
                                                         uint64_t seed = 0);
// Every head's three scores on the repeated random sequences and on up to `max_val` validation
// sequences.
DetectorView model_detectors(GPTModelImpl& m, const std::string& variant, const std::vector<Batch>& probe,
                             int max_val = 16);

}  // namespace qk
