"""Judge: TransformerLens. A HookedTransformer made by TransformerLens's own from_pretrained from
the same Hugging Face model (hf_model=, every weight-changing step off: fold_ln, centring, value-
bias folding, factored-matrix refactoring) against QKLab's import of that model:
  attention patterns   cache["pattern", l] vs `qklab-cli forward` attn.{l}          (<= 1e-6)
  QK form spectra      FactoredMatrix QK[l, h].S vs analyze's spectra.csv           (relative 1e-5)
  token QK, OV circuits FactoredMatrix of LN1(W_E)·W_Q·W_Kᵀ·LN1(W_E)ᵀ and
                       LN1(W_E)·W_V·W_O·diag(γ_final)·W_U: the leading singular values vs
                       circuits.csv                                                (relative 1e-5)
  composition scores   all_composition_scores("Q" / "K" / "V") vs composition.csv  (<= 1e-6)
  logit lens           unembed(ln_final(cache["resid_post", l])) vs `forward --lens` logit_lens
                       (the final LayerNorm recomputed on each layer's stream)        (<= 1e-5)
  direct logit attr.   TransformerLens's own DLA pipeline on the model loaded with its default
                       processing (fold_ln, centring: logit_attrs needs γ folded into W_U) but
                       the value biases left in the heads, where GPT-2 and QKLab have them:
                       logit_attrs(stack_head_results(), a, w) at every position vs
                       head_logits[.., a] − head_logits[.., w] of `forward --lens`        (<= 1e-5)
  head detectors       get_*_detection_pattern + compute_head_attention_similarity_score ("mul")
                       on the cache of each of analyze's detector_sequences.json, mean over
                       sequences as detect_head does for a list, vs head_detectors.csv  (<= 1e-6)
from_pretrained reads GPT-2's config from the Hugging Face cache: the judge makes a cache of its
own holding the test model's config.json (and the GPT-2 tokenizer files), so nothing is fetched."""
import csv
import json
import os
import shutil
import sys

import numpy as np
import torch

import judge_common as jc

jc.setup(sys.argv)
data = jc.data_dir()
if not data:
    msg = "QKLAB_DATA_DIR is not set (from_pretrained loads GPT-2's tokenizer files)"
    print(("FAIL: " if os.environ.get("CI") == "true" else "SKIP: ") + msg)
    sys.exit(1 if os.environ.get("CI") == "true" else 77)

hub = jc.tmpdir("hf-cache")
os.environ["HF_HUB_CACHE"] = hub
model = jc.small_gpt2(seed=3, n_embd=48, n_layer=3, n_head=4, n_positions=16, vocab_size=97)
model.config.architectures = ["GPT2LMHeadModel"]
snap = os.path.join(hub, "models--gpt2", "snapshots", "0" * 40)
os.makedirs(snap)
os.makedirs(os.path.join(hub, "models--gpt2", "refs"))
with open(os.path.join(hub, "models--gpt2", "refs", "main"), "w") as f:
    f.write("0" * 40)
model.config.save_pretrained(snap)
shutil.copy(os.path.join(data, "gpt2-encoder.json"), os.path.join(snap, "vocab.json"))
shutil.copy(os.path.join(data, "gpt2-vocab.bpe"), os.path.join(snap, "merges.txt"))

from transformer_lens import FactoredMatrix, HookedTransformer

tl = HookedTransformer.from_pretrained("gpt2", hf_model=model, fold_ln=False, center_writing_weights=False,
                                       center_unembed=False, fold_value_biases=False,
                                       refactor_factored_attn_matrices=False, device="cpu")
tl.eval()
L, H, d = tl.cfg.n_layers, tl.cfg.n_heads, tl.cfg.d_model

# QKLab: the same model imported and analysed.
ck, ana = jc.import_and_analyze(model, "tl")


def rows(name):
    with open(os.path.join(ana, name)) as f:
        return list(csv.DictReader(f))


# 1. Attention patterns.
g = torch.Generator().manual_seed(4)
ids = torch.randint(0, 97, (2, 16), generator=g)
with torch.no_grad():
    _, cache = tl.run_with_cache(ids)
ours = jc.qklab_forward(ck, ids.tolist())
for l in range(L):
    jc.check_close(f"attention pattern layer {l} = TransformerLens's", ours[f"attn.{l}"], cache["pattern", l].numpy(), 1e-6)


def rel_check(name, got, want, rtol):
    got, want = np.asarray(got, float), np.asarray(want, float)
    if got.shape != want.shape:
        jc.check(name, False, f"shapes {got.shape} vs {want.shape}")
        return
    r = float(np.max(np.abs(got - want) / np.maximum(np.abs(want), 1e-12)))
    jc.check(name, r <= rtol, f"max relative diff {r:.3g} (tolerance {rtol:g}, {got.size} values)")


# 2. QK form spectra (the head's bilinear form W_Q,h·W_K,hᵀ, rank <= head_dim).
spec = rows("spectra.csv")
dh = tl.cfg.d_head
got, want = [], []
for l in range(L):
    for h in range(H):
        s = sorted((float(r["sigma"]) for r in spec if int(r["layer"]) == l and int(r["head"]) == h), reverse=True)
        got += s[:dh]
        want += tl.QK[l, h].S.detach().double().numpy().tolist()
rel_check(f"QK form singular values of all {L * H} heads = FactoredMatrix QK[l, h].S", got, want, 1e-5)

# 3. Token QK and OV circuits (through LN1 of the head's layer; the OV one to the logits through
# the final LayerNorm's scale): the leading singular values QKLab reads out.
circ = rows("circuits.csv")
W_E, W_U = tl.W_E.detach(), tl.W_U.detach()
gamma_f = tl.ln_final.w.detach()
for kind in ("qk", "ov"):
    got, want = [], []
    for l in range(L):
        with torch.no_grad():
            E = tl.blocks[l].ln1(W_E[None])[0]  # (V, d)
        for h in range(H):
            mine = [float(r["sigma"]) for r in sorted((r for r in circ if r["circuit"].lower() == kind and int(r["layer"]) == l
                                                        and int(r["head"]) == h), key=lambda r: int(r["direction"]))]
            if kind == "qk":
                fm = FactoredMatrix(E @ tl.W_Q[l, h].detach(), tl.W_K[l, h].detach().T @ E.T)
            else:
                fm = FactoredMatrix(E @ tl.W_V[l, h].detach(), tl.W_O[l, h].detach() @ torch.diag(gamma_f) @ W_U)
            got += mine
            want += fm.S.detach().double().numpy()[:len(mine)].tolist()
    jc.check(f"circuits.csv has read-outs of every head's token {kind.upper()} circuit", len(got) >= L * H, f"{len(got)} values")
    rel_check(f"token {kind.upper()} circuit singular values = FactoredMatrix's", got, want, 1e-5)

# 4. Composition scores, every earlier head with every later one.
comp = rows("composition.csv")
for mode in ("Q", "K", "V"):
    ref = tl.all_composition_scores(mode).detach().double().numpy()  # (L, H, L, H)
    got, want = [], []
    for r in comp:
        if r["kind"].upper() != mode:
            continue
        got.append(float(r["score"]))
        want.append(ref[int(r["layer_from"]), int(r["head_from"]), int(r["layer_to"]), int(r["head_to"])])
    pairs = sum(H * H for a in range(L) for b in range(a + 1, L))
    jc.check(f"{mode}-composition: a score for every earlier/later head pair", len(got) == pairs, f"{len(got)} of {pairs}")
    jc.check_close(f"{mode}-composition scores = TransformerLens's all_composition_scores", got, want, 1e-6)

# 5. Logit lens: every layer's stream through the recomputed final LayerNorm and the unembedding.
lens_out = jc.qklab_forward(ck, ids.tolist(), lens=True)
want = torch.stack([tl.unembed(tl.ln_final(cache["resid_post", l])) for l in range(L)]).detach().numpy()
jc.check_close(f"logit lens of all {L} layers = unembed(ln_final(resid_post)) of TransformerLens", lens_out["logit_lens"], want, 1e-5)
jc.check_close("logit lens of the last layer = the logits", lens_out["logit_lens"][L - 1], lens_out["logits"], 0.0)

# 6. Direct logit attribution, TransformerLens's way: the model with its default weight processing.
# fold_value_biases off: folded, each head's value bias moves into b_O and out of the head's result,
# while QKLab's head output (and GPT-2's) includes it.
tl2 = HookedTransformer.from_pretrained("gpt2", hf_model=model, fold_value_biases=False, device="cpu")
tl2.eval()
with torch.no_grad():
    _, cache2 = tl2.run_with_cache(ids)
    stack = cache2.stack_head_results(layer=-1)  # (L·H, B, T, d)
    a = torch.randint(0, 97, ids.shape, generator=g)
    w = (a + 1 + torch.randint(0, 96, ids.shape, generator=g)) % 97
    attrs = cache2.logit_attrs(stack, tokens=a, incorrect_tokens=w).numpy()  # (L·H, B, T)
hl = lens_out["head_logits"]  # (L, H, B, T, V)
B, T = ids.shape
mine = np.zeros((L * H, B, T))
for l in range(L):
    for h in range(H):
        for b in range(B):
            for t in range(T):
                mine[l * H + h, b, t] = hl[l, h, b, t, a[b, t]] - hl[l, h, b, t, w[b, t]]
jc.check_close(f"per-head attributions at all {B * T} positions = logit_attrs(stack_head_results()) of TransformerLens",
               mine, attrs, 1e-5)

# 7. Head detectors on analyze's repeated random sequences.
from transformer_lens import head_detector as hd
with open(os.path.join(ana, "detector_sequences.json")) as f:
    seqs = json.load(f)
jc.check("detector sequences: n random tokens repeated once, shorter than the context",
         len(seqs) > 0 and all(len(s) % 2 == 0 and s[:len(s) // 2] == s[len(s) // 2:] and len(s) < 16 for s in seqs),
         f"{len(seqs)} sequences of {len(seqs[0]) if seqs else 0}")
det = rows("head_detectors.csv")
for name, col in (("previous_token_head", "previous_token"), ("duplicate_token_head", "duplicate_token"),
                  ("induction_head", "induction")):
    ref = np.zeros((L, H))
    for s in seqs:
        toks = torch.tensor([s])
        with torch.no_grad():
            _, c = tl.run_with_cache(toks, remove_batch_dim=True)
        pattern = getattr(hd, f"get_{name}_detection_pattern")(toks)
        for l in range(L):
            for h in range(H):
                ref[l, h] += hd.compute_head_attention_similarity_score(
                    c["pattern", l][h].clone(), pattern, exclude_bos=False, exclude_current_token=False,
                    error_measure="mul") / len(seqs)
    got = [float(r["score"]) for r in det if r["detector"] == col and r["sequences"] == "repeated"]
    want = [ref[int(r["layer"]), int(r["head"])] for r in det if r["detector"] == col and r["sequences"] == "repeated"]
    jc.check(f"{col}: a score for every head", len(got) == L * H, f"{len(got)} of {L * H}")
    jc.check_close(f"{col} scores = TransformerLens's head_detector ({name})", got, want, 1e-6)
jc.finish()
