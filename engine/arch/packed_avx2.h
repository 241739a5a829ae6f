/*
 * packed_avx2.h — the packed-activation kernels of Q8_0, Q4_0 and Q5_0 in
 * 256-bit vectors, as inline bodies over one integer dot primitive
 * (engine-internal; included only by ISA files compiled with AVX2 flags).
 *
 * The packed Q8_0 activation row is the one gemm_avx512.c defines
 * (eng_row_size_packed: the quants + 128 as bytes, groups of four blocks
 * in 128 bytes where int32 lane 4q + b of the first 64 bytes holds
 * elements 4q..4q+3 of block b and the next 64 bytes elements 16 + 4q..,
 * leftover blocks in element order, then the scales as F32), so the AVX2
 * packer writes the AVX-512 packer's bytes. Here a group is four ymm
 * vectors y0..y3 (bytes 0, 32, 64, 96) and int32 lane j of every one of
 * them belongs to block j % 4: the weights are decoded to signed bytes in
 * the same places, the four products summed into one vector of exact
 * int32 lane sums, and the float steps are one convert, one multiply by
 * the eight lanes' scale products and one FMA per column and four blocks
 * (the one-row dots spend a convert and an FMA per block and column).
 *
 * gemm_avx2.c instantiates the bodies with vpmaddubsw + vpmaddwd for Q4_0
 * and Q5_0 (|w| <= 16, so the 16-bit sums of four products stay exact),
 * and for Q8_0, whose weights would saturate them against activations up
 * to 255, with signed activations given the weights' signs against |w|;
 * quant_avxvnni.c with AVX-VNNI's vpdpbusd for all three. The integers
 * are the same, the float steps are this file's, so the two are
 * bit-identical (test kernels_packed_avx2). As in gemm_avx512.c, one body
 * serves every column count, so a token's logits do not depend on the
 * batch it was verified in.
 */
#ifndef NIB_ENGINE_ARCH_PACKED_AVX2_H
#define NIB_ENGINE_ARCH_PACKED_AVX2_H

#include <immintrin.h>
#include <string.h>

#include "quant_x86.h"

#ifndef ALWAYS_INLINE
#define ALWAYS_INLINE static inline __attribute__((always_inline))
#endif

/* Fully unrolled loops over columns and vectors keep the accumulators
 * and weight vectors in registers (without, GCC keeps the arrays on the
 * stack). */
#define PK_UNROLL _Pragma("GCC unroll 8")

/* Four weight blocks as signed bytes in the group layout, and their
 * scales in lane j % 4 of dx. */
typedef struct {
    __m256i w[4];
    __m256 dx;
} pk_group;

ALWAYS_INLINE __m256 pk_scales8(eng_fp16 d0, eng_fp16 d1, eng_fp16 d2,
                                eng_fp16 d3) {
    const uint64_t v = (uint64_t)d0 | (uint64_t)d1 << 16 | (uint64_t)d2 << 32 |
                       (uint64_t)d3 << 48;
    const __m128 f = _mm_cvtph_ps(_mm_cvtsi64_si128((long long)v));
    return _mm256_set_m128(f, f);
}

/* Two 16-byte halves [a | b] in one vector. */
ALWAYS_INLINE __m256i pk_load2(const void *a, const void *b) {
    return _mm256_loadu2_m128i((const __m128i *)b, (const __m128i *)a);
}

/* Four rows of four int32 (r0..r3), given as a = [r0 | r2], b = [r1 | r3],
 * to columns: lo = [column 0 of r0..r3 | column 1], hi = columns 2, 3. */
ALWAYS_INLINE void pk_transpose(__m256i a, __m256i b, __m256i *lo,
                                __m256i *hi) {
    *lo = _mm256_permute4x64_epi64(_mm256_unpacklo_epi32(a, b), 0xd8);
    *hi = _mm256_permute4x64_epi64(_mm256_unpackhi_epi32(a, b), 0xd8);
}

ALWAYS_INLINE void pk_group_q8_0(const block_q8_0 *a, pk_group *g,
                                 const int uns) {
    pk_transpose(pk_load2(a[0].qs, a[2].qs), pk_load2(a[1].qs, a[3].qs),
                 &g->w[0], &g->w[1]);
    pk_transpose(pk_load2(a[0].qs + 16, a[2].qs + 16),
                 pk_load2(a[1].qs + 16, a[3].qs + 16), &g->w[2], &g->w[3]);
    if (uns) {
        PK_UNROLL
        for (int k = 0; k < 4; k++) /* w + 128 */
            g->w[k] = _mm256_xor_si256(g->w[k], _mm256_set1_epi8((char)0x80));
    }
    g->dx = pk_scales8(a[0].d, a[1].d, a[2].d, a[3].d);
}

/* The four blocks' nibble bytes transposed: lane 4q + b of r[0] (q = 0,
 * 1) and of r[1] (q = 2, 3) is bytes 4q..4q+3 of block b's qs, whose low
 * nibbles are elements 4q.., the high ones 16 + 4q... */
ALWAYS_INLINE void pk_nibbles(const uint8_t *q0, const uint8_t *q1,
                              const uint8_t *q2, const uint8_t *q3,
                              __m256i w[4]) {
    const __m256i m4 = _mm256_set1_epi8(0xf);
    __m256i r0, r1;
    pk_transpose(pk_load2(q0, q2), pk_load2(q1, q3), &r0, &r1);
    w[0] = _mm256_and_si256(r0, m4);
    w[1] = _mm256_and_si256(r1, m4);
    w[2] = _mm256_and_si256(_mm256_srli_epi16(r0, 4), m4);
    w[3] = _mm256_and_si256(_mm256_srli_epi16(r1, 4), m4);
}

/* uns: the weights as the block stores them, w + 8 or w + 16 (see
 * PK_LANE_SUMS) */
ALWAYS_INLINE void pk_group_q4_0(const block_q4_0 *a, pk_group *g,
                                 const int uns) {
    const __m256i eight = _mm256_set1_epi8(8);
    pk_nibbles(a[0].qs, a[1].qs, a[2].qs, a[3].qs, g->w);
    if (!uns) {
        PK_UNROLL
        for (int k = 0; k < 4; k++)
            g->w[k] = _mm256_sub_epi8(g->w[k], eight);
    }
    g->dx = pk_scales8(a[0].d, a[1].d, a[2].d, a[3].d);
}

ALWAYS_INLINE void pk_group_q5_0(const block_q5_0 *a, pk_group *g,
                                 const int uns) {
    pk_nibbles(a[0].qs, a[1].qs, a[2].qs, a[3].qs, g->w);
    /* Vector k's byte j of lane 4q + b is element 16 (k / 2) + 4q + j of
     * block b, whose 5th bit is bit 8k + 4 (q % 2) + j of qh_b: byte k of
     * the lane's qh word, bit j in the low 128-bit half (q even), 4 + j
     * in the high one. A byte becomes all ones where that bit is set (the
     * other seven OR-ed in first). */
    uint32_t h0, h1, h2, h3;
    memcpy(&h0, a[0].qh, 4);
    memcpy(&h1, a[1].qh, 4);
    memcpy(&h2, a[2].qh, 4);
    memcpy(&h3, a[3].qh, 4);
    const __m256i qh = _mm256_broadcastsi128_si256(_mm_insert_epi64(
        _mm_cvtsi64_si128((long long)(h0 | (uint64_t)h1 << 32)),
        (long long)(h2 | (uint64_t)h3 << 32), 1));
    const __m256i others =
        _mm256_setr_epi8(-2, -3, -5, -9, -2, -3, -5, -9, -2, -3, -5, -9, -2, -3,
                         -5, -9, -17, -33, -65, 127, -17, -33, -65, 127, -17,
                         -33, -65, 127, -17, -33, -65, 127);
    const __m256i ones = _mm256_set1_epi8(-1);
    const __m256i f0 = _mm256_set1_epi8((char)0xf0);
    const __m256i b4 = _mm256_set1_epi8(0x10);
    PK_UNROLL
    for (int k = 0; k < 4; k++) {
        const __m256i pick =
            _mm256_add_epi8(_mm256_setr_epi8(0, 0, 0, 0, 4, 4, 4, 4, 8, 8, 8, 8,
                                             12, 12, 12, 12, 0, 0, 0, 0, 4, 4,
                                             4, 4, 8, 8, 8, 8, 12, 12, 12, 12),
                            _mm256_set1_epi8((char)k));
        const __m256i set = _mm256_cmpeq_epi8(
            _mm256_or_si256(_mm256_shuffle_epi8(qh, pick), others), ones);
        /* q - 16: the nibble where the bit is set, nibble - 16 (nibble |
         * 0xf0 as int8) where it is clear; uns: q, the nibble + 16 where
         * it is set */
        g->w[k] = _mm256_or_si256(g->w[k], uns ? _mm256_and_si256(set, b4)
                                               : _mm256_andnot_si256(set, f0));
    }
    g->dx = pk_scales8(a[0].d, a[1].d, a[2].d, a[3].d);
}

/* out[k] = hsum_ps_256(v[k]) for k < 4, the same adds (x_i = v_i +
 * v_{i+4}, then (x0 + x2) + (x1 + x3)) on four vectors at once. */
ALWAYS_INLINE void pk_hsum4(const __m256 v[4], float *out) {
    const __m256 a = _mm256_add_ps(_mm256_permute2f128_ps(v[0], v[1], 0x20),
                                   _mm256_permute2f128_ps(v[0], v[1], 0x31));
    const __m256 b = _mm256_add_ps(_mm256_permute2f128_ps(v[2], v[3], 0x20),
                                   _mm256_permute2f128_ps(v[2], v[3], 0x31));
    /* lanes: [x0 + x2, x1 + x3] of v0, v2 | of v1, v3 */
    const __m256 h = _mm256_add_ps(_mm256_shuffle_ps(a, b, 0x44),
                                   _mm256_shuffle_ps(a, b, 0xee));
    /* lane 0: v0, 2: v2, 4: v1, 6: v3 */
    const __m256 s = _mm256_add_ps(h, _mm256_movehdup_ps(h));
    const __m128 lo = _mm256_castps256_ps128(s);
    const __m128 hi = _mm256_extractf128_ps(s, 1);
    /* [v0, v1, v2, v3] */
    _mm_storeu_ps(out, _mm_shuffle_ps(_mm_unpacklo_ps(lo, hi),
                                      _mm_unpackhi_ps(lo, hi), 0x44));
}

/* See gemm_avx512.c's PREFETCH_ROWS: the group loop prefetches the row
 * this many rows ahead (four or more columns / fewer). */
#define PK_PREFETCH_ROWS   4
#define PK_PREFETCH_ROWS_1 16

/* One column of Q4_0 or Q5_0 (UNS_SHIFT 3 or 4 below), as gemm_avx512.c's
 * lane_sums: per group the kernel spent four of its eight vpdpbusd (or
 * vpmaddubsw) on -128 * the weights' lane sums, once per weight row.
 * Instead the weights stay unsigned (q = w + 8 or w + 16, what the block
 * stores), the activations are XOR-ed back to signed bytes, and each lane
 * starts from -(8 or 16) * the sum of its sixteen activations: the same
 * integer as the batch path's, so decode stays bit-identical to verify.
 * ls: PK_LANE_SUMS_MAX * 8 lanes of -(sum << shift), then the signed
 * activations in the packed row's layout; formed once per tile call.
 * One thread, one column, 20000 rows of 896 (AVX-VNNI), old and new
 * alternating: Q5_0 0.64-0.67 -> 0.54-0.56 ms, Q4_0 (no subtraction of
 * 8 either) 0.45 -> 0.31-0.33 ms. Q8_0 (AVX-VNNI only: weights XOR 0x80,
 * shift 7), 1000 rows of 896 in L2: 0.031-0.034 -> 0.019-0.030 ms in 9
 * of 10 pairs; the AVX-512 kernel measured it 0.92-1.00x (bench/README). */
#define PK_LANE_SUMS_MAX  128 /* groups: rows of up to 16384 elements */
#define PK_LANE_SUMS_INTS (PK_LANE_SUMS_MAX * 8 + PK_LANE_SUMS_MAX * 128 / 4)
static inline void pk_lane_sums(int32_t *ls, const void *vy, int n, int shift) {
    const uint8_t *y = vy;
    uint8_t *ys = (uint8_t *)(ls + PK_LANE_SUMS_MAX * 8);
    const __m256i flip = _mm256_set1_epi8((char)0x80);
    const __m256i one = _mm256_set1_epi8(1);
    for (int g = 0; g < n / QK8_0 / 4; g++) {
        /* four pair sums of at most 2 * 128 each: no saturation */
        __m256i s16 = _mm256_setzero_si256();
        for (int k = 0; k < 4; k++) {
            const __m256i a = _mm256_xor_si256(
                flip,
                _mm256_loadu_si256((const __m256i *)(y + 128 * g + 32 * k)));
            _mm256_store_si256((__m256i *)(ys + 128 * g + 32 * k), a);
            s16 = _mm256_add_epi16(s16, _mm256_maddubs_epi16(one, a));
        }
        const __m256i sum = _mm256_madd_epi16(s16, _mm256_set1_epi16(1));
        _mm256_store_si256(
            (__m256i *)(ls + 8 * g),
            _mm256_sub_epi32(_mm256_setzero_si256(),
                             _mm256_sll_epi32(sum, _mm_cvtsi32_si128(shift))));
    }
}

/* The kernels of one weight type T. DOT(w, y, nv, c) is c plus the exact
 * int32 lane sums of y[32k..] (unsigned) . w[k] over k < nv; C0(w, nv) is
 * -128 times the lane sums of w[k] (the +128 of the activations taken
 * off); DOTU(w, ys, nv, c) the same sums with w unsigned and ys signed
 * (types with UNS_SHIFT > 0, see pk_lane_sums). Up to eight columns per
 * pass, though eight accumulators, four weight vectors, their correction
 * and scales leave the 16 ymm registers two temporaries: against two passes of
 * four, which decode every group twice, one thread in cache, 896-wide rows, 8
 * columns: Q8_0 95 -> 111, Q5_0 69 -> 90 GMAC/s (AVX-VNNI). */
#define PK_AVX2_KERNELS(T, BLOCK, GROUP, SINGLE, DOT, C0, DOTU, UNS_SHIFT,     \
                        SUFFIX)                                                \
    ALWAYS_INLINE void T##_pk_groups##SUFFIX(                                  \
        int n, const int nrc, __m256 *acc, const BLOCK *restrict x,            \
        const void *restrict vy, size_t st, const char *pf, const int32_t *ls, \
        const int uns) {                                                       \
        const int nb = n / QK8_0;                                              \
        PK_UNROLL                                                              \
        for (int c = 0; c < nrc; c++)                                          \
            acc[c] = _mm256_setzero_ps();                                      \
        for (int i = 0; i + 4 <= nb; i += 4) {                                 \
            const char *p = pf + i * sizeof(BLOCK);                            \
            _mm_prefetch(p, _MM_HINT_T0);                                      \
            _mm_prefetch(p + 64, _MM_HINT_T0);                                 \
            _mm_prefetch(p + 4 * sizeof(BLOCK) - 1, _MM_HINT_T0);              \
            pk_group g;                                                        \
            GROUP(x + i, &g, uns);                                             \
            if (uns) {                                                         \
                const uint8_t *y = vy;                                         \
                const int8_t *ys =                                             \
                    (const int8_t *)(ls + PK_LANE_SUMS_MAX * 8);               \
                const __m256i sum =                                            \
                    DOTU(g.w, ys + 32 * i, 4,                                  \
                         _mm256_load_si256((const __m256i *)(ls + 2 * i)));    \
                const __m256 d = _mm256_mul_ps(                                \
                    g.dx,                                                      \
                    _mm256_broadcast_ps((const __m128 *)(y + n) + i / 4));     \
                acc[0] = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(sum), acc[0]);  \
                continue;                                                      \
            }                                                                  \
            const __m256i c0 = C0(g.w, 4);                                     \
            PK_UNROLL                                                          \
            for (int c = 0; c < nrc; c++) {                                    \
                const uint8_t *y = (const uint8_t *)vy + (size_t)c * st;       \
                const __m256i sum = DOT(g.w, y + 32 * i, 4, c0);               \
                const __m256 d = _mm256_mul_ps(                                \
                    g.dx,                                                      \
                    _mm256_broadcast_ps((const __m128 *)(y + n) + i / 4));     \
                acc[c] = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(sum), acc[c]);  \
            }                                                                  \
        }                                                                      \
    }                                                                          \
    ALWAYS_INLINE void T##_pk_tail##SUFFIX(                                    \
        int n, const int nrc, float *restrict s, const BLOCK *restrict x,      \
        const void *restrict vy, size_t st) {                                  \
        const int nb = n / QK8_0;                                              \
        for (int i = nb & ~3; i < nb; i++) {                                   \
            const __m256i qx = SINGLE(x + i);                                  \
            const __m256i cx = C0(&qx, 1);                                     \
            const float dx = fp16_to_f32_f16c(x[i].d);                         \
            for (int c = 0; c < nrc; c++) {                                    \
                const uint8_t *y = (const uint8_t *)vy + (size_t)c * st;       \
                float dy;                                                      \
                memcpy(&dy, y + n + 4 * i, 4);                                 \
                s[c] += dx * dy *                                              \
                        (float)hsum_i32_256(DOT(&qx, y + 32 * i, 1, cx));      \
            }                                                                  \
        }                                                                      \
    }                                                                          \
    ALWAYS_INLINE void T##_pk_nrc##SUFFIX(                                     \
        int n, const int nrc, float *restrict s, const void *restrict vx,      \
        const void *restrict vy, size_t st) {                                  \
        __m256 acc[8];                                                         \
        T##_pk_groups##SUFFIX(n, nrc, acc, vx, vy, st, vx, NULL, 0);           \
        PK_UNROLL                                                              \
        for (int c = 0; c < nrc; c++)                                          \
            s[c] = hsum_ps_256(acc[c]);                                        \
        T##_pk_tail##SUFFIX(n, nrc, s, vx, vy, st);                            \
    }                                                                          \
    void eng__vec_dot_##T##_nrc_packed##SUFFIX(                                \
        int n, int nrc, float *restrict s, const void *restrict vx,            \
        const void *restrict vy, size_t st) {                                  \
        for (; nrc > 0; nrc -= 8, s += 8, vy = (const char *)vy + 8 * st) {    \
            switch (nrc) {                                                     \
            case 1:                                                            \
                T##_pk_nrc##SUFFIX(n, 1, s, vx, vy, st);                       \
                break;                                                         \
            case 2:                                                            \
                T##_pk_nrc##SUFFIX(n, 2, s, vx, vy, st);                       \
                break;                                                         \
            case 3:                                                            \
                T##_pk_nrc##SUFFIX(n, 3, s, vx, vy, st);                       \
                break;                                                         \
            case 4:                                                            \
                T##_pk_nrc##SUFFIX(n, 4, s, vx, vy, st);                       \
                break;                                                         \
            case 5:                                                            \
                T##_pk_nrc##SUFFIX(n, 5, s, vx, vy, st);                       \
                break;                                                         \
            case 6:                                                            \
                T##_pk_nrc##SUFFIX(n, 6, s, vx, vy, st);                       \
                break;                                                         \
            case 7:                                                            \
                T##_pk_nrc##SUFFIX(n, 7, s, vx, vy, st);                       \
                break;                                                         \
            default:                                                           \
                T##_pk_nrc##SUFFIX(n, 8, s, vx, vy, st);                       \
                break;                                                         \
            }                                                                  \
        }                                                                      \
    }                                                                          \
    /* Rows in fours whose sums reduce together (pk_hsum4); uns: one           \
     * column with the lane sums ls (leftover rows keep the correction). */    \
    ALWAYS_INLINE void T##_pk_rows##SUFFIX(                                    \
        int n, int nr, const int nc, float *restrict out, size_t ldo,          \
        const uint8_t *restrict w, size_t row_bytes, const void *restrict vy,  \
        size_t st, const int32_t *ls, const int uns) {                         \
        const int ahead = nc >= 4 ? PK_PREFETCH_ROWS : PK_PREFETCH_ROWS_1;     \
        int r = 0;                                                             \
        for (; r + 4 <= nr; r += 4) {                                          \
            __m256 sum[8][4];                                                  \
            for (int k = 0; k < 4; k++) {                                      \
                __m256 v[8];                                                   \
                const uint8_t *row = w + (size_t)(r + k) * row_bytes;          \
                T##_pk_groups##SUFFIX(                                         \
                    n, nc, v, (const BLOCK *)row, vy, st,                      \
                    (const char *)row + (size_t)ahead * row_bytes, ls, uns);   \
                PK_UNROLL                                                      \
                for (int c = 0; c < nc; c++)                                   \
                    sum[c][k] = v[c];                                          \
            }                                                                  \
            for (int c = 0; c < nc; c++)                                       \
                pk_hsum4(sum[c], out + (size_t)c * ldo + r);                   \
            if ((n / QK8_0) % 4)                                               \
                for (int k = 0; k < 4; k++) {                                  \
                    float s[8];                                                \
                    for (int c = 0; c < nc; c++)                               \
                        s[c] = out[(size_t)c * ldo + r + k];                   \
                    T##_pk_tail##SUFFIX(                                       \
                        n, nc, s,                                              \
                        (const BLOCK *)(w + (size_t)(r + k) * row_bytes), vy,  \
                        st);                                                   \
                    for (int c = 0; c < nc; c++)                               \
                        out[(size_t)c * ldo + r + k] = s[c];                   \
                }                                                              \
        }                                                                      \
        for (; r < nr; r++) {                                                  \
            float s[8];                                                        \
            T##_pk_nrc##SUFFIX(n, nc, s, w + (size_t)r * row_bytes, vy, st);   \
            for (int c = 0; c < nc; c++)                                       \
                out[(size_t)c * ldo + r] = s[c];                               \
        }                                                                      \
    }                                                                          \
    ALWAYS_INLINE void T##_pk_tile##SUFFIX(                                    \
        int n, int nr, const int nc, float *restrict out, size_t ldo,          \
        const uint8_t *restrict w, size_t row_bytes, const void *restrict vy,  \
        size_t st) {                                                           \
        if (UNS_SHIFT > 0 && nc == 1 && nr >= 4 &&                             \
            n / QK8_0 / 4 <= PK_LANE_SUMS_MAX) {                               \
            _Alignas(32) int32_t ls[PK_LANE_SUMS_INTS];                        \
            pk_lane_sums(ls, vy, n, UNS_SHIFT);                                \
            T##_pk_rows##SUFFIX(n, nr, 1, out, ldo, w, row_bytes, vy, st, ls,  \
                                1);                                            \
        } else {                                                               \
            T##_pk_rows##SUFFIX(n, nr, nc, out, ldo, w, row_bytes, vy, st,     \
                                NULL, 0);                                      \
        }                                                                      \
    }                                                                          \
    void eng__vec_dot_##T##_tile_packed##SUFFIX(                               \
        int n, int nr, int nc, float *restrict out, size_t ldo,                \
        const void *restrict vx, size_t row_bytes, const void *restrict vy,    \
        size_t st) {                                                           \
        const uint8_t *w = vx;                                                 \
        for (; nc > 0;                                                         \
             nc -= 8, out += 8 * ldo, vy = (const char *)vy + 8 * st) {        \
            switch (nc) {                                                      \
            case 1:                                                            \
                T##_pk_tile##SUFFIX(n, nr, 1, out, ldo, w, row_bytes, vy, st); \
                break;                                                         \
            case 2:                                                            \
                T##_pk_tile##SUFFIX(n, nr, 2, out, ldo, w, row_bytes, vy, st); \
                break;                                                         \
            case 3:                                                            \
                T##_pk_tile##SUFFIX(n, nr, 3, out, ldo, w, row_bytes, vy, st); \
                break;                                                         \
            case 4:                                                            \
                T##_pk_tile##SUFFIX(n, nr, 4, out, ldo, w, row_bytes, vy, st); \
                break;                                                         \
            case 5:                                                            \
                T##_pk_tile##SUFFIX(n, nr, 5, out, ldo, w, row_bytes, vy, st); \
                break;                                                         \
            case 6:                                                            \
                T##_pk_tile##SUFFIX(n, nr, 6, out, ldo, w, row_bytes, vy, st); \
                break;                                                         \
            case 7:                                                            \
                T##_pk_tile##SUFFIX(n, nr, 7, out, ldo, w, row_bytes, vy, st); \
                break;                                                         \
            default:                                                           \
                T##_pk_tile##SUFFIX(n, nr, 8, out, ldo, w, row_bytes, vy, st); \
                break;                                                         \
            }                                                                  \
        }                                                                      \
    }

#endif
