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
 *
 * And Q4_K / Q5_K, one-column and batched, with the AVX-512 kernels' pack
 * of two vpdpbusd results into one vpdpwssd (see below).
 */
#include "quant_arch.h"

#if defined(__x86_64__)

#include "dots_avx2.h"
#include "ktile_x86.h"
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

/* ==== Q4_K / Q5_K ==========================================================
 *
 * A 64-element chunk: vpdpbusd of its low nibbles (sub-block 2j) and of its
 * high ones (2j + 1) against the activations, four products per int32 lane
 * (at most 4 * 31 * 128, so vpackssdw does not saturate), the two packed
 * into one vector whose 128-bit lanes read [2j x 4 | 2j+1 x 4], and one
 * vpdpwssd by the scales in that pattern: four instructions per chunk
 * where vpmaddubsw, vpmaddwd and the adds took six. The lanes' sums
 * differ from the AVX2 kernels', so the one-column and batched dots here
 * replace both of theirs together and stay bit-identical to each other;
 * the float steps are those of quant_avx2.c / gemm_avx2.c. */

/* Bytes picking int16 word 2j into words 0-3 and 2j + 1 into words 4-7 of
 * both 128-bit lanes. */
static const uint8_t k4v_pick[4][32] = {
#define K4V_PICK(j)                                                            \
    {                                                                          \
        4 * j, 4 * j + 1, 4 * j, 4 * j + 1, 4 * j, 4 * j + 1, 4 * j,           \
            4 * j + 1, 4 * j + 2, 4 * j + 3, 4 * j + 2, 4 * j + 3, 4 * j + 2,  \
            4 * j + 3, 4 * j + 2, 4 * j + 3, 4 * j, 4 * j + 1, 4 * j,          \
            4 * j + 1, 4 * j, 4 * j + 1, 4 * j, 4 * j + 1, 4 * j + 2,          \
            4 * j + 3, 4 * j + 2, 4 * j + 3, 4 * j + 2, 4 * j + 3, 4 * j + 2,  \
            4 * j + 3                                                          \
    }
    K4V_PICK(0),
    K4V_PICK(1),
    K4V_PICK(2),
    K4V_PICK(3),
#undef K4V_PICK
};

ALWAYS_INLINE __m256i k4v_scales(__m256i sc2, int j) {
    return _mm256_shuffle_epi8(
        sc2, _mm256_loadu_si256((const __m256i *)k4v_pick[j]));
}

ALWAYS_INLINE __m256i k4v_chunk(__m256i acc, __m256i lo, __m256i hi,
                                const int8_t *q8, __m256i scw) {
    const __m256i a = _mm256_dpbusd_avx_epi32(
        _mm256_setzero_si256(), lo, _mm256_loadu_si256((const __m256i *)q8));
    const __m256i b =
        _mm256_dpbusd_avx_epi32(_mm256_setzero_si256(), hi,
                                _mm256_loadu_si256((const __m256i *)(q8 + 32)));
    return _mm256_dpwssd_avx_epi32(acc, _mm256_packs_epi32(a, b), scw);
}

/* Super-block i: block_q4_K and block_q5_K share their first fields (d,
 * dmin, scales); Q5_K's qs follow its qh, loaded here for k4_chunk_avx2. */
ALWAYS_INLINE const block_q4_K *k4v_block(const void *vx, int i, const int five,
                                          const uint8_t **qs, __m256i *qh) {
    const size_t bs = five ? sizeof(block_q5_K) : sizeof(block_q4_K);
    const block_q4_K *x =
        (const block_q4_K *)((const char *)vx + (size_t)i * bs);
    const block_q5_K *x5 = (const block_q5_K *)x;
    *qs = five ? x5->qs : x->qs;
    *qh = five ? _mm256_loadu_si256((const __m256i *)x5->qh)
               : _mm256_setzero_si256();
    return x;
}

ALWAYS_INLINE void k4v_dot(int n, float *restrict s, const void *restrict vx,
                           const void *restrict vy, const int five) {
    const block_q8_K *y = vy;
    __m256 acc = _mm256_setzero_ps(), accm = _mm256_setzero_ps();
    for (int i = 0; i < n / QK_K; i++) {
        const uint8_t *qs;
        __m256i qh;
        const block_q4_K *x = k4v_block(vx, i, five, &qs, &qh);
        k_prefetch(x, five ? sizeof(block_q5_K) : sizeof(block_q4_K));
        const float d = fp16_to_f32_f16c(x->d) * y[i].d;
        const float dmin = fp16_to_f32_f16c(x->dmin) * y[i].d;
        __m128i sc, mn;
        k4_scales_mins(x->scales, &sc, &mn);
        const __m256i mins = k4_mins_bsums(k4_mins_twice(mn), y[i].bsums);
        accm = _mm256_fmadd_ps(_mm256_set1_ps(dmin), _mm256_cvtepi32_ps(mins),
                               accm);
        const __m256i sc2 = _mm256_broadcastsi128_si256(sc);
        __m256i sumi = _mm256_setzero_si256();
        K4_CHUNK_UNROLL
        for (int j = 0; j < QK_K / 64; j++) {
            __m256i lo, hi;
            k4_chunk_avx2(qs, qh, j, five, &lo, &hi);
            sumi =
                k4v_chunk(sumi, lo, hi, y[i].qs + 64 * j, k4v_scales(sc2, j));
        }
        acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sumi), acc);
    }
    *s = hsum_ps_256(_mm256_sub_ps(acc, accm));
}

void eng__vec_dot_q4_K_q8_K_avxvnni(int n, float *restrict s,
                                    const void *restrict vx,
                                    const void *restrict vy) {
    k4v_dot(n, s, vx, vy, 0);
}

void eng__vec_dot_q5_K_q8_K_avxvnni(int n, float *restrict s,
                                    const void *restrict vx,
                                    const void *restrict vy) {
    k4v_dot(n, s, vx, vy, 1);
}

/* Up to four columns per pass, as gemm_avx2.c's k4_nrc4_impl: each
 * chunk's quants and scales decoded once for all of them. */
ALWAYS_INLINE void k4v_span(int i0, int i1, const int nrc,
                            const void *restrict vx, const void *restrict vy,
                            size_t st, __m256 *acc, __m256 *accm,
                            const int five) {
    for (int i = i0; i < i1; i++) {
        const uint8_t *qs;
        __m256i qh;
        const block_q4_K *x = k4v_block(vx, i, five, &qs, &qh);
        const float dx = fp16_to_f32_f16c(x->d);
        const float dmx = fp16_to_f32_f16c(x->dmin);
        __m128i sc, mn;
        k4_scales_mins(x->scales, &sc, &mn);
        const __m256i mn2 = k4_mins_twice(mn);
        __m256i sumi[4];
        PK_UNROLL
        for (int c = 0; c < nrc; c++) {
            const block_q8_K *y =
                (const block_q8_K *)((const char *)vy + (size_t)c * st) + i;
            accm[c] = _mm256_fmadd_ps(
                _mm256_set1_ps(dmx * y->d),
                _mm256_cvtepi32_ps(k4_mins_bsums(mn2, y->bsums)), accm[c]);
            sumi[c] = _mm256_setzero_si256();
        }
        const __m256i sc2 = _mm256_broadcastsi128_si256(sc);
        K4_CHUNK_UNROLL
        for (int j = 0; j < QK_K / 64; j++) {
            __m256i lo, hi;
            k4_chunk_avx2(qs, qh, j, five, &lo, &hi);
            const __m256i scw = k4v_scales(sc2, j);
            PK_UNROLL
            for (int c = 0; c < nrc; c++) {
                const block_q8_K *y =
                    (const block_q8_K *)((const char *)vy + (size_t)c * st) + i;
                sumi[c] = k4v_chunk(sumi[c], lo, hi, y->qs + 64 * j, scw);
            }
        }
        PK_UNROLL
        for (int c = 0; c < nrc; c++) {
            const block_q8_K *y =
                (const block_q8_K *)((const char *)vy + (size_t)c * st) + i;
            acc[c] = _mm256_fmadd_ps(_mm256_set1_ps(dx * y->d),
                                     _mm256_cvtepi32_ps(sumi[c]), acc[c]);
        }
    }
}

ALWAYS_INLINE void k4v_nrc4(int n, const int nrc, float *restrict s,
                            const void *restrict vx, const void *restrict vy,
                            size_t st, const int five) {
    __m256 acc[4], accm[4];
    PK_UNROLL
    for (int c = 0; c < nrc; c++)
        acc[c] = accm[c] = _mm256_setzero_ps();
    k4v_span(0, n / QK_K, nrc, vx, vy, st, acc, accm, five);
    PK_UNROLL
    for (int c = 0; c < nrc; c++)
        s[c] = hsum_ps_256(_mm256_sub_ps(acc[c], accm[c]));
}

ALWAYS_INLINE void q4_K_vnni_impl(int n, const int nrc, float *restrict s,
                                  const void *restrict vx,
                                  const void *restrict vy, size_t st) {
    k4v_nrc4(n, nrc, s, vx, vy, st, 0);
}
NRC_SPLIT4(eng__vec_dot_q4_K_nrc_avxvnni, q4_K_vnni_impl)

ALWAYS_INLINE void q5_K_vnni_impl(int n, const int nrc, float *restrict s,
                                  const void *restrict vx,
                                  const void *restrict vy, size_t st) {
    k4v_nrc4(n, nrc, s, vx, vy, st, 1);
}
NRC_SPLIT4(eng__vec_dot_q5_K_nrc_avxvnni, q5_K_vnni_impl)

/* The tiles (ktile_avx2.h): these dots' lanes differ from the AVX2 ones,
 * so every level that installs its own vec_dot installs its own tile. */
ALWAYS_INLINE void q4_K_vnni_span(int i0, int i1, const int nrc,
                                  const void *restrict vx,
                                  const void *restrict vy, size_t st,
                                  __m256 *acc, __m256 *accm) {
    k4v_span(i0, i1, nrc, vx, vy, st, acc, accm, 0);
}
K_TILE_AVX2(q4_K_vnni, block_q4_K, 1, eng__vec_dot_q4_K_nrc_avxvnni,
            eng__vec_dot_q4_K_tile_avxvnni)

ALWAYS_INLINE void q5_K_vnni_span(int i0, int i1, const int nrc,
                                  const void *restrict vx,
                                  const void *restrict vy, size_t st,
                                  __m256 *acc, __m256 *accm) {
    k4v_span(i0, i1, nrc, vx, vy, st, acc, accm, 1);
}
K_TILE_AVX2(q5_K_vnni, block_q5_K, 1, eng__vec_dot_q5_K_nrc_avxvnni,
            eng__vec_dot_q5_K_tile_avxvnni)

/* ==== Q6_K ==================================================================
 *
 * The same pack for Q6_K (quants 0..63, lane sums at most 4 * 63 * 128):
 * vectors 2p and 2p + 1 of a half (q6_quants_avx2) go through one
 * vpdpwssd. Vector k's low 128-bit lane is 16-quant group 2k of the half,
 * its high lane group 2k + 1, so the packed pair's low lane reads groups
 * [2k x 4 | 2k+2 x 4] and its high lane [2k+1 x 4 | 2k+3 x 4] (k = 2p). */
static const uint8_t q6v_pick[2][32] = {
#define Q6V_PICK(p)                                                            \
    {                                                                          \
        8 * p, 8 * p + 1, 8 * p, 8 * p + 1, 8 * p, 8 * p + 1, 8 * p,           \
            8 * p + 1, 8 * p + 4, 8 * p + 5, 8 * p + 4, 8 * p + 5, 8 * p + 4,  \
            8 * p + 5, 8 * p + 4, 8 * p + 5, 8 * p + 2, 8 * p + 3, 8 * p + 2,  \
            8 * p + 3, 8 * p + 2, 8 * p + 3, 8 * p + 2, 8 * p + 3, 8 * p + 6,  \
            8 * p + 7, 8 * p + 6, 8 * p + 7, 8 * p + 6, 8 * p + 7, 8 * p + 6,  \
            8 * p + 7                                                          \
    }
    Q6V_PICK(0),
    Q6V_PICK(1),
#undef Q6V_PICK
};

/* Scales 8h..8h+7 of half h (sc16: all 16 as int16) in pair p's pattern. */
ALWAYS_INLINE __m256i q6v_scales(__m256i sc16, int h, int p) {
    const __m256i sch =
        h ? _mm256_permute4x64_epi64(sc16, _MM_SHUFFLE(3, 2, 3, 2))
          : _mm256_permute4x64_epi64(sc16, _MM_SHUFFLE(1, 0, 1, 0));
    return _mm256_shuffle_epi8(
        sch, _mm256_loadu_si256((const __m256i *)q6v_pick[p]));
}

/* -32 * sum(scale * bsum): the quants' +32, where the sums start. */
ALWAYS_INLINE __m256i q6v_offset(__m256i sc16, const int16_t bsums[16]) {
    return _mm256_sub_epi32(
        _mm256_setzero_si256(),
        _mm256_slli_epi32(
            _mm256_madd_epi16(sc16, _mm256_loadu_si256((const __m256i *)bsums)),
            5));
}

void eng__vec_dot_q6_K_q8_K_avxvnni(int n, float *restrict s,
                                    const void *restrict vx,
                                    const void *restrict vy) {
    const block_q6_K *x = vx;
    const block_q8_K *y = vy;
    __m256 acc = _mm256_setzero_ps();
    for (int i = 0; i < n / QK_K; i++) {
        k_prefetch(x + i, sizeof(block_q6_K));
        const float d = fp16_to_f32_f16c(x[i].d) * y[i].d;
        const __m256i sc16 =
            _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)x[i].scales));
        __m256i sumi = q6v_offset(sc16, y[i].bsums);
        for (int h = 0; h < 2; h++) {
            __m256i q[4];
            q6_quants_avx2(x[i].ql + 64 * h, x[i].qh + 32 * h, q);
            for (int p = 0; p < 2; p++)
                sumi = k4v_chunk(sumi, q[2 * p], q[2 * p + 1],
                                 y[i].qs + 128 * h + 64 * p,
                                 q6v_scales(sc16, h, p));
        }
        acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sumi), acc);
    }
    *s = hsum_ps_256(acc);
}

/* As quant_avx2.c's q6_K_span, up to four columns. */
ALWAYS_INLINE void q6_K_vnni_span(int i0, int i1, const int nrc,
                                  const void *restrict vx,
                                  const void *restrict vy, size_t st,
                                  __m256 *acc, __m256 *accm) {
    (void)accm;
    const block_q6_K *x = vx;
    for (int i = i0; i < i1; i++) {
        const __m256i sc16 =
            _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)x[i].scales));
        __m256i sumi[4];
        PK_UNROLL
        for (int c = 0; c < nrc; c++)
            sumi[c] = q6v_offset(
                sc16,
                ((const block_q8_K *)((const char *)vy + (size_t)c * st) + i)
                    ->bsums);
        for (int h = 0; h < 2; h++) {
            __m256i q[4];
            q6_quants_avx2(x[i].ql + 64 * h, x[i].qh + 32 * h, q);
            for (int p = 0; p < 2; p++) {
                const __m256i scw = q6v_scales(sc16, h, p);
                PK_UNROLL
                for (int c = 0; c < nrc; c++) {
                    const block_q8_K *y =
                        (const block_q8_K *)((const char *)vy +
                                             (size_t)c * st) +
                        i;
                    sumi[c] = k4v_chunk(sumi[c], q[2 * p], q[2 * p + 1],
                                        y->qs + 128 * h + 64 * p, scw);
                }
            }
        }
        const float d = fp16_to_f32_f16c(x[i].d);
        PK_UNROLL
        for (int c = 0; c < nrc; c++) {
            const block_q8_K *y =
                (const block_q8_K *)((const char *)vy + (size_t)c * st) + i;
            acc[c] = _mm256_fmadd_ps(_mm256_set1_ps(d * y->d),
                                     _mm256_cvtepi32_ps(sumi[c]), acc[c]);
        }
    }
}

ALWAYS_INLINE void q6_K_vnni_impl(int n, const int nrc, float *restrict s,
                                  const void *restrict vx,
                                  const void *restrict vy, size_t st) {
    __m256 acc[4];
    PK_UNROLL
    for (int c = 0; c < nrc; c++)
        acc[c] = _mm256_setzero_ps();
    q6_K_vnni_span(0, n / QK_K, nrc, vx, vy, st, acc, NULL);
    PK_UNROLL
    for (int c = 0; c < nrc; c++)
        s[c] = hsum_ps_256(acc[c]);
}
NRC_SPLIT4(eng__vec_dot_q6_K_nrc_avxvnni, q6_K_vnni_impl)
K_TILE_AVX2(q6_K_vnni, block_q6_K, 0, eng__vec_dot_q6_K_nrc_avxvnni,
            eng__vec_dot_q6_K_tile_avxvnni)

const eng_arch_kernels eng__kernels_avxvnni = {
    .isa = "avxvnni",
    .vec_dot =
        {
            [ENG_TYPE_Q8_0] = eng__vec_dot_q8_0_q8_0_avxvnni,
            [ENG_TYPE_Q4_0] = eng__vec_dot_q4_0_q8_0_avxvnni,
            [ENG_TYPE_Q5_0] = eng__vec_dot_q5_0_q8_0_avxvnni,
            [ENG_TYPE_Q4_K] = eng__vec_dot_q4_K_q8_K_avxvnni,
            [ENG_TYPE_Q5_K] = eng__vec_dot_q5_K_q8_K_avxvnni,
            [ENG_TYPE_Q6_K] = eng__vec_dot_q6_K_q8_K_avxvnni,
        },
    /* Q4_0 and Q5_0 have no AVX2 batched dot: theirs is a loop over the
     * vec_dot above */
    .vec_dot_nrc =
        {
            [ENG_TYPE_Q8_0] = eng__vec_dot_q8_0_nrc_avxvnni,
            [ENG_TYPE_Q4_K] = eng__vec_dot_q4_K_nrc_avxvnni,
            [ENG_TYPE_Q5_K] = eng__vec_dot_q5_K_nrc_avxvnni,
            [ENG_TYPE_Q6_K] = eng__vec_dot_q6_K_nrc_avxvnni,
        },
    .vec_dot_tile =
        {
            [ENG_TYPE_Q4_K] = eng__vec_dot_q4_K_tile_avxvnni,
            [ENG_TYPE_Q5_K] = eng__vec_dot_q5_K_tile_avxvnni,
            [ENG_TYPE_Q6_K] = eng__vec_dot_q6_K_tile_avxvnni,
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
