// qklab-bench — training speed against PyTorch (see bench_train.h).
#include "bench_train.h"

#include <sched.h>
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
  std::vector<std::string> env_s;  // env_extra replaces an inherited entry of the same name
  for (char** e = environ; *e; ++e) {
    const std::string entry(*e), name = entry.substr(0, entry.find('=') + 1);
    if (std::none_of(env_extra.begin(), env_extra.end(), [&](const std::string& x) { return x.rfind(name, 0) == 0; }))
      env_s.push_back(entry);
  }
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

// One point of a peer's grid.
struct Setting {
  bool tcmalloc = false;
  int threads = 1, blas = 0;  // blas 0: the peer has no separate BLAS knob
  std::string label() const {
    std::ostringstream s;
    s << threads;
    if (blas > 0) s << "x" << blas;
    s << (tcmalloc ? " tcmalloc" : " glibc");
    return s.str();
  }
  nlohmann::json to_json() const { return {{"tcmalloc", tcmalloc}, {"threads", threads}, {"blas_threads", blas}}; }
};

std::vector<Setting> grid(const Peer& p, int cores, bool tune, const std::string& device) {
  if (device != "cpu") return {Setting{false, 1, p.openblas ? 1 : 0}};
  if (!tune) return {Setting{true, cores, p.openblas ? 1 : 0}};
  std::vector<Setting> g;
  for (bool tc : {false, true})
    for (int t = 1; t <= cores; ++t)
      for (int b = p.openblas ? 1 : 0; b <= (p.openblas ? cores : 0); ++b) g.push_back({tc, t, b});
  return g;
}

constexpr const char* kTcmalloc = "/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4";

std::string inductor_cache() {
  const char* home = std::getenv("HOME");
  return std::string(home ? home : "/tmp") + "/.cache/qklab/inductor";
}

// The argv and environment of a peer's child at one setting.
std::pair<std::vector<std::string>, std::vector<std::string>> peer_command(const Peer& p, const Setting& s,
                                                                         const BenchConfig& b, const std::string& v,
                                                                         int steps, int cores, const std::string& device) {
  std::vector<std::string> argv;
  if (device == "cpu" && cores == 1) argv = {"/usr/bin/taskset", "-c", "0"};
  const int warmup = p.compiled ? std::max(b.warmup, 3) : b.warmup;
  const std::string script = std::string(QKLAB_SOURCE_DIR) + "/tests/reference/bench_reference.py";
  for (const std::string& a : {p.python, script, std::string("--vocab"), std::to_string(b.vocab), std::string("--ctx"),
                               std::to_string(b.ctx), std::string("--d"), std::to_string(b.d), std::string("--layers"),
                               std::to_string(b.layers), std::string("--heads"), std::to_string(b.heads),
                               std::string("--batch"), std::to_string(b.batch), std::string("--variant"), v,
                               std::string("--warmup"), std::to_string(warmup), std::string("--steps"),
                               std::to_string(steps), std::string("--drop"), std::to_string(b.drop),
                               std::string("--data-vocab"), std::to_string(kDataVocab), std::string("--threads"),
                               std::to_string(s.threads), std::string("--device"), device})
    argv.push_back(a);
  argv.insert(argv.end(), p.args.begin(), p.args.end());
  std::vector<std::string> env{"OMP_NUM_THREADS=" + std::to_string(s.threads),
                               "MKL_NUM_THREADS=" + std::to_string(s.threads),
                               "OPENBLAS_NUM_THREADS=" + std::to_string(std::max(1, s.blas)),
                               "LD_PRELOAD=" + std::string(s.tcmalloc ? kTcmalloc : "")};
  if (p.compiled) {
    env.push_back("CXX=" + std::string(QKLAB_SOURCE_DIR) + "/tools/peers/inductor-cxx.sh");
    env.push_back("TORCHINDUCTOR_CACHE_DIR=" + inductor_cache());
  }
  return {argv, env};
}

std::vector<std::string> qklab_command(const TrainBenchOptions& o, const BenchConfig& b, const std::string& v,
                                       const std::string& text, int cores) {
  std::vector<std::string> argv;
  if (o.device == "cpu" && cores == 1) argv = {"/usr/bin/taskset", "-c", "0"};
  for (const std::string& a : {o.self, std::string("child"), std::string("--config"), b.name, std::string("--variant"), v,
                               std::string("--text"), text, std::string("--steps"), std::to_string(b.steps)})
    argv.push_back(a);
  std::vector<std::string> sets = o.sets;
  if (o.device != "cpu") sets.push_back("train.device=" + o.device);
  if (o.device == "cpu" && cores == 1) {
    sets.push_back("train.threads=1");
    sets.push_back("train.blas_threads=1");
  }
  for (const auto& s : sets) {
    argv.push_back("--set");
    argv.push_back(s);
  }
  return argv;
}

// Runs a child; its JSON line with median_ms, or null (reported on stderr).
nlohmann::json run_child(const std::vector<std::string>& argv, const std::vector<std::string>& env, const std::string& what) {
  auto [rc, out] = run_capture(argv, env);
  auto j = rc == 0 ? last_json_line(out) : nlohmann::json();
  if (j.is_null() || !j.contains("ms") || j["ms"].empty()) {
    std::cerr << "bench: the child for " << what << " failed (exit " << rc << ")\n";
    return nlohmann::json();
  }
  j["median_ms"] = median(j["ms"].get<std::vector<double>>());
  return j;
}

// sgemm GFLOP/s with `cores` cores (pinned to CPU 0 for one), at the best thread split.
double sgemm_at(int cores) {
  cpu_set_t old, one;
  sched_getaffinity(0, sizeof old, &old);
  if (cores == 1) {
    CPU_ZERO(&one);
    CPU_SET(0, &one);
    sched_setaffinity(0, sizeof one, &one);
  }
  const double g = cores == 1 ? sgemm_gflops(1, 1) : std::max(sgemm_gflops(1, cores), sgemm_gflops(cores, 1));
  sched_setaffinity(0, sizeof old, &old);
  return g;
}
// Adds each row's summary (medians over repetitions, paired ratios against the best peer of each
// repetition) and prints the tables.
void summarize(nlohmann::json& out) {
  std::vector<std::string> names;
  for (const auto& row : out["rows"])
    for (auto it = row["peers"].begin(); it != row["peers"].end(); ++it)
      if (std::find(names.begin(), names.end(), it.key()) == names.end()) names.push_back(it.key());
  std::ostringstream t1, t2, t3;
  t1 << std::fixed << "\n| config | variant | cores | QKLab ms/step |";
  for (const auto& n : names) t1 << " " << n << " ms/step (setting) |";
  t1 << " QKLab speed vs the best peer (min-max) | QKLab tokens/s | MFU | peak RSS QKLab / best peer |\n|---|---|---|---|";
  for (size_t i = 0; i < names.size(); ++i) t1 << "---|";
  t1 << "---|---|---|---|\n";
  t2 << std::fixed << "\n| config | variant | cores | peer | torch | compile s, first run (cold cache) | compile s, warm cache |\n"
                      "|---|---|---|---|---|---|---|\n";
  t3 << std::fixed << "\n| config | variant | cores | data | forward | backward | grad norm | optimizer | evaluation (per batch) | "
                      "threads (LibTorch, OpenBLAS) |\n|---|---|---|---|---|---|---|---|---|---|\n";
  auto ms_of = [](const nlohmann::json& runs) {
    std::vector<double> v;
    for (const auto& j : runs)
      if (!j.is_null()) v.push_back(j["median_ms"]);
    return v;
  };
  for (auto& row : out["rows"]) {
    const auto& q = row["qklab"];
    const auto& b = find_config(row["config"]);
    const int cores = row["cores"];
    const auto qms = ms_of(q);
    if (qms.empty()) continue;
    const double qm = median(qms), tokens = static_cast<double>(b.batch) * b.ctx, tok_s = tokens / (qm / 1000);
    const double gflops = out["sgemm_gflops"].value(std::to_string(cores), 0.0);
    auto& s = row["summary"];
    s = {{"qklab_ms", qm}, {"qklab_tokens_per_s", tok_s}, {"mfu", gflops > 0 ? row["flops_per_token"].get<double>() * tok_s / (gflops * 1e9) : 0.0}};
    double qrss = 0;
    for (const auto& j : q)
      if (!j.is_null()) qrss = std::max(qrss, j["maxrss_kib"].get<double>());
    t1 << "| " << b.name << " | " << row["variant"].get<std::string>() << " | " << cores << " | " << std::setprecision(1) << qm << " |";
    std::string best_name;
    double best_ms = 1e300;
    for (const auto& n : names) {
      if (!row["peers"].contains(n)) continue;
      const double pm = median(ms_of(row["peers"][n]["runs"]));
      if (pm > 0 && pm < best_ms) { best_ms = pm; best_name = n; }
    }
    for (const auto& n : names) {
      if (!row["peers"].contains(n)) { t1 << " - |"; continue; }
      auto& pj = row["peers"][n];
      const auto pms = ms_of(pj["runs"]);
      if (pms.empty()) { t1 << " failed |"; continue; }
      pj["median_ms"] = median(pms);
      t1 << " " << (n == best_name ? "**" : "") << std::setprecision(1) << median(pms) << (n == best_name ? "**" : "") << " ("
         << pj.value("best_label", "") << ") |";
      if (n.find("compile") != std::string::npos || n.find("autotune") != std::string::npos) {
        double cold = 0;
        std::vector<double> warm;
        std::string ver;
        for (const auto& j : pj["tuning"]) { cold = std::max(cold, j["compile_s"].get<double>()); ver = j["torch"]; }
        for (const auto& j : pj["runs"])
          if (!j.is_null()) { warm.push_back(j.value("compile_s", 0.0)); ver = j.value("torch", ver); }
        pj["compile_s_cold"] = cold;
        pj["compile_s_warm"] = median(warm);
        t2 << "| " << b.name << " | " << row["variant"].get<std::string>() << " | " << cores << " | " << n << " | " << ver << " | "
           << std::setprecision(1) << cold << " | " << median(warm) << " |\n";
      }
    }
    // Paired by repetition: the best peer of that repetition over QKLab.
    std::vector<double> ratios;
    for (size_t r = 0; r < q.size(); ++r) {
      if (q[r].is_null()) continue;
      double bp = 1e300;
      for (const auto& n : names)
        if (row["peers"].contains(n) && r < row["peers"][n]["runs"].size() && !row["peers"][n]["runs"][r].is_null())
          bp = std::min(bp, row["peers"][n]["runs"][r]["median_ms"].get<double>());
      if (bp < 1e300) ratios.push_back(bp / q[r]["median_ms"].get<double>());
    }
    if (!ratios.empty()) {
      s["best_peer"] = best_name;
      s["best_peer_ms"] = best_ms;
      s["ratio"] = median(ratios);
      s["ratio_min"] = *std::min_element(ratios.begin(), ratios.end());
      s["ratio_max"] = *std::max_element(ratios.begin(), ratios.end());
      double prss = 0;
      for (const auto& j : row["peers"][best_name]["runs"])
        if (!j.is_null()) prss = std::max(prss, j["maxrss_kib"].get<double>());
      t1 << " **" << std::setprecision(2) << median(ratios) << "x** (" << s["ratio_min"].get<double>() << "-"
         << s["ratio_max"].get<double>() << ") | ";
      t1 << std::setprecision(0) << tok_s << " | " << 100 * s["mfu"].get<double>() << "% | " << qrss / 1024 << " MiB / "
         << prss / 1024 << " MiB |\n";
    } else {
      t1 << " - | " << std::setprecision(0) << tok_s << " | " << 100 * s["mfu"].get<double>() << "% | " << qrss / 1024 << " MiB / - |\n";
    }
    auto ph = [&](const char* k) {
      std::vector<double> v;
      for (const auto& j : q)
        if (!j.is_null()) v.push_back(j["phases_ms"][k]);
      return median(v);
    };
    std::vector<double> ev;
    for (const auto& j : q)
      if (!j.is_null()) ev.push_back(j["eval_ms_per_batch"]);
    const auto& q0 = *std::find_if(q.begin(), q.end(), [](const nlohmann::json& j) { return !j.is_null(); });
    t3 << "| " << b.name << " | " << row["variant"].get<std::string>() << " | " << cores << std::setprecision(1) << " | "
       << ph("data") << " | " << ph("forward") << " | " << ph("backward") << " | " << ph("grad_norm") << " | "
       << ph("optimizer") << " | " << median(ev) << " | " << q0["threads"][0].get<int>() << ", " << q0["threads"][1].get<int>()
       << " |\n";
  }
  std::cout << "\nTraining speed: ms per step, medians over repetitions; each peer at the best setting its tuning found "
               "(intra-op threads[xOpenBLAS threads] allocator); the speed is the best peer's time over QKLab's, paired "
               "by repetition" << t1.str() << "\ntorch.compile's compile time (excluded from the step times)" << t2.str()
            << "\nWhere QKLab's time goes (ms per step, medians)" << t3.str() << std::flush;
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

std::vector<Peer> make_peers(const std::string& names, const std::string& debian_python, const std::string& peers_python,
                             const std::string& device) {
  std::vector<Peer> all;
  if (device == "cpu") all.push_back({"torch-1.13", debian_python, {"--ops", "native"}, true, false});
  const std::string wheel = device == "cpu" ? peers_python : debian_python;  // on a GPU machine: its one python
  all.push_back({"torch-2-eager", wheel, {"--ops", "native"}, false, false});
  all.push_back({"torch-2-compile", wheel, {"--ops", "native", "--compile", "default"}, false, true});
  all.push_back({"torch-2-max-autotune", wheel, {"--ops", "native", "--compile", "max-autotune-no-cudagraphs"}, false, true});
  std::vector<Peer> out;
  std::stringstream in(names);
  for (std::string n; std::getline(in, n, ',');) {
    bool found = false;
    for (const auto& p : all)
      if (n == "all" || p.name == n) {
        out.push_back(p);
        found = true;
      }
    if (!found) throw std::runtime_error("--peers: unknown peer '" + n + "' (torch-1.13, torch-2-eager, torch-2-compile, torch-2-max-autotune, all)");
  }
  for (const auto& p : out)
    if (p.python.empty() || !std::filesystem::exists(p.python))
      throw std::runtime_error("peer " + p.name + ": its python '" + p.python +
                               "' is missing (bash setup.sh peers makes the torch 2.x one; --peers-python PATH)");
  return out;
}

nlohmann::json run_train_bench(const TrainBenchOptions& o) {
  namespace fs = std::filesystem;
  const fs::path tmp = fs::temp_directory_path() / ("qklab-bench-" + std::to_string(getpid()));
  const std::string text = write_corpus(tmp);
  nlohmann::json out;
  out["device"] = o.device;
  out["rows"] = nlohmann::json::array();
  out["sgemm_gflops"] = nlohmann::json::object();
  for (int c : o.cores) {
    const double g = sgemm_at(c);
    out["sgemm_gflops"][std::to_string(c)] = g;
    std::cout << "sgemm 1024^3 float32 (LibTorch, " << c << " core" << (c > 1 ? "s" : "") << "): " << std::fixed
              << std::setprecision(1) << g << " GFLOP/s\n" << std::flush;
  }
  const auto t_start = Clock::now();
  for (const auto& cname : o.configs) {
    BenchConfig b = find_config(cname);
    b.steps = std::max(2, static_cast<int>(b.steps * o.steps_scale));
    const int tune_steps = std::max(2, static_cast<int>(b.steps * o.tune_scale));
    for (const auto& v : o.variants) {
      const auto est = qk::estimate(qklab_config(b, v, text, o.sets), qk::parse_variant(v), b.vocab);
      for (int cores : o.cores) {
        const std::string what = b.name + " " + v + " " + std::to_string(cores) + " core" + (cores > 1 ? "s" : "");
        nlohmann::json row = {{"config", b.name}, {"variant", v}, {"cores", cores}, {"qklab", nlohmann::json::array()},
                              {"peers", nlohmann::json::object()}, {"flops_per_token", est.flops_per_token}};
        // 1. Each peer's best setting over its grid.
        std::vector<Setting> best(o.peers.size());
        for (size_t pi = 0; pi < o.peers.size(); ++pi) {
          const auto& p = o.peers[pi];
          auto& pj = row["peers"][p.name];
          pj = {{"python", p.python}, {"tuning", nlohmann::json::array()}, {"runs", nlohmann::json::array()}};
          const auto g = grid(p, cores, o.tune, o.device);
          double best_ms = 1e300;
          for (const auto& s : g) {
            if (g.size() == 1) { best[pi] = s; break; }
            const auto [argv, env] = peer_command(p, s, b, v, tune_steps, cores, o.device);
            auto j = run_child(argv, env, what + " " + p.name + " " + s.label());
            if (j.is_null()) continue;
            const double ms = j["median_ms"];
            pj["tuning"].push_back({{"setting", s.to_json()}, {"label", s.label()}, {"median_ms", ms},
                                    {"compile_s", j.value("compile_s", 0.0)}, {"torch", j.value("torch", "")}});
            std::cerr << "  tune " << what << " " << p.name << " " << s.label() << ": " << std::fixed << std::setprecision(1) << ms
                      << " ms/step (elapsed " << static_cast<int>(std::chrono::duration<double>(Clock::now() - t_start).count())
                      << " s)\n";
            if (ms < best_ms) { best_ms = ms; best[pi] = s; }
          }
          pj["best"] = best[pi].to_json();
          pj["best_label"] = best[pi].label();
        }
        // 2. QKLab and every peer at its best, alternating (the order rotated every repetition).
        const auto qk_argv = qklab_command(o, b, v, text, cores);
        const int n = 1 + static_cast<int>(o.peers.size());
        for (int rep = 0; rep < o.reps; ++rep) {
          for (int k = 0; k < n; ++k) {
            const int who = (k + rep) % n;  // 0: QKLab
            if (who == 0) {
              auto j = run_child(qk_argv, {}, what + " QKLab");
              row["qklab"].push_back(j);
            } else {
              const auto& p = o.peers[who - 1];
              const auto [argv, env] = peer_command(p, best[who - 1], b, v, b.steps, cores, o.device);
              row["peers"][p.name]["runs"].push_back(run_child(argv, env, what + " " + p.name));
            }
          }
          std::cerr << "  " << what << " repetition " << rep + 1 << "/" << o.reps << " done (elapsed "
                    << static_cast<int>(std::chrono::duration<double>(Clock::now() - t_start).count()) << " s)\n";
        }
        out["rows"].push_back(row);
      }
    }
  }
  fs::remove_all(tmp);
  summarize(out);
  return out;
}

}  // namespace qkb
