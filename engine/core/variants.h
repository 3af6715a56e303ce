// QKLab engine — the one list of attention variants, torch-free: names, plot labels, colours and
// the size formulas. The CLI's validation, the experiment panel's checkboxes, plot colours and
// legends, and the size estimates all read this list; the maths of each variant lives in its
// attention module (attention.h). Every function here switches over Variant exhaustively
// (-Werror=switch), so adding a variant to the enum makes the compiler name each place that must
// handle it.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "config.h"

namespace qk {

struct VariantInfo {
  Variant variant;
  const char* name;        // config and file names: "standard"
  const char* form_label;  // its per-head QK matrix in plots: "W_Q,h·W_K,hᵀ"
  const char* matrix_key;  // the matrix column of CSV files: "WqWk"
  const char* color;       // plot colour, #rrggbb
  const char* summary;     // one line for tooltips and help
};

const std::vector<VariantInfo>& all_variants();  // in enum order
const VariantInfo& variant_info(Variant v);

// Parameters of one attention block of this variant (W_Q/W_K or S, W_V, out_proj, biases).
int64_t attention_parameters(Variant v, const ModelConfig& m);
// Multiply-adds per token of one attention block's weight matrices (projections and out_proj):
// differs from the parameter count where a variant stores fewer numbers than it multiplies by
// (merged-sym, merged-lowrank build a dense S_h) or multiplies by none (identity-query's W_Q).
int64_t attention_weight_uses(Variant v, const ModelConfig& m);
// Size of the query-key product per head and key: the FLOPs of one score are 2× this.
int64_t score_width(Variant v, const ModelConfig& m);
// The largest rank a head's form can have.
int64_t form_rank_bound(Variant v, const ModelConfig& m);
// Its keys are its values (shared-kv, shared-qkv): it needs W_value (no value_proj identity), and
// qk_head_dim does not apply.
bool keys_are_values(Variant v);
// It has an output projection out_proj (all but merged-seed, whose heads' outputs concatenated are
// the block's output).
bool has_out_proj(Variant v);

}  // namespace qk
