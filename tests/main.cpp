// QKLab tests — Catch2 main. Threads are fixed (1 LibTorch, 1 BLAS) so results are repeatable.
#define CATCH_CONFIG_RUNNER
#include "blas_kernels.h"
#include <catch2/catch.hpp>

#include "trainer.h"

int main(int argc, char* argv[]) {
  qk::choose_blas_kernels();  // the kernels qklab-cli uses (blas_kernels.h)
  qk::configure_threads(1, 1);
  return Catch::Session().run(argc, argv);
}
