/*
 * quant.h — tensor types, their packed block formats and the type-traits
 * table (engine-internal).
 *
 * Type ids are ggml's, so GGUF tensor types index eng_type_traits directly.
 * Each block struct is bit-exact with the GGUF format. Every quantized type
 * has scalar `_ref` code (quantize_row_X_ref, dequantize_row_X, and a scalar
 * vec_dot) that the SIMD variants in arch/ are tested against.
 *
 * Kernel files: quant.c (scalar, the whole path without SIMD), arch/cpu.c
 * (CPUID), arch/quant_avx2.c (AVX2+FMA+F16C), arch/quant_avx512.c
 * (F/BW/DQ/VL + VNNI + BF16, only where it beats AVX2). The quantizers
 * reproduce llama.cpp's files byte for byte (test quant_matches_llamacpp).
 */
#ifndef NIB_ENGINE_QUANT_H
#define NIB_ENGINE_QUANT_H

#include <assert.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef uint16_t eng_fp16; /* IEEE half, raw bits */
typedef uint16_t eng_bf16; /* bfloat16, raw bits */

typedef enum {
    ENG_TYPE_F32 = 0,
    ENG_TYPE_F16 = 1,
    ENG_TYPE_Q4_0 = 2,
    ENG_TYPE_Q4_1 = 3,
    ENG_TYPE_Q5_0 = 6,
    ENG_TYPE_Q5_1 = 7,
    ENG_TYPE_Q8_0 = 8,
    ENG_TYPE_Q8_1 = 9,
    ENG_TYPE_Q2_K = 10,
    ENG_TYPE_Q3_K = 11,
    ENG_TYPE_Q4_K = 12,
    ENG_TYPE_Q5_K = 13,
    ENG_TYPE_Q6_K = 14,
    ENG_TYPE_Q8_K = 15,
    ENG_TYPE_IQ2_XXS = 16,
    ENG_TYPE_IQ2_XS = 17,
    ENG_TYPE_IQ3_XXS = 18,
    ENG_TYPE_IQ1_S = 19,
    ENG_TYPE_IQ4_NL = 20,
    ENG_TYPE_IQ3_S = 21,
    ENG_TYPE_IQ2_S = 22,
    ENG_TYPE_IQ4_XS = 23,
    ENG_TYPE_I8 = 24,
    ENG_TYPE_I16 = 25,
    ENG_TYPE_I32 = 26,
    ENG_TYPE_I64 = 27,
    ENG_TYPE_F64 = 28,
    ENG_TYPE_IQ1_M = 29,
    ENG_TYPE_BF16 = 30,
    ENG_TYPE_TQ1_0 = 34,
    ENG_TYPE_TQ2_0 = 35,
    ENG_TYPE_MXFP4 = 39,
    ENG_TYPE_COUNT = 40
} eng_type;

/* ---- block formats ------------------------------------------------------- */

#define QK4_0 32
typedef struct {
    eng_fp16 d;            /* scale */
    uint8_t qs[QK4_0 / 2]; /* nibbles: low = element j, high = j + 16 */
} block_q4_0;
static_assert(sizeof(block_q4_0) == 18, "block_q4_0 size");

#define QK4_1 32
typedef struct {
    eng_fp16 d;            /* scale */
    eng_fp16 m;            /* min */
    uint8_t qs[QK4_1 / 2]; /* nibbles */
} block_q4_1;
static_assert(sizeof(block_q4_1) == 20, "block_q4_1 size");

#define QK5_0 32
typedef struct {
    eng_fp16 d;            /* scale */
    uint8_t qh[4];         /* 5th bit of each element */
    uint8_t qs[QK5_0 / 2]; /* low 4 bits */
} block_q5_0;
static_assert(sizeof(block_q5_0) == 22, "block_q5_0 size");

#define QK5_1 32
typedef struct {
    eng_fp16 d;            /* scale */
    eng_fp16 m;            /* min */
    uint8_t qh[4];         /* 5th bit */
    uint8_t qs[QK5_1 / 2]; /* low 4 bits */
} block_q5_1;
static_assert(sizeof(block_q5_1) == 24, "block_q5_1 size");

#define QK8_0 32
typedef struct {
    eng_fp16 d;       /* scale */
    int8_t qs[QK8_0]; /* quants */
} block_q8_0;
static_assert(sizeof(block_q8_0) == 34, "block_q8_0 size");

#define QK8_1 32
typedef struct {
    eng_fp16 d;       /* scale */
    eng_fp16 s;       /* d * sum(qs) */
    int8_t qs[QK8_1]; /* quants */
} block_q8_1;
static_assert(sizeof(block_q8_1) == 36, "block_q8_1 size");

#define QK_K         256
#define K_SCALE_SIZE 12

typedef struct {
    uint8_t scales[QK_K / 16]; /* 4-bit scales and mins */
    uint8_t qs[QK_K / 4];      /* 2-bit quants */
    eng_fp16 d;                /* super-block scale for scales */
    eng_fp16 dmin;             /* super-block scale for mins */
} block_q2_K;
static_assert(sizeof(block_q2_K) == 84, "block_q2_K size");

typedef struct {
    uint8_t hmask[QK_K / 8]; /* high bit */
    uint8_t qs[QK_K / 4];    /* low 2 bits */
    uint8_t scales[12];      /* 6-bit scales */
    eng_fp16 d;              /* super-block scale */
} block_q3_K;
static_assert(sizeof(block_q3_K) == 110, "block_q3_K size");

typedef struct {
    eng_fp16 d;                   /* super-block scale for scales */
    eng_fp16 dmin;                /* super-block scale for mins */
    uint8_t scales[K_SCALE_SIZE]; /* 8 x (6-bit scale, 6-bit min) */
    uint8_t qs[QK_K / 2];         /* 4-bit quants */
} block_q4_K;
static_assert(sizeof(block_q4_K) == 144, "block_q4_K size");

typedef struct {
    eng_fp16 d;                   /* super-block scale for scales */
    eng_fp16 dmin;                /* super-block scale for mins */
    uint8_t scales[K_SCALE_SIZE]; /* 8 x (6-bit scale, 6-bit min) */
    uint8_t qh[QK_K / 8];         /* 5th bit */
    uint8_t qs[QK_K / 2];         /* low 4 bits */
} block_q5_K;
static_assert(sizeof(block_q5_K) == 176, "block_q5_K size");

typedef struct {
    uint8_t ql[QK_K / 2];     /* low 4 bits */
    uint8_t qh[QK_K / 4];     /* high 2 bits */
    int8_t scales[QK_K / 16]; /* 8-bit scales */
    eng_fp16 d;               /* super-block scale */
} block_q6_K;
static_assert(sizeof(block_q6_K) == 210, "block_q6_K size");

/* Activations for K-quant dot products (never stored in files). */
typedef struct {
    float d;                  /* scale */
    int8_t qs[QK_K];          /* quants */
    int16_t bsums[QK_K / 16]; /* sum of each group of 16 quants */
} block_q8_K;
static_assert(sizeof(block_q8_K) == 292, "block_q8_K size");

/* Q8_K activations as the AVX-512 Q4_K / Q5_K batch tiles read them
 * (quant_avx512.c; from_float_packed, never stored in files): from_float's
 * quants rearranged, and 320 bytes so that each block's quants start a
 * cache line wherever the row does. */
typedef struct {
    int8_t qs[QK_K]; /* from_float's quants in the tiles' order */
    float pairs[8];  /* bsums[2j] + bsums[2j + 1] */
    float d;         /* scale */
    uint8_t pad[28];
} block_q8_K_packed;
static_assert(sizeof(block_q8_K_packed) == 320, "block_q8_K_packed size");

/* ---- type traits --------------------------------------------------------- */

/* y[0..k) = dequantized x; k is a multiple of blck_size. */
typedef void (*eng_to_float_fn)(const void *restrict x, float *restrict y,
                                int64_t k);
/* Quantize k floats into blocks at y; k is a multiple of blck_size. */
typedef void (*eng_from_float_fn)(const float *restrict x, void *restrict y,
                                  int64_t k);
/* *s = dot(weights row vx, activations row vy) over n elements; vx has this
 * type, vy has vec_dot_type; n is a multiple of both block sizes. */
typedef void (*eng_vec_dot_fn)(int n, float *restrict s,
                               const void *restrict vx,
                               const void *restrict vy);

/* Batched dot: s[c] = dot(vx, vy + c * vy_stride) for c in [0, nrc), one
 * weight row against nrc activation rows (1 <= nrc <= ENG_NRC_MAX) of
 * vec_dot_type, vy_stride bytes apart. Each weight block is read and
 * decoded once for all nrc columns, so a prompt batch or a speculative
 * verify of nrc tokens costs little more memory traffic than one token.
 * Results equal nrc calls of vec_dot up to float summation order. */
#define ENG_NRC_MAX 8
typedef void (*eng_vec_dot_nrc_fn)(int n, int nrc, float *restrict s,
                                   const void *restrict vx,
                                   const void *restrict vy, size_t vy_stride);

/* out[c * ldo + r] = row r (at vx + r * row_bytes) . activation row c (at
 * vy + c * vy_stride), for r < nr, c < nc <= ENG_NRC_MAX: a tile of a
 * matrix product in one call. Each output is bit-identical to the batched
 * dot on the same rows: vec_dot_nrc_packed for vec_dot_tile_packed (packed
 * activation rows), vec_dot_nrc for vec_dot_tile (plain vec_dot_type
 * rows). The tile kernel saves the per-row call, reduces several rows'
 * sums at once, writes the outputs in place (one-token decode spent a
 * fifth of a 896-wide row on the rest) and keeps wide rows' columns in L1
 * by taking the rows a span at a time. */
typedef void (*eng_vec_dot_tile_fn)(int n, int nr, int nc, float *restrict out,
                                    size_t ldo, const void *restrict vx,
                                    size_t row_bytes, const void *restrict vy,
                                    size_t vy_stride);

typedef struct {
    const char *name;  /* "Q4_K" */
    int64_t blck_size; /* elements per block (1 for float types) */
    size_t type_size;  /* bytes per block; 0 = unknown id */
    bool supported;    /* nib can run weights of this type */
    /* Scalar reference dequantize. */
    eng_to_float_fn to_float;
    /* Scalar reference quantize: ggml's _ref algorithm, for model files. */
    eng_from_float_fn from_float_ref;
    /* Fastest quantize INTO this type, as ggml's CPU backend does it for
     * activations (may round differently from _ref, see quant_avx2.c). */
    eng_from_float_fn from_float;
    eng_vec_dot_fn vec_dot_ref; /* scalar reference dot */
    eng_vec_dot_fn vec_dot;     /* fastest dot for this CPU */
    /* What activations are converted to; ENG_TYPE_COUNT for the
     * activation-only types. */
    eng_type vec_dot_type;
    eng_vec_dot_nrc_fn vec_dot_nrc_ref; /* scalar: nrc x vec_dot_ref */
    /* Fastest batched dot (a loop over vec_dot where no ISA has one). */
    eng_vec_dot_nrc_fn vec_dot_nrc;
    /* Optional faster batched dot whose activation rows are in the packed
     * layout of vec_dot_type (written by that type's from_float_packed);
     * NULL where this CPU has none. Bit-identical to vec_dot per column. */
    eng_vec_dot_nrc_fn vec_dot_nrc_packed;
    /* NULL where none. Without vec_dot_nrc_packed beside it, a tile on
     * packed rows that is bit-identical to vec_dot_nrc on plain ones
     * instead, for batches only (the AVX-512 Q4_K and Q5_K). */
    eng_vec_dot_tile_fn vec_dot_tile_packed;
    /* Optional tile of rows against vec_dot_type rows (not packed), each
     * output bit-identical to vec_dot_nrc; NULL where none. */
    eng_vec_dot_tile_fn vec_dot_tile;
    /* For activation types: quantize into the packed layout the
     * vec_dot_nrc_packed kernels read, with the same rounding as
     * from_float (NULL where none); eng_row_size_packed bytes per row.
     * Q8_0's packed row is the n quants + 128 as bytes, then the n/32
     * scales (fp16 values) as F32; Q8_K's is block_q8_K_packed. */
    eng_from_float_fn from_float_packed;
} eng_type_traits_t;

/* A matmul row W (type t) times activations x (float):
 *     const eng_type_traits_t *tt = &eng_type_traits[t];
 *     eng_type_traits[tt->vec_dot_type].from_float(x, xq, n);  // once per x
 *     tt->vec_dot(n, &out, w_row, xq);                         // per row
 * For F32 weights from_float is a copy; for F16 it rounds x to fp16, as
 * ggml does. Supported weight types: F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1,
 * Q8_0, Q4_K, Q5_K, Q6_K. Q8_0, Q8_1 and Q8_K are the activation formats
 * (Q8_1 and Q8_K have no vec_dot and supported == false as weights). */

/* Indexed by eng_type. Filled statically with the scalar code; the fast
 * entries are replaced by eng_quant_init() from CPUID. */
extern eng_type_traits_t eng_type_traits[ENG_TYPE_COUNT];

/* Pick the fastest kernels for this CPU (idempotent, thread-safe; call it
 * before using vec_dot / from_float / vec_dot_nrc, which are the scalar
 * code until then). The environment variable NIB_FORCE_SCALAR=1 (any value
 * but "" and "0") keeps the scalar reference everywhere; NIB_FORCE_ISA=
 * scalar|avx2|avxvnni|avx512 caps the kernels at that ISA (on a CPU without it,
 * the best one below). */
void eng_quant_init(void);
/* "avx512", "avxvnni" (AVX2 with AVX-VNNI), "avx2" or "scalar": the
 * fastest ISA eng_quant_init installed (static string). */
const char *eng_quant_isa(void);
/* Whether the installed kernels include those of `isa` (one of the names
 * above): "avxvnni" and "avx512" include "avx2". */
bool eng_quant_isa_at_least(const char *isa);

/* For tests: every available implementation of vec_dot for type t on this
 * CPU, the scalar reference first, then each ISA that has its own kernel
 * for t. Returns how many were written (<= max); 0 for types without a
 * vec_dot. */
typedef struct {
    const char *isa;
    eng_vec_dot_fn vec_dot;
    eng_from_float_fn from_float;   /* quantize of vec_dot_type for that ISA
                                       (its own, or the best one below it) */
    eng_to_float_fn to_float;       /* dequantize (may equal the reference) */
    eng_vec_dot_nrc_fn vec_dot_nrc; /* batched dot of that ISA; NULL when it
                                       has none (loop over vec_dot) */
} eng_kernel_variant;
int eng_quant_variants(eng_type t, eng_kernel_variant *out, int max);

/* Row size in bytes of n elements of type t (n a multiple of blck_size). */
size_t eng_row_size(eng_type t, int64_t n);

/* Row size of n elements of activation type t in its packed layout
 * (from_float_packed); at least eng_row_size(t, n). */
size_t eng_row_size_packed(eng_type t, int64_t n);

/* ---- scalar conversions -------------------------------------------------- */

float eng_fp16_to_fp32(eng_fp16 h);
eng_fp16 eng_fp32_to_fp16(float f); /* round to nearest even */
float eng_bf16_to_fp32(eng_bf16 h);
eng_bf16 eng_fp32_to_bf16(float f); /* round to nearest even */

/* Weight quantization with an importance-free reference algorithm, as
 * ggml's quantize_row_X_ref. Used by `nib quantize` and `nib mkmodel`. */
size_t eng_quantize_rows(eng_type t, const float *src, void *dst, int64_t nrows,
                         int64_t n_per_row);

#endif
