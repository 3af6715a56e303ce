#!/usr/bin/env python3
"""Markdown tables of a study's results (a study folder or its archive, tools/study/archive.sh):
the learning-rate stage as variant x rate, the tuned rates, and each comparison stage's final
validation loss (mean, std and min-max over seeds), perplexity, parameters, FLOPs per token and
wall time — read from the stages' aggregate.csv and tuned.csv, as `qklab-cli report` writes them.

    python3 tools/study/tables.py STUDY_DIR > tables.md
"""
import csv
import json
import os
import sys


def rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def num(s, p):
    return "—" if s in ("", None) else f"{float(s):.{p}f}"


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: tables.py STUDY_DIR")
    d = sys.argv[1]
    study = json.load(open(os.path.join(d, "study.json")))["study"]
    for st in study["stages"]:
        agg_path = os.path.join(d, st["name"], "aggregate.csv")
        if not os.path.exists(agg_path):
            print(f"### {st['name']}\n\nnot run yet\n")
            continue
        agg = rows(agg_path)
        keys = list(st.get("grid", {}).keys())
        print(f"### {st['name']}\n")
        if keys:  # a grid stage: variant x value, final validation loss mean (min-max)
            key = keys[0]
            values = [str(v) for v in st["grid"][key]]
            print("| variant | " + " | ".join(f"{key} {v}" for v in values) + " |")
            print("|---|" + "---|" * len(values))
            for v in dict.fromkeys(r["variant"] for r in agg):
                cells = []
                for x in values:
                    r = [a for a in agg if a["variant"] == v and float(a[key]) == float(x)]
                    cells.append("—" if not r else f"{num(r[0]['final_val_loss_mean'], 3)} ({num(r[0]['final_val_loss_min'], 3)}–"
                                 f"{num(r[0]['final_val_loss_max'], 3)}, {r[0]['seeds']} seeds)")
                print(f"| {v} | " + " | ".join(cells) + " |")
            print()
            continue
        print("| variant | matched | parameters | training FLOPs / token | final val loss: mean ± std (min–max) | "
              "perplexity (mean of seeds) | seeds | wall time / run (s, mean) |")
        print("|---|---|---|---|---|---|---|---|")
        for r in agg:
            print(f"| {r['variant']} | {r['matched'] or '—'} | {int(r['params']):,} | {float(r['flops_per_token']) / 1e6:.2f} M | "
                  f"{num(r['final_val_loss_mean'], 3)} ± {num(r['final_val_loss_std'], 3)} ({num(r['final_val_loss_min'], 3)}–"
                  f"{num(r['final_val_loss_max'], 3)}) | {num(r['final_val_ppl_mean'], 1)} | {r['seeds']} | {num(r['wall_s_mean'], 0)} |")
        print()
    tuned = os.path.join(d, "tuned.csv")
    if os.path.exists(tuned):
        print("### tuned\n")
        print("| stage | variant | key | value | mean final val loss there (min–max) | seeds |")
        print("|---|---|---|---|---|---|")
        seen = set()
        for r in rows(tuned):
            k = (r["variant"], r["key"], r["value"])
            if k in seen:
                continue
            seen.add(k)
            print(f"| {r['stage']} | {r['variant']} | {r['key']} | {r['value']} | {num(r['mean'], 3)} "
                  f"({num(r['min'], 3)}–{num(r['max'], 3)}) | {r['seeds']} |")
        print()


if __name__ == "__main__":
    main()
