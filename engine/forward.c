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

/* ---- small kernels (output first, as in llama2.c) ----------------------- */

static void rmsnorm(float *o, const float *x, const float *w, int n,
                    float eps) {
    /* Sum in double as ggml does, so long rows keep their precision. */
    double ss = 0.0;
    for (int i = 0; i < n; i++)
        ss += (double)(x[i] * x[i]);
    float scale = 1.0f / sqrtf((float)(ss / n) + eps);
    for (int i = 0; i < n; i++)
        o[i] = (x[i] * scale) * w[i];
}

static void add_bias(float *x, const float *b, int n) {
    for (int i = 0; i < n; i++)
        x[i] += b[i];
}

/* Rotate the first n_rot dims of each of n_heads heads of size head_dim by
 * angles pos * freq_scale * base^(-2i/n_rot). */
static void rope(float *x, int n_heads, int head_dim, int n_rot, int pos,
                 const eng_config *c) {
    float theta_scale = powf(c->rope_base, -2.0f / (float)n_rot);
    for (int h = 0; h < n_heads; h++) {
        float *v = x + h * head_dim;
        float theta = (float)pos * c->rope_freq_scale;
        for (int i = 0; i < n_rot; i += 2) {
            float cs = cosf(theta), sn = sinf(theta);
            int a = c->rope_neox ? i / 2 : i;
            int b = c->rope_neox ? i / 2 + n_rot / 2 : i + 1;
            float x0 = v[a], x1 = v[b];
            v[a] = x0 * cs - x1 * sn;
            v[b] = x0 * sn + x1 * cs;
            theta *= theta_scale;
        }
    }
}

static void swiglu(float *o, const float *gate, const float *up, int n) {
    for (int i = 0; i < n; i++) {
        float g = gate[i];
        o[i] = g / (1.0f + eng__expf_vec(0.0f - g)) * up[i];
    }
}

/* ---- forward ------------------------------------------------------------ */

int eng_forward(eng_ctx *c, const int32_t *tokens, int n, bool all_logits) {
    const eng_model *m = c->m;
    const eng_config *p = &m->cfg;
    const eng_weights *w = &m->w;
    int dim = p->dim, hd = p->head_dim, hidden = p->hidden_dim;
    int q_dim = p->n_heads * hd, kv_dim = p->n_kv_heads * hd;
    int pos0 = c->n_past;
    float *x = c->x;

    /* token embeddings */
    for (int b = 0; b < n; b++)
        eng_tensor_get_row(&w->tok_embd, tokens[b], x + (size_t)b * dim);

    for (int l = 0; l < p->n_layers; l++) {
        const eng_layer *L = &w->layers[l];

        /* attention rmsnorm */
        for (int b = 0; b < n; b++)
            rmsnorm(c->xb + (size_t)b * dim, x + (size_t)b * dim, L->attn_norm,
                    dim, p->norm_eps);

        /* qkv projections (+ bias for qwen2) */
        eng_matmul(c, c->q, &L->wq, c->xb, n);
        eng_matmul(c, c->k, &L->wk, c->xb, n);
        eng_matmul(c, c->v, &L->wv, c->xb, n);
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
            rope(q, p->n_heads, hd, p->n_rot, pos0 + b, p);
            rope(k, p->n_kv_heads, hd, p->n_rot, pos0 + b, p);

            /* append to the KV cache */
            size_t off = ((size_t)l * c->n_ctx + pos0 + b) * kv_dim;
            for (int i = 0; i < kv_dim; i++) {
                c->key_cache[off + i] = eng_fp32_to_fp16(k[i]);
                c->value_cache[off + i] = eng_fp32_to_fp16(v[i]);
            }
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

        /* SwiGLU feed-forward and residual */
        eng_matmul(c, c->hb, &L->w_gate, c->xb, n);
        eng_matmul(c, c->hb2, &L->w_up, c->xb, n);
        for (int b = 0; b < n; b++)
            swiglu(c->hb + (size_t)b * hidden, c->hb + (size_t)b * hidden,
                   c->hb2 + (size_t)b * hidden, hidden);
        eng_matmul(c, c->xb2, &L->w_down, c->hb, n);
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

/* ---- context -------------------------------------------------------------- */

eng_ctx_params eng_ctx_default_params(void) {
    return (eng_ctx_params){
        .n_ctx = 0, .n_batch = 512, .n_threads = 0, .logits_all = false};
}

#define TRY_ALLOC(ptr, n, size)                                                \
    do {                                                                       \
        (ptr) = nib_try_calloc((n), (size));                                   \
        if (!(ptr))                                                            \
            goto oom;                                                          \
    } while (0)

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
    TRY_ALLOC(c->hb, nb * p->hidden_dim, sizeof(float));
    TRY_ALLOC(c->hb2, nb * p->hidden_dim, sizeof(float));
    /* per thread: n_ctx scores, then the query head in fp16 */
    TRY_ALLOC(c->att, (size_t)c->p.n_threads * (c->n_ctx + p->head_dim + 16),
              sizeof(float));
    TRY_ALLOC(c->logits, (c->p.logits_all ? nb : 1) * p->n_vocab,
              sizeof(float));
    size_t kv = (size_t)p->n_layers * c->n_ctx * kv_dim;
    TRY_ALLOC(c->key_cache, kv, sizeof(eng_fp16));
    TRY_ALLOC(c->value_cache, kv, sizeof(eng_fp16));
    TRY_ALLOC(c->tokens, (size_t)c->n_ctx, sizeof(int32_t));

    /* Scratch for activations converted to the widest vec_dot_type row any
     * weight of this model needs. */
    size_t row = 0;
    const eng_tensor *all[] = {&m->w.output};
    for (size_t i = 0; i < NIB_ARRAY_LEN(all); i++)
        row = NIB_MAX(row, eng_row_size(
                               eng_type_traits[all[i]->type].vec_dot_type,
                               all[i]->ne0));
    for (int l = 0; l < p->n_layers; l++) {
        const eng_layer *L = &m->w.layers[l];
        const eng_tensor *ts[] = {&L->wq,     &L->wk,   &L->wv,    &L->wo,
                                  &L->w_gate, &L->w_up, &L->w_down};
        for (size_t i = 0; i < NIB_ARRAY_LEN(ts); i++)
            row = NIB_MAX(row, eng_row_size(
                                   eng_type_traits[ts[i]->type].vec_dot_type,
                                   ts[i]->ne0));
    }
    c->wdata_size = row * nb;
    TRY_ALLOC(c->wdata, c->wdata_size, 1);

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
    nib_free(c->att);
    nib_free(c->logits);
    nib_free(c->key_cache);
    nib_free(c->value_cache);
    nib_free(c->tokens);
    nib_free(c->wdata);
    nib_free(c);
}

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
        if (r < 0)
            return r;
    }
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

int eng_ctx_n_past(const eng_ctx *c) { return c->n_past; }
const int32_t *eng_ctx_tokens(const eng_ctx *c) { return c->tokens; }
int eng_ctx_n_ctx(const eng_ctx *c) { return c->n_ctx; }
int eng_ctx_n_vocab(const eng_ctx *c) { return c->m->cfg.n_vocab; }

void eng_ctx_truncate(eng_ctx *c, int n) {
    if (n < 0)
        n = 0;
    if (n < c->n_past) {
        c->n_past = n;
        c->n_logits = 0;
    }
}
