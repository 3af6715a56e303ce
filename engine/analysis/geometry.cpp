// QKLab engine — geometry of the query-key forms (see geometry.h).
#include "geometry.h"

#include <algorithm>
#include <cmath>

#include "analysis.h"
#include "linalg.h"

namespace qk {

namespace {

// Σ of the norms above mean + 2·std (std with N − 1, as torch.std).
double excess(const torch::Tensor& norms) {
  const auto x = to_doubles(norms);
  const double n = static_cast<double>(x.size());
  if (x.size() < 2) return 0;
  double mean = 0;
  for (double v : x) mean += v / n;
  double var = 0;
  for (double v : x) var += (v - mean) * (v - mean) / (n - 1);
  const double thr = mean + 2 * std::sqrt(var);
  double e = 0;
  for (double v : x)
    if (v > thr) e += v - thr;
  return e;
}

}  // namespace

FormGeometry form_geometry(const torch::Tensor& Min) {
  const auto M = Min.to(torch::kFloat64);
  const auto sym = 0.5 * (M + M.transpose(0, 1)), skew = 0.5 * (M - M.transpose(0, 1));
  const double total = M.pow(2).sum().item<double>();
  FormGeometry g;
  if (total > 0) {
    g.sym_fraction = sym.pow(2).sum().item<double>() / total;
    g.skew_fraction = skew.pow(2).sum().item<double>() / total;
    g.symmetry = g.sym_fraction - g.skew_fraction;
  }
  const double rows = excess(M.pow(2).sum(1).sqrt());  // (d) row norms
  const double cols = excess(M.pow(2).sum(0).sqrt());  // (d) column norms
  g.directionality = rows + cols > 0 ? (cols - rows) / (cols + rows) : 0.0;
  return g;
}

namespace {

// The eigenvalues of a k×k core above smax·d·eps (the SVD's rank tolerance), by |λ| descending.
std::vector<std::pair<double, double>> nonzero_eigenvalues(const torch::Tensor& core, double smax, int64_t d,
                                                           double eps) {
  const auto lam = torch::linalg_eigvals(core);  // (k) complex
  const auto re = to_doubles(torch::real(lam)), im = to_doubles(torch::imag(lam));
  const double tol = smax * static_cast<double>(d) * eps;
  std::vector<std::pair<double, double>> out;
  for (size_t i = 0; i < re.size(); ++i)
    if (std::hypot(re[i], im[i]) > tol) out.emplace_back(re[i], im[i]);
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) {
    return std::hypot(a.first, a.second) > std::hypot(b.first, b.second);
  });
  return out;
}

}  // namespace

std::vector<std::pair<double, double>> form_eigenvalues(const torch::Tensor& U, const torch::Tensor& S,
                                                        const torch::Tensor& Vh, double eps) {
  // M = (U·Σ)·Vh: its non-zero eigenvalues are those of Vh·(U·Σ) (k×k).
  const auto core = torch::matmul(Vh.to(torch::kFloat64), U.to(torch::kFloat64) * S.to(torch::kFloat64).unsqueeze(0));
  const double smax = S.numel() ? S.max().item<double>() : 0.0;
  return nonzero_eigenvalues(core, smax, U.size(0), eps);
}

double uniform_diagonal_mass(int64_t T) {
  double s = 0;
  for (int64_t i = 0; i < T; ++i) s += 1.0 / static_cast<double>(i + 1);
  return T > 0 ? s / static_cast<double>(T) : 0;
}

GeometryView model_geometry(GPTModelImpl& m, const std::string& variant, const std::vector<Batch>& probe) {
  torch::NoGradGuard ng;
  const auto& cfg = m.config();
  GeometryView v;
  v.variant = variant;
  v.layers = cfg.n_layers;
  v.heads = cfg.n_heads;
  std::vector<std::vector<double>> diag;
  if (!probe.empty()) {
    diag = model_diagonal_mass(m, probe);
    v.uniform_diagonal = uniform_diagonal_mass(probe.front().inputs.size(1));
  }
  for (int l = 0; l < cfg.n_layers; ++l) {
    auto& att = m.attention(l);
    const auto forms = att.bilinear_forms();  // (H, d, d) float64
    // A form of full rank bound (k = d: merged) is its own core, so only its singular values are
    // needed (the tolerance); a factored one goes through its SVD: U (H, d, k), S (H, k), Vh (H, k, d).
    const auto sv = att.form_singular_values();  // (H, k)
    const bool full = sv.size(-1) == cfg.emb_dim;
    const FormSvd svd = full ? FormSvd() : att.form_svd();
    // Every head's eigenvalues, the heads spread over the cores (LAPACK is serial per matrix).
    std::vector<std::vector<std::pair<double, double>>> eig(static_cast<size_t>(cfg.n_heads));
    for_each_matrix(cfg.n_heads, [&](int64_t h) {
      eig[static_cast<size_t>(h)] =
          full ? nonzero_eigenvalues(forms[h], sv[h].max().item<double>(), cfg.emb_dim, att.form_eps())
               : form_eigenvalues(svd.U[h], svd.S[h], svd.Vh[h], att.form_eps());
    });
    HeadGeometry layer_row;
    layer_row.layer = l;
    const auto lg = form_geometry(forms.sum(0));
    layer_row.sym_fraction = lg.sym_fraction;
    layer_row.skew_fraction = lg.skew_fraction;
    layer_row.symmetry = lg.symmetry;
    layer_row.directionality = lg.directionality;
    v.rows.push_back(layer_row);
    for (int h = 0; h < cfg.n_heads; ++h) {
      HeadGeometry r;
      r.layer = l;
      r.head = h;
      const auto g = form_geometry(forms[h]);
      r.sym_fraction = g.sym_fraction;
      r.skew_fraction = g.skew_fraction;
      r.symmetry = g.symmetry;
      r.directionality = g.directionality;
      if (!diag.empty()) r.diagonal_mass = diag[l][h];
      for (const auto& [re, im] : eig[static_cast<size_t>(h)]) {
        r.eig_re.push_back(re);
        r.eig_im.push_back(im);
      }
      v.rows.push_back(r);
    }
  }
  return v;
}

}  // namespace qk
