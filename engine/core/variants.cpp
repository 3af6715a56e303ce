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
    case Variant::SharedQK:
      *info = {v, "shared-qk", "W_h·W_hᵀ", "WW", "#2ca02c",
               "W_Q = W_K per head (Reformer): a symmetric PSD form of rank ≤ qk_head_dim"};
      return true;
    case Variant::MergedSym:
      *info = {v, "merged-sym", "S_h = S_hᵀ", "Ssym", "#9467bd",
               "one symmetric d×d matrix per head (d(d+1)/2 parameters): rank ≤ d"};
      return true;
    case Variant::MergedLowRank:
      *info = {v, "merged-lowrank", "U_h·V_hᵀ", "UV", "#ff7f0e",
               "S_h = V_h·U_hᵀ with U_h, V_h of shape (d, qk_head_dim), in the merged code path"};
      return true;
    case Variant::IdentityQuery:
      *info = {v, "identity-query", "I_h·W_K,hᵀ", "IWk", "#8c564b",
               "W_Q fixed to the h-th slice of the identity, only W_K learned: rank ≤ head_dim"};
      return true;
    case Variant::SharedKV:
      *info = {v, "shared-kv", "W_Q,h·W_V,hᵀ", "WqWv", "#17becf",
               "the keys are the values (W_K = W_V): a form of rank ≤ head_dim, no W_K"};
      return true;
    case Variant::SharedQKV:
      *info = {v, "shared-qkv", "W_V,h·W_V,hᵀ", "WvWv", "#bcbd22",
               "queries = keys = values (one W_V): a symmetric PSD form of rank ≤ head_dim"};
      return true;
    case Variant::MergedSeed:
      *info = {v, "merged-seed", "S_h", "Sseed", "#e377c2",
               "the seed experiment's MHA_alt1: per-head S_h (d×d) and W_V,h modules, no out_proj"};
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

namespace {

// W_value (absent with value_proj identity) and out_proj (where the variant has one).
int64_t value_and_out_parameters(Variant v, const ModelConfig& m) {
  const int64_t d = m.emb_dim, bias = m.qkv_bias ? 1 : 0;
  const int64_t value = m.value_proj == "identity" ? 0 : d * d + bias * d;
  return value + (has_out_proj(v) ? d * d + d : 0);
}

}  // namespace

int64_t attention_parameters(Variant v, const ModelConfig& m) {
  const int64_t d = m.emb_dim, H = m.n_heads, qk = m.effective_qk_head_dim(), bias = m.qkv_bias ? 1 : 0;
  const int64_t own = [&]() -> int64_t {
    switch (v) {
      case Variant::Standard: return 2 * (d * H * qk + bias * H * qk);     // W_query, W_key (+ biases)
      case Variant::Merged: return H * d * d + bias * H * d;               // S and the key bias u
      case Variant::SharedQK: return d * H * qk + bias * H * qk;           // W_qk (+ bias)
      case Variant::MergedSym: return H * d * (d + 1) / 2 + bias * H * d;  // S's upper triangle, u
      case Variant::MergedLowRank: return 2 * H * d * qk + bias * H * d;   // U, V, u
      case Variant::IdentityQuery: return d * d + bias * 2 * d;            // W_key (+ bias), query_bias
      case Variant::SharedKV: return d * d + bias * d;                     // W_query (+ bias); keys are W_value's
      case Variant::SharedQKV: return 0;                                   // W_value serves all three
      case Variant::MergedSeed: return H * d * d + bias * H * d;           // the heads' S (+ biases)
    }
    return 0;
  }();
  return own + value_and_out_parameters(v, m);
}

int64_t attention_weight_uses(Variant v, const ModelConfig& m) {
  const int64_t d = m.emb_dim, H = m.n_heads, qk = m.effective_qk_head_dim();
  const int64_t value = m.value_proj == "identity" ? 0 : d * d;
  const int64_t own = [&]() -> int64_t {
    switch (v) {
      case Variant::Standard: return 2 * d * H * qk;  // queries and keys
      case Variant::Merged:
      case Variant::MergedSym:
      case Variant::MergedLowRank:
      case Variant::MergedSeed: return H * d * d;  // X·S for all heads (S built once per step)
      case Variant::SharedQK: return d * H * qk;      // one projection serves both sides
      case Variant::IdentityQuery: return d * d;      // keys only
      case Variant::SharedKV: return d * d;           // queries only: the values are the keys
      case Variant::SharedQKV: return 0;              // the values are queries and keys
    }
    return 0;
  }();
  return own + value + (has_out_proj(v) ? d * d : 0);
}

int64_t score_width(Variant v, const ModelConfig& m) {
  switch (v) {
    case Variant::Standard:
    case Variant::SharedQK: return m.effective_qk_head_dim();  // q_i·k_j over qk_head_dim
    case Variant::Merged:
    case Variant::MergedSym:
    case Variant::MergedLowRank:
    case Variant::MergedSeed: return m.emb_dim;  // (S_h x_i)·x_j over d
    case Variant::IdentityQuery: return m.head_dim();  // x_i[slice h]·k_j
    case Variant::SharedKV:
    case Variant::SharedQKV: return m.head_dim();  // keys are values, head_dim wide
  }
  return 0;
}

int64_t form_rank_bound(Variant v, const ModelConfig& m) {
  switch (v) {
    case Variant::Standard:
    case Variant::SharedQK:
    case Variant::MergedLowRank: return m.effective_qk_head_dim();
    case Variant::Merged:
    case Variant::MergedSym:
    case Variant::MergedSeed: return m.emb_dim;
    case Variant::IdentityQuery:
    case Variant::SharedKV:
    case Variant::SharedQKV: return m.head_dim();
  }
  return 0;
}

bool keys_are_values(Variant v) {
  switch (v) {
    case Variant::Standard:
    case Variant::Merged:
    case Variant::SharedQK:
    case Variant::MergedSym:
    case Variant::MergedLowRank:
    case Variant::IdentityQuery:
    case Variant::MergedSeed: return false;
    case Variant::SharedKV:
    case Variant::SharedQKV: return true;
  }
  return false;
}

bool has_out_proj(Variant v) {
  switch (v) {
    case Variant::Standard:
    case Variant::Merged:
    case Variant::SharedQK:
    case Variant::MergedSym:
    case Variant::MergedLowRank:
    case Variant::IdentityQuery:
    case Variant::SharedKV:
    case Variant::SharedQKV: return true;
    case Variant::MergedSeed: return false;  // the heads' outputs concatenated are the block's
  }
  return true;
}

}  // namespace qk
