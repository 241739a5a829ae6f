/*
 * completion.h — code completion: the fill-in-the-middle prompt, the
 * generation loop, and the worker thread that runs them next to a libuv
 * loop.
 *
 * Threads. A cmp_worker owns one inference thread, the model and its
 * context. The loop thread talks to it only through a locked command queue;
 * results come back through a locked result queue and one uv_async_t whose
 * callback drains the whole queue (sends coalesce). The inference thread
 * never touches libuv or the caller's data. (Style rules E7, C1.)
 *
 * A request follows init -> start -> (cancel) -> done: cmp_request_new,
 * cmp_request_start, optionally cmp_request_cancel, and then the done
 * callback runs exactly once on the loop thread, with 0, NIB_ECANCELED or
 * an error. The request is freed right after the callback returns. A start
 * that fails never calls done (the caller still owns the request and frees
 * it with cmp_request_delete).
 *
 * This is the simplest prompt (document prefix and suffix around the
 * cursor); the completion-pipeline issue replaces cmp_fim_tokens.
 */
#ifndef NIB_COMPLETION_H
#define NIB_COMPLETION_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "common/nib.h"
#include "engine/engine.h"

/* ---- pure parts (no I/O, no globals: unit-testable) --------------------- */

/* Build the FIM prompt <PRE> prefix <SUF> suffix <MID> as token ids, with
 * BOS first when the vocab adds one. The user's text is tokenized without
 * special-token parsing, so "<|fim_prefix|>" typed in a file stays text.
 * When the whole does not fit in `budget` tokens, the prefix keeps its end
 * and the suffix its start, the prefix getting about 3/4 of the budget.
 * *out is new (caller frees with nib_free); *n is its length.
 * Returns 0, NIB_EUNSUPPORTED when the vocab has no FIM tokens,
 * NIB_EINVAL when the budget cannot hold the markers, NIB_ENOMEM. */
int cmp_fim_tokens(const eng_vocab *v, const char *prefix, size_t prefix_len,
                   const char *suffix, size_t suffix_len, int budget,
                   int32_t **out, int *n);

/* Length of the longest prefix of s that is whole, valid UTF-8 characters
 * with no NUL: generation may stop inside a character or emit invalid
 * bytes, and JSON strings must be valid UTF-8. */
size_t cmp_utf8_valid_len(const char *s, size_t len);

/* Drop invalid UTF-8 and NUL bytes in place; returns the new length. */
size_t cmp_utf8_sanitize(char *s, size_t len);

/* Stop rule: the length of `text` to keep when `stop` (NUL-terminated, may
 * be NULL or empty for "none") ends generation, or `len` when it does not
 * occur. `from` is where the search may start (the stop text cannot end
 * before bytes already searched), so checking after each token costs
 * O(token + stop length). */
size_t cmp_stop_at(const char *text, size_t len, size_t from, const char *stop);

/* ---- the worker ---------------------------------------------------------- */

typedef struct cmp_worker cmp_worker;
typedef struct cmp_request cmp_request;

typedef enum {
    CMP_MODEL_NONE,    /* nothing loaded or asked for */
    CMP_MODEL_LOADING, /* a load is queued or running */
    CMP_MODEL_READY,
    CMP_MODEL_FAILED, /* the last load failed; see cmp_worker_state's msg */
} cmp_model_state;

/* Called on the loop thread when a load finishes: status 0 or an error, msg
 * a human-readable line (borrowed for the call). */
typedef void (*cmp_load_cb)(cmp_worker *w, int status, const char *msg,
                            void *data);
typedef void (*cmp_done_cb)(cmp_request *req, int status);

/* Start the inference thread. *out is new (free with cmp_worker_close).
 * Loop thread. Returns 0 or NIB_EIO when the thread or the async handle
 * cannot be created. */
int cmp_worker_new(uv_loop_t *loop, cmp_worker **out);

/* Queue a (re)load of `path` (copied) with `n_threads` (0 = automatic) and
 * a context of `n_ctx` tokens (0 = model default). Requests queued before
 * it run on the old model. The state becomes LOADING now; `cb` runs once
 * when it finishes. A load identical to the current model is a no-op that
 * still calls cb (status 0). Loop thread. */
int cmp_worker_load(cmp_worker *w, const char *path, int n_threads, int n_ctx,
                    cmp_load_cb cb, void *data);

/* Current state, with *msg (may be NULL) set to the last load message
 * (borrowed until the next load finishes). Loop thread. */
cmp_model_state cmp_worker_state(const cmp_worker *w, const char **msg);
/* Path of the loaded or loading model (borrowed), or NULL. */
const char *cmp_worker_model_path(const cmp_worker *w);

/* Cancel everything, wait for the thread (it stops between tokens), answer
 * queued requests with NIB_ECANCELED, and free the worker once its handle
 * is closed. cmp_worker_close(NULL) is a no-op. Loop thread. */
void cmp_worker_close(cmp_worker *w);

/* ---- requests ------------------------------------------------------------ */

typedef struct {
    const char *prefix; /* text before the cursor (copied) */
    size_t prefix_len;
    const char *suffix; /* text after the cursor (copied) */
    size_t suffix_len;
    int max_tokens;     /* generated tokens per alternative */
    int budget;         /* prompt tokens */
    int n_alternatives; /* 1: greedy only; more: greedy plus sampled ones */
    const char *stop;   /* NULL, or text that ends generation (copied); the
                           result is cut before it */
    uint64_t doc_key;   /* which KV sequence to use (e.g. a hash of the
                           document URI): each document keeps its own cache */
} cmp_params;

/* A 64-bit FNV-1a hash, for cmp_params.doc_key. */
uint64_t cmp_doc_key(const char *uri);

/* *out is new: start it, or free it with cmp_request_delete. */
int cmp_request_new(const cmp_params *p, cmp_request **out);
void cmp_request_delete(cmp_request *req);

void cmp_request_set_data(cmp_request *req, void *data);
void *cmp_request_data(const cmp_request *req);

/* Queue the request. Returns NIB_ESTATE unless the model is READY (the
 * caller waits for readiness itself); cb is then never called. */
int cmp_request_start(cmp_worker *w, cmp_request *req, cmp_done_cb cb);

/* Ask a started request to stop; it stops between tokens and its done
 * callback reports NIB_ECANCELED (or 0 if it had already finished). Safe
 * from the loop thread at any time before done has run. */
void cmp_request_cancel(cmp_request *req);

/* Results, valid inside the done callback: distinct texts, best first,
 * each valid UTF-8 (borrowed until the callback returns). */
int cmp_request_n_results(const cmp_request *req);
const char *cmp_request_result(const cmp_request *req, int i, size_t *len);
/* Generated tokens and wall time of the whole request (for logs). */
int cmp_request_n_generated(const cmp_request *req);
double cmp_request_ms(const cmp_request *req);

#endif
