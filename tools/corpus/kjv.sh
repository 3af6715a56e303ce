#!/usr/bin/env bash
# The study's English corpus: the King James Bible (public domain; the text of Debian's bible-kjv-text,
# read through its `bible` program), one verse per line without verse numbers, chapter headings kept
# ("Genesis 1"). Writes OUT/kjv.txt (4.15 MB), OUT/kjv-bpe4096/ — the language study's tokens folder
# (qklab-cli prepare with a 4,096-token BPE trained on the text, the last 10 % for validation:
# 938,323 + 107,057 tokens) — and, with the GPT-2 BPE files, OUT/kjv-gpt2/ (931,319 + 100,623 GPT-2
# tokens).
#   bash tools/corpus/kjv.sh OUT_DIR QKLAB_CLI [GPT2_DIR]
# Idempotent: a folder with its meta.json is kept.
set -euo pipefail
out="${1:?usage: kjv.sh OUT_DIR QKLAB_CLI [GPT2_DIR]}"
cli="${2:?usage: kjv.sh OUT_DIR QKLAB_CLI [GPT2_DIR]}"
gpt2="${3:-}"
command -v bible > /dev/null || { echo "kjv.sh: the 'bible' program is missing (apt-get install bible-kjv)" >&2; exit 2; }
mkdir -p "$out"
if [ ! -s "$out/kjv.txt" ]; then
  bible -l 100000 "gen1:1-rev22:21" | sed -E 's/^ +[0-9]+ //' > "$out/kjv.txt.partial"
  mv "$out/kjv.txt.partial" "$out/kjv.txt"
fi
echo "kjv.sh: $out/kjv.txt: $(wc -c < "$out/kjv.txt") bytes, $(wc -l < "$out/kjv.txt") lines"
if [ ! -s "$out/kjv-bpe4096/meta.json" ]; then
  "$cli" prepare "$out/kjv.txt" --tokenizer bpe:4096 --val-fraction 0.1 --out "$out/kjv-bpe4096"
fi
if [ -n "$gpt2" ] && [ ! -s "$out/kjv-gpt2/meta.json" ]; then
  "$cli" prepare "$out/kjv.txt" --tokenizer gpt2 --gpt2-dir "$gpt2" --val-fraction 0.1 --out "$out/kjv-gpt2"
fi
