#!/bin/sh
# run.sh — Neovim headless: attach `nib lsp` to a buffer with vim.lsp, edit,
# request an inline completion and check the answer. Needs NIB_BINARY.
# Exit 77 means skipped (no nvim, or no shared model).
here=$(cd "$(dirname "$0")" && pwd)
if ! command -v nvim >/dev/null 2>&1; then
    echo "SKIP: nvim is not installed (apt-get install -y neovim)"
    exit 77
fi
if ! "${NIB_BINARY:-nib}" lsp --help >/dev/null 2>&1; then
    echo "SKIP: '${NIB_BINARY:-nib} lsp' is not available (is it wired into cli/main.c?)"
    exit 77
fi
shared=${NIB_SHARED:-$here/../../../shared}
model=$shared/models/rq-star-q8_0.gguf
if [ ! -r "$model" ]; then
    echo "SKIP: $model absent"
    exit 77
fi
out=$(mktemp)
NIB_TEST_MODEL=$model timeout 60 nvim --headless --clean -u NONE -i NONE \
    -c "luafile $here/inline.lua" >"$out" 2>&1
rc=$?
cat "$out"
rm -f "$out"
exit $rc
