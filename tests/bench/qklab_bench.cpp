// qklab-bench — speed measurements (not tests): thread settings for training, GPT-2 tokenizer
// throughput. Run: build/tests/bench/qklab-bench [QKLAB_DATA_DIR for the tokenizer part].
// Reports ratios measured in the same run on the same machine.
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <iomanip>
#include <iostream>

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
