// QKLab engine — token circuits and composition scores (see circuits.h).
#include "circuits.h"

#include <algorithm>
#include <cmath>

#include "linalg.h"

namespace qk {

namespace {

const auto kF64 = torch::kFloat64;

torch::Tensor qr_r(const torch::Tensor& A) { return std::get<1>(torch::linalg_qr(A, "reduced")); }

// ‖X‖_F over the last two dims.
torch::Tensor fro(const torch::Tensor& X) { return X.pow(2).sum({-2, -1}).sqrt(); }

// Token ids of the `top` largest coordinates of v (V).
std::vector<int64_t> top_ids(const torch::Tensor& v, int top) {
  const int64_t k = std::min<int64_t>(top, v.size(0));
  auto idx = std::get<1>(torch::topk(v, k)).contiguous();
  return std::vector<int64_t>(idx.data_ptr<int64_t>(), idx.data_ptr<int64_t>() + k);
}

}  // namespace

std::string token_label(const Tokenizer* tokenizer, int64_t id) {
  if (!tokenizer) return std::to_string(id);
  try {
    return tokenizer->decode({id});
  } catch (const std::exception&) {
    return std::to_string(id);
  }
}

double composition_score(const torch::Tensor& L, const torch::Tensor& R) {
  const auto l = L.to(kF64), r = R.to(kF64);
  const double den = fro(l).item<double>() * fro(r).item<double>();
  return den > 0 ? fro(torch::matmul(l, r)).item<double>() / den : 0.0;
}

std::pair<torch::Tensor, torch::Tensor> ov_factors(GPTModelImpl& m, int layer) {
  torch::NoGradGuard ng;
  const auto& cfg = m.config();
  const int64_t H = cfg.n_heads, hd = cfg.head_dim(), d = cfg.emb_dim;
  auto& att = m.attention(layer);
  const auto path = att.value_path();
  const auto& wv = path.W_V;  // (H·hd, d), the identity with value_proj identity
  const auto& wo = path.W_O;  // (d, H·hd), the identity without out_proj (merged-seed)
  auto A = wv.reshape({H, hd, d}).transpose(1, 2).contiguous();     // (H, d, hd) = W_V,hᵀ
  auto B = wo.reshape({d, H, hd}).permute({1, 0, 2}).contiguous();  // (H, d, hd) = W_O,h
  return {A, B};
}

std::vector<CompositionScore> composition_scores(GPTModelImpl& m) {
  torch::NoGradGuard ng;
  const auto& cfg = m.config();
  const int L = cfg.n_layers, H = cfg.n_heads;
  std::vector<std::pair<torch::Tensor, torch::Tensor>> ov(L);
  std::vector<FormSvd> qk(L);
  std::vector<torch::Tensor> ra(L), rb(L), ov_norm(L);
  for (int l = 0; l < L; ++l) {
    ov[l] = ov_factors(m, l);
    qk[l] = m.attention(l).form_svd();                         // U (H, d, k), S (H, k), Vh (H, k, d)
    ra[l] = qr_r(ov[l].first);                                 // (H, hd, hd)
    rb[l] = qr_r(ov[l].second);                                // (H, hd, hd)
    ov_norm[l] = fro(torch::matmul(ra[l], ov[l].second.transpose(1, 2)));  // (H) ‖OV_h‖_F
  }
  std::vector<CompositionScore> out;
  for (int a = 0; a < L; ++a) {
    const auto Ra = ra[a].unsqueeze(1);                        // (Ha, 1, hd, hd)
    const auto BaT = ov[a].second.transpose(1, 2).unsqueeze(1);  // (Ha, 1, hd, d)
    for (int b = a + 1; b < L; ++b) {
      const auto& s = qk[b];
      const auto S = s.S.unsqueeze(0).unsqueeze(2);                               // (1, Hb, 1, k)
      const auto qn = fro(torch::matmul(Ra, torch::matmul(BaT, s.U.unsqueeze(0))) * S);                   // (Ha, Hb)
      const auto kn = fro(torch::matmul(Ra, torch::matmul(BaT, s.Vh.transpose(1, 2).unsqueeze(0))) * S);  // (Ha, Hb)
      const auto vn = fro(torch::matmul(torch::matmul(Ra, torch::matmul(BaT, ov[b].first.unsqueeze(0))),
                                        rb[b].transpose(1, 2).unsqueeze(0)));                             // (Ha, Hb)
      const auto qk_norm = s.S.pow(2).sum(-1).sqrt();  // (Hb) ‖M_h‖_F
      const auto den_qk = ov_norm[a].unsqueeze(1) * qk_norm.unsqueeze(0);
      const auto den_v = ov_norm[a].unsqueeze(1) * ov_norm[b].unsqueeze(0);
      const auto safe = [](const torch::Tensor& num, const torch::Tensor& den) {
        return torch::where(den > 0, num / den.clamp_min(1e-300), torch::zeros_like(num));
      };
      const std::pair<const char*, torch::Tensor> kinds[] = {
          {"Q", safe(qn, den_qk)}, {"K", safe(kn, den_qk)}, {"V", safe(vn, den_v)}};
      for (const auto& [kind, t] : kinds) {
        const auto v = to_doubles(t);
        for (int ha = 0; ha < H; ++ha)
          for (int hb = 0; hb < H; ++hb) out.push_back({kind, a, ha, b, hb, v[static_cast<size_t>(ha * H + hb)]});
      }
    }
  }
  return out;
}

double composition_baseline(GPTModelImpl& m) {
  torch::NoGradGuard ng;
  const auto& cfg = m.config();
  const int64_t d = cfg.emb_dim, hd = cfg.head_dim();
  const int64_t k = std::max<int64_t>(1, m.attention(0).form_svd().S.size(-1));
  auto gen = at::detail::createCPUGenerator(1234);
  auto g = [&](int64_t r, int64_t c) { return at::normal(0.0, 1.0, {r, c}, gen).to(kF64); };
  double sum = 0;
  const int draws = 8;
  for (int i = 0; i < draws; ++i) {
    const auto ov_a = torch::matmul(g(d, hd), g(hd, d));
    const auto ov_b = torch::matmul(g(d, hd), g(hd, d));
    const auto qk_b = torch::matmul(g(d, k), g(k, d));
    sum += (composition_score(ov_a, qk_b) + composition_score(ov_a, qk_b.transpose(0, 1)) +
            composition_score(ov_a, ov_b)) / 3.0;
  }
  return sum / draws;
}

std::vector<CircuitReadout> circuit_readouts(GPTModelImpl& m, const std::function<std::string(int64_t)>& label,
                                             int directions, int top, const std::function<void(int, int)>& on_head) {
  torch::NoGradGuard ng;
  const auto& cfg = m.config();
  const int L = cfg.n_layers, H = cfg.n_heads;
  const int64_t V = cfg.vocab_size;
  // Thin factors of at most this many columns keep a head's read-out to about a GFLOP.
  const int64_t cap = std::max<int64_t>(8, static_cast<int64_t>(4e6 / static_cast<double>(V)));
  const auto WE = m.tok_emb->weight.detach();                          // (V, d)
  const auto WU = m.out_head->weight.detach().to(kF64) * m.final_norm->scale.detach().to(kF64).unsqueeze(0);  // (V, d)·γ_f
  std::vector<CircuitReadout> out;
  auto read = [&](const char* circuit, int l, int h, const torch::Tensor& Lf, const torch::Tensor& Rf) {
    const auto svd = factored_form_svd(Lf, Rf);  // U (V, k), S (k), Vh (k, V)
    CircuitReadout r;
    r.circuit = circuit;
    r.layer = l;
    r.head = h;
    // The leading (at most 8) non-zero singular values: a planted rank-one circuit shows one.
    for (double s : to_doubles(svd.S))
      if (r.sigma.size() < 8 && s > 1e-10 * svd.S[0].item<double>()) r.sigma.push_back(s);
    for (int i = 0; i < directions && i < static_cast<int>(r.sigma.size()); ++i) {
      auto u = svd.U.select(1, i), v = svd.Vh.select(0, i);
      // A singular pair's sign is arbitrary: orient it so that u's largest |coordinate| is positive.
      if (u[u.abs().argmax()].item<double>() < 0) { u = -u; v = -v; }
      CircuitDirection dir;
      dir.sigma = svd.S[i].item<double>();
      for (auto id : top_ids(u, top)) dir.left.push_back(label(id));
      for (auto id : top_ids(v, top)) dir.right.push_back(label(id));
      r.directions.push_back(dir);
    }
    out.push_back(r);
  };
  for (int l = 0; l < L; ++l) {
    const auto E = m.block(l).norm1->forward(WE).detach().to(kF64);  // (V, d) LN₁ of every token embedding
    const auto qk = m.attention(l).form_svd();                       // M_h = U·S·Vh
    const auto [A, B] = ov_factors(m, l);                            // OV_h = A_h·B_hᵀ
    for (int h = 0; h < H; ++h) {
      const int64_t k = std::min<int64_t>(cap, qk.S.size(-1));
      const auto U = qk.U[h].narrow(1, 0, k) * qk.S[h].narrow(0, 0, k).unsqueeze(0);  // (d, k)
      const auto Vt = qk.Vh[h].narrow(0, 0, k).transpose(0, 1);                        // (d, k)
      read("QK", l, h, torch::matmul(E, U), torch::matmul(E, Vt));                      // E·M·Eᵀ
      read("OV", l, h, torch::matmul(E, A[h]), torch::matmul(WU, B[h]));               // E·OV·γ·W_Uᵀ
      if (on_head) on_head(l, h);
    }
  }
  return out;
}

CircuitsView model_circuits(GPTModelImpl& m, const std::string& variant,
                            const std::function<std::string(int64_t)>& label, const std::function<void(int, int)>& on_head) {
  CircuitsView v;
  v.variant = variant;
  v.layers = m.config().n_layers;
  v.heads = m.config().n_heads;
  v.composition = composition_scores(m);
  v.baseline = composition_baseline(m);
  v.readouts = circuit_readouts(m, label, 3, 5, on_head);
  return v;
}

}  // namespace qk
