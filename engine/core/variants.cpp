// QKLab engine — the list of attention variants (see variants.h).
#include "variants.h"

#include "error.h"

namespace qk {

namespace {

// Every enumerator of Variant (contiguous from 0) is known here; the switch makes a new one a
// compile error until it is described.
bool described(Variant v, VariantInfo* info) {
  switch (v) {
    case Variant::Standard:
      *info = {v, "standard", "W_Q,h·W_K,hᵀ", "WqWk", "#1f77b4",
               "separate W_Q and W_K per head: a form of rank ≤ qk_head_dim"};
      return true;
    case Variant::Merged:
      *info = {v, "merged", "S_h", "S", "#d62728", "one d×d matrix S_h per head: a form of rank ≤ d"};
      return true;
  }
  return false;  // past the last enumerator
}

}  // namespace

const std::vector<VariantInfo>& all_variants() {
  static const std::vector<VariantInfo> list = [] {
    std::vector<VariantInfo> out;
    VariantInfo info{};
    for (int i = 0; described(static_cast<Variant>(i), &info); ++i) out.push_back(info);
    return out;
  }();
  return list;
}

const VariantInfo& variant_info(Variant v) {
  for (const auto& i : all_variants())
    if (i.variant == v) return i;
  throw Error("internal: variant " + std::to_string(static_cast<int>(v)) + " is not in all_variants()");
}

std::string variant_name(Variant v) { return variant_info(v).name; }

Variant parse_variant(const std::string& s) {
  std::string names;
  for (const auto& i : all_variants()) {
    if (s == i.name) return i.variant;
    names += std::string(names.empty() ? "" : ", ") + "'" + i.name + "'";
  }
  throw Error("unknown variant '" + s + "': expected one of " + names);
}

int64_t attention_parameters(Variant v, const ModelConfig& m) {
  const int64_t d = m.emb_dim, H = m.n_heads, qk = m.effective_qk_head_dim(), bias = m.qkv_bias ? 1 : 0;
  const int64_t value_and_out = (d * d + bias * d) + (d * d + d);
  switch (v) {
    case Variant::Standard: return 2 * (d * H * qk + bias * H * qk) + value_and_out;
    case Variant::Merged: return H * d * d + bias * H * d + value_and_out;  // S and the key bias u
  }
  return 0;
}

int64_t score_width(Variant v, const ModelConfig& m) {
  switch (v) {
    case Variant::Standard: return m.effective_qk_head_dim();  // q_i·k_j over qk_head_dim
    case Variant::Merged: return m.emb_dim;                    // (S_h x_i)·x_j over d
  }
  return 0;
}

int64_t form_rank_bound(Variant v, const ModelConfig& m) {
  switch (v) {
    case Variant::Standard: return m.effective_qk_head_dim();
    case Variant::Merged: return m.emb_dim;
  }
  return 0;
}

}  // namespace qk
