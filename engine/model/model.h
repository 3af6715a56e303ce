// QKLab engine — GPT in the chapter-4 architecture of "Build a Large Language Model (From
// Scratch)": token + learned position embeddings, embedding dropout, pre-LayerNorm blocks
// (eps 1e-5, learnable scale/shift), GELU (tanh), 4× feed-forward, dropout on attention weights and
// shortcuts, final norm, untied bias-free output head. Parameter names match the book's
// GPTModel.state_dict(); the attention submodule is either variant (attention.h).
#pragma once
#include <torch/torch.h>

#include "attention.h"
#include "config.h"

namespace qk {

class LayerNormImpl : public torch::nn::Module {
 public:
  explicit LayerNormImpl(int64_t dim);
  torch::Tensor forward(const torch::Tensor& x);
  torch::Tensor scale, shift;
  double eps = 1e-5;
  bool fused = false;  // at::layer_norm instead of the book's mean/var ops (CausalAttentionImpl::fused)
};
TORCH_MODULE(LayerNorm);

torch::Tensor gelu_tanh(const torch::Tensor& x);  // the book's GELU, op for op

class FeedForwardImpl : public torch::nn::Module {
 public:
  explicit FeedForwardImpl(int64_t d);
  torch::Tensor forward(const torch::Tensor& x);
  torch::nn::Sequential layers{nullptr};  // 0: Linear(d,4d), 1: GELU, 2: Linear(4d,d)
  bool fused = false;  // split-GEMM projections and the logistic GELU instead of the book's ops
  bool bf16 = false;   // with fused: the GEMMs in bfloat16
 private:
  torch::nn::Linear fc1_{nullptr}, fc2_{nullptr};
};
TORCH_MODULE(FeedForward);

class TransformerBlockImpl : public torch::nn::Module {
 public:
  TransformerBlockImpl(Variant v, const ModelConfig& cfg);
  // mlp_out (analyses): receives the feed-forward branch's output, what the block adds to the
  // residual stream after its attention (B, T, d).
  torch::Tensor forward(const torch::Tensor& x, torch::Tensor* attn_weights, torch::Tensor* mlp_out = nullptr);
  std::shared_ptr<CausalAttentionImpl> att;
  FeedForward ff{nullptr};
  LayerNorm norm1{nullptr}, norm2{nullptr};
  torch::nn::Dropout drop_shortcut{nullptr};
};
TORCH_MODULE(TransformerBlock);

// Puts a module in eval mode and without autograd for its lifetime; restores training mode when it
// ends, also when an exception leaves the scope.
class EvalScope {
 public:
  explicit EvalScope(torch::nn::Module& m) : m_(m), was_training_(m.is_training()) { m_.eval(); }
  ~EvalScope() {
    if (was_training_) m_.train();
  }
  EvalScope(const EvalScope&) = delete;
  EvalScope& operator=(const EvalScope&) = delete;

 private:
  torch::nn::Module& m_;
  bool was_training_;
  torch::NoGradGuard no_grad_;
};

// What a traced forward records for the analyses (logit lens, direct logit attribution): the
// embeddings' sum as it enters block 0, and per layer the residual stream after the block and the
// feed-forward branch's output. Every tensor (B, T, d). Each head's output comes from the
// attention's head_hook (causal.h).
struct ForwardTrace {
  torch::Tensor embed;
  std::vector<torch::Tensor> resid, mlp;  // [layer]
};

class GPTModelImpl : public torch::nn::Module {
 public:
  GPTModelImpl(Variant v, const ModelConfig& cfg);
  // in_idx (B, T) int64 -> logits (B, T, V). If attn != nullptr it receives one (B, H, T, T)
  // tensor per layer; trace, the residual streams (ForwardTrace).
  torch::Tensor forward(const torch::Tensor& in_idx, std::vector<torch::Tensor>* attn = nullptr,
                        ForwardTrace* trace = nullptr);
  // The model's read-out of a residual stream x (B, T, d): the final LayerNorm (recomputed on x)
  // and the unembedding, exactly the ops forward() ends with -> (B, T, V).
  torch::Tensor unembed(const torch::Tensor& x);
  Variant variant() const { return variant_; }
  const ModelConfig& config() const { return cfg_; }
  CausalAttentionImpl& attention(int layer) { return *blocks_.at(layer)->att; }
  TransformerBlockImpl& block(int layer) { return *blocks_.at(layer); }
  // Kernel set of every module (CausalAttentionImpl::fused): the trainer turns fused kernels on
  // for fair mode; book mode and models built elsewhere keep the book's ops.
  void set_fused_kernels(bool on, bool bf16 = false);  // bf16: train.precision (kernels.h)
  bool fused_kernels() const { return fused_; }

  torch::nn::Embedding tok_emb{nullptr}, pos_emb{nullptr};
  torch::nn::Dropout drop_emb{nullptr};
  torch::nn::ModuleList trf_blocks{nullptr};
  LayerNorm final_norm{nullptr};
  torch::nn::Linear out_head{nullptr};

 private:
  Variant variant_;
  ModelConfig cfg_;
  bool fused_ = false, bf16_ = false;
  std::vector<TransformerBlock> blocks_;
};
TORCH_MODULE(GPTModel);

torch::Dtype model_dtype(const ModelConfig& cfg);
// Number of trainable parameters.
int64_t parameter_count(torch::nn::Module& m);

}  // namespace qk
