// QKLab engine — fair mode's kernels (see kernels.h).
#include "kernels.h"

#include <ATen/Parallel.h>

#include <cmath>

namespace qk {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::tensor_list;

// Below this many multiply-adds a GEMM runs as one call: splitting costs more than it saves.
constexpr double kSplitWork = 1 << 18;

// Calls f(begin, end) for `parts` contiguous blocks of [0, n) on the intra-op pool (one block for a
// small GEMM, or on a GPU, whose one call already uses the whole device).
template <class F> void blocks(const torch::Tensor& like, int64_t n, double work, F&& f) {
  const int64_t parts = work < kSplitWork || !like.is_cpu() ? 1 : std::min<int64_t>(at::get_num_threads(), n);
  if (parts <= 1) {
    f(0, n);
    return;
  }
  at::parallel_for(0, parts, 1, [&](int64_t p0, int64_t p1) {
    torch::NoGradGuard ng;  // grad mode is per thread: the pool's threads must not record the out= calls
    for (int64_t p = p0; p < p1; ++p) f(n * p / parts, n * (p + 1) / parts);
  });
}

struct LinearFn : torch::autograd::Function<LinearFn> {
  // x (N, in) contiguous, w (out, in), b (out) when has_bias
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& x, const torch::Tensor& w,
                               const torch::Tensor& b, bool has_bias) {
    ctx->save_for_backward({x, w});
    ctx->saved_data["has_bias"] = has_bias;
    const int64_t N = x.size(0), in = x.size(1), out = w.size(0);
    auto y = torch::empty({N, out}, x.options());  // (N, out)
    const auto wt = w.t();
    blocks(x, N, static_cast<double>(N) * in * out, [&](int64_t r0, int64_t r1) {
      auto ys = y.slice(0, r0, r1);
      if (has_bias) at::addmm_out(ys, b, x.slice(0, r0, r1), wt);
      else at::mm_out(ys, x.slice(0, r0, r1), wt);
    });
    return y;
  }
  static tensor_list backward(AutogradContext* ctx, tensor_list grads) {
    const auto saved = ctx->get_saved_variables();
    const auto& x = saved[0];
    const auto& w = saved[1];
    const auto g = grads[0].contiguous();  // (N, out)
    const int64_t N = x.size(0), in = x.size(1), out = w.size(0);
    const double work = static_cast<double>(N) * in * out;
    torch::Tensor dx, dw, db;
    if (ctx->needs_input_grad(0)) {
      dx = torch::empty({N, in}, x.options());  // g·w, by rows
      blocks(x, N, work, [&](int64_t r0, int64_t r1) {
        auto s = dx.slice(0, r0, r1);
        at::mm_out(s, g.slice(0, r0, r1), w);
      });
    }
    if (ctx->needs_input_grad(1)) {
      dw = torch::empty({out, in}, w.options());  // gᵀ·x, by output features
      blocks(x, out, work, [&](int64_t o0, int64_t o1) {
        auto s = dw.slice(0, o0, o1);
        at::mm_out(s, g.slice(1, o0, o1).t(), x);
      });
    }
    if (ctx->saved_data["has_bias"].toBool() && ctx->needs_input_grad(2)) db = g.sum(0);
    return {dx, dw, db, torch::Tensor()};
  }
};

// The bfloat16 linear layer: float32 in and out, GEMMs in bfloat16 (the operands saved rounded).
struct LinearBf16Fn : torch::autograd::Function<LinearBf16Fn> {
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& x, const torch::Tensor& w,
                               const torch::Tensor& b, bool has_bias) {
    const auto xb = x.to(torch::kBFloat16), wb = w.to(torch::kBFloat16);
    ctx->save_for_backward({xb, wb});
    ctx->saved_data["has_bias"] = has_bias;
    auto y = torch::mm(xb, wb.t()).to(x.scalar_type());  // (N, out)
    return has_bias ? y.add_(b) : y;
  }
  static tensor_list backward(AutogradContext* ctx, tensor_list grads) {
    const auto saved = ctx->get_saved_variables();
    const auto& xb = saved[0];
    const auto& wb = saved[1];
    const auto g = grads[0].contiguous();  // (N, out) float32
    const auto gb = g.to(torch::kBFloat16);
    torch::Tensor dx, dw, db;
    if (ctx->needs_input_grad(0)) dx = torch::mm(gb, wb).to(g.scalar_type());      // (N, in)
    if (ctx->needs_input_grad(1)) dw = torch::mm(gb.t(), xb).to(g.scalar_type());  // (out, in)
    if (ctx->saved_data["has_bias"].toBool() && ctx->needs_input_grad(2)) db = g.sum(0);
    return {dx, dw, db, torch::Tensor()};
  }
};

struct BmmFn : torch::autograd::Function<BmmFn> {
  // a (N, M, K), b (N, K, P); add broadcast to (N, M, P) when has_add (not differentiated)
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& a, const torch::Tensor& b, double alpha,
                               const torch::Tensor& add, bool has_add) {
    ctx->save_for_backward({a, b});
    ctx->saved_data["alpha"] = alpha;
    const int64_t N = a.size(0), M = a.size(1), K = a.size(2), P = b.size(2);
    auto c = torch::empty({N, M, P}, a.options());  // (N, M, P)
    const auto addx = has_add ? add.expand({N, M, P}) : torch::Tensor();
    blocks(a, N, static_cast<double>(N) * M * K * P, [&](int64_t n0, int64_t n1) {
      auto cs = c.slice(0, n0, n1);
      if (has_add) {
        at::baddbmm_out(cs, addx.slice(0, n0, n1), a.slice(0, n0, n1), b.slice(0, n0, n1), 1.0, alpha);
      } else {
        at::bmm_out(cs, a.slice(0, n0, n1), b.slice(0, n0, n1));
        if (alpha != 1.0) cs.mul_(alpha);
      }
    });
    return c;
  }
  static tensor_list backward(AutogradContext* ctx, tensor_list grads) {
    const auto saved = ctx->get_saved_variables();
    const auto& a = saved[0];
    const auto& b = saved[1];
    const double alpha = ctx->saved_data["alpha"].toDouble();
    const auto g = grads[0].contiguous();  // (N, M, P)
    const int64_t N = a.size(0), M = a.size(1), K = a.size(2), P = b.size(2);
    const double work = static_cast<double>(N) * M * K * P;
    torch::Tensor ga, gb;
    if (ctx->needs_input_grad(0)) ga = torch::empty({N, M, K}, a.options());
    if (ctx->needs_input_grad(1)) gb = torch::empty({N, K, P}, b.options());
    blocks(a, N, work, [&](int64_t n0, int64_t n1) {
      const auto gs = g.slice(0, n0, n1);
      if (ga.defined()) {  // alpha·g·bᵀ
        auto s = ga.slice(0, n0, n1);
        at::bmm_out(s, gs, b.slice(0, n0, n1).transpose(1, 2));
        if (alpha != 1.0) s.mul_(alpha);
      }
      if (gb.defined()) {  // alpha·aᵀ·g
        auto s = gb.slice(0, n0, n1);
        at::bmm_out(s, a.slice(0, n0, n1).transpose(1, 2), gs);
        if (alpha != 1.0) s.mul_(alpha);
      }
    });
    return {ga, gb, torch::Tensor(), torch::Tensor(), torch::Tensor()};
  }
};

constexpr double kGeluC = 0.7978845608028654;  // √(2/π)
constexpr double kGeluK = 0.044715;

struct GeluFn : torch::autograd::Function<GeluFn> {
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& x) {
    auto x2 = x * x;
    auto s = x2.mul_(kGeluK).add_(1).mul_(x).mul_(2 * kGeluC).sigmoid_();  // σ(2u), u = c(x + k x³)
    ctx->save_for_backward({x, s});
    return x * s;
  }
  static tensor_list backward(AutogradContext* ctx, tensor_list grads) {
    const auto saved = ctx->get_saved_variables();
    const auto& x = saved[0];
    const auto& s = saved[1];
    // d/dx x·σ(2u) = σ + x·σ(1 − σ)·2c(1 + 3k x²)
    auto du = (x * x).mul_(3 * kGeluK).add_(1).mul_(2 * kGeluC).mul_(x);  // x·2c(1 + 3k x²)
    auto ds = (1 - s).mul_(s);                                              // σ(1 − σ)
    return {du.mul_(ds).add_(s).mul_(grads[0])};
  }
};

}  // namespace

torch::Tensor parallel_linear(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& b, bool bf16) {
  const int64_t in = x.size(-1);
  auto sizes = x.sizes().vec();
  sizes.back() = w.size(0);
  const bool has_bias = b.defined();
  const auto x2 = x.reshape({-1, in}).contiguous();
  auto y = bf16 ? LinearBf16Fn::apply(x2, w, has_bias ? b : w, has_bias)
                : LinearFn::apply(x2, w, has_bias ? b : w, has_bias);  // (N, out)
  return y.view(sizes);
}

torch::Tensor parallel_bmm(const torch::Tensor& a, const torch::Tensor& b, double alpha, const torch::Tensor& add) {
  const bool has_add = add.defined();
  return BmmFn::apply(a, b, alpha, has_add ? add : a, has_add);
}

torch::Tensor gelu_tanh_fast(const torch::Tensor& x) { return GeluFn::apply(x); }

}  // namespace qk
