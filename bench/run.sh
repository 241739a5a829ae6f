#!/bin/sh
# bench/run.sh — regenerate the engine table of bench/README.md.
#
#   bench/run.sh [NIB_BINARY]        (from the repository root)
#
# Creates random-weight models of the Qwen2.5-Coder-0.5B and 1.5B shapes
# with the real Qwen2.5 vocab (../shared/vocab) at Q8_0 and Q4_K_M in
# $NIB_BENCH_DIR (default /tmp; about 4 GB, never committed), then runs
# `nib bench --reuse` on each with $NIB_BENCH_THREADS threads (default 2)
# ($NIB_BENCH_REPS runs of each measure, default 3, best kept) and prints
# one JSON line per model, followed by a Markdown table.
# $NIB_BENCH_SHAPES picks the shapes (default "1.5b 0.5b").
# The speed of a random-weight model is that of the real one: same tensor
# shapes and types, same vocab, and the benchmark's tokens are random or
# come from source text, never from the model's own predictions.
set -eu

NIB=${1:-build/nib}
DIR=${NIB_BENCH_DIR:-/tmp}
T=${NIB_BENCH_THREADS:-2}
VOCAB=../shared/vocab/ggml-vocab-qwen2.gguf
OUT=${NIB_BENCH_OUT:-$DIR/nib-bench.jsonl}
REPS=${NIB_BENCH_REPS:-3}

[ -x "$NIB" ] || { echo "bench/run.sh: $NIB is not built" >&2; exit 1; }
[ -f "$VOCAB" ] || { echo "bench/run.sh: $VOCAB absent" >&2; exit 1; }

: >"$OUT"
# The 1.5B shape first: the 0.5B models, which the targets are about, are
# then measured last, with the latest state of the machine.
for shape in ${NIB_BENCH_SHAPES:-1.5b 0.5b}; do
    for type in Q8_0 Q4_K_M; do
        m=$DIR/qwen2.5-coder-$shape-$type.gguf
        if [ ! -f "$m" ]; then
            "$NIB" mkmodel --arch qwen2 --shape qwen2.5-coder-$shape \
                --vocab "$VOCAB" --type $type -o "$m" >&2
        fi
        echo "bench/run.sh: $m ($(date -u +%H:%M:%S) UTC)" >&2
        "$NIB" bench -m "$m" -t "$T" -p 512 -n 64 -r "$REPS" --reuse | tee -a "$OUT"
    done
done

# The table, when jq is there.
command -v jq >/dev/null || exit 0
echo
echo "| model | pp512 tok/s | tg tok/s | GB/s (low) | tg eff. (interleaved, best/best) | verify8 / 1 | edit / full | load ms | RSS MB (weights + KV) |"
echo "|---|---|---|---|---|---|---|---|---|"
jq -r '"| \(.model | split("/") | last | sub("\\.gguf$"; "")) | \(.pp_tps) | \(.tg_tps) | \(.bandwidth_gbs) (\(.bandwidth_low_gbs)) | \(.tg_efficiency) (\(.tg_efficiency_interleaved), \(.tg_efficiency_best)) | \(.verify8_ratio) | \(.reuse_fraction) | \(.load_ms) | \(.peak_rss_mb) (\(.weights_mb) + \(.kv_mb)) |"' "$OUT"
