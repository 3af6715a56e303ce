#!/usr/bin/python3
"""QKLab reference — the power-law tail estimator of esd.h, written independently in torch
(float64) the way WeightWatcher / the powerlaw package do it, on synthetic samples:

  for each distinct x_min leaving >= min_tail samples:  alpha = 1 + n / sum(ln(x_i / x_min)),
  D = max_i |i/n - (1 - (x_i/x_min)^(1-alpha))| over the sorted tail; keep the x_min of least D.

Writes tests/fixtures/powerlaw_reference.json: for each case the samples and (alpha, xmin, D, n).
Run: /usr/bin/python3 tests/reference/powerlaw_reference.py
"""
import json
import os

import torch

torch.manual_seed(20261127)


def fit(x, min_tail):
    x = torch.sort(x[x > 0]).values
    n = x.numel()
    best = None
    for s in range(0, n - min_tail + 1):
        if s > 0 and x[s] == x[s - 1]:
            continue
        tail = x[s:]
        m = tail.numel()
        denom = torch.log(tail / tail[0]).sum()
        if denom <= 0:
            continue
        alpha = 1.0 + m / denom
        emp = torch.arange(m, dtype=torch.float64) / m
        cdf = 1.0 - (tail / tail[0]) ** (1.0 - alpha)
        D = (emp - cdf).abs().max()
        if best is None or D < best[2]:
            best = (alpha.item(), tail[0].item(), D.item(), m)
    return best


def pareto(n, alpha, xmin=1.0):
    u = torch.rand(n, dtype=torch.float64)
    return xmin * (1.0 - u) ** (-1.0 / (alpha - 1.0))


cases = []
# A pure power law, a power-law tail above a uniform bulk, and the ESD of a heavy-tailed matrix.
cases.append(("pareto-2.5", pareto(800, 2.5), 10))
bulk = torch.rand(600, dtype=torch.float64) * 2.0
cases.append(("bulk-plus-tail-3", torch.cat([bulk, pareto(200, 3.0, 2.0)]), 10))
W = torch.distributions.StudentT(2.5).sample((300, 100)).to(torch.float64)
cases.append(("student-t-matrix-esd", torch.linalg.svdvals(W) ** 2 / 300, 10))

out = []
for name, x, min_tail in cases:
    a, xmin, D, m = fit(x, min_tail)
    out.append({"name": name, "min_tail": min_tail, "samples": x.tolist(),
                "alpha": a, "xmin": xmin, "ks": D, "tail": m})
    print(f"{name}: alpha {a:.4f} xmin {xmin:.4g} D {D:.4f} tail {m}")

path = os.path.join(os.path.dirname(__file__), "..", "fixtures", "powerlaw_reference.json")
with open(path, "w") as f:
    json.dump(out, f)
