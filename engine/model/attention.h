// QKLab engine — self-attention variants behind one interface: causal (the GPT's), or with
// model.causal = false bidirectional (an encoder; `causal` below).
//
//   standard: per head h, scores = (X·W_Q,hᵀ)(X·W_K,hᵀ)ᵀ / √head_dim   (the book's MultiHeadAttention)
//   merged:   per head h, scores = (X·S_hᵀ + u_h)·Xᵀ / √head_dim, S of shape (H, d, d); the key
//             bias u (H, d) exists only with qkv_bias (it makes converted GPT-2 heads exact)
//   shared-qk:      W_Q = W_K = W_qk (H·qk, d): M_h = W_hᵀ·W_h, symmetric positive semi-definite
//   merged-sym:     S_h symmetric, stored as its upper triangle S_tri (H, d(d+1)/2): rank ≤ d
//   merged-lowrank: U, V (H, d, qk): S_h = V_h·U_hᵀ (M_h = U_h·V_hᵀ), formed once per forward and
//                   used in the merged code path; the function class of standard at qk_head_dim
//   identity-query: queries are x's h-th head_dim slice (W_Q = I), only W_key (d, d) is learned:
//                   M_h = E_hᵀ·W_key[h] with E_h the slice's rows of I, rank ≤ head_dim
//   shared-kv:      the keys are the values (W_K = W_V): W_query (d, d) and W_value; M_h =
//                   W_query[h]ᵀ·W_value[h], rank ≤ head_dim (Kayyam et al., "Do Transformers Need
//                   Three Projections?", ICML 2026)
//   shared-qkv:     queries = keys = values (W_Q = W_K = W_V): W_value only; M_h =
//                   W_value[h]ᵀ·W_value[h], symmetric PSD of rank ≤ head_dim
//   merged-seed:    the seed experiment's MHA_alt1 (attention_seed.cpp): merged heads as separate
//                   modules heads.h.{S, W_value}, each an nn.Linear, no out_proj (the heads'
//                   outputs concatenated are the block's); S's bias is the key bias u_h
// (qk_head_dim does not apply to the last two: their keys are values, head_dim wide.)
// With model.value_proj = identity, W_value is absent (W_V = I) for every variant.
//
// Weights use nn.Linear layout (out, in): W_query.weight is (H·qk_head_dim, d) and head h owns
// rows [h·qk, (h+1)·qk). The bilinear form of a standard head is x_iᵀ·M_h·x_j with
// M_h = W_query[h]ᵀ·W_key[h] (d×d, rank ≤ qk_head_dim); the merged head's form is M_h = S_hᵀ, so the
// exact conversion is S_h = W_key[h]ᵀ·W_query[h]. Both share the value path (W_value, out_proj),
// the causal mask and dropout on the attention weights.
#pragma once
#include <torch/torch.h>

#include <functional>

#include "config.h"
#include "linalg.h"

namespace qk {

// The value path of one attention block in float64, every tensor defined: W_V (H·hd, d) (the
// identity with value_proj identity), b_V (H·hd), W_O (d, H·hd), b_O (d) (the identity and zeros
// for a variant with no out_proj). Conversions and the OV / attribution analyses read it.
struct ValuePath {
  torch::Tensor W_V, b_V, W_O, b_O;
};

// An intervention on every head's output (B, H, T, hd), before out_proj: head ablation and
// activation patching (causal.h) set it on a copy of a model; empty in training. It may return n
// stacked copies (n·B, H, T, hd), copy j in rows j·B … (j+1)·B − 1: the block then carries n copies
// of its residual stream on (TransformerBlockImpl::forward), so interventions that share a layer's
// input share its attention scores too.
using HeadHook = std::function<torch::Tensor(const torch::Tensor&)>;

// Interface of an attention variant: everything variant-specific lives behind it (names, labels
// and size formulas of each variant: variants.h). forward() writes the attention weights
// (B, H, T, T) into *weights when weights != nullptr (the softmax output, before dropout).
class CausalAttentionImpl : public torch::nn::Module {
 public:
  virtual torch::Tensor forward(const torch::Tensor& x, torch::Tensor* weights) = 0;  // (B,T,d)
  virtual Variant variant() const = 0;
  // Per-head bilinear forms M_h with scores_ij = x_iᵀ M_h x_j (before scaling): (H, d, d), float64.
  virtual torch::Tensor bilinear_forms() const = 0;
  // Singular values of every head's form (head = -1) or of one head: (H or 1, k) float64,
  // descending, k = the form's rank bound or d. A factored form goes through QR of its factors.
  virtual torch::Tensor form_singular_values(int head = -1) const = 0;
  virtual double form_eps() const = 0;  // ε of the dtype the form is stored in
  // The SVD of every head's form, float64 (a factored form through QR of its factors).
  virtual FormSvd form_svd() const = 0;
  // Every head's form ← its best rank-r approximation, in place (r ≥ the rank bound: unchanged,
  // exactly). `svd`: form_svd(bilinear_forms()) when the caller has it (a truncation curve computes
  // it once for every rank).
  virtual void truncate_forms(int64_t r, const FormSvd* svd = nullptr) = 0;
  // Every head's form ← M (H, d, d): exactly where the variant can represent M_h, else its best
  // approximation in the variant's family (standard: rank qk_head_dim). Conversions use this.
  virtual void set_forms(const torch::Tensor& M) = 0;
  // Head h's form ← its best rank-r approximation, from svd_h, its SVD (U (d, k), S (k), Vh (k, d));
  // the other heads untouched. A variant whose set_forms refits every head (standard: a dense SVD
  // per head) overrides it to write head h's factors from svd_h directly.
  virtual void truncate_head_form(int h, int64_t r, const FormSvd& svd_h) {
    auto all = bilinear_forms();
    all[h].copy_(reconstruct(svd_h, r));
    set_forms(all);
  }
  // The key-side score bias u_h of every head, (H, d) float64: scores_ij gain u_hᵀ·x_j. With
  // query/key biases, (W_q x_i + b_q)·(W_k x_j + b_k) = x_iᵀM_h x_j + b_qᵀW_k x_j + (terms of the
  // query alone, which softmax cancels), so u_h = W_key[h]ᵀ·b_query[h] is all of the biases that
  // matters. Zeros without qkv_bias. set_key_bias stores u exactly where the variant can (call it
  // after set_forms); conversions use both.
  virtual torch::Tensor key_bias() const = 0;
  virtual void set_key_bias(const torch::Tensor& u) = 0;
  // The value path (ValuePath above). set_value_path stores p's values (W_V, b_V where this block
  // has them) and, unless values_only, its output projection; a block without out_proj takes only
  // an identity W_O with a zero b_O and throws qk::Error otherwise (no exact conversion exists).
  // values_only: fair mode's shared start (the output projection stays the block's own).
  virtual ValuePath value_path() const;
  virtual void set_value_path(const ValuePath& p, bool values_only);

  // The value path every variant shares (the book's MultiHeadAttention's): W_value, out_proj,
  // dropout on the attention weights, and the causal mask buffer. W_value is null with
  // model.value_proj identity; merged-seed has neither (its heads hold their own W_value).
  torch::nn::Linear W_value{nullptr}, out_proj{nullptr};
  torch::nn::Dropout dropout{nullptr};
  torch::Tensor mask;  // (ctx, ctx) upper triangle of ones (above the diagonal)
  HeadHook head_hook;  // analyses only (not a parameter, not saved)
  bool causal = true;  // model.causal: false = an encoder, no mask (the mask buffer stays, unused)
  // Kernel set. false (the default, and train.mode=book): the book's ops, op for op, so results are
  // bit-identical to its PyTorch code. true (fair-mode training): the same maths with fewer,
  // fused ops split over LibTorch's threads (kernels.h) — scale and causal mask folded into one
  // batched GEMM with a cached additive mask, merged heads scored as one GEMM per sequence.
  // Rounding differs from the book's ops (≈1e-7 relative); results stay deterministic.
  bool fused = false;
  bool bf16 = false;  // with fused: projections in bfloat16 (kernels.h, train.precision)

  // Pre-softmax scores from per-head queries and keys (B, H, T, k) each: book kernels return
  // q·kᵀ (attend() masks and scales), fused kernels q·kᵀ/√head_dim + mask, ready for softmax.
  torch::Tensor qk_scores(const torch::Tensor& q, const torch::Tensor& k);
  // The merged code path's scores for S (H, d, d) in nn.Linear layout per head and an optional key
  // bias u (H, d): (X·S_hᵀ + u_h)·Xᵀ, all heads in one matmul: (B, H, T, T) (fused: scaled and
  // masked, as qk_scores).
  torch::Tensor merged_scores(const torch::Tensor& x, const torch::Tensor& S, const torch::Tensor& u);
  // Shared by every variant: causal mask and 1/√head_dim scaling (book kernels), softmax, optional
  // weight capture, dropout, weighted sum of values (B, H, T, hd), the head hook, out_proj (where
  // the block has one; else the heads' outputs concatenated, (B, T, H·hd)).
  torch::Tensor attend(torch::Tensor scores, const torch::Tensor& values, torch::Tensor* weights);
  // l(x), or with fused kernels the split GEMM parallel_linear (bf16: in bfloat16), kernels.h.
  torch::Tensor project(torch::nn::Linear& l, const torch::Tensor& x) const;

 protected:
  // Registers the value path, in the book's order (after the variant's own query/key weights).
  void register_value_path(const ModelConfig& cfg);
  // W_value·x (or x itself with value_proj identity), split into heads: (B, H, T, hd).
  torch::Tensor head_values(const torch::Tensor& x, int64_t n_heads, int64_t head_dim);
  int head_dim_ = 0;  // d / H: the score scale is 1/√head_dim_

 private:
  // Additive causal masks (0 on and below the diagonal, -inf above) for fused kernels, built once
  // per length: (T, T) and, for merged scores, (T·H, T) with row t·H + h = row t.
  torch::Tensor additive_mask(int64_t T, int64_t H, const torch::TensorOptions& opt);
  torch::Tensor add_mask_, add_mask_rows_;
};

// The book's MultiHeadAttention (chapter 3/4), with an optional query/key head size.
class StandardAttentionImpl : public CausalAttentionImpl {
 public:
  explicit StandardAttentionImpl(const ModelConfig& cfg);
  torch::Tensor forward(const torch::Tensor& x, torch::Tensor* weights) override;
  Variant variant() const override { return Variant::Standard; }
  torch::Tensor bilinear_forms() const override;
  torch::Tensor form_singular_values(int head) const override;
  double form_eps() const override;
  FormSvd form_svd() const override;
  void truncate_forms(int64_t r, const FormSvd* svd) override;
  void set_forms(const torch::Tensor& M) override;
  void truncate_head_form(int h, int64_t r, const FormSvd& svd_h) override;  // head h's factors only
  torch::Tensor key_bias() const override;
  void set_key_bias(const torch::Tensor& u) override;  // b_query[h] by least squares, b_key = 0
  // M_h = A_h·B_hᵀ with A_h = W_query[h]ᵀ, B_h = W_key[h]ᵀ: (H, d, qk) each.
  std::pair<torch::Tensor, torch::Tensor> factors() const;
  void set_factors(const std::pair<torch::Tensor, torch::Tensor>& AB);  // the inverse of factors()

  torch::nn::Linear W_query{nullptr}, W_key{nullptr};
  int n_heads, head_dim, qk_head_dim;
};
TORCH_MODULE(StandardAttention);

// Merged query-key attention: one d×d matrix per head, batched over heads.
class MergedAttentionImpl : public CausalAttentionImpl {
 public:
  explicit MergedAttentionImpl(const ModelConfig& cfg);
  torch::Tensor forward(const torch::Tensor& x, torch::Tensor* weights) override;
  Variant variant() const override { return Variant::Merged; }
  torch::Tensor bilinear_forms() const override;
  torch::Tensor form_singular_values(int head) const override;
  double form_eps() const override;
  FormSvd form_svd() const override;
  void truncate_forms(int64_t r, const FormSvd* svd) override;
  void set_forms(const torch::Tensor& M) override;
  torch::Tensor key_bias() const override;
  void set_key_bias(const torch::Tensor& u) override;

  torch::Tensor S;         // (H, d, d), nn.Linear(d, d) layout per head
  torch::Tensor key_bias_;  // (H, d) "key_bias", only with qkv_bias: scores_ij += u_hᵀ x_j
  int n_heads, head_dim, d;
};
TORCH_MODULE(MergedAttention);

// W_Q = W_K per head: scores = (X·W_hᵀ)(X·W_hᵀ)ᵀ, a symmetric PSD form of rank ≤ qk_head_dim.
class SharedQKAttentionImpl : public CausalAttentionImpl {
 public:
  explicit SharedQKAttentionImpl(const ModelConfig& cfg);
  torch::Tensor forward(const torch::Tensor& x, torch::Tensor* weights) override;
  Variant variant() const override { return Variant::SharedQK; }
  torch::Tensor bilinear_forms() const override;
  torch::Tensor form_singular_values(int head) const override;
  double form_eps() const override;
  FormSvd form_svd() const override;
  void truncate_forms(int64_t r, const FormSvd* svd) override;
  // The best PSD approximation of rank ≤ qk: sym(M)'s top qk non-negative eigenpairs (exact for a
  // PSD M of rank ≤ qk).
  void set_forms(const torch::Tensor& M) override;
  torch::Tensor key_bias() const override;  // u_h = W_hᵀ·b_h
  void set_key_bias(const torch::Tensor& u) override;
  torch::Tensor factor() const;  // W_hᵀ: (H, d, qk), M_h = factor·factorᵀ

  torch::nn::Linear W_qk{nullptr};
  int n_heads, head_dim, qk_head_dim;
};
TORCH_MODULE(SharedQKAttention);

// Merged heads with S_h = S_hᵀ: parameters are the upper triangles (H, d(d+1)/2).
class MergedSymAttentionImpl : public CausalAttentionImpl {
 public:
  explicit MergedSymAttentionImpl(const ModelConfig& cfg);
  torch::Tensor forward(const torch::Tensor& x, torch::Tensor* weights) override;
  Variant variant() const override { return Variant::MergedSym; }
  torch::Tensor bilinear_forms() const override;
  torch::Tensor form_singular_values(int head) const override;
  double form_eps() const override;
  FormSvd form_svd() const override;
  void truncate_forms(int64_t r, const FormSvd* svd) override;
  void set_forms(const torch::Tensor& M) override;  // sym(M) = (M + Mᵀ)/2: the nearest symmetric
  torch::Tensor key_bias() const override;
  void set_key_bias(const torch::Tensor& u) override;
  torch::Tensor full() const;  // S (H, d, d) from S_tri, differentiable

  torch::Tensor S_tri;      // (H, d(d+1)/2), row-major upper triangle (torch::triu_indices order)
  torch::Tensor key_bias_;  // (H, d), only with qkv_bias
  torch::Tensor rows_, cols_;  // triu_indices(d, d): (n,) each
  int n_heads, head_dim, d;
};
TORCH_MODULE(MergedSymAttention);

// Merged heads with a low-rank S: S_h = V_h·U_hᵀ, U and V of shape (H, d, qk).
class MergedLowRankAttentionImpl : public CausalAttentionImpl {
 public:
  explicit MergedLowRankAttentionImpl(const ModelConfig& cfg);
  torch::Tensor forward(const torch::Tensor& x, torch::Tensor* weights) override;
  Variant variant() const override { return Variant::MergedLowRank; }
  torch::Tensor bilinear_forms() const override;
  torch::Tensor form_singular_values(int head) const override;
  double form_eps() const override;
  FormSvd form_svd() const override;
  void truncate_forms(int64_t r, const FormSvd* svd) override;
  void set_forms(const torch::Tensor& M) override;  // best rank qk (as standard)
  torch::Tensor key_bias() const override;
  void set_key_bias(const torch::Tensor& u) override;

  torch::Tensor U, V;       // (H, d, qk): M_h = U_h·V_hᵀ
  torch::Tensor key_bias_;  // (H, d), only with qkv_bias
  int n_heads, head_dim, d, rank;
};
TORCH_MODULE(MergedLowRankAttention);

// Queries are the identity's h-th slice of x; only the keys are learned.
class IdentityQueryAttentionImpl : public CausalAttentionImpl {
 public:
  explicit IdentityQueryAttentionImpl(const ModelConfig& cfg);
  torch::Tensor forward(const torch::Tensor& x, torch::Tensor* weights) override;
  Variant variant() const override { return Variant::IdentityQuery; }
  torch::Tensor bilinear_forms() const override;
  torch::Tensor form_singular_values(int head) const override;
  double form_eps() const override;
  FormSvd form_svd() const override;
  void truncate_forms(int64_t r, const FormSvd* svd) override;
  // W_key[h] ← the slice rows of M_h (the nearest form of the family; exact when M_h is zero
  // outside them).
  void set_forms(const torch::Tensor& M) override;
  torch::Tensor key_bias() const override;  // u_h = W_key[h]ᵀ·query_bias[h]
  void set_key_bias(const torch::Tensor& u) override;

  torch::nn::Linear W_key{nullptr};
  torch::Tensor query_bias;  // (d), only with qkv_bias: queries are x[slice h] + query_bias[slice h]
  int n_heads, head_dim, d;
};
TORCH_MODULE(IdentityQueryAttention);

// Keys are the values (W_K = W_V; attention_sharing.cpp): scores = (X·W_query,hᵀ)(X·W_value,hᵀ)ᵀ.
// Forms are fitted through W_query alone, so truncation and conversions never touch the value path.
class SharedKVAttentionImpl : public CausalAttentionImpl {
 public:
  explicit SharedKVAttentionImpl(const ModelConfig& cfg);
  torch::Tensor forward(const torch::Tensor& x, torch::Tensor* weights) override;
  Variant variant() const override { return Variant::SharedKV; }
  torch::Tensor bilinear_forms() const override;
  torch::Tensor form_singular_values(int head) const override;
  double form_eps() const override;
  FormSvd form_svd() const override;
  // W_query[h]ᵀ ← M_r,h·pinv(W_value[h]): exact, since M's rows lie in W_value[h]'s row space.
  void truncate_forms(int64_t r, const FormSvd* svd) override;
  // W_query[h]ᵀ ← M_h·pinv(W_value[h]), W_value kept (it is the value path): the nearest form with
  // these keys — M_h projected on W_value[h]'s row space; exact when M_h's rows lie in it.
  void set_forms(const torch::Tensor& M) override;
  torch::Tensor key_bias() const override;  // u_h = W_value[h]ᵀ·b_query[h]
  void set_key_bias(const torch::Tensor& u) override;
  std::pair<torch::Tensor, torch::Tensor> factors() const;  // (W_query[h]ᵀ, W_value[h]ᵀ): (H, d, hd) each

  torch::nn::Linear W_query{nullptr};
  int n_heads, head_dim;
};
TORCH_MODULE(SharedKVAttention);

// Queries, keys and values from one matrix (W_Q = W_K = W_V = W_value; attention_sharing.cpp).
// Its form cannot change without changing its values: truncation and set_forms move W_value.
class SharedQKVAttentionImpl : public CausalAttentionImpl {
 public:
  explicit SharedQKVAttentionImpl(const ModelConfig& cfg);
  torch::Tensor forward(const torch::Tensor& x, torch::Tensor* weights) override;
  Variant variant() const override { return Variant::SharedQKV; }
  torch::Tensor bilinear_forms() const override;
  torch::Tensor form_singular_values(int head) const override;
  double form_eps() const override;
  FormSvd form_svd() const override;
  // W_value[h] ← its best rank-r approximation (then M_h's is too): the values are truncated with it.
  void truncate_forms(int64_t r, const FormSvd* svd) override;
  // The PSD part of sym(M_h) of rank ≤ head_dim (as shared-qk), factored as W_h = R·Λ^½·Qᵀ with
  // the rotation R nearest the current W_value[h] (orthogonal Procrustes), so the values move as
  // little as the form allows; exact (W_value unchanged) when M_h is W_value[h]ᵀ·W_value[h].
  void set_forms(const torch::Tensor& M) override;
  torch::Tensor key_bias() const override;  // u_h = W_value[h]ᵀ·b_value[h]
  void set_key_bias(const torch::Tensor& u) override;  // b_value by least squares
  torch::Tensor factor() const;  // W_value[h]ᵀ: (H, d, hd), M_h = factor·factorᵀ

  int n_heads, head_dim;
};
TORCH_MODULE(SharedQKVAttention);

// One head of the seed's MHA_alt1 (its CA_alt1): S = nn.Linear(d, d), W_value = nn.Linear(d, hd),
// both with qkv_bias; registered in the seed's order (S, W_value, dropout, mask).
class SeedHeadImpl : public torch::nn::Module {
 public:
  SeedHeadImpl(const ModelConfig& cfg);
  torch::nn::Linear S{nullptr}, W_value{nullptr};  // W_value null with model.value_proj identity
  torch::nn::Dropout dropout{nullptr};
  torch::Tensor mask;  // (ctx, ctx), as the seed registers it in every head
};
TORCH_MODULE(SeedHead);

// The seed experiment's merged attention, module for module (attention_seed.cpp). Book kernels run
// its ops head by head (scores S(x)·xᵀ (B, T, T), mask, softmax of scores/√hd, dropout drawn head by
// head, ·values, the heads concatenated); fused kernels stack the heads and take merged's path.
// Checkpoint names: att.heads.h.S.weight / .bias, att.heads.h.W_value.weight / .bias.
class MergedSeedAttentionImpl : public CausalAttentionImpl {
 public:
  explicit MergedSeedAttentionImpl(const ModelConfig& cfg);
  torch::Tensor forward(const torch::Tensor& x, torch::Tensor* weights) override;
  Variant variant() const override { return Variant::MergedSeed; }
  torch::Tensor bilinear_forms() const override;  // M_h = S_hᵀ, as merged
  torch::Tensor form_singular_values(int head) const override;
  double form_eps() const override;
  FormSvd form_svd() const override;
  void truncate_forms(int64_t r, const FormSvd* svd) override;
  void set_forms(const torch::Tensor& M) override;
  torch::Tensor key_bias() const override;  // u_h = S_h's bias
  void set_key_bias(const torch::Tensor& u) override;
  ValuePath value_path() const override;
  void set_value_path(const ValuePath& p, bool values_only) override;
  torch::Tensor stacked_S() const;  // (H, d, d), differentiable

  torch::nn::ModuleList heads{nullptr};
  std::vector<SeedHead> heads_;
  int n_heads, head_dim, d;
};
TORCH_MODULE(MergedSeedAttention);

std::shared_ptr<CausalAttentionImpl> make_attention(Variant v, const ModelConfig& cfg);

}  // namespace qk
