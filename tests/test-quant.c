/*
 * test-quant.c — tensor formats and kernels (engine/quant.c, engine/arch/).
 *
 * Layout mistakes are caught by hand-built blocks with known values; the
 * quantizers by round-trip error bounds; every SIMD kernel by comparison
 * with the scalar reference on random data (T3).
 */
#include <math.h>
#include <unistd.h>

#include "common/nib.h"
#include "engine/gguf.h"
#include "engine/quant.h"
#include "test.h"

/* ---- tolerances ---------------------------------------------------------- */

/* Integer-quant dots sum exact integers per block; SIMD and scalar differ
 * only in float summation order over blocks and in FMA contraction. */
#define TOL_DOT_QUANT_REL 1e-5
/* F32/F16/BF16 dots: the reference sums in double, SIMD in float lanes. */
#define TOL_DOT_FLOAT_REL 1e-4
/* BF16 on vdpbf16ps rounds each product pair into fp32 before adding, so
 * it may lose a little more than a plain fp32 FMA chain. */
#define TOL_DOT_BF16_REL 1e-3

/* ---- helpers ------------------------------------------------------------- */

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint32_t rng_u32(void) {
    /* xorshift64*: enough for test data, and reproducible. */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return (uint32_t)((rng_state * 2685821657736338717ull) >> 32);
}

static float rng_uniform(void) { /* [0, 1) */
    return (rng_u32() >> 8) * (1.0f / 16777216.0f);
}

static float rng_normal(void) {
    float u1 = rng_uniform() + 1e-7f, u2 = rng_uniform();
    return sqrtf(-2.0f * logf(u1)) * cosf(6.2831853f * u2);
}

static void fill_normal(float *x, int n, float scale, float offset) {
    for (int i = 0; i < n; i++)
        x[i] = offset + scale * rng_normal();
}

static float f32_of(uint32_t u) {
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static uint32_t bits_of(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

static double dot_f64(const float *a, const float *b, int n) {
    double s = 0;
    for (int i = 0; i < n; i++)
        s += (double)a[i] * b[i];
    return s;
}

static const eng_type run_types[] = {
    ENG_TYPE_F32,  ENG_TYPE_F16,  ENG_TYPE_BF16, ENG_TYPE_Q8_0,
    ENG_TYPE_Q4_0, ENG_TYPE_Q4_1, ENG_TYPE_Q5_0, ENG_TYPE_Q5_1,
    ENG_TYPE_Q4_K, ENG_TYPE_Q5_K, ENG_TYPE_Q6_K,
};

/* ---- fp16 / bf16 --------------------------------------------------------- */

TEST_IMPL(quant_fp16_all_values) {
    for (uint32_t h = 0; h < 65536; h++) {
        float f = eng_fp16_to_fp32((eng_fp16)h);
        eng_fp16 back = eng_fp32_to_fp16(f);
        bool nan = (h & 0x7c00) == 0x7c00 && (h & 0x3ff);
        if (nan) {
            ASSERT(isnan(f));
            /* NaN stays NaN (quiet), with its sign and top payload bits. */
            ASSERT_EQ(back, h | 0x200);
        } else {
            ASSERT_EQ(back, h);
        }
    }
    /* Known values. */
    ASSERT(eng_fp16_to_fp32(0x3c00) == 1.0f);
    ASSERT(eng_fp16_to_fp32(0xc000) == -2.0f);
    ASSERT(eng_fp16_to_fp32(0x7bff) == 65504.0f);
    ASSERT(eng_fp16_to_fp32(0x0001) == 0x1p-24f);
    ASSERT(eng_fp16_to_fp32(0x0400) == 0x1p-14f);
    ASSERT(eng_fp16_to_fp32(0x03ff) == 1023 * 0x1p-24f);
    ASSERT(isinf(eng_fp16_to_fp32(0x7c00)) && eng_fp16_to_fp32(0xfc00) < 0);
    ASSERT(bits_of(eng_fp16_to_fp32(0x8000)) == 0x80000000u);
    return 0;
}

TEST_IMPL(quant_fp16_rounding) {
    /* Every midpoint between neighbouring finite halves is exact in fp32:
     * it must go to the even neighbour, and one fp32 ulp either side must
     * go to the nearer one. */
    for (uint32_t h = 0; h < 0x7bff; h++) {
        float a = eng_fp16_to_fp32((eng_fp16)h);
        float b = eng_fp16_to_fp32((eng_fp16)(h + 1));
        float mid = (a + b) / 2;
        eng_fp16 even = (h & 1) ? (eng_fp16)(h + 1) : (eng_fp16)h;
        ASSERT_EQ(eng_fp32_to_fp16(mid), even);
        ASSERT_EQ(eng_fp32_to_fp16(-mid), even | 0x8000);
        ASSERT_EQ(eng_fp32_to_fp16(nextafterf(mid, 0)), h);
        ASSERT_EQ(eng_fp32_to_fp16(nextafterf(mid, INFINITY)), h + 1);
    }
    /* Overflow: 65520 is the midpoint to the next (absent) binade value. */
    ASSERT_EQ(eng_fp32_to_fp16(65519.99f), 0x7bff);
    ASSERT_EQ(eng_fp32_to_fp16(65520.0f), 0x7c00);
    ASSERT_EQ(eng_fp32_to_fp16(1e10f), 0x7c00);
    ASSERT_EQ(eng_fp32_to_fp16(-INFINITY), 0xfc00);
    ASSERT_EQ(eng_fp32_to_fp16(NAN) & 0x7e00, 0x7e00);
    /* Underflow: half of the smallest subnormal ties to zero. */
    ASSERT_EQ(eng_fp32_to_fp16(0x1p-25f), 0);
    ASSERT_EQ(eng_fp32_to_fp16(nextafterf(0x1p-25f, 1)), 1);
    ASSERT_EQ(eng_fp32_to_fp16(3 * 0x1p-25f), 2);
    ASSERT_EQ(eng_fp32_to_fp16(1e-30f), 0);
    ASSERT_EQ(eng_fp32_to_fp16(-1e-30f), 0x8000);
    ASSERT_EQ(eng_fp32_to_fp16(f32_of(1)), 0); /* fp32 subnormal */
    return 0;
}

TEST_IMPL(quant_bf16) {
    for (uint32_t h = 0; h < 65536; h++) {
        float f = eng_bf16_to_fp32((eng_bf16)h);
        ASSERT_EQ(bits_of(f), h << 16);
        bool nan = (h & 0x7f80) == 0x7f80 && (h & 0x7f);
        if (nan)
            ASSERT(isnan(eng_bf16_to_fp32(eng_fp32_to_bf16(f))));
        else
            ASSERT_EQ(eng_fp32_to_bf16(f), h);
    }
    /* Ties to even, either side of a tie to the nearer. */
    ASSERT_EQ(eng_fp32_to_bf16(f32_of(0x3f808000u)), 0x3f80);
    ASSERT_EQ(eng_fp32_to_bf16(f32_of(0x3f818000u)), 0x3f82);
    ASSERT_EQ(eng_fp32_to_bf16(f32_of(0x3f808001u)), 0x3f81);
    ASSERT_EQ(eng_fp32_to_bf16(f32_of(0x3f807fffu)), 0x3f80);
    /* Rounding up past the largest finite value gives inf; NaN stays. */
    ASSERT_EQ(eng_fp32_to_bf16(f32_of(0x7f7fffffu)), 0x7f80);
    ASSERT(isnan(eng_bf16_to_fp32(eng_fp32_to_bf16(f32_of(0x7f800001u)))));
    return 0;
}

/* ---- dequantize: hand-built blocks --------------------------------------- */

TEST_IMPL(quant_dequant_q4_0_q4_1) {
    block_q4_0 b;
    memset(&b, 0, sizeof(b));
    b.d = eng_fp32_to_fp16(0.5f);
    for (int j = 0; j < 16; j++)
        b.qs[j] = 0x88;          /* all 8 -> 0 */
    b.qs[0] = 0x8f;              /* element 0 = 15 -> 7, element 16 = 8 -> 0 */
    b.qs[3] = 0x08 | (0x2 << 4); /* element 3 = 8, element 19 = 2 -> -6 */
    b.qs[15] = 0x80;             /* element 15 = 0 -> -8 */
    float y[32];
    eng_type_traits[ENG_TYPE_Q4_0].to_float(&b, y, 32);
    for (int j = 0; j < 32; j++) {
        float want = j == 0 ? 3.5f : j == 19 ? -3.0f : j == 15 ? -4.0f : 0.0f;
        ASSERT_MSG(y[j] == want, "q4_0 element %d: %g vs %g", j, y[j], want);
    }

    block_q4_1 c;
    memset(&c, 0, sizeof(c));
    c.d = eng_fp32_to_fp16(0.25f);
    c.m = eng_fp32_to_fp16(-1.0f);
    c.qs[1] = 0x3 | (0xa << 4); /* element 1 = 3, element 17 = 10 */
    eng_type_traits[ENG_TYPE_Q4_1].to_float(&c, y, 32);
    for (int j = 0; j < 32; j++) {
        float want = j == 1 ? -0.25f : j == 17 ? 1.5f : -1.0f;
        ASSERT_MSG(y[j] == want, "q4_1 element %d: %g vs %g", j, y[j], want);
    }
    return 0;
}

TEST_IMPL(quant_dequant_q5_0_q5_1) {
    /* qh is a little-endian u32: bit j is the 5th bit of element j. */
    block_q5_0 b;
    memset(&b, 0, sizeof(b));
    b.d = eng_fp32_to_fp16(1.0f);
    b.qh[0] = 0x01;  /* element 0 */
    b.qh[2] = 0x02;  /* bit 17: element 17 */
    b.qh[3] = 0x80;  /* bit 31: element 31 */
    b.qs[0] = 0x05;  /* element 0 low = 5, element 16 low = 0 */
    b.qs[1] = 0x30;  /* element 17 low = 3 */
    b.qs[15] = 0xf0; /* element 31 low = 15 */
    float y[32];
    eng_type_traits[ENG_TYPE_Q5_0].to_float(&b, y, 32);
    for (int j = 0; j < 32; j++) {
        float want = j == 0    ? 5.0f  /* 21 - 16 */
                     : j == 17 ? 3.0f  /* 19 - 16 */
                     : j == 31 ? 15.0f /* 31 - 16 */
                               : -16.0f;
        ASSERT_MSG(y[j] == want, "q5_0 element %d: %g vs %g", j, y[j], want);
    }

    block_q5_1 c;
    memset(&c, 0, sizeof(c));
    c.d = eng_fp32_to_fp16(0.5f);
    c.m = eng_fp32_to_fp16(2.0f);
    c.qh[1] = 0x04;  /* bit 10: element 10 */
    c.qs[10] = 0x21; /* element 10 low = 1, element 26 low = 2 */
    eng_type_traits[ENG_TYPE_Q5_1].to_float(&c, y, 32);
    for (int j = 0; j < 32; j++) {
        float want = j == 10 ? 2.0f + 0.5f * 17 : j == 26 ? 3.0f : 2.0f;
        ASSERT_MSG(y[j] == want, "q5_1 element %d: %g vs %g", j, y[j], want);
    }
    return 0;
}

TEST_IMPL(quant_dequant_q8) {
    block_q8_0 b;
    b.d = eng_fp32_to_fp16(0.125f);
    for (int j = 0; j < 32; j++)
        b.qs[j] = (int8_t)(j * 8 - 128);
    float y[QK_K];
    eng_type_traits[ENG_TYPE_Q8_0].to_float(&b, y, 32);
    for (int j = 0; j < 32; j++)
        ASSERT(y[j] == (j * 8 - 128) * 0.125f);

    block_q8_K k;
    memset(&k, 0, sizeof(k));
    k.d = 0.01f;
    k.qs[255] = -127;
    k.qs[7] = 3;
    eng_type_traits[ENG_TYPE_Q8_K].to_float(&k, y, QK_K);
    ASSERT(y[255] == -127 * 0.01f && y[7] == 3 * 0.01f && y[0] == 0);
    return 0;
}

/* Q4_K scales: bytes 0-3 scale 0-3 (low 6 bits), 4-7 min 0-3, 8-11 the low
 * nibbles of scale/min 4-7 with their top 2 bits in bits 6-7 of bytes 0-7. */
TEST_IMPL(quant_dequant_q4_k) {
    block_q4_K b;
    memset(&b, 0, sizeof(b));
    b.d = eng_fp32_to_fp16(0.5f);
    b.dmin = eng_fp32_to_fp16(0.25f);
    b.scales[0] = 3; /* sub-block 0 scale 3 */
    b.scales[4] = 4; /* sub-block 0 min 4 */
    b.scales[1] = 2; /* sub-block 1 scale 2, min 0 */
    /* Sub-block 5: scale 0x2a = 42 (low 0xa, high 2), min 0x31 = 49. */
    b.scales[9] = 0xa | (0x1 << 4);
    b.scales[1] |= 2 << 6;      /* scale 5 high bits (byte j-4 = 1) */
    b.scales[5] |= 3 << 6;      /* min 5 high bits (byte j = 5) */
    b.qs[0] = 0x7 | (0x9 << 4); /* element 0 = 7, element 32 = 9 */
    /* Sub-block 5 = elements 160..191: high nibbles of qs[64..95]. */
    b.qs[64 + 10] = 0xc0; /* element 170 = 12 */
    float y[QK_K];
    eng_type_traits[ENG_TYPE_Q4_K].to_float(&b, y, QK_K);
    ASSERT(y[0] == 0.5f * 3 * 7 - 0.25f * 4);
    ASSERT(y[1] == -0.25f * 4);
    ASSERT(y[32] == 0.5f * 2 * 9);
    ASSERT(y[33] == 0.0f);
    ASSERT(y[170] == 0.5f * 42 * 12 - 0.25f * 49);
    ASSERT(y[171] == -0.25f * 49);
    ASSERT(y[64] == 0.0f && y[255] == 0.0f);
    return 0;
}

TEST_IMPL(quant_dequant_q5_k) {
    block_q5_K b;
    memset(&b, 0, sizeof(b));
    b.d = eng_fp32_to_fp16(1.0f);
    b.dmin = eng_fp32_to_fp16(1.0f);
    for (int j = 0; j < 4; j++)
        b.scales[j] = 1; /* scales 0-3 = 1, mins 0 */
    for (int j = 8; j < 12; j++)
        b.scales[j] = 0x21; /* scale 4-7 = 1, min 4-7 = 2 */
    /* qh[l] bit 2n: 5th bit of element 64n + l; bit 2n+1: 64n + 32 + l. */
    b.qh[3] = 0x01 | 0x08; /* element 3 and element 64+32+3 = 99 */
    b.qh[31] = 0x80;       /* element 192 + 32 + 31 = 255 */
    b.qs[3] = 0x02;        /* element 3 low = 2 */
    b.qs[32 + 3] = 0x50;   /* element 64 + 32 + 3 = 99 low = 5 */
    float y[QK_K];
    eng_type_traits[ENG_TYPE_Q5_K].to_float(&b, y, QK_K);
    ASSERT(y[3] == 18.0f);
    ASSERT(y[99] == 21.0f);
    ASSERT(y[255] == 16.0f - 2.0f);
    ASSERT(y[200] == -2.0f);
    ASSERT(y[4] == 0.0f && y[35] == 0.0f);
    return 0;
}

TEST_IMPL(quant_dequant_q6_k) {
    block_q6_K b;
    memset(&b, 0, sizeof(b));
    b.d = eng_fp32_to_fp16(0.5f);
    for (int j = 0; j < 16; j++)
        b.scales[j] = (int8_t)(j + 1);
    b.scales[15] = -2;
    /* All quants 0 -> -32; set a few. Per 128: ql[l] low = q[l], high =
     * q[l+64]; ql[l+32] low = q[l+32], high = q[l+96]; qh[l] bits 0-1,
     * 2-3, 4-5, 6-7 = top bits of q[l], q[l+32], q[l+64], q[l+96]. */
    b.ql[5] = 0x1 | (0x2 << 4); /* q[5] low 1, q[69] low 2 */
    b.qh[5] = 0x2 | (0x3 << 4); /* q[5] = 0x21 = 33, q[69] = 0x32 = 50 */
    b.ql[64 + 32 + 31] = 0xf0;  /* second half: q[128+127] low = 15 */
    b.qh[32 + 31] = 0xc0;       /* q[255] = 0x3f = 63 */
    float y[QK_K];
    eng_type_traits[ENG_TYPE_Q6_K].to_float(&b, y, QK_K);
    ASSERT(y[5] == 0.5f * 1 * (33 - 32));
    ASSERT(y[69] == 0.5f * 5 * (50 - 32));
    ASSERT(y[255] == 0.5f * -2 * (63 - 32));
    ASSERT(y[0] == 0.5f * 1 * -32);
    ASSERT(y[130] == 0.5f * 9 * -32);
    return 0;
}

TEST_IMPL(quant_dequant_float_types) {
    eng_fp16 h[3] = {0x3c00, 0xc500, 0x0001};
    float y[3];
    eng_type_traits[ENG_TYPE_F16].to_float(h, y, 3);
    ASSERT(y[0] == 1.0f && y[1] == -5.0f && y[2] == 0x1p-24f);
    eng_bf16 b[2] = {0x3f80, 0xc0a0};
    eng_type_traits[ENG_TYPE_BF16].to_float(b, y, 2);
    ASSERT(y[0] == 1.0f && y[1] == -5.0f);
    return 0;
}

/* ---- quantize ------------------------------------------------------------ */

/* Root-mean-square round-trip error on N(0,1) data, relative to the data's
 * RMS, per type (measured on this data, plus 10-20% headroom). */
static double rmse_bound(eng_type t) {
    switch (t) {
    case ENG_TYPE_F32:
        return 0;
    case ENG_TYPE_F16:
        return 4e-4;
    case ENG_TYPE_BF16:
        return 3e-3;
    case ENG_TYPE_Q8_0:
        return 0.006;
    case ENG_TYPE_Q8_1:
        return 0.006;
    case ENG_TYPE_Q8_K:
        return 0.009;
    case ENG_TYPE_Q6_K:
        return 0.022;
    case ENG_TYPE_Q5_0:
        return 0.05;
    case ENG_TYPE_Q5_1:
        return 0.045;
    case ENG_TYPE_Q5_K:
        return 0.042;
    case ENG_TYPE_Q4_0:
        return 0.10;
    case ENG_TYPE_Q4_1:
        return 0.09;
    case ENG_TYPE_Q4_K:
        return 0.08;
    default:
        return 0;
    }
}

TEST_IMPL(quant_roundtrip_rmse) {
    enum { N = 4096 };
    static float x[N], y[N];
    static uint8_t q[N * 4];
    const eng_type types[] = {ENG_TYPE_F32,  ENG_TYPE_F16,  ENG_TYPE_BF16,
                              ENG_TYPE_Q8_0, ENG_TYPE_Q8_1, ENG_TYPE_Q8_K,
                              ENG_TYPE_Q4_0, ENG_TYPE_Q4_1, ENG_TYPE_Q5_0,
                              ENG_TYPE_Q5_1, ENG_TYPE_Q4_K, ENG_TYPE_Q5_K,
                              ENG_TYPE_Q6_K};
    fill_normal(x, N, 1.0f, 0.0f);
    double rms = sqrt(dot_f64(x, x, N) / N);
    for (size_t ti = 0; ti < NIB_ARRAY_LEN(types); ti++) {
        const eng_type_traits_t *tt = &eng_type_traits[types[ti]];
        tt->from_float_ref(x, q, N);
        tt->to_float(q, y, N);
        double se = 0;
        for (int i = 0; i < N; i++)
            se += (double)(x[i] - y[i]) * (x[i] - y[i]);
        double rel = sqrt(se / N) / rms;
        fprintf(stderr, "%-5s rmse %.5f (bound %.4f)\n", tt->name, rel,
                rmse_bound(types[ti]));
        ASSERT_MSG(rel <= rmse_bound(types[ti]), "%s: %g", tt->name, rel);
    }
    return 0;
}

TEST_IMPL(quant_quantize_edge_cases) {
    /* All-zero and constant blocks must not produce NaN (division by a
     * zero scale) and must come back exactly. */
    static float x[QK_K * 2], y[QK_K * 2];
    static uint8_t q[QK_K * 2 * 4];
    for (size_t ti = 0; ti < NIB_ARRAY_LEN(run_types); ti++) {
        const eng_type_traits_t *tt = &eng_type_traits[run_types[ti]];
        memset(x, 0, sizeof(x));
        tt->from_float_ref(x, q, QK_K * 2);
        tt->to_float(q, y, QK_K * 2);
        for (int i = 0; i < QK_K * 2; i++)
            ASSERT_MSG(y[i] == 0.0f, "%s zero -> %g at %d", tt->name, y[i], i);
        /* One spike: every format reproduces the block maximum closely. */
        x[37] = -3.0f;
        x[300] = 2.0f;
        tt->from_float_ref(x, q, QK_K * 2);
        tt->to_float(q, y, QK_K * 2);
        for (int i = 0; i < QK_K * 2; i++)
            ASSERT_MSG(isfinite(y[i]), "%s spike: nan at %d", tt->name, i);
        ASSERT_NEAR(y[37], -3.0, 3.0 * 0.01);
        ASSERT_NEAR(y[300], 2.0, 2.0 * 0.01);
    }
    /* q4_0: the value of largest magnitude maps to -8 exactly. */
    float b[32] = {0};
    b[4] = 4.0f;
    b[5] = -1.0f;
    block_q4_0 q40;
    eng_type_traits[ENG_TYPE_Q4_0].from_float_ref(b, &q40, 32);
    ASSERT_EQ(q40.d, eng_fp32_to_fp16(-0.5f));
    ASSERT_EQ(q40.qs[4] & 0xf, 0);  /* 4 / -0.5 = -8 -> 0 */
    ASSERT_EQ(q40.qs[5] & 0xf, 10); /* -1 / -0.5 = 2 -> 10 */
    ASSERT_EQ(q40.qs[0], 0x88);
    /* q8_K: bsums are the sums of each 16 quants. */
    static block_q8_K k8;
    fill_normal(x, QK_K, 1.0f, 0.3f);
    eng_type_traits[ENG_TYPE_Q8_K].from_float_ref(x, &k8, QK_K);
    for (int j = 0; j < 16; j++) {
        int s = 0;
        for (int l = 0; l < 16; l++)
            s += k8.qs[16 * j + l];
        ASSERT_EQ(k8.bsums[j], s);
    }
    /* q8_1: s = d * sum(qs). */
    block_q8_1 q81;
    eng_type_traits[ENG_TYPE_Q8_1].from_float_ref(x, &q81, 32);
    int s = 0;
    for (int l = 0; l < 32; l++)
        s += q81.qs[l];
    ASSERT_EQ(q81.s, eng_fp32_to_fp16(eng_fp16_to_fp32(q81.d) * s));
    return 0;
}

TEST_IMPL(quant_quantize_rows) {
    enum { ROWS = 3, COLS = 512 };
    static float x[ROWS * COLS];
    static uint8_t a[ROWS * COLS * 4], b[ROWS * COLS * 4];
    fill_normal(x, ROWS * COLS, 0.5f, 0.0f);
    for (size_t ti = 0; ti < NIB_ARRAY_LEN(run_types); ti++) {
        eng_type t = run_types[ti];
        size_t rs = eng_row_size(t, COLS);
        size_t total = eng_quantize_rows(t, x, a, ROWS, COLS);
        ASSERT_EQ(total, rs * ROWS);
        for (int r = 0; r < ROWS; r++)
            eng_type_traits[t].from_float_ref(x + r * COLS, b + r * rs, COLS);
        ASSERT_MEM_EQ(a, b, total);
    }
    return 0;
}

/* ---- dot products ------------------------------------------------------- */

/* The quantized dot must approximate the float dot of the original data
 * within the combined quantization error of weights and activations:
 * bound relative to |x| * |y| (both N(0,1), so |x||y| ~ n). */
static double dot_err_bound(eng_type t) {
    switch (t) {
    case ENG_TYPE_F32:
        return 1e-6;
    case ENG_TYPE_F16:
        return 5e-5;
    case ENG_TYPE_BF16:
        return 3e-4;
    case ENG_TYPE_Q8_0:
        return 5e-4;
    case ENG_TYPE_Q6_K:
        return 2e-3;
    case ENG_TYPE_Q5_0:
    case ENG_TYPE_Q5_1:
    case ENG_TYPE_Q5_K:
        return 3e-3;
    case ENG_TYPE_Q4_0:
    case ENG_TYPE_Q4_1:
    case ENG_TYPE_Q4_K:
        return 6e-3;
    default:
        return 0;
    }
}

TEST_IMPL(quant_dot_vs_float) {
    enum { N = 4096 };
    static float x[N], y[N];
    static uint8_t qx[N * 4], qy[N * 4];
    eng_quant_init();
    for (size_t ti = 0; ti < NIB_ARRAY_LEN(run_types); ti++) {
        eng_type t = run_types[ti];
        const eng_type_traits_t *tt = &eng_type_traits[t];
        const eng_type_traits_t *vt = &eng_type_traits[tt->vec_dot_type];
        double worst = 0;
        for (int rep = 0; rep < 8; rep++) {
            fill_normal(x, N, 1.0f, rep & 1 ? 0.2f : 0.0f);
            fill_normal(y, N, 1.0f, 0.0f);
            double ref = dot_f64(x, y, N);
            double norm = sqrt(dot_f64(x, x, N) * dot_f64(y, y, N));
            tt->from_float_ref(x, qx, N);
            vt->from_float(y, qy, N);
            float got;
            tt->vec_dot(N, &got, qx, qy);
            worst = fmax(worst, fabs(got - ref) / norm);
        }
        fprintf(stderr, "%-5s dot err %.2e (bound %.0e)\n", tt->name, worst,
                dot_err_bound(t));
        ASSERT_MSG(worst <= dot_err_bound(t), "%s: %g", tt->name, worst);
    }
    return 0;
}

/* ---- SIMD variants against the scalar reference -------------------------- */

static void lengths_for(eng_type t, int *lens, int *nlens) {
    static const int f[] = {1, 7, 8, 31, 32, 33, 255, 1000, 4096};
    static const int b32[] = {32, 64, 96, 160, 224, 256, 1024, 4096};
    static const int bk[] = {256, 512, 768, 4096};
    const int *src = f;
    int n = (int)NIB_ARRAY_LEN(f);
    if (eng_type_traits[t].blck_size == 32) {
        src = b32;
        n = (int)NIB_ARRAY_LEN(b32);
    } else if (eng_type_traits[t].blck_size == QK_K) {
        src = bk;
        n = (int)NIB_ARRAY_LEN(bk);
    }
    memcpy(lens, src, (size_t)n * sizeof(int));
    *nlens = n;
}

TEST_IMPL(quant_vec_dot_variants) {
    enum { N = 4096 };
    static float x[N], y[N], xd[N], yd[N];
    static uint8_t qx[N * 4], qy[N * 4];
    eng_quant_init();
    int checked = 0;
    for (size_t ti = 0; ti < NIB_ARRAY_LEN(run_types); ti++) {
        eng_type t = run_types[ti];
        const eng_type_traits_t *tt = &eng_type_traits[t];
        const eng_type_traits_t *vt = &eng_type_traits[tt->vec_dot_type];
        eng_kernel_variant var[8];
        int nv = eng_quant_variants(t, var, 8);
        ASSERT_GE(nv, 1);
        ASSERT_STR_EQ(var[0].isa, "scalar");
        ASSERT(var[0].vec_dot == tt->vec_dot_ref);
        double tol = t == ENG_TYPE_BF16 ? TOL_DOT_BF16_REL
                     : t == ENG_TYPE_F32 || t == ENG_TYPE_F16
                         ? TOL_DOT_FLOAT_REL
                         : TOL_DOT_QUANT_REL;
        int lens[16], nl;
        lengths_for(t, lens, &nl);
        for (int li = 0; li < nl; li++) {
            int n = lens[li];
            for (int rep = 0; rep < 4; rep++) {
                /* Offsets make Q4_1/Q5_1/K-quant mins non-trivial. */
                fill_normal(x, n, 1.0f + rep, rep == 2 ? 1.5f : 0.0f);
                fill_normal(y, n, 0.5f, rep == 3 ? -0.7f : 0.0f);
                tt->from_float_ref(x, qx, n);
                vt->from_float_ref(y, qy, n);
                tt->to_float(qx, xd, n);
                vt->to_float(qy, yd, n);
                double norm = sqrt(dot_f64(xd, xd, n) * dot_f64(yd, yd, n));
                float ref;
                tt->vec_dot_ref(n, &ref, qx, qy);
                for (int v = 1; v < nv; v++) {
                    float got;
                    var[v].vec_dot(n, &got, qx, qy);
                    ASSERT_MSG(fabs(got - ref) <= tol * norm + 1e-30,
                               "%s/%s n=%d: %.9g vs ref %.9g (norm %g)",
                               tt->name, var[v].isa, n, got, ref, norm);
                    checked++;
                }
            }
        }
    }
    fprintf(stderr, "%d variant comparisons (isa %s)\n", checked,
            eng_quant_isa());
    return 0;
}

/* Activation quantizers: F16, BF16 and Q8_K variants are bit-exact with the
 * reference (ggml uses the reference for Q8_K on x86). Q8_0 and Q8_1 follow
 * ggml's SIMD path (127/amax, round half to even): d is identical and each
 * quant is within one step of the reference's. */
static void check_from_float(eng_type vdt, eng_from_float_fn ff,
                             const char *isa, const float *x, int n) {
    static uint8_t a[4096 * 4], b[4096 * 4];
    const eng_type_traits_t *vt = &eng_type_traits[vdt];
    size_t rs = eng_row_size(vdt, n);
    memset(a, 0x5a, rs);
    memset(b, 0xa5, rs);
    vt->from_float_ref(x, a, n);
    ff(x, b, n);
    if (vdt == ENG_TYPE_Q8_0 || vdt == ENG_TYPE_Q8_1) {
        for (int i = 0; i < n / 32; i++) {
            const int8_t *qa, *qb;
            if (vdt == ENG_TYPE_Q8_0) {
                const block_q8_0 *ba = (const block_q8_0 *)a + i;
                const block_q8_0 *bb = (const block_q8_0 *)b + i;
                ASSERT_EQ(ba->d, bb->d);
                qa = ba->qs;
                qb = bb->qs;
            } else {
                const block_q8_1 *ba = (const block_q8_1 *)a + i;
                const block_q8_1 *bb = (const block_q8_1 *)b + i;
                ASSERT_EQ(ba->d, bb->d);
                int sum = 0;
                for (int j = 0; j < 32; j++)
                    sum += bb->qs[j];
                /* s = d * sum with the unrounded d = amax / 127. */
                float amax = 0;
                for (int j = 0; j < 32; j++)
                    amax = fmaxf(amax, fabsf(x[32 * i + j]));
                ASSERT_EQ(bb->s, eng_fp32_to_fp16(amax / 127.f * sum));
                qa = ba->qs;
                qb = bb->qs;
            }
            for (int j = 0; j < 32; j++)
                ASSERT_MSG(abs(qa[j] - qb[j]) <= 1,
                           "%s/%s block %d [%d]: %d vs %d", vt->name, isa, i, j,
                           qa[j], qb[j]);
        }
    } else {
        ASSERT_MSG(memcmp(a, b, rs) == 0, "%s/%s n=%d differs", vt->name, isa,
                   n);
    }
}

TEST_IMPL(quant_from_float_variants) {
    enum { N = 4096 };
    static float x[N];
    eng_quant_init();
    /* One weight type per activation format reaches each from_float. */
    const eng_type via[] = {ENG_TYPE_F16, ENG_TYPE_BF16, ENG_TYPE_Q8_0,
                            ENG_TYPE_Q4_1, ENG_TYPE_Q4_K};
    int checked = 0;
    for (size_t ti = 0; ti < NIB_ARRAY_LEN(via); ti++) {
        eng_type vdt = eng_type_traits[via[ti]].vec_dot_type;
        eng_kernel_variant var[8];
        int nv = eng_quant_variants(via[ti], var, 8);
        int lens[16], nl;
        lengths_for(vdt, lens, &nl);
        for (int v = 1; v < nv; v++) {
            for (int li = 0; li < nl; li++) {
                int n = lens[li];
                for (int rep = 0; rep < 3; rep++) {
                    fill_normal(x, n, rep == 1 ? 1e-3f : 2.0f, 0.0f);
                    check_from_float(vdt, var[v].from_float, var[v].isa, x, n);
                    checked++;
                }
                /* Exact ties: amax 127 makes x * id land on .5 exactly. */
                for (int i = 0; i < n; i++)
                    x[i] = (i % 32 == 0) ? 127.0f : (float)(i % 64) - 20.5f;
                check_from_float(vdt, var[v].from_float, var[v].isa, x, n);
                /* Zero blocks and a negative maximum first. */
                memset(x, 0, sizeof(float) * (size_t)n);
                if (n > 40) {
                    x[3] = -5.0f;
                    x[40] = 5.0f;
                }
                check_from_float(vdt, var[v].from_float, var[v].isa, x, n);
                checked += 2;
            }
        }
        /* Special values through the float converters. */
        if (vdt == ENG_TYPE_F16 || vdt == ENG_TYPE_BF16) {
            const float sp[16] = {0.0f,     -0.0f,    INFINITY, -INFINITY,
                                  NAN,      1e-30f,   65519.0f, 65520.0f,
                                  0x1p-25f, 0x1p-24f, 3e-5f,    -2.5e-6f,
                                  3.4e38f,  1.0f,     -1.0f,    0.1f};
            for (int v = 1; v < nv; v++)
                check_from_float(vdt, var[v].from_float, var[v].isa, sp, 16);
        }
    }
    fprintf(stderr, "%d from_float comparisons\n", checked);
    return 0;
}

TEST_IMPL(quant_isa_selection) {
    eng_quant_init();
    const char *isa = eng_quant_isa();
    const char *fs = getenv("NIB_FORCE_SCALAR");
    fprintf(stderr, "isa: %s\n", isa);
    if (fs && strcmp(fs, "1") == 0) {
        ASSERT_STR_EQ(isa, "scalar");
        for (size_t ti = 0; ti < NIB_ARRAY_LEN(run_types); ti++) {
            const eng_type_traits_t *tt = &eng_type_traits[run_types[ti]];
            ASSERT(tt->vec_dot == tt->vec_dot_ref);
        }
    }
    /* The chosen kernel is one of the listed variants. */
    for (size_t ti = 0; ti < NIB_ARRAY_LEN(run_types); ti++) {
        eng_kernel_variant var[8];
        int nv = eng_quant_variants(run_types[ti], var, 8);
        bool found = false;
        for (int v = 0; v < nv; v++)
            found |= var[v].vec_dot == eng_type_traits[run_types[ti]].vec_dot;
        ASSERT(found);
    }
    return 0;
}

/* NIB_FORCE_SCALAR=1 must keep every kernel on the scalar reference: run
 * quant_isa_selection in a child process with it set (the traits table is
 * process-wide, so this process cannot undo its own eng_quant_init). */
TEST_IMPL(quant_force_scalar) {
    char exe[4096];
    ssize_t len = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (len <= 0)
        TEST_SKIP("cannot find the test binary");
    exe[len] = 0;
    char cmd[4200], *out = NULL;
    snprintf(cmd, sizeof(cmd),
             "NIB_FORCE_SCALAR=1 '%s' quant_isa_selection 2>&1", exe);
    int rc = test_run_capture(cmd, &out, NULL);
    ASSERT_MSG(rc == 0, "child exit %d: %s", rc, out ? out : "");
    ASSERT_MSG(strstr(out, "isa: scalar") != NULL, "child said: %s", out);
    free(out);
    return 0;
}

/* ---- batched dots ------------------------------------------------------ */

/* Every batched kernel (and the installed default) against nrc scalar
 * reference dots, for every column count and odd strides between columns. */
TEST_IMPL(quant_vec_dot_nrc) {
    enum { N = 1024, STRIDE_PAD = 40 };
    static float x[N], y[N];
    static uint8_t qx[N * 4], qy[ENG_NRC_MAX * (N * 4 + STRIDE_PAD)];
    static float xd[N], yd[N];
    eng_quant_init();
    int checked = 0;
    for (size_t ti = 0; ti < NIB_ARRAY_LEN(run_types); ti++) {
        eng_type t = run_types[ti];
        const eng_type_traits_t *tt = &eng_type_traits[t];
        const eng_type vdt = tt->vec_dot_type;
        const eng_type_traits_t *vt = &eng_type_traits[vdt];
        ASSERT(tt->vec_dot_nrc_ref && tt->vec_dot_nrc);
        eng_kernel_variant var[8];
        int nv = eng_quant_variants(t, var, 8);
        ASSERT(var[0].vec_dot_nrc == tt->vec_dot_nrc_ref);
        double tol = t == ENG_TYPE_BF16 ? TOL_DOT_BF16_REL
                     : t == ENG_TYPE_F32 || t == ENG_TYPE_F16
                         ? TOL_DOT_FLOAT_REL
                         : TOL_DOT_QUANT_REL;
        int lens[16], nl;
        lengths_for(t, lens, &nl);
        for (int li = 0; li < nl; li++) {
            int n = lens[li];
            if (n > N)
                continue;
            size_t st = eng_row_size(vdt, n) + (size_t)(li % 2) * STRIDE_PAD;
            fill_normal(x, n, 1.0f, li % 2 ? 0.4f : 0.0f);
            tt->from_float_ref(x, qx, n);
            tt->to_float(qx, xd, n);
            double xx = dot_f64(xd, xd, n), norm[ENG_NRC_MAX];
            float ref[ENG_NRC_MAX];
            for (int c = 0; c < ENG_NRC_MAX; c++) {
                fill_normal(y, n, 1.0f + c, c == 3 ? 0.5f : 0.0f);
                vt->from_float_ref(y, qy + c * st, n);
                vt->to_float(qy + c * st, yd, n);
                norm[c] = sqrt(xx * dot_f64(yd, yd, n));
                tt->vec_dot_ref(n, &ref[c], qx, qy + c * st);
            }
            for (int v = 0; v <= nv; v++) {
                /* v == nv: the kernel eng_quant_init installed. */
                eng_vec_dot_nrc_fn f =
                    v < nv ? var[v].vec_dot_nrc : tt->vec_dot_nrc;
                const char *isa = v < nv ? var[v].isa : "installed";
                if (!f)
                    continue;
                for (int nrc = 1; nrc <= ENG_NRC_MAX; nrc++) {
                    float got[ENG_NRC_MAX + 1];
                    got[nrc] = 12345.0f; /* must stay untouched */
                    f(n, nrc, got, qx, qy, st);
                    ASSERT(got[nrc] == 12345.0f);
                    for (int c = 0; c < nrc; c++)
                        ASSERT_MSG(fabs(got[c] - ref[c]) <= tol * norm[c],
                                   "%s/%s n=%d nrc=%d col %d: %.9g vs %.9g",
                                   tt->name, isa, n, nrc, c, got[c], ref[c]);
                    checked++;
                }
            }
        }
    }
    fprintf(stderr, "%d batched comparisons\n", checked);
    return 0;
}

/* Every column count and the row counts nrs of one tile kernel against
 * the batched dot nrc on the same activation rows (ya), bit for bit, and
 * against vec_dot_ref on the plain rows (yq); the outputs outside the tile
 * must stay untouched. Returns the outputs checked. */
static int check_tile(const eng_type_traits_t *tt, eng_vec_dot_tile_fn tile,
                      eng_vec_dot_nrc_fn nrc, int n, const uint8_t *w,
                      size_t rb, const uint8_t *ya, const uint8_t *yn,
                      const uint8_t *yq, size_t st, const int *nrs,
                      size_t n_nrs, float *out, int ldo) {
    int checked = 0;
    for (int nc = 1; nc <= ENG_NRC_MAX; nc++) {
        for (size_t ri = 0; ri < n_nrs; ri++) {
            const int nr = nrs[ri];
            for (int i = 0; i < ENG_NRC_MAX * ldo; i++)
                out[i] = 12345.0f;
            tile(n, nr, nc, out, (size_t)ldo, w, rb, ya, st);
            for (int r = 0; r < ldo; r++) {
                float want[ENG_NRC_MAX];
                if (r < nr)
                    nrc(n, nc, want, w + r * rb, yn, st);
                for (int c = 0; c < ENG_NRC_MAX; c++) {
                    const float got = out[c * ldo + r];
                    if (c >= nc || r >= nr) {
                        ASSERT(got == 12345.0f);
                        continue;
                    }
                    ASSERT_MSG(memcmp(&want[c], &got, 4) == 0,
                               "%s n=%d nr=%d nc=%d row %d col %d: %.9g vs "
                               "%.9g",
                               tt->name, n, nr, nc, r, c, got, want[c]);
                    float ref;
                    tt->vec_dot_ref(n, &ref, w + r * rb, yq + c * st);
                    ASSERT_MSG(
                        fabsf(got - ref) <=
                            1e-4f * (fabsf(ref) + (1.0f + c) * sqrtf((float)n)),
                        "%s n=%d row %d col %d: %.9g vs reference %.9g",
                        tt->name, n, r, c, got, ref);
                    checked++;
                }
            }
        }
    }
    return checked;
}

/* The tile kernels eng_matmul runs (a tile of rows against up to
 * ENG_NRC_MAX columns per call, four rows' horizontal sums at once,
 * outputs written in place) against vec_dot_nrc_packed, bit for bit: a
 * token's logits must not depend on whether it was decoded alone or
 * verified in a batch. A tile with no vec_dot_nrc_packed beside it runs
 * for batches only and must equal vec_dot_nrc on the plain rows instead
 * (one-token decode keeps vec_dot). Lengths hit every leftover-block
 * path, row counts every remainder of the groups of four; the sums are
 * also checked against the scalar reference, so equal garbage fails
 * too. */
TEST_IMPL(quant_tile_packed) {
    enum { N = 8960, ROWS = 37, LDO = ROWS + 3 };
    /* 3136 and 4864 with six or more columns: the wide-row spans of
     * gemm_avx512.c (KB_*), the last span short, 3136 with leftover
     * blocks; 37 rows: three row blocks, the last short. The K-quants
     * take the multiples of 256: 1536 rows one by one, 4864 and 8960 in
     * steps of four super-blocks (K_TILE), the last short. */
    static const int lens[] = {32,  64,  96,   128,  160,  224,
                               256, 896, 1536, 3136, 4864, 8960};
    static const int nrs[] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 16, 21, 37};
    static float x[N], y[N];
    static uint8_t w[ROWS * N * 2], yq[ENG_NRC_MAX * N * 2],
        yp[ENG_NRC_MAX * N * 2];
    static float out[ENG_NRC_MAX * LDO];
    eng_quant_init();
    int checked = 0, types = 0;
    for (size_t ti = 0; ti < NIB_ARRAY_LEN(run_types); ti++) {
        const eng_type t = run_types[ti];
        const eng_type_traits_t *tt = &eng_type_traits[t];
        if (!tt->vec_dot_tile_packed)
            continue;
        const eng_type_traits_t *vt = &eng_type_traits[tt->vec_dot_type];
        ASSERT(vt->from_float_packed != NULL);
        const bool batch_only = tt->vec_dot_nrc_packed == NULL;
        types++;
        for (size_t li = 0; li < NIB_ARRAY_LEN(lens); li++) {
            const int n = lens[li];
            if (n % tt->blck_size || n % vt->blck_size)
                continue;
            const size_t rb = eng_row_size(t, n);
            const size_t st =
                eng_row_size_packed(tt->vec_dot_type, n) + 8 * (li % 2);
            for (int r = 0; r < ROWS; r++) {
                fill_normal(x, n, 1.0f, r % 3 ? 0.0f : 0.3f);
                tt->from_float_ref(x, w + r * rb, n);
            }
            for (int c = 0; c < ENG_NRC_MAX; c++) {
                fill_normal(y, n, 1.0f + c, 0.0f);
                vt->from_float(y, yq + c * st, n);
                vt->from_float_packed(y, yp + c * st, n);
            }
            checked += check_tile(tt, tt->vec_dot_tile_packed,
                                  batch_only ? tt->vec_dot_nrc
                                             : tt->vec_dot_nrc_packed,
                                  n, w, rb, yp, batch_only ? yq : yp, yq, st,
                                  nrs, NIB_ARRAY_LEN(nrs), out, LDO);
        }
    }
    if (types == 0)
        TEST_SKIP("no tile kernel on this CPU (%s)", eng_quant_isa());
    fprintf(stderr, "%d outputs of %d types bit-identical\n", checked, types);
    return 0;
}

/* The tiles on plain vec_dot_type rows (the K-quants' on Q8_K, where the
 * CPU has them) against vec_dot_nrc, bit for bit, and the reference: the
 * lengths take one to 35 super-blocks (8960, the 1.5B down projection:
 * steps of four, the last short), 37 rows three row blocks. */
TEST_IMPL(quant_tile_plain) {
    enum { N = 8960, ROWS = 37, LDO = ROWS + 3 };
    static const int lens[] = {256, 768, 1024, 1280, 1536, 4864, 8960};
    static const int nrs[] = {1, 3, 4, 5, 15, 16, 17, 37};
    static float x[N], y[N];
    static uint8_t w[ROWS * N], yq[ENG_NRC_MAX * N * 2];
    static float out[ENG_NRC_MAX * LDO];
    eng_quant_init();
    int checked = 0, types = 0;
    for (size_t ti = 0; ti < NIB_ARRAY_LEN(run_types); ti++) {
        const eng_type t = run_types[ti];
        const eng_type_traits_t *tt = &eng_type_traits[t];
        if (!tt->vec_dot_tile)
            continue;
        const eng_type_traits_t *vt = &eng_type_traits[tt->vec_dot_type];
        types++;
        for (size_t li = 0; li < NIB_ARRAY_LEN(lens); li++) {
            const int n = lens[li];
            const size_t rb = eng_row_size(t, n);
            const size_t st = eng_row_size(tt->vec_dot_type, n) + 8 * (li % 2);
            for (int r = 0; r < ROWS; r++) {
                fill_normal(x, n, 1.0f, r % 3 ? 0.0f : 0.3f);
                tt->from_float_ref(x, w + r * rb, n);
            }
            for (int c = 0; c < ENG_NRC_MAX; c++) {
                fill_normal(y, n, 1.0f + c, 0.0f);
                vt->from_float(y, yq + c * st, n);
            }
            checked +=
                check_tile(tt, tt->vec_dot_tile, tt->vec_dot_nrc, n, w, rb, yq,
                           yq, yq, st, nrs, NIB_ARRAY_LEN(nrs), out, LDO);
        }
    }
    if (types == 0)
        TEST_SKIP("no plain tile kernel on this CPU (%s)", eng_quant_isa());
    fprintf(stderr, "%d outputs of %d types bit-identical\n", checked, types);
    return 0;
}

/* Where quant j of block b sits in a packed Q8_0 activation row of nb
 * blocks (gemm_avx512.c): full groups of four blocks take 128 bytes, whose
 * int32 lane 4q + (b % 4) holds elements 4q..4q+3 (first 64 bytes) or
 * 16 + 4q.. (last 64) of block b; leftover blocks stay in element order. */
static size_t packed_q8_0_pos(int nb, int b, int j) {
    if (b >= nb / 4 * 4)
        return (size_t)b * 32 + (size_t)j;
    const int half = j / 16, e = j % 16;
    return (size_t)(b / 4) * 128 + (size_t)half * 64 +
           (size_t)(4 * (4 * (e / 4) + b % 4) + e % 4);
}

/* The packed Q8_0 activation row (from_float_packed) holds the bytes of
 * from_float's blocks, rearranged: the quants + 128 in packed_q8_0_pos's
 * order, then the fp16 scales as F32, in eng_row_size_packed bytes. The
 * packed quantizer works 16 blocks at a time with vector divisions, so
 * this compares it with from_float block for block, bit for bit, on rows
 * of every leftover count and on the awkward values: all-zero blocks,
 * ties of x * id, scales that are fp16 subnormals or overflow, infinities
 * and NaNs (whose blocks take from_float's own path). */
TEST_IMPL(quant_q8_0_packed_layout) {
    enum { N = 4096 + 32 * 15 };
    static float x[N];
    static uint8_t q[N * 2], p[N * 2];
    eng_quant_init();
    const eng_type_traits_t *vt = &eng_type_traits[ENG_TYPE_Q8_0];
    if (!vt->from_float_packed)
        TEST_SKIP("no packed Q8_0 activations on this CPU (%s)",
                  eng_quant_isa());
    static const float special[] = {
        0.0f,    -0.0f, INFINITY, -INFINITY,     NAN,   1e-40f,
        -3e-41f, 1e38f, -3.4e38f, 65504.f * 127, 1e-7f, 0.5f};
    int rows = 0;
    for (int kind = 0; kind < 6; kind++) {
        for (int nb = 1; nb <= N / 32; nb += (nb < 40 ? 1 : 37)) {
            const int n = nb * 32;
            fill_normal(x, n, kind == 3 ? 1e-6f : 1.0f, 0.0f);
            for (int i = 0; i < n; i++) {
                if (kind == 1 && i % 97 == 0) /* specials here and there */
                    x[i] = special[(i / 97) % NIB_ARRAY_LEN(special)];
                if (kind == 2 && (i / 32) % 3 == 0) /* all-zero blocks */
                    x[i] = 0.0f;
                if (kind == 4) /* ties: amax 127 makes id 1 */
                    x[i] = (float)(i % 255 - 127) + (i % 32 ? 0.5f : 0.0f);
                if (kind == 5 && i % 32 == 0) /* scales past fp16's range */
                    x[i] = (i / 32) % 2 ? 1e9f : 3e-9f;
            }
            if (kind == 4)
                for (int b = 0; b < nb; b++)
                    x[b * 32 + 1] = 127.0f; /* amax exactly 127 */
            ASSERT_EQ(eng_row_size_packed(ENG_TYPE_Q8_0, n),
                      (size_t)n + (size_t)nb * 4);
            vt->from_float(x, q, n);
            vt->from_float_packed(x, p, n);
            for (int b = 0; b < nb; b++) {
                const block_q8_0 *blk = (const block_q8_0 *)q + b;
                for (int j = 0; j < 32; j++) {
                    const size_t at = packed_q8_0_pos(nb, b, j);
                    const uint8_t want = (uint8_t)(blk->qs[j] ^ 0x80);
                    ASSERT_MSG(p[at] == want,
                               "kind %d n=%d block %d quant %d: %u, want %u",
                               kind, n, b, j, p[at], want);
                }
                const float want = eng_fp16_to_fp32(blk->d);
                ASSERT_MSG(memcmp(p + n + 4 * b, &want, 4) == 0,
                           "kind %d n=%d block %d: scale differs", kind, n, b);
            }
            rows++;
        }
    }
    fprintf(stderr, "%d rows bit-identical\n", rows);
    return 0;
}

/* ---- bytes of llama.cpp's quantizer -------------------------------------- */

/* The shared quantized models were written by llama.cpp's quantizer (no
 * importance matrix) from the F16 model, so quantizing the F16 weights
 * with the _ref algorithms must reproduce every block byte for byte. This
 * is what makes `nib quantize` interchangeable with llama-quantize. */
TEST_IMPL(quant_matches_llamacpp) {
    const char *p = test_shared("models/rq-star-f16.gguf");
    if (!p)
        TEST_SKIP("../shared/models/rq-star-f16.gguf absent");
    char src_path[1024];
    snprintf(src_path, sizeof(src_path), "%s", p);
    eng_gguf *src;
    char err[256];
    ASSERT_OK(eng_gguf_open(src_path, &src, err, sizeof(err)));
    static const char *models[] = {"rq-star-q8_0.gguf", "rq-star-q4_0.gguf",
                                   "rq-star-q4_k_m.gguf",
                                   "rq-star-q5_k_m.gguf"};
    int64_t blocks_by_type[ENG_TYPE_COUNT] = {0};
    for (size_t mi = 0; mi < NIB_ARRAY_LEN(models); mi++) {
        char rel[256];
        snprintf(rel, sizeof(rel), "models/%s", models[mi]);
        const char *mp = test_shared(rel);
        ASSERT(mp != NULL);
        eng_gguf *q;
        ASSERT_OK(eng_gguf_open(mp, &q, err, sizeof(err)));
        for (uint64_t ti = 0; ti < q->n_tensors; ti++) {
            const eng_gguf_tensor *qt = &q->tensors[ti];
            eng_type t = (eng_type)qt->type;
            if (eng_type_traits[t].blck_size == 1)
                continue; /* float tensors are copies */
            ASSERT_MSG(eng_type_traits[t].supported, "%s: %s", qt->name,
                       eng_type_traits[t].name);
            const eng_gguf_tensor *st = eng_gguf_find_tensor(src, qt->name);
            ASSERT(st && st->type == ENG_TYPE_F16);
            ASSERT_EQ(st->n_elements, qt->n_elements);
            const int64_t ne0 = (int64_t)qt->ne[0];
            const int64_t nrows = (int64_t)(qt->n_elements / qt->ne[0]);
            float *x = nib_malloc((size_t)ne0 * sizeof(float));
            uint8_t *row = nib_malloc(eng_row_size(t, ne0));
            const size_t rs = eng_row_size(t, ne0);
            const size_t ts = eng_type_traits[t].type_size;
            for (int64_t r = 0; r < nrows; r++) {
                eng_type_traits[ENG_TYPE_F16].to_float(
                    (const eng_fp16 *)st->data + r * ne0, x, ne0);
                eng_quantize_rows(t, x, row, 1, ne0);
                const uint8_t *want = (const uint8_t *)qt->data + r * rs;
                for (size_t b = 0; b < rs / ts; b++)
                    ASSERT_MSG(memcmp(row + b * ts, want + b * ts, ts) == 0,
                               "%s %s (%s) row %" PRId64 " block %zu differs",
                               models[mi], qt->name, eng_type_traits[t].name, r,
                               b);
                blocks_by_type[t] += (int64_t)(rs / ts);
            }
            nib_free(x);
            nib_free(row);
        }
        eng_gguf_close(q);
    }
    eng_gguf_close(src);
    const eng_type expect[] = {ENG_TYPE_Q8_0, ENG_TYPE_Q4_0, ENG_TYPE_Q4_K,
                               ENG_TYPE_Q5_K, ENG_TYPE_Q6_K};
    for (size_t i = 0; i < NIB_ARRAY_LEN(expect); i++) {
        fprintf(stderr, "%-5s %" PRId64 " blocks identical\n",
                eng_type_traits[expect[i]].name, blocks_by_type[expect[i]]);
        ASSERT_GT(blocks_by_type[expect[i]], 0);
    }
    return 0;
}
