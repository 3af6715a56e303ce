#!/usr/bin/env bash
# QKLab tests — the sweep's Slurm backend for real: starts a single-node Slurm (start_slurm.sh),
# runs a 4-run sweep through it (`--backend slurm --wait`: an sbatch job array), checks the
# summary by content, and that it equals the same sweep run locally (runs are deterministic).
# Exit 77 (CTest: skipped, not passed) when the daemons cannot start on this machine.
set -uo pipefail
CLI="${1:?usage: test_slurm_sweep.sh QKLAB_CLI}"
HERE="$(cd "$(dirname "$0")" && pwd)"
T="$(mktemp -d /tmp/qklab-slurm-test.XXXXXX)"
cleanup() { bash "$HERE/start_slurm.sh" "$T/cluster" stop >/dev/null 2>&1; rm -rf "$T"; }
trap cleanup EXIT
if ! start="$(bash "$HERE/start_slurm.sh" "$T/cluster" 2>&1)"; then
  echo "SKIPPED: a single-node Slurm could not start here: $start"
  exit 77
fi
export SLURM_CONF="$T/cluster/slurm.conf"
cat > "$T/sweep.json" <<'JSON'
{"name": "slurm-test", "preset": "default",
 "set": {"train.steps": 40, "train.eval_every": 20, "train.eval_batches": 2},
 "variants": ["standard", "merged"], "grid": {"model.n_heads": [2, 4]}, "seeds": [7]}
JSON
fail() { echo "FAILED: $*"; exit 1; }
"$CLI" sweep "$T/sweep.json" --out "$T/slurm" --backend slurm --wait --jobs 2 > "$T/out.txt" 2>&1 \
  || { cat "$T/out.txt"; tail -5 "$T"/slurm/slurm/task-*.log 2>/dev/null; fail "the Slurm sweep exited non-zero"; }
grep -q "submitted Slurm job array" "$T/out.txt" || fail "no job array was submitted"
grep -q "#SBATCH --array=0,1,2,3%2" "$T/slurm/slurm/sweep.sbatch" || fail "the job script lacks the 4-task array"
for i in 0 1 2 3; do
  grep -q "step 000039" "$T/slurm/slurm/task-$i.log" || fail "array task $i did not train to step 39"
done
rows=$(($(wc -l < "$T/slurm/summary.csv") - 1))
[ "$rows" -eq 4 ] || fail "summary.csv has $rows runs, expected 4"
"$CLI" sweep "$T/sweep.json" --out "$T/local" --jobs 2 > "$T/local.txt" 2>&1 || fail "the local sweep failed"
python3 - "$T/slurm/summary.csv" "$T/local/summary.csv" <<'PY' || exit 1
import csv, sys
a = {r["run"]: r for r in csv.DictReader(open(sys.argv[1]))}
b = {r["run"]: r for r in csv.DictReader(open(sys.argv[2]))}
assert sorted(a) == sorted(b) and len(a) == 4, (sorted(a), sorted(b))
for k in a:
    for col in ("final_val_loss", "best_val_loss", "params", "flops_per_token", "model.n_heads"):
        assert a[k][col] == b[k][col], (k, col, a[k][col], b[k][col])
    assert 0 < float(a[k]["final_val_loss"]) < 10, a[k]
print("slurm sweep: 4 runs, summary equal to the local sweep's:",
      ", ".join(f'{k} {a[k]["final_val_loss"]}' for k in sorted(a)))
PY
# Started again, a finished sweep submits nothing and only aggregates.
"$CLI" sweep "$T/sweep.json" --out "$T/slurm" --backend slurm --wait > "$T/again.txt" 2>&1 || fail "the rerun failed"
grep -q "submitted" "$T/again.txt" && fail "a finished sweep was submitted again"
grep -q "4 already finished" "$T/again.txt" || fail "the rerun did not see the 4 finished runs"
echo "PASSED"
