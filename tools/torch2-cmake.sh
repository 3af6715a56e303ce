#!/usr/bin/env bash
# Prints the CMake arguments that build QKLab against the LibTorch inside a python's torch wheel
# (PyTorch 2.x): bash tools/torch2-cmake.sh PYTHON. One home for setup.sh's stage 3 and
# tools/gpu/check.sh. The torch folder itself comes first in CMAKE_PREFIX_PATH so that LibTorch's
# find_library calls find the wheel's lib/ before a system LibTorch (Debian's libtorch-dev in
# /usr/lib would win otherwise); GCC's OpenMP is off (the wheel brings its own libgomp); nvcc is
# named when the CUDA toolkit is there (the wheel's LibTorch is CUDA-enabled, and its CMake config
# needs a toolkit to configure).
set -euo pipefail
py="${1:?usage: torch2-cmake.sh PYTHON}"
root=$("$py" -c 'import os, torch; print(os.path.dirname(torch.__file__))')
args=("-DCMAKE_PREFIX_PATH=$root;$root/share/cmake" -DQKLAB_OPENMP=OFF -DQKLAB_GUI=OFF)
nvcc=$(command -v nvcc || true)
[ -z "$nvcc" ] && [ -x /usr/local/cuda/bin/nvcc ] && nvcc=/usr/local/cuda/bin/nvcc
[ -n "$nvcc" ] && args+=("-DCMAKE_CUDA_COMPILER=$nvcc")
printf '%s\n' "${args[@]}"
