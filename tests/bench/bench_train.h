// qklab-bench — training speed against PyTorch. Each measurement is a child process (this binary
// with `child`, or tests/reference/bench_reference.py under Debian's python3-torch) that trains
// the same architecture on the same batch shape and reports per-step times, CPU user/system time of
// the timed steps and its peak resident memory as one JSON line. The parent alternates QKLab and
// PyTorch (order flipped every repetition) and reports ratios from the same run.
#pragma once
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace qkb {

struct BenchConfig {
  std::string name;
  int vocab, ctx, d, layers, heads, batch;
  double drop;
  int warmup, steps;  // per child process
};
// tiny, small, book (the three sizes).
std::vector<BenchConfig> bench_configs();

struct TrainBenchOptions {
  std::vector<std::string> configs{"tiny", "small", "book"};
  std::vector<std::string> variants{"standard", "merged"};
  int reps = 3;
  double steps_scale = 1.0;        // multiplies each config's timed steps
  bool reference = true;           // run the PyTorch side
  std::vector<std::string> sets;   // extra --set overrides for QKLab's children (levers)
  std::string device = "cpu";      // cpu | cuda: both sides train there
  std::string self;                // this executable (argv[0] resolved)
};

// Runs the comparison, prints Markdown tables, returns everything measured as JSON.
nlohmann::json run_train_bench(const TrainBenchOptions& o);

// The child: trains `variant` at config `cfg_name` for warmup + steps steps and prints one JSON
// line. args: --config NAME --variant V --text FILE [--set k=v]...
int train_child(const std::vector<std::string>& args);

// A 1024³ float32 matmul, best of several: the machine's sgemm GFLOP/s at these thread settings.
double sgemm_gflops(int torch_threads, int blas_threads);

}  // namespace qkb
