// QKLab engine — the other query-key parameterisations behind the one attention interface
// (attention.h has the maths of each): shared-qk, merged-sym, merged-lowrank and identity-query.
// Each owns its forms, spectra, truncation and conversions; the value path, mask, scaling and
// softmax are the shared attend().
#include "attention.h"

#include <cmath>

#include "linalg.h"

namespace qk {

using torch::indexing::Slice;

namespace {

// U(-1/√d, 1/√d), as nn.Linear(d, ·) initialises its weight (kaiming_uniform with a = √5).
torch::Tensor linear_init(torch::IntArrayRef shape, int64_t fan_in) {
  const double bound = 1.0 / std::sqrt(static_cast<double>(fan_in));
  return torch::empty(shape).uniform_(-bound, bound);
}

torch::Tensor key_bias_or_zeros(const torch::Tensor& u, int64_t H, int64_t d) {
  if (!u.defined()) return torch::zeros({H, d}, torch::kFloat64);
  return u.detach().to(torch::kFloat64);
}

void store_key_bias(torch::Tensor& u, const torch::Tensor& value) {
  if (!u.defined()) return;  // no key bias without qkv_bias: a conversion drops it
  torch::NoGradGuard ng;
  u.copy_(value.to(u.dtype()));
}

}  // namespace

// ---- shared-qk -----------------------------------------------------------------------------

SharedQKAttentionImpl::SharedQKAttentionImpl(const ModelConfig& cfg)
    : n_heads(cfg.n_heads), head_dim(cfg.head_dim()), qk_head_dim(cfg.effective_qk_head_dim()) {
  const int d = cfg.emb_dim;
  W_qk = register_module(
      "W_qk", torch::nn::Linear(torch::nn::LinearOptions(d, n_heads * qk_head_dim).bias(cfg.qkv_bias)));
  register_value_path(cfg);
}

torch::Tensor SharedQKAttentionImpl::forward(const torch::Tensor& x, torch::Tensor* weights) {
  const int64_t B = x.size(0), T = x.size(1);
  auto q = project(W_qk, x).view({B, T, n_heads, qk_head_dim}).transpose(1, 2);  // (B, H, T, qk): queries = keys
  auto scores = qk_scores(q, q);                                                       // (B, H, T, T), symmetric
  return attend(scores, head_values(x, n_heads, head_dim), weights);
}

torch::Tensor SharedQKAttentionImpl::factor() const {
  const int64_t d = W_qk->weight.size(1);
  return W_qk->weight.detach().view({n_heads, qk_head_dim, d}).transpose(1, 2);  // (H, d, qk) = W_hᵀ
}

torch::Tensor SharedQKAttentionImpl::bilinear_forms() const {
  auto f = factor().to(torch::kFloat64);
  return torch::matmul(f, f.transpose(1, 2));  // (H, d, d) = W_hᵀ·W_h
}

torch::Tensor SharedQKAttentionImpl::form_singular_values(int head) const {
  torch::NoGradGuard ng;
  auto A = factor();
  if (head >= 0) return factored_singular_values(A[head], A[head]).unsqueeze(0);  // (1, qk)
  return factored_singular_values(A, A);                                         // (H, qk)
}

double SharedQKAttentionImpl::form_eps() const { return dtype_eps(W_qk->weight); }

FormSvd SharedQKAttentionImpl::form_svd() const {
  torch::NoGradGuard ng;
  auto A = factor();
  return factored_form_svd(A, A);
}

void SharedQKAttentionImpl::truncate_forms(int64_t r, const FormSvd* svd) {
  if (r >= qk_head_dim) return;
  torch::NoGradGuard ng;
  const FormSvd own = svd ? FormSvd() : form_svd();
  // M = V·Σ·Vᵀ (PSD): W_h ← Σ_r^½·V_rᵀ keeps it PSD and is its best rank-r approximation.
  auto B = svd_factors(svd ? *svd : own, r, qk_head_dim).second;  // (H, d, qk)
  const int64_t d = W_qk->weight.size(1);
  W_qk->weight.copy_(B.transpose(1, 2).reshape({-1, d}).to(W_qk->weight.dtype()));
  if (W_qk->bias.defined() && r == 0) W_qk->bias.zero_();
}

void SharedQKAttentionImpl::set_forms(const torch::Tensor& M) {
  torch::NoGradGuard ng;
  const int64_t d = M.size(-1);
  auto B = psd_factor(M, qk_head_dim);  // (H, d, qk): B·Bᵀ the PSD part of sym(M) of rank ≤ qk
  W_qk->weight.copy_(B.transpose(1, 2).reshape({-1, d}).to(W_qk->weight.dtype()));
}

torch::Tensor SharedQKAttentionImpl::key_bias() const {
  const int64_t d = W_qk->weight.size(1);
  if (!W_qk->bias.defined()) return torch::zeros({n_heads, d}, torch::kFloat64);
  return key_bias_of(W_qk->weight.view({n_heads, qk_head_dim, d}), W_qk->bias);
}

void SharedQKAttentionImpl::set_key_bias(const torch::Tensor& u) {
  if (!W_qk->bias.defined()) return;
  torch::NoGradGuard ng;
  const int64_t d = W_qk->weight.size(1);
  W_qk->bias.copy_(bias_for_key_bias(W_qk->weight.view({n_heads, qk_head_dim, d}), u).reshape({-1}).to(W_qk->bias.dtype()));
}

// ---- merged-sym ----------------------------------------------------------------------------

MergedSymAttentionImpl::MergedSymAttentionImpl(const ModelConfig& cfg)
    : n_heads(cfg.n_heads), head_dim(cfg.head_dim()), d(cfg.emb_dim) {
  auto idx = torch::triu_indices(d, d);  // (2, d(d+1)/2)
  rows_ = idx[0];
  cols_ = idx[1];
  // Drawn like merged's S (one nn.Linear(d, d) per head), then symmetrised.
  auto full = torch::empty({n_heads, d, d});
  {
    torch::NoGradGuard ng;
    for (int h = 0; h < n_heads; ++h) torch::nn::init::kaiming_uniform_(full[h], std::sqrt(5.0));
    full = (full + full.transpose(1, 2)) / 2;
  }
  S_tri = register_parameter("S_tri", full.index({Slice(), rows_, cols_}).contiguous());
  if (cfg.qkv_bias) key_bias_ = register_parameter("key_bias", torch::zeros({n_heads, d}));
  register_value_path(cfg);
}

torch::Tensor MergedSymAttentionImpl::full() const {
  const auto r = rows_.to(S_tri.device()), c = cols_.to(S_tri.device());
  auto upper = torch::zeros({n_heads, d, d}, S_tri.options());  // (H, d, d)
  upper.index_put_({Slice(), r, c}, S_tri);                      // recorded by autograd
  return upper + upper.transpose(1, 2) - torch::diag_embed(torch::diagonal(upper, 0, 1, 2));
}

torch::Tensor MergedSymAttentionImpl::forward(const torch::Tensor& x, torch::Tensor* weights) {
  auto scores = merged_scores(x, full(), key_bias_);  // (B, H, T, T)
  return attend(scores, head_values(x, n_heads, head_dim), weights);
}

torch::Tensor MergedSymAttentionImpl::bilinear_forms() const {
  torch::NoGradGuard ng;
  return full().to(torch::kFloat64);  // (H, d, d), = its transpose
}

torch::Tensor MergedSymAttentionImpl::form_singular_values(int head) const {
  torch::NoGradGuard ng;
  auto s = full();
  return head >= 0 ? dense_singular_values(s[head]).unsqueeze(0) : dense_singular_values(s);
}

double MergedSymAttentionImpl::form_eps() const { return dtype_eps(S_tri); }

FormSvd MergedSymAttentionImpl::form_svd() const { return qk::form_svd(bilinear_forms()); }

void MergedSymAttentionImpl::truncate_forms(int64_t r, const FormSvd* svd) {
  if (r >= d) return;
  torch::NoGradGuard ng;
  set_forms(svd ? reconstruct(*svd, r) : truncate_dense(bilinear_forms(), r));  // symmetric up to rounding
  if (r == 0 && key_bias_.defined()) key_bias_.zero_();
}

void MergedSymAttentionImpl::set_forms(const torch::Tensor& M) {
  torch::NoGradGuard ng;
  auto m = M.to(torch::kFloat64);
  auto sym = (m + m.transpose(1, 2)) / 2;
  S_tri.copy_(sym.index({Slice(), rows_, cols_}).to(S_tri.dtype()));
}

torch::Tensor MergedSymAttentionImpl::key_bias() const { return key_bias_or_zeros(key_bias_, n_heads, d); }
void MergedSymAttentionImpl::set_key_bias(const torch::Tensor& u) { store_key_bias(key_bias_, u); }

// ---- merged-lowrank ------------------------------------------------------------------------

MergedLowRankAttentionImpl::MergedLowRankAttentionImpl(const ModelConfig& cfg)
    : n_heads(cfg.n_heads), head_dim(cfg.head_dim()), d(cfg.emb_dim), rank(cfg.effective_qk_head_dim()) {
  {
    torch::NoGradGuard ng;
    U = linear_init({n_heads, d, rank}, d);  // as standard's W_query, W_key: U(-1/√d, 1/√d)
    V = linear_init({n_heads, d, rank}, d);
  }
  U = register_parameter("U", U);
  V = register_parameter("V", V);
  if (cfg.qkv_bias) key_bias_ = register_parameter("key_bias", torch::zeros({n_heads, d}));
  register_value_path(cfg);
}

torch::Tensor MergedLowRankAttentionImpl::forward(const torch::Tensor& x, torch::Tensor* weights) {
  auto S = torch::matmul(V, U.transpose(1, 2));       // (H, d, d): S_h = V_h·U_hᵀ, once per forward
  auto scores = merged_scores(x, S, key_bias_);       // (B, H, T, T)
  return attend(scores, head_values(x, n_heads, head_dim), weights);
}

torch::Tensor MergedLowRankAttentionImpl::bilinear_forms() const {
  return torch::matmul(U.detach().to(torch::kFloat64), V.detach().to(torch::kFloat64).transpose(1, 2));
}

torch::Tensor MergedLowRankAttentionImpl::form_singular_values(int head) const {
  torch::NoGradGuard ng;
  if (head >= 0) return factored_singular_values(U[head], V[head]).unsqueeze(0);
  return factored_singular_values(U, V);
}

double MergedLowRankAttentionImpl::form_eps() const { return dtype_eps(U); }

FormSvd MergedLowRankAttentionImpl::form_svd() const {
  torch::NoGradGuard ng;
  return factored_form_svd(U.detach(), V.detach());
}

void MergedLowRankAttentionImpl::truncate_forms(int64_t r, const FormSvd* svd) {
  if (r >= rank) return;
  torch::NoGradGuard ng;
  const FormSvd own = svd ? FormSvd() : form_svd();
  auto [A, B] = svd_factors(svd ? *svd : own, r, rank);
  U.copy_(A.to(U.dtype()));
  V.copy_(B.to(V.dtype()));
  if (r == 0 && key_bias_.defined()) key_bias_.zero_();
}

void MergedLowRankAttentionImpl::set_forms(const torch::Tensor& M) {
  torch::NoGradGuard ng;
  auto [A, B] = svd_factors(M, rank, rank);
  U.copy_(A.to(U.dtype()));
  V.copy_(B.to(V.dtype()));
}

torch::Tensor MergedLowRankAttentionImpl::key_bias() const { return key_bias_or_zeros(key_bias_, n_heads, d); }
void MergedLowRankAttentionImpl::set_key_bias(const torch::Tensor& u) { store_key_bias(key_bias_, u); }

// ---- identity-query ------------------------------------------------------------------------

IdentityQueryAttentionImpl::IdentityQueryAttentionImpl(const ModelConfig& cfg)
    : n_heads(cfg.n_heads), head_dim(cfg.head_dim()), d(cfg.emb_dim) {
  W_key = register_module("W_key", torch::nn::Linear(torch::nn::LinearOptions(d, d).bias(cfg.qkv_bias)));
  if (cfg.qkv_bias) query_bias = register_parameter("query_bias", torch::zeros({d}));
  register_value_path(cfg);
}

torch::Tensor IdentityQueryAttentionImpl::forward(const torch::Tensor& x, torch::Tensor* weights) {
  const int64_t B = x.size(0), T = x.size(1);
  auto q = query_bias.defined() ? x + query_bias : x;                               // (B, T, d)
  q = q.view({B, T, n_heads, head_dim}).transpose(1, 2);                            // (B, H, T, hd): slice h
  auto k = project(W_key, x).view({B, T, n_heads, head_dim}).transpose(1, 2);  // (B, H, T, hd)
  auto scores = qk_scores(q, k);                                                      // (B, H, T, T)
  return attend(scores, head_values(x, n_heads, head_dim), weights);
}

torch::Tensor IdentityQueryAttentionImpl::bilinear_forms() const {
  auto wk = W_key->weight.detach().to(torch::kFloat64).view({n_heads, head_dim, d});  // (H, hd, d)
  auto M = torch::zeros({n_heads, d, d}, torch::kFloat64);
  for (int h = 0; h < n_heads; ++h) M[h].narrow(0, h * head_dim, head_dim).copy_(wk[h]);  // E_hᵀ·W_key[h]
  return M;
}

namespace {
// E_hᵀ for every head: (H, d, hd), the identity's columns of head h.
torch::Tensor identity_slices(int64_t H, int64_t d, int64_t hd, torch::Dtype dt) {
  return torch::eye(d, torch::TensorOptions().dtype(dt)).view({H, hd, d}).transpose(1, 2);
}
}  // namespace

torch::Tensor IdentityQueryAttentionImpl::form_singular_values(int head) const {
  torch::NoGradGuard ng;
  // σ(E_hᵀ·W) = σ(W): E_hᵀ has orthonormal columns.
  auto wk = W_key->weight.detach().view({n_heads, head_dim, d});  // (H, hd, d)
  return head >= 0 ? dense_singular_values(wk[head]).unsqueeze(0) : dense_singular_values(wk);
}

double IdentityQueryAttentionImpl::form_eps() const { return dtype_eps(W_key->weight); }

FormSvd IdentityQueryAttentionImpl::form_svd() const {
  torch::NoGradGuard ng;
  auto B = W_key->weight.detach().view({n_heads, head_dim, d}).transpose(1, 2);  // (H, d, hd)
  return factored_form_svd(identity_slices(n_heads, d, head_dim, torch::kFloat64), B);
}

void IdentityQueryAttentionImpl::truncate_forms(int64_t r, const FormSvd* svd) {
  if (r >= head_dim) return;
  torch::NoGradGuard ng;
  set_forms(reconstruct(svd ? *svd : form_svd(), r));  // M_r = E_hᵀ·(W_key[h])_r: its slice rows
  if (r == 0) {
    if (query_bias.defined()) query_bias.zero_();
    if (W_key->bias.defined()) W_key->bias.zero_();
  }
}

void IdentityQueryAttentionImpl::set_forms(const torch::Tensor& M) {
  torch::NoGradGuard ng;
  auto m = M.to(torch::kFloat64);
  auto wk = torch::empty({n_heads, head_dim, d}, torch::kFloat64);
  for (int h = 0; h < n_heads; ++h) wk[h].copy_(m[h].narrow(0, h * head_dim, head_dim));
  W_key->weight.copy_(wk.reshape({d, d}).to(W_key->weight.dtype()));
}

torch::Tensor IdentityQueryAttentionImpl::key_bias() const {
  if (!query_bias.defined()) return torch::zeros({n_heads, d}, torch::kFloat64);
  return key_bias_of(W_key->weight.view({n_heads, head_dim, d}), query_bias);
}

void IdentityQueryAttentionImpl::set_key_bias(const torch::Tensor& u) {
  if (!query_bias.defined()) return;
  torch::NoGradGuard ng;
  query_bias.copy_(bias_for_key_bias(W_key->weight.view({n_heads, head_dim, d}), u).reshape({-1}).to(query_bias.dtype()));
  W_key->bias.zero_();  // b_key adds terms of the query alone: softmax cancels them
}

}  // namespace qk
