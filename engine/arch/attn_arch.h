/*
 * attn_arch.h — the seam between attn.c and its SIMD twin (engine-internal,
 * included only by attn.c, arch/attn_*.c and the kernel tests).
 *
 * One unit of attention work is one (query token, head) pair. The scalar
 * reference lives in attn.c; arch/attn_avx512.c computes the same floats
 * in the same order (16-lane FMAs, the same lane trees, the same vector
 * exp), so the two agree bit for bit, which test kernels_attn_head checks.
 */
#ifndef NIB_ENGINE_ARCH_ATTN_ARCH_H
#define NIB_ENGINE_ARCH_ATTN_ARCH_H

#include <stddef.h>

#include "../quant.h"

/* out[0..hd) = softmax(scale * K q) V for one query head over n_pos cached
 * positions. k and v point at this head's slice of position 0; position j
 * is at k + j * stride (elements). att is scratch of at least n_pos + 16
 * floats, q16 of hd halves (both borrowed, overwritten). */
typedef void (*eng_attn_head_fn)(float *out, const float *q,
                                 const eng_fp16 *k, const eng_fp16 *v,
                                 size_t stride, int hd, int n_pos, float scale,
                                 float *att, eng_fp16 *q16);

/* attn.c: the scalar reference. */
void eng__attn_head_ref(float *out, const float *q, const eng_fp16 *k,
                        const eng_fp16 *v, size_t stride, int hd, int n_pos,
                        float scale, float *att, eng_fp16 *q16);

/* The fastest version for this CPU (the reference under NIB_FORCE_SCALAR
 * or without AVX-512); call after eng_quant_init. */
eng_attn_head_fn eng__attn_head_best(void);

#if defined(__x86_64__)
/* attn_avx512.c: hd a multiple of 16 (others go to the reference). Run
 * only where cpu.c found AVX-512. */
void eng__attn_head_avx512(float *out, const float *q, const eng_fp16 *k,
                           const eng_fp16 *v, size_t stride, int hd, int n_pos,
                           float scale, float *att, eng_fp16 *q16);
#endif

#endif
