/*
 * quant_avxvnni.c — the AVX2 dots of Q8_0, Q4_0 and Q5_0 (and Q8_0's
 * batched dot) with AVX-VNNI's 256-bit vpdpbusd (compiled with the AVX2
 * flags plus -mavxvnni; installed after the AVX2 tables where cpu.c finds
 * AVX-VNNI: Intel since Alder Lake, whose laptop parts have no AVX-512,
 * and AMD since Zen 5).
 *
 * One vpdpbusd per 32 products replaces vpmaddubsw + vpmaddwd. The int32
 * lanes hold the same exact sums, so these are bit-identical to the AVX2
 * kernels (dots_avx2.h), and the AVX2 batched dots stay bit-identical to
 * them. One thread, 896-wide rows: Q8_0 32.0 -> 39.4 GB/s in cache (27.8
 * -> 28.7 streaming, memory-bound there), Q5_0 15.5-15.9 -> 16.1-16.7,
 * Q4_0 13.5 -> 14.2.
 *
 * Also the packed-activation kernels of all three (packed_avx2.h) on
 * gemm_avx2.c's packer: Q8_0's only here, since its weights would
 * saturate vpmaddubsw against the packed row's unsigned activations.
 */
#include "quant_arch.h"

#if defined(__x86_64__)

#include "dots_avx2.h"
#include "packed_avx2.h"

/* Lane k: x[4k..4k+3] . y[4k..4k+3]: |x| against y with x's sign. */
static inline __m256i dot_i8_vnni(__m256i x, __m256i y) {
    return _mm256_dpbusd_avx_epi32(
        _mm256_setzero_si256(), _mm256_sign_epi8(x, x), _mm256_sign_epi8(y, x));
}

void eng__vec_dot_q8_0_q8_0_avxvnni(int n, float *restrict s,
                                    const void *restrict vx,
                                    const void *restrict vy) {
    dot_q8_0_body(n, s, vx, vy, dot_i8_vnni);
}

void eng__vec_dot_q4_0_q8_0_avxvnni(int n, float *restrict s,
                                    const void *restrict vx,
                                    const void *restrict vy) {
    dot_q4_0_body(n, s, vx, vy, dot_i8_vnni);
}

void eng__vec_dot_q5_0_q8_0_avxvnni(int n, float *restrict s,
                                    const void *restrict vx,
                                    const void *restrict vy) {
    dot_q5_0_body(n, s, vx, vy, dot_i8_vnni);
}

/* |x| (unsigned) against y carrying x's sign. */
static inline __m256i dot_u8i8_vnni(__m256i ax, __m256i sy) {
    return _mm256_dpbusd_avx_epi32(_mm256_setzero_si256(), ax, sy);
}

static inline __attribute__((always_inline)) void
q8_0_nrc_impl(int n, const int nrc, float *restrict s, const void *restrict vx,
              const void *restrict vy, size_t st) {
    dot_q8_0_nrc_body(n, nrc, s, vx, vy, st, dot_u8i8_vnni);
}
NRC_SPLIT4(eng__vec_dot_q8_0_nrc_avxvnni, q8_0_nrc_impl)

/* ==== packed activations (packed_avx2.h) ===================================
 */

ALWAYS_INLINE __m256i pk_dot_vnni(const __m256i *w, const uint8_t *y, int nv,
                                  __m256i c) {
    PK_UNROLL
    for (int k = 0; k < nv; k++)
        c = _mm256_dpbusd_avx_epi32(
            c, _mm256_loadu_si256((const __m256i *)(y + 32 * k)), w[k]);
    return c;
}

ALWAYS_INLINE __m256i pk_c0_vnni(const __m256i *w, int nv) {
    __m256i s = _mm256_setzero_si256();
    PK_UNROLL
    for (int k = 0; k < nv; k++)
        s = _mm256_dpbusd_avx_epi32(s, _mm256_set1_epi8((char)0x80), w[k]);
    return _mm256_sub_epi32(_mm256_setzero_si256(), s);
}

/* w unsigned, ys signed (pk_lane_sums) */
ALWAYS_INLINE __m256i pk_dotu_vnni(const __m256i *w, const int8_t *ys, int nv,
                                   __m256i c) {
    PK_UNROLL
    for (int k = 0; k < nv; k++)
        c = _mm256_dpbusd_avx_epi32(
            c, w[k], _mm256_load_si256((const __m256i *)(ys + 32 * k)));
    return c;
}

PK_AVX2_KERNELS(q8_0, block_q8_0, pk_group_q8_0, q8_0_block_i8, pk_dot_vnni,
                pk_c0_vnni, pk_dotu_vnni, 7, _avxvnni)
PK_AVX2_KERNELS(q4_0, block_q4_0, pk_group_q4_0, q4_0_block_i8, pk_dot_vnni,
                pk_c0_vnni, pk_dotu_vnni, 3, _avxvnni)
PK_AVX2_KERNELS(q5_0, block_q5_0, pk_group_q5_0, q5_0_block_i8, pk_dot_vnni,
                pk_c0_vnni, pk_dotu_vnni, 4, _avxvnni)

const eng_arch_kernels eng__kernels_avxvnni = {
    .isa = "avx2",
    .vec_dot =
        {
            [ENG_TYPE_Q8_0] = eng__vec_dot_q8_0_q8_0_avxvnni,
            [ENG_TYPE_Q4_0] = eng__vec_dot_q4_0_q8_0_avxvnni,
            [ENG_TYPE_Q5_0] = eng__vec_dot_q5_0_q8_0_avxvnni,
        },
    /* Q4_0 and Q5_0 have no AVX2 batched dot: theirs is a loop over the
     * vec_dot above */
    .vec_dot_nrc =
        {
            [ENG_TYPE_Q8_0] = eng__vec_dot_q8_0_nrc_avxvnni,
        },
    /* on gemm_avx2.c's packer */
    .vec_dot_nrc_packed =
        {
            [ENG_TYPE_Q8_0] = eng__vec_dot_q8_0_nrc_packed_avxvnni,
            [ENG_TYPE_Q4_0] = eng__vec_dot_q4_0_nrc_packed_avxvnni,
            [ENG_TYPE_Q5_0] = eng__vec_dot_q5_0_nrc_packed_avxvnni,
        },
    .vec_dot_tile_packed =
        {
            [ENG_TYPE_Q8_0] = eng__vec_dot_q8_0_tile_packed_avxvnni,
            [ENG_TYPE_Q4_0] = eng__vec_dot_q4_0_tile_packed_avxvnni,
            [ENG_TYPE_Q5_0] = eng__vec_dot_q5_0_tile_packed_avxvnni,
        },
};

#endif
