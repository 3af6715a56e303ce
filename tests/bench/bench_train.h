// qklab-bench — training speed against every PyTorch peer, each at its best. Each measurement is a
// child process (this binary with `child`, or tests/reference/bench_reference.py under a peer's
// python) that trains the same architecture on the same batch shape and reports per-step times,
// CPU user/system time of the timed steps and its peak resident memory as one JSON line.
//
// Per (config, variant, core count) the benchmark
//   1. tunes every peer: one short child per setting of its grid — allocator (glibc malloc or
//      tcmalloc preloaded) × intra-op threads × OpenBLAS threads (Debian's 1.13 only: a wheel's MKL
//      follows the intra-op threads) over what the core count allows — and keeps the fastest;
//   2. times QKLab (its automatic settings) and every peer at its best, alternating, the order
//      rotated every repetition, and reports QKLab's speed against the best peer of each
//      repetition (median, min–max).
// One core: every child is pinned to CPU 0 (taskset). Peers: Debian's torch 1.13 (python3-torch),
// and the peers' environment's torch 2.x (setup.sh peers) eager, torch.compile default and
// max-autotune-no-cudagraphs (compile time reported apart, excluded from the step times).
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

// A PyTorch peer: which python, which script arguments.
struct Peer {
  std::string name;                 // torch-1.13, torch-2-eager, torch-2-compile, torch-2-max-autotune
  std::string python;
  std::vector<std::string> args;    // extra bench_reference.py arguments (--ops, --compile)
  bool openblas = false;            // its BLAS threads are a separate knob (Debian's OpenBLAS)
  bool compiled = false;
};
// The peers by name (comma list, or "all"); a peer whose python is missing is an error naming it.
std::vector<Peer> make_peers(const std::string& names, const std::string& debian_python, const std::string& peers_python,
                             const std::string& device);

struct TrainBenchOptions {
  std::vector<std::string> configs{"tiny", "small", "book"};
  std::vector<std::string> variants{"standard", "merged"};
  std::vector<int> cores{1, 2};    // core counts measured (1: pinned to CPU 0)
  std::vector<Peer> peers;
  int reps = 3;
  double steps_scale = 1.0;        // multiplies each config's timed steps
  double tune_scale = 0.5;         // the tuning children's timed steps, as a fraction of the above
  bool tune = true;                // false: each peer at 1 thread (cores), OpenBLAS = cores, tcmalloc
  std::vector<std::string> sets;   // extra --set overrides for QKLab's children (levers)
  std::string device = "cpu";      // cpu | cuda: both sides train there (no grid)
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
