/*
 * gguf.c — GGUF v2/v3 reader over an mmapped file or a caller buffer.
 *
 * The layout is drawn in gguf.h. Parsing is one forward pass with a cursor
 * that never moves past the end of the image: every read first checks that
 * the bytes it needs are there, and every size computed from the file (array
 * bytes, element counts, tensor extents) is overflow-checked before it is
 * compared with what is left. Counts read from the header are bounded by the
 * smallest encoding of one entry before anything is allocated for them, so a
 * 100-byte file claiming 2^60 keys fails with a message instead of a huge
 * allocation. Multi-byte values are read with memcpy because nothing in the
 * format is naturally aligned.
 *
 * The KVs and tensor infos point into the image (spans, tensor data); only
 * NUL-terminated copies of names and the string-array span tables are
 * allocated.
 */
#include "gguf.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/nib.h"
#include "quant.h"

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "the GGUF reader reads little-endian fields with memcpy"
#endif

/* Smallest possible encodings, used to bound header counts by the bytes
 * left: a KV is a key length (8), a value type (4) and at least a 1-byte
 * value; a tensor info is a name length (8), n_dims (4), one dim (8), a type
 * (4) and an offset (8); a string in an array is at least its length. */
#define MIN_KV_BYTES          13
#define MIN_TENSOR_INFO_BYTES 32
#define MIN_ARR_STR_BYTES     8

/* Hash slots hold index + 1 in a uint32_t, and 0 means empty. */
#define MAX_ENTRIES (UINT32_MAX / 4)

static const uint8_t value_size[GGUF_TYPE_COUNT] = {
    [GGUF_TYPE_UINT8] = 1,   [GGUF_TYPE_INT8] = 1,   [GGUF_TYPE_UINT16] = 2,
    [GGUF_TYPE_INT16] = 2,   [GGUF_TYPE_UINT32] = 4, [GGUF_TYPE_INT32] = 4,
    [GGUF_TYPE_FLOAT32] = 4, [GGUF_TYPE_BOOL] = 1,   [GGUF_TYPE_STRING] = 0,
    [GGUF_TYPE_ARRAY] = 0,   [GGUF_TYPE_UINT64] = 8, [GGUF_TYPE_INT64] = 8,
    [GGUF_TYPE_FLOAT64] = 8,
};

static const char *const type_names[GGUF_TYPE_COUNT] = {
    [GGUF_TYPE_UINT8] = "uint8",     [GGUF_TYPE_INT8] = "int8",
    [GGUF_TYPE_UINT16] = "uint16",   [GGUF_TYPE_INT16] = "int16",
    [GGUF_TYPE_UINT32] = "uint32",   [GGUF_TYPE_INT32] = "int32",
    [GGUF_TYPE_FLOAT32] = "float32", [GGUF_TYPE_BOOL] = "bool",
    [GGUF_TYPE_STRING] = "string",   [GGUF_TYPE_ARRAY] = "array",
    [GGUF_TYPE_UINT64] = "uint64",   [GGUF_TYPE_INT64] = "int64",
    [GGUF_TYPE_FLOAT64] = "float64",
};

const char *gguf_type_name(gguf_type t) {
    return (unsigned)t < GGUF_TYPE_COUNT ? type_names[t] : "unknown";
}

size_t gguf_type_size(gguf_type t) {
    return (unsigned)t < GGUF_TYPE_COUNT ? value_size[t] : 0;
}

bool eng_str_eq(eng_str s, const char *z) {
    size_t n = strlen(z);
    return s.len == n && (n == 0 || memcmp(s.ptr, z, n) == 0);
}

/* ---- hash index ----------------------------------------------------------
 * Duplicate detection must not be quadratic: a hostile 40 MB file can hold
 * a million tensor infos. FNV-1a over the name, linear probing, load <= 1/2.
 */

static uint64_t name_hash(const char *s, size_t n) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (uint8_t)s[i]) * 0x100000001b3ull;
    return h;
}

static uint64_t index_mask_for(uint64_t n) {
    uint64_t cap = 16;
    while (cap < 2 * n)
        cap *= 2;
    return cap - 1;
}

/* Name of entry i of the indexed table (kv keys or tensor names). */
typedef const char *(*entry_name_fn)(const eng_gguf *g, uint32_t i);

static const char *kv_name(const eng_gguf *g, uint32_t i) {
    return g->kv[i].key_z;
}

static const char *tensor_name(const eng_gguf *g, uint32_t i) {
    return g->tensors[i].name;
}

/* Insert entry idx; returns the index of an existing entry with the same
 * name (and inserts nothing) or -1. */
static int64_t index_insert(const eng_gguf *g, uint32_t *slots, uint64_t mask,
                            entry_name_fn name_of, uint32_t idx) {
    const char *name = name_of(g, idx);
    uint64_t h = name_hash(name, strlen(name)) & mask;
    while (slots[h]) {
        uint32_t other = slots[h] - 1;
        if (strcmp(name_of(g, other), name) == 0)
            return other;
        h = (h + 1) & mask;
    }
    slots[h] = idx + 1;
    return -1;
}

static int64_t index_find(const eng_gguf *g, const uint32_t *slots,
                          uint64_t mask, entry_name_fn name_of,
                          const char *name) {
    if (!slots)
        return -1;
    uint64_t h = name_hash(name, strlen(name)) & mask;
    while (slots[h]) {
        uint32_t i = slots[h] - 1;
        if (strcmp(name_of(g, i), name) == 0)
            return i;
        h = (h + 1) & mask;
    }
    return -1;
}

/* ---- cursor -------------------------------------------------------------- */

typedef struct {
    const uint8_t *base;
    size_t size;
    size_t pos;
    char *err;
    size_t err_size;
    /* What is being parsed, prefixed to every message: "key general.name",
     * "tensor #3" before its name is known. */
    char what[160];
} cursor;

static void set_what(cursor *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void set_what(cursor *c, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->what, sizeof c->what, fmt, ap);
    va_end(ap);
}

static int bad(cursor *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static int bad(cursor *c, const char *fmt, ...) {
    if (c->err && c->err_size) {
        char msg[256];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof msg, fmt, ap);
        va_end(ap);
        if (c->what[0])
            nib_errf(c->err, c->err_size, "%s: %s", c->what, msg);
        else
            nib_errf(c->err, c->err_size, "%s", msg);
    }
    return NIB_EBADMODEL;
}

static size_t left(const cursor *c) {
    return c->size - c->pos;
}

static int need(cursor *c, uint64_t n, const char *field) {
    if (n > left(c))
        return bad(c,
                   "file truncated: %s needs %llu bytes at offset %zu, "
                   "only %zu left",
                   field, (unsigned long long)n, c->pos, left(c));
    return 0;
}

static int rd_u32(cursor *c, uint32_t *v, const char *field) {
    int r = need(c, 4, field);
    if (r)
        return r;
    memcpy(v, c->base + c->pos, 4);
    c->pos += 4;
    return 0;
}

static int rd_u64(cursor *c, uint64_t *v, const char *field) {
    int r = need(c, 8, field);
    if (r)
        return r;
    memcpy(v, c->base + c->pos, 8);
    c->pos += 8;
    return 0;
}

static int rd_str(cursor *c, eng_str *s, const char *field) {
    uint64_t n;
    int r = rd_u64(c, &n, field);
    if (r)
        return r;
    if (n > left(c))
        return bad(c,
                   "%s length %llu at offset %zu runs past end of file "
                   "(%zu bytes left)",
                   field, (unsigned long long)n, c->pos - 8, left(c));
    s->ptr = (const char *)c->base + c->pos;
    s->len = n;
    c->pos += n;
    return 0;
}

/* Keys and tensor names are looked up as C strings, so an embedded NUL would
 * make two different names compare equal. */
static int check_name(cursor *c, eng_str s, const char *field) {
    if (s.len == 0)
        return bad(c, "empty %s", field);
    if (memchr(s.ptr, 0, s.len))
        return bad(c, "%s contains a NUL byte", field);
    return 0;
}

/* ---- metadata ------------------------------------------------------------ */

static int parse_kv(cursor *c, eng_gguf *g, uint64_t i) {
    eng_gguf_kv *kv = &g->kv[i];
    set_what(c, "key #%llu", (unsigned long long)i);
    int r = rd_str(c, &kv->key, "key");
    if (r)
        return r;
    if ((r = check_name(c, kv->key, "key")))
        return r;
    kv->key_z = nib_try_malloc(kv->key.len + 1);
    if (!kv->key_z) {
        nib_errf(c->err, c->err_size, "out of memory for key #%llu",
                 (unsigned long long)i);
        return NIB_ENOMEM;
    }
    memcpy(kv->key_z, kv->key.ptr, kv->key.len);
    kv->key_z[kv->key.len] = 0;
    set_what(c, "key %s", kv->key_z);

    uint32_t t;
    if ((r = rd_u32(c, &t, "value type")))
        return r;
    if (t >= GGUF_TYPE_COUNT)
        return bad(c, "unknown value type %u", t);
    kv->type = (gguf_type)t;
    kv->arr_type = 0;
    kv->arr_n = 0;

    if (t == GGUF_TYPE_STRING) {
        kv->data = c->base + c->pos;
        eng_str s;
        return rd_str(c, &s, "string value");
    }
    if (t != GGUF_TYPE_ARRAY) {
        kv->data = c->base + c->pos;
        if ((r = need(c, value_size[t], "value")))
            return r;
        c->pos += value_size[t];
        return 0;
    }

    uint32_t et;
    uint64_t n;
    if ((r = rd_u32(c, &et, "array element type")))
        return r;
    if (et >= GGUF_TYPE_COUNT)
        return bad(c, "unknown array element type %u", et);
    if (et == GGUF_TYPE_ARRAY)
        return bad(c, "nested arrays are not supported");
    if ((r = rd_u64(c, &n, "array length")))
        return r;
    kv->arr_type = (gguf_type)et;
    kv->arr_n = n;
    kv->data = c->base + c->pos;
    if (et != GGUF_TYPE_STRING) {
        if (n > left(c) / value_size[et])
            return bad(c,
                       "array of %llu %s values at offset %zu runs past end "
                       "of file (%zu bytes left)",
                       (unsigned long long)n, type_names[et], c->pos, left(c));
        c->pos += n * value_size[et];
        return 0;
    }
    if (n > left(c) / MIN_ARR_STR_BYTES)
        return bad(c,
                   "array of %llu strings at offset %zu cannot fit in the "
                   "%zu bytes left",
                   (unsigned long long)n, c->pos, left(c));
    kv->strs = nib_try_calloc(n ? n : 1, sizeof(eng_str));
    if (!kv->strs) {
        nib_errf(c->err, c->err_size, "key %s: out of memory for %llu strings",
                 kv->key_z, (unsigned long long)n);
        return NIB_ENOMEM;
    }
    /* This loop runs once per vocab token and merge (300k times for
     * Qwen2), so it checks inline and formats messages only on failure. */
    for (uint64_t j = 0; j < n; j++) {
        uint64_t len = UINT64_MAX;
        if (left(c) >= 8)
            memcpy(&len, c->base + c->pos, 8);
        if (left(c) < 8 || len > left(c) - 8) {
            char field[48];
            snprintf(field, sizeof field, "string #%llu",
                     (unsigned long long)j);
            return rd_str(c, &kv->strs[j], field);
        }
        kv->strs[j].ptr = (const char *)c->base + c->pos + 8;
        kv->strs[j].len = len;
        c->pos += 8 + len;
    }
    return 0;
}

/* Integer value of a scalar KV: *neg set for negative values, *mag holds
 * the magnitude. Returns false for non-integer types. */
static bool kv_int(const eng_gguf_kv *kv, bool *neg, uint64_t *mag) {
    const uint8_t *p = kv->data;
    int64_t s = 0;
    uint64_t u = 0;
    bool is_signed = true;
    switch (kv->type) {
    case GGUF_TYPE_UINT8: {
        uint8_t v;
        memcpy(&v, p, 1);
        u = v, is_signed = false;
        break;
    }
    case GGUF_TYPE_UINT16: {
        uint16_t v;
        memcpy(&v, p, 2);
        u = v, is_signed = false;
        break;
    }
    case GGUF_TYPE_UINT32: {
        uint32_t v;
        memcpy(&v, p, 4);
        u = v, is_signed = false;
        break;
    }
    case GGUF_TYPE_UINT64:
        memcpy(&u, p, 8);
        is_signed = false;
        break;
    case GGUF_TYPE_INT8: {
        int8_t v;
        memcpy(&v, p, 1);
        s = v;
        break;
    }
    case GGUF_TYPE_INT16: {
        int16_t v;
        memcpy(&v, p, 2);
        s = v;
        break;
    }
    case GGUF_TYPE_INT32: {
        int32_t v;
        memcpy(&v, p, 4);
        s = v;
        break;
    }
    case GGUF_TYPE_INT64:
        memcpy(&s, p, 8);
        break;
    default:
        return false;
    }
    if (is_signed) {
        *neg = s < 0;
        /* -(s + 1) + 1 avoids negating INT64_MIN. */
        *mag = s < 0 ? (uint64_t)(-(s + 1)) + 1 : (uint64_t)s;
    } else {
        *neg = false;
        *mag = u;
    }
    return true;
}

/* general.alignment decides where the data section starts. ggml writes it as
 * uint32; any integer type is accepted as long as the value is a power of
 * two that fits in 32 bits. */
static int parse_alignment(cursor *c, eng_gguf *g) {
    g->alignment = GGUF_DEFAULT_ALIGNMENT;
    const eng_gguf_kv *kv = eng_gguf_find(g, "general.alignment");
    if (!kv)
        return 0;
    set_what(c, "key general.alignment");
    bool neg;
    uint64_t v;
    if (!kv_int(kv, &neg, &v))
        return bad(c, "has type %s, expected an integer",
                   gguf_type_name(kv->type));
    if (neg || v == 0 || v > UINT32_MAX || (v & (v - 1)) != 0)
        return bad(c, "%s%llu is not a power of two between 1 and 2^31",
                   neg ? "-" : "", (unsigned long long)v);
    g->alignment = v;
    return 0;
}

/* ---- tensor infos -------------------------------------------------------- */

static int parse_tensor_info(cursor *c, eng_gguf *g, uint64_t i) {
    eng_gguf_tensor *t = &g->tensors[i];
    set_what(c, "tensor #%llu", (unsigned long long)i);
    eng_str name;
    int r = rd_str(c, &name, "name");
    if (r)
        return r;
    if ((r = check_name(c, name, "name")))
        return r;
    t->name = nib_try_malloc(name.len + 1);
    if (!t->name) {
        nib_errf(c->err, c->err_size, "out of memory for tensor #%llu",
                 (unsigned long long)i);
        return NIB_ENOMEM;
    }
    memcpy(t->name, name.ptr, name.len);
    t->name[name.len] = 0;
    set_what(c, "tensor %s", t->name);

    if ((r = rd_u32(c, &t->n_dims, "n_dims")))
        return r;
    if (t->n_dims < 1 || t->n_dims > GGUF_MAX_DIMS)
        return bad(c, "n_dims %u is not in 1..%d", t->n_dims, GGUF_MAX_DIMS);
    /* ggml counts elements in int64_t, so the product must stay below
     * 2^63 as well as fit in uint64_t. */
    uint64_t n_el = 1;
    for (uint32_t d = 0; d < GGUF_MAX_DIMS; d++) {
        t->ne[d] = 1;
        if (d >= t->n_dims)
            continue;
        char field[16];
        snprintf(field, sizeof field, "ne[%u]", d);
        if ((r = rd_u64(c, &t->ne[d], field)))
            return r;
        if (t->ne[d] == 0)
            return bad(c, "dimension %u is zero", d);
        if (t->ne[d] > (uint64_t)INT64_MAX / n_el)
            return bad(c, "element count overflows at dimension %u (%llu)", d,
                       (unsigned long long)t->ne[d]);
        n_el *= t->ne[d];
    }
    t->n_elements = n_el;

    if ((r = rd_u32(c, &t->type, "type")))
        return r;
    if (t->type >= ENG_TYPE_COUNT || eng_type_traits[t->type].type_size == 0)
        return bad(c, "unknown tensor type %u", t->type);
    const eng_type_traits_t *tt = &eng_type_traits[t->type];
    if (t->ne[0] % (uint64_t)tt->blck_size != 0)
        return bad(c,
                   "row length %llu is not a multiple of the %s block size "
                   "%lld",
                   (unsigned long long)t->ne[0], tt->name,
                   (long long)tt->blck_size);
    if ((r = rd_u64(c, &t->offset, "data offset")))
        return r;
    return 0;
}

/* Place tensor i in the data section once data_offset is known. */
static int place_tensor(cursor *c, eng_gguf *g, uint64_t i) {
    eng_gguf_tensor *t = &g->tensors[i];
    set_what(c, "tensor %s", t->name);
    const eng_type_traits_t *tt = &eng_type_traits[t->type];
    if (t->offset % g->alignment != 0)
        return bad(c,
                   "data offset %llu is not a multiple of the alignment "
                   "%llu",
                   (unsigned long long)t->offset,
                   (unsigned long long)g->alignment);
    uint64_t blocks = t->ne[0] / (uint64_t)tt->blck_size;
    uint64_t rows = t->n_elements / t->ne[0];
    if (blocks > UINT64_MAX / tt->type_size)
        return bad(c, "row size overflows");
    uint64_t row = eng_row_size((eng_type)t->type, (int64_t)t->ne[0]);
    if (rows && row > UINT64_MAX / rows)
        return bad(c, "data size overflows");
    t->n_bytes = row * rows;
    uint64_t avail = g->size - g->data_offset;
    if (t->offset > avail)
        return bad(c,
                   "data starts past end of file (offset %llu, data "
                   "section holds %llu bytes)",
                   (unsigned long long)t->offset, (unsigned long long)avail);
    if (t->n_bytes > avail - t->offset)
        return bad(c,
                   "data ends past end of file (%llu bytes at offset %llu, "
                   "data section holds %llu bytes)",
                   (unsigned long long)t->n_bytes,
                   (unsigned long long)t->offset, (unsigned long long)avail);
    t->data = (const uint8_t *)g->map + g->data_offset + t->offset;
    return 0;
}

/* ---- whole file ---------------------------------------------------------- */

static int parse_header(cursor *c, eng_gguf *g) {
    uint32_t magic;
    int r = rd_u32(c, &magic, "magic");
    if (r)
        return r;
    if (memcmp(c->base, "GGUF", 4) != 0)
        return bad(c, "not a GGUF file (bad magic %02x %02x %02x %02x)",
                   c->base[0], c->base[1], c->base[2], c->base[3]);
    if ((r = rd_u32(c, &g->version, "version")))
        return r;
    if (g->version == 1)
        return bad(c, "GGUF version 1 is not supported (only versions 2 and "
                      "3; re-convert the model)");
    if (g->version != 2 && g->version != 3) {
        /* A byte-swapped small number means a big-endian file. */
        uint32_t sw = __builtin_bswap32(g->version);
        if (sw >= 1 && sw <= 3)
            return bad(c, "big-endian GGUF files are not supported");
        return bad(c, "unsupported GGUF version %u (only 2 and 3)", g->version);
    }
    if ((r = rd_u64(c, &g->n_tensors, "tensor count")))
        return r;
    if ((r = rd_u64(c, &g->n_kv, "key count")))
        return r;

    /* Bound both counts before allocating anything for them. Tensor infos
     * come after the KVs, so the two share what is left. */
    if (g->n_kv > left(c) / MIN_KV_BYTES || g->n_kv > MAX_ENTRIES)
        return bad(c,
                   "header claims %llu keys but the file has only %zu "
                   "bytes left",
                   (unsigned long long)g->n_kv, left(c));
    if (g->n_tensors > left(c) / MIN_TENSOR_INFO_BYTES ||
        g->n_tensors > MAX_ENTRIES)
        return bad(c,
                   "header claims %llu tensors but the file has only %zu "
                   "bytes left",
                   (unsigned long long)g->n_tensors, left(c));
    return 0;
}

static int out_of_memory(cursor *c, const char *what) {
    nib_errf(c->err, c->err_size, "out of memory for %s", what);
    return NIB_ENOMEM;
}

static int parse_all(cursor *c, eng_gguf *g) {
    int r = parse_header(c, g);
    if (r)
        return r;

    g->kv = nib_try_calloc(g->n_kv ? g->n_kv : 1, sizeof(eng_gguf_kv));
    if (!g->kv)
        return out_of_memory(c, "the key table");
    g->kv_mask = index_mask_for(g->n_kv);
    g->kv_slots = nib_try_calloc(g->kv_mask + 1, sizeof(uint32_t));
    if (!g->kv_slots)
        return out_of_memory(c, "the key index");
    for (uint64_t i = 0; i < g->n_kv; i++) {
        if ((r = parse_kv(c, g, i)))
            return r;
        if (index_insert(g, g->kv_slots, g->kv_mask, kv_name, (uint32_t)i) >= 0)
            return bad(c, "duplicate key");
    }
    c->what[0] = 0;
    if ((r = parse_alignment(c, g)))
        return r;

    /* n_tensors was bounded against the bytes left before the KVs; bound it
     * again by what is left now. */
    set_what(c, "header");
    if (g->n_tensors > left(c) / MIN_TENSOR_INFO_BYTES)
        return bad(c,
                   "claims %llu tensors but only %zu bytes are left after "
                   "the metadata",
                   (unsigned long long)g->n_tensors, left(c));
    g->tensors = nib_try_calloc(g->n_tensors ? g->n_tensors : 1,
                                sizeof(eng_gguf_tensor));
    if (!g->tensors)
        return out_of_memory(c, "the tensor table");
    g->tensor_mask = index_mask_for(g->n_tensors);
    g->tensor_slots = nib_try_calloc(g->tensor_mask + 1, sizeof(uint32_t));
    if (!g->tensor_slots)
        return out_of_memory(c, "the tensor index");
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        if ((r = parse_tensor_info(c, g, i)))
            return r;
        if (index_insert(g, g->tensor_slots, g->tensor_mask, tensor_name,
                         (uint32_t)i) >= 0)
            return bad(c, "duplicate tensor name");
    }

    /* The data section starts at the next multiple of the alignment. A file
     * without tensors (a vocab-only GGUF) may stop right after its metadata,
     * without the padding. */
    uint64_t pad = (g->alignment - c->pos % g->alignment) % g->alignment;
    c->what[0] = 0;
    if (pad > left(c)) {
        if (g->n_tensors > 0)
            return bad(c,
                       "file truncated: data section would start at "
                       "offset %llu, past end of file (%zu bytes)",
                       (unsigned long long)(c->pos + pad), c->size);
        pad = left(c);
    }
    g->data_offset = c->pos + pad;
    for (uint64_t i = 0; i < g->n_tensors; i++)
        if ((r = place_tensor(c, g, i)))
            return r;
    return 0;
}

static void free_tables(eng_gguf *g) {
    if (g->kv)
        for (uint64_t i = 0; i < g->n_kv; i++) {
            nib_free(g->kv[i].key_z);
            nib_free(g->kv[i].strs);
        }
    if (g->tensors)
        for (uint64_t i = 0; i < g->n_tensors; i++)
            nib_free(g->tensors[i].name);
    nib_free(g->kv);
    nib_free(g->tensors);
    nib_free(g->kv_slots);
    nib_free(g->tensor_slots);
}

int eng_gguf_parse(const void *data, size_t size, eng_gguf **out, char *err,
                   size_t err_size) {
    *out = NULL;
    if (err && err_size)
        err[0] = 0;
    eng_gguf *g = nib_try_calloc(1, sizeof *g);
    if (!g) {
        nib_errf(err, err_size, "out of memory");
        return NIB_ENOMEM;
    }
    g->map = (void *)data;
    g->size = size;
    cursor c = {.base = data,
                .size = data ? size : 0,
                .err = err,
                .err_size = err_size};
    int r = parse_all(&c, g);
    if (r) {
        free_tables(g);
        nib_free(g);
        return r;
    }
    *out = g;
    return 0;
}

int eng_gguf_open(const char *path, eng_gguf **out, char *err,
                  size_t err_size) {
    *out = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        nib_errf(err, err_size, "%s: %s", path, strerror(e));
        return e == ENOENT || e == ENOTDIR ? NIB_ENOENT : NIB_EIO;
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        nib_errf(err, err_size, "%s: %s", path, strerror(e));
        return NIB_EIO;
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        nib_errf(err, err_size, "%s: not a regular file", path);
        return NIB_EIO;
    }
    if (st.st_size == 0) {
        close(fd);
        nib_errf(err, err_size, "%s: file is empty", path);
        return NIB_EBADMODEL;
    }
    size_t size = (size_t)st.st_size;
    void *map = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
    int e = errno;
    close(fd); /* the mapping keeps the file open */
    if (map == MAP_FAILED) {
        nib_errf(err, err_size, "%s: mmap: %s", path, strerror(e));
        return e == ENOMEM ? NIB_ENOMEM : NIB_EIO;
    }
    int r = eng_gguf_parse(map, size, out, err, err_size);
    if (r) {
        munmap(map, size);
        return r;
    }
    (*out)->owns_map = true;
    return 0;
}

void eng_gguf_close(eng_gguf *g) {
    if (!g)
        return;
    free_tables(g);
    if (g->owns_map)
        munmap(g->map, g->size);
    nib_free(g);
}

/* ---- lookups and typed getters ------------------------------------------- */

const eng_gguf_kv *eng_gguf_find(const eng_gguf *g, const char *key) {
    int64_t i = index_find(g, g->kv_slots, g->kv_mask, kv_name, key);
    return i < 0 ? NULL : &g->kv[i];
}

const eng_gguf_tensor *eng_gguf_find_tensor(const eng_gguf *g,
                                            const char *name) {
    int64_t i =
        index_find(g, g->tensor_slots, g->tensor_mask, tensor_name, name);
    return i < 0 ? NULL : &g->tensors[i];
}

/* Scalar integer KV as (neg, magnitude); NIB_ENOENT or NIB_EBADMODEL. */
static int get_int(const eng_gguf *g, const char *key, bool *neg,
                   uint64_t *mag) {
    const eng_gguf_kv *kv = eng_gguf_find(g, key);
    if (!kv)
        return NIB_ENOENT;
    return kv_int(kv, neg, mag) ? 0 : NIB_EBADMODEL;
}

int eng_gguf_get_u64(const eng_gguf *g, const char *key, uint64_t *out) {
    bool neg;
    uint64_t v;
    int r = get_int(g, key, &neg, &v);
    if (r)
        return r;
    if (neg)
        return NIB_ERANGE;
    *out = v;
    return 0;
}

int eng_gguf_get_u32(const eng_gguf *g, const char *key, uint32_t *out) {
    uint64_t v;
    int r = eng_gguf_get_u64(g, key, &v);
    if (r)
        return r;
    if (v > UINT32_MAX)
        return NIB_ERANGE;
    *out = (uint32_t)v;
    return 0;
}

int eng_gguf_get_i64(const eng_gguf *g, const char *key, int64_t *out) {
    bool neg;
    uint64_t v;
    int r = get_int(g, key, &neg, &v);
    if (r)
        return r;
    if (!neg && v > (uint64_t)INT64_MAX)
        return NIB_ERANGE;
    if (neg && v > (uint64_t)INT64_MAX + 1)
        return NIB_ERANGE;
    /* -(v - 1) - 1 reaches INT64_MIN without overflowing. */
    *out = neg ? -(int64_t)(v - 1) - 1 : (int64_t)v;
    return 0;
}

int eng_gguf_get_f32(const eng_gguf *g, const char *key, float *out) {
    const eng_gguf_kv *kv = eng_gguf_find(g, key);
    if (!kv)
        return NIB_ENOENT;
    if (kv->type == GGUF_TYPE_FLOAT32) {
        memcpy(out, kv->data, 4);
        return 0;
    }
    if (kv->type == GGUF_TYPE_FLOAT64) {
        double d;
        memcpy(&d, kv->data, 8);
        /* A finite double beyond float range would become inf silently. */
        if (d > 3.4028234663852886e38 || d < -3.4028234663852886e38)
            if (d - d == 0)
                return NIB_ERANGE;
        *out = (float)d;
        return 0;
    }
    return NIB_EBADMODEL;
}

int eng_gguf_get_bool(const eng_gguf *g, const char *key, bool *out) {
    const eng_gguf_kv *kv = eng_gguf_find(g, key);
    if (!kv)
        return NIB_ENOENT;
    if (kv->type != GGUF_TYPE_BOOL)
        return NIB_EBADMODEL;
    *out = kv->data[0] != 0;
    return 0;
}

int eng_gguf_get_str(const eng_gguf *g, const char *key, eng_str *out) {
    const eng_gguf_kv *kv = eng_gguf_find(g, key);
    if (!kv)
        return NIB_ENOENT;
    if (kv->type != GGUF_TYPE_STRING)
        return NIB_EBADMODEL;
    memcpy(&out->len, kv->data, 8);
    out->ptr = (const char *)kv->data + 8;
    return 0;
}

int eng_gguf_get_arr(const eng_gguf *g, const char *key, gguf_type elem,
                     uint64_t *n, const void **data) {
    if ((unsigned)elem >= GGUF_TYPE_COUNT || value_size[elem] == 0)
        return NIB_EINVAL; /* strings go through eng_gguf_get_str_arr */
    const eng_gguf_kv *kv = eng_gguf_find(g, key);
    if (!kv)
        return NIB_ENOENT;
    if (kv->type != GGUF_TYPE_ARRAY || kv->arr_type != elem)
        return NIB_EBADMODEL;
    *n = kv->arr_n;
    *data = kv->data;
    return 0;
}

int eng_gguf_get_str_arr(const eng_gguf *g, const char *key, uint64_t *n,
                         const eng_str **strs) {
    const eng_gguf_kv *kv = eng_gguf_find(g, key);
    if (!kv)
        return NIB_ENOENT;
    if (kv->type != GGUF_TYPE_ARRAY || kv->arr_type != GGUF_TYPE_STRING)
        return NIB_EBADMODEL;
    *n = kv->arr_n;
    *strs = kv->strs;
    return 0;
}
