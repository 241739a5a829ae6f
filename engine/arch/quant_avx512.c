/*
 * quant_avx512.c — AVX-512 F/BW/DQ/VL + VNNI + BF16 kernels (compiled with
 * those -m flags; run only after cpu.c found them).
 */
#include "quant_arch.h"

#if defined(__x86_64__)
const eng_arch_kernels eng__kernels_avx512 = {
    .isa = "avx512",
};
#endif
