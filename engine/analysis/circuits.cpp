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

// A tall matrix's column space through its Gram matrix (float64): Xᵀ·X = W·Λ·Wᵀ gives X = Q·R
// with R = Λ^½·Wᵀ (r, n) and Q = X·T (V, r) orthonormal, T = W·Λ^-½ (n, r). Eigenvalues at or below
// 1e-10·λ_max are dropped: directions X spans by less than 1e-5 of its largest singular value
// (the normalised embeddings' columns sum to zero, so [N, 1] always loses one).
struct ColumnBasis {
  torch::Tensor R, T;
};

ColumnBasis column_basis(const torch::Tensor& X) {
  const auto [lam, W] = torch::linalg_eigh(torch::matmul(X.t(), X));  // ascending
  const double top = lam.numel() ? lam.max().item<double>() : 0.0;
  const auto keep = torch::nonzero(lam > 1e-10 * top).squeeze(1);
  const auto root = lam.index_select(0, keep).sqrt();  // (r)
  const auto Wk = W.index_select(1, keep);             // (n, r)
  return {(Wk * root.unsqueeze(0)).t().contiguous(), Wk / root.unsqueeze(0)};
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

std::vector<FormSvd> model_form_svds(GPTModelImpl& m) {
  std::vector<FormSvd> out;
  for (int l = 0; l < m.config().n_layers; ++l) out.push_back(m.attention(l).form_svd());
  return out;
}

std::vector<CompositionScore> composition_scores(GPTModelImpl& m) { return composition_scores(m, model_form_svds(m)); }

std::vector<CompositionScore> composition_scores(GPTModelImpl& m, const std::vector<FormSvd>& qk) {
  torch::NoGradGuard ng;
  const auto& cfg = m.config();
  const int L = cfg.n_layers, H = cfg.n_heads;
  const int64_t d = cfg.emb_dim;
  // ‖OV_a·X‖_F² = ⟨P_a, X·Xᵀ⟩ with P_a = F_a·F_aᵀ, F_a = B_a·R_aᵀ (A_a = Q·R_a): each score is an
  // inner product of two d×d Gram matrices, packed to their upper triangle (off-diagonal ×2).
  const auto iu = torch::triu_indices(d, d, 0, torch::TensorOptions().dtype(torch::kInt64));
  const auto flat = (iu[0] * d + iu[1]).contiguous();                                      // (d(d+1)/2)
  const auto weight = torch::where(iu[0] == iu[1], torch::ones({1}, kF64), torch::full({1}, 2.0, kF64));
  const auto pack = [&](const torch::Tensor& G) { return G.reshape({G.size(0), d * d}).index_select(1, flat); };
  const auto P = torch::empty({L * H, flat.size(0)}, kF64);  // (L·H, d(d+1)/2), the weights folded in
  const auto ov_sq = torch::empty({L * H}, kF64);              // ‖OV_h‖_F² of every head
  std::vector<torch::Tensor> ov_b(L);
  for (int l = 0; l < L; ++l) {
    const auto [A, B] = ov_factors(m, l);                      // (H, d, hd) each, OV_h = A_h·B_hᵀ
    const auto F = torch::matmul(B, qr_r(A).transpose(1, 2));  // (H, d, hd)
    P.narrow(0, l * H, H).copy_(pack(torch::matmul(F, F.transpose(1, 2))) * weight);
    ov_sq.narrow(0, l * H, H).copy_(F.pow(2).sum({1, 2}));
    ov_b[l] = torch::matmul(A, qr_r(B).transpose(1, 2));       // (H, d, hd): OV_h·OV_hᵀ = ov_b·ov_bᵀ
  }
  std::vector<std::vector<double>> score(L);  // score[b]: (b·H, 3H), rows (a, h_a), columns (kind, h_b)
  for (int b = 1; b < L; ++b) {
    const auto US = qk[b].U * qk[b].S.unsqueeze(1);                   // (H, d, k): M = US·Vh
    const auto VS = qk[b].Vh.transpose(1, 2) * qk[b].S.unsqueeze(1);  // (H, d, k): Mᵀ = VS·Uᵀ
    const auto grams = torch::cat({pack(torch::matmul(US, US.transpose(1, 2))),            // M·Mᵀ
                                   pack(torch::matmul(VS, VS.transpose(1, 2))),            // Mᵀ·M
                                   pack(torch::matmul(ov_b[b], ov_b[b].transpose(1, 2)))},  // OV·OVᵀ
                                  0);                                                       // (3H, d(d+1)/2)
    const auto sq = torch::matmul(P.narrow(0, 0, b * H), grams.t()).clamp_min(0);            // (b·H, 3H)
    const auto qk_sq = qk[b].S.pow(2).sum(-1);                                                // (H) ‖M_h‖_F²
    const auto den = (ov_sq.narrow(0, 0, b * H).unsqueeze(1) *
                      torch::cat({qk_sq, qk_sq, ov_sq.narrow(0, b * H, H)}, 0).unsqueeze(0)).sqrt();  // (b·H, 3H)
    score[b] = to_doubles(torch::where(den > 0, sq.sqrt() / den.clamp_min(1e-300), torch::zeros_like(sq)));
  }
  std::vector<CompositionScore> out;
  const char* kinds[] = {"Q", "K", "V"};
  for (int a = 0; a < L; ++a)
    for (int b = a + 1; b < L; ++b)
      for (int k = 0; k < 3; ++k)
        for (int ha = 0; ha < H; ++ha)
          for (int hb = 0; hb < H; ++hb)
            out.push_back({kinds[k], a, ha, b, hb, score[b][static_cast<size_t>((a * H + ha) * 3 * H + k * H + hb)]});
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
  return circuit_readouts(m, model_form_svds(m), label, directions, top, on_head);
}

std::vector<CircuitReadout> circuit_readouts(GPTModelImpl& m, const std::vector<FormSvd>& qk,
                                             const std::function<std::string(int64_t)>& label, int directions, int top,
                                             const std::function<void(int, int)>& on_head) {
  torch::NoGradGuard ng;
  const auto& cfg = m.config();
  const int L = cfg.n_layers, H = cfg.n_heads;
  const int64_t d = cfg.emb_dim;
  // The token spaces, once per model. LN₁ of layer l on every embedding is E_l = X·C_l with
  // X = [N, 1] (V, d+1), N the embeddings normalised (no scale or shift), C_l = [diag γ_l; β_lᵀ];
  // the unembedding side is Y = W_U·diag(γ_f) (V, d). With X = Q_X·R_X and Y = Q_Y·R_Y:
  //   E_l·M·E_lᵀ = Q_X·(R_X·C_l·M·C_lᵀ·R_Xᵀ)·Q_Xᵀ,  E_l·OV·diag(γ_f)·W_Uᵀ = Q_X·(R_X·C_l·OV·R_Yᵀ)·Q_Yᵀ
  // so each head's circuit is a core of side ≤ d+1, and only its few read-out directions go back
  // to the vocabulary (one matrix product per layer).
  const auto emb = m.tok_emb->weight.detach().to(kF64);  // (V, d)
  const auto mean = emb.mean({1}, true), var = emb.var({1}, false, true);
  double eps = m.block(0).norm1->eps;
  torch::Tensor Xf;  // (V, d+1) float32: the read-outs only rank tokens
  ColumnBasis bx;
  auto embedding_space = [&](double e) {  // every LayerNorm has the same ε; a different one gets its own X
    eps = e;
    const auto X = torch::cat({(emb - mean) / torch::sqrt(var + e), torch::ones({emb.size(0), 1}, kF64)}, 1);
    bx = column_basis(X);
    Xf = X.to(torch::kFloat32);
  };
  embedding_space(eps);
  const auto Y = m.out_head->weight.detach().to(kF64) * m.final_norm->scale.detach().to(kF64).unsqueeze(0);  // (V, d)
  const auto by = column_basis(Y);
  const auto Yf = Y.to(torch::kFloat32);
  std::vector<CircuitReadout> out;
  if (by.R.size(0) == 0) {  // a zero unembedding (X never is: its ones column): every circuit reads zero
    for (int l = 0; l < L; ++l)
      for (int h = 0; h < H; ++h) {
        for (const char* c : {"QK", "OV"}) out.push_back({c, l, h, {}, {}, qk[l].S.size(-1), 0});
        if (on_head) on_head(l, h);
      }
    return out;
  }
  for (int l = 0; l < L; ++l) {
    auto& norm = *m.block(l).norm1;
    if (norm.eps != eps) embedding_space(norm.eps);
    const auto g = norm.scale.detach().to(kF64), beta = norm.shift.detach().to(kF64);
    const auto RC = bx.R.narrow(1, 0, d) * g.unsqueeze(0) + bx.R.narrow(1, d, 1) * beta.unsqueeze(0);  // (r, d) = R_X·C_l
    const int64_t k = std::min<int64_t>(kReadoutFormRank, qk[l].S.size(-1));
    const auto U = qk[l].U.narrow(2, 0, k) * qk[l].S.narrow(1, 0, k).unsqueeze(1);  // (H, d, k)
    const auto Vt = qk[l].Vh.narrow(1, 0, k).transpose(1, 2);                       // (H, d, k)
    const auto [A, B] = ov_factors(m, l);                                            // (H, d, hd)
    const FormSvd cores[] = {factored_form_svd(torch::matmul(RC, U), torch::matmul(RC, Vt)),           // QK
                             factored_form_svd(torch::matmul(RC, A), torch::matmul(by.R, B))};         // OV
    // The read-out directions in the token spaces: coefficients on X (or Y), one column each.
    std::vector<torch::Tensor> left, right_x, right_y;  // (r) / (r_Y) each
    std::vector<CircuitReadout> layer;
    for (int h = 0; h < H; ++h)
      for (int c = 0; c < 2; ++c) {
        const auto& svd = cores[c];
        CircuitReadout r;
        r.circuit = c == 0 ? "QK" : "OV";
        r.layer = l;
        r.head = h;
        r.form_rank = qk[l].S.size(-1);
        r.form_rank_read = c == 0 ? k : A.size(2);
        const auto S = to_doubles(svd.S[h]);
        // The leading (at most 8) non-zero singular values: a planted rank-one circuit shows one.
        for (double s : S)
          if (r.sigma.size() < 8 && s > 1e-10 * S[0]) r.sigma.push_back(s);
        for (int i = 0; i < directions && i < static_cast<int>(r.sigma.size()); ++i) {
          left.push_back(svd.U[h].select(1, i));
          (c == 0 ? right_x : right_y).push_back(svd.Vh[h].select(0, i));
          CircuitDirection dir;
          dir.sigma = S[static_cast<size_t>(i)];
          r.directions.push_back(dir);
        }
        layer.push_back(r);
      }
    // Token vectors (V, n): Q·u = X·T·u. A singular pair's sign is arbitrary: orient each pair so
    // that its left vector's largest |coordinate| is positive.
    const auto tokens = [&](const torch::Tensor& Z, const ColumnBasis& b, const std::vector<torch::Tensor>& cols) {
      if (cols.empty()) return torch::Tensor();
      return torch::matmul(Z, torch::matmul(b.T, torch::stack(cols, 1)).to(torch::kFloat32));  // (V, n)
    };
    const auto lt = tokens(Xf, bx, left), rx = tokens(Xf, bx, right_x), ry = tokens(Yf, by, right_y);
    int64_t il = 0, ix = 0, iy = 0;
    for (auto& r : layer) {
      for (auto& dir : r.directions) {
        auto u = lt.select(1, il++);
        auto v = r.circuit == "QK" ? rx.select(1, ix++) : ry.select(1, iy++);
        if (u[u.abs().argmax()].item<float>() < 0) { u = -u; v = -v; }
        for (auto id : top_ids(u, top)) dir.left.push_back(label(id));
        for (auto id : top_ids(v, top)) dir.right.push_back(label(id));
      }
      out.push_back(std::move(r));
    }
    if (on_head)
      for (int h = 0; h < H; ++h) on_head(l, h);
  }
  return out;
}

CircuitsView model_circuits(GPTModelImpl& m, const std::string& variant,
                            const std::function<std::string(int64_t)>& label, const std::function<void(int, int)>& on_head) {
  CircuitsView v;
  v.variant = variant;
  v.layers = m.config().n_layers;
  v.heads = m.config().n_heads;
  const auto qk = model_form_svds(m);  // decomposed once for both
  v.composition = composition_scores(m, qk);
  v.baseline = composition_baseline(m);
  v.readouts = circuit_readouts(m, qk, label, 3, 5, on_head);
  return v;
}

}  // namespace qk
