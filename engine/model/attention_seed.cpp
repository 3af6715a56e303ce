// QKLab engine — merged-seed: the merged attention of the experiment that started QKLab, module for
// module (issue 22 quotes its Python: CA_alt1 heads in an MHA_alt1 that concatenates them).
//   per head h: values = W_value_h(x)                     (B, T, hd)
//               scores = S_h(x)·xᵀ = (x·S_hᵀ + b_h)·xᵀ    (B, T, T): M_h = S_hᵀ, key bias u_h = b_h
//               context_h = dropout(softmax(mask(scores)/√hd))·values
//   output = [context_0, …, context_{H-1}]                 (B, T, H·hd): no out_proj
// Book kernels run exactly these ops head by head, so that book mode (its draws: S_0, W_value_0,
// S_1, …; one dropout mask per head) is the seed's run bit for bit; fused kernels stack the heads
// into merged's code path (one GEMM for every head's S_h x).
#include "attention.h"

#include <cmath>

#include "error.h"
#include "kernels.h"
#include "linalg.h"

namespace qk {

SeedHeadImpl::SeedHeadImpl(const ModelConfig& cfg) {
  const int d = cfg.emb_dim, hd = cfg.head_dim();
  S = register_module("S", torch::nn::Linear(torch::nn::LinearOptions(d, d).bias(cfg.qkv_bias)));
  if (cfg.value_proj != "identity")
    W_value = register_module("W_value", torch::nn::Linear(torch::nn::LinearOptions(d, hd).bias(cfg.qkv_bias)));
  dropout = register_module("dropout", torch::nn::Dropout(cfg.drop_rate));
  mask = register_buffer("mask", torch::triu(torch::ones({cfg.context_length, cfg.context_length}), 1));
}

MergedSeedAttentionImpl::MergedSeedAttentionImpl(const ModelConfig& cfg)
    : n_heads(cfg.n_heads), head_dim(cfg.head_dim()), d(cfg.emb_dim) {
  head_dim_ = head_dim;
  causal = cfg.causal;
  heads = torch::nn::ModuleList();
  for (int h = 0; h < n_heads; ++h) {  // the seed's draw order: S_h, then W_value_h, head by head
    heads_.emplace_back(cfg);
    heads->push_back(heads_.back());
  }
  heads = register_module("heads", heads);
  dropout = heads_.front()->dropout;  // fused kernels' attend(): one mask over (B, H, T, T)
  mask = heads_.front()->mask;
}

torch::Tensor MergedSeedAttentionImpl::stacked_S() const {
  std::vector<torch::Tensor> s;
  for (const auto& h : heads_) s.push_back(h->S->weight);
  return torch::stack(s);  // (H, d, d)
}

torch::Tensor MergedSeedAttentionImpl::forward(const torch::Tensor& x, torch::Tensor* weights) {
  const int64_t B = x.size(0), T = x.size(1);
  if (fused) {
    torch::Tensor u;  // (H, d)
    if (heads_.front()->S->bias.defined()) {
      std::vector<torch::Tensor> b;
      for (const auto& h : heads_) b.push_back(h->S->bias);
      u = torch::stack(b);
    }
    auto scores = merged_scores(x, stacked_S(), u);  // (B, H, T, T), scaled and masked
    torch::Tensor v = x;                             // (B, T, H·hd)
    if (heads_.front()->W_value) {
      std::vector<torch::Tensor> w, b;
      for (const auto& h : heads_) {
        w.push_back(h->W_value->weight);
        if (h->W_value->bias.defined()) b.push_back(h->W_value->bias);
      }
      v = parallel_linear(x, torch::cat(w), b.empty() ? torch::Tensor() : torch::cat(b), bf16);
    }
    return attend(scores, v.view({B, T, n_heads, head_dim}).transpose(1, 2), weights);  // (B, T, H·hd)
  }
  // The seed's CA_alt1.forward, op for op, head by head.
  const auto mask_bool = mask.to(torch::kBool).index({torch::indexing::Slice(0, T), torch::indexing::Slice(0, T)});
  std::vector<torch::Tensor> context, w;
  for (int64_t h = 0; h < n_heads; ++h) {
    auto& head = heads_[h];
    auto values = head->W_value ? head->W_value(x) : x.narrow(-1, h * head_dim, head_dim);  // (B, T, hd)
    auto scores = torch::matmul(head->S(x), x.transpose(1, 2));                             // (B, T, T)
    if (causal) scores.masked_fill_(mask_bool, -std::numeric_limits<double>::infinity());
    auto attn = torch::softmax(scores / std::pow(static_cast<double>(head_dim), 0.5), -1);
    if (weights) w.push_back(attn.detach());
    attn = head->dropout(attn);
    context.push_back(torch::matmul(attn, values));  // (B, T, hd)
  }
  if (weights) *weights = torch::stack(w, 1);  // (B, H, T, T)
  if (!head_hook) return torch::cat(context, -1);  // (B, T, H·hd)
  auto c = head_hook(torch::stack(context, 1));   // (B, H, T, hd) in, (n·B, H, T, hd) out: ablation / patching
  return c.transpose(1, 2).contiguous().view({c.size(0), T, -1});
}

torch::Tensor MergedSeedAttentionImpl::bilinear_forms() const {
  return stacked_S().detach().to(torch::kFloat64, false, true).transpose(1, 2);  // (H, d, d): M_h = S_hᵀ, a copy
}

torch::Tensor MergedSeedAttentionImpl::form_singular_values(int head) const {
  torch::NoGradGuard ng;
  if (head >= 0) return dense_singular_values(heads_.at(head)->S->weight.detach()).unsqueeze(0);  // (1, d)
  return dense_singular_values(stacked_S().detach());                                            // (H, d)
}

double MergedSeedAttentionImpl::form_eps() const { return dtype_eps(heads_.front()->S->weight); }

FormSvd MergedSeedAttentionImpl::form_svd() const {
  torch::NoGradGuard ng;
  return qk::form_svd(bilinear_forms());
}

void MergedSeedAttentionImpl::truncate_forms(int64_t r, const FormSvd* svd) {
  if (r >= d) return;  // full rank: the identity, exactly
  torch::NoGradGuard ng;
  const auto M = svd ? reconstruct(*svd, r) : truncate_dense(bilinear_forms(), r);  // (H, d, d)
  set_forms(M);
  if (r == 0 && heads_.front()->S->bias.defined())  // rank 0: no score at all, as for merged
    for (auto& h : heads_) h->S->bias.zero_();
}

void MergedSeedAttentionImpl::set_forms(const torch::Tensor& M) {
  torch::NoGradGuard ng;
  const auto m = M.to(torch::kFloat64);  // (H, d, d)
  for (int64_t h = 0; h < n_heads; ++h) {
    auto& w = heads_[h]->S->weight;
    w.copy_(m[h].transpose(0, 1).to(w.dtype()));  // S_h = M_hᵀ, exactly
  }
}

torch::Tensor MergedSeedAttentionImpl::key_bias() const {
  if (!heads_.front()->S->bias.defined()) return torch::zeros({n_heads, d}, torch::kFloat64);
  std::vector<torch::Tensor> b;
  for (const auto& h : heads_) b.push_back(h->S->bias.detach().to(torch::kFloat64));
  return torch::stack(b);  // (H, d)
}

void MergedSeedAttentionImpl::set_key_bias(const torch::Tensor& u) {
  if (!heads_.front()->S->bias.defined()) return;  // no bias to hold it: a conversion drops u
  torch::NoGradGuard ng;
  for (int64_t h = 0; h < n_heads; ++h) heads_[h]->S->bias.copy_(u[h].to(heads_[h]->S->bias.dtype()));
}

ValuePath MergedSeedAttentionImpl::value_path() const {
  ValuePath p;
  const int64_t n = n_heads * head_dim;
  if (heads_.front()->W_value) {
    std::vector<torch::Tensor> w, b;
    for (const auto& h : heads_) {
      w.push_back(h->W_value->weight.detach().to(torch::kFloat64));
      b.push_back(h->W_value->bias.defined() ? h->W_value->bias.detach().to(torch::kFloat64)
                                             : torch::zeros({head_dim}, torch::kFloat64));
    }
    p.W_V = torch::cat(w);  // (H·hd, d)
    p.b_V = torch::cat(b);  // (H·hd)
  } else {
    p.W_V = torch::eye(d, torch::kFloat64);
    p.b_V = torch::zeros({n}, torch::kFloat64);
  }
  p.W_O = torch::eye(d, n, torch::kFloat64);  // no out_proj: the heads concatenated
  p.b_O = torch::zeros({d}, torch::kFloat64);
  return p;
}

void MergedSeedAttentionImpl::set_value_path(const ValuePath& p, bool values_only) {
  if (!values_only &&
      (!torch::equal(p.W_O, torch::eye(d, n_heads * head_dim, torch::kFloat64)) || p.b_O.abs().max().item<double>() != 0))
    throw Error("convert: merged-seed has no output projection: only a model whose out_proj is the identity with a zero bias "
                "converts to it exactly");
  if (!heads_.front()->W_value) return;
  torch::NoGradGuard ng;
  for (int64_t h = 0; h < n_heads; ++h) {
    auto& l = heads_[h]->W_value;
    l->weight.copy_(p.W_V.narrow(0, h * head_dim, head_dim).to(l->weight.dtype()));
    if (l->bias.defined()) l->bias.copy_(p.b_V.narrow(0, h * head_dim, head_dim).to(l->bias.dtype()));
  }
}

}  // namespace qk
