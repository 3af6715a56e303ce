// QKLab engine — spectral health (the WeightWatcher view of a weight matrix), for every weight
// matrix of a model and every head's form M_h:
//   ESD        the eigenvalues λ of X = WᵀW/N for W of shape N×M, N ≥ M (transposed otherwise);
//              the non-zero ones (above λ_max·1e-12)
//   power law  p(λ) ∝ λ^−α for λ ≥ x_min: for each candidate x_min (every eigenvalue leaving at
//              least min_tail above it) α = 1 + n / Σ ln(λ_i/x_min) (maximum likelihood, Clauset et
//              al. 2009) and the Kolmogorov–Smirnov distance D = max_i |i/n − (1 − (λ_i/x_min)^(1−α))|
//              over the sorted tail (the empirical CDF as the powerlaw package writes it); the x_min
//              of least D is kept (as WeightWatcher does)
//   MP fit     the Marchenko–Pastur bulk of a random N×M matrix with entries of variance σ²:
//              λ± = σ²(1 ± 1/√Q)², Q = N/M. σ² is the mean of the eigenvalues inside the edge,
//              iterated from all of them until the edge settles; spikes = eigenvalues above
//              λ₊·(1 + 0.05) (a margin for the edge's finite-size fluctuation); soft rank λ₊/λ_max
// A form M_h (d×d) is read with N = M = d (Q = 1) from its singular values (λ = σ²/d).
#pragma once
#include <torch/torch.h>

#include <string>
#include <vector>

#include "model.h"
#include "observer.h"
#include "views.h"

namespace qk {

struct PowerLawFit {
  double alpha = std::numeric_limits<double>::quiet_NaN(), xmin = 0, ks = 0;
  int64_t tail = 0;
};
// x: positive samples (any order). Fewer than min_tail samples: α NaN.
PowerLawFit fit_power_law(std::vector<double> x, int64_t min_tail = 10);

struct MpFit {
  double sigma2 = 0, edge = 0, soft_rank = 0;
  int64_t spikes = 0;
};
// evals of WᵀW/N, Q = N/M ≥ 1.
MpFit fit_marchenko_pastur(const std::vector<double>& evals, double Q);

// One record from eigenvalues (any order, zeros dropped) of a matrix with aspect ratio Q.
EsdRecord esd_record(std::vector<double> evals, double Q);
// Singular values of an N×M matrix -> its record (λ = σ²/N, N = max(rows, cols)).
EsdRecord esd_from_sigma(const std::vector<double>& sigma, int64_t rows, int64_t cols);

// Every 2-D weight (and every head of a 3-D one such as merged S) and every head's form.
std::vector<EsdRecord> model_esd(GPTModelImpl& m, const std::string& variant, int64_t step);
// The forms' records at every step of a run's spectra history (σ of every M_h per evaluation).
std::vector<EsdRecord> forms_esd_history(const std::vector<SpectraRecord>& history, int64_t d);

}  // namespace qk
