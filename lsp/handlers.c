/*
 * handlers.c — the LSP methods nib implements: lifecycle, settings,
 * documents, completions and commands, plus the two static method tables
 * (style rule L3). Every handler validates its params once with lsp_unpack
 * and answers -32602 naming the field (L4); notifications with bad params
 * are logged and change nothing.
 */
#include <stdarg.h>
#include <string.h>

#include "lsp/server.h"

#define NIB_VERSION "0.1.0"

/* Defaults and bounds of the settings. The context budget and max tokens
 * size the KV cache, so absurd values are refused rather than allocated. */
#define DEF_MAX_TOKENS     64
#define DEF_CONTEXT_BUDGET 2048
#define DEF_DEBOUNCE_MS    75
#define DEF_MODEL_WAIT_MS  30000
/* Alternatives offered for an invoked inline completion. */
#define INVOKED_ALTERNATIVES 3
/* Bytes of text copied per side per completion: about the most the token
 * budget can use, so a request costs O(budget), not O(document). */
#define BYTES_PER_TOKEN 8

#define BAD_PARAMS(s, id, msg)                                                 \
    lsp_respond_error(s, id, LSP_INVALID_PARAMS, "invalid params: %s", msg)

/* ---- settings ------------------------------------------------------------ */

void lsp_settings_default(lsp_settings *st) {
    memset(st, 0, sizeof *st);
    st->max_tokens = DEF_MAX_TOKENS;
    st->context_budget = DEF_CONTEXT_BUDGET;
    st->debounce_ms = DEF_DEBOUNCE_MS;
    st->model_wait_ms = DEF_MODEL_WAIT_MS;
}

void lsp_settings_free(lsp_settings *st) {
    nib_free(st->model);
    nib_free(st->draft_model);
    json_decref(st->languages);
    memset(st, 0, sizeof *st);
}

static void bad_setting(lsp_server *s, const char *key, const char *why) {
    lsp_show_message(s, 1,
                     "nib: invalid setting nib.%s: %s; keeping the "
                     "previous value",
                     key, why);
}

static void set_int(lsp_server *s, json_t *obj, const char *key, int *dst,
                    int lo, int hi) {
    json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v))
        return;
    if (!json_is_integer(v) || json_integer_value(v) < lo ||
        json_integer_value(v) > hi) {
        char why[96];
        snprintf(why, sizeof why, "expected an integer from %d to %d", lo, hi);
        bad_setting(s, key, why);
        return;
    }
    *dst = (int)json_integer_value(v);
}

/* A path setting: a string, or null/"" for "none". */
static void set_path(lsp_server *s, json_t *obj, const char *key, char **dst) {
    json_t *v = json_object_get(obj, key);
    if (!v)
        return;
    if (json_is_null(v) || (json_is_string(v) && json_string_length(v) == 0)) {
        nib_free(*dst);
        *dst = NULL;
        return;
    }
    if (!json_is_string(v)) {
        bad_setting(s, key, "expected a file path (string)");
        return;
    }
    nib_free(*dst);
    *dst = nib_strdup(json_string_value(v));
}

void lsp_apply_settings(lsp_server *s, json_t *obj, bool from_init) {
    if (!obj || json_is_null(obj))
        return;
    json_t *nested = json_object_get(obj, "nib");
    if (json_is_object(nested))
        obj = nested;
    if (!json_is_object(obj)) {
        lsp_show_message(s, 1, "nib: invalid settings: expected an object");
        return;
    }
    lsp_settings *st = &s->settings;
    char *old_model = st->model ? nib_strdup(st->model) : NULL;
    int old_threads = st->threads, old_budget = st->context_budget,
        old_max = st->max_tokens;
    set_path(s, obj, "model", &st->model);
    set_path(s, obj, "draftModel", &st->draft_model);
    set_int(s, obj, "threads", &st->threads, 0, 256);
    set_int(s, obj, "maxTokens", &st->max_tokens, 1, 4096);
    set_int(s, obj, "contextBudget", &st->context_budget, 64, 131072);
    set_int(s, obj, "debounceMs", &st->debounce_ms, 0, 10000);
    set_int(s, obj, "modelWaitMs", &st->model_wait_ms, 0, 600000);
    json_t *langs = json_object_get(obj, "languages");
    if (langs && !json_is_null(langs)) {
        const char *k;
        json_t *v;
        bool ok = json_is_object(langs);
        if (ok)
            json_object_foreach(langs, k, v) ok = ok && json_is_boolean(v);
        if (!ok) {
            bad_setting(s, "languages",
                        "expected an object of languageId: true/false");
        } else {
            json_decref(st->languages);
            st->languages = json_deep_copy(langs);
        }
    }
    bool model_changed =
        (old_model == NULL) != (st->model == NULL) ||
        (old_model && st->model && strcmp(old_model, st->model) != 0);
    bool ctx_changed = old_threads != st->threads ||
                       old_budget != st->context_budget ||
                       old_max != st->max_tokens;
    nib_free(old_model);
    if (!from_init && (model_changed || ctx_changed) &&
        (s->status == LSP_STATUS_RUNNING ||
         s->status == LSP_STATUS_INITIALIZING))
        lsp_start_model(s);
}

static bool language_enabled(lsp_server *s, const char *lang) {
    json_t *v = s->settings.languages && lang
                    ? json_object_get(s->settings.languages, lang)
                    : NULL;
    return !v || json_is_true(v);
}

/* ---- model loading with progress ---------------------------------------- */

static void on_model_loaded(cmp_worker *w, int status, const char *msg,
                            void *data);

static void progress(lsp_server *s, const char *kind, const char *title,
                     const char *message) {
    json_t *v = json_pack("{s:s}", "kind", kind);
    if (title)
        json_object_set_new(v, "title", json_string(title));
    if (message)
        json_object_set_new(v, "message", json_string(message));
    lsp_notify(s, "$/progress",
               json_pack("{s:s,s:o}", "token", s->progress_token, "value", v));
}

void lsp_start_model(lsp_server *s) {
    const char *path = s->settings.model ? s->settings.model : s->default_model;
    if (!path) {
        lsp_show_message(s, 2,
                         "nib: no model configured: set nib.model, the "
                         "NIB_MODEL environment variable, or install "
                         "models/nib-coder.gguf");
        return;
    }
    int threads = s->settings.threads;
    if (threads == 0) {
        /* Leave a core to the editor and this loop. */
        threads = NIB_MAX(1, eng_physical_cores() - 1);
    }
    int n_ctx = s->settings.context_budget + s->settings.max_tokens + 64;
    nib_log_info("lsp: loading model %s", path);
    cmp_worker_load(s->worker, path, threads, n_ctx, on_model_loaded, s);
    if (s->cap_work_done && !s->progress_active) {
        snprintf(s->progress_token, sizeof s->progress_token, "nib-load-%d",
                 ++s->progress_seq);
        s->progress_create_id =
            lsp_request(s, "window/workDoneProgress/create",
                        json_pack("{s:s}", "token", s->progress_token));
    }
}

static void pend_submit(lsp_pending *p);
static void pend_fail(lsp_pending *p, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void on_model_loaded(cmp_worker *w, int status, const char *msg,
                            void *data) {
    lsp_server *s = data;
    const char *state_msg;
    cmp_model_state st = cmp_worker_state(w, &state_msg);
    if (status == 0)
        nib_log_info("lsp: %s", msg);
    else if (status != NIB_ECANCELED)
        lsp_show_message(s, 1, "nib: %s", msg);
    if (st == CMP_MODEL_LOADING)
        return; /* a newer load is queued; waiters wait for it */
    if (s->progress_active) {
        progress(s, "end", NULL, status == 0 ? "model ready" : msg);
        s->progress_active = false;
    }
    for (lsp_pending *p = s->pending, *n; p; p = n) {
        n = p->next;
        if (p->phase != LSP_PEND_WAIT_MODEL)
            continue;
        uv_timer_stop(&p->timer);
        if (st == CMP_MODEL_READY)
            pend_submit(p);
        else
            pend_fail(p, LSP_REQUEST_FAILED, "model failed to load: %s",
                      state_msg);
    }
}

/* ---- responses to our requests ------------------------------------------- */

void lsp_on_response(lsp_server *s, json_t *msg) {
    json_t *id = json_object_get(msg, "id");
    json_t *err = json_object_get(msg, "error");
    if (!json_is_integer(id))
        return;
    int64_t n = json_integer_value(id);
    if (err) {
        json_t *m = json_object_get(err, "message");
        nib_log_warn("lsp: client answered request %lld with an error: %s",
                     (long long)n,
                     json_is_string(m) ? json_string_value(m) : "?");
        return;
    }
    json_t *result = json_object_get(msg, "result");
    if (n == s->config_request_id) {
        if (json_is_array(result) && json_array_size(result) > 0)
            lsp_apply_settings(s, json_array_get(result, 0), false);
    } else if (n == s->progress_create_id) {
        if (cmp_worker_state(s->worker, NULL) == CMP_MODEL_LOADING &&
            !s->progress_active) {
            s->progress_active = true;
            const char *path = cmp_worker_model_path(s->worker);
            char title[64];
            snprintf(title, sizeof title, "nib: loading model");
            progress(s, "begin", title, path);
        }
    }
}

static void pull_configuration(lsp_server *s) {
    s->config_request_id =
        lsp_request(s, "workspace/configuration",
                    json_pack("{s:[{s:s}]}", "items", "section", "nib"));
}

/* ---- lifecycle ----------------------------------------------------------- */

static bool json_true_at(json_t *o, const char *a, const char *b) {
    json_t *x = json_object_get(o, a);
    return json_is_true(json_object_get(x, b));
}

static void on_initialize(lsp_server *s, json_t *id, json_t *params) {
    if (s->status != LSP_STATUS_UNINITIALIZED) {
        lsp_respond_error(s, id, LSP_INVALID_REQUEST,
                          "initialize: the server is already initialized");
        return;
    }
    json_t *caps = NULL, *opts = NULL, *trace = NULL;
    char msg[300];
    if (lsp_unpack(params, msg, sizeof msg, "{s?o,s?o,s?o}", "capabilities",
                   &caps, "initializationOptions", &opts, "trace",
                   &trace) != 0) {
        BAD_PARAMS(s, id, msg);
        return;
    }
    if (caps && !json_is_object(caps)) {
        BAD_PARAMS(s, id, "capabilities: expected an object");
        return;
    }
    if (trace && !json_is_null(trace)) {
        const char *t = json_string_value(trace);
        if (!t || (strcmp(t, "off") && strcmp(t, "messages") &&
                   strcmp(t, "verbose"))) {
            BAD_PARAMS(s, id,
                       "trace: expected \"off\", \"messages\" or \"verbose\"");
            return;
        }
        s->trace = !strcmp(t, "verbose")    ? LSP_TRACE_VERBOSE
                   : !strcmp(t, "messages") ? LSP_TRACE_MESSAGES
                                            : LSP_TRACE_OFF;
    }
    /* nib keeps UTF-8, so it takes UTF-8 whenever the client offers it,
     * then UTF-32 (one unit per code point), and UTF-16 otherwise: the
     * spec's mandatory default, also when the client lists nothing. */
    s->enc = LSP_ENC_UTF16;
    json_t *encs =
        json_object_get(json_object_get(caps, "general"), "positionEncodings");
    size_t i;
    json_t *e;
    json_array_foreach(encs, i, e) {
        const char *name = json_string_value(e);
        if (name && !strcmp(name, "utf-8"))
            s->enc = LSP_ENC_UTF8;
        else if (name && !strcmp(name, "utf-32") && s->enc == LSP_ENC_UTF16)
            s->enc = LSP_ENC_UTF32;
    }
    s->cap_work_done = json_true_at(caps, "window", "workDoneProgress");
    s->cap_config_pull = json_true_at(caps, "workspace", "configuration");
    lsp_apply_settings(s, opts, true);

    json_t *caps_out = json_pack(
        "{s:s, s:{s:b,s:i,s:{s:b}}, s:b, s:{s:[s,s],s:b}, s:{s:[s,s]},"
        " s:{s:[s,s,s,s]}}",
        "positionEncoding", lsp_encoding_name(s->enc), "textDocumentSync",
        "openClose", 1, "change", 2, "save", "includeText", 0,
        "inlineCompletionProvider", 1, "completionProvider",
        "triggerCharacters", ".", "(", "resolveProvider", 0,
        "codeActionProvider", "codeActionKinds", "refactor", "refactor.rewrite",
        "executeCommandProvider", "commands", "nib.generateDocstring",
        "nib.refactorSelection", "nib.toggleInline", "nib.status");
    lsp_respond(s, id,
                json_pack("{s:o,s:{s:s,s:s}}", "capabilities", caps_out,
                          "serverInfo", "name", "nib", "version", NIB_VERSION));
    s->status = LSP_STATUS_INITIALIZING;
    nib_log_info("lsp: initialized (position encoding %s)",
                 lsp_encoding_name(s->enc));
    /* Loading runs on the inference thread; the handshake goes on. */
    lsp_start_model(s);
}

static void on_initialized(lsp_server *s, json_t *params) {
    (void)params;
    if (s->status == LSP_STATUS_INITIALIZING)
        s->status = LSP_STATUS_RUNNING;
    if (s->cap_config_pull)
        pull_configuration(s);
}

static void on_shutdown(lsp_server *s, json_t *id, json_t *params) {
    (void)params;
    lsp_cancel_all(s);
    s->shutdown_received = true;
    s->status = LSP_STATUS_SHUTDOWN;
    lsp_respond(s, id, json_null());
}

static void on_set_trace(lsp_server *s, json_t *params) {
    const char *v;
    char msg[200];
    if (lsp_unpack(params, msg, sizeof msg, "{s:s}", "value", &v) != 0) {
        nib_log_error("lsp: $/setTrace: %s", msg);
        return;
    }
    if (!strcmp(v, "off"))
        s->trace = LSP_TRACE_OFF;
    else if (!strcmp(v, "messages"))
        s->trace = LSP_TRACE_MESSAGES;
    else if (!strcmp(v, "verbose"))
        s->trace = LSP_TRACE_VERBOSE;
    else
        nib_log_error("lsp: $/setTrace: value: unknown trace value %s", v);
}

static void on_did_change_configuration(lsp_server *s, json_t *params) {
    if (s->cap_config_pull) {
        pull_configuration(s);
        return;
    }
    json_t *settings = NULL;
    char msg[200];
    if (lsp_unpack(params, msg, sizeof msg, "{s?o}", "settings", &settings) !=
        0) {
        nib_log_error("lsp: didChangeConfiguration: %s", msg);
        return;
    }
    lsp_apply_settings(s, settings, false);
}

/* ---- documents ----------------------------------------------------------- */

static uint64_t hash_uri(const char *s) {
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

static lsp_docent **doc_slot(lsp_server *s, const char *uri) {
    if (!s->n_buckets)
        return NULL;
    lsp_docent **pp = &s->docs[hash_uri(uri) & (s->n_buckets - 1)];
    while (*pp && strcmp((*pp)->uri, uri) != 0)
        pp = &(*pp)->next;
    return pp;
}

static lsp_docent *doc_find(lsp_server *s, const char *uri) {
    lsp_docent **pp = doc_slot(s, uri);
    return pp ? *pp : NULL;
}

static void doc_insert(lsp_server *s, lsp_docent *d) {
    if (s->n_docs + 1 > s->n_buckets) {
        size_t nb = s->n_buckets ? s->n_buckets * 2 : 16;
        lsp_docent **t = nib_calloc(nb, sizeof *t);
        for (size_t i = 0; i < s->n_buckets; i++) {
            for (lsp_docent *e = s->docs[i], *n; e; e = n) {
                n = e->next;
                size_t b = hash_uri(e->uri) & (nb - 1);
                e->next = t[b];
                t[b] = e;
            }
        }
        nib_free(s->docs);
        s->docs = t;
        s->n_buckets = nb;
    }
    size_t b = hash_uri(d->uri) & (s->n_buckets - 1);
    d->next = s->docs[b];
    s->docs[b] = d;
    s->n_docs++;
}

static void docent_free(lsp_docent *d) {
    lsp_doc_delete(d->doc);
    nib_free(d->uri);
    nib_free(d->language_id);
    nib_free(d);
}

void lsp_docs_free(lsp_server *s) {
    for (size_t i = 0; i < s->n_buckets; i++) {
        for (lsp_docent *e = s->docs[i], *n; e; e = n) {
            n = e->next;
            docent_free(e);
        }
    }
    nib_free(s->docs);
    s->docs = NULL;
    s->n_buckets = s->n_docs = 0;
}

static void on_did_open(lsp_server *s, json_t *params) {
    const char *uri, *lang, *text;
    size_t text_len;
    json_int_t version;
    char msg[300];
    if (lsp_unpack(params, msg, sizeof msg, "{s:{s:s,s:s,s:I,s:s%}}",
                   "textDocument", "uri", &uri, "languageId", &lang, "version",
                   &version, "text", &text, &text_len) != 0) {
        nib_log_error("lsp: didOpen: invalid params: %s", msg);
        return;
    }
    lsp_doc *doc;
    if (lsp_doc_new(text, text_len, &doc) != 0) {
        lsp_show_message(s, 1, "nib: no memory to open %s (%zu bytes)", uri,
                         text_len);
        return;
    }
    lsp_docent *d = doc_find(s, uri);
    if (d) {
        nib_log_warn("lsp: didOpen of an open document %s: replacing it", uri);
        lsp_doc_delete(d->doc);
        nib_free(d->language_id);
    } else {
        d = nib_calloc(1, sizeof *d);
        d->uri = nib_strdup(uri);
        doc_insert(s, d);
    }
    d->doc = doc;
    d->language_id = nib_strdup(lang);
    d->version = version;
}

/* Validate a Position object; line and character are uintegers. */
static int get_position(json_t *pos, uint64_t *line, uint64_t *ch) {
    json_t *l = json_object_get(pos, "line");
    json_t *c = json_object_get(pos, "character");
    if (!json_is_integer(l) || !json_is_integer(c) ||
        json_integer_value(l) < 0 || json_integer_value(c) < 0)
        return -1;
    *line = (uint64_t)json_integer_value(l);
    *ch = (uint64_t)json_integer_value(c);
    return 0;
}

static void on_did_change(lsp_server *s, json_t *params) {
    const char *uri;
    json_int_t version = INT64_MIN; /* absent: keep the current one */
    json_t *changes;
    char msg[300];
    if (lsp_unpack(params, msg, sizeof msg, "{s:{s:s,s?I},s:o}", "textDocument",
                   "uri", &uri, "version", &version, "contentChanges",
                   &changes) != 0) {
        nib_log_error("lsp: didChange: invalid params: %s", msg);
        return;
    }
    if (!json_is_array(changes)) {
        nib_log_error("lsp: didChange: invalid params: contentChanges: "
                      "expected an array");
        return;
    }
    lsp_docent *d = doc_find(s, uri);
    if (!d) {
        nib_log_error("lsp: didChange for %s, which is not open", uri);
        return;
    }
    /* Check every change before applying any, so a bad one leaves the
     * document as it was. */
    size_t i;
    json_t *c;
    json_array_foreach(changes, i, c) {
        json_t *range = json_object_get(c, "range");
        uint64_t a, b;
        if (!json_is_object(c) || !json_is_string(json_object_get(c, "text"))) {
            nib_log_error("lsp: didChange: invalid params: "
                          "contentChanges[%zu].text: expected a string",
                          i);
            return;
        }
        if (range && (!json_is_object(range) ||
                      get_position(json_object_get(range, "start"), &a, &b) ||
                      get_position(json_object_get(range, "end"), &a, &b))) {
            nib_log_error("lsp: didChange: invalid params: "
                          "contentChanges[%zu].range: expected a Range",
                          i);
            return;
        }
    }
    json_array_foreach(changes, i, c) {
        json_t *text = json_object_get(c, "text");
        json_t *range = json_object_get(c, "range");
        int r;
        if (!range) {
            r = lsp_doc_set_text(d->doc, json_string_value(text),
                                 json_string_length(text));
        } else {
            uint64_t sl, sc, el, ec;
            get_position(json_object_get(range, "start"), &sl, &sc);
            get_position(json_object_get(range, "end"), &el, &ec);
            size_t a = lsp_doc_offset(d->doc, s->enc, sl, sc);
            size_t b = lsp_doc_offset(d->doc, s->enc, el, ec);
            if (a > b) {
                /* Reversed ranges are taken as written the other way
                 * round, like VS Code's TextDocument does. */
                size_t t = a;
                a = b;
                b = t;
            }
            r = lsp_doc_replace(d->doc, a, b, json_string_value(text),
                                json_string_length(text));
        }
        if (r != 0) {
            lsp_show_message(
                s, 1, "nib: no memory to edit %s; close and reopen it", uri);
            return;
        }
        s->n_edits++;
    }
    if (version != INT64_MIN)
        d->version = version;
}

static void cancel_for_uri(lsp_server *s, const char *uri, bool commands);

static void on_did_close(lsp_server *s, json_t *params) {
    const char *uri;
    char msg[300];
    if (lsp_unpack(params, msg, sizeof msg, "{s:{s:s}}", "textDocument", "uri",
                   &uri) != 0) {
        nib_log_error("lsp: didClose: invalid params: %s", msg);
        return;
    }
    lsp_docent **pp = doc_slot(s, uri);
    if (!pp || !*pp) {
        nib_log_warn("lsp: didClose for %s, which is not open", uri);
        return;
    }
    cancel_for_uri(s, uri, true);
    lsp_docent *d = *pp;
    *pp = d->next;
    s->n_docs--;
    docent_free(d);
}

static void on_did_save(lsp_server *s, json_t *params) {
    (void)s;
    const char *uri;
    char msg[300];
    if (lsp_unpack(params, msg, sizeof msg, "{s:{s:s}}", "textDocument", "uri",
                   &uri) != 0) {
        nib_log_error("lsp: didSave: invalid params: %s", msg);
        return;
    }
    nib_log_debug("lsp: saved %s", uri);
}

/* Test-only: the server's copy of a document, so a client can compare it
 * with its own after thousands of edits. */
static void on_document_text(lsp_server *s, json_t *id, json_t *params) {
    const char *uri;
    char msg[300];
    if (lsp_unpack(params, msg, sizeof msg, "{s:s}", "uri", &uri) != 0) {
        BAD_PARAMS(s, id, msg);
        return;
    }
    lsp_docent *d = doc_find(s, uri);
    if (!d) {
        lsp_respond_error(s, id, LSP_INVALID_PARAMS,
                          "invalid params: uri: document not open: %s", uri);
        return;
    }
    size_t n = lsp_doc_length(d->doc);
    char *t = lsp_doc_dup(d->doc, 0, n);
    if (!t) {
        lsp_respond_error(s, id, LSP_INTERNAL_ERROR, "out of memory");
        return;
    }
    lsp_respond(s, id,
                json_pack("{s:s%,s:I,s:I}", "text", t, n, "version",
                          (json_int_t)d->version, "lineCount",
                          (json_int_t)lsp_doc_line_count(d->doc)));
    nib_free(t);
}

/* ---- pending completions ------------------------------------------------- */

static void on_pend_closed(uv_handle_t *h) {
    lsp_pending *p = h->data;
    json_decref(p->id);
    nib_free(p->uri);
    nib_free(p->extend);
    nib_free(p->word);
    nib_free(p->before);
    nib_free(p->after);
    cmp_request_delete(p->req); /* only when it was never started */
    nib_free(p);
}

/* Answered: unlink and free once the timer handle is closed. */
static void pend_finish(lsp_pending *p) {
    lsp_server *s = p->s;
    p->phase = LSP_PEND_CLOSING;
    if (p->prev)
        p->prev->next = p->next;
    else
        s->pending = p->next;
    if (p->next)
        p->next->prev = p->prev;
    p->prev = p->next = NULL;
    uv_timer_stop(&p->timer);
    uv_close((uv_handle_t *)&p->timer, on_pend_closed);
}

static void pend_fail(lsp_pending *p, int code, const char *fmt, ...) {
    char msg[700];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    lsp_respond_error(p->s, p->id, code, "%s", msg);
    pend_finish(p);
}

static void pend_cancel(lsp_pending *p) {
    if (p->phase == LSP_PEND_CLOSING || p->cancelled)
        return;
    p->cancelled = true;
    if (p->phase == LSP_PEND_RUNNING) {
        /* The worker stops at the next token; its done callback answers. */
        cmp_request_cancel(p->req);
        return;
    }
    pend_fail(p, LSP_REQUEST_CANCELLED, "request cancelled");
}

void lsp_cancel_all(lsp_server *s) {
    for (lsp_pending *p = s->pending, *n; p; p = n) {
        n = p->next;
        pend_cancel(p);
    }
}

/* Cancel the completions of one document; commands (docstring,
 * refactor) are the user's explicit request and survive typing, but not
 * the document's closing. */
static void cancel_for_uri(lsp_server *s, const char *uri, bool commands) {
    for (lsp_pending *p = s->pending, *n; p; p = n) {
        n = p->next;
        if (!strcmp(p->uri, uri) && (commands || !p->command))
            pend_cancel(p);
    }
}

static json_t *range_json(uint32_t sl, uint32_t sc, uint32_t el, uint32_t ec) {
    return json_pack("{s:{s:i,s:i},s:{s:i,s:i}}", "start", "line", (int)sl,
                     "character", (int)sc, "end", "line", (int)el, "character",
                     (int)ec);
}

/* The first non-empty line of t, for a completion label. */
static json_t *label_of(const char *t, size_t n) {
    size_t a = 0;
    while (a < n) {
        size_t b = a;
        while (b < n && t[b] != '\n' && t[b] != '\r')
            b++;
        size_t x = a;
        while (x < b && (t[x] == ' ' || t[x] == '\t'))
            x++;
        if (x < b)
            return json_stringn(t + (a == 0 ? a : x), b - (a == 0 ? a : x));
        a = b + 1;
    }
    return NULL;
}

/* A docstring or refactoring is done: send the edit to the client with
 * workspace/applyEdit and answer the command with the same edit. */
static void finish_command(lsp_pending *p, cmp_request *req) {
    lsp_server *s = p->s;
    size_t len = 0;
    const char *t = cmp_request_n_results(req) > 0
                        ? cmp_request_result(req, 0, &len)
                        : NULL;
    if (!t) {
        pend_fail(p, LSP_REQUEST_FAILED, "the model produced no text");
        return;
    }
    size_t bl = strlen(p->before), al = strlen(p->after);
    char *text = nib_malloc(bl + len + al + 1);
    memcpy(text, p->before, bl);
    memcpy(text + bl, t, len);
    memcpy(text + bl + len, p->after, al);
    json_t *edit = json_pack(
        "{s:{s:[{s:o,s:s%}]}}", "changes", p->uri, "range",
        range_json(p->start_line, p->start_char, p->end_line, p->end_char),
        "newText", text, bl + len + al);
    nib_free(text);
    lsp_request(s, "workspace/applyEdit",
                json_pack("{s:s,s:O}", "label",
                          p->command == LSP_CMD_DOCSTRING
                              ? "nib: generate docstring"
                              : "nib: refactor selection",
                          "edit", edit));
    lsp_respond(s, p->id, json_pack("{s:o}", "edit", edit));
    pend_finish(p);
}

static void on_completion_done(cmp_request *req, int status) {
    lsp_pending *p = cmp_request_data(req);
    lsp_server *s = p->s;
    p->worker_busy = false;
    p->req = NULL; /* the worker frees it after this callback */
    if (p->phase == LSP_PEND_CLOSING)
        return;
    if (p->cancelled || status == NIB_ECANCELED) {
        pend_fail(p, LSP_REQUEST_CANCELLED, "request cancelled");
        return;
    }
    if (status == NIB_EUNSUPPORTED) {
        pend_fail(p, LSP_REQUEST_FAILED,
                  "completion failed: the model has no fill-in-the-middle "
                  "tokens; use a code model such as Qwen2.5-Coder");
        return;
    }
    if (status != 0) {
        pend_fail(p, LSP_REQUEST_FAILED, "completion failed: %s",
                  nib_strerror(status));
        return;
    }
    int n = cmp_request_n_results(req);
    nib_log_debug("lsp: completion for %s: %d results, %d tokens, %.1f ms",
                  p->uri, n, cmp_request_n_generated(req), cmp_request_ms(req));
    if (p->command) {
        finish_command(p, req);
        return;
    }
    json_t *items = json_array();
    for (int i = 0; i < n; i++) {
        size_t len;
        const char *t = cmp_request_result(req, i, &len);
        if (p->classic) {
            json_t *label = label_of(t, len);
            if (!label)
                continue;
            json_t *item = json_pack("{s:o,s:i,s:s,s:s,s:i,s:{s:o,s:s%}}",
                                     "label", label, "kind", 1, "detail", "nib",
                                     "filterText", p->word ? p->word : "",
                                     "insertTextFormat", 1, "textEdit", "range",
                                     range_json(p->start_line, p->start_char,
                                                p->end_line, p->end_char),
                                     "newText", t, len);
            json_array_append_new(items, item);
            break; /* one item: the fallback shows a single suggestion */
        }
        size_t el = p->extend ? strlen(p->extend) : 0;
        char *full = nib_malloc(el + len + 1);
        if (el)
            memcpy(full, p->extend, el);
        memcpy(full + el, t, len);
        json_array_append_new(items,
                              json_pack("{s:s%,s:o}", "insertText", full,
                                        el + len, "range",
                                        range_json(p->start_line, p->start_char,
                                                   p->end_line, p->end_char)));
        nib_free(full);
        if (p->trigger == 2)
            break;
    }
    if (p->classic)
        lsp_respond(s, p->id,
                    json_pack("{s:b,s:o}", "isIncomplete", 1, "items", items));
    else
        lsp_respond(s, p->id, json_pack("{s:o}", "items", items));
    pend_finish(p);
}

static void pend_submit(lsp_pending *p) {
    lsp_server *s = p->s;
    const char *msg;
    cmp_model_state st =
        s->worker ? cmp_worker_state(s->worker, &msg) : CMP_MODEL_NONE;
    switch (st) {
    case CMP_MODEL_READY: {
        int r = cmp_request_start(s->worker, p->req, on_completion_done);
        if (r != 0) {
            pend_fail(p, LSP_REQUEST_FAILED, "completion failed: %s",
                      nib_strerror(r));
            return;
        }
        p->phase = LSP_PEND_RUNNING;
        p->worker_busy = true;
        return;
    }
    case CMP_MODEL_LOADING:
        p->phase = LSP_PEND_WAIT_MODEL; /* on_debounce arms the timeout */
        break;
    case CMP_MODEL_FAILED:
        pend_fail(p, LSP_REQUEST_FAILED, "model failed to load: %s", msg);
        return;
    case CMP_MODEL_NONE:
        pend_fail(p, LSP_REQUEST_FAILED,
                  "no model configured: set nib.model or NIB_MODEL");
        return;
    }
}

static void on_model_wait_timeout(uv_timer_t *t) {
    lsp_pending *p = t->data;
    pend_fail(p, LSP_REQUEST_FAILED,
              "the model is still loading after %d ms (%s); try again later",
              p->s->settings.model_wait_ms,
              p->s->worker ? cmp_worker_model_path(p->s->worker) : "?");
}

static void on_debounce(uv_timer_t *t) {
    lsp_pending *p = t->data;
    pend_submit(p);
    if (p->phase == LSP_PEND_WAIT_MODEL)
        uv_timer_start(&p->timer, on_model_wait_timeout,
                       (uint64_t)p->s->settings.model_wait_ms, 0);
}

/* A new pending request, linked into the server's list; takes ownership
 * of req. */
static lsp_pending *pend_new(lsp_server *s, json_t *id, const char *uri,
                             cmp_request *req) {
    lsp_pending *p = nib_calloc(1, sizeof *p);
    p->s = s;
    p->id = json_incref(id);
    p->uri = nib_strdup(uri);
    p->req = req;
    p->t_start = nib_now_ns();
    cmp_request_set_data(req, p);
    uv_timer_init(s->loop, &p->timer);
    p->timer.data = p;
    p->next = s->pending;
    if (s->pending)
        s->pending->prev = p;
    s->pending = p;
    return p;
}

/* Shared by inline and classic completion. */
static void start_completion(lsp_server *s, json_t *id, json_t *params,
                             bool classic) {
    const char *uri;
    json_t *pos, *context = NULL;
    char msg[300];
    if (lsp_unpack(params, msg, sizeof msg, "{s:{s:s},s:o,s?o}", "textDocument",
                   "uri", &uri, "position", &pos, "context", &context) != 0) {
        BAD_PARAMS(s, id, msg);
        return;
    }
    uint64_t line, ch;
    if (get_position(pos, &line, &ch) != 0) {
        BAD_PARAMS(s, id,
                   "position: expected {line, character} with "
                   "non-negative integers");
        return;
    }
    int trigger = classic ? 2 : 1;
    json_t *sel = NULL;
    if (context && !json_is_null(context)) {
        json_t *tk = json_object_get(context, "triggerKind");
        if (!json_is_object(context) || !json_is_integer(tk) ||
            json_integer_value(tk) < 1 ||
            json_integer_value(tk) > (classic ? 3 : 2)) {
            BAD_PARAMS(s, id,
                       classic ? "context.triggerKind: expected 1, 2 "
                                 "or 3"
                               : "context.triggerKind: expected 1 "
                                 "(invoked) or 2 (automatic)");
            return;
        }
        if (!classic)
            trigger = (int)json_integer_value(tk);
        sel = json_object_get(context, "selectedCompletionInfo");
        if (json_is_null(sel))
            sel = NULL;
    }
    uint64_t rsl = 0, rsc = 0, rel = 0, rec = 0;
    const char *sel_text = NULL;
    if (sel && !classic) {
        json_t *range;
        if (lsp_unpack(sel, msg, sizeof msg, "{s:o,s:s}", "range", &range,
                       "text", &sel_text) != 0 ||
            get_position(json_object_get(range, "start"), &rsl, &rsc) ||
            get_position(json_object_get(range, "end"), &rel, &rec)) {
            BAD_PARAMS(s, id,
                       "context.selectedCompletionInfo: expected "
                       "{range, text}");
            return;
        }
    }
    lsp_docent *d = doc_find(s, uri);
    if (!d) {
        lsp_respond_error(s, id, LSP_INVALID_PARAMS,
                          "invalid params: textDocument.uri: document not "
                          "open: %s",
                          uri);
        return;
    }
    if (!language_enabled(s, d->language_id) ||
        (!s->inline_enabled && trigger == 2)) {
        lsp_respond(s, id,
                    classic
                        ? json_pack("{s:b,s:[]}", "isIncomplete", 0, "items")
                        : json_pack("{s:[]}", "items"));
        return;
    }
    /* Supersede: one completion per document at a time. */
    cancel_for_uri(s, uri, false);

    lsp_doc *doc = d->doc;
    size_t off = lsp_doc_offset(doc, s->enc, line, ch);
    size_t pre_end = off, suf_start = off;
    if (sel_text) {
        size_t a = lsp_doc_offset(doc, s->enc, rsl, rsc);
        size_t b = lsp_doc_offset(doc, s->enc, rel, rec);
        if (a > b) {
            size_t t = a;
            a = b;
            b = t;
        }
        pre_end = a;
        suf_start = NIB_MAX(b, off);
        off = a;
    }
    size_t window = (size_t)s->settings.context_budget * BYTES_PER_TOKEN;
    size_t len = lsp_doc_length(doc);
    size_t pre_start = pre_end > window ? pre_end - window : 0;
    size_t suf_end = NIB_MIN(len, suf_start + window);
    size_t sl = sel_text ? strlen(sel_text) : 0;
    char *prefix = nib_try_malloc(pre_end - pre_start + sl + 1);
    char *suffix = lsp_doc_dup(doc, suf_start, suf_end);
    if (!prefix || !suffix) {
        nib_free(prefix);
        nib_free(suffix);
        lsp_respond_error(s, id, LSP_INTERNAL_ERROR, "out of memory");
        return;
    }
    lsp_doc_copy(doc, pre_start, pre_end, prefix);
    memcpy(prefix + (pre_end - pre_start), sel_text ? sel_text : "", sl);

    cmp_params cp = {
        .prefix = prefix,
        .prefix_len = pre_end - pre_start + sl,
        .suffix = suffix,
        .suffix_len = suf_end - suf_start,
        .max_tokens = s->settings.max_tokens,
        .budget = s->settings.context_budget,
        .n_alternatives = trigger == 1 && !classic ? INVOKED_ALTERNATIVES : 1,
    };
    cmp_request *req;
    int r = cmp_request_new(&cp, &req);
    nib_free(prefix);
    nib_free(suffix);
    if (r != 0) {
        lsp_respond_error(s, id, LSP_INTERNAL_ERROR, "out of memory");
        return;
    }

    lsp_pending *p = pend_new(s, id, uri, req);
    p->classic = classic;
    p->trigger = trigger;
    if (sel_text) {
        p->extend = nib_strdup(sel_text);
        uint32_t l, c;
        lsp_doc_position(doc, s->enc, pre_end, &l, &c);
        p->start_line = l;
        p->start_char = c;
        lsp_doc_position(doc, s->enc, suf_start, &l, &c);
        p->end_line = l;
        p->end_char = c;
    } else {
        uint32_t l, c;
        lsp_doc_position(doc, s->enc, off, &l, &c);
        p->start_line = p->end_line = l;
        p->start_char = p->end_char = c;
    }
    if (classic) {
        size_t w = off;
        while (w > 0) {
            unsigned char b = lsp_doc_byte(doc, w - 1);
            if (!(b >= 0x80 || b == '_' || b == '$' || (b >= '0' && b <= '9') ||
                  (b >= 'a' && b <= 'z') || (b >= 'A' && b <= 'Z')))
                break;
            w--;
        }
        p->word = lsp_doc_dup(doc, w, off);
    }
    if (trigger == 2 && s->settings.debounce_ms > 0) {
        /* Automatic requests come per keystroke; only the last of a burst
         * survives the delay (the others are superseded above). */
        p->phase = LSP_PEND_DEBOUNCE;
        uv_timer_start(&p->timer, on_debounce,
                       (uint64_t)s->settings.debounce_ms, 0);
        return;
    }
    on_debounce(&p->timer);
}

static void on_inline_completion(lsp_server *s, json_t *id, json_t *params) {
    start_completion(s, id, params, false);
}

static void on_completion(lsp_server *s, json_t *id, json_t *params) {
    start_completion(s, id, params, true);
}

static void on_cancel_request(lsp_server *s, json_t *params) {
    json_t *id = json_object_get(params, "id");
    if (!json_is_integer(id) && !json_is_string(id)) {
        nib_log_error("lsp: $/cancelRequest: invalid params: id: expected an "
                      "integer or a string");
        return;
    }
    for (lsp_pending *p = s->pending; p; p = p->next) {
        if (json_equal(p->id, id)) {
            pend_cancel(p);
            return;
        }
    }
    /* Already answered, or never a long-running request: nothing to do. */
}

/* ---- code actions and commands ------------------------------------------- */

static void on_code_action(lsp_server *s, json_t *id, json_t *params) {
    const char *uri;
    json_t *range;
    char msg[300];
    if (lsp_unpack(params, msg, sizeof msg, "{s:{s:s},s:o}", "textDocument",
                   "uri", &uri, "range", &range) != 0) {
        BAD_PARAMS(s, id, msg);
        return;
    }
    uint64_t sl, sc, el, ec;
    if (!json_is_object(range) ||
        get_position(json_object_get(range, "start"), &sl, &sc) ||
        get_position(json_object_get(range, "end"), &el, &ec)) {
        BAD_PARAMS(s, id, "range: expected a Range");
        return;
    }
    json_t *actions = json_array();
    json_array_append_new(
        actions, json_pack("{s:s,s:s,s:{s:s,s:s,s:[s,O]}}", "title",
                           "nib: Generate docstring", "kind", "refactor",
                           "command", "title", "Generate docstring", "command",
                           "nib.generateDocstring", "arguments", uri, range));
    if (sl != el || sc != ec)
        json_array_append_new(
            actions,
            json_pack("{s:s,s:s,s:{s:s,s:s,s:[s,O]}}", "title",
                      "nib: Refactor selection", "kind", "refactor.rewrite",
                      "command", "title", "Refactor selection", "command",
                      "nib.refactorSelection", "arguments", uri, range));
    lsp_respond(s, id, actions);
}

static size_t indent_len(lsp_doc *doc, size_t line) {
    size_t a = lsp_doc_line_start(doc, line), e = lsp_doc_line_end(doc, line);
    size_t i = a;
    while (i < e &&
           (lsp_doc_byte(doc, i) == ' ' || lsp_doc_byte(doc, i) == '\t'))
        i++;
    return i - a;
}

/* Does the line's text, without trailing blanks, end with c? */
static bool line_ends_with(lsp_doc *doc, size_t line, char c) {
    size_t a = lsp_doc_line_start(doc, line), e = lsp_doc_line_end(doc, line);
    while (e > a && (lsp_doc_byte(doc, e - 1) == ' ' ||
                     lsp_doc_byte(doc, e - 1) == '\t'))
        e--;
    return e > a && lsp_doc_byte(doc, e - 1) == c;
}

static char *concat3(const char *a, size_t an, const char *b, const char *c) {
    size_t bn = strlen(b), cn = strlen(c);
    char *r = nib_malloc(an + bn + cn + 1);
    memcpy(r, a, an);
    memcpy(r + an, b, bn);
    memcpy(r + an + bn, c, cn + 1);
    return r;
}

/* Lines searched below the given one for the end of a Python header
 * ("def f(\n  a,\n  b):"). */
#define DOCSTRING_HEADER_LINES 20

/* nib.generateDocstring and nib.refactorSelection with the plain FIM
 * prompt: a docstring is the middle between the code and a comment opener
 * placed where the language wants it; a refactoring regenerates the
 * selection from its surroundings. The result is applied with
 * workspace/applyEdit. */
static void start_edit_command(lsp_server *s, json_t *id, lsp_docent *d,
                               int cmd, uint64_t sl, uint64_t sc, uint64_t el,
                               uint64_t ec) {
    lsp_doc *doc = d->doc;
    size_t a = lsp_doc_offset(doc, s->enc, sl, sc);
    size_t b = lsp_doc_offset(doc, s->enc, el, ec);
    if (a > b) {
        size_t t = a;
        a = b;
        b = t;
    }
    size_t len = lsp_doc_length(doc);
    const char *before = "", *after = "", *stop = NULL;
    char *indent = NULL;
    size_t ins_a = a, ins_b = b;
    int max_tokens = s->settings.max_tokens;
    bool lead_nl = false;
    if (cmd == LSP_CMD_REFACTOR) {
        if (a == b) {
            BAD_PARAMS(s, id, "arguments[1]: the range to refactor is empty");
            return;
        }
        /* Room for a rewrite somewhat longer than the original. */
        max_tokens =
            (int)NIB_MIN(4096, NIB_MAX((size_t)max_tokens, (b - a) / 2 + 32));
    } else {
        const char *lang = d->language_id ? d->language_id : "";
        size_t n_lines = lsp_doc_line_count(doc);
        size_t line = NIB_MIN(sl, n_lines - 1);
        size_t ls = lsp_doc_line_start(doc, line);
        indent = lsp_doc_dup(doc, ls, ls + indent_len(doc, line));
        if (!strcmp(lang, "python")) {
            size_t h = line;
            while (h < n_lines - 1 && h < line + DOCSTRING_HEADER_LINES &&
                   !line_ends_with(doc, h, ':'))
                h++;
            if (!line_ends_with(doc, h, ':'))
                h = line;
            if (h + 1 < n_lines) {
                ins_a = lsp_doc_line_start(doc, h + 1);
            } else {
                ins_a = len;
                lead_nl = true;
            }
            char *inner = concat3(indent, strlen(indent), "    ", "");
            nib_free(indent);
            indent = inner;
            before = "\"\"\"";
            after = "\"\"\"\n";
            stop = "\"\"\"";
        } else {
            ins_a = ls;
            if (!strcmp(lang, "rust")) {
                before = "/// ", after = "\n", stop = "\n";
            } else if (!strcmp(lang, "go")) {
                before = "// ", after = "\n", stop = "\n";
            } else if (!strcmp(lang, "ruby") || !strcmp(lang, "shellscript") ||
                       !strcmp(lang, "perl") || !strcmp(lang, "r")) {
                before = "# ", after = "\n", stop = "\n";
            } else if (!strcmp(lang, "lua")) {
                before = "--- ", after = "\n", stop = "\n";
            } else {
                before = "/** ", after = " */\n", stop = "*/";
            }
        }
        ins_b = ins_a;
    }
    /* The text inserted around the model's part, and the same text in the
     * prompt so the model writes inside the comment. */
    char *pre_text = concat3(lead_nl ? "\n" : "", lead_nl ? 1 : 0,
                             indent ? indent : "", before);
    nib_free(indent);
    size_t window = (size_t)s->settings.context_budget * BYTES_PER_TOKEN;
    size_t p0 = ins_a > window ? ins_a - window : 0;
    size_t s1 = NIB_MIN(len, ins_b + window);
    char *docpre = lsp_doc_dup(doc, p0, ins_a);
    char *docsuf = lsp_doc_dup(doc, ins_b, s1);
    if (!docpre || !docsuf) {
        nib_free(docpre);
        nib_free(docsuf);
        nib_free(pre_text);
        lsp_respond_error(s, id, LSP_INTERNAL_ERROR, "out of memory");
        return;
    }
    char *prompt_pre = concat3(docpre, ins_a - p0, pre_text, "");
    char *prompt_suf = concat3(after, strlen(after), docsuf, "");
    nib_free(docpre);
    nib_free(docsuf);
    cmp_params cp = {
        .prefix = prompt_pre,
        .prefix_len = strlen(prompt_pre),
        .suffix = prompt_suf,
        .suffix_len = strlen(prompt_suf),
        .max_tokens = max_tokens,
        .budget = s->settings.context_budget,
        .n_alternatives = 1,
        .stop = stop,
    };
    cmp_request *req;
    int r = cmp_request_new(&cp, &req);
    nib_free(prompt_pre);
    nib_free(prompt_suf);
    if (r != 0) {
        nib_free(pre_text);
        lsp_respond_error(s, id, LSP_INTERNAL_ERROR, "out of memory");
        return;
    }
    lsp_pending *p = pend_new(s, id, d->uri, req);
    p->command = cmd;
    p->trigger = 1;
    p->before = pre_text;
    p->after = nib_strdup(after);
    uint32_t l, c;
    lsp_doc_position(doc, s->enc, ins_a, &l, &c);
    p->start_line = l;
    p->start_char = c;
    lsp_doc_position(doc, s->enc, ins_b, &l, &c);
    p->end_line = l;
    p->end_char = c;
    on_debounce(&p->timer);
}

static const char *state_name(cmp_model_state st) {
    switch (st) {
    case CMP_MODEL_LOADING:
        return "loading";
    case CMP_MODEL_READY:
        return "ready";
    case CMP_MODEL_FAILED:
        return "failed";
    case CMP_MODEL_NONE:
        break;
    }
    return "none";
}

static void on_execute_command(lsp_server *s, json_t *id, json_t *params) {
    const char *cmd;
    json_t *args = NULL;
    char msg[300];
    if (lsp_unpack(params, msg, sizeof msg, "{s:s,s?o}", "command", &cmd,
                   "arguments", &args) != 0) {
        BAD_PARAMS(s, id, msg);
        return;
    }
    if (args && !json_is_array(args) && !json_is_null(args)) {
        BAD_PARAMS(s, id, "arguments: expected an array");
        return;
    }
    if (!strcmp(cmd, "nib.toggleInline")) {
        s->inline_enabled = !s->inline_enabled;
        lsp_show_message(s, 3, "nib: inline completions %s",
                         s->inline_enabled ? "on" : "off");
        lsp_respond(s, id,
                    json_pack("{s:b}", "inlineEnabled", s->inline_enabled));
    } else if (!strcmp(cmd, "nib.status")) {
        const char *m = "";
        cmp_model_state st =
            s->worker ? cmp_worker_state(s->worker, &m) : CMP_MODEL_NONE;
        const char *path = s->worker ? cmp_worker_model_path(s->worker) : NULL;
        size_t n_pending = 0;
        for (lsp_pending *p = s->pending; p; p = p->next)
            n_pending++;
        lsp_respond(
            s, id,
            json_pack("{s:s,s:s?,s:s,s:s,s:b,s:I,s:I,s:I,s:{s:i,s:i,s:i,s:i}}",
                      "version", NIB_VERSION, "model", path, "modelState",
                      state_name(st), "message", m, "inlineEnabled",
                      s->inline_enabled, "documents", (json_int_t)s->n_docs,
                      "pending", (json_int_t)n_pending, "edits",
                      (json_int_t)s->n_edits, "settings", "threads",
                      s->settings.threads, "maxTokens", s->settings.max_tokens,
                      "contextBudget", s->settings.context_budget, "debounceMs",
                      s->settings.debounce_ms));
    } else if (!strcmp(cmd, "nib.generateDocstring") ||
               !strcmp(cmd, "nib.refactorSelection")) {
        const char *uri = json_string_value(json_array_get(args, 0));
        json_t *range = json_array_get(args, 1);
        uint64_t sl, sc, el, ec;
        if (!uri || !json_is_object(range) ||
            get_position(json_object_get(range, "start"), &sl, &sc) ||
            get_position(json_object_get(range, "end"), &el, &ec)) {
            BAD_PARAMS(s, id, "arguments: expected [uri, range]");
            return;
        }
        lsp_docent *d = doc_find(s, uri);
        if (!d) {
            lsp_respond_error(s, id, LSP_INVALID_PARAMS,
                              "invalid params: arguments[0]: document not "
                              "open: %s",
                              uri);
            return;
        }
        start_edit_command(s, id, d,
                           !strcmp(cmd, "nib.generateDocstring")
                               ? LSP_CMD_DOCSTRING
                               : LSP_CMD_REFACTOR,
                           sl, sc, el, ec);
    } else {
        lsp_respond_error(s, id, LSP_INVALID_PARAMS,
                          "invalid params: command: unknown command %s", cmd);
    }
}

/* ---- method tables ------------------------------------------------------- */

const lsp_request_entry lsp_request_table[] = {
    {"initialize", on_initialize},
    {"shutdown", on_shutdown},
    {"textDocument/inlineCompletion", on_inline_completion},
    {"textDocument/completion", on_completion},
    {"textDocument/codeAction", on_code_action},
    {"workspace/executeCommand", on_execute_command},
    {"nib/_documentText", on_document_text},
    {NULL, NULL},
};

const lsp_notify_entry lsp_notify_table[] = {
    {"initialized", on_initialized},
    {"$/cancelRequest", on_cancel_request},
    {"$/setTrace", on_set_trace},
    {"workspace/didChangeConfiguration", on_did_change_configuration},
    {"textDocument/didOpen", on_did_open},
    {"textDocument/didChange", on_did_change},
    {"textDocument/didClose", on_did_close},
    {"textDocument/didSave", on_did_save},
    {NULL, NULL},
};
