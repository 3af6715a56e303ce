// QKLab tests — geometry, circuits, ablation, patching and spectral health, each on a matrix or a
// model with a known answer: a symmetric form (s = 1, directionality 0), a skew one (s = −1), a
// key-side hub column (directionality +1); eigenvalues of planted forms; the factored composition
// scores against the dense definition; a planted induction circuit (K-composition stands out); a
// dead head (ablating or patching it changes nothing); the power-law estimator against an
// independent torch reference (tests/reference/powerlaw_reference.py) and on Pareto samples; the
// Marchenko–Pastur fit on Gaussian noise with and without planted spikes.
#include <catch2/catch.hpp>

#include <cmath>
#include <fstream>
#include <random>

#include <nlohmann/json.hpp>

#include <map>
#include <set>
#include <sstream>

#include "analysis.h"
#include "analyze.h"
#include "causal.h"
#include "circuits.h"
#include "esd.h"
#include "geometry.h"
#include "helpers.h"
#include "linalg.h"
#include "presets.h"
#include "run_dir.h"
#include "sweep.h"
#include "trainer.h"
#include "variants.h"

using namespace qk;

namespace {
const auto f64 = torch::kFloat64;
torch::Tensor randn(std::vector<int64_t> shape, uint64_t seed) {
  auto g = at::detail::createCPUGenerator(seed);
  return at::normal(0.0, 1.0, shape, g).to(f64);
}
}  // namespace

TEST_CASE("geometry: symmetric — skew and directional forms", "[mechanisms][geometry]") {
  const auto A = randn({12, 12}, 1);
  const auto sym = form_geometry(A + A.t());
  CHECK(sym.symmetry == 1.0);  // skew part exactly zero
  CHECK(sym.sym_fraction == 1.0);
  CHECK(std::abs(sym.directionality) < 1e-12);
  const auto skew = form_geometry(A - A.t());
  CHECK(skew.symmetry == -1.0);
  CHECK(skew.skew_fraction == 1.0);
  // Every query reads one key dimension strongly: column 3 is a hub -> directionality near +1.
  auto M = 0.1 * A;
  M.select(1, 3).add_(5.0);
  const auto col = form_geometry(M);
  CHECK(col.directionality > 0.9);
  CHECK(form_geometry(M.t()).directionality < -0.9);
  CHECK(col.sym_fraction + col.skew_fraction == Approx(1.0).epsilon(1e-12));
  // Saponati's convention: s' = ‖sym‖²/‖M‖² is our sym_fraction, and s = 2·s' − 1.
  CHECK(col.symmetry == Approx(2 * col.sym_fraction - 1).epsilon(1e-12));
  const auto zero = form_geometry(torch::zeros({4, 4}, f64));
  CHECK(zero.symmetry == 0);
  CHECK(zero.directionality == 0);
}

TEST_CASE("geometry: eigenvalues of planted forms — factored and dense", "[mechanisms][geometry]") {
  // M = P·diag(3, −2, 0.5, 0, 0, 0)·P⁻¹: eigenvalues 3, −2, 0.5 (the zeros are dropped).
  const auto P = randn({6, 6}, 2) + 3 * torch::eye(6, f64);
  const auto D = torch::diag(torch::tensor({3.0, -2.0, 0.5, 0.0, 0.0, 0.0}, f64));
  const auto M = torch::matmul(torch::matmul(P, D), torch::linalg_inv(P));
  const auto svd = form_svd(M);
  const auto ev = form_eigenvalues(svd.U, svd.S, svd.Vh, 1e-12);
  REQUIRE(ev.size() == 3);
  CHECK(ev[0].first == Approx(3.0).epsilon(1e-9));
  CHECK(ev[1].first == Approx(-2.0).epsilon(1e-9));
  CHECK(ev[2].first == Approx(0.5).epsilon(1e-9));
  for (const auto& e : ev) CHECK(std::abs(e.second) < 1e-9);
  // A rotation by 90° scaled by 2 in a plane of R⁴: eigenvalues ±2i.
  auto R = torch::zeros({4, 4}, f64);
  R[0][1] = -2.0;
  R[1][0] = 2.0;
  const auto rs = form_svd(R);
  const auto er = form_eigenvalues(rs.U, rs.S, rs.Vh, 1e-12);
  REQUIRE(er.size() == 2);
  CHECK(std::abs(er[0].first) < 1e-12);
  CHECK(std::abs(std::abs(er[0].second) - 2.0) < 1e-12);
  CHECK(er[0].second == Approx(-er[1].second));
  // Standard heads: through the factored SVD the eigenvalues are those of W_K,h·W_Q,hᵀ (qk×qk).
  torch::manual_seed(3);
  auto cfg = qkt::tiny_model("float64");
  GPTModel m(Variant::Standard, cfg);
  auto& att = dynamic_cast<StandardAttentionImpl&>(m->attention(0));
  const auto fs = att.form_svd();
  const int64_t qk = cfg.head_dim(), d = cfg.emb_dim;
  for (int h = 0; h < cfg.n_heads; ++h) {
    const auto wq = att.W_query->weight.detach().view({cfg.n_heads, qk, d})[h];
    const auto wk = att.W_key->weight.detach().view({cfg.n_heads, qk, d})[h];
    auto direct = torch::linalg_eigvals(torch::matmul(wk, wq.t()));  // (qk) complex
    const auto mine = form_eigenvalues(fs.U[h], fs.S[h], fs.Vh[h], att.form_eps());
    REQUIRE(mine.size() == static_cast<size_t>(qk));
    auto mags = torch::abs(direct).to(f64);
    auto sorted = std::get<0>(torch::sort(mags, 0, true));
    for (int64_t i = 0; i < qk; ++i)
      CHECK(std::hypot(mine[i].first, mine[i].second) == Approx(sorted[i].item<double>()).epsilon(1e-9));
  }
  // The model geometry: one layer row and its heads per layer, every form's eigenvalues in it.
  const auto gv = model_geometry(*m, "standard", {});
  CHECK(gv.rows.size() == static_cast<size_t>(cfg.n_layers * (cfg.n_heads + 1)));
  CHECK(gv.rows[0].head == -1);
  CHECK(gv.rows[1].eig_re.size() == static_cast<size_t>(qk));
  CHECK(uniform_diagonal_mass(1) == 1.0);
  CHECK(uniform_diagonal_mass(2) == 0.75);
}

TEST_CASE("composition: the factored scores equal the dense definition — for every variant", "[mechanisms][circuits]") {
  for (const auto& info : all_variants()) {
    INFO(info.name);
    torch::manual_seed(5);
    auto cfg = qkt::tiny_model("float64");
    cfg.n_layers = 3;
    GPTModel m(info.variant, cfg);
    const auto scores = composition_scores(*m);
    CHECK(scores.size() == static_cast<size_t>(3 * 3 * cfg.n_heads * cfg.n_heads));  // pairs (0,1) (0,2) (1,2)
    int checked = 0;
    for (const auto& s : scores) {
      if (s.head_from != 1 || s.head_to != 2) continue;
      const auto [A, B] = ov_factors(*m, s.layer_from);
      const auto ov_a = torch::matmul(A[1], B[1].t());
      const auto [Ab, Bb] = ov_factors(*m, s.layer_to);
      const auto ov_b = torch::matmul(Ab[2], Bb[2].t());
      const auto Mb = m->attention(s.layer_to).bilinear_forms()[2];
      const auto R = s.kind == "Q" ? Mb : s.kind == "K" ? Mb.t() : ov_b;
      CHECK(s.score == Approx(composition_score(ov_a, R)).epsilon(1e-9));
      ++checked;
    }
    CHECK(checked == 9);
  }
}

TEST_CASE("composition: a planted induction circuit lights up K-composition", "[mechanisms][circuits]") {
  torch::manual_seed(7);
  auto cfg = qkt::tiny_model("float64");
  cfg.n_layers = 2;
  cfg.qkv_bias = false;
  GPTModel m(Variant::Standard, cfg);
  torch::NoGradGuard ng;
  const int64_t d = cfg.emb_dim, hd = cfg.head_dim(), H = cfg.n_heads;
  // Background: every weight small.
  for (auto& p : m->parameters()) p.mul_(0.05);
  // The previous-token head (layer 0, head 1) writes direction v: OV = u·vᵀ.
  auto u = torch::zeros({d}, f64), v = torch::zeros({d}, f64), w = torch::zeros({d}, f64);
  u[0] = 1;
  v[5] = 1;
  w[9] = 1;
  auto& a0 = m->attention(0);
  a0.W_value->weight.slice(0, hd, 2 * hd).zero_();
  a0.W_value->weight[hd].copy_(u);                              // W_V,1 row 0 reads u
  a0.out_proj->weight.slice(1, hd, 2 * hd).zero_();
  a0.out_proj->weight.select(1, hd).copy_(v);                   // W_O,1 column 0 writes v
  // The induction head (layer 1, head 2) keys on v: M = w·vᵀ (query reads w, key reads v).
  auto& a1 = m->attention(1);
  auto forms = a1.bilinear_forms();
  forms[2].copy_(torch::outer(w, v) * 4.0);
  a1.set_forms(forms);
  const auto scores = composition_scores(*m);
  const CompositionScore* best = nullptr;
  double k_planted = 0, q_planted = 1;
  for (const auto& s : scores) {
    if (s.kind == "K" && (!best || s.score > best->score)) best = &s;
    if (s.head_from == 1 && s.head_to == 2 && s.kind == "K") k_planted = s.score;
    if (s.head_from == 1 && s.head_to == 2 && s.kind == "Q") q_planted = s.score;
  }
  REQUIRE(best);
  CHECK(best->head_from == 1);
  CHECK(best->head_to == 2);
  CHECK(k_planted > 0.99);
  CHECK(q_planted < 0.05);
  const double baseline = composition_baseline(*m);
  CHECK(baseline > 0.02);
  CHECK(baseline < 0.6);
  CHECK(k_planted > 3 * baseline);
  (void)H;
}

TEST_CASE("circuits: token read-outs of a planted QK circuit", "[mechanisms][circuits]") {
  torch::manual_seed(8);
  auto cfg = qkt::tiny_model("float64");
  cfg.n_layers = 1;
  GPTModel m(Variant::Merged, cfg);
  torch::NoGradGuard ng;
  auto& att = m->attention(0);
  // Head 0's form reads token 7 on the query side and token 11 on the key side: E·M·Eᵀ peaks there.
  const auto E = m->block(0).norm1->forward(m->tok_emb->weight).detach().to(f64);  // (V, d)
  auto forms = att.bilinear_forms();
  forms[0].copy_(torch::outer(E[7], E[11]) * 10.0);
  att.set_forms(forms);
  const auto r = circuit_readouts(*m, [](int64_t id) { return "t" + std::to_string(id); });
  REQUIRE(r.size() == static_cast<size_t>(2 * cfg.n_heads));
  CHECK(r[0].circuit == "QK");
  REQUIRE(!r[0].directions.empty());
  CHECK(r[0].directions[0].left.front() == "t7");
  CHECK(r[0].directions[0].right.front() == "t11");
  CHECK(r[0].sigma.size() == 1);  // rank one: one non-zero direction
  CHECK(r[1].circuit == "OV");
}

TEST_CASE("circuits: token read-outs equal the SVD of the dense V×V circuits — every variant, V above and below d",
          "[mechanisms][circuits]") {
  for (const int64_t vocab : {23, 9}) {
    for (const auto& info : all_variants()) {
      INFO(info.name << ", vocabulary " << vocab);
      torch::manual_seed(12);
      auto cfg = qkt::tiny_model("float64");
      cfg.vocab_size = vocab;
      GPTModel m(info.variant, cfg);
      torch::NoGradGuard ng;
      for (int l = 0; l < cfg.n_layers; ++l) {  // LayerNorms that are not the identity
        m->block(l).norm1->scale.copy_(torch::rand({cfg.emb_dim}, f64) + 0.5);
        m->block(l).norm1->shift.copy_(torch::randn({cfg.emb_dim}, f64) * 0.3);
      }
      m->final_norm->scale.copy_(torch::rand({cfg.emb_dim}, f64) + 0.5);
      const auto label = [](int64_t id) { return "t" + std::to_string(id); };
      const auto r = circuit_readouts(*m, label);
      REQUIRE(r.size() == static_cast<size_t>(2 * cfg.n_layers * cfg.n_heads));
      const auto WU = m->out_head->weight * m->final_norm->scale.unsqueeze(0);  // (V, d)
      size_t i = 0;
      int compared = 0;
      for (int l = 0; l < cfg.n_layers; ++l) {
        const auto E = m->block(l).norm1->forward(m->tok_emb->weight);  // (V, d)
        const auto forms = m->attention(l).bilinear_forms();
        const auto [A, B] = ov_factors(*m, l);
        for (int h = 0; h < cfg.n_heads; ++h)
          for (const auto& dense : {torch::matmul(torch::matmul(E, forms[h]), E.t()),
                                    torch::matmul(torch::matmul(E, torch::matmul(A[h], B[h].t())), WU.t())}) {
            const auto& got = r[i++];
            CHECK(got.layer == l);
            CHECK(got.head == h);
            const auto svd = torch::linalg_svd(dense, false, c10::nullopt);  // the definition
            const auto S = std::get<1>(svd);
            const double s0 = S[0].item<double>();
            size_t nonzero = 0;
            for (int64_t j = 0; j < S.size(0); ++j) nonzero += S[j].item<double>() > 1e-8 * s0;
            CHECK(got.sigma.size() == std::min<size_t>(8, nonzero));
            for (size_t j = 0; j < got.sigma.size(); ++j) CHECK(got.sigma[j] == Approx(S[int64_t(j)].item<double>()).epsilon(1e-9));
            // Directions whose σ is well apart from the next one are unique up to sign: same tokens.
            for (size_t j = 0; j < got.directions.size(); ++j) {
              if (S[int64_t(j)].item<double>() < 1.05 * S[int64_t(j) + 1].item<double>() ||
                  (j > 0 && S[int64_t(j) - 1].item<double>() < 1.05 * S[int64_t(j)].item<double>()))
                continue;
              auto u = std::get<0>(svd).select(1, int64_t(j)), v = std::get<2>(svd).select(0, int64_t(j));
              if (u[u.abs().argmax()].item<double>() < 0) { u = -u; v = -v; }
              const auto tu = std::get<1>(torch::topk(u, 5)), tv = std::get<1>(torch::topk(v, 5));
              for (int t = 0; t < 5; ++t) {
                CHECK(got.directions[j].left[size_t(t)] == label(tu[t].item<int64_t>()));
                CHECK(got.directions[j].right[size_t(t)] == label(tv[t].item<int64_t>()));
              }
              ++compared;
            }
          }
      }
      CHECK(compared > cfg.n_layers * cfg.n_heads);  // most directions are separated enough to compare
    }
  }
}

TEST_CASE("ablation and patching: a dead head changes nothing — a live one does", "[mechanisms][ablation]") {
  torch::manual_seed(9);
  auto cfg = qkt::tiny_model("float64");
  cfg.n_layers = 2;
  GPTModel m(Variant::Standard, cfg);
  const int64_t hd = cfg.head_dim();
  {
    torch::NoGradGuard ng;
    m->attention(1).out_proj->weight.slice(1, 3 * hd, 4 * hd).zero_();  // layer 1, head 3 is dead
    for (auto& p : m->parameters()) p.mul_(3.0);                         // heads that matter
  }
  std::vector<Batch> probe;
  for (int i = 0; i < 2; ++i) {
    auto in = torch::randint(0, cfg.vocab_size, {4, cfg.context_length}, torch::kInt64);
    probe.push_back({in, torch::roll(in, -1, 1)});
  }
  const auto pairs = patch_pairs(probe, 8);
  REQUIRE(pairs.size() == 8);
  for (const auto& p : pairs) {
    int diff = 0;
    for (size_t i = 0; i < p.clean.size(); ++i) diff += p.clean[i] != p.corrupt[i];
    CHECK(diff == 1);
    CHECK(p.clean[p.position] != p.corrupt[p.position]);
  }
  AblationOptions o;
  int calls = 0, total_seen = 0;
  const auto a = model_ablation(*m, "standard", probe, pairs, o, {}, [&](int, int total) { ++calls; total_seen = total; });
  CHECK(calls == total_seen);
  const int dead = 1 * cfg.n_heads + 3;
  CHECK(a.zero_loss[dead] == Approx(a.base_loss).epsilon(1e-12));
  CHECK(a.mean_loss[dead] == Approx(a.base_loss).epsilon(1e-12));
  for (double l : a.rank_loss[dead]) CHECK(l == Approx(a.base_loss).epsilon(1e-12));
  double live = 0;
  for (int i = 0; i < 2 * cfg.n_heads; ++i)
    if (i != dead) live = std::max(live, std::abs(a.zero_loss[i] - a.base_loss));
  CHECK(live > 1e-3);
  CHECK(a.ranks.front() == 0);
  if (a.patch_pairs > 0) CHECK(std::abs(a.patch_restored[dead]) < 1e-9);
  // Hooks are gone: the model computes what it did before.
  CHECK(evaluate_batches(*m, probe, AccuracyKind::None).loss == Approx(a.base_loss).epsilon(1e-15));
}

TEST_CASE("ablation: the heads batched from their layer on equal one full evaluation per head — fused evaluation equals one forward per batch",
          "[mechanisms][ablation]") {
  // The fast path (causal.cpp: the residual entering layer l cached, the heads' copies stacked)
  // against the definition: the hook on one head, the whole probe evaluated, one head at a time.
  // float64 models: merged's forms were once a view of S there, and rank ablation of head h
  // silently kept heads 0…h−1 cut (this test found it). Every variant, the book's kernels and the
  // fused ones: zero and mean ablation let the head hook stack the copies after layer l's shared
  // scores (attention.h), which each attention code path must carry on.
  torch::manual_seed(21);
  auto cfg = qkt::tiny_model("float64");
  cfg.n_layers = 3;
  for (const auto& vi : all_variants())
  for (const bool fused_kernels : {false, true}) {
    const auto v = vi.variant;
    GPTModel m(v, cfg);
    m->set_fused_kernels(fused_kernels);
    {
      torch::NoGradGuard ng;
      for (auto& p : m->parameters()) p.mul_(2.0);
    }
    std::vector<Batch> probe;
    for (int i = 0; i < 3; ++i) {
      auto in = torch::randint(0, cfg.vocab_size, {3, cfg.context_length}, torch::kInt64);
      auto tg = torch::roll(in, -1, 1);
      if (i == 1) tg.slice(1, 0, 5).fill_(-100);  // unscored positions: each batch keeps its own mean
      probe.push_back({in, tg});
    }
    AblationOptions o;
    o.ranks = {0, 2};
    const auto a = model_ablation(*m, variant_name(v), probe, {}, o);
    const int L = cfg.n_layers, H = cfg.n_heads;
    REQUIRE(a.zero_loss.size() == size_t(L * H));
    REQUIRE(a.rank_loss.size() == size_t(L * H));
    // The per-position means, as the definition says: every head's output over the sequences.
    std::vector<torch::Tensor> mean(L);
    for (const auto& b : probe) {
      const auto rec = record_heads(*m, b.inputs);
      for (int l = 0; l < L; ++l) mean[l] = mean[l].defined() ? mean[l] + rec[l].sum(0) : rec[l].sum(0);
    }
    for (auto& t : mean) t = t / 9.0;
    double worst = 0, worst_rank = 0;
    for (int l = 0; l < L; ++l)
      for (int h = 0; h < H; ++h) {
        for (int kind = 0; kind < 2; ++kind) {
          const auto mh = mean[l].select(0, h);
          m->attention(l).head_hook = [h, kind, mh](const torch::Tensor& c) {
            auto out = c.clone();
            if (kind == 0) out.select(1, h).zero_();
            else out.select(1, h).copy_(mh.unsqueeze(0).expand({c.size(0), c.size(2), c.size(3)}));
            return out;
          };
          const double want = evaluate_batches(*m, probe, AccuracyKind::None).loss;
          m->attention(l).head_hook = nullptr;
          const double got = kind == 0 ? a.zero_loss[size_t(l * H + h)] : a.mean_loss[size_t(l * H + h)];
          worst = std::max(worst, std::abs(got - want) / std::abs(want));
        }
        // Rank ablation: that head's form cut, the whole model evaluated.
        GPTModel c = clone_model(*m);
        auto& att = c->attention(l);
        auto forms = att.bilinear_forms();
        const auto svd = att.form_svd();
        forms[h].copy_(reconstruct(FormSvd{svd.U[h], svd.S[h], svd.Vh[h]}, 2));
        att.set_forms(forms);
        const double want = evaluate_batches(*c, probe, AccuracyKind::None).loss;
        worst_rank = std::max(worst_rank, std::abs(a.rank_loss[size_t(l * H + h)][1] - want) / std::abs(want));
      }
    INFO(variant_name(v) << (fused_kernels ? ", fused kernels" : ", the book's kernels"));
    CHECK(worst < 1e-12);       // zero and mean; float64: the same numbers up to rounding
    CHECK(worst_rank < 1e-12);  // rank
    // Fused evaluation (fair mode, the analyses): the same per-batch means, the same accuracy.
    const auto one = evaluate_batches(*m, probe, AccuracyKind::Token, 0);
    const auto fused = evaluate_batches(*m, probe, AccuracyKind::Token, kEvalFuseTokens);
    CHECK(fused.loss == Approx(one.loss).epsilon(1e-12));
    CHECK(fused.acc == one.acc);
    const auto scores = score_batches(*m, probe, AccuracyKind::Token, kEvalFuseTokens);
    REQUIRE(scores.size() == 3);
    CHECK(scores[1].counted == 3 * (cfg.context_length - 5));  // batch 1's unscored positions left out
    CHECK(scores[1].loss == Approx(evaluate_batches(*m, {probe[1]}, AccuracyKind::None).loss).epsilon(1e-12));
  }
}

TEST_CASE("patch pairs: a recall query is swapped for another key", "[mechanisms][ablation]") {
  // k1 v1 k2 v2 k3 v3 SEP q: q = k2 (position 2), so the swap takes the key at an even distance.
  const std::vector<int64_t> ids = {1, 11, 2, 12, 3, 13, 99, 2};
  const auto p = patch_pair(ids, 7);
  CHECK(p.corrupt[7] != 2);
  CHECK((p.corrupt[7] == 1 || p.corrupt[7] == 3));
  // No earlier occurrence: the latest earlier token that differs.
  const auto q = patch_pair({5, 6, 7, 8}, 3);
  CHECK(q.corrupt[3] == 7);
  CHECK(patch_pair({4, 4, 4}, 2).clean.empty());  // nothing differs
}

TEST_CASE("power law: alpha against the torch reference and on Pareto samples", "[mechanisms][esd]") {
  std::ifstream in(std::string(QKLAB_FIXTURES) + "/powerlaw_reference.json");
  REQUIRE(in);
  const auto cases = nlohmann::json::parse(in);
  REQUIRE(cases.size() == 3);
  for (const auto& c : cases) {
    INFO(c["name"].get<std::string>());
    const auto fit = fit_power_law(c["samples"].get<std::vector<double>>(), c["min_tail"].get<int64_t>());
    CHECK(fit.alpha == Approx(c["alpha"].get<double>()).epsilon(1e-9));
    CHECK(fit.xmin == c["xmin"].get<double>());
    CHECK(fit.ks == Approx(c["ks"].get<double>()).epsilon(1e-9));
    CHECK(fit.tail == c["tail"].get<int64_t>());
  }
  // Pareto(α = 2.5), 5000 samples: the MLE's std is (α − 1)/√n ≈ 0.02.
  std::mt19937_64 rng(42);
  std::uniform_real_distribution<double> uni(0.0, 1.0);
  std::vector<double> x;
  for (int i = 0; i < 5000; ++i) x.push_back(std::pow(1.0 - uni(rng), -1.0 / 1.5));
  const auto fit = fit_power_law(x);
  CHECK(fit.alpha == Approx(2.5).margin(0.15));
  CHECK(std::isnan(fit_power_law({1.0, 2.0}).alpha));
}

TEST_CASE("Marchenko-Pastur: noise has no spikes — planted directions are counted", "[mechanisms][esd]") {
  const int64_t N = 400, M = 100;
  const auto W = randn({N, M}, 11);
  const auto r = esd_from_sigma(to_doubles(torch::linalg_svdvals(W, c10::nullopt)), N, M);
  CHECK(r.mp_sigma2 == Approx(1.0).margin(0.06));
  CHECK(r.mp_edge == Approx(2.25).margin(0.15));
  CHECK(r.spikes == 0);
  CHECK(r.soft_rank > 0.9);
  CHECK(r.n == M);
  // Three strong rank-one directions on top of the noise: three spikes.
  auto S = W.clone();
  for (int i = 0; i < 3; ++i) S += (6.0 - i) * torch::outer(randn({N}, 20 + i), randn({M}, 30 + i)) / std::sqrt(double(M));
  const auto s = esd_from_sigma(to_doubles(torch::linalg_svdvals(S, c10::nullopt)), N, M);
  CHECK(s.spikes == 3);
  CHECK(s.soft_rank < 0.5);
  // The model: every weight matrix and every head's form has a record.
  torch::manual_seed(12);
  auto cfg = qkt::tiny_model("float32");
  GPTModel m(Variant::Merged, cfg);
  const auto recs = model_esd(*m, "merged", 0);
  int forms = 0, merged_heads = 0;
  for (const auto& e : recs) {
    forms += e.matrix == "form";
    merged_heads += e.matrix.find(".att.S") != std::string::npos;
  }
  CHECK(forms == cfg.n_layers * cfg.n_heads);
  CHECK(merged_heads == cfg.n_layers * cfg.n_heads);
}

namespace {
// An analyze output as rows of named cells.
std::vector<std::map<std::string, std::string>> csv_rows(const std::string& path) {
  const auto t = read_csv_table(path);
  std::vector<std::map<std::string, std::string>> out;
  for (const auto& r : t.rows) {
    std::map<std::string, std::string> m;
    for (size_t i = 0; i < t.header.size() && i < r.size(); ++i) m[t.header[i]] = r[i];
    out.push_back(m);
  }
  return out;
}
std::string trained_run(const std::string& tag, ExperimentConfig c) {
  auto dir = qkt::temp_dir(tag);
  Experiment e(c);
  RunWriter w(dir, false);
  w.write_config(e.config());
  e.run(&w, nullptr);
  e.save_checkpoints(dir);
  return dir;
}
}  // namespace

TEST_CASE("analyze writes geometry — circuits — composition — ablation — patching and ESD by content", "[mechanisms][cli]") {
  auto c = preset_config("default");
  c.train.steps = 20;
  c.train.spectra_every = 10;
  const auto dir = trained_run("mech", c);
  std::ostringstream out, err;
  AnalyzeOptions o;
  o.run_dir = dir;
  o.truncate = {0, 64};
  REQUIRE(cmd_analyze(o, out, err) == 0);
  CHECK_THAT(out.str(), Catch::Contains("geometry.csv eigenvalues.csv circuits.csv composition.csv ablation.csv"));
  const int L = c.model.n_layers, H = c.model.n_heads;
  const auto geo = csv_rows(dir + "/analysis/geometry.csv");
  CHECK(geo.size() == size_t(2 * L * (H + 1)));
  for (const auto& r : geo) {
    CHECK(std::abs(std::stod(r.at("symmetry"))) <= 1.0);
    CHECK(std::abs(std::stod(r.at("directionality"))) <= 1.0);
    CHECK(std::stod(r.at("sym_fraction")) + std::stod(r.at("skew_fraction")) == Approx(1.0).epsilon(1e-6));
    if (r.at("head") != "-1") CHECK(std::stod(r.at("diagonal_mass")) > 0);
  }
  const auto eig = csv_rows(dir + "/analysis/eigenvalues.csv");
  CHECK(eig.size() >= size_t(L * H * (c.model.head_dim() + 1)));  // standard: head_dim each, merged: more
  const auto comp = csv_rows(dir + "/analysis/composition.csv");
  CHECK(comp.size() == size_t(2 * 3 * H * H * L * (L - 1) / 2));
  const auto circ = csv_rows(dir + "/analysis/circuits.csv");
  CHECK(circ.size() == size_t(2 * L * H * 2 * 3));  // variants × heads × (QK, OV) × 3 directions
  CHECK(std::count(circ[0].at("left_tokens").begin(), circ[0].at("left_tokens").end(), '|') == 4);  // 5 tokens
  const auto abl = csv_rows(dir + "/analysis/ablation.csv");
  int zero = 0, rank = 0;
  for (const auto& r : abl) {
    zero += r.at("kind") == "zero";
    rank += r.at("kind") == "rank";
  }
  CHECK(zero == 2 * L * H);
  CHECK(rank > 0);
  const auto pat = csv_rows(dir + "/analysis/patching.csv");
  CHECK(pat.size() == size_t(2 * L * H));
  const auto esd = csv_rows(dir + "/analysis/esd.csv");
  std::set<std::string> steps;
  bool emb = false;
  for (const auto& r : esd) {
    if (r.at("matrix") == "form") steps.insert(r.at("step"));
    emb = emb || r.at("matrix") == "tok_emb.weight";
  }
  CHECK(emb);
  CHECK(steps.count("10"));  // the forms over training, from the spectra history
  CHECK(steps.count("20"));  // and the final models
  std::ifstream js(dir + "/analysis/analysis.json");
  const auto j = nlohmann::json::parse(js);
  for (auto k : {"geometry", "circuits", "composition", "ablation", "patching", "esd"}) CHECK(j.contains(k));
}

TEST_CASE("on the induction preset the previous-token head's K-composition stands out", "[mechanisms][cli][slow]") {
  auto c = preset_config("task-induction");
  c.variants = {Variant::Standard};
  c.train.steps = 500;  // val accuracy ≈ 0.86 here; the circuit has formed
  const auto dir = trained_run("induction", c);
  std::ostringstream out, err;
  AnalyzeOptions o;
  o.run_dir = dir;
  o.truncate = {0};
  REQUIRE(cmd_analyze(o, out, err) == 0);
  // The previous-token head: the layer-0 head with the most weight on the key just before the query.
  std::map<int, double> prev;
  for (const auto& r : csv_rows(dir + "/analysis/attention/standard_layer0.csv"))
    if (std::stoi(r.at("key")) == std::stoi(r.at("query")) - 1) prev[std::stoi(r.at("head"))] += std::stod(r.at("weight"));
  int prev_head = 0;
  for (const auto& [h, w] : prev)
    if (w > prev[prev_head]) prev_head = h;
  std::map<std::string, double> best;
  int best_k_from = -1;
  double baseline = 0;
  for (const auto& r : csv_rows(dir + "/analysis/composition.csv")) {
    const double s = std::stod(r.at("score"));
    baseline = std::stod(r.at("baseline"));
    if (s > best[r.at("kind")]) {
      best[r.at("kind")] = s;
      if (r.at("kind") == "K") best_k_from = std::stoi(r.at("head_from"));
    }
  }
  INFO("K " << best["K"] << " Q " << best["Q"] << " V " << best["V"] << " baseline " << baseline << " prev-token head " << prev_head);
  CHECK(best_k_from == prev_head);
  CHECK(best["K"] > 1.8 * best["Q"]);
  CHECK(best["K"] > 1.8 * best["V"]);
  CHECK(best["K"] > 1.8 * baseline);
}

TEST_CASE("a large model's ablation runs only when asked (analyze --ablation)", "[mechanisms][cli]") {
  CHECK(!heavy_mechanisms(2, 4, 64));      // the default preset
  CHECK(heavy_mechanisms(12, 12, 768));    // book size: 85M entries
  CHECK(!heavy_mechanisms(2, 8, 512));     // exactly 4M: still computed
  CHECK(heavy_mechanisms(2, 8, 520));      // 4.3M > 4M
  auto c = preset_config("default");
  c.model.emb_dim = 520;
  c.model.n_heads = 8;
  c.variants = {Variant::Standard};
  c.train.steps = 1;
  const auto dir = trained_run("heavy", c);
  std::ostringstream out, err;
  AnalyzeOptions o;
  o.run_dir = dir;
  o.truncate = {0};
  REQUIRE(cmd_analyze(o, out, err) == 0);
  CHECK_THAT(out.str(), Catch::Contains("ablation and patching skipped"));
  CHECK(csv_rows(dir + "/analysis/ablation.csv").empty());
  CHECK(!csv_rows(dir + "/analysis/geometry.csv").empty());  // the rest is written
  // --ablation (o.ablation) takes the small-model path, tested above on the default preset.
}

TEST_CASE("analyze patches a user-given pair of prompts on a text run and refuses a bad pair with one line", "[mechanisms][cli]") {
  auto dir = qkt::temp_dir("patchtext");
  std::string text;
  for (int i = 0; i < 400; ++i) text += "the cat sat on the mat. the dog sat on the log. ";
  std::ofstream(dir + "/t.txt") << text;
  auto c = preset_config("default");
  c.data.kind = "text";
  c.data.path = dir + "/t.txt";
  c.data.tokenizer = "char";
  c.train.steps = 60;
  const auto run = trained_run("patchtext-run", c);
  std::ostringstream out, err;
  AnalyzeOptions o;
  o.run_dir = run;
  o.truncate = {0};
  o.patch_clean = "cat sat on the m";
  o.patch_corrupt = "dog sat on the l";
  REQUIRE(cmd_analyze(o, out, err) == 0);
  const auto pat = csv_rows(run + "/analysis/patching.csv");
  REQUIRE(pat.size() == size_t(2 * c.model.n_layers * c.model.n_heads));
  CHECK(std::stoi(pat[0].at("pairs")) <= 1);  // one pair: kept where the answers differ
  std::ifstream js(run + "/analysis/analysis.json");
  const auto j = nlohmann::json::parse(js);
  CHECK(j["patching"][0]["clean"] == "cat sat on the m");
  CHECK(j["patching"][0]["corrupt"] == "dog sat on the l");
  o.patch_corrupt = "the dog sat";
  CHECK_THROWS_WITH(cmd_analyze(o, out, err), Catch::Contains("the two prompts must have the same number of tokens"));
  o.patch_corrupt.clear();
  CHECK_THROWS_WITH(cmd_analyze(o, out, err), Catch::Contains("give both --patch-clean and --patch-corrupt"));
  // A task run has no text prompts to patch.
  auto t = preset_config("default");
  t.train.steps = 1;
  o.run_dir = trained_run("patchtask", t);
  o.patch_corrupt = "x";
  CHECK_THROWS_WITH(cmd_analyze(o, out, err), Catch::Contains("needs a text run"));
}
