/*
 * gemm_avx2.c — batched dots that equal their AVX2 vec_dot bit for bit
 * where quant_avx2.c's batched kernel does not (compiled with the AVX2
 * flags; installed over quant_avx2.c's entries by eng_quant_init on CPUs
 * with AVX2, and replaced in turn by the AVX-512 tables where those run).
 *
 * Why equality matters: see gemm_avx512.c and matmul.c. quant_avx2.c's
 * batched Q4_K folds the mins term into the same accumulator as the
 * quants, while vec_dot keeps a second accumulator and subtracts at the
 * end; this one keeps vec_dot's two accumulators per column.
 */
#include "quant_arch.h"

#if defined(__x86_64__)

#include <immintrin.h>

#include "quant_x86.h"

#define ALWAYS_INLINE static inline __attribute__((always_inline))

/* Sum over the 16 bsums of min[j/2] * bsum[j] (as quant_avx2.c). */
ALWAYS_INLINE __m256i mins_dot_bsums_avx2(const uint8_t mn[8],
                                          const int16_t bsums[16]) {
    __m128i m = _mm_cvtepu8_epi16(_mm_loadl_epi64((const __m128i *)mn));
    __m256i m2 =
        _mm256_set_m128i(_mm_unpackhi_epi16(m, m), _mm_unpacklo_epi16(m, m));
    return _mm256_madd_epi16(m2, _mm256_loadu_si256((const __m256i *)bsums));
}

ALWAYS_INLINE const void *col(const void *vy, int c, size_t st) {
    return (const char *)vy + (size_t)c * st;
}

/* vec_dot per column: acc += (dx * dy) * sumi, accm += (dmin * dy) * mins,
 * result hsum(acc - accm). Two columns per pass keep the 16 ymm registers
 * enough for both accumulators, the sums and the decoded chunk. */
ALWAYS_INLINE void q4_K_nrc2_impl(int n, const int nrc, float *restrict s,
                                  const void *restrict vx,
                                  const void *restrict vy, size_t st) {
    const block_q4_K *x = vx;
    const __m256i m4 = _mm256_set1_epi8(0xf);
    __m256 acc[2], accm[2];
    for (int c = 0; c < nrc; c++)
        acc[c] = accm[c] = _mm256_setzero_ps();
    for (int i = 0; i < n / QK_K; i++) {
        uint8_t sc[8], mn[8];
        unpack_scales_k4_fast(x[i].scales, sc, mn);
        const float dx = fp16_to_f32_f16c(x[i].d);
        const float dmx = fp16_to_f32_f16c(x[i].dmin);
        __m256i sumi[2];
        for (int c = 0; c < nrc; c++) {
            const block_q8_K *y = (const block_q8_K *)col(vy, c, st) + i;
            accm[c] = _mm256_fmadd_ps(
                _mm256_set1_ps(dmx * y->d),
                _mm256_cvtepi32_ps(mins_dot_bsums_avx2(mn, y->bsums)), accm[c]);
            sumi[c] = _mm256_setzero_si256();
        }
        for (int j = 0; j < QK_K / 64; j++) {
            __m256i q = _mm256_loadu_si256((const __m256i *)(x[i].qs + 32 * j));
            const __m256i lo = _mm256_and_si256(q, m4);
            const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), m4);
            const __m256i s0 = _mm256_set1_epi16(sc[2 * j]);
            const __m256i s1 = _mm256_set1_epi16(sc[2 * j + 1]);
            for (int c = 0; c < nrc; c++) {
                const int8_t *q8 =
                    ((const block_q8_K *)col(vy, c, st) + i)->qs + 64 * j;
                __m256i p0 = _mm256_madd_epi16(
                    _mm256_maddubs_epi16(
                        lo, _mm256_loadu_si256((const __m256i *)q8)),
                    s0);
                __m256i p1 = _mm256_madd_epi16(
                    _mm256_maddubs_epi16(
                        hi, _mm256_loadu_si256((const __m256i *)(q8 + 32))),
                    s1);
                sumi[c] = _mm256_add_epi32(sumi[c], _mm256_add_epi32(p0, p1));
            }
        }
        for (int c = 0; c < nrc; c++) {
            const block_q8_K *y = (const block_q8_K *)col(vy, c, st) + i;
            acc[c] = _mm256_fmadd_ps(_mm256_set1_ps(dx * y->d),
                                     _mm256_cvtepi32_ps(sumi[c]), acc[c]);
        }
    }
    for (int c = 0; c < nrc; c++)
        s[c] = hsum_ps_256(_mm256_sub_ps(acc[c], accm[c]));
}

void eng__vec_dot_q4_K_nrc_exact_avx2(int n, int nrc, float *restrict s,
                                      const void *restrict vx,
                                      const void *restrict vy, size_t st) {
    const char *y = vy;
    for (; nrc >= 2; nrc -= 2, s += 2, y += 2 * st)
        q4_K_nrc2_impl(n, 2, s, vx, y, st);
    if (nrc)
        q4_K_nrc2_impl(n, 1, s, vx, y, st);
}

const eng_arch_kernels eng__kernels_avx2_gemm = {
    .isa = "avx2",
    .vec_dot_nrc =
        {
            [ENG_TYPE_Q4_K] = eng__vec_dot_q4_K_nrc_exact_avx2,
        },
};

#endif
