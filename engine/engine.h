/*
 * engine.h — nib's inference engine: GGUF models, tokenizers, forward pass,
 * KV cache and sampling. The only header other modules include.
 *
 * Objects:
 *   eng_vocab   a tokenizer built from GGUF metadata (immutable, shareable
 *               across threads once loaded).
 *   eng_model   a loaded model: mmapped GGUF, config, weight views, vocab.
 *               Immutable after load; many contexts may share it.
 *   eng_ctx     one inference state: KV cache, activations, logits, thread
 *               pool. Use from one thread at a time.
 *   eng_sampler token selection (greedy, temperature, top-k/p, min-p,
 *               repetition penalty) with its own seeded RNG.
 *
 * Errors are negative NIB_E* codes (common/nib.h). Functions that can fail on
 * user input also write a human-readable message into `err` (may be NULL)
 * that names the problem, e.g. "tensor blk.3.ffn_up.weight: data ends past
 * end of file".
 */
#ifndef NIB_ENGINE_H
#define NIB_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "../common/nib.h"

typedef struct eng_vocab eng_vocab;
typedef struct eng_model eng_model;
typedef struct eng_ctx eng_ctx;
typedef struct eng_sampler eng_sampler;

/* ---- vocabulary ---------------------------------------------------------- */

typedef enum {
    ENG_TOK_BOS,
    ENG_TOK_EOS,
    ENG_TOK_EOT,
    ENG_TOK_PAD,
    ENG_TOK_FIM_PRE,
    ENG_TOK_FIM_SUF,
    ENG_TOK_FIM_MID,
    ENG_TOK_FIM_PAD,
    ENG_TOK_FIM_REP,
    ENG_TOK_FIM_SEP,
    ENG_TOK_SPECIAL_COUNT
} eng_special;

enum {
    ENG_TOKENIZE_ADD_SPECIAL = 1,   /* add BOS (and EOS) when the vocab asks */
    ENG_TOKENIZE_PARSE_SPECIAL = 2, /* "<|fim_prefix|>" in text -> that token */
};

/* Load only the tokenizer of a GGUF file (works on vocab-only files).
 * *out is new (free with eng_vocab_delete). */
int eng_vocab_open(const char *path, eng_vocab **out, char *err,
                   size_t err_size);
void eng_vocab_delete(eng_vocab *v);

int eng_vocab_n_tokens(const eng_vocab *v);
/* "llama" (SentencePiece), "gpt2" (byte-level BPE), ... */
const char *eng_vocab_type(const eng_vocab *v);
/* Value of tokenizer.ggml.pre, or "default". */
const char *eng_vocab_pre(const eng_vocab *v);

/* Tokenize `len` bytes of `text`. Writes at most `n_max` ids to `out` and
 * returns the total number of tokens (which may exceed n_max: call again
 * with a larger buffer), or a negative error. Thread-safe. */
int eng_tokenize(const eng_vocab *v, const char *text, size_t len, int flags,
                 int32_t *out, int n_max);

/* The exact bytes of token `tok` as it appears in decoded text (byte-fallback
 * and byte-level tokens give raw bytes, which may be part of a UTF-8
 * character). Special/control tokens give their text only when `special`.
 * Returns the byte length (which may exceed `size`: nothing is written then),
 * or NIB_EINVAL for an id out of range. */
int eng_token_piece(const eng_vocab *v, int32_t tok, bool special, char *buf,
                    int size);

/* The vocabulary's raw text for a token (for display), borrowed. */
const char *eng_token_text(const eng_vocab *v, int32_t tok);

/* Id of a special token, or -1 when the vocab has none. */
int32_t eng_token_special(const eng_vocab *v, eng_special which);

/* End of generation: EOS, EOT, FIM pad / repo / file-separator tokens. */
bool eng_token_is_eog(const eng_vocab *v, int32_t tok);

/* Print vocabulary details (type, size, special and FIM tokens). */
void eng_vocab_print_info(const eng_vocab *v, FILE *f);

/* ---- model --------------------------------------------------------------- */

/* Load a GGUF model (mmapped; weights are not copied). *out is new (free with
 * eng_model_delete). Unsupported architectures and tensor types are errors
 * that name them. */
int eng_model_load(const char *path, eng_model **out, char *err,
                   size_t err_size);
void eng_model_delete(eng_model *m);

/* Borrowed; valid while the model lives. */
const eng_vocab *eng_model_vocab(const eng_model *m);

typedef struct {
    const char *arch; /* "llama", "qwen2" */
    const char *name; /* general.name or "" */
    int n_vocab;      /* rows of the output matrix */
    int n_ctx_train;
    int n_embd;
    int n_layer;
    int n_head;
    int n_head_kv;
    int n_ff;
    int head_dim;
    float rope_base;
    float rope_scale; /* linear scaling factor (1 = none) */
    float norm_eps;
    uint64_t n_params;
    uint64_t weight_bytes; /* bytes of all tensor data */
    const char *ftype;     /* dominant tensor type, e.g. "Q8_0" */
} eng_model_info;

void eng_model_get_info(const eng_model *m, eng_model_info *info);

/* Print architecture, sizes, tensor types, vocab and special tokens. */
void eng_model_print_info(const eng_model *m, FILE *f);

/* ---- inference context --------------------------------------------------- */

typedef struct {
    int n_ctx;       /* KV cache length in tokens (0 = min(train ctx, 4096)) */
    int n_batch;     /* max tokens per forward call; larger evals are split
                        (0 = 512) */
    int n_threads;   /* 0 = number of physical cores */
    bool logits_all; /* keep logits for every token of the last eval, not
                        only the last (needs n_batch * n_vocab floats) */
    int kv_limit_mb; /* LRU limit on the KV memory of all sequences
                        (0 = 512); the current sequence is never dropped */
} eng_ctx_params;

eng_ctx_params eng_ctx_default_params(void);

/* *out is new (free with eng_ctx_delete). The model must outlive it. */
int eng_ctx_new(const eng_model *m, const eng_ctx_params *p, eng_ctx **out);
void eng_ctx_delete(eng_ctx *c);

/* Evaluate `n` tokens appended after the tokens already in the context
 * (positions n_past .. n_past+n-1) and store them in the KV cache.
 * Returns 0, NIB_ECTXFULL when they do not fit, NIB_EINVAL for an id out of
 * range. After it, eng_ctx_logits() gives the last token's logits (or every
 * token's with logits_all). */
int eng_eval(eng_ctx *c, const int32_t *tokens, int n);

/* Logits of token i of the last eval (i = -1: the last one); borrowed until
 * the next eval. NULL when that row was not kept. */
const float *eng_ctx_logits(const eng_ctx *c, int i);

/* Number of tokens in the KV cache, and the tokens themselves (borrowed). */
int eng_ctx_n_past(const eng_ctx *c);
const int32_t *eng_ctx_tokens(const eng_ctx *c);
int eng_ctx_n_ctx(const eng_ctx *c);
int eng_ctx_n_vocab(const eng_ctx *c);

/* Forget every token from position n on (n <= n_past). */
void eng_ctx_truncate(eng_ctx *c, int n);

/* Install a callback that eng_eval and eng_eval_reuse poll between layers
 * (from the calling thread); when it returns true they stop and return
 * NIB_ECANCELED, leaving the context holding the tokens it held before the
 * interrupted batch. fn NULL removes it. */
void eng_ctx_set_abort(eng_ctx *c, bool (*fn)(void *ud), void *ud);

/* ---- KV cache reuse ------------------------------------------------------ */

typedef struct {
    int n_reused;    /* tokens whose K/V were kept (prefix + moved chunks) */
    int n_evaluated; /* tokens that went through the model */
    int n_shifted;   /* of n_reused, tokens in chunks moved to a new position */
} eng_reuse_stats;

/* Make the context hold exactly `tokens` (n of them) and compute the logits
 * of the last one, evaluating only what the cache does not already have:
 * the longest common prefix is kept as it is, and after it, runs of at
 * least `min_chunk` tokens that are identical to a run already in the cache
 * at another position are moved there (their keys re-rotated by the
 * position delta) instead of being recomputed, as llama.cpp's server does
 * with cache_reuse. min_chunk <= 0 disables chunk moving (prefix only).
 * Returns 0, NIB_ECTXFULL or NIB_EINVAL; fills *st when not NULL. */
int eng_eval_reuse(eng_ctx *c, const int32_t *tokens, int n, int min_chunk,
                   eng_reuse_stats *st);

/* ---- sequences ----------------------------------------------------------- */

/* A context holds several KV sequences (e.g. one per open document plus a
 * spare); eng_ctx_use_seq switches the context to the sequence named `key`
 * (any 64-bit id, e.g. a hash of the document URI), creating it if needed.
 * When the KV memory of all sequences would exceed the limit given in
 * eng_ctx_params.kv_limit_mb, the least recently used ones are dropped.
 * Returns 0 or NIB_ENOMEM. The current sequence's tokens and cache are what
 * eng_eval, eng_eval_reuse, eng_ctx_n_past and eng_ctx_tokens see. */
int eng_ctx_use_seq(eng_ctx *c, uint64_t key);
/* Number of live sequences and their total KV bytes. */
int eng_ctx_n_seqs(const eng_ctx *c);
size_t eng_ctx_kv_bytes(const eng_ctx *c);

/* ---- sampling ------------------------------------------------------------ */

typedef struct {
    float temperature;    /* <= 0: greedy */
    int top_k;            /* <= 0: off */
    float top_p;          /* >= 1: off */
    float min_p;          /* <= 0: off */
    float repeat_penalty; /* 1: off */
    int repeat_last_n;    /* how many recent tokens the penalty looks at */
    uint64_t seed;
} eng_sampler_params;

eng_sampler_params eng_sampler_default_params(void);

/* *out is new (free with eng_sampler_delete). n_vocab sizes its scratch. */
int eng_sampler_new(const eng_sampler_params *p, int n_vocab,
                    eng_sampler **out);
void eng_sampler_delete(eng_sampler *s);

/* Pick a token from `logits` (n_vocab floats, not modified). `history` is the
 * recent tokens the repetition penalty looks at (may be NULL). Never
 * allocates. */
int32_t eng_sample(eng_sampler *s, const float *logits, const int32_t *history,
                   int n_history);

/* Index of the largest logit (ties: lowest id). */
int32_t eng_argmax(const float *logits, int n);

/* ---- misc ---------------------------------------------------------------- */

/* Number of physical cores (the default thread count). */
int eng_physical_cores(void);

/* The kernel set chosen at start-up: "avx512", "avxvnni" (AVX2 with
 * AVX-VNNI), "avx2" or "scalar" (NIB_FORCE_SCALAR=1 in the environment
 * forces "scalar", NIB_FORCE_ISA caps it at one of the others). */
const char *eng_simd_name(void);

/* ---- benchmark ----------------------------------------------------------- */

/* One product of `batch` activation rows with a rows x cols weight matrix
 * of a weight type, timed both ways (best of reps, milliseconds). */
typedef struct {
    double int_ms;       /* activation conversion + integer dots */
    double sgemm_ms;     /* weights dequantized to F32 by tiles + sgemm */
    bool auto_blas;      /* what eng_eval uses for this type and batch */
    double max_rel_diff; /* max |int - sgemm| / max |sgemm| */
} eng_gemm_cmp;

/* type_name as in GGUF ("Q8_0", "Q4_K", "F16"); random weights and
 * activations; NIB_EINVAL / NIB_ENOMEM with a message in err. */
int eng_gemm_compare(const char *type_name, int rows, int cols, int batch,
                     int threads, int reps, eng_gemm_cmp *res, char *err,
                     size_t err_size);

#endif
