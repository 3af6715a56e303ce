"""Judge: Hugging Face transformers. A small random GPT2LMHeadModel (tied head) saved by
save_pretrained imports with `qklab-cli import --from hf-gpt2` — with the "transformer." prefix
(GPT2LMHeadModel) and without it (GPT2Model) — and QKLab's logits equal transformers' (<= 1e-5,
float32); `qklab-cli export --to hf-gpt2` loads in from_pretrained with the same logits; greedy
`generate` gives QKLab's greedy continuation (`forward --generate`) token for token."""
import os
import sys

import numpy as np
import torch

import judge_common as jc

jc.setup(sys.argv)
TOL = 1e-5
model = jc.small_gpt2(seed=1)
g = torch.Generator().manual_seed(2)
ids = torch.randint(0, model.config.vocab_size, (3, 12), generator=g)
rows = ids.tolist()
with torch.no_grad():
    want = model(ids).logits.numpy()

# 1. GPT2LMHeadModel.save_pretrained: names "transformer.h.0.attn.c_attn.weight", ..., head tied.
a = jc.tmpdir("hf")
model.save_pretrained(a)
from safetensors import safe_open
with safe_open(os.path.join(a, "model.safetensors"), "pt") as f:
    keys = list(f.keys())
jc.check("save_pretrained wrote the prefixed names and no lm_head (tied)",
         any(k.startswith("transformer.") for k in keys) and "lm_head.weight" not in keys, f"{len(keys)} tensors")
qk = os.path.join(a, "qklab.safetensors")
out = jc.cli("import", "--from", "hf-gpt2", os.path.join(a, "model.safetensors"), qk)
jc.check("import names the model", "standard model, 2 layers, d = 32, 4 heads" in out, out.strip())
got = jc.qklab_forward(qk, rows)["logits"]
jc.check_close("QKLab logits = transformers' (transformer. prefix)", got, want, TOL)

# 2. GPT2Model.save_pretrained: the same weights without the prefix (QKLab ties the head to wte).
b = jc.tmpdir("hf-bare")
model.transformer.save_pretrained(b)
with safe_open(os.path.join(b, "model.safetensors"), "pt") as f:
    bare = list(f.keys())
jc.check("GPT2Model wrote names without the prefix", not any(k.startswith("transformer.") for k in bare), bare[0])
qk2 = os.path.join(b, "qklab.safetensors")
jc.cli("import", "--from", "hf-gpt2", os.path.join(b, "model.safetensors"), qk2)
jc.check_close("QKLab logits = transformers' (no prefix)", jc.qklab_forward(qk2, rows)["logits"], want, TOL)

# 3. QKLab -> Hugging Face: from_pretrained on the export.
from transformers import GPT2LMHeadModel
c = jc.tmpdir("hf-export")
jc.cli("export", "--to", "hf-gpt2", qk, c)
back = GPT2LMHeadModel.from_pretrained(c).eval()
jc.check("from_pretrained reads the export's config",
         (back.config.n_embd, back.config.n_layer, back.config.n_head, back.config.n_positions, back.config.vocab_size)
         == (32, 2, 4, 16, 97), str(back.config.to_diff_dict()))
with torch.no_grad():
    again = back(ids).logits.numpy()
jc.check_close("from_pretrained(export) logits = QKLab's", again, got, TOL)
jc.check_close("from_pretrained(export) logits = the original's", again, want, TOL)

# 4. Greedy decoding: transformers' generate against QKLab's greedy continuation.
prompt = ids[:, :6]
n_new = 10
with torch.no_grad():
    hf = back.generate(prompt, attention_mask=torch.ones_like(prompt), max_new_tokens=n_new, do_sample=False,
                       num_beams=1, pad_token_id=0).numpy()
ours = jc.qklab_forward(qk, prompt.tolist(), generate=n_new)["generated"]
jc.check("greedy generate = QKLab's greedy continuation, token for token",
         hf.shape == ours.shape and np.array_equal(hf, ours), f"transformers {hf[0].tolist()} / QKLab {ours[0].tolist()}")
jc.finish()
