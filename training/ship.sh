#!/bin/sh
# Export the trained pair, quantize with nib, check parity, record the
# shipped-model test expectations, and evaluate. Usage: ship.sh NIB_BINARY
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(dirname "$HERE")
NIB=${1:-$ROOT/build/nib}
PY=/usr/bin/python3
R=$HERE/runs
$PY "$HERE/export.py" "$R/target/ckpt.pt" "$R/nib-coder.f16.gguf" --name nib-coder
$PY "$HERE/export.py" "$R/draft/ckpt.pt" "$R/nib-coder-draft.f16.gguf" --name nib-coder-draft
for m in nib-coder nib-coder-draft; do
  if ! "$NIB" quantize "$R/$m.f16.gguf" "$ROOT/models/$m.gguf" Q8_0; then
    echo "nib quantize failed: Q8_0 from export.py instead"
    ck=$R/target/ckpt.pt; [ $m = nib-coder-draft ] && ck=$R/draft/ckpt.pt
    $PY "$HERE/export.py" "$ck" "$ROOT/models/$m.gguf" --name $m --type q8_0
  fi
done
ls -l "$ROOT/models"
$PY "$HERE/parity.py" --nib "$NIB" "$ROOT/models/nib-coder.gguf" "$ROOT/models/nib-coder-draft.gguf" --out "$R/parity.json"
