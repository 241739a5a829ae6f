#!/bin/sh
# setup.sh — install what nib needs from Debian's packages and build it into
# ./build. Idempotent: packages already installed are not fetched again, and
# a second build only recompiles what changed.
#
#   scripts/setup.sh          runtime and build dependencies, release build
#   scripts/setup.sh --test   also what the test suite uses (node, neovim,
#                             python3-torch for the training smoke test)
set -eu
cd "$(dirname "$0")/.."

pkgs="build-essential cmake pkg-config libjansson-dev libuv1-dev libopenblas-dev libtree-sitter-dev"
if [ "${1:-}" = "--test" ]; then
    pkgs="$pkgs neovim python3 python3-numpy python3-torch python3-regex"
    command -v node >/dev/null 2>&1 || pkgs="$pkgs nodejs npm"
fi

missing=""
for p in $pkgs; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" ||
        missing="$missing $p"
done
if [ -n "$missing" ]; then
    echo "setup: installing$missing"
    sudo=""
    [ "$(id -u)" = 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq $missing >/dev/null
fi

jobs=$(nproc 2>/dev/null || echo 2)
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$jobs"
