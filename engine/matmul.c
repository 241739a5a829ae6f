/*
 * matmul.c — the one place where weights meet activations.
 *
 * Activations are first converted to the weight type's vec_dot_type (Q8_0,
 * Q8_K, F16, ...) once per call, as ggml does, so every row dot product is
 * an integer or half-precision kernel. Each thread walks its own
 * contiguous slice of the weight rows, tile by tile (mm_rows). Inside a
 * tile, each weight row meets up to ENG_NRC_MAX activation rows per call of
 * the type's batched dot (vec_dot_nrc), which decodes the weight blocks
 * once for all of them; the tile stays in L1/L2 while the batch walks over
 * it, so weights come from memory once per call however long the batch.
 *
 * Every output of the integer path is bit-identical to what the same
 * path gives for that one row and one column (the batched kernels keep
 * the one-column summation order: vec_dot's, or on packed activations the
 * packed kernel's own; checked by test kernels_nrc_equals_vec_dot): a
 * token's logits do not depend on the batch it was evaluated in, so a
 * speculative verify of 8 tokens agrees with decoding them one by one.
 *
 * The other path dequantizes tiles of weight rows to F32 and multiplies
 * them with OpenBLAS sgemm, single-threaded inside the pool's threads. It
 * runs only where `nib bench --gemm` measured it faster (eng_blas_wins:
 * F32 weights in batches of 32 tokens and more, F16 matrices of 2M weights
 * or more in batches of 128 and more; the integer dots win for every
 * quantized type at every batch size) and never for
 * batches of 16 tokens or fewer, so speculative verification stays exact.
 * Its sums run in another order, so there a prompt's logits differ from
 * one-token decode by float rounding (F16 activations are rounded to fp16
 * first, as on the integer path, so the products themselves agree).
 */
#include "internal.h"

#include <cblas.h>
#include <stdatomic.h>
#include <string.h>

/* OpenBLAS runs single-threaded inside nib's own pool threads. */
void openblas_set_num_threads(int num_threads);

/* Below this many bytes of weights a product runs on the calling thread:
 * waking the pool costs a few microseconds when the other core is idle and
 * up to a scheduler tick when another process holds it, which is more than
 * such a product takes alone. The bytes count once per token of the
 * batch. Qwen2.5-0.5B's decode projections (0.8 to 4.6 MB in Q8_0) stay
 * above it, its K/V projections (0.12 MB) and the test models' below. */
#define PARALLEL_MIN_BYTES (128 * 1024)

/* Rows per tile: the unit of cache reuse. 16 rows of a 4864-wide Q8_0
 * matrix are 83 KB (L2), of an 896-wide one 15 KB (L1), while the batch's
 * columns stream past. */
#define TILE_ROWS 16

/* Tiles are claimed this many weight bytes (per 8 columns) at a time:
 * small enough that a thread preempted in the middle of a claim holds the
 * others up by little, large enough that the claims' atomics cost nothing
 * next to the work. */
#define GRAB_BYTES (32 * 1024)

/* Without a tile kernel, a batched dot takes as many columns as fit in
 * this many bytes of converted activations (at most ENG_NRC_MAX): they are
 * re-read for every row, from L1 if they fit beside the weights streaming
 * through. Eight 4864-wide Q8_0 columns (41 KB) did not: the down
 * projection of Qwen2.5-0.5B ran at 44 GMAC/s per core against 78-100 with
 * three or four columns per call (before the tile kernels). But each pass
 * reads the weights again: at 16 KB the 10 KB Q8_K columns of an 8960-wide
 * K-quant row went one per pass, and the 1.5B's down projection read its
 * 7.7 MB eight times per 8-token batch. 48 KB, under NIB_FORCE_ISA=avx2,
 * two threads, alternating: 1536 x 8960 Q4_K batch 8 41-65 -> 118-122
 * GMAC/s, Q6_K 43 -> 64-107; 896 x 4864 Q4_K 58-94 -> 72-117; 1536-wide
 * rows and the AVX-512 F16 / BF16 / Q4_1 products even. */
#define NC_BYTES (48 * 1024)

/* Dequantizing pays only on matrices this large: on a 768 x 256 F16
 * matrix (nib's shipped draft model is smaller still) the integer path was
 * still 1.4x faster at 128 tokens, on 4864 x 896 sgemm already 1.5x. */
#define BLAS_MIN_WEIGHTS (2 << 20)

/* The smallest batch at which F32 tiles + OpenBLAS sgemm beat the integer
 * path for a weight type; 0: never. Measured with `nib bench --gemm`
 * (8960 x 1536 weights, 2 threads, Zen 5, both paths through eng_matmul):
 * sgemm took 0.37-0.70x the integer time for F32 weights (no dequantizing)
 * from 16 columns up, 0.76x / 0.65x / 0.58x for F16 at 128 / 256 / 512
 * (1.00x at 64), and never less than 1.1x for the quantized types (1.9x
 * for Q8_0 at 512) or below 0.99x for BF16. Batches up to 16 tokens, the
 * speculative verify sizes, always take the integer path, which is
 * bit-identical to one-token decode. */
static const int blas_min_batch[ENG_TYPE_COUNT] = {
    [ENG_TYPE_F32] = 32,
    [ENG_TYPE_F16] = 128,
};

bool eng_blas_wins(const eng_tensor *w, int n_batch) {
    const int mb = w->type < ENG_TYPE_COUNT ? blas_min_batch[w->type] : 0;
    return mb > 0 && n_batch >= mb &&
           (w->type == ENG_TYPE_F32 || w->ne0 * w->ne1 >= BLAS_MIN_WEIGHTS);
}

int eng_blas_min_batch(eng_type t) {
    return t < ENG_TYPE_COUNT ? blas_min_batch[t] : 0;
}

/* At most this many shares (threads) split one product; more threads than
 * this take no rows. */
#define MM_MAX_SHARES 64

/* The next unclaimed tile of one share, and the tile where that share
 * ends. Own cache line: its owner bumps it often. */
typedef struct {
    _Alignas(64) atomic_llong next;
    int64_t end;
} mm_range;

/* One weight matrix of a task and where its tiles sit in the task's
 * numbering. */
typedef struct {
    const eng_tensor *w;
    float *out;         /* [n_batch][w->ne1] */
    eng_vec_dot_fn dot; /* NULL: dot_nrc with one column */
    eng_vec_dot_nrc_fn dot_nrc;
    eng_vec_dot_tile_fn dot_tile; /* a tile of rows x columns; may be NULL */
    int64_t tile0, n_tiles;
} mm_part;

/* Up to ENG_MATMUL_MAX_PARTS products of one input: the Q, K and V
 * projections, or the gate and up ones. As one task they cost one
 * activation conversion and one thread sync instead of three, and the small
 * K/V products run on both threads as part of the larger one. */
typedef struct {
    mm_part part[ENG_MATMUL_MAX_PARTS];
    int n_parts;
    int64_t n_tiles; /* of all parts */
    int ne0;
    const float *x; /* [n_batch][ne0] */
    void *xq;       /* [n_batch][xq_row] converted activations */
    size_t xq_row;  /* bytes per converted row */
    int n_batch;
    eng_from_float_fn convert; /* NULL: x is used as it is (F32) */
    int nc_max;                /* columns per batched dot */
    bool blas;                 /* the sgemm path (F32 / F16 weights) */
    const float *xf;           /* sgemm's activations [n_batch][ne0] */
    float *blas_w;             /* per share: ENG_BLAS_ROWS dequantized rows */
    size_t blas_w_floats;
    int n_shares;
    int64_t grab;                  /* tiles per claim */
    mm_range range[MM_MAX_SHARES]; /* [n_shares] */
} mm_task;

static void mm_convert(void *arg, int ith, int nth) {
    mm_task *t = arg;
    for (int b = ith; b < t->n_batch; b += nth)
        t->convert(t->x + (size_t)b * t->ne0,
                   (uint8_t *)t->xq + (size_t)b * t->xq_row, t->ne0);
}

/* Rows [r0, r1) of one part against every column of the batch. */
static void mm_tile(const mm_task *t, const mm_part *pt, int64_t r0,
                    int64_t r1) {
    const eng_tensor *w = pt->w;
    const int64_t rows = w->ne1;
    const int n = t->ne0;
    const uint8_t *wd = w->data;
    const uint8_t *xq = t->xq;
    if (t->n_batch == 1 && pt->dot) {
        for (int64_t r = r0; r < r1; r++)
            pt->dot(n, &pt->out[r], wd + (size_t)r * w->row_bytes, xq);
        return;
    }
    for (int b0 = 0; b0 < t->n_batch; b0 += t->nc_max) {
        const int nc = NIB_MIN(t->nc_max, t->n_batch - b0);
        const void *xb = xq + (size_t)b0 * t->xq_row;
        float *ob = pt->out + (size_t)b0 * rows;
        if (pt->dot_tile) {
            /* One call for the tile, outputs written in place: the
             * per-row call, horizontal sums and copies out of s[] were a
             * fifth of a 896-wide row's time in one-token decode (Q5_0 35
             * against 45 GMAC/s per core on 4864-wide rows). */
            pt->dot_tile(n, (int)(r1 - r0), nc, &ob[r0], (size_t)rows,
                         wd + (size_t)r0 * w->row_bytes, w->row_bytes, xb,
                         t->xq_row);
            continue;
        }
        if (nc == 1) {
            /* Straight into the output: copying s[0] out right after the
             * kernel stored it costs a store-forwarding stall per row,
             * 6% of a one-thread decode (Q4_K_M, 0.5B). */
            for (int64_t r = r0; r < r1; r++)
                pt->dot_nrc(n, 1, &ob[r], wd + (size_t)r * w->row_bytes, xb,
                            t->xq_row);
            continue;
        }
        for (int64_t r = r0; r < r1; r++) {
            float s[ENG_NRC_MAX];
            pt->dot_nrc(n, nc, s, wd + (size_t)r * w->row_bytes, xb, t->xq_row);
            for (int c = 0; c < nc; c++)
                ob[(size_t)c * rows + r] = s[c];
        }
    }
}

/* Rows [r0, r1) (at most ENG_BLAS_ROWS) of one part through sgemm, the
 * weights dequantized into share ith's tile buffer unless they are F32. */
static void mm_tile_blas(const mm_task *t, const mm_part *pt, int64_t r0,
                         int64_t r1, int ith) {
    const eng_tensor *w = pt->w;
    const int n = t->ne0, nr = (int)(r1 - r0);
    const float *wf;
    if (w->type == ENG_TYPE_F32) {
        wf = (const float *)w->data + (size_t)r0 * n;
    } else {
        float *buf = t->blas_w + (size_t)ith * t->blas_w_floats;
        const eng_to_float_fn to_float = eng_type_traits[w->type].to_float;
        for (int r = 0; r < nr; r++)
            to_float((const uint8_t *)w->data + (size_t)(r0 + r) * w->row_bytes,
                     buf + (size_t)r * n, n);
        wf = buf;
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, t->n_batch, nr, n,
                1.0f, t->xf, n, wf, n, 0.0f, pt->out + r0, (int)w->ne1);
}

/* Tiles [g0, g1) of the task's numbering, part by part. */
static void mm_tiles(const mm_task *t, int64_t g0, int64_t g1, int ith) {
    for (int i = 0; i < t->n_parts && g0 < g1; i++) {
        const mm_part *pt = &t->part[i];
        const int64_t end = pt->tile0 + pt->n_tiles;
        if (g0 >= end)
            continue;
        const int64_t e = NIB_MIN(g1, end);
        const int64_t r0 = (g0 - pt->tile0) * TILE_ROWS;
        const int64_t r1 = NIB_MIN((e - pt->tile0) * TILE_ROWS, pt->w->ne1);
        if (t->blas)
            mm_tile_blas(t, pt, r0, r1, ith);
        else
            mm_tile(t, pt, r0, r1);
        g0 = e;
    }
}

/* Share k is the k-th contiguous slice of the rows, walked from its start:
 * each thread then reads one long run of memory, which the hardware
 * prefetchers follow. Threads that took turns on small tiles instead read
 * the weights at 13-36 GB/s on the 2-core Zen 4 box, against 43 GB/s for
 * contiguous halves (same kernel, 128 KB to 15 KB turns). A thread done
 * with its share helps with the others', also from their front, so a share
 * whose thread another process preempted, or that the caller runs alone
 * (pool.c), is still read in one forward run. */
static void mm_rows(void *arg, int ith, int nth) {
    (void)nth;
    mm_task *t = arg;
    for (int k = 0; k < t->n_shares; k++) {
        mm_range *rg = &t->range[(ith + k) % t->n_shares];
        for (;;) {
            int64_t g0 = atomic_fetch_add(&rg->next, t->grab);
            if (g0 >= rg->end)
                break;
            mm_tiles(t, g0, NIB_MIN(g0 + t->grab, rg->end), ith);
        }
    }
}

static void mm_split(mm_task *t, int nth) {
    /* claims sized by the widest rows of the task */
    size_t row_bytes = 0;
    for (int i = 0; i < t->n_parts; i++)
        row_bytes = NIB_MAX(row_bytes, t->part[i].w->row_bytes);
    const size_t tile_bytes =
        (size_t)TILE_ROWS * row_bytes *
        (size_t)((t->n_batch + t->nc_max - 1) / t->nc_max);
    t->n_shares = (int)NIB_MIN(NIB_MIN(nth, MM_MAX_SHARES), t->n_tiles);
    t->grab = NIB_MAX(1, (int64_t)(GRAB_BYTES / tile_bytes));
    if (t->blas) /* one sgemm call per claim, on at most its tile buffer */
        t->grab = ENG_BLAS_ROWS / TILE_ROWS;
    for (int k = 0; k < t->n_shares; k++) {
        atomic_init(&t->range[k].next, t->n_tiles * k / t->n_shares);
        t->range[k].end = t->n_tiles * (k + 1) / t->n_shares;
    }
}

/* How products of weight type `type` read their activations. */
static void mm_kernels(eng_type type, int n_batch, eng_from_float_fn *convert,
                       eng_vec_dot_fn *dot, eng_vec_dot_nrc_fn *dot_nrc,
                       eng_vec_dot_tile_fn *dot_tile) {
    const eng_type_traits_t *tt = &eng_type_traits[type];
    const eng_type vt = tt->vec_dot_type;
    *convert = vt == ENG_TYPE_F32 ? NULL : eng_type_traits[vt].from_float;
    *dot = tt->vec_dot;
    *dot_nrc = tt->vec_dot_nrc;
    *dot_tile = tt->vec_dot_tile;
    /* The packed-activation kernel where there is one, for one token
     * and for batches alike (its sums are grouped differently from
     * vec_dot's, so decode and verify must both take it): about twice as
     * fast per column in a batch, and for one token (decode) 10-30%
     * faster than vec_dot (Q5_0 22.7 against 20.4 GMAC/s per core, Q8_0
     * 49 against 38), which is what lets two cores keep up with the
     * memory bus. */
    if (vt != ENG_TYPE_F32 && tt->vec_dot_nrc_packed &&
        eng_type_traits[vt].from_float_packed) {
        *convert = eng_type_traits[vt].from_float_packed;
        *dot = NULL;
        *dot_nrc = tt->vec_dot_nrc_packed;
        *dot_tile = tt->vec_dot_tile_packed;
    } else if (vt != ENG_TYPE_F32 && n_batch > 1 && tt->vec_dot_tile_packed &&
               eng_type_traits[vt].from_float_packed) {
        /* a batch-only tile, bit-identical to vec_dot (the AVX-512 Q4_K
         * and Q5_K on rearranged Q8_K: 1.2x the plain tile); it takes
         * every column count itself, so dot_nrc is never reached */
        *convert = eng_type_traits[vt].from_float_packed;
        *dot_tile = tt->vec_dot_tile_packed;
    }
}

/* Whether parts [0, k) (all of one activation format) take the sgemm
 * path: every weight's type must win there at this batch size. */
static bool mm_use_blas(const eng_ctx *c, const eng_tensor *const *ws, int k,
                        int n_batch) {
    if (c->gemm_path == ENG_GEMM_INT || !c->blas_w)
        return false;
    for (int i = 0; i < k; i++) {
        if (ws[i]->ne0 * ENG_BLAS_ROWS > (int64_t)c->blas_w_floats)
            return false;
        /* forced (benchmarks): any type that dequantizes */
        if (c->gemm_path == ENG_GEMM_BLAS) {
            if (!eng_type_traits[ws[i]->type].to_float)
                return false;
        } else if (!eng_blas_wins(ws[i], n_batch)) {
            return false;
        }
    }
    return true;
}

void eng_blas_init(void) {
    openblas_set_num_threads(1);
}

/* sgemm's input: the activations rounded as the integer path rounds them
 * for F16 weights (to fp16, as ggml does), so the products are the same
 * and only the order of the sums differs. Other types take this path only
 * when a benchmark forces it, and get the activations as they are. */
static void mm_blas_input(eng_ctx *c, mm_task *t, eng_type type) {
    t->blas = true;
    t->blas_w = c->blas_w;
    t->blas_w_floats = c->blas_w_floats;
    if (type != ENG_TYPE_F16) {
        t->xf = t->x;
        return;
    }
    const size_t nx = (size_t)t->n_batch * (size_t)t->ne0;
    for (size_t i = 0; i < nx; i++)
        c->blas_x[i] = eng_fp16_to_fp32(eng_fp32_to_fp16(t->x[i]));
    t->xf = c->blas_x;
}

/* One task over parts [0, k) that all read the same converted input. */
static void mm_run(eng_ctx *c, int k, float *const *outs,
                   const eng_tensor *const *ws, const float *x, int n_batch) {
    const eng_tensor *w0 = ws[0];
    const eng_type vt = eng_type_traits[w0->type].vec_dot_type;
    mm_task t = {.ne0 = (int)w0->ne0, .x = x, .n_batch = n_batch};
    size_t bytes = 0;
    for (int i = 0; i < k; i++) {
        mm_part *pt = &t.part[i];
        eng_from_float_fn convert;
        mm_kernels(ws[i]->type, n_batch, &convert, &pt->dot, &pt->dot_nrc,
                   &pt->dot_tile);
        if (i == 0)
            t.convert = convert;
        pt->w = ws[i];
        pt->out = outs[i];
        pt->tile0 = t.n_tiles;
        pt->n_tiles = (ws[i]->ne1 + TILE_ROWS - 1) / TILE_ROWS;
        t.n_tiles += pt->n_tiles;
        bytes += ws[i]->row_bytes * (size_t)ws[i]->ne1;
    }
    t.n_parts = k;
    const bool parallel = bytes * (size_t)n_batch >= PARALLEL_MIN_BYTES &&
                          eng_pool_size(c->pool) > 1;
    if (mm_use_blas(c, ws, k, n_batch)) {
        mm_blas_input(c, &t, w0->type);
        t.nc_max = ENG_NRC_MAX; /* unused */
        mm_split(&t, parallel ? eng_pool_size(c->pool) : 1);
        if (parallel)
            eng_pool_run(c->pool, mm_rows, &t);
        else
            mm_rows(&t, 0, 1);
        return;
    }
    if (!t.convert) {
        t.xq = (void *)x;
        t.xq_row = (size_t)t.ne0 * sizeof(float);
    } else {
        t.xq = c->wdata;
        t.xq_row =
            eng__act_stride(t.convert == eng_type_traits[vt].from_float_packed
                                ? eng_row_size_packed(vt, t.ne0)
                                : eng_row_size(vt, t.ne0));
        if (n_batch == 1 || !parallel)
            mm_convert(&t, 0, 1);
        else
            eng_pool_run(c->pool, mm_convert, &t);
    }
    /* The tile kernels take all eight columns however wide: they
     * prefetch the rows ahead themselves (PREFETCH_ROWS in
     * gemm_avx512.c), which made the 4864-wide down projection of an
     * 8-token batch 1.4x faster than three passes of three columns. The
     * other kernels take as many columns as stay in L1. */
    bool tiles = true;
    for (int i = 0; i < k; i++)
        tiles = tiles && t.part[i].dot_tile;
    t.nc_max = tiles
                   ? ENG_NRC_MAX
                   : (int)NIB_MAX(1, NIB_MIN(ENG_NRC_MAX, NC_BYTES / t.xq_row));
    if (parallel) {
        mm_split(&t, eng_pool_size(c->pool));
        eng_pool_run(c->pool, mm_rows, &t);
    } else {
        mm_split(&t, 1);
        mm_rows(&t, 0, 1);
    }
}

void eng_matmul(eng_ctx *c, float *out, const eng_tensor *w, const float *x,
                int n_batch) {
    mm_run(c, 1, &out, &w, x, n_batch);
}

void eng_matmul_n(eng_ctx *c, int k, float *const *outs,
                  const eng_tensor *const *ws, const float *x, int n_batch) {
    /* Runs of consecutive weights that read the same converted input go
     * together; a weight whose type converts differently starts a new run
     * (the scratch holds one conversion at a time). */
    int i = 0;
    while (i < k) {
        eng_from_float_fn ci, cj;
        eng_vec_dot_fn d;
        eng_vec_dot_nrc_fn dn;
        eng_vec_dot_tile_fn dr;
        mm_kernels(ws[i]->type, n_batch, &ci, &d, &dn, &dr);
        int j = i + 1;
        while (j < k && j - i < ENG_MATMUL_MAX_PARTS &&
               ws[j]->ne0 == ws[i]->ne0 &&
               eng_type_traits[ws[j]->type].vec_dot_type ==
                   eng_type_traits[ws[i]->type].vec_dot_type) {
            mm_kernels(ws[j]->type, n_batch, &cj, &d, &dn, &dr);
            if (cj != ci)
                break;
            j++;
        }
        mm_run(c, j - i, outs + i, ws + i, x, n_batch);
        i = j;
    }
}
