// qklab-bench — speed measurements (not tests): thread settings for training, GPT-2 tokenizer
// throughput. Run: build/tests/bench/qklab-bench [QKLAB_DATA_DIR for the tokenizer part].
// Reports ratios measured in the same run on the same machine.
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <iomanip>
#include <iostream>

#include "analysis.h"
#include "data.h"
#include "gpt2_tokenizer.h"
#include "presets.h"
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

int main(int argc, char** argv) {
  std::cout << std::fixed << std::setprecision(2);
  std::cout << "== thread settings (LibTorch intra-op x OpenBLAS), seconds per paired step\n";
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
