#!/usr/bin/python3
"""PyTorch side of qklab-bench: the book's chapter-4 GPT (and its merged-QK variant) trained as a
PyTorch user would train it, timed step by step. An independent implementation: it shares no code
with QKLab, only the architecture.

usage: /usr/bin/python3 bench_reference.py --vocab V --ctx T --d D --layers L --heads H --batch B \
           --variant standard|merged --warmup W --steps N [--threads 1] [--drop P] [--device cuda]
Prints one JSON line: ms per timed step (each), user and system CPU seconds of the timed steps,
peak resident memory (KiB) and the loss of the last step.
OpenBLAS threads come from the environment (OPENBLAS_NUM_THREADS), as for any PyTorch user.
"""
import argparse
import json
import resource
import time

import torch
import torch.nn as nn


class LayerNorm(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.eps = 1e-5
        self.scale = nn.Parameter(torch.ones(d))
        self.shift = nn.Parameter(torch.zeros(d))

    def forward(self, x):
        mean = x.mean(dim=-1, keepdim=True)
        var = x.var(dim=-1, keepdim=True, unbiased=False)
        return self.scale * (x - mean) / torch.sqrt(var + self.eps) + self.shift


class GELU(nn.Module):
    def forward(self, x):
        return 0.5 * x * (1 + torch.tanh(torch.sqrt(torch.tensor(2.0 / torch.pi)) * (x + 0.044715 * torch.pow(x, 3))))


class Attention(nn.Module):
    """Standard: per head (X Wq_h)(X Wk_h)^T. Merged: per head X S_h^T X^T, all heads in one GEMM."""

    def __init__(self, d, ctx, heads, merged, drop):
        super().__init__()
        self.dropout = nn.Dropout(drop)
        self.h, self.hd, self.d, self.merged = heads, d // heads, d, merged
        if merged:
            self.S = nn.Parameter(torch.empty(heads, d, d))
            for i in range(heads):
                nn.init.kaiming_uniform_(self.S.data[i], a=5 ** 0.5)
        else:
            self.W_query = nn.Linear(d, d, bias=False)
            self.W_key = nn.Linear(d, d, bias=False)
        self.W_value = nn.Linear(d, d, bias=False)
        self.out_proj = nn.Linear(d, d)
        self.register_buffer("mask", torch.triu(torch.ones(ctx, ctx), diagonal=1))

    def forward(self, x):
        b, t, d = x.shape
        v = self.W_value(x).view(b, t, self.h, self.hd).transpose(1, 2)
        if self.merged:
            w = self.S.permute(2, 0, 1).reshape(d, self.h * d)
            q = (x @ w).view(b, t, self.h, d).transpose(1, 2)
            scores = q @ x.unsqueeze(1).transpose(2, 3)
        else:
            q = self.W_query(x).view(b, t, self.h, self.hd).transpose(1, 2)
            k = self.W_key(x).view(b, t, self.h, self.hd).transpose(1, 2)
            scores = q @ k.transpose(2, 3)
        scores.masked_fill_(self.mask.bool()[:t, :t], -torch.inf)
        att = self.dropout(torch.softmax(scores / self.hd ** 0.5, dim=-1))
        ctx = (att @ v).transpose(1, 2).contiguous().view(b, t, d)
        return self.out_proj(ctx)


class Block(nn.Module):
    def __init__(self, d, ctx, heads, merged, drop):
        super().__init__()
        self.drop = nn.Dropout(drop)
        self.att = Attention(d, ctx, heads, merged, drop)
        self.ff = nn.Sequential(nn.Linear(d, 4 * d), GELU(), nn.Linear(4 * d, d))
        self.norm1, self.norm2 = LayerNorm(d), LayerNorm(d)

    def forward(self, x):
        x = x + self.drop(self.att(self.norm1(x)))
        return x + self.drop(self.ff(self.norm2(x)))


class GPT(nn.Module):
    def __init__(self, vocab, ctx, d, layers, heads, merged, drop):
        super().__init__()
        self.drop = nn.Dropout(drop)
        self.tok_emb = nn.Embedding(vocab, d)
        self.pos_emb = nn.Embedding(ctx, d)
        self.blocks = nn.Sequential(*[Block(d, ctx, heads, merged, drop) for _ in range(layers)])
        self.final_norm = LayerNorm(d)
        self.out_head = nn.Linear(d, vocab, bias=False)

    def forward(self, idx):
        t = idx.shape[1]
        x = self.drop(self.tok_emb(idx) + self.pos_emb(torch.arange(t, device=idx.device)))
        return self.out_head(self.final_norm(self.blocks(x)))


def main():
    p = argparse.ArgumentParser()
    for k in ("vocab", "ctx", "d", "layers", "heads", "batch", "warmup", "steps"):
        p.add_argument("--" + k, type=int, required=True)
    p.add_argument("--variant", choices=["standard", "merged"], required=True)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--drop", type=float, default=0.0)
    p.add_argument("--device", default="cpu", help="cpu or cuda (steps are timed after a synchronize)")
    p.add_argument("--data-vocab", type=int, default=0, help="token ids drawn below this (0 = vocab)")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(123)
    model = GPT(a.vocab, a.ctx, a.d, a.layers, a.heads, a.variant == "merged", a.drop).to(a.device)
    sync = torch.cuda.synchronize if a.device == "cuda" else (lambda: None)
    opt = torch.optim.AdamW(model.parameters(), lr=4e-4, weight_decay=0.1)
    hi = a.data_vocab or a.vocab
    gen = torch.Generator().manual_seed(7)
    times, loss = [], float("nan")
    for i in range(a.warmup + a.steps):
        if i == a.warmup:
            r0 = resource.getrusage(resource.RUSAGE_SELF)
        t0 = time.perf_counter()
        batch = torch.randint(0, hi, (a.batch, a.ctx + 1), generator=gen).to(a.device)
        x, y = batch[:, :-1], batch[:, 1:]
        opt.zero_grad()
        logits = model(x)
        l = nn.functional.cross_entropy(logits.flatten(0, 1), y.flatten())
        l.backward()
        opt.step()
        loss = l.item()
        sync()
        if i >= a.warmup:
            times.append((time.perf_counter() - t0) * 1000)
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    print(json.dumps({"ms": times, "user_s": r1.ru_utime - r0.ru_utime, "sys_s": r1.ru_stime - r0.ru_stime,
                      "maxrss_kib": r1.ru_maxrss, "loss": loss}))


if __name__ == "__main__":
    main()
