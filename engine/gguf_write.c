/*
 * gguf_write.c — GGUF v3 writer (see gguf_write.h for the call sequence).
 *
 * Each KV is kept serialized exactly as it will appear after its key (type
 * tag + value bytes), so writing the header is a concatenation and copying a
 * KV from another file is a byte copy of its value. Tensor offsets are
 * assigned when the header is written, because they depend on the alignment,
 * which may be set at any point before that.
 */
#include "gguf_write.h"

#include <errno.h>
#include <stdarg.h>
#include <string.h>

#include "common/nib.h"

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "the GGUF writer stores host integers as little-endian"
#endif

#define GGUF_W_VERSION 3

typedef struct {
    char *key;
    uint8_t *val; /* u32 type, then the value as in the file */
    size_t val_len;
} w_kv;

typedef struct {
    char *name;
    uint32_t type;
    uint32_t n_dims;
    uint64_t ne[GGUF_MAX_DIMS];
    uint64_t n_bytes;
    uint64_t offset; /* from the data section start, set by write_header */
} w_tensor;

enum { W_BUILDING, W_DATA, W_DONE };

struct eng_gguf_w {
    w_kv *kv;
    uint64_t n_kv, cap_kv;
    w_tensor *t;
    uint64_t n_t, cap_t;
    int state;
    uint64_t alignment;
    /* Streaming position: tensor being written and bytes of it so far. */
    uint64_t cur;
    uint64_t cur_done;
    char err[256];
};

static int fail(eng_gguf_w *w, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail(eng_gguf_w *w, int code, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(w->err, sizeof w->err, fmt, ap);
    va_end(ap);
    return code;
}

eng_gguf_w *eng_gguf_w_new(void) {
    eng_gguf_w *w = nib_calloc(1, sizeof *w);
    w->alignment = GGUF_DEFAULT_ALIGNMENT;
    return w;
}

void eng_gguf_w_delete(eng_gguf_w *w) {
    if (!w)
        return;
    for (uint64_t i = 0; i < w->n_kv; i++) {
        nib_free(w->kv[i].key);
        nib_free(w->kv[i].val);
    }
    for (uint64_t i = 0; i < w->n_t; i++)
        nib_free(w->t[i].name);
    nib_free(w->kv);
    nib_free(w->t);
    nib_free(w);
}

const char *eng_gguf_w_error(const eng_gguf_w *w) {
    return w->err;
}

uint64_t eng_gguf_w_n_kv(const eng_gguf_w *w) {
    return w->n_kv;
}

uint64_t eng_gguf_w_n_tensors(const eng_gguf_w *w) {
    return w->n_t;
}

uint64_t eng_gguf_w_tensor_bytes(const eng_gguf_w *w, int64_t idx) {
    return idx >= 0 && (uint64_t)idx < w->n_t ? w->t[idx].n_bytes : 0;
}

/* ---- serialized values ----------------------------------------------------
 * A growable byte buffer. Values come from the caller's memory (vocab
 * arrays of a few MB at most), so its growth aborts on OOM like any
 * nib_realloc. */

typedef struct {
    uint8_t *p;
    size_t n, cap;
} wbuf;

static void wb_put(wbuf *b, const void *src, size_t n) {
    if (n > b->cap - b->n) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap - b->n < n)
            cap *= 2;
        b->p = nib_realloc(b->p, cap);
        b->cap = cap;
    }
    if (n)
        memcpy(b->p + b->n, src, n);
    b->n += n;
}

static void wb_u32(wbuf *b, uint32_t v) {
    wb_put(b, &v, 4);
}

static void wb_u64(wbuf *b, uint64_t v) {
    wb_put(b, &v, 8);
}

static void wb_str(wbuf *b, const char *s, size_t n) {
    wb_u64(b, n);
    wb_put(b, s, n);
}

static int check_key(eng_gguf_w *w, const char *key) {
    if (w->state != W_BUILDING)
        return fail(w, NIB_ESTATE, "key %s: header already written",
                    key ? key : "(null)");
    if (!key || !key[0])
        return fail(w, NIB_EINVAL, "empty key");
    return 0;
}

static int64_t find_kv(const eng_gguf_w *w, const char *key) {
    for (uint64_t i = 0; i < w->n_kv; i++)
        if (strcmp(w->kv[i].key, key) == 0)
            return (int64_t)i;
    return -1;
}

/* Store a serialized value under key (takes ownership of b's buffer). */
static int put_kv(eng_gguf_w *w, const char *key, wbuf *b) {
    int64_t i = find_kv(w, key);
    if (i >= 0) {
        nib_free(w->kv[i].val);
    } else {
        if (w->n_kv == w->cap_kv) {
            w->cap_kv = w->cap_kv ? w->cap_kv * 2 : 16;
            w->kv = nib_realloc(w->kv, w->cap_kv * sizeof *w->kv);
        }
        i = (int64_t)w->n_kv++;
        w->kv[i].key = nib_strdup(key);
    }
    w->kv[i].val = b->p;
    w->kv[i].val_len = b->n;
    w->err[0] = 0;
    return 0;
}

static int set_scalar(eng_gguf_w *w, const char *key, gguf_type t,
                      const void *v) {
    int r = check_key(w, key);
    if (r)
        return r;
    wbuf b = {0};
    wb_u32(&b, t);
    wb_put(&b, v, gguf_type_size(t));
    return put_kv(w, key, &b);
}

int eng_gguf_w_set_u8(eng_gguf_w *w, const char *key, uint8_t v) {
    return set_scalar(w, key, GGUF_TYPE_UINT8, &v);
}
int eng_gguf_w_set_i8(eng_gguf_w *w, const char *key, int8_t v) {
    return set_scalar(w, key, GGUF_TYPE_INT8, &v);
}
int eng_gguf_w_set_u16(eng_gguf_w *w, const char *key, uint16_t v) {
    return set_scalar(w, key, GGUF_TYPE_UINT16, &v);
}
int eng_gguf_w_set_i16(eng_gguf_w *w, const char *key, int16_t v) {
    return set_scalar(w, key, GGUF_TYPE_INT16, &v);
}
int eng_gguf_w_set_u32(eng_gguf_w *w, const char *key, uint32_t v) {
    return set_scalar(w, key, GGUF_TYPE_UINT32, &v);
}
int eng_gguf_w_set_i32(eng_gguf_w *w, const char *key, int32_t v) {
    return set_scalar(w, key, GGUF_TYPE_INT32, &v);
}
int eng_gguf_w_set_u64(eng_gguf_w *w, const char *key, uint64_t v) {
    return set_scalar(w, key, GGUF_TYPE_UINT64, &v);
}
int eng_gguf_w_set_i64(eng_gguf_w *w, const char *key, int64_t v) {
    return set_scalar(w, key, GGUF_TYPE_INT64, &v);
}
int eng_gguf_w_set_f32(eng_gguf_w *w, const char *key, float v) {
    return set_scalar(w, key, GGUF_TYPE_FLOAT32, &v);
}
int eng_gguf_w_set_f64(eng_gguf_w *w, const char *key, double v) {
    return set_scalar(w, key, GGUF_TYPE_FLOAT64, &v);
}
int eng_gguf_w_set_bool(eng_gguf_w *w, const char *key, bool v) {
    uint8_t b = v ? 1 : 0;
    return set_scalar(w, key, GGUF_TYPE_BOOL, &b);
}

int eng_gguf_w_set_strn(eng_gguf_w *w, const char *key, const char *s,
                        size_t len) {
    int r = check_key(w, key);
    if (r)
        return r;
    wbuf b = {0};
    wb_u32(&b, GGUF_TYPE_STRING);
    wb_str(&b, s, len);
    return put_kv(w, key, &b);
}

int eng_gguf_w_set_str(eng_gguf_w *w, const char *key, const char *s) {
    return eng_gguf_w_set_strn(w, key, s, strlen(s));
}

int eng_gguf_w_set_arr(eng_gguf_w *w, const char *key, gguf_type elem,
                       const void *data, uint64_t n) {
    int r = check_key(w, key);
    if (r)
        return r;
    size_t es = gguf_type_size(elem);
    if (es == 0)
        return fail(w, NIB_EINVAL,
                    "key %s: array element type %s is not a fixed-size type",
                    key, gguf_type_name(elem));
    if (n > SIZE_MAX / es)
        return fail(w, NIB_EINVAL, "key %s: array too large", key);
    if (elem == GGUF_TYPE_BOOL)
        for (uint64_t i = 0; i < n; i++)
            if (((const uint8_t *)data)[i] > 1)
                return fail(w, NIB_EINVAL, "key %s: bool #%llu is not 0 or 1",
                            key, (unsigned long long)i);
    wbuf b = {0};
    wb_u32(&b, GGUF_TYPE_ARRAY);
    wb_u32(&b, elem);
    wb_u64(&b, n);
    wb_put(&b, data, (size_t)n * es);
    return put_kv(w, key, &b);
}

int eng_gguf_w_set_str_arr(eng_gguf_w *w, const char *key,
                           const char *const *strs, uint64_t n) {
    int r = check_key(w, key);
    if (r)
        return r;
    wbuf b = {0};
    wb_u32(&b, GGUF_TYPE_ARRAY);
    wb_u32(&b, GGUF_TYPE_STRING);
    wb_u64(&b, n);
    for (uint64_t i = 0; i < n; i++)
        wb_str(&b, strs[i], strlen(strs[i]));
    return put_kv(w, key, &b);
}

int eng_gguf_w_set_str_arr_spans(eng_gguf_w *w, const char *key,
                                 const eng_str *strs, uint64_t n) {
    int r = check_key(w, key);
    if (r)
        return r;
    wbuf b = {0};
    wb_u32(&b, GGUF_TYPE_ARRAY);
    wb_u32(&b, GGUF_TYPE_STRING);
    wb_u64(&b, n);
    for (uint64_t i = 0; i < n; i++)
        wb_str(&b, strs[i].ptr, strs[i].len);
    return put_kv(w, key, &b);
}

int eng_gguf_w_set_alignment(eng_gguf_w *w, uint32_t alignment) {
    if (alignment == 0 || (alignment & (alignment - 1)) != 0)
        return fail(w, NIB_EINVAL, "alignment %u is not a power of two",
                    alignment);
    return eng_gguf_w_set_u32(w, "general.alignment", alignment);
}

int eng_gguf_w_copy_kv(eng_gguf_w *w, const eng_gguf_kv *kv) {
    const char *key = kv->key_z;
    int r = check_key(w, key);
    if (r)
        return r;
    /* The reader validated every extent below when it parsed the file. */
    wbuf b = {0};
    wb_u32(&b, kv->type);
    if (kv->type == GGUF_TYPE_STRING) {
        uint64_t len;
        memcpy(&len, kv->data, 8);
        wb_str(&b, (const char *)kv->data + 8, len);
    } else if (kv->type != GGUF_TYPE_ARRAY) {
        wb_put(&b, kv->data, gguf_type_size(kv->type));
    } else {
        wb_u32(&b, kv->arr_type);
        wb_u64(&b, kv->arr_n);
        if (kv->arr_type == GGUF_TYPE_STRING)
            for (uint64_t i = 0; i < kv->arr_n; i++)
                wb_str(&b, kv->strs[i].ptr, kv->strs[i].len);
        else
            wb_put(&b, kv->data, kv->arr_n * gguf_type_size(kv->arr_type));
    }
    return put_kv(w, key, &b);
}

int64_t eng_gguf_w_copy_kvs(eng_gguf_w *w, const eng_gguf *g,
                            const char *prefix) {
    size_t plen = prefix ? strlen(prefix) : 0;
    int64_t n = 0;
    for (uint64_t i = 0; i < g->n_kv; i++) {
        if (plen && strncmp(g->kv[i].key_z, prefix, plen) != 0)
            continue;
        int r = eng_gguf_w_copy_kv(w, &g->kv[i]);
        if (r)
            return r;
        n++;
    }
    return n;
}

int eng_gguf_w_remove(eng_gguf_w *w, const char *key) {
    int r = check_key(w, key);
    if (r)
        return r;
    int64_t i = find_kv(w, key);
    if (i < 0)
        return fail(w, NIB_ENOENT, "key %s: not set", key);
    nib_free(w->kv[i].key);
    nib_free(w->kv[i].val);
    memmove(&w->kv[i], &w->kv[i + 1],
            (w->n_kv - (uint64_t)i - 1) * sizeof *w->kv);
    w->n_kv--;
    return 0;
}

/* ---- tensors ------------------------------------------------------------- */

int64_t eng_gguf_w_add_tensor(eng_gguf_w *w, const char *name, eng_type type,
                              uint32_t n_dims, const uint64_t *ne) {
    if (w->state != W_BUILDING)
        return fail(w, NIB_ESTATE, "tensor %s: header already written",
                    name ? name : "(null)");
    if (!name || !name[0])
        return fail(w, NIB_EINVAL, "empty tensor name");
    if (strlen(name) > GGUF_W_MAX_NAME)
        return fail(w, NIB_EINVAL,
                    "tensor %s: name longer than %d bytes (ggml's limit)", name,
                    GGUF_W_MAX_NAME);
    if ((unsigned)type >= ENG_TYPE_COUNT ||
        eng_type_traits[type].type_size == 0)
        return fail(w, NIB_EINVAL, "tensor %s: unknown tensor type %d", name,
                    (int)type);
    if (n_dims < 1 || n_dims > GGUF_MAX_DIMS)
        return fail(w, NIB_EINVAL, "tensor %s: n_dims %u is not in 1..%d", name,
                    n_dims, GGUF_MAX_DIMS);
    for (uint64_t i = 0; i < w->n_t; i++)
        if (strcmp(w->t[i].name, name) == 0)
            return fail(w, NIB_EINVAL, "tensor %s: duplicate name", name);
    w_tensor t = {.type = type, .n_dims = n_dims};
    uint64_t n_el = 1;
    for (uint32_t d = 0; d < GGUF_MAX_DIMS; d++) {
        t.ne[d] = d < n_dims ? ne[d] : 1;
        if (t.ne[d] == 0)
            return fail(w, NIB_EINVAL, "tensor %s: dimension %u is zero", name,
                        d);
        if (t.ne[d] > (uint64_t)INT64_MAX / n_el)
            return fail(w, NIB_EINVAL, "tensor %s: element count overflows",
                        name);
        n_el *= t.ne[d];
    }
    const eng_type_traits_t *tt = &eng_type_traits[type];
    if (t.ne[0] % (uint64_t)tt->blck_size != 0)
        return fail(w, NIB_EINVAL,
                    "tensor %s: row length %llu is not a multiple of the %s "
                    "block size %lld",
                    name, (unsigned long long)t.ne[0], tt->name,
                    (long long)tt->blck_size);
    /* Same overflow guard as the reader: bytes = blocks x block size x rows
     * must fit in 64 bits. */
    uint64_t blocks = t.ne[0] / (uint64_t)tt->blck_size;
    uint64_t rows = n_el / t.ne[0];
    if (blocks > UINT64_MAX / tt->type_size ||
        blocks * tt->type_size > (UINT64_MAX / 2) / rows)
        return fail(w, NIB_EINVAL, "tensor %s: data size overflows", name);
    t.n_bytes = blocks * tt->type_size * rows;
    if (w->n_t == w->cap_t) {
        w->cap_t = w->cap_t ? w->cap_t * 2 : 64;
        w->t = nib_realloc(w->t, w->cap_t * sizeof *w->t);
    }
    t.name = nib_strdup(name);
    w->t[w->n_t] = t;
    w->err[0] = 0;
    return (int64_t)w->n_t++;
}

/* ---- output -------------------------------------------------------------- */

static int write_bytes(eng_gguf_w *w, FILE *f, const void *p, size_t n) {
    if (n && fwrite(p, 1, n, f) != n)
        return fail(w, NIB_EIO, "write failed: %s", strerror(errno));
    return 0;
}

static int write_zeros(eng_gguf_w *w, FILE *f, uint64_t n) {
    static const uint8_t zeros[256];
    while (n) {
        size_t k = n < sizeof zeros ? (size_t)n : sizeof zeros;
        int r = write_bytes(w, f, zeros, k);
        if (r)
            return r;
        n -= k;
    }
    return 0;
}

static uint64_t pad_to(uint64_t n, uint64_t align) {
    return (align - n % align) % align;
}

/* general.alignment, if set, must be what llama.cpp accepts: a uint32
 * power of two. */
static int resolve_alignment(eng_gguf_w *w) {
    w->alignment = GGUF_DEFAULT_ALIGNMENT;
    int64_t i = find_kv(w, "general.alignment");
    if (i < 0)
        return 0;
    const w_kv *kv = &w->kv[i];
    uint32_t type, v;
    memcpy(&type, kv->val, 4);
    if (type != GGUF_TYPE_UINT32)
        return fail(w, NIB_EINVAL,
                    "key general.alignment: has type %s, must be uint32",
                    gguf_type_name((gguf_type)type));
    memcpy(&v, kv->val + 4, 4);
    if (v == 0 || (v & (v - 1)) != 0)
        return fail(w, NIB_EINVAL,
                    "key general.alignment: %u is not a power of two", v);
    w->alignment = v;
    return 0;
}

int eng_gguf_w_write_header(eng_gguf_w *w, FILE *f) {
    if (w->state != W_BUILDING)
        return fail(w, NIB_ESTATE, "header already written");
    int r = resolve_alignment(w);
    if (r)
        return r;
    uint64_t off = 0;
    for (uint64_t i = 0; i < w->n_t; i++) {
        w->t[i].offset = off;
        off += w->t[i].n_bytes + pad_to(w->t[i].n_bytes, w->alignment);
    }

    /* Serialize the whole header in memory first: it is small next to the
     * data, and one write keeps the error handling in one place. */
    wbuf b = {0};
    wb_put(&b, "GGUF", 4);
    wb_u32(&b, GGUF_W_VERSION);
    wb_u64(&b, w->n_t);
    wb_u64(&b, w->n_kv);
    for (uint64_t i = 0; i < w->n_kv; i++) {
        wb_str(&b, w->kv[i].key, strlen(w->kv[i].key));
        wb_put(&b, w->kv[i].val, w->kv[i].val_len);
    }
    for (uint64_t i = 0; i < w->n_t; i++) {
        const w_tensor *t = &w->t[i];
        wb_str(&b, t->name, strlen(t->name));
        wb_u32(&b, t->n_dims);
        for (uint32_t d = 0; d < t->n_dims; d++)
            wb_u64(&b, t->ne[d]);
        wb_u32(&b, t->type);
        wb_u64(&b, t->offset);
    }
    r = write_bytes(w, f, b.p, b.n);
    if (!r)
        r = write_zeros(w, f, pad_to(b.n, w->alignment));
    nib_free(b.p);
    if (r)
        return r;
    w->state = W_DATA;
    w->cur = 0;
    w->cur_done = 0;
    w->err[0] = 0;
    return 0;
}

int eng_gguf_w_write_data(eng_gguf_w *w, FILE *f, const void *data, size_t n) {
    if (w->state != W_DATA)
        return fail(w, NIB_ESTATE,
                    "tensor data written before the header "
                    "or after finish");
    const uint8_t *p = data;
    while (n) {
        if (w->cur >= w->n_t)
            return fail(w, NIB_ESTATE,
                        "%zu bytes of tensor data past the last tensor", n);
        const w_tensor *t = &w->t[w->cur];
        uint64_t want = t->n_bytes - w->cur_done;
        size_t k = want < n ? (size_t)want : n;
        int r = write_bytes(w, f, p, k);
        if (r)
            return r;
        p += k;
        n -= k;
        w->cur_done += k;
        if (w->cur_done == t->n_bytes) {
            if ((r = write_zeros(w, f, pad_to(t->n_bytes, w->alignment))))
                return r;
            w->cur++;
            w->cur_done = 0;
        }
    }
    return 0;
}

int eng_gguf_w_write_tensor_data(eng_gguf_w *w, FILE *f, int64_t idx,
                                 const void *data) {
    if (w->state != W_DATA)
        return fail(w, NIB_ESTATE,
                    "tensor data written before the header "
                    "or after finish");
    if (idx < 0 || (uint64_t)idx != w->cur || w->cur_done != 0)
        return fail(w, NIB_ESTATE,
                    "tensor #%lld written out of order (next is #%llu%s)",
                    (long long)idx, (unsigned long long)w->cur,
                    w->cur_done ? ", partly written" : "");
    uint64_t n = w->t[idx].n_bytes;
    if (n > SIZE_MAX)
        return fail(w, NIB_EINVAL, "tensor too large for this platform");
    return eng_gguf_w_write_data(w, f, data, (size_t)n);
}

int eng_gguf_w_finish(eng_gguf_w *w, FILE *f) {
    if (w->state != W_DATA)
        return fail(w, NIB_ESTATE, "finish before the header or twice");
    if (w->cur < w->n_t)
        return fail(w, NIB_ESTATE,
                    "tensor %s: data not written (%llu of %llu bytes)",
                    w->t[w->cur].name, (unsigned long long)w->cur_done,
                    (unsigned long long)w->t[w->cur].n_bytes);
    if (fflush(f) != 0 || ferror(f))
        return fail(w, NIB_EIO, "write failed: %s", strerror(errno));
    w->state = W_DONE;
    return 0;
}

int eng_gguf_w_write_file(eng_gguf_w *w, const char *path,
                          const void *const *data) {
    FILE *f = fopen(path, "wb");
    if (!f)
        return fail(w, NIB_EIO, "%s: %s", path, strerror(errno));
    int r = eng_gguf_w_write_header(w, f);
    for (uint64_t i = 0; !r && i < w->n_t; i++)
        r = eng_gguf_w_write_tensor_data(w, f, (int64_t)i, data[i]);
    if (!r)
        r = eng_gguf_w_finish(w, f);
    if (fclose(f) != 0 && !r)
        r = fail(w, NIB_EIO, "%s: %s", path, strerror(errno));
    return r;
}
