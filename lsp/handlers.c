/*
 * handlers.c — lifecycle, settings, model loading and the two static
 * method tables (style rule L3) that route to the handlers here, in
 * textdoc.c (documents) and complete.c (completions and commands). Every
 * handler validates its params once with lsp_unpack and answers -32602
 * naming the field (L4); notifications with bad params are logged and
 * change nothing.
 */
#include <string.h>

#include "lsp/server.h"

/* Defaults and bounds of the settings. The context budget and max tokens
 * size the KV cache, so absurd values are refused rather than allocated. */
#define DEF_MAX_TOKENS     64
#define DEF_CONTEXT_BUDGET 2048
#define DEF_DEBOUNCE_MS    75
#define DEF_MODEL_WAIT_MS  30000

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

bool lsp_language_enabled(lsp_server *s, const char *lang) {
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
    lsp_pending_model_done(s, st, state_msg);
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
        LSP_BAD_PARAMS(s, id, msg);
        return;
    }
    if (caps && !json_is_object(caps)) {
        LSP_BAD_PARAMS(s, id, "capabilities: expected an object");
        return;
    }
    if (trace && !json_is_null(trace)) {
        const char *t = json_string_value(trace);
        if (!t || (strcmp(t, "off") && strcmp(t, "messages") &&
                   strcmp(t, "verbose"))) {
            LSP_BAD_PARAMS(
                s, id, "trace: expected \"off\", \"messages\" or \"verbose\"");
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
                          "serverInfo", "name", "nib", "version",
                          LSP_NIB_VERSION));
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

/* ---- method tables ------------------------------------------------------- */

const lsp_request_entry lsp_request_table[] = {
    {"initialize", on_initialize},
    {"shutdown", on_shutdown},
    {"textDocument/inlineCompletion", lsp_on_inline_completion},
    {"textDocument/completion", lsp_on_completion},
    {"textDocument/codeAction", lsp_on_code_action},
    {"workspace/executeCommand", lsp_on_execute_command},
    {"nib/_documentText", lsp_on_document_text},
    {NULL, NULL},
};

const lsp_notify_entry lsp_notify_table[] = {
    {"initialized", on_initialized},
    {"$/cancelRequest", lsp_on_cancel_request},
    {"$/setTrace", on_set_trace},
    {"workspace/didChangeConfiguration", on_did_change_configuration},
    {"textDocument/didOpen", lsp_on_did_open},
    {"textDocument/didChange", lsp_on_did_change},
    {"textDocument/didClose", lsp_on_did_close},
    {"textDocument/didSave", lsp_on_did_save},
    {NULL, NULL},
};
