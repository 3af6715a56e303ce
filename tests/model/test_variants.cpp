// QKLab tests — the query-key parameterisation family: checkpoint names and shapes, the structure
// each form promises (symmetric, PSD, slice of the identity, low rank), exact conversions where the
// target family holds the form, nearest forms where it does not, and value_proj identity.
// (Shapes, causality, gradient checks, truncation and parameter formulas of every variant are in
// test_attention.cpp and test_analysis.cpp, which loop over all_variants().)
#include <catch2/catch.hpp>

#include "convert.h"
#include "helpers.h"
#include "attention.h"
#include "model.h"
#include "presets.h"
#include "variants.h"

using namespace qk;

namespace {

torch::Tensor logits_of(GPTModelImpl& m, const torch::Tensor& ids) {
  m.eval();
  torch::NoGradGuard ng;
  return m.forward(ids);
}

}  // namespace

TEST_CASE("variant family: checkpoint names and shapes", "[model][variants]") {
  auto cfg = qkt::tiny_model();  // d 16, H 4
  cfg.qk_head_dim = 3;
  auto names = [&](Variant v) { return GPTModel(v, cfg)->named_parameters(); };
  auto shared = names(Variant::SharedQK);
  CHECK(shared["trf_blocks.0.att.W_qk.weight"].sizes() == torch::IntArrayRef({12, 16}));
  CHECK(!shared.contains("trf_blocks.0.att.W_query.weight"));
  auto sym = names(Variant::MergedSym);
  CHECK(sym["trf_blocks.1.att.S_tri"].sizes() == torch::IntArrayRef({4, 16 * 17 / 2}));
  auto low = names(Variant::MergedLowRank);
  CHECK(low["trf_blocks.0.att.U"].sizes() == torch::IntArrayRef({4, 16, 3}));
  CHECK(low["trf_blocks.0.att.V"].sizes() == torch::IntArrayRef({4, 16, 3}));
  auto iq = names(Variant::IdentityQuery);
  CHECK(iq["trf_blocks.0.att.W_key.weight"].sizes() == torch::IntArrayRef({16, 16}));
  CHECK(!iq.contains("trf_blocks.0.att.W_query.weight"));
  for (const auto& info : all_variants()) CHECK(parse_variant(info.name) == info.variant);
}

TEST_CASE("variant family: each form has the structure its parameterisation promises", "[model][variants]") {
  torch::manual_seed(11);
  auto cfg = qkt::tiny_model("float64");
  cfg.qk_head_dim = 3;
  // shared-qk: W_hᵀW_h is symmetric positive semi-definite of rank qk.
  auto Mq = GPTModel(Variant::SharedQK, cfg)->attention(0).bilinear_forms();
  CHECK(qkt::maxdiff(Mq, Mq.transpose(1, 2)) < 1e-15);
  CHECK(torch::linalg_eigvalsh(Mq, "L").min().item<double>() > -1e-14);
  // merged-sym: S is exactly symmetric (built from one triangle).
  auto Ms = GPTModel(Variant::MergedSym, cfg)->attention(1).bilinear_forms();
  CHECK(torch::equal(Ms, Ms.transpose(1, 2)));
  // identity-query: M_h is zero outside head h's rows.
  auto Mi = GPTModel(Variant::IdentityQuery, cfg)->attention(0).bilinear_forms();
  const int hd = cfg.head_dim();
  for (int h = 0; h < cfg.n_heads; ++h) {
    auto outside = Mi[h].clone();
    outside.narrow(0, h * hd, hd).zero_();
    CHECK(outside.abs().max().item<double>() == 0.0);
    CHECK(Mi[h].narrow(0, h * hd, hd).abs().max().item<double>() > 0.0);
  }
  // Rank bounds: the numerical rank of each head's form equals form_rank_bound for a random init.
  for (const auto& info : all_variants()) {
    auto M = GPTModel(info.variant, cfg)->attention(0).bilinear_forms();
    auto sv = torch::linalg_svdvals(M[0], c10::nullopt);
    const auto rank = sv.gt(sv.max() * 16 * 1e-13).sum().item<int64_t>();
    INFO(info.name);
    CHECK(rank == form_rank_bound(info.variant, cfg));
  }
}

TEST_CASE("variant family: every variant -> merged is the same function (forms and key biases)", "[model][variants][convert]") {
  // merged holds any form and any key bias, so this checks each variant's bilinear_forms() and
  // key_bias() against its own forward pass.
  for (const auto& info : all_variants())
  for (bool bias : {false, true}) {
    torch::manual_seed(12);
    auto cfg = qkt::tiny_model("float64");
    cfg.qkv_bias = bias;
    cfg.qk_head_dim = 3;
    GPTModel src(info.variant, cfg);
    {  // non-zero biases, so the key-bias path is exercised
      torch::NoGradGuard ng;
      for (auto& p : src->named_parameters())
        if (p.key().find("bias") != std::string::npos) p.value().uniform_(-0.5, 0.5);
    }
    auto ids = torch::randint(0, cfg.vocab_size, {3, 8}, torch::kInt64);
    GPTModel merged = convert_model(*src, Variant::Merged, 0);
    const double d = qkt::maxdiff(logits_of(*src, ids), logits_of(*merged, ids));
    INFO(info.name << " qkv_bias " << bias << ": logits maxdiff " << d);
    CHECK(d < 1e-10);
    // ...and back: the variant's set_forms/set_key_bias are exact on its own family.
    GPTModel back = convert_model(*merged, info.variant, 3);
    const double b = qkt::maxdiff(logits_of(*src, ids), logits_of(*back, ids));
    INFO("round trip maxdiff " << b);
    CHECK(b < 1e-9);
  }
}

TEST_CASE("variant family: the nearest form where the target cannot hold the source", "[model][variants][convert]") {
  torch::manual_seed(13);
  auto cfg = qkt::tiny_model("float64");
  GPTModel merged(Variant::Merged, cfg);
  auto M = merged->attention(0).bilinear_forms();
  // merged-sym keeps the symmetric part: the nearest symmetric matrix in Frobenius norm.
  auto sym = convert_model(*merged, Variant::MergedSym, 0)->attention(0).bilinear_forms();
  CHECK(qkt::maxdiff(sym, (M + M.transpose(1, 2)) / 2) < 1e-14);
  // shared-qk keeps the PSD part of sym(M) of rank ≤ qk: the error is the discarded eigenvalues.
  auto psd = convert_model(*merged, Variant::SharedQK, 4)->attention(0).bilinear_forms();
  auto ev = torch::linalg_eigvalsh((M + M.transpose(1, 2)) / 2, "L");  // (H, d) ascending
  auto kept = std::get<0>(torch::sort(ev, -1, true)).narrow(-1, 0, 4).clamp_min(0);
  auto expect_err = (ev.pow(2).sum(-1) - kept.pow(2).sum(-1)).sqrt();  // ‖sym - P‖_F per head
  auto err = (psd - (M + M.transpose(1, 2)) / 2).pow(2).sum({1, 2}).sqrt();
  CHECK(qkt::maxdiff(err, expect_err) < 1e-10);
  // merged-lowrank at rank r equals the best rank-r approximation (Eckart–Young).
  auto low = convert_model(*merged, Variant::MergedLowRank, 2)->attention(0).bilinear_forms();
  auto sv = torch::linalg_svdvals(M, c10::nullopt);
  auto low_err = (low - M).pow(2).sum({1, 2}).sqrt();
  CHECK(qkt::maxdiff(low_err, sv.narrow(-1, 2, 14).pow(2).sum(-1).sqrt()) < 1e-10);
  // identity-query keeps head h's rows of M_h.
  auto iq = convert_model(*merged, Variant::IdentityQuery, 0)->attention(0).bilinear_forms();
  CHECK(qkt::maxdiff(iq[2].narrow(0, 8, 4), M[2].narrow(0, 8, 4)) == 0.0);
}

TEST_CASE("merged-lowrank at r = d/H has standard's parameter count and is its function class", "[model][variants]") {
  torch::manual_seed(14);
  auto cfg = qkt::tiny_model("float64");
  GPTModel s(Variant::Standard, cfg);
  GPTModel low = convert_model(*s, Variant::MergedLowRank, cfg.head_dim());
  CHECK(parameter_count(*s) == parameter_count(*low));
  auto ids = torch::randint(0, cfg.vocab_size, {2, 8}, torch::kInt64);
  CHECK(qkt::maxdiff(logits_of(*s, ids), logits_of(*low, ids)) < 1e-10);
}

TEST_CASE("value_proj identity: no W_value — the same as W_value = I", "[model][variants]") {
  for (auto v : {Variant::Standard, Variant::Merged}) {
    torch::manual_seed(15);
    auto cfg = qkt::tiny_model("float64");
    auto id_cfg = cfg;
    id_cfg.value_proj = "identity";
    GPTModel lin(v, cfg), ident(v, id_cfg);
    auto ip = ident->named_parameters();
    CHECK(!ip.contains("trf_blocks.0.att.W_value.weight"));
    {
      torch::NoGradGuard ng;
      for (auto& p : lin->named_parameters()) {
        if (ip.contains(p.key())) p.value().copy_(ip[p.key()]);
        else p.value().copy_(torch::eye(cfg.emb_dim, torch::kFloat64));  // W_value.weight = I
      }
    }
    auto ids = torch::randint(0, cfg.vocab_size, {2, 8}, torch::kInt64);
    CHECK(qkt::maxdiff(logits_of(*lin, ids), logits_of(*ident, ids)) == 0.0);
    CHECK(parameter_count(*lin) - parameter_count(*ident) == int64_t(cfg.n_layers) * cfg.emb_dim * cfg.emb_dim);
  }
}

TEST_CASE("projection sharing: shared-kv's keys are its values, shared-qkv's queries too", "[model][variants]") {
  torch::manual_seed(16);
  auto cfg = qkt::tiny_model("float64");  // d 16, H 4, head_dim 4
  cfg.qk_head_dim = 3;                    // does not apply: the keys are values, head_dim wide
  GPTModel kv(Variant::SharedKV, cfg), qkv(Variant::SharedQKV, cfg);
  // Checkpoint names: shared-kv has W_query and W_value and no W_key; shared-qkv W_value only.
  auto kp = kv->named_parameters(), qp = qkv->named_parameters();
  CHECK(kp["trf_blocks.0.att.W_query.weight"].sizes() == torch::IntArrayRef({16, 16}));
  CHECK(kp["trf_blocks.0.att.W_value.weight"].sizes() == torch::IntArrayRef({16, 16}));
  CHECK(!kp.contains("trf_blocks.0.att.W_key.weight"));
  CHECK(qp.contains("trf_blocks.1.att.W_value.weight"));
  for (auto name : {"trf_blocks.1.att.W_query.weight", "trf_blocks.1.att.W_key.weight", "trf_blocks.1.att.W_qk.weight"})
    CHECK(!qp.contains(name));
  // Parameters: standard at head_dim minus W_key (shared-kv), minus W_query and W_key (shared-qkv).
  cfg.qk_head_dim = 0;
  GPTModel full(Variant::Standard, cfg);
  const int64_t dd = int64_t(cfg.n_layers) * cfg.emb_dim * cfg.emb_dim;
  CHECK(parameter_count(*full) - parameter_count(*kv) == dd);
  CHECK(parameter_count(*full) - parameter_count(*qkv) == 2 * dd);
  // The attention weights are softmax(q·kᵀ/√hd) with k = v = X·W_valueᵀ, from the weights alone.
  const int64_t H = cfg.n_heads, hd = cfg.head_dim(), T = 6;
  auto x = torch::randn({2, T, cfg.emb_dim}, torch::kFloat64);
  auto heads = [&](const torch::Tensor& w) { return torch::matmul(x, w.t()).view({2, T, H, hd}).transpose(1, 2); };
  auto causal = torch::triu(torch::ones({T, T}, torch::kBool), 1);
  auto expect = [&](const torch::Tensor& q, const torch::Tensor& k) {
    return torch::softmax((torch::matmul(q, k.transpose(-1, -2)) / std::sqrt(double(hd))).masked_fill(causal, -INFINITY), -1);
  };
  for (auto* m : {&kv, &qkv}) {
    auto& att = (*m)->attention(0);
    att.eval();
    torch::Tensor w;
    torch::NoGradGuard ng;
    att.forward(x, &w);  // (B, H, T, T)
    auto v = heads(att.W_value->weight);
    auto q = (*m)->variant() == Variant::SharedKV ? heads(dynamic_cast<SharedKVAttentionImpl&>(att).W_query->weight) : v;
    INFO(variant_name((*m)->variant()));
    CHECK(qkt::maxdiff(w, expect(q, v)) < 1e-14);
  }
  // Forms: W_query[h]ᵀ·W_value[h] of rank head_dim; shared-qkv's W_value[h]ᵀ·W_value[h] is PSD.
  auto& ka = dynamic_cast<SharedKVAttentionImpl&>(kv->attention(1));
  auto wq = ka.W_query->weight.view({H, hd, -1}), wv = ka.W_value->weight.view({H, hd, -1});
  CHECK(qkt::maxdiff(ka.bilinear_forms(), torch::matmul(wq.transpose(1, 2), wv)) < 1e-15);
  auto Mq = qkv->attention(0).bilinear_forms();
  CHECK(qkt::maxdiff(Mq, Mq.transpose(1, 2)) < 1e-15);
  CHECK(torch::linalg_eigvalsh(Mq, "L").min().item<double>() > -1e-14);
}

TEST_CASE("projection sharing: truncation and conversions keep shared-kv's values — shared-qkv's move with its form", "[model][variants][convert]") {
  torch::manual_seed(17);
  auto cfg = qkt::tiny_model("float64");
  // shared-kv truncated to rank 2: W_value untouched, the form is the best rank-2 approximation.
  GPTModel kv(Variant::SharedKV, cfg);
  auto& att = kv->attention(0);
  const auto M = att.bilinear_forms();
  const auto wv = att.W_value->weight.clone();
  att.truncate_forms(2, nullptr);
  CHECK(torch::equal(att.W_value->weight, wv));
  auto sv = torch::linalg_svdvals(M, c10::nullopt);  // (H, d)
  auto err = (att.bilinear_forms() - M).pow(2).sum({1, 2}).sqrt();
  CHECK(qkt::maxdiff(err, sv.narrow(-1, 2, 14).pow(2).sum(-1).sqrt()) < 1e-10);  // Eckart–Young
  // merged -> shared-kv: W_value is merged's, and the form is M_h projected on W_value[h]'s rows.
  GPTModel merged(Variant::Merged, cfg);
  auto Mm = merged->attention(0).bilinear_forms();
  GPTModel to_kv = convert_model(*merged, Variant::SharedKV, 0);
  CHECK(torch::equal(to_kv->attention(0).W_value->weight, merged->attention(0).W_value->weight));
  auto w = merged->attention(0).W_value->weight.view({4, 4, 16});
  auto P = torch::matmul(torch::linalg_pinv(w), w);  // (H, d, d): projector on W_value[h]'s row space
  CHECK(qkt::maxdiff(to_kv->attention(0).bilinear_forms(), torch::matmul(Mm, P)) < 1e-12);
  // merged -> shared-qkv: the PSD part of sym(M) of rank ≤ head_dim, like shared-qk at qk = 4.
  auto psd = convert_model(*merged, Variant::SharedQKV, 0)->attention(0).bilinear_forms();
  auto qk4 = convert_model(*merged, Variant::SharedQK, 4)->attention(0).bilinear_forms();
  CHECK(qkt::maxdiff(psd, qk4) < 1e-12);
  // shared-qkv truncated to rank 1: W_value[h] becomes its best rank-1 approximation, and so the form.
  GPTModel qkv(Variant::SharedQKV, cfg);
  auto& qa = qkv->attention(1);
  auto Mq = qa.bilinear_forms();
  qa.truncate_forms(1, nullptr);
  auto ev = std::get<0>(torch::sort(torch::linalg_eigvalsh(Mq, "L"), -1, true));  // (H, d) descending
  auto left = (qa.bilinear_forms() - Mq).pow(2).sum({1, 2}).sqrt();
  CHECK(qkt::maxdiff(left, ev.narrow(-1, 1, 15).pow(2).sum(-1).sqrt()) < 1e-10);
  auto wsv = torch::linalg_svdvals(qa.W_value->weight.view({4, 4, 16}), c10::nullopt);  // (H, hd)
  CHECK(wsv.narrow(-1, 1, 3).abs().max().item<double>() < 1e-12 * wsv.max().item<double>());
}

TEST_CASE("projection sharing: value_proj identity is refused with one line", "[model][variants][config]") {
  auto c = qk::preset_config("default");
  c.variants = {Variant::Standard, Variant::SharedKV};
  c.model.value_proj = "identity";
  CHECK_THROWS_WITH(validate_config(c, "exp.json", false),
                    "exp.json: model.value_proj: 'identity' is not available for shared-kv (its keys are its values: it needs W_value)");
  auto m = qkt::tiny_model();
  m.value_proj = "identity";
  CHECK_THROWS_WITH(GPTModel(Variant::SharedQKV, m), Catch::Contains("not available for shared-qkv"));
}
