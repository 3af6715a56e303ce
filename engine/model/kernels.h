// QKLab engine — fair mode's kernels: the GEMMs of a training step split across LibTorch's
// intra-op threads, each block a single-threaded BLAS call, with their backward passes, and the
// tanh GELU through the logistic function.
//
// Why: on a few cores, OpenBLAS's own threads spin (sched_yield: system time) between the many
// small GEMMs of a small model, and elementwise ops run on one thread when OpenBLAS holds the
// others. Splitting each GEMM into row (or batch) blocks on the intra-op pool uses every core for
// both, with one thread setting (train.threads = cores, train.blas_threads = 1).
// Each output element is computed by exactly one BLAS call, whose summation order does not depend
// on the split, so results are deterministic run to run (and equal to one unsplit call wherever
// OpenBLAS's kernel does not depend on the row count). Book mode never uses these (model.h).
#pragma once
#include <torch/torch.h>

namespace qk {

// y = x·wᵀ + b: x (..., in), w (out, in), b (out) or undefined → (..., out). Differentiable.
// bf16: the GEMMs (forward and backward) in bfloat16 with float32 results, as one oneDNN call each
// (which threads itself), instead of split float32 GEMMs (train.precision).
torch::Tensor parallel_linear(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& b,
                              bool bf16 = false);
// alpha·a·b (+ add, broadcast to (N, M, P), when defined): a (N, M, K), b (N, K, P) → (N, M, P),
// split over the batch. Differentiable in a and b (add is a constant: the causal mask).
torch::Tensor parallel_bmm(const torch::Tensor& a, const torch::Tensor& b, double alpha = 1.0,
                           const torch::Tensor& add = {});
// 0.5·x·(1 + tanh(√(2/π)(x + 0.044715x³))) computed as x·σ(2·√(2/π)(x + 0.044715x³)) (the same
// function: 0.5(1 + tanh u) = σ(2u)); exp is several times cheaper than tanh on CPUs. Differentiable.
torch::Tensor gelu_tanh_fast(const torch::Tensor& x);

}  // namespace qk
