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
static void gb_u8(gb *b, uint8_t v) { gb_put(b, &v, 1); }
static void gb_u32(gb *b, uint32_t v) { gb_put(b, &v, 4); }
static void gb_u64(gb *b, uint64_t v) { gb_put(b, &v, 8); }
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
        ASSERT_EQ(t->n_bytes, eng_row_size(t->type, t->ne[0]) *
                                  (t->n_elements / t->ne[0]));
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

        const eng_gguf_tensor *emb = eng_gguf_find_tensor(g,
                                                          "token_embd.weight");
        ASSERT(emb);
        ASSERT_EQ(emb->n_dims, 2);
        ASSERT_EQ(emb->ne[0], e->n_embd);
        ASSERT_EQ(emb->ne[1], e->n_vocab);
        ASSERT_EQ(emb->type, e->embd_type);
        ASSERT_EQ(eng_gguf_find_tensor(g, "output.weight") != NULL,
                  e->has_output);

        uint64_t n_tok;
        const eng_str *toks;
        ASSERT_OK(eng_gguf_get_str_arr(g, "tokenizer.ggml.tokens", &n_tok,
                                       &toks));
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
        const eng_gguf_tensor *on = eng_gguf_find_tensor(g,
                                                         "output_norm.weight");
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
        ASSERT_OK(eng_gguf_get_str_arr(g, "tokenizer.ggml.tokens", &n_tok,
                                       &toks));
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
            ASSERT_OK(eng_gguf_get_u32(g, "tokenizer.ggml.fim_pre_token_id",
                                       &fim));
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

/* ---- typed getters -------------------------------------------------------- */

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
        ASSERT_OK(eng_gguf_get_arr(g, "arr.empty", GGUF_TYPE_FLOAT32, &n,
                                   &data));
        ASSERT_EQ(n, 0);
        ASSERT_OK(eng_gguf_get_arr(g, "arr.f64", GGUF_TYPE_FLOAT64, &n,
                                   &data));
        double af[2];
        memcpy(af, data, sizeof af);
        ASSERT(n == 2 && af[0] == 1.0 && af[1] == -2.0);
        const eng_str *strs;
        ASSERT_OK(eng_gguf_get_str_arr(g, "arr.str", &n, &strs));
        ASSERT_EQ(n, 3);
        ASSERT(eng_str_eq(strs[0], "a"));
        ASSERT(eng_str_eq(strs[1], ""));
        ASSERT(eng_str_eq(strs[2], "ccc"));
        ASSERT_EQ(eng_gguf_get_str_arr(g, "arr.i16", &n, &strs),
                  NIB_EBADMODEL);
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
