"""QKLab judges — shared helpers: run qklab-cli, temporary folders, a small random GPT-2 made and
saved with transformers (never fetched), and a check() that counts and prints every comparison.
Each judge prints one line per check and a closing "N passed, M failed" line; exit 1 on a failure."""
import json
import os
import subprocess
import sys
import tempfile

CLI = None
_passed = 0
_failed = 0


def setup(argv):
    """argv: [script, qklab-cli]."""
    global CLI
    if len(argv) < 2:
        print("usage: judge_*.py QKLAB_CLI", file=sys.stderr)
        sys.exit(2)
    CLI = argv[1]


def cli(*args, expect=0):
    r = subprocess.run([CLI, *map(str, args)], capture_output=True, text=True)
    if r.returncode != expect:
        print(r.stdout)
        print(r.stderr, file=sys.stderr)
        raise SystemExit(f"qklab-cli {' '.join(map(str, args))}: exit {r.returncode}, expected {expect}")
    return r.stdout


def tmpdir(tag):
    return tempfile.mkdtemp(prefix=f"qklab-judge-{tag}-")


def check(name, ok, detail=""):
    global _passed, _failed
    if ok:
        _passed += 1
        print(f"PASS {name}{': ' + detail if detail else ''}")
    else:
        _failed += 1
        print(f"FAIL {name}{': ' + detail if detail else ''}")
    sys.stdout.flush()


def check_close(name, got, want, tol):
    """max |got - want| <= tol, element-wise (numpy arrays or tensors)."""
    import numpy as np
    g = np.asarray(got, dtype=np.float64)
    w = np.asarray(want, dtype=np.float64)
    if g.shape != w.shape:
        check(name, False, f"shapes differ: {g.shape} vs {w.shape}")
        return
    d = float(np.max(np.abs(g - w))) if g.size else 0.0
    check(name, d <= tol, f"max |diff| {d:.3g} (tolerance {tol:g}, {g.size} values)")


def finish():
    print(f"{_passed} passed, {_failed} failed")
    sys.exit(1 if _failed or not _passed else 0)


def data_dir():
    """QKLAB_DATA_DIR (the-verdict.txt, gpt2-encoder.json, gpt2-vocab.bpe) or None."""
    d = os.environ.get("QKLAB_DATA_DIR", "")
    return d if d else None


def small_gpt2(seed=0, n_embd=32, n_layer=2, n_head=4, n_positions=16, vocab_size=97, **extra):
    """A small random GPT2LMHeadModel (tied head), in eval mode."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel
    torch.manual_seed(seed)
    cfg = GPT2Config(n_embd=n_embd, n_layer=n_layer, n_head=n_head, n_positions=n_positions, vocab_size=vocab_size,
                     resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, n_ctx=n_positions, **extra)
    m = GPT2LMHeadModel(cfg)
    # Random init gives zero biases and unit LayerNorms; perturb them so every weight is tested.
    with torch.no_grad():
        for n, p in m.named_parameters():
            if n.endswith(".bias") or ".ln_" in n or n.startswith("transformer.ln_f"):
                p.add_(0.05 * torch.randn_like(p))
    return m.eval()


def write_ids(path, rows):
    with open(path, "w") as f:
        json.dump(rows, f)


def qklab_forward(checkpoint, rows, generate=0, lens=False):
    """QKLab's logits, attention weights (and greedy continuation) for rows of token ids."""
    from safetensors.numpy import load_file
    d = tmpdir("forward")
    write_ids(os.path.join(d, "ids.json"), rows)
    args = ["forward", "--checkpoint", checkpoint, "--ids", os.path.join(d, "ids.json"), "--out", os.path.join(d, "out.safetensors")]
    if generate:
        args += ["--generate", generate]
    if lens:
        args.append("--lens")
    cli(*args)
    return load_file(os.path.join(d, "out.safetensors"))


def import_and_analyze(model, tag):
    """Saves a transformers model, imports it with `qklab-cli import --from hf-gpt2`, and runs
    `qklab-cli analyze` on it as a run folder (its config, with the default preset's data: a task
    that fits the vocabulary and context). Returns (checkpoint path, analysis folder)."""
    import shutil
    from safetensors import safe_open
    work = tmpdir(tag)
    model.save_pretrained(work)
    ck = os.path.join(work, "imported.safetensors")
    cli("import", "--from", "hf-gpt2", os.path.join(work, "model.safetensors"), ck)
    with safe_open(ck, "pt") as f:
        cfg = json.loads(f.metadata()["qklab.config"])
    cfg["data"] = json.loads(cli("presets", "--dump", "default"))["data"]
    run = os.path.join(work, "run")
    os.makedirs(run)
    with open(os.path.join(run, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
    shutil.copy(ck, os.path.join(run, "standard.safetensors"))
    cli("analyze", run, "--truncate", "0")
    return ck, os.path.join(run, "analysis")
