#!/usr/bin/env bash
# QKLab set-up for a fresh Debian 12 machine: installs the Debian packages QKLab needs (only
# those missing, so it is idempotent), builds with CMake + Ninja (+ ccache), then either
#   bash setup.sh run    launches qklab on its default experiment, or
#   bash setup.sh test   runs every test (CTest) — what CI runs: the tests, then the engine's tests
#                        again under AddressSanitizer + UndefinedBehaviorSanitizer (clang) and every
#                        file parser fuzzed with libFuzzer for a bounded time (build/sanitize).
# Run it as root or as a user with sudo.
set -euo pipefail
cd "$(dirname "$0")"
mode="${1:-run}"
case "$mode" in run|test|build) ;; *) echo "usage: bash setup.sh [run|test|build]" >&2; exit 2 ;; esac

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
packages=(build-essential cmake ninja-build ccache pkg-config
          qt6-base-dev qt6-svg-dev libqcustomplot-dev libtorch-dev libopenblas0-pthread
          catch2 nlohmann-json3-dev libcli11-dev libpcre2-dev
          python3-torch xvfb xauth imagemagick clang libclang-rt-14-dev
          slurm-wlm munge libtcmalloc-minimal4)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  $SUDO apt-get update -qq
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# ccache: paths relative to the checkout (hits across clones), and PCH-friendly sloppiness.
export CCACHE_BASEDIR="$PWD"
export CCACHE_SLOPPINESS="${CCACHE_SLOPPINESS:-pch_defines,time_macros,include_file_mtime,include_file_ctime}"
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release
jobs=$(nproc)
ninja -C build -j "$jobs"

case "$mode" in
  run)
    exec ./build/app/qklab --autostart ;;
  test)
    # Tests read the book's corpus and GPT-2 files from QKLAB_DATA_DIR when set (.ci/run sets it);
    # without them those tests report themselves skipped.
    ctest --test-dir build --output-on-failure -j 2 --timeout 900
    # Reliability: the engine and its tests again with clang, ASan + UBSan and libFuzzer coverage
    # (GUI off: Qt is not instrumented), then the same tests and each fuzz target for
    # QKLAB_FUZZ_SECONDS (40 s) from tests/fuzz/seeds. LibTorch's zip reader leaks a few hundred
    # bytes when it rejects a corrupt archive, so leak detection is off.
    cmake -S . -B build/sanitize -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_COMPILER=clang++ \
      -DQKLAB_BUILD_GUI=OFF -DQKLAB_SANITIZE=ON -DQKLAB_FUZZ=ON
    ninja -C build/sanitize -j "$jobs"
    ASAN_OPTIONS=detect_leaks=0 ctest --test-dir build/sanitize --output-on-failure -j 2 --timeout 1800 ;;
esac
