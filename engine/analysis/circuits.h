// QKLab engine — circuits through the embeddings and composition between heads (the factored-
// matrix view of Elhage et al. 2021 / TransformerLens), for any variant. Row-vector convention:
// a head's QK form is M_h (score = x_i·M_h·x_jᵀ) and its OV matrix OV_h = W_V,hᵀ·W_O,hᵀ (d×d,
// the residual x writes x·OV_h), W_V,h the head's rows of W_value (the identity's rows with
// value_proj identity), W_O,h its columns of out_proj.
//   token QK circuit  E_l·M_h·E_lᵀ (V×V), E_l = LN₁ of layer l applied to each token embedding
//                     (the direct path of a token, without position)
//   token OV circuit  E_l·OV_h·diag(γ_f)·W_Uᵀ (V×V), γ_f the final LayerNorm's scale
// Neither V×V matrix is formed: the token spaces (the normalised embeddings with a ones column, and
// W_U·diag(γ_f)) are given orthonormal bases once per model, so each head's circuit is a core of
// side ≤ d+1 (factored SVD, linalg.h), and only its read-out directions are mapped back to the
// vocabulary. A QK form of rank above kReadoutFormRank (merged at d > 256) is read from its
// leading kReadoutFormRank directions, said in the read-out (form_rank_read of form_rank).
// Composition of an earlier head a with a later head b (any layers l_a < l_b):
//   Q: ‖OV_a·M_b‖_F, K: ‖OV_a·M_bᵀ‖_F, V: ‖OV_a·OV_b‖_F, each over the product of the norms;
// each ‖OV_a·X‖_F² an inner product ⟨P_a, X·Xᵀ⟩ of d×d Gram matrices (P_a = OV_a-side Gram from the
// factors' QR), all pairs of two layers in one matrix product.
#pragma once
#include <torch/torch.h>

#include <functional>
#include <string>

#include "model.h"
#include "tokenizer.h"
#include "views.h"

namespace qk {

// The most directions of a QK form a token read-out uses (its leading ones).
constexpr int64_t kReadoutFormRank = 256;
// Every layer's form SVD (attention(l).form_svd()), computed once for the analyses that share it.
std::vector<FormSvd> model_form_svds(GPTModelImpl& m);
// ‖L·R‖_F / (‖L‖_F·‖R‖_F) of two dense matrices (the definition; the model code uses factors).
double composition_score(const torch::Tensor& L, const torch::Tensor& R);
// OV_h of every head as factors: A (H, d, hd), B (H, d, hd) with OV_h = A_h·B_hᵀ. float64.
std::pair<torch::Tensor, torch::Tensor> ov_factors(GPTModelImpl& m, int layer);
// Every head's composition scores with every head of every later layer.
std::vector<CompositionScore> composition_scores(GPTModelImpl& m);
std::vector<CompositionScore> composition_scores(GPTModelImpl& m, const std::vector<FormSvd>& qk);
// The score of independent Gaussian matrices of the model's shapes (mean of Q, K, V; fixed seed).
double composition_baseline(GPTModelImpl& m);
// Read-outs: `directions` leading singular directions of each head's token QK and OV circuits,
// `top` tokens each. label(id) names a token. on_head hears each (layer, head) done.
std::vector<CircuitReadout> circuit_readouts(GPTModelImpl& m, const std::function<std::string(int64_t)>& label,
                                             int directions = 3, int top = 5,
                                             const std::function<void(int, int)>& on_head = {});
std::vector<CircuitReadout> circuit_readouts(GPTModelImpl& m, const std::vector<FormSvd>& qk,
                                             const std::function<std::string(int64_t)>& label, int directions,
                                             int top, const std::function<void(int, int)>& on_head);
// A token's label for read-outs: its decoded text (tokenizer given), else its id.
std::string token_label(const Tokenizer* tokenizer, int64_t id);
CircuitsView model_circuits(GPTModelImpl& m, const std::string& variant,
                            const std::function<std::string(int64_t)>& label,
                            const std::function<void(int, int)>& on_head = {});

}  // namespace qk
