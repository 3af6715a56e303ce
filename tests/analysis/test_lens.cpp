// QKLab tests — logit lens, direct logit attribution and head detectors on known answers, for every
// variant: the last layer's lens is the model's logits exactly, and layer l's lens is the logits of
// the model cut after block l (so the final LayerNorm is recomputed on that stream, not reused);
// the attributions add up to the logit difference; head_logits agree with the attributions; the
// detection patterns of a hand-worked sequence; a planted previous-token head scores the most a
// head can, (T−1)/T, and a uniform head the uniform value.
#include <catch2/catch.hpp>

#include <cmath>

#include "analysis.h"
#include "detectors.h"
#include "helpers.h"
#include "lens.h"
#include "variants.h"

using namespace qk;

namespace {

ModelConfig lens_model(const std::string& dtype, bool bias) {
  auto m = qkt::tiny_model(dtype);
  m.n_layers = 3;
  m.qkv_bias = bias;
  return m;
}

// Every parameter away from its initial value (LayerNorms, biases) so each is exercised.
void perturb(GPTModelImpl& m, uint64_t seed) {
  torch::NoGradGuard ng;
  auto g = at::detail::createCPUGenerator(seed);
  for (auto& p : m.parameters()) p.add_(0.1 * at::normal(0.0, 1.0, p.sizes(), g).to(p.dtype()));
}

std::vector<Batch> batches(int64_t vocab, int64_t T, uint64_t seed) {
  auto g = at::detail::createCPUGenerator(seed);
  Batch b;
  b.inputs = torch::randint(vocab, {3, T}, g, torch::kInt64);
  b.targets = torch::randint(vocab, {3, T}, g, torch::kInt64);
  b.targets.index_put_({0, 0}, -100);  // an unscored position
  return {b};
}

}  // namespace

TEST_CASE("logit lens: the last layer is the logits exactly, layer l the model cut after block l", "[lens]") {
  for (const auto& vi : all_variants()) {
    for (bool fused : {false, true}) {
      INFO(vi.name << (fused ? " fused kernels" : " book kernels"));
      torch::manual_seed(7);
      auto cfg = lens_model("float32", true);
      GPTModel m(vi.variant, cfg);
      perturb(*m, 3);
      m->set_fused_kernels(fused);
      const auto ids = torch::randint(cfg.vocab_size, {2, cfg.context_length}, torch::kInt64);
      const auto r = traced_run(*m, ids);
      const auto lens = logit_lens(*m, r);  // (L, B, T, V)
      REQUIRE(lens.sizes() == torch::IntArrayRef({cfg.n_layers, 2, cfg.context_length, cfg.vocab_size}));
      CHECK(torch::equal(lens[cfg.n_layers - 1], r.logits));
      torch::Tensor plain;
      {
        EvalScope e(*m);
        plain = m->forward(ids);
      }
      CHECK(torch::equal(plain, r.logits));  // tracing changes nothing
      for (int l = 0; l + 1 < cfg.n_layers; ++l) {
        auto cut_cfg = cfg;
        cut_cfg.n_layers = l + 1;
        GPTModel cut(vi.variant, cut_cfg);
        {
          torch::NoGradGuard ng;
          const auto src = m->named_parameters();
          for (auto& p : cut->named_parameters()) p.value().copy_(src[p.key()]);
        }
        cut->set_fused_kernels(fused);
        EvalScope e(*cut);
        CHECK(qkt::maxdiff(cut->forward(ids), lens[l]) == 0.0);
      }
    }
  }
}

TEST_CASE("direct logit attribution: the parts add up to the logit difference, every variant", "[lens]") {
  for (const auto& vi : all_variants()) {
    for (const std::string dtype : {"float64", "float32"}) {
      INFO(vi.name << " " << dtype);
      torch::manual_seed(11);
      auto cfg = lens_model(dtype, true);
      GPTModel m(vi.variant, cfg);
      perturb(*m, 5);
      const auto probe = batches(cfg.vocab_size, cfg.context_length, 2);
      const auto v = attribution_validation(*m, vi.name, probe);
      CHECK(v.positions == 3 * cfg.context_length - 1);
      REQUIRE(v.head.size() == size_t(cfg.n_layers * cfg.n_heads));
      double sum = v.embed + v.final_shift;
      for (double x : v.head) sum += x;
      for (int l = 0; l < cfg.n_layers; ++l) sum += v.attn_bias[size_t(l)] + v.mlp[size_t(l)];
      const double tol = dtype == "float64" ? 1e-10 : 1e-5;
      CHECK(std::abs(sum - v.logit_diff) < tol);
      CHECK(v.max_error < tol);
      CHECK(std::isfinite(v.logit_diff));
      // One prompt: the given pair, and head_logits along it equal the per-head attributions.
      PromptTokens pt;
      pt.ids = {1, 4, 2, 7, 3};
      pt.targets = {4, 2, 7, 3, -100};
      for (auto id : pt.ids) pt.labels.push_back(std::to_string(id));
      AttributionTarget t;
      t.answer = 5;
      t.wrong = 9;
      const auto p = attribution_prompt(*m, vi.name, pt, t, {});
      CHECK(p.answer == "5");
      CHECK(p.wrong == "9");
      CHECK(p.max_error < tol);
      const auto r = traced_run(*m, torch::tensor(pt.ids, torch::kInt64).view({1, 5}));
      const auto hl = head_logits(*m, r);  // (L, H, 1, T, V)
      const auto ld = hl.select(4, 5) - hl.select(4, 9);  // (L, H, 1, T)
      double worst = 0;
      for (int l = 0; l < cfg.n_layers; ++l)
        for (int h = 0; h < cfg.n_heads; ++h)
          worst = std::max(worst, std::abs(ld[l][h][0][3].item<double>() - p.head[size_t(l * cfg.n_heads + h)]));
      CHECK(worst < 1e-12);
      CHECK_THROWS_WITH(attribution_prompt(*m, vi.name, pt, AttributionTarget{-1, 5, 5}, {}),
                        Catch::Contains("the same token"));
    }
  }
}

TEST_CASE("head detectors: the detection patterns of a hand-worked sequence", "[lens][detectors]") {
  const std::vector<int64_t> ids{1, 2, 1, 2, 2};
  const auto prev = detection_pattern(DetectorKind::PreviousToken, ids);
  const auto dup = detection_pattern(DetectorKind::DuplicateToken, ids);
  const auto ind = detection_pattern(DetectorKind::Induction, ids);
  auto ones = [](const torch::Tensor& P) {
    std::vector<std::pair<int, int>> at;
    for (int i = 0; i < P.size(0); ++i)
      for (int j = 0; j < P.size(1); ++j)
        if (P[i][j].item<float>() == 1.f) at.emplace_back(i, j);
    return at;
  };
  using V = std::vector<std::pair<int, int>>;
  CHECK(ones(prev) == V{{1, 0}, {2, 1}, {3, 2}, {4, 3}});
  CHECK(ones(dup) == V{{2, 0}, {3, 1}, {4, 1}, {4, 3}});
  // key j right after an earlier occurrence (j−1) of the query's token, j ≤ i
  CHECK(ones(ind) == V{{2, 1}, {3, 2}, {4, 2}, {4, 4}});
  // Σ(A∘P)/ΣA: uniform causal attention on the previous-token pattern.
  auto A = torch::tril(torch::ones({5, 5}, torch::kFloat64));
  A = A / A.sum(-1, true);
  const double want = (1.0 / 2 + 1.0 / 3 + 1.0 / 4 + 1.0 / 5) / 5;
  CHECK(detector_scores(A.unsqueeze(0), prev)[0].item<double>() == Approx(want).epsilon(1e-12));
  const auto rep = repeated_random_tokens(50, 15, 3, 1);
  REQUIRE(rep.size() == 3);
  for (const auto& r : rep) {
    REQUIRE(r.size() == 14);
    CHECK(std::equal(r.begin(), r.begin() + 7, r.begin() + 7));
  }
  CHECK(repeated_random_tokens(50, 15, 3, 1) == rep);
}

TEST_CASE("head detectors: a planted previous-token head scores (T−1)/T, a uniform head the uniform value",
          "[lens][detectors]") {
  ModelConfig cfg = qkt::tiny_model("float64");
  cfg.emb_dim = 32;
  cfg.context_length = 15;
  cfg.vocab_size = 40;
  torch::manual_seed(1);
  GPTModel m(Variant::Merged, cfg);
  const int64_t T = 14;
  {
    torch::NoGradGuard ng;
    m->tok_emb->weight.zero_();  // layer 0 then sees the positions alone
    const auto P = m->pos_emb->weight.narrow(0, 0, T);
    const auto N = (P - P.mean(-1, true)) / torch::sqrt(P.var(-1, false, true) + 1e-5);  // LN1 (scale 1, shift 0)
    auto shift = torch::zeros({T, T}, torch::kFloat64);
    for (int64_t i = 1; i < T; ++i) shift[i][i - 1] = 1.0;
    const double c = 60.0 * std::sqrt(double(cfg.head_dim()));
    const auto Np = torch::linalg_pinv(N);  // (d, T): N·Np = I_T
    auto M = torch::zeros({cfg.n_heads, cfg.emb_dim, cfg.emb_dim}, torch::kFloat64);
    M[0] = c * Np.matmul(shift).matmul(Np.t());  // n_i·M·n_jᵀ = c·[j = i − 1]
    m->attention(0).set_forms(M);
  }
  const auto v = model_detectors(*m, "merged", {});
  CHECK(v.repeated_len == int(T));
  CHECK(v.prev_rep[0] == Approx(double(T - 1) / double(T)).epsilon(1e-9));
  for (int h = 1; h < cfg.n_heads; ++h) CHECK(v.prev_rep[size_t(h)] == Approx(v.uniform_prev_rep).epsilon(1e-12));
  CHECK(v.validation_sequences == 0);

  // Every variant: all forms zero -> uniform causal attention -> the uniform value everywhere.
  for (const auto& vi : all_variants()) {
    INFO(vi.name);
    auto c2 = qkt::tiny_model("float64");
    c2.context_length = 9;
    GPTModel g(vi.variant, c2);
    for (int l = 0; l < c2.n_layers; ++l)
      g->attention(l).set_forms(torch::zeros({c2.n_heads, c2.emb_dim, c2.emb_dim}, torch::kFloat64));
    const auto probe = batches(c2.vocab_size, c2.context_length, 4);
    const auto d = model_detectors(*g, vi.name, probe);
    CHECK(d.validation_sequences == 3);
    for (double s : d.prev_rep) CHECK(s == Approx(d.uniform_prev_rep).epsilon(1e-12));
    double uniform_val = 0;
    for (int i = 1; i < 9; ++i) uniform_val += 1.0 / (i + 1) / 9.0;
    for (double s : d.prev_val) CHECK(s == Approx(uniform_val).epsilon(1e-12));
  }
}
