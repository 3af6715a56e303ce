#!/usr/bin/env bash
# QKLab set-up for a fresh Debian 12 machine: installs the Debian packages QKLab needs (only
# those missing, so it is idempotent), builds with CMake + Ninja (+ ccache), then either
#   bash setup.sh run    launches qklab on its default experiment, or
#   bash setup.sh test   runs every test (CTest) — what CI runs, in three stages:
#     1. the peers' environment (tools/peers/requirements.lock: PyTorch 2.x, transformers,
#        TransformerLens, WeightWatcher, tiktoken, TensorBoard) in a virtual environment, made
#        while stage 2 compiles; its tests carry the CTest label `peers`;
#     2. build/ against Debian's LibTorch 1.13 (the default) and every test, the judges included;
#     3. build-torch2/ against the peers' LibTorch 2.x with clang, AddressSanitizer +
#        UndefinedBehaviorSanitizer and libFuzzer coverage (everything: the engine, qklab-cli,
#        qklab-bench, the GUI and every test, a fuzz target per file parser), those tests — the
#        GUI's with LeakSanitizer on, Qt's own allocations suppressed — and every parser fuzzed for
#        a bounded time (QKLAB_FUZZ_SECONDS each, default 30).
#   bash setup.sh peers  makes the peers' environment only and prints its python.
# Run it as root or as a user with sudo.
set -euo pipefail
cd "$(dirname "$0")"
mode="${1:-run}"
case "$mode" in run|test|build|peers) ;; *) echo "usage: bash setup.sh [run|test|build|peers]" >&2; exit 2 ;; esac

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
packages=(build-essential cmake ninja-build ccache pkg-config
          qt6-base-dev qt6-svg-dev libqcustomplot-dev libtorch-dev libopenblas0-pthread
          catch2 nlohmann-json3-dev libcli11-dev libpcre2-dev
          python3-torch xvfb xauth imagemagick clang libclang-rt-14-dev
          slurm-wlm munge libtcmalloc-minimal4
          libprotobuf-dev protobuf-compiler libboost-dev python3-venv zlib1g-dev
          bible-kjv stress-ng python3-regex
          python3-dev)  # Python.h: torch.compile (the benchmark's peer) builds its CPU kernels against it
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  $SUDO apt-get update -qq
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# The peers' environment: a virtual environment of Debian's python3 with the pinned lock, kept
# outside the checkout under ~/.cache/qklab (named by the lock's hash, so a changed lock makes a new
# one and an unchanged one is reused by every clone). Wheels are kept in ~/.cache/qklab/wheels.
lock=tools/peers/requirements.lock
peers_hash=$(sha256sum "$lock" | cut -c1-12)
peers_root="${QKLAB_PEERS_ROOT:-$HOME/.cache/qklab}"
peers_venv="$peers_root/peers-$peers_hash"
make_peers() {
  [ -f "$peers_venv/qklab-complete" ] && return 0
  local t0=$SECONDS
  rm -rf "$peers_venv"
  mkdir -p "$peers_root/wheels"
  /usr/bin/python3 -m venv "$peers_venv"
  # Download into the wheel folder (a later environment installs from it without the network).
  "$peers_venv/bin/pip" download -q --no-deps -r "$lock" -d "$peers_root/wheels" --progress-bar off
  "$peers_venv/bin/pip" install -q --no-index --no-deps --find-links "$peers_root/wheels" -r "$lock"
  { echo "made $(date -u +%FT%TZ) in $((SECONDS - t0)) s from $lock ($peers_hash)"
    "$peers_venv/bin/python" --version
    "$peers_venv/bin/pip" freeze
    echo "size: $(du -sh "$peers_venv" | cut -f1)"; } > "$peers_venv/qklab-versions.txt"
  touch "$peers_venv/qklab-complete"
  echo "setup: peers' environment $peers_venv made in $((SECONDS - t0)) s ($(du -sh "$peers_venv" | cut -f1))"
}
if [ "$mode" = peers ]; then make_peers; echo "$peers_venv/bin/python"; exit 0; fi

# ccache: paths relative to the checkout (hits across clones), and PCH-friendly sloppiness.
export CCACHE_BASEDIR="$PWD"
export CCACHE_SLOPPINESS="${CCACHE_SLOPPINESS:-pch_defines,time_macros,include_file_mtime,include_file_ctime}"
jobs=$(nproc)
stage() { echo "== setup: $1 ($(date -u +%T), ${SECONDS} s)"; }

peers_pid=""
peers_args=()
if [ "$mode" = test ]; then
  # Stage 1 in the background: mostly network and unpacking, while stage 2 compiles.
  stage "peers' environment (background)"
  mkdir -p build
  ( make_peers ) > build/peers-setup.log 2>&1 &
  peers_pid=$!
  peers_args=(-DQKLAB_PEERS_PYTHON="$peers_venv/bin/python")
fi
mkdir -p build
stage "build (LibTorch 1.13)"
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release "${peers_args[@]}" > build/configure.log 2>&1 ||
  { cat build/configure.log; exit 1; }
ninja -C build -j "$jobs"

case "$mode" in
  run)
    exec ./build/app/qklab --autostart ;;
  test)
    if ! wait "$peers_pid"; then cat build/peers-setup.log; echo "setup: the peers' environment failed" >&2; exit 1; fi
    cat build/peers-setup.log
    cp "$peers_venv/qklab-versions.txt" build/peers-versions.txt
    # The language study's corpus (tools/corpus/kjv.sh): the King James Bible from bible-kjv-text,
    # prepared as GPT-2 tokens into ~/.cache/qklab/corpora (kept between runs).
    if [ -n "${QKLAB_DATA_DIR:-}" ]; then
      stage "corpus: the King James Bible as GPT-2 tokens"
      bash tools/corpus/kjv.sh "${QKLAB_CORPUS_DIR:-$peers_root/corpora}" build/app/qklab-cli "$QKLAB_DATA_DIR"
    fi
    # Tests read the book's corpus and GPT-2 files from QKLAB_DATA_DIR when set (.ci/run sets it);
    # without them those tests report themselves skipped (never in CI: there they fail).
    stage "tests (LibTorch 1.13, the judges included)"
    ctest --test-dir build --output-on-failure -j 2 --timeout 900

    # Stage 3, one build for two purposes: everything (the GUI and its tests too) and a libFuzzer
    # target per file parser, built against the peers' LibTorch 2.x (CUDA-enabled: its CUDA paths
    # compile and link here, and run where a GPU is) with clang, AddressSanitizer +
    # UndefinedBehaviorSanitizer and libFuzzer coverage; then every test, and each fuzz target for
    # QKLAB_FUZZ_SECONDS from tests/fuzz/seeds. Qt itself is not instrumented; the GUI tests turn
    # LeakSanitizer on with Qt's own allocations suppressed (tests/ui/lsan_qt.supp). Elsewhere leak
    # detection is off: LibTorch's zip reader leaks a few hundred bytes when it rejects a corrupt archive.
    stage "build: LibTorch 2.x (the peers' torch), clang + ASan + UBSan + libFuzzer"
    mapfile -t torch2_args < <(bash tools/torch2-cmake.sh "$peers_venv/bin/python")
    cmake -S . -B build-torch2 -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_COMPILER=clang++ \
      -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O2 -gline-tables-only" "${torch2_args[@]}" -DQKLAB_GUI=ON \
      -DQKLAB_SANITIZE=ON -DQKLAB_FUZZ=ON -DQKLAB_FUZZ_SECONDS="${QKLAB_FUZZ_SECONDS:-30}" \
      > build/torch2-configure.log 2>&1 || { cat build/torch2-configure.log; exit 1; }
    grep -E "LibTorch|protobuf" build/torch2-configure.log || true
    ninja -C build-torch2 -j "$jobs"
    stage "tests: LibTorch 2.x under ASan + UBSan, and the fuzzers"
    ASAN_OPTIONS=detect_leaks=0 ctest --test-dir build-torch2 --output-on-failure -j 2 --timeout 1800
    stage "done" ;;
esac
