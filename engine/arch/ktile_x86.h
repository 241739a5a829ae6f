/*
 * ktile_x86.h — the K-quant tile (eng_vec_dot_tile_fn) around a type's
 * batched dot, for every x86 level (engine-internal; included only by ISA
 * files, which give it their vector types).
 *
 * A tile of rows against up to 8 Q8_K columns, each output the float
 * steps of the level's vec_dot_nrc in its order, so the same float (test
 * quant_tile_plain). A batched dot alone takes one row per call and
 * re-reads the row's columns for it: when 8 columns of activations do not
 * fit in L1 beside the streaming weights (8960-wide Q8_K columns are 10
 * KB each), they come from L2 for every row, and a batched dot that takes
 * four columns per pass (AVX2's 16 registers) reads the row twice. Here
 * rows go KT_ROWS at a time and KT_SB super-blocks of each row per step,
 * so 8 columns x 4 x 292 bytes of activations and 16 rows of weights stay
 * in L1 together, each row's column sums waiting in acc between the steps
 * and the row two ahead prefetched. Columns of fewer than KT_MIN_BYTES in
 * all take the rows one by one through the batched dot (the steps cost
 * 1536-wide rows 3-15%).
 *
 * K_TILE(T, BLOCK, ACC, ACCM, ZERO_ACC, ZERO_ACCM, FINAL, NRC, STEP, NAME)
 * defines NAME. The includer gives:
 *   ACC, ACCM        the column sums' vector types (accm: the mins term);
 *   ZERO_*           their zero;
 *   FINAL(acc, accm) the output from them, as its vec_dot_nrc forms it;
 *   NRC(n, nc, s, x, vy, st)  its batched dot (nc a constant after
 *                    inlining), for the rows one by one;
 *   STEP(T, nc, x, i0, i1, vy, st, acc, accm)  a macro adding super-blocks
 *                    [i0, i1) of row x against the nc columns to acc[c]
 *                    and accm[c], in vec_dot_nrc's order.
 */
#ifndef NIB_ENGINE_ARCH_KTILE_X86_H
#define NIB_ENGINE_ARCH_KTILE_X86_H

#include <immintrin.h>
#include <stddef.h>

#define KT_ROWS      16
#define KT_SB        4
#define KT_MIN_BYTES (24 * 1024)

#define K_TILE(T, BLOCK, ACC, ACCM, ZERO_ACC, ZERO_ACCM, FINAL, NRC, STEP,     \
               NAME)                                                           \
    static inline __attribute__((always_inline)) void T##_tile_impl(           \
        int n, int nr, const int nc, float *restrict out, size_t ldo,          \
        const uint8_t *restrict w, size_t row_bytes, const void *restrict vy,  \
        size_t st) {                                                           \
        const int nsb = n / QK_K;                                              \
        if ((size_t)nc * st < KT_MIN_BYTES) {                                  \
            for (int r = 0; r < nr; r++) {                                     \
                float s[ENG_NRC_MAX];                                          \
                NRC(n, nc, s, w + (size_t)r * row_bytes, vy, st);              \
                _Pragma("GCC unroll 8") for (int c = 0; c < nc; c++)           \
                    out[(size_t)c * ldo + r] = s[c];                           \
            }                                                                  \
            return;                                                            \
        }                                                                      \
        for (int r0 = 0; r0 < nr; r0 += KT_ROWS) {                             \
            const int rn = nr - r0 < KT_ROWS ? nr - r0 : KT_ROWS;              \
            ACC acc[KT_ROWS][ENG_NRC_MAX];                                     \
            ACCM accm[KT_ROWS][ENG_NRC_MAX];                                   \
            for (int k = 0; k < rn; k++)                                       \
                for (int c = 0; c < nc; c++) {                                 \
                    acc[k][c] = ZERO_ACC();                                    \
                    accm[k][c] = ZERO_ACCM();                                  \
                }                                                              \
            for (int i0 = 0; i0 < nsb; i0 += KT_SB) {                          \
                const int i1 = nsb - i0 < KT_SB ? nsb : i0 + KT_SB;            \
                for (int k = 0; k < rn; k++) {                                 \
                    const BLOCK *x =                                           \
                        (const BLOCK *)(w + (size_t)(r0 + k) * row_bytes);     \
                    /* the step's bytes of the row two ahead (of the           \
                     * block's first rows in the next step at its end) */      \
                    const int ka = k + 2 < rn ? k + 2 : k + 2 - rn;            \
                    const char *pf =                                           \
                        (const char *)w + (size_t)(r0 + ka) * row_bytes +      \
                        (size_t)(k + 2 < rn ? i0 : i1) * sizeof(BLOCK);        \
                    for (size_t b = 0; b < KT_SB * sizeof(BLOCK); b += 64)     \
                        _mm_prefetch(pf + b, _MM_HINT_T0);                     \
                    STEP(T, nc, x, i0, i1, vy, st, acc[k], accm[k]);           \
                }                                                              \
            }                                                                  \
            for (int k = 0; k < rn; k++)                                       \
                for (int c = 0; c < nc; c++)                                   \
                    out[(size_t)c * ldo + r0 + k] =                            \
                        FINAL(acc[k][c], accm[k][c]);                          \
        }                                                                      \
    }                                                                          \
    void NAME(int n, int nr, int nc, float *restrict out, size_t ldo,          \
              const void *restrict vx, size_t row_bytes,                       \
              const void *restrict vy, size_t st) {                            \
        const uint8_t *w = vx;                                                 \
        switch (nc) {                                                          \
        case 1:                                                                \
            T##_tile_impl(n, nr, 1, out, ldo, w, row_bytes, vy, st);           \
            break;                                                             \
        case 2:                                                                \
            T##_tile_impl(n, nr, 2, out, ldo, w, row_bytes, vy, st);           \
            break;                                                             \
        case 3:                                                                \
            T##_tile_impl(n, nr, 3, out, ldo, w, row_bytes, vy, st);           \
            break;                                                             \
        case 4:                                                                \
            T##_tile_impl(n, nr, 4, out, ldo, w, row_bytes, vy, st);           \
            break;                                                             \
        case 5:                                                                \
            T##_tile_impl(n, nr, 5, out, ldo, w, row_bytes, vy, st);           \
            break;                                                             \
        case 6:                                                                \
            T##_tile_impl(n, nr, 6, out, ldo, w, row_bytes, vy, st);           \
            break;                                                             \
        case 7:                                                                \
            T##_tile_impl(n, nr, 7, out, ldo, w, row_bytes, vy, st);           \
            break;                                                             \
        default:                                                               \
            T##_tile_impl(n, nr, 8, out, ldo, w, row_bytes, vy, st);           \
        }                                                                      \
    }

/* The AVX2 levels' STEP: their batched dots' T##_span(i0, i1, nrc, x, vy,
 * st, acc, accm) takes up to four columns (with 16 ymm registers the
 * decoded chunk and four columns' sums fill them), so 8 columns go as two
 * groups over the same super-blocks, still in L1. */
#define KT_AVX2_GROUP(T, g, c0, x, i0, i1, vy, st, acc, accm)                  \
    if ((g) > 0) {                                                             \
        __m256 a[4], am[4];                                                    \
        _Pragma("GCC unroll 4") for (int c = 0; c < (g); c++) {                \
            a[c] = (acc)[(c0) + c];                                            \
            am[c] = (accm)[(c0) + c];                                          \
        }                                                                      \
        T##_span(i0, i1, (g), x, (const char *)(vy) + (size_t)(c0) * (st), st, \
                 a, am);                                                       \
        _Pragma("GCC unroll 4") for (int c = 0; c < (g); c++) {                \
            (acc)[(c0) + c] = a[c];                                            \
            (accm)[(c0) + c] = am[c];                                          \
        }                                                                      \
    }
#define KT_AVX2_STEP(T, nc, x, i0, i1, vy, st, acc, accm)                      \
    do {                                                                       \
        KT_AVX2_GROUP(T, (nc) < 4 ? (nc) : 4, 0, x, i0, i1, vy, st, acc, accm) \
        KT_AVX2_GROUP(T, (nc)-4, 4, x, i0, i1, vy, st, acc, accm)              \
    } while (0)

/* An AVX2 level's tile of T: T##_span as above, NRC its batched dot; MINS
 * 1 where the type has a mins term (their vec_dots subtract it before the
 * horizontal sum). */
#define KT_AVX2_FINAL0(a, am) hsum_ps_256(a)
#define KT_AVX2_FINAL1(a, am) hsum_ps_256(_mm256_sub_ps(a, am))
#define K_TILE_AVX2(T, BLOCK, MINS, NRC, NAME)                                 \
    K_TILE(T, BLOCK, __m256, __m256, _mm256_setzero_ps, _mm256_setzero_ps,     \
           KT_AVX2_FINAL##MINS, NRC, KT_AVX2_STEP, NAME)

#endif
