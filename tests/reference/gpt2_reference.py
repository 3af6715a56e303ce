#!/usr/bin/python3
"""Reference GPT-2 byte-level BPE encoder (OpenAI's algorithm: byte<->unicode table, the
pre-tokenisation regex, merges by rank), written for QKLab's fixtures with Debian's python3-regex.

usage: /usr/bin/python3 gpt2_reference.py DATA_DIR OUT.json
DATA_DIR holds gpt2-encoder.json, gpt2-vocab.bpe and the-verdict.txt. Writes the ids of
the-verdict.txt and of a set of tricky strings; tests/test_tokenizers.cpp compares the C++
encoder with them.
"""
import json
import sys

import regex as re

SAMPLES = [
    "Hello, world!", "  leading and trailing spaces  ", "tabs\tand\nnewlines\n\n\nhere",
    "don't we'll I'm they've she'd it's you're", "digits 1234567890 and 3.14159",
    "café naïve résumé Ångström", "日本語のテキストと中文", "emoji 🤖👍🏽 ok", "mixed: a1b2 -- ...?!",
    "multiple     spaces\r\nwindows line", "<|endoftext|> special then text<|endoftext|>",
    "   ", "\n", "'s 'S 'll 'LL", "x" * 60,
]


def bytes_to_unicode():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, [chr(c) for c in cs]))


class Encoder:
    def __init__(self, encoder, merges):
        self.encoder = encoder
        self.ranks = {tuple(m): i for i, m in enumerate(merges)}
        self.byte_encoder = bytes_to_unicode()
        self.pat = re.compile(r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+""")
        self.cache = {}

    def bpe(self, token):
        if token in self.cache:
            return self.cache[token]
        word = list(token)
        while len(word) > 1:
            pairs = [(word[i], word[i + 1]) for i in range(len(word) - 1)]
            best = min(pairs, key=lambda p: self.ranks.get(p, float("inf")))
            if best not in self.ranks:
                break
            out, i = [], 0
            while i < len(word):
                if i < len(word) - 1 and (word[i], word[i + 1]) == best:
                    out.append(word[i] + word[i + 1])
                    i += 2
                else:
                    out.append(word[i])
                    i += 1
            word = out
        self.cache[token] = word
        return word

    def encode_ordinary(self, text):
        ids = []
        for piece in re.findall(self.pat, text):
            piece = "".join(self.byte_encoder[b] for b in piece.encode("utf-8"))
            ids.extend(self.encoder[t] for t in self.bpe(piece))
        return ids

    def encode(self, text):  # allowed_special={"<|endoftext|>"}
        parts = text.split("<|endoftext|>")
        ids = []
        for i, part in enumerate(parts):
            if i:
                ids.append(self.encoder["<|endoftext|>"])
            ids.extend(self.encode_ordinary(part))
        return ids


def main():
    data, out = sys.argv[1], sys.argv[2]
    encoder = json.load(open(f"{data}/gpt2-encoder.json", encoding="utf-8"))
    lines = open(f"{data}/gpt2-vocab.bpe", encoding="utf-8").read().split("\n")[1:-1]
    enc = Encoder(encoder, [tuple(l.split()) for l in lines])
    verdict = open(f"{data}/the-verdict.txt", encoding="utf-8").read()
    fixture = {"the-verdict.txt": enc.encode(verdict), "samples": {s: enc.encode(s) for s in SAMPLES}}
    json.dump(fixture, open(out, "w"), ensure_ascii=False)
    print(f"wrote {out}: the-verdict.txt -> {len(fixture['the-verdict.txt'])} tokens, {len(SAMPLES)} samples")


if __name__ == "__main__":
    main()
