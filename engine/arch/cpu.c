/*
 * cpu.c — which kernel tables this machine can run. Compiled without ISA
 * flags so that it runs everywhere.
 */
#include "quant_arch.h"

#if defined(__x86_64__) && defined(__GNUC__)
/* __builtin_cpu_supports also checks XCR0 (xgetbv), so an OS that does not
 * save the AVX/AVX-512 register state reports the feature as missing. */
static bool has_avx2(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
           __builtin_cpu_supports("f16c") && __builtin_cpu_supports("bmi2");
}

static bool has_avxvnni(void) {
    return has_avx2() && __builtin_cpu_supports("avxvnni");
}

static bool has_avx512(void) {
    /* The avx512 file is compiled for F/BW/DQ/VL plus VNNI and BF16 in one
     * go; a CPU missing any of them (Skylake-X lacks VNNI and BF16) stays
     * on AVX2 rather than risking an illegal instruction. */
    return has_avx2() && __builtin_cpu_supports("avx512f") &&
           __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512dq") &&
           __builtin_cpu_supports("avx512vl") &&
           __builtin_cpu_supports("avx512vnni") &&
           __builtin_cpu_supports("avx512bf16");
}

static bool has_avx512_vbmi(void) {
    return has_avx512() && __builtin_cpu_supports("avx512vbmi") &&
           __builtin_cpu_supports("avx512bitalg");
}

int eng__arch_available(const eng_arch_kernels **out, int max) {
    int n = 0;
    if (n < max && has_avx2())
        out[n++] = &eng__kernels_avx2;
    /* gemm_avx2.c: the batched K-quant dots and packed kernels */
    if (n < max && has_avx2())
        out[n++] = &eng__kernels_avx2_gemm;
    if (n < max && has_avxvnni())
        out[n++] = &eng__kernels_avxvnni;
    if (n < max && has_avx512())
        out[n++] = &eng__kernels_avx512;
    /* After it, so that its batched dots replace quant_avx512.c's. */
    if (n < max && has_avx512())
        out[n++] = &eng__kernels_avx512_gemm;
    if (n < max && has_avx512_vbmi())
        out[n++] = &eng__kernels_avx512_vbmi;
    return n;
}
#else
int eng__arch_available(const eng_arch_kernels **out, int max) {
    (void)out;
    (void)max;
    return 0;
}
#endif
