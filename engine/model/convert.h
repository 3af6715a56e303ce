// QKLab engine — conversions between attention variants, in one place. Every conversion is the
// same recipe: a model of the target variant, every shared weight copied, and each layer's
// per-head forms handed over with set_forms() (attention.h), which stores them exactly where the
// target can represent them and as the best approximation in its family otherwise.
//   standard → merged: S_h = W_key[h]ᵀ·W_query[h] and, with qkv_bias, the key bias
//   u_h = W_key[h]ᵀ·b_query[h]: exact (the same function up to rounding); the rest of the query/key
//   biases only shifts each query's scores by a constant, which softmax cancels.
//   merged → standard at rank r (qk_head_dim = r): W_query[h] = Σ_r^½·U_rᵀ, W_key[h] = Σ_r^½·V_rᵀ
//   from M_h = S_hᵀ = U·Σ·Vᵀ: the best rank-r form; at r = d the same function.
#pragma once
#include "config.h"
#include "model.h"

namespace qk {

// `to` with its qk_head_dim (0 = d/H; used by the standard target only).
GPTModel convert_model(GPTModelImpl& src, Variant to, int qk_head_dim = 0);
GPTModel convert_to_merged(GPTModel& standard);                    // exact; throws if already merged
GPTModel merged_to_standard(GPTModelImpl& merged, int64_t r);       // throws unless merged, r in [1, d]

}  // namespace qk
