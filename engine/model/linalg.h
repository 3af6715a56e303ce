// QKLab engine — the linear algebra of bilinear forms shared by the attention variants and the
// analyses: singular values of a dense or a factored (A·Bᵀ) form, the best rank-r approximation
// as a dense matrix or as two factors, and the ε of a tensor's dtype.
#pragma once
#include <torch/torch.h>

#include <functional>
#include <utility>
#include <vector>

namespace qk {

// f(i) for i in [0, n), spread over LibTorch's intra-op threads: for per-matrix LAPACK calls
// (decompositions of every head), which are serial per matrix. Each call is the serial one.
void for_each_matrix(int64_t n, const std::function<void(int64_t)>& f);

// σ(A·Bᵀ) for A, B of shape (…, d, k), batched: QR of both, SVD of R_A·R_Bᵀ (k×k). float64.
torch::Tensor factored_singular_values(const torch::Tensor& A, const torch::Tensor& B);
// (…, m, n) -> (…, min(m, n)), computed in M's dtype, returned as float64.
torch::Tensor dense_singular_values(const torch::Tensor& M);
// The SVD of every (…, d, d) form, float64: M = U·diag(S)·Vh. Computed once, it serves every rank
// of a truncation curve (each rank is then a reconstruction, not a new SVD).
struct FormSvd {
  torch::Tensor U, S, Vh;
};
FormSvd form_svd(const torch::Tensor& M);
// The same for M = A·Bᵀ given its factors (…, d, k), through QR of both and the SVD of the small
// k×k core: U (…, d, k), S (…, k), Vh (…, k, d). O(d·k²) instead of O(d³).
FormSvd factored_form_svd(const torch::Tensor& A, const torch::Tensor& B);
// U_r·diag(S_r)·Vh_r: the best rank-r approximation.
torch::Tensor reconstruct(const FormSvd& svd, int64_t r);
// Factors (A, B) of shape (…, d, k) with A·Bᵀ the best rank-min(r, k) approximation:
// A = U_r·Σ_r^½, B = V_r·Σ_r^½, zero-padded to k columns. float64.
std::pair<torch::Tensor, torch::Tensor> svd_factors(const FormSvd& svd, int64_t r, int64_t k);
// Best rank-r approximation of every (…, d, d) matrix, in float64 (r >= d: M itself).
torch::Tensor truncate_dense(const torch::Tensor& M, int64_t r);
// Factors (A, B) of shape (…, d, k) with A·Bᵀ the best rank-min(r, k) approximation of M:
// A = U_r·Σ_r^½, B = V_r·Σ_r^½, zero-padded to k columns. float64.
std::pair<torch::Tensor, torch::Tensor> svd_factors(const torch::Tensor& M, int64_t r, int64_t k);
// The best PSD approximation of rank ≤ k of every form's symmetric part sym(M) = (M + Mᵀ)/2, as a
// factor B (…, d, k) with B·Bᵀ = Q·Λ₊·Qᵀ (the top k eigenpairs, negative eigenvalues clamped to 0;
// exact for a PSD M of rank ≤ k). float64; columns past d are zero.
torch::Tensor psd_factor(const torch::Tensor& M, int64_t k);
double dtype_eps(const torch::Tensor& t);
// Key-side score biases of per-head projections W (H, k, d) with biases b (H·k): u_h = W_hᵀ·b_h,
// (H, d) float64 — the part of (W_h x_i + b_h)·(keys) that depends on the key alone.
torch::Tensor key_bias_of(const torch::Tensor& W, const torch::Tensor& b);
// Per-head least squares b_h = pinv(W_hᵀ)·u_h for W (H, k, d), u (H, d): the bias whose key-side
// term W_hᵀ·b_h is nearest to u_h (exact when u_h lies in W_h's row space). (H, k) float64.
torch::Tensor bias_for_key_bias(const torch::Tensor& W, const torch::Tensor& u);
// Every element as a double, in row-major order.
std::vector<double> to_doubles(const torch::Tensor& t);

}  // namespace qk
