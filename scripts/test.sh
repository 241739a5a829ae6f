#!/bin/sh
# test.sh — the whole test suite, as CI runs it (.ci/run calls exactly this).
#
#  1. release build: every test (C unit tests, golden outputs against
#     llama.cpp, LSP node and Neovim clients, training smoke test);
#  2. the golden-output tests again on each slower kernel path
#     (NIB_FORCE_ISA=avxvnni, AVX2 with AVX-VNNI as on Alder Lake; avx2,
#     AVX2 alone as on older laptops; then the scalar reference with
#     NIB_FORCE_SCALAR=1), so every SIMD path this CPU has is checked
#     against llama.cpp, and on the AVX2 levels the kernel and quant tests
#     too (what such a laptop installs: its packed and tile kernels, its
#     batched dots);
#  3. an AddressSanitizer + UBSan build running the C tests (GGUF corruption
#     suite, tokenizers, kernels, documents, framing).
#
# Tests that need ../shared skip with a message when it is absent.
set -eu
cd "$(dirname "$0")/.."
scripts/setup.sh --test

jobs=$(nproc 2>/dev/null || echo 2)
status=0

echo "== release build: all tests"
ctest --test-dir build -j"$jobs" --output-on-failure || status=1

for isa in avxvnni avx2; do
    echo "== $isa kernels forced: golden outputs, kernel and quant tests"
    NIB_FORCE_ISA=$isa ctest --test-dir build -j"$jobs" --output-on-failure \
        -R '^(golden_|kernels_|quant_)' || status=1
done

echo "== scalar kernels forced: golden outputs"
NIB_FORCE_SCALAR=1 ctest --test-dir build -j"$jobs" --output-on-failure -R '^golden_' || status=1

echo "== AddressSanitizer + UBSan build: C tests"
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DNIB_SANITIZE=ON >/dev/null
cmake --build build-asan -j"$jobs" --target nib-tests nib
ASAN_OPTIONS=detect_leaks=1 ctest --test-dir build-asan -j"$jobs" --output-on-failure \
    -R '^(base_|gguf_|vocab_|quant_|lsp_|cmp_|engine_)' -E '^lsp_node|^lsp_nvim' || status=1

exit $status
