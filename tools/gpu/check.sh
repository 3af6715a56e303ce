#!/usr/bin/env bash
# QKLab on a GPU machine: PyTorch 2.x with its bundled LibTorch, CMake and ninja, but no Debian -dev
# packages and no network. Two steps:
#
#   here (Debian 12):  bash tools/gpu/check.sh pack
#       copies what the build needs besides LibTorch into .gpu-deps/ (git-ignored, about 2 MB):
#       nlohmann-json, CLI11 and Catch2 (header-only, with their CMake files), PCRE2's header and
#       library. Carry .gpu-deps with the working tree.
#   there:             bash tools/gpu/check.sh run [OUT]
#       builds the engine, qklab-cli, the tests and qklab-bench against python3's torch (GUI off,
#       system malloc, no GCC OpenMP beside the wheel's own), runs every test that needs no Qt, trains
#       the default preset on the device and on the CPU and compares their losses, packs that run
#       folder (it opens in the GUI on a laptop), and runs the benchmark on the device against
#       PyTorch on the same device. Everything lands in OUT (default build-gpu/out):
#       versions.txt, build.log, tests.log, device-run.txt, device-run.tar.gz, bench.md, bench.json.
#
# Environment: QKLAB_PYTHON (the python3 with torch; default: the first on PATH), QKLAB_TORCH_PREFIX
# (default: the torch folder and its share/cmake, as tools/torch2-cmake.sh gives them to setup.sh's
# LibTorch 2.x stage: the same build path),
# QKLAB_DEVICE (default: cuda when torch sees one, else cpu), QKLAB_GPU_BUILD (default build-gpu),
# QKLAB_BENCH_CONFIGS (default book), QKLAB_BENCH_REPS (default 3), QKLAB_TEST_TIMEOUT (seconds for
# the whole test stage, default 300), QKLAB_CMAKE_ARGS (more configure arguments, e.g.
# -DQKLAB_CXX_STANDARD=20).
set -uo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)
deps="$root/.gpu-deps"

pack() {
  rm -rf "$deps"
  mkdir -p "$deps/usr/include" "$deps/usr/lib" "$deps/usr/share/cmake" "$deps/usr/lib/cmake"
  cp -r /usr/include/nlohmann /usr/include/CLI /usr/include/catch2 /usr/include/pcre2.h "$deps/usr/include/"
  cp -r /usr/share/cmake/nlohmann_json /usr/share/cmake/CLI11 "$deps/usr/share/cmake/"
  cp -r /usr/lib/cmake/Catch2 "$deps/usr/lib/cmake/"
  cp /usr/lib/libCatch2WithMain.a "$deps/usr/lib/"  # named by Catch2's CMake targets
  cp -P /usr/lib/x86_64-linux-gnu/libpcre2-8.so* "$deps/usr/lib/"
  du -sh "$deps"
  echo "carry .gpu-deps; there: bash tools/gpu/check.sh run \$OUT"
}

run() {
  local out=${1:-$root/build-gpu/out}
  local build=${QKLAB_GPU_BUILD:-$root/build-gpu}
  mkdir -p "$out" "$build"
  export QKLAB_PYTHON=${QKLAB_PYTHON:-$(command -v python3)}  # the tests' and the bench's PyTorch side
  local prefix=${QKLAB_TORCH_PREFIX:-$(bash "$root/tools/torch2-cmake.sh" "$QKLAB_PYTHON" | sed -n 's/^-DCMAKE_PREFIX_PATH=//p')}
  local device=${QKLAB_DEVICE:-$("$QKLAB_PYTHON" -c 'import torch; print("cuda" if torch.cuda.is_available() else "cpu")')}
  {
    echo "date: $(date -u +%FT%TZ)"
    "$QKLAB_PYTHON" -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda, "device", torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none")'
    echo "LibTorch CMake prefix: $prefix"
    echo "device: $device"
    "${CXX:-c++}" --version | head -1
    cmake --version | head -1
    nproc
    command -v nvidia-smi > /dev/null && nvidia-smi -L
  } > "$out/versions.txt" 2>&1
  cat "$out/versions.txt"

  # 1. Configure and build (no Qt: the GUI opens run folders on a laptop).
  local t0=$SECONDS
  if ! { cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DQKLAB_GUI=OFF \
           -DQKLAB_ALLOCATOR=system -DQKLAB_OPENMP=OFF "-DCMAKE_PREFIX_PATH=$prefix;$deps/usr" ${QKLAB_CMAKE_ARGS:-} &&
         cmake --build "$build" -j "$(nproc)" --target qklab-cli qklab_tests qklab-bench; } > "$out/build.log" 2>&1; then
    tail -30 "$out/build.log"
    echo "build failed (build.log)"
    return 1
  fi
  echo "built in $((SECONDS - t0)) s"

  # 2. Every CTest test that needs no Qt (the GUI is not built) and no Slurm daemons.
  t0=$SECONDS
  timeout "${QKLAB_TEST_TIMEOUT:-300}" ctest --test-dir "$build" -j "$(nproc)" --timeout 240 -E "slurm" \
    --output-on-failure > "$out/tests.log" 2>&1
  echo "tests: exit $? in $((SECONDS - t0)) s: $(grep -E 'tests passed|tests failed' "$out/tests.log" | tail -1)"

  # 3. The same preset on the device and on the CPU: same initial weights and batches, so the losses
  # agree up to the device's rounding. The device's run folder comes back packed.
  local cli="$build/app/qklab-cli" runs="$build/device-runs"
  rm -rf "$runs"
  mkdir -p "$runs"
  {
    for d in device cpu; do
      local dev=$device
      [ $d = cpu ] && dev=cpu
      "$cli" train --preset default --set train.steps=200 --set train.eval_every=50 --set "train.device=$dev" \
        --quiet --out "$runs/$d" > "$runs/$d.log" 2>&1 || { cat "$runs/$d.log"; echo "train on $dev failed"; }
    done
    "$QKLAB_PYTHON" - "$runs/device/metrics.csv" "$runs/cpu/metrics.csv" <<'PY'
import csv, sys
dev, cpu = (list(csv.DictReader(open(f))) for f in sys.argv[1:3])
worst = 0.0
for a, b in zip(dev, cpu):
    d = abs(float(a["val_loss"]) - float(b["val_loss"]))
    worst = max(worst, d)
    print(f'step {a["step"]:>4} {a["variant"]:<9} val loss device {float(a["val_loss"]):.5f} cpu {float(b["val_loss"]):.5f} diff {d:.2e}')
print(f"rows {len(dev)} / {len(cpu)}; largest difference {worst:.2e} -> {'ok' if len(dev) == len(cpu) and worst < 2e-2 else 'DIFFERENT'}")
PY
    "$cli" analyze "$runs/device" > "$runs/analyze.log" 2>&1 && echo "analyze of the device's run folder: ok" ||
      { cat "$runs/analyze.log"; echo "analyze failed"; }
  } > "$out/device-run.txt" 2>&1
  cat "$out/device-run.txt"
  tar -czf "$out/device-run.tar.gz" -C "$runs" device

  # 4. The benchmark on the device: QKLab against PyTorch on the same device, alternating.
  t0=$SECONDS
  "$build/tests/qklab-bench" train --configs "${QKLAB_BENCH_CONFIGS:-book}" --reps "${QKLAB_BENCH_REPS:-3}" \
    --device "$device" --peers-python "$QKLAB_PYTHON" --json "$out/bench.json" > "$out/bench.md" 2>&1
  echo "bench: exit $? in $((SECONDS - t0)) s"
  cat "$out/bench.md"
}

case "${1:-}" in
  pack) pack ;;
  run) shift; run "$@" ;;
  *) echo "usage: bash tools/gpu/check.sh pack | run [OUT]" >&2; exit 2 ;;
esac
