/*
 * test-gguf-write.c — the GGUF writer: round trips through the reader with
 * every KV type and several tensor types, streaming in odd chunks, misuse
 * errors, copying tokenizer KVs from the shared vocab files, and rewriting
 * the shared models byte for byte (they were written by llama.cpp, so an
 * identical rewrite shows the layout is the one llama.cpp produces).
 */
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/nib.h"
#include "engine/gguf.h"
#include "engine/gguf_write.h"
#include "engine/quant.h"
#include "test.h"

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint8_t rnd8(void) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint8_t)(rng_state >> 24);
}

static void *rnd_bytes(size_t n) {
    uint8_t *p = malloc(n ? n : 1);
    ASSERT(p);
    for (size_t i = 0; i < n; i++)
        p[i] = rnd8();
    return p;
}

static const char *tmp_path(const char *name) {
    static char buf[4][512];
    static int slot;
    char *p = buf[slot++ % 4];
    snprintf(p, 512, "%s/%s", test_tmpdir(), name);
    return p;
}

/* Same type, shape and value bytes. */
static void assert_kv_equal(const eng_gguf_kv *a, const eng_gguf_kv *b) {
    ASSERT_STR_EQ(a->key_z, b->key_z);
    ASSERT_MSG(a->type == b->type, "%s: type %d vs %d", a->key_z, a->type,
               b->type);
    if (a->type == GGUF_TYPE_STRING) {
        uint64_t la, lb;
        memcpy(&la, a->data, 8);
        memcpy(&lb, b->data, 8);
        ASSERT_EQ(la, lb);
        ASSERT_MEM_EQ(a->data + 8, b->data + 8, la);
    } else if (a->type != GGUF_TYPE_ARRAY) {
        ASSERT_MEM_EQ(a->data, b->data, gguf_type_size(a->type));
    } else {
        ASSERT_EQ(a->arr_type, b->arr_type);
        ASSERT_EQ(a->arr_n, b->arr_n);
        if (a->arr_type == GGUF_TYPE_STRING) {
            for (uint64_t i = 0; i < a->arr_n; i++) {
                ASSERT_EQ(a->strs[i].len, b->strs[i].len);
                ASSERT_MEM_EQ(a->strs[i].ptr, b->strs[i].ptr, a->strs[i].len);
            }
        } else {
            ASSERT_MEM_EQ(a->data, b->data,
                          a->arr_n * gguf_type_size(a->arr_type));
        }
    }
}

/* ---- round trip ---------------------------------------------------------- */

typedef struct {
    const char *name;
    eng_type type;
    uint32_t n_dims;
    uint64_t ne[4];
} tensor_spec;

static const tensor_spec specs[] = {
    {"a.f32", ENG_TYPE_F32, 1, {7}},
    {"b.f16", ENG_TYPE_F16, 2, {3, 5}},
    {"c.q8_0", ENG_TYPE_Q8_0, 2, {64, 3}},
    {"d.q4_K", ENG_TYPE_Q4_K, 3, {256, 2, 2}},
    {"e.q6_K", ENG_TYPE_Q6_K, 4, {256, 1, 1, 2}},
    {"f.bf16", ENG_TYPE_BF16, 4, {5, 1, 1, 1}},
    {"g.q4_0", ENG_TYPE_Q4_0, 2, {32, 1}},
};

#define N_SPECS NIB_ARRAY_LEN(specs)

static void set_every_kv_type(eng_gguf_w *w) {
    ASSERT_OK(eng_gguf_w_set_str(w, "general.architecture", "test"));
    ASSERT_OK(eng_gguf_w_set_u8(w, "t.u8", 250));
    ASSERT_OK(eng_gguf_w_set_i8(w, "t.i8", -120));
    ASSERT_OK(eng_gguf_w_set_u16(w, "t.u16", 65000));
    ASSERT_OK(eng_gguf_w_set_i16(w, "t.i16", -32000));
    ASSERT_OK(eng_gguf_w_set_u32(w, "t.u32", 4000000000u));
    ASSERT_OK(eng_gguf_w_set_i32(w, "t.i32", -2000000000));
    ASSERT_OK(eng_gguf_w_set_u64(w, "t.u64", UINT64_MAX - 1));
    ASSERT_OK(eng_gguf_w_set_i64(w, "t.i64", INT64_MIN + 1));
    ASSERT_OK(eng_gguf_w_set_f32(w, "t.f32", 0.1f));
    ASSERT_OK(eng_gguf_w_set_f64(w, "t.f64", 1e-300));
    ASSERT_OK(eng_gguf_w_set_bool(w, "t.bool", true));
    ASSERT_OK(eng_gguf_w_set_strn(w, "t.bytes", "a\0b\xff", 4));
    ASSERT_OK(eng_gguf_w_set_str(w, "t.empty", ""));
    uint8_t u8s[3] = {1, 2, 255};
    int32_t i32s[4] = {-1, 0, 1, INT32_MAX};
    float f32s[2] = {1.5f, -0.0f};
    double f64s[1] = {3.25};
    uint8_t bools[3] = {1, 0, 1};
    uint64_t u64s[2] = {0, UINT64_MAX};
    int16_t i16s[2] = {-2, 2};
    ASSERT_OK(eng_gguf_w_set_arr(w, "a.u8", GGUF_TYPE_UINT8, u8s, 3));
    ASSERT_OK(eng_gguf_w_set_arr(w, "a.i32", GGUF_TYPE_INT32, i32s, 4));
    ASSERT_OK(eng_gguf_w_set_arr(w, "a.f32", GGUF_TYPE_FLOAT32, f32s, 2));
    ASSERT_OK(eng_gguf_w_set_arr(w, "a.f64", GGUF_TYPE_FLOAT64, f64s, 1));
    ASSERT_OK(eng_gguf_w_set_arr(w, "a.bool", GGUF_TYPE_BOOL, bools, 3));
    ASSERT_OK(eng_gguf_w_set_arr(w, "a.u64", GGUF_TYPE_UINT64, u64s, 2));
    ASSERT_OK(eng_gguf_w_set_arr(w, "a.i16", GGUF_TYPE_INT16, i16s, 2));
    ASSERT_OK(eng_gguf_w_set_arr(w, "a.empty", GGUF_TYPE_UINT32, NULL, 0));
    const char *strs[] = {"alpha", "", "γάμμα", "<|fim_prefix|>"};
    ASSERT_OK(eng_gguf_w_set_str_arr(w, "a.str", strs, 4));
    eng_str spans[2] = {{"x\0y", 3}, {"zz", 2}};
    ASSERT_OK(eng_gguf_w_set_str_arr_spans(w, "a.spans", spans, 2));
    ASSERT_OK(eng_gguf_w_set_str_arr(w, "a.str_empty", NULL, 0));
    /* Replacing keeps the position; removing closes the gap. */
    ASSERT_OK(eng_gguf_w_set_str(w, "t.replaced", "old"));
    ASSERT_OK(eng_gguf_w_set_u32(w, "t.gone", 1));
    ASSERT_OK(eng_gguf_w_set_u32(w, "t.replaced", 42));
    ASSERT_OK(eng_gguf_w_remove(w, "t.gone"));
    ASSERT_EQ(eng_gguf_w_remove(w, "t.gone"), NIB_ENOENT);
}

/* What set_every_kv_type wrote, checked through the reader's getters. */
static void check_every_kv_type(const eng_gguf *g) {
    uint64_t u64, n;
    int64_t i64;
    uint32_t u32;
    float f;
    bool b;
    eng_str s;
    const void *d;
    const eng_str *ss;
    ASSERT_OK(eng_gguf_get_str(g, "general.architecture", &s));
    ASSERT(eng_str_eq(s, "test"));
    ASSERT_OK(eng_gguf_get_u64(g, "t.u8", &u64));
    ASSERT_EQ(u64, 250);
    ASSERT_OK(eng_gguf_get_i64(g, "t.i8", &i64));
    ASSERT_EQ(i64, -120);
    ASSERT_OK(eng_gguf_get_u32(g, "t.u16", &u32));
    ASSERT_EQ(u32, 65000);
    ASSERT_OK(eng_gguf_get_i64(g, "t.i16", &i64));
    ASSERT_EQ(i64, -32000);
    ASSERT_OK(eng_gguf_get_u32(g, "t.u32", &u32));
    ASSERT_EQ(u32, 4000000000u);
    ASSERT_OK(eng_gguf_get_i64(g, "t.i32", &i64));
    ASSERT_EQ(i64, -2000000000);
    ASSERT_OK(eng_gguf_get_u64(g, "t.u64", &u64));
    ASSERT(u64 == UINT64_MAX - 1);
    ASSERT_OK(eng_gguf_get_i64(g, "t.i64", &i64));
    ASSERT(i64 == INT64_MIN + 1);
    ASSERT_OK(eng_gguf_get_f32(g, "t.f32", &f));
    ASSERT(f == 0.1f);
    const eng_gguf_kv *kv = eng_gguf_find(g, "t.f64");
    ASSERT(kv && kv->type == GGUF_TYPE_FLOAT64);
    double dv;
    memcpy(&dv, kv->data, 8);
    ASSERT(dv == 1e-300);
    ASSERT_OK(eng_gguf_get_bool(g, "t.bool", &b));
    ASSERT(b);
    ASSERT_OK(eng_gguf_get_str(g, "t.bytes", &s));
    ASSERT_EQ(s.len, 4);
    ASSERT_MEM_EQ(s.ptr, "a\0b\xff", 4);
    ASSERT_OK(eng_gguf_get_str(g, "t.empty", &s));
    ASSERT_EQ(s.len, 0);

    ASSERT_OK(eng_gguf_get_arr(g, "a.u8", GGUF_TYPE_UINT8, &n, &d));
    ASSERT_EQ(n, 3);
    ASSERT_MEM_EQ(d, "\x01\x02\xff", 3);
    int32_t i32s[4];
    ASSERT_OK(eng_gguf_get_arr(g, "a.i32", GGUF_TYPE_INT32, &n, &d));
    ASSERT_EQ(n, 4);
    memcpy(i32s, d, sizeof i32s);
    ASSERT(i32s[0] == -1 && i32s[3] == INT32_MAX);
    float f32s[2];
    ASSERT_OK(eng_gguf_get_arr(g, "a.f32", GGUF_TYPE_FLOAT32, &n, &d));
    memcpy(f32s, d, sizeof f32s);
    ASSERT(n == 2 && f32s[0] == 1.5f && f32s[1] == 0.0f);
    ASSERT_OK(eng_gguf_get_arr(g, "a.f64", GGUF_TYPE_FLOAT64, &n, &d));
    memcpy(&dv, d, 8);
    ASSERT(n == 1 && dv == 3.25);
    ASSERT_OK(eng_gguf_get_arr(g, "a.bool", GGUF_TYPE_BOOL, &n, &d));
    ASSERT(n == 3);
    ASSERT_MEM_EQ(d, "\x01\x00\x01", 3);
    uint64_t u64s[2];
    ASSERT_OK(eng_gguf_get_arr(g, "a.u64", GGUF_TYPE_UINT64, &n, &d));
    memcpy(u64s, d, sizeof u64s);
    ASSERT(n == 2 && u64s[0] == 0 && u64s[1] == UINT64_MAX);
    int16_t i16s[2];
    ASSERT_OK(eng_gguf_get_arr(g, "a.i16", GGUF_TYPE_INT16, &n, &d));
    memcpy(i16s, d, sizeof i16s);
    ASSERT(n == 2 && i16s[0] == -2 && i16s[1] == 2);
    ASSERT_OK(eng_gguf_get_arr(g, "a.empty", GGUF_TYPE_UINT32, &n, &d));
    ASSERT_EQ(n, 0);
    ASSERT_OK(eng_gguf_get_str_arr(g, "a.str", &n, &ss));
    ASSERT_EQ(n, 4);
    ASSERT(eng_str_eq(ss[0], "alpha"));
    ASSERT(eng_str_eq(ss[1], ""));
    ASSERT(eng_str_eq(ss[2], "γάμμα"));
    ASSERT(eng_str_eq(ss[3], "<|fim_prefix|>"));
    ASSERT_OK(eng_gguf_get_str_arr(g, "a.spans", &n, &ss));
    ASSERT(n == 2 && ss[0].len == 3 && ss[1].len == 2);
    ASSERT_MEM_EQ(ss[0].ptr, "x\0y", 3);
    ASSERT_OK(eng_gguf_get_str_arr(g, "a.str_empty", &n, &ss));
    ASSERT_EQ(n, 0);
    ASSERT_OK(eng_gguf_get_u32(g, "t.replaced", &u32));
    ASSERT_EQ(u32, 42);
    ASSERT(eng_gguf_find(g, "t.gone") == NULL);
    /* t.replaced kept its slot: right after t.empty. */
    const eng_gguf_kv *before = eng_gguf_find(g, "a.str_empty");
    ASSERT(eng_gguf_find(g, "t.replaced") == before + 1);
}

/* Add specs[], returning fresh random data for each (caller frees). */
static void add_specs(eng_gguf_w *w, void **data) {
    for (size_t i = 0; i < N_SPECS; i++) {
        int64_t idx = eng_gguf_w_add_tensor(w, specs[i].name, specs[i].type,
                                            specs[i].n_dims, specs[i].ne);
        ASSERT_EQ(idx, (int64_t)i);
        data[i] = rnd_bytes(eng_gguf_w_tensor_bytes(w, idx));
    }
}

static void check_specs(const eng_gguf *g, void **data, uint64_t align) {
    ASSERT_EQ(g->n_tensors, N_SPECS);
    ASSERT_EQ(g->alignment, align);
    ASSERT_EQ(g->data_offset % align, 0);
    uint64_t expect_off = 0;
    for (size_t i = 0; i < N_SPECS; i++) {
        const eng_gguf_tensor *t = &g->tensors[i];
        ASSERT_STR_EQ(t->name, specs[i].name);
        ASSERT(eng_gguf_find_tensor(g, specs[i].name) == t);
        ASSERT_EQ(t->type, specs[i].type);
        ASSERT_EQ(t->n_dims, specs[i].n_dims);
        uint64_t n_el = 1;
        for (uint32_t d = 0; d < 4; d++) {
            uint64_t want = d < specs[i].n_dims ? specs[i].ne[d] : 1;
            ASSERT_EQ(t->ne[d], want);
            n_el *= want;
        }
        ASSERT_EQ(t->n_elements, n_el);
        ASSERT_EQ(t->n_bytes, eng_row_size(specs[i].type, specs[i].ne[0]) *
                                  (n_el / specs[i].ne[0]));
        ASSERT_EQ(t->offset, expect_off);
        ASSERT_MEM_EQ(t->data, data[i], t->n_bytes);
        /* Padding after each tensor is zero. */
        uint64_t pad = (align - t->n_bytes % align) % align;
        const uint8_t *p = (const uint8_t *)t->data + t->n_bytes;
        for (uint64_t k = 0; k < pad; k++)
            ASSERT_EQ(p[k], 0);
        expect_off += t->n_bytes + pad;
    }
    ASSERT_EQ(g->size, g->data_offset + expect_off);
}

TEST_IMPL(gguf_write_roundtrip) {
    eng_gguf_w *w = eng_gguf_w_new();
    set_every_kv_type(w);
    void *data[N_SPECS];
    add_specs(w, data);
    ASSERT_EQ(eng_gguf_w_n_tensors(w), N_SPECS);
    const char *path = tmp_path("roundtrip.gguf");
    ASSERT_OK(eng_gguf_w_write_file(w, path, (const void *const *)data));
    ASSERT_STR_EQ(eng_gguf_w_error(w), "");
    uint64_t n_kv = eng_gguf_w_n_kv(w);
    eng_gguf_w_delete(w);

    eng_gguf *g;
    char err[256];
    int r = eng_gguf_open(path, &g, err, sizeof err);
    ASSERT_MSG(r == 0, "%s", err);
    ASSERT_EQ(g->version, 3);
    ASSERT_EQ(g->n_kv, n_kv);
    /* No general.alignment unless asked for: llama.cpp's default is 32. */
    ASSERT(eng_gguf_find(g, "general.alignment") == NULL);
    check_every_kv_type(g);
    check_specs(g, data, 32);

    /* Copying every KV and tensor of the file reproduces it exactly. */
    eng_gguf_w *w2 = eng_gguf_w_new();
    ASSERT_EQ(eng_gguf_w_copy_kvs(w2, g, NULL), (int64_t)g->n_kv);
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        const eng_gguf_tensor *t = &g->tensors[i];
        ASSERT_EQ(eng_gguf_w_add_tensor(w2, t->name, t->type, t->n_dims, t->ne),
                  (int64_t)i);
    }
    const char *path2 = tmp_path("roundtrip2.gguf");
    FILE *f = fopen(path2, "wb");
    ASSERT(f);
    ASSERT_OK(eng_gguf_w_write_header(w2, f));
    for (uint64_t i = 0; i < g->n_tensors; i++)
        ASSERT_OK(eng_gguf_w_write_tensor_data(w2, f, (int64_t)i,
                                               g->tensors[i].data));
    ASSERT_OK(eng_gguf_w_finish(w2, f));
    fclose(f);
    eng_gguf_w_delete(w2);
    char *a, *b;
    size_t na, nb;
    ASSERT_OK(nib_read_file(path, &a, &na));
    ASSERT_OK(nib_read_file(path2, &b, &nb));
    ASSERT_EQ(na, nb);
    ASSERT_MEM_EQ(a, b, na);
    nib_free(a);
    nib_free(b);

    eng_gguf_close(g);
    for (size_t i = 0; i < N_SPECS; i++)
        free(data[i]);
    unlink(path);
    unlink(path2);
    return 0;
}

/* Alignment 64 and data streamed in 7-byte chunks that straddle tensors. */
TEST_IMPL(gguf_write_streaming) {
    eng_gguf_w *w = eng_gguf_w_new();
    ASSERT_OK(eng_gguf_w_set_str(w, "general.architecture", "test"));
    ASSERT_OK(eng_gguf_w_set_alignment(w, 64));
    void *data[N_SPECS];
    add_specs(w, data);
    size_t total = 0;
    for (size_t i = 0; i < N_SPECS; i++)
        total += eng_gguf_w_tensor_bytes(w, (int64_t)i);
    uint8_t *all = malloc(total);
    ASSERT(all);
    for (size_t i = 0, at = 0; i < N_SPECS; i++) {
        size_t n = eng_gguf_w_tensor_bytes(w, (int64_t)i);
        memcpy(all + at, data[i], n);
        at += n;
    }
    const char *path = tmp_path("stream.gguf");
    FILE *f = fopen(path, "wb");
    ASSERT(f);
    ASSERT_OK(eng_gguf_w_write_header(w, f));
    for (size_t at = 0; at < total; at += 7)
        ASSERT_OK(eng_gguf_w_write_data(w, f, all + at,
                                        NIB_MIN((size_t)7, total - at)));
    ASSERT_EQ(eng_gguf_w_write_data(w, f, all, 1), NIB_ESTATE);
    ASSERT(strstr(eng_gguf_w_error(w), "past the last tensor"));
    ASSERT_OK(eng_gguf_w_finish(w, f));
    fclose(f);
    eng_gguf_w_delete(w);

    eng_gguf *g;
    char err[256];
    int r = eng_gguf_open(path, &g, err, sizeof err);
    ASSERT_MSG(r == 0, "%s", err);
    uint32_t a;
    ASSERT_OK(eng_gguf_get_u32(g, "general.alignment", &a));
    ASSERT_EQ(a, 64);
    check_specs(g, data, 64);
    eng_gguf_close(g);
    for (size_t i = 0; i < N_SPECS; i++)
        free(data[i]);
    free(all);
    unlink(path);
    return 0;
}

TEST_IMPL(gguf_write_errors) {
    eng_gguf_w *w = eng_gguf_w_new();
    uint64_t ne[4] = {32, 2, 1, 1};
    /* bad tensors */
    ASSERT_EQ(eng_gguf_w_add_tensor(w, "", ENG_TYPE_F32, 1, ne), NIB_EINVAL);
    char name[80];
    memset(name, 'n', sizeof name);
    name[GGUF_W_MAX_NAME + 1] = 0;
    ASSERT_EQ(eng_gguf_w_add_tensor(w, name, ENG_TYPE_F32, 1, ne), NIB_EINVAL);
    ASSERT(strstr(eng_gguf_w_error(w), "longer than 63"));
    name[GGUF_W_MAX_NAME] = 0;
    ASSERT_EQ(eng_gguf_w_add_tensor(w, name, ENG_TYPE_F32, 1, ne), 0);
    ASSERT_EQ(eng_gguf_w_add_tensor(w, name, ENG_TYPE_F16, 1, ne), NIB_EINVAL);
    ASSERT(strstr(eng_gguf_w_error(w), "duplicate"));
    ASSERT_EQ(eng_gguf_w_add_tensor(w, "x", (eng_type)4, 1, ne), NIB_EINVAL);
    ASSERT(strstr(eng_gguf_w_error(w), "unknown tensor type 4"));
    ASSERT_EQ(eng_gguf_w_add_tensor(w, "x", (eng_type)99, 1, ne), NIB_EINVAL);
    ASSERT_EQ(eng_gguf_w_add_tensor(w, "x", ENG_TYPE_F32, 0, ne), NIB_EINVAL);
    ASSERT_EQ(eng_gguf_w_add_tensor(w, "x", ENG_TYPE_F32, 5, ne), NIB_EINVAL);
    ASSERT_EQ(eng_gguf_w_add_tensor(w, "x", ENG_TYPE_Q4_K, 2, ne), NIB_EINVAL);
    ASSERT(strstr(eng_gguf_w_error(w), "block size 256"));
    uint64_t zero[2] = {32, 0};
    ASSERT_EQ(eng_gguf_w_add_tensor(w, "x", ENG_TYPE_F32, 2, zero), NIB_EINVAL);
    uint64_t huge[3] = {1ull << 32, 1ull << 32, 2};
    ASSERT_EQ(eng_gguf_w_add_tensor(w, "x", ENG_TYPE_F32, 3, huge), NIB_EINVAL);
    ASSERT(strstr(eng_gguf_w_error(w), "overflows"));
    uint64_t big_bytes[2] = {1ull << 40, 1ull << 22};
    ASSERT_EQ(eng_gguf_w_add_tensor(w, "x", ENG_TYPE_F64, 2, big_bytes),
              NIB_EINVAL);
    ASSERT_EQ(eng_gguf_w_add_tensor(w, "y", ENG_TYPE_F32, 2, ne), 1);
    /* bad KVs */
    ASSERT_EQ(eng_gguf_w_set_u32(w, "", 1), NIB_EINVAL);
    ASSERT_EQ(eng_gguf_w_set_arr(w, "k", GGUF_TYPE_STRING, NULL, 0),
              NIB_EINVAL);
    ASSERT_EQ(eng_gguf_w_set_arr(w, "k", GGUF_TYPE_ARRAY, NULL, 0), NIB_EINVAL);
    ASSERT_EQ(eng_gguf_w_set_arr(w, "k", GGUF_TYPE_BOOL, "\x02", 1),
              NIB_EINVAL);
    ASSERT_EQ(eng_gguf_w_set_alignment(w, 0), NIB_EINVAL);
    ASSERT_EQ(eng_gguf_w_set_alignment(w, 48), NIB_EINVAL);
    /* general.alignment must be a uint32 power of two when the header is
     * written (llama.cpp rejects anything else). */
    FILE *f = fopen(tmp_path("errors.gguf"), "wb");
    ASSERT(f);
    ASSERT_OK(eng_gguf_w_set_u64(w, "general.alignment", 64));
    ASSERT_EQ(eng_gguf_w_write_header(w, f), NIB_EINVAL);
    ASSERT(strstr(eng_gguf_w_error(w), "must be uint32"));
    ASSERT_OK(eng_gguf_w_set_u32(w, "general.alignment", 12));
    ASSERT_EQ(eng_gguf_w_write_header(w, f), NIB_EINVAL);
    ASSERT_OK(eng_gguf_w_remove(w, "general.alignment"));
    /* order of calls */
    ASSERT_EQ(eng_gguf_w_write_data(w, f, "x", 1), NIB_ESTATE);
    ASSERT_EQ(eng_gguf_w_finish(w, f), NIB_ESTATE);
    ASSERT_OK(eng_gguf_w_write_header(w, f));
    ASSERT_EQ(eng_gguf_w_write_header(w, f), NIB_ESTATE);
    ASSERT_EQ(eng_gguf_w_set_u32(w, "late", 1), NIB_ESTATE);
    ASSERT_EQ(eng_gguf_w_add_tensor(w, "late", ENG_TYPE_F32, 1, ne),
              NIB_ESTATE);
    float buf[64] = {0};
    ASSERT_EQ(eng_gguf_w_write_tensor_data(w, f, 1, buf), NIB_ESTATE);
    ASSERT(strstr(eng_gguf_w_error(w), "out of order"));
    ASSERT_EQ(eng_gguf_w_finish(w, f), NIB_ESTATE);
    ASSERT(strstr(eng_gguf_w_error(w), "not written"));
    ASSERT_OK(eng_gguf_w_write_data(w, f, buf, 10));
    /* A partly streamed tensor cannot be written whole. */
    ASSERT_EQ(eng_gguf_w_write_tensor_data(w, f, 0, buf), NIB_ESTATE);
    ASSERT_OK(eng_gguf_w_write_data(w, f, buf, 128 - 10));
    ASSERT_OK(eng_gguf_w_write_tensor_data(w, f, 1, buf));
    ASSERT_OK(eng_gguf_w_finish(w, f));
    ASSERT_EQ(eng_gguf_w_finish(w, f), NIB_ESTATE);
    fclose(f);
    eng_gguf_w_delete(w);
    eng_gguf_w_delete(NULL);

    eng_gguf *g;
    char err[256];
    int r = eng_gguf_open(tmp_path("errors.gguf"), &g, err, sizeof err);
    ASSERT_MSG(r == 0, "%s", err);
    ASSERT_EQ(g->n_tensors, 2);
    ASSERT_EQ(strlen(g->tensors[0].name), GGUF_W_MAX_NAME);
    eng_gguf_close(g);
    unlink(tmp_path("errors.gguf"));

    /* Write errors surface as NIB_EIO. */
    w = eng_gguf_w_new();
    ASSERT_OK(eng_gguf_w_set_str(w, "general.architecture", "test"));
    ASSERT_EQ(eng_gguf_w_add_tensor(w, "t", ENG_TYPE_F32, 1, ne), 0);
    const void *d[1] = {buf};
    if (access("/dev/full", W_OK) == 0) {
        ASSERT_EQ(eng_gguf_w_write_file(w, "/dev/full", d), NIB_EIO);
        ASSERT(eng_gguf_w_error(w)[0]);
    }
    eng_gguf_w_delete(w);
    w = eng_gguf_w_new();
    ASSERT_EQ(eng_gguf_w_write_file(w, "/nonexistent/dir/x.gguf", d), NIB_EIO);
    ASSERT(strstr(eng_gguf_w_error(w), "/nonexistent/dir/x.gguf"));
    eng_gguf_w_delete(w);
    return 0;
}

/* ---- with the shared files ----------------------------------------------- */

static const char *const vocab_names[] = {
    "qwen2", "starcoder", "deepseek-coder", "refact",
    "gpt-2", "falcon",    "llama-spm",
};

/* A random-weight model needs a real vocab: copy every tokenizer.* key of
 * each shared vocab file into a new file and compare them all. */
TEST_IMPL(gguf_write_copy_tokenizer) {
    if (!test_shared_dir())
        TEST_SKIP("../shared absent: tokenizer copy not checked");
    int n_seen = 0;
    for (size_t v = 0; v < NIB_ARRAY_LEN(vocab_names); v++) {
        char rel[128];
        snprintf(rel, sizeof rel, "vocab/ggml-vocab-%s.gguf", vocab_names[v]);
        const char *src_path = test_shared(rel);
        if (!src_path)
            continue;
        n_seen++;
        eng_gguf *src;
        char err[256];
        int r = eng_gguf_open(src_path, &src, err, sizeof err);
        ASSERT_MSG(r == 0, "%s", err);

        eng_gguf_w *w = eng_gguf_w_new();
        ASSERT_OK(eng_gguf_w_set_str(w, "general.architecture", "llama"));
        int64_t n_tok = eng_gguf_w_copy_kvs(w, src, "tokenizer.");
        ASSERT(n_tok >= 3);
        uint64_t ne[2] = {32, 4};
        ASSERT_EQ(
            eng_gguf_w_add_tensor(w, "token_embd.weight", ENG_TYPE_F32, 2, ne),
            0);
        float *emb = rnd_bytes(32 * 4 * sizeof(float));
        const void *d[1] = {emb};
        const char *path = tmp_path("vocab-copy.gguf");
        ASSERT_OK(eng_gguf_w_write_file(w, path, d));
        eng_gguf_w_delete(w);

        eng_gguf *g;
        r = eng_gguf_open(path, &g, err, sizeof err);
        ASSERT_MSG(r == 0, "%s", err);
        ASSERT_EQ(g->n_kv, (uint64_t)n_tok + 1);
        int64_t seen = 0;
        for (uint64_t i = 0; i < src->n_kv; i++) {
            const eng_gguf_kv *a = &src->kv[i];
            if (strncmp(a->key_z, "tokenizer.", 10) != 0)
                continue;
            const eng_gguf_kv *b = eng_gguf_find(g, a->key_z);
            ASSERT_MSG(b, "%s: %s not copied", rel, a->key_z);
            assert_kv_equal(a, b);
            seen++;
        }
        ASSERT_EQ(seen, n_tok);
        eng_str arch;
        ASSERT_OK(eng_gguf_get_str(g, "general.architecture", &arch));
        ASSERT(eng_str_eq(arch, "llama"));
        ASSERT_MEM_EQ(eng_gguf_find_tensor(g, "token_embd.weight")->data, emb,
                      32 * 4 * sizeof(float));
        eng_gguf_close(g);
        eng_gguf_close(src);
        free(emb);
        unlink(path);
    }
    if (!n_seen)
        TEST_SKIP("no shared vocab files found");
    return 0;
}

static const char *const model_names[] = {
    "stories260K.gguf",   "rq-star-f16.gguf",    "rq-star-q8_0.gguf",
    "rq-star-q4_0.gguf",  "rq-star-q4_k_m.gguf", "rq-star-q5_k_m.gguf",
    "rl-dsc-q4_k_m.gguf", "rq-qwen-q4_k_m.gguf",
};

/* The shared models come from llama.cpp's converter and quantizer.
 * Re-emitting every KV and tensor, in order, must give the same bytes:
 * same header encoding, same offsets, same padding. */
TEST_IMPL(gguf_write_rewrite_models) {
    if (!test_shared_dir())
        TEST_SKIP("../shared absent: model rewrite not checked");
    int n_seen = 0;
    for (size_t m = 0; m < NIB_ARRAY_LEN(model_names); m++) {
        char rel[128];
        snprintf(rel, sizeof rel, "models/%s", model_names[m]);
        const char *src_path = test_shared(rel);
        if (!src_path)
            continue;
        n_seen++;
        eng_gguf *src;
        char err[256];
        int r = eng_gguf_open(src_path, &src, err, sizeof err);
        ASSERT_MSG(r == 0, "%s", err);
        eng_gguf_w *w = eng_gguf_w_new();
        ASSERT_EQ(eng_gguf_w_copy_kvs(w, src, ""), (int64_t)src->n_kv);
        const void **d = malloc(src->n_tensors * sizeof *d);
        ASSERT(d);
        for (uint64_t i = 0; i < src->n_tensors; i++) {
            const eng_gguf_tensor *t = &src->tensors[i];
            ASSERT_EQ(
                eng_gguf_w_add_tensor(w, t->name, t->type, t->n_dims, t->ne),
                (int64_t)i);
            d[i] = t->data;
        }
        const char *path = tmp_path("rewrite.gguf");
        ASSERT_OK(eng_gguf_w_write_file(w, path, d));
        eng_gguf_w_delete(w);
        free(d);

        char *bytes;
        size_t n;
        ASSERT_OK(nib_read_file(path, &bytes, &n));
        ASSERT_MSG(n == src->size, "%s: %zu bytes vs %zu", rel, n, src->size);
        for (size_t i = 0; i < n; i++)
            if (bytes[i] != ((const char *)src->map)[i])
                ASSERT_MSG(0, "%s: first difference at byte %zu", rel, i);
        nib_free(bytes);
        eng_gguf_close(src);
        unlink(path);
    }
    if (!n_seen)
        TEST_SKIP("no shared models found");
    return 0;
}
