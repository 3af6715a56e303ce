#!/usr/bin/env python3
"""Table 1 of "Do Transformers Need Three Projections?" from a `sweep-projections` folder (or its
archive): final test token accuracy per variant and task, averaged over the grid points and seeds
that finished, as the paper averages; then the same cells beside the authors' public rerun
(their synthetic_results_shard*.csv, passed with --theirs) restricted to the SAME grid points and
seeds, cell by cell per configuration, with the difference.

    python3 tools/study/projections.py SWEEP_DIR [--theirs shard0.csv shard1.csv ...] > table.md

QKLab's variant names map to theirs: standard = QKV, shared-qk = Q=K!=V, shared-kv = Q!=K=V,
shared-qkv = Q=K=V; merged, merged-sym, merged-lowrank and identity-query are QKLab's own.
"""
import argparse
import csv
import os
from collections import defaultdict

TASKS = ["REVERSE", "SORT", "SUB", "SWAP", "COPY"]
THEIRS = {"standard": "QKV", "shared-qk": "Q=K!=V", "shared-kv": "Q!=K=V", "shared-qkv": "Q=K=V"}


def ours(sweep_dir):
    """(variant, task, d, heads, length, seed) -> token accuracy, from summary.csv."""
    out = {}
    with open(os.path.join(sweep_dir, "summary.csv"), newline="") as f:
        for r in csv.DictReader(f):
            if r["final_val_acc"] == "":
                continue
            task = r["data.kind"].replace("enc-", "").upper()
            key = (r["variant"], task, int(r["model.emb_dim"]), int(r["model.n_heads"]), int(r["data.seq_items"]),
                   int(r["seed"]))
            out[key] = float(r["final_val_acc"])
    return out


def theirs(paths, layers):
    out = {}
    for p in paths:
        with open(p, newline="") as f:
            for r in csv.DictReader(f):
                if int(r["n_layer"]) != layers:
                    continue
                key = (r["variant"], r["task"], int(r["n_embd"]), int(r["n_head"]), int(r["seq_len"]), int(r["seed"]))
                out[key] = float(r["accuracy"])
    return out


def mean(xs):
    return sum(xs) / len(xs) if xs else float("nan")


def table(title, rows_by_variant, note="", per_seed=None):
    """per_seed: variant -> seed -> that seed's average over every cell (the seed spread of avg)."""
    print(f"{title}\n")
    if note:
        print(note + "\n")
    extra = " avg of each seed: min–max |" if per_seed else ""
    print("| variant | " + " | ".join(TASKS) + " | avg | runs |" + extra)
    print("|---|" + "---|" * (len(TASKS) + 2 + (1 if per_seed else 0)))
    for v, per_task in rows_by_variant.items():
        ms = [mean(per_task.get(t, [])) for t in TASKS]
        n = sum(len(per_task.get(t, [])) for t in TASKS)
        cells = ["—" if m != m else f"{m:.3f}" for m in ms]
        avg = mean([m for m in ms if m == m])
        tail = ""
        if per_seed:
            xs = list(per_seed[v].values())
            tail = f" {min(xs):.3f}–{max(xs):.3f} |"
        print(f"| {v} | " + " | ".join(cells) + f" | {avg:.3f} | {n} |" + tail)
    print()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("sweep_dir")
    ap.add_argument("--theirs", nargs="*", default=[], help="their synthetic_results_shard*.csv")
    ap.add_argument("--layers", type=int, default=2, help="the sweep's model.n_layers (their n_layer)")
    a = ap.parse_args()
    q = ours(a.sweep_dir)
    variants = list(dict.fromkeys(k[0] for k in q))
    per = {v: defaultdict(list) for v in variants}
    for (v, t, *_), acc in q.items():
        per[v][t].append(acc)
    points = sorted({k[2:5] for k in q})
    seeds = defaultdict(lambda: defaultdict(list))
    for (v, _t, _d, _h, _n, sd), acc in q.items():
        seeds[v][sd].append(acc)
    per_seed = {v: {sd: mean(xs) for sd, xs in by.items()} for v, by in seeds.items()}
    table("### QKLab: test token accuracy, mean over the grid points and seeds",
          per, "Grid points (d, heads, length): " + ", ".join(str(p) for p in points) + f"; {a.layers} layers.",
          per_seed)
    print("### QKLab per grid point: every variant, mean over seeds (the tasks that need attention)\n")
    print("| task | d | heads | length | " + " | ".join(variants) + " |")
    print("|---|---|---|---|" + "---|" * len(variants))
    for task in ("REVERSE", "SORT", "SWAP"):
        for (d, h, n) in points:
            cells = [mean([acc for k, acc in q.items() if k[0] == v and k[1:5] == (task, d, h, n)]) for v in variants]
            print(f"| {task} | {d} | {h} | {n} | " + " | ".join("—" if c != c else f"{c:.3f}" for c in cells) + " |")
    print()
    if not a.theirs:
        return
    t = theirs(a.theirs, a.layers)
    # Their rerun on exactly the configurations and seeds QKLab ran.
    mine_keys = {(THEIRS[k[0]],) + k[1:] for k in q if k[0] in THEIRS}
    pt = {THEIRS[v]: defaultdict(list) for v in THEIRS}
    for key in mine_keys:
        if key in t:
            pt[key[0]][key[1]].append(t[key])
    table("### Their public rerun on the same grid points and seeds", pt)
    # Cell by cell: per configuration (task, d, heads, length), mean over seeds, QKLab - theirs.
    print("### Cell by cell: mean over seeds, QKLab − their rerun\n")
    print("| task | d | heads | length | " + " | ".join(f"{v} (QKLab / theirs / Δ)" for v in THEIRS) + " |")
    print("|---|---|---|---|" + "---|" * len(THEIRS))
    diffs = defaultdict(list)
    for task in TASKS:
        for (d, h, n) in points:
            cells = []
            for v, tv in THEIRS.items():
                mine = [acc for k, acc in q.items() if k[0] == v and k[1:5] == (task, d, h, n)]
                seeds = [k[5] for k in q if k[0] == v and k[1:5] == (task, d, h, n)]
                their = [t[(tv, task, d, h, n, s)] for s in seeds if (tv, task, d, h, n, s) in t]
                if not mine or not their:
                    cells.append("—")
                    continue
                dm = mean(mine) - mean(their)
                diffs[v].append(dm)
                cells.append(f"{mean(mine):.3f} / {mean(their):.3f} / {dm:+.3f}")
            print(f"| {task} | {d} | {h} | {n} | " + " | ".join(cells) + " |")
    print()
    print("Mean difference over the cells: " +
          ", ".join(f"{v} {mean(ds):+.3f} ({len(ds)} cells)" for v, ds in diffs.items()) + "\n")


if __name__ == "__main__":
    main()
