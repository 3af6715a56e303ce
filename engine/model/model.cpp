// QKLab engine — the book's GPT model with pluggable attention.
#include "model.h"

#include <cmath>

#include "kernels.h"

namespace qk {

LayerNormImpl::LayerNormImpl(int64_t dim) {
  scale = register_parameter("scale", torch::ones({dim}));
  shift = register_parameter("shift", torch::zeros({dim}));
}

torch::Tensor LayerNormImpl::forward(const torch::Tensor& x) {
  if (fused) return torch::layer_norm(x, {scale.size(0)}, scale, shift, eps);
  auto mean = x.mean({-1}, /*keepdim=*/true);
  auto var = x.var({-1}, /*unbiased=*/false, /*keepdim=*/true);
  auto norm_x = (x - mean) / torch::sqrt(var + eps);
  return scale * norm_x + shift;
}

torch::Tensor gelu_tanh(const torch::Tensor& x) {
  // 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))) with √(2/π) computed as a 0-dim tensor, like
  // torch.sqrt(torch.tensor(2.0 / torch.pi)) in the book.
  auto c = torch::sqrt(torch::tensor(2.0 / M_PI, torch::TensorOptions().dtype(x.dtype())));
  return 0.5 * x * (1 + torch::tanh(c * (x + 0.044715 * torch::pow(x, 3))));
}

FeedForwardImpl::FeedForwardImpl(int64_t d) {
  // Built one statement at a time: the order of function-argument evaluation is unspecified in
  // C++, and the construction order is the order of random draws.
  torch::nn::Linear fc1(d, 4 * d);
  torch::nn::Linear fc2(4 * d, d);
  layers = register_module("layers", torch::nn::Sequential(fc1, torch::nn::Functional(gelu_tanh), fc2));
  fc1_ = fc1;
  fc2_ = fc2;
}

torch::Tensor FeedForwardImpl::forward(const torch::Tensor& x) {
  if (!fused) return layers->forward(x);
  auto h = parallel_linear(x, fc1_->weight, fc1_->bias, bf16);              // (B, T, 4d)
  return parallel_linear(gelu_tanh_fast(h), fc2_->weight, fc2_->bias, bf16);  // (B, T, d)
}

TransformerBlockImpl::TransformerBlockImpl(Variant v, const ModelConfig& cfg) {
  att = register_module("att", make_attention(v, cfg));
  ff = register_module("ff", FeedForward(cfg.emb_dim));
  norm1 = register_module("norm1", LayerNorm(cfg.emb_dim));
  norm2 = register_module("norm2", LayerNorm(cfg.emb_dim));
  drop_shortcut = register_module("drop_shortcut", torch::nn::Dropout(cfg.drop_rate));
}

torch::Tensor TransformerBlockImpl::forward(const torch::Tensor& in, torch::Tensor* attn_weights,
                                            torch::Tensor* mlp_out) {
  auto shortcut = in;
  auto x = norm1(in);
  x = att->forward(x, attn_weights);
  x = drop_shortcut(x);
  if (x.size(0) != shortcut.size(0))  // a head hook stacked n copies (attention.h): (n·B, T, d)
    shortcut = shortcut.repeat({x.size(0) / shortcut.size(0), 1, 1});
  x = x + shortcut;
  shortcut = x;
  x = norm2(x);
  x = ff(x);
  x = drop_shortcut(x);
  if (mlp_out) *mlp_out = x;
  return x + shortcut;
}

GPTModelImpl::GPTModelImpl(Variant v, const ModelConfig& cfg) : variant_(v), cfg_(cfg) {
  // Construction order = the book's __init__ order = the order of random draws.
  tok_emb = register_module("tok_emb", torch::nn::Embedding(cfg.vocab_size, cfg.emb_dim));
  pos_emb = register_module("pos_emb", torch::nn::Embedding(cfg.context_length, cfg.emb_dim));
  drop_emb = register_module("drop_emb", torch::nn::Dropout(cfg.drop_rate));
  trf_blocks = torch::nn::ModuleList();
  for (int i = 0; i < cfg.n_layers; ++i) {
    blocks_.emplace_back(v, cfg);
    trf_blocks->push_back(blocks_.back());
  }
  trf_blocks = register_module("trf_blocks", trf_blocks);
  final_norm = register_module("final_norm", LayerNorm(cfg.emb_dim));
  out_head = register_module(
      "out_head", torch::nn::Linear(torch::nn::LinearOptions(cfg.emb_dim, cfg.vocab_size).bias(false)));
  if (model_dtype(cfg) != torch::kFloat32) to(model_dtype(cfg));
}

torch::Tensor GPTModelImpl::forward(const torch::Tensor& in_idx, std::vector<torch::Tensor>* attn,
                                    ForwardTrace* trace) {
  const int64_t T = in_idx.size(1);
  TORCH_CHECK(T <= cfg_.context_length, "sequence length ", T, " exceeds context_length ",
              cfg_.context_length);
  auto tok_embeds = tok_emb(in_idx);  // (B, T, d)
  auto pos_embeds = pos_emb(torch::arange(T, torch::TensorOptions().device(in_idx.device())));
  auto x = tok_embeds + pos_embeds;
  x = drop_emb(x);
  if (attn) attn->clear();
  if (trace) *trace = {x, {}, {}};
  for (auto& block : blocks_) {
    torch::Tensor w, mlp;
    x = block->forward(x, attn ? &w : nullptr, trace ? &mlp : nullptr);
    if (attn) attn->push_back(w);
    if (trace) {
      trace->resid.push_back(x);
      trace->mlp.push_back(mlp);
    }
  }
  return unembed(x);
}

torch::Tensor GPTModelImpl::unembed(const torch::Tensor& in) {
  auto x = final_norm(in);
  return fused_ ? parallel_linear(x, out_head->weight, {}, bf16_) : out_head(x);  // (B, T, V)
}

void GPTModelImpl::set_fused_kernels(bool on, bool bf16) {
  fused_ = on;
  bf16_ = on && bf16;
  for (auto& b : blocks_) {
    b->att->fused = on;
    b->att->bf16 = bf16_;
    b->ff->fused = on;
    b->ff->bf16 = bf16_;
    b->norm1->fused = on;
    b->norm2->fused = on;
  }
  final_norm->fused = on;
}

torch::Dtype model_dtype(const ModelConfig& cfg) {
  return cfg.dtype == "float64" ? torch::kFloat64 : torch::kFloat32;
}

int64_t parameter_count(torch::nn::Module& m) {
  int64_t n = 0;
  for (const auto& p : m.parameters()) n += p.numel();
  return n;
}

}  // namespace qk
