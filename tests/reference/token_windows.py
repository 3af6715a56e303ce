"""Reference for QKLab's token-file windows (tests/data/test_tokens.cpp): nanoGPT's own get_batch
(train.py), run on a train.bin written as nanoGPT's prepare scripts write it (np.uint16 tofile).
Writes tests/fixtures/token_windows.json: the token formula's parameters, and for two seeds the
first three batches' start positions and x / y. Run with any Python that has numpy and torch
(the peers' environment: bash setup.sh peers):  python tests/reference/token_windows.py"""
import json
import os
import tempfile

import numpy as np
import torch

N, VOCAB, BLOCK, BATCH = 5000, 50257, 8, 4


def tokens():  # the test writes the same ids
    i = np.arange(N, dtype=np.int64)
    return ((i * 7919 + i * i) % VOCAB).astype(np.uint16)


folder = tempfile.mkdtemp()
tokens().tofile(os.path.join(folder, "train.bin"))
data = np.memmap(os.path.join(folder, "train.bin"), dtype=np.uint16, mode="r")
out = {"n": N, "vocab": VOCAB, "block_size": BLOCK, "batch_size": BATCH, "torch": torch.__version__, "seeds": []}
for seed in (123, 1337):
    torch.manual_seed(seed)  # nanoGPT: torch.manual_seed(1337 + seed_offset), then get_batch draws
    batches = []
    for _ in range(3):
        # nanoGPT's get_batch, as written there:
        ix = torch.randint(len(data) - BLOCK, (BATCH,))
        x = torch.stack([torch.from_numpy((data[i:i + BLOCK]).astype(np.int64)) for i in ix])
        y = torch.stack([torch.from_numpy((data[i + 1:i + 1 + BLOCK]).astype(np.int64)) for i in ix])
        batches.append({"ix": ix.tolist(), "x": x.tolist(), "y": y.tolist()})
    out["seeds"].append({"seed": seed, "batches": batches})
path = os.path.join(os.path.dirname(__file__), "..", "fixtures", "token_windows.json")
with open(path, "w") as f:
    json.dump(out, f)
print("wrote", os.path.normpath(path))
