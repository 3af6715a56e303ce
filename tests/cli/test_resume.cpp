// QKLab tests — exact resume: a run stopped (or killed) and resumed with `train --resume` writes
// the same metrics, KL and spectra logs as one that ran through, in fair mode (task and text) and
// in book mode (dropout, random-draw data order, stopped mid-epoch); bad resumes exit 2.
#include <catch2/catch.hpp>

#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include <algorithm>
#include <fstream>

#include "cli_run.h"
#include "fsutil.h"
#include "helpers.h"
#include "run_dir.h"
#include "safetensors.h"

using Catch::Matchers::Contains;
using qkt::cli;

namespace {

// metrics.csv without its wall_time_s column (measured time: the one column that may differ).
std::string metrics_without_time(const std::string& run) {
  std::istringstream in(qkt::slurp(run + "/metrics.csv"));
  std::string line, out;
  while (std::getline(in, line)) {
    auto cells = qk::split_csv_line(line);
    REQUIRE(cells.size() == 9);
    cells.erase(cells.begin() + 2);
    for (const auto& c : cells) out += c + ",";
    out += "\n";
  }
  return out;
}

// Trains `args` straight through into A and, into B, stopped at `stop` then resumed; compares.
void check_resume_equivalence(const std::string& args, int stop, const std::string& tag) {
  auto dir = qkt::temp_dir(tag);
  auto a = cli("train " + args + " --quiet --out " + dir + "/a", dir);
  INFO(a.out << a.err);
  REQUIRE(a.code == 0);
  auto b1 = cli("train " + args + " --quiet --stop-at " + std::to_string(stop) + " --out " + dir + "/b", dir);
  INFO(b1.out << b1.err);
  REQUIRE(b1.code == 0);
  CHECK_THAT(b1.out, Contains("Stopped after step " + std::to_string(stop)) && Contains("train --resume"));
  CHECK(qk::run_state_step(dir + "/b") == stop);
  const auto partial_rows = qk::read_metrics_csv(dir + "/b/metrics.csv").size();
  auto b2 = cli("train --resume " + dir + "/b --quiet", dir);
  INFO(b2.out << b2.err);
  REQUIRE(b2.code == 0);
  CHECK_THAT(b2.out, Contains("resumed after step " + std::to_string(stop)));
  const auto ma = metrics_without_time(dir + "/a"), mb = metrics_without_time(dir + "/b");
  CHECK(qk::read_metrics_csv(dir + "/b/metrics.csv").size() > partial_rows);
  CHECK(ma == mb);
  for (const char* f : {"divergence.csv", "spectra_history.csv", "samples.txt"}) {
    INFO(f);
    CHECK(qkt::exists(dir + "/a/" + f) == qkt::exists(dir + "/b/" + f));
    CHECK(qkt::slurp(dir + "/a/" + f) == qkt::slurp(dir + "/b/" + f));
  }
  // The final checkpoints hold the same weights, bit for bit (their metadata names the folder).
  const auto wa = qk::load_safetensors(dir + "/a/standard.safetensors"), wb = qk::load_safetensors(dir + "/b/standard.safetensors");
  REQUIRE(wa.tensors.size() == wb.tensors.size());
  for (size_t i = 0; i < wa.tensors.size(); ++i) {
    INFO(wa.tensors[i].first);
    CHECK(torch::equal(wa.tensors[i].second, wb.tensors[i].second));
  }
}

}  // namespace

TEST_CASE("resume: stopped and resumed equals straight through (fair mode — task)", "[resume]") {
  check_resume_equivalence("--preset default --set train.steps=90 --set train.eval_every=20 --set train.spectra_every=30 "
                           "--set model.drop_rate=0.1 --set train.cosine=true --set train.warmup_steps=10",
                           47, "resume-task");
}

TEST_CASE("resume: stopped and resumed equals straight through (text — fair and book mode)", "[resume][data]") {
  QKT_DATA_DIR_OR_SKIP(dd);
  const std::string text = "--preset book-ch5-small --set data.path=" + dd + "/the-verdict.txt --set train.epochs=2 "
                           "--set model.n_layers=1 --set model.emb_dim=64 --set model.context_length=64 "
                           "--set data.max_length=64 --set model.drop_rate=0.1";
  SECTION("book mode, stopped mid-epoch") { check_resume_equivalence(text, 5, "resume-book"); }
  SECTION("book mode, stopped at an epoch's end") { check_resume_equivalence(text, 9, "resume-book-epoch"); }
  SECTION("fair mode") { check_resume_equivalence(text + " --set train.mode=fair", 13, "resume-fair"); }
}

TEST_CASE("resume: a run killed after an autosave resumes from it — logs written after it are cut back", "[resume]") {
  auto dir = qkt::temp_dir("resume-kill");
  const std::string args = "--preset default --set train.eval_every=10 --set train.spectra_every=10 --quiet";
  auto a = cli("train " + args + " --set train.steps=160 --out " + dir + "/a", dir);
  REQUIRE(a.code == 0);
  // B runs "forever" with an autosave every 40 steps and is killed -9 once a state past step 80 exists.
  const std::string cmd = std::string(QKLAB_CLI) + " train " + args + " --set train.steps=100000 " +
                          "--set train.autosave_steps=40 --out " + dir + "/b > /dev/null 2>&1 & echo $!";
  FILE* p = popen(cmd.c_str(), "r");
  int pid = 0;
  REQUIRE(fscanf(p, "%d", &pid) == 1);
  pclose(p);
  const auto t0 = std::chrono::steady_clock::now();
  while (qk::run_state_step(dir + "/b") < 80 && std::chrono::steady_clock::now() - t0 < std::chrono::seconds(120))
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // it trains on past the state
  kill(pid, SIGKILL);
  for (int i = 0; i < 5000 && kill(pid, 0) == 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  const int64_t at = qk::run_state_step(dir + "/b");
  REQUIRE(at >= 80);
  CHECK(at % 40 == 0);
  auto b = cli("train --resume " + dir + "/b --set train.steps=160", dir);
  INFO(b.out << b.err);
  REQUIRE(b.code == 0);
  CHECK(metrics_without_time(dir + "/a") == metrics_without_time(dir + "/b"));
  CHECK(qkt::slurp(dir + "/a/spectra_history.csv") == qkt::slurp(dir + "/b/spectra_history.csv"));
  CHECK(qkt::slurp(dir + "/a/divergence.csv") == qkt::slurp(dir + "/b/divergence.csv"));
}

TEST_CASE("resume: bad resumes exit 2 with one line and change nothing", "[resume]") {
  auto dir = qkt::temp_dir("resume-bad");
  auto r = cli("train --preset default --set train.steps=20 --quiet --stop-at 10 --out " + dir + "/run", dir);
  REQUIRE(r.code == 0);
  const std::string metrics = qkt::slurp(dir + "/run/metrics.csv");
  auto expect_error = [&](const std::string& args, const std::string& needle) {
    auto e = cli(args, dir);
    INFO(args << "\n" << e.out << e.err);
    CHECK(e.code == 2);
    CHECK_THAT(e.err, Contains(needle));
    CHECK(std::count(e.err.begin(), e.err.end(), '\n') == 1);
    CHECK(qkt::slurp(dir + "/run/metrics.csv") == metrics);
  };
  expect_error("train --resume " + dir + "/run --set model.n_layers=3", "--set model.n_layers: a resumed run keeps what it trains");
  expect_error("train --resume " + dir + "/run --preset default", "--resume continues the run's own config.json");
  expect_error("train --resume " + dir + "/nothing", "nothing: not a run folder");
  std::filesystem::create_directories(dir + "/empty");
  std::filesystem::copy_file(dir + "/run/config.json", dir + "/empty/config.json");
  expect_error("train --resume " + dir + "/empty", "no training state to resume from");
  std::ofstream(dir + "/run/state/state.json") << "{ broken";
  expect_error("train --resume " + dir + "/run", "state.json: malformed JSON");
}

TEST_CASE("resume: killed -9 five times at random moments (also mid-write) — the run still ends as one straight run", "[resume][crash]") {
  auto dir = qkt::temp_dir("resume-kill5");
  const std::string args = "--preset default --set train.eval_every=10 --set train.spectra_every=10 --set train.steps=400 --quiet";
  auto a = cli("train " + args + " --out " + dir + "/a", dir);
  REQUIRE(a.code == 0);
  std::srand(20261127);
  const std::string b = dir + "/b";
  int64_t last = -1;
  for (int round = 0; round < 5; ++round) {
    // An autosave every 3 steps: the kill often lands while a state or a checkpoint is written.
    const std::string cmd = std::string(QKLAB_CLI) + " train " +
                            (round == 0 ? args + " --set train.autosave_steps=3 --out " + b : "--resume " + b) +
                            " > /dev/null 2>&1 & echo $!";
    FILE* p = popen(cmd.c_str(), "r");
    int pid = 0;
    REQUIRE(fscanf(p, "%d", &pid) == 1);
    pclose(p);
    const auto t0 = std::chrono::steady_clock::now();
    while (qk::run_state_step(b) <= last && std::chrono::steady_clock::now() - t0 < std::chrono::seconds(60))
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    std::this_thread::sleep_for(std::chrono::milliseconds(std::rand() % 400));
    kill(pid, SIGKILL);
    // The shell that started it has exited, so it is not our child: wait until it is gone.
    for (int i = 0; i < 5000 && kill(pid, 0) == 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    // After each kill: the folder reads, and the newest complete state loads.
    INFO("round " << round);
    CHECK_NOTHROW(qk::read_run(b));
    const int64_t at = qk::run_state_step(b);
    CHECK(at > last);
    last = at;
    if (at >= 400) break;  // it finished before the kill
  }
  auto r = cli("train --resume " + b + " --quiet", dir);
  INFO(r.out << r.err);
  REQUIRE(r.code == 0);
  CHECK(metrics_without_time(dir + "/a") == metrics_without_time(b));
  CHECK(qkt::slurp(dir + "/a/spectra_history.csv") == qkt::slurp(b + "/spectra_history.csv"));
  CHECK(qkt::slurp(dir + "/a/divergence.csv") == qkt::slurp(b + "/divergence.csv"));
}

TEST_CASE("two writers: a run folder a running process owns is refused naming its pid — a killed one's lock is taken over",
          "[resume][lock]") {
  auto dir = qkt::temp_dir("two-writers");
  const std::string run = dir + "/r";
  // The first writer trains "forever", autosaving every 10 steps.
  const std::string cmd = std::string(QKLAB_CLI) + " train --preset default --set train.steps=100000 " +
                          "--set train.autosave_steps=10 --quiet --out " + run + " > /dev/null 2>&1 & echo $!";
  FILE* p = popen(cmd.c_str(), "r");
  int pid = 0;
  REQUIRE(fscanf(p, "%d", &pid) == 1);
  pclose(p);
  const auto t0 = std::chrono::steady_clock::now();
  while (qk::run_state_step(run) < 10 && std::chrono::steady_clock::now() - t0 < std::chrono::seconds(120))
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  REQUIRE(qk::run_state_step(run) >= 10);
  const std::string metrics_before = qkt::slurp(run + "/metrics.csv");
  // A second writer — resume, or a new run over it — is refused at once, naming the owner.
  for (const std::string second : {"train --resume " + run, "train --preset default --overwrite --out " + run}) {
    INFO(second);
    const auto t1 = std::chrono::steady_clock::now();
    auto r = cli(second, dir);
    CHECK(r.code == 2);
    CHECK_THAT(r.err, Contains(run + ": in use by process " + std::to_string(pid) + " (") && Contains("train"));
    CHECK(std::count(r.err.begin(), r.err.end(), '\n') == 1);
    CHECK(std::chrono::steady_clock::now() - t1 < std::chrono::seconds(20));  // at once: nothing was trained
  }
  // The owner's files are untouched by the refused writers (it keeps appending).
  CHECK(qkt::slurp(run + "/metrics.csv").compare(0, metrics_before.size(), metrics_before) == 0);
  // Killed -9, the owner's lock goes with it: the next writer takes the folder over.
  kill(pid, SIGKILL);
  for (int i = 0; i < 5000 && kill(pid, 0) == 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  const int64_t at = qk::run_state_step(run);
  auto r = cli("train --resume " + run + " --set train.steps=" + std::to_string(at + 5) + " --quiet", dir);
  INFO(r.out << r.err);
  CHECK(r.code == 0);
  CHECK(qk::run_state_step(run) == at + 5);
}

TEST_CASE("two writers: a sweep folder another process owns is refused naming its pid", "[cli][sweep][lock]") {
  auto dir = qkt::temp_dir("two-sweeps");
  const std::string sw = dir + "/sw";
  std::filesystem::create_directories(sw);
  std::ofstream(sw + "/sweep.json") << R"({"name": "lock", "preset": "default", "set": {"train.steps": 2},
                                            "variants": ["standard"], "seeds": [1]})";
  {
    qk::FolderLock owner(sw);  // this test process holds it, as a running `sweep` would
    auto r = cli("sweep --out " + sw, dir);
    CHECK(r.code == 2);
    CHECK_THAT(r.err, Contains(sw + ": in use by process " + std::to_string(::getpid())));
    CHECK(!qkt::exists(sw + "/runs"));  // refused before anything was written
  }
  // Released (the owner ended): the same command runs the sweep.
  auto r = cli("sweep --out " + sw, dir);
  INFO(r.out << r.err);
  CHECK(r.code == 0);
  CHECK(qkt::exists(sw + "/summary.csv"));
}

namespace {

void flip_byte(const std::string& path, int64_t from_end) {
  std::string b = qkt::slurp(path);
  REQUIRE(static_cast<int64_t>(b.size()) > from_end);
  b[b.size() - from_end] ^= 0x10;
  std::ofstream(path, std::ios::binary | std::ios::trunc) << b;  // in place, as a failing disk would
}

}  // namespace

TEST_CASE("corruption on resume: a damaged state, state file or metrics.csv is found by its checksum and the last good one used",
          "[resume][corrupt]") {
  auto dir = qkt::temp_dir("resume-corrupt");
  // Autosaves at 7, 14, 21, 28 and the stop at 30: state/ is step 30, state.old/ step 28.
  const std::string args = "--preset default --set train.eval_every=5 --set train.steps=40 --set train.autosave_steps=7 --quiet";
  auto a = cli("train " + args + " --out " + dir + "/a", dir);
  REQUIRE(a.code == 0);
  auto fresh = [&](const std::string& name) {
    auto r = cli("train " + args + " --stop-at 30 --out " + dir + "/" + name, dir);
    REQUIRE(r.code == 0);
    REQUIRE(qk::run_state_step(dir + "/" + name) == 30);
    return dir + "/" + name;
  };
  auto resume_ok = [&](const std::string& run, const std::vector<std::string>& needles) {
    auto r = cli("train --resume " + run, dir);
    INFO(r.out << r.err);
    REQUIRE(r.code == 0);
    for (const auto& n : needles) CHECK_THAT(r.err, Contains(n));
    CHECK(metrics_without_time(dir + "/a") == metrics_without_time(run));  // still one straight run
  };
  SECTION("a flipped byte in a lane file of the newest state") {
    const auto run = fresh("flip");
    flip_byte(run + "/state/standard-seed123.safetensors", 100);
    resume_ok(run, {"standard-seed123.safetensors: checksum", "damaged or cut short", "resumed from " + run + "/state.old",
                    "(step 28)"});
  }
  SECTION("a lane file cut short") {
    const auto run = fresh("cut");
    const auto f = run + "/state/merged-seed123.safetensors";
    std::filesystem::resize_file(f, std::filesystem::file_size(f) - 1000);
    resume_ok(run, {"merged-seed123.safetensors", "resumed from " + run + "/state.old"});
  }
  SECTION("a changed digit in state.json") {
    const auto run = fresh("json");
    std::string j = qkt::slurp(run + "/state/state.json");
    const auto at = j.find("\"metrics_rows\": ");
    REQUIRE(at != std::string::npos);
    j[at + 16] = j[at + 16] == '1' ? '2' : '1';
    std::ofstream(run + "/state/state.json", std::ios::trunc) << j;
    resume_ok(run, {"state/state.json: checksum mismatch", "resumed from " + run + "/state.old"});
  }
  SECTION("metrics.csv damaged: its rows come back from the state's copy") {
    const auto run = fresh("metrics");
    std::string m = qkt::slurp(run + "/metrics.csv");
    m[m.find('\n') + 3] ^= 0x01;  // a digit of the first row's step
    std::ofstream(run + "/metrics.csv", std::ios::trunc) << m;
    resume_ok(run, {"metrics.csv: its first ", "rows differ from those the training state recorded (checksum)", "restored from the training state's copy"});
  }
  SECTION("both states damaged: one line naming both, nothing changed") {
    const auto run = fresh("both");
    flip_byte(run + "/state/standard-seed123.safetensors", 100);
    flip_byte(run + "/state.old/standard-seed123.safetensors", 200);
    const std::string before = qkt::slurp(run + "/metrics.csv");
    auto r = cli("train --resume " + run, dir);
    CHECK(r.code == 2);
    CHECK_THAT(r.err, Contains("state/standard-seed123.safetensors: checksum") &&
                          Contains("and " + run + "/state.old/standard-seed123.safetensors: checksum"));
    CHECK(std::count(r.err.begin(), r.err.end(), '\n') == 1);
    CHECK(qkt::slurp(run + "/metrics.csv") == before);
  }
  SECTION("a damaged checkpoint is named by analyze") {
    flip_byte(dir + "/a/merged.safetensors", 10);
    auto r = cli("analyze " + dir + "/a", dir);
    CHECK(r.code == 2);
    CHECK_THAT(r.err, Contains("merged.safetensors: checksum") && Contains("damaged"));
  }
}
