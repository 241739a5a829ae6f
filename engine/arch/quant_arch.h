/*
 * quant_arch.h — the seam between quant.c and the per-ISA kernel files
 * (engine-internal, included only by quant.c and arch/).
 *
 * Each ISA file (quant_avx2.c, quant_avx512.c, compiled with that ISA's -m
 * flags) exports one eng_arch_kernels table whose non-NULL entries replace
 * the scalar defaults of eng_type_traits. cpu.c, compiled without ISA flags,
 * decides from CPUID which tables may run here. Nothing in an ISA file may
 * run before that check, so the tables hold only function pointers.
 */
#ifndef NIB_ENGINE_ARCH_QUANT_ARCH_H
#define NIB_ENGINE_ARCH_QUANT_ARCH_H

#include "../quant.h"

typedef struct {
    const char *isa;                                /* "avx2", "avx512" */
    eng_vec_dot_fn vec_dot[ENG_TYPE_COUNT];         /* by weight type */
    eng_from_float_fn from_float[ENG_TYPE_COUNT];   /* by destination type */
    eng_vec_dot_nrc_fn vec_dot_nrc[ENG_TYPE_COUNT]; /* by weight type */
    /* packed-activation batched dots (by weight type) and the packers (by
     * activation type); see eng_type_traits_t */
    eng_vec_dot_nrc_fn vec_dot_nrc_packed[ENG_TYPE_COUNT];
    eng_from_float_fn from_float_packed[ENG_TYPE_COUNT];
    eng_vec_dot_tile_fn vec_dot_tile_packed[ENG_TYPE_COUNT]; /* by weight */
    /* tiles on vec_dot_type rows, bit-identical to vec_dot_nrc */
    eng_vec_dot_tile_fn vec_dot_tile[ENG_TYPE_COUNT];
} eng_arch_kernels;

#define ENG_ARCH_MAX 8

/* The kernel tables of the ISAs this CPU and OS support, slowest first.
 * Returns how many were written (<= max); 0 off x86-64. */
int eng__arch_available(const eng_arch_kernels **out, int max);

#if defined(__x86_64__)
extern const eng_arch_kernels eng__kernels_avx2;
/* gemm_avx2.c: batched dots bit-identical to the AVX2 vec_dot, the packed
 * Q8_0 activation row's packer and the Q4_0/Q5_0 packed kernels
 * (packed_avx2.h), installed after eng__kernels_avx2. */
extern const eng_arch_kernels eng__kernels_avx2_gemm;
/* quant_avxvnni.c: the Q8_0, Q4_0, Q5_0 vec_dots and packed kernels with
 * AVX-VNNI (same results as the AVX2 ones; Q8_0's packed kernels are
 * VNNI-only), and Q4_K / Q5_K one-column and batched dots (equal to each
 * other, to the AVX2 ones up to float rounding), installed after
 * eng__kernels_avx2_gemm where the CPU has it. */
extern const eng_arch_kernels eng__kernels_avxvnni;
extern const eng_arch_kernels eng__kernels_avx512;
/* gemm_avx512.c: batched dots bit-identical to vec_dot (only vec_dot_nrc
 * entries), installed after eng__kernels_avx512. */
extern const eng_arch_kernels eng__kernels_avx512_gemm;
/* gemm_avx512.c: the Q5_0 packed kernels with VBMI and BITALG (same
 * results), installed after eng__kernels_avx512_gemm where the CPU has
 * both. */
extern const eng_arch_kernels eng__kernels_avx512_vbmi;
#endif

/* Shared scalar helper (quant.c): unpack Q4_K/Q5_K's 12-byte 6-bit
 * scales and mins into 8 + 8 bytes. */
void eng__unpack_scales_k4(const uint8_t *q, uint8_t sc[8], uint8_t mn[8]);

#endif
