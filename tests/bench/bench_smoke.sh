#!/usr/bin/env bash
# The benchmark runs end to end as a user runs it (not a speed test: no time is asserted): QKLab and
# the PyTorch reference each train the tiny config, and the table and JSON carry a number for every
# column. usage: bench_smoke.sh path/to/qklab-bench
set -euo pipefail
bench="$1"
dir="$(mktemp -d /tmp/qklab-bench-smoke.XXXXXX)"
trap 'rm -rf "$dir"' EXIT
"$bench" train --configs tiny --reps 1 --scale 0.25 --json "$dir/bench.json" > "$dir/out.txt"
cat "$dir/out.txt"
grep -q "^| tiny | standard | " "$dir/out.txt"
grep -q "^| tiny | merged | " "$dir/out.txt"
"${QKLAB_PYTHON:-/usr/bin/python3}" - "$dir/bench.json" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
assert j["sgemm_gflops"] > 1, j["sgemm_gflops"]
rows = {r["variant"]: r for r in j["rows"]}
assert set(rows) == {"standard", "merged"}, rows.keys()
for v, r in rows.items():
    assert len(r["qklab"]) == 1 and len(r["pytorch"]) == 1, v
    for side in ("qklab", "pytorch"):
        run = r[side][0]
        assert len(run["ms"]) == 10 and run["median_ms"] > 0 and run["maxrss_kib"] > 0, (v, side)
    s = r["summary"]
    for k in ("qklab_ms", "pytorch_ms", "ratio", "qklab_tokens_per_s", "mfu", "qklab_sys_share", "pytorch_sys_share"):
        assert s[k] == s[k] and s[k] >= 0, (v, k, s[k])
    ph = r["qklab"][0]["phases_ms"]
    assert ph["forward"] > 0 and ph["backward"] > 0 and ph["optimizer"] > 0, ph
    assert abs(sum(ph.values()) - s["qklab_ms"]) < 0.5 * s["qklab_ms"], (ph, s["qklab_ms"])
print("bench smoke: ok")
PY
