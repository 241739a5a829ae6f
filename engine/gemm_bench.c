/*
 * gemm_bench.c — the engine's integer matrix products against
 * dequantize-to-F32 + OpenBLAS sgemm, on the same weights and activations,
 * for `nib bench --gemm`.
 *
 * Both sides are eng_matmul itself, forced down one path or the other:
 * the integer path (activation conversion, batched dots) and the sgemm path
 * (each pool thread dequantizes tiles of ENG_BLAS_ROWS weight rows to F32
 * and calls single-threaded OpenBLAS sgemm on them), with the same threads,
 * so the figures are those of a forward pass and the table in matmul.c
 * that picks a path per type and batch size comes from them.
 */
#include "internal.h"

#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "common/nib.h"

/* OpenBLAS's own thread count, set per call. */
void openblas_set_num_threads(int num_threads);

static uint32_t gb_rng(uint64_t *s) {
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    return (uint32_t)(*s >> 33);
}

static float gb_sym(uint64_t *s) { /* [-1, 1) */
    return (float)(gb_rng(s) >> 8) * (2.0f / 16777216.0f) - 1.0f;
}

static double gb_ms(uint64_t t0) {
    return (double)(nib_now_ns() - t0) / 1e6;
}

int eng_gemm_compare(const char *type_name, int rows, int cols, int batch,
                     int threads, int reps, eng_gemm_cmp *res, char *err,
                     size_t err_size) {
    memset(res, 0, sizeof *res);
    eng_quant_init();
    eng_type t = ENG_TYPE_COUNT;
    for (int i = 0; i < ENG_TYPE_COUNT; i++)
        if (eng_type_traits[i].name &&
            strcmp(eng_type_traits[i].name, type_name) == 0)
            t = (eng_type)i;
    if (t == ENG_TYPE_COUNT || !eng_type_traits[t].supported ||
        !eng_type_traits[t].from_float_ref) {
        nib_errf(err, err_size, "unknown or unsupported weight type %s",
                 type_name);
        return NIB_EINVAL;
    }
    const eng_type_traits_t *tt = &eng_type_traits[t];
    const eng_type vt = tt->vec_dot_type;
    if (rows <= 0 || cols <= 0 || batch <= 0 || threads <= 0 || reps <= 0 ||
        cols % tt->blck_size || cols % eng_type_traits[vt].blck_size) {
        nib_errf(err, err_size,
                 "%s needs positive sizes and rows of a multiple of %lld "
                 "elements",
                 type_name, (long long)tt->blck_size);
        return NIB_EINVAL;
    }

    const size_t nw = (size_t)rows * cols, nx = (size_t)batch * cols;
    float *wf = nib_try_malloc(nw * sizeof(float));
    float *x = nib_try_malloc(nx * sizeof(float));
    float *y_int = nib_try_malloc((size_t)batch * rows * sizeof(float));
    float *y_blas = nib_try_malloc((size_t)batch * rows * sizeof(float));
    const size_t row_bytes = eng_row_size(t, cols);
    void *wq = nib_try_malloc(row_bytes * (size_t)rows);
    /* the engine's scratch: the widest converted activation row per token */
    size_t xq_row = eng__act_stride(
        NIB_MAX(eng_row_size_packed(vt, cols), (size_t)cols * 4));
    void *wdata = nib_try_malloc(xq_row * (size_t)batch + 63);
    float *blas_x = nib_try_malloc(nx * sizeof(float));
    float *blas_w = nib_try_malloc((size_t)threads * ENG_BLAS_ROWS *
                                   (size_t)cols * sizeof(float));
    int r = 0;
    if (!wf || !x || !y_int || !y_blas || !wq || !wdata || !blas_x || !blas_w) {
        nib_errf(err, err_size, "out of memory for a %d x %d x %d product",
                 batch, rows, cols);
        r = NIB_ENOMEM;
        goto done;
    }
    uint64_t seed = 0x67656d6du; /* "gemm" */
    for (size_t i = 0; i < nw; i++)
        wf[i] = gb_sym(&seed) * 0.05f;
    for (size_t i = 0; i < nx; i++)
        x[i] = gb_sym(&seed);
    for (int i = 0; i < rows; i++)
        tt->from_float_ref(wf + (size_t)i * cols,
                           (uint8_t *)wq + (size_t)i * row_bytes, cols);

    /* Both paths through eng_matmul, forced one way then the other, on a
     * context holding just what eng_matmul reads: the pool, the scratch
     * of converted activations, the sgemm buffers. */
    eng_ctx c;
    memset(&c, 0, sizeof c);
    c.pool = eng_pool_new(threads);
    c.wdata = (void *)(((uintptr_t)wdata + 63) & ~(uintptr_t)63);
    c.wdata_size = xq_row * (size_t)batch;
    c.blas_x = blas_x;
    c.blas_w = blas_w;
    c.blas_w_floats = (size_t)ENG_BLAS_ROWS * (size_t)cols;
    eng_blas_init();
    eng_tensor w = {.type = t,
                    .ne0 = cols,
                    .ne1 = rows,
                    .row_bytes = row_bytes,
                    .data = wq,
                    .name = "gemm"};
    const int paths[2] = {ENG_GEMM_INT, ENG_GEMM_BLAS};
    float *outs[2] = {y_int, y_blas};
    double *ms[2] = {&res->int_ms, &res->sgemm_ms};
    for (int p = 0; p < 2; p++) {
        c.gemm_path = paths[p];
        eng_matmul(&c, outs[p], &w, x, batch); /* warm-up */
        *ms[p] = 1e300;
        for (int i = 0; i < reps; i++) {
            uint64_t t0 = nib_now_ns();
            eng_matmul(&c, outs[p], &w, x, batch);
            *ms[p] = NIB_MIN(*ms[p], gb_ms(t0));
        }
    }
    eng_pool_delete(c.pool);
    res->auto_blas = eng_blas_wins(&w, batch);

    /* How far apart the two paths land: the integer path also rounds the
     * activations to 8 bits (or fp16), the sgemm path does not. */
    double maxabs = 0, maxdiff = 0;
    for (size_t i = 0; i < (size_t)batch * rows; i++) {
        maxabs = NIB_MAX(maxabs, (double)fabsf(y_blas[i]));
        maxdiff = NIB_MAX(maxdiff, (double)fabsf(y_blas[i] - y_int[i]));
    }
    res->max_rel_diff = maxabs > 0 ? maxdiff / maxabs : 0;
done:
    nib_free(wf);
    nib_free(x);
    nib_free(y_int);
    nib_free(y_blas);
    nib_free(wq);
    nib_free(wdata);
    nib_free(blas_x);
    nib_free(blas_w);
    return r;
}
