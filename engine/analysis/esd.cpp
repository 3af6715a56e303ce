// QKLab engine — empirical spectral densities, power-law and Marchenko–Pastur fits (see esd.h).
#include "esd.h"

#include <algorithm>
#include <cmath>

#include "linalg.h"

namespace qk {

PowerLawFit fit_power_law(std::vector<double> x, int64_t min_tail) {
  PowerLawFit best;
  x.erase(std::remove_if(x.begin(), x.end(), [](double v) { return !(v > 0) || !std::isfinite(v); }), x.end());
  std::sort(x.begin(), x.end());
  const int64_t n = static_cast<int64_t>(x.size());
  if (n < min_tail || min_tail < 2) return best;
  // Suffix sums of ln x make each candidate's α O(1); D is O(tail) per candidate.
  std::vector<double> logs(n), suffix(n + 1, 0.0);
  for (int64_t i = 0; i < n; ++i) logs[i] = std::log(x[i]);
  for (int64_t i = n - 1; i >= 0; --i) suffix[i] = suffix[i + 1] + logs[i];
  best.ks = std::numeric_limits<double>::infinity();
  for (int64_t s = 0; s + min_tail <= n; ++s) {
    if (s > 0 && x[s] == x[s - 1]) continue;  // each distinct value once
    const double xmin = x[s], lx = logs[s];
    const int64_t m = n - s;
    const double sum = suffix[s] - static_cast<double>(m) * lx;
    if (!(sum > 0)) continue;
    const double alpha = 1.0 + static_cast<double>(m) / sum;
    double D = 0;
    for (int64_t i = 0; i < m; ++i) {
      const double fit = 1.0 - std::exp((1.0 - alpha) * (logs[s + i] - lx));
      D = std::max(D, std::abs(static_cast<double>(i) / static_cast<double>(m) - fit));
    }
    if (D < best.ks) best = {alpha, xmin, D, m};
  }
  if (!std::isfinite(best.ks)) return PowerLawFit{};
  return best;
}

MpFit fit_marchenko_pastur(const std::vector<double>& evals, double Q) {
  MpFit f;
  if (evals.empty()) return f;
  Q = std::max(Q, 1.0);
  const double plus = std::pow(1.0 + 1.0 / std::sqrt(Q), 2.0);
  double sigma2 = 0;
  for (double v : evals) sigma2 += v / static_cast<double>(evals.size());
  for (int it = 0; it < 100; ++it) {
    const double edge = sigma2 * plus;
    double s = 0;
    int64_t c = 0;
    for (double v : evals)
      if (v <= edge) { s += v; ++c; }
    const double next = c ? s / static_cast<double>(c) : sigma2;
    if (std::abs(next - sigma2) <= 1e-12 * sigma2) { sigma2 = next; break; }
    sigma2 = next;
  }
  f.sigma2 = sigma2;
  f.edge = sigma2 * plus;
  const double lmax = *std::max_element(evals.begin(), evals.end());
  for (double v : evals) f.spikes += v > f.edge * 1.05;
  f.soft_rank = lmax > 0 ? std::min(1.0, f.edge / lmax) : 0;
  return f;
}

EsdRecord esd_record(std::vector<double> evals, double Q) {
  EsdRecord r;
  double lmax = 0;
  for (double v : evals) lmax = std::max(lmax, v);
  evals.erase(std::remove_if(evals.begin(), evals.end(), [&](double v) { return !(v > lmax * 1e-12); }), evals.end());
  r.n = static_cast<int64_t>(evals.size());
  r.lambda_max = lmax;
  const auto pl = fit_power_law(evals, std::min<int64_t>(10, std::max<int64_t>(3, r.n / 2)));
  r.alpha = pl.alpha;
  r.xmin = pl.xmin;
  r.ks = pl.ks;
  r.tail = pl.tail;
  const auto mp = fit_marchenko_pastur(evals, Q);
  r.mp_sigma2 = mp.sigma2;
  r.mp_edge = mp.edge;
  r.soft_rank = mp.soft_rank;
  r.spikes = mp.spikes;
  return r;
}

EsdRecord esd_from_sigma(const std::vector<double>& sigma, int64_t rows, int64_t cols) {
  const double N = static_cast<double>(std::max(rows, cols)), M = static_cast<double>(std::min(rows, cols));
  std::vector<double> ev;
  ev.reserve(sigma.size());
  for (double s : sigma) ev.push_back(s * s / N);
  return esd_record(ev, N / M);
}

std::vector<EsdRecord> model_esd(GPTModelImpl& m, const std::string& variant, int64_t step) {
  torch::NoGradGuard ng;
  std::vector<EsdRecord> out;
  auto add = [&](EsdRecord r, const std::string& name, int layer, int head) {
    r.variant = variant;
    r.matrix = name;
    r.layer = layer;
    r.head = head;
    r.step = step;
    out.push_back(std::move(r));
  };
  // Every weight matrix (one per head of a (H, a, b) parameter) and every form, decomposed with the
  // matrices spread over the cores (LAPACK is serial per matrix); the records keep this order.
  struct Job {
    std::string name;
    int layer, head;
    torch::Tensor w;  // (a, b) float64
    int64_t rows, cols;
    std::vector<double> sigma;
  };
  std::vector<Job> jobs;
  for (const auto& p : m.named_parameters()) {
    const auto& w = p.value();
    if (w.dim() < 2) continue;
    const std::string name = p.key();
    int layer = -1;
    if (name.rfind("trf_blocks.", 0) == 0) layer = std::stoi(name.substr(11));
    const auto t = w.detach().to(torch::kFloat64);
    if (w.dim() == 2) {
      jobs.push_back({name, layer, -1, t, t.size(0), t.size(1), {}});
    } else {  // (H, a, b): one record per head
      const auto flat = t.reshape({t.size(0), t.size(-2), t.size(-1)});
      for (int64_t h = 0; h < flat.size(0); ++h)
        jobs.push_back({name, layer, static_cast<int>(h), flat[h], flat.size(1), flat.size(2), {}});
    }
  }
  const auto& cfg = m.config();
  const size_t weights = jobs.size();
  std::vector<torch::Tensor> forms(static_cast<size_t>(cfg.n_layers));  // (H, k) per layer
  for_each_matrix(static_cast<int64_t>(weights) + cfg.n_layers, [&](int64_t i) {
    if (static_cast<size_t>(i) < weights) {
      auto& j = jobs[static_cast<size_t>(i)];
      j.sigma = to_doubles(torch::linalg_svdvals(j.w, c10::nullopt));
    } else {
      const int l = static_cast<int>(i - static_cast<int64_t>(weights));
      forms[static_cast<size_t>(l)] = m.attention(l).form_singular_values();
    }
  });
  for (const auto& j : jobs) add(esd_from_sigma(j.sigma, j.rows, j.cols), j.name, j.layer, j.head);
  for (int l = 0; l < cfg.n_layers; ++l) {
    const auto& sv = forms[static_cast<size_t>(l)];
    for (int h = 0; h < cfg.n_heads; ++h) add(esd_from_sigma(to_doubles(sv[h]), cfg.emb_dim, cfg.emb_dim), "form", l, h);
  }
  return out;
}

std::vector<EsdRecord> forms_esd_history(const std::vector<SpectraRecord>& history, int64_t d) {
  std::vector<EsdRecord> out;
  for (const auto& rec : history)
    for (const auto& h : rec.heads) {
      auto r = esd_from_sigma(h.sigma, d, d);
      r.variant = rec.variant;
      r.matrix = "form";
      r.layer = h.layer;
      r.head = h.head;
      r.step = rec.step;
      out.push_back(std::move(r));
    }
  return out;
}

}  // namespace qk
