"""Judge: tiktoken. QKLab's GPT-2 ids (`qklab-cli tokenize --tokenizer gpt2`) equal those of
tiktoken's own GPT-2 encoding (tiktoken_ext.openai_public.gpt2: its pattern, its special token,
its SHA-256 checks of the two files) built from the BPE files in QKLAB_DATA_DIR — no download: the
two file reads are pointed at the local copies. On the-verdict.txt, on a 1 MB text and on edge cases.
Policies compared, not assumed: `<|endoftext|>` in the text is the special token 50256 (tiktoken's
allowed_special="all"); an empty file is refused by `tokenize` (tiktoken gives []); invalid UTF-8 is refused by QKLab with one line naming the byte offset, and
that offset is where Python's strict UTF-8 decoder (what tiktoken's str input requires) fails."""
import json
import os
import random
import re
import sys

import judge_common as jc

jc.setup(sys.argv)
data = jc.data_dir()
if not data:
    if os.environ.get("CI") == "true":
        print("FAIL: QKLAB_DATA_DIR is not set (the GPT-2 BPE files)")
        sys.exit(1)
    print("SKIP: QKLAB_DATA_DIR is not set (the GPT-2 BPE files)")
    sys.exit(77)
encoder = os.path.join(data, "gpt2-encoder.json")
vocab = os.path.join(data, "gpt2-vocab.bpe")

import tiktoken
import tiktoken.load
import tiktoken_ext.openai_public as openai_public

os.environ["TIKTOKEN_CACHE_DIR"] = ""  # no cache folder: read the files every time
local = {"vocab.bpe": vocab, "encoder.json": encoder}
real_read = tiktoken.load.read_file


def read_local(blobpath):
    name = blobpath.rsplit("/", 1)[-1]
    if name not in local:
        raise RuntimeError(f"the judge reads only the local GPT-2 files, not {blobpath}")
    with open(local[name], "rb") as f:
        return f.read()


tiktoken.load.read_file = read_local
enc = tiktoken.Encoding(**openai_public.gpt2())  # raises if a file's SHA-256 is not OpenAI's
jc.check("tiktoken's GPT-2 encoding from the local files (its hash checks passed)", enc.n_vocab == 50257,
         f"n_vocab {enc.n_vocab}")

work = jc.tmpdir("tiktoken")


def qklab_ids(name, raw: bytes, expect=0):
    path = os.path.join(work, name + ".txt")
    with open(path, "wb") as f:
        f.write(raw)
    ids_path = os.path.join(work, name + ".json")
    r = jc.subprocess.run([jc.CLI, "tokenize", "--tokenizer", "gpt2", "--encoder", encoder, "--vocab", vocab,
                           "--ids-out", ids_path, path], capture_output=True, text=True)
    if r.returncode != expect:
        raise SystemExit(f"tokenize {name}: exit {r.returncode}: {r.stderr.strip()}")
    if expect != 0:
        return r.stderr.strip()
    with open(ids_path) as f:
        return json.load(f)


def compare(name, text: str):
    want = enc.encode(text, allowed_special="all")
    got = qklab_ids(name, text.encode("utf-8"))
    first = next((i for i, (a, b) in enumerate(zip(got, want)) if a != b), min(len(got), len(want)))
    same = got == want
    jc.check(f"ids = tiktoken's: {name}", same,
             f"{len(want)} tokens" if same else f"QKLab {len(got)} / tiktoken {len(want)} tokens, first difference at "
             f"token {first}: {got[first:first + 5]} vs {want[first:first + 5]}")
    if same and text:
        jc.check(f"decode(ids) = text: {name}", enc.decode(got) == text)


with open(os.path.join(data, "the-verdict.txt"), encoding="utf-8") as f:
    verdict = f.read()
compare("the-verdict", verdict)

# A 1 MB text: the verdict's words, numbers, punctuation, contractions in three cases, other
# scripts, emoji, and whitespace runs of every kind, in a seeded random order.
rng = random.Random(0)
words = re.findall(r"\S+", verdict)
extra = ["naïve", "café", "Straße", "日本語のテキスト", "Ελληνικά", "русский", "עברית", "العربية", "😀", "👍🏽",
         "e\u0301", "ﬁ", "I'm", "they'll", "HE'S", "we'VE", "don't", "1234567890", "3.14159", "$9.99", "#tag",
         "<|endoftext|>", "<|endoftext", "...", "—", "“quoted”", "\u00a0", "\u200b", "x\u2028y"]
seps = [" ", " ", " ", "  ", "   ", "\n", "\n\n", "\t", " \t ", "\r\n", " \n ", "      "]
parts, size = [], 0
while size < 1_000_000:
    w = rng.choice(words) if rng.random() < 0.8 else rng.choice(extra)
    s = rng.choice(seps)
    parts.append(w + s)
    size += len((w + s).encode("utf-8"))
big = "".join(parts)
compare("1 MB mixed text", big)

cases = {
    "special token alone": "<|endoftext|>",
    "special token inside": "Hello<|endoftext|>world",
    "special tokens twice": "<|endoftext|><|endoftext|> a",
    "partial special token": "<|endoftext",
    "spaces between words": "a   b    c",
    "leading spaces": "   leading",
    "trailing spaces": "trailing   ",
    "newline runs": "one\n\n\ntwo\n",
    "mixed whitespace": " \t \n \r\n  x",
    "only whitespace": "    \n\n   ",
    "non-ASCII Latin": "naïve café Straße",
    "CJK": "日本語のテキストです",
    "emoji with modifiers": "emoji 😀👍🏽👨‍👩‍👧",
    "combining marks": "e\u0301 a\u0308",
    "digits": "1234567890 3.14159 10,000",
    "contractions": "I'm they'll HE'S we'VE don't",
    "punctuation runs": "?!... ---- ((()))",
}
for name, text in cases.items():
    compare(name, text)

# An empty file: tiktoken encodes "" to []; QKLab's tokenize refuses an empty corpus file (one line).
msg = qklab_ids("empty", b"", expect=2)
jc.check("empty text: tiktoken gives no ids, QKLab refuses the empty file by name",
         enc.encode("") == [] and "empty" in msg and "empty.txt" in msg, msg)

# Invalid UTF-8: QKLab refuses it; the byte offset it names is where strict UTF-8 decoding fails.
for name, raw in {"lone continuation byte": b"abc\x80def", "invalid lead byte": b"ok \xff\xfe",
                  "truncated sequence": b"caf\xc3", "surrogate": b"x \xed\xa0\x80 y"}.items():
    try:
        raw.decode("utf-8")
        at = None
    except UnicodeDecodeError as e:
        at = e.start
    msg = qklab_ids(name.replace(" ", "_"), raw, expect=2)
    m = re.search(r"byte offset (\d+)", msg)
    jc.check(f"invalid UTF-8 ({name}): refused at the byte Python's decoder names", m is not None and int(m.group(1)) == at,
             f"QKLab: '{msg}'; Python: offset {at}")

# `prepare`: the token files nanoGPT's own prepare scripts would write. openwebtext/prepare.py:
# ids = enc.encode_ordinary(text); ids.append(enc.eot_token), written as np.uint16, one document
# after another. QKLab's train.bin / val.bin must be those bytes: for each input file its first
# part (cut before a space or newline after printable ASCII) and its last 10 %, each ending with <|endoftext|>. Two files, the 1 MB
# text cut into ~1 MB pieces on two threads, and the verdict.
import numpy as np

docs = {"verdict.txt": verdict, "mixed.txt": big + big[:300_000]}  # 1.3 MB: two pieces
for name, text in docs.items():
    with open(os.path.join(work, name), "w", encoding="utf-8", newline="") as f:
        f.write(text)
prep = os.path.join(work, "prepared")
out = jc.cli("prepare", *[os.path.join(work, n) for n in docs], "--tokenizer", "gpt2", "--gpt2-dir", data,
             "--val-fraction", "0.1", "--out", prep, "--threads", "2")
meta = json.load(open(os.path.join(prep, "meta.json")))
train_want, val_want = [], []
for name, text in docs.items():
    raw = text.encode("utf-8")
    cut = int(0.9 * len(raw))
    while cut < len(raw) and not (raw[cut:cut + 1] in (b" ", b"\n") and 0x20 < raw[cut - 1] < 0x7F):
        cut += 1
    for part, dest in ((raw[:cut], train_want), (raw[cut:], val_want)):
        ids = enc.encode_ordinary(part.decode("utf-8"))  # nanoGPT: no special tokens in the text
        ids.append(enc.eot_token)
        dest.extend(ids)
for fname, want in (("train.bin", train_want), ("val.bin", val_want)):
    got = np.memmap(os.path.join(prep, fname), dtype=np.uint16, mode="r")
    want = np.array(want, dtype=np.uint16)
    same = got.shape == want.shape and bool((got == want).all())
    jc.check(f"prepare: {fname} = nanoGPT's encode_ordinary + eot per document, uint16", same,
             f"{len(want)} tokens" if same else f"QKLab {got.shape[0]} / reference {want.shape[0]} tokens")
jc.check("prepare: meta.json counts the tokens, GPT-2 vocabulary, uint16",
         meta["train_tokens"] == len(train_want) and meta["val_tokens"] == len(val_want) and
         meta["vocab_size"] == 50257 and meta["dtype"] == "uint16", json.dumps({k: meta[k] for k in ("train_tokens", "val_tokens")}))
tiktoken.load.read_file = real_read
jc.finish()
