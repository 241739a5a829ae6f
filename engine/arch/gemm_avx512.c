/*
 * gemm_avx512.c — batched dots for the 32-element block types (compiled
 * with the AVX-512 + VNNI flags; installed over quant_avx512.c's batched
 * kernels by eng_quant_init when cpu.c found AVX-512).
 *
 * A token's logits must not depend on the batch it arrived in, so every
 * column of a batched dot is the same float sum, in the same order, as the
 * one-column kernel the same matrix uses for a single token:
 *   - vec_dot_nrc (exact) against vec_dot, for Q8_0, Q4_0, Q5_0 (whose
 *     vec_dot keeps two accumulators over four blocks and finishes leftover
 *     blocks one at a time) and Q4_1 (whose vec_dot is the AVX2 one, eight
 *     lanes per block): the int32 lanes hold the same sums of four
 *     products, which are exact whatever instruction forms them, and every
 *     float step (scale product, convert, FMA into the same accumulator,
 *     the same horizontal sums) is the one vec_dot does. Per column the
 *     work is a masked negate, one vpdpbusd and one FMA per two blocks.
 *   - the packed kernels (Q8_0, Q4_0, Q5_0 on packed Q8_0 activations),
 *     which eng_matmul takes for one token and for batches alike: one body
 *     per type for every column count, with its own grouping of the sums
 *     (see the packed row's layout below).
 * Test kernels_nrc_equals_vec_dot checks both.
 */
#include "quant_arch.h"

#if defined(__x86_64__)

#include <immintrin.h>
#include <string.h>

#include "quant_x86.h"

#define ALWAYS_INLINE static inline __attribute__((always_inline))

/* Fully unrolled column loops let the per-column accumulators live in
 * registers (GCC otherwise keeps acc[] on the stack: measured 1.6x). */
#define UNROLL_COLUMNS _Pragma("GCC unroll 8")

/* Same switch as quant_avx512.c: a constant nrc per instance keeps the
 * per-column accumulators in registers. */
#define NRC_DISPATCH(name, impl)                                               \
    void name(int n, int nrc, float *restrict s, const void *restrict vx,      \
              const void *restrict vy, size_t st) {                            \
        switch (nrc) {                                                         \
        case 1: impl(n, 1, s, vx, vy, st); break;                              \
        case 2: impl(n, 2, s, vx, vy, st); break;                              \
        case 3: impl(n, 3, s, vx, vy, st); break;                              \
        case 4: impl(n, 4, s, vx, vy, st); break;                              \
        case 5: impl(n, 5, s, vx, vy, st); break;                              \
        case 6: impl(n, 6, s, vx, vy, st); break;                              \
        case 7: impl(n, 7, s, vx, vy, st); break;                              \
        default: impl(n, 8, s, vx, vy, st); break;                             \
        }                                                                      \
    }

ALWAYS_INLINE const void *col(const void *vy, int c, size_t st) {
    return (const char *)vy + (size_t)c * st;
}

ALWAYS_INLINE __m512i join256(__m256i lo, __m256i hi) {
    return _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
}


/* ==== Q8_0-activation types: Q8_0, Q4_0, Q5_0 ============================== */

/* Four weight blocks decoded to signed bytes: w[0] = blocks 0-1, w[1] =
 * blocks 2-3 (each in element order), and their scales as floats. */
typedef struct {
    __m512i w[2];
    __m128 d4; /* the four weight scales */
} quad;

ALWAYS_INLINE __m128 scales4(const eng_fp16 d0, const eng_fp16 d1,
                             const eng_fp16 d2, const eng_fp16 d3) {
    /* Packed in a general register, then one move: four vpinsrw cost
     * vector-port work the dot itself needs. */
    const uint64_t v = (uint64_t)d0 | (uint64_t)d1 << 16 | (uint64_t)d2 << 32 |
                       (uint64_t)d3 << 48;
    return _mm_cvtph_ps(_mm_cvtsi64_si128((long long)v));
}

ALWAYS_INLINE void quad_q8_0(const block_q8_0 *a, quad *q) {
    for (int h = 0; h < 2; h++)
        q->w[h] =
            join256(_mm256_loadu_si256((const __m256i *)a[2 * h].qs),
                    _mm256_loadu_si256((const __m256i *)a[2 * h + 1].qs));
    q->d4 = scales4(a[0].d, a[1].d, a[2].d, a[3].d);
}

/* Nibbles of two blocks to [lo0 hi0 lo1 hi1] (elements 0-31 of each). */
ALWAYS_INLINE __m512i nibbles_pair(const uint8_t *q0, const uint8_t *q1) {
    const __m512i m4 = _mm512_set1_epi8(0xf);
    const __m512i idx = _mm512_setr_epi64(0, 1, 8, 9, 2, 3, 10, 11);
    __m512i q = _mm512_castsi128_si512(_mm_loadu_si128((const __m128i *)q0));
    q = _mm512_inserti32x4(q, _mm_loadu_si128((const __m128i *)q1), 1);
    __m512i lo = _mm512_and_si512(q, m4);
    __m512i hi = _mm512_and_si512(_mm512_srli_epi16(q, 4), m4);
    return _mm512_permutex2var_epi64(lo, idx, hi);
}

ALWAYS_INLINE void quad_q4_0(const block_q4_0 *a, quad *q) {
    const __m512i eight = _mm512_set1_epi8(8);
    for (int h = 0; h < 2; h++)
        q->w[h] = _mm512_sub_epi8(nibbles_pair(a[2 * h].qs, a[2 * h + 1].qs),
                                  eight);
    q->d4 = scales4(a[0].d, a[1].d, a[2].d, a[3].d);
}

ALWAYS_INLINE void quad_q5_0(const block_q5_0 *a, quad *q) {
    const __m512i sixteen = _mm512_set1_epi8(16);
    for (int h = 0; h < 2; h++) {
        uint32_t h0, h1;
        memcpy(&h0, a[2 * h].qh, 4);
        memcpy(&h1, a[2 * h + 1].qh, 4);
        /* q - 16: the nibble where the 5th bit is set, nibble - 16 where
         * it is clear. */
        __m512i nib = nibbles_pair(a[2 * h].qs, a[2 * h + 1].qs);
        q->w[h] = _mm512_mask_sub_epi8(
            nib, (__mmask64)~((uint64_t)h0 | ((uint64_t)h1 << 32)), nib,
            sixteen);
    }
    q->d4 = scales4(a[0].d, a[1].d, a[2].d, a[3].d);
}

/* The body shared by the three types: vec_dot's acc0 takes blocks 4k and
 * 4k+1, acc1 blocks 4k+2 and 4k+3, each as fp16(dx) * fp16(dy) times the
 * int32 lane sums; then hsum(acc0 + acc1) and the leftover blocks added
 * one by one as (dx * dy) * hsum of their lanes. */
#define Q8_0_LIKE_NRC(T, BLOCK, QUAD, SINGLE)                                  \
    ALWAYS_INLINE void T##_nrc_exact_impl(int n, const int nrc,                \
                                          float *restrict s,                   \
                                          const void *restrict vx,             \
                                          const void *restrict vy,             \
                                          size_t st) {                         \
        const BLOCK *x = vx;                                                   \
        const int nb = n / QK8_0;                                              \
        __m512 acc0[ENG_NRC_MAX], acc1[ENG_NRC_MAX];                           \
        UNROLL_COLUMNS                                                         \
        for (int c = 0; c < nrc; c++)                                          \
            acc0[c] = acc1[c] = _mm512_setzero_ps();                           \
        const __m512i sel01 = _mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, 1, 1,  \
                                                1, 1, 1, 1, 1, 1);             \
        const __m512i sel23 = _mm512_setr_epi32(2, 2, 2, 2, 2, 2, 2, 2, 3, 3,  \
                                                3, 3, 3, 3, 3, 3);             \
        int i = 0;                                                             \
        for (; i + 4 <= nb; i += 4) {                                          \
            quad q;                                                            \
            QUAD(x + i, &q);                                                   \
            const __mmask64 neg0 = _mm512_movepi8_mask(q.w[0]);                \
            const __mmask64 neg1 = _mm512_movepi8_mask(q.w[1]);                \
            const __m512i ax0 = _mm512_abs_epi8(q.w[0]);                       \
            const __m512i ax1 = _mm512_abs_epi8(q.w[1]);                       \
            UNROLL_COLUMNS                                                     \
            for (int c = 0; c < nrc; c++) {                                    \
                const block_q8_0 *y = (const block_q8_0 *)col(vy, c, st) + i;  \
                __m512i y0 = join256(                                          \
                    _mm256_loadu_si256((const __m256i *)y[0].qs),              \
                    _mm256_loadu_si256((const __m256i *)y[1].qs));             \
                __m512i y1 = join256(                                          \
                    _mm256_loadu_si256((const __m256i *)y[2].qs),              \
                    _mm256_loadu_si256((const __m256i *)y[3].qs));             \
                y0 = _mm512_mask_sub_epi8(y0, neg0, _mm512_setzero_si512(),    \
                                          y0);                                 \
                y1 = _mm512_mask_sub_epi8(y1, neg1, _mm512_setzero_si512(),    \
                                          y1);                                 \
                __m512i p0 =                                                   \
                    _mm512_dpbusd_epi32(_mm512_setzero_si512(), ax0, y0);      \
                __m512i p1 =                                                   \
                    _mm512_dpbusd_epi32(_mm512_setzero_si512(), ax1, y1);      \
                /* the four dx * dy products in one vmulps, then spread */    \
                const __m512 d4 = _mm512_castps128_ps512(_mm_mul_ps(           \
                    q.d4, _mm_cvtph_ps(_mm_setr_epi16(                         \
                              (short)y[0].d, (short)y[1].d, (short)y[2].d,     \
                              (short)y[3].d, 0, 0, 0, 0))));                   \
                const __m512 d01 = _mm512_permutexvar_ps(sel01, d4);           \
                const __m512 d23 = _mm512_permutexvar_ps(sel23, d4);           \
                acc0[c] =                                                      \
                    _mm512_fmadd_ps(d01, _mm512_cvtepi32_ps(p0), acc0[c]);     \
                acc1[c] =                                                      \
                    _mm512_fmadd_ps(d23, _mm512_cvtepi32_ps(p1), acc1[c]);     \
            }                                                                  \
        }                                                                      \
        UNROLL_COLUMNS                                                         \
        for (int c = 0; c < nrc; c++)                                          \
            s[c] = hsum_ps_512(_mm512_add_ps(acc0[c], acc1[c]));               \
        for (; i < nb; i++) {                                                  \
            const __m256i qx = SINGLE(x + i);                                  \
            const __m256i ax = _mm256_sign_epi8(qx, qx);                       \
            const float dx = fp16_to_f32_f16c(x[i].d);                         \
            UNROLL_COLUMNS                                                     \
            for (int c = 0; c < nrc; c++) {                                    \
                const block_q8_0 *y = (const block_q8_0 *)col(vy, c, st) + i;  \
                __m256i qy = _mm256_loadu_si256((const __m256i *)y->qs);       \
                __m256i p = _mm256_dpbusd_epi32(_mm256_setzero_si256(), ax,    \
                                                _mm256_sign_epi8(qy, qx));     \
                s[c] += dx * fp16_to_f32_f16c(y->d) * (float)hsum_i32_256(p);  \
            }                                                                  \
        }                                                                      \
    }                                                                          \
    NRC_DISPATCH(eng__vec_dot_##T##_nrc_exact_avx512, T##_nrc_exact_impl)

Q8_0_LIKE_NRC(q8_0, block_q8_0, quad_q8_0, q8_0_block_i8)
Q8_0_LIKE_NRC(q4_0, block_q4_0, quad_q4_0, q4_0_block_i8)
Q8_0_LIKE_NRC(q5_0, block_q5_0, quad_q5_0, q5_0_block_i8)

/* ==== Q8_0-activation types on packed activations ========================= */

/* The packed Q8_0 activation row (eng_type_traits_t.from_float_packed,
 * eng_row_size_packed: n + 4 n/32 bytes), for n = 32 nb:
 *   - the quants plus 128 as unsigned bytes, in nb/4 groups of four
 *     blocks, 128 bytes each: bytes [0, 64) hold, as int32 lane 4q + b,
 *     elements 4q..4q+3 of the group's block b (q = 0..3); bytes [64, 128)
 *     elements 16 + 4q.. in the same lanes. The nb % 4 leftover blocks
 *     follow in element order, 32 bytes each (so block i always starts at
 *     byte 32 i);
 *   - then each block's fp16 scale as F32.
 * The weights are decoded to signed bytes in the same order and go into
 * vpdpbusd as its signed side; the +128 comes off through the accumulator
 * the sum starts from, -128 * (the lane's eight weights), formed once per
 * weight row, so each int32 lane is the exact sum of eight products of one
 * block (elements 4q.. and 16 + 4q..). Two vpdpbusd fill one vector for
 * four blocks, and lane 4q + b takes block b's scale, so the four scale
 * products of a column are one 16-byte broadcast load and one vmulps: per
 * column and four blocks two vpdpbusd, a convert, a vmulps and an FMA,
 * where the element-order layout (two blocks per vector) took two
 * converts, two FMAs and two permutes. (Signed activations against
 * unsigned weights, with each block's activation sum in the row for the
 * correction, cost a shift per column and a 25% longer row: the 8-column
 * batch of 4864-wide rows no longer fit L1 and ran 10-25% slower.) Results
 * differ from vec_dot's only in how the exact integer sums are grouped
 * before the float steps; every packed kernel here (one column or eight,
 * one row or a tile) does the same float steps, so a token's products do
 * not depend on its batch (test kernels_nrc_equals_vec_dot checks both). */

/* int32 lane permutations from two blocks per vector (a = blocks 0-1, b =
 * blocks 2-3, element order) to the group layout: low halves, high
 * halves. */
ALWAYS_INLINE __m512i group_lo_idx(void) {
    return _mm512_setr_epi32(0, 8, 16, 24, 1, 9, 17, 25, 2, 10, 18, 26, 3,
                             11, 19, 27);
}
ALWAYS_INLINE __m512i group_hi_idx(void) {
    return _mm512_setr_epi32(4, 12, 20, 28, 5, 13, 21, 29, 6, 14, 22, 30, 7,
                             15, 23, 31);
}
/* From four 16-byte blocks side by side (lane 4b + q) to lane 4q + b. */
ALWAYS_INLINE __m512i group_transpose_idx(void) {
    return _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11,
                             15);
}

/* Blocks [i, i + nblk) through the installed from_float, one by one: the
 * rounding every packed row must have. Writes element order. */
static void q8_0_packed_blocks(const float *restrict x, int8_t *restrict q,
                               float *restrict d, int64_t i, int nblk) {
    const eng_from_float_fn quantize = eng_type_traits[ENG_TYPE_Q8_0].from_float;
    for (int64_t e = i + nblk; i < e; i++) {
        block_q8_0 b;
        quantize(x + i * QK8_0, &b, QK8_0);
        memcpy(q + i * QK8_0, b.qs, QK8_0);
        d[i] = fp16_to_f32_f16c(b.d);
    }
}

/* The same bytes as q8_0_packed_blocks (the AVX2 quantizer's: d =
 * amax / 127, q = round-half-even(x * (127 / amax))) for up to 16 finite
 * blocks at once: the two divisions and the fp16 conversion of the scales
 * run once per 16 blocks as vector operations, where the block-by-block
 * path spent two scalar divisions per block and a call through the
 * traits (1.3% of an 8-token verify of the 0.5B Q8_0 model). Blocks with
 * an infinity or a NaN go the block-by-block way, whose saturating packs
 * define those bytes. */
static void q8_0_packed_group(const float *restrict x, int8_t *restrict q,
                              float *restrict d, int64_t i0, int nblk) {
    const __m512 sign = _mm512_set1_ps(-0.0f);
    float amax[16], id[16];
    __mmask16 odd = 0; /* lanes holding a NaN or an infinity */
    for (int b = 0; b < 16; b++) {
        if (b >= nblk) {
            amax[b] = 0.0f;
            continue;
        }
        const float *xb = x + (i0 + b) * QK8_0;
        const __m512 v0 = _mm512_loadu_ps(xb), v1 = _mm512_loadu_ps(xb + 16);
        odd |= _mm512_fpclass_ps_mask(v0, 0x99) | _mm512_fpclass_ps_mask(v1, 0x99);
        amax[b] = _mm512_reduce_max_ps(_mm512_max_ps(
            _mm512_andnot_ps(sign, v0), _mm512_andnot_ps(sign, v1)));
    }
    if (odd) {
        q8_0_packed_blocks(x, q, d, i0, nblk);
        return;
    }
    const __m512 am = _mm512_loadu_ps(amax);
    const __mmask16 live = (__mmask16)((1u << nblk) - 1);
    const __m512 dv = _mm512_div_ps(am, _mm512_set1_ps(127.f));
    _mm512_storeu_ps(id, _mm512_maskz_div_ps(
                             _mm512_cmp_ps_mask(am, _mm512_setzero_ps(),
                                                _CMP_NEQ_OQ),
                             _mm512_set1_ps(127.f), am));
    /* the fp16 scale (what the dot multiplies by), kept as F32 */
    _mm512_mask_storeu_ps(
        d + i0, live,
        _mm512_cvtph_ps(_mm512_cvtps_ph(
            dv, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)));
    for (int b = 0; b < nblk; b++) {
        const float *xb = x + (i0 + b) * QK8_0;
        const __m512 s = _mm512_set1_ps(id[b]);
        const __m512i q0 = _mm512_cvt_roundps_epi32(
            _mm512_mul_ps(_mm512_loadu_ps(xb), s),
            _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        const __m512i q1 = _mm512_cvt_roundps_epi32(
            _mm512_mul_ps(_mm512_loadu_ps(xb + 16), s),
            _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        /* |q| <= 127, so keeping each int32's low byte is exact */
        const __m256i qb = _mm256_inserti128_si256(
            _mm256_castsi128_si256(_mm512_cvtepi32_epi8(q0)),
            _mm512_cvtepi32_epi8(q1), 1);
        _mm256_storeu_si256((__m256i *)(q + (i0 + b) * QK8_0), qb);
    }
}

void eng__quantize_row_q8_0_packed_avx512(const float *restrict x,
                                          void *restrict vy, int64_t k) {
    int8_t *q = vy;
    float *d = (float *)(q + k);
    const int64_t nb = k / QK8_0;
    for (int64_t i = 0; i < nb; i += 16)
        q8_0_packed_group(x, q, d, i, nb - i < 16 ? (int)(nb - i) : 16);
    /* element order to the group layout, four blocks at a time, + 128 */
    const __m512i lo = group_lo_idx(), hi = group_hi_idx();
    const __m512i flip = _mm512_set1_epi8((char)0x80);
    int64_t i = 0;
    for (; i + 4 <= nb; i += 4) {
        const __m512i a = _mm512_loadu_si512(q + i * QK8_0);
        const __m512i b = _mm512_loadu_si512(q + i * QK8_0 + 64);
        _mm512_storeu_si512(q + i * QK8_0,
                            _mm512_xor_si512(_mm512_permutex2var_epi32(a, lo, b),
                                             flip));
        _mm512_storeu_si512(q + i * QK8_0 + 64,
                            _mm512_xor_si512(_mm512_permutex2var_epi32(a, hi, b),
                                             flip));
    }
    for (; i < nb; i++)
        _mm256_storeu_si256(
            (__m256i *)(q + i * QK8_0),
            _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)(q + i * QK8_0)),
                             _mm512_castsi512_si256(flip)));
}

/* Four weight blocks in the group layout as signed bytes, and their
 * scales. */
typedef struct {
    __m512i lo, hi;
    __m128 d4;
} group;

/* The four fp16 scales of a group as floats: the words at w0..w3 of the
 * 128 bytes [a, a + 64) + [b, b + 64), picked by one vpermt2w. Four
 * scalar loads, shifts and ORs and a move to the vector side (scales4)
 * were a third of the one-column Q8_0 kernel's instructions: one thread,
 * 896-wide rows, old and new alternating, 38-40 -> 45 GMAC/s (L2), 8
 * columns 107-129 -> 123-140. */
ALWAYS_INLINE __m128 group_scales(const void *a, const void *b, short w0,
                                  short w1, short w2, short w3) {
    const __m512i idx =
        _mm512_castsi128_si512(_mm_setr_epi16(w0, w1, w2, w3, 0, 0, 0, 0));
    return _mm_cvtph_ps(_mm512_castsi512_si128(_mm512_permutex2var_epi16(
        _mm512_loadu_si512(a), idx, _mm512_loadu_si512(b))));
}

ALWAYS_INLINE void group_q8_0(const block_q8_0 *a, group *g, const int uns) {
    (void)uns;
    const __m512i a01 =
        join256(_mm256_loadu_si256((const __m256i *)a[0].qs),
                _mm256_loadu_si256((const __m256i *)a[1].qs));
    const __m512i a23 =
        join256(_mm256_loadu_si256((const __m256i *)a[2].qs),
                _mm256_loadu_si256((const __m256i *)a[3].qs));
    g->lo = _mm512_permutex2var_epi32(a01, group_lo_idx(), a23);
    g->hi = _mm512_permutex2var_epi32(a01, group_hi_idx(), a23);
    /* 34-byte blocks: d at words 0, 17, 34, 51 of the group's first 128 */
    g->d4 = group_scales(a, (const uint8_t *)a + 64, 0, 17, 34, 51);
}

/* The four blocks' 16 bytes of nibbles side by side (lane 4b + q). */
ALWAYS_INLINE __m512i nibbles_x4(const uint8_t *q0, const uint8_t *q1,
                                 const uint8_t *q2, const uint8_t *q3) {
    __m512i z = _mm512_castsi128_si512(_mm_loadu_si128((const __m128i *)q0));
    z = _mm512_inserti32x4(z, _mm_loadu_si128((const __m128i *)q1), 1);
    z = _mm512_inserti32x4(z, _mm_loadu_si128((const __m128i *)q2), 2);
    return _mm512_inserti32x4(z, _mm_loadu_si128((const __m128i *)q3), 3);
}

ALWAYS_INLINE void group_q4_0(const block_q4_0 *a, group *g, const int uns) {
    const __m512i m4 = _mm512_set1_epi8(0xf);
    /* uns: the nibbles as they are (see UNSIGNED_SHIFT) */
    const __m512i eight = _mm512_set1_epi8(uns ? 0 : 8);
    const __m512i z = _mm512_permutexvar_epi32(
        group_transpose_idx(), nibbles_x4(a[0].qs, a[1].qs, a[2].qs, a[3].qs));
    g->lo = _mm512_sub_epi8(_mm512_and_si512(z, m4), eight);
    g->hi = _mm512_sub_epi8(_mm512_and_si512(_mm512_srli_epi16(z, 4), m4),
                            eight);
    /* 18-byte blocks, a 72-byte group: d at words 0, 9, 18, 27 */
    g->d4 = group_scales(a, a, 0, 9, 18, 27);
}

ALWAYS_INLINE void group_q5_0(const block_q5_0 *a, group *g, const int uns) {
    const __m512i m4 = _mm512_set1_epi8(0xf);
    const __m512i b4 = _mm512_set1_epi8(0x10);
    const __m512i z = nibbles_x4(a[0].qs, a[1].qs, a[2].qs, a[3].qs);
    /* the 5th bits in the side-by-side order: bit 16 b + j of `lo` is
     * element j's of block b, of `hi` element 16 + j's; q - 16 is the
     * nibble where it is set, nibble - 16 where it is clear */
    uint32_t h0, h1, h2, h3;
    memcpy(&h0, a[0].qh, 4);
    memcpy(&h1, a[1].qh, 4);
    memcpy(&h2, a[2].qh, 4);
    memcpy(&h3, a[3].qh, 4);
    const uint64_t lo = (uint64_t)((h0 & 0xffff) | h1 << 16) |
                        (uint64_t)((h2 & 0xffff) | h3 << 16) << 32;
    const uint64_t hi = (uint64_t)(h0 >> 16 | (h1 & 0xffff0000)) |
                        (uint64_t)(h2 >> 16 | (h3 & 0xffff0000)) << 32;
    const __m512i l = _mm512_and_si512(z, m4);
    const __m512i h = _mm512_and_si512(_mm512_srli_epi16(z, 4), m4);
    /* uns: q itself, the nibble + 16 where the bit is set */
    g->lo = _mm512_permutexvar_epi32(
        group_transpose_idx(), uns ? _mm512_mask_add_epi8(l, lo, l, b4)
                                   : _mm512_mask_sub_epi8(l, ~lo, l, b4));
    g->hi = _mm512_permutexvar_epi32(
        group_transpose_idx(), uns ? _mm512_mask_add_epi8(h, hi, h, b4)
                                   : _mm512_mask_sub_epi8(h, ~hi, h, b4));
    /* 22-byte blocks, an 88-byte group read as [0, 64) and [24, 88): d at
     * words 0, 11, 22 of the first and 21 of the second */
    g->d4 = group_scales(a, (const uint8_t *)a + 24, 0, 11, 22, 32 + 21);
}


ALWAYS_INLINE __m256i minus128_sum4_256(__m256i w) {
    return _mm256_sub_epi32(
        _mm256_setzero_si256(),
        _mm256_dpbusd_epi32(_mm256_setzero_si256(),
                            _mm256_set1_epi8((char)0x80), w));
}

/* The group loop prefetches the row this many rows ahead, the next group
 * of four, across tile ends. Prefetches do not fault, so the rows past the
 * matrix's end cost nothing.
 *   - With four columns or more, a row's blocks arrive from memory slower
 *     than the hardware prefetchers expect, and with eight 4864-wide
 *     columns cycling through L1 (41 KB) the down projection of
 *     Qwen2.5-0.5B read its weights at 6 GB/s per thread (44 GMAC/s
 *     against 100 in cache, one thread). Four rows ahead: 85-110 GMAC/s
 *     streaming, and the 8-token verify of the 0.5B Q8_0 model 7-9%
 *     faster (paired runs).
 *   - One column (decode): one thread streaming 62 MB of 896-wide rows
 *     read Q8_0 at 27 and Q5_0 at 36 GMAC/s (29 and 25 GB/s), about half
 *     of what the same kernels do in cache, while the host's read test
 *     gets 35 GB/s and more per core. Sixteen rows ahead: 36 and 40
 *     GMAC/s (4864-wide Q8_0 28 -> 36; 8, 12, 24, 40 rows and 8-24 KB
 *     measured about the same), and one token of the 0.5B models, four
 *     alternating runs of 50, median 13.5-14.3 against 14.8-17.1 ms
 *     (Q8_0) and 10.2-10.6 against 11.1-12.5 ms (Q4_K_M). */
#define PREFETCH_ROWS 4
#define PREFETCH_ROWS_1 16

/* One column of Q4_0 or Q5_0 (UNSIGNED_SHIFT 3 or 4 in Q8_0_LIKE_PACKED):
 * per group of four blocks the one-column kernel spent two of its four
 * vpdpbusd on -128 * the lane's weights, once per weight row. Instead the
 * weights are decoded unsigned (q = w + 8 or w + 16, what the block
 * stores), the activations XOR-ed back to signed bytes, and each lane
 * starts from -(8 or 16) * the sum of its eight activations: sum q a -
 * 16 sum a is the lane's sum w a, the integer the batch path forms, so
 * decode stays bit-identical to verify. The activation row's lane sums
 * are formed once per tile call (16 rows), here. One thread, 896-wide
 * Q5_0 rows (VBMI): 50-52 -> 60-61 GMAC/s in cache, 49-50 -> 54-58
 * streaming. (Storing the sums in the packed row instead made its stride
 * 50% longer and the 8-token verify of the 0.5B Q8_0 model 7% slower.) */
#define LANE_SUMS_MAX 128 /* groups: rows of up to 16384 elements */
/* ls: LANE_SUMS_MAX * 16 lanes of -(sum << shift), then the activations
 * as signed bytes (same layout): each group's lanes then start from one
 * load, and its two vpdpbusd read the activations straight from memory,
 * where every row had loaded, flipped, shifted and negated them again.
 * With the loop unrolled twice (T##_packed_range), one thread, Q5_0
 * (VBMI), old and new alternating: 896-wide rows 40-41 -> 43-44 GMAC/s,
 * 4864-wide 48-49 -> 52-55 (rows in L2). */
#define LANE_SUMS_INTS (LANE_SUMS_MAX * 16 + LANE_SUMS_MAX * 128 / 4)
static inline void lane_sums(int32_t *ls, const void *vy, int n, int shift) {
    const uint8_t *y = vy;
    uint8_t *ys = (uint8_t *)(ls + LANE_SUMS_MAX * 16);
    const __m512i flip = _mm512_set1_epi8((char)0x80);
    const __m512i ones = _mm512_set1_epi8(1);
    for (int g = 0; g < n / QK8_0 / 4; g++) {
        const __m512i a = _mm512_xor_si512(flip, _mm512_loadu_si512(y + 128 * g));
        const __m512i b =
            _mm512_xor_si512(flip, _mm512_loadu_si512(y + 128 * g + 64));
        _mm512_store_si512(ys + 128 * g, a);
        _mm512_store_si512(ys + 128 * g + 64, b);
        const __m512i sum = _mm512_dpbusd_epi32(
            _mm512_dpbusd_epi32(_mm512_setzero_si512(), ones, a), ones, b);
        _mm512_store_si512(ls + 16 * g,
                           _mm512_sub_epi32(_mm512_setzero_si512(),
                                            _mm512_sll_epi32(
                                                sum, _mm_cvtsi32_si128(shift))));
    }
}

/* Wide rows in spans (T##_tile_rows_kb): with eight 4864-wide columns
 * (39 KB of activations) and a row of weights streaming through a 48 KB
 * L1 per pass, the columns were read back from L2 for every row. Sixteen
 * rows now take 32 blocks (1 KB of each column) at a time. One thread,
 * eight columns: Q8_0 4864-wide 88-95 -> 109-116 GMAC/s, 8960-wide 78-95
 * -> 113-129 (16 and 64 blocks measured a little slower); Q5_0 (VBMI)
 * 4864-wide 98-103 -> 116. */
#define KB_MIN_BYTES (24 * 1024)
#define KB_ROWS 16
#define KB_BLOCKS 32

/* One weight row against nrc packed columns, split in two so that the tile
 * kernel below can reduce four rows at once: T##_packed_groups leaves
 * column c's part of the groups as a vector sum[c], whose hsum_ps_512
 * starts s[c]; T##_packed_tail then adds the leftover blocks (n/32 % 4 of
 * them) one by one. One accumulator per column: a group's work is longer
 * than the FMA's latency even for one column, and a second set (even and
 * odd groups) cost the one-column kernel 4-7% on 896-wide rows (Q8_0 and
 * Q5_0, in cache and streaming), with no difference at 8 columns. */
#define Q8_0_LIKE_PACKED(T, BLOCK, GROUP, SINGLE, UNSIGNED_SHIFT)     \
    /* One group of four blocks (i) into acc, prefetching ahead. */         \
    ALWAYS_INLINE void T##_packed_group4(int n, const int nrc, __m512 *acc,     \
                                        const BLOCK *restrict x, int i,        \
                                        const void *restrict vy, size_t st,    \
                                        const char *pf, const int32_t *ls,     \
                                        const int uns, const group *pre) {     \
        const char *p = pf + i * sizeof(BLOCK); /* see PREFETCH_ROWS */       \
        _mm_prefetch(p, _MM_HINT_T0);                                          \
        _mm_prefetch(p + 64, _MM_HINT_T0);                                     \
        _mm_prefetch(p + 4 * sizeof(BLOCK) - 1, _MM_HINT_T0);                 \
        /* uns: one column with lane sums (see T##_tile_impl) */              \
        group g;                                                               \
        if (pre)                                                               \
            g = *pre;                                                          \
        else                                                                   \
            GROUP(x + i, &g, uns);                                             \
        const __m512 dx = _mm512_broadcast_f32x4(g.d4);                        \
        /* -128 * (the lane's eight weights) */                                \
        const __m512i c0 =                                                     \
            uns ? _mm512_setzero_si512()                                       \
                : _mm512_sub_epi32(                                            \
                      _mm512_setzero_si512(),                                  \
                      _mm512_dpbusd_epi32(                                     \
                          _mm512_dpbusd_epi32(_mm512_setzero_si512(),          \
                                              _mm512_set1_epi8((char)0x80),    \
                                              g.lo),                           \
                          _mm512_set1_epi8((char)0x80), g.hi));                \
        UNROLL_COLUMNS                                                         \
        for (int c = 0; c < nrc; c++) {                                        \
            const uint8_t *y = (const uint8_t *)col(vy, c, st);                \
            const float *dy = (const float *)(y + n) + i;                      \
            __m512i p;                                                         \
            if (uns) {                                                         \
                /* sum q a - (offset) sum a over the lane's eight products:  \
                 * the same integer as below */                               \
                const int8_t *ys = (const int8_t *)(ls + LANE_SUMS_MAX * 16);  \
                p = _mm512_load_si512(ls + 4 * i);                             \
                p = _mm512_dpbusd_epi32(p, g.lo,                               \
                                        _mm512_load_si512(ys + 32 * i));       \
                p = _mm512_dpbusd_epi32(p, g.hi,                               \
                                        _mm512_load_si512(ys + 32 * i + 64));  \
            } else {                                                           \
                p = _mm512_dpbusd_epi32(c0, _mm512_loadu_si512(y + 32 * i),    \
                                        g.lo);                                 \
                p = _mm512_dpbusd_epi32(                                       \
                    p, _mm512_loadu_si512(y + 32 * i + 64), g.hi);             \
            }                                                                  \
            const __m512 d =                                                   \
                _mm512_mul_ps(dx, _mm512_broadcast_f32x4(_mm_loadu_ps(dy)));   \
            acc[c] = _mm512_fmadd_ps(d, _mm512_cvtepi32_ps(p), acc[c]);        \
        }                                                                      \
    }                                                                          \
    /* Blocks [i0, i1) (whole groups) added into sum. */                    \
    ALWAYS_INLINE void T##_packed_range(                                       \
        int n, const int nrc, __m512 *sum, const void *restrict vx, int i0,    \
        int i1, const void *restrict vy, size_t st, const char *pf,            \
        const int32_t *ls, const int uns) {                                    \
        const BLOCK *x = vx;                                                   \
        if (uns) {                                                             \
            /* half the loop's pointer updates: one thread, 4864-wide      \
             * Q5_0 rows (VBMI) 4-6% faster; no gain for the others */        \
            _Pragma("GCC unroll 2")                                            \
            for (int i = i0; i < i1; i += 4)                                   \
                T##_packed_group4(n, nrc, sum, x, i, vy, st, pf, ls, 1, NULL); \
            return;                                                            \
        }                                                                      \
        if (nrc < 4) {                                                         \
            for (int i = i0; i < i1; i += 4)                                   \
                T##_packed_group4(n, nrc, sum, x, i, vy, st, pf, ls, 0, NULL); \
            return;                                                            \
        }                                                                      \
        /* With four columns or more, each group's weights are decoded    \
         * one group ahead: a group's ~90 instructions wait on its loads,  \
         * and the next group's loads, behind them in program order,       \
         * issued too late to hide an L1 miss (8 columns of 896-wide Q8_0  \
         * rows read 200 GMAC/s with one group's weights in L1 against     \
         * 160 streaming). One thread, 2048 x 896, 8 columns: Q8_0 164 ->  \
         * 169, Q5_0 145 -> 156; 4 columns 130 -> 141 and 112 -> 125.      \
         * One column measured slower this way (Q8_0 60 -> 43). */         \
        if (i0 >= i1)                                                          \
            return;                                                            \
        group cur, next;                                                       \
        GROUP(x + i0, &cur, 0);                                                \
        for (int i = i0; i < i1; i += 4) {                                     \
            if (i + 4 < i1)                                                    \
                GROUP(x + i + 4, &next, 0);                                    \
            T##_packed_group4(n, nrc, sum, x, i, vy, st, pf, ls, 0, &cur);     \
            cur = next;                                                        \
        }                                                                      \
    }                                                                          \
    ALWAYS_INLINE void T##_packed_groups(int n, const int nrc, __m512 *sum,    \
                                         const void *restrict vx,              \
                                         const void *restrict vy, size_t st,   \
                                         const char *pf, const int32_t *ls,    \
                                         const int uns) {                      \
        UNROLL_COLUMNS                                                         \
        for (int c = 0; c < nrc; c++)                                          \
            sum[c] = _mm512_setzero_ps();                                      \
        T##_packed_range(n, nrc, sum, vx, 0, n / QK8_0 & ~3, vy, st, pf, ls,  \
                         uns);                                                 \
    }                                                                          \
    ALWAYS_INLINE void T##_packed_tail(int n, const int nrc, float *restrict s, \
                                       const void *restrict vx,                \
                                       const void *restrict vy, size_t st) {   \
        const BLOCK *x = vx;                                                   \
        const int nb = n / QK8_0;                                              \
        for (int i = nb & ~3; i < nb; i++) {                                   \
            const __m256i qx = SINGLE(x + i);                                  \
            const __m256i cx = minus128_sum4_256(qx);                          \
            const float dx = fp16_to_f32_f16c(x[i].d);                         \
            UNROLL_COLUMNS                                                     \
            for (int c = 0; c < nrc; c++) {                                    \
                const uint8_t *y = (const uint8_t *)col(vy, c, st);            \
                float dy;                                                      \
                memcpy(&dy, y + n + 4 * i, 4);                                 \
                __m256i p = _mm256_dpbusd_epi32(                               \
                    cx, _mm256_loadu_si256((const __m256i *)(y + 32 * i)),     \
                    qx);                                                       \
                s[c] += dx * dy * (float)hsum_i32_256(p);                      \
            }                                                                  \
        }                                                                      \
    }                                                                          \
    ALWAYS_INLINE void T##_nrc_packed_impl(int n, const int nrc,               \
                                           float *restrict s,                  \
                                           const void *restrict vx,            \
                                           const void *restrict vy,            \
                                           size_t st) {                        \
        __m512 sum[ENG_NRC_MAX];                                               \
        T##_packed_groups(n, nrc, sum, vx, vy, st, vx, NULL, 0);               \
        UNROLL_COLUMNS                                                         \
        for (int c = 0; c < nrc; c++)                                          \
            s[c] = hsum_ps_512(sum[c]);                                        \
        T##_packed_tail(n, nrc, s, vx, vy, st);                                \
    }                                                                          \
    NRC_DISPATCH(eng__vec_dot_##T##_nrc_packed_avx512, T##_nrc_packed_impl)    \
    /* Rows one after another (each still read front to back), in groups  \
     * of four whose sums per column reduce in one transposed tree and      \
     * land as four consecutive outputs. */                                  \
    ALWAYS_INLINE void T##_tile_rows(int n, int nr, const int nc,              \
                                     float *restrict out, size_t ldo,          \
                                     const uint8_t *restrict w,                \
                                     size_t row_bytes,                         \
                                     const void *restrict vy, size_t st,       \
                                     const int32_t *ls, const int uns) {       \
        int r = 0;                                                             \
        const int ahead = nc >= 4 ? PREFETCH_ROWS : PREFETCH_ROWS_1;           \
        for (; r + 4 <= nr; r += 4) {                                          \
            __m512 sum[ENG_NRC_MAX][4];                                        \
            for (int k = 0; k < 4; k++) {                                      \
                __m512 v[ENG_NRC_MAX];                                         \
                T##_packed_groups(n, nc, v, w + (size_t)(r + k) * row_bytes,   \
                                  vy, st,                                      \
                                  (const char *)w +                            \
                                      (size_t)(r + k + ahead) * row_bytes,     \
                                  ls, uns);                                    \
                UNROLL_COLUMNS                                                 \
                for (int c = 0; c < nc; c++)                                   \
                    sum[c][k] = v[c];                                          \
            }                                                                  \
            UNROLL_COLUMNS                                                     \
            for (int c = 0; c < nc; c++)                                       \
                hsum_ps_512_x4(sum[c], out + (size_t)c * ldo + r);             \
            if ((n / QK8_0) % 4)                                               \
                for (int k = 0; k < 4; k++) {                                  \
                    float s[ENG_NRC_MAX];                                      \
                    UNROLL_COLUMNS                                             \
                    for (int c = 0; c < nc; c++)                               \
                        s[c] = out[(size_t)c * ldo + r + k];                   \
                    T##_packed_tail(n, nc, s,                                  \
                                    w + (size_t)(r + k) * row_bytes, vy, st);  \
                    UNROLL_COLUMNS                                             \
                    for (int c = 0; c < nc; c++)                               \
                        out[(size_t)c * ldo + r + k] = s[c];                   \
                }                                                              \
        }                                                                      \
        for (; r < nr; r++) {                                                  \
            float s[ENG_NRC_MAX];                                              \
            T##_nrc_packed_impl(n, nc, s, w + (size_t)r * row_bytes, vy, st);  \
            UNROLL_COLUMNS                                                     \
            for (int c = 0; c < nc; c++)                                       \
                out[(size_t)c * ldo + r] = s[c];                               \
        }                                                                      \
    }                                                                          \
    /* Rows in blocks of KB_ROWS, the blocks' rows taken KB_BLOCKS weight  \
     * blocks at a time (see KB_MIN_BYTES); each row's column sums wait    \
     * in acc between the spans, so every float step is the one            \
     * T##_tile_rows does, in its order. nr % 4 rows are left to it. */     \
    ALWAYS_INLINE void T##_tile_rows_kb(int n, int nr, const int nc,           \
                                        float *restrict out, size_t ldo,       \
                                        const uint8_t *restrict w,             \
                                        size_t row_bytes,                      \
                                        const void *restrict vy, size_t st) {  \
        const int nb4 = n / QK8_0 & ~3;                                        \
        for (int r0 = 0; r0 + 4 <= nr; r0 += KB_ROWS) {                        \
            const int rn = (nr - r0 < KB_ROWS ? nr - r0 : KB_ROWS) & ~3;       \
            __m512 acc[KB_ROWS][ENG_NRC_MAX];                                  \
            for (int k = 0; k < rn; k++)                                       \
                UNROLL_COLUMNS                                                 \
                for (int c = 0; c < nc; c++)                                   \
                    acc[k][c] = _mm512_setzero_ps();                           \
            for (int i0 = 0; i0 < nb4; i0 += KB_BLOCKS) {                      \
                const int i1 = nb4 - i0 < KB_BLOCKS ? nb4 : i0 + KB_BLOCKS;    \
                for (int k = 0; k < rn; k++) {                                 \
                    /* PREFETCH_ROWS ahead in this span, then the block's   \
                     * first rows in the next one */                          \
                    const int ka = k + PREFETCH_ROWS;                          \
                    const char *pf =                                           \
                        (const char *)w +                                      \
                        (ka < rn ? (size_t)(r0 + ka) * row_bytes               \
                                 : (size_t)(r0 + ka - rn) * row_bytes +        \
                                       KB_BLOCKS * sizeof(BLOCK));             \
                    __m512 v[ENG_NRC_MAX];                                     \
                    UNROLL_COLUMNS                                             \
                    for (int c = 0; c < nc; c++)                               \
                        v[c] = acc[k][c];                                      \
                    T##_packed_range(n, nc, v,                                 \
                                     w + (size_t)(r0 + k) * row_bytes, i0, i1, \
                                     vy, st, pf, NULL, 0);                     \
                    UNROLL_COLUMNS                                             \
                    for (int c = 0; c < nc; c++)                               \
                        acc[k][c] = v[c];                                      \
                }                                                              \
            }                                                                  \
            for (int k = 0; k < rn; k += 4) {                                  \
                const int r = r0 + k;                                          \
                UNROLL_COLUMNS                                                 \
                for (int c = 0; c < nc; c++) {                                 \
                    __m512 s4[4] = {acc[k][c], acc[k + 1][c], acc[k + 2][c],   \
                                    acc[k + 3][c]};                            \
                    hsum_ps_512_x4(s4, out + (size_t)c * ldo + r);             \
                }                                                              \
                if ((n / QK8_0) % 4)                                           \
                    for (int j = 0; j < 4; j++) {                              \
                        float s[ENG_NRC_MAX];                                  \
                        UNROLL_COLUMNS                                         \
                        for (int c = 0; c < nc; c++)                           \
                            s[c] = out[(size_t)c * ldo + r + j];               \
                        T##_packed_tail(n, nc, s,                              \
                                        w + (size_t)(r + j) * row_bytes, vy,   \
                                        st);                                   \
                        UNROLL_COLUMNS                                         \
                        for (int c = 0; c < nc; c++)                           \
                            out[(size_t)c * ldo + r + j] = s[c];               \
                    }                                                          \
            }                                                                  \
            if (rn < KB_ROWS)                                                  \
                break;                                                         \
        }                                                                      \
        const int done = nr & ~3;                                              \
        if (done < nr)                                                         \
            T##_tile_rows(n, nr - done, nc, out + done, ldo,                   \
                          w + (size_t)done * row_bytes, row_bytes, vy, st,     \
                          NULL, 0);                                            \
    }                                                                          \
    /* Out of line, and so out of the register allocation of the kernels  \
     * that do not need it (inlined, it cost them 5-10%). */                 \
    static __attribute__((noinline)) void T##_tile_kb(                        \
        int n, int nr, int nc, float *restrict out, size_t ldo,               \
        const uint8_t *restrict w, size_t row_bytes, const void *restrict vy, \
        size_t st) {                                                           \
        switch (nc) {                                                          \
        case 4: T##_tile_rows_kb(n, nr, 4, out, ldo, w, row_bytes, vy, st); break; \
        case 5: T##_tile_rows_kb(n, nr, 5, out, ldo, w, row_bytes, vy, st); break; \
        case 6: T##_tile_rows_kb(n, nr, 6, out, ldo, w, row_bytes, vy, st); break; \
        case 7: T##_tile_rows_kb(n, nr, 7, out, ldo, w, row_bytes, vy, st); break; \
        default: T##_tile_rows_kb(n, nr, 8, out, ldo, w, row_bytes, vy, st);   \
        }                                                                      \
    }                                                                          \
    /* With one column, types with unsigned weights (UNSIGNED_SHIFT) take   \
     * the activations' lane sums once per call for all its rows (see       \
     * lane_sums); the leftover rows keep the batch path's correction.     \
     * Same integers either way. */                                          \
    ALWAYS_INLINE void T##_tile_impl(int n, int nr, const int nc,              \
                                     float *restrict out, size_t ldo,          \
                                     const uint8_t *restrict w,                \
                                     size_t row_bytes,                         \
                                     const void *restrict vy, size_t st) {     \
        if (UNSIGNED_SHIFT > 0 && nc == 1 && nr >= 4 &&                        \
            n / QK8_0 / 4 <= LANE_SUMS_MAX) {                                  \
            _Alignas(64) int32_t ls[LANE_SUMS_INTS];                           \
            lane_sums(ls, vy, n, UNSIGNED_SHIFT);                              \
            T##_tile_rows(n, nr, nc, out, ldo, w, row_bytes, vy, st, ls, 1);   \
        } else if (nc >= 4 && (size_t)nc * (size_t)n >= KB_MIN_BYTES) {       \
            T##_tile_kb(n, nr, nc, out, ldo, w, row_bytes, vy, st);            \
        } else {                                                               \
            T##_tile_rows(n, nr, nc, out, ldo, w, row_bytes, vy, st, NULL, 0); \
        }                                                                      \
    }                                                                          \
    void eng__vec_dot_##T##_tile_packed_avx512(                                \
        int n, int nr, int nc, float *restrict out, size_t ldo,                \
        const void *restrict vx, size_t row_bytes, const void *restrict vy,    \
        size_t st) {                                                           \
        const uint8_t *w = vx;                                                 \
        switch (nc) {                                                          \
        case 1: T##_tile_impl(n, nr, 1, out, ldo, w, row_bytes, vy, st); break; \
        case 2: T##_tile_impl(n, nr, 2, out, ldo, w, row_bytes, vy, st); break; \
        case 3: T##_tile_impl(n, nr, 3, out, ldo, w, row_bytes, vy, st); break; \
        case 4: T##_tile_impl(n, nr, 4, out, ldo, w, row_bytes, vy, st); break; \
        case 5: T##_tile_impl(n, nr, 5, out, ldo, w, row_bytes, vy, st); break; \
        case 6: T##_tile_impl(n, nr, 6, out, ldo, w, row_bytes, vy, st); break; \
        case 7: T##_tile_impl(n, nr, 7, out, ldo, w, row_bytes, vy, st); break; \
        default: T##_tile_impl(n, nr, 8, out, ldo, w, row_bytes, vy, st);      \
        }                                                                      \
    }

Q8_0_LIKE_PACKED(q8_0, block_q8_0, group_q8_0, q8_0_block_i8, 0)
Q8_0_LIKE_PACKED(q4_0, block_q4_0, group_q4_0, q4_0_block_i8, 3)
Q8_0_LIKE_PACKED(q5_0, block_q5_0, group_q5_0, q5_0_block_i8, 4)

/* ==== Q5_0 with VBMI and BITALG ============================================ */

/* Q5_0's 5th bits cost most of its group decode above: four qh words
 * gathered into two 64-bit masks in general registers, two kmovq and two
 * masked adds made a one-column product in cache 1.6x slower than with
 * the bits left out (38 against 60 GMAC/s, 896-wide rows, one thread).
 * With VBMI and BITALG the group is two loads of its 88 bytes, one byte
 * permute straight to the group layout, and one vpshufbitqmb per half
 * that picks each byte's 5th bit from the qh words: no general registers
 * and no transposing vpermd. The bytes, and so every result, are those of
 * group_q5_0; the kernels are installed only where cpu.c finds both
 * extensions. */
#pragma GCC push_options
#pragma GCC target("avx512vbmi,avx512bitalg")

static const uint8_t q5_0_vbmi_idx[4][64] = {
    /* the nibbles: byte 4 (4q + b) + j of the group layout is byte
     * 4q + j of block b's qs (at 22 b + 6) */
    {6,  7,  8,  9,  28, 29, 30, 31, 50, 51, 52, 53, 112, 113, 114, 115,
     10, 11, 12, 13, 32, 33, 34, 35, 54, 55, 56, 57, 116, 117, 118, 119,
     14, 15, 16, 17, 36, 37, 38, 39, 58, 59, 60, 61, 120, 121, 122, 123,
     18, 19, 20, 21, 40, 41, 42, 43, 62, 63, 104, 105, 124, 125, 126, 127},
    /* the four qh words (at 22 b + 2) in every 16 bytes, so that each
     * 64-bit lane holds the two blocks its bytes belong to */
    {2, 3, 4, 5, 24, 25, 26, 27, 46, 47, 48, 49, 108, 109, 110, 111,
     2, 3, 4, 5, 24, 25, 26, 27, 46, 47, 48, 49, 108, 109, 110, 111,
     2, 3, 4, 5, 24, 25, 26, 27, 46, 47, 48, 49, 108, 109, 110, 111,
     2, 3, 4, 5, 24, 25, 26, 27, 46, 47, 48, 49, 108, 109, 110, 111},
    /* which bit of its 64-bit lane is each byte's 5th bit, low half:
     * element 4q + j of block b is bit 32 (b % 2) + 4q + j */
    {0,  1,  2,  3,  32, 33, 34, 35, 0,  1,  2,  3,  32, 33, 34, 35,
     4,  5,  6,  7,  36, 37, 38, 39, 4,  5,  6,  7,  36, 37, 38, 39,
     8,  9,  10, 11, 40, 41, 42, 43, 8,  9,  10, 11, 40, 41, 42, 43,
     12, 13, 14, 15, 44, 45, 46, 47, 12, 13, 14, 15, 44, 45, 46, 47},
    /* the four fp16 scales (at 22 b) in the first 8 bytes */
    {0, 1, 22, 23, 44, 45, 106, 107},
};

ALWAYS_INLINE void group_q5_0_vbmi(const block_q5_0 *a, group *g,
                                   const int uns) {
    const __m512i m4 = _mm512_set1_epi8(0xf);
    const __m512i b4 = _mm512_set1_epi8(0x10);
    const __m512i *idx = (const __m512i *)q5_0_vbmi_idx;
    /* the group's 88 bytes as [0, 64) and [24, 88): the second load ends
     * where the group ends, so the last group of a matrix reads nothing
     * past it, and neither load is masked (byte k >= 64 is entry k + 40
     * of the tables) */
    const __m512i v0 = _mm512_loadu_si512(a);
    const __m512i v1 = _mm512_loadu_si512((const uint8_t *)a + 24);
    const __m512i z =
        _mm512_permutex2var_epi8(v0, _mm512_loadu_si512(idx), v1);
    const __m512i qh =
        _mm512_permutex2var_epi8(v0, _mm512_loadu_si512(idx + 1), v1);
    const __m512i bit = _mm512_loadu_si512(idx + 2);
    const __mmask64 klo = _mm512_bitshuffle_epi64_mask(qh, bit);
    const __mmask64 khi = _mm512_bitshuffle_epi64_mask(
        qh, _mm512_add_epi8(bit, b4)); /* the high half: bit + 16 */
    const __m512i l = _mm512_and_si512(z, m4);
    const __m512i h = _mm512_and_si512(_mm512_srli_epi16(z, 4), m4);
    /* q - 16: the nibble where the 5th bit is set, nibble - 16 where not
     * (uns: q itself) */
    g->lo = uns ? _mm512_mask_add_epi8(l, klo, l, b4)
                : _mm512_mask_sub_epi8(l, _knot_mask64(klo), l, b4);
    g->hi = uns ? _mm512_mask_add_epi8(h, khi, h, b4)
                : _mm512_mask_sub_epi8(h, _knot_mask64(khi), h, b4);
    g->d4 = _mm_cvtph_ps(_mm512_castsi512_si128(
        _mm512_permutex2var_epi8(v0, _mm512_loadu_si512(idx + 3), v1)));
}

Q8_0_LIKE_PACKED(q5_0_vbmi, block_q5_0, group_q5_0_vbmi, q5_0_block_i8, 4)

#pragma GCC pop_options

/* ==== Q4_1 against Q8_1 ==================================================== */

/* vec_dot is the AVX2 kernel: per block an 8-lane FMA of fp16(dx) *
 * fp16(dy) with the lane sums, the min term summed separately in scalar,
 * then hsum_ps_256(acc) + summ. Same here with 256-bit VNNI. */
ALWAYS_INLINE void q4_1_nrc_exact_impl(int n, const int nrc, float *restrict s,
                                       const void *restrict vx,
                                       const void *restrict vy, size_t st) {
    const block_q4_1 *x = vx;
    __m256 acc[ENG_NRC_MAX];
    float summ[ENG_NRC_MAX];
    for (int c = 0; c < nrc; c++) {
        acc[c] = _mm256_setzero_ps();
        summ[c] = 0.0f;
    }
    for (int i = 0; i < n / QK8_1; i++) {
        const float dx = fp16_to_f32_f16c(x[i].d);
        const float mx = fp16_to_f32_f16c(x[i].m);
        const __m256i qx = nibbles32(x[i].qs);
        for (int c = 0; c < nrc; c++) {
            const block_q8_1 *y = (const block_q8_1 *)col(vy, c, st) + i;
            summ[c] += mx * fp16_to_f32_f16c(y->s);
            __m256i p = _mm256_dpbusd_epi32(
                _mm256_setzero_si256(), qx,
                _mm256_loadu_si256((const __m256i *)y->qs));
            acc[c] = _mm256_fmadd_ps(
                _mm256_set1_ps(dx * fp16_to_f32_f16c(y->d)),
                _mm256_cvtepi32_ps(p), acc[c]);
        }
    }
    for (int c = 0; c < nrc; c++)
        s[c] = hsum_ps_256(acc[c]) + summ[c];
}
NRC_DISPATCH(eng__vec_dot_q4_1_nrc_exact_avx512, q4_1_nrc_exact_impl)

/* ==== table =============================================================== */

const eng_arch_kernels eng__kernels_avx512_gemm = {
    .isa = "avx512",
    .vec_dot_nrc =
        {
            [ENG_TYPE_Q8_0] = eng__vec_dot_q8_0_nrc_exact_avx512,
            [ENG_TYPE_Q4_0] = eng__vec_dot_q4_0_nrc_exact_avx512,
            [ENG_TYPE_Q5_0] = eng__vec_dot_q5_0_nrc_exact_avx512,
            [ENG_TYPE_Q4_1] = eng__vec_dot_q4_1_nrc_exact_avx512,
        },
    .vec_dot_nrc_packed =
        {
            [ENG_TYPE_Q8_0] = eng__vec_dot_q8_0_nrc_packed_avx512,
            [ENG_TYPE_Q4_0] = eng__vec_dot_q4_0_nrc_packed_avx512,
            [ENG_TYPE_Q5_0] = eng__vec_dot_q5_0_nrc_packed_avx512,
        },
    .from_float_packed =
        {
            [ENG_TYPE_Q8_0] = eng__quantize_row_q8_0_packed_avx512,
        },
    .vec_dot_tile_packed =
        {
            [ENG_TYPE_Q8_0] = eng__vec_dot_q8_0_tile_packed_avx512,
            [ENG_TYPE_Q4_0] = eng__vec_dot_q4_0_tile_packed_avx512,
            [ENG_TYPE_Q5_0] = eng__vec_dot_q5_0_tile_packed_avx512,
        },
};

const eng_arch_kernels eng__kernels_avx512_vbmi = {
    .isa = "avx512",
    .vec_dot_nrc_packed =
        {
            [ENG_TYPE_Q5_0] = eng__vec_dot_q5_0_vbmi_nrc_packed_avx512,
        },
    .vec_dot_tile_packed =
        {
            [ENG_TYPE_Q5_0] = eng__vec_dot_q5_0_vbmi_tile_packed_avx512,
        },
};

#endif
