// QKLab engine — size estimates (see estimates.h).
#include "estimates.h"

#include "names.h"
#include "variants.h"

namespace qk {

SizeEstimate estimate(const ExperimentConfig& c, Variant v, int64_t vocab) {
  const auto& m = c.model;
  const int64_t d = m.emb_dim, H = m.n_heads, L = m.n_layers, T = m.context_length;
  const int64_t att = attention_parameters(v, m);  // one block's attention
  const double score_dim = double(score_width(v, m));
  const int64_t ff = d * 4 * d + 4 * d + 4 * d * d + d;
  const int64_t block = att + ff + 4 * d;
  SizeEstimate e;
  e.parameters = vocab * d + T * d + L * block + 2 * d + d * vocab;
  // Forward FLOPs per token: 2 per weight use (embeddings are lookups) + attention scores/values
  // over an average context of T/2.
  const int64_t uses = attention_weight_uses(v, m) + ff;  // one block's multiply-adds per token
  const double dense = 2.0 * double(L * uses + d * vocab);
  const double scores = 2.0 * H * score_dim * (T / 2.0);
  const double mix = 2.0 * d * (T / 2.0);
  e.flops_per_token = 3.0 * (dense + L * (scores + mix));
  e.attention_flops_per_token = 3.0 * L * (2.0 * double(attention_weight_uses(v, m)) + scores + mix);
  const double B = c.train.batch_size;
  const double acts = B * T * (L * (16.0 * d + 2.0 * H * T) + 2.0 * vocab) * 4.0;
  e.memory_bytes = 4.0 * 4.0 * double(e.parameters) + acts;
  return e;
}

int64_t task_vocab_size(const DataConfig& d) {
  return is_language_kind(d.kind) ? 0 : task_shape(d).vocab_size;
}

}  // namespace qk
