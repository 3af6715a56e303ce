// QKLab tests — analysis: metrics on matrices with known spectra, the QR path against the dense
// SVD, rank truncation (r = d exact, r = 0 uniform causal attention), merged -> standard at full
// rank, principal angles, KL = 0 for the twin start, the analyze command.
#include <catch2/catch.hpp>

#include <map>

#include <cmath>
#include <fstream>

#include "analysis.h"
#include "analyze.h"
#include "checkpoint.h"
#include "helpers.h"
#include "estimates.h"
#include "names.h"
#include "variants.h"
#include "inspect.h"
#include "tokenizer.h"
#include "presets.h"
#include "run_dir.h"
#include "trainer.h"

using namespace qk;
using Catch::Matchers::Contains;

TEST_CASE("rank metrics on known spectra", "[analysis]") {
  const double eps = std::numeric_limits<double>::epsilon();
  // diag(3, 2, 1, 0)
  auto m = rank_metrics({3, 2, 1, 0}, 4, 4, eps);
  CHECK(m.numerical_rank == 3);
  CHECK(m.stable_rank == Approx(14.0 / 9.0));
  CHECK(m.spectral_norm == 3);
  CHECK(m.nuclear_norm == 6);
  const double p[] = {0.5, 1.0 / 3, 1.0 / 6};
  double h = 0;
  for (double x : p) h -= x * std::log(x);
  CHECK(m.effective_rank == Approx(std::exp(h)));
  CHECK(m.rank90 == 2);  // 9+4 = 13 of 14 >= 90%
  CHECK(m.rank99 == 3);
  // orthogonal matrix: all singular values 1
  torch::manual_seed(0);
  auto q = std::get<0>(torch::linalg_qr(torch::randn({16, 16}, torch::kFloat64), "reduced"));
  auto sv = dense_singular_values(q);
  std::vector<double> s(sv.data_ptr<double>(), sv.data_ptr<double>() + 16);
  auto o = rank_metrics(s, 16, 16, eps);
  CHECK(o.numerical_rank == 16);
  CHECK(o.effective_rank == Approx(16));
  CHECK(o.stable_rank == Approx(16));
  // rank-k product
  auto A = torch::randn({32, 5}, torch::kFloat64), B = torch::randn({32, 5}, torch::kFloat64);
  auto pv = dense_singular_values(torch::matmul(A, B.t()));
  std::vector<double> ps(pv.data_ptr<double>(), pv.data_ptr<double>() + 32);
  CHECK(rank_metrics(ps, 32, 32, eps).numerical_rank == 5);
}

TEST_CASE("QR path equals the dense SVD of the product", "[analysis]") {
  torch::manual_seed(1);
  auto A = torch::randn({6, 48, 8}, torch::kFloat64), B = torch::randn({6, 48, 8}, torch::kFloat64);
  auto fast = factored_singular_values(A, B);                            // (6, 8)
  auto dense = dense_singular_values(torch::matmul(A, B.transpose(1, 2))).slice(1, 0, 8);
  const double d = qkt::maxdiff(fast, dense);
  std::cout << "QR path vs dense SVD: maxdiff " << d << "\n";
  CHECK(d < 1e-10);
}

TEST_CASE("spectra of a model: standard forms have rank <= head_dim", "[analysis]") {
  torch::manual_seed(2);
  auto cfg = qkt::tiny_model("float64");
  GPTModel s(Variant::Standard, cfg), m(Variant::Merged, cfg);
  auto ss = model_spectra(*s), ms = model_spectra(*m);
  REQUIRE(ss.size() == 8);
  for (auto& h : ss) {
    CHECK(h.sigma.size() == 16);
    CHECK(h.metrics.numerical_rank == cfg.head_dim());
    CHECK(h.matrix == "WqWk");
  }
  for (auto& h : ms) CHECK(h.metrics.numerical_rank == 16);
  auto one = head_spectrum(*s, 1, 2);
  REQUIRE(one.sigma.size() == ss[4 + 2].sigma.size());
  for (size_t i = 0; i < one.sigma.size(); ++i) CHECK(one.sigma[i] == Approx(ss[4 + 2].sigma[i]).margin(1e-12));
}

TEST_CASE("truncation: r = d is exact — r = 0 is uniform causal attention", "[analysis]") {
  for (const auto& info : all_variants()) {
    const auto v = info.variant;
    INFO(info.name);
    torch::manual_seed(3);
    auto cfg = qkt::tiny_model();
    GPTModel m(v, cfg);
    m->eval();
    auto ids = torch::randint(0, cfg.vocab_size, {2, 8}, torch::kInt64);
    auto base = m->forward(ids);
    GPTModel full = clone_model(*m);
    truncate_forms(*full, cfg.emb_dim);
    full->eval();
    CHECK(qkt::maxdiff(full->forward(ids), base) == 0.0);
    GPTModel zero = clone_model(*m);
    truncate_forms(*zero, 0);
    zero->eval();
    std::vector<torch::Tensor> attn;
    zero->forward(ids, &attn);
    auto expect = torch::tril(torch::ones({8, 8})) / torch::arange(1, 9, torch::kFloat32).unsqueeze(1);
    for (auto& a : attn) CHECK(qkt::maxdiff(a[0][1], expect) < 1e-6);
    // Truncation lowers the rank.
    GPTModel two = clone_model(*m);
    truncate_forms(*two, 2);
    for (auto& h : model_spectra(*two)) CHECK(h.metrics.numerical_rank <= 2);
  }
}

TEST_CASE("merged -> standard at full rank reproduces logits — at rank r it equals truncation", "[analysis]") {
  torch::manual_seed(4);
  auto cfg = qkt::tiny_model("float64");
  GPTModel m(Variant::Merged, cfg);
  m->eval();
  auto ids = torch::randint(0, cfg.vocab_size, {2, 8}, torch::kInt64);
  auto s = merged_to_standard(*m, cfg.emb_dim);
  s->eval();
  const double d = qkt::maxdiff(s->forward(ids), m->forward(ids));
  std::cout << "merged -> standard (r = d): logits maxdiff " << d << "\n";
  CHECK(d < 1e-10);
  auto s3 = merged_to_standard(*m, 3);
  GPTModel t3 = clone_model(*m);
  truncate_forms(*t3, 3);
  s3->eval();
  t3->eval();
  CHECK(qkt::maxdiff(s3->forward(ids), t3->forward(ids)) < 1e-10);
  CHECK(s3->named_parameters()["trf_blocks.0.att.W_query.weight"].size(0) == 4 * 3);
}

TEST_CASE("diagonal mass: 1 for attention to self — (1/T)·Σ1/(i+1) for uniform causal attention", "[analysis]") {
  const int T = 6;
  auto self = torch::eye(T).expand({2, 3, T, T});  // (B, H, T, T)
  CHECK(qkt::maxdiff(diagonal_mass(self), torch::ones({3}, torch::kFloat64)) == 0.0);
  auto uniform = torch::tril(torch::ones({T, T})) / torch::arange(1, T + 1, torch::kFloat32).unsqueeze(1);
  double expect = 0;
  for (int i = 0; i < T; ++i) expect += 1.0 / (i + 1) / T;
  auto d = diagonal_mass(uniform.expand({4, 2, T, T}));
  CHECK(d[0].item<double>() == Approx(expect).epsilon(1e-7));
  CHECK(d[1].item<double>() == Approx(expect).epsilon(1e-7));
  // Previous-token attention (every row on i−1, the first on itself): only position 0 is self.
  auto prev = torch::zeros({1, 1, T, T});
  prev[0][0][0][0] = 1;
  for (int i = 1; i < T; ++i) prev[0][0][i][i - 1] = 1;
  CHECK(diagonal_mass(prev)[0].item<double>() == Approx(1.0 / T));
}

TEST_CASE("principal angles: 0 for the same subspace — pi/2 for orthogonal ones", "[analysis]") {
  auto e = torch::zeros({6, 6}, torch::kFloat64);
  e.index_put_({0, 0}, 3.0);
  e.index_put_({1, 1}, 2.0);
  auto f = torch::zeros({6, 6}, torch::kFloat64);
  f.index_put_({2, 2}, 3.0);
  f.index_put_({3, 3}, 2.0);
  for (double a : principal_angles(e, e * 2, 2, true)) CHECK(std::abs(a) < 1e-7);
  for (double a : principal_angles(e, f, 2, false)) CHECK(a == Approx(M_PI / 2));
}

TEST_CASE("twin start: KL is 0 before any step and grows with training", "[analysis][trainer]") {
  auto c = preset_config("default");
  c.train.twin_start = true;
  c.train.steps = 30;
  c.model.dtype = "float64";
  Experiment e(c);
  auto before = e.divergence_now();
  REQUIRE(before.size() == 1);
  std::cout << "twin start: KL before training " << before[0].kl << "\n";
  CHECK(before[0].kl < 1e-12);
  e.run(nullptr, nullptr);
  auto after = e.divergence_now();
  std::cout << "twin start: KL after 30 steps " << after[0].kl << "\n";
  CHECK(after[0].kl > 1e-6);
}

TEST_CASE("analyze writes spectra — metrics — truncation — angles — attention and JSON", "[analysis][cli]") {
  auto dir = qkt::temp_dir("analyze");
  auto c = preset_config("default");
  c.train.steps = 20;
  c.train.spectra_every = 10;
  {
    Experiment e(c);
    RunWriter w(dir, false);
    w.write_config(e.config());
    e.run(&w, nullptr);
    e.save_checkpoints(dir);
  }
  std::ostringstream out, err;
  AnalyzeOptions o;
  o.run_dir = dir;
  o.truncate = {0, 4, 64};
  REQUIRE(cmd_analyze(o, out, err) == 0);
  for (auto f : {"spectra.csv", "rank_metrics.csv", "truncation.csv", "principal_angles.csv", "divergence.csv",
                 "principal_angles_init.csv",
                 "analysis.json", "attention/summary.csv", "attention/standard_layer0.csv", "attention/tokens.json"})
    CHECK(std::filesystem::exists(dir + "/analysis/" + std::string(f)));
  std::ifstream t(dir + "/analysis/truncation.csv");
  int lines = 0;
  for (std::string l; std::getline(t, l);) ++lines;
  CHECK(lines == 1 + 2 * 3);
  CHECK(std::filesystem::exists(dir + "/spectra_history.csv"));
  {  // diagonal_mass.csv: one row per variant, layer and head; masses in [0, 1]; the uniform baseline
    std::ifstream dm(dir + "/analysis/diagonal_mass.csv");
    std::string line;
    std::getline(dm, line);
    CHECK(line == "variant,seed,layer,head,diagonal_mass,uniform_causal");
    int rows = 0;
    while (std::getline(dm, line)) {
      auto f = split_csv_line(line);
      CHECK(std::stod(f.at(4)) > 0.0);
      CHECK(std::stod(f.at(4)) <= 1.0);
      double uniform = 0;  // over the task's sequence length T
      const int T = task_shape(c.data).seq_len;
      for (int i = 0; i < T; ++i) uniform += 1.0 / (i + 1) / T;
      CHECK(std::stod(f.at(5)) == Approx(uniform).epsilon(1e-8));
      ++rows;
    }
    CHECK(rows == 2 * c.model.n_layers * c.model.n_heads);
  }
  // One layer only: layer 1 truncated to rank 0 changes the loss, layer 0 is untouched.
  o.layer = 1;
  o.out_dir = dir + "/layer1";
  REQUIRE(cmd_analyze(o, out, err) == 0);
  auto losses = [](const std::string& path) {  // (variant, rank) -> val_loss
    std::map<std::pair<std::string, int>, double> m;
    std::ifstream in(path);
    std::string line;
    std::getline(in, line);
    while (std::getline(in, line)) {
      auto f = split_csv_line(line);
      m[{f.at(0), std::stoi(f.at(2))}] = std::stod(f.at(3));
    }
    return m;
  };
  const auto all = losses(dir + "/analysis/truncation.csv"), one = losses(dir + "/layer1/truncation.csv");
  for (std::string v : {"standard", "merged"}) {
    CHECK(one.at({v, 64}) == all.at({v, 64}));  // rank d: the model itself, exactly
    CHECK(one.at({v, 0}) != one.at({v, 64}));   // layer 1 at rank 0 changes the loss
    CHECK(one.at({v, 0}) != all.at({v, 0}));    // ... and differs from truncating every layer
  }
  // In the model: layer 0's forms are bit-identical after truncating layer 1; layer 1's are zero.
  for (const auto& ck : find_checkpoints(dir, c)) {
    auto lm = load_model(ck.path);
    GPTModel t = clone_model(*lm.model);
    truncate_forms(*t, 0, 1);
    CHECK(torch::equal(t->attention(0).bilinear_forms(), lm.model->attention(0).bilinear_forms()));
    CHECK(t->attention(1).bilinear_forms().abs().max().item<double>() == 0.0);
  }
  o.run_dir = dir + "/nope";
  CHECK_THROWS_WITH(cmd_analyze(o, out, err), Contains("not a run folder"));
}

TEST_CASE("size estimates: the parameter formula equals the model's count", "[analysis]") {
  for (const auto& info : all_variants())
  for (bool bias : {false, true})
  for (const char* value : {"linear", "identity"}) {
    const auto v = info.variant;
    if (keys_are_values(v) && std::string(value) == "identity") continue;  // refused (test_variants.cpp)
    INFO(info.name << " qkv_bias " << bias << " value_proj " << value);
    ExperimentConfig c;
    c.model = qkt::tiny_model();
    c.model.qkv_bias = bias;
    c.model.value_proj = value;
    c.model.qk_head_dim = 3;
    GPTModel m(v, c.model);
    auto e = estimate(c, v, c.model.vocab_size);
    CHECK(e.parameters == parameter_count(*m));
    if (v != Variant::MergedSym && v != Variant::MergedLowRank)  // these multiply by more than they store
      CHECK(e.flops_per_token > 6.0 * (e.parameters - 2 * c.model.vocab_size * c.model.emb_dim) * 0.9);
    CHECK(e.memory_bytes > 16.0 * e.parameters);
  }
}

TEST_CASE("Inspector: attention — spectra — truncation and samples on a live text experiment", "[analysis][inspect]") {
  auto dir = qkt::temp_dir("inspect");
  std::string text;
  for (int i = 0; i < 300; ++i) text += "the query meets the key " + std::to_string(i % 10) + ".\n";
  std::ofstream(dir + "/c.txt") << text;
  auto c = preset_config("default");
  c.data.kind = "text";
  c.data.path = dir + "/c.txt";
  c.model.context_length = 32;
  c.train.steps = 5;
  Experiment e(c);
  e.run(nullptr, nullptr);
  Inspector in;
  in.attach(&e);
  REQUIRE(in.variants() == std::vector<std::string>{"standard", "merged"});
  auto att = in.attention("the query");
  REQUIRE(att.size() == 2);
  CHECK(att[0].T == 9);
  CHECK(att[0].tokens[1] == "h");
  CHECK(att[0].weights.size() == static_cast<size_t>(c.model.n_layers * c.model.n_heads));
  auto sp = in.spectra(1, 2);
  REQUIRE(sp.size() == 2);
  CHECK(sp[0].matrix == "WqWk");
  CHECK(sp[1].metrics.numerical_rank == c.model.emb_dim);
  auto tr = in.truncation({0, 64});
  REQUIRE(tr.size() == 2);
  CHECK(tr[0].val_loss.size() == 2);
  auto greedy = in.samples("the ", 0.0, 0, 12, 1);
  REQUIRE(greedy.size() == 2);
  CHECK(greedy[0].text.rfind("the ", 0) == 0);
  CHECK(utf8_decode(greedy[0].text).size() == 4 + 12);
  auto s1 = in.samples("the ", 1.0, 5, 12, 7), s2 = in.samples("the ", 1.0, 5, 12, 7);
  CHECK(s1[1].text == s2[1].text);  // seeded sampling is repeatable
  CHECK_THROWS_WITH(in.spectra(5, 0), Contains("out of range"));
  // A task experiment: the prompt picks a validation sequence.
  auto t = preset_config("default");
  t.train.steps = 1;
  Experiment te(t);
  Inspector ti;
  ti.attach(&te);
  auto a0 = ti.attention(""), a3 = ti.attention("3");
  CHECK(a0[0].T == 10);
  CHECK(a0[0].tokens != a3[0].tokens);
  CHECK_THROWS_WITH(ti.attention("abc"), Contains("number of a validation sequence"));
  CHECK_THROWS_WITH(ti.attention("100000"), Contains("outside"));
}

TEST_CASE("accuracy kinds on known answers: exact match per sequence, or per token", "[analysis][encoder]") {
  torch::manual_seed(22);
  auto cfg = qkt::tiny_model();
  qk::GPTModel m(qk::Variant::Merged, cfg);
  m->eval();
  auto ids = torch::randint(0, cfg.vocab_size, {4, 8}, torch::kInt64);
  torch::Tensor pred;
  {
    torch::NoGradGuard ng;
    pred = m->forward(ids).argmax(-1);  // (4, 8): the model's answers
  }
  auto tg = pred.clone();
  tg[0][3] = (tg[0][3] + 1) % cfg.vocab_size;  // 3 wrong tokens in 2 of the 4 sequences
  tg[0][5] = (tg[0][5] + 1) % cfg.vocab_size;
  tg[2][0] = (tg[2][0] + 1) % cfg.vocab_size;
  tg[3][1] = -100;  // not scored
  const std::vector<qk::Batch> b{{ids, tg}};
  CHECK(qk::evaluate_batches(*m, b, qk::AccuracyKind::Token).acc == Approx(28.0 / 31.0).epsilon(1e-15));
  CHECK(qk::evaluate_batches(*m, b, qk::AccuracyKind::Sequence).acc == Approx(2.0 / 4.0).epsilon(1e-15));
  CHECK(std::isnan(qk::evaluate_batches(*m, b, qk::AccuracyKind::None).acc));
  CHECK(qk::accuracy_kind("enc-sort") == qk::AccuracyKind::Token);
  CHECK(qk::accuracy_kind("sort") == qk::AccuracyKind::Sequence);
  CHECK(qk::accuracy_kind("text") == qk::AccuracyKind::None);
}
