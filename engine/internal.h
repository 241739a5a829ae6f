/*
 * internal.h — struct bodies shared by the engine's own files: the model
 * (config + weight views into the mapped GGUF), the inference state, the
 * thread pool and the matmul seam. Nothing outside engine/ includes this.
 */
#ifndef NIB_ENGINE_INTERNAL_H
#define NIB_ENGINE_INTERNAL_H

#include "engine.h"
#include "gguf.h"
#include "quant.h"

#include <stdatomic.h>

/* ---- thread pool --------------------------------------------------------- */

typedef struct eng_pool eng_pool;

/* A task is split into `nth` shares; share `ith` may run on any thread of
 * the pool (whichever comes first), so a share must not assume a thread. */
typedef void (*eng_task_fn)(void *arg, int ith, int nth);

/* Threads are created once here and live until eng_pool_delete: no thread
 * is created per call. n_threads includes the caller's thread. */
eng_pool *eng_pool_new(int n_threads);
void eng_pool_delete(eng_pool *p);
int eng_pool_size(const eng_pool *p);
/* Run fn on all threads and return when every share is done. Calls from one
 * thread at a time only. */
void eng_pool_run(eng_pool *p, eng_task_fn fn, void *arg);

/* ---- tensors and model --------------------------------------------------- */

typedef enum { ENG_ARCH_LLAMA, ENG_ARCH_QWEN2, ENG_ARCH_COUNT } eng_arch;

/* A 2-D weight view into the mapping: ne0 elements per row, ne1 rows. */
typedef struct {
    eng_type type;
    int64_t ne0;      /* row length (input features) */
    int64_t ne1;      /* rows (output features) */
    size_t row_bytes; /* bytes of one row */
    const void *data; /* borrowed from the mapping */
    const char *name; /* borrowed from the gguf */
} eng_tensor;

typedef struct {
    eng_arch arch;
    int n_vocab;     /* rows of the output matrix */
    int n_ctx_train; /* context the model was trained for */
    int dim;         /* embedding width */
    int hidden_dim;  /* FFN inner width */
    int n_layers;
    int n_heads;    /* query heads */
    int n_kv_heads; /* key/value heads (GQA when < n_heads) */
    int head_dim;   /* per-head width */
    int n_rot;      /* dims rotated by RoPE (<= head_dim) */
    bool rope_neox; /* NeoX halves (qwen2) vs adjacent pairs (llama) */
    float rope_base;
    float rope_freq_scale; /* 1 / linear scaling factor */
    float norm_eps;
} eng_config;

typedef struct {
    float *attn_norm;    /* [dim] (owned copy, converted to F32) */
    eng_tensor wq;       /* [dim] -> [n_heads * head_dim] */
    eng_tensor wk;       /* [dim] -> [n_kv_heads * head_dim] */
    eng_tensor wv;       /* [dim] -> [n_kv_heads * head_dim] */
    eng_tensor wo;       /* [n_heads * head_dim] -> [dim] */
    float *bq, *bk, *bv; /* QKV biases (qwen2) or NULL (owned) */
    float *ffn_norm;     /* [dim] (owned) */
    eng_tensor w_gate;   /* [dim] -> [hidden_dim] */
    eng_tensor w_up;     /* [dim] -> [hidden_dim] */
    eng_tensor w_down;   /* [hidden_dim] -> [dim] */
} eng_layer;

typedef struct {
    eng_tensor tok_embd; /* [dim] x n_vocab rows */
    eng_layer *layers;   /* [n_layers] (owned array) */
    float *out_norm;     /* [dim] (owned) */
    eng_tensor output;   /* [dim] -> [n_vocab]; = tok_embd when tied */
    bool tied;
} eng_weights;

struct eng_model {
    eng_gguf *gguf; /* owns the mapping the weights point into */
    eng_config cfg;
    eng_weights w;
    eng_vocab *vocab;
    char *name;  /* general.name (owned) */
    char *ftype; /* dominant weight type name (borrowed static) */
    uint64_t n_params;
    uint64_t weight_bytes;
};

/* ---- inference state ----------------------------------------------------- */

/* One KV sequence: the cache of one token stream (e.g. one document). */
typedef struct {
    uint64_t key;          /* caller's name for it */
    eng_fp16 *key_cache;   /* [n_layers][n_ctx][kv_dim] */
    eng_fp16 *value_cache; /* [n_layers][n_ctx][kv_dim] */
    int32_t *tokens;       /* [n_ctx] the tokens behind the cache */
    int n_past;
    uint64_t last_used; /* LRU clock */
} eng_seq;

struct eng_ctx {
    const eng_model *m;
    eng_ctx_params p;
    eng_pool *pool;

    /* activations for up to n_batch tokens, allocated once in eng_ctx_new */
    float *x;   /* [n_batch][dim] residual stream */
    float *xb;  /* [n_batch][max(dim, q_dim)] normed input / attention out */
    float *xb2; /* [n_batch][dim] projection output */
    float *q;   /* [n_batch][q_dim] */
    float *k;   /* [n_batch][kv_dim] */
    float *v;   /* [n_batch][kv_dim] */
    float *hb;  /* [n_batch][hidden_dim] */
    float *hb2; /* [n_batch][hidden_dim] */
    float *rope_cs;       /* [n_batch][n_rot]: n_rot/2 cosines, then sines */
    float *att;           /* [n_threads][ENG_ATTN_SCRATCH] attention scratch */
    float *logits;        /* [n_batch or 1][n_vocab] */
    int n_logits;         /* rows valid in logits after the last eval */
    bool logits_all_rows; /* row i of logits is token i of the last eval */
    /* activations converted to a weight's vec_dot_type, 64-byte aligned
     * inside wdata_mem (see eng__act_stride) */
    void *wdata;
    void *wdata_mem;
    size_t wdata_size;
    /* The sgemm path of float weights (matmul.c): activations rounded to
     * the weight's vec_dot_type, [n_batch][max width], and per pool share
     * a tile of weight rows dequantized to F32 (NULL when no weight of
     * the model takes that path). */
    float *blas_x;
    float *blas_w;
    size_t blas_w_floats; /* per share */
    int gemm_path;        /* ENG_GEMM_AUTO, _INT or _BLAS (benchmarks) */

    /* The current sequence's KV cache, [n_layers][n_ctx][kv_dim] fp16 each
     * as llama.cpp keeps it, and its tokens: aliases of seqs[cur]. */
    eng_fp16 *key_cache;
    eng_fp16 *value_cache;
    int n_ctx;
    int n_past;
    int32_t *tokens; /* [n_ctx] */

    bool (*abort_fn)(void *ud); /* polled between layers, may be NULL */
    void *abort_ud;

    eng_seq *seqs; /* [n_seqs] live sequences */
    int n_seqs;
    int cur; /* index of the current one in seqs */
    uint64_t clock;
    size_t seq_bytes; /* KV + token bytes of one sequence */
};

/* ---- kernels (forward.c, matmul.c) --------------------------------------- */

/* out[b][0..W.ne1) = W · x[b][0..W.ne0) for b < n_batch. x rows are
 * contiguous with stride W.ne0; out rows with stride W.ne1. The single seam
 * where matrix products happen, so BLAS or other GEMMs plug in here. */
void eng_matmul(eng_ctx *c, float *out, const eng_tensor *w, const float *x,
                int n_batch);

/* outs[i] = ws[i] · x for i < k, as eng_matmul each, with one conversion of
 * x and one thread sync for weights of the same width whose types read the
 * same activation format (others run apart). Results are those of
 * eng_matmul. */
#define ENG_MATMUL_MAX_PARTS 3

/* Which matmul path eng_matmul takes: the measured winner for the weight
 * type and batch size, or one forced (nib bench --gemm compares them). */
enum { ENG_GEMM_AUTO, ENG_GEMM_INT, ENG_GEMM_BLAS };
/* Rows of weights per sgemm call, and the smallest batch that may take
 * the sgemm path for type t (0: never). */
#define ENG_BLAS_ROWS 64
int eng_blas_min_batch(eng_type t);
/* Whether eng_matmul takes the sgemm path for w at this batch size (the
 * measured winner: type, batch and matrix size). */
bool eng_blas_wins(const eng_tensor *w, int n_batch);
/* OpenBLAS single-threaded: it runs inside the pool's threads. */
void eng_blas_init(void);
void eng_matmul_n(eng_ctx *c, int k, float *const *outs,
                  const eng_tensor *const *ws, const float *x, int n_batch);

/* Forward `n` tokens (n <= n_batch) at positions n_past.. ; fills logits for
 * the last token or all of them. */
int eng_forward(eng_ctx *c, const int32_t *tokens, int n, bool all_logits);

/* Attention of layer `layer` for the n tokens at positions pos0.. whose
 * q (c->q) and K/V (already in the cache) are computed; writes c->xb. */
void eng_attention(eng_ctx *c, int layer, int n, int pos0);

/* gate[i] = SwiGLU(gate[i], up[i]) for i < n (rows back to back), on the
 * pool when long enough to pay for it (attn.c). */
void eng_swiglu(eng_ctx *c, float *gate, const float *up, size_t n);

/* exp(x) computed as llama.cpp's vectorised kernels do (bit-identical). */
float eng__expf_vec(float x);

/* Dequantize row `row` of t into out[ne0]. */
void eng_tensor_get_row(const eng_tensor *t, int64_t row, float *out);

/* Bytes from one converted activation row of a product to the next:
 * whole cache lines, so that in the 64-byte aligned scratch (wdata) every
 * row starts on a line and the kernels' 64-byte loads never straddle two.
 * With the packed Q8_0 rows at their own size (1008 bytes for 896 wide,
 * 5472 for 4864) and the scratch 16 bytes past a line, the 8-column tile
 * kernel ran 896-wide rows at 135-140 against 158-161 GMAC/s aligned (one
 * thread, in cache and streaming). */
static inline size_t eng__act_stride(size_t row_bytes) {
    return (row_bytes + 63) & ~(size_t)63;
}

#endif
