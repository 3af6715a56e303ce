#!/usr/bin/env bash
# A full disk, for real: a run folder and a tokens folder on a small tmpfs this test mounts (in a
# private mount namespace: unshare, as root or in a user namespace), filled up to a few sizes of free
# space so that the write that fails is, in turn, metrics.csv, the training state, the TensorBoard
# event file or a checkpoint — and prepare's token files. Every time: exit 2, one line naming the
# file, "No space left on device" and the space left; the last complete state stays loadable, and
# once space is freed `train --resume` ends bit-identical to a straight run (wall time aside); a
# tokens folder being replaced stays whole and loads. Skipped (77) where nothing can be mounted,
# except with CI=true, where that fails.
#   bash tests/cli/test_disk_full.sh QKLAB_CLI
set -uo pipefail
cli="$(realpath "$1")"
if [ -z "${QKLAB_IN_MOUNT_NS:-}" ]; then
  for how in "--mount" "--mount --map-root-user"; do
    # shellcheck disable=SC2086
    if unshare $how sh -c 'd=$(mktemp -d) && mount -t tmpfs -o size=1m tmpfs "$d" && umount "$d"; rc=$?; rmdir "$d"; exit $rc' 2>/dev/null; then
      QKLAB_IN_MOUNT_NS=1 exec unshare $how bash "$0" "$@"
    fi
  done
  if [ "${CI:-}" = true ]; then echo "FAIL: cannot mount a small file system here (no mount namespace)"; exit 1; fi
  echo "SKIP: cannot mount a small file system here (unshare --mount is not allowed)"; exit 77
fi
work=$(mktemp -d); trap 'umount "$work/small" 2>/dev/null; rm -rf "$work"' EXIT
mnt="$work/small"; mkdir "$mnt"
mount -t tmpfs -o size=16m tmpfs "$mnt"
fail=0
pass() { echo "PASS $1"; }
bad() { echo "FAIL $1"; fail=1; }
free_bytes() { df --output=avail -B1 "$mnt" | tail -1 | tr -d ' '; }
fill_to() {  # leave about $1 bytes free
  rm -f "$mnt/filler"
  local avail; avail=$(free_bytes)
  if [ "$avail" -gt "$1" ]; then head -c $((avail - $1)) /dev/zero > "$mnt/filler" 2>/dev/null; fi
  true
}
metrics() { cut -d, -f1,2,4- "$1/metrics.csv"; }  # without wall_time_s
args="--preset default --set train.eval_every=5 --set train.steps=60 --set train.autosave_steps=10 --set train.spectra_every=5 --quiet"
"$cli" train $args --out "$work/straight" > /dev/null || { echo "FAIL: the straight run"; exit 1; }
state_kb=$(du -sk "$work/straight/state" | cut -f1)
ckpt_kb=$(du -ck "$work/straight"/*.safetensors | tail -1 | cut -f1)
echo "a state is ${state_kb} kB, the checkpoints ${ckpt_kb} kB"

declare -A seen
levels="0 12 $((state_kb / 2)) $((state_kb - 8))"
# Then with autosaves off for the rest of the run: the first write that needs room is a checkpoint at the end.
for k in 2 3 4; do levels="$levels ckpt:$((k * ckpt_kb / 10))"; done
# And with no spectra log, no evaluation until the end and no autosave: the event file's flush.
levels="$levels tb:0 tb:4 tb:8"
for level in $levels; do
  leave_kb=${level#*:}
  extra=""
  case "$level" in
    ckpt:*) extra="--set train.autosave_steps=0 --set train.autosave_minutes=0" ;;
    tb:*) extra="--set train.autosave_steps=0 --set train.autosave_minutes=0 --set train.spectra_every=0 --set train.eval_every=1000" ;;
  esac
  rm -rf "$mnt/run" "$mnt/filler"
  "$cli" train $args --stop-at 30 --out "$mnt/run" > /dev/null 2>&1 || { bad "setup run ($leave_kb kB)"; continue; }
  fill_to $((leave_kb * 1024))
  err=$(QKLAB_DISK_GUARD=off "$cli" train --resume "$mnt/run" $extra --quiet 2>&1 > /dev/null); rc=$?
  if [ $rc -eq 0 ]; then echo "note: with $leave_kb kB free the run finished"; continue; fi
  file=$(sed -nE 's/^qklab-cli: error: ([^:]*): write failed.*/\1/p' <<< "$err")
  lines=$(printf '%s\n' "$err" | wc -l)
  if [ $rc -eq 2 ] && [ "$lines" -eq 1 ] && grep -q "No space left on device" <<< "$err" && grep -q "free on its file system" <<< "$err" &&
     [ -n "$file" ]; then
    case "${file#"$mnt/run/"}" in
      metrics.csv) name=metrics.csv ;;
      state.partial/*) name=state ;;
      tb/*) name="event file" ;;
      spectra_history.csv) name=spectra_history.csv ;;
      *.safetensors) name=checkpoint ;;
      *) name="${file#"$mnt/run/"}" ;;
    esac
    seen[$name]=1
    pass "$leave_kb kB free: exit 2, one line: ${err#qklab-cli: error: }"
  else
    bad "$leave_kb kB free: exit $rc, $lines lines: $err"; continue
  fi
  ls "$mnt/run" | grep -q partial && bad "$leave_kb kB free: a partial file was left: $(ls "$mnt/run" | grep partial)"
  rm -f "$mnt/filler"
  if "$cli" train --resume "$mnt/run" --set train.eval_every=5 --set train.spectra_every=5 --quiet > /dev/null 2>&1 &&
     [ "$(metrics "$mnt/run")" = "$(metrics "$work/straight")" ] &&
     cmp -s "$mnt/run/spectra_history.csv" "$work/straight/spectra_history.csv"; then
    pass "$leave_kb kB free: after freeing space the resumed run equals the straight one"
  else
    bad "$leave_kb kB free: the resume after freeing space did not end as the straight run"
  fi
done
echo "the writes that met the full disk: ${!seen[*]}"
for f in metrics.csv state checkpoint spectra_history.csv "event file"; do
  [ -n "${seen[$f]:-}" ] && pass "a full disk was met writing the $f, and handled" || bad "no level made the $f write fail"
done

# report: an earlier report in the folder stays whole when the new one cannot be written.
if "$cli" report --help > /dev/null 2>&1; then
  rm -rf "$mnt"/* 2>/dev/null
  "$cli" train --preset default --set train.steps=20 --set train.eval_every=10 --quiet --out "$mnt/r2" > /dev/null 2>&1 || bad "report: setup run"
  "$cli" report "$mnt/r2" --out "$mnt/rep" > /dev/null 2>&1 || bad "report: the first report"
  before=$(cat "$mnt/rep/index.html" | md5sum)
  fill_to 300000
  err=$("$cli" report "$mnt/r2" --out "$mnt/rep" 2>&1 > /dev/null); rc=$?
  if [ $rc -eq 2 ] && [ "$(printf '%s\n' "$err" | wc -l)" -eq 1 ] && grep -qE "(could not write|write failed).*free on its file system" <<< "$err"; then
    pass "report on a full disk: exit 2, one line: ${err#qklab-cli: error: }"
  else
    bad "report on a full disk: exit $rc: $err"
  fi
  [ "$(cat "$mnt/rep/index.html" | md5sum)" = "$before" ] && pass "the earlier report is unchanged" || bad "the earlier report changed"
  rm -f "$mnt/filler"
fi

# prepare: a tokens folder replaced on a full disk stays whole.
rm -rf "$mnt"/* 2>/dev/null
head -c 400000 /dev/urandom | base64 -w 80 > "$work/a.txt"
"$cli" prepare "$work/a.txt" --tokenizer char --out "$mnt/tok" > /dev/null || bad "prepare (setup)"
before=$(cat "$mnt/tok/meta.json" "$mnt/tok/train.bin" | md5sum)
cat "$work/a.txt" "$work/a.txt" "$work/a.txt" > "$work/b.txt"
fill_to 200000
err=$("$cli" prepare "$work/b.txt" --tokenizer char --out "$mnt/tok" 2>&1 > /dev/null); rc=$?
if [ $rc -eq 2 ] && grep -q "train.bin: write failed: No space left on device" <<< "$err" && grep -q "free on its file system" <<< "$err"; then
  pass "prepare on a full disk: exit 2: ${err#qklab-cli: error: }"
else
  bad "prepare on a full disk: exit $rc: $err"
fi
ls "$mnt/tok" | grep -q partial && bad "prepare left a partial file"
[ "$(cat "$mnt/tok/meta.json" "$mnt/tok/train.bin" | md5sum)" = "$before" ] && pass "the folder prepare would have replaced is unchanged" || bad "the old tokens folder changed"
out=$("$cli" train --preset default --set data.kind=tokens --set data.path="$mnt/tok" --set model.context_length=16 --set train.steps=2 \
      --set train.eval_every=1 --quiet --out "$work/tokrun" 2>&1) && pass "the old tokens folder still loads and trains" || bad "the old folder: $out"
exit $fail
