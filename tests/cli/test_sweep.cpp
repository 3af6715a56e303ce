// QKLab tests — sweeps and budget matching end to end: `qklab-cli sweep` with 2 local jobs (run
// folders, summary.csv and aggregate.csv by content), a rerun that skips finished runs, an
// interrupted sweep finished by the same command with the results of an uninterrupted one, spec
// errors as one line; `match` and `train --match` giving equal parameter counts. (The Slurm backend
// is tests/slurm/test_slurm_sweep.sh.)
#include <catch2/catch.hpp>

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <set>
#include <cmath>
#include <sstream>
#include <thread>

#include "budget.h"
#include "cli_run.h"
#include "estimates.h"
#include "helpers.h"
#include "presets.h"
#include "run_dir.h"
#include "study.h"
#include "sweep.h"
#include "variants.h"

#include <nlohmann/json.hpp>

using Catch::Matchers::Contains;
using qkt::cli;

namespace {

const char* kSpec = R"({"name": "t", "preset": "default",
  "set": {"train.steps": 60, "train.eval_every": 20, "train.eval_batches": 2},
  "variants": ["standard", "merged"], "grid": {"model.qk_head_dim": [2, 8]},
  "applies_to": {"model.qk_head_dim": ["standard"]}, "seeds": [3, 4], "target_loss": 2.7})";

std::map<std::string, std::map<std::string, std::string>> by_run(const qk::CsvTable& t) {
  std::map<std::string, std::map<std::string, std::string>> out;
  for (const auto& r : t.rows)
    for (size_t i = 0; i < t.header.size(); ++i) out[r[0]][t.header[i]] = r[i];
  return out;
}

}  // namespace

TEST_CASE("sweep: local jobs — run folders — summary and aggregate by content — a rerun skips", "[cli][sweep]") {
  auto dir = qkt::temp_dir("sweep");
  std::ofstream(dir + "/s.json") << kSpec;
  auto r = cli("sweep " + dir + "/s.json --out " + dir + "/sw --jobs 2", dir);
  INFO(r.out << r.err);
  REQUIRE(r.code == 0);
  CHECK_THAT(r.out, Contains("6 runs (2 variants x 2 model.qk_head_dim x 2 seeds)"));
  CHECK_THAT(r.out, Contains("| standard | 2 | 2 |"));
  // The printed table: a header cell for every column of its rows.
  CHECK_THAT(r.out, Contains("| final val loss (mean ± std) | perplexity | final val acc | wall s |"));
  {
    std::istringstream lines(r.out);
    std::string line, header;
    while (std::getline(lines, line))
      if (line.rfind("| variant |", 0) == 0) header = line;
      else if (!header.empty() && line.rfind("| standard |", 0) == 0)
        CHECK(std::count(line.begin(), line.end(), '|') == std::count(header.begin(), header.end(), '|'));
    CHECK(!header.empty());
  }
  CHECK_THAT(r.err, Contains("runs done"));
  // standard at qk 2 and 8 × 2 seeds, merged once per seed (qk_head_dim does not apply to it).
  const auto sum = qk::read_csv_table(dir + "/sw/summary.csv");
  REQUIRE(sum.rows.size() == 6);
  auto rows = by_run(sum);
  REQUIRE(rows.count("standard_qk_head_dim-2_seed3"));
  REQUIRE(rows.count("merged_seed4"));
  CHECK(rows["merged_seed4"]["model.qk_head_dim"].empty());
  CHECK(rows["standard_qk_head_dim-8_seed3"]["model.qk_head_dim"] == "8");
  CHECK(rows["standard_qk_head_dim-2_seed3"]["steps"] == "60");
  // The counts are the formula's for each run's config.
  qk::ExperimentConfig c = qk::preset_config("default");
  c.model.qk_head_dim = 2;
  CHECK(std::stoll(rows["standard_qk_head_dim-2_seed3"]["params"]) ==
        qk::estimate(c, qk::Variant::Standard, qk::task_vocab_size(c.data)).parameters);
  for (auto& [name, row] : rows) {
    const double loss = std::stod(row["final_val_loss"]);
    CHECK(loss > 0.0);
    CHECK(loss < 5.0);
    CHECK(std::stod(row["best_val_loss"]) <= loss);
    CHECK(qkt::exists(dir + "/sw/runs/" + name + "/metrics.csv"));
    CHECK(qkt::exists(dir + "/sw/runs/" + name + "/finished.json"));
  }
  // aggregate.csv: mean/min/max over the two seeds of each group, from the summary's values.
  const auto agg = qk::read_csv_table(dir + "/sw/aggregate.csv");
  REQUIRE(agg.rows.size() == 3);
  const int mean = agg.column("final_val_loss_mean"), mn = agg.column("final_val_loss_min"),
            mx = agg.column("final_val_loss_max"), sd = agg.column("final_val_loss_std"), seeds = agg.column("seeds");
  REQUIRE(mean >= 0);
  const auto& g = agg.rows[0];  // standard, qk 2
  CHECK(g[0] == "standard");
  CHECK(g[seeds] == "2");
  const double a = std::stod(rows["standard_qk_head_dim-2_seed3"]["final_val_loss"]),
               b = std::stod(rows["standard_qk_head_dim-2_seed4"]["final_val_loss"]);
  CHECK(std::stod(g[mean]) == Approx((a + b) / 2).epsilon(1e-7));
  CHECK(std::stod(g[mn]) == Approx(std::min(a, b)).epsilon(1e-8));
  CHECK(std::stod(g[mx]) == Approx(std::max(a, b)).epsilon(1e-8));
  CHECK(std::stod(g[sd]) == Approx(std::abs(a - b) / std::sqrt(2.0)).epsilon(1e-6));
  // Perplexity: the mean of the seeds' exp(final loss).
  REQUIRE(agg.column("final_val_ppl_mean") >= 0);
  CHECK(std::stod(g[agg.column("final_val_ppl_mean")]) == Approx((std::exp(a) + std::exp(b)) / 2).epsilon(1e-6));

  // curves.csv: each group's evaluations (steps 0, 20, 40, 59) over its two seeds; the last point is
  // the aggregate's final loss, training FLOPs are tokens × the group's FLOPs per token, and each
  // point's mean/min/max are the seeds' values read from their metrics.csv.
  const auto cur = qk::read_csv_table(dir + "/sw/curves.csv");
  REQUIRE(cur.column("training_flops") >= 0);
  std::vector<std::vector<std::string>> std2;
  for (const auto& row : cur.rows)
    if (row[size_t(cur.column("series"))] == "standard qk_head_dim=2") std2.push_back(row);
  REQUIRE(std2.size() == 4);
  CHECK(std2.front()[size_t(cur.column("step"))] == "0");
  const auto& last = std2.back();
  CHECK(last[size_t(cur.column("step"))] == "59");
  CHECK(last[size_t(cur.column("seeds"))] == "2");
  CHECK(std::stod(last[size_t(cur.column("val_loss_mean"))]) == Approx(std::stod(g[mean])).epsilon(1e-7));
  CHECK(std::stod(last[size_t(cur.column("val_loss_min"))]) == Approx(std::min(a, b)).epsilon(1e-8));
  CHECK(std::stod(last[size_t(cur.column("val_loss_ppl_mean"))]) == Approx(std::exp((a + b) / 2)).epsilon(1e-7));
  const double tokens = std::stod(last[size_t(cur.column("tokens"))]);
  const auto m3 = qk::read_metrics_csv(dir + "/sw/runs/standard_qk_head_dim-2_seed3/metrics.csv");
  const auto m4 = qk::read_metrics_csv(dir + "/sw/runs/standard_qk_head_dim-2_seed4/metrics.csv");
  CHECK(tokens == double(m3.back().tokens_seen));
  CHECK(tokens > 0);
  CHECK(std::stod(last[size_t(cur.column("training_flops"))]) ==
        Approx(tokens * std::stod(g[agg.column("flops_per_token")])).epsilon(1e-7));
  double v3 = NAN, v4 = NAN;
  for (const auto& m : m3) if (m.step == 20 && !std::isnan(m.val_loss)) v3 = m.val_loss;
  for (const auto& m : m4) if (m.step == 20 && !std::isnan(m.val_loss)) v4 = m.val_loss;
  CHECK(std::stod(std2[1][size_t(cur.column("val_loss_max"))]) == Approx(std::max(v3, v4)).epsilon(1e-8));
  CHECK(std::stod(std2[1][size_t(cur.column("val_loss_mean"))]) == Approx((v3 + v4) / 2).epsilon(1e-7));

  // The same command again: nothing re-run, the tables rewritten with the same rows.
  const auto before = std::filesystem::last_write_time(dir + "/sw/runs/merged_seed3/metrics.csv");
  auto again = cli("sweep " + dir + "/s.json --out " + dir + "/sw --jobs 2", dir);
  REQUIRE(again.code == 0);
  CHECK_THAT(again.out, Contains("6 already finished"));
  CHECK(std::filesystem::last_write_time(dir + "/sw/runs/merged_seed3/metrics.csv") == before);
  CHECK(qk::read_csv_table(dir + "/sw/summary.csv").rows == sum.rows);
  // A different spec into the same folder is refused; the finished sweep is untouched.
  std::ofstream(dir + "/other.json") << R"({"variants": ["merged"]})";
  auto other = cli("sweep " + dir + "/other.json --out " + dir + "/sw", dir);
  CHECK(other.code == 2);
  CHECK_THAT(other.err, Contains("holds a different sweep"));
  CHECK(qk::read_csv_table(dir + "/sw/summary.csv").rows == sum.rows);
}

TEST_CASE("sweep: interrupted — the same command finishes it with an uninterrupted sweep's results", "[cli][sweep]") {
  auto dir = qkt::temp_dir("sweepint");
  const std::string spec = R"({"name": "i", "preset": "default",
    "set": {"train.steps": 300, "train.eval_every": 50, "train.eval_batches": 2},
    "variants": ["standard", "merged"], "seeds": [5]})";
  std::ofstream(dir + "/s.json") << spec;
  auto full = cli("sweep " + dir + "/s.json --out " + dir + "/full --jobs 2", dir);
  REQUIRE(full.code == 0);
  // Start it again elsewhere, stop it (SIGINT, as Ctrl+C) once both runs have logged steps.
  const std::string cmd = std::string(QKLAB_CLI) + " sweep " + dir + "/s.json --out " + dir + "/part --jobs 2 > " +
                          dir + "/part.txt 2>&1";
  pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    execl("/bin/sh", "sh", "-c", ("exec " + cmd).c_str(), (char*)nullptr);
    _exit(127);
  }
  auto logged = [&](const std::string& run) {
    std::ifstream in(dir + "/part/runs/" + run + "/metrics.csv");
    std::string line;
    int n = 0;
    while (std::getline(in, line)) ++n;
    return n;
  };
  for (int i = 0; i < 600 && (logged("standard_seed5") < 3 || logged("merged_seed5") < 3); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  kill(pid, SIGINT);
  int status = 0;
  waitpid(pid, &status, 0);
  const int code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  INFO(qkt::slurp(dir + "/part.txt"));
  if (code == 130) {  // stopped mid-way (on a very fast machine it may have finished first)
    CHECK_THAT(qkt::slurp(dir + "/part.txt"), Contains("the same command finishes the rest"));
    CHECK(!qkt::exists(dir + "/part/summary.csv"));
  } else {
    WARN("the sweep finished before it could be interrupted; the resume path was not exercised");
    CHECK(code == 0);
  }
  auto rest = cli("sweep --out " + dir + "/part --jobs 2", dir);  // continue the folder's own sweep
  INFO(rest.out << rest.err);
  REQUIRE(rest.code == 0);
  auto a = by_run(qk::read_csv_table(dir + "/full/summary.csv"));
  auto b = by_run(qk::read_csv_table(dir + "/part/summary.csv"));
  REQUIRE(a.size() == 2);
  REQUIRE(b.size() == 2);
  for (auto& [run, row] : a) {
    INFO(run);
    CHECK(b[run]["final_val_loss"] == row["final_val_loss"]);  // exact resume: bit-identical losses
    CHECK(b[run]["best_val_acc"] == row["best_val_acc"]);
    CHECK(b[run]["steps"] == "300");
  }
}

TEST_CASE("sweep: each run's threads stay within its share of the cores (book mode too)", "[cli][sweep]") {
  // Without CTest's OMP_NUM_THREADS=1, which would cap the automatic counts by itself.
  qkt::EnvGuard omp("OMP_NUM_THREADS", nullptr), blas("OPENBLAS_NUM_THREADS", nullptr);
  auto dir = qkt::temp_dir("sweep-threads");
  std::ofstream(dir + "/s.json") << R"({"name": "b", "preset": "default",
    "set": {"train.steps": 4, "train.eval_every": 2, "train.mode": "book"}, "variants": ["standard"], "seeds": [1]})";
  auto r = cli("sweep " + dir + "/s.json --out " + dir + "/sw --threads 1", dir);
  INFO(r.out << r.err);
  REQUIRE(r.code == 0);
  const auto c = qk::load_config_file(dir + "/sw/runs/standard_seed1/config.json");
  CHECK(c.train.threads == 1);
  CHECK(c.train.blas_threads == 1);  // book mode's automatic 2, within the 1-thread share
}

TEST_CASE("sweep: bad specs get one line naming the field — exit 2 — nothing written", "[cli][sweep]") {
  auto dir = qkt::temp_dir("sweepbad");
  auto expect = [&](const std::string& json, const std::string& needle) {
    std::ofstream(dir + "/s.json") << json;
    auto r = cli("sweep " + dir + "/s.json --out " + dir + "/o", dir);
    INFO(json << " -> " << r.err);
    CHECK(r.code == 2);
    CHECK_THAT(r.err, Contains(needle));
    CHECK(std::count(r.err.begin(), r.err.end(), '\n') == 1);
    CHECK(!qkt::exists(dir + "/o"));
  };
  expect(R"({"grid": {}})", "variants: missing");
  expect(R"({"variants": ["standard", "fused"]})", "unknown variant 'fused'");
  expect(R"({"variants": ["merged"], "grid": {"model.nope": [1]}})", "grid.model.nope");
  expect(R"({"variants": ["merged"], "grid": {"model.n_heads": []}})", "grid.model.n_heads: expected a non-empty list");
  expect(R"({"variants": ["merged"], "grid": {"model.n_heads": [3]}})", "n_heads");
  expect(R"({"variants": ["merged"], "seeds": "x"})", "seeds: expected a count or a list");
  expect(R"({"variants": ["merged"], "match": {"by": "time"}})", "match.by");
  expect(R"({"variants": ["merged"], "applies_to": {"model.emb_dim": ["merged"]}})", "applies_to.model.emb_dim: not a key of grid");
  expect(R"({"variants": ["merged"], "colour": 1})", "unknown key 'colour'");
  expect("{not json", "malformed JSON");
  auto r = cli("sweep --preset sweep-nope --out " + dir + "/o", dir);
  CHECK(r.code == 2);
  CHECK_THAT(r.err, Contains("unknown sweep preset 'sweep-nope' (known: sweep-bilinear-rank, sweep-recall-heads, sweep-language, sweep-projections)"));
}

TEST_CASE("budget matching: equal parameter counts — and the nearest FLOPs", "[sweep][match]") {
  qk::ExperimentConfig c = qk::preset_config("task-recall");
  c.model.emb_dim = 64;
  const int64_t vocab = qk::task_vocab_size(c.data);
  // merged with H heads costs H·d² for S; standard matches it exactly with qk_head_dim = d/2.
  for (int H : {1, 2, 4, 8}) {
    c.model.n_heads = H;
    auto p = qk::propose_matches(c, qk::Variant::Merged, qk::Variant::Standard, qk::MatchBy::Params, vocab,
                                 {"model.qk_head_dim"});
    REQUIRE(p.size() == 1);
    CHECK(p[0].value == 32);
    qk::ExperimentConfig m = c;
    m.model = p[0].model;
    CHECK(qk::estimate(m, qk::Variant::Standard, vocab).parameters ==
          qk::estimate(c, qk::Variant::Merged, vocab).parameters);
  }
  // merged-lowrank at r = d/H has standard's count exactly.
  c.model.n_heads = 4;
  auto low = qk::propose_matches(c, qk::Variant::Standard, qk::Variant::MergedLowRank, qk::MatchBy::Params, vocab,
                                 {"model.qk_head_dim"});
  REQUIRE(!low.empty());
  CHECK(low[0].gap() == 0.0);
  CHECK(low[0].value == 16);
  // By FLOPs: the chosen number of layers is the best integer (its neighbours are further off).
  auto fl = qk::propose_matches(c, qk::Variant::Standard, qk::Variant::Merged, qk::MatchBy::Flops, vocab,
                                {"model.emb_dim"});
  REQUIRE(fl.size() == 1);
  const double ref = qk::estimate(c, qk::Variant::Standard, vocab).flops_per_token;
  for (int step : {-4, 4}) {
    qk::ExperimentConfig n = c;
    n.model = fl[0].model;
    n.model.emb_dim += step;
    CHECK(std::abs(qk::estimate(n, qk::Variant::Merged, vocab).flops_per_token - ref) >= std::abs(fl[0].cost - ref));
  }
  CHECK(std::abs(fl[0].gap()) < 0.1);  // d moves in steps of H: FLOPs only that finely
}

TEST_CASE("match and train --match: the proposals — and matched runs with equal parameter counts", "[cli][sweep][match]") {
  auto dir = qkt::temp_dir("match");
  auto m = cli("match --preset task-recall --set model.emb_dim=64 --reference merged --target standard --by params", dir);
  INFO(m.out << m.err);
  REQUIRE(m.code == 0);
  CHECK_THAT(m.out, Contains("| --set model.qk_head_dim=32 |"));
  CHECK_THAT(m.out, Contains("+0.00% |"));
  auto bad = cli("match --by time", dir);
  CHECK(bad.code == 2);
  CHECK_THAT(bad.err, Contains("expected 'params' or 'flops', got 'time'"));

  auto t = cli("train --preset default --set 'variants=[\"merged\",\"standard\"]' --set train.steps=20 --set train.eval_every=10 "
               "--set train.eval_batches=1 --match params --out " + dir + "/m",
               dir);
  INFO(t.out << t.err);
  REQUIRE(t.code == 0);
  auto rows = by_run(qk::read_csv_table(dir + "/m/summary.csv"));
  REQUIRE(rows.size() == 2);
  CHECK(rows["standard_seed" + std::to_string(qk::preset_config("default").train.seed)]["matched"] ==
        "model.qk_head_dim=32");
  std::set<std::string> params;
  for (auto& [_, r] : rows) params.insert(r["params"]);
  CHECK(params.size() == 1);  // equal counts
}

namespace {

// Process ids of this sweep folder's local jobs (`qklab-cli sweep --run-index I ... --out DIR`).
std::vector<pid_t> sweep_jobs(const std::string& sweep_dir) {
  std::vector<pid_t> out;
  for (const auto& e : std::filesystem::directory_iterator("/proc")) {
    const std::string name = e.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::string cmd = qkt::slurp(e.path().string() + "/cmdline");
    for (auto& c : cmd)
      if (c == '\0') c = ' ';
    if (cmd.find("--run-index") != std::string::npos && cmd.find("--out " + sweep_dir + " ") != std::string::npos)
      out.push_back(static_cast<pid_t>(std::stol(name)));
  }
  return out;
}

}  // namespace

TEST_CASE("sweep: killed -9 — one local job, then the whole sweep — the same command finishes exactly the missing runs",
          "[cli][sweep][crash]") {
  auto dir = qkt::temp_dir("sweepkill");
  const std::string spec = R"({"name": "k", "preset": "default",
    "set": {"train.steps": 240, "train.eval_every": 40, "train.eval_batches": 2, "train.autosave_steps": 30},
    "variants": ["standard", "merged"], "seeds": [5, 6]})";
  std::ofstream(dir + "/s.json") << spec;
  auto full = cli("sweep " + dir + "/s.json --out " + dir + "/full --jobs 2", dir);
  REQUIRE(full.code == 0);
  const std::string part = dir + "/part";
  // Its own process group (setsid), so that the whole sweep can be killed at once.
  const std::string cmd = "exec setsid " + std::string(QKLAB_CLI) + " sweep " + dir + "/s.json --out " + part +
                          " --jobs 2 > " + dir + "/part.txt 2>&1";
  pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    execl("/bin/sh", "sh", "-c", cmd.c_str(), (char*)nullptr);
    _exit(127);
  }
  auto state_past = [&](int step) {  // a running job whose state is past `step`
    for (const char* r : {"standard_seed5", "merged_seed5", "standard_seed6", "merged_seed6"})
      if (qk::run_state_step(part + "/runs/" + r) >= step && !qkt::exists(part + "/runs/" + r + "/" + qk::sweep_files::kFinished))
        return true;
    return false;
  };
  const auto t0 = std::chrono::steady_clock::now();
  auto wait_for = [&](const std::function<bool()>& f) {
    while (!f() && std::chrono::steady_clock::now() - t0 < std::chrono::seconds(300))
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    return f();
  };
  // 1. kill -9 one local job once it has saved a state: the sweep goes on without it.
  REQUIRE(wait_for([&] { return state_past(30) && !sweep_jobs(part).empty(); }));
  const auto jobs = sweep_jobs(part);
  REQUIRE(!jobs.empty());
  kill(jobs.front(), SIGKILL);
  // 2. then, once another state is saved, kill -9 the sweep and every job it runs.
  REQUIRE(wait_for([&] { return state_past(60); }));
  const int finished_before = [&] {
    int n = 0;
    for (const char* r : {"standard_seed5", "merged_seed5", "standard_seed6", "merged_seed6"})
      n += qkt::exists(part + "/runs/" + r + "/" + qk::sweep_files::kFinished);
    return n;
  }();
  kill(-pid, SIGKILL);
  waitpid(pid, nullptr, 0);
  for (int i = 0; i < 200 && !sweep_jobs(part).empty(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  CHECK(sweep_jobs(part).empty());
  const std::string log = qkt::slurp(dir + "/part.txt");
  INFO(log);
  CHECK_THAT(log, Contains("failed (exit 137)"));  // the job killed in step 1
  CHECK(!qkt::exists(part + "/summary.csv"));
  // The same command: finished runs are skipped, interrupted ones resume from their states.
  auto rest = cli("sweep " + dir + "/s.json --out " + part + " --jobs 2", dir);
  INFO(rest.out << rest.err);
  REQUIRE(rest.code == 0);
  CHECK_THAT(rest.out, Contains(std::to_string(finished_before) + " already finished"));
  const auto a = qk::read_csv_table(dir + "/full/summary.csv"), b = qk::read_csv_table(part + "/summary.csv");
  REQUIRE(a.rows.size() == 4);
  REQUIRE(b.header == a.header);
  auto ra = by_run(a), rb = by_run(b);
  for (auto& [run, row] : ra)
    for (const auto& col : a.header) {
      if (col == "wall_s" || col == "wall_to_target") continue;  // measured time: the one thing that may differ
      INFO(run << " " << col);
      CHECK(rb[run][col] == row[col]);
    }
}

TEST_CASE("study: a learning-rate stage, then each variant at its best rate — resumed — and its errors", "[cli][sweep][study]") {
  auto dir = qkt::temp_dir("study");
  const std::string spec = R"({"name": "st", "preset": "default",
    "set": {"train.steps": 20, "train.eval_every": 10, "train.eval_batches": 2},
    "variants": ["standard", "merged"],
    "stages": [{"name": "lr", "grid": {"train.lr": [0.0001, 0.01]}, "seeds": [1]},
               {"name": "cmp", "tune": {"from": "lr", "key": "train.lr"},
                "match": {"by": "params", "reference": "standard"}, "seeds": [2, 3]}]})";
  std::ofstream(dir + "/st.json") << spec;
  auto r = cli("sweep " + dir + "/st.json --out " + dir + "/s --jobs 2", dir);
  INFO(r.out << r.err);
  REQUIRE(r.code == 0);
  CHECK_THAT(r.out, Contains("study 'st': 2 stages (lr, cmp), scale 1"));
  // The choice is the lowest final validation loss of the first stage, per variant.
  const auto lr = by_run(qk::read_csv_table(dir + "/s/lr/summary.csv"));
  REQUIRE(lr.size() == 4);
  const auto tuned = qk::read_csv_table(dir + "/s/tuned.csv");
  REQUIRE(tuned.rows.size() == 2);
  for (const auto& row : tuned.rows) {
    const std::string v = row[tuned.column("variant")], val = row[tuned.column("value")];
    const double lo = std::stod(lr.at(v + "_lr-0.0001_seed1").at("final_val_loss"));
    const double hi = std::stod(lr.at(v + "_lr-0.01_seed1").at("final_val_loss"));
    CHECK(val == (lo < hi ? "0.0001" : "0.01"));
    CHECK(std::stod(row[tuned.column("mean")]) == Approx(std::min(lo, hi)).epsilon(1e-6));
    // Every run of the second stage trained at that rate.
    for (const char* seed : {"2", "3"}) {
      const auto c = qk::load_config_file(dir + "/s/cmp/runs/" + v + "_seed" + seed + ".json");
      CHECK(c.train.lr == Approx(std::stod(val)));
    }
  }
  const auto cmp = by_run(qk::read_csv_table(dir + "/s/cmp/summary.csv"));
  REQUIRE(cmp.size() == 4);
  CHECK(cmp.at("merged_seed2").at("params") == cmp.at("standard_seed2").at("params"));  // matched
  // The same command again: nothing reruns; at another scale the folder is refused.
  auto again = cli("sweep --out " + dir + "/s", dir);
  INFO(again.out << again.err);
  CHECK(again.code == 0);
  CHECK_THAT(again.out, Contains("4 already finished"));
  auto other = cli("sweep " + dir + "/st.json --out " + dir + "/s --scale 2", dir);
  CHECK(other.code == 2);
  CHECK_THAT(other.err, Contains("holds a different study or scale"));
  // A stage tuned from one that is not before it: one line, nothing written.
  std::string bad = spec;
  bad.replace(bad.find("\"from\": \"lr\""), 12, "\"from\": \"xx\"");
  std::ofstream(dir + "/bad.json") << bad;
  auto b = cli("sweep " + dir + "/bad.json --out " + dir + "/b", dir);
  CHECK(b.code == 2);
  CHECK_THAT(b.err, Contains("stages[1]: tune.from: 'xx' is not an earlier stage"));
  CHECK_FALSE(std::filesystem::exists(dir + "/b"));
}

TEST_CASE("study: the sweep-language preset resolves all five stages", "[sweep][study]") {
  const auto j = nlohmann::json::parse(qk::sweep_preset_json("sweep-language"));
  const auto s = qk::parse_study(j, "sweep-language");
  REQUIRE(s.stages.size() == 5);
  CHECK(s.stages[0].name == "lr");
  for (size_t i = 1; i < 5; ++i) {
    CHECK(s.stages[i].tune_from == "lr");
    CHECK(s.stages[i].tune_key == "train.lr");
  }
  const auto lr = qk::parse_sweep_spec(s.stages[0].spec.dump(), "lr");
  CHECK(lr.variants.size() == 5);
  REQUIRE(lr.grid.size() == 1);
  CHECK(lr.grid[0].second.size() == 4);
  const auto large = qk::parse_sweep_spec(s.stages[4].spec.dump(), "large-flops");
  CHECK(large.base.model.emb_dim == 192);
  CHECK(large.seeds.size() == 3);
  CHECK(large.match->by == qk::MatchBy::Flops);
}

TEST_CASE("sweep-projections: every run is the paper's protocol at one grid point, the same points for every variant", "[sweep][encoder]") {
  const auto spec = qk::parse_sweep_spec(qk::sweep_preset_json("sweep-projections"), "sweep-projections");
  const auto runs = qk::expand_sweep(spec);
  REQUIRE(runs.size() == 480);  // 8 variants x 5 tasks x 2 lengths x 2 widths x 1 head count x 3 seeds
  std::map<std::string, std::set<std::string>> points;  // variant -> its grid points (with the seed)
  for (const auto& r : runs) {
    const auto& c = r.config;
    INFO(r.name);
    CHECK_FALSE(c.model.causal);
    CHECK(c.model.qkv_bias);
    CHECK(c.model.n_layers == 2);
    CHECK(c.model.n_heads == 2);
    CHECK(c.model.context_length == 128);
    CHECK(c.data.kind.rfind("enc-", 0) == 0);
    CHECK(c.data.task_vocab == 10);
    CHECK(c.data.train_sequences == 10000);
    CHECK(c.data.val_sequences == 2000);
    CHECK(c.train.batch_size == 128);
    CHECK(c.train.epochs == 2);
    CHECK(c.train.lr == 1e-3);
    CHECK(c.train.weight_decay == 0.0);
    CHECK(c.train.grad_clip == 5.0);
    CHECK(c.train.warmup_steps == 7);
    CHECK(c.train.eval_batches * c.train.batch_size >= c.data.val_sequences);  // the whole test set
    CHECK(r.matched.empty());
    std::string p = c.data.kind + "/" + std::to_string(c.data.seq_items) + "/" + std::to_string(c.model.emb_dim) + "/" +
                    std::to_string(r.seed);
    points[qk::variant_name(r.variant)].insert(p);
  }
  REQUIRE(points.size() == 8);
  for (const auto& [v, ps] : points) {
    INFO(v);
    CHECK(ps.size() == 60);
    CHECK(ps == points.begin()->second);
  }
}
