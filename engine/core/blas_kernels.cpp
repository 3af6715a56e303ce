// QKLab engine — OpenBLAS's kernels on CPUs newer than the library (see blas_kernels.h).
#include "blas_kernels.h"

#include <cpuid.h>
#include <dlfcn.h>

#include <cstdlib>
#include <mutex>

namespace qk {

namespace {

using NameFn = char* (*)();
using VoidFn = void (*)();

NameFn corename_fn() { return reinterpret_cast<NameFn>(dlsym(RTLD_DEFAULT, "openblas_get_corename")); }

bool pre_avx2(const std::string& core) {
  for (const char* c : {"Prescott", "Core2", "Penryn", "Dunnington", "Nehalem", "Sandybridge"})
    if (core == c) return true;
  return false;
}

// The best OpenBLAS kernels this CPU and OS support, as OPENBLAS_CORETYPE names them ("" when
// nothing better than SSE3 is known). __builtin_cpu_supports checks the OS's support too (XGETBV).
std::string best_kernels() {
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
      __builtin_cpu_supports("avx512dq")) {
    unsigned a = 0, b = 0, c = 0, d = 0;  // CPUID leaf 7, sub-leaf 1: EAX bit 5 is AVX512_BF16
    const bool bf16 = __get_cpuid_count(7, 1, &a, &b, &c, &d) && (a & (1u << 5));
    return bf16 ? "Cooperlake" : "SkylakeX";
  }
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return "Haswell";
  return "";
}

}  // namespace

std::string blas_kernel_name() {
  const NameFn fn = corename_fn();
  const char* name = fn ? fn() : nullptr;
  return name ? std::string(name) : std::string();
}

bool blas_kernels_below_cpu() {
  const std::string core = blas_kernel_name();
  return !core.empty() && pre_avx2(core) && !best_kernels().empty();
}

BlasKernels choose_blas_kernels() {
  static std::once_flag once;
  static BlasKernels result;
  std::call_once(once, [] {
    result.before = result.after = blas_kernel_name();
    if (result.before.empty() || std::getenv("OPENBLAS_CORETYPE")) return;  // no OpenBLAS, or the user chose
    if (!pre_avx2(result.before)) return;
    const std::string best = best_kernels();
    if (best.empty()) return;
    // OpenBLAS's own dispatch, run again with OPENBLAS_CORETYPE set: quit drops its choice, init
    // reads the variable (driver/others/dynamic.c). Both are exported by DYNAMIC_ARCH builds.
    const auto quit = reinterpret_cast<VoidFn>(dlsym(RTLD_DEFAULT, "gotoblas_dynamic_quit"));
    const auto init = reinterpret_cast<VoidFn>(dlsym(RTLD_DEFAULT, "gotoblas_dynamic_init"));
    setenv("OPENBLAS_CORETYPE", best.c_str(), 1);  // child processes load with these kernels
    if (!quit || !init) return;
    quit();
    init();
    result.after = blas_kernel_name();
  });
  return result;
}

}  // namespace qk
