// qklab-bench — training speed against PyTorch (see bench_train.h).
#include "bench_train.h"

#include <spawn.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <random>
#include <sstream>

#include <torch/csrc/autograd/profiler_legacy.h>

#include "config.h"
#include "estimates.h"
#include "../helpers.h"
#include "trainer.h"

extern char** environ;

namespace qkb {
namespace {

using Clock = std::chrono::steady_clock;
constexpr int kDataVocab = 60;  // distinct characters of the generated corpus (char tokenizer)

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

// Runs argv with extra environment entries, returns (exit status, stdout).
std::pair<int, std::string> run_capture(const std::vector<std::string>& argv, const std::vector<std::string>& env_extra) {
  int fds[2];
  if (pipe(fds) != 0) return {-1, ""};
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
  posix_spawn_file_actions_addclose(&fa, fds[0]);
  std::vector<std::string> env_s;
  for (char** e = environ; *e; ++e) env_s.emplace_back(*e);
  for (const auto& e : env_extra) env_s.push_back(e);
  std::vector<char*> av, ev;
  for (const auto& a : argv) av.push_back(const_cast<char*>(a.c_str()));
  av.push_back(nullptr);
  for (const auto& e : env_s) ev.push_back(const_cast<char*>(e.c_str()));
  ev.push_back(nullptr);
  pid_t pid;
  const int rc = posix_spawn(&pid, av[0], &fa, nullptr, av.data(), ev.data());
  posix_spawn_file_actions_destroy(&fa);
  close(fds[1]);
  std::string out;
  if (rc == 0) {
    char buf[4096];
    ssize_t n;
    while ((n = read(fds[0], buf, sizeof buf)) > 0) out.append(buf, static_cast<size_t>(n));
  }
  close(fds[0]);
  if (rc != 0) return {-1, ""};
  int status = 0;
  waitpid(pid, &status, 0);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

nlohmann::json last_json_line(const std::string& out) {
  std::istringstream in(out);
  std::string line, last;
  while (std::getline(in, line))
    if (!line.empty() && line[0] == '{') last = line;
  return last.empty() ? nlohmann::json() : nlohmann::json::parse(last);
}

const BenchConfig& find_config(const std::string& name) {
  static const auto all = bench_configs();
  for (const auto& c : all)
    if (c.name == name) return c;
  throw std::runtime_error("bench: unknown config '" + name + "' (tiny, small, book)");
}

qk::ExperimentConfig qklab_config(const BenchConfig& b, const std::string& variant, const std::string& text,
                                  const std::vector<std::string>& sets) {
  qk::ExperimentConfig c;
  c.name = "bench-" + b.name;
  c.variants = {qk::parse_variant(variant)};
  c.model.vocab_size = b.vocab;
  c.model.context_length = b.ctx;
  c.model.emb_dim = b.d;
  c.model.n_layers = b.layers;
  c.model.n_heads = b.heads;
  c.model.drop_rate = b.drop;
  c.data.kind = "text";
  c.data.path = text;
  c.data.tokenizer = "char";
  c.data.max_length = b.ctx;
  c.data.stride = b.ctx;
  c.train.batch_size = b.batch;
  c.train.lr = 4e-4;
  c.train.weight_decay = 0.1;
  c.train.steps = b.warmup + b.steps + 1;  // the last step (with its final evaluation) is never run
  c.train.eval_every = 1 << 30;
  c.train.eval_batches = 2;
  c.train.track_kl = false;
  for (const auto& s : sets) qk::apply_override(c, s);
  return c;
}

// Random text over kDataVocab characters: enough windows for every config's batches.
std::string write_corpus(const std::filesystem::path& dir) {
  std::filesystem::create_directories(dir);
  const auto path = dir / "bench-corpus.txt";
  std::mt19937 rng(7);
  std::string s(400000, ' ');
  for (auto& ch : s) ch = static_cast<char>('A' + rng() % kDataVocab);
  std::ofstream(path) << s;
  return path.string();
}

double rusage_seconds(const timeval& t) { return t.tv_sec + t.tv_usec * 1e-6; }

// Adds each row's summary (medians over repetitions, paired ratios) and prints the two tables.
void summarize(nlohmann::json& out) {
  const double gflops = out["sgemm_gflops"];
  std::ostringstream t1, t2;
  t1 << std::fixed << "\n| config | variant | QKLab ms/step | PyTorch ms/step | speed QKLab/PyTorch (min-max) | QKLab tokens/s | "
        "MFU | system time QKLab / PyTorch | peak RSS QKLab / PyTorch |\n|---|---|---|---|---|---|---|---|---|\n";
  t2 << std::fixed << "\n| config | variant | data | forward | backward | grad norm | optimizer | evaluation (per batch) | "
        "threads (LibTorch, OpenBLAS) |\n|---|---|---|---|---|---|---|---|---|\n";
  for (auto& row : out["rows"]) {
    const auto& q = row["qklab"];
    const auto& p = row["pytorch"];
    if (q.empty()) continue;
    const auto& b = find_config(row["config"]);
    std::vector<double> qms, pms, ratios;
    double qu = 0, qs = 0, pu = 0, ps = 0, qrss = 0, prss = 0;
    for (const auto& j : q) { qms.push_back(j["median_ms"]); qu += j["user_s"].get<double>(); qs += j["sys_s"].get<double>(); qrss = std::max(qrss, j["maxrss_kib"].get<double>()); }
    for (const auto& j : p) { pms.push_back(j["median_ms"]); pu += j["user_s"].get<double>(); ps += j["sys_s"].get<double>(); prss = std::max(prss, j["maxrss_kib"].get<double>()); }
    for (size_t i = 0; i < std::min(qms.size(), pms.size()); ++i) ratios.push_back(pms[i] / qms[i]);
    const double qm = median(qms), pm = median(pms);
    const double tokens = static_cast<double>(b.batch) * b.ctx;
    const double tok_s = tokens / (qm / 1000);
    const double mfu = row["flops_per_token"].get<double>() * tok_s / (gflops * 1e9);
    auto& s = row["summary"];
    s = {{"qklab_ms", qm}, {"qklab_tokens_per_s", tok_s}, {"mfu", mfu}, {"qklab_sys_share", qs / std::max(1e-9, qu + qs)},
         {"qklab_maxrss_kib", qrss}};
    t1 << "| " << b.name << " | " << row["variant"].get<std::string>() << " | " << std::setprecision(1) << qm << " | ";
    if (!ratios.empty()) {
      s["pytorch_ms"] = pm;
      s["ratio"] = median(ratios);
      s["ratio_min"] = *std::min_element(ratios.begin(), ratios.end());
      s["ratio_max"] = *std::max_element(ratios.begin(), ratios.end());
      s["pytorch_sys_share"] = ps / std::max(1e-9, pu + ps);
      s["pytorch_maxrss_kib"] = prss;
      t1 << pm << " | **" << std::setprecision(2) << median(ratios) << "x** (" << s["ratio_min"].get<double>() << "-"
         << s["ratio_max"].get<double>() << ") | ";
    } else {
      t1 << "- | - | ";
    }
    t1 << std::setprecision(0) << tok_s << " | " << std::setprecision(0) << 100 * mfu << "% | " << std::setprecision(1)
       << 100 * s["qklab_sys_share"].get<double>() << "% / ";
    if (!ratios.empty()) t1 << 100 * s["pytorch_sys_share"].get<double>() << "%";
    else t1 << "-";
    t1 << " | " << std::setprecision(0) << qrss / 1024 << " MiB / ";
    if (!ratios.empty()) t1 << prss / 1024 << " MiB (" << std::setprecision(2) << qrss / prss << "x)";
    else t1 << "-";
    t1 << " |\n";
    auto ph = [&](const char* k) {
      std::vector<double> v;
      for (const auto& j : q) v.push_back(j["phases_ms"][k]);
      return median(v);
    };
    std::vector<double> ev;
    for (const auto& j : q) ev.push_back(j["eval_ms_per_batch"]);
    t2 << "| " << b.name << " | " << row["variant"].get<std::string>() << std::setprecision(1) << " | " << ph("data") << " | "
       << ph("forward") << " | " << ph("backward") << " | " << ph("grad_norm") << " | " << ph("optimizer") << " | " << median(ev)
       << " | " << q[0]["threads"][0].get<int>() << ", " << q[0]["threads"][1].get<int>() << " |\n";
  }
  std::cout << "\nTraining speed (median over repetitions; the ratio is PyTorch's time over QKLab's, paired by repetition)"
            << t1.str() << "\nWhere QKLab's time goes (ms per step, medians)" << t2.str() << std::flush;
}

}  // namespace

std::vector<BenchConfig> bench_configs() {
  return {
      {"tiny", 65, 64, 64, 2, 4, 16, 0.0, 5, 40},
      {"small", 65, 128, 128, 4, 4, 16, 0.0, 3, 12},
      {"book", 50257, 256, 768, 12, 12, 2, 0.1, 2, 4},
  };
}

double sgemm_gflops(int torch_threads, int blas_threads) {
  qk::configure_threads(torch_threads, blas_threads);
  torch::manual_seed(0);
  auto a = torch::randn({1024, 1024}), b = torch::randn({1024, 1024});
  double best = 1e9;
  for (int i = 0; i < 7; ++i) {
    auto t0 = Clock::now();
    auto c = torch::matmul(a, b);
    best = std::min(best, std::chrono::duration<double>(Clock::now() - t0).count());
  }
  return 2.0 * 1024 * 1024 * 1024 / best / 1e9;
}

int train_child(const std::vector<std::string>& args) {
  std::string config, variant, text;
  std::vector<std::string> sets;
  int steps = 0;
  for (size_t i = 0; i + 1 < args.size(); i += 2) {
    if (args[i] == "--config") config = args[i + 1];
    else if (args[i] == "--variant") variant = args[i + 1];
    else if (args[i] == "--text") text = args[i + 1];
    else if (args[i] == "--set") sets.push_back(args[i + 1]);
    else if (args[i] == "--steps") steps = std::stoi(args[i + 1]);
  }
  BenchConfig b = find_config(config);
  if (steps > 0) b.steps = steps;
  qk::Experiment e(qklab_config(b, variant, text, sets));
  for (int i = 0; i < b.warmup; ++i) e.step(nullptr);
  const auto before = e.phase_seconds();
  rusage r0{}, r1{};
  getrusage(RUSAGE_SELF, &r0);
  std::vector<double> ms;
  std::unique_ptr<torch::autograd::profiler::RecordProfile> profile;  // QKLAB_BENCH_TRACE=FILE: chrome trace
  if (const char* trace = std::getenv("QKLAB_BENCH_TRACE"))
    profile = std::make_unique<torch::autograd::profiler::RecordProfile>(std::string(trace));
  for (int i = 0; i < b.steps; ++i) {
    auto t0 = Clock::now();
    e.step(nullptr);
    ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
  }
  profile.reset();
  getrusage(RUSAGE_SELF, &r1);
  const auto after = e.phase_seconds();
  auto per_step = [&](double a, double z) { return 1000 * (z - a) / b.steps; };
  auto t0 = Clock::now();
  e.evaluate_now(e.config().train.eval_batches);  // train and validation batches
  const double eval_ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count() /
                         (2.0 * e.config().train.eval_batches);
  nlohmann::json j;
  j["ms"] = ms;
  j["user_s"] = rusage_seconds(r1.ru_utime) - rusage_seconds(r0.ru_utime);
  j["sys_s"] = rusage_seconds(r1.ru_stime) - rusage_seconds(r0.ru_stime);
  j["minflt"] = r1.ru_minflt - r0.ru_minflt;
  getrusage(RUSAGE_SELF, &r1);
  j["maxrss_kib"] = r1.ru_maxrss;
  j["phases_ms"] = {{"data", per_step(before.data, after.data)},
                    {"forward", per_step(before.forward, after.forward)},
                    {"backward", per_step(before.backward, after.backward)},
                    {"grad_norm", per_step(before.grad_norm, after.grad_norm)},
                    {"optimizer", per_step(before.optimizer, after.optimizer)}};
  j["eval_ms_per_batch"] = eval_ms;
  j["threads"] = {e.config().train.threads, e.config().train.blas_threads};
  std::cout << j.dump() << std::endl;
  return 0;
}

nlohmann::json run_train_bench(const TrainBenchOptions& o) {
  namespace fs = std::filesystem;
  const fs::path tmp = fs::temp_directory_path() / ("qklab-bench-" + std::to_string(getpid()));
  const std::string text = write_corpus(tmp);
  const std::string script = std::string(QKLAB_SOURCE_DIR) + "/tests/reference/bench_reference.py";
  const double gflops = sgemm_gflops(1, 2);
  std::cout << "sgemm 1024^3 float32 (LibTorch, 1 intra-op thread, OpenBLAS 2): " << std::fixed
            << std::setprecision(1) << gflops << " GFLOP/s\n" << std::flush;
  nlohmann::json out;
  out["sgemm_gflops"] = gflops;
  out["device"] = o.device;
  out["rows"] = nlohmann::json::array();
  for (const auto& cname : o.configs) {
    BenchConfig b = find_config(cname);
    b.steps = std::max(2, static_cast<int>(b.steps * o.steps_scale));
    for (const auto& v : o.variants) {
      const auto cfg = qklab_config(b, v, text, o.sets);
      const auto est = qk::estimate(cfg, qk::parse_variant(v), b.vocab);
      nlohmann::json row = {{"config", b.name}, {"variant", v}, {"qklab", nlohmann::json::array()},
                            {"pytorch", nlohmann::json::array()}, {"flops_per_token", est.flops_per_token}};
      std::vector<std::string> qk_argv{o.self, "child", "--config", b.name, "--variant", v, "--text", text,
                                       "--steps", std::to_string(b.steps)};
      for (const auto& s : o.sets) { qk_argv.push_back("--set"); qk_argv.push_back(s); }
      if (o.device != "cpu") { qk_argv.push_back("--set"); qk_argv.push_back("train.device=" + o.device); }
      const std::vector<std::string> py_argv{
          qkt::reference_python(), script, "--vocab", std::to_string(b.vocab), "--ctx", std::to_string(b.ctx),
          "--d", std::to_string(b.d), "--layers", std::to_string(b.layers), "--heads", std::to_string(b.heads),
          "--batch", std::to_string(b.batch), "--variant", v, "--warmup", std::to_string(b.warmup),
          "--steps", std::to_string(b.steps), "--drop", std::to_string(b.drop),
          "--data-vocab", std::to_string(kDataVocab), "--threads", "1", "--device", o.device};
      for (int rep = 0; rep < o.reps; ++rep) {
        for (int k = 0; k < 2; ++k) {
          const bool qk_turn = (k == 0) == (rep % 2 == 0);  // alternate which side goes first
          if (!qk_turn && !o.reference) continue;
          auto [rc, stdout_text] = qk_turn ? run_capture(qk_argv, {}) : run_capture(py_argv, {"OPENBLAS_NUM_THREADS=2"});
          auto j = rc == 0 ? last_json_line(stdout_text) : nlohmann::json();
          if (j.is_null()) {
            std::cerr << "bench: the " << (qk_turn ? "QKLab" : "PyTorch") << " child for " << b.name << "/" << v
                      << " failed (exit " << rc << ")\n";
            continue;
          }
          j["median_ms"] = median(j["ms"].get<std::vector<double>>());
          row[qk_turn ? "qklab" : "pytorch"].push_back(j);
        }
        std::cerr << "  " << b.name << " " << v << " repetition " << rep + 1 << "/" << o.reps << " done\n";
      }
      out["rows"].push_back(row);
    }
  }
  fs::remove_all(tmp);
  summarize(out);
  return out;
}

}  // namespace qkb
