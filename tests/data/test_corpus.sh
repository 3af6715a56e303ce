#!/usr/bin/env bash
# The study's corpus script (tools/corpus/kjv.sh) from nothing: the text is the whole Bible (first
# and last verses, 66 books' headings), its tokens folder loads and holds at least a million GPT-2
# tokens, and the recorded counts are the files' sizes. Skipped (77) without QKLAB_DATA_DIR (the
# GPT-2 files) unless CI=true, where that fails.
set -euo pipefail
cli="$1"
src="$(cd "$(dirname "$0")/../.." && pwd)"
if [ -z "${QKLAB_DATA_DIR:-}" ]; then
  [ "${CI:-}" = true ] && { echo "FAIL: QKLAB_DATA_DIR is not set"; exit 1; }
  echo "SKIP: QKLAB_DATA_DIR is not set (the GPT-2 BPE files)"; exit 77
fi
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
bash "$src/tools/corpus/kjv.sh" "$work" "$cli" "$QKLAB_DATA_DIR"
fail=0
check() { if eval "$2"; then echo "PASS $1"; else echo "FAIL $1"; fail=1; fi; }
check "the first verse opens the text" "sed -n 2,4p '$work/kjv.txt' | grep -q '^In the beginning God created the heaven and the earth.$'"
check "the last verse closes it" "tail -1 '$work/kjv.txt' | grep -q '^The grace of our Lord Jesus Christ be with you all. Amen.$'"
check "no verse numbers left" "! grep -qE '^ +[0-9]+ ' '$work/kjv.txt'"
check "1,189 chapter headings" "[ \$(grep -cE '^[1-3]? ?[A-Z][A-Za-z ]+ [0-9]+$' '$work/kjv.txt') -eq 1189 ]"
tr=$(python3 -c "import json;m=json.load(open('$work/kjv-gpt2/meta.json'));print(m['train_tokens'], m['val_tokens'])")
read -r ntr nva <<< "$tr"
check "at least a million GPT-2 tokens ($ntr + $nva)" "[ $((ntr + nva)) -ge 1000000 ]"
check "train.bin and val.bin hold the counted tokens" "[ \$(stat -c %s '$work/kjv-gpt2/train.bin') -eq $((2 * ntr)) ] && [ \$(stat -c %s '$work/kjv-gpt2/val.bin') -eq $((2 * nva)) ]"
out=$("$cli" train --preset default --set data.kind=tokens --set data.path="$work/kjv-gpt2" --set model.context_length=32 \
      --set model.emb_dim=32 --set model.n_heads=2 --set model.n_layers=1 --set train.steps=2 --set train.eval_every=1 \
      --set train.batch_size=2 --set train.eval_batches=1 --quiet --out "$work/run" 2>&1) || { echo "$out"; exit 1; }
check "a run trains on the folder" "grep -q 'val loss' <<< \"\$out\""
exit $fail
