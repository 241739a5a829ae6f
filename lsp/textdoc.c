/*
 * textdoc.c — the open documents: a hash table from URI to text and
 * version, and the didOpen / didChange / didClose / didSave notifications.
 * A notification with bad params is logged and changes nothing.
 */
#include <string.h>

#include "lsp/server.h"

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

lsp_docent *lsp_docs_find(lsp_server *s, const char *uri) {
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

void lsp_on_did_open(lsp_server *s, json_t *params) {
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
    lsp_docent *d = lsp_docs_find(s, uri);
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
int lsp_get_position(json_t *pos, uint64_t *line, uint64_t *ch) {
    json_t *l = json_object_get(pos, "line");
    json_t *c = json_object_get(pos, "character");
    if (!json_is_integer(l) || !json_is_integer(c) ||
        json_integer_value(l) < 0 || json_integer_value(c) < 0)
        return -1;
    *line = (uint64_t)json_integer_value(l);
    *ch = (uint64_t)json_integer_value(c);
    return 0;
}

void lsp_on_did_change(lsp_server *s, json_t *params) {
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
    lsp_docent *d = lsp_docs_find(s, uri);
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
        if (range &&
            (!json_is_object(range) ||
             lsp_get_position(json_object_get(range, "start"), &a, &b) ||
             lsp_get_position(json_object_get(range, "end"), &a, &b))) {
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
            lsp_get_position(json_object_get(range, "start"), &sl, &sc);
            lsp_get_position(json_object_get(range, "end"), &el, &ec);
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

void lsp_on_did_close(lsp_server *s, json_t *params) {
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
    lsp_cancel_for_uri(s, uri, true);
    lsp_docent *d = *pp;
    *pp = d->next;
    s->n_docs--;
    docent_free(d);
}

void lsp_on_did_save(lsp_server *s, json_t *params) {
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
void lsp_on_document_text(lsp_server *s, json_t *id, json_t *params) {
    const char *uri;
    char msg[300];
    if (lsp_unpack(params, msg, sizeof msg, "{s:s}", "uri", &uri) != 0) {
        LSP_BAD_PARAMS(s, id, msg);
        return;
    }
    lsp_docent *d = lsp_docs_find(s, uri);
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
