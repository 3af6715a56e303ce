// QKLab tests — attention variants and model: shapes, causality, attention rows, exact
// standard -> merged conversion, finite-difference gradient checks in float64.
#include <catch2/catch.hpp>

#include "checkpoint.h"
#include "helpers.h"
#include "model.h"
#include "variants.h"

using namespace qk;

TEST_CASE("every variant produces logits (B T V) and attention (B H T T)", "[model]") {
  for (const auto& info : all_variants()) {
    const auto v = info.variant;
    torch::manual_seed(1);
    auto cfg = qkt::tiny_model();
    GPTModel m(v, cfg);
    m->eval();
    auto ids = torch::randint(0, cfg.vocab_size, {3, 5}, torch::kInt64);
    std::vector<torch::Tensor> attn;
    auto logits = m->forward(ids, &attn);
    CHECK(logits.sizes() == torch::IntArrayRef({3, 5, cfg.vocab_size}));
    REQUIRE(attn.size() == static_cast<size_t>(cfg.n_layers));
    for (auto& a : attn) {
      CHECK(a.sizes() == torch::IntArrayRef({3, cfg.n_heads, 5, 5}));
      // rows sum to 1, nothing above the diagonal
      CHECK(qkt::maxdiff(a.sum(-1), torch::ones({3, cfg.n_heads, 5})) < 1e-6);
      CHECK(torch::triu(a, 1).abs().max().item<double>() == 0.0);
    }
    // asking for weights does not change the result
    CHECK(qkt::maxdiff(m->forward(ids), logits) == 0.0);
  }
}

TEST_CASE("parameter names follow the book's state_dict", "[model]") {
  auto cfg = qkt::tiny_model();
  GPTModel s(Variant::Standard, cfg), m(Variant::Merged, cfg);
  auto sp = s->named_parameters(), mp = m->named_parameters();
  for (auto name : {"tok_emb.weight", "pos_emb.weight", "trf_blocks.0.att.W_query.weight",
                    "trf_blocks.0.att.W_key.weight", "trf_blocks.1.att.W_value.weight",
                    "trf_blocks.0.att.out_proj.bias", "trf_blocks.0.ff.layers.0.weight",
                    "trf_blocks.0.ff.layers.2.bias", "trf_blocks.1.norm1.scale",
                    "trf_blocks.1.norm2.shift", "final_norm.scale", "out_head.weight"})
    CHECK(sp.contains(name));
  CHECK(mp.contains("trf_blocks.0.att.S"));
  CHECK(!mp.contains("trf_blocks.0.att.W_query.weight"));
  CHECK(mp["trf_blocks.1.att.S"].sizes() == torch::IntArrayRef({4, 16, 16}));
  CHECK(!sp.contains("out_head.bias"));
}

TEST_CASE("causality: changing token t never changes outputs before t", "[model]") {
  for (const auto& info : all_variants()) {
    const auto v = info.variant;
    torch::manual_seed(2);
    auto cfg = qkt::tiny_model("float64");
    GPTModel m(v, cfg);
    m->eval();
    auto ids = torch::randint(0, cfg.vocab_size, {2, 8}, torch::kInt64);
    auto base = m->forward(ids);
    for (int t = 0; t < 8; ++t) {
      auto changed = ids.clone();
      changed.index_put_({torch::indexing::Slice(), t}, (ids.index({torch::indexing::Slice(), t}) + 1) % cfg.vocab_size);
      auto out = m->forward(changed);
      if (t > 0) {
        auto before = qkt::maxdiff(out.slice(1, 0, t), base.slice(1, 0, t));
        INFO("variant " << variant_name(v) << " t=" << t << " maxdiff before t " << before);
        CHECK(before == 0.0);
      }
      CHECK(qkt::maxdiff(out.slice(1, t, t + 1), base.slice(1, t, t + 1)) > 0.0);
    }
  }
}

TEST_CASE("exact conversion standard -> merged reproduces logits", "[model][convert]") {
  for (std::string dtype : {"float64", "float32"}) {
    torch::manual_seed(3);
    auto cfg = qkt::tiny_model(dtype);
    GPTModel s(Variant::Standard, cfg);
    s->eval();
    GPTModel m = convert_to_merged(s);
    m->eval();
    auto ids = torch::randint(0, cfg.vocab_size, {4, 8}, torch::kInt64);
    std::vector<torch::Tensor> as, am;
    auto ls = s->forward(ids, &as), lm = m->forward(ids, &am);
    const double d = qkt::maxdiff(ls, lm);
    const double tol = dtype == "float64" ? 1e-10 : 1e-4;
    std::cout << "conversion " << dtype << ": logits maxdiff " << d << " (tolerance " << tol << ")\n";
    CHECK(d <= tol);
    CHECK(qkt::maxdiff(as[1], am[1]) <= tol);
    // Bilinear forms agree exactly in float64: M_h(merged) = M_h(standard).
    CHECK(qkt::maxdiff(s->attention(0).bilinear_forms(), m->attention(0).bilinear_forms()) <= tol);
  }
}

TEST_CASE("the standard head's bilinear form has rank <= head_dim — merged can be full rank", "[model]") {
  torch::manual_seed(4);
  auto cfg = qkt::tiny_model("float64");
  GPTModel s(Variant::Standard, cfg), m(Variant::Merged, cfg);
  auto rank = [](const torch::Tensor& a) {
    auto sv = torch::linalg_svdvals(a, c10::nullopt);
    return sv.gt(sv.max() * a.size(0) * 1e-15).sum().item<int64_t>();
  };
  CHECK(rank(s->attention(0).bilinear_forms()[0]) == cfg.head_dim());
  CHECK(rank(m->attention(0).bilinear_forms()[0]) == cfg.emb_dim);
}

namespace {

// Central finite differences of sum(out · w) with respect to every element of `t`, compared
// with autograd. float64; returns the max abs difference.
double gradcheck(CausalAttentionImpl& att, torch::Tensor x, torch::Tensor& t, const torch::Tensor& w) {
  auto f = [&]() { return (att.forward(x, nullptr) * w).sum(); };
  if (t.grad().defined()) t.mutable_grad().zero_();
  f().backward();
  auto analytic = t.grad().clone();
  auto numeric = torch::zeros_like(t);
  const double h = 1e-6;
  torch::NoGradGuard ng;
  auto flat = t.view({-1});
  auto nflat = numeric.view({-1});
  for (int64_t i = 0; i < flat.numel(); ++i) {
    const double orig = flat[i].item<double>();
    flat[i] = orig + h;
    const double fp = f().item<double>();
    flat[i] = orig - h;
    const double fm = f().item<double>();
    flat[i] = orig;
    nflat[i] = (fp - fm) / (2 * h);
  }
  return qkt::maxdiff(analytic, numeric);
}

}  // namespace

TEST_CASE("finite-difference gradient check in float64 — every variant — with and without biases", "[model][grad]") {
  for (const auto& info : all_variants())
  for (bool bias : {false, true}) {
    const auto v = info.variant;
    torch::manual_seed(5);
    ModelConfig cfg = qkt::tiny_model("float64");
    cfg.qkv_bias = bias;
    cfg.qk_head_dim = v == Variant::Standard || v == Variant::MergedLowRank ? 3 : 0;
    cfg.emb_dim = 8;
    cfg.n_heads = 2;
    auto att = make_attention(v, cfg);
    att->to(torch::kFloat64);
    att->eval();
    auto x = torch::randn({2, 5, 8}, torch::kFloat64).requires_grad_(true);
    auto w = torch::randn({2, 5, 8}, torch::kFloat64);
    double worst = gradcheck(*att, x, x, w);
    for (auto& p : att->named_parameters()) {
      auto t = p.value();
      const double d = gradcheck(*att, x, t, w);
      INFO(variant_name(v) << " " << p.key() << " maxdiff " << d);
      CHECK(d < 1e-7);
      worst = std::max(worst, d);
    }
    std::cout << "gradcheck " << variant_name(v) << ": worst maxdiff " << worst << "\n";
    CHECK(worst < 1e-7);
  }
}

TEST_CASE("qk_head_dim changes the standard variant's query/key size only", "[model]") {
  auto cfg = qkt::tiny_model();
  cfg.qk_head_dim = 2;
  GPTModel s(Variant::Standard, cfg);
  auto p = s->named_parameters();
  CHECK(p["trf_blocks.0.att.W_query.weight"].sizes() == torch::IntArrayRef({8, 16}));
  CHECK(p["trf_blocks.0.att.W_value.weight"].sizes() == torch::IntArrayRef({16, 16}));
  s->eval();
  auto logits = s->forward(torch::zeros({1, 4}, torch::kInt64));
  CHECK(logits.size(2) == cfg.vocab_size);
}

TEST_CASE("model.causal = false: every variant attends both ways, book and fused kernels alike", "[model][encoder]") {
  for (const auto& info : all_variants()) {
    INFO(info.name);
    torch::manual_seed(21);
    auto cfg = qkt::tiny_model("float64");
    cfg.causal = false;
    GPTModel m(info.variant, cfg);
    m->eval();
    torch::NoGradGuard ng;
    auto ids = torch::randint(0, cfg.vocab_size, {2, 8}, torch::kInt64);
    std::vector<torch::Tensor> attn;
    auto base = m->forward(ids, &attn);
    CHECK(torch::triu(attn[0], 1).sum().item<double>() > 0.5);  // mass above the diagonal
    CHECK(qkt::maxdiff(attn[0].sum(-1), torch::ones({2, cfg.n_heads, 8}, torch::kFloat64)) < 1e-12);
    auto changed = ids.clone();
    changed.index_put_({torch::indexing::Slice(), 7}, (ids.index({torch::indexing::Slice(), 7}) + 1) % cfg.vocab_size);
    CHECK(qkt::maxdiff(m->forward(changed).slice(1, 0, 1), base.slice(1, 0, 1)) > 0.0);  // the last token reaches the first
    m->set_fused_kernels(true, false);
    CHECK(qkt::maxdiff(m->forward(ids), base) < 1e-12);
  }
}
