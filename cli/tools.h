/*
 * tools.h — what `nib quantize` (quantize.c) and `nib mkmodel` (mkmodel.c)
 * share: the file types llama.cpp's quantizer knows, its per-tensor type
 * mix, the tensor order it writes, and a multi-threaded row streamer that
 * turns float rows into a tensor's bytes without ever holding a whole
 * tensor. Implemented in quantize.c; private to cli/.
 */
#ifndef NIB_CLI_TOOLS_H
#define NIB_CLI_TOOLS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "engine/gguf.h"
#include "engine/gguf_write.h"
#include "engine/quant.h"

/* ---- file types ------------------------------------------------------------
 * The values are llama.cpp's llama_ftype, stored in general.file_type. */

enum {
    CLI_FTYPE_ALL_F32 = 0,
    CLI_FTYPE_F16 = 1,
    CLI_FTYPE_Q4_0 = 2,
    CLI_FTYPE_Q4_1 = 3,
    CLI_FTYPE_Q8_0 = 7,
    CLI_FTYPE_Q5_0 = 8,
    CLI_FTYPE_Q5_1 = 9,
    CLI_FTYPE_Q4_K_S = 14,
    CLI_FTYPE_Q4_K_M = 15,
    CLI_FTYPE_Q5_K_S = 16,
    CLI_FTYPE_Q5_K_M = 17,
    CLI_FTYPE_Q6_K = 18,
    CLI_FTYPE_BF16 = 32,
};

typedef struct {
    const char *name; /* "Q4_K_M" */
    uint32_t ftype;   /* CLI_FTYPE_* */
    eng_type type;    /* type of most weight matrices */
} cli_ftype;

/* The entry named `name` (case-insensitive; "Q4_K" and "Q5_K" mean the _M
 * mixes, as in llama-quantize), or NULL. Borrowed, static. */
const cli_ftype *cli_ftype_find(const char *name);
/* "F32, F16, ..." for messages (static). */
const char *cli_ftype_names(void);

/* ---- the type mix -----------------------------------------------------
 * llama.cpp's llama_tensor_get_type for the file types above. Its counters
 * (which attn_v / ffn_down this is) advance in the order tensors are asked
 * about, so ask in the order they are written (cli_tensor_order). */

typedef struct {
    const cli_ftype *ft;
    bool pure;          /* every weight matrix gets ft->type (no mix) */
    bool has_output;    /* a separate output.weight exists (else the token
                           embedding doubles as the output and gets its type) */
    int n_layer;        /* <arch>.block_count */
    int n_attention_wv; /* attn_v / attn_qkv tensors in the file */
    int i_attention_wv;
    int i_ffn_down;
    int n_fallback; /* tensors whose row length forced another type */
} cli_plan;

/* names[0..n): every tensor of the file being written. */
void cli_plan_init(cli_plan *p, const cli_ftype *ft, int n_layer,
                   const char *const *names, int64_t n);

/* Type for tensor `name` (ne[0..n_dims), stored as `src`): src itself for
 * the tensors llama.cpp never quantizes (norms, biases, 1-D). Returns 0, or
 * NIB_EINVAL with a message when the row length fits no type llama.cpp
 * would use. */
int cli_plan_type(cli_plan *p, const char *name, uint32_t n_dims,
                  const uint64_t *ne, eng_type src, eng_type *out, char *err,
                  size_t err_size);

/* Sort idx[0..n) so that names[idx[i]] follow llama.cpp's weight order:
 * tensors outside blocks first, then block 0, 1, ..., each group by name. */
void cli_tensor_order(const char *const *names, int64_t *idx, int64_t n);

/* ---- streaming ----------------------------------------------------------- */

/* Writes rows [row0, row0 + nrows) of a tensor as floats into dst (nrows *
 * n_per_row). Called from several threads at once on disjoint rows. */
typedef void (*cli_fill_fn)(void *ud, int64_t row0, int64_t nrows, float *dst);

/* Produce a whole tensor of `nrows` rows of `n_per_row` elements of type
 * `type` from fill(), in batches of a few MiB spread over n_threads threads,
 * and append it to f through w (the next tensor in w's order). quant
 * encodes whole rows into `type` (NULL: the reference quantizer, as
 * llama.cpp's). Memory use is bounded by the batch, whatever the tensor's
 * size. Returns 0, NIB_EIO (message in err) or NIB_ENOMEM. */
int cli_stream_rows(eng_gguf_w *w, FILE *f, eng_type type, int64_t n_per_row,
                    int64_t nrows, cli_fill_fn fill, void *ud,
                    eng_from_float_fn quant, int n_threads, char *err,
                    size_t err_size);

/* quantize_row_q8_0_ref's exact output (same bytes) at twice its speed:
 * the reference spends half its time in a libm roundf call per weight. */
void cli_quantize_q8_0(const float *restrict x, void *restrict y, int64_t k);

/* Default thread count: the CPUs this process may run on. */
int cli_n_threads(void);

/* ---- output files ---------------------------------------------------------
 * Results are written to PATH.tmp and renamed over PATH only when complete,
 * so a failed run never leaves a partial model behind. */

typedef struct {
    FILE *f;
    char *path; /* final path (owned) */
    char *tmp;  /* PATH.tmp (owned) */
} cli_out;

/* Create PATH.tmp. Returns 0 or NIB_EIO (message in err). */
int cli_out_open(cli_out *o, const char *path, char *err, size_t err_size);
/* Close and rename into place (ok), or close and delete (!ok). Returns 0 or
 * NIB_EIO (message in err; the temporary file is removed). */
int cli_out_close(cli_out *o, bool ok, char *err, size_t err_size);

#endif
