// qklab-bench — speed measurements (not tests), run on demand:
//   qklab-bench train [--configs tiny,small,book] [--variants standard,merged] [--cores 1,2]
//                     [--peers all|torch-1.13,torch-2-eager,torch-2-compile,torch-2-max-autotune]
//                     [--peers-python PATH] [--reps 3] [--scale 1] [--tune-scale 0.5] [--no-tune]
//                     [--no-reference] [--set key=value]... [--device cuda] [--json FILE]
//       training against every PyTorch peer at its best (bench_train.h): ms/step, each peer's best
//       setting, the speed against the best peer, tokens/s, MFU, peak memory, compile times, time
//       per phase; Markdown tables on stdout, everything (every tuning child too) in FILE
//   qklab-bench analyses [--config book|small|tiny] [--no-ablation] [--no-report] [--zero-mean]
//       the analyses against a paired training step (fair mode, standard and merged): the report's
//       analyses phase by phase, head ablation (zero and mean apart; --zero-mean: each variant's
//       ablation stopped after its zero and mean part, as Cancel would), evaluation per token against
//       the training step's forward; the book config trains the book-ch5 preset on the-verdict
//       (QKLAB_DATA_DIR) where it is there, else random text
//   qklab-bench misc   thread settings, spectra timings, GPT-2 tokenizer MB/s (QKLAB_DATA_DIR)
//   qklab-bench        both
// Reports ratios measured in the same run on the same machine.
#include "blas_kernels.h"
#include "causal.h"
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <iomanip>
#include <map>
#include <random>
#include <fstream>
#include <iostream>
#include <sstream>
#include <thread>

#include "analysis.h"
#include "bench_train.h"
#include "../helpers.h"
#include "data.h"
#include "estimates.h"
#include "gpt2_tokenizer.h"
#include "kernels.h"
#include "inspect.h"
#include "presets.h"
#include "report_data.h"
#include "trainer.h"

using Clock = std::chrono::steady_clock;

static double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// Mean seconds per paired step (both variants) after a warm-up.
static double time_steps(qk::ExperimentConfig c, int torch_threads, int blas_threads, int steps) {
  c.train.threads = torch_threads;
  c.train.blas_threads = blas_threads;
  c.train.steps = steps + 3;
  c.train.eval_every = 1000000;
  qk::Experiment e(c);
  for (int i = 0; i < 3; ++i) e.step(nullptr);
  auto t0 = Clock::now();
  for (int i = 0; i < steps; ++i) e.step(nullptr);
  return seconds_since(t0) / steps;
}

static int misc_bench() {
  std::cout << std::fixed << std::setprecision(2);
  std::cout << "== thread settings (LibTorch intra-op x OpenBLAS), ms per paired step\n";
  auto small = qk::preset_config("default");
  auto mid = qk::preset_config("default");  // a d=256, 4-layer model on the recall task
  mid.model.emb_dim = 256;
  mid.model.n_layers = 4;
  mid.model.n_heads = 8;
  for (auto& [name, cfg, steps] : std::vector<std::tuple<std::string, qk::ExperimentConfig, int>>{
           {"default (d=64, L=2)", small, 60}, {"d=256, L=4, H=8", mid, 20}}) {
    double base = 0;
    for (auto [tt, bt] : std::vector<std::pair<int, int>>{{1, 1}, {1, 2}, {2, 1}, {2, 2}}) {
      const double s = time_steps(cfg, tt, bt, steps);
      if (base == 0) base = s;
      std::cout << "  " << std::left << std::setw(22) << name << std::right << " torch " << tt << " blas " << bt
                << ": " << std::setprecision(4) << s * 1000 << " ms/step  (x" << std::setprecision(2) << base / s
                << " vs 1/1)\n";
    }
  }
  std::cout << "== spectra of the bilinear forms\n";
  {
    torch::manual_seed(0);
    auto S = torch::randn({768, 768});
    auto t0 = Clock::now();
    auto sv = qk::dense_singular_values(S);
    std::cout << "  one 768x768 head (dense SVD, float32): " << std::setprecision(1) << seconds_since(t0) * 1000 << " ms\n";
    auto A = torch::randn({144, 768, 64}), B = torch::randn({144, 768, 64});
    t0 = Clock::now();
    auto fast = qk::factored_singular_values(A, B);
    const double tf = seconds_since(t0);
    t0 = Clock::now();
    auto dense = qk::dense_singular_values(torch::matmul(A, B.transpose(1, 2)));
    const double td = seconds_since(t0);
    std::cout << "  144 heads W_q W_k^T (768x64 factors): QR path " << std::setprecision(2) << tf << " s, dense SVD " << td
              << " s (x" << td / tf << "), maxdiff " << std::setprecision(3)
              << (fast - dense.slice(1, 0, 64)).abs().max().item<double>() << "\n";
    auto Sall = torch::randn({144, 768, 768});
    t0 = Clock::now();
    qk::dense_singular_values(Sall);
    std::cout << "  144 merged heads 768x768 (book-size merged model): " << std::setprecision(2) << seconds_since(t0) << " s\n";
  }
  {
    // Analysis overhead at default settings: spectra of every head at every evaluation.
    auto c = qk::preset_config("default");
    const double plain = time_steps(c, 1, 2, 200);
    c.train.spectra_every = c.train.eval_every;
    struct Sink : qk::TrainerObserver {} sink;
    c.train.threads = 1;
    c.train.steps = 203;
    c.train.eval_every = 25;
    qk::Experiment e(c);
    for (int i = 0; i < 3; ++i) e.step(&sink);
    auto t0 = Clock::now();
    for (int i = 0; i < 200; ++i) e.step(&sink);
    const double with = seconds_since(t0) / 200;
    c.train.spectra_every = 0;
    qk::Experiment e2(c);
    for (int i = 0; i < 3; ++i) e2.step(&sink);
    t0 = Clock::now();
    for (int i = 0; i < 200; ++i) e2.step(&sink);
    const double without = seconds_since(t0) / 200;
    std::cout << "  default experiment, 200 steps with evaluations every 25: " << std::setprecision(3) << without * 1000
              << " ms/step without spectra, " << with * 1000 << " ms/step with spectra of every head at every "
              << "evaluation (+" << std::setprecision(1) << 100 * (with - without) / without << "%); plain steps "
              << std::setprecision(3) << plain * 1000 << " ms\n";
  }
  {
    // bf16 (oneDNN, avx512_bf16 where the CPU has it) against fair mode's split float32 GEMM.
    qk::configure_threads(std::max(1u, std::thread::hardware_concurrency()), 1);
    torch::NoGradGuard ng;
    torch::manual_seed(1);
    auto x = torch::randn({512, 768}), w = torch::randn({3072, 768});
    auto xb = x.to(torch::kBFloat16), wb = w.to(torch::kBFloat16);
    auto best = [](auto f) {
      double b = 1e9;
      for (int i = 0; i < 8; ++i) {
        auto t0 = Clock::now();
        f();
        b = std::min(b, seconds_since(t0));
      }
      return b * 1000;
    };
    const double f32 = best([&] { return qk::parallel_linear(x, w, {}); });
    const double b16 = best([&] { return torch::matmul(xb, wb.t()); });
    auto ref = torch::matmul(x, w.t());
    const double err = ((torch::matmul(xb, wb.t()).to(torch::kFloat32) - ref).abs().max() / ref.abs().max()).item<double>();
    std::cout << "== GEMM 512x768 by 768x3072 on " << at::get_num_threads() << " threads: float32 split " << std::setprecision(2)
              << f32 << " ms, bfloat16 " << b16 << " ms (x" << f32 / b16 << "), bf16 max error " << std::setprecision(4)
              << err << " of the largest entry\n";
  }
  const char* dd = std::getenv("QKLAB_DATA_DIR");
  if (dd && std::filesystem::exists(std::string(dd) + "/the-verdict.txt")) {
    std::cout << "== GPT-2 BPE encoding\n";
    qk::Gpt2Tokenizer tok(std::string(dd) + "/gpt2-encoder.json", std::string(dd) + "/gpt2-vocab.bpe");
    std::string text = qk::read_text_file(std::string(dd) + "/the-verdict.txt"), big;
    while (big.size() < (1u << 20)) big += text;
    for (int pass = 0; pass < 2; ++pass) {
      qk::Gpt2Tokenizer fresh(std::string(dd) + "/gpt2-encoder.json", std::string(dd) + "/gpt2-vocab.bpe");
      auto t0 = Clock::now();
      auto ids = (pass == 0 ? fresh : tok).encode(big);
      const double s = seconds_since(t0);
      std::cout << "  " << (pass == 0 ? "cold cache" : "warm cache") << ": " << big.size() / 1e6 << " MB -> "
                << ids.size() << " tokens in " << std::setprecision(3) << s << " s (" << big.size() / s / 1e6
                << " MB/s)\n";
      if (pass == 0) tok.encode(big);
    }
  }
  return 0;
}


// The analyses' cost in paired training steps (the yardstick), in one process.
static int analyses_bench(const std::vector<std::string>& args) {
  std::string config = "book";
  bool ablation = true, report = true, zero_mean_only = false;
  for (size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--config" && i + 1 < args.size()) config = args[++i];
    else if (args[i] == "--no-ablation") ablation = false;
    else if (args[i] == "--no-report") report = false;
    else if (args[i] == "--zero-mean") zero_mean_only = true;
    else throw std::runtime_error("analyses: unknown option '" + args[i] + "'");
  }
  qk::ExperimentConfig c;
  const char* dd = std::getenv("QKLAB_DATA_DIR");
  const std::string verdict = dd ? std::string(dd) + "/the-verdict.txt" : "";
  if (config == "book" && !verdict.empty() && std::filesystem::exists(verdict)) {
    c = qk::preset_config("book-ch5");
    c.data.path = verdict;
    c.data.gpt2_dir = dd;
    c.train.mode = "fair";
    std::cout << "book-ch5 on the-verdict.txt, fair mode\n";
  } else {
    qk::ExperimentConfig b = qk::preset_config("default");
    const auto all = qkb::bench_configs();
    const auto it = std::find_if(all.begin(), all.end(), [&](const qkb::BenchConfig& x) { return x.name == config; });
    if (it == all.end()) throw std::runtime_error("analyses: --config tiny, small or book");
    const auto dir = std::filesystem::temp_directory_path() / ("qklab-bench-an-" + std::to_string(getpid()));
    std::filesystem::create_directories(dir);
    std::string text(400000, ' ');
    std::mt19937 rng(7);
    for (auto& ch : text) ch = static_cast<char>('A' + rng() % 60);
    std::ofstream(dir / "corpus.txt") << text;
    c.model.vocab_size = it->vocab;
    c.model.context_length = it->ctx;
    c.model.emb_dim = it->d;
    c.model.n_layers = it->layers;
    c.model.n_heads = it->heads;
    c.model.drop_rate = it->drop;
    c.data.kind = "text";
    c.data.path = (dir / "corpus.txt").string();
    c.data.tokenizer = "char";
    c.train.batch_size = it->batch;
    c.train.eval_batches = 5;
    std::cout << config << " config on random text, fair mode\n";
  }
  c.variants = {qk::Variant::Standard, qk::Variant::Merged};
  c.train.steps = 1000;
  c.train.eval_every = 1 << 30;
  c.train.track_kl = false;
  qk::Experiment e(c);
  for (int i = 0; i < 2; ++i) e.step(nullptr);
  std::vector<double> steps;
  const auto p0 = e.phase_seconds();
  for (int i = 0; i < 3; ++i) {
    auto t0 = Clock::now();
    e.step(nullptr);
    steps.push_back(seconds_since(t0));
  }
  const auto p1 = e.phase_seconds();
  std::sort(steps.begin(), steps.end());
  const double step = steps[1];
  const double fwd = (p1.forward - p0.forward) / 3;  // both lanes' forwards per paired step
  auto t0 = Clock::now();
  qk::Inspector insp;
  insp.attach(&e);
  const auto probe = e.probe_batches();
  int64_t probe_tokens = 0;
  for (const auto& b : probe) probe_tokens += b.inputs.numel();
  const double batch_tokens = double(c.train.batch_size) * c.model.context_length;
  std::cout << std::fixed << std::setprecision(3) << "paired step (standard + merged): " << step << " s; the probe: "
            << probe.size() << " batches, " << probe_tokens << " tokens\n" << std::flush;
  // Evaluation (no autograd, batches fused) against the training step's forward, per token.
  {
    const double per_token_train = fwd / (2 * batch_tokens);
    double fused = 0, single = 0;
    for (int rep = 0; rep < 2; ++rep)
      for (int lane = 0; lane < 2; ++lane) {
        auto m = e.lane_model(lane);
        auto t1 = Clock::now();
        qk::evaluate_batches(*m, probe, qk::AccuracyKind::None, qk::kEvalFuseTokens);
        if (rep) fused += seconds_since(t1);
        t1 = Clock::now();
        qk::evaluate_batches(*m, probe, qk::AccuracyKind::None, 0);
        if (rep) single += seconds_since(t1);
      }
    const double per_token_eval = fused / (2.0 * probe_tokens), per_token_single = single / (2.0 * probe_tokens);
    // What stands in the way: the forward's matmul FLOPs per token (a third of estimate()'s
    // training count, both variants' mean) at the machine's sgemm rate on these threads.
    const double fwd_flops = (qk::estimate(c, qk::Variant::Standard, c.model.vocab_size).flops_per_token +
                              qk::estimate(c, qk::Variant::Merged, c.model.vocab_size).flops_per_token) / 6;
    // The sgemm rate on the run's cores: OpenBLAS threaded or LibTorch's threads, whichever is faster
    // (one OpenBLAS thread alone would be one core's rate).
    const auto [tt, bt] = qk::resolved_threads(c.train);
    const int cores = std::max(tt, bt);
    const double peak = std::max(qkb::sgemm_gflops(1, cores), qkb::sgemm_gflops(cores, 1)) * 1e9;
    qk::configure_threads(tt, bt);
    std::cout << "the forward's matmuls at the sgemm rate on " << cores << " cores (" << std::setprecision(1) << peak / 1e9
              << " GFLOP/s): training forward " << 100 * fwd_flops / per_token_train / peak << "% of it, evaluation "
              << 100 * fwd_flops / per_token_eval / peak << "%\n" << std::setprecision(3);
    std::cout << "evaluation: " << per_token_eval * 1e6 << " us/token (one forward per batch: " << per_token_single * 1e6
              << ") against the training forward's " << per_token_train * 1e6 << " us/token: x" << std::setprecision(2)
              << per_token_train / per_token_eval << " faster\n" << std::flush << std::setprecision(3);
  }
  // The report, phase by phase.
  std::map<std::string, double> phase;
  std::string current;
  auto mark = Clock::now();
  qk::RunContents history;
  history.config = c;
  t0 = Clock::now();
  if (report) qk::collect_report(insp, history, "", [&](int, int, const std::string& what) {
    const auto now = Clock::now();
    if (!current.empty()) phase[current] += std::chrono::duration<double>(now - mark).count();
    current = what.substr(0, what.find(':'));
    mark = now;
  });
  const double report_s = seconds_since(t0);
  if (report) std::cout << "report's analyses: " << report_s << " s = " << std::setprecision(1) << report_s / step
            << " paired steps\n" << std::flush;
  for (const auto& [k, v] : phase)
    std::cout << "  " << std::left << std::setw(32) << k << std::right << std::setprecision(3) << v << " s ("
              << std::setprecision(1) << v / step << " steps)\n";
  std::cout << std::flush;
  if (ablation && zero_mean_only) {
    // Each variant's ablation (the inspector's own call, on the live lane) stopped once its zero
    // and mean losses are in: tick 1 + 2·L·H (causal.cpp's order).
    struct Stop {};
    const int LH = c.model.n_layers * c.model.n_heads;
    qk::AblationOptions o;
    o.accuracy = qk::accuracy_kind(c.data.kind);
    double both = 0;
    for (int lane = 0; lane < 2; ++lane) {
      const auto t1 = Clock::now();
      try {
        qk::model_ablation(*e.lane_model(lane), e.lane_names()[size_t(lane)], probe, {}, o, {}, [&](int done, int) {
          if (done == 1 + 2 * LH) throw Stop{};
        });
      } catch (const Stop&) {
      }
      const double zm = seconds_since(t1);
      both += zm;
      std::cout << std::setprecision(3) << "ablation, " << e.lane_names()[size_t(lane)] << ": zero and mean " << zm
                << " s = " << std::setprecision(1) << zm / step << " paired steps\n" << std::flush;
    }
    std::cout << std::setprecision(3) << "ablation, both variants: zero and mean " << both << " s = "
              << std::setprecision(1) << both / step << " paired steps\n";
  } else if (ablation) {
    // The inspector counts ticks over both variants (2·T); each variant's zero and mean ablation
    // ends at its tick 1 + 2·L·H (causal.cpp's order), then rank ablation and patching follow.
    const int LH = c.model.n_layers * c.model.n_heads;
    const char* names[] = {"standard", "merged"};
    double zero_mean = 0;
    t0 = Clock::now();
    auto vstart = t0;  // where the variant's ablation began
    insp.ablation([&](int done, int total) {
      const int per = total / 2, v = (done - 1) / per, local = done - v * per;
      if (local == 1 + 2 * LH) {
        const double zm = seconds_since(vstart);
        zero_mean += zm;
        std::cout << std::setprecision(3) << "ablation, " << names[v] << ": zero and mean " << zm << " s = "
                  << std::setprecision(1) << zm / step << " paired steps\n" << std::flush;
      }
      if (local == per) {
        const double all = seconds_since(vstart);
        std::cout << std::setprecision(3) << "ablation, " << names[v] << ": everything (rank ablation, patching) "
                  << all << " s = " << std::setprecision(1) << all / step << " paired steps\n" << std::flush;
        vstart = Clock::now();
      }
    });
    const double all = seconds_since(t0);
    std::cout << std::setprecision(3) << "ablation, both variants: zero and mean " << zero_mean << " s = "
              << std::setprecision(1) << zero_mean / step << " paired steps; everything (rank ablation, patching) "
              << std::setprecision(3) << all << " s = " << std::setprecision(1) << all / step << " paired steps\n";
  }
  return 0;
}

static std::vector<std::string> split_list(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream in(s);
  for (std::string item; std::getline(in, item, ',');)
    if (!item.empty()) out.push_back(item);
  return out;
}

int main(int argc, char** argv) {
  qk::choose_blas_kernels();  // both sides: OPENBLAS_CORETYPE reaches the PyTorch processes too (blas_kernels.h)
  std::vector<std::string> args(argv + 1, argv + argc);
  const std::string mode = args.empty() ? "all" : args[0];
  try {
    if (mode == "child") return qkb::train_child({args.begin() + 1, args.end()});
    if (mode == "misc") return misc_bench();
    if (mode == "analyses") return analyses_bench({args.begin() + 1, args.end()});
    if (mode != "train" && mode != "all") {
      std::cerr << "usage: qklab-bench [train|misc] (see the top of tests/bench/qklab_bench.cpp)\n";
      return 2;
    }
    qkb::TrainBenchOptions o;
    o.self = std::filesystem::canonical("/proc/self/exe").string();
    std::string json_path, peers = "all", peers_python = QKLAB_PEERS_PYTHON;
    if (const char* e = std::getenv("QKLAB_PEERS_PYTHON"); e && *e) peers_python = e;
    for (size_t i = 1; i < args.size(); ++i) {
      const auto& a = args[i];
      const bool has = i + 1 < args.size();
      if (a == "--configs" && has) o.configs = split_list(args[++i]);
      else if (a == "--variants" && has) o.variants = split_list(args[++i]);
      else if (a == "--reps" && has) o.reps = std::stoi(args[++i]);
      else if (a == "--scale" && has) o.steps_scale = std::stod(args[++i]);
      else if (a == "--set" && has) o.sets.push_back(args[++i]);
      else if (a == "--json" && has) json_path = args[++i];
      else if (a == "--device" && has) o.device = args[++i];
      else if (a == "--no-reference") peers = "";
      else if (a == "--peers" && has) peers = args[++i];
      else if (a == "--peers-python" && has) peers_python = args[++i];
      else if (a == "--no-tune") o.tune = false;
      else if (a == "--tune-scale" && has) o.tune_scale = std::stod(args[++i]);
      else if (a == "--cores" && has) {
        o.cores.clear();
        for (const auto& c : split_list(args[++i])) o.cores.push_back(std::stoi(c));
      }
      else {
        std::cerr << "qklab-bench: unknown or incomplete option '" << a << "'\n";
        return 2;
      }
    }
    if (o.device != "cpu") o.cores = {1};  // one column: the device (no pinning, no grid)
    o.peers = qkb::make_peers(peers, qkt::reference_python(), peers_python, o.device);
    auto result = qkb::run_train_bench(o);
    if (!json_path.empty()) {
      std::ofstream(json_path) << result.dump(1) << "\n";
      std::cout << "wrote " << json_path << "\n";
    }
    if (mode == "all") return misc_bench();
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "qklab-bench: " << e.what() << "\n";
    return 2;
  }
}
