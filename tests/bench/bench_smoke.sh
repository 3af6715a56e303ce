#!/usr/bin/env bash
# The benchmark runs end to end as a user runs it (not a speed test: no time is asserted): QKLab and
# the PyTorch peers each train the tiny config on one core, every peer is tuned over its grid
# (allocator here: one core allows one thread), and the table and JSON carry a number for every
# column. Peers: Debian's torch 1.13, and torch 2.x compiled where the peers' environment exists
# (QKLAB_PEERS_PYTHON / the build's); without it that peer is left out, except in CI (CI=true) or
# with QKLAB_REQUIRE_PEERS=1, where a missing peer fails. Then `analyses --zero-mean` on tiny prints
# each variant's head-ablation time in paired steps. usage: bench_smoke.sh path/to/qklab-bench
set -euo pipefail
bench="$1"
peers_python="${2:-}"
dir="$(mktemp -d /tmp/qklab-bench-smoke.XXXXXX)"
trap 'rm -rf "$dir"' EXIT
peers=torch-1.13
if [ -n "$peers_python" ] && [ -x "$peers_python" ]; then
  peers=torch-1.13,torch-2-compile
elif [ "${CI:-}" = true ] || [ "${QKLAB_REQUIRE_PEERS:-}" = 1 ]; then
  echo "FAIL: the peers' environment is missing (python '$peers_python'): bash setup.sh peers"; exit 1
else
  echo "note: the peers' environment is missing; torch 2.x is left out of this run"
fi
"$bench" train --configs tiny --cores 1 --peers "$peers" ${peers_python:+--peers-python "$peers_python"} \
  --reps 1 --scale 0.25 --json "$dir/bench.json" > "$dir/out.txt"
cat "$dir/out.txt"
grep -q "^| tiny | standard | 1 | " "$dir/out.txt"
grep -q "^| tiny | merged | 1 | " "$dir/out.txt"
"${QKLAB_PYTHON:-/usr/bin/python3}" - "$dir/bench.json" "$peers" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
peers = sys.argv[2].split(",")
assert j["sgemm_gflops"]["1"] > 1, j["sgemm_gflops"]
rows = {r["variant"]: r for r in j["rows"]}
assert set(rows) == {"standard", "merged"}, rows.keys()
for v, r in rows.items():
    assert r["cores"] == 1 and len(r["qklab"]) == 1, v
    run = r["qklab"][0]
    assert len(run["ms"]) == 10 and run["median_ms"] > 0 and run["maxrss_kib"] > 0, (v, "qklab")
    assert run["threads"] == [1, 1], run["threads"]  # one core: one thread each
    assert sorted(r["peers"]) == sorted(peers), r["peers"].keys()
    for name, p in r["peers"].items():
        # the grid at one core: glibc malloc and tcmalloc, each timed; the best kept
        labels = [t["label"] for t in p["tuning"]]
        assert len(labels) == 2 and any("tcmalloc" in l for l in labels) and any("glibc" in l for l in labels), labels
        assert p["best_label"] == min(p["tuning"], key=lambda t: t["median_ms"])["label"], (name, p["best_label"])
        assert len(p["runs"]) == 1 and len(p["runs"][0]["ms"]) == 10 and p["median_ms"] > 0, name
        if "compile" in name:
            assert p["runs"][0]["torch"].startswith("2."), p["runs"][0]["torch"]
            assert p["compile_s_cold"] > 0 and p["compile_s_warm"] >= 0, (p["compile_s_cold"], p["compile_s_warm"])
    s = r["summary"]
    for k in ("qklab_ms", "best_peer_ms", "ratio", "qklab_tokens_per_s", "mfu"):
        assert s[k] == s[k] and s[k] > 0, (v, k, s[k])
    assert s["best_peer"] in peers
    assert abs(s["ratio"] - s["best_peer_ms"] / s["qklab_ms"]) < 1e-9 * s["ratio"] + 1e-9, s
    ph = run["phases_ms"]
    assert ph["forward"] > 0 and ph["backward"] > 0 and ph["optimizer"] > 0, ph
    assert abs(sum(ph.values()) - s["qklab_ms"]) < 0.5 * s["qklab_ms"], (ph, s["qklab_ms"])
print("bench smoke: ok")
PY
# The analyses in paired training steps, head ablation stopped after zero and mean: each variant's
# time is printed, in seconds and in paired steps.
"$bench" analyses --config tiny --no-report --zero-mean > "$dir/analyses.txt"
cat "$dir/analyses.txt"
for v in standard merged; do
  grep -Eq "^ablation, $v: zero and mean [0-9.]+ s = [0-9.]+ paired steps$" "$dir/analyses.txt"
done
grep -Eq "^paired step \(standard \+ merged\): [0-9.]+ s" "$dir/analyses.txt"
echo "bench analyses smoke: ok"
