/*
 * gguf_write.h — building GGUF v3 files (engine-internal).
 *
 * Used by `nib quantize`, `nib mkmodel` and model export. A writer collects
 * KV pairs and tensor infos, writes the header, then streams tensor data in
 * the order the tensors were added, so a multi-GB model never has to be in
 * memory at once:
 *
 *   eng_gguf_w *w = eng_gguf_w_new();
 *   eng_gguf_w_set_str(w, "general.architecture", "llama");
 *   eng_gguf_w_copy_kvs(w, src, "tokenizer.");      // from an opened file
 *   int64_t i = eng_gguf_w_add_tensor(w, "token_embd.weight", ENG_TYPE_Q8_0,
 *                                     2, (uint64_t[]){4096, 32000});
 *   eng_gguf_w_write_header(w, f);
 *   eng_gguf_w_write_tensor_data(w, f, i, data);    // or write_data chunks
 *   eng_gguf_w_finish(w, f);
 *   eng_gguf_w_delete(w);
 *
 * The output is standard GGUF v3 as llama.cpp reads it: little-endian, each
 * tensor's data at the next multiple of the alignment after the previous
 * one (the order they were added), zero padding after every tensor, and
 * `general.alignment` (uint32) only when set; the alignment is 32 otherwise.
 * Tensor names are limited to 63 bytes because ggml stores them in a
 * 64-byte field.
 *
 * Errors are negative NIB_E* codes; the writer keeps a message for the last
 * one (eng_gguf_w_error). Calls that change the layout after write_header
 * fail with NIB_ESTATE. A writer is used from one thread at a time.
 */
#ifndef NIB_ENGINE_GGUF_WRITE_H
#define NIB_ENGINE_GGUF_WRITE_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "gguf.h"
#include "quant.h"

/* ggml's GGML_MAX_NAME is 64 bytes including the NUL. */
#define GGUF_W_MAX_NAME 63

typedef struct eng_gguf_w eng_gguf_w;

/* New empty writer (free with eng_gguf_w_delete; _delete(NULL) is a no-op).
 * Aborts on out-of-memory like nib_malloc. */
eng_gguf_w *eng_gguf_w_new(void);
void eng_gguf_w_delete(eng_gguf_w *w);

/* Message for the last error (borrowed, valid until the next call on w);
 * "" when there was none. */
const char *eng_gguf_w_error(const eng_gguf_w *w);

/* ---- metadata -------------------------------------------------------------
 * Keys are copied; values are copied into the writer. Setting a key that
 * exists replaces its value and keeps its position. Errors: NIB_EINVAL
 * (empty key, bad type), NIB_ESTATE (after write_header). */

int eng_gguf_w_set_u8(eng_gguf_w *w, const char *key, uint8_t v);
int eng_gguf_w_set_i8(eng_gguf_w *w, const char *key, int8_t v);
int eng_gguf_w_set_u16(eng_gguf_w *w, const char *key, uint16_t v);
int eng_gguf_w_set_i16(eng_gguf_w *w, const char *key, int16_t v);
int eng_gguf_w_set_u32(eng_gguf_w *w, const char *key, uint32_t v);
int eng_gguf_w_set_i32(eng_gguf_w *w, const char *key, int32_t v);
int eng_gguf_w_set_u64(eng_gguf_w *w, const char *key, uint64_t v);
int eng_gguf_w_set_i64(eng_gguf_w *w, const char *key, int64_t v);
int eng_gguf_w_set_f32(eng_gguf_w *w, const char *key, float v);
int eng_gguf_w_set_f64(eng_gguf_w *w, const char *key, double v);
int eng_gguf_w_set_bool(eng_gguf_w *w, const char *key, bool v);
/* NUL-terminated, or (s, len) which may hold any bytes. */
int eng_gguf_w_set_str(eng_gguf_w *w, const char *key, const char *s);
int eng_gguf_w_set_strn(eng_gguf_w *w, const char *key, const char *s,
                        size_t len);
/* Array of n fixed-size values of type elem (not STRING or ARRAY), laid out
 * as in the file: little-endian, packed; bools must be 0 or 1. */
int eng_gguf_w_set_arr(eng_gguf_w *w, const char *key, gguf_type elem,
                       const void *data, uint64_t n);
/* Arrays of strings, from C strings or from spans (e.g. another file's). */
int eng_gguf_w_set_str_arr(eng_gguf_w *w, const char *key,
                           const char *const *strs, uint64_t n);
int eng_gguf_w_set_str_arr_spans(eng_gguf_w *w, const char *key,
                                 const eng_str *strs, uint64_t n);
/* general.alignment as uint32; a power of two (NIB_EINVAL otherwise). */
int eng_gguf_w_set_alignment(eng_gguf_w *w, uint32_t alignment);

/* Copy one KV of an opened file (any type, arrays of strings included). */
int eng_gguf_w_copy_kv(eng_gguf_w *w, const eng_gguf_kv *kv);
/* Copy every KV of g whose key starts with prefix ("" or NULL: all), in
 * g's order. Returns how many were copied, or a negative error. */
int64_t eng_gguf_w_copy_kvs(eng_gguf_w *w, const eng_gguf *g,
                            const char *prefix);
/* Remove a key: 0, or NIB_ENOENT when absent. */
int eng_gguf_w_remove(eng_gguf_w *w, const char *key);
uint64_t eng_gguf_w_n_kv(const eng_gguf_w *w);

/* ---- tensors ------------------------------------------------------------- */

/* Declare a tensor: ne[0..n_dims) with ne[0] the row length. Returns its
 * index (>= 0; data is written in index order) or NIB_EINVAL (empty, too
 * long or duplicate name, n_dims not in 1..4, a zero dim, element count
 * over 2^63, ne[0] not a multiple of the type's block size, unknown type),
 * NIB_ESTATE after write_header. */
int64_t eng_gguf_w_add_tensor(eng_gguf_w *w, const char *name, eng_type type,
                              uint32_t n_dims, const uint64_t *ne);
uint64_t eng_gguf_w_n_tensors(const eng_gguf_w *w);
/* Bytes of tensor idx's data (row size x rows), 0 for a bad index. */
uint64_t eng_gguf_w_tensor_bytes(const eng_gguf_w *w, int64_t idx);

/* ---- output --------------------------------------------------------------
 * f must be positioned at the start of the file being written. */

/* Write magic, counts, KVs, tensor infos (with their offsets) and the
 * padding up to the data section; the layout is frozen from here on.
 * Errors: NIB_EINVAL (general.alignment not a uint32 power of two),
 * NIB_ESTATE (called twice), NIB_EIO. */
int eng_gguf_w_write_header(eng_gguf_w *w, FILE *f);
/* Write all of tensor idx's data (eng_gguf_w_tensor_bytes(w, idx) bytes)
 * and its padding. idx must be the next tensor not yet written, with none
 * of its data written through write_data: NIB_ESTATE otherwise. */
int eng_gguf_w_write_tensor_data(eng_gguf_w *w, FILE *f, int64_t idx,
                                 const void *data);
/* Stream n bytes of tensor data in chunks of any size, in tensor order; the
 * padding after each tensor is inserted when its last byte is written.
 * NIB_ESTATE before write_header or past the last tensor's data. */
int eng_gguf_w_write_data(eng_gguf_w *w, FILE *f, const void *data, size_t n);
/* Check that every tensor's data was written and flush f (the caller
 * closes it). NIB_ESTATE when data is missing, NIB_EIO on a write error. */
int eng_gguf_w_finish(eng_gguf_w *w, FILE *f);

/* Whole file in one call: header, then data[i] for every tensor i in order
 * (borrowed), then finish. Errors as above, plus NIB_EIO when path cannot
 * be created. */
int eng_gguf_w_write_file(eng_gguf_w *w, const char *path,
                          const void *const *data);

#endif
