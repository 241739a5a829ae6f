/*
 * attn_arch.h — the seam between attn.c and its SIMD twin (engine-internal,
 * included only by attn.c, arch/attn_*.c and the kernel tests).
 *
 * One unit of attention work is one KV head, the query heads that share it
 * and a run of consecutive tokens of the batch, so the SIMD version
 * converts each fp16 key once for all of those query rows. Each row's
 * result depends only on its own query and positions, never on the unit it
 * came in: a token's output is the same in a batch as on its own. The
 * scalar reference lives in attn.c and works head by head; a score is one
 * sequential chain of fused multiply-adds along the head, which
 * arch/attn_avx512.c runs for sixteen positions per register, and its
 * softmax and p.V keep the reference's 16-lane sums and lane trees and
 * vector exp, so the two agree bit for bit, which tests kernels_attn_group
 * and kernels_attn_exp_range check.
 */
#ifndef NIB_ENGINE_ARCH_ATTN_ARCH_H
#define NIB_ENGINE_ARCH_ATTN_ARCH_H

#include <stddef.h>

#include "../quant.h"

/* Tokens of a batch one unit covers at most. */
#define ENG_ATTN_TOKENS 8

/* Floats of scratch one unit of nt tokens x ng heads needs when its last
 * token sees n_pos positions (scores of each row, its query, 32 keys in
 * F32, alignment slack). */
#define ENG_ATTN_SCRATCH(n_pos, hd, ng, nt)                                    \
    ((size_t)(nt) * (size_t)(ng) * ((size_t)(n_pos) + 16 + (size_t)(hd)) +     \
     32 * (size_t)(hd) + 16)

/* For tokens t < nt and the ng query heads g < ng that share one KV head:
 * out + t * ts + g * hd [0..hd) = softmax(scale * K q) V for the query
 * q + t * ts + g * hd over the first n_pos + t cached positions (token t
 * is t places after the first, which sees n_pos). k and v point at that KV
 * head's slice of position 0; position j is at k + j * stride (elements).
 * scratch holds ENG_ATTN_SCRATCH(n_pos + nt - 1, hd, ng, nt) floats
 * (borrowed, overwritten). */
typedef void (*eng_attn_group_fn)(float *out, const float *q, size_t ts,
                                  const eng_fp16 *k, const eng_fp16 *v,
                                  size_t stride, int hd, int ng, int nt,
                                  int n_pos, float scale, float *scratch);

/* attn.c: the scalar reference for one head. att is scratch of at least
 * n_pos + 16 floats, q16 of hd halves (both borrowed, overwritten). */
void eng__attn_head_ref(float *out, const float *q, const eng_fp16 *k,
                        const eng_fp16 *v, size_t stride, int hd, int n_pos,
                        float scale, float *att, eng_fp16 *q16);

/* attn.c: the reference's softmax of x[0..n) in place (blocks of 16
 * exponentials summed as a tree, the blocks in double). */
void eng__attn_softmax_ref(float *x, int n);

/* attn.c: the reference for a unit, eng__attn_head_ref row by row. */
void eng__attn_group_ref(float *out, const float *q, size_t ts,
                         const eng_fp16 *k, const eng_fp16 *v, size_t stride,
                         int hd, int ng, int nt, int n_pos, float scale,
                         float *scratch);

/* The fastest version for this CPU (the reference under NIB_FORCE_SCALAR
 * or without AVX2); call after eng_quant_init. */
eng_attn_group_fn eng__attn_group_best(void);

/* o[i] = g[i] / (1 + exp(-g[i])) * u[i] (SwiGLU; o may be g), the exp
 * being eng__expf_vec. attn.c holds the reference, attn_avx512.c and
 * attn_avx2.c its bit-identical vector twins; the best one for this CPU
 * after eng_quant_init. */
typedef void (*eng_swiglu_fn)(float *o, const float *g, const float *u, int n);
void eng__swiglu_ref(float *o, const float *g, const float *u, int n);
eng_swiglu_fn eng__swiglu_best(void);

#if defined(__x86_64__)
void eng__swiglu_avx512(float *o, const float *g, const float *u, int n);
/* attn_avx2.c: the same with AVX2 + FMA */
void eng__swiglu_avx2(float *o, const float *g, const float *u, int n);
/* attn_avx512.c: hd a multiple of 16 (others go to the reference). Run
 * only where cpu.c found AVX-512. */
void eng__attn_group_avx512(float *out, const float *q, size_t ts,
                            const eng_fp16 *k, const eng_fp16 *v, size_t stride,
                            int hd, int ng, int nt, int n_pos, float scale,
                            float *scratch);
/* attn_avx2.c: the same with AVX2, FMA and F16C; hd a multiple of 8
 * (others go to the reference). Run only where cpu.c found AVX2. */
void eng__attn_group_avx2(float *out, const float *q, size_t ts,
                          const eng_fp16 *k, const eng_fp16 *v, size_t stride,
                          int hd, int ng, int nt, int n_pos, float scale,
                          float *scratch);
#endif

#endif
