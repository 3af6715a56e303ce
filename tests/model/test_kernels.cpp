// QKLab tests — fair mode's kernels (kernels.h, CausalAttentionImpl::fused): the fused/split
// forward and backward compute the book kernels' function for every variant (float64, to 1e-10),
// the split GEMMs' gradients equal those of the unsplit ATen ops, the logistic GELU equals tanh
// GELU, thread settings resolve by mode (capped by OMP_NUM_THREADS), fair-mode training is bit-identical run to run on two
// threads, and the allocator the build promises is the one loaded.
#include <catch2/catch.hpp>

#include <fstream>
#include <sstream>
#include <thread>

#include "helpers.h"
#include "kernels.h"
#include "model.h"
#include "presets.h"
#include "trainer.h"
#include "variants.h"

using namespace qk;

namespace {

// Restores LibTorch's intra-op thread count when a test changes it.
struct ThreadsGuard {
  int saved = at::get_num_threads();
  explicit ThreadsGuard(int n) { at::set_num_threads(n); }
  ~ThreadsGuard() { at::set_num_threads(saved); }
};

struct Pass {
  torch::Tensor logits;
  std::vector<torch::Tensor> attn, grads;
};

Pass run(GPTModelImpl& m, const torch::Tensor& ids, const torch::Tensor& probe) {
  Pass p;
  for (auto& q : m.parameters()) q.mutable_grad() = torch::Tensor();
  p.logits = m.forward(ids, &p.attn);
  (p.logits * probe).sum().backward();
  for (auto& q : m.parameters()) p.grads.push_back(q.grad().clone());
  return p;
}

}  // namespace

TEST_CASE("fused kernels compute the book kernels' function and gradients for every variant", "[model][kernels]") {
  ThreadsGuard threads(2);  // the split paths run on two threads
  for (bool bias : {false, true})
    for (const auto& info : all_variants()) {
      CAPTURE(info.name, bias);
      torch::manual_seed(5);
      auto cfg = qkt::tiny_model("float64");
      cfg.emb_dim = 32;
      cfg.context_length = 16;
      cfg.qkv_bias = bias;
      GPTModel m(info.variant, cfg);
      for (int64_t T : {16, 11}) {  // the full context and a shorter sequence (mask slicing)
        auto ids = torch::randint(0, cfg.vocab_size, {24, T});  // enough rows to split every GEMM
        auto probe = torch::randn({24, T, cfg.vocab_size}, torch::kFloat64);
        m->set_fused_kernels(false);
        const Pass book = run(*m, ids, probe);
        m->set_fused_kernels(true);
        const Pass fused = run(*m, ids, probe);
        CHECK(qkt::maxdiff(book.logits, fused.logits) < 1e-10);
        for (size_t l = 0; l < book.attn.size(); ++l) CHECK(qkt::maxdiff(book.attn[l], fused.attn[l]) < 1e-12);
        REQUIRE(book.grads.size() == fused.grads.size());
        double worst = 0;
        for (size_t i = 0; i < book.grads.size(); ++i) worst = std::max(worst, qkt::maxdiff(book.grads[i], fused.grads[i]));
        CHECK(worst < 1e-10);
      }
    }
}

TEST_CASE("split GEMMs have the gradients of the unsplit ATen ops", "[model][kernels]") {
  ThreadsGuard threads(2);
  torch::manual_seed(3);
  auto opt = torch::TensorOptions().dtype(torch::kFloat64).requires_grad(true);
  {  // linear, with and without bias, 3-D input
    auto x = torch::randn({4, 70, 48}, opt), w = torch::randn({96, 48}, opt), b = torch::randn({96}, opt);
    auto g = torch::randn({4, 70, 96}, torch::kFloat64);
    for (bool bias : {true, false}) {
      auto y = parallel_linear(x, w, bias ? b : torch::Tensor());
      auto ref = torch::matmul(x, w.t()) + (bias ? b : torch::zeros({96}, torch::kFloat64));
      CHECK(qkt::maxdiff(y, ref) < 1e-12);
      auto ga = torch::autograd::grad({(y * g).sum()}, bias ? std::vector<torch::Tensor>{x, w, b} : std::vector<torch::Tensor>{x, w});
      auto gr = torch::autograd::grad({(ref * g).sum()}, bias ? std::vector<torch::Tensor>{x, w, b} : std::vector<torch::Tensor>{x, w});
      for (size_t i = 0; i < ga.size(); ++i) CHECK(qkt::maxdiff(ga[i], gr[i]) < 1e-11);
    }
  }
  {  // batched, with a scale and a broadcast additive mask; a transposed (strided) operand
    auto a = torch::randn({12, 40, 24}, opt), bt = torch::randn({12, 40, 24}, opt);
    auto mask = torch::full({40, 40}, -1e300, torch::kFloat64).triu(1);
    auto g = torch::randn({12, 40, 40}, torch::kFloat64);
    auto y = parallel_bmm(a, bt.transpose(1, 2), 0.25, mask);
    auto ref = torch::baddbmm(mask.expand({12, 40, 40}), a, bt.transpose(1, 2), 1.0, 0.25);
    CHECK(qkt::maxdiff(y, ref) == 0.0);
    auto ga = torch::autograd::grad({(y * g).sum()}, {a, bt});
    auto gr = torch::autograd::grad({(ref * g).sum()}, {a, bt});
    CHECK(qkt::maxdiff(ga[0], gr[0]) < 1e-11);
    CHECK(qkt::maxdiff(ga[1], gr[1]) < 1e-11);
  }
}

TEST_CASE("the logistic GELU is tanh GELU with its derivative", "[model][kernels]") {
  auto x = torch::linspace(-12, 12, 20001, torch::kFloat64).requires_grad_(true);
  auto y = gelu_tanh_fast(x);
  auto ref = torch::gelu(x, "tanh");
  CHECK(qkt::maxdiff(y, ref) < 1e-14);
  auto gy = torch::autograd::grad({y.sum()}, {x})[0];
  auto gr = torch::autograd::grad({ref.sum()}, {x})[0];
  CHECK(qkt::maxdiff(gy, gr) < 1e-13);
  // float32: within a few ulps of the tanh form (|y| ≤ 12 here)
  auto xf = x.detach().to(torch::kFloat32);
  CHECK(qkt::maxdiff(gelu_tanh_fast(xf), torch::gelu(xf, "tanh")) < 1e-5);
  // central differences in float64
  auto xs = torch::tensor({-3.0, -0.7, 0.0, 0.4, 2.5}, torch::kFloat64).requires_grad_(true);
  auto an = torch::autograd::grad({gelu_tanh_fast(xs).sum()}, {xs})[0];
  const double h = 1e-6;
  auto xd = xs.detach();
  auto num = (gelu_tanh_fast(xd + h) - gelu_tanh_fast(xd - h)) / (2 * h);
  CHECK(qkt::maxdiff(an, num) < 1e-8);
}

TEST_CASE("thread settings resolve by mode and OMP_NUM_THREADS caps the automatic ones", "[model][kernels]") {
  qkt::EnvGuard omp("OMP_NUM_THREADS", nullptr), blas("OPENBLAS_NUM_THREADS", nullptr);
  TrainConfig t;
  const int cores = std::max(1u, std::thread::hardware_concurrency());
  CHECK(resolved_threads(t) == std::pair<int, int>{std::min(cores, 16), 1});
  {
    qkt::EnvGuard one("OMP_NUM_THREADS", "1");  // what CTest sets for its parallel tests
    CHECK(resolved_threads(t) == std::pair<int, int>{1, 1});
    qkt::EnvGuard junk("OMP_NUM_THREADS", "two");  // not a count: ignored
    CHECK(resolved_threads(t) == std::pair<int, int>{std::min(cores, 16), 1});
  }
  {
    qkt::EnvGuard many("OMP_NUM_THREADS", "4096");  // out of range: ignored
    CHECK(resolved_threads(t).first == std::min(cores, 16));
  }
  t.mode = "book";
  CHECK(resolved_threads(t) == std::pair<int, int>{1, 2});  // as the book reproduction was made
  {
    qkt::EnvGuard one("OPENBLAS_NUM_THREADS", "1");
    CHECK(resolved_threads(t) == std::pair<int, int>{1, 1});
  }
  t.threads = 3;
  t.blas_threads = 4;
  qkt::EnvGuard one("OMP_NUM_THREADS", "1");  // explicit values are used as given
  CHECK(resolved_threads(t) == std::pair<int, int>{3, 4});
  auto c = preset_config("default");
  c.train.threads = -1;
  CHECK_THROWS_WITH(validate_config(c, "cfg.json"), Catch::Contains("train.threads"));
}

TEST_CASE("fair mode with fused kernels on two threads is bit-identical run to run", "[model][kernels][train]") {
  auto c = preset_config("default");
  c.train.steps = 12;
  c.train.eval_every = 4;
  c.train.threads = 2;
  c.train.blas_threads = 1;
  c.model.drop_rate = 0.1;  // dropout draws too
  std::vector<std::vector<double>> runs;
  for (int r = 0; r < 2; ++r) {
    struct Sink : TrainerObserver {
      std::vector<double>* out;
      void on_step(const StepRecord& s) override { out->push_back(s.loss); out->push_back(s.grad_norm); }
    } sink;
    runs.emplace_back();
    sink.out = &runs.back();
    Experiment e(c);
    REQUIRE(e.lane_model(0)->fused_kernels());
    e.run(&sink, nullptr);
  }
  REQUIRE(runs[0].size() == 2u * 12 * c.variants.size());
  CHECK(runs[0] == runs[1]);
}

TEST_CASE("book mode keeps the book's kernels", "[model][kernels]") {
  auto c = preset_config("default");
  c.train.mode = "book";
  c.train.steps = 1;
  qkt::EnvGuard omp("OMP_NUM_THREADS", nullptr), blas("OPENBLAS_NUM_THREADS", nullptr);  // CTest sets 1
  Experiment e(c);
  CHECK_FALSE(e.lane_model(0)->fused_kernels());
  CHECK(e.config().train.threads == 1);
  CHECK(e.config().train.blas_threads == 2);
}

TEST_CASE("the allocator the build promises is loaded", "[model][kernels]") {
  std::ifstream maps("/proc/self/maps");
  std::stringstream ss;
  ss << maps.rdbuf();
  const bool tcmalloc = ss.str().find("libtcmalloc") != std::string::npos;
#ifdef QKLAB_TCMALLOC_LINKED
  CHECK(tcmalloc);
#else
  CHECK_FALSE(tcmalloc);
#endif
}

TEST_CASE("bf16 precision rounds only the linear layers' GEMMs and is refused outside fair float32", "[model][kernels]") {
  torch::manual_seed(9);
  auto cfg = qkt::tiny_model();
  cfg.emb_dim = 32;
  cfg.context_length = 16;
  for (const auto& info : all_variants()) {
    CAPTURE(info.name);
    GPTModel m(info.variant, cfg);
    auto ids = torch::randint(0, cfg.vocab_size, {8, 16});
    auto probe = torch::randn({8, 16, cfg.vocab_size});
    m->set_fused_kernels(true, false);
    const Pass f32 = run(*m, ids, probe);
    m->set_fused_kernels(true, true);
    const Pass b16 = run(*m, ids, probe);
    const double scale = f32.logits.abs().max().item<double>();
    const double diff = qkt::maxdiff(f32.logits, b16.logits);
    CHECK(diff > 0);              // it does round
    CHECK(diff < 0.03 * scale);   // to bf16's 8-bit mantissa, not worse
    auto flat = [](const std::vector<torch::Tensor>& g) {
      std::vector<torch::Tensor> v;
      for (const auto& t : g) v.push_back(t.reshape({-1}));
      return torch::cat(v).to(torch::kFloat64);
    };
    const auto a = flat(f32.grads), b = flat(b16.grads);
    CHECK(torch::isfinite(b).all().item<bool>());
    CHECK((a.dot(b) / (a.norm() * b.norm())).item<double>() > 0.99);  // the same descent direction
    m->set_fused_kernels(false, true);                                  // book kernels ignore it
    CHECK_FALSE(m->fused_kernels());
    CHECK(qkt::maxdiff(run(*m, ids, probe).logits, f32.logits) < 1e-4);
  }
  auto c = preset_config("default");
  c.train.precision = "bf16";
  CHECK_NOTHROW(validate_config(c, "cfg.json"));
  c.train.mode = "book";
  CHECK_THROWS_WITH(validate_config(c, "cfg.json"), Catch::Contains("train.precision") && Catch::Contains("fair"));
  c.train.mode = "fair";
  c.model.dtype = "float64";
  CHECK_THROWS_WITH(validate_config(c, "cfg.json"), Catch::Contains("train.precision"));
  c.model.dtype = "float32";
  c.train.precision = "half";
  CHECK_THROWS_WITH(validate_config(c, "cfg.json"), Catch::Contains("train.precision"));
}
