/*
 * model.c — turn a parsed GGUF into a runnable model: read the
 * hyper-parameters of a supported architecture, check every tensor's shape
 * and type against them, and build weight views into the mapping (weights
 * are never copied; only the small norm and bias vectors are converted to
 * F32 copies).
 */
#include "internal.h"
#include "vocab.h"

#include <stdio.h>
#include <string.h>

typedef struct {
    const char *name;
    bool rope_neox;
    bool has_qkv_bias;
} arch_info;

static const arch_info arch_table[ENG_ARCH_COUNT] = {
    [ENG_ARCH_LLAMA] = {"llama", false, false},
    [ENG_ARCH_QWEN2] = {"qwen2", true, true},
};

/* ---- metadata helpers ---------------------------------------------------- */

typedef struct {
    const eng_gguf *g;
    const char *arch;
    char *err;
    size_t err_size;
} loader;

static int get_arch_u32(loader *L, const char *suffix, uint32_t *out,
                        bool required, uint32_t def) {
    char key[128];
    snprintf(key, sizeof key, "%s.%s", L->arch, suffix);
    int r = eng_gguf_get_u32(L->g, key, out);
    if (r == NIB_ENOENT && !required) {
        *out = def;
        return 0;
    }
    if (r == NIB_ENOENT) {
        nib_errf(L->err, L->err_size, "missing metadata key %s", key);
        return NIB_EBADMODEL;
    }
    if (r < 0) {
        nib_errf(L->err, L->err_size, "metadata key %s: %s", key,
                 r == NIB_ERANGE ? "value out of range" : "wrong type");
        return NIB_EBADMODEL;
    }
    return 0;
}

static int get_arch_f32(loader *L, const char *suffix, float *out, float def) {
    char key[128];
    snprintf(key, sizeof key, "%s.%s", L->arch, suffix);
    int r = eng_gguf_get_f32(L->g, key, out);
    if (r == NIB_ENOENT) {
        *out = def;
        return 0;
    }
    if (r < 0) {
        nib_errf(L->err, L->err_size, "metadata key %s: wrong type", key);
        return NIB_EBADMODEL;
    }
    return 0;
}

/* Find a tensor and check its type is runnable and its shape is
 * [ne0, ne1] (ne1 = 1 for vectors). */
static int get_tensor(loader *L, const char *name, int64_t ne0, int64_t ne1,
                      bool required, eng_tensor *out) {
    memset(out, 0, sizeof *out);
    const eng_gguf_tensor *t = eng_gguf_find_tensor(L->g, name);
    if (!t) {
        if (!required)
            return 0;
        nib_errf(L->err, L->err_size, "missing tensor %s", name);
        return NIB_EBADMODEL;
    }
    const eng_type_traits_t *tt = &eng_type_traits[t->type];
    if (!tt->supported) {
        nib_errf(L->err, L->err_size,
                 "tensor %s has type %s, which nib does not support "
                 "(supported: F32 F16 BF16 Q8_0 Q4_0 Q4_1 Q5_0 Q5_1 Q4_K "
                 "Q5_K Q6_K)",
                 name, tt->name);
        return NIB_EUNSUPPORTED;
    }
    int64_t rows = 1;
    for (uint32_t d = 1; d < t->n_dims; d++)
        rows *= (int64_t)t->ne[d];
    if ((int64_t)t->ne[0] != ne0 || rows != ne1 ||
        (ne1 > 1 && t->n_dims != 2)) {
        nib_errf(L->err, L->err_size,
                 "tensor %s has shape [%llu, %llu], expected [%lld, %lld]",
                 name, (unsigned long long)t->ne[0], (unsigned long long)rows,
                 (long long)ne0, (long long)ne1);
        return NIB_EBADMODEL;
    }
    out->type = (eng_type)t->type;
    out->ne0 = ne0;
    out->ne1 = ne1;
    out->row_bytes = eng_row_size(out->type, ne0);
    out->data = t->data;
    out->name = t->name;
    return 0;
}

/* A 1-D tensor converted to a new F32 array (NULL when absent and not
 * required). */
static int get_vector(loader *L, const char *name, int64_t n, bool required,
                      float **out) {
    eng_tensor t;
    *out = NULL;
    int r = get_tensor(L, name, n, 1, required, &t);
    if (r < 0 || !t.data)
        return r;
    if (n % eng_type_traits[t.type].blck_size != 0) {
        nib_errf(L->err, L->err_size, "tensor %s: bad length", name);
        return NIB_EBADMODEL;
    }
    *out = nib_malloc((size_t)n * sizeof(float));
    eng_tensor_get_row(&t, 0, *out);
    return 0;
}

void eng_tensor_get_row(const eng_tensor *t, int64_t row, float *out) {
    const uint8_t *src = (const uint8_t *)t->data + (size_t)row * t->row_bytes;
    eng_type_traits[t->type].to_float(src, out, t->ne0);
}

/* ---- loading ------------------------------------------------------------- */

static int load_config(loader *L, eng_model *m) {
    eng_config *c = &m->cfg;
    uint32_t v;
    int r;
    if ((r = get_arch_u32(L, "embedding_length", &v, true, 0)) < 0)
        return r;
    c->dim = (int)v;
    if ((r = get_arch_u32(L, "block_count", &v, true, 0)) < 0)
        return r;
    c->n_layers = (int)v;
    if ((r = get_arch_u32(L, "feed_forward_length", &v, true, 0)) < 0)
        return r;
    c->hidden_dim = (int)v;
    if ((r = get_arch_u32(L, "attention.head_count", &v, true, 0)) < 0)
        return r;
    c->n_heads = (int)v;
    if ((r = get_arch_u32(L, "attention.head_count_kv", &v, false,
                          (uint32_t)c->n_heads)) < 0)
        return r;
    c->n_kv_heads = (int)v;
    if ((r = get_arch_u32(L, "context_length", &v, false, 2048)) < 0)
        return r;
    c->n_ctx_train = (int)v;

    /* Sizes are bounded so that products below cannot overflow an int and a
     * hostile file cannot make the state allocation absurd. */
    if (c->dim <= 0 || c->dim > 65536 || c->n_layers <= 0 ||
        c->n_layers > 1024 || c->hidden_dim <= 0 || c->hidden_dim > 1 << 20 ||
        c->n_heads <= 0 || c->n_heads > 1024 || c->n_kv_heads <= 0 ||
        c->n_kv_heads > c->n_heads || c->n_heads % c->n_kv_heads != 0) {
        nib_errf(L->err, L->err_size,
                 "implausible hyper-parameters: dim %d, layers %d, ffn %d, "
                 "heads %d/%d",
                 c->dim, c->n_layers, c->hidden_dim, c->n_heads, c->n_kv_heads);
        return NIB_EBADMODEL;
    }
    if (c->n_ctx_train <= 0)
        c->n_ctx_train = 2048;

    uint32_t head_dim;
    if ((r = get_arch_u32(L, "attention.key_length", &head_dim, false,
                          (uint32_t)(c->dim / c->n_heads))) < 0)
        return r;
    c->head_dim = (int)head_dim;
    if (c->head_dim <= 0 || c->head_dim > 1024 || c->head_dim % 2) {
        nib_errf(L->err, L->err_size, "implausible head size %d", c->head_dim);
        return NIB_EBADMODEL;
    }
    uint32_t n_rot;
    if ((r = get_arch_u32(L, "rope.dimension_count", &n_rot, false,
                          head_dim)) < 0)
        return r;
    c->n_rot = (int)n_rot;
    if (c->n_rot <= 0 || c->n_rot > c->head_dim || c->n_rot % 2) {
        nib_errf(L->err, L->err_size, "implausible rope dimension %d",
                 c->n_rot);
        return NIB_EBADMODEL;
    }
    if ((r = get_arch_f32(L, "rope.freq_base", &c->rope_base, 10000.0f)) < 0)
        return r;
    float factor = 1.0f;
    char key[128];
    snprintf(key, sizeof key, "%s.rope.scaling.type", L->arch);
    eng_str stype;
    if (eng_gguf_get_str(L->g, key, &stype) == 0 &&
        !eng_str_eq(stype, "none")) {
        if (!eng_str_eq(stype, "linear")) {
            nib_errf(L->err, L->err_size,
                     "rope scaling type \"%.*s\" is not supported (only "
                     "linear)",
                     (int)NIB_MIN(stype.len, 32), stype.ptr);
            return NIB_EUNSUPPORTED;
        }
        if ((r = get_arch_f32(L, "rope.scaling.factor", &factor, 1.0f)) < 0)
            return r;
    } else if ((r = get_arch_f32(L, "rope.scale_linear", &factor, 1.0f)) < 0) {
        return r;
    }
    if (!(factor > 0.0f) || !(c->rope_base > 0.0f)) {
        nib_errf(L->err, L->err_size, "invalid rope base or scale");
        return NIB_EBADMODEL;
    }
    c->rope_freq_scale = 1.0f / factor;
    if ((r = get_arch_f32(L, "attention.layer_norm_rms_epsilon", &c->norm_eps,
                          1e-5f)) < 0)
        return r;
    c->rope_neox = arch_table[c->arch].rope_neox;
    return 0;
}

static int load_weights(loader *L, eng_model *m) {
    eng_config *c = &m->cfg;
    eng_weights *w = &m->w;
    const eng_gguf_tensor *te = eng_gguf_find_tensor(L->g, "token_embd.weight");
    if (!te) {
        nib_errf(L->err, L->err_size, "missing tensor token_embd.weight");
        return NIB_EBADMODEL;
    }
    if (te->n_dims != 2 || te->ne[1] == 0 || te->ne[1] > (1u << 24)) {
        nib_errf(L->err, L->err_size,
                 "tensor token_embd.weight: implausible shape");
        return NIB_EBADMODEL;
    }
    c->n_vocab = (int)te->ne[1];
    int r;
    int q_dim = c->n_heads * c->head_dim, kv_dim = c->n_kv_heads * c->head_dim;
    if ((r = get_tensor(L, "token_embd.weight", c->dim, c->n_vocab, true,
                        &w->tok_embd)) < 0)
        return r;
    if ((r = get_vector(L, "output_norm.weight", c->dim, true, &w->out_norm)) <
        0)
        return r;
    if ((r = get_tensor(L, "output.weight", c->dim, c->n_vocab, false,
                        &w->output)) < 0)
        return r;
    w->tied = w->output.data == NULL;
    if (w->tied)
        w->output = w->tok_embd;

    w->layers = nib_calloc((size_t)c->n_layers, sizeof(eng_layer));
    bool bias = arch_table[c->arch].has_qkv_bias;
    for (int i = 0; i < c->n_layers; i++) {
        eng_layer *l = &w->layers[i];
        char n[96];
#define T(field, suffix, ne0, ne1)                                             \
    snprintf(n, sizeof n, "blk.%d.%s", i, suffix);                             \
    if ((r = get_tensor(L, n, ne0, ne1, true, &l->field)) < 0)                 \
        return r;
#define V(field, suffix, len, req)                                             \
    snprintf(n, sizeof n, "blk.%d.%s", i, suffix);                             \
    if ((r = get_vector(L, n, len, req, &l->field)) < 0)                       \
        return r;
        V(attn_norm, "attn_norm.weight", c->dim, true);
        T(wq, "attn_q.weight", c->dim, q_dim);
        T(wk, "attn_k.weight", c->dim, kv_dim);
        T(wv, "attn_v.weight", c->dim, kv_dim);
        T(wo, "attn_output.weight", q_dim, c->dim);
        V(bq, "attn_q.bias", q_dim, bias);
        V(bk, "attn_k.bias", kv_dim, bias);
        V(bv, "attn_v.bias", kv_dim, bias);
        V(ffn_norm, "ffn_norm.weight", c->dim, true);
        T(w_gate, "ffn_gate.weight", c->dim, c->hidden_dim);
        T(w_up, "ffn_up.weight", c->dim, c->hidden_dim);
        T(w_down, "ffn_down.weight", c->hidden_dim, c->dim);
#undef T
#undef V
    }

    /* Totals for `nib info` and the benchmark's bytes-per-token figure. */
    uint64_t type_bytes[ENG_TYPE_COUNT] = {0};
    for (uint64_t i = 0; i < L->g->n_tensors; i++) {
        const eng_gguf_tensor *t = &L->g->tensors[i];
        m->n_params += t->n_elements;
        m->weight_bytes += t->n_bytes;
        type_bytes[t->type] += t->n_bytes;
    }
    int best = ENG_TYPE_F32;
    for (int t = 0; t < ENG_TYPE_COUNT; t++)
        if (type_bytes[t] > type_bytes[best])
            best = t;
    m->ftype = (char *)eng_type_traits[best].name;
    return 0;
}

static void free_weights(eng_model *m) {
    if (m->w.layers) {
        for (int i = 0; i < m->cfg.n_layers; i++) {
            eng_layer *l = &m->w.layers[i];
            nib_free(l->attn_norm);
            nib_free(l->ffn_norm);
            nib_free(l->bq);
            nib_free(l->bk);
            nib_free(l->bv);
        }
    }
    nib_free(m->w.layers);
    nib_free(m->w.out_norm);
}

int eng_model_load(const char *path, eng_model **out, char *err,
                   size_t err_size) {
    *out = NULL;
    eng_quant_init();
    eng_model *m = nib_calloc(1, sizeof *m);
    int r = eng_gguf_open(path, &m->gguf, err, err_size);
    if (r < 0)
        goto fail;

    eng_str arch;
    if (eng_gguf_get_str(m->gguf, "general.architecture", &arch) < 0) {
        nib_errf(err, err_size, "missing metadata key general.architecture");
        r = NIB_EBADMODEL;
        goto fail;
    }
    int a = -1;
    for (int i = 0; i < ENG_ARCH_COUNT; i++)
        if (eng_str_eq(arch, arch_table[i].name))
            a = i;
    if (a < 0) {
        nib_errf(err, err_size,
                 "architecture \"%.*s\" is not supported (supported: llama, "
                 "qwen2)",
                 (int)NIB_MIN(arch.len, 64), arch.ptr);
        r = NIB_EUNSUPPORTED;
        goto fail;
    }
    m->cfg.arch = (eng_arch)a;
    eng_str name;
    m->name = eng_gguf_get_str(m->gguf, "general.name", &name) == 0
                  ? nib_strndup(name.ptr, name.len)
                  : nib_strdup("");

    loader L = {m->gguf, arch_table[a].name, err, err_size};
    if ((r = load_config(&L, m)) < 0)
        goto fail;
    if ((r = load_weights(&L, m)) < 0)
        goto fail;
    if ((r = eng_vocab_load(m->gguf, &m->vocab, err, err_size)) < 0)
        goto fail;
    if (eng_vocab_n_tokens(m->vocab) > m->cfg.n_vocab) {
        nib_errf(err, err_size,
                 "vocabulary has %d tokens but the output matrix only %d rows",
                 eng_vocab_n_tokens(m->vocab), m->cfg.n_vocab);
        r = NIB_EBADMODEL;
        goto fail;
    }
    *out = m;
    return 0;
fail:
    eng_model_delete(m);
    return r;
}

void eng_model_delete(eng_model *m) {
    if (!m)
        return;
    free_weights(m);
    eng_vocab_delete(m->vocab);
    eng_gguf_close(m->gguf);
    nib_free(m->name);
    nib_free(m);
}

const eng_vocab *eng_model_vocab(const eng_model *m) { return m->vocab; }

void eng_model_get_info(const eng_model *m, eng_model_info *info) {
    const eng_config *c = &m->cfg;
    *info = (eng_model_info){
        .arch = arch_table[c->arch].name,
        .name = m->name,
        .n_vocab = c->n_vocab,
        .n_ctx_train = c->n_ctx_train,
        .n_embd = c->dim,
        .n_layer = c->n_layers,
        .n_head = c->n_heads,
        .n_head_kv = c->n_kv_heads,
        .n_ff = c->hidden_dim,
        .head_dim = c->head_dim,
        .rope_base = c->rope_base,
        .rope_scale = 1.0f / c->rope_freq_scale,
        .norm_eps = c->norm_eps,
        .n_params = m->n_params,
        .weight_bytes = m->weight_bytes,
        .ftype = m->ftype,
    };
}

void eng_model_print_info(const eng_model *m, FILE *f) {
    eng_model_info i;
    eng_model_get_info(m, &i);
    fprintf(f, "name:            %s\n", i.name);
    fprintf(f, "architecture:    %s\n", i.arch);
    fprintf(f, "parameters:      %.2f M\n", (double)i.n_params / 1e6);
    fprintf(f, "weights:         %.2f MiB (mostly %s)\n",
            (double)i.weight_bytes / (1024.0 * 1024.0), i.ftype);
    fprintf(f, "context length:  %d\n", i.n_ctx_train);
    fprintf(f, "embedding:       %d\n", i.n_embd);
    fprintf(f, "layers:          %d\n", i.n_layer);
    fprintf(f, "heads:           %d (kv %d, head size %d)\n", i.n_head,
            i.n_head_kv, i.head_dim);
    fprintf(f, "feed-forward:    %d\n", i.n_ff);
    fprintf(f, "rope:            %s, base %g, linear scale %g, %d dims\n",
            m->cfg.rope_neox ? "neox" : "normal", (double)i.rope_base,
            (double)i.rope_scale, m->cfg.n_rot);
    fprintf(f, "rms norm eps:    %g\n", (double)i.norm_eps);
    fprintf(f, "output:          %s\n",
            m->w.tied ? "tied to token embeddings" : "separate matrix");
    fprintf(f, "output rows:     %d\n", i.n_vocab);

    /* Tensor types: count and bytes of each. */
    uint64_t count[ENG_TYPE_COUNT] = {0}, bytes[ENG_TYPE_COUNT] = {0};
    for (uint64_t t = 0; t < m->gguf->n_tensors; t++) {
        count[m->gguf->tensors[t].type]++;
        bytes[m->gguf->tensors[t].type] += m->gguf->tensors[t].n_bytes;
    }
    fprintf(f, "tensor types:   ");
    for (int t = 0; t < ENG_TYPE_COUNT; t++)
        if (count[t])
            fprintf(f, " %s x%llu (%.2f MiB)", eng_type_traits[t].name,
                    (unsigned long long)count[t],
                    (double)bytes[t] / (1024.0 * 1024.0));
    fprintf(f, "\n");
    eng_vocab_print_info(m->vocab, f);
}
