// QKLab engine — conversions between attention variants (see convert.h).
#include "convert.h"

#include "attention.h"
#include "error.h"

namespace qk {

GPTModel convert_model(GPTModelImpl& src, Variant to, int qk_head_dim) {
  ModelConfig cfg = src.config();
  cfg.qk_head_dim = qk_head_dim;
  GPTModel dst(to, cfg);
  torch::NoGradGuard ng;
  auto from = src.named_parameters();
  for (auto& p : dst->named_parameters()) {
    if (from.contains(p.key()) && from[p.key()].sizes() == p.value().sizes()) p.value().copy_(from[p.key()]);
    else p.value().zero_();  // the target's own query/key weights (set below) and biases (none in the source)
  }
  for (int l = 0; l < cfg.n_layers; ++l) {
    // The value path first (shared-kv's and shared-qkv's forms are made of W_value), then the forms.
    dst->attention(l).set_value_path(src.attention(l).value_path(), /*values_only=*/false);
    dst->attention(l).set_forms(src.attention(l).bilinear_forms());
    dst->attention(l).set_key_bias(src.attention(l).key_bias());  // after the forms (standard solves for b_query)
  }
  dst->to(src.parameters().front().device());
  return dst;
}

GPTModel convert_to_merged(GPTModel& standard) {
  if (standard->variant() == Variant::Merged) throw Error("convert: the source model is already merged");
  return convert_model(*standard, Variant::Merged, 0);
}

GPTModel merged_to_standard(GPTModelImpl& merged, int64_t r) {
  if (merged.variant() != Variant::Merged) throw Error("merged_to_standard: the source model is not merged");
  const int d = merged.config().emb_dim;
  if (r <= 0 || r > d) throw Error("merged_to_standard: rank must be in [1, " + std::to_string(d) + "]");
  return convert_model(merged, Variant::Standard, static_cast<int>(r));
}

}  // namespace qk
