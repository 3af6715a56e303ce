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

# Killed array tasks: two of four running tasks cancelled once they have saved a training state —
# one by Slurm's own cancel (SIGTERM: the run saves its state and stops), one with SIGKILL — then the
# same command submits exactly the unfinished runs, and the summary equals an uninterrupted sweep's.
cat > "$T/kill.json" <<'JSON'
{"name": "slurm-kill", "preset": "default",
 "set": {"train.steps": 400, "train.eval_every": 50, "train.eval_batches": 2, "train.autosave_steps": 40},
 "variants": ["standard", "merged"], "grid": {"model.n_heads": [2, 4]}, "seeds": [7]}
JSON
# --jobs 2 in every command: the same threads per run (1 on 2 cores), so that results compare bit for bit
"$CLI" sweep "$T/kill.json" --out "$T/k" --backend slurm --jobs 2 > "$T/k1.txt" 2>&1 || { cat "$T/k1.txt"; fail "submitting the kill sweep"; }
id=$(sed -nE 's/^submitted Slurm job array ([0-9]+).*/\1/p' "$T/k1.txt")
[ -n "$id" ] || fail "no job id in: $(cat "$T/k1.txt")"
states() { find "$T/k/runs" -path '*/state/state.json' 2>/dev/null | wc -l; }
for _ in $(seq 600); do
  [ "$(states)" -ge 2 ] && [ "$(squeue -h -j "$id" -t R -o %i | wc -l)" -ge 2 ] && break
  sleep 0.2
done
mapfile -t tasks < <(squeue -h -j "$id" -t R -o %i | head -2)
[ ${#tasks[@]} -eq 2 ] || fail "two running tasks with states never appeared (states: $(states))"
scancel "${tasks[0]}"
scancel --full --signal=KILL "${tasks[1]}"
for _ in $(seq 900); do [ -z "$(squeue -h -j "$id" -o %i)" ] && break; sleep 0.2; done
[ -z "$(squeue -h -j "$id" -o %i)" ] || fail "the kill sweep's array never ended"
done_before=$(find "$T/k/runs" -name finished.json | wc -l)
[ "$done_before" -le 2 ] || fail "$done_before runs finished although two were cancelled"
# (the submitting command wrote a summary of the runs finished then: none; it lists no more than finished)
if [ -f "$T/k/summary.csv" ] && [ $(($(wc -l < "$T/k/summary.csv") - 1)) -gt "$done_before" ]; then
  fail "the summary lists runs that did not finish"
fi
"$CLI" sweep "$T/kill.json" --out "$T/k" --backend slurm --wait --jobs 2 > "$T/k2.txt" 2>&1 || { cat "$T/k2.txt"; fail "the rerun of the killed sweep failed"; }
grep -q "$done_before already finished" "$T/k2.txt" || fail "the rerun did not count $done_before finished runs: $(head -3 "$T/k2.txt")"
missing=$((4 - done_before))
grep -qE "submitted Slurm job array [0-9]+ \($missing tasks\)" "$T/k2.txt" || fail "the rerun did not submit exactly the $missing unfinished runs"
"$CLI" sweep "$T/kill.json" --out "$T/klocal" --jobs 2 > /dev/null 2>&1 || fail "the uninterrupted local kill sweep failed"
python3 - "$T/k/summary.csv" "$T/klocal/summary.csv" <<'PY' || exit 1
import csv, sys
a = {r["run"]: r for r in csv.DictReader(open(sys.argv[1]))}
b = {r["run"]: r for r in csv.DictReader(open(sys.argv[2]))}
assert sorted(a) == sorted(b) and len(a) == 4, (sorted(a), sorted(b))
for k in a:
    for col in a[k]:
        if col in ("wall_s", "wall_to_target"):
            continue
        assert a[k][col] == b[k][col], (k, col, a[k][col], b[k][col])
print("slurm sweep with 2 of 4 tasks cancelled (SIGTERM, SIGKILL): finished by the same command;",
      "summary equal to an uninterrupted sweep's in every column but wall time")
PY
echo "PASSED"
