// QKLab engine — projection sharing (Kayyam, Madan Gopal & Lewis, "Do Transformers Need Three
// Projections?", ICML 2026): shared-kv (W_K = W_V) and shared-qkv (W_Q = W_K = W_V); with
// shared-qk (attention_family.cpp) the paper's family. The shared matrix is the value path's
// W_value, so checkpoints, conversions and the OV analyses find it where every variant keeps it.
// attention.h has the maths; the mask, scaling, softmax and out_proj are the shared attend().
#include "attention.h"

#include "error.h"
#include "linalg.h"

namespace qk {

namespace {

void require_value_proj(const ModelConfig& cfg, const char* variant) {
  if (cfg.value_proj == "identity")
    throw Error(std::string("model.value_proj: 'identity' is not available for ") + variant +
                " (its keys are its values: it needs W_value)");
}

// W (d, d) in nn.Linear layout as per-head blocks (H, hd, d).
torch::Tensor heads_of(const torch::Tensor& w, int64_t H, int64_t hd) { return w.view({H, hd, w.size(1)}); }

}  // namespace

// ---- shared-kv -----------------------------------------------------------------------------

SharedKVAttentionImpl::SharedKVAttentionImpl(const ModelConfig& cfg) : n_heads(cfg.n_heads), head_dim(cfg.head_dim()) {
  require_value_proj(cfg, "shared-kv");
  const int d = cfg.emb_dim;
  W_query = register_module("W_query", torch::nn::Linear(torch::nn::LinearOptions(d, d).bias(cfg.qkv_bias)));
  register_value_path(cfg);
}

torch::Tensor SharedKVAttentionImpl::forward(const torch::Tensor& x, torch::Tensor* weights) {
  const int64_t B = x.size(0), T = x.size(1);
  auto q = project(W_query, x).view({B, T, n_heads, head_dim}).transpose(1, 2);  // (B, H, T, hd)
  auto v = head_values(x, n_heads, head_dim);                                     // (B, H, T, hd): keys = values
  return attend(qk_scores(q, v), v, weights);                                     // scores (B, H, T, T)
}

std::pair<torch::Tensor, torch::Tensor> SharedKVAttentionImpl::factors() const {
  auto wq = heads_of(W_query->weight.detach(), n_heads, head_dim);  // (H, hd, d)
  auto wv = heads_of(W_value->weight.detach(), n_heads, head_dim);  // (H, hd, d)
  return {wq.transpose(1, 2), wv.transpose(1, 2)};                  // (H, d, hd) each
}

torch::Tensor SharedKVAttentionImpl::bilinear_forms() const {
  auto [A, B] = factors();
  return torch::matmul(A.to(torch::kFloat64), B.to(torch::kFloat64).transpose(1, 2));  // (H, d, d)
}

torch::Tensor SharedKVAttentionImpl::form_singular_values(int head) const {
  torch::NoGradGuard ng;
  auto [A, B] = factors();
  if (head >= 0) return factored_singular_values(A[head], B[head]).unsqueeze(0);  // (1, hd)
  return factored_singular_values(A, B);                                         // (H, hd)
}

double SharedKVAttentionImpl::form_eps() const { return dtype_eps(W_query->weight); }

FormSvd SharedKVAttentionImpl::form_svd() const {
  torch::NoGradGuard ng;
  auto [A, B] = factors();
  return factored_form_svd(A, B);
}

void SharedKVAttentionImpl::set_forms(const torch::Tensor& M) {
  torch::NoGradGuard ng;
  auto wv = heads_of(W_value->weight.detach(), n_heads, head_dim).to(torch::kFloat64);  // (H, hd, d)
  auto wqT = torch::matmul(M.to(torch::kFloat64), torch::linalg_pinv(wv));             // (H, d, hd)
  W_query->weight.copy_(wqT.transpose(1, 2).reshape({-1, wv.size(2)}).to(W_query->weight.dtype()));
}

void SharedKVAttentionImpl::truncate_forms(int64_t r, const FormSvd* svd) {
  if (r >= head_dim) return;  // rank ≤ head_dim already: unchanged, exactly
  torch::NoGradGuard ng;
  const FormSvd own = svd ? FormSvd() : form_svd();
  set_forms(reconstruct(svd ? *svd : own, r));  // (H, d, d), rows in W_value[h]'s row space
  if (W_query->bias.defined() && r == 0) W_query->bias.zero_();
}

torch::Tensor SharedKVAttentionImpl::key_bias() const {
  const int64_t d = W_query->weight.size(1);
  if (!W_query->bias.defined()) return torch::zeros({n_heads, d}, torch::kFloat64);
  // (W_q x_i + b_q)·(W_v x_j + b_v): the key-only term is b_qᵀ·W_v x_j (b_v's terms are the query's).
  return key_bias_of(heads_of(W_value->weight, n_heads, head_dim), W_query->bias);
}

void SharedKVAttentionImpl::set_key_bias(const torch::Tensor& u) {
  if (!W_query->bias.defined()) return;
  torch::NoGradGuard ng;
  auto bq = bias_for_key_bias(heads_of(W_value->weight, n_heads, head_dim), u);  // (H, hd)
  W_query->bias.copy_(bq.reshape({-1}).to(W_query->bias.dtype()));
}

// ---- shared-qkv ----------------------------------------------------------------------------

SharedQKVAttentionImpl::SharedQKVAttentionImpl(const ModelConfig& cfg) : n_heads(cfg.n_heads), head_dim(cfg.head_dim()) {
  require_value_proj(cfg, "shared-qkv");
  register_value_path(cfg);
}

torch::Tensor SharedQKVAttentionImpl::forward(const torch::Tensor& x, torch::Tensor* weights) {
  auto v = head_values(x, n_heads, head_dim);  // (B, H, T, hd): queries = keys = values
  return attend(qk_scores(v, v), v, weights);  // scores (B, H, T, T), symmetric
}

torch::Tensor SharedQKVAttentionImpl::factor() const {
  return heads_of(W_value->weight.detach(), n_heads, head_dim).transpose(1, 2);  // (H, d, hd)
}

torch::Tensor SharedQKVAttentionImpl::bilinear_forms() const {
  auto f = factor().to(torch::kFloat64);
  return torch::matmul(f, f.transpose(1, 2));  // (H, d, d) = W_hᵀ·W_h
}

torch::Tensor SharedQKVAttentionImpl::form_singular_values(int head) const {
  torch::NoGradGuard ng;
  auto A = factor();
  if (head >= 0) return factored_singular_values(A[head], A[head]).unsqueeze(0);  // (1, hd)
  return factored_singular_values(A, A);                                         // (H, hd)
}

double SharedQKVAttentionImpl::form_eps() const { return dtype_eps(W_value->weight); }

FormSvd SharedQKVAttentionImpl::form_svd() const {
  torch::NoGradGuard ng;
  auto A = factor();
  return factored_form_svd(A, A);
}

void SharedQKVAttentionImpl::truncate_forms(int64_t r, const FormSvd* svd) {
  if (r >= head_dim) return;
  torch::NoGradGuard ng;
  (void)svd;  // the form's SVD does not give W's left singular vectors; W's own (hd × d) is cheap
  auto w = heads_of(W_value->weight.detach(), n_heads, head_dim).to(torch::kFloat64);  // (H, hd, d)
  auto [P, S, Qh] = torch::linalg_svd(w, /*full_matrices=*/false);                    // (H,hd,hd) (H,hd) (H,hd,d)
  auto keep = torch::zeros_like(S);
  keep.narrow(-1, 0, r).fill_(1.0);
  auto wr = torch::matmul(P * (S * keep).unsqueeze(1), Qh);  // (H, hd, d): best rank r of W_h
  W_value->weight.copy_(wr.reshape({-1, w.size(2)}).to(W_value->weight.dtype()));
  if (W_value->bias.defined() && r == 0) W_value->bias.zero_();
}

void SharedQKVAttentionImpl::set_forms(const torch::Tensor& M) {
  torch::NoGradGuard ng;
  const int64_t d = M.size(-1);
  auto Bm = psd_factor(M, head_dim).transpose(1, 2);  // (H, hd, d): BmᵀBm = the PSD part of sym(M), rank ≤ hd
  // Any R·Bm with R orthogonal has the same form; take the R nearest the current W (Procrustes:
  // R = U·Vᵀ from the SVD of W·Bmᵀ).
  auto w0 = heads_of(W_value->weight.detach(), n_heads, head_dim).to(torch::kFloat64);  // (H, hd, d)
  auto [U, S, Vh] = torch::linalg_svd(torch::matmul(w0, Bm.transpose(1, 2)), false);  // (H, hd, hd)
  (void)S;
  auto w = torch::matmul(torch::matmul(U, Vh), Bm);  // (H, hd, d)
  W_value->weight.copy_(w.reshape({-1, d}).to(W_value->weight.dtype()));
}

torch::Tensor SharedQKVAttentionImpl::key_bias() const {
  const int64_t d = W_value->weight.size(1);
  if (!W_value->bias.defined()) return torch::zeros({n_heads, d}, torch::kFloat64);
  // (W x_i + b)·(W x_j + b): the key-only term is bᵀ·W x_j.
  return key_bias_of(heads_of(W_value->weight, n_heads, head_dim), W_value->bias);
}

void SharedQKVAttentionImpl::set_key_bias(const torch::Tensor& u) {
  if (!W_value->bias.defined()) return;
  torch::NoGradGuard ng;
  auto b = bias_for_key_bias(heads_of(W_value->weight, n_heads, head_dim), u);  // (H, hd)
  W_value->bias.copy_(b.reshape({-1}).to(W_value->bias.dtype()));
}

}  // namespace qk
