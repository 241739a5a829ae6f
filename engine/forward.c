/*
 * forward.c — the transformer forward pass for llama and qwen2, and the
 * inference context that holds its state.
 *
 * Both architectures are the same decoder: RMSNorm, Q/K/V projections (qwen2
 * adds biases), RoPE (llama rotates adjacent pairs, qwen2 the two halves of
 * each head: "NeoX" style), grouped-query attention over an fp16 KV cache,
 * output projection, residual, RMSNorm, SwiGLU feed-forward, residual. A
 * batch of tokens goes through each matrix product together.
 */
#include "internal.h"

#include <math.h>
#include <string.h>

/* The feed-forward of a batch runs this many tokens at a time, so its two
 * hidden-width buffers are [FFN_CHUNK][hidden] rather than [n_batch][hidden]:
 * on the 1.5B shape (hidden 8,960) that is 9 MiB instead of 37 at n_batch
 * 512, which keeps peak RSS within weights + KV + 64 MiB. The weights are
 * then read n_batch / FFN_CHUNK times per batch (a 512-token prompt reads
 * the 0.5B shape's feed-forward four times instead of once, about 25 ms at
 * 40 GB/s), and results are unchanged: every product's rows and columns
 * are computed independently of the batch they are in. */
#define FFN_CHUNK 128

/* ---- small kernels (output first, as in llama2.c) ------------------------ */

static void rmsnorm(float *o, const float *x, const float *w, int n,
                    float eps) {
    /* Sum in double as ggml does, so long rows keep their precision; in
     * four chains, because one serial chain of double adds was 0.8% of an
     * 8-token verify (Qwen2.5-0.5B), run on one thread while the other
     * waits. The order differs from ggml's only below double rounding. */
    double s4[4] = {0.0, 0.0, 0.0, 0.0};
    int i = 0;
    for (; i + 4 <= n; i += 4)
        for (int k = 0; k < 4; k++)
            s4[k] += (double)(x[i + k] * x[i + k]);
    for (; i < n; i++)
        s4[0] += (double)(x[i] * x[i]);
    const double ss = (s4[0] + s4[1]) + (s4[2] + s4[3]);
    float scale = 1.0f / sqrtf((float)(ss / n) + eps);
    for (i = 0; i < n; i++)
        o[i] = (x[i] * scale) * w[i];
}

/* Rows into the fp16 KV cache with the installed F16 conversion (F16C
 * where the CPU has it; the same rounding as eng_fp32_to_fp16). */
static void to_fp16(const float *x, eng_fp16 *y, int n) {
    eng_type_traits[ENG_TYPE_F16].from_float(x, y, n);
}

static void add_bias(float *x, const float *b, int n) {
    for (int i = 0; i < n; i++)
        x[i] += b[i];
}

/* The cos/sin of the RoPE angles pos * freq_scale * base^(-2i/n_rot) of one
 * position, for i < n_rot/2, computed as ggml does (the angle multiplied
 * up step by step). Every head and layer of a token shares them, so the
 * forward pass computes them once per token. */
static void rope_table(float *cs, float *sn, int pos, const eng_config *c) {
    float theta_scale = powf(c->rope_base, -2.0f / (float)c->n_rot);
    float theta = (float)pos * c->rope_freq_scale;
    for (int i = 0; i < c->n_rot / 2; i++) {
        cs[i] = cosf(theta);
        sn[i] = sinf(theta);
        theta *= theta_scale;
    }
}

/* Rotate the first n_rot dims of each of n_heads heads of size head_dim:
 * adjacent pairs for llama, the two halves for NeoX-style qwen2. */
static void rope_apply(float *x, int n_heads, int head_dim, const float *cs,
                       const float *sn, const eng_config *c) {
    int n_rot = c->n_rot;
    for (int h = 0; h < n_heads; h++) {
        float *v = x + h * head_dim;
        for (int i = 0; i < n_rot; i += 2) {
            int a = c->rope_neox ? i / 2 : i;
            int b = c->rope_neox ? i / 2 + n_rot / 2 : i + 1;
            float x0 = v[a], x1 = v[b];
            v[a] = x0 * cs[i / 2] - x1 * sn[i / 2];
            v[b] = x0 * sn[i / 2] + x1 * cs[i / 2];
        }
    }
}

static void rope(float *x, int n_heads, int head_dim, int pos,
                 const eng_config *c) {
    float cs[512], sn[512]; /* n_rot <= head_dim <= 1024 (the loader) */
    rope_table(cs, sn, pos, c);
    rope_apply(x, n_heads, head_dim, cs, sn, c);
}

/* ---- forward ------------------------------------------------------------- */

int eng_forward(eng_ctx *c, const int32_t *tokens, int n, bool all_logits) {
    const eng_model *m = c->m;
    const eng_config *p = &m->cfg;
    const eng_weights *w = &m->w;
    int dim = p->dim, hd = p->head_dim, hidden = p->hidden_dim;
    int q_dim = p->n_heads * hd, kv_dim = p->n_kv_heads * hd;
    int pos0 = c->n_past;
    float *x = c->x;

    /* token embeddings, and the RoPE angles of each position */
    for (int b = 0; b < n; b++) {
        eng_tensor_get_row(&w->tok_embd, tokens[b], x + (size_t)b * dim);
        float *cs = c->rope_cs + (size_t)b * p->n_rot;
        rope_table(cs, cs + p->n_rot / 2, pos0 + b, p);
    }

    for (int l = 0; l < p->n_layers; l++) {
        const eng_layer *L = &w->layers[l];
        if (c->abort_fn && c->abort_fn(c->abort_ud))
            return NIB_ECANCELED;

        /* attention rmsnorm */
        for (int b = 0; b < n; b++)
            rmsnorm(c->xb + (size_t)b * dim, x + (size_t)b * dim, L->attn_norm,
                    dim, p->norm_eps);

        /* qkv projections (+ bias for qwen2) */
        {
            float *const outs[] = {c->q, c->k, c->v};
            const eng_tensor *const ws[] = {&L->wq, &L->wk, &L->wv};
            eng_matmul_n(c, 3, outs, ws, c->xb, n);
        }
        for (int b = 0; b < n; b++) {
            float *q = c->q + (size_t)b * q_dim;
            float *k = c->k + (size_t)b * kv_dim;
            float *v = c->v + (size_t)b * kv_dim;
            if (L->bq) {
                add_bias(q, L->bq, q_dim);
                add_bias(k, L->bk, kv_dim);
                add_bias(v, L->bv, kv_dim);
            }

            /* RoPE on queries and keys */
            const float *cs = c->rope_cs + (size_t)b * p->n_rot;
            rope_apply(q, p->n_heads, hd, cs, cs + p->n_rot / 2, p);
            rope_apply(k, p->n_kv_heads, hd, cs, cs + p->n_rot / 2, p);

            /* append to the KV cache */
            size_t off = ((size_t)l * c->n_ctx + pos0 + b) * kv_dim;
            to_fp16(k, c->key_cache + off, kv_dim);
            to_fp16(v, c->value_cache + off, kv_dim);
        }

        /* grouped-query attention, causal */
        eng_attention(c, l, n, pos0);

        /* output projection and residual */
        eng_matmul(c, c->xb2, &L->wo, c->xb, n);
        for (size_t i = 0; i < (size_t)n * dim; i++)
            x[i] += c->xb2[i];

        /* ffn rmsnorm */
        for (int b = 0; b < n; b++)
            rmsnorm(c->xb + (size_t)b * dim, x + (size_t)b * dim, L->ffn_norm,
                    dim, p->norm_eps);

        /* SwiGLU feed-forward and residual, FFN_CHUNK tokens at a time */
        for (int b0 = 0; b0 < n; b0 += FFN_CHUNK) {
            const int nb = NIB_MIN(FFN_CHUNK, n - b0);
            float *const outs[] = {c->hb, c->hb2};
            const eng_tensor *const ws[] = {&L->w_gate, &L->w_up};
            eng_matmul_n(c, 2, outs, ws, c->xb + (size_t)b0 * dim, nb);
            eng_swiglu(c, c->hb, c->hb2, (size_t)nb * hidden);
            eng_matmul(c, c->xb2 + (size_t)b0 * dim, &L->w_down, c->hb, nb);
        }
        for (size_t i = 0; i < (size_t)n * dim; i++)
            x[i] += c->xb2[i];
    }

    /* final rmsnorm and classifier, for the last token or all of them */
    int first = all_logits ? 0 : n - 1;
    int rows = n - first;
    for (int b = first; b < n; b++)
        rmsnorm(c->xb + (size_t)(b - first) * dim, x + (size_t)b * dim,
                w->out_norm, dim, p->norm_eps);
    eng_matmul(c, c->logits, &w->output, c->xb, rows);
    c->n_logits = rows;
    c->logits_all_rows = all_logits;

    memcpy(c->tokens + pos0, tokens, (size_t)n * sizeof(int32_t));
    c->n_past += n;
    return 0;
}

/* ---- context ------------------------------------------------------------- */

eng_ctx_params eng_ctx_default_params(void) {
    return (eng_ctx_params){.n_ctx = 0,
                            .n_batch = 512,
                            .n_threads = 0,
                            .logits_all = false,
                            .kv_limit_mb = 512};
}

#define TRY_ALLOC(ptr, n, size)                                                \
    do {                                                                       \
        (ptr) = nib_try_calloc((n), (size));                                   \
        if (!(ptr))                                                            \
            goto oom;                                                          \
    } while (0)

static void seq_free(eng_seq *s) {
    nib_free(s->key_cache);
    nib_free(s->value_cache);
    nib_free(s->tokens);
    memset(s, 0, sizeof *s);
}

/* Allocate the buffers of a new, empty sequence. */
static int seq_alloc(eng_ctx *c, eng_seq *s, uint64_t key) {
    const eng_config *p = &c->m->cfg;
    size_t kv = (size_t)p->n_layers * c->n_ctx * p->n_kv_heads * p->head_dim;
    memset(s, 0, sizeof *s);
    s->key = key;
    s->key_cache = nib_try_calloc(kv, sizeof(eng_fp16));
    s->value_cache = nib_try_calloc(kv, sizeof(eng_fp16));
    s->tokens = nib_try_calloc((size_t)c->n_ctx, sizeof(int32_t));
    if (!s->key_cache || !s->value_cache || !s->tokens) {
        seq_free(s);
        return NIB_ENOMEM;
    }
    return 0;
}

/* Point the context's working aliases at seqs[i]. */
static void seq_activate(eng_ctx *c, int i) {
    eng_seq *s = &c->seqs[i];
    c->cur = i;
    c->key_cache = s->key_cache;
    c->value_cache = s->value_cache;
    c->tokens = s->tokens;
    c->n_past = s->n_past;
    c->n_logits = 0;
    s->last_used = ++c->clock;
}

int eng_ctx_new(const eng_model *m, const eng_ctx_params *params,
                eng_ctx **out) {
    *out = NULL;
    const eng_config *p = &m->cfg;
    eng_ctx *c = nib_calloc(1, sizeof *c);
    c->m = m;
    c->p = params ? *params : eng_ctx_default_params();
    if (c->p.n_ctx <= 0)
        c->p.n_ctx = NIB_MIN(p->n_ctx_train, 4096);
    if (c->p.n_batch <= 0)
        c->p.n_batch = 512;
    if (c->p.n_batch > c->p.n_ctx)
        c->p.n_batch = c->p.n_ctx;
    if (c->p.n_threads <= 0)
        c->p.n_threads = eng_physical_cores();
    if (c->p.kv_limit_mb <= 0)
        c->p.kv_limit_mb = 512;
    if (c->p.n_ctx > (1 << 20) || c->p.n_threads > 256) {
        nib_free(c);
        return NIB_EINVAL;
    }
    c->n_ctx = c->p.n_ctx;
    size_t nb = (size_t)c->p.n_batch;
    int q_dim = p->n_heads * p->head_dim, kv_dim = p->n_kv_heads * p->head_dim;
    size_t xb_w = (size_t)NIB_MAX(p->dim, q_dim);

    TRY_ALLOC(c->x, nb * p->dim, sizeof(float));
    TRY_ALLOC(c->xb, nb * xb_w, sizeof(float));
    TRY_ALLOC(c->xb2, nb * p->dim, sizeof(float));
    TRY_ALLOC(c->q, nb * q_dim, sizeof(float));
    TRY_ALLOC(c->k, nb * kv_dim, sizeof(float));
    TRY_ALLOC(c->v, nb * kv_dim, sizeof(float));
    const size_t ffn_nb = NIB_MIN(nb, (size_t)FFN_CHUNK);
    TRY_ALLOC(c->hb, ffn_nb * p->hidden_dim, sizeof(float));
    TRY_ALLOC(c->hb2, ffn_nb * p->hidden_dim, sizeof(float));
    TRY_ALLOC(c->rope_cs, nb * p->n_rot, sizeof(float));
    /* per thread: ENG_ATTN_SCRATCH(n_ctx, head_dim, GQA group,
     * min(ENG_ATTN_TOKENS = 8, n_batch)) of arch/attn_arch.h, the scratch
     * of one attention unit (attn.c) */
    TRY_ALLOC(c->att,
              (size_t)c->p.n_threads *
                  (NIB_MIN(nb, 8) * (size_t)(p->n_heads / p->n_kv_heads) *
                       (c->n_ctx + 16 + p->head_dim) +
                   32 * (size_t)p->head_dim + 16),
              sizeof(float));
    TRY_ALLOC(c->logits, (c->p.logits_all ? nb : 1) * p->n_vocab,
              sizeof(float));

    /* Scratch for the activations of the largest product converted to its
     * weight's vec_dot_type, packed or not (the down projection's input is
     * FFN_CHUNK tokens at most). */
    c->wdata_size =
        eng__act_stride(eng_row_size_packed(
            eng_type_traits[m->w.output.type].vec_dot_type, m->w.output.ne0)) *
        nb;
    for (int l = 0; l < p->n_layers; l++) {
        const eng_layer *L = &m->w.layers[l];
        const eng_tensor *ts[] = {&L->wq,     &L->wk,   &L->wv,    &L->wo,
                                  &L->w_gate, &L->w_up, &L->w_down};
        for (size_t i = 0; i < NIB_ARRAY_LEN(ts); i++)
            c->wdata_size = NIB_MAX(
                c->wdata_size,
                eng__act_stride(eng_row_size_packed(
                    eng_type_traits[ts[i]->type].vec_dot_type, ts[i]->ne0)) *
                    (ts[i] == &L->w_down ? ffn_nb : nb));
    }

    /* Buffers of the sgemm path, if some weight may take it (float weights
     * and a batch that can be large enough). */
    int64_t blas_cols = 0;
    for (int l = 0; l < p->n_layers; l++) {
        const eng_layer *L = &m->w.layers[l];
        const eng_tensor *ts[] = {&L->wq,     &L->wk,   &L->wv,    &L->wo,
                                  &L->w_gate, &L->w_up, &L->w_down};
        for (size_t i = 0; i < NIB_ARRAY_LEN(ts); i++) {
            int mb = eng_blas_min_batch(ts[i]->type);
            if (mb > 0 && (size_t)mb <= nb)
                blas_cols = NIB_MAX(blas_cols, ts[i]->ne0);
        }
    }
    {
        int mb = eng_blas_min_batch(m->w.output.type);
        if (mb > 0 && (size_t)mb <= nb)
            blas_cols = NIB_MAX(blas_cols, m->w.output.ne0);
    }
    if (blas_cols > 0) {
        c->blas_w_floats = (size_t)ENG_BLAS_ROWS * (size_t)blas_cols;
        TRY_ALLOC(c->blas_x, nb * (size_t)blas_cols, sizeof(float));
        TRY_ALLOC(c->blas_w, (size_t)c->p.n_threads * c->blas_w_floats,
                  sizeof(float));
        eng_blas_init();
    }
    TRY_ALLOC(c->wdata_mem, c->wdata_size + 63, 1);
    c->wdata = (void *)(((uintptr_t)c->wdata_mem + 63) & ~(uintptr_t)63);

    /* the first sequence (key 0) */
    c->seq_bytes =
        (size_t)p->n_layers * c->n_ctx * kv_dim * 2 * sizeof(eng_fp16) +
        (size_t)c->n_ctx * sizeof(int32_t);
    TRY_ALLOC(c->seqs, 1, sizeof(eng_seq));
    if (seq_alloc(c, &c->seqs[0], 0) < 0)
        goto oom;
    c->n_seqs = 1;
    seq_activate(c, 0);

    c->pool = eng_pool_new(c->p.n_threads);
    *out = c;
    return 0;
oom:
    eng_ctx_delete(c);
    return NIB_ENOMEM;
}

void eng_ctx_delete(eng_ctx *c) {
    if (!c)
        return;
    eng_pool_delete(c->pool);
    nib_free(c->x);
    nib_free(c->xb);
    nib_free(c->xb2);
    nib_free(c->q);
    nib_free(c->k);
    nib_free(c->v);
    nib_free(c->hb);
    nib_free(c->hb2);
    nib_free(c->rope_cs);
    nib_free(c->att);
    nib_free(c->logits);
    nib_free(c->wdata_mem);
    nib_free(c->blas_x);
    nib_free(c->blas_w);
    for (int i = 0; i < c->n_seqs; i++)
        seq_free(&c->seqs[i]);
    nib_free(c->seqs);
    nib_free(c);
}

/* ---- sequences ----------------------------------------------------------- */

int eng_ctx_use_seq(eng_ctx *c, uint64_t key) {
    c->seqs[c->cur].n_past = c->n_past;
    for (int i = 0; i < c->n_seqs; i++) {
        if (c->seqs[i].key == key) {
            seq_activate(c, i);
            return 0;
        }
    }
    /* Make room: drop least recently used sequences (never the current
     * one) while a new one would break the limit. */
    size_t limit = (size_t)c->p.kv_limit_mb << 20;
    while (c->n_seqs > 1 && (size_t)(c->n_seqs + 1) * c->seq_bytes > limit) {
        int lru = -1;
        for (int i = 0; i < c->n_seqs; i++)
            if (i != c->cur &&
                (lru < 0 || c->seqs[i].last_used < c->seqs[lru].last_used))
                lru = i;
        seq_free(&c->seqs[lru]);
        c->seqs[lru] = c->seqs[c->n_seqs - 1];
        if (c->cur == c->n_seqs - 1)
            c->cur = lru;
        c->n_seqs--;
    }
    eng_seq *grown =
        nib_try_realloc(c->seqs, (size_t)(c->n_seqs + 1) * sizeof(eng_seq));
    if (!grown)
        return NIB_ENOMEM;
    c->seqs = grown;
    int r = seq_alloc(c, &c->seqs[c->n_seqs], key);
    if (r < 0) {
        seq_activate(c, c->cur); /* realloc may have moved the aliases */
        return r;
    }
    c->n_seqs++;
    seq_activate(c, c->n_seqs - 1);
    return 0;
}

int eng_ctx_n_seqs(const eng_ctx *c) {
    return c->n_seqs;
}

void eng_ctx_set_abort(eng_ctx *c, bool (*fn)(void *ud), void *ud) {
    c->abort_fn = fn;
    c->abort_ud = ud;
}

size_t eng_ctx_kv_bytes(const eng_ctx *c) {
    return (size_t)c->n_seqs * c->seq_bytes;
}

/* ---- evaluation ---------------------------------------------------------- */

int eng_eval(eng_ctx *c, const int32_t *tokens, int n) {
    if (n <= 0)
        return n == 0 ? 0 : NIB_EINVAL;
    if (n > c->n_ctx - c->n_past)
        return NIB_ECTXFULL;
    for (int i = 0; i < n; i++)
        if (tokens[i] < 0 || tokens[i] >= c->m->cfg.n_vocab)
            return NIB_EINVAL;
    for (int i = 0; i < n; i += c->p.n_batch) {
        int chunk = NIB_MIN(c->p.n_batch, n - i);
        int r = eng_forward(c, tokens + i, chunk, c->p.logits_all);
        if (r < 0) {
            c->seqs[c->cur].n_past = c->n_past;
            return r;
        }
    }
    c->seqs[c->cur].n_past = c->n_past;
    return 0;
}

/* Move the cached K/V of positions [from, from + len) to [to, to + len),
 * rotating the keys by the position change. RoPE rotations compose, so a
 * key rotated for position p becomes the key for p + delta after one more
 * rotation by delta; only the fp16 rounding of the stored key differs from
 * computing it afresh. */
static void kv_move(eng_ctx *c, int from, int to, int len) {
    const eng_config *p = &c->m->cfg;
    int kv_dim = p->n_kv_heads * p->head_dim;
    int delta = to - from;
    float tmp[1024]; /* one head; the loader caps head_dim at 1024 */
    for (int l = 0; l < p->n_layers; l++) {
        size_t base = (size_t)l * c->n_ctx * kv_dim;
        eng_fp16 *k = c->key_cache + base, *v = c->value_cache + base;
        memmove(k + (size_t)to * kv_dim, k + (size_t)from * kv_dim,
                (size_t)len * kv_dim * sizeof(eng_fp16));
        memmove(v + (size_t)to * kv_dim, v + (size_t)from * kv_dim,
                (size_t)len * kv_dim * sizeof(eng_fp16));
        if (delta == 0)
            continue;
        for (int i = 0; i < len; i++) {
            for (int h = 0; h < p->n_kv_heads; h++) {
                eng_fp16 *head =
                    k + (size_t)(to + i) * kv_dim + h * p->head_dim;
                for (int d = 0; d < p->head_dim; d++)
                    tmp[d] = eng_fp16_to_fp32(head[d]);
                rope(tmp, 1, p->head_dim, delta, p);
                for (int d = 0; d < p->head_dim; d++)
                    head[d] = eng_fp32_to_fp16(tmp[d]);
            }
        }
    }
    memmove(c->tokens + to, c->tokens + from, (size_t)len * sizeof(int32_t));
}

int eng_eval_reuse(eng_ctx *c, const int32_t *tokens, int n, int min_chunk,
                   eng_reuse_stats *st) {
    eng_reuse_stats s = {0};
    if (n <= 0 || n > c->n_ctx)
        return n <= 0 ? NIB_EINVAL : NIB_ECTXFULL;
    for (int i = 0; i < n; i++)
        if (tokens[i] < 0 || tokens[i] >= c->m->cfg.n_vocab)
            return NIB_EINVAL;
    const int32_t *old = c->tokens;
    int n_old = c->n_past;

    /* Longest common prefix, keeping at least the last token to evaluate:
     * its logits are the point of the call. */
    int pre = 0;
    while (pre < n_old && pre < n - 1 && old[pre] == tokens[pre])
        pre++;

    /* Longest common suffix after the prefix in both streams: after a
     * one-line edit, or a keystroke in a FIM prompt's prefix part, it is
     * everything past the edit, shifted by the change in length. */
    int suf = 0;
    if (min_chunk > 0) {
        while (suf < n_old - pre && suf < n - pre &&
               old[n_old - 1 - suf] == tokens[n - 1 - suf])
            suf++;
        if (suf < min_chunk)
            suf = 0;
    }

    int r;
    if (suf > 0) {
        /* old [n_old - suf, n_old) -> new [n - suf, n); the last of them is
         * evaluated again for its logits. */
        int from = n_old - suf, to = n - suf;
        int keep = suf - 1;
        if (keep > 0 && to != from)
            kv_move(c, from, to, keep);
        s.n_shifted = to != from ? keep : 0;
        c->n_past = pre;
        if (to > pre && (r = eng_eval(c, tokens + pre, to - pre)) < 0)
            return r;
        /* the moved run (its tokens moved with it) follows the middle */
        c->n_past = to + keep;
        if ((r = eng_eval(c, tokens + n - 1, 1)) < 0)
            return r;
        s.n_reused = pre + keep;
        s.n_evaluated = (to - pre) + 1;
    } else {
        c->n_past = pre;
        if ((r = eng_eval(c, tokens + pre, n - pre)) < 0)
            return r;
        s.n_reused = pre;
        s.n_evaluated = n - pre;
    }
    c->seqs[c->cur].n_past = c->n_past;
    if (st)
        *st = s;
    return 0;
}

const float *eng_ctx_logits(const eng_ctx *c, int i) {
    if (c->n_logits == 0)
        return NULL;
    if (i < 0)
        i = c->n_logits - 1;
    else if (!c->logits_all_rows || i >= c->n_logits)
        return NULL;
    return c->logits + (size_t)i * c->m->cfg.n_vocab;
}

int eng_ctx_n_past(const eng_ctx *c) {
    return c->n_past;
}
const int32_t *eng_ctx_tokens(const eng_ctx *c) {
    return c->tokens;
}
int eng_ctx_n_ctx(const eng_ctx *c) {
    return c->n_ctx;
}
int eng_ctx_n_vocab(const eng_ctx *c) {
    return c->m->cfg.n_vocab;
}

void eng_ctx_truncate(eng_ctx *c, int n) {
    if (n < 0)
        n = 0;
    if (n < c->n_past) {
        c->n_past = n;
        c->n_logits = 0;
        c->seqs[c->cur].n_past = n;
    }
}
