"""Judge: TensorBoard. QKLab's event files read with TensorBoard's own code:
  - a run's tb/ (written live): EventAccumulator finds every value of metrics.csv (train/val loss
    and accuracy per variant and seed, float32) at its step, every KL of divergence.csv, the
    effective rank per layer, and lr / gradient norm / tokens/s at every step;
  - a run stopped and resumed: the log holds each step once;
  - `export --to tensorboard` of the finished run: the same values;
  - a sweep folder: a real `tensorboard --logdir SWEEP_DIR` server's HParams API lists one session
    per run with its swept keys and final validation loss (= summary.csv)."""
import csv
import json
import math
import os
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request

import judge_common as jc

jc.setup(sys.argv)
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator


def scalars(path):
    acc = EventAccumulator(path, size_guidance={"scalars": 0})
    acc.Reload()
    return {t: {e.step: e.value for e in acc.Scalars(t)} for t in acc.Tags()["scalars"]}, acc


def f32(x):
    import numpy as np
    return float(np.float32(x))


def metrics_rows(run):
    with open(os.path.join(run, "metrics.csv")) as f:
        return list(csv.DictReader(f))


def check_metrics(label, run, tags, many_seeds):
    missing, wrong, n = [], [], 0
    for r in metrics_rows(run):
        who = r["variant"] + (f"-seed{r['seed']}" if many_seeds else "")
        for col in ("train_loss", "val_loss", "train_acc", "val_acc"):
            if r[col] == "":
                continue
            n += 1
            got = tags.get(f"{who}/{col}", {}).get(int(r["step"]))
            if got is None:
                missing.append(f"{who}/{col}@{r['step']}")
            elif abs(got - f32(float(r[col]))) > 1e-6 * max(1.0, abs(float(r[col]))):
                wrong.append(f"{who}/{col}@{r['step']}: {got} vs {r[col]}")
    jc.check(f"{label}: every metrics.csv value is in the event file", n > 0 and not missing and not wrong,
             f"{n} values; missing {missing[:3]}; wrong {wrong[:3]}")


work = jc.tmpdir("tb")
run = os.path.join(work, "run")
common = ["--preset", "default", "--set", "train.steps=60", "--set", "train.eval_every=20", "--set", "train.seeds=2",
          "--set", "train.spectra_every=20", "--quiet"]
jc.cli("train", *common, "--out", run)
tb = os.path.join(run, "tb")
files = [f for f in os.listdir(tb) if "tfevents" in f]
jc.check("the run folder has one event file in tb/", len(files) == 1, str(files))
tags, acc = scalars(tb)
check_metrics("live log", run, tags, True)
variants = sorted({r["variant"] for r in metrics_rows(run)})
seeds = sorted({int(r["seed"]) for r in metrics_rows(run)})
jc.check("two seeds trained", len(seeds) == 2, str(seeds))
for v in variants:
    for s in seeds:
        who = f"{v}-seed{s}"
        for t in ("lr", "grad_norm", "step_loss"):
            steps = sorted(tags.get(f"{who}/{t}", {}))
            jc.check(f"{who}/{t} at every step", steps == list(range(1, 61)), f"{len(steps)} steps")
        tps = tags.get(f"{who}/tokens_per_s", {})
        jc.check(f"{who}/tokens_per_s at every step after the first", sorted(tps) == list(range(2, 61))
                 and all(x > 0 for x in tps.values()), f"{len(tps)} steps")
        er = [t for t in tags if t.startswith(f"{who}/effective_rank/L")]
        jc.check(f"{who}: effective rank per layer", len(er) == 2, str(er))
with open(os.path.join(run, "divergence.csv")) as f:
    div = list(csv.DictReader(f))
bad = [d for d in div if abs(tags.get(f"{d['to']}-seed{d['seed']}/kl_from_{d['from']}", {}).get(int(d["step"]), math.nan)
                             - f32(float(d["kl"]))) > 1e-6 * max(1.0, abs(float(d["kl"])))]
jc.check("every KL of divergence.csv is in the event file", div and not bad, f"{len(div)} values, {len(bad)} wrong")

# Stopped at step 30 and resumed: the log is cut back to the saved state and each step appears once.
run2 = os.path.join(work, "resumed")
jc.cli("train", *common, "--out", run2, "--stop-at", "30")
jc.cli("train", "--resume", run2, "--quiet")
tags2, acc2 = scalars(os.path.join(run2, "tb"))
events = [e for e in acc2.Scalars(f"{variants[0]}-seed{seeds[0]}/lr")]
steps = [e.step for e in events]
jc.check("resumed run: each step logged once", steps == list(range(1, 61)), f"{len(steps)} events, {len(set(steps))} steps")
check_metrics("resumed log", run2, tags2, True)

# The export of a finished run.
exp = os.path.join(work, "export")
jc.cli("export", "--to", "tensorboard", run, exp)
tags3, _ = scalars(exp)
check_metrics("export --to tensorboard", run, tags3, True)

# A sweep and a real TensorBoard server's HParams API.
sweep = os.path.join(work, "sweep")
spec = {"name": "judge", "preset": "default", "variants": ["standard", "merged"], "seeds": [0],
        "set": {"train.steps": 30, "train.eval_every": 15}, "grid": {"train.lr": [0.001, 0.003]}}
with open(os.path.join(work, "sweep.json"), "w") as f:
    json.dump(spec, f)
jc.cli("sweep", os.path.join(work, "sweep.json"), "--out", sweep, "--jobs", "1")
with open(os.path.join(sweep, "summary.csv")) as f:
    summary = {r["run"]: r for r in csv.DictReader(f)}
s = socket.socket()
s.bind(("127.0.0.1", 0))
port = s.getsockname()[1]
s.close()
tb_exe = os.path.join(os.path.dirname(sys.executable), "tensorboard")
server = subprocess.Popen([tb_exe, "--logdir", sweep, "--port", str(port), "--host", "127.0.0.1", "--load_fast", "false",
                           "--reload_interval", "1"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def api(route, request):
    url = f"http://127.0.0.1:{port}/data/plugin/hparams/{route}?request=" + urllib.parse.quote(json.dumps(request))
    with urllib.request.urlopen(url, timeout=10) as r:
        return json.loads(r.read())


try:
    groups = None
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            res = api("session_groups", {"experimentName": "", "allowedStatuses": ["STATUS_SUCCESS", "STATUS_UNKNOWN",
                      "STATUS_FAILURE", "STATUS_RUNNING"], "colParams": [], "startIndex": 0, "sliceSize": 100})
            groups = res.get("sessionGroups", [])
            if len(groups) >= len(summary):
                break
        except Exception:
            pass
        time.sleep(1)
    exp_info = api("experiment", {"experimentName": ""})
finally:
    server.terminate()
    server.wait(timeout=30)
names = sorted(h["name"] for h in exp_info.get("hparamInfos", []))
jc.check("HParams experiment: variant, seed and the swept key", names == ["seed", "train.lr", "variant"], str(names))
metric_tags = sorted(m["name"]["tag"] for m in exp_info.get("metricInfos", []))
jc.check("HParams experiment: the final metrics", "hparams/final_val_loss" in metric_tags, str(metric_tags))
jc.check("HParams table: one session group per run", groups is not None and len(groups) == len(summary),
         f"{0 if groups is None else len(groups)} groups, {len(summary)} runs")
ok = []
for g in groups or []:
    row = summary.get(g["name"])
    vals = {m["name"]["tag"]: m["value"] for m in g.get("metricValues", [])}
    ok.append(row is not None and g["hparams"].get("variant") == row["variant"]
              and abs(float(g["hparams"].get("train.lr", -1)) - float(row["train.lr"])) < 1e-12
              and abs(vals.get("hparams/final_val_loss", math.nan) - f32(float(row["final_val_loss"]))) < 1e-5)
jc.check("HParams table: each session's variant, lr and final val loss = summary.csv", ok and all(ok), f"{sum(ok)} of {len(ok)}")
jc.finish()
