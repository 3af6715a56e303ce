#!/usr/bin/python3
"""PyTorch side of qklab-bench: the book's chapter-4 GPT (and its merged-QK variant) trained as a
PyTorch user would train it, timed step by step. An independent implementation: it shares no code
with QKLab, only the architecture.

usage: python3 bench_reference.py --vocab V --ctx T --d D --layers L --heads H --batch B \
           --variant standard|merged --warmup W --steps N [--threads 1] [--drop P] [--device cuda] \
           [--ops book|native] [--compile none|default|max-autotune-no-cudagraphs]
Prints one JSON line: ms per timed step (each), user and system CPU seconds of the timed steps,
peak resident memory (KiB), the loss of the last step, the torch version and the compile time.
--ops book: the book's own LayerNorm, GELU and masked-softmax attention (what a reader runs);
--ops native: the same functions as PyTorch's fused ops (nn.LayerNorm, tanh GELU, and
scaled_dot_product_attention where the torch has it), what a user tuning PyTorch writes.
--compile: torch.compile of the model (forward and backward) in that mode; the optimizer step is
compiled too. compile_s is the warm-up's time beyond that many ordinary steps (graph capture,
code generation, autotuning), excluded from the per-step times.
OpenBLAS threads (Debian's torch 1.13) come from the environment (OPENBLAS_NUM_THREADS); a wheel's
MKL follows --threads. The allocator is the environment's (LD_PRELOAD=libtcmalloc_minimal.so.4).
"""
import argparse
import json
import os
import resource
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


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

    def __init__(self, d, ctx, heads, merged, drop, sdpa=False):
        super().__init__()
        self.sdpa, self.p = sdpa, drop
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
            k = x.unsqueeze(1)  # (B, 1, T, d): every head's key is x itself
        else:
            q = self.W_query(x).view(b, t, self.h, self.hd).transpose(1, 2)
            k = self.W_key(x).view(b, t, self.h, self.hd).transpose(1, 2)
        if self.sdpa:  # (B, H, T, hd), the scale 1/sqrt(head_dim) for both forms
            ctx = F.scaled_dot_product_attention(q, k.expand(b, self.h, t, k.size(-1)), v, is_causal=True,
                                                 dropout_p=self.p if self.training else 0.0, scale=self.hd ** -0.5)
            return self.out_proj(ctx.transpose(1, 2).reshape(b, t, d))
        scores = q @ k.transpose(2, 3)
        scores.masked_fill_(self.mask.bool()[:t, :t], -torch.inf)
        att = self.dropout(torch.softmax(scores / self.hd ** 0.5, dim=-1))
        ctx = (att @ v).transpose(1, 2).contiguous().view(b, t, d)
        return self.out_proj(ctx)


class Block(nn.Module):
    def __init__(self, d, ctx, heads, merged, drop, native):
        super().__init__()
        self.drop = nn.Dropout(drop)
        self.att = Attention(d, ctx, heads, merged, drop, native and hasattr(F, "scaled_dot_product_attention"))
        gelu = nn.GELU(approximate="tanh") if native else GELU()
        self.ff = nn.Sequential(nn.Linear(d, 4 * d), gelu, nn.Linear(4 * d, d))
        norm = nn.LayerNorm if native else LayerNorm
        self.norm1, self.norm2 = norm(d), norm(d)

    def forward(self, x):
        x = x + self.drop(self.att(self.norm1(x)))
        return x + self.drop(self.ff(self.norm2(x)))


class GPT(nn.Module):
    def __init__(self, vocab, ctx, d, layers, heads, merged, drop, native):
        super().__init__()
        self.drop = nn.Dropout(drop)
        self.tok_emb = nn.Embedding(vocab, d)
        self.pos_emb = nn.Embedding(ctx, d)
        self.blocks = nn.Sequential(*[Block(d, ctx, heads, merged, drop, native) for _ in range(layers)])
        self.final_norm = nn.LayerNorm(d) if native else LayerNorm(d)
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
    p.add_argument("--ops", choices=["book", "native"], default="book")
    p.add_argument("--compile", default="none", choices=["none", "default", "max-autotune-no-cudagraphs"])
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(123)
    model = GPT(a.vocab, a.ctx, a.d, a.layers, a.heads, a.variant == "merged", a.drop, a.ops == "native").to(a.device)
    sync = torch.cuda.synchronize if a.device == "cuda" else (lambda: None)
    opt = torch.optim.AdamW(model.parameters(), lr=4e-4, weight_decay=0.1)
    step_opt = opt.step
    if a.compile != "none":
        model = torch.compile(model, mode=a.compile)
        if os.environ.get("QKLAB_BENCH_COMPILE_OPT", "1") == "1":
            step_opt = torch.compile(opt.step, mode=a.compile)
    warm_s = 0.0
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
        step_opt()
        loss = l.item()
        sync()
        if i >= a.warmup:
            times.append((time.perf_counter() - t0) * 1000)
        else:
            warm_s += time.perf_counter() - t0
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    print(json.dumps({"ms": times, "user_s": r1.ru_utime - r0.ru_utime, "sys_s": r1.ru_stime - r0.ru_stime,
                      "maxrss_kib": r1.ru_maxrss, "loss": loss, "torch": torch.__version__,
                      "compile_s": max(0.0, warm_s - a.warmup * sorted(times)[len(times) // 2] / 1000)
                      if a.compile != "none" and times else 0.0}))


if __name__ == "__main__":
    main()
