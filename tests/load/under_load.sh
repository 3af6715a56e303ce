#!/usr/bin/env bash
# The tests that have failed under load (the GUI's, kill/resume, two writers), run again and again
# while stress-ng keeps every core busy: a test that waits on time instead of a state fails here.
#   bash tests/load/under_load.sh BUILD_DIR [ROUNDS]      (default 3 rounds)
# Exit 0 only when every round passed; stress-ng comes from Debian (setup.sh installs it).
set -uo pipefail
build="${1:?usage: under_load.sh BUILD_DIR [ROUNDS]}"
rounds="${2:-3}"
command -v stress-ng > /dev/null || { echo "under_load.sh: stress-ng is missing (apt-get install stress-ng)" >&2; exit 2; }
cores=$(nproc)
stress-ng --cpu "$cores" --cpu-method matrixprod --timeout 3600 --quiet &
load=$!
trap 'kill $load 2>/dev/null; wait $load 2>/dev/null' EXIT
sleep 1
echo "under load: stress-ng --cpu $cores (pid $load); $rounds rounds of the UI, resume, crash and lock tests"
t0=$SECONDS
ctest --test-dir "$build" --output-on-failure --timeout 900 --repeat until-fail:"$rounds" -L ui  # the GUI's (serial)
rc_ui=$?
ctest --test-dir "$build" --output-on-failure -j 2 --timeout 900 --repeat until-fail:"$rounds" \
  -R 'resume:|two writers|corruption on resume|killed -9|tokens: the CLI'
rc_cli=$?
rc=$((rc_ui | rc_cli))
echo "under load: $((SECONDS - t0)) s, ctest exit $rc"
exit $rc
