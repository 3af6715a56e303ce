#!/usr/bin/env bash
# Runs one judge (tests/peers/judge_*.py) with the peers' python: run_judge.sh PYTHON SCRIPT ARGS...
# Without the peers' environment the judge is skipped (exit 77, reported as skipped by CTest),
# except in CI (CI=true) or when QKLAB_REQUIRE_PEERS=1: there a missing peer fails.
py="$1"; shift
if [ -z "$py" ] || [ ! -x "$py" ]; then
  msg="the peers' environment is missing (python '${py}'): bash setup.sh peers, then configure with -DQKLAB_PEERS_PYTHON=…"
  if [ "${CI:-}" = true ] || [ "${QKLAB_REQUIRE_PEERS:-}" = 1 ]; then echo "FAIL: $msg"; exit 1; fi
  echo "SKIP: $msg"; exit 77
fi
# No model hub, ever: every model a judge uses is made by the judge.
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1 WANDB_MODE=disabled TOKENIZERS_PARALLELISM=false
export PYTHONDONTWRITEBYTECODE=1
exec "$py" "$@"
