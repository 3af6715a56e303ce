// QKLab engine — OpenBLAS's kernels on CPUs newer than the library. Debian 12's OpenBLAS (0.3.21)
// does not know Sapphire/Emerald Rapids (family 6, models 143/207): its run-time dispatch falls
// back to its Prescott (SSE3) kernels, and float32 matmuls run 3.5× slower than with the AVX-512
// ones (measured 2026-12-02 on an Emerald Rapids machine: 40 training steps of a d = 128 GPT in
// 44.9 s with Prescott, 13.8 s with SkylakeX, 12.7 s with Cooperlake kernels, one thread).
// choose_blas_kernels() asks OpenBLAS which kernels it picked and, when they are such a pre-AVX2
// fallback on a CPU (and OS) with AVX-512 or AVX2, re-initialises OpenBLAS with the best kernels
// the CPU supports — exactly what OPENBLAS_CORETYPE does at load — and sets OPENBLAS_CORETYPE so
// that child processes (sweep runs, the PyTorch peers) load with them. A user's own
// OPENBLAS_CORETYPE is left alone; without OpenBLAS (an MKL LibTorch) nothing happens. Call it
// first in main(), before any thread uses BLAS. No torch.
#pragma once
#include <string>

namespace qk {

struct BlasKernels {
  std::string before, after;  // OpenBLAS's kernel names ("Prescott", "Cooperlake"); "" without OpenBLAS
  bool changed() const { return before != after; }
};
BlasKernels choose_blas_kernels();

// The kernels OpenBLAS uses now ("" without OpenBLAS), and whether they are a pre-AVX2 fallback
// (Prescott, Core2, Penryn, Dunnington, Nehalem, Sandybridge) although the CPU has AVX2.
std::string blas_kernel_name();
bool blas_kernels_below_cpu();

}  // namespace qk
