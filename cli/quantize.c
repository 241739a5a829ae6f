/*
 * quantize.c — `nib quantize IN.gguf OUT.gguf TYPE`: re-encode a model's
 * weights as llama.cpp's quantizer (llama-quantize) does, and the helpers
 * `nib mkmodel` shares with it (tools.h).
 *
 * The output matches llama-quantize's byte for byte when no importance
 * matrix is used: the same metadata (all of the input's, then
 * general.quantization_version and general.file_type moved to the end),
 * the same tensor order (outside-block tensors, then block by block, each
 * group sorted by name), the same per-tensor type mix, and the reference
 * quantizers of engine/quant.c, which reproduce ggml's.
 *
 * The model is streamed: each tensor is read from the mapped input a few
 * MiB of rows at a time, dequantized to floats, re-quantized on all cores
 * and appended to the output, and the input pages it used are released, so
 * memory stays flat whatever the model's size.
 */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <unistd.h>

#include "cli.h"
#include "tools.h"

/* ==== file types ========================================================== */

static const cli_ftype ftypes[] = {
    {"F32", CLI_FTYPE_ALL_F32, ENG_TYPE_F32},
    {"F16", CLI_FTYPE_F16, ENG_TYPE_F16},
    {"BF16", CLI_FTYPE_BF16, ENG_TYPE_BF16},
    {"Q8_0", CLI_FTYPE_Q8_0, ENG_TYPE_Q8_0},
    {"Q4_0", CLI_FTYPE_Q4_0, ENG_TYPE_Q4_0},
    {"Q4_1", CLI_FTYPE_Q4_1, ENG_TYPE_Q4_1},
    {"Q5_0", CLI_FTYPE_Q5_0, ENG_TYPE_Q5_0},
    {"Q5_1", CLI_FTYPE_Q5_1, ENG_TYPE_Q5_1},
    {"Q4_K_S", CLI_FTYPE_Q4_K_S, ENG_TYPE_Q4_K},
    {"Q4_K_M", CLI_FTYPE_Q4_K_M, ENG_TYPE_Q4_K},
    {"Q5_K_S", CLI_FTYPE_Q5_K_S, ENG_TYPE_Q5_K},
    {"Q5_K_M", CLI_FTYPE_Q5_K_M, ENG_TYPE_Q5_K},
    {"Q6_K", CLI_FTYPE_Q6_K, ENG_TYPE_Q6_K},
};

const cli_ftype *cli_ftype_find(const char *name) {
    if (!strcasecmp(name, "Q4_K"))
        name = "Q4_K_M";
    else if (!strcasecmp(name, "Q5_K"))
        name = "Q5_K_M";
    for (size_t i = 0; i < NIB_ARRAY_LEN(ftypes); i++)
        if (!strcasecmp(name, ftypes[i].name))
            return &ftypes[i];
    return NULL;
}

const char *cli_ftype_names(void) {
    return "F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K_S, Q4_K_M, "
           "Q5_K_S, Q5_K_M, Q6_K";
}

/* ==== the type mix ======================================================== */

static bool is_quantized(eng_type t) {
    return eng_type_traits[t].blck_size > 1;
}

/* ggml_n_dims: trailing dimensions of 1 do not count. */
static uint32_t real_dims(uint32_t n_dims, const uint64_t *ne) {
    for (uint32_t i = n_dims; i > 1; i--)
        if (ne[i - 1] > 1)
            return i;
    return 1;
}

static bool ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && memcmp(s + n - m, suffix, m) == 0;
}

/* Tensors llama.cpp keeps as they are: anything not a matrix named
 * "...weight", norms, and the small or precision-critical matrices of other
 * architectures (listed so a file of theirs is not quietly damaged). */
static bool wants_quantizing(const char *name, uint32_t n_dims,
                             const uint64_t *ne) {
    static const char *const keep[] = {
        "_norm.weight",
        "ffn_gate_inp.weight",
        "altup",
        "laurel",
        "per_layer_model_proj",
        "ssm_conv1d.weight",
        "shortconv.conv.weight",
        "time_mix_first.weight",
        "time_mix_w0.weight",
        "time_mix_w1.weight",
        "time_mix_w2.weight",
        "time_mix_v0.weight",
        "time_mix_v1.weight",
        "time_mix_v2.weight",
        "time_mix_a0.weight",
        "time_mix_a1.weight",
        "time_mix_a2.weight",
        "time_mix_g1.weight",
        "time_mix_g2.weight",
        "time_mix_decay_w1.weight",
        "time_mix_decay_w2.weight",
        "time_mix_lerp_fused.weight",
        "attn_rel_b.weight",
    };
    if (!ends_with(name, "weight") || real_dims(n_dims, ne) < 2)
        return false;
    for (size_t i = 0; i < NIB_ARRAY_LEN(keep); i++)
        if (strstr(name, keep[i]))
            return false;
    return strcmp(name, "position_embd.weight") != 0 &&
           strcmp(name, "token_types.weight") != 0;
}

void cli_plan_init(cli_plan *p, const cli_ftype *ft, int n_layer,
                   const char *const *names, int64_t n) {
    *p = (cli_plan){.ft = ft, .n_layer = n_layer};
    for (int64_t i = 0; i < n; i++) {
        if (strstr(names[i], "attn_v.weight") ||
            strstr(names[i], "attn_qkv.weight") ||
            strstr(names[i], "attn_kv_b.weight"))
            p->n_attention_wv++;
        else if (!strcmp(names[i], "output.weight"))
            p->has_output = true;
    }
}

/* The layers of a K-quant mix that get more bits: the first and last
 * eighth, and every third one in between. */
static bool use_more_bits(int i_layer, int n_layers) {
    return i_layer < n_layers / 8 || i_layer >= 7 * n_layers / 8 ||
           (i_layer - n_layers / 8) % 3 == 2;
}

/* llama_tensor_get_type, restricted to the file types nib writes. */
static eng_type mix_type(cli_plan *p, const char *name, int64_t nx,
                         eng_type t) {
    const uint32_t ft = p->ft->ftype;
    const bool km = ft == CLI_FTYPE_Q4_K_M || ft == CLI_FTYPE_Q5_K_M;
    if (!strcmp(name, "output.weight") ||
        (!p->has_output && !strcmp(name, "token_embd.weight"))) {
        /* The output matrix decides every token: Q6_K unless the file is
         * Q8_0 already, Q8_0 when rows do not fit the default's blocks. */
        if (nx % eng_type_traits[t].blck_size != 0)
            t = ENG_TYPE_Q8_0;
        else if (t != ENG_TYPE_Q8_0)
            t = ENG_TYPE_Q6_K;
    } else if (!strcmp(name, "token_embd.weight") ||
               !strcmp(name, "per_layer_token_embd.weight")) {
        /* an untied embedding keeps the default type */
    } else if (strstr(name, "attn_v.weight")) {
        if (km && use_more_bits(p->i_attention_wv, p->n_attention_wv))
            t = ENG_TYPE_Q6_K;
        else if (ft == CLI_FTYPE_Q4_K_S && p->i_attention_wv < 4)
            t = ENG_TYPE_Q5_K;
        p->i_attention_wv++;
    } else if (strstr(name, "attn_k.weight") || strstr(name, "attn_q.weight")) {
        /* only the IQ mixes change these */
    } else if (strstr(name, "ffn_down")) {
        int i_layer = p->i_ffn_down, n_layer = p->n_layer;
        if (km && use_more_bits(i_layer, n_layer))
            t = ENG_TYPE_Q6_K;
        else if (ft == CLI_FTYPE_Q4_K_S && i_layer < n_layer / 8)
            t = ENG_TYPE_Q5_K;
        p->i_ffn_down++;
    } else if (strstr(name, "attn_output.weight")) {
        /* only the Q2/Q3 mixes and mixtures of experts change these */
    } else if (strstr(name, "attn_qkv.weight")) {
        if (ft == CLI_FTYPE_Q4_K_M)
            t = ENG_TYPE_Q5_K;
        else if (ft == CLI_FTYPE_Q5_K_M)
            t = ENG_TYPE_Q6_K;
    }
    return t;
}

int cli_plan_type(cli_plan *p, const char *name, uint32_t n_dims,
                  const uint64_t *ne, eng_type src, eng_type *out, char *err,
                  size_t err_size) {
    if (!wants_quantizing(name, n_dims, ne)) {
        *out = src;
        return 0;
    }
    eng_type t = p->ft->type;
    const int64_t nx = (int64_t)ne[0];
    if (!p->pure && is_quantized(t)) {
        t = mix_type(p, name, nx, t);
        if (nx % eng_type_traits[t].blck_size != 0) {
            /* llama.cpp's fallbacks for rows that are not a whole number of
             * 256-element super-blocks (Qwen2.5-0.5B's 896, for one). */
            eng_type fb;
            switch (t) {
            case ENG_TYPE_Q4_K:
                fb = ENG_TYPE_Q5_0;
                break;
            case ENG_TYPE_Q5_K:
                fb = ENG_TYPE_Q5_1;
                break;
            case ENG_TYPE_Q6_K:
                fb = ENG_TYPE_Q8_0;
                break;
            default:
                fb = ENG_TYPE_COUNT;
                break;
            }
            if (fb == ENG_TYPE_COUNT) {
                nib_errf(err, err_size,
                         "tensor %s: rows of %lld elements are not a whole "
                         "number of %s blocks (%lld)",
                         name, (long long)nx, eng_type_traits[t].name,
                         (long long)eng_type_traits[t].blck_size);
                return NIB_EINVAL;
            }
            if (nx % eng_type_traits[fb].blck_size != 0)
                fb = ENG_TYPE_F16;
            t = fb;
            p->n_fallback++;
        }
    } else if (nx % eng_type_traits[t].blck_size != 0) {
        nib_errf(err, err_size,
                 "tensor %s: rows of %lld elements are not a whole number of "
                 "%s blocks (%lld)",
                 name, (long long)nx, eng_type_traits[t].name,
                 (long long)eng_type_traits[t].blck_size);
        return NIB_EINVAL;
    }
    *out = t;
    return 0;
}

/* ==== tensor order ======================================================== */

typedef struct {
    int layer; /* -1 outside blocks */
    const char *name;
    int64_t idx;
} order_key;

static int order_cmp(const void *a, const void *b) {
    const order_key *x = a, *y = b;
    if (x->layer != y->layer)
        return x->layer < y->layer ? -1 : 1;
    return strcmp(x->name, y->name);
}

void cli_tensor_order(const char *const *names, int64_t *idx, int64_t n) {
    order_key *k = nib_malloc((size_t)(n > 0 ? n : 1) * sizeof *k);
    for (int64_t i = 0; i < n; i++) {
        int layer = -1;
        if (sscanf(names[i], "blk.%d.", &layer) != 1)
            layer = -1;
        k[i] = (order_key){layer, names[i], i};
    }
    qsort(k, (size_t)n, sizeof *k, order_cmp);
    for (int64_t i = 0; i < n; i++)
        idx[i] = k[i].idx;
    nib_free(k);
}

/* ==== streaming =========================================================== */

/* Floats per batch: large enough that thread start-up is noise, small
 * enough (16 MiB) that the largest embedding never sits in memory whole. */
#define CLI_BATCH_ELEMS (4 << 20)

typedef struct {
    cli_fill_fn fill;
    void *ud;
    eng_from_float_fn quant; /* NULL: the reference quantizer */
    eng_type type;
    int64_t n_per_row;
    int64_t row0, nrows;
    float *buf;
    uint8_t *out;
} slice;

static void *slice_run(void *arg) {
    slice *s = arg;
    if (s->nrows <= 0)
        return NULL;
    s->fill(s->ud, s->row0, s->nrows, s->buf);
    if (s->quant)
        s->quant(s->buf, s->out, s->nrows * s->n_per_row);
    else
        eng_quantize_rows(s->type, s->buf, s->out, s->nrows, s->n_per_row);
    return NULL;
}

int cli_n_threads(void) {
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0)
        return CPU_COUNT(&set);
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)NIB_MIN(n, 256) : 1;
}

int cli_stream_rows(eng_gguf_w *w, FILE *f, eng_type type, int64_t n_per_row,
                    int64_t nrows, cli_fill_fn fill, void *ud,
                    eng_from_float_fn quant, int n_threads, char *err,
                    size_t err_size) {
    enum { MAX_THREADS = 256 };
    n_threads = NIB_MAX(1, NIB_MIN(n_threads, MAX_THREADS));
    int64_t batch = NIB_MAX(CLI_BATCH_ELEMS / n_per_row, 1);
    batch = NIB_MIN(batch, nrows);
    const size_t row_bytes = eng_row_size(type, n_per_row);
    /* Two output buffers: the main thread writes batch k while the
     * workers compute batch k + 1, so the kernel's copy into the page cache
     * overlaps the quantization instead of leaving the cores idle. */
    float *buf = nib_try_calloc((size_t)(batch * n_per_row), sizeof *buf);
    uint8_t *out[2] = {nib_try_malloc((size_t)batch * row_bytes),
                       nib_try_malloc((size_t)batch * row_bytes)};
    slice *sl = nib_malloc((size_t)n_threads * sizeof *sl);
    pthread_t *th = nib_malloc((size_t)n_threads * sizeof *th);
    int r = 0;
    if (!buf || !out[0] || !out[1]) {
        nib_errf(err, err_size, "cannot allocate %lld rows of %lld elements",
                 (long long)batch, (long long)n_per_row);
        r = NIB_ENOMEM;
    }
    size_t pending = 0; /* bytes of the previous batch, in out[cur ^ 1] */
    int cur = 0;
    for (int64_t row = 0; r == 0 && row < nrows + batch; row += batch) {
        const int64_t nb = row < nrows ? NIB_MIN(batch, nrows - row) : 0;
        const int nt = (int)NIB_MIN((int64_t)n_threads, nb);
        bool started[MAX_THREADS] = {false};
        for (int t = 0; t < nt; t++) {
            int64_t a = nb * t / nt, b = nb * (t + 1) / nt;
            sl[t] = (slice){.fill = fill,
                            .ud = ud,
                            .quant = quant,
                            .type = type,
                            .n_per_row = n_per_row,
                            .row0 = row + a,
                            .nrows = b - a,
                            .buf = buf + a * n_per_row,
                            .out = out[cur] + a * row_bytes};
            started[t] = pthread_create(&th[t], NULL, slice_run, &sl[t]) == 0;
        }
        if (pending && eng_gguf_w_write_data(w, f, out[cur ^ 1], pending) < 0) {
            nib_errf(err, err_size, "%s", eng_gguf_w_error(w));
            r = NIB_EIO;
        }
        for (int t = 0; t < nt; t++) {
            if (started[t])
                pthread_join(th[t], NULL);
            else
                slice_run(&sl[t]); /* no thread: do its share here */
        }
        pending = (size_t)nb * row_bytes;
        cur ^= 1;
    }
    nib_free(th);
    nib_free(sl);
    nib_free(out[1]);
    nib_free(out[0]);
    nib_free(buf);
    return r;
}

/* Q8_0 exactly as the reference (same bytes), without its libm roundf
 * call per weight: roundf rounds halves away from zero, as below. */
static inline int round_away(float v) {
    /* |v| <= 127 here, so the truncation and the difference are exact. */
    int i = (int)v;
    float d = v - (float)i;
    return i + (d >= 0.5f) - (d <= -0.5f);
}

void cli_quantize_q8_0(const float *restrict x, void *restrict vy, int64_t k) {
    block_q8_0 *y = vy;
    for (int64_t b = 0; b < k / QK8_0; b++, x += QK8_0) {
        float amax = 0;
        for (int j = 0; j < QK8_0; j++)
            amax = amax > fabsf(x[j]) ? amax : fabsf(x[j]);
        const float d = amax / 127;
        const float id = d ? 1.0f / d : 0.0f;
        y[b].d = eng_fp32_to_fp16(d);
        for (int j = 0; j < QK8_0; j++)
            y[b].qs[j] = (int8_t)round_away(x[j] * id);
    }
}

/* ==== output files ======================================================== */

int cli_out_open(cli_out *o, const char *path, char *err, size_t err_size) {
    size_t n = strlen(path);
    *o = (cli_out){0};
    o->path = nib_strdup(path);
    o->tmp = nib_malloc(n + 5);
    memcpy(o->tmp, path, n);
    memcpy(o->tmp + n, ".tmp", 5);
    o->f = fopen(o->tmp, "wb");
    if (!o->f) {
        nib_errf(err, err_size, "cannot create %s: %s", o->tmp,
                 strerror(errno));
        nib_free(o->path);
        nib_free(o->tmp);
        *o = (cli_out){0};
        return NIB_EIO;
    }
    return 0;
}

int cli_out_close(cli_out *o, bool ok, char *err, size_t err_size) {
    int r = 0;
    if (!o->f)
        return 0;
    if (fclose(o->f) != 0 && ok) {
        nib_errf(err, err_size, "cannot write %s: %s", o->tmp, strerror(errno));
        ok = false;
        r = NIB_EIO;
    }
    if (ok && rename(o->tmp, o->path) != 0) {
        nib_errf(err, err_size, "cannot rename %s to %s: %s", o->tmp, o->path,
                 strerror(errno));
        r = NIB_EIO;
        ok = false;
    }
    if (!ok)
        unlink(o->tmp);
    nib_free(o->path);
    nib_free(o->tmp);
    *o = (cli_out){0};
    return r;
}

/* ==== nib quantize ======================================================== */

static void quantize_usage(FILE *f) {
    fprintf(f,
            "usage: nib quantize [options] IN.gguf OUT.gguf TYPE [THREADS]\n"
            "\n"
            "Re-encode a model's weights as llama.cpp's quantizer does (same\n"
            "type mix, same bytes). TYPE is one of:\n"
            "  %s\n"
            "(Q4_K and Q5_K mean Q4_K_M and Q5_K_M). The input may hold any\n"
            "type nib can dequantize.\n"
            "\n"
            "options:\n"
            "  -t N       threads (default: all CPUs)\n"
            "  --pure     no mix: every weight matrix gets TYPE\n"
            "  -v         one line per tensor\n",
            cli_ftype_names());
}

/* Drop the input pages of rows already converted: they are clean file
 * pages, and keeping them mapped would make a 3 GB model look like a 3 GB
 * process. A page shared with rows another thread still reads is simply
 * read again from the file. */
static void release_pages(const eng_gguf *g, const void *p, uint64_t n) {
    if (!g->owns_map || n == 0)
        return;
    const uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
    uintptr_t a = (uintptr_t)p & ~(page - 1);
    uintptr_t b = ((uintptr_t)p + n + page - 1) & ~(page - 1);
    madvise((void *)a, b - a, MADV_DONTNEED);
}

typedef struct {
    const eng_gguf *g;
    const uint8_t *data;
    eng_type src;
    size_t row_bytes;
    int64_t n_per_row;
} deq_ctx;

static void deq_fill(void *ud, int64_t row0, int64_t nrows, float *dst) {
    const deq_ctx *c = ud;
    const uint8_t *p = c->data + (size_t)row0 * c->row_bytes;
    eng_type_traits[c->src].to_float(p, dst, nrows * c->n_per_row);
    release_pages(c->g, p, (uint64_t)nrows * c->row_bytes);
}

/* Copy a tensor's bytes unchanged, a chunk at a time. */
static int copy_tensor(eng_gguf_w *w, FILE *f, const eng_gguf *g,
                       const eng_gguf_tensor *t, char *err, size_t err_size) {
    const uint8_t *p = t->data;
    const uint64_t chunk = 64u << 20;
    for (uint64_t off = 0; off < t->n_bytes; off += chunk) {
        uint64_t n = NIB_MIN(chunk, t->n_bytes - off);
        if (eng_gguf_w_write_data(w, f, p + off, (size_t)n) < 0) {
            nib_errf(err, err_size, "%s", eng_gguf_w_error(w));
            return NIB_EIO;
        }
        release_pages(g, p + off, n);
    }
    return 0;
}

static int n_layers_of(const eng_gguf *g) {
    eng_str arch;
    uint32_t n;
    if (eng_gguf_get_str(g, "general.architecture", &arch) == 0 &&
        arch.len < 64) {
        char key[128];
        snprintf(key, sizeof key, "%.*s.block_count", (int)arch.len, arch.ptr);
        if (eng_gguf_get_u32(g, key, &n) == 0)
            return (int)n;
    }
    /* No block count: one ffn_down per layer is what llama.cpp assumes. */
    int c = 0;
    for (uint64_t i = 0; i < g->n_tensors; i++)
        c += strstr(g->tensors[i].name, "ffn_down") != NULL;
    return c;
}

/* Set a u32 key at the end of the metadata, as gguf_set_val_u32 does by
 * removing it first. */
static int set_last_u32(eng_gguf_w *w, const char *key, uint32_t v) {
    eng_gguf_w_remove(w, key); /* NIB_ENOENT when absent: fine */
    return eng_gguf_w_set_u32(w, key, v);
}

int cli_quantize(int argc, char **argv) {
    const char *pos[4];
    int npos = 0, n_threads = 0;
    bool pure = false, verbose = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            quantize_usage(stdout);
            return 0;
        } else if (!strcmp(a, "-t") || !strcmp(a, "--threads")) {
            char *end;
            long v = i + 1 < argc ? strtol(argv[i + 1], &end, 10) : 0;
            if (i + 1 >= argc || *end || v < 1 || v > 256) {
                fprintf(stderr, "nib quantize: -t needs a thread count "
                                "(1-256)\n");
                return 2;
            }
            n_threads = (int)v;
            i++;
        } else if (!strcmp(a, "--pure")) {
            pure = true;
        } else if (!strcmp(a, "-v") || !strcmp(a, "--verbose")) {
            verbose = true;
        } else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "nib quantize: unknown option '%s'\n", a);
            return 2;
        } else if (npos < 4) {
            pos[npos++] = a;
        } else {
            fprintf(stderr, "nib quantize: too many arguments\n");
            return 2;
        }
    }
    if (npos < 3) {
        quantize_usage(stderr);
        return 2;
    }
    if (npos == 4) {
        char *end;
        long v = strtol(pos[3], &end, 10);
        if (*end || v < 1 || v > 256) {
            fprintf(stderr, "nib quantize: invalid thread count '%s'\n",
                    pos[3]);
            return 2;
        }
        n_threads = (int)v;
    }
    const char *in = pos[0], *outp = pos[1];
    const cli_ftype *ft = cli_ftype_find(pos[2]);
    if (!ft) {
        fprintf(stderr, "nib quantize: unknown type '%s' (one of: %s)\n",
                pos[2], cli_ftype_names());
        return 2;
    }
    if (n_threads <= 0)
        n_threads = cli_n_threads();

    char err[512] = "";
    eng_gguf *g = NULL;
    int r = eng_gguf_open(in, &g, err, sizeof err);
    if (r < 0) {
        fprintf(stderr, "nib quantize: cannot read %s: %s\n", in,
                err[0] ? err : nib_strerror(r));
        return 1;
    }
    uint64_t t0 = nib_now_ns();
    const int64_t n = (int64_t)g->n_tensors;
    const char **names = nib_malloc((size_t)(n + 1) * sizeof *names);
    int64_t *order = nib_malloc((size_t)(n + 1) * sizeof *order);
    eng_type *types = nib_malloc((size_t)(n + 1) * sizeof *types);
    for (int64_t i = 0; i < n; i++)
        names[i] = g->tensors[i].name;
    cli_tensor_order(names, order, n);

    /* Decide every type first: the header holds them and is written before
     * any data. */
    cli_plan plan;
    cli_plan_init(&plan, ft, n_layers_of(g), names, n);
    plan.pure = pure;
    int rc = 1;
    bool requant = false;
    eng_gguf_w *w = eng_gguf_w_new();
    cli_out out = {0};
    for (int64_t k = 0; k < n; k++) {
        const eng_gguf_tensor *t = &g->tensors[order[k]];
        eng_type src = (eng_type)t->type, dst;
        if (cli_plan_type(&plan, t->name, t->n_dims, t->ne, src, &dst, err,
                          sizeof err) < 0)
            goto fail;
        if (dst != src && !eng_type_traits[src].to_float) {
            nib_errf(err, sizeof err, "tensor %s: nib cannot convert from %s",
                     t->name, eng_type_traits[src].name);
            goto fail;
        }
        if (dst != src && !eng_type_traits[dst].from_float_ref) {
            nib_errf(err, sizeof err, "tensor %s: nib cannot write %s", t->name,
                     eng_type_traits[dst].name);
            goto fail;
        }
        requant |= dst != src && is_quantized(src);
        types[order[k]] = dst;
        uint64_t ne[GGUF_MAX_DIMS];
        memcpy(ne, t->ne, sizeof ne);
        if (eng_gguf_w_add_tensor(w, t->name, dst, real_dims(t->n_dims, ne),
                                  ne) < 0) {
            nib_errf(err, sizeof err, "%s", eng_gguf_w_error(w));
            goto fail;
        }
    }
    if (requant)
        fprintf(stderr,
                "nib quantize: warning: %s is already quantized; "
                "requantizing loses quality\n",
                in);

    if (eng_gguf_w_copy_kvs(w, g, NULL) < 0 ||
        set_last_u32(w, "general.quantization_version", 2) < 0 ||
        set_last_u32(w, "general.file_type", ft->ftype) < 0) {
        nib_errf(err, sizeof err, "%s", eng_gguf_w_error(w));
        goto fail;
    }
    eng_gguf_w_remove(w, "split.no");
    eng_gguf_w_remove(w, "split.count");
    eng_gguf_w_remove(w, "split.tensors.count");

    if (cli_out_open(&out, outp, err, sizeof err) < 0)
        goto fail;
    if (eng_gguf_w_write_header(w, out.f) < 0) {
        nib_errf(err, sizeof err, "%s", eng_gguf_w_error(w));
        goto fail;
    }
    uint64_t bytes_in = 0, bytes_out = 0;
    for (int64_t k = 0; k < n; k++) {
        const eng_gguf_tensor *t = &g->tensors[order[k]];
        const eng_type src = (eng_type)t->type, dst = types[order[k]];
        if (verbose)
            fprintf(stderr, "[%4lld/%4lld] %-36s %-5s -> %s\n",
                    (long long)k + 1, (long long)n, t->name,
                    eng_type_traits[src].name, eng_type_traits[dst].name);
        if (dst == src) {
            r = copy_tensor(w, out.f, g, t, err, sizeof err);
        } else {
            deq_ctx c = {g, t->data, src, eng_row_size(src, (int64_t)t->ne[0]),
                         (int64_t)t->ne[0]};
            r = cli_stream_rows(w, out.f, dst, (int64_t)t->ne[0],
                                (int64_t)(t->n_elements / t->ne[0]), deq_fill,
                                &c,
                                dst == ENG_TYPE_Q8_0 ? cli_quantize_q8_0 : NULL,
                                n_threads, err, sizeof err);
        }
        if (r < 0)
            goto fail;
        bytes_in += t->n_bytes;
        bytes_out += eng_gguf_w_tensor_bytes(w, k);
    }
    if (eng_gguf_w_finish(w, out.f) < 0) {
        nib_errf(err, sizeof err, "%s", eng_gguf_w_error(w));
        goto fail;
    }
    if (cli_out_close(&out, true, err, sizeof err) < 0)
        goto fail;
    if (plan.n_fallback)
        fprintf(stderr,
                "nib quantize: %d tensor(s) with rows that do not fit %s's "
                "blocks use llama.cpp's fallback types\n",
                plan.n_fallback, eng_type_traits[ft->type].name);
    fprintf(stderr,
            "nib quantize: %s: %lld tensors, %.2f MiB -> %.2f MiB (%s) in "
            "%.2f s\n",
            outp, (long long)n, bytes_in / 1048576.0, bytes_out / 1048576.0,
            ft->name, (double)(nib_now_ns() - t0) / 1e9);
    rc = 0;
    goto done;
fail:
    fprintf(stderr, "nib quantize: %s\n", err[0] ? err : "failed");
    cli_out_close(&out, false, NULL, 0);
done:
    eng_gguf_w_delete(w);
    nib_free(types);
    nib_free(order);
    nib_free(names);
    eng_gguf_close(g);
    return rc;
}
