/*
 * test-gguf.c — the GGUF reader: the shared models and vocab files, the
 * typed getters, open errors, and the corrupt-file suite (truncations and
 * patched fields on in-memory copies, each of which must fail cleanly).
 */
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/nib.h"
#include "engine/gguf.h"
#include "engine/gguf_write.h"
#include "engine/quant.h"
#include "test.h"

/* ---- a tiny GGUF byte builder ------------------------------------------
 * Independent of the writer on purpose: the getter tests and a few corrupt
 * cases need byte-exact files (odd types, v2, nested arrays) that a correct
 * writer refuses to produce. */

typedef struct {
    uint8_t *p;
    size_t n, cap;
} gb;

static void gb_put(gb *b, const void *src, size_t n) {
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2 + 64;
        b->p = realloc(b->p, b->cap);
        ASSERT(b->p);
    }
    memcpy(b->p + b->n, src, n);
    b->n += n;
}
static void gb_u8(gb *b, uint8_t v) {
    gb_put(b, &v, 1);
}
static void gb_u32(gb *b, uint32_t v) {
    gb_put(b, &v, 4);
}
static void gb_u64(gb *b, uint64_t v) {
    gb_put(b, &v, 8);
}
static void gb_str(gb *b, const char *s) {
    gb_u64(b, strlen(s));
    gb_put(b, s, strlen(s));
}
static void gb_header(gb *b, uint32_t version, uint64_t n_tensors,
                      uint64_t n_kv) {
    gb_put(b, "GGUF", 4);
    gb_u32(b, version);
    gb_u64(b, n_tensors);
    gb_u64(b, n_kv);
}
/* key + type + raw value bytes */
static void gb_kv(gb *b, const char *key, gguf_type t, const void *v,
                  size_t n) {
    gb_str(b, key);
    gb_u32(b, t);
    gb_put(b, v, n);
}
static void gb_pad(gb *b, size_t align) {
    while (b->n % align)
        gb_u8(b, 0);
}

/* Parse a builder's bytes from an exact-size heap copy. */
static int gb_parse(const gb *b, eng_gguf **g, char *err, size_t err_size) {
    return eng_gguf_parse(b->p, b->n, g, err, err_size);
}

/* ---- shared models and vocab files --------------------------------------- */

typedef struct {
    const char *file;
    const char *arch;
    uint64_t n_tensors;
    uint64_t n_embd;
    uint64_t n_vocab;
    uint32_t embd_type;
    bool has_output; /* untied output.weight */
} model_expect;

static const model_expect models[] = {
    {"stories260K.gguf", "llama", 48, 64, 512, ENG_TYPE_F32, true},
    {"rq-star-f16.gguf", "qwen2", 38, 256, 49152, ENG_TYPE_F16, false},
    {"rq-star-q8_0.gguf", "qwen2", 38, 256, 49152, ENG_TYPE_Q8_0, false},
    {"rq-star-q4_0.gguf", "qwen2", 38, 256, 49152, ENG_TYPE_Q6_K, false},
    {"rq-star-q4_k_m.gguf", "qwen2", 38, 256, 49152, ENG_TYPE_Q6_K, false},
    {"rq-star-q5_k_m.gguf", "qwen2", 38, 256, 49152, ENG_TYPE_Q6_K, false},
    {"rl-dsc-q4_k_m.gguf", "llama", 21, 256, 32256, ENG_TYPE_Q4_K, true},
    {"rq-qwen-q4_k_m.gguf", "qwen2", 26, 256, 151936, ENG_TYPE_Q6_K, false},
};

/* Invariants every well-formed GGUF satisfies, checked on real files. */
static void check_invariants(const eng_gguf *g) {
    ASSERT(g->version == 2 || g->version == 3);
    ASSERT(g->alignment && (g->alignment & (g->alignment - 1)) == 0);
    ASSERT_EQ(g->data_offset % g->alignment == 0 || g->n_tensors == 0, 1);
    ASSERT(g->data_offset <= g->size);
    for (uint64_t i = 0; i < g->n_kv; i++) {
        const eng_gguf_kv *kv = &g->kv[i];
        ASSERT(eng_gguf_find(g, kv->key_z) == kv);
        ASSERT(eng_str_eq(kv->key, kv->key_z));
    }
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        const eng_gguf_tensor *t = &g->tensors[i];
        ASSERT(eng_gguf_find_tensor(g, t->name) == t);
        ASSERT(t->n_dims >= 1 && t->n_dims <= GGUF_MAX_DIMS);
        ASSERT_EQ(t->n_elements, t->ne[0] * t->ne[1] * t->ne[2] * t->ne[3]);
        ASSERT_EQ(t->n_bytes,
                  eng_row_size(t->type, t->ne[0]) * (t->n_elements / t->ne[0]));
        ASSERT_EQ(t->offset % g->alignment, 0);
        const uint8_t *d = t->data, *base = g->map;
        ASSERT(d == base + g->data_offset + t->offset);
        ASSERT(d + t->n_bytes <= base + g->size);
    }
    ASSERT(eng_gguf_find(g, "no.such.key") == NULL);
    ASSERT(eng_gguf_find_tensor(g, "no.such.tensor") == NULL);
}

TEST_IMPL(gguf_shared_models) {
    if (!test_shared_dir())
        TEST_SKIP("../shared absent: shared model checks not run");
    int n_seen = 0;
    for (size_t m = 0; m < NIB_ARRAY_LEN(models); m++) {
        const model_expect *e = &models[m];
        char rel[128];
        snprintf(rel, sizeof rel, "models/%s", e->file);
        const char *path = test_shared(rel);
        if (!path) {
            fprintf(stderr, "note: %s absent, not checked\n", rel);
            continue;
        }
        n_seen++;
        eng_gguf *g;
        char err[256];
        int r = eng_gguf_open(path, &g, err, sizeof err);
        ASSERT_MSG(r == 0, "%s: %s", e->file, err);
        check_invariants(g);
        ASSERT_EQ(g->version, 3);
        ASSERT_EQ(g->n_tensors, e->n_tensors);

        eng_str arch;
        ASSERT_OK(eng_gguf_get_str(g, "general.architecture", &arch));
        ASSERT_MSG(eng_str_eq(arch, e->arch), "%s: arch %.*s", e->file,
                   (int)arch.len, arch.ptr);

        const eng_gguf_tensor *emb =
            eng_gguf_find_tensor(g, "token_embd.weight");
        ASSERT(emb);
        ASSERT_EQ(emb->n_dims, 2);
        ASSERT_EQ(emb->ne[0], e->n_embd);
        ASSERT_EQ(emb->ne[1], e->n_vocab);
        ASSERT_EQ(emb->type, e->embd_type);
        ASSERT_EQ(eng_gguf_find_tensor(g, "output.weight") != NULL,
                  e->has_output);

        uint64_t n_tok;
        const eng_str *toks;
        ASSERT_OK(
            eng_gguf_get_str_arr(g, "tokenizer.ggml.tokens", &n_tok, &toks));
        ASSERT_EQ(n_tok, e->n_vocab);
        uint64_t n_tt;
        const void *tt;
        ASSERT_OK(eng_gguf_get_arr(g, "tokenizer.ggml.token_type",
                                   GGUF_TYPE_INT32, &n_tt, &tt));
        ASSERT_EQ(n_tt, n_tok);

        /* Hyperparameters agree with the tensors. */
        char key[96];
        uint32_t n_embd, n_layer;
        snprintf(key, sizeof key, "%s.embedding_length", e->arch);
        ASSERT_OK(eng_gguf_get_u32(g, key, &n_embd));
        ASSERT_EQ(n_embd, e->n_embd);
        snprintf(key, sizeof key, "%s.block_count", e->arch);
        ASSERT_OK(eng_gguf_get_u32(g, key, &n_layer));
        ASSERT(n_layer >= 1);
        for (uint32_t l = 0; l < n_layer; l++) {
            snprintf(key, sizeof key, "blk.%u.attn_norm.weight", l);
            const eng_gguf_tensor *t = eng_gguf_find_tensor(g, key);
            ASSERT_MSG(t, "%s: %s missing", e->file, key);
            ASSERT_EQ(t->type, ENG_TYPE_F32);
            ASSERT_EQ(t->ne[0], e->n_embd);
        }
        snprintf(key, sizeof key, "blk.%u.attn_norm.weight", n_layer);
        ASSERT(eng_gguf_find_tensor(g, key) == NULL);
        float eps;
        snprintf(key, sizeof key, "%s.attention.layer_norm_rms_epsilon",
                 e->arch);
        ASSERT_OK(eng_gguf_get_f32(g, key, &eps));
        ASSERT(eps > 0 && eps < 1e-3f);

        /* The F32 norm weights hold finite values: the data pointer really
         * is where the tensor lives. */
        const eng_gguf_tensor *on =
            eng_gguf_find_tensor(g, "output_norm.weight");
        ASSERT(on && on->type == ENG_TYPE_F32);
        for (uint64_t i = 0; i < on->ne[0]; i++) {
            float v;
            memcpy(&v, (const uint8_t *)on->data + 4 * i, 4);
            ASSERT(v == v && v > -1e4f && v < 1e4f);
        }
        eng_gguf_close(g);
    }
    if (!n_seen)
        TEST_SKIP("no shared models found");
    return 0;
}

static const char *const vocab_files[] = {
    "qwen2", "starcoder", "deepseek-coder", "refact",
    "gpt-2", "falcon",    "llama-spm",
};

TEST_IMPL(gguf_shared_vocab) {
    if (!test_shared_dir())
        TEST_SKIP("../shared absent: shared vocab checks not run");
    int n_seen = 0;
    for (size_t i = 0; i < NIB_ARRAY_LEN(vocab_files); i++) {
        char rel[128];
        snprintf(rel, sizeof rel, "vocab/ggml-vocab-%s.gguf", vocab_files[i]);
        const char *path = test_shared(rel);
        if (!path)
            continue;
        n_seen++;
        eng_gguf *g;
        char err[256];
        int r = eng_gguf_open(path, &g, err, sizeof err);
        ASSERT_MSG(r == 0, "%s: %s", rel, err);
        check_invariants(g);
        ASSERT_EQ(g->n_tensors, 0);
        eng_str s;
        ASSERT_OK(eng_gguf_get_str(g, "general.architecture", &s));
        ASSERT(s.len > 0);
        ASSERT_OK(eng_gguf_get_str(g, "tokenizer.ggml.model", &s));
        bool spm = strcmp(vocab_files[i], "llama-spm") == 0;
        ASSERT(eng_str_eq(s, spm ? "llama" : "gpt2"));
        uint64_t n_tok, n_tt;
        const eng_str *toks;
        const void *tt;
        ASSERT_OK(
            eng_gguf_get_str_arr(g, "tokenizer.ggml.tokens", &n_tok, &toks));
        ASSERT(n_tok > 1000);
        ASSERT_OK(eng_gguf_get_arr(g, "tokenizer.ggml.token_type",
                                   GGUF_TYPE_INT32, &n_tt, &tt));
        ASSERT_EQ(n_tt, n_tok);
        if (!spm) {
            uint64_t n_merges;
            const eng_str *merges;
            ASSERT_OK(eng_gguf_get_str_arr(g, "tokenizer.ggml.merges",
                                           &n_merges, &merges));
            ASSERT(n_merges > 1000);
            /* A merge is two tokens separated by one space. */
            ASSERT(memchr(merges[0].ptr, ' ', merges[0].len) != NULL);
        }
        if (strcmp(vocab_files[i], "qwen2") == 0) {
            ASSERT_EQ(n_tok, 151936);
            ASSERT(eng_str_eq(toks[0], "!"));
            uint32_t fim;
            ASSERT_OK(
                eng_gguf_get_u32(g, "tokenizer.ggml.fim_pre_token_id", &fim));
            ASSERT(fim < n_tok);
            ASSERT(eng_str_eq(toks[fim], "<|fim_prefix|>"));
        }
        if (spm) {
            ASSERT(eng_str_eq(toks[0], "<unk>"));
            uint64_t n_sc;
            const void *sc;
            ASSERT_OK(eng_gguf_get_arr(g, "tokenizer.ggml.scores",
                                       GGUF_TYPE_FLOAT32, &n_sc, &sc));
            ASSERT_EQ(n_sc, n_tok);
        }
        eng_gguf_close(g);
    }
    if (!n_seen)
        TEST_SKIP("no shared vocab files found");
    return 0;
}

/* ---- typed getters ------------------------------------------------------- */

static void build_all_types(gb *b, uint32_t version) {
    uint8_t u8 = 200;
    int8_t i8 = -100;
    uint16_t u16 = 60000;
    int16_t i16 = -30000;
    uint32_t u32 = 4000000000u;
    int32_t i32 = -2000000000;
    float f32 = 1.5f;
    uint8_t bt = 1, bf = 0;
    uint64_t u64 = UINT64_MAX;
    int64_t i64 = INT64_MIN;
    double f64 = -0.25;
    double f64_big = 1e300;
    uint64_t u64_small = 7;
    int64_t i64_neg = -1;
    gb_header(b, version, 0, 21);
    gb_kv(b, "u8", GGUF_TYPE_UINT8, &u8, 1);
    gb_kv(b, "i8", GGUF_TYPE_INT8, &i8, 1);
    gb_kv(b, "u16", GGUF_TYPE_UINT16, &u16, 2);
    gb_kv(b, "i16", GGUF_TYPE_INT16, &i16, 2);
    gb_kv(b, "u32", GGUF_TYPE_UINT32, &u32, 4);
    gb_kv(b, "i32", GGUF_TYPE_INT32, &i32, 4);
    gb_kv(b, "f32", GGUF_TYPE_FLOAT32, &f32, 4);
    gb_kv(b, "btrue", GGUF_TYPE_BOOL, &bt, 1);
    gb_kv(b, "bfalse", GGUF_TYPE_BOOL, &bf, 1);
    gb_str(b, "str");
    gb_u32(b, GGUF_TYPE_STRING);
    gb_str(b, "hello, world");
    gb_kv(b, "u64", GGUF_TYPE_UINT64, &u64, 8);
    gb_kv(b, "i64", GGUF_TYPE_INT64, &i64, 8);
    gb_kv(b, "f64", GGUF_TYPE_FLOAT64, &f64, 8);
    gb_kv(b, "f64big", GGUF_TYPE_FLOAT64, &f64_big, 8);
    gb_kv(b, "u64small", GGUF_TYPE_UINT64, &u64_small, 8);
    gb_kv(b, "i64neg", GGUF_TYPE_INT64, &i64_neg, 8);
    /* arrays: int16[3], empty float32[], string[3] with an empty string */
    gb_str(b, "arr.i16");
    gb_u32(b, GGUF_TYPE_ARRAY);
    gb_u32(b, GGUF_TYPE_INT16);
    gb_u64(b, 3);
    int16_t a16[3] = {-1, 2, -3};
    gb_put(b, a16, sizeof a16);
    gb_str(b, "arr.empty");
    gb_u32(b, GGUF_TYPE_ARRAY);
    gb_u32(b, GGUF_TYPE_FLOAT32);
    gb_u64(b, 0);
    gb_str(b, "arr.str");
    gb_u32(b, GGUF_TYPE_ARRAY);
    gb_u32(b, GGUF_TYPE_STRING);
    gb_u64(b, 3);
    gb_str(b, "a");
    gb_str(b, "");
    gb_str(b, "ccc");
    gb_str(b, "arr.f64");
    gb_u32(b, GGUF_TYPE_ARRAY);
    gb_u32(b, GGUF_TYPE_FLOAT64);
    gb_u64(b, 2);
    double af[2] = {1.0, -2.0};
    gb_put(b, af, sizeof af);
    /* Unaligned: a 1-byte key value shifts everything after it. */
    gb_kv(b, "tail.u8", GGUF_TYPE_UINT8, &u8, 1);
}

TEST_IMPL(gguf_getters) {
    for (uint32_t version = 2; version <= 3; version++) {
        gb b = {0};
        build_all_types(&b, version);
        eng_gguf *g;
        char err[256];
        int r = gb_parse(&b, &g, err, sizeof err);
        ASSERT_MSG(r == 0, "%s", err);
        ASSERT_EQ(g->version, version);
        ASSERT_EQ(g->n_kv, 21);
        ASSERT_EQ(g->n_tensors, 0);
        ASSERT_EQ(g->alignment, GGUF_DEFAULT_ALIGNMENT);

        uint64_t u64;
        int64_t i64;
        uint32_t u32;
        float f;
        bool bl;
        eng_str s;
        /* unsigned getters across widths */
        ASSERT_OK(eng_gguf_get_u64(g, "u8", &u64));
        ASSERT_EQ(u64, 200);
        ASSERT_OK(eng_gguf_get_u32(g, "u16", &u32));
        ASSERT_EQ(u32, 60000);
        ASSERT_OK(eng_gguf_get_u32(g, "u32", &u32));
        ASSERT_EQ(u32, 4000000000u);
        ASSERT_OK(eng_gguf_get_u64(g, "u64", &u64));
        ASSERT(u64 == UINT64_MAX);
        ASSERT_OK(eng_gguf_get_u32(g, "u64small", &u32));
        ASSERT_EQ(u32, 7);
        ASSERT_EQ(eng_gguf_get_u32(g, "u64", &u32), NIB_ERANGE);
        ASSERT_EQ(eng_gguf_get_u64(g, "i8", &u64), NIB_ERANGE);
        ASSERT_EQ(eng_gguf_get_u32(g, "i64neg", &u32), NIB_ERANGE);
        /* signed getter */
        ASSERT_OK(eng_gguf_get_i64(g, "i8", &i64));
        ASSERT_EQ(i64, -100);
        ASSERT_OK(eng_gguf_get_i64(g, "i16", &i64));
        ASSERT_EQ(i64, -30000);
        ASSERT_OK(eng_gguf_get_i64(g, "i32", &i64));
        ASSERT_EQ(i64, -2000000000);
        ASSERT_OK(eng_gguf_get_i64(g, "i64", &i64));
        ASSERT(i64 == INT64_MIN);
        ASSERT_OK(eng_gguf_get_i64(g, "u32", &i64));
        ASSERT_EQ(i64, 4000000000ll);
        ASSERT_EQ(eng_gguf_get_i64(g, "u64", &i64), NIB_ERANGE);
        /* floats */
        ASSERT_OK(eng_gguf_get_f32(g, "f32", &f));
        ASSERT(f == 1.5f);
        ASSERT_OK(eng_gguf_get_f32(g, "f64", &f));
        ASSERT(f == -0.25f);
        ASSERT_EQ(eng_gguf_get_f32(g, "f64big", &f), NIB_ERANGE);
        ASSERT_EQ(eng_gguf_get_f32(g, "u32", &f), NIB_EBADMODEL);
        /* bool */
        ASSERT_OK(eng_gguf_get_bool(g, "btrue", &bl));
        ASSERT(bl);
        ASSERT_OK(eng_gguf_get_bool(g, "bfalse", &bl));
        ASSERT(!bl);
        ASSERT_EQ(eng_gguf_get_bool(g, "u8", &bl), NIB_EBADMODEL);
        /* string */
        ASSERT_OK(eng_gguf_get_str(g, "str", &s));
        ASSERT(eng_str_eq(s, "hello, world"));
        ASSERT(!eng_str_eq(s, "hello"));
        ASSERT_EQ(eng_gguf_get_str(g, "u8", &s), NIB_EBADMODEL);
        ASSERT_EQ(eng_gguf_get_u64(g, "str", &u64), NIB_EBADMODEL);
        ASSERT_EQ(eng_gguf_get_u64(g, "btrue", &u64), NIB_EBADMODEL);
        ASSERT_EQ(eng_gguf_get_u64(g, "f32", &u64), NIB_EBADMODEL);
        ASSERT_EQ(eng_gguf_get_u64(g, "arr.i16", &u64), NIB_EBADMODEL);
        /* absent */
        ASSERT_EQ(eng_gguf_get_u64(g, "nope", &u64), NIB_ENOENT);
        ASSERT_EQ(eng_gguf_get_i64(g, "nope", &i64), NIB_ENOENT);
        ASSERT_EQ(eng_gguf_get_u32(g, "nope", &u32), NIB_ENOENT);
        ASSERT_EQ(eng_gguf_get_f32(g, "nope", &f), NIB_ENOENT);
        ASSERT_EQ(eng_gguf_get_bool(g, "nope", &bl), NIB_ENOENT);
        ASSERT_EQ(eng_gguf_get_str(g, "nope", &s), NIB_ENOENT);
        /* arrays */
        uint64_t n;
        const void *data;
        ASSERT_OK(eng_gguf_get_arr(g, "arr.i16", GGUF_TYPE_INT16, &n, &data));
        ASSERT_EQ(n, 3);
        int16_t a16[3];
        memcpy(a16, data, sizeof a16);
        ASSERT_EQ(a16[0], -1);
        ASSERT_EQ(a16[2], -3);
        ASSERT_EQ(eng_gguf_get_arr(g, "arr.i16", GGUF_TYPE_UINT16, &n, &data),
                  NIB_EBADMODEL);
        ASSERT_EQ(eng_gguf_get_arr(g, "u8", GGUF_TYPE_UINT8, &n, &data),
                  NIB_EBADMODEL);
        ASSERT_EQ(eng_gguf_get_arr(g, "arr.str", GGUF_TYPE_STRING, &n, &data),
                  NIB_EINVAL);
        ASSERT_EQ(eng_gguf_get_arr(g, "nope", GGUF_TYPE_UINT8, &n, &data),
                  NIB_ENOENT);
        ASSERT_OK(
            eng_gguf_get_arr(g, "arr.empty", GGUF_TYPE_FLOAT32, &n, &data));
        ASSERT_EQ(n, 0);
        ASSERT_OK(eng_gguf_get_arr(g, "arr.f64", GGUF_TYPE_FLOAT64, &n, &data));
        double af[2];
        memcpy(af, data, sizeof af);
        ASSERT(n == 2 && af[0] == 1.0 && af[1] == -2.0);
        const eng_str *strs;
        ASSERT_OK(eng_gguf_get_str_arr(g, "arr.str", &n, &strs));
        ASSERT_EQ(n, 3);
        ASSERT(eng_str_eq(strs[0], "a"));
        ASSERT(eng_str_eq(strs[1], ""));
        ASSERT(eng_str_eq(strs[2], "ccc"));
        ASSERT_EQ(eng_gguf_get_str_arr(g, "arr.i16", &n, &strs), NIB_EBADMODEL);
        ASSERT_EQ(eng_gguf_get_str_arr(g, "str", &n, &strs), NIB_EBADMODEL);
        ASSERT_OK(eng_gguf_get_u64(g, "tail.u8", &u64));
        ASSERT_EQ(u64, 200);
        /* raw KV view */
        const eng_gguf_kv *kv = eng_gguf_find(g, "arr.i16");
        ASSERT(kv && kv->type == GGUF_TYPE_ARRAY);
        ASSERT_EQ(kv->arr_type, GGUF_TYPE_INT16);
        ASSERT_EQ(kv->arr_n, 3);
        ASSERT_STR_EQ(gguf_type_name(kv->arr_type), "int16");
        ASSERT_STR_EQ(gguf_type_name((gguf_type)77), "unknown");
        ASSERT_EQ(gguf_type_size(GGUF_TYPE_FLOAT64), 8);
        ASSERT_EQ(gguf_type_size(GGUF_TYPE_STRING), 0);
        eng_gguf_close(g);
        free(b.p);
    }
    eng_gguf_close(NULL);
    return 0;
}

/* A v2 file with tensors, a custom alignment and all the tensor fields, built
 * byte by byte: checks the reader's placement arithmetic independently of
 * the writer. */
TEST_IMPL(gguf_tensors_by_hand) {
    gb b = {0};
    gb_header(&b, 2, 2, 1);
    uint32_t align = 64;
    gb_kv(&b, "general.alignment", GGUF_TYPE_UINT32, &align, 4);
    gb_str(&b, "a");
    gb_u32(&b, 2);
    gb_u64(&b, 32);
    gb_u64(&b, 3);
    gb_u32(&b, ENG_TYPE_Q8_0);
    gb_u64(&b, 0);
    gb_str(&b, "b.weight");
    gb_u32(&b, 1);
    gb_u64(&b, 5);
    gb_u32(&b, ENG_TYPE_F32);
    gb_u64(&b, 128); /* 3 x 34 = 102 bytes, next multiple of 64 */
    gb_pad(&b, 64);
    size_t data_at = b.n;
    for (int i = 0; i < 128 + 20; i++)
        gb_u8(&b, (uint8_t)i);

    eng_gguf *g;
    char err[256];
    int r = gb_parse(&b, &g, err, sizeof err);
    ASSERT_MSG(r == 0, "%s", err);
    ASSERT_EQ(g->alignment, 64);
    ASSERT_EQ(g->data_offset, data_at);
    check_invariants(g);
    const eng_gguf_tensor *a = eng_gguf_find_tensor(g, "a");
    const eng_gguf_tensor *t = eng_gguf_find_tensor(g, "b.weight");
    ASSERT(a && t);
    ASSERT_EQ(a->n_elements, 96);
    ASSERT_EQ(a->n_bytes, 102);
    ASSERT_EQ(a->ne[2], 1);
    ASSERT_EQ(a->ne[3], 1);
    ASSERT_EQ(t->n_bytes, 20);
    ASSERT_EQ(((const uint8_t *)t->data)[0], 128);
    eng_gguf_close(g);

    /* One byte short: the last tensor no longer fits. */
    r = eng_gguf_parse(b.p, b.n - 1, &g, err, sizeof err);
    ASSERT_EQ(r, NIB_EBADMODEL);
    ASSERT_STR_EQ(err, "tensor b.weight: data ends past end of file (20 bytes "
                       "at offset 128, data section holds 147 bytes)");
    free(b.p);
    return 0;
}

TEST_IMPL(gguf_open_errors) {
    eng_gguf *g = (eng_gguf *)1;
    char err[256];
    ASSERT_EQ(eng_gguf_open("/nonexistent/x.gguf", &g, err, sizeof err),
              NIB_ENOENT);
    ASSERT(g == NULL);
    ASSERT(strstr(err, "/nonexistent/x.gguf") != NULL);
    ASSERT_EQ(eng_gguf_open("/tmp", &g, err, sizeof err), NIB_EIO);
    ASSERT(err[0]);

    char path[512];
    snprintf(path, sizeof path, "%s/empty.gguf", test_tmpdir());
    FILE *f = fopen(path, "wb");
    ASSERT(f);
    fclose(f);
    ASSERT_EQ(eng_gguf_open(path, &g, err, sizeof err), NIB_EBADMODEL);
    ASSERT(strstr(err, "empty") != NULL);

    f = fopen(path, "wb");
    ASSERT(f);
    fputs("GGUF", f);
    fclose(f);
    ASSERT_EQ(eng_gguf_open(path, &g, err, sizeof err), NIB_EBADMODEL);
    ASSERT(strstr(err, "truncated") != NULL);

    /* A NULL or zero-sized error buffer is fine. */
    ASSERT_EQ(eng_gguf_open(path, &g, NULL, 0), NIB_EBADMODEL);
    ASSERT_EQ(eng_gguf_parse("GGUF", 4, &g, err, 0), NIB_EBADMODEL);
    ASSERT_EQ(eng_gguf_parse(NULL, 0, &g, err, sizeof err), NIB_EBADMODEL);
    unlink(path);
    return 0;
}

/* ---- corrupt files ----------------------------------------------------------
 * Every case parses a modified in-memory copy with eng_gguf_parse and must
 * get NIB_EBADMODEL with a non-empty message (or, for the few mutations that
 * can leave a valid file, success); none may crash or read out of bounds.
 * Truncated images are heap copies of exactly the truncated length so that
 * AddressSanitizer catches any over-read. The fields to patch are found by
 * walking the valid file here, independently of the reader. */

typedef struct {
    size_t key_len; /* offset of the key's length */
    uint64_t key_n; /* key length */
    size_t type;    /* offset of the value type */
    uint32_t t;     /* value type */
    size_t value;   /* offset of the value (string: its length) */
    uint32_t at;    /* array element type */
    size_t arr_n;   /* offset of the array count */
    uint64_t n;     /* array count */
} kv_at;

typedef struct {
    size_t name_len; /* offset of the name's length */
    uint64_t name_n;
    size_t n_dims;
    uint32_t dims;
    size_t ne[GGUF_MAX_DIMS];
    size_t type;
    size_t offset;
} tensor_at;

typedef struct {
    uint64_t n_kv, n_tensors;
    kv_at *kv;
    tensor_at *ti;
    size_t kv_end;   /* end of the metadata = start of tensor infos */
    size_t ti_end;   /* end of the tensor infos */
    size_t required; /* bytes the file cannot do without */
    uint64_t alignment;
} layout;

static uint64_t ld_u64(const uint8_t *p) {
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

static uint32_t ld_u32(const uint8_t *p) {
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

static size_t skip_value(const uint8_t *p, size_t at, uint32_t t) {
    if (t == GGUF_TYPE_STRING)
        return at + 8 + ld_u64(p + at);
    return at + gguf_type_size(t);
}

static void walk(const uint8_t *p, size_t size, layout *L) {
    memset(L, 0, sizeof *L);
    ASSERT(size >= 24 && memcmp(p, "GGUF", 4) == 0);
    L->n_tensors = ld_u64(p + 8);
    L->n_kv = ld_u64(p + 16);
    L->kv = calloc(L->n_kv + 1, sizeof *L->kv);
    L->ti = calloc(L->n_tensors + 1, sizeof *L->ti);
    L->alignment = GGUF_DEFAULT_ALIGNMENT;
    size_t at = 24;
    for (uint64_t i = 0; i < L->n_kv; i++) {
        kv_at *k = &L->kv[i];
        k->key_len = at;
        k->key_n = ld_u64(p + at);
        at += 8 + k->key_n;
        k->type = at;
        k->t = ld_u32(p + at);
        at += 4;
        k->value = at;
        if (k->t == GGUF_TYPE_ARRAY) {
            k->at = ld_u32(p + at);
            k->arr_n = at + 4;
            k->n = ld_u64(p + at + 4);
            at += 12;
            for (uint64_t j = 0; j < k->n; j++)
                at = skip_value(p, at, k->at);
        } else {
            at = skip_value(p, at, k->t);
        }
        if (k->t == GGUF_TYPE_UINT32 && k->key_n == 17 &&
            memcmp(p + k->key_len + 8, "general.alignment", 17) == 0)
            L->alignment = ld_u32(p + k->value);
        ASSERT(at <= size);
    }
    L->kv_end = at;
    for (uint64_t i = 0; i < L->n_tensors; i++) {
        tensor_at *t = &L->ti[i];
        t->name_len = at;
        t->name_n = ld_u64(p + at);
        at += 8 + t->name_n;
        t->n_dims = at;
        t->dims = ld_u32(p + at);
        at += 4;
        for (uint32_t d = 0; d < t->dims; d++, at += 8)
            t->ne[d] = at;
        t->type = at;
        t->offset = at + 4;
        at += 12;
        ASSERT(at <= size);
    }
    L->ti_end = at;
    /* The reader must agree with the walk on the good file. */
    eng_gguf *g;
    char err[256];
    int r = eng_gguf_parse(p, size, &g, err, sizeof err);
    ASSERT_MSG(r == 0, "%s", err);
    ASSERT_EQ(g->alignment, L->alignment);
    ASSERT(g->data_offset >= L->ti_end);
    ASSERT(g->data_offset - L->ti_end < L->alignment);
    L->required = g->n_tensors ? g->data_offset : L->ti_end;
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        const eng_gguf_tensor *t = &g->tensors[i];
        ASSERT_EQ(ld_u64(p + L->ti[i].offset), t->offset);
        L->required = NIB_MAX(
            L->required, (size_t)(g->data_offset + t->offset + t->n_bytes));
    }
    eng_gguf_close(g);
}

static void layout_free(layout *L) {
    free(L->kv);
    free(L->ti);
}

typedef struct {
    uint8_t *buf; /* writable copy of the good file */
    size_t size;
    /* Truncated images are copied to the end of this allocation (as big
     * as the file), so a read past a truncated end is a read past the end
     * of a heap block, which AddressSanitizer reports, without a multi-MB
     * malloc per case. */
    uint8_t *tail;
    const char *label;
    int n_cases;
    int level;
} corrupt_ctx;

/* How much of the suite a file gets. The shared files are large and their
 * headers repeat one another (five rq-star files share one vocab), so only
 * a few get the sampled run, the rest a light one; small files get all. */
enum {
    /* every tensor, every field boundary, dense spreads */
    LEVEL_FULL,
    /* first two, middle and last two tensors; key starts only */
    LEVEL_SAMPLED,
    /* the middle tensor; the first 4 KiB and the section ends for
     * truncation; key fields only for tensorless (vocab) files */
    LEVEL_LIGHT,
};

static bool sampled_out(const corrupt_ctx *c, uint64_t i, uint64_t n) {
    if (c->level == LEVEL_FULL)
        return false;
    if (c->level == LEVEL_SAMPLED)
        return i >= 2 && i + 2 < n && i != n / 2;
    return i != n / 2;
}

/* Sentinel for "success is allowed too". */
static const char MAY_PASS[] = "";

/* Parse buf as it is now and check the outcome. expect: NULL = must fail,
 * MAY_PASS = must not crash, else a substring the message must contain. */
static void check_parse(corrupt_ctx *c, const uint8_t *buf, size_t size,
                        const char *expect, const char *what) {
    eng_gguf *g = NULL;
    char err[512];
    memset(err, 0, sizeof err);
    int r = eng_gguf_parse(buf, size, &g, err, sizeof err);
    c->n_cases++;
    if (r == 0) {
        ASSERT_MSG(expect == MAY_PASS, "%s: %s: parsed although corrupt",
                   c->label, what);
        ASSERT(g != NULL);
        eng_gguf_close(g);
        return;
    }
    ASSERT_MSG(r == NIB_EBADMODEL, "%s: %s: returned %d (%s)", c->label, what,
               r, err);
    ASSERT(g == NULL);
    ASSERT_MSG(err[0] != 0, "%s: %s: empty message", c->label, what);
    if (expect && expect != MAY_PASS)
        ASSERT_MSG(strstr(err, expect) != NULL,
                   "%s: %s: message \"%s\" lacks \"%s\"", c->label, what, err,
                   expect);
}

static void try_patch(corrupt_ctx *c, size_t off, const void *v, size_t n,
                      const char *expect, const char *what) {
    ASSERT(off + n <= c->size);
    uint8_t save[8];
    memcpy(save, c->buf + off, n);
    memcpy(c->buf + off, v, n);
    check_parse(c, c->buf, c->size, expect, what);
    memcpy(c->buf + off, save, n);
}

static void try_u32(corrupt_ctx *c, size_t off, uint32_t v, const char *expect,
                    const char *what) {
    try_patch(c, off, &v, 4, expect, what);
}

static void try_u64(corrupt_ctx *c, size_t off, uint64_t v, const char *expect,
                    const char *what) {
    try_patch(c, off, &v, 8, expect, what);
}

static void try_truncated(corrupt_ctx *c, const layout *L, size_t len) {
    if (len >= c->size)
        return;
    uint8_t *copy = c->tail + (c->size - len);
    memcpy(copy, c->buf, len);
    char what[64];
    snprintf(what, sizeof what, "truncated to %zu bytes", len);
    check_parse(c, copy, len, len < L->required ? NULL : MAY_PASS, what);
}

static void truncations(corrupt_ctx *c, const layout *L) {
    /* Every length through the first 4 KiB of the header. */
    size_t dense = NIB_MIN(c->size, (size_t)4096);
    for (size_t len = 0; len < dense; len++)
        try_truncated(c, L, len);
    /* Every field boundary (and one byte either side) after that. */
    for (uint64_t i = 0; i < L->n_kv && c->level != LEVEL_LIGHT; i++) {
        const kv_at *k = &L->kv[i];
        size_t at[] = {k->key_len, k->type, k->value, k->arr_n};
        size_t n_at = c->level == LEVEL_FULL ? NIB_ARRAY_LEN(at) : 1;
        for (size_t j = 0; j < n_at; j++)
            for (int d = -1; d <= 1; d++)
                if (at[j] >= dense)
                    try_truncated(c, L, at[j] + d);
    }
    for (uint64_t i = 0; i < L->n_tensors; i++) {
        if (sampled_out(c, i, L->n_tensors))
            continue;
        const tensor_at *t = &L->ti[i];
        size_t at[] = {t->name_len, t->n_dims, t->ne[0], t->type, t->offset};
        for (size_t j = 0; j < NIB_ARRAY_LEN(at); j++)
            for (int d = -1; d <= 1; d++)
                if (at[j] >= dense)
                    try_truncated(c, L, at[j] + d);
    }
    /* A spread through the metadata (the big tokenizer arrays), the tensor
     * infos and the data. */
    int spread = c->level == LEVEL_FULL ? 48 : 12;
    if (c->level == LEVEL_LIGHT)
        spread = 1;
    for (int k = 1; k < spread; k++)
        try_truncated(c, L, dense + (L->kv_end - dense) / spread * k);
    try_truncated(c, L, L->kv_end - 1);
    try_truncated(c, L, L->ti_end - 1);
    try_truncated(c, L, L->ti_end);
    spread = c->level == LEVEL_FULL ? 16 : c->level == LEVEL_SAMPLED ? 4 : 1;
    for (int k = 0; k < spread; k++)
        try_truncated(c, L, L->ti_end + (c->size - L->ti_end) / spread * k);
    try_truncated(c, L, L->required - 1);
    try_truncated(c, L, c->size - 1);
}

static void header_fields(corrupt_ctx *c, const layout *L) {
    try_patch(c, 0, "GGUX", 4, "not a GGUF file", "bad magic");
    try_patch(c, 0, "\0\0\0\0", 4, "not a GGUF file", "zero magic");
    try_u32(c, 4, 1, "GGUF version 1 is not supported", "version 1");
    try_u32(c, 4, 99, "unsupported GGUF version 99", "version 99");
    try_u32(c, 4, 0, "unsupported GGUF version 0", "version 0");
    try_u32(c, 4, 0x03000000, "big-endian", "byte-swapped version");
    uint64_t huge[] = {UINT64_MAX, 1ull << 63, 1ull << 40, c->size};
    for (size_t i = 0; i < NIB_ARRAY_LEN(huge); i++) {
        try_u64(c, 16, huge[i], "keys", "huge n_kv");
        try_u64(c, 8, huge[i], "tensors", "huge n_tensors");
    }
    /* Off by one: the parse runs into the next section. These may in
     * principle land on something valid, but must not crash. */
    try_u64(c, 16, L->n_kv + 1, MAY_PASS, "n_kv + 1");
    try_u64(c, 8, L->n_tensors + 1, MAY_PASS, "n_tensors + 1");
    if (L->n_kv)
        try_u64(c, 16, L->n_kv - 1, MAY_PASS, "n_kv - 1");
    if (L->n_tensors)
        try_u64(c, 8, L->n_tensors - 1, MAY_PASS, "n_tensors - 1");
}

static void kv_fields(corrupt_ctx *c, const layout *L) {
    if (c->level == LEVEL_LIGHT && L->n_tensors)
        return;
    for (uint64_t i = 0; i < L->n_kv; i++) {
        const kv_at *k = &L->kv[i];
        /* Arrays (the tokenizer's) always; other keys sampled like
         * tensors, since every case after the vocab arrays reparses them. */
        if (k->t != GGUF_TYPE_ARRAY && sampled_out(c, i, L->n_kv))
            continue;
        char what[96];
        snprintf(what, sizeof what, "key #%llu", (unsigned long long)i);
        uint64_t left = c->size - k->key_len - 8;
        try_u64(c, k->key_len, UINT64_MAX, "runs past end of file", what);
        try_u64(c, k->key_len, 1ull << 63, "runs past end of file", what);
        try_u64(c, k->key_len, left + 1, "runs past end of file", what);
        try_u64(c, k->key_len, 0, MAY_PASS, what);
        try_u64(c, k->key_len, k->key_n + 1, MAY_PASS, what);
        try_u32(c, k->type, GGUF_TYPE_COUNT, "unknown value type 13", what);
        try_u32(c, k->type, UINT32_MAX, "unknown value type", what);
        if (k->t == GGUF_TYPE_STRING) {
            try_u64(c, k->value, UINT64_MAX, "runs past end of file", what);
            try_u64(c, k->value, c->size - k->value - 8 + 1,
                    "runs past end of file", what);
        }
        if (k->t != GGUF_TYPE_ARRAY)
            continue;
        try_u32(c, k->value, GGUF_TYPE_ARRAY, "nested arrays", what);
        try_u32(c, k->value, GGUF_TYPE_COUNT, "unknown array element type",
                what);
        /* Counts whose byte size wraps around 2^64 when multiplied by the
         * element size must still be caught. */
        uint64_t counts[] = {UINT64_MAX, 1ull << 63, 1ull << 62, 1ull << 61,
                             (c->size - k->arr_n) + 1};
        for (size_t j = 0; j < NIB_ARRAY_LEN(counts); j++)
            try_u64(c, k->arr_n, counts[j], NULL, what);
        if (k->at == GGUF_TYPE_STRING && k->n > 0) {
            size_t first = k->arr_n + 8;
            try_u64(c, first, UINT64_MAX, "string #0", what);
            try_u64(c, first, c->size, "string #0", what);
        }
    }
}

static void tensor_fields(corrupt_ctx *c, const layout *L) {
    for (uint64_t i = 0; i < L->n_tensors; i++) {
        if (sampled_out(c, i, L->n_tensors))
            continue;
        const tensor_at *t = &L->ti[i];
        char name[128], what[160], msg[256];
        snprintf(name, sizeof name, "%.*s", (int)NIB_MIN(t->name_n, 100),
                 (const char *)c->buf + t->name_len + 8);
        snprintf(what, sizeof what, "tensor %s", name);
        try_u64(c, t->name_len, UINT64_MAX, "runs past end of file", what);
        try_u64(c, t->name_len, c->size, "runs past end of file", what);
        try_u64(c, t->name_len, 0, "empty name", what);
        try_patch(c, t->name_len + 8, "\0", 1, "NUL byte", what);
        try_u32(c, t->n_dims, 0, "n_dims 0 is not in 1..4", what);
        try_u32(c, t->n_dims, 5, "n_dims 5 is not in 1..4", what);
        try_u32(c, t->n_dims, UINT32_MAX, "is not in 1..4", what);
        for (uint32_t d = 0; d < t->dims; d++) {
            snprintf(msg, sizeof msg, "%s: dimension %u is zero", what, d);
            try_u64(c, t->ne[d], 0, msg, what);
            try_u64(c, t->ne[d], UINT64_MAX, "element count overflows", what);
            try_u64(c, t->ne[d], 1ull << 63, "element count overflows", what);
        }
        if (t->dims >= 2) {
            /* Each dim fits, their product does not. */
            uint64_t half = 1ull << 32;
            uint8_t save[16];
            memcpy(save, c->buf + t->ne[0], 16);
            memcpy(c->buf + t->ne[0], &half, 8);
            memcpy(c->buf + t->ne[0] + 8, &half, 8);
            check_parse(c, c->buf, c->size, "element count overflows", what);
            memcpy(c->buf + t->ne[0], save, 16);
        }
        /* A larger last dimension pushes the data past the end. */
        uint64_t last = ld_u64(c->buf + t->ne[t->dims - 1]);
        snprintf(msg, sizeof msg, "%s: data ends past end of file", what);
        try_u64(c, t->ne[t->dims - 1], last * (c->size + 1), msg, what);
        snprintf(msg, sizeof msg, "%s: unknown tensor type 99", what);
        try_u32(c, t->type, 99, msg, what);
        try_u32(c, t->type, 4, "unknown tensor type 4", what);
        try_u32(c, t->type, ENG_TYPE_COUNT, "unknown tensor type 40", what);
        try_u32(c, t->type, UINT32_MAX, "unknown tensor type", what);
        /* A row length that is not a whole number of blocks. */
        {
            uint8_t save_t[4], save_ne[8];
            memcpy(save_t, c->buf + t->type, 4);
            memcpy(save_ne, c->buf + t->ne[0], 8);
            uint32_t q8 = ENG_TYPE_Q8_0;
            uint64_t one = 1;
            memcpy(c->buf + t->type, &q8, 4);
            memcpy(c->buf + t->ne[0], &one, 8);
            snprintf(msg, sizeof msg,
                     "%s: row length 1 is not a multiple of the Q8_0 block "
                     "size 32",
                     what);
            check_parse(c, c->buf, c->size, msg, what);
            memcpy(c->buf + t->type, save_t, 4);
            memcpy(c->buf + t->ne[0], save_ne, 8);
        }
        uint64_t off = ld_u64(c->buf + t->offset);
        if (L->alignment > 1) {
            snprintf(msg, sizeof msg,
                     "%s: data offset %llu is not a multiple of the "
                     "alignment %llu",
                     what, (unsigned long long)(off + 1),
                     (unsigned long long)L->alignment);
            try_u64(c, t->offset, off + 1, msg, what);
        }
        uint64_t far = (UINT64_MAX / L->alignment) * L->alignment;
        try_u64(c, t->offset, far, "data starts past end of file", what);
        uint64_t past = (c->size / L->alignment + 1) * L->alignment;
        try_u64(c, t->offset, past, "data starts past end of file", what);
        /* Pointing at another tensor's data overlaps but stays in bounds. */
        if (i > 0)
            try_u64(c, t->offset, ld_u64(c->buf + L->ti[0].offset), MAY_PASS,
                    what);
    }
}

/* Give two entries the same name, where two names of equal length exist. */
static void duplicates(corrupt_ctx *c, const layout *L) {
    for (uint64_t i = 0; i < L->n_tensors; i++)
        for (uint64_t j = i + 1; j < L->n_tensors; j++) {
            const tensor_at *a = &L->ti[i], *b = &L->ti[j];
            if (a->name_n != b->name_n || a->name_n > 128)
                continue;
            uint8_t save[128];
            memcpy(save, c->buf + b->name_len + 8, b->name_n);
            memcpy(c->buf + b->name_len + 8, c->buf + a->name_len + 8,
                   a->name_n);
            check_parse(c, c->buf, c->size, "duplicate tensor name",
                        "duplicate tensor");
            memcpy(c->buf + b->name_len + 8, save, b->name_n);
            i = j = L->n_tensors; /* one pair is enough */
        }
    for (uint64_t i = 0; i < L->n_kv; i++)
        for (uint64_t j = i + 1; j < L->n_kv; j++) {
            const kv_at *a = &L->kv[i], *b = &L->kv[j];
            if (a->key_n != b->key_n || a->key_n > 128)
                continue;
            uint8_t save[128];
            memcpy(save, c->buf + b->key_len + 8, b->key_n);
            memcpy(c->buf + b->key_len + 8, c->buf + a->key_len + 8, a->key_n);
            check_parse(c, c->buf, c->size, "duplicate key", "duplicate key");
            memcpy(c->buf + b->key_len + 8, save, b->key_n);
            i = j = L->n_kv;
        }
}

/* Single random byte changes in the header: anything may happen except a
 * crash, an over-read or a wrong error code. */
static void random_flips(corrupt_ctx *c, const layout *L, int n) {
    uint64_t s = 0x243f6a8885a308d3ull ^ c->size;
    for (int k = 0; k < n; k++) {
        s ^= s << 13, s ^= s >> 7, s ^= s << 17;
        size_t off = (size_t)(s % L->ti_end);
        uint8_t save = c->buf[off];
        c->buf[off] ^= (uint8_t)(1u << (s >> 60 & 7)) | (uint8_t)(s >> 40);
        if (c->buf[off] == save)
            c->buf[off] ^= 0xff;
        check_parse(c, c->buf, c->size, MAY_PASS, "random flip");
        c->buf[off] = save;
    }
}

static int corrupt_suite(const uint8_t *file, size_t size, const char *label,
                         int level, int n_flips) {
    corrupt_ctx c = {.size = size, .label = label, .level = level};
    c.buf = malloc(size);
    c.tail = malloc(size);
    ASSERT(c.buf && c.tail);
    memcpy(c.buf, file, size);
    layout L;
    walk(c.buf, size, &L);
    truncations(&c, &L);
    header_fields(&c, &L);
    kv_fields(&c, &L);
    tensor_fields(&c, &L);
    duplicates(&c, &L);
    random_flips(&c, &L, n_flips);
    /* The copy was restored after every patch. */
    ASSERT_MEM_EQ(c.buf, file, size);
    layout_free(&L);
    free(c.buf);
    free(c.tail);
    return c.n_cases;
}

/* A small file written with the writer: every kind of field the suite
 * patches, so this part runs without ../shared. Returns heap bytes. */
static uint8_t *small_model(size_t *size, uint32_t alignment) {
    eng_gguf_w *w = eng_gguf_w_new();
    ASSERT_OK(eng_gguf_w_set_str(w, "general.architecture", "llama"));
    if (alignment)
        ASSERT_OK(eng_gguf_w_set_alignment(w, alignment));
    ASSERT_OK(eng_gguf_w_set_u32(w, "llama.block_count", 1));
    ASSERT_OK(eng_gguf_w_set_u32(w, "llama.context_len", 64)); /* same len */
    ASSERT_OK(eng_gguf_w_set_f32(w, "llama.rope.freq_base", 10000.0f));
    const char *toks[] = {"<s>", "</s>", "a", "bc", "def"};
    ASSERT_OK(eng_gguf_w_set_str_arr(w, "tokenizer.ggml.tokens", toks, 5));
    float scores[5] = {0, 0, -1, -2, -3};
    ASSERT_OK(eng_gguf_w_set_arr(w, "tokenizer.ggml.scores", GGUF_TYPE_FLOAT32,
                                 scores, 5));
    ASSERT_OK(eng_gguf_w_set_bool(w, "tokenizer.ggml.add_bos_token", true));
    struct {
        const char *name;
        eng_type type;
        uint32_t n_dims;
        uint64_t ne[4];
    } ts[] = {
        {"output_norm.weight", ENG_TYPE_F32, 1, {64}},
        {"token_embd.weight", ENG_TYPE_Q8_0, 2, {64, 5}},
        {"blk.0.attn_q.weight", ENG_TYPE_Q4_K, 3, {256, 2, 1}},
        {"blk.0.attn_k.weight", ENG_TYPE_F16, 4, {8, 2, 3, 1}},
    };
    void *data[4];
    for (int i = 0; i < 4; i++) {
        int64_t idx = eng_gguf_w_add_tensor(w, ts[i].name, ts[i].type,
                                            ts[i].n_dims, ts[i].ne);
        ASSERT_EQ(idx, i);
        size_t n = eng_gguf_w_tensor_bytes(w, idx);
        data[i] = malloc(n);
        for (size_t k = 0; k < n; k++)
            ((uint8_t *)data[i])[k] = (uint8_t)(k * 7 + i);
    }
    char path[512];
    snprintf(path, sizeof path, "%s/small-%u.gguf", test_tmpdir(), alignment);
    ASSERT_OK(eng_gguf_w_write_file(w, path, (const void *const *)data));
    eng_gguf_w_delete(w);
    for (int i = 0; i < 4; i++)
        free(data[i]);
    char *bytes;
    ASSERT_OK(nib_read_file(path, &bytes, size));
    unlink(path);
    uint8_t *out = malloc(*size);
    memcpy(out, bytes, *size);
    nib_free(bytes);
    return out;
}

TEST_IMPL(gguf_corrupt_own) {
    /* Default alignment (no key) and alignment 64 (with the key). */
    for (uint32_t align = 0; align <= 64; align += 64) {
        size_t size;
        uint8_t *file = small_model(&size, align);
        char label[32];
        snprintf(label, sizeof label, "small-%u", align);
        int n = corrupt_suite(file, size, label, LEVEL_FULL, 20000);
        ASSERT(n > 20000);
        free(file);
    }
    return 0;
}

/* Exact messages for a few cases, and the alignment key. */
TEST_IMPL(gguf_corrupt_messages) {
    size_t size;
    uint8_t *file = small_model(&size, 64);
    layout L;
    walk(file, size, &L);
    eng_gguf *g;
    char err[256];
    uint32_t v = 99;
    const tensor_at *q = &L.ti[2]; /* blk.0.attn_q.weight */
    memcpy(file + q->type, &v, 4);
    ASSERT_EQ(eng_gguf_parse(file, size, &g, err, sizeof err), NIB_EBADMODEL);
    ASSERT_STR_EQ(err, "tensor blk.0.attn_q.weight: unknown tensor type 99");
    v = ENG_TYPE_Q4_K;
    memcpy(file + q->type, &v, 4);

    uint64_t ne2 = 1000;
    memcpy(file + q->ne[2], &ne2, 8);
    ASSERT_EQ(eng_gguf_parse(file, size, &g, err, sizeof err), NIB_EBADMODEL);
    ASSERT(strncmp(err,
                   "tensor blk.0.attn_q.weight: data ends past end of "
                   "file",
                   52) == 0);
    ne2 = 1;
    memcpy(file + q->ne[2], &ne2, 8);

    v = 1;
    memcpy(file + 4, &v, 4);
    ASSERT_EQ(eng_gguf_parse(file, size, &g, err, sizeof err), NIB_EBADMODEL);
    ASSERT_STR_EQ(err, "GGUF version 1 is not supported (only versions 2 and "
                       "3; re-convert the model)");
    v = 3;
    memcpy(file + 4, &v, 4);

    uint64_t n = 1ull << 62;
    const kv_at *scores = &L.kv[6]; /* tokenizer.ggml.scores, float32 */
    ASSERT_EQ(scores->at, GGUF_TYPE_FLOAT32);
    memcpy(file + scores->arr_n, &n, 8);
    ASSERT_EQ(eng_gguf_parse(file, size, &g, err, sizeof err), NIB_EBADMODEL);
    ASSERT(strncmp(err,
                   "key tokenizer.ggml.scores: array of 4611686018427387904 "
                   "float32 values",
                   69) == 0);
    n = 5;
    memcpy(file + scores->arr_n, &n, 8);

    n = UINT64_MAX;
    memcpy(file + 16, &n, 8);
    ASSERT_EQ(eng_gguf_parse(file, size, &g, err, sizeof err), NIB_EBADMODEL);
    ASSERT(strncmp(err, "header claims 18446744073709551615 keys", 39) == 0);
    n = L.n_kv;
    memcpy(file + 16, &n, 8);

    /* general.alignment must be a non-zero power of two. */
    const kv_at *al = &L.kv[1];
    ASSERT_EQ(al->t, GGUF_TYPE_UINT32);
    uint32_t bad_align[] = {0, 3, 48, UINT32_MAX};
    for (size_t i = 0; i < NIB_ARRAY_LEN(bad_align); i++) {
        memcpy(file + al->value, &bad_align[i], 4);
        ASSERT_EQ(eng_gguf_parse(file, size, &g, err, sizeof err),
                  NIB_EBADMODEL);
        ASSERT(strncmp(err, "key general.alignment: ", 23) == 0);
        ASSERT(strstr(err, "is not a power of two"));
    }
    /* A smaller power of two is consistent with the offsets; a huge one
     * puts the data section past the end. */
    v = 16;
    memcpy(file + al->value, &v, 4);
    ASSERT_OK(eng_gguf_parse(file, size, &g, err, sizeof err));
    ASSERT_EQ(g->alignment, 16);
    eng_gguf_close(g);
    v = 1u << 31;
    memcpy(file + al->value, &v, 4);
    ASSERT_EQ(eng_gguf_parse(file, size, &g, err, sizeof err), NIB_EBADMODEL);
    ASSERT(strstr(err, "data section would start at offset"));
    v = 64;
    memcpy(file + al->value, &v, 4);
    /* The wrong type for the alignment key (a string of the same size is
     * impossible, so make it a float32). */
    v = GGUF_TYPE_FLOAT32;
    memcpy(file + al->type, &v, 4);
    ASSERT_EQ(eng_gguf_parse(file, size, &g, err, sizeof err), NIB_EBADMODEL);
    ASSERT_STR_EQ(err, "key general.alignment: has type float32, expected an "
                       "integer");
    v = GGUF_TYPE_UINT32;
    memcpy(file + al->type, &v, 4);

    ASSERT_OK(eng_gguf_parse(file, size, &g, err, sizeof err));
    eng_gguf_close(g);
    layout_free(&L);
    free(file);

    /* Hand-built oddities the writer cannot produce. */
    gb b = {0};
    gb_header(&b, 3, 0, 1);
    gb_str(&b, "nested");
    gb_u32(&b, GGUF_TYPE_ARRAY);
    gb_u32(&b, GGUF_TYPE_ARRAY);
    gb_u64(&b, 1);
    gb_u32(&b, GGUF_TYPE_UINT8);
    gb_u64(&b, 1);
    gb_u8(&b, 7);
    ASSERT_EQ(gb_parse(&b, &g, err, sizeof err), NIB_EBADMODEL);
    ASSERT_STR_EQ(err, "key nested: nested arrays are not supported");
    free(b.p);
    b = (gb){0};
    gb_header(&b, 3, 0, 2);
    uint8_t one = 1;
    gb_kv(&b, "k", GGUF_TYPE_UINT8, &one, 1);
    gb_kv(&b, "k", GGUF_TYPE_UINT8, &one, 1);
    ASSERT_EQ(gb_parse(&b, &g, err, sizeof err), NIB_EBADMODEL);
    ASSERT_STR_EQ(err, "key k: duplicate key");
    free(b.p);
    return 0;
}

static int corrupt_shared_file(const char *rel, int level, int n_flips) {
    const char *path = test_shared(rel);
    if (!path)
        return 0;
    char *bytes;
    size_t size;
    ASSERT_OK(nib_read_file(path, &bytes, &size));
    int n = corrupt_suite((const uint8_t *)bytes, size, rel, level, n_flips);
    nib_free(bytes);
    return n;
}

TEST_IMPL(gguf_corrupt_shared) {
    if (!test_shared_dir())
        TEST_SKIP("../shared absent: corrupt-file suite ran only on the "
                  "writer's own file (gguf_corrupt_own)");
    int n = 0, files = 0;
    for (size_t m = 0; m < NIB_ARRAY_LEN(models); m++) {
        char rel[128];
        snprintf(rel, sizeof rel, "models/%s", models[m].file);
        /* stories260K is small: all of it, with many random flips. The
         * K-quant mix and the DeepSeek file get a sample; the other rq-star
         * files (same header but tensor types) and the 38 MB Qwen file
         * (the Qwen2 vocab is also checked on its own below) a light run. */
        const char *f = models[m].file;
        int level = LEVEL_LIGHT, flips = 10;
        if (strcmp(f, "stories260K.gguf") == 0)
            level = LEVEL_FULL, flips = 3000;
        else if (strcmp(f, "rq-star-q4_k_m.gguf") == 0 ||
                 strcmp(f, "rl-dsc-q4_k_m.gguf") == 0)
            level = LEVEL_SAMPLED, flips = 30;
        int k = corrupt_shared_file(rel, level, flips);
        n += k, files += k > 0;
    }
    for (size_t v = 0; v < NIB_ARRAY_LEN(vocab_files); v++) {
        char rel[128];
        snprintf(rel, sizeof rel, "vocab/ggml-vocab-%s.gguf", vocab_files[v]);
        int k = corrupt_shared_file(rel, LEVEL_LIGHT, 10);
        n += k, files += k > 0;
    }
    if (!files)
        TEST_SKIP("no shared GGUF files found");
    fprintf(stderr, "%d corrupt cases over %d files\n", n, files);
    return 0;
}

/* ---- allocation failures ---------------------------------------------------
 * Every allocation the reader makes is sized by the file, so each one may
 * fail: failing the k-th allocation, for every k, must give NIB_ENOMEM (and
 * a message) and leave nothing allocated. */

static long oom_live;      /* allocations not yet freed */
static long oom_countdown; /* fail when it reaches 0; negative: never */

static void *oom_malloc(size_t n) {
    if (oom_countdown >= 0 && oom_countdown-- == 0)
        return NULL;
    void *p = malloc(n);
    if (p)
        oom_live++;
    return p;
}

static void *oom_realloc(void *ptr, size_t n) {
    if (oom_countdown >= 0 && oom_countdown-- == 0)
        return NULL;
    void *p = realloc(ptr, n);
    if (p && !ptr)
        oom_live++;
    return p;
}

static void oom_free(void *p) {
    if (p)
        oom_live--;
    free(p);
}

TEST_IMPL(gguf_parse_oom) {
    size_t size;
    uint8_t *file = small_model(&size, 0);
    static const nib_allocator counting = {oom_malloc, oom_realloc, oom_free};
    nib_set_allocator(&counting);
    int n_fail = 0;
    for (long k = 0;; k++) {
        oom_live = 0;
        oom_countdown = k;
        eng_gguf *g;
        char err[256] = "";
        int r = eng_gguf_parse(file, size, &g, err, sizeof err);
        if (r == 0) {
            ASSERT(oom_countdown >= 0); /* every allocation succeeded */
            eng_gguf_close(g);
            ASSERT_EQ(oom_live, 0);
            break;
        }
        ASSERT_EQ(r, NIB_ENOMEM);
        ASSERT(strstr(err, "out of memory"));
        ASSERT(g == NULL);
        ASSERT_EQ(oom_live, 0);
        n_fail++;
    }
    nib_set_allocator(NULL);
    /* g, two tables and two indexes, 7 key copies, 1 string table and 4
     * tensor names. */
    ASSERT_GE(n_fail, 15);
    free(file);
    return 0;
}
