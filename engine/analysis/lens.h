// QKLab engine — reading the residual stream, for any variant: the logit lens and direct logit
// attribution (DLA), as TransformerLens defines them, and the tensors `forward --lens` writes.
//   logit lens   the stream x_l after block l (B, T, d), read out through the final LayerNorm
//                recomputed on x_l — its own mean and σ, not the last layer's (TransformerLens
//                issue #1076) — and the unembedding: unembed(x_l) (B, T, V). For the last layer this
//                is the model's forward, op for op, so it equals the logits exactly.
//   DLA          the final stream is a sum of parts: the embeddings, every head's write
//                z_h·W_O,hᵀ (W_O,h the head's columns of out_proj), every layer's out_proj bias and
//                feed-forward branch. Through the final LayerNorm with its σ frozen at the clean run
//                each part c gives γ·(c − mean_d c)/σ_final, and with the shift β these add up to
//                LN(x_final); dotted with W_U[a] − W_U[w] each part's share of the logit
//                difference logit[a] − logit[w]. Computed in float64.
// Row-vector convention as in circuits.h.
#pragma once
#include <torch/torch.h>

#include <functional>
#include <string>
#include <vector>

#include "analysis.h"
#include "data.h"
#include "model.h"
#include "tokenizer.h"
#include "views.h"

namespace qk {

// One traced evaluation of ids (B, T): logits, residual streams, every head's output.
struct LensRun {
  torch::Tensor logits;              // (B, T, V)
  ForwardTrace trace;
  std::vector<torch::Tensor> heads;  // [layer] (B, H, T, hd), before out_proj
};
LensRun traced_run(GPTModelImpl& m, const torch::Tensor& ids);

// (L, B, T, V) in the model's dtype: unembed(x_l) for every layer.
torch::Tensor logit_lens(GPTModelImpl& m, const LensRun& r);
// Each head's write to the residual stream from its output z (..., H, hd) -> (..., H, d), float64.
torch::Tensor head_writes(GPTModelImpl& m, int layer, const torch::Tensor& z);
// σ_final = sqrt(var_d(x) + ε) of the final stream x (..., d) -> (..., 1), float64.
torch::Tensor final_sigma(GPTModelImpl& m, const torch::Tensor& x);
// A part c (..., d) through the final LayerNorm frozen at σ (broadcast over c's leading dims):
// γ·(c − mean_d c)/σ, float64.
torch::Tensor frozen_final_ln(GPTModelImpl& m, const torch::Tensor& c, const torch::Tensor& sigma);
// (L, H, B, T, V) float64: every head's write through the frozen final LayerNorm and W_U.
torch::Tensor head_logits(GPTModelImpl& m, const LensRun& r);

// The logit lens of one sequence (tokens.targets name what each position predicts; top: tokens
// read out per cell) and over the validation batches per layer. label names a token.
LogitLensView model_logit_lens(GPTModelImpl& m, const std::string& variant, const PromptTokens& tokens,
                               const std::vector<Batch>& probe, const std::function<std::string(int64_t)>& label,
                               int top = 5);

// What a prompt's attribution compares: at `position` (−1: the last position that has a target,
// else the last), logit[answer] − logit[wrong]; answer −1: the target there, else the model's top
// token; wrong −1: the most likely token other than the answer.
struct AttributionTarget {
  int64_t position = -1, answer = -1, wrong = -1;
};
// A token the user names: text runs, a text that encodes to exactly one token; tasks, its id. ""
// is −1 (the default). `what` names the field in the error.
int64_t named_token(const Tokenizer* tokenizer, const std::string& text, const std::string& what, int64_t vocab);
// Over the validation batches: at every scored position the target against the most likely wrong
// token, means of every part (source "validation").
AttributionView attribution_validation(GPTModelImpl& m, const std::string& variant, const std::vector<Batch>& probe);
// One sequence (source "prompt").
AttributionView attribution_prompt(GPTModelImpl& m, const std::string& variant, const PromptTokens& tokens,
                                   const AttributionTarget& t, const std::function<std::string(int64_t)>& label);

}  // namespace qk
