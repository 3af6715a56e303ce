// QKLab engine — size estimates shown while an experiment is edited: parameters (exact, by
// formula), training FLOPs per token and a memory estimate, per variant. No torch.
#pragma once
#include <cstdint>

#include "config.h"

namespace qk {

struct SizeEstimate {
  int64_t parameters = 0;
  double flops_per_token = 0;  // training (forward + backward ≈ 3× forward), matmuls only
  double attention_flops_per_token = 0;  // the attention blocks' share (projections, scores, mixing)
  double memory_bytes = 0;     // weights + grads + AdamW moments + activations of one batch
};
// vocab: the model's vocabulary (config's vocab_size, or the data's when that is 0).
SizeEstimate estimate(const ExperimentConfig& c, Variant v, int64_t vocab);
// The vocabulary a synthetic task needs (0 for text data: it depends on the corpus).
int64_t task_vocab_size(const DataConfig& d);

}  // namespace qk
