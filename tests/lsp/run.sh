#!/bin/sh
# run.sh [FILE.test.mjs ...] — the node LSP client tests (ctest runs one file
# per entry). Needs NIB_BINARY. Installs the pinned npm packages from
# package-lock.json when node_modules is missing (CI starts from a clean
# clone). Exit 77 means skipped.
here=$(cd "$(dirname "$0")" && pwd)
if ! command -v node >/dev/null 2>&1; then
    echo "SKIP: node is not installed"
    exit 77
fi
if [ "$1" = "--setup" ]; then
    [ -d "$here/node_modules/vscode-languageserver-protocol" ] && exit 0
    command -v npm >/dev/null 2>&1 || { echo "SKIP: npm is not installed"; exit 77; }
    npm ci --prefix "$here" --no-audit --no-fund || exit 1
    exit 0
fi
if [ ! -d "$here/node_modules/vscode-languageserver-protocol" ]; then
    "$0" --setup || exit $?
fi
if ! "${NIB_BINARY:-nib}" lsp --help >/dev/null 2>&1; then
    echo "SKIP: '${NIB_BINARY:-nib} lsp' is not available (is it wired into cli/main.c?)"
    exit 77
fi
cd "$here" || exit 1
[ $# -gt 0 ] || set -- *.test.mjs
exec node --test "$@"
