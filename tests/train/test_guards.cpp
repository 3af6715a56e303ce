// QKLab tests — the divergence guard: a variant whose loss or gradients stop being finite is
// halted without its update (it keeps the weights of its last finite step), says so in one line,
// and the other variants train on to the end; the CLI exits 3 and the run folder records it.
#include <catch2/catch.hpp>

#include <fstream>

#include "../cli/cli_run.h"
#include "checkpoint.h"
#include "helpers.h"
#include "model.h"
#include "presets.h"
#include "run_dir.h"
#include "trainer.h"

using Catch::Matchers::Contains;
using namespace qk;

namespace {
struct Collect : TrainerObserver {
  std::vector<HaltRecord> halts;
  std::vector<EvalRecord> evals;
  void on_halt(const HaltRecord& h) override { halts.push_back(h); }
  void on_eval(const EvalRecord& r) override { evals.push_back(r); }
};
}  // namespace

TEST_CASE("divergence guard: a NaN halts that variant only — the other trains to the end", "[guard]") {
  ExperimentConfig c = preset_config("default");
  c.train.steps = 40;
  c.train.eval_every = 10;
  Experiment e(c);
  Collect obs;
  for (int i = 0; i < 15; ++i) e.step(&obs);
  // Poison one weight of the merged model: its next loss is NaN.
  auto merged = e.lane_model(1);
  {
    torch::NoGradGuard ng;
    merged->named_parameters()["trf_blocks.0.att.S"].view(-1)[0] = std::numeric_limits<float>::quiet_NaN();
  }
  const auto head_before = merged->named_parameters()["out_head.weight"].clone();
  e.run(&obs, nullptr);
  REQUIRE(obs.halts.size() == 1);
  const auto& h = obs.halts[0];
  CHECK(h.variant == "merged");
  CHECK(h.step == 15);
  CHECK(h.quantity == "loss");
  CHECK(std::isnan(h.value));
  CHECK_THAT(h.message, Contains("step 15: merged (seed 123) halted: its loss is nan; its weights stay those of step 14"));
  // No update was applied to the halted model; the standard one reached the end.
  CHECK(torch::equal(merged->named_parameters()["out_head.weight"], head_before));
  CHECK(e.steps_done() == 40);
  CHECK(e.finished());
  CHECK(e.halted().size() == 1);
  int standard_after = 0, merged_after = 0;
  for (const auto& r : obs.evals) {
    if (r.step < 15) continue;
    (r.variant == "standard" ? standard_after : merged_after)++;
  }
  CHECK(standard_after == 3);  // steps 20, 30, 39
  CHECK(merged_after == 0);
}

TEST_CASE("divergence guard: lr = 1000 halts every variant — the CLI says so and exits 3", "[guard][cli]") {
  auto dir = qkt::temp_dir("guard");
  auto r = qkt::cli("train --preset default --set train.lr=1000 --set train.steps=200 --set train.eval_every=5 --quiet --out " +
                        dir + "/run", dir);
  INFO(r.out << r.err);
  CHECK(r.code == 3);
  CHECK_THAT(r.out, Contains("standard (seed 123) halted: its") && Contains("merged (seed 123) halted: its"));
  CHECK_THAT(r.out, Contains("halted by the divergence guard (halted.txt)"));
  const auto rc = read_run(dir + "/run");
  CHECK(std::count(rc.halted.begin(), rc.halted.end(), '\n') == 2);
  // What was trained before is kept: metrics with finite losses, loadable checkpoints, a state.
  REQUIRE(!rc.metrics.empty());
  for (const auto& m : rc.metrics) CHECK(std::isfinite(m.val_loss));
  for (const char* v : {"standard", "merged"}) {
    auto lm = load_model(dir + "/run/" + v + ".safetensors");
    for (const auto& p : lm.model->parameters()) CHECK(torch::isfinite(p).all().item<bool>());
  }
  CHECK(has_run_state(dir + "/run"));
}

TEST_CASE("memory — disk and size guards refuse before allocating — with one line", "[guard]") {
  ExperimentConfig c = preset_config("default");
  c.model.vocab_size = 33;
  // The estimate of the default pair is far below a gigabyte; with 1 MB "available" it is refused.
  CHECK_NOTHROW(check_memory(c, 1e9));
  CHECK_THROWS_WITH(check_memory(c, 1e6), Contains("config: the experiment needs about") && Contains("GB are available"));
  Experiment e(c);
  auto dir = qkt::temp_dir("disk");
  CHECK_NOTHROW(check_disk_space(dir, e, 1e9));
  CHECK_THROWS_WITH(check_disk_space(dir, e, 1e3), Contains("checkpoints and training state need about") && Contains("GB free"));

  auto expect_error = [&](const std::string& args, const std::string& needle) {
    auto r = qkt::cli("train " + args + " --out " + dir + "/r", dir);
    INFO(args << "\n" << r.out << r.err);
    CHECK(r.code == 2);
    CHECK_THAT(r.err, Contains(needle));
    CHECK(std::count(r.err.begin(), r.err.end(), '\n') == 1);
  };
  // Absurd sizes: refused by validation, without allocating.
  expect_error("--set model.emb_dim=1000000000", "model.emb_dim: must be at most 65536");
  expect_error("--set model.context_length=100000000", "model.context_length: must be at most 1048576");
  expect_error("--set train.steps=1000000000000", "train.steps: expected an integer (at most 2147483647)");
  expect_error("--set train.lr=nan", "train.lr: expected a number");
  expect_error("--set train.steps=550000009966E17342048039366", "train.steps: expected an integer");  // found by fuzzing
  // Large but representable: the memory guard (this machine's MemAvailable) refuses it.
  expect_error("--set model.emb_dim=16384 --set model.n_layers=96 --set model.n_heads=128", "GB are available (MemAvailable)");
  CHECK(!qkt::exists(dir + "/r/standard.safetensors"));
}

TEST_CASE("malformed inputs: tokenizer files — a corrupt run folder — a huge one-line corpus", "[guard][robust]") {
  auto dir = qkt::temp_dir("malformed");
  auto put = [&](const std::string& name, const std::string& bytes) {
    std::ofstream(dir + "/" + name, std::ios::binary) << bytes;
    return dir + "/" + name;
  };
  auto expect_error = [&](const std::string& args, const std::string& needle) {
    auto r = qkt::cli(args, dir);
    INFO(args << "\n" << r.out << r.err);
    CHECK(r.code == 2);
    CHECK_THAT(r.err, Contains(needle));
    CHECK(std::count(r.err.begin(), r.err.end(), '\n') == 1);
    CHECK(r.err.find('\xff') == std::string::npos);
  };
  put("c.txt", "some text to tokenize\n");
  expect_error("tokenize --tokenizer bpe:" + put("bpe.json", "{\"kind\": \"bpe\", \"merges\": [[1, 999]]}") + " " + dir + "/c.txt",
               "merges[0]: ids must be < 256");
  expect_error("tokenize --tokenizer bpe:" + put("bpe2.json", "{\"kind\": \"bpe\", \"merges\": 7\xff}") + " " + dir + "/c.txt",
               "bpe2.json: malformed JSON");
  expect_error("tokenize --tokenizer gpt2 --encoder " + put("enc.json", "{\"a\xff\": 0}") + " --vocab " + put("v.bpe", "#v\na b\n") +
                   " " + dir + "/c.txt",
               "enc.json: malformed JSON");
  expect_error("tokenize --tokenizer gpt2 --encoder " + put("enc2.json", "{\"a\": \"zero\"}") + " --vocab " + dir + "/v.bpe " +
                   dir + "/c.txt",
               "enc2.json: token 'a': expected an id");
  // A run folder with a corrupt checkpoint: what can be read is read, the rest is named.
  REQUIRE(qkt::cli("train --preset default --set train.steps=5 --quiet --out " + dir + "/run", dir).code == 0);
  put("run/merged.safetensors", std::string("\x10\0\0\0\0\0\0\0{\"a\":\xff\xff}", 16));
  auto r = qkt::cli("analyze " + dir + "/run", dir);
  CHECK(r.code == 2);
  CHECK_THAT(r.err, Contains("merged.safetensors: not a valid safetensors file"));
  CHECK_NOTHROW(read_run(dir + "/run"));  // the curves still read
  // A 10 MB corpus on one line (no spaces, no newline): tokenised in linear time, trains.
  put("line.txt", std::string(10'000'000, 'a'));
  r = qkt::cli("train --set data.kind=text --set data.path=" + dir + "/line.txt --set data.tokenizer=char --set train.steps=2 "
               "--set train.eval_batches=1 --quiet --out " + dir + "/line", dir);
  INFO(r.out << r.err);
  CHECK(r.code == 0);
}
