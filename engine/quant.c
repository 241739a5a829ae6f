/*
 * quant.c — the type-traits table and the scalar reference code of every
 * tensor format. SIMD variants live in arch/ and are installed by
 * eng_quant_init().
 */
#include "quant.h"

#include <string.h>

#define FLOAT_T(nm, bs, ts) {.name = nm, .blck_size = bs, .type_size = ts}
#define QUANT_T(nm, bs, ts) {.name = nm, .blck_size = bs, .type_size = ts}

/* Ids that ggml has retired keep type_size 0 so the GGUF reader rejects
 * them as unknown. */
eng_type_traits_t eng_type_traits[ENG_TYPE_COUNT] = {
    [ENG_TYPE_F32] = FLOAT_T("F32", 1, 4),
    [ENG_TYPE_F16] = FLOAT_T("F16", 1, 2),
    [ENG_TYPE_Q4_0] = QUANT_T("Q4_0", QK4_0, sizeof(block_q4_0)),
    [ENG_TYPE_Q4_1] = QUANT_T("Q4_1", QK4_1, sizeof(block_q4_1)),
    [ENG_TYPE_Q5_0] = QUANT_T("Q5_0", QK5_0, sizeof(block_q5_0)),
    [ENG_TYPE_Q5_1] = QUANT_T("Q5_1", QK5_1, sizeof(block_q5_1)),
    [ENG_TYPE_Q8_0] = QUANT_T("Q8_0", QK8_0, sizeof(block_q8_0)),
    [ENG_TYPE_Q8_1] = QUANT_T("Q8_1", QK8_1, sizeof(block_q8_1)),
    [ENG_TYPE_Q2_K] = QUANT_T("Q2_K", QK_K, sizeof(block_q2_K)),
    [ENG_TYPE_Q3_K] = QUANT_T("Q3_K", QK_K, sizeof(block_q3_K)),
    [ENG_TYPE_Q4_K] = QUANT_T("Q4_K", QK_K, sizeof(block_q4_K)),
    [ENG_TYPE_Q5_K] = QUANT_T("Q5_K", QK_K, sizeof(block_q5_K)),
    [ENG_TYPE_Q6_K] = QUANT_T("Q6_K", QK_K, sizeof(block_q6_K)),
    [ENG_TYPE_Q8_K] = QUANT_T("Q8_K", QK_K, sizeof(block_q8_K)),
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
    [ENG_TYPE_BF16] = FLOAT_T("BF16", 1, 2),
    [ENG_TYPE_TQ1_0] = QUANT_T("TQ1_0", QK_K, 54),
    [ENG_TYPE_TQ2_0] = QUANT_T("TQ2_0", QK_K, 66),
    [ENG_TYPE_MXFP4] = QUANT_T("MXFP4", 32, 17),
};

size_t eng_row_size(eng_type t, int64_t n) {
    return (size_t)(n / eng_type_traits[t].blck_size) *
           eng_type_traits[t].type_size;
}
