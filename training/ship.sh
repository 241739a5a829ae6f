#!/bin/sh
# Export the trained pair, quantize with nib, check parity, record the
# shipped-model test expectations, and evaluate. Usage: ship.sh NIB_BINARY
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(dirname "$HERE")
NIB=${1:-$ROOT/build/nib}
PY=/usr/bin/python3
R=$HERE/runs
# TARGET_RUN / DRAFT_RUN: the run folders to ship (the shipped pair: target-fim, draft-fim).
T=${TARGET_RUN:-$R/target-fim}
D=${DRAFT_RUN:-$R/draft-fim}
$PY "$HERE/export.py" "$T/ckpt.pt" "$R/nib-coder.f16.gguf" --name nib-coder --ctx 1024
# The draft ships F16: it is small, and F16 keeps nib's greedy output equal to PyTorch's.
$PY "$HERE/export.py" "$D/ckpt.pt" "$ROOT/models/nib-coder-draft.gguf" --name nib-coder-draft --ctx 1024
if ! "$NIB" quantize "$R/nib-coder.f16.gguf" "$ROOT/models/nib-coder.gguf" Q8_0; then
  echo "nib quantize failed: Q8_0 from export.py instead"
  $PY "$HERE/export.py" "$T/ckpt.pt" "$ROOT/models/nib-coder.gguf" --name nib-coder --type q8_0 --ctx 1024
fi
ls -l "$ROOT/models"
$PY "$HERE/parity.py" --nib "$NIB" "$ROOT/models/nib-coder.gguf" "$ROOT/models/nib-coder-draft.gguf" --out "$R/parity.json"
