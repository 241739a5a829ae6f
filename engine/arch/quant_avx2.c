/*
 * quant_avx2.c — AVX2 + FMA + F16C kernels (compiled with those -m flags;
 * run only after cpu.c found them).
 *
 * Each kernel consumes whole blocks (the traits contract guarantees n is a
 * multiple of the block size); the float-type dots finish odd lengths with
 * a scalar tail. Integer products are exact, so these kernels differ from
 * the scalar references in quant.c only in the order of float additions.
 *
 * Signed x signed int8 products use the usual AVX2 idiom: maddubs wants an
 * unsigned left operand, so multiply |x| by y carrying x's sign
 * (sign_epi8), which leaves every product unchanged.
 */
#include "quant_arch.h"

#if defined(__x86_64__)

#include <immintrin.h>
#include <string.h>

#include "dots_avx2.h"
#include "ktile_x86.h"
#include "quant_x86.h"

/* ==== float types ========================================================= */

void eng__vec_dot_f32_avx2(int n, float *restrict s, const void *restrict vx,
                           const void *restrict vy) {
    const float *x = vx, *y = vy;
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    __m256 acc2 = _mm256_setzero_ps(), acc3 = _mm256_setzero_ps();
    int i = 0;
    /* Four independent chains hide the FMA latency. */
    for (; i + 32 <= n; i += 32) {
        acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i),
                               acc0);
        acc1 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i + 8),
                               _mm256_loadu_ps(y + i + 8), acc1);
        acc2 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i + 16),
                               _mm256_loadu_ps(y + i + 16), acc2);
        acc3 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i + 24),
                               _mm256_loadu_ps(y + i + 24), acc3);
    }
    for (; i + 8 <= n; i += 8)
        acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i),
                               acc0);
    float sum = hsum_ps_256(
        _mm256_add_ps(_mm256_add_ps(acc0, acc1), _mm256_add_ps(acc2, acc3)));
    for (; i < n; i++)
        sum += x[i] * y[i];
    *s = sum;
}

static inline __m256 load_f16x8(const eng_fp16 *p) {
    return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p));
}

void eng__vec_dot_f16_avx2(int n, float *restrict s, const void *restrict vx,
                           const void *restrict vy) {
    const eng_fp16 *x = vx, *y = vy;
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    __m256 acc2 = _mm256_setzero_ps(), acc3 = _mm256_setzero_ps();
    int i = 0;
    for (; i + 32 <= n; i += 32) {
        acc0 = _mm256_fmadd_ps(load_f16x8(x + i), load_f16x8(y + i), acc0);
        acc1 =
            _mm256_fmadd_ps(load_f16x8(x + i + 8), load_f16x8(y + i + 8), acc1);
        acc2 = _mm256_fmadd_ps(load_f16x8(x + i + 16), load_f16x8(y + i + 16),
                               acc2);
        acc3 = _mm256_fmadd_ps(load_f16x8(x + i + 24), load_f16x8(y + i + 24),
                               acc3);
    }
    for (; i + 8 <= n; i += 8)
        acc0 = _mm256_fmadd_ps(load_f16x8(x + i), load_f16x8(y + i), acc0);
    float sum = hsum_ps_256(
        _mm256_add_ps(_mm256_add_ps(acc0, acc1), _mm256_add_ps(acc2, acc3)));
    for (; i < n; i++)
        sum += eng_fp16_to_fp32(x[i]) * eng_fp16_to_fp32(y[i]);
    *s = sum;
}

static inline __m256 load_bf16x8(const eng_bf16 *p) {
    __m256i w = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)p));
    return _mm256_castsi256_ps(_mm256_slli_epi32(w, 16));
}

void eng__vec_dot_bf16_avx2(int n, float *restrict s, const void *restrict vx,
                            const void *restrict vy) {
    const eng_bf16 *x = vx, *y = vy;
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    int i = 0;
    for (; i + 16 <= n; i += 16) {
        acc0 = _mm256_fmadd_ps(load_bf16x8(x + i), load_bf16x8(y + i), acc0);
        acc1 = _mm256_fmadd_ps(load_bf16x8(x + i + 8), load_bf16x8(y + i + 8),
                               acc1);
    }
    for (; i + 8 <= n; i += 8)
        acc0 = _mm256_fmadd_ps(load_bf16x8(x + i), load_bf16x8(y + i), acc0);
    float sum = hsum_ps_256(_mm256_add_ps(acc0, acc1));
    for (; i < n; i++)
        sum += eng_bf16_to_fp32(x[i]) * eng_bf16_to_fp32(y[i]);
    *s = sum;
}

/* F16C's vcvtps2ph with imm 0 rounds to nearest even and quiets NaNs the
 * same way as eng_fp32_to_fp16, so this is bit-exact with the reference. */
void eng__from_float_f16_avx2(const float *restrict x, void *restrict vy,
                              int64_t k) {
    eng_fp16 *y = vy;
    int64_t i = 0;
    for (; i + 8 <= k; i += 8)
        _mm_storeu_si128((__m128i *)(y + i),
                         _mm256_cvtps_ph(_mm256_loadu_ps(x + i), 0));
    for (; i < k; i++)
        y[i] = eng_fp32_to_fp16(x[i]);
}

/* The reference's integer rounding done 8 lanes at a time (bit-exact). */
void eng__from_float_bf16_avx2(const float *restrict x, void *restrict vy,
                               int64_t k) {
    eng_bf16 *y = vy;
    const __m256i one = _mm256_set1_epi32(1), bias = _mm256_set1_epi32(0x7fff);
    const __m256i absmask = _mm256_set1_epi32(0x7fffffff);
    const __m256i inf = _mm256_set1_epi32(0x7f800000);
    const __m256i quiet = _mm256_set1_epi32(64);
    int64_t i = 0;
    for (; i + 16 <= k; i += 16) {
        __m256i r[2];
        for (int h = 0; h < 2; h++) {
            __m256i u = _mm256_castps_si256(_mm256_loadu_ps(x + i + 8 * h));
            __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(u, 16), one);
            __m256i rn = _mm256_srli_epi32(
                _mm256_add_epi32(u, _mm256_add_epi32(bias, lsb)), 16);
            __m256i nan = _mm256_cmpgt_epi32(_mm256_and_si256(u, absmask), inf);
            __m256i qn = _mm256_or_si256(_mm256_srli_epi32(u, 16), quiet);
            r[h] = _mm256_blendv_epi8(rn, qn, nan);
        }
        /* packus works per 128-bit lane; permute restores element order. */
        __m256i p = _mm256_packus_epi32(r[0], r[1]);
        p = _mm256_permute4x64_epi64(p, 0xd8);
        _mm256_storeu_si256((__m256i *)(y + i), p);
    }
    for (; i < k; i++)
        y[i] = eng_fp32_to_bf16(x[i]);
}

/* ==== activation quantizers =============================================== */

/* Q8_0 / Q8_1 as ggml's AVX2 path quantizes activations: id = 127/amax and
 * round-half-even (vroundps), where the scalar reference uses 1/d and
 * roundf. The two can differ by one step on exact ties and on the last
 * ulp of x*id; d is identical. The golden logits were produced this way. */
static inline __m256i quantize_block32(const float *x, float *d_out,
                                       __m256i *sum_out) {
    const __m256 sign = _mm256_set1_ps(-0.0f);
    __m256 v0 = _mm256_loadu_ps(x), v1 = _mm256_loadu_ps(x + 8);
    __m256 v2 = _mm256_loadu_ps(x + 16), v3 = _mm256_loadu_ps(x + 24);
    __m256 m = _mm256_max_ps(
        _mm256_max_ps(_mm256_andnot_ps(sign, v0), _mm256_andnot_ps(sign, v1)),
        _mm256_max_ps(_mm256_andnot_ps(sign, v2), _mm256_andnot_ps(sign, v3)));
    const float amax = hmax_ps_256(m);
    *d_out = amax / 127.f;
    const __m256 id = _mm256_set1_ps(amax != 0.0f ? 127.f / amax : 0.0f);
    __m256i i0 = _mm256_cvtps_epi32(_mm256_round_ps(
        _mm256_mul_ps(v0, id), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    __m256i i1 = _mm256_cvtps_epi32(_mm256_round_ps(
        _mm256_mul_ps(v1, id), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    __m256i i2 = _mm256_cvtps_epi32(_mm256_round_ps(
        _mm256_mul_ps(v2, id), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    __m256i i3 = _mm256_cvtps_epi32(_mm256_round_ps(
        _mm256_mul_ps(v3, id), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    if (sum_out)
        *sum_out = _mm256_add_epi32(_mm256_add_epi32(i0, i1),
                                    _mm256_add_epi32(i2, i3));
    return pack_i32x32_to_i8(i0, i1, i2, i3);
}

void eng__quantize_row_q8_0_avx2(const float *restrict x, void *restrict vy,
                                 int64_t k) {
    block_q8_0 *y = vy;
    for (int64_t i = 0; i < k / QK8_0; i++) {
        float d;
        __m256i q = quantize_block32(x + i * QK8_0, &d, NULL);
        y[i].d = eng_fp32_to_fp16(d);
        _mm256_storeu_si256((__m256i *)y[i].qs, q);
    }
}

void eng__quantize_row_q8_1_avx2(const float *restrict x, void *restrict vy,
                                 int64_t k) {
    block_q8_1 *y = vy;
    for (int64_t i = 0; i < k / QK8_1; i++) {
        float d;
        __m256i sum;
        __m256i q = quantize_block32(x + i * QK8_1, &d, &sum);
        y[i].d = eng_fp32_to_fp16(d);
        y[i].s = eng_fp32_to_fp16(d * (float)hsum_i32_256(sum));
        _mm256_storeu_si256((__m256i *)y[i].qs, q);
    }
}

/* ggml quantizes Q8_K activations with the scalar reference on x86, so this
 * must be bit-exact with it: same first-maximum pick, same iscale, and
 * cvtps2dq rounds half-even exactly like nearest_int for |v| <= 127. */
void eng__quantize_row_q8_K_avx2(const float *restrict x, void *restrict vy,
                                 int64_t k) {
    block_q8_K *y = vy;
    const __m256 sign = _mm256_set1_ps(-0.0f);
    for (int64_t i = 0; i < k / QK_K; i++, x += QK_K) {
        __m256 m = _mm256_setzero_ps();
        for (int j = 0; j < QK_K; j += 8)
            m = _mm256_max_ps(m,
                              _mm256_andnot_ps(sign, _mm256_loadu_ps(x + j)));
        const float amax = hmax_ps_256(m);
        if (!(amax > 0)) {
            memset(&y[i], 0, sizeof(y[i]));
            continue;
        }
        /* The reference keeps the first element of largest magnitude, and
         * its sign decides the sign of d. */
        float max = 0;
        const __m256 va = _mm256_set1_ps(amax);
        for (int j = 0; j < QK_K; j += 8) {
            __m256 a = _mm256_andnot_ps(sign, _mm256_loadu_ps(x + j));
            int mask = _mm256_movemask_ps(_mm256_cmp_ps(a, va, _CMP_EQ_OQ));
            if (mask) {
                max = x[j + __builtin_ctz((unsigned)mask)];
                break;
            }
        }
        const float iscale = -127.f / max;
        const __m256 vs = _mm256_set1_ps(iscale);
        const __m256i lim = _mm256_set1_epi32(127);
        for (int j = 0; j < QK_K; j += 32) {
            __m256i q[4];
            for (int h = 0; h < 4; h++) {
                __m256 p = _mm256_mul_ps(_mm256_loadu_ps(x + j + 8 * h), vs);
                q[h] = _mm256_min_epi32(_mm256_cvtps_epi32(p), lim);
            }
            y[i].bsums[j / 16] =
                (int16_t)hsum_i32_256(_mm256_add_epi32(q[0], q[1]));
            y[i].bsums[j / 16 + 1] =
                (int16_t)hsum_i32_256(_mm256_add_epi32(q[2], q[3]));
            _mm256_storeu_si256((__m256i *)(y[i].qs + j),
                                pack_i32x32_to_i8(q[0], q[1], q[2], q[3]));
        }
        y[i].d = 1 / iscale;
    }
}

/* ==== 32-element blocks =================================================== */

void eng__vec_dot_q8_0_q8_0_avx2(int n, float *restrict s,
                                 const void *restrict vx,
                                 const void *restrict vy) {
    dot_q8_0_body(n, s, vx, vy, dot_i8_avx2);
}

void eng__vec_dot_q4_0_q8_0_avx2(int n, float *restrict s,
                                 const void *restrict vx,
                                 const void *restrict vy) {
    dot_q4_0_body(n, s, vx, vy, dot_i8_avx2);
}

void eng__vec_dot_q4_1_q8_1_avx2(int n, float *restrict s,
                                 const void *restrict vx,
                                 const void *restrict vy) {
    const block_q4_1 *x = vx;
    const block_q8_1 *y = vy;
    __m256 acc = _mm256_setzero_ps();
    float summ = 0;
    for (int i = 0; i < n / QK8_1; i++) {
        const __m256 d =
            _mm256_set1_ps(fp16_to_f32_f16c(x[i].d) * fp16_to_f32_f16c(y[i].d));
        summ += fp16_to_f32_f16c(x[i].m) * fp16_to_f32_f16c(y[i].s);
        __m256i qx = nibbles32(x[i].qs); /* unsigned 0..15 */
        __m256i qy = _mm256_loadu_si256((const __m256i *)y[i].qs);
        acc =
            _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(dot_u8i8_avx2(qx, qy)), acc);
    }
    *s = hsum_ps_256(acc) + summ;
}

void eng__vec_dot_q5_0_q8_0_avx2(int n, float *restrict s,
                                 const void *restrict vx,
                                 const void *restrict vy) {
    dot_q5_0_body(n, s, vx, vy, dot_i8_avx2);
}

void eng__vec_dot_q5_1_q8_1_avx2(int n, float *restrict s,
                                 const void *restrict vx,
                                 const void *restrict vy) {
    const block_q5_1 *x = vx;
    const block_q8_1 *y = vy;
    const __m256i bit4 = _mm256_set1_epi8(0x10);
    __m256 acc = _mm256_setzero_ps();
    float summ = 0;
    for (int i = 0; i < n / QK8_1; i++) {
        const __m256 d =
            _mm256_set1_ps(fp16_to_f32_f16c(x[i].d) * fp16_to_f32_f16c(y[i].d));
        summ += fp16_to_f32_f16c(x[i].m) * fp16_to_f32_f16c(y[i].s);
        uint32_t qh;
        memcpy(&qh, x[i].qh, 4);
        __m256i h = _mm256_and_si256(bits32_to_bytes(qh), bit4);
        __m256i qx = _mm256_or_si256(nibbles32(x[i].qs), h);
        __m256i qy = _mm256_loadu_si256((const __m256i *)y[i].qs);
        acc =
            _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(dot_u8i8_avx2(qx, qy)), acc);
    }
    *s = hsum_ps_256(acc) + summ;
}

/* ==== K-quants ============================================================ */

void eng__vec_dot_q4_K_q8_K_avx2(int n, float *restrict s,
                                 const void *restrict vx,
                                 const void *restrict vy) {
    const block_q4_K *x = vx;
    const block_q8_K *y = vy;
    __m256 acc = _mm256_setzero_ps(), accm = _mm256_setzero_ps();
    for (int i = 0; i < n / QK_K; i++) {
        k_prefetch(x + i, sizeof(block_q4_K));
        const float d = fp16_to_f32_f16c(x[i].d) * y[i].d;
        const float dmin = fp16_to_f32_f16c(x[i].dmin) * y[i].d;
        /* scales and mins unpacked in registers (k4_scales_mins) */
        __m128i sc, mn;
        k4_scales_mins(x[i].scales, &sc, &mn);
        const __m256i mins = k4_mins_bsums(k4_mins_twice(mn), y[i].bsums);
        accm = _mm256_fmadd_ps(_mm256_set1_ps(dmin), _mm256_cvtepi32_ps(mins),
                               accm);
        const __m256i sc2 = _mm256_broadcastsi128_si256(sc);
        __m256i sumi = _mm256_setzero_si256();
        K4_CHUNK_UNROLL
        for (int j = 0; j < QK_K / 64; j++) {
            __m256i lo, hi;
            k4_chunk_avx2(x[i].qs, _mm256_setzero_si256(), j, 0, &lo, &hi);
            __m256i y0 =
                _mm256_loadu_si256((const __m256i *)(y[i].qs + 64 * j));
            __m256i y1 =
                _mm256_loadu_si256((const __m256i *)(y[i].qs + 64 * j + 32));
            __m256i p0 = _mm256_madd_epi16(_mm256_maddubs_epi16(lo, y0),
                                           k4_scale_pick16(sc2, 2 * j));
            __m256i p1 = _mm256_madd_epi16(_mm256_maddubs_epi16(hi, y1),
                                           k4_scale_pick16(sc2, 2 * j + 1));
            sumi = _mm256_add_epi32(sumi, _mm256_add_epi32(p0, p1));
        }
        acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sumi), acc);
    }
    *s = hsum_ps_256(_mm256_sub_ps(acc, accm));
}

void eng__vec_dot_q5_K_q8_K_avx2(int n, float *restrict s,
                                 const void *restrict vx,
                                 const void *restrict vy) {
    const block_q5_K *x = vx;
    const block_q8_K *y = vy;
    __m256 acc = _mm256_setzero_ps(), accm = _mm256_setzero_ps();
    for (int i = 0; i < n / QK_K; i++) {
        k_prefetch(x + i, sizeof(block_q5_K));
        const float d = fp16_to_f32_f16c(x[i].d) * y[i].d;
        const float dmin = fp16_to_f32_f16c(x[i].dmin) * y[i].d;
        __m128i sc, mn;
        k4_scales_mins(x[i].scales, &sc, &mn);
        accm = _mm256_fmadd_ps(
            _mm256_set1_ps(dmin),
            _mm256_cvtepi32_ps(k4_mins_bsums(k4_mins_twice(mn), y[i].bsums)),
            accm);
        const __m256i sc2 = _mm256_broadcastsi128_si256(sc);
        const __m256i qh = _mm256_loadu_si256((const __m256i *)x[i].qh);
        __m256i sumi = _mm256_setzero_si256();
        K4_CHUNK_UNROLL
        for (int j = 0; j < QK_K / 64; j++) {
            __m256i lo, hi;
            k4_chunk_avx2(x[i].qs, qh, j, 1, &lo, &hi);
            __m256i y0 =
                _mm256_loadu_si256((const __m256i *)(y[i].qs + 64 * j));
            __m256i y1 =
                _mm256_loadu_si256((const __m256i *)(y[i].qs + 64 * j + 32));
            __m256i p0 = _mm256_madd_epi16(_mm256_maddubs_epi16(lo, y0),
                                           k4_scale_pick16(sc2, 2 * j));
            __m256i p1 = _mm256_madd_epi16(_mm256_maddubs_epi16(hi, y1),
                                           k4_scale_pick16(sc2, 2 * j + 1));
            sumi = _mm256_add_epi32(sumi, _mm256_add_epi32(p0, p1));
        }
        acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sumi), acc);
    }
    *s = hsum_ps_256(_mm256_sub_ps(acc, accm));
}

/* Q6_K: the quants are stored with +32, so dot(q - 32, y) = dot(q, y) -
 * 32 * sum(y); the second term per 16-group is scale * bsum, one madd. */
/* Byte indices that put int16 word 2k of a lane in every word of the low
 * lane and word 2k + 1 in every word of the high lane. */
static const uint8_t q6_scale_pick[4][32] = {
#define Q6_PICK(k)                                                             \
    {                                                                          \
        4 * k, 4 * k + 1, 4 * k, 4 * k + 1, 4 * k, 4 * k + 1, 4 * k,           \
            4 * k + 1, 4 * k, 4 * k + 1, 4 * k, 4 * k + 1, 4 * k, 4 * k + 1,   \
            4 * k, 4 * k + 1, 4 * k + 2, 4 * k + 3, 4 * k + 2, 4 * k + 3,      \
            4 * k + 2, 4 * k + 3, 4 * k + 2, 4 * k + 3, 4 * k + 2, 4 * k + 3,  \
            4 * k + 2, 4 * k + 3, 4 * k + 2, 4 * k + 3, 4 * k + 2, 4 * k + 3   \
    }
    Q6_PICK(0),
    Q6_PICK(1),
    Q6_PICK(2),
    Q6_PICK(3),
#undef Q6_PICK
};

void eng__vec_dot_q6_K_q8_K_avx2(int n, float *restrict s,
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
        __m256i sumi = _mm256_slli_epi32(
            _mm256_madd_epi16(sc16,
                              _mm256_loadu_si256((const __m256i *)y[i].bsums)),
            5);
        sumi = _mm256_sub_epi32(_mm256_setzero_si256(), sumi);
        K4_CHUNK_UNROLL
        for (int h = 0; h < 2; h++) {
            const uint8_t *ql = x[i].ql + 64 * h, *qhp = x[i].qh + 32 * h;
            /* scales 8h..8h+7 as int16 in both lanes */
            const __m256i sch =
                h ? _mm256_permute4x64_epi64(sc16, _MM_SHUFFLE(3, 2, 3, 2))
                  : _mm256_permute4x64_epi64(sc16, _MM_SHUFFLE(1, 0, 1, 0));
            const int8_t *q8 = y[i].qs + 128 * h;
            __m256i q[4];
            q6_quants_avx2(ql, qhp, q);
            K4_CHUNK_UNROLL
            for (int k = 0; k < 4; k++) {
                __m256i yk = _mm256_loadu_si256((const __m256i *)(q8 + 32 * k));
                /* scale 2k in the low lane, 2k + 1 in the high one: one
                 * vpshufb where two byte broadcasts and an insert were */
                __m256i scv = _mm256_shuffle_epi8(
                    sch, _mm256_loadu_si256((const __m256i *)q6_scale_pick[k]));
                sumi = _mm256_add_epi32(
                    sumi,
                    _mm256_madd_epi16(_mm256_maddubs_epi16(q[k], yk), scv));
            }
        }
        acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sumi), acc);
    }
    *s = hsum_ps_256(acc);
}

/* ==== batched dots (one weight row, nrc activation rows) ================== */

/* As in quant_avx512.c, but with 16 vector registers the decoded block and
 * the per-column accumulators fit for at most four columns: NRC_SPLIT4
 * (dots_avx2.h), each column loop unrolled (UNROLL_COLUMNS). */

ALWAYS_INLINE const void *col(const void *vy, int c, size_t st) {
    return (const char *)vy + (size_t)c * st;
}

ALWAYS_INLINE void q8_0_nrc_impl(int n, const int nrc, float *restrict s,
                                 const void *restrict vx,
                                 const void *restrict vy, size_t st) {
    dot_q8_0_nrc_body(n, nrc, s, vx, vy, st, dot_u8i8_avx2);
}
NRC_SPLIT4(eng__vec_dot_q8_0_nrc_avx2, q8_0_nrc_impl)

/* accm is unused: Q6_K has no mins term. */
ALWAYS_INLINE void q6_K_span(int i0, int i1, const int nrc,
                             const void *restrict vx, const void *restrict vy,
                             size_t st, __m256 *acc, __m256 *accm) {
    (void)accm;
    const block_q6_K *x = vx;
    for (int i = i0; i < i1; i++) {
        const __m256i sc16 =
            _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)x[i].scales));
        __m256i sumi[4];
        UNROLL_COLUMNS
        for (int c = 0; c < nrc; c++) {
            const block_q8_K *y = (const block_q8_K *)col(vy, c, st) + i;
            sumi[c] = _mm256_sub_epi32(
                _mm256_setzero_si256(),
                _mm256_slli_epi32(
                    _mm256_madd_epi16(
                        sc16, _mm256_loadu_si256((const __m256i *)y->bsums)),
                    5));
        }
        for (int h = 0; h < 2; h++) {
            const uint8_t *ql = x[i].ql + 64 * h, *qhp = x[i].qh + 32 * h;
            const __m256i sch =
                h ? _mm256_permute4x64_epi64(sc16, _MM_SHUFFLE(3, 2, 3, 2))
                  : _mm256_permute4x64_epi64(sc16, _MM_SHUFFLE(1, 0, 1, 0));
            __m256i q[4];
            q6_quants_avx2(ql, qhp, q);
            for (int k = 0; k < 4; k++) {
                /* as in vec_dot: one vpshufb where two byte broadcasts
                 * and an insert were (one thread, 8 columns of 1536 in
                 * cache: see bench/README) */
                const __m256i scv = _mm256_shuffle_epi8(
                    sch, _mm256_loadu_si256((const __m256i *)q6_scale_pick[k]));
                UNROLL_COLUMNS
                for (int c = 0; c < nrc; c++) {
                    const int8_t *q8 =
                        ((const block_q8_K *)col(vy, c, st) + i)->qs + 128 * h +
                        32 * k;
                    sumi[c] = _mm256_add_epi32(
                        sumi[c],
                        _mm256_madd_epi16(
                            _mm256_maddubs_epi16(
                                q[k], _mm256_loadu_si256((const __m256i *)q8)),
                            scv));
                }
            }
        }
        const float d = fp16_to_f32_f16c(x[i].d);
        UNROLL_COLUMNS
        for (int c = 0; c < nrc; c++) {
            const block_q8_K *y = (const block_q8_K *)col(vy, c, st) + i;
            acc[c] = _mm256_fmadd_ps(_mm256_set1_ps(d * y->d),
                                     _mm256_cvtepi32_ps(sumi[c]), acc[c]);
        }
    }
}

ALWAYS_INLINE void q6_K_nrc_impl(int n, const int nrc, float *restrict s,
                                 const void *restrict vx,
                                 const void *restrict vy, size_t st) {
    __m256 acc[4];
    UNROLL_COLUMNS
    for (int c = 0; c < nrc; c++)
        acc[c] = _mm256_setzero_ps();
    q6_K_span(0, n / QK_K, nrc, vx, vy, st, acc, NULL);
    UNROLL_COLUMNS
    for (int c = 0; c < nrc; c++)
        s[c] = hsum_ps_256(acc[c]);
}
NRC_SPLIT4(eng__vec_dot_q6_K_nrc_avx2, q6_K_nrc_impl)
K_TILE_AVX2(q6_K, block_q6_K, 0, eng__vec_dot_q6_K_nrc_avx2,
            eng__vec_dot_q6_K_tile_avx2)

/* ==== table =============================================================== */

const eng_arch_kernels eng__kernels_avx2 = {
    .isa = "avx2",
    .vec_dot =
        {
            [ENG_TYPE_F32] = eng__vec_dot_f32_avx2,
            [ENG_TYPE_F16] = eng__vec_dot_f16_avx2,
            [ENG_TYPE_BF16] = eng__vec_dot_bf16_avx2,
            [ENG_TYPE_Q8_0] = eng__vec_dot_q8_0_q8_0_avx2,
            [ENG_TYPE_Q4_0] = eng__vec_dot_q4_0_q8_0_avx2,
            [ENG_TYPE_Q4_1] = eng__vec_dot_q4_1_q8_1_avx2,
            [ENG_TYPE_Q5_0] = eng__vec_dot_q5_0_q8_0_avx2,
            [ENG_TYPE_Q5_1] = eng__vec_dot_q5_1_q8_1_avx2,
            [ENG_TYPE_Q4_K] = eng__vec_dot_q4_K_q8_K_avx2,
            [ENG_TYPE_Q5_K] = eng__vec_dot_q5_K_q8_K_avx2,
            [ENG_TYPE_Q6_K] = eng__vec_dot_q6_K_q8_K_avx2,
        },
    .vec_dot_nrc =
        {
            [ENG_TYPE_Q8_0] = eng__vec_dot_q8_0_nrc_avx2,
            [ENG_TYPE_Q6_K] = eng__vec_dot_q6_K_nrc_avx2,
        },
    .vec_dot_tile =
        {
            [ENG_TYPE_Q6_K] = eng__vec_dot_q6_K_tile_avx2,
        },
    .from_float =
        {
            [ENG_TYPE_F16] = eng__from_float_f16_avx2,
            [ENG_TYPE_BF16] = eng__from_float_bf16_avx2,
            [ENG_TYPE_Q8_0] = eng__quantize_row_q8_0_avx2,
            [ENG_TYPE_Q8_1] = eng__quantize_row_q8_1_avx2,
            [ENG_TYPE_Q8_K] = eng__quantize_row_q8_K_avx2,
        },
};

#endif
