/*
 * gguf.h — GGUF v2/v3 reader (engine-internal).
 *
 * File layout (all little-endian):
 *
 *   u32 magic "GGUF" | u32 version (2 or 3) | u64 n_tensors | u64 n_kv
 *   n_kv x      { string key | u32 value_type | value }
 *   n_tensors x { string name | u32 n_dims | u64 ne[n_dims] | u32 type |
 *                 u64 offset }
 *   padding to `general.alignment` (default 32)
 *   tensor data: each tensor at data_start + offset (offset aligned)
 *
 *   string = u64 length | bytes (not NUL-terminated)
 *   array  = u32 elem_type | u64 count | count x elem
 *
 * The file is hostile input: every count, length, dimension, offset and
 * extent is checked against the file size before use, with overflow-checked
 * arithmetic. A bad file gives NIB_EBADMODEL and a message that names the
 * problem and the key or tensor ("tensor blk.0.attn_q.weight: unknown tensor
 * type 99"), never an out-of-bounds read. Also rejected: version 1 (32-bit
 * counts) and big-endian files, nested arrays, empty names or names with a
 * NUL byte, duplicate keys or tensor names, n_dims outside 1..4, zero dims,
 * element counts of 2^63 or more, ne[0] not a whole number of blocks, type
 * ids without a type_size in eng_type_traits, general.alignment that is not
 * an integer power of two, offsets not a multiple of the alignment, and data
 * past the end of the file. A file without tensors (vocab-only) may end
 * right after its metadata, without padding.
 */
#ifndef NIB_ENGINE_GGUF_H
#define NIB_ENGINE_GGUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum {
    GGUF_TYPE_UINT8 = 0,
    GGUF_TYPE_INT8 = 1,
    GGUF_TYPE_UINT16 = 2,
    GGUF_TYPE_INT16 = 3,
    GGUF_TYPE_UINT32 = 4,
    GGUF_TYPE_INT32 = 5,
    GGUF_TYPE_FLOAT32 = 6,
    GGUF_TYPE_BOOL = 7,
    GGUF_TYPE_STRING = 8,
    GGUF_TYPE_ARRAY = 9,
    GGUF_TYPE_UINT64 = 10,
    GGUF_TYPE_INT64 = 11,
    GGUF_TYPE_FLOAT64 = 12,
    GGUF_TYPE_COUNT
} gguf_type;

#define GGUF_MAX_DIMS 4
#define GGUF_DEFAULT_ALIGNMENT 32

/* A string inside the mapped file: not NUL-terminated. */
typedef struct {
    const char *ptr;
    uint64_t len;
} eng_str;

typedef struct {
    eng_str key;
    char *key_z;         /* NUL-terminated copy of key (owned by eng_gguf) */
    gguf_type type;      /* value type */
    gguf_type arr_type;  /* element type when type == ARRAY */
    uint64_t arr_n;      /* element count when type == ARRAY */
    const uint8_t *data; /* start of the value (after type / array header);
                            for STRING, its u64 length (use get_str) */
    eng_str *strs;       /* for string arrays: arr_n spans (owned) */
} eng_gguf_kv;

typedef struct {
    char *name;                 /* NUL-terminated copy (owned by eng_gguf) */
    uint32_t n_dims;            /* 1..4 */
    uint64_t ne[GGUF_MAX_DIMS]; /* elements per dim, ne[0] = row length;
                                   unused dims are 1 */
    uint32_t type;              /* ggml type id (eng_type in quant.h) */
    uint64_t offset;            /* from the start of the data section */
    uint64_t n_elements;
    uint64_t n_bytes;
    const void *data;           /* into the mapping */
} eng_gguf_tensor;

typedef struct {
    void *map;          /* mmapped file (or caller buffer, see parse) */
    size_t size;        /* bytes */
    bool owns_map;
    uint32_t version;
    uint64_t n_kv;
    eng_gguf_kv *kv;    /* [n_kv] */
    uint64_t n_tensors;
    eng_gguf_tensor *tensors; /* [n_tensors] */
    uint64_t alignment;
    uint64_t data_offset; /* file offset of the data section */
    /* Private: open-addressing name indexes for the find functions (slot =
     * index + 1, 0 = empty; mask + 1 slots). */
    uint32_t *kv_slots;
    uint64_t kv_mask;
    uint32_t *tensor_slots;
    uint64_t tensor_mask;
} eng_gguf;

/* mmap `path` read-only and parse it. *out is new (eng_gguf_close).
 * Errors: NIB_ENOENT, NIB_EIO, NIB_EBADMODEL, NIB_ENOMEM. */
int eng_gguf_open(const char *path, eng_gguf **out, char *err,
                  size_t err_size);

/* Parse a GGUF image already in memory (borrowed: must outlive *out).
 * Used by tests on corrupted copies. */
int eng_gguf_parse(const void *data, size_t size, eng_gguf **out, char *err,
                   size_t err_size);

void eng_gguf_close(eng_gguf *g);

/* Lookups return NULL when absent. */
const eng_gguf_kv *eng_gguf_find(const eng_gguf *g, const char *key);
const eng_gguf_tensor *eng_gguf_find_tensor(const eng_gguf *g,
                                            const char *name);

/* Typed getters. Integers of any width/sign convert when the value fits
 * (else NIB_ERANGE); floats accept FLOAT32/FLOAT64. Absent key: NIB_ENOENT.
 * Wrong type: NIB_EBADMODEL. */
int eng_gguf_get_u64(const eng_gguf *g, const char *key, uint64_t *out);
int eng_gguf_get_i64(const eng_gguf *g, const char *key, int64_t *out);
int eng_gguf_get_u32(const eng_gguf *g, const char *key, uint32_t *out);
int eng_gguf_get_f32(const eng_gguf *g, const char *key, float *out);
int eng_gguf_get_bool(const eng_gguf *g, const char *key, bool *out);
/* String value as a span into the mapping. */
int eng_gguf_get_str(const eng_gguf *g, const char *key, eng_str *out);
/* Array of fixed-size elements: *data points at the first element (may be
 * unaligned: read with memcpy). Wrong elem type: NIB_EBADMODEL. */
int eng_gguf_get_arr(const eng_gguf *g, const char *key, gguf_type elem,
                     uint64_t *n, const void **data);
/* Array of strings: borrowed spans, valid while g lives. */
int eng_gguf_get_str_arr(const eng_gguf *g, const char *key, uint64_t *n,
                         const eng_str **strs);

/* Compare a span to a C string. */
bool eng_str_eq(eng_str s, const char *z);

/* "uint32", "string", ...; "unknown" outside the enum. */
const char *gguf_type_name(gguf_type t);
/* Bytes of one value of a fixed-size type; 0 for STRING, ARRAY and ids
 * outside the enum. */
size_t gguf_type_size(gguf_type t);

#endif
