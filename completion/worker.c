/*
 * worker.c — the inference thread, its queues, and the generation loop.
 *
 * The loop thread pushes commands (load, complete) onto `cmds` under `lock`
 * and signals `cond`. The inference thread pops one at a time, runs it
 * without the lock, pushes it onto `results` and calls uv_async_send. The
 * async callback, on the loop thread, drains every result (several sends
 * may coalesce into one callback), runs the callbacks and frees what is
 * done. Model, context and sampler belong to the inference thread alone.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "completion/completion.h"

#define CMP_MAX_ALTERNATIVES 8
/* Prompt tokens evaluated between two looks at the cancel flag: a long
 * prompt on a slow machine must not delay cancellation by seconds. */
/* Shortest run of tokens after an edit worth moving instead of
 * recomputing: moving costs a re-rotation of its keys, far cheaper than a
 * forward pass, but tiny runs are not worth the bookkeeping. */
#define CMP_REUSE_MIN_CHUNK 16

typedef enum { CMD_LOAD, CMD_COMPLETE } cmd_type;

struct cmp_request {
    cmd_type type; /* CMD_COMPLETE; shares the queue with loads */
    cmp_request *next;
    char *prefix;
    size_t prefix_len;
    char *suffix;
    size_t suffix_len;
    int max_tokens;
    int budget;
    int n_alternatives;
    char *stop;
    uint64_t doc_key;
    atomic_int cancel;
    cmp_done_cb cb;
    void *data;
    int status;
    char *results[CMP_MAX_ALTERNATIVES];
    size_t result_len[CMP_MAX_ALTERNATIVES];
    int n_results;
    int n_generated;
    double ms;
};

/* A load travels through the same queues; it starts with the same two
 * fields as cmp_request so either can be linked by `next`. */
typedef struct load_cmd {
    cmd_type type; /* CMD_LOAD */
    cmp_request *next;
    char *path;
    int n_threads;
    int n_ctx;
    cmp_load_cb cb;
    void *data;
    int status;
    char msg[512];
} load_cmd;

struct cmp_worker {
    uv_loop_t *loop;
    uv_async_t async;
    uv_thread_t thread;
    uv_mutex_t lock;
    uv_cond_t cond;
    /* Guarded by lock. */
    cmp_request *cmds, *cmds_tail;
    cmp_request *results, *results_tail;
    cmp_request *running;
    int quit;
    /* Inference thread only. */
    eng_model *model;
    eng_ctx *ctx;
    char *model_path;
    int n_threads, n_ctx;
    float *logits; /* the prompt's last logits, reused per alternative */
    char *piece;
    int piece_cap;
    /* Loop thread only. */
    cmp_model_state state;
    int loads_pending;
    char *loading_path;
    char state_msg[512];
};

/* ---- queues -------------------------------------------------------------- */

static void push(cmp_request **head, cmp_request **tail, cmp_request *r) {
    r->next = NULL;
    if (*tail)
        (*tail)->next = r;
    else
        *head = r;
    *tail = r;
}

static cmp_request *pop(cmp_request **head, cmp_request **tail) {
    cmp_request *r = *head;
    if (r) {
        *head = r->next;
        if (!*head)
            *tail = NULL;
        r->next = NULL;
    }
    return r;
}

/* ---- requests ------------------------------------------------------------ */

int cmp_request_new(const cmp_params *p, cmp_request **out) {
    cmp_request *r = nib_calloc(1, sizeof *r);
    r->type = CMD_COMPLETE;
    r->prefix = nib_try_malloc(p->prefix_len + 1);
    r->suffix = nib_try_malloc(p->suffix_len + 1);
    if (!r->prefix || !r->suffix) {
        cmp_request_delete(r);
        return NIB_ENOMEM;
    }
    memcpy(r->prefix, p->prefix, p->prefix_len);
    memcpy(r->suffix, p->suffix, p->suffix_len);
    r->prefix_len = p->prefix_len;
    r->suffix_len = p->suffix_len;
    r->max_tokens = p->max_tokens > 0 ? p->max_tokens : 64;
    r->budget = p->budget > 0 ? p->budget : 1024;
    r->n_alternatives =
        NIB_MAX(1, NIB_MIN(p->n_alternatives, CMP_MAX_ALTERNATIVES));
    r->stop = p->stop && *p->stop ? nib_strdup(p->stop) : NULL;
    r->doc_key = p->doc_key;
    atomic_init(&r->cancel, 0);
    *out = r;
    return 0;
}

void cmp_request_delete(cmp_request *r) {
    if (!r)
        return;
    for (int i = 0; i < r->n_results; i++)
        nib_free(r->results[i]);
    nib_free(r->prefix);
    nib_free(r->suffix);
    nib_free(r->stop);
    nib_free(r);
}

void cmp_request_set_data(cmp_request *r, void *data) {
    r->data = data;
}

void *cmp_request_data(const cmp_request *r) {
    return r->data;
}

void cmp_request_cancel(cmp_request *r) {
    atomic_store(&r->cancel, 1);
}

int cmp_request_n_results(const cmp_request *r) {
    return r->n_results;
}

const char *cmp_request_result(const cmp_request *r, int i, size_t *len) {
    if (i < 0 || i >= r->n_results)
        return NULL;
    if (len)
        *len = r->result_len[i];
    return r->results[i];
}

int cmp_request_n_generated(const cmp_request *r) {
    return r->n_generated;
}

double cmp_request_ms(const cmp_request *r) {
    return r->ms;
}

/* ---- inference thread ---------------------------------------------------- */

static void worker_unload(cmp_worker *w) {
    eng_ctx_delete(w->ctx);
    eng_model_delete(w->model);
    w->ctx = NULL;
    w->model = NULL;
    nib_free(w->model_path);
    w->model_path = NULL;
    nib_free(w->logits);
    w->logits = NULL;
}

static void run_load(cmp_worker *w, load_cmd *c) {
    /* Lets tests observe the "model still loading" paths. */
    const char *delay = getenv("NIB_TEST_LOAD_DELAY_MS");
    if (delay && atoi(delay) > 0)
        usleep((useconds_t)atoi(delay) * 1000);
    if (w->model && strcmp(w->model_path, c->path) == 0 &&
        w->n_threads == c->n_threads && w->n_ctx == c->n_ctx) {
        c->status = 0;
        snprintf(c->msg, sizeof c->msg, "model %s already loaded", c->path);
        return;
    }
    worker_unload(w);
    uint64_t t0 = nib_now_ns();
    char err[400] = "";
    eng_model *m = NULL;
    int r = eng_model_load(c->path, &m, err, sizeof err);
    if (r != 0) {
        c->status = r;
        snprintf(c->msg, sizeof c->msg, "cannot load model %s: %s", c->path,
                 err[0] ? err : nib_strerror(r));
        return;
    }
    eng_ctx_params cp = eng_ctx_default_params();
    cp.n_ctx = c->n_ctx;
    cp.n_threads = c->n_threads;
    eng_ctx *ctx = NULL;
    r = eng_ctx_new(m, &cp, &ctx);
    if (r != 0) {
        eng_model_delete(m);
        c->status = r;
        snprintf(c->msg, sizeof c->msg, "cannot create a context for %s: %s",
                 c->path, nib_strerror(r));
        return;
    }
    w->model = m;
    w->ctx = ctx;
    w->model_path = nib_strdup(c->path);
    w->n_threads = c->n_threads;
    w->n_ctx = c->n_ctx;
    w->logits = nib_malloc((size_t)eng_ctx_n_vocab(ctx) * sizeof(float));
    c->status = 0;
    eng_model_info info;
    eng_model_get_info(m, &info);
    snprintf(c->msg, sizeof c->msg,
             "loaded %s (%s, %s, %d layers, context %d) in %.0f ms", c->path,
             info.arch, info.ftype ? info.ftype : "?", info.n_layer,
             eng_ctx_n_ctx(ctx), (double)(nib_now_ns() - t0) / 1e6);
}

static int cancelled(cmp_request *r) {
    return atomic_load_explicit(&r->cancel, memory_order_relaxed);
}

/* Append token `tok`'s bytes to *buf. */
static int append_piece(cmp_worker *w, const eng_vocab *v, int32_t tok,
                        char **buf, size_t *len, size_t *cap) {
    int n = eng_token_piece(v, tok, false, w->piece, w->piece_cap);
    if (n > w->piece_cap) {
        w->piece_cap = n + 64;
        w->piece = nib_realloc(w->piece, (size_t)w->piece_cap);
        n = eng_token_piece(v, tok, false, w->piece, w->piece_cap);
    }
    if (n < 0)
        return n;
    if (*len + (size_t)n + 1 > *cap) {
        *cap = (*len + (size_t)n + 1) * 2;
        *buf = nib_realloc(*buf, *cap);
    }
    memcpy(*buf + *len, w->piece, (size_t)n);
    *len += (size_t)n;
    return 0;
}

/* Generate one alternative from the prompt whose last logits are in
 * w->logits and whose tokens fill the context up to n_prompt. */
static int generate(cmp_worker *w, cmp_request *r, eng_sampler *smp,
                    int n_prompt, char **out, size_t *out_len) {
    const eng_vocab *v = eng_model_vocab(w->model);
    size_t cap = 256, len = 0;
    char *buf = nib_malloc(cap);
    const float *logits = w->logits;
    int rc = 0;
    for (int t = 0; t < r->max_tokens; t++) {
        if (cancelled(r)) {
            rc = NIB_ECANCELED;
            break;
        }
        const int32_t *hist = eng_ctx_tokens(w->ctx);
        int nh = eng_ctx_n_past(w->ctx);
        int32_t tok = eng_sample(smp, logits, hist, nh);
        if (eng_token_is_eog(v, tok))
            break;
        r->n_generated++;
        size_t before = len;
        if ((rc = append_piece(w, v, tok, &buf, &len, &cap)) != 0)
            break;
        size_t keep = cmp_stop_at(buf, len, before, r->stop);
        if (keep < len) {
            len = keep;
            break;
        }
        if (t + 1 == r->max_tokens)
            break; /* the last token's logits are never needed */
        rc = eng_eval(w->ctx, &tok, 1);
        if (rc == NIB_ECTXFULL) {
            rc = 0;
            break;
        }
        if (rc != 0)
            break;
        logits = eng_ctx_logits(w->ctx, -1);
    }
    (void)n_prompt;
    if (rc != 0) {
        nib_free(buf);
        return rc;
    }
    len = cmp_utf8_sanitize(buf, len);
    buf[len] = 0;
    *out = buf;
    *out_len = len;
    return 0;
}

static bool abort_cb(void *ud) { return cancelled(ud) != 0; }

static int run_complete(cmp_worker *w, cmp_request *r) {
    if (cancelled(r))
        return NIB_ECANCELED;
    if (!w->ctx)
        return NIB_ESTATE;
    uint64_t t0 = nib_now_ns();
    const eng_vocab *v = eng_model_vocab(w->model);
    int n_ctx = eng_ctx_n_ctx(w->ctx);
    int budget = NIB_MIN(r->budget, n_ctx - r->max_tokens - 1);
    if (budget < 8)
        budget = NIB_MIN(8, n_ctx - 1);
    int32_t *prompt = NULL;
    int n = 0;
    int rc = cmp_fim_tokens(v, r->prefix, r->prefix_len, r->suffix,
                            r->suffix_len, budget, &prompt, &n);
    if (rc != 0)
        return rc;

    /* Each document has its own KV sequence. Within it, the prompt's
     * longest common prefix with the previous one is reused, and so is the
     * part after the edit (in a FIM prompt: the suffix), moved to its new
     * position: typing evaluates only what changed. The engine polls the
     * cancel flag between layers. */
    if ((rc = eng_ctx_use_seq(w->ctx, r->doc_key)) == 0) {
        eng_ctx_set_abort(w->ctx, abort_cb, r);
        eng_reuse_stats st;
        rc = eng_eval_reuse(w->ctx, prompt, n, CMP_REUSE_MIN_CHUNK, &st);
        eng_ctx_set_abort(w->ctx, NULL, NULL);
        if (rc == 0)
            nib_log_debug("prompt %d tokens: %d reused (%d moved), %d "
                          "evaluated",
                          n, st.n_reused, st.n_shifted, st.n_evaluated);
    }
    nib_free(prompt);
    if (rc != 0) {
        eng_ctx_truncate(w->ctx, 0); /* unknown state: start clean next time */
        return rc == NIB_ECANCELED || cancelled(r) ? NIB_ECANCELED : rc;
    }
    memcpy(w->logits, eng_ctx_logits(w->ctx, -1),
           (size_t)eng_ctx_n_vocab(w->ctx) * sizeof(float));

    for (int a = 0; a < r->n_alternatives && rc == 0; a++) {
        eng_sampler_params sp = eng_sampler_default_params();
        if (a == 0) {
            sp.temperature = 0; /* the first answer is the greedy one */
        } else {
            sp.temperature = 0.8f;
            sp.top_p = 0.95f;
            sp.seed = 0x5eed + (uint64_t)a;
        }
        eng_sampler *smp = NULL;
        rc = eng_sampler_new(&sp, eng_ctx_n_vocab(w->ctx), &smp);
        if (rc != 0)
            break;
        eng_ctx_truncate(w->ctx, n);
        char *text = NULL;
        size_t len = 0;
        rc = generate(w, r, smp, n, &text, &len);
        eng_sampler_delete(smp);
        if (rc != 0)
            break;
        int dup = len == 0;
        for (int i = 0; i < r->n_results && !dup; i++)
            dup = r->result_len[i] == len &&
                  memcmp(r->results[i], text, len) == 0;
        if (dup) {
            nib_free(text);
            continue;
        }
        r->results[r->n_results] = text;
        r->result_len[r->n_results++] = len;
    }
    /* Keep only the prompt in the cache: the next request shares it, not
     * the generated tokens of the last alternative. */
    eng_ctx_truncate(w->ctx, NIB_MIN(n, eng_ctx_n_past(w->ctx)));
    r->ms = (double)(nib_now_ns() - t0) / 1e6;
    return rc;
}

static void worker_thread(void *arg) {
    cmp_worker *w = arg;
    uv_mutex_lock(&w->lock);
    for (;;) {
        while (!w->cmds && !w->quit)
            uv_cond_wait(&w->cond, &w->lock);
        if (w->quit)
            break;
        cmp_request *c = pop(&w->cmds, &w->cmds_tail);
        w->running = c->type == CMD_COMPLETE ? c : NULL;
        uv_mutex_unlock(&w->lock);

        if (c->type == CMD_LOAD)
            run_load(w, (load_cmd *)c);
        else
            c->status = run_complete(w, c);

        uv_mutex_lock(&w->lock);
        w->running = NULL;
        push(&w->results, &w->results_tail, c);
        uv_mutex_unlock(&w->lock);
        uv_async_send(&w->async);
        uv_mutex_lock(&w->lock);
    }
    uv_mutex_unlock(&w->lock);
    worker_unload(w);
}

/* ---- loop thread --------------------------------------------------------- */

static void finish(cmp_worker *w, cmp_request *c) {
    if (c->type == CMD_LOAD) {
        load_cmd *l = (load_cmd *)c;
        w->loads_pending--;
        if (w->loads_pending == 0) {
            w->state = l->status == 0 ? CMP_MODEL_READY : CMP_MODEL_FAILED;
            snprintf(w->state_msg, sizeof w->state_msg, "%s", l->msg);
        }
        if (l->cb)
            l->cb(w, l->status, l->msg, l->data);
        nib_free(l->path);
        nib_free(l);
        return;
    }
    if (c->status == 0 && atomic_load(&c->cancel) && c->n_results == 0)
        c->status = NIB_ECANCELED;
    c->cb(c, c->status);
    cmp_request_delete(c);
}

static void on_async(uv_async_t *h) {
    cmp_worker *w = h->data;
    uv_mutex_lock(&w->lock);
    cmp_request *list = w->results;
    w->results = w->results_tail = NULL;
    uv_mutex_unlock(&w->lock);
    while (list) {
        cmp_request *next = list->next;
        finish(w, list);
        list = next;
    }
}

int cmp_worker_new(uv_loop_t *loop, cmp_worker **out) {
    cmp_worker *w = nib_calloc(1, sizeof *w);
    w->loop = loop;
    if (uv_mutex_init(&w->lock) != 0) {
        nib_free(w);
        return NIB_EIO;
    }
    if (uv_cond_init(&w->cond) != 0) {
        uv_mutex_destroy(&w->lock);
        nib_free(w);
        return NIB_EIO;
    }
    if (uv_async_init(loop, &w->async, on_async) != 0) {
        uv_cond_destroy(&w->cond);
        uv_mutex_destroy(&w->lock);
        nib_free(w);
        return NIB_EIO;
    }
    w->async.data = w;
    if (uv_thread_create(&w->thread, worker_thread, w) != 0) {
        /* The async handle must be closed before the memory goes. */
        w->quit = 2;
        cmp_worker_close(w);
        return NIB_EIO;
    }
    *out = w;
    return 0;
}

int cmp_worker_load(cmp_worker *w, const char *path, int n_threads, int n_ctx,
                    cmp_load_cb cb, void *data) {
    load_cmd *l = nib_calloc(1, sizeof *l);
    l->type = CMD_LOAD;
    l->path = nib_strdup(path);
    l->n_threads = n_threads;
    l->n_ctx = n_ctx;
    l->cb = cb;
    l->data = data;
    w->loads_pending++;
    w->state = CMP_MODEL_LOADING;
    nib_free(w->loading_path);
    w->loading_path = nib_strdup(path);
    uv_mutex_lock(&w->lock);
    push(&w->cmds, &w->cmds_tail, (cmp_request *)l);
    uv_cond_signal(&w->cond);
    uv_mutex_unlock(&w->lock);
    return 0;
}

cmp_model_state cmp_worker_state(const cmp_worker *w, const char **msg) {
    if (msg)
        *msg = w->state_msg;
    return w->state;
}

const char *cmp_worker_model_path(const cmp_worker *w) {
    return w->loading_path;
}

int cmp_request_start(cmp_worker *w, cmp_request *r, cmp_done_cb cb) {
    if (w->state != CMP_MODEL_READY)
        return NIB_ESTATE;
    r->cb = cb;
    uv_mutex_lock(&w->lock);
    push(&w->cmds, &w->cmds_tail, r);
    uv_cond_signal(&w->cond);
    uv_mutex_unlock(&w->lock);
    return 0;
}

static void on_worker_closed(uv_handle_t *h) {
    cmp_worker *w = h->data;
    uv_cond_destroy(&w->cond);
    uv_mutex_destroy(&w->lock);
    nib_free(w->piece);
    nib_free(w->loading_path);
    nib_free(w);
}

void cmp_worker_close(cmp_worker *w) {
    if (!w)
        return;
    int started = w->quit != 2;
    uv_mutex_lock(&w->lock);
    w->quit = 1;
    if (w->running)
        atomic_store(&w->running->cancel, 1);
    for (cmp_request *c = w->cmds; c; c = c->next)
        if (c->type == CMD_COMPLETE)
            atomic_store(&c->cancel, 1);
    uv_cond_signal(&w->cond);
    uv_mutex_unlock(&w->lock);
    if (started)
        uv_thread_join(&w->thread);
    /* Every request still queued is answered now, so each done callback
     * runs exactly once even though the thread is gone. */
    for (cmp_request *c = w->cmds; c; c = c->next) {
        if (c->type == CMD_COMPLETE)
            c->status = NIB_ECANCELED;
        else
            ((load_cmd *)c)->status = NIB_ECANCELED;
    }
    if (w->cmds) {
        if (w->results_tail)
            w->results_tail->next = w->cmds;
        else
            w->results = w->cmds;
        w->results_tail = w->cmds_tail;
        w->cmds = w->cmds_tail = NULL;
    }
    on_async(&w->async);
    uv_close((uv_handle_t *)&w->async, on_worker_closed);
}
