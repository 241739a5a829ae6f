/*
 * quant_avx2.c — AVX2 + FMA + F16C kernels (compiled with those -m flags;
 * run only after cpu.c found them).
 */
#include "quant_arch.h"

#if defined(__x86_64__)
const eng_arch_kernels eng__kernels_avx2 = {
    .isa = "avx2",
};
#endif
