/*
 * attn_arch.h — the seam between attn.c and its SIMD twin (engine-internal,
 * included only by attn.c, arch/attn_*.c and the kernel tests).
 *
 * One unit of attention work is one query token and a few query heads that
 * share one KV head, so the SIMD version converts each fp16 key and value
 * once for all of them. The scalar reference lives in attn.c and works head
 * by head; arch/attn_avx512.c computes the same floats in the same order
 * (16-lane FMAs, the same lane trees, the same vector exp), so the two
 * agree bit for bit, which tests kernels_attn_group and
 * kernels_attn_exp_range check.
 */
#ifndef NIB_ENGINE_ARCH_ATTN_ARCH_H
#define NIB_ENGINE_ARCH_ATTN_ARCH_H

#include <stddef.h>

#include "../quant.h"

/* Floats of scratch one unit of ng heads over up to n_pos positions needs
 * (scores of each head, its query, 16 keys in F32, alignment slack). */
#define ENG_ATTN_SCRATCH(n_pos, hd, ng)                                        \
    ((size_t)(ng) * ((size_t)(n_pos) + 16 + (size_t)(hd)) +                    \
     16 * (size_t)(hd) + 16)

/* out[g*hd ..][0..hd) = softmax(scale * K q_g) V for the ng query heads
 * q + g*hd (g < ng) that share one KV head, over n_pos cached positions.
 * k and v point at that KV head's slice of position 0; position j is at
 * k + j * stride (elements). scratch holds ENG_ATTN_SCRATCH(n_pos, hd, ng)
 * floats (borrowed, overwritten). */
typedef void (*eng_attn_group_fn)(float *out, const float *q, const eng_fp16 *k,
                                  const eng_fp16 *v, size_t stride, int hd,
                                  int ng, int n_pos, float scale,
                                  float *scratch);

/* attn.c: the scalar reference for one head. att is scratch of at least
 * n_pos + 16 floats, q16 of hd halves (both borrowed, overwritten). */
void eng__attn_head_ref(float *out, const float *q, const eng_fp16 *k,
                        const eng_fp16 *v, size_t stride, int hd, int n_pos,
                        float scale, float *att, eng_fp16 *q16);

/* attn.c: the reference for a group, eng__attn_head_ref head by head. */
void eng__attn_group_ref(float *out, const float *q, const eng_fp16 *k,
                         const eng_fp16 *v, size_t stride, int hd, int ng,
                         int n_pos, float scale, float *scratch);

/* The fastest version for this CPU (the reference under NIB_FORCE_SCALAR
 * or without AVX-512); call after eng_quant_init. */
eng_attn_group_fn eng__attn_group_best(void);

/* o[i] = g[i] / (1 + exp(-g[i])) * u[i] (SwiGLU; o may be g), the exp
 * being eng__expf_vec. attn.c holds the reference, attn_avx512.c its
 * bit-identical vector twin (it shares the vector exp); the best one for
 * this CPU after eng_quant_init. */
typedef void (*eng_swiglu_fn)(float *o, const float *g, const float *u, int n);
void eng__swiglu_ref(float *o, const float *g, const float *u, int n);
eng_swiglu_fn eng__swiglu_best(void);

#if defined(__x86_64__)
void eng__swiglu_avx512(float *o, const float *g, const float *u, int n);
/* attn_avx512.c: hd a multiple of 16 (others go to the reference). Run
 * only where cpu.c found AVX-512. */
void eng__attn_group_avx512(float *out, const float *q, const eng_fp16 *k,
                            const eng_fp16 *v, size_t stride, int hd, int ng,
                            int n_pos, float scale, float *scratch);
#endif

#endif
