// QKLab engine — AdamW written op for op like PyTorch 1.13's torch.optim.AdamW
// (_single_tensor_adamw, the default on CPU), so that runs match the book's Python bit for bit,
// plus the learning-rate schedule (linear warm-up, cosine decay) and global-norm gradient clipping.
#pragma once
#include <torch/torch.h>

#include <vector>

#include "config.h"

namespace qk {

class AdamW {
 public:
  AdamW(std::vector<torch::Tensor> params, const TrainConfig& cfg);
  void zero_grad();                 // grads set to None, as optimizer.zero_grad(set_to_none=True)
  void step(double lr);             // one update with this step's learning rate
  int64_t steps() const { return step_; }
  // Moments and step count, for exact resume (one entry per parameter, in construction order).
  struct State {
    int64_t step = 0;
    std::vector<torch::Tensor> exp_avg, exp_avg_sq;
  };
  State state() const { return {step_, exp_avg_, exp_avg_sq_}; }
  void set_state(const State& s);  // copies into the existing moments; throws on a count/shape mismatch

 private:
  std::vector<torch::Tensor> params_, exp_avg_, exp_avg_sq_;
  double beta1_, beta2_, eps_, weight_decay_;
  int64_t step_ = 0;
};

// Learning rate for optimiser step `step` (0-based) of `total`.
double scheduled_lr(const TrainConfig& cfg, int64_t step, int64_t total);
// Global L2 norm of the gradients (NaN or inf when any gradient is), without changing them.
double grad_norm(const std::vector<torch::Tensor>& params);
// Scales gradients so that their global L2 norm is at most max_norm; returns the norm before.
double clip_grad_norm(const std::vector<torch::Tensor>& params, double max_norm);

}  // namespace qk
