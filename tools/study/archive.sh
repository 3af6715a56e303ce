#!/usr/bin/env bash
# Keeps a study's (or a sweep's) results small enough to commit: for every finished run, its
# config.json, metrics.csv and finished.json (no checkpoints, no training state); and the folder's
# study.json, tuned.csv, each stage's sweep.json, summary.csv, aggregate.csv and curves.csv.
# `qklab-cli report ARCHIVE` works on the archive as on the study itself; copied to a work folder,
# `qklab-cli sweep --out COPY` continues the study (its unfinished runs start from scratch).
#   bash tools/study/archive.sh STUDY_DIR OUT_DIR
# OUT_DIR is replaced whole (written as OUT_DIR.partial, then renamed).
set -euo pipefail
src="${1:?usage: archive.sh STUDY_DIR OUT_DIR}"
out="${2:?usage: archive.sh STUDY_DIR OUT_DIR}"
[ -f "$src/study.json" ] || [ -f "$src/sweep.json" ] || { echo "archive.sh: $src: no study.json or sweep.json (not a study or sweep folder)" >&2; exit 2; }
tmp="$out.partial"
rm -rf "$tmp"
mkdir -p "$tmp"
keep_sweep() {  # $1: sweep folder, $2: its place in the archive
  mkdir -p "$2"
  for f in sweep.json summary.csv aggregate.csv curves.csv; do [ -f "$1/$f" ] && cp "$1/$f" "$2/"; done
  [ -d "$1/runs" ] || return 0
  local n=0
  for run in "$1"/runs/*/; do
    run="${run%/}"
    [ -f "$run/finished.json" ] || continue
    local name; name="$(basename "$run")"
    mkdir -p "$2/runs/$name"
    cp "$run/config.json" "$run/metrics.csv" "$run/finished.json" "$2/runs/$name/"
    [ -f "$1/runs/$name.json" ] && cp "$1/runs/$name.json" "$2/runs/"
    n=$((n + 1))
  done
  echo "archive.sh: $1: $n finished runs kept"
}
if [ -f "$src/study.json" ]; then
  cp "$src/study.json" "$tmp/"
  [ -f "$src/tuned.csv" ] && cp "$src/tuned.csv" "$tmp/"
  for stage in "$src"/*/; do
    stage="${stage%/}"
    [ -f "$stage/sweep.json" ] && keep_sweep "$stage" "$tmp/$(basename "$stage")"
  done
else
  keep_sweep "$src" "$tmp"
fi
rm -rf "$out"
mv "$tmp" "$out"
echo "archive.sh: $out: $(du -sh "$out" | cut -f1)"
