// QKLab engine — spectra, rank metrics, truncation, conversions, attention maps, KL.
#include "analysis.h"

#include <cmath>

#include "error.h"

namespace qk {

RankMetrics rank_metrics(const std::vector<double>& s, int64_t rows, int64_t cols, double eps) {
  RankMetrics r;
  if (s.empty()) return r;
  const double smax = s.front();
  double sum = 0, energy = 0;
  for (double v : s) { sum += v; energy += v * v; }
  const double tol = smax * static_cast<double>(std::max(rows, cols)) * eps;
  for (double v : s) r.numerical_rank += v > tol;
  double h = 0;
  for (double v : s)
    if (v > 0 && sum > 0) { const double p = v / sum; h -= p * std::log(p); }
  r.effective_rank = sum > 0 ? std::exp(h) : 0;
  r.stable_rank = smax > 0 ? energy / (smax * smax) : 0;
  double acc = 0;
  r.rank90 = r.rank99 = static_cast<int64_t>(s.size());
  bool got90 = false;
  for (size_t i = 0; i < s.size(); ++i) {
    acc += s[i] * s[i];
    if (!got90 && acc >= 0.9 * energy) { r.rank90 = static_cast<int64_t>(i + 1); got90 = true; }
    if (acc >= 0.99 * energy) { r.rank99 = static_cast<int64_t>(i + 1); break; }
  }
  if (energy == 0) r.rank90 = r.rank99 = 0;
  r.spectral_norm = smax;
  r.nuclear_norm = sum;
  return r;
}

torch::Tensor factored_singular_values(const torch::Tensor& A, const torch::Tensor& B) {
  auto qa = torch::linalg::qr(A.to(torch::kFloat64), "reduced");  // A = Q_A R_A, R_A (…, k, k)
  auto qb = torch::linalg::qr(B.to(torch::kFloat64), "reduced");
  auto core = torch::matmul(std::get<1>(qa), std::get<1>(qb).transpose(-1, -2));  // (…, k, k)
  return torch::linalg::svdvals(core, c10::nullopt);  // A Bᵀ = Q_A (R_A R_Bᵀ) Q_Bᵀ
}

torch::Tensor dense_singular_values(const torch::Tensor& M) {
  // In the matrix's own precision (a float32 S is float32 data: its SVD's backward error is at
  // the float32 level either way, and float32 is ~1.8x faster), returned as float64.
  return torch::linalg::svdvals(M, c10::nullopt).to(torch::kFloat64);
}

namespace {

double dtype_eps(const torch::Tensor& t) {
  return t.scalar_type() == torch::kFloat64 ? std::numeric_limits<double>::epsilon()
                                            : static_cast<double>(std::numeric_limits<float>::epsilon());
}

// Factors of the standard variant's forms: M_h = A_h·B_hᵀ with A_h = W_q[h]ᵀ, B_h = W_k[h]ᵀ (d×qk).
std::pair<torch::Tensor, torch::Tensor> standard_factors(StandardAttentionImpl& a) {
  const int64_t d = a.W_query->weight.size(1);
  auto wq = a.W_query->weight.detach().view({a.n_heads, a.qk_head_dim, d});
  auto wk = a.W_key->weight.detach().view({a.n_heads, a.qk_head_dim, d});
  return {wq.transpose(1, 2), wk.transpose(1, 2)};  // (H, d, qk) each
}

std::vector<double> to_vec(const torch::Tensor& t) {
  auto c = t.to(torch::kFloat64).contiguous().cpu();
  return std::vector<double>(c.data_ptr<double>(), c.data_ptr<double>() + c.numel());
}

}  // namespace

std::vector<HeadSpectrum> model_spectra(GPTModelImpl& m) {
  torch::NoGradGuard ng;
  std::vector<HeadSpectrum> out;
  const auto& cfg = m.config();
  for (int l = 0; l < cfg.n_layers; ++l) {
    auto& att = m.attention(l);
    torch::Tensor sv;  // (H, r)
    double eps;
    std::string matrix;
    if (att.variant() == Variant::Standard) {
      auto& sa = static_cast<StandardAttentionImpl&>(att);
      auto [A, B] = standard_factors(sa);
      sv = factored_singular_values(A, B);
      eps = dtype_eps(sa.W_query->weight);
      matrix = "WqWk";
    } else {
      auto& ma = static_cast<MergedAttentionImpl&>(att);
      sv = dense_singular_values(ma.S.detach());  // batched over heads
      eps = dtype_eps(ma.S);
      matrix = "S";
    }
    for (int h = 0; h < cfg.n_heads; ++h) {
      HeadSpectrum hs{variant_name(att.variant()), matrix, l, h, to_vec(sv[h]), {}};
      // The full d-long spectrum: a factored form has exactly zero singular values beyond qk.
      hs.sigma.resize(cfg.emb_dim, 0.0);
      hs.metrics = rank_metrics(hs.sigma, cfg.emb_dim, cfg.emb_dim, eps);
      out.push_back(std::move(hs));
    }
  }
  return out;
}

HeadSpectrum head_spectrum(GPTModelImpl& m, int layer, int head) {
  torch::NoGradGuard ng;
  const auto& cfg = m.config();
  auto& att = m.attention(layer);
  HeadSpectrum hs;
  hs.variant = variant_name(att.variant());
  hs.layer = layer;
  hs.head = head;
  double eps;
  if (att.variant() == Variant::Standard) {
    auto& sa = static_cast<StandardAttentionImpl&>(att);
    auto [A, B] = standard_factors(sa);
    hs.sigma = to_vec(factored_singular_values(A[head], B[head]));
    hs.matrix = "WqWk";
    eps = dtype_eps(sa.W_query->weight);
  } else {
    auto& ma = static_cast<MergedAttentionImpl&>(att);
    hs.sigma = to_vec(dense_singular_values(ma.S.detach()[head]));
    hs.matrix = "S";
    eps = dtype_eps(ma.S);
  }
  hs.sigma.resize(cfg.emb_dim, 0.0);
  hs.metrics = rank_metrics(hs.sigma, cfg.emb_dim, cfg.emb_dim, eps);
  return hs;
}

std::vector<double> principal_angles(const torch::Tensor& M1, const torch::Tensor& M2, int k, bool left) {
  auto svd1 = torch::linalg::svd(M1.to(torch::kFloat64), false, c10::nullopt);
  auto svd2 = torch::linalg::svd(M2.to(torch::kFloat64), false, c10::nullopt);
  auto basis = [&](const std::tuple<torch::Tensor, torch::Tensor, torch::Tensor>& s) {
    return left ? std::get<0>(s).slice(1, 0, k) : std::get<2>(s).slice(0, 0, k).transpose(0, 1);
  };
  auto cosines = torch::linalg::svdvals(torch::matmul(basis(svd1).transpose(0, 1), basis(svd2)), c10::nullopt);
  auto angles = torch::acos(cosines.clamp(-1.0, 1.0));  // cosines descending -> angles ascending
  return to_vec(angles);
}

void truncate_forms(GPTModelImpl& m, int64_t r, int layer) {
  torch::NoGradGuard ng;
  const auto& cfg = m.config();
  for (int l = 0; l < cfg.n_layers; ++l) {
    if (layer >= 0 && l != layer) continue;
    auto& att = m.attention(l);
    if (att.variant() == Variant::Merged) {
      auto& ma = static_cast<MergedAttentionImpl&>(att);
      if (r >= ma.d) continue;  // full rank: the identity, exactly
      auto svd = torch::linalg::svd(ma.S.detach().to(torch::kFloat64), false, c10::nullopt);
      auto U = std::get<0>(svd), S = std::get<1>(svd), Vh = std::get<2>(svd);
      auto keep = torch::arange(S.size(-1), S.options()).lt(static_cast<double>(r)).to(S.dtype());
      auto low = torch::matmul(U * (S * keep).unsqueeze(-2), Vh);
      ma.S.copy_(low.to(ma.S.dtype()));
    } else {
      auto& sa = static_cast<StandardAttentionImpl&>(att);
      auto [A, B] = standard_factors(sa);  // (H, d, qk)
      const int64_t qk = A.size(2), d = A.size(1);
      if (r >= qk) continue;  // the form already has rank <= qk: the identity, exactly
      auto M = torch::matmul(A.to(torch::kFloat64), B.to(torch::kFloat64).transpose(1, 2));  // (H, d, d)
      auto svd = torch::linalg::svd(M, false, c10::nullopt);
      auto U = std::get<0>(svd), S = std::get<1>(svd), Vh = std::get<2>(svd);
      const int64_t rr = std::min<int64_t>(r, qk);
      auto root = S.slice(1, 0, rr).sqrt();                                   // (H, rr)
      auto wq = torch::zeros({sa.n_heads, qk, d}, torch::kFloat64);
      auto wk = torch::zeros({sa.n_heads, qk, d}, torch::kFloat64);
      if (rr > 0) {
        wq.slice(1, 0, rr).copy_(root.unsqueeze(-1) * U.slice(2, 0, rr).transpose(1, 2));
        wk.slice(1, 0, rr).copy_(root.unsqueeze(-1) * Vh.slice(1, 0, rr));
      }
      sa.W_query->weight.copy_(wq.view({-1, d}).to(sa.W_query->weight.dtype()));
      sa.W_key->weight.copy_(wk.view({-1, d}).to(sa.W_key->weight.dtype()));
      if (sa.W_query->bias.defined() && r == 0) {
        sa.W_query->bias.zero_();
        sa.W_key->bias.zero_();
      }
    }
  }
}

GPTModel clone_model(GPTModelImpl& m) {
  GPTModel c(m.variant(), m.config());
  torch::NoGradGuard ng;
  auto src = m.named_parameters();
  for (auto& p : c->named_parameters()) p.value().copy_(src[p.key()]);
  c->to(m.parameters().front().device());
  return c;
}

GPTModel merged_to_standard(GPTModelImpl& merged, int64_t r) {
  if (merged.variant() != Variant::Merged) throw Error("merged_to_standard: the source model is not merged");
  ModelConfig cfg = merged.config();
  if (r <= 0 || r > cfg.emb_dim)
    throw Error("merged_to_standard: rank must be in [1, " + std::to_string(cfg.emb_dim) + "]");
  cfg.qk_head_dim = static_cast<int>(r);
  GPTModel s(Variant::Standard, cfg);
  torch::NoGradGuard ng;
  auto src = merged.named_parameters();
  for (auto& p : s->named_parameters())
    if (src.contains(p.key())) p.value().copy_(src[p.key()]);
  const int64_t d = cfg.emb_dim;
  for (int l = 0; l < cfg.n_layers; ++l) {
    auto& ma = static_cast<MergedAttentionImpl&>(merged.attention(l));
    auto& sa = static_cast<StandardAttentionImpl&>(s->attention(l));
    auto M = ma.S.detach().to(torch::kFloat64).transpose(1, 2);  // M_h = S_hᵀ
    auto svd = torch::linalg::svd(M, false, c10::nullopt);
    auto U = std::get<0>(svd), S = std::get<1>(svd), Vh = std::get<2>(svd);
    auto root = S.slice(1, 0, r).sqrt();
    auto wq = root.unsqueeze(-1) * U.slice(2, 0, r).transpose(1, 2);  // (H, r, d)
    auto wk = root.unsqueeze(-1) * Vh.slice(1, 0, r);                 // (H, r, d)
    sa.W_query->weight.copy_(wq.reshape({-1, d}).to(sa.W_query->weight.dtype()));
    sa.W_key->weight.copy_(wk.reshape({-1, d}).to(sa.W_key->weight.dtype()));
  }
  return s;
}

LossAcc evaluate_batches(GPTModelImpl& m, const std::vector<Batch>& batches, bool accuracy) {
  const bool was = m.is_training();
  m.eval();
  torch::NoGradGuard ng;
  const auto dev = m.parameters().front().device();
  double total = 0;
  int64_t correct = 0, counted = 0;
  for (const auto& b : batches) {
    auto tg = b.targets.to(dev);
    auto logits = m.forward(b.inputs.to(dev));  // (B, T, V)
    total += torch::nn::functional::cross_entropy(logits.flatten(0, 1), tg.flatten()).item<double>();
    if (accuracy) {
      auto mask = tg.ne(-100);                                         // (B, T)
      auto wrong = logits.argmax(-1).ne(tg).logical_and(mask).any(1);  // (B)
      auto has = mask.any(1);
      correct += has.logical_and(wrong.logical_not()).sum().item<int64_t>();
      counted += has.sum().item<int64_t>();
    }
  }
  if (was) m.train();
  LossAcc r;
  r.loss = batches.empty() ? std::numeric_limits<double>::quiet_NaN() : total / batches.size();
  if (counted) r.acc = static_cast<double>(correct) / counted;
  return r;
}

double mean_kl(GPTModelImpl& a, GPTModelImpl& b, const std::vector<Batch>& batches) {
  const bool wa = a.is_training(), wb = b.is_training();
  a.eval();
  b.eval();
  torch::NoGradGuard ng;
  const auto dev = a.parameters().front().device();
  double total = 0;
  int64_t count = 0;
  for (const auto& batch : batches) {
    auto in = batch.inputs.to(dev);
    auto mask = batch.targets.to(dev).ne(-100);  // scored positions only
    auto la = torch::log_softmax(a.forward(in).to(torch::kFloat64), -1);  // (B, T, V)
    auto lb = torch::log_softmax(b.forward(in).to(torch::kFloat64), -1);
    auto kl = (la.exp() * (la - lb)).sum(-1);  // (B, T)
    total += kl.masked_select(mask).sum().item<double>();
    count += mask.sum().item<int64_t>();
  }
  if (wa) a.train();
  if (wb) b.train();
  return count ? total / count : 0.0;
}

std::vector<int64_t> generate_ids(GPTModelImpl& m, std::vector<int64_t> ids, int max_new, double temperature,
                                  int top_k, at::Generator* gen) {
  const bool was = m.is_training();
  m.eval();
  torch::NoGradGuard ng;
  const auto dev = m.parameters().front().device();
  const int64_t ctx = m.config().context_length;
  if (ids.empty()) ids.push_back(0);
  for (int k = 0; k < max_new; ++k) {
    const int64_t start = std::max<int64_t>(0, static_cast<int64_t>(ids.size()) - ctx);
    auto idx = torch::tensor(std::vector<int64_t>(ids.begin() + start, ids.end()), torch::kInt64).view({1, -1}).to(dev);
    auto logits = m.forward(idx).select(1, -1);  // (1, V)
    if (temperature <= 0) {
      ids.push_back(torch::softmax(logits, -1).argmax(-1).item<int64_t>());
      continue;
    }
    auto l = logits[0].to(torch::kFloat64).cpu();
    if (top_k > 0 && top_k < l.size(0)) {
      auto kth = std::get<0>(l.topk(top_k)).min();
      l = l.masked_fill(l < kth, -std::numeric_limits<double>::infinity());
    }
    auto probs = torch::softmax(l / temperature, -1);
    ids.push_back(torch::multinomial(probs, 1, false, gen ? c10::optional<at::Generator>(*gen) : c10::nullopt)
                      .item<int64_t>());
  }
  if (was) m.train();
  return ids;
}

AttentionMaps attention_maps(GPTModelImpl& m, const std::vector<int64_t>& ids) {
  if (ids.empty()) throw Error("attention: the prompt encodes to no tokens");
  const bool was = m.is_training();
  m.eval();
  torch::NoGradGuard ng;
  const int64_t T = std::min<int64_t>(static_cast<int64_t>(ids.size()), m.config().context_length);
  auto idx = torch::tensor(std::vector<int64_t>(ids.end() - T, ids.end()), torch::kInt64).view({1, T});
  std::vector<torch::Tensor> attn;
  m.forward(idx.to(m.parameters().front().device()), &attn);
  AttentionMaps out;
  for (auto& a : attn) {
    auto w = a[0].to(torch::kFloat64).cpu();  // (H, T, T)
    auto ent = -(w * torch::log(w.clamp_min(1e-300))).sum(-1).mean(-1);  // (H)
    auto sv = torch::linalg::svdvals(w, c10::nullopt);                  // (H, T)
    std::vector<double> e;
    std::vector<int64_t> rk;
    for (int64_t h = 0; h < w.size(0); ++h) {
      e.push_back(ent[h].item<double>());
      const double tol = sv[h][0].item<double>() * T * std::numeric_limits<float>::epsilon();
      rk.push_back(sv[h].gt(tol).sum().item<int64_t>());
    }
    out.weights.push_back(w.to(torch::kFloat32));
    out.entropy.push_back(e);
    out.rank.push_back(rk);
  }
  if (was) m.train();
  return out;
}

}  // namespace qk
