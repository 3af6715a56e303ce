// QKLab engine — the geometry of each head's query-key form M_h (x_iᵀ·M_h·x_j; rows: query side,
// columns: key side) and of each layer's summed form Σ_h M_h:
//   symmetric/skew split  ‖sym(M)‖²/‖M‖², ‖skew(M)‖²/‖M‖², symmetry s = (‖sym‖² − ‖skew‖²)/‖M‖²
//   directionality        Saponati et al. 2025 (arXiv 2502.10927): row and column norms of M,
//                         the excess of each over its mean + 2·std (unbiased std), and
//                         (col excess − row excess)/(col excess + row excess); 0 when neither exceeds
//   eigenvalues           the non-zero eigenvalues of M_h = U·Σ·Vh (the variant's form_svd, which
//                         factored variants compute from their thin factors): those of the small
//                         k×k matrix Vh·U·Σ — for standard the same as W_K,h·W_Q,hᵀ's
//   diagonal mass         the mean weight a token gives itself (analysis.h)
#pragma once
#include <torch/torch.h>

#include <vector>

#include "data.h"
#include "model.h"
#include "views.h"

namespace qk {

struct FormGeometry {
  double sym_fraction = 0, skew_fraction = 0, symmetry = 0, directionality = 0;
};
// M (d, d), any dtype; computed in float64. A zero matrix gives all zeros.
FormGeometry form_geometry(const torch::Tensor& M);
// Non-zero eigenvalues (|λ| above the SVD's rank tolerance) of U·diag(S)·Vh, as (re, im) pairs
// sorted by |λ| descending. U (d, k), S (k), Vh (k, d).
std::vector<std::pair<double, double>> form_eigenvalues(const torch::Tensor& U, const torch::Tensor& S,
                                                        const torch::Tensor& Vh, double eps);
// The mean diagonal mass of uniform causal attention over T positions: (1/T)·Σ_i 1/(i+1).
double uniform_diagonal_mass(int64_t T);
// Every layer's row (head -1) and its heads' rows; diagonal mass over `probe` (none: NaN).
GeometryView model_geometry(GPTModelImpl& m, const std::string& variant, const std::vector<Batch>& probe);

}  // namespace qk
