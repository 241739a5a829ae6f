/*
 * complete.c — requests that run the model: inline and classic completion,
 * code actions and the nib.* commands. Each in-flight one is an
 * lsp_pending: debounced, waiting for the model, or running on the worker,
 * cancelled by a newer request for its document or by $/cancelRequest, and
 * freed from its timer's close callback (style rule L7).
 */
#include <stdarg.h>
#include <string.h>

#include "lsp/server.h"

/* Alternatives offered for an invoked inline completion. */
#define INVOKED_ALTERNATIVES 3

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
void lsp_cancel_for_uri(lsp_server *s, const char *uri, bool commands) {
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
        LSP_BAD_PARAMS(s, id, msg);
        return;
    }
    uint64_t line, ch;
    if (lsp_get_position(pos, &line, &ch) != 0) {
        LSP_BAD_PARAMS(s, id,
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
            LSP_BAD_PARAMS(s, id,
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
            lsp_get_position(json_object_get(range, "start"), &rsl, &rsc) ||
            lsp_get_position(json_object_get(range, "end"), &rel, &rec)) {
            LSP_BAD_PARAMS(s, id,
                           "context.selectedCompletionInfo: expected "
                           "{range, text}");
            return;
        }
    }
    lsp_docent *d = lsp_docs_find(s, uri);
    if (!d) {
        lsp_respond_error(s, id, LSP_INVALID_PARAMS,
                          "invalid params: textDocument.uri: document not "
                          "open: %s",
                          uri);
        return;
    }
    if (!lsp_language_enabled(s, d->language_id) ||
        (!s->inline_enabled && trigger == 2)) {
        lsp_respond(s, id,
                    classic
                        ? json_pack("{s:b,s:[]}", "isIncomplete", 0, "items")
                        : json_pack("{s:[]}", "items"));
        return;
    }
    /* Supersede: one completion per document at a time. */
    lsp_cancel_for_uri(s, uri, false);

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
    size_t window = (size_t)s->settings.context_budget * LSP_BYTES_PER_TOKEN;
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
        .doc_key = cmp_doc_key(uri),
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

void lsp_on_inline_completion(lsp_server *s, json_t *id, json_t *params) {
    start_completion(s, id, params, false);
}

void lsp_on_completion(lsp_server *s, json_t *id, json_t *params) {
    start_completion(s, id, params, true);
}

void lsp_on_cancel_request(lsp_server *s, json_t *params) {
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

void lsp_on_code_action(lsp_server *s, json_t *id, json_t *params) {
    const char *uri;
    json_t *range;
    char msg[300];
    if (lsp_unpack(params, msg, sizeof msg, "{s:{s:s},s:o}", "textDocument",
                   "uri", &uri, "range", &range) != 0) {
        LSP_BAD_PARAMS(s, id, msg);
        return;
    }
    uint64_t sl, sc, el, ec;
    if (!json_is_object(range) ||
        lsp_get_position(json_object_get(range, "start"), &sl, &sc) ||
        lsp_get_position(json_object_get(range, "end"), &el, &ec)) {
        LSP_BAD_PARAMS(s, id, "range: expected a Range");
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
            LSP_BAD_PARAMS(s, id,
                           "arguments[1]: the range to refactor is empty");
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
    size_t window = (size_t)s->settings.context_budget * LSP_BYTES_PER_TOKEN;
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

void lsp_on_execute_command(lsp_server *s, json_t *id, json_t *params) {
    const char *cmd;
    json_t *args = NULL;
    char msg[300];
    if (lsp_unpack(params, msg, sizeof msg, "{s:s,s?o}", "command", &cmd,
                   "arguments", &args) != 0) {
        LSP_BAD_PARAMS(s, id, msg);
        return;
    }
    if (args && !json_is_array(args) && !json_is_null(args)) {
        LSP_BAD_PARAMS(s, id, "arguments: expected an array");
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
                      "version", LSP_NIB_VERSION, "model", path, "modelState",
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
            lsp_get_position(json_object_get(range, "start"), &sl, &sc) ||
            lsp_get_position(json_object_get(range, "end"), &el, &ec)) {
            LSP_BAD_PARAMS(s, id, "arguments: expected [uri, range]");
            return;
        }
        lsp_docent *d = lsp_docs_find(s, uri);
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

/* The model finished loading (or failed): start or fail every request
 * that was waiting for it. */
void lsp_pending_model_done(lsp_server *s, cmp_model_state st,
                            const char *msg) {
    for (lsp_pending *p = s->pending, *n; p; p = n) {
        n = p->next;
        if (p->phase != LSP_PEND_WAIT_MODEL)
            continue;
        uv_timer_stop(&p->timer);
        if (st == CMP_MODEL_READY)
            pend_submit(p);
        else
            pend_fail(p, LSP_REQUEST_FAILED, "model failed to load: %s", msg);
    }
}
