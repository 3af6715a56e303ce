#!/usr/bin/python3
"""QKLab reference for model interchange (run with Debian's python3-torch: /usr/bin/python3).

  interchange.py write OUT        small random models in the real layouts, and their logits:
      OUT/hf_prefixed/  model.safetensors ("transformer." names, attn.bias buffers, tied head) + config.json
      OUT/hf_plain/     model.safetensors (bare names, an untied lm_head.weight) + config.json
      OUT/book.pth      torch.save(GPTModel(cfg).state_dict()) of the book's model, qkv_bias=True, 4 heads
      OUT/seed.pth      the same with the seed's MHA_alt1 (seed_ch5.py) in every block: heads.h.S / heads.h.W_value
      OUT/ids.json      token ids; OUT/expected.safetensors: hf_prefixed / hf_plain / book logits
  interchange.py check-pth FILE OUT   GPTModel.load_state_dict(torch.load(FILE)) reproduces the book logits
  interchange.py check-hf DIR OUT NAME  a GPT-2 forward pass on DIR's Hugging Face files reproduces NAME's logits

The GPT-2 forward pass below is written from the Hugging Face layout itself (Conv1D weights are
(in, out): y = x @ W + b; c_attn holds q | k | v side by side; the head is tied to wte unless
lm_head.weight is present), independently of QKLab's mapping. transformers is not a Debian package,
so it is not used.
"""
import json
import math
import os
import struct
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_fixtures import GPTModel, MultiHeadAttention, save_safetensors  # noqa: E402
from seed_ch5 import MHA_alt1  # noqa: E402  (the seed's merged attention, as issue 22 quotes it)

HF = {"n_embd": 32, "n_head": 4, "n_layer": 2, "n_positions": 16, "vocab_size": 97, "layer_norm_epsilon": 1e-5,
      "activation_function": "gelu_new", "model_type": "gpt2"}
BOOK = {"vocab_size": 97, "context_length": 16, "emb_dim": 32, "n_heads": 4, "n_layers": 2, "drop_rate": 0.0,
        "qkv_bias": True}


def hf_state(seed, prefix, tied, buffers):
    g = torch.Generator().manual_seed(seed)
    d, V, P = HF["n_embd"], HF["vocab_size"], HF["n_positions"]
    r = lambda *s: torch.randn(*s, generator=g) * 0.2
    sd = {prefix + "wte.weight": r(V, d), prefix + "wpe.weight": r(P, d)}
    for i in range(HF["n_layer"]):
        h = f"{prefix}h.{i}."
        sd[h + "ln_1.weight"], sd[h + "ln_1.bias"] = 1 + r(d), r(d)
        sd[h + "attn.c_attn.weight"], sd[h + "attn.c_attn.bias"] = r(d, 3 * d), r(3 * d)
        sd[h + "attn.c_proj.weight"], sd[h + "attn.c_proj.bias"] = r(d, d), r(d)
        sd[h + "ln_2.weight"], sd[h + "ln_2.bias"] = 1 + r(d), r(d)
        sd[h + "mlp.c_fc.weight"], sd[h + "mlp.c_fc.bias"] = r(d, 4 * d), r(4 * d)
        sd[h + "mlp.c_proj.weight"], sd[h + "mlp.c_proj.bias"] = r(4 * d, d), r(d)
        if buffers:
            sd[h + "attn.bias"] = torch.tril(torch.ones(P, P)).view(1, 1, P, P)
            sd[h + "attn.masked_bias"] = torch.tensor(-1e4)
    sd[prefix + "ln_f.weight"], sd[prefix + "ln_f.bias"] = 1 + r(d), r(d)
    if not tied:
        sd["lm_head.weight"] = r(V, d)
    return sd


def hf_forward(sd, cfg, ids):
    prefix = "transformer." if "transformer.wte.weight" in sd else ""
    g = lambda n: sd[prefix + n]
    d, H = cfg["n_embd"], cfg["n_head"]
    hd = d // H
    B, T = ids.shape
    eps = cfg.get("layer_norm_epsilon", 1e-5)
    x = g("wte.weight")[ids] + g("wpe.weight")[:T]
    causal = torch.triu(torch.ones(T, T, dtype=torch.bool), 1)
    heads = lambda t: t.view(B, T, H, hd).transpose(1, 2)
    for i in range(cfg["n_layer"]):
        h = f"h.{i}."
        a = F.layer_norm(x, (d,), g(h + "ln_1.weight"), g(h + "ln_1.bias"), eps)
        q, k, v = (a @ g(h + "attn.c_attn.weight") + g(h + "attn.c_attn.bias")).split(d, dim=-1)
        s = (heads(q) @ heads(k).transpose(-1, -2) / math.sqrt(hd)).masked_fill(causal, float("-inf")).softmax(-1)
        ctx = (s @ heads(v)).transpose(1, 2).reshape(B, T, d)
        x = x + ctx @ g(h + "attn.c_proj.weight") + g(h + "attn.c_proj.bias")
        m = F.layer_norm(x, (d,), g(h + "ln_2.weight"), g(h + "ln_2.bias"), eps)
        m = F.gelu(m @ g(h + "mlp.c_fc.weight") + g(h + "mlp.c_fc.bias"), approximate="tanh")
        x = x + m @ g(h + "mlp.c_proj.weight") + g(h + "mlp.c_proj.bias")
    x = F.layer_norm(x, (d,), g("ln_f.weight"), g("ln_f.bias"), eps)
    head = sd["lm_head.weight"] if "lm_head.weight" in sd else g("wte.weight")  # tied unless present
    return x @ head.t()


def read_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    dt = {"F32": torch.float32, "F64": torch.float64, "I64": torch.int64}
    out = {}
    for name, e in header.items():
        if name == "__metadata__":
            continue
        b, en = e["data_offsets"]
        out[name] = torch.frombuffer(bytearray(data[b:en]), dtype=dt[e["dtype"]]).reshape(e["shape"]).clone() \
            if en > b else torch.empty(e["shape"], dtype=dt[e["dtype"]])
    return out


def book_model():
    torch.manual_seed(123)
    m = GPTModel(BOOK, MultiHeadAttention)
    with torch.no_grad():  # non-trivial norms, so scale/shift mix-ups show
        for name, p in m.named_parameters():
            if name.endswith("scale") or name.endswith("shift"):
                p.add_(torch.randn_like(p) * 0.2)
    return m.eval()


def seed_model():
    """The seed's GPT (MHA_alt1 in every block) with S's and W_value's biases (qkv_bias) and
    perturbed norms and biases, so that the key bias and every parameter matter."""
    torch.manual_seed(124)
    m = GPTModel(BOOK, MHA_alt1)
    with torch.no_grad():
        for name, p in m.named_parameters():
            if name.endswith("scale") or name.endswith("shift") or name.endswith("bias"):
                p.add_(torch.randn_like(p) * 0.2)
    return m.eval()


MODELS = {"book": (book_model, MultiHeadAttention), "seed": (seed_model, MHA_alt1)}


def ids_of(out):
    return torch.tensor(json.load(open(os.path.join(out, "ids.json"))), dtype=torch.int64)


def write(out):
    os.makedirs(out, exist_ok=True)
    torch.set_num_threads(1)
    g = torch.Generator().manual_seed(11)
    ids = torch.randint(0, 97, (2, 12), generator=g)
    json.dump(ids.tolist(), open(os.path.join(out, "ids.json"), "w"))
    expected = {}
    for name, prefix, tied, buffers in (("hf_prefixed", "transformer.", True, True), ("hf_plain", "", False, False)):
        sd = hf_state(5 if tied else 6, prefix, tied, buffers)
        os.makedirs(os.path.join(out, name), exist_ok=True)
        save_safetensors(os.path.join(out, name, "model.safetensors"), sd, {"format": "pt"})
        cfg = dict(HF, tie_word_embeddings=tied)
        json.dump(cfg, open(os.path.join(out, name, "config.json"), "w"), indent=2)
        with torch.no_grad():
            expected[name] = hf_forward(sd, cfg, ids)
    # A GPT-2-vocabulary model (tiny otherwise), for the tokenizer that comes along with the files.
    big = dict(HF, vocab_size=50257, n_embd=8, n_head=2, n_layer=1)
    g2, d = torch.Generator().manual_seed(9), 8
    sd = {"wte.weight": torch.randn(50257, d, generator=g2) * 0.1, "wpe.weight": torch.randn(16, d, generator=g2) * 0.1,
          "ln_f.weight": torch.ones(d), "ln_f.bias": torch.zeros(d)}
    for w, shape in (("ln_1.weight", (d,)), ("ln_1.bias", (d,)), ("attn.c_attn.weight", (d, 3 * d)),
                     ("attn.c_attn.bias", (3 * d,)), ("attn.c_proj.weight", (d, d)), ("attn.c_proj.bias", (d,)),
                     ("ln_2.weight", (d,)), ("ln_2.bias", (d,)), ("mlp.c_fc.weight", (d, 4 * d)),
                     ("mlp.c_fc.bias", (4 * d,)), ("mlp.c_proj.weight", (4 * d, d)), ("mlp.c_proj.bias", (d,))):
        sd["h.0." + w] = torch.randn(*shape, generator=g2) * 0.1
    os.makedirs(os.path.join(out, "hf_gpt2vocab"), exist_ok=True)
    save_safetensors(os.path.join(out, "hf_gpt2vocab", "model.safetensors"), sd, {"format": "pt"})
    json.dump(big, open(os.path.join(out, "hf_gpt2vocab", "config.json"), "w"), indent=2)
    for name, (make, _) in MODELS.items():
        model = make()
        torch.save(model.state_dict(), os.path.join(out, name + ".pth"))
        with torch.no_grad():
            expected[name] = model(ids)
    save_safetensors(os.path.join(out, "expected.safetensors"), expected, {"torch": torch.__version__})
    print(f"wrote {out}: hf_prefixed, hf_plain, book.pth, seed.pth (torch {torch.__version__})")


def report(name, got, want):
    diff = (got - want).abs().max().item()
    print(f"{name}: logits max |diff| {diff:.3g}")
    sys.exit(0 if diff <= 1e-5 else 1)


def check_pth(path, out, name):
    model = GPTModel(BOOK, MODELS[name][1]).eval()
    model.load_state_dict(torch.load(path))  # strict: every name and shape must fit
    with torch.no_grad():
        report(f"{name} .pth", model(ids_of(out)), read_safetensors(os.path.join(out, "expected.safetensors"))[name])


def check_hf(folder, out, name):
    sd = read_safetensors(os.path.join(folder, "model.safetensors"))
    cfg = json.load(open(os.path.join(folder, "config.json")))
    with torch.no_grad():
        report(f"hf-gpt2 {folder}", hf_forward(sd, cfg, ids_of(out)),
               read_safetensors(os.path.join(out, "expected.safetensors"))[name])


if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "write":
        write(sys.argv[2])
    elif cmd == "check-pth":
        check_pth(sys.argv[2], sys.argv[3], sys.argv[4] if len(sys.argv) > 4 else "book")
    elif cmd == "check-hf":
        check_hf(sys.argv[2], sys.argv[3], sys.argv[4])
    else:
        sys.exit(f"unknown command {cmd}")
