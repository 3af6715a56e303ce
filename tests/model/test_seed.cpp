// QKLab tests — merged-seed, the seed experiment's MHA_alt1: its module names and draw order (the
// seed's: each head's S then W_value), its book ops against the fused kernels, fair mode's shared
// start, conversions (exact to merged; refused from a model with a real out_proj), and the config
// guard on twin starts. Its logits against the seed's own Python classes: test_interchange.cpp
// (seed.pth); its chapter-5 run against the notebook's: test_cli.cpp ([seed]).
#include <catch2/catch.hpp>

#include "attention.h"
#include "convert.h"
#include "error.h"
#include "helpers.h"
#include "model.h"
#include "trainer.h"
#include "variants.h"

using namespace qk;

TEST_CASE("merged-seed: the seed's module names and draws, no out_proj", "[model][variants][seed]") {
  auto cfg = qkt::tiny_model();  // d 16, H 4, hd 4
  cfg.qkv_bias = true;
  torch::manual_seed(7);
  GPTModel m(Variant::MergedSeed, cfg);
  auto p = m->named_parameters();
  auto b = m->named_buffers();
  CHECK(p["trf_blocks.1.att.heads.3.S.weight"].sizes() == torch::IntArrayRef({16, 16}));
  CHECK(p["trf_blocks.1.att.heads.3.S.bias"].sizes() == torch::IntArrayRef({16}));
  CHECK(p["trf_blocks.0.att.heads.2.W_value.weight"].sizes() == torch::IntArrayRef({4, 16}));
  CHECK(p["trf_blocks.0.att.heads.2.W_value.bias"].sizes() == torch::IntArrayRef({4}));
  CHECK(b.contains("trf_blocks.0.att.heads.1.mask"));
  CHECK(!p.contains("trf_blocks.0.att.out_proj.weight"));
  CHECK(!p.contains("trf_blocks.0.att.W_value.weight"));
  CHECK(parameter_count(*m) - parameter_count(*GPTModel(Variant::Merged, cfg)) == -2 * (16 * 16 + 16));  // out_proj

  // The same draws by hand, in the seed's order: tok_emb, pos_emb, then per head S and W_value.
  torch::manual_seed(7);
  torch::nn::Embedding tok(23, 16), pos(8, 16);
  CHECK(torch::equal(tok->weight, p["tok_emb.weight"]));
  CHECK(torch::equal(pos->weight, p["pos_emb.weight"]));
  for (int h = 0; h < 4; ++h) {
    torch::nn::Linear S(torch::nn::LinearOptions(16, 16).bias(true));
    torch::nn::Linear V(torch::nn::LinearOptions(16, 4).bias(true));
    const std::string k = "trf_blocks.0.att.heads." + std::to_string(h) + ".";
    INFO("head " << h);
    CHECK(torch::equal(S->weight, p[k + "S.weight"]));
    CHECK(torch::equal(S->bias, p[k + "S.bias"]));
    CHECK(torch::equal(V->weight, p[k + "W_value.weight"]));
    CHECK(torch::equal(V->bias, p[k + "W_value.bias"]));
  }
}

TEST_CASE("merged-seed: book ops head by head = the fused kernels = merged with out_proj = I", "[model][variants][seed]") {
  for (bool bias : {false, true}) {
    INFO("qkv_bias " << bias);
    torch::manual_seed(8);
    auto cfg = qkt::tiny_model("float64");
    cfg.qkv_bias = bias;
    GPTModel seed(Variant::MergedSeed, cfg);
    {
      torch::NoGradGuard ng;
      for (auto& q : seed->named_parameters())
        if (q.key().find("bias") != std::string::npos) q.value().uniform_(-0.5, 0.5);
    }
    seed->eval();
    auto ids = torch::randint(0, cfg.vocab_size, {3, 8}, torch::kInt64);
    std::vector<torch::Tensor> a_book, a_fused;
    torch::NoGradGuard ng;
    auto book = seed->forward(ids, &a_book);
    seed->set_fused_kernels(true, false);
    auto fused = seed->forward(ids, &a_fused);
    CHECK(qkt::maxdiff(book, fused) < 1e-12);
    CHECK(qkt::maxdiff(a_book[1], a_fused[1]) < 1e-12);
    seed->set_fused_kernels(false, false);
    // The heads' outputs pass through the head hook as (B, H, T, hd): identity = unchanged.
    seed->attention(0).head_hook = [](const torch::Tensor& c) {
      CHECK(c.sizes() == torch::IntArrayRef({3, 4, 8, 4}));
      return c;
    };
    CHECK(qkt::maxdiff(seed->forward(ids), book) == 0.0);
    seed->attention(0).head_hook = nullptr;
    // Merged holds it exactly: S_h, u_h = S_h's bias, W_value stacked, out_proj the identity.
    GPTModel merged = convert_model(*seed, Variant::Merged, 0);
    merged->eval();
    CHECK(qkt::maxdiff(merged->forward(ids), book) < 1e-12);
    auto mp = merged->named_parameters();
    CHECK(torch::equal(mp["trf_blocks.0.att.out_proj.weight"], torch::eye(16, torch::kFloat64)));
  }
}

TEST_CASE("merged-seed: fair mode shares the values, conversions from a real out_proj are refused", "[model][variants][seed]") {
  ExperimentConfig c;
  c.model = qkt::tiny_model();
  c.model.context_length = 16;  // the default recall task's sequences fit
  c.variants = {Variant::Standard, Variant::MergedSeed};
  auto standard = initial_model(c, 0, 3);
  auto seed = initial_model(c, 1, 3);
  auto sp = standard->named_parameters(), mp = seed->named_parameters();
  for (int h = 0; h < 4; ++h)
    CHECK(torch::equal(mp["trf_blocks.1.att.heads." + std::to_string(h) + ".W_value.weight"],
                       sp["trf_blocks.1.att.W_value.weight"].narrow(0, 4 * h, 4)));
  CHECK(torch::equal(mp["trf_blocks.0.ff.layers.0.weight"], sp["trf_blocks.0.ff.layers.0.weight"]));
  CHECK(torch::equal(mp["tok_emb.weight"], sp["tok_emb.weight"]));
  // standard -> merged-seed has no exact form: standard's out_proj mixes the heads.
  CHECK_THROWS_WITH(convert_model(*standard, Variant::MergedSeed, 0),
                    Catch::Matchers::Contains("merged-seed has no output projection"));
  c.train.twin_start = true;
  CHECK_THROWS_WITH(validate_config(c, "t"), Catch::Matchers::Contains("train.twin_start"));
  // Its spectra are merged's: full rank d, and the form is S_hᵀ.
  auto& att = seed->attention(0);
  CHECK(att.form_singular_values().sizes() == torch::IntArrayRef({4, 16}));
  auto S0 = mp["trf_blocks.0.att.heads.0.S.weight"].to(torch::kFloat64);
  CHECK(qkt::maxdiff(att.bilinear_forms()[0], S0.t()) == 0.0);
}
