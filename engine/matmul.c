/*
 * matmul.c — the one place where weights meet activations.
 *
 * Activations are first converted to the weight type's vec_dot_type (Q8_0,
 * Q8_K, F16, ...) once per call, as ggml does, so every row dot product is
 * an integer or half-precision kernel. Threads split the weight rows; each
 * thread walks its rows in small tiles and, inside a tile, every token of
 * the batch, so a tile of weights is read from memory once per batch and
 * then served from L1.
 */
#include "internal.h"

#include <string.h>

/* Below this many bytes of weights a product is done on the calling thread:
 * waking the pool costs microseconds (and much more when another process
 * holds the other core), which is more than a small matrix takes. */
#define PARALLEL_MIN_BYTES (256 * 1024)

/* Rows per tile: 16 rows of a 4096-wide Q8_0 matrix are ~70 KB, about what
 * stays in L1/L2 while the batch loops over them. */
#define TILE_ROWS 16

typedef struct {
    const eng_tensor *w;
    const float *x;      /* [n_batch][ne0] */
    void *xq;            /* [n_batch][xq_row] converted activations */
    size_t xq_row;       /* bytes per converted row */
    float *out;          /* [n_batch][ne1] */
    int n_batch;
    eng_vec_dot_fn dot;
    eng_from_float_fn convert; /* NULL: x is used as it is (F32) */
} mm_task;

static void mm_convert(void *arg, int ith, int nth) {
    mm_task *t = arg;
    for (int b = ith; b < t->n_batch; b += nth)
        t->convert(t->x + (size_t)b * t->w->ne0,
                   (uint8_t *)t->xq + (size_t)b * t->xq_row, t->w->ne0);
}

static void mm_rows(void *arg, int ith, int nth) {
    mm_task *t = arg;
    const eng_tensor *w = t->w;
    int64_t rows = w->ne1;
    /* Split on tile boundaries so threads never share a cache line of
     * output and each gets an even share of rows. */
    int64_t n_tiles = (rows + TILE_ROWS - 1) / TILE_ROWS;
    int64_t t0 = n_tiles * ith / nth, t1 = n_tiles * (ith + 1) / nth;
    const uint8_t *wd = w->data;
    const uint8_t *xq = t->xq;
    for (int64_t tile = t0; tile < t1; tile++) {
        int64_t r0 = tile * TILE_ROWS;
        int64_t r1 = NIB_MIN(r0 + TILE_ROWS, rows);
        for (int b = 0; b < t->n_batch; b++) {
            const void *xb = xq + (size_t)b * t->xq_row;
            float *ob = t->out + (size_t)b * rows;
            for (int64_t r = r0; r < r1; r++)
                t->dot((int)w->ne0, &ob[r], wd + (size_t)r * w->row_bytes, xb);
        }
    }
}

void eng_matmul(eng_ctx *c, float *out, const eng_tensor *w, const float *x,
                int n_batch) {
    const eng_type_traits_t *tt = &eng_type_traits[w->type];
    eng_type vt = tt->vec_dot_type;
    mm_task t = {
        .w = w,
        .x = x,
        .out = out,
        .n_batch = n_batch,
        .dot = tt->vec_dot,
    };
    if (vt == ENG_TYPE_F32) {
        t.xq = (void *)x;
        t.xq_row = (size_t)w->ne0 * sizeof(float);
    } else {
        t.xq = c->wdata;
        t.xq_row = eng_row_size(vt, w->ne0);
        t.convert = eng_type_traits[vt].from_float;
        if (n_batch == 1)
            t.convert(x, t.xq, w->ne0);
        else
            eng_pool_run(c->pool, mm_convert, &t);
    }
    if (w->row_bytes * (size_t)w->ne1 * (size_t)n_batch < PARALLEL_MIN_BYTES)
        mm_rows(&t, 0, 1);
    else
        eng_pool_run(c->pool, mm_rows, &t);
}
