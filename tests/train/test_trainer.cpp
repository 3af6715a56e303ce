// QKLab tests — the paired trainer: determinism, fairness, learning on the default task.
#include <catch2/catch.hpp>

#include <fstream>

#include "helpers.h"
#include "presets.h"
#include "data.h"
#include "model.h"
#include "trainer.h"

using namespace qk;

namespace {
struct Collect : TrainerObserver {
  std::vector<StepRecord> steps;
  std::vector<EvalRecord> evals;
  void on_step(const StepRecord& s) override { steps.push_back(s); }
  void on_eval(const EvalRecord& r) override { evals.push_back(r); }
};

ExperimentConfig small_recall(int steps) {
  ExperimentConfig c = preset_config("default");
  c.train.steps = steps;
  c.train.eval_every = 10;
  c.model.drop_rate = 0.1;  // exercise dropout's random stream too
  return c;
}
}  // namespace

TEST_CASE("same config and seed give a bit-identical loss sequence", "[trainer]") {
  auto run = [](ExperimentConfig c) {
    Experiment e(c);
    Collect obs;
    e.run(&obs, nullptr);
    std::vector<double> l;
    for (auto& s : obs.steps) l.push_back(s.loss);
    for (auto& r : obs.evals) l.push_back(r.val_loss);
    return l;
  };
  auto c = small_recall(25);
  auto a = run(c), b = run(c);
  REQUIRE(a.size() == 25 * 2 + 3 * 2 + 2);  // steps, evals at 0/10/20 and the last
  CHECK(a == b);
  c.train.seed = 124;
  CHECK(run(c) != a);
}

TEST_CASE("fair pair: shared parameters start equal — data order identical", "[trainer]") {
  auto c = small_recall(3);
  c.model.drop_rate = 0.0;
  Experiment e(c);
  Collect obs;
  e.run(&obs, nullptr);
  // Same data order and same shared weights: with S initialised to W_Q W_K^T the two would be the
  // same function; here only the first loss (before any update) is checked to be close, since
  // both start near-uniform on the same batch.
  REQUIRE(obs.steps.size() == 6);
  CHECK(obs.steps[0].tokens_seen == obs.steps[1].tokens_seen);
  CHECK(std::abs(obs.steps[0].loss - obs.steps[1].loss) < 0.2);
  // Before any step, every parameter the variants share is bit-identical.
  Experiment fresh(c);
  auto std_p = fresh.lane_model(0)->named_parameters(), mer_p = fresh.lane_model(1)->named_parameters();
  int shared = 0;
  for (auto& p : mer_p) {
    if (!std_p.contains(p.key())) continue;
    ++shared;
    INFO(p.key());
    CHECK(torch::equal(p.value(), std_p[p.key()]));
  }
  CHECK(shared == static_cast<int>(mer_p.size()) - c.model.n_layers);  // all but each layer's S
}

TEST_CASE("fair mode data order: sources with equally seeded generators yield the same batches", "[trainer]") {
  // Each lane owns a generator seeded with train.seed (trainer.cpp); shuffled text batches and task
  // streams are then identical across lanes, epoch after epoch.
  auto dir = qkt::temp_dir("order");
  std::string text;
  for (int i = 0; i < 400; ++i) text += "sample line number " + std::to_string(i) + "\n";
  std::ofstream(dir + "/c.txt") << text;
  DataConfig d;
  d.kind = "text";
  d.path = dir + "/c.txt";
  auto corpus = load_text_corpus(d, 16);
  auto a = make_text_source(corpus, 4, at::make_generator<at::CPUGeneratorImpl>(123));
  auto b = make_text_source(corpus, 4, at::make_generator<at::CPUGeneratorImpl>(123));
  auto other = make_text_source(corpus, 4, at::make_generator<at::CPUGeneratorImpl>(124));
  bool differs = false;
  for (int i = 0; i < 2 * a->batches_per_epoch() + 3; ++i) {  // across epoch boundaries
    auto x = a->next_train(), y = b->next_train(), z = other->next_train();
    REQUIRE(x.has_value() == y.has_value());
    if (!x) continue;
    CHECK(torch::equal(x->inputs, y->inputs));
    if (z) differs = differs || !torch::equal(x->inputs, z->inputs);
  }
  CHECK(differs);
}

TEST_CASE("default task: both variants learn (val loss < 0.5 within 800 steps)", "[trainer][learn]") {
  ExperimentConfig c = preset_config("default");
  Experiment e(c);
  auto init = e.evaluate_now(c.train.eval_batches);
  Collect obs;
  e.run(&obs, nullptr);
  REQUIRE(e.finished());
  for (int lane = 0; lane < 2; ++lane) {
    const EvalRecord* last = nullptr;
    for (auto& r : obs.evals) if (r.lane == lane) last = &r;
    REQUIRE(last);
    std::cout << last->variant << ": val loss " << init[lane].val_loss << " -> " << last->val_loss
              << ", val acc " << last->val_acc << "\n";
    CHECK(init[lane].val_loss > 2.5);
    CHECK(last->val_loss < 0.5);
    CHECK(last->val_acc > 0.85);
  }
}

TEST_CASE("initial_model rebuilds a lane's step-0 weights exactly — without an experiment", "[trainer]") {
  for (bool twin : {false, true}) {
    auto c = qk::preset_config("default");
    c.train.seeds = 2;
    c.train.twin_start = twin;
    qk::Experiment e(c);
    const auto names = e.lane_names();
    const auto seeds = e.lane_seeds();
    for (size_t lane = 0; lane < names.size(); ++lane) {
      const size_t index = std::find(c.variants.begin(), c.variants.end(), qk::parse_variant(names[lane])) - c.variants.begin();
      auto m0 = qk::initial_model(e.config(), index, seeds[lane]);
      auto live = e.lane_model(static_cast<int>(lane))->named_parameters();
      for (const auto& p : m0->named_parameters()) {
        INFO(names[lane] << " seed " << seeds[lane] << " " << p.key() << " twin " << twin);
        CHECK(torch::equal(p.value(), live[p.key()]));
      }
    }
  }
}

TEST_CASE("EvalScope restores training mode — also when an exception leaves the scope", "[trainer]") {
  qk::GPTModel m(qk::Variant::Merged, qkt::tiny_model());
  m->train();
  try {
    qk::EvalScope eval(*m);
    CHECK(!m->is_training());
    CHECK(!torch::GradMode::is_enabled());
    throw std::runtime_error("mid-analysis failure");
  } catch (const std::runtime_error&) {
  }
  CHECK(m->is_training());
  CHECK(torch::GradMode::is_enabled());
}
