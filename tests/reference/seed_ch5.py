#!/usr/bin/python3
"""The experiment that started QKLab, run as its author ran it: the book's chapter-5 notebook
("Build a Large Language Model (From Scratch)", chapters 4-5: GPTModel, the GPTDatasetV1 loaders,
train_model_simple) with the book's MultiHeadAttention replaced by the seed's MHA_alt1 in
TransformerBlock (`self.att = MHA_alt1(...)`, same arguments; the classes as quoted in issue 22).
Everything here is written for QKLab's reference from the book's text; tiktoken is not a Debian
package, so GPT-2's BPE is gpt2_reference.py's (checked against tiktoken by the peers-tiktoken judge).

usage: /usr/bin/python3 seed_ch5.py DATA_DIR [--attention seed|book] [--max-steps N] [--epochs N]
DATA_DIR holds the-verdict.txt, gpt2-encoder.json and gpt2-vocab.bpe. Prints what the notebook
prints: the untrained losses (full precision), "Ep E (Step S): Train loss …, Val loss …" every 5
steps and a 50-token greedy sample after each epoch. --attention book runs the book's own
MultiHeadAttention (its printed numbers are the check that this script is the notebook).
Run it with the same OPENBLAS_CORETYPE as QKLab (QKLab sets it itself: blas_kernels.h), e.g.
    OPENBLAS_CORETYPE=Cooperlake /usr/bin/python3 tests/reference/seed_ch5.py ../shared/data
"""
import argparse
import json
import os
import sys

import torch
import torch.nn as nn
from torch.utils.data import DataLoader, Dataset

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gpt2_reference import Encoder, bytes_to_unicode  # noqa: E402


class Tokenizer:  # tiktoken's gpt2 encoding: encode with <|endoftext|> allowed, decode
    def __init__(self, data):
        encoder = json.load(open(f"{data}/gpt2-encoder.json", encoding="utf-8"))
        lines = open(f"{data}/gpt2-vocab.bpe", encoding="utf-8").read().split("\n")[1:-1]
        self.enc = Encoder(encoder, [tuple(l.split()) for l in lines])
        self.decoder = {v: k for k, v in encoder.items()}
        self.byte_decoder = {v: k for k, v in bytes_to_unicode().items()}

    def encode(self, text):
        return self.enc.encode(text)

    def decode(self, ids):
        text = "".join(self.decoder[i] for i in ids)
        return bytearray(self.byte_decoder[c] for c in text).decode("utf-8", errors="replace")


# ---- the seed's attention (issue 22, verbatim in behaviour) -----------------------------------
class CA_alt1(nn.Module):
    def __init__(self, d_in, d_out, context_length, dropout, qkv_bias=False):
        super().__init__()
        self.d_out = d_out
        self.S = nn.Linear(d_in, d_in, bias=qkv_bias)
        self.W_value = nn.Linear(d_in, d_out, bias=qkv_bias)
        self.dropout = nn.Dropout(dropout)
        self.register_buffer("mask", torch.triu(torch.ones(context_length, context_length), diagonal=1))

    def forward(self, x):
        b, num_tokens, d_in = x.shape
        values = self.W_value(x)
        attn_scores = self.S(x) @ x.transpose(1, 2)
        attn_scores.masked_fill_(self.mask.bool()[:num_tokens, :num_tokens], -torch.inf)
        attn_weights = torch.softmax(attn_scores / values.shape[-1] ** 0.5, dim=-1)
        attn_weights = self.dropout(attn_weights)
        return attn_weights @ values


class MHA_alt1(nn.Module):
    def __init__(self, d_in, d_out, context_length, dropout, num_heads, qkv_bias=False):
        super().__init__()
        assert d_out % num_heads == 0, "d_out must be divisible by num_heads"
        head_dim = d_out // num_heads
        self.heads = nn.ModuleList([CA_alt1(d_in, head_dim, context_length, dropout, qkv_bias) for _ in range(num_heads)])

    def forward(self, x):
        return torch.cat([head(x) for head in self.heads], dim=-1)


# ---- the book's chapter 3-4 -------------------------------------------------------------------
class MultiHeadAttention(nn.Module):
    def __init__(self, d_in, d_out, context_length, dropout, num_heads, qkv_bias=False):
        super().__init__()
        assert d_out % num_heads == 0, "d_out must be divisible by num_heads"
        self.d_out = d_out
        self.num_heads = num_heads
        self.head_dim = d_out // num_heads
        self.W_query = nn.Linear(d_in, d_out, bias=qkv_bias)
        self.W_key = nn.Linear(d_in, d_out, bias=qkv_bias)
        self.W_value = nn.Linear(d_in, d_out, bias=qkv_bias)
        self.out_proj = nn.Linear(d_out, d_out)
        self.dropout = nn.Dropout(dropout)
        self.register_buffer("mask", torch.triu(torch.ones(context_length, context_length), diagonal=1))

    def forward(self, x):
        b, num_tokens, d_in = x.shape
        keys = self.W_key(x)
        queries = self.W_query(x)
        values = self.W_value(x)
        keys = keys.view(b, num_tokens, self.num_heads, self.head_dim).transpose(1, 2)
        values = values.view(b, num_tokens, self.num_heads, self.head_dim).transpose(1, 2)
        queries = queries.view(b, num_tokens, self.num_heads, self.head_dim).transpose(1, 2)
        attn_scores = queries @ keys.transpose(2, 3)
        mask_bool = self.mask.bool()[:num_tokens, :num_tokens]
        attn_scores.masked_fill_(mask_bool, -torch.inf)
        attn_weights = torch.softmax(attn_scores / keys.shape[-1] ** 0.5, dim=-1)
        attn_weights = self.dropout(attn_weights)
        context_vec = (attn_weights @ values).transpose(1, 2)
        context_vec = context_vec.contiguous().view(b, num_tokens, self.d_out)
        return self.out_proj(context_vec)


class LayerNorm(nn.Module):
    def __init__(self, emb_dim):
        super().__init__()
        self.eps = 1e-5
        self.scale = nn.Parameter(torch.ones(emb_dim))
        self.shift = nn.Parameter(torch.zeros(emb_dim))

    def forward(self, x):
        mean = x.mean(dim=-1, keepdim=True)
        var = x.var(dim=-1, keepdim=True, unbiased=False)
        return self.scale * ((x - mean) / torch.sqrt(var + self.eps)) + self.shift


class GELU(nn.Module):
    def forward(self, x):
        return 0.5 * x * (1 + torch.tanh(torch.sqrt(torch.tensor(2.0 / torch.pi)) * (x + 0.044715 * torch.pow(x, 3))))


class FeedForward(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.layers = nn.Sequential(nn.Linear(cfg["emb_dim"], 4 * cfg["emb_dim"]), GELU(),
                                    nn.Linear(4 * cfg["emb_dim"], cfg["emb_dim"]))

    def forward(self, x):
        return self.layers(x)


ATTENTION = {"seed": MHA_alt1, "book": MultiHeadAttention}


class TransformerBlock(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.att = ATTENTION[cfg["attention"]](d_in=cfg["emb_dim"], d_out=cfg["emb_dim"], context_length=cfg["context_length"],
                                               num_heads=cfg["n_heads"], dropout=cfg["drop_rate"], qkv_bias=cfg["qkv_bias"])
        self.ff = FeedForward(cfg)
        self.norm1 = LayerNorm(cfg["emb_dim"])
        self.norm2 = LayerNorm(cfg["emb_dim"])
        self.drop_shortcut = nn.Dropout(cfg["drop_rate"])

    def forward(self, x):
        shortcut = x
        x = self.drop_shortcut(self.att(self.norm1(x))) + shortcut
        shortcut = x
        return self.drop_shortcut(self.ff(self.norm2(x))) + shortcut


class GPTModel(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.tok_emb = nn.Embedding(cfg["vocab_size"], cfg["emb_dim"])
        self.pos_emb = nn.Embedding(cfg["context_length"], cfg["emb_dim"])
        self.drop_emb = nn.Dropout(cfg["drop_rate"])
        self.trf_blocks = nn.Sequential(*[TransformerBlock(cfg) for _ in range(cfg["n_layers"])])
        self.final_norm = LayerNorm(cfg["emb_dim"])
        self.out_head = nn.Linear(cfg["emb_dim"], cfg["vocab_size"], bias=False)

    def forward(self, in_idx):
        _, seq_len = in_idx.shape
        x = self.tok_emb(in_idx) + self.pos_emb(torch.arange(seq_len, device=in_idx.device))
        x = self.trf_blocks(self.drop_emb(x))
        return self.out_head(self.final_norm(x))


def generate_text_simple(model, idx, max_new_tokens, context_size):
    for _ in range(max_new_tokens):
        with torch.no_grad():
            logits = model(idx[:, -context_size:])[:, -1, :]
        idx = torch.cat((idx, torch.argmax(torch.softmax(logits, dim=-1), dim=-1, keepdim=True)), dim=1)
    return idx


# ---- the book's chapter 2 loaders and chapter 5 training -------------------------------------
class GPTDatasetV1(Dataset):
    def __init__(self, txt, tokenizer, max_length, stride):
        ids = tokenizer.encode(txt)
        self.input_ids, self.target_ids = [], []
        for i in range(0, len(ids) - max_length, stride):
            self.input_ids.append(torch.tensor(ids[i:i + max_length]))
            self.target_ids.append(torch.tensor(ids[i + 1:i + max_length + 1]))

    def __len__(self):
        return len(self.input_ids)

    def __getitem__(self, i):
        return self.input_ids[i], self.target_ids[i]


def create_dataloader_v1(txt, tokenizer, batch_size, max_length, stride, shuffle, drop_last):
    return DataLoader(GPTDatasetV1(txt, tokenizer, max_length, stride), batch_size=batch_size, shuffle=shuffle,
                      drop_last=drop_last, num_workers=0)


def calc_loss_batch(x, y, model):
    return torch.nn.functional.cross_entropy(model(x).flatten(0, 1), y.flatten())


def calc_loss_loader(loader, model, num_batches=None):
    if len(loader) == 0:
        return float("nan")
    num_batches = len(loader) if num_batches is None else min(num_batches, len(loader))
    total = 0.0
    for i, (x, y) in enumerate(loader):
        if i >= num_batches:
            break
        total += calc_loss_batch(x, y, model).item()
    return total / num_batches


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("data")
    ap.add_argument("--attention", choices=list(ATTENTION), default="seed")
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--max-steps", type=int, default=0, help="stop after this many optimiser steps (0: all)")
    a = ap.parse_args()
    torch.set_num_threads(1)  # QKLab's book mode: 1 LibTorch thread (OpenBLAS: 2, its own default here)
    tok = Tokenizer(a.data)
    cfg = {"vocab_size": 50257, "context_length": 256, "emb_dim": 768, "n_heads": 12, "n_layers": 12, "drop_rate": 0.1,
           "qkv_bias": False, "attention": a.attention}
    torch.manual_seed(123)
    model = GPTModel(cfg)
    model.eval()
    text = open(f"{a.data}/the-verdict.txt", encoding="utf-8").read()
    split = int(0.90 * len(text))
    torch.manual_seed(123)
    ctx = cfg["context_length"]
    train_loader = create_dataloader_v1(text[:split], tok, 2, ctx, ctx, shuffle=True, drop_last=True)
    val_loader = create_dataloader_v1(text[split:], tok, 2, ctx, ctx, shuffle=False, drop_last=False)
    # The notebook iterates the loaders twice before it computes the losses (shape printouts and a
    # token count); each pass over train_loader draws its shuffle seed from torch's generator.
    for _ in range(2):
        for _ in train_loader:
            pass
        for _ in val_loader:
            pass
    torch.manual_seed(123)
    with torch.no_grad():
        print("Training loss:", calc_loss_loader(train_loader, model))
        print("Validation loss:", calc_loss_loader(val_loader, model))
    torch.manual_seed(123)
    model = GPTModel(cfg)
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.0004, weight_decay=0.1)
    step = -1
    for epoch in range(a.epochs):
        model.train()
        for x, y in train_loader:
            optimizer.zero_grad()
            loss = calc_loss_batch(x, y, model)
            loss.backward()
            optimizer.step()
            step += 1
            if step % 5 == 0:
                model.eval()
                with torch.no_grad():
                    tr = calc_loss_loader(train_loader, model, 5)
                    va = calc_loss_loader(val_loader, model, 5)
                model.train()
                print(f"Ep {epoch + 1} (Step {step:06d}): Train loss {tr:.3f}, Val loss {va:.3f}", flush=True)
            if a.max_steps and step + 1 >= a.max_steps:
                return
        model.eval()
        ids = generate_text_simple(model, torch.tensor(tok.encode("Every effort moves you")).unsqueeze(0), 50, ctx)
        print(tok.decode(ids.squeeze(0).tolist()).replace("\n", " "), flush=True)
        model.train()


if __name__ == "__main__":
    main()
