#!/usr/bin/python3
"""QKLab reference fixtures (run with Debian's python3-torch: /usr/bin/python3 make_fixtures.py).

Implements the book's chapter-4 GPTModel ("Build a Large Language Model (From Scratch)") and the
merged query-key attention in plain PyTorch, builds small models under torch.manual_seed(123),
and writes for each variant a QKLab checkpoint (safetensors, book state_dict names, resolved
config in __metadata__) plus the token ids, logits and attention weights of one eval-mode forward
pass. The C++ tests load the weights into the engine's model and compare:
  - the initial weights bit for bit (same construction order, same initialisers, same RNG),
  - the logits and attention weights within a stated tolerance.
"""
import json
import math
import os
import struct
import sys

import torch
import torch.nn as nn

OUT = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "fixtures")


class LayerNorm(nn.Module):
    def __init__(self, emb_dim):
        super().__init__()
        self.eps = 1e-5
        self.scale = nn.Parameter(torch.ones(emb_dim))
        self.shift = nn.Parameter(torch.zeros(emb_dim))

    def forward(self, x):
        mean = x.mean(dim=-1, keepdim=True)
        var = x.var(dim=-1, keepdim=True, unbiased=False)
        norm_x = (x - mean) / torch.sqrt(var + self.eps)
        return self.scale * norm_x + self.shift


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


class MultiHeadAttention(nn.Module):
    """The book's standard attention."""

    def __init__(self, d_in, d_out, context_length, dropout, num_heads, qkv_bias=False):
        super().__init__()
        self.d_out = d_out
        self.num_heads = num_heads
        self.head_dim = d_out // num_heads
        self.W_query = nn.Linear(d_in, d_out, bias=qkv_bias)
        self.W_key = nn.Linear(d_in, d_out, bias=qkv_bias)
        self.W_value = nn.Linear(d_in, d_out, bias=qkv_bias)
        self.out_proj = nn.Linear(d_out, d_out)
        self.dropout = nn.Dropout(dropout)
        self.register_buffer("mask", torch.triu(torch.ones(context_length, context_length), diagonal=1))
        self.last_weights = None

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
        self.last_weights = attn_weights.detach()
        attn_weights = self.dropout(attn_weights)
        context_vec = (attn_weights @ values).transpose(1, 2)
        context_vec = context_vec.contiguous().view(b, num_tokens, self.d_out)
        return self.out_proj(context_vec)


class MergedAttention(nn.Module):
    """Merged query-key attention: per head scores = (x S_h^T) x^T / sqrt(head_dim).
    S_h starts as a per-head nn.Linear(d, d, bias=False) would (drawn head by head)."""

    def __init__(self, d_in, d_out, context_length, dropout, num_heads, qkv_bias=False):
        super().__init__()
        self.d_out = d_out
        self.num_heads = num_heads
        self.head_dim = d_out // num_heads
        S = torch.empty(num_heads, d_in, d_in)
        with torch.no_grad():
            for h in range(num_heads):
                nn.init.kaiming_uniform_(S[h], a=math.sqrt(5))
        self.S = nn.Parameter(S)
        self.W_value = nn.Linear(d_in, d_out, bias=qkv_bias)
        self.out_proj = nn.Linear(d_out, d_out)
        self.dropout = nn.Dropout(dropout)
        self.register_buffer("mask", torch.triu(torch.ones(context_length, context_length), diagonal=1))
        self.last_weights = None

    def forward(self, x):
        b, T, d = x.shape
        qt = torch.einsum("btk,hjk->bhtj", x, self.S)           # (B, H, T, d): S_h x_t
        attn_scores = qt @ x.unsqueeze(1).transpose(2, 3)      # (B, H, T, T)
        attn_scores.masked_fill_(self.mask.bool()[:T, :T], -torch.inf)
        attn_weights = torch.softmax(attn_scores / self.head_dim ** 0.5, dim=-1)
        self.last_weights = attn_weights.detach()
        attn_weights = self.dropout(attn_weights)
        values = self.W_value(x).view(b, T, self.num_heads, self.head_dim).transpose(1, 2)
        context_vec = (attn_weights @ values).transpose(1, 2).contiguous().view(b, T, self.d_out)
        return self.out_proj(context_vec)


class TransformerBlock(nn.Module):
    def __init__(self, cfg, attn_cls):
        super().__init__()
        self.att = attn_cls(d_in=cfg["emb_dim"], d_out=cfg["emb_dim"], context_length=cfg["context_length"],
                            num_heads=cfg["n_heads"], dropout=cfg["drop_rate"], qkv_bias=cfg["qkv_bias"])
        self.ff = FeedForward(cfg)
        self.norm1 = LayerNorm(cfg["emb_dim"])
        self.norm2 = LayerNorm(cfg["emb_dim"])
        self.drop_shortcut = nn.Dropout(cfg["drop_rate"])

    def forward(self, x):
        shortcut = x
        x = self.norm1(x)
        x = self.att(x)
        x = self.drop_shortcut(x)
        x = x + shortcut
        shortcut = x
        x = self.norm2(x)
        x = self.ff(x)
        x = self.drop_shortcut(x)
        return x + shortcut


class GPTModel(nn.Module):
    def __init__(self, cfg, attn_cls=MultiHeadAttention):
        super().__init__()
        self.tok_emb = nn.Embedding(cfg["vocab_size"], cfg["emb_dim"])
        self.pos_emb = nn.Embedding(cfg["context_length"], cfg["emb_dim"])
        self.drop_emb = nn.Dropout(cfg["drop_rate"])
        self.trf_blocks = nn.Sequential(*[TransformerBlock(cfg, attn_cls) for _ in range(cfg["n_layers"])])
        self.final_norm = LayerNorm(cfg["emb_dim"])
        self.out_head = nn.Linear(cfg["emb_dim"], cfg["vocab_size"], bias=False)

    def forward(self, in_idx):
        batch_size, seq_len = in_idx.shape
        tok_embeds = self.tok_emb(in_idx)
        pos_embeds = self.pos_emb(torch.arange(seq_len, device=in_idx.device))
        x = tok_embeds + pos_embeds
        x = self.drop_emb(x)
        x = self.trf_blocks(x)
        x = self.final_norm(x)
        return self.out_head(x)


DTYPES = {torch.float32: "F32", torch.float64: "F64", torch.int64: "I64"}


def save_safetensors(path, tensors, metadata):
    header, blobs, offset = {}, [], 0
    for name, t in tensors.items():
        t = t.detach().contiguous()
        data = t.numpy().tobytes()
        header[name] = {"dtype": DTYPES[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
        blobs.append(data)
    header["__metadata__"] = metadata
    hs = json.dumps(header).encode()
    hs += b" " * ((8 - (8 + len(hs)) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(hs)))
        f.write(hs)
        for b in blobs:
            f.write(b)


def qklab_config(cfg, variant):
    return {"name": "reference", "variants": [variant],
            "model": {"vocab_size": cfg["vocab_size"], "context_length": cfg["context_length"],
                      "emb_dim": cfg["emb_dim"], "n_heads": cfg["n_heads"], "n_layers": cfg["n_layers"],
                      "drop_rate": cfg["drop_rate"], "qkv_bias": cfg["qkv_bias"], "qk_head_dim": 0,
                      "dtype": "float32"}}


def main():
    os.makedirs(OUT, exist_ok=True)
    torch.set_num_threads(1)
    cfg = {"vocab_size": 97, "context_length": 12, "emb_dim": 32, "n_heads": 4, "n_layers": 2,
           "drop_rate": 0.1, "qkv_bias": False}
    for variant, cls in (("standard", MultiHeadAttention), ("merged", MergedAttention)):
        torch.manual_seed(123)
        model = GPTModel(cfg, cls)
        model.eval()
        g = torch.Generator().manual_seed(7)
        ids = torch.randint(0, cfg["vocab_size"], (3, 10), generator=g)
        with torch.no_grad():
            logits = model(ids)
        tensors = dict(model.state_dict())
        tensors["ref.ids"] = ids
        tensors["ref.logits"] = logits
        for i, blk in enumerate(model.trf_blocks):
            tensors[f"ref.attn.{i}"] = blk.att.last_weights
        meta = {"format": "pt", "qklab.variant": variant, "qklab.step": "0",
                "qklab.config": json.dumps(qklab_config(cfg, variant)),
                "reference": "torch.manual_seed(123); GPTModel(cfg) in the book's module order; eval forward"}
        path = os.path.join(OUT, f"reference_{variant}.safetensors")
        save_safetensors(path, tensors, meta)
        print(f"wrote {path}: logits {tuple(logits.shape)} torch {torch.__version__}")


if __name__ == "__main__":
    main()
