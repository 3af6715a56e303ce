#!/usr/bin/env bash
# The C++ compiler torch.compile (inductor) runs on the CPU, for the peers' torch 2.x wheel on a
# machine that also has Debian's libtorch-dev: inductor links its kernels with
# -L/usr/lib/x86_64-linux-gnu (Python's LIBDIR) ahead of the wheel's torch/lib, so they link
# against Debian's LibTorch 1.13, whose Sleef comes from another library; the wheel's process
# then cannot load them ("undefined symbol: Sleef_expf8_u10"), inductor declares no vector ISA
# valid and falls back to scalar code. Dropping that -L leaves the directory on the linker's default
# path, searched after the wheel's. Used as CXX by qklab-bench (tests/bench/bench_train.cpp).
args=()
for a in "$@"; do
  [[ "$a" == "-L/usr/lib/x86_64-linux-gnu" ]] && continue
  args+=("$a")
done
exec "${QKLAB_INDUCTOR_REAL_CXX:-g++}" "${args[@]}"
