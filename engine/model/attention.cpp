// QKLab engine — standard and merged causal self-attention and the shared pieces of every variant
// (see attention.h for the maths; the other variants: attention_family.cpp).
#include "attention.h"

#include <cmath>

#include "kernels.h"
#include "linalg.h"

namespace qk {

torch::Tensor CausalAttentionImpl::attend(torch::Tensor scores, const torch::Tensor& values,
                                          torch::Tensor* weights) {
  // scores (B, H, T, T), values (B, H, T, hd).
  const int64_t B = scores.size(0), T = scores.size(2);
  torch::Tensor attn;
  if (!fused) {
    // Op order follows the book exactly so that results are bit-identical to its PyTorch code:
    // masked_fill_, divide by √hd, softmax, dropout.
    if (causal) {
      auto mask_bool = mask.to(torch::kBool).index({torch::indexing::Slice(0, T), torch::indexing::Slice(0, T)});
      scores.masked_fill_(mask_bool, -std::numeric_limits<double>::infinity());
    }
    attn = torch::softmax(scores / std::pow(static_cast<double>(head_dim_), 0.5), -1);
  } else {
    attn = torch::softmax(scores, -1);  // already scaled and masked (qk_scores, merged_scores)
  }
  if (weights) *weights = attn.detach();
  attn = dropout(attn);
  const int64_t H = values.size(1), hd = values.size(3);
  auto context = fused ? parallel_bmm(attn.reshape({B * H, T, T}), values.reshape({B * H, T, hd})).view({B, H, T, hd})
                       : torch::matmul(attn, values);  // (B, H, T, hd)
  if (head_hook) context = head_hook(context);  // ablation / patching (analyses only); may stack n copies
  context = context.transpose(1, 2);            // (n·B, T, H, hd)
  context = context.contiguous().view({context.size(0), T, -1});  // (n·B, T, d)
  return out_proj ? project(out_proj, context) : context;
}

ValuePath CausalAttentionImpl::value_path() const {
  const auto f64 = [](const torch::Tensor& t) { return t.detach().to(torch::kFloat64); };
  const int64_t d = out_proj->weight.size(0);
  ValuePath p;
  p.W_V = W_value ? f64(W_value->weight) : torch::eye(d, torch::kFloat64);                      // (H·hd, d)
  p.b_V = W_value && W_value->bias.defined() ? f64(W_value->bias) : torch::zeros({d}, torch::kFloat64);  // (H·hd)
  p.W_O = f64(out_proj->weight);                                                                // (d, H·hd)
  p.b_O = f64(out_proj->bias);                                                                  // (d)
  return p;
}

void CausalAttentionImpl::set_value_path(const ValuePath& p, bool values_only) {
  torch::NoGradGuard ng;
  if (W_value) {
    W_value->weight.copy_(p.W_V.to(W_value->weight.dtype()));
    if (W_value->bias.defined()) W_value->bias.copy_(p.b_V.to(W_value->bias.dtype()));
  }
  if (values_only) return;
  out_proj->weight.copy_(p.W_O.to(out_proj->weight.dtype()));
  out_proj->bias.copy_(p.b_O.to(out_proj->bias.dtype()));
}

torch::Tensor CausalAttentionImpl::project(torch::nn::Linear& l, const torch::Tensor& x) const {
  return fused ? parallel_linear(x, l->weight, l->bias, bf16) : l(x);
}

torch::Tensor CausalAttentionImpl::additive_mask(int64_t T, int64_t H, const torch::TensorOptions& opt) {
  torch::Tensor& m = H > 0 ? add_mask_rows_ : add_mask_;
  const int64_t rows = H > 0 ? T * H : T;
  if (!m.defined() || m.size(0) != rows || m.size(1) != T || m.dtype() != opt.dtype() || m.device() != opt.device()) {
    torch::NoGradGuard ng;
    auto base = torch::full({T, T}, -std::numeric_limits<double>::infinity(), opt).triu(1);  // (T, T)
    m = H > 0 ? base.unsqueeze(1).expand({T, H, T}).reshape({rows, T}).contiguous() : base;
  }
  return m;
}

torch::Tensor CausalAttentionImpl::qk_scores(const torch::Tensor& q, const torch::Tensor& k) {
  // q, k (B, H, T, k)
  if (!fused) return torch::matmul(q, k.transpose(2, 3));  // (B, H, T, T)
  const int64_t B = q.size(0), H = q.size(1), T = q.size(2), K = q.size(3);
  auto q3 = q.reshape({B * H, T, K}), k3 = k.reshape({B * H, T, K});
  auto s = parallel_bmm(q3, k3.transpose(1, 2), 1.0 / std::sqrt(static_cast<double>(head_dim_)),
                        causal ? additive_mask(T, 0, q.options()) : torch::Tensor());  // (B·H, T, T)
  return s.view({B, H, T, T});
}

torch::Tensor CausalAttentionImpl::merged_scores(const torch::Tensor& x, const torch::Tensor& S, const torch::Tensor& u) {
  const int64_t B = x.size(0), T = x.size(1), H = S.size(0), d = S.size(1);
  // One matmul for all heads: W[k, h·d + j] = S[h, j, k], so (x·W)[.., h·d + j] = (S_h x)_j.
  if (!fused) {
    auto w = S.permute({2, 0, 1}).reshape({d, H * d});                  // (d, H·d)
    auto qt = torch::matmul(x, w).view({B, T, H, d}).transpose(1, 2);   // (B, H, T, d)
    if (u.defined()) qt = qt + u.view({1, H, 1, d});                    // S_h x_i + u_h
    return torch::matmul(qt, x.unsqueeze(1).transpose(2, 3));           // (B, H, T, T)
  }
  // Fused: the rows (t, h) of every head scored against the sequence in one GEMM per sequence,
  // with no copy of x per head: (B, T·H, d)·(B, d, T), scale and mask folded in.
  // (x·W)[.., h·d + j] = (S_h x)_j with W = (S reshaped (H·d, d))ᵀ: a linear layer with weight S.
  auto qt = parallel_linear(x, S.reshape({H * d, d}), u.defined() ? u.reshape({H * d}) : u, bf16);  // (B, T, H·d)
  auto s = parallel_bmm(qt.view({B, T * H, d}), x.transpose(1, 2), 1.0 / std::sqrt(static_cast<double>(head_dim_)),
                        causal ? additive_mask(T, H, x.options()) : torch::Tensor());  // (B, T·H, T)
  return s.view({B, T, H, T}).permute({0, 2, 1, 3});                         // (B, H, T, T) view
}

void CausalAttentionImpl::register_value_path(const ModelConfig& cfg) {
  const int d = cfg.emb_dim;
  head_dim_ = cfg.head_dim();
  causal = cfg.causal;
  if (cfg.value_proj != "identity")
    W_value = register_module("W_value", torch::nn::Linear(torch::nn::LinearOptions(d, d).bias(cfg.qkv_bias)));
  out_proj = register_module("out_proj", torch::nn::Linear(d, d));
  dropout = register_module("dropout", torch::nn::Dropout(cfg.drop_rate));
  mask = register_buffer("mask", torch::triu(torch::ones({cfg.context_length, cfg.context_length}), 1));
}

torch::Tensor CausalAttentionImpl::head_values(const torch::Tensor& x, int64_t n_heads, int64_t head_dim) {
  const int64_t B = x.size(0), T = x.size(1);
  auto v = W_value ? project(W_value, x) : x;            // (B, T, d)
  return v.view({B, T, n_heads, head_dim}).transpose(1, 2);     // (B, H, T, hd)
}

torch::Tensor merged_scores(const torch::Tensor& x, const torch::Tensor& S, const torch::Tensor& u) {
  const int64_t B = x.size(0), T = x.size(1), H = S.size(0), d = S.size(1);
  // One matmul for all heads: W[k, h·d + j] = S[h, j, k], so (x·W)[.., h·d + j] = (S_h x)_j.
  auto w = S.permute({2, 0, 1}).reshape({d, H * d});                  // (d, H·d)
  auto qt = torch::matmul(x, w).view({B, T, H, d}).transpose(1, 2);   // (B, H, T, d)
  if (u.defined()) qt = qt + u.view({1, H, 1, d});                    // S_h x_i + u_h
  return torch::matmul(qt, x.unsqueeze(1).transpose(2, 3));           // (B, H, T, T)
}

StandardAttentionImpl::StandardAttentionImpl(const ModelConfig& cfg)
    : n_heads(cfg.n_heads), head_dim(cfg.head_dim()), qk_head_dim(cfg.effective_qk_head_dim()) {
  const int d = cfg.emb_dim;
  // Registration (and so random initialisation) order follows the book: W_query, W_key, W_value,
  // out_proj, dropout, mask.
  W_query = register_module(
      "W_query", torch::nn::Linear(torch::nn::LinearOptions(d, n_heads * qk_head_dim).bias(cfg.qkv_bias)));
  W_key = register_module(
      "W_key", torch::nn::Linear(torch::nn::LinearOptions(d, n_heads * qk_head_dim).bias(cfg.qkv_bias)));
  register_value_path(cfg);
}

torch::Tensor StandardAttentionImpl::forward(const torch::Tensor& x, torch::Tensor* weights) {
  const int64_t B = x.size(0), T = x.size(1);
  auto keys = project(W_key, x);       // (B, T, H·qk)
  auto queries = project(W_query, x);  // (B, T, H·qk)
  auto values = head_values(x, n_heads, head_dim);                        // (B, H, T, hd)
  keys = keys.view({B, T, n_heads, qk_head_dim}).transpose(1, 2);        // (B, H, T, qk)
  queries = queries.view({B, T, n_heads, qk_head_dim}).transpose(1, 2);  // (B, H, T, qk)
  auto scores = qk_scores(queries, keys);                                 // (B, H, T, T)
  return attend(scores, values, weights);
}

torch::Tensor StandardAttentionImpl::bilinear_forms() const {
  const int64_t d = W_query->weight.size(1);
  auto wq = W_query->weight.to(torch::kFloat64).view({n_heads, qk_head_dim, d});  // (H, qk, d)
  auto wk = W_key->weight.to(torch::kFloat64).view({n_heads, qk_head_dim, d});    // (H, qk, d)
  return torch::matmul(wq.transpose(1, 2), wk);  // (H, d, d) float64 = W_q[h]ᵀ W_k[h]
}

std::pair<torch::Tensor, torch::Tensor> StandardAttentionImpl::factors() const {
  const int64_t d = W_query->weight.size(1);
  auto wq = W_query->weight.detach().view({n_heads, qk_head_dim, d});  // (H, qk, d)
  auto wk = W_key->weight.detach().view({n_heads, qk_head_dim, d});
  return {wq.transpose(1, 2), wk.transpose(1, 2)};  // (H, d, qk) each
}

torch::Tensor StandardAttentionImpl::form_singular_values(int head) const {
  torch::NoGradGuard ng;
  auto [A, B] = factors();
  if (head >= 0) return factored_singular_values(A[head], B[head]).unsqueeze(0);  // (1, qk)
  return factored_singular_values(A, B);  // (H, qk)
}

double StandardAttentionImpl::form_eps() const { return dtype_eps(W_query->weight); }

FormSvd StandardAttentionImpl::form_svd() const {
  torch::NoGradGuard ng;
  auto [A, B] = factors();
  return factored_form_svd(A, B);  // (H, d, qk), (H, qk), (H, qk, d)
}

void StandardAttentionImpl::truncate_forms(int64_t r, const FormSvd* svd) {
  if (r >= qk_head_dim) return;  // the form already has rank <= qk: the identity, exactly
  torch::NoGradGuard ng;
  const FormSvd own = svd ? FormSvd() : form_svd();
  set_factors(svd_factors(svd ? *svd : own, r, qk_head_dim));
  if (W_query->bias.defined() && r == 0) {  // rank 0: no score at all, not even from the biases
    W_query->bias.zero_();
    W_key->bias.zero_();
  }
}

void StandardAttentionImpl::set_forms(const torch::Tensor& M) {
  torch::NoGradGuard ng;
  set_factors(svd_factors(M, qk_head_dim, qk_head_dim));
}

void StandardAttentionImpl::truncate_head_form(int h, int64_t r, const FormSvd& svd_h) {
  torch::NoGradGuard ng;
  const auto [A, B] = svd_factors(FormSvd{svd_h.U.unsqueeze(0), svd_h.S.unsqueeze(0), svd_h.Vh.unsqueeze(0)}, r,
                                  qk_head_dim);  // (1, d, qk) each: U_r·Σ_r^½, V_r·Σ_r^½
  W_query->weight.narrow(0, h * qk_head_dim, qk_head_dim).copy_(A[0].t().to(W_query->weight.dtype()));
  W_key->weight.narrow(0, h * qk_head_dim, qk_head_dim).copy_(B[0].t().to(W_key->weight.dtype()));
}

torch::Tensor StandardAttentionImpl::key_bias() const {
  const int64_t d = W_query->weight.size(1);
  if (!W_query->bias.defined()) return torch::zeros({n_heads, d}, torch::kFloat64);
  auto wk = W_key->weight.detach().to(torch::kFloat64).view({n_heads, qk_head_dim, d});  // (H, qk, d)
  auto bq = W_query->bias.detach().to(torch::kFloat64).view({n_heads, qk_head_dim, 1});  // (H, qk, 1)
  return torch::matmul(wk.transpose(1, 2), bq).squeeze(-1);                               // (H, d)
}

void StandardAttentionImpl::set_key_bias(const torch::Tensor& u) {
  if (!W_query->bias.defined()) return;  // no bias to hold it: the conversion drops u
  torch::NoGradGuard ng;
  const int64_t d = W_query->weight.size(1);
  auto wkT = W_key->weight.detach().to(torch::kFloat64).view({n_heads, qk_head_dim, d}).transpose(1, 2);  // (H, d, qk)
  auto bq = torch::matmul(torch::linalg_pinv(wkT), u.to(torch::kFloat64).unsqueeze(-1)).squeeze(-1);    // (H, qk)
  W_query->bias.copy_(bq.reshape({-1}).to(W_query->bias.dtype()));
  W_key->bias.zero_();  // b_key only adds terms of the query alone: softmax cancels them
}

void StandardAttentionImpl::set_factors(const std::pair<torch::Tensor, torch::Tensor>& AB) {
  const int64_t d = W_query->weight.size(1);
  const auto& [A, B] = AB;  // (H, d, qk): W_query[h] = A_hᵀ, W_key[h] = B_hᵀ
  W_query->weight.copy_(A.transpose(1, 2).reshape({-1, d}).to(W_query->weight.dtype()));
  W_key->weight.copy_(B.transpose(1, 2).reshape({-1, d}).to(W_key->weight.dtype()));
}

MergedAttentionImpl::MergedAttentionImpl(const ModelConfig& cfg)
    : n_heads(cfg.n_heads), head_dim(cfg.head_dim()), d(cfg.emb_dim) {
  // S_h initialised as a per-head nn.Linear(d, d, bias=False) would be: U(-1/√d, 1/√d), drawn
  // head by head where the standard variant draws W_query and W_key.
  S = torch::empty({n_heads, d, d});
  {
    torch::NoGradGuard ng;
    for (int h = 0; h < n_heads; ++h)
      torch::nn::init::kaiming_uniform_(S[h], std::sqrt(5.0));
  }
  S = register_parameter("S", S);
  if (cfg.qkv_bias) key_bias_ = register_parameter("key_bias", torch::zeros({n_heads, d}));
  register_value_path(cfg);
}

torch::Tensor MergedAttentionImpl::forward(const torch::Tensor& x, torch::Tensor* weights) {
  auto scores = merged_scores(x, S, key_bias_);     // (B, H, T, T)
  auto values = head_values(x, n_heads, head_dim);  // (B, H, T, hd)
  return attend(scores, values, weights);
}

torch::Tensor MergedAttentionImpl::bilinear_forms() const {
  return S.detach().to(torch::kFloat64, false, true).transpose(1, 2);  // (H, d, d) float64, a copy (never a view of S)
}

torch::Tensor MergedAttentionImpl::form_singular_values(int head) const {
  torch::NoGradGuard ng;
  auto s = S.detach();
  return head >= 0 ? dense_singular_values(s[head]).unsqueeze(0) : dense_singular_values(s);  // batched over heads
}

double MergedAttentionImpl::form_eps() const { return dtype_eps(S); }

FormSvd MergedAttentionImpl::form_svd() const {
  torch::NoGradGuard ng;
  return qk::form_svd(bilinear_forms());  // dense: (H, d, d), (H, d), (H, d, d)
}

void MergedAttentionImpl::truncate_forms(int64_t r, const FormSvd* svd) {
  if (r >= d) return;  // full rank: the identity, exactly
  torch::NoGradGuard ng;
  const auto M = svd ? reconstruct(*svd, r) : truncate_dense(bilinear_forms(), r);  // M_h's best rank r
  S.copy_(M.transpose(1, 2).to(S.dtype()));                                           // S_h = M_hᵀ
  if (r == 0 && key_bias_.defined()) key_bias_.zero_();  // rank 0: no score at all, as for standard
}

torch::Tensor MergedAttentionImpl::key_bias() const {
  if (!key_bias_.defined()) return torch::zeros({n_heads, d}, torch::kFloat64);
  return key_bias_.detach().to(torch::kFloat64);
}

void MergedAttentionImpl::set_key_bias(const torch::Tensor& u) {
  if (!key_bias_.defined()) return;
  torch::NoGradGuard ng;
  key_bias_.copy_(u.to(key_bias_.dtype()));
}

void MergedAttentionImpl::set_forms(const torch::Tensor& M) {
  torch::NoGradGuard ng;
  S.copy_(M.to(torch::kFloat64).transpose(1, 2).to(S.dtype()));  // S_h = M_hᵀ, exactly
}

std::shared_ptr<CausalAttentionImpl> make_attention(Variant v, const ModelConfig& cfg) {
  switch (v) {
    case Variant::Standard: return std::make_shared<StandardAttentionImpl>(cfg);
    case Variant::Merged: return std::make_shared<MergedAttentionImpl>(cfg);
    case Variant::SharedQK: return std::make_shared<SharedQKAttentionImpl>(cfg);
    case Variant::MergedSym: return std::make_shared<MergedSymAttentionImpl>(cfg);
    case Variant::MergedLowRank: return std::make_shared<MergedLowRankAttentionImpl>(cfg);
    case Variant::IdentityQuery: return std::make_shared<IdentityQueryAttentionImpl>(cfg);
    case Variant::SharedKV: return std::make_shared<SharedKVAttentionImpl>(cfg);
    case Variant::SharedQKV: return std::make_shared<SharedQKVAttentionImpl>(cfg);
    case Variant::MergedSeed: return std::make_shared<MergedSeedAttentionImpl>(cfg);
  }
  throw std::logic_error("make_attention: unknown variant");
}

}  // namespace qk
