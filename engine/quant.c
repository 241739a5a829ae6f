/*
 * quant.c — the type-traits table and the scalar reference code of every
 * tensor format. SIMD variants live in arch/ and are installed by
 * eng_quant_init().
 *
 * The quantizers follow ggml's reference algorithms (ggml-quants.c) so that
 * `nib quantize` writes the same bytes as llama.cpp's quantizer without an
 * importance matrix, and the activation quantizers follow what ggml's CPU
 * backend does before a matmul, because the golden logits come from there.
 */
#include "quant.h"

#include "common/nib.h"

#include <float.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "arch/quant_arch.h"

/* ==== scalar conversions ================================================== */

static inline uint32_t f32_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

static inline float f32_from_bits(uint32_t u) {
    float f;
    memcpy(&f, &u, 4);
    return f;
}

float eng_fp16_to_fp32(eng_fp16 h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t e = (h >> 10) & 0x1f;
    uint32_t m = h & 0x3ff;
    if (e == 0x1f) /* inf keeps m == 0; NaN keeps its payload */
        return f32_from_bits(sign | 0x7f800000u | (m << 13));
    if (e == 0) {
        /* Subnormal half: m * 2^-24 is exact in float. */
        float v = (float)m * 0x1p-24f;
        return sign ? -v : v;
    }
    return f32_from_bits(sign | ((e + 112) << 23) | (m << 13));
}

eng_fp16 eng_fp32_to_fp16(float f) {
    uint32_t u = f32_bits(f);
    uint16_t sign = (uint16_t)((u >> 16) & 0x8000);
    u &= 0x7fffffffu;
    if (u > 0x7f800000u) /* NaN: keep it quiet and keep the top payload */
        return sign | 0x7e00 | (uint16_t)((u >> 13) & 0x3ff);
    if (u >= 0x38800000u) {
        /* Normal in half precision unless rounding overflows: round to
         * nearest even at bit 13; a mantissa carry bumps the exponent,
         * which is exactly the right result. */
        u += 0xfffu + ((u >> 13) & 1);
        if (u >= 0x47800000u)
            return sign | 0x7c00;
        return sign | (uint16_t)((u - 0x38000000u) >> 13);
    }
    /* Below 2^-14 the result is a half subnormal (units of 2^-24). */
    uint32_t e = u >> 23;
    if (e < 102) /* below 2^-25: rounds to zero */
        return sign;
    uint32_t m = (u & 0x7fffffu) | 0x800000u;
    uint32_t shift = 126 - e; /* 14..24 */
    uint32_t q = m >> shift;
    uint32_t rem = m & ((1u << shift) - 1);
    uint32_t half = 1u << (shift - 1);
    if (rem > half || (rem == half && (q & 1)))
        q++; /* may carry into the smallest normal: still the right code */
    return sign | (uint16_t)q;
}

float eng_bf16_to_fp32(eng_bf16 h) {
    return f32_from_bits((uint32_t)h << 16);
}

eng_bf16 eng_fp32_to_bf16(float f) {
    uint32_t u = f32_bits(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) /* NaN: force quiet, never inf */
        return (eng_bf16)((u >> 16) | 64);
    return (eng_bf16)((u + 0x7fffu + ((u >> 16) & 1)) >> 16);
}

#define FP16(h) eng_fp16_to_fp32(h)

/* Round to nearest, ties to even, for |f| <= 2^22 (ggml's nearest_int):
 * adding 1.5 * 2^23 leaves the rounded integer in the low mantissa bits. */
static inline int nearest_int(float f) {
    float v = f + 12582912.f;
    int32_t i;
    memcpy(&i, &v, 4);
    return (i & 0x007fffff) - 0x00400000;
}

#define MIN(a, b) ((a) < (b) ? (a) : (b))
#define MAX(a, b) ((a) > (b) ? (a) : (b))

/* ==== float formats ======================================================= */

static void copy_row_f32(const float *restrict x, void *restrict y, int64_t k) {
    memcpy(y, x, (size_t)k * sizeof(float));
}

static void to_float_f32(const void *restrict x, float *restrict y, int64_t k) {
    memcpy(y, x, (size_t)k * sizeof(float));
}

static void from_float_f16(const float *restrict x, void *restrict vy,
                           int64_t k) {
    eng_fp16 *y = vy;
    for (int64_t i = 0; i < k; i++)
        y[i] = eng_fp32_to_fp16(x[i]);
}

static void to_float_f16(const void *restrict vx, float *restrict y,
                         int64_t k) {
    const eng_fp16 *x = vx;
    for (int64_t i = 0; i < k; i++)
        y[i] = eng_fp16_to_fp32(x[i]);
}

static void from_float_bf16(const float *restrict x, void *restrict vy,
                            int64_t k) {
    eng_bf16 *y = vy;
    for (int64_t i = 0; i < k; i++)
        y[i] = eng_fp32_to_bf16(x[i]);
}

static void to_float_bf16(const void *restrict vx, float *restrict y,
                          int64_t k) {
    const eng_bf16 *x = vx;
    for (int64_t i = 0; i < k; i++)
        y[i] = eng_bf16_to_fp32(x[i]);
}

/* The float dots accumulate in double, as ggml's scalar path does, so the
 * reference is more accurate than any SIMD variant it judges. */
static void vec_dot_f32(int n, float *restrict s, const void *restrict vx,
                        const void *restrict vy) {
    const float *x = vx, *y = vy;
    double sum = 0;
    for (int i = 0; i < n; i++)
        sum += (double)x[i] * y[i];
    *s = (float)sum;
}

static void vec_dot_f16(int n, float *restrict s, const void *restrict vx,
                        const void *restrict vy) {
    const eng_fp16 *x = vx, *y = vy;
    double sum = 0;
    for (int i = 0; i < n; i++)
        sum += (double)(FP16(x[i]) * FP16(y[i]));
    *s = (float)sum;
}

static void vec_dot_bf16(int n, float *restrict s, const void *restrict vx,
                         const void *restrict vy) {
    const eng_bf16 *x = vx, *y = vy;
    double sum = 0;
    for (int i = 0; i < n; i++)
        sum += (double)(eng_bf16_to_fp32(x[i]) * eng_bf16_to_fp32(y[i]));
    *s = (float)sum;
}

/* ==== 32-element block formats: quantize ================================== */

/* Symmetric 4-bit: the value of largest magnitude maps to -8 exactly, so
 * the opposite side gets the full +7 range (ggml's choice). */
static void quantize_row_q4_0_ref(const float *restrict x, void *restrict vy,
                                  int64_t k) {
    block_q4_0 *y = vy;
    for (int64_t i = 0; i < k / QK4_0; i++, x += QK4_0) {
        float amax = 0, max = 0;
        for (int j = 0; j < QK4_0; j++) {
            if (amax < fabsf(x[j])) {
                amax = fabsf(x[j]);
                max = x[j];
            }
        }
        const float d = max / -8;
        const float id = d ? 1.0f / d : 0.0f;
        y[i].d = eng_fp32_to_fp16(d);
        for (int j = 0; j < QK4_0 / 2; j++) {
            /* Truncating (int8_t) after +8.5 rounds half up, as ggml. */
            uint8_t q0 = MIN(15, (int8_t)(x[j] * id + 8.5f));
            uint8_t q1 = MIN(15, (int8_t)(x[j + QK4_0 / 2] * id + 8.5f));
            y[i].qs[j] = (uint8_t)(q0 | (q1 << 4));
        }
    }
}

static void quantize_row_q4_1_ref(const float *restrict x, void *restrict vy,
                                  int64_t k) {
    block_q4_1 *y = vy;
    for (int64_t i = 0; i < k / QK4_1; i++, x += QK4_1) {
        float min = FLT_MAX, max = -FLT_MAX;
        for (int j = 0; j < QK4_1; j++) {
            if (x[j] < min)
                min = x[j];
            if (x[j] > max)
                max = x[j];
        }
        const float d = (max - min) / 15;
        const float id = d ? 1.0f / d : 0.0f;
        y[i].d = eng_fp32_to_fp16(d);
        y[i].m = eng_fp32_to_fp16(min);
        for (int j = 0; j < QK4_1 / 2; j++) {
            uint8_t q0 = MIN(15, (int8_t)((x[j] - min) * id + 0.5f));
            uint8_t q1 =
                MIN(15, (int8_t)((x[j + QK4_1 / 2] - min) * id + 0.5f));
            y[i].qs[j] = (uint8_t)(q0 | (q1 << 4));
        }
    }
}

static void quantize_row_q5_0_ref(const float *restrict x, void *restrict vy,
                                  int64_t k) {
    block_q5_0 *y = vy;
    for (int64_t i = 0; i < k / QK5_0; i++, x += QK5_0) {
        float amax = 0, max = 0;
        for (int j = 0; j < QK5_0; j++) {
            if (amax < fabsf(x[j])) {
                amax = fabsf(x[j]);
                max = x[j];
            }
        }
        const float d = max / -16;
        const float id = d ? 1.0f / d : 0.0f;
        y[i].d = eng_fp32_to_fp16(d);
        uint32_t qh = 0;
        for (int j = 0; j < QK5_0 / 2; j++) {
            uint8_t q0 = MIN(31, (int8_t)(x[j] * id + 16.5f));
            uint8_t q1 = MIN(31, (int8_t)(x[j + QK5_0 / 2] * id + 16.5f));
            y[i].qs[j] = (uint8_t)((q0 & 0xf) | ((q1 & 0xf) << 4));
            /* qh bit j holds element j's 5th bit, bit j+16 element j+16's. */
            qh |= (uint32_t)((q0 >> 4) & 1) << j;
            qh |= (uint32_t)((q1 >> 4) & 1) << (j + QK5_0 / 2);
        }
        memcpy(y[i].qh, &qh, 4);
    }
}

static void quantize_row_q5_1_ref(const float *restrict x, void *restrict vy,
                                  int64_t k) {
    block_q5_1 *y = vy;
    for (int64_t i = 0; i < k / QK5_1; i++, x += QK5_1) {
        float min = FLT_MAX, max = -FLT_MAX;
        for (int j = 0; j < QK5_1; j++) {
            if (x[j] < min)
                min = x[j];
            if (x[j] > max)
                max = x[j];
        }
        const float d = (max - min) / 31;
        const float id = d ? 1.0f / d : 0.0f;
        y[i].d = eng_fp32_to_fp16(d);
        y[i].m = eng_fp32_to_fp16(min);
        uint32_t qh = 0;
        for (int j = 0; j < QK5_1 / 2; j++) {
            /* No clamp: (x - min) * id <= 31 by construction (ggml). */
            uint8_t q0 = (uint8_t)(int8_t)((x[j] - min) * id + 0.5f);
            uint8_t q1 =
                (uint8_t)(int8_t)((x[j + QK5_1 / 2] - min) * id + 0.5f);
            y[i].qs[j] = (uint8_t)((q0 & 0xf) | ((q1 & 0xf) << 4));
            qh |= (uint32_t)((q0 >> 4) & 1) << j;
            qh |= (uint32_t)((q1 >> 4) & 1) << (j + QK5_1 / 2);
        }
        memcpy(y[i].qh, &qh, 4);
    }
}

static void quantize_row_q8_0_ref(const float *restrict x, void *restrict vy,
                                  int64_t k) {
    block_q8_0 *y = vy;
    for (int64_t i = 0; i < k / QK8_0; i++, x += QK8_0) {
        float amax = 0;
        for (int j = 0; j < QK8_0; j++)
            amax = MAX(amax, fabsf(x[j]));
        const float d = amax / 127;
        const float id = d ? 1.0f / d : 0.0f;
        y[i].d = eng_fp32_to_fp16(d);
        for (int j = 0; j < QK8_0; j++)
            y[i].qs[j] = (int8_t)roundf(x[j] * id);
    }
}

static void quantize_row_q8_1_ref(const float *restrict x, void *restrict vy,
                                  int64_t k) {
    block_q8_1 *y = vy;
    for (int64_t i = 0; i < k / QK8_1; i++, x += QK8_1) {
        float amax = 0;
        for (int j = 0; j < QK8_1; j++)
            amax = MAX(amax, fabsf(x[j]));
        const float d = amax / 127;
        const float id = d ? 1.0f / d : 0.0f;
        y[i].d = eng_fp32_to_fp16(d);
        int sum = 0;
        for (int j = 0; j < QK8_1; j++) {
            y[i].qs[j] = (int8_t)roundf(x[j] * id);
            sum += y[i].qs[j];
        }
        /* s lets Q4_1/Q5_1 dots add the weight minimum in one multiply. */
        y[i].s = eng_fp32_to_fp16(sum * d);
    }
}

/* ==== 32-element block formats: dequantize ================================ */

static void dequantize_row_q4_0(const void *restrict vx, float *restrict y,
                                int64_t k) {
    const block_q4_0 *x = vx;
    for (int64_t i = 0; i < k / QK4_0; i++, y += QK4_0) {
        const float d = FP16(x[i].d);
        for (int j = 0; j < QK4_0 / 2; j++) {
            y[j] = ((x[i].qs[j] & 0xf) - 8) * d;
            y[j + QK4_0 / 2] = ((x[i].qs[j] >> 4) - 8) * d;
        }
    }
}

static void dequantize_row_q4_1(const void *restrict vx, float *restrict y,
                                int64_t k) {
    const block_q4_1 *x = vx;
    for (int64_t i = 0; i < k / QK4_1; i++, y += QK4_1) {
        const float d = FP16(x[i].d), m = FP16(x[i].m);
        for (int j = 0; j < QK4_1 / 2; j++) {
            y[j] = (x[i].qs[j] & 0xf) * d + m;
            y[j + QK4_1 / 2] = (x[i].qs[j] >> 4) * d + m;
        }
    }
}

static void dequantize_row_q5_0(const void *restrict vx, float *restrict y,
                                int64_t k) {
    const block_q5_0 *x = vx;
    for (int64_t i = 0; i < k / QK5_0; i++, y += QK5_0) {
        const float d = FP16(x[i].d);
        uint32_t qh;
        memcpy(&qh, x[i].qh, 4);
        for (int j = 0; j < QK5_0 / 2; j++) {
            int h0 = (qh >> j) & 1, h1 = (qh >> (j + 16)) & 1;
            y[j] = (((x[i].qs[j] & 0xf) | (h0 << 4)) - 16) * d;
            y[j + 16] = (((x[i].qs[j] >> 4) | (h1 << 4)) - 16) * d;
        }
    }
}

static void dequantize_row_q5_1(const void *restrict vx, float *restrict y,
                                int64_t k) {
    const block_q5_1 *x = vx;
    for (int64_t i = 0; i < k / QK5_1; i++, y += QK5_1) {
        const float d = FP16(x[i].d), m = FP16(x[i].m);
        uint32_t qh;
        memcpy(&qh, x[i].qh, 4);
        for (int j = 0; j < QK5_1 / 2; j++) {
            int h0 = (qh >> j) & 1, h1 = (qh >> (j + 16)) & 1;
            y[j] = ((x[i].qs[j] & 0xf) | (h0 << 4)) * d + m;
            y[j + 16] = ((x[i].qs[j] >> 4) | (h1 << 4)) * d + m;
        }
    }
}

static void dequantize_row_q8_0(const void *restrict vx, float *restrict y,
                                int64_t k) {
    const block_q8_0 *x = vx;
    for (int64_t i = 0; i < k / QK8_0; i++, y += QK8_0) {
        const float d = FP16(x[i].d);
        for (int j = 0; j < QK8_0; j++)
            y[j] = x[i].qs[j] * d;
    }
}

static void dequantize_row_q8_1(const void *restrict vx, float *restrict y,
                                int64_t k) {
    const block_q8_1 *x = vx;
    for (int64_t i = 0; i < k / QK8_1; i++, y += QK8_1) {
        const float d = FP16(x[i].d);
        for (int j = 0; j < QK8_1; j++)
            y[j] = x[i].qs[j] * d;
    }
}

/* ==== 32-element block formats: dot products ============================== */

static void vec_dot_q4_0_q8_0(int n, float *restrict s, const void *restrict vx,
                              const void *restrict vy) {
    const block_q4_0 *x = vx;
    const block_q8_0 *y = vy;
    float sum = 0;
    for (int i = 0; i < n / QK8_0; i++) {
        int sumi = 0;
        for (int j = 0; j < QK4_0 / 2; j++) {
            sumi += ((x[i].qs[j] & 0xf) - 8) * y[i].qs[j];
            sumi += ((x[i].qs[j] >> 4) - 8) * y[i].qs[j + 16];
        }
        sum += sumi * (FP16(x[i].d) * FP16(y[i].d));
    }
    *s = sum;
}

static void vec_dot_q4_1_q8_1(int n, float *restrict s, const void *restrict vx,
                              const void *restrict vy) {
    const block_q4_1 *x = vx;
    const block_q8_1 *y = vy;
    float sum = 0;
    for (int i = 0; i < n / QK8_1; i++) {
        int sumi = 0;
        for (int j = 0; j < QK4_1 / 2; j++) {
            sumi += (x[i].qs[j] & 0xf) * y[i].qs[j];
            sumi += (x[i].qs[j] >> 4) * y[i].qs[j + 16];
        }
        /* sum((q*d + m) * yq*dy) = d*dy*sum(q*yq) + m * (dy*sum(yq)) */
        sum +=
            sumi * (FP16(x[i].d) * FP16(y[i].d)) + FP16(x[i].m) * FP16(y[i].s);
    }
    *s = sum;
}

static void vec_dot_q5_0_q8_0(int n, float *restrict s, const void *restrict vx,
                              const void *restrict vy) {
    const block_q5_0 *x = vx;
    const block_q8_0 *y = vy;
    float sum = 0;
    for (int i = 0; i < n / QK8_0; i++) {
        uint32_t qh;
        memcpy(&qh, x[i].qh, 4);
        int sumi = 0;
        for (int j = 0; j < QK5_0 / 2; j++) {
            int h0 = (qh >> j) & 1, h1 = (qh >> (j + 16)) & 1;
            sumi += (((x[i].qs[j] & 0xf) | (h0 << 4)) - 16) * y[i].qs[j];
            sumi += (((x[i].qs[j] >> 4) | (h1 << 4)) - 16) * y[i].qs[j + 16];
        }
        sum += sumi * (FP16(x[i].d) * FP16(y[i].d));
    }
    *s = sum;
}

static void vec_dot_q5_1_q8_1(int n, float *restrict s, const void *restrict vx,
                              const void *restrict vy) {
    const block_q5_1 *x = vx;
    const block_q8_1 *y = vy;
    float sum = 0;
    for (int i = 0; i < n / QK8_1; i++) {
        uint32_t qh;
        memcpy(&qh, x[i].qh, 4);
        int sumi = 0;
        for (int j = 0; j < QK5_1 / 2; j++) {
            int h0 = (qh >> j) & 1, h1 = (qh >> (j + 16)) & 1;
            sumi += ((x[i].qs[j] & 0xf) | (h0 << 4)) * y[i].qs[j];
            sumi += ((x[i].qs[j] >> 4) | (h1 << 4)) * y[i].qs[j + 16];
        }
        sum +=
            sumi * (FP16(x[i].d) * FP16(y[i].d)) + FP16(x[i].m) * FP16(y[i].s);
    }
    *s = sum;
}

static void vec_dot_q8_0_q8_0(int n, float *restrict s, const void *restrict vx,
                              const void *restrict vy) {
    const block_q8_0 *x = vx;
    const block_q8_0 *y = vy;
    float sum = 0;
    for (int i = 0; i < n / QK8_0; i++) {
        int sumi = 0;
        for (int j = 0; j < QK8_0; j++)
            sumi += x[i].qs[j] * y[i].qs[j];
        sum += sumi * (FP16(x[i].d) * FP16(y[i].d));
    }
    *s = sum;
}

/* ==== K-quants: helpers =================================================== */

/* Q4_K/Q5_K pack 8 (scale, min) pairs of 6 bits into 12 bytes: bytes 0-3
 * hold scales 0-3 and bytes 4-7 mins 0-3 in their low 6 bits; bytes 8-11
 * hold scale j (low nibble) and min j (high nibble) of sub-blocks 4-7,
 * whose top 2 bits sit in bits 6-7 of bytes j-4 (scale) and j (min). */
static inline void get_scale_min_k4(int j, const uint8_t *q, uint8_t *d,
                                    uint8_t *m) {
    if (j < 4) {
        *d = q[j] & 63;
        *m = q[j + 4] & 63;
    } else {
        *d = (uint8_t)((q[j + 4] & 0xf) | ((q[j - 4] >> 6) << 4));
        *m = (uint8_t)((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
    }
}

void eng__unpack_scales_k4(const uint8_t *q, uint8_t sc[8], uint8_t mn[8]) {
    for (int j = 0; j < 8; j++)
        get_scale_min_k4(j, q, &sc[j], &mn[j]);
}

/* Fit x ~ scale * L + min (L in 0..nmax, min <= 0) minimizing the weighted
 * squared error: start from the plain min/max grid, then try nstep+1
 * stretched grids and solve the 2x2 least-squares system for each
 * (ggml's make_qkx2_quants with use_mad = false). Returns the scale and
 * stores -min in *the_min. */
static float make_qkx2_quants(int n, int nmax, const float *restrict x,
                              const float *restrict w, uint8_t *restrict L,
                              float *restrict the_min, uint8_t *restrict Laux,
                              float rmin, float rdelta, int nstep) {
    float min = x[0], max = x[0];
    float sum_w = w[0], sum_x = w[0] * x[0];
    for (int i = 1; i < n; i++) {
        if (x[i] < min)
            min = x[i];
        if (x[i] > max)
            max = x[i];
        sum_w += w[i];
        sum_x += w[i] * x[i];
    }
    if (min > 0)
        min = 0;
    if (max == min) {
        memset(L, 0, (size_t)n);
        *the_min = -min;
        return 0.f;
    }
    float iscale = nmax / (max - min);
    float scale = 1 / iscale;
    float best_error = 0;
    for (int i = 0; i < n; i++) {
        int l = nearest_int(iscale * (x[i] - min));
        L[i] = (uint8_t)MAX(0, MIN(nmax, l));
        float diff = scale * L[i] + min - x[i];
        best_error += w[i] * diff * diff;
    }
    for (int is = 0; is <= nstep; is++) {
        iscale = (rmin + rdelta * is + nmax) / (max - min);
        float sum_l = 0, sum_l2 = 0, sum_xl = 0;
        for (int i = 0; i < n; i++) {
            int l = nearest_int(iscale * (x[i] - min));
            l = MAX(0, MIN(nmax, l));
            Laux[i] = (uint8_t)l;
            sum_l += w[i] * l;
            sum_l2 += w[i] * l * l;
            sum_xl += w[i] * l * x[i];
        }
        float D = sum_w * sum_l2 - sum_l * sum_l;
        if (D > 0) {
            float this_scale = (sum_w * sum_xl - sum_x * sum_l) / D;
            float this_min = (sum_l2 * sum_x - sum_l * sum_xl) / D;
            if (this_min > 0) {
                /* A positive offset is not representable: refit the scale
                 * alone with min pinned at 0. */
                this_min = 0;
                this_scale = sum_xl / sum_l2;
            }
            float cur_error = 0;
            for (int i = 0; i < n; i++) {
                float diff = this_scale * Laux[i] + this_min - x[i];
                cur_error += w[i] * diff * diff;
            }
            if (cur_error < best_error) {
                memcpy(L, Laux, (size_t)n);
                best_error = cur_error;
                scale = this_scale;
                min = this_min;
            }
        }
    }
    *the_min = -min;
    return scale;
}

#define GROUP_MAX_EPS 1e-15f

/* Symmetric fit for Q6_K (ggml's make_qx_quants, rmse_type 1, no importance
 * weights): L[i] in 0..2*nmax-1 holds l + nmax. Tries 18 scales around
 * -nmax/max and keeps the one with the best weighted (x^2) least-squares
 * fit. */
static float make_qx_quants(int n, int nmax, const float *restrict x,
                            int8_t *restrict L) {
    float max = 0, amax = 0;
    for (int i = 0; i < n; i++) {
        float ax = fabsf(x[i]);
        if (ax > amax) {
            amax = ax;
            max = x[i];
        }
    }
    if (amax < GROUP_MAX_EPS) {
        memset(L, 0, (size_t)n);
        return 0.f;
    }
    float iscale = -nmax / max;
    float sumlx = 0, suml2 = 0;
    for (int i = 0; i < n; i++) {
        int l = nearest_int(iscale * x[i]);
        l = MAX(-nmax, MIN(nmax - 1, l));
        L[i] = (int8_t)(l + nmax);
        float w = x[i] * x[i];
        sumlx += w * x[i] * l;
        suml2 += w * l * l;
    }
    float scale = suml2 ? sumlx / suml2 : 0.0f;
    float best = scale * sumlx;
    for (int is = -9; is <= 9; is++) {
        if (is == 0)
            continue;
        iscale = -(nmax + 0.1f * is) / max;
        sumlx = suml2 = 0;
        for (int i = 0; i < n; i++) {
            int l = nearest_int(iscale * x[i]);
            l = MAX(-nmax, MIN(nmax - 1, l));
            float w = x[i] * x[i];
            sumlx += w * x[i] * l;
            suml2 += w * l * l;
        }
        if (suml2 > 0 && sumlx * sumlx > best * suml2) {
            for (int i = 0; i < n; i++) {
                int l = nearest_int(iscale * x[i]);
                L[i] = (int8_t)(nmax + MAX(-nmax, MIN(nmax - 1, l)));
            }
            scale = sumlx / suml2;
            best = scale * sumlx;
        }
    }
    return scale;
}

/* ==== K-quants: quantize ================================================== */

/* Shared by Q4_K and Q5_K: per 32-element sub-block fit (scale, min) with
 * weights |x| + rms, then quantize the 8 scales and 8 mins to 6 bits against
 * two fp16 super-scales, and requantize x with the rounded scales. Writes
 * d, dmin, scales and L[QK_K] (values 0..nmax). */
static void quantize_k4_scales(const float *restrict x, int nmax, float rmin,
                               int nstep, eng_fp16 *d_out, eng_fp16 *dmin_out,
                               uint8_t scales_out[K_SCALE_SIZE],
                               uint8_t L[QK_K]) {
    uint8_t Laux[32];
    float w[32], mins[QK_K / 32], scales[QK_K / 32];
    float max_scale = 0, max_min = 0;
    for (int j = 0; j < QK_K / 32; j++) {
        const float *xb = x + 32 * j;
        float sum_x2 = 0;
        for (int l = 0; l < 32; l++)
            sum_x2 += xb[l] * xb[l];
        float av_x = sqrtf(sum_x2 / 32);
        for (int l = 0; l < 32; l++)
            w[l] = av_x + fabsf(xb[l]);
        scales[j] = make_qkx2_quants(32, nmax, xb, w, L + 32 * j, &mins[j],
                                     Laux, rmin, 0.1f, nstep);
        max_scale = MAX(max_scale, scales[j]);
        max_min = MAX(max_min, mins[j]);
    }
    float inv_scale = max_scale > 0 ? 63.f / max_scale : 0.f;
    float inv_min = max_min > 0 ? 63.f / max_min : 0.f;
    uint8_t *q = scales_out;
    memset(q, 0, K_SCALE_SIZE);
    for (int j = 0; j < QK_K / 32; j++) {
        uint8_t ls = (uint8_t)MIN(63, nearest_int(inv_scale * scales[j]));
        uint8_t lm = (uint8_t)MIN(63, nearest_int(inv_min * mins[j]));
        if (j < 4) {
            q[j] = ls;
            q[j + 4] = lm;
        } else {
            q[j + 4] = (uint8_t)((ls & 0xf) | ((lm & 0xf) << 4));
            q[j - 4] |= (uint8_t)((ls >> 4) << 6);
            q[j] |= (uint8_t)((lm >> 4) << 6);
        }
    }
    *d_out = eng_fp32_to_fp16(max_scale / 63.f);
    *dmin_out = eng_fp32_to_fp16(max_min / 63.f);
    const float dd = FP16(*d_out), dm = FP16(*dmin_out);
    for (int j = 0; j < QK_K / 32; j++) {
        uint8_t sc, m;
        get_scale_min_k4(j, q, &sc, &m);
        const float d = dd * sc;
        if (!d) /* keep the fit's L: every value dequantizes to -dm*m */
            continue;
        const float off = dm * m;
        for (int l = 0; l < 32; l++) {
            int v = nearest_int((x[32 * j + l] + off) / d);
            L[32 * j + l] = (uint8_t)MAX(0, MIN(nmax, v));
        }
    }
}

static void quantize_row_q4_K_ref(const float *restrict x, void *restrict vy,
                                  int64_t k) {
    block_q4_K *y = vy;
    uint8_t L[QK_K];
    for (int64_t i = 0; i < k / QK_K; i++, x += QK_K) {
        quantize_k4_scales(x, 15, -1.f, 20, &y[i].d, &y[i].dmin, y[i].scales,
                           L);
        /* 64 elements per 32 bytes: low nibbles first half, high second. */
        uint8_t *q = y[i].qs;
        for (int j = 0; j < QK_K; j += 64, q += 32)
            for (int l = 0; l < 32; l++)
                q[l] = (uint8_t)(L[j + l] | (L[j + l + 32] << 4));
    }
}

static void quantize_row_q5_K_ref(const float *restrict x, void *restrict vy,
                                  int64_t k) {
    block_q5_K *y = vy;
    uint8_t L[QK_K];
    for (int64_t i = 0; i < k / QK_K; i++, x += QK_K) {
        quantize_k4_scales(x, 31, -0.5f, 15, &y[i].d, &y[i].dmin, y[i].scales,
                           L);
        /* Like Q4_K for the low nibbles; the 5th bit of element n*64+j goes
         * to qh[j] bit 2n, of element n*64+32+j to bit 2n+1. */
        uint8_t *qh = y[i].qh, *ql = y[i].qs;
        memset(qh, 0, QK_K / 8);
        uint8_t m1 = 1, m2 = 2;
        for (int n = 0; n < QK_K; n += 64, ql += 32) {
            for (int j = 0; j < 32; j++) {
                int l1 = L[n + j], l2 = L[n + j + 32];
                if (l1 > 15) {
                    l1 -= 16;
                    qh[j] |= m1;
                }
                if (l2 > 15) {
                    l2 -= 16;
                    qh[j] |= m2;
                }
                ql[j] = (uint8_t)(l1 | (l2 << 4));
            }
            m1 <<= 2;
            m2 <<= 2;
        }
    }
}

static void quantize_row_q6_K_ref(const float *restrict x, void *restrict vy,
                                  int64_t k) {
    block_q6_K *y = vy;
    int8_t L[QK_K];
    float scales[QK_K / 16];
    for (int64_t i = 0; i < k / QK_K; i++, x += QK_K) {
        float max_scale = 0, max_abs_scale = 0;
        for (int ib = 0; ib < QK_K / 16; ib++) {
            scales[ib] = make_qx_quants(16, 32, x + 16 * ib, L + 16 * ib);
            if (fabsf(scales[ib]) > max_abs_scale) {
                max_abs_scale = fabsf(scales[ib]);
                max_scale = scales[ib];
            }
        }
        if (max_abs_scale < GROUP_MAX_EPS) {
            memset(&y[i], 0, sizeof(y[i]));
            continue;
        }
        /* The largest sub-block scale maps to -128 so the int8 scales use
         * their full range (the sign of d absorbs the sign of max). */
        float iscale = -128.f / max_scale;
        y[i].d = eng_fp32_to_fp16(1 / iscale);
        for (int ib = 0; ib < QK_K / 16; ib++)
            y[i].scales[ib] =
                (int8_t)MIN(127, nearest_int(iscale * scales[ib]));
        for (int j = 0; j < QK_K / 16; j++) {
            const float d = FP16(y[i].d) * y[i].scales[j];
            if (!d)
                continue;
            for (int l = 0; l < 16; l++) {
                int v = nearest_int(x[16 * j + l] / d);
                L[16 * j + l] = (int8_t)(MAX(-32, MIN(31, v)) + 32);
            }
        }
        /* Per 128 elements: ql[l] = q[l] | q[l+64] << 4, ql[l+32] = q[l+32]
         * | q[l+96] << 4 (low 4 bits); qh[l] packs bits 4-5 of q[l], q[l+32],
         * q[l+64], q[l+96] at bit offsets 0, 2, 4, 6. */
        uint8_t *ql = y[i].ql, *qh = y[i].qh;
        for (int j = 0; j < QK_K; j += 128, ql += 64, qh += 32) {
            for (int l = 0; l < 32; l++) {
                uint8_t q1 = (uint8_t)L[j + l], q2 = (uint8_t)L[j + l + 32];
                uint8_t q3 = (uint8_t)L[j + l + 64],
                        q4 = (uint8_t)L[j + l + 96];
                ql[l] = (uint8_t)((q1 & 0xf) | ((q3 & 0xf) << 4));
                ql[l + 32] = (uint8_t)((q2 & 0xf) | ((q4 & 0xf) << 4));
                qh[l] = (uint8_t)((q1 >> 4) | ((q2 >> 4) << 2) |
                                  ((q3 >> 4) << 4) | ((q4 >> 4) << 6));
            }
        }
    }
}

static void quantize_row_q8_K_ref(const float *restrict x, void *restrict vy,
                                  int64_t k) {
    block_q8_K *y = vy;
    for (int64_t i = 0; i < k / QK_K; i++, x += QK_K) {
        float max = 0, amax = 0;
        for (int j = 0; j < QK_K; j++) {
            if (fabsf(x[j]) > amax) {
                amax = fabsf(x[j]);
                max = x[j];
            }
        }
        if (!amax) {
            memset(&y[i], 0, sizeof(y[i]));
            continue;
        }
        /* -127 (not -128) keeps every quant in -127..127, as ggml. */
        const float iscale = -127.f / max;
        for (int j = 0; j < QK_K; j++)
            y[i].qs[j] = (int8_t)MIN(127, nearest_int(iscale * x[j]));
        for (int j = 0; j < QK_K / 16; j++) {
            int sum = 0;
            for (int l = 0; l < 16; l++)
                sum += y[i].qs[16 * j + l];
            y[i].bsums[j] = (int16_t)sum;
        }
        y[i].d = 1 / iscale;
    }
}

/* ==== K-quants: dequantize ================================================ */

static void dequantize_row_q4_K(const void *restrict vx, float *restrict y,
                                int64_t k) {
    const block_q4_K *x = vx;
    for (int64_t i = 0; i < k / QK_K; i++) {
        const float d = FP16(x[i].d), min = FP16(x[i].dmin);
        const uint8_t *q = x[i].qs;
        for (int j = 0, is = 0; j < QK_K; j += 64, q += 32, is += 2) {
            uint8_t sc, m;
            get_scale_min_k4(is, x[i].scales, &sc, &m);
            const float d1 = d * sc, m1 = min * m;
            get_scale_min_k4(is + 1, x[i].scales, &sc, &m);
            const float d2 = d * sc, m2 = min * m;
            for (int l = 0; l < 32; l++)
                *y++ = d1 * (q[l] & 0xf) - m1;
            for (int l = 0; l < 32; l++)
                *y++ = d2 * (q[l] >> 4) - m2;
        }
    }
}

static void dequantize_row_q5_K(const void *restrict vx, float *restrict y,
                                int64_t k) {
    const block_q5_K *x = vx;
    for (int64_t i = 0; i < k / QK_K; i++) {
        const float d = FP16(x[i].d), min = FP16(x[i].dmin);
        const uint8_t *ql = x[i].qs, *qh = x[i].qh;
        uint8_t u1 = 1, u2 = 2;
        for (int j = 0, is = 0; j < QK_K; j += 64, ql += 32, is += 2) {
            uint8_t sc, m;
            get_scale_min_k4(is, x[i].scales, &sc, &m);
            const float d1 = d * sc, m1 = min * m;
            get_scale_min_k4(is + 1, x[i].scales, &sc, &m);
            const float d2 = d * sc, m2 = min * m;
            for (int l = 0; l < 32; l++)
                *y++ = d1 * ((ql[l] & 0xf) + (qh[l] & u1 ? 16 : 0)) - m1;
            for (int l = 0; l < 32; l++)
                *y++ = d2 * ((ql[l] >> 4) + (qh[l] & u2 ? 16 : 0)) - m2;
            u1 <<= 2;
            u2 <<= 2;
        }
    }
}

static void dequantize_row_q6_K(const void *restrict vx, float *restrict y,
                                int64_t k) {
    const block_q6_K *x = vx;
    for (int64_t i = 0; i < k / QK_K; i++) {
        const float d = FP16(x[i].d);
        const uint8_t *ql = x[i].ql, *qh = x[i].qh;
        const int8_t *sc = x[i].scales;
        for (int n = 0; n < QK_K; n += 128, y += 128) {
            for (int l = 0; l < 32; l++) {
                int is = l / 16;
                int q1 = ((ql[l] & 0xf) | (((qh[l] >> 0) & 3) << 4)) - 32;
                int q2 = ((ql[l + 32] & 0xf) | (((qh[l] >> 2) & 3) << 4)) - 32;
                int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
                int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
                y[l] = d * sc[is + 0] * q1;
                y[l + 32] = d * sc[is + 2] * q2;
                y[l + 64] = d * sc[is + 4] * q3;
                y[l + 96] = d * sc[is + 6] * q4;
            }
            ql += 64;
            qh += 32;
            sc += 8;
        }
    }
}

static void dequantize_row_q8_K(const void *restrict vx, float *restrict y,
                                int64_t k) {
    const block_q8_K *x = vx;
    for (int64_t i = 0; i < k / QK_K; i++, y += QK_K)
        for (int j = 0; j < QK_K; j++)
            y[j] = x[i].d * x[i].qs[j];
}

/* ==== K-quants: dot products ============================================== */

/* Each K dot sums integers per 16/32-element sub-block, scales them by the
 * small integer sub-block scale (exact in int32), and only then applies the
 * float super-block scales, as ggml does. The mins of Q4_K/Q5_K come from
 * the activation's bsums, so they cost 8 multiplies per block. */

static void vec_dot_q4_K_q8_K(int n, float *restrict s, const void *restrict vx,
                              const void *restrict vy) {
    const block_q4_K *x = vx;
    const block_q8_K *y = vy;
    float sum = 0;
    for (int i = 0; i < n / QK_K; i++) {
        uint8_t sc[8], mn[8];
        eng__unpack_scales_k4(x[i].scales, sc, mn);
        const uint8_t *q4 = x[i].qs;
        const int8_t *q8 = y[i].qs;
        int32_t sumi = 0, summ = 0;
        for (int j = 0; j < QK_K / 64; j++, q4 += 32, q8 += 64) {
            int32_t s0 = 0, s1 = 0;
            for (int l = 0; l < 32; l++) {
                s0 += (q4[l] & 0xf) * q8[l];
                s1 += (q4[l] >> 4) * q8[l + 32];
            }
            sumi += sc[2 * j] * s0 + sc[2 * j + 1] * s1;
        }
        for (int j = 0; j < QK_K / 16; j++)
            summ += mn[j / 2] * y[i].bsums[j];
        sum += FP16(x[i].d) * y[i].d * sumi - FP16(x[i].dmin) * y[i].d * summ;
    }
    *s = sum;
}

static void vec_dot_q5_K_q8_K(int n, float *restrict s, const void *restrict vx,
                              const void *restrict vy) {
    const block_q5_K *x = vx;
    const block_q8_K *y = vy;
    float sum = 0;
    for (int i = 0; i < n / QK_K; i++) {
        uint8_t sc[8], mn[8];
        eng__unpack_scales_k4(x[i].scales, sc, mn);
        const uint8_t *ql = x[i].qs, *qh = x[i].qh;
        const int8_t *q8 = y[i].qs;
        int32_t sumi = 0, summ = 0;
        for (int j = 0; j < QK_K / 64; j++, ql += 32, q8 += 64) {
            int32_t s0 = 0, s1 = 0;
            for (int l = 0; l < 32; l++) {
                int v0 = (ql[l] & 0xf) | (((qh[l] >> (2 * j)) & 1) << 4);
                int v1 = (ql[l] >> 4) | (((qh[l] >> (2 * j + 1)) & 1) << 4);
                s0 += v0 * q8[l];
                s1 += v1 * q8[l + 32];
            }
            sumi += sc[2 * j] * s0 + sc[2 * j + 1] * s1;
        }
        for (int j = 0; j < QK_K / 16; j++)
            summ += mn[j / 2] * y[i].bsums[j];
        sum += FP16(x[i].d) * y[i].d * sumi - FP16(x[i].dmin) * y[i].d * summ;
    }
    *s = sum;
}

static void vec_dot_q6_K_q8_K(int n, float *restrict s, const void *restrict vx,
                              const void *restrict vy) {
    const block_q6_K *x = vx;
    const block_q8_K *y = vy;
    float sum = 0;
    for (int i = 0; i < n / QK_K; i++) {
        int8_t q[QK_K];
        const uint8_t *ql = x[i].ql, *qh = x[i].qh;
        for (int nb = 0; nb < QK_K; nb += 128, ql += 64, qh += 32) {
            for (int l = 0; l < 32; l++) {
                q[nb + l] = (int8_t)(((ql[l] & 0xf) | ((qh[l] & 3) << 4)) - 32);
                q[nb + l + 32] =
                    (int8_t)(((ql[l + 32] & 0xf) | (((qh[l] >> 2) & 3) << 4)) -
                             32);
                q[nb + l + 64] =
                    (int8_t)(((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32);
                q[nb + l + 96] =
                    (int8_t)(((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) -
                             32);
            }
        }
        int32_t sumi = 0;
        for (int j = 0; j < QK_K / 16; j++) {
            int32_t sj = 0;
            for (int l = 0; l < 16; l++)
                sj += q[16 * j + l] * y[i].qs[16 * j + l];
            sumi += x[i].scales[j] * sj;
        }
        sum += FP16(x[i].d) * y[i].d * sumi;
    }
    *s = sum;
}

/* ==== batched dots ======================================================== */

/* The scalar batched dot is nrc reference dots; the default fast one loops
 * over whatever vec_dot eng_quant_init installed, for types whose ISA file
 * has no kernel that shares weight decoding across columns. */
#define NRC_WRAPPERS(T, REF)                                                   \
    static void nrc_ref_##T(int n, int nrc, float *restrict s,                 \
                            const void *restrict vx, const void *restrict vy,  \
                            size_t st) {                                       \
        for (int c = 0; c < nrc; c++)                                          \
            REF(n, &s[c], vx, (const char *)vy + (size_t)c * st);              \
    }                                                                          \
    static void nrc_loop_##T(int n, int nrc, float *restrict s,                \
                             const void *restrict vx, const void *restrict vy, \
                             size_t st) {                                      \
        eng_vec_dot_fn f = eng_type_traits[ENG_TYPE_##T].vec_dot;              \
        for (int c = 0; c < nrc; c++)                                          \
            f(n, &s[c], vx, (const char *)vy + (size_t)c * st);                \
    }

NRC_WRAPPERS(F32, vec_dot_f32)
NRC_WRAPPERS(F16, vec_dot_f16)
NRC_WRAPPERS(BF16, vec_dot_bf16)
NRC_WRAPPERS(Q4_0, vec_dot_q4_0_q8_0)
NRC_WRAPPERS(Q4_1, vec_dot_q4_1_q8_1)
NRC_WRAPPERS(Q5_0, vec_dot_q5_0_q8_0)
NRC_WRAPPERS(Q5_1, vec_dot_q5_1_q8_1)
NRC_WRAPPERS(Q8_0, vec_dot_q8_0_q8_0)
NRC_WRAPPERS(Q4_K, vec_dot_q4_K_q8_K)
NRC_WRAPPERS(Q5_K, vec_dot_q5_K_q8_K)
NRC_WRAPPERS(Q6_K, vec_dot_q6_K_q8_K)

/* ==== the table =========================================================== */

#define FLOAT_T(nm, bs, ts)                                                    \
    { .name = nm, .blck_size = bs, .type_size = ts }
#define QUANT_T(nm, bs, ts)                                                    \
    { .name = nm, .blck_size = bs, .type_size = ts }

/* A type nib runs: every entry starts on the scalar code. */
#define RUN_T(nm, bs, ts, tof, fromf, dot, vdt)                                \
    {                                                                          \
        .name = #nm, .vec_dot_nrc_ref = nrc_ref_##nm,                          \
        .vec_dot_nrc = nrc_loop_##nm, .blck_size = bs, .type_size = ts,        \
        .supported = true, .to_float = tof, .from_float_ref = fromf,           \
        .from_float = fromf, .vec_dot_ref = dot, .vec_dot = dot,               \
        .vec_dot_type = vdt                                                    \
    }

/* Activation-only formats: they quantize and dequantize but never serve as
 * weights (no vec_dot of their own). */
#define ACT_T(nm, bs, ts, tof, fromf)                                          \
    {                                                                          \
        .name = nm, .blck_size = bs, .type_size = ts, .to_float = tof,         \
        .from_float_ref = fromf, .from_float = fromf,                          \
        .vec_dot_type = ENG_TYPE_COUNT                                         \
    }

/* Ids that ggml has retired keep type_size 0 so the GGUF reader rejects
 * them as unknown. Known types nib cannot run keep supported = false. */
eng_type_traits_t eng_type_traits[ENG_TYPE_COUNT] = {
    [ENG_TYPE_F32] =
        RUN_T(F32, 1, 4, to_float_f32, copy_row_f32, vec_dot_f32, ENG_TYPE_F32),
    [ENG_TYPE_F16] = RUN_T(F16, 1, 2, to_float_f16, from_float_f16, vec_dot_f16,
                           ENG_TYPE_F16),
    [ENG_TYPE_Q4_0] =
        RUN_T(Q4_0, QK4_0, sizeof(block_q4_0), dequantize_row_q4_0,
              quantize_row_q4_0_ref, vec_dot_q4_0_q8_0, ENG_TYPE_Q8_0),
    [ENG_TYPE_Q4_1] =
        RUN_T(Q4_1, QK4_1, sizeof(block_q4_1), dequantize_row_q4_1,
              quantize_row_q4_1_ref, vec_dot_q4_1_q8_1, ENG_TYPE_Q8_1),
    [ENG_TYPE_Q5_0] =
        RUN_T(Q5_0, QK5_0, sizeof(block_q5_0), dequantize_row_q5_0,
              quantize_row_q5_0_ref, vec_dot_q5_0_q8_0, ENG_TYPE_Q8_0),
    [ENG_TYPE_Q5_1] =
        RUN_T(Q5_1, QK5_1, sizeof(block_q5_1), dequantize_row_q5_1,
              quantize_row_q5_1_ref, vec_dot_q5_1_q8_1, ENG_TYPE_Q8_1),
    [ENG_TYPE_Q8_0] =
        RUN_T(Q8_0, QK8_0, sizeof(block_q8_0), dequantize_row_q8_0,
              quantize_row_q8_0_ref, vec_dot_q8_0_q8_0, ENG_TYPE_Q8_0),
    [ENG_TYPE_Q8_1] = ACT_T("Q8_1", QK8_1, sizeof(block_q8_1),
                            dequantize_row_q8_1, quantize_row_q8_1_ref),
    [ENG_TYPE_Q2_K] = QUANT_T("Q2_K", QK_K, sizeof(block_q2_K)),
    [ENG_TYPE_Q3_K] = QUANT_T("Q3_K", QK_K, sizeof(block_q3_K)),
    [ENG_TYPE_Q4_K] =
        RUN_T(Q4_K, QK_K, sizeof(block_q4_K), dequantize_row_q4_K,
              quantize_row_q4_K_ref, vec_dot_q4_K_q8_K, ENG_TYPE_Q8_K),
    [ENG_TYPE_Q5_K] =
        RUN_T(Q5_K, QK_K, sizeof(block_q5_K), dequantize_row_q5_K,
              quantize_row_q5_K_ref, vec_dot_q5_K_q8_K, ENG_TYPE_Q8_K),
    [ENG_TYPE_Q6_K] =
        RUN_T(Q6_K, QK_K, sizeof(block_q6_K), dequantize_row_q6_K,
              quantize_row_q6_K_ref, vec_dot_q6_K_q8_K, ENG_TYPE_Q8_K),
    [ENG_TYPE_Q8_K] = ACT_T("Q8_K", QK_K, sizeof(block_q8_K),
                            dequantize_row_q8_K, quantize_row_q8_K_ref),
    [ENG_TYPE_IQ2_XXS] = QUANT_T("IQ2_XXS", QK_K, 66),
    [ENG_TYPE_IQ2_XS] = QUANT_T("IQ2_XS", QK_K, 74),
    [ENG_TYPE_IQ3_XXS] = QUANT_T("IQ3_XXS", QK_K, 98),
    [ENG_TYPE_IQ1_S] = QUANT_T("IQ1_S", QK_K, 50),
    [ENG_TYPE_IQ4_NL] = QUANT_T("IQ4_NL", 32, 18),
    [ENG_TYPE_IQ3_S] = QUANT_T("IQ3_S", QK_K, 110),
    [ENG_TYPE_IQ2_S] = QUANT_T("IQ2_S", QK_K, 82),
    [ENG_TYPE_IQ4_XS] = QUANT_T("IQ4_XS", QK_K, 136),
    [ENG_TYPE_I8] = FLOAT_T("I8", 1, 1),
    [ENG_TYPE_I16] = FLOAT_T("I16", 1, 2),
    [ENG_TYPE_I32] = FLOAT_T("I32", 1, 4),
    [ENG_TYPE_I64] = FLOAT_T("I64", 1, 8),
    [ENG_TYPE_F64] = FLOAT_T("F64", 1, 8),
    [ENG_TYPE_IQ1_M] = QUANT_T("IQ1_M", QK_K, 56),
    [ENG_TYPE_BF16] = RUN_T(BF16, 1, 2, to_float_bf16, from_float_bf16,
                            vec_dot_bf16, ENG_TYPE_BF16),
    [ENG_TYPE_TQ1_0] = QUANT_T("TQ1_0", QK_K, 54),
    [ENG_TYPE_TQ2_0] = QUANT_T("TQ2_0", QK_K, 66),
    [ENG_TYPE_MXFP4] = QUANT_T("MXFP4", 32, 17),
};

size_t eng_row_size(eng_type t, int64_t n) {
    return (size_t)(n / eng_type_traits[t].blck_size) *
           eng_type_traits[t].type_size;
}

size_t eng_row_size_packed(eng_type t, int64_t n) {
    /* Q8_0: the quants, then each block's scale as F32 (gemm_avx512.c has
     * the layout) */
    if (t == ENG_TYPE_Q8_0)
        return (size_t)n + (size_t)(n / QK8_0) * sizeof(float);
    if (t == ENG_TYPE_Q8_K)
        return (size_t)(n / QK_K) * sizeof(block_q8_K_packed);
    return eng_row_size(t, n);
}

size_t eng_quantize_rows(eng_type t, const float *src, void *dst, int64_t nrows,
                         int64_t n_per_row) {
    const eng_type_traits_t *tt = &eng_type_traits[t];
    assert(tt->from_float_ref && n_per_row % tt->blck_size == 0);
    const size_t row_size = eng_row_size(t, n_per_row);
    for (int64_t r = 0; r < nrows; r++)
        tt->from_float_ref(src + r * n_per_row, (char *)dst + r * row_size,
                           n_per_row);
    return (size_t)nrows * row_size;
}

/* ==== run-time selection ================================================== */

static const char *quant_isa = "scalar";
static pthread_once_t quant_once = PTHREAD_ONCE_INIT;

static bool force_scalar(void) {
    const char *e = getenv("NIB_FORCE_SCALAR");
    return e && *e && strcmp(e, "0") != 0;
}

/* Rank of an ISA name, slowest first; -1 for an unknown one. */
static int isa_rank(const char *isa) {
    /* avxvnni: AVX2 plus the 256-bit VNNI dots of Alder Lake and Zen 5,
     * its own level so that plain AVX2 (older laptops) can be forced */
    static const char *const order[] = {"scalar", "avx2", "avxvnni", "avx512"};
    for (int i = 0; i < (int)NIB_ARRAY_LEN(order); i++)
        if (strcmp(isa, order[i]) == 0)
            return i;
    return -1;
}

/* NIB_FORCE_ISA=scalar|avx2|avxvnni|avx512 caps the kernels at that ISA,
 * so that the golden tests can run on every SIMD path this CPU has, not
 * only on its fastest one. */
static int isa_cap(void) {
    const char *e = getenv("NIB_FORCE_ISA");
    if (!e || !*e)
        return INT_MAX;
    int r = isa_rank(e);
    if (r < 0) {
        nib_log_warn("NIB_FORCE_ISA=%s is not one of scalar, avx2, avxvnni, "
                     "avx512; ignored",
                     e);
        return INT_MAX;
    }
    return r;
}

/* Tables come slowest first and a faster ISA lists only the kernels where
 * it wins, so installing them in order leaves each entry on the fastest
 * implementation this CPU can run. */
static void quant_init_once(void) {
    const int cap = isa_cap();
    if (force_scalar() || cap == 0)
        return;
    const eng_arch_kernels *all[ENG_ARCH_MAX];
    int na = eng__arch_available(all, ENG_ARCH_MAX);
    for (int i = 0; i < na; i++) {
        const eng_arch_kernels *k = all[i];
        if (isa_rank(k->isa) > cap)
            continue;
        quant_isa = k->isa;
        for (int t = 0; t < ENG_TYPE_COUNT; t++) {
            if (k->vec_dot[t])
                eng_type_traits[t].vec_dot = k->vec_dot[t];
            if (k->vec_dot_nrc[t])
                eng_type_traits[t].vec_dot_nrc = k->vec_dot_nrc[t];
            if (k->from_float[t])
                eng_type_traits[t].from_float = k->from_float[t];
            if (k->vec_dot_nrc_packed[t])
                eng_type_traits[t].vec_dot_nrc_packed =
                    k->vec_dot_nrc_packed[t];
            if (k->from_float_packed[t])
                eng_type_traits[t].from_float_packed = k->from_float_packed[t];
            if (k->vec_dot_tile_packed[t])
                eng_type_traits[t].vec_dot_tile_packed =
                    k->vec_dot_tile_packed[t];
            if (k->vec_dot_tile[t])
                eng_type_traits[t].vec_dot_tile = k->vec_dot_tile[t];
        }
    }
}

void eng_quant_init(void) {
    pthread_once(&quant_once, quant_init_once);
}

const char *eng_quant_isa(void) {
    return quant_isa;
}

bool eng_quant_isa_at_least(const char *isa) {
    const int r = isa_rank(isa);
    return r >= 0 && isa_rank(quant_isa) >= r;
}

int eng_quant_variants(eng_type t, eng_kernel_variant *out, int max) {
    const eng_type_traits_t *tt = &eng_type_traits[t];
    if (!tt->vec_dot_ref || max <= 0)
        return 0;
    const eng_type vdt = tt->vec_dot_type;
    int n = 0;
    out[n++] = (eng_kernel_variant){
        .isa = "scalar",
        .vec_dot = tt->vec_dot_ref,
        .from_float = eng_type_traits[vdt].from_float_ref,
        .to_float = tt->to_float,
        .vec_dot_nrc = tt->vec_dot_nrc_ref,
    };
    const eng_arch_kernels *all[ENG_ARCH_MAX];
    int na = eng__arch_available(all, ENG_ARCH_MAX);
    eng_from_float_fn ff = eng_type_traits[vdt].from_float_ref;
    for (int i = 0; i < na && n < max; i++) {
        /* An ISA without its own activation quantizer runs with the best
         * one below it, as eng_quant_init would install. */
        if (all[i]->from_float[vdt])
            ff = all[i]->from_float[vdt];
        if (!all[i]->vec_dot[t])
            continue;
        out[n++] = (eng_kernel_variant){
            .isa = all[i]->isa,
            .vec_dot = all[i]->vec_dot[t],
            .from_float = ff,
            .to_float = tt->to_float,
            .vec_dot_nrc = all[i]->vec_dot_nrc[t], /* NULL: none */
        };
    }
    return n;
}
