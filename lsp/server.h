/*
 * server.h — the server's state, shared by the transport and dispatch
 * (server.c) and the method handlers (handlers.c). Internal to lsp/.
 * Everything here lives on the loop thread.
 */
#ifndef NIB_LSP_SERVER_H
#define NIB_LSP_SERVER_H

#include <stdbool.h>
#include <stdio.h>

#include <jansson.h>
#include <uv.h>

#include "completion/completion.h"
#include "lsp/document.h"
#include "lsp/framing.h"

/* JSON-RPC and LSP error codes. */
enum {
    LSP_PARSE_ERROR = -32700,
    LSP_INVALID_REQUEST = -32600,
    LSP_METHOD_NOT_FOUND = -32601,
    LSP_INVALID_PARAMS = -32602,
    LSP_INTERNAL_ERROR = -32603,
    LSP_SERVER_NOT_INITIALIZED = -32002,
    LSP_REQUEST_FAILED = -32803,
    LSP_REQUEST_CANCELLED = -32800,
    LSP_CONTENT_MODIFIED = -32801,
};

/* Lifecycle (style rule L3: fatal states with a message table). */
#define LSP_STATUS_MAP(XX)                                                     \
    XX(UNINITIALIZED, "the server has not been initialized")                   \
    XX(INITIALIZING, "initialize answered, waiting for initialized")           \
    XX(RUNNING, "running")                                                     \
    XX(SHUTDOWN, "shutdown received; only exit is accepted")                   \
    XX(EXITING, "exiting")

typedef enum {
#define XX(name, msg) LSP_STATUS_##name,
    LSP_STATUS_MAP(XX)
#undef XX
} lsp_status;

const char *lsp_status_message(lsp_status st);

typedef enum { LSP_IO_PIPE, LSP_IO_TTY, LSP_IO_FILE } lsp_io_kind;

typedef enum { LSP_TRACE_OFF, LSP_TRACE_MESSAGES, LSP_TRACE_VERBOSE } lsp_trace;

typedef struct {
    char *model;        /* model path (owned), NULL = default */
    char *draft_model;  /* owned, may be NULL; kept for speculative decoding */
    int threads;        /* 0 = automatic */
    int max_tokens;     /* generated tokens per completion */
    int context_budget; /* prompt tokens */
    int debounce_ms;    /* delay of automatic requests */
    int model_wait_ms;  /* how long a request waits for a loading model */
    json_t *languages;  /* object languageId -> bool (owned), may be NULL */
} lsp_settings;

typedef struct lsp_docent {
    struct lsp_docent *next; /* hash chain */
    char *uri;
    char *language_id;
    int64_t version;
    lsp_doc *doc;
} lsp_docent;

enum { LSP_CMD_DOCSTRING = 1, LSP_CMD_REFACTOR = 2 };

typedef enum {
    LSP_PEND_DEBOUNCE,   /* automatic request waiting out the debounce */
    LSP_PEND_WAIT_MODEL, /* waiting for the model to be ready */
    LSP_PEND_RUNNING,    /* on the worker */
    LSP_PEND_CLOSING,    /* answered; timer closing */
} lsp_pend_phase;

/* One in-flight completion request (inline or classic). It stays
 * reachable from its timer and, while running, from the worker's request,
 * so it is freed only from the timer's close callback after the worker's
 * done callback (style rule L7). */
typedef struct lsp_pending {
    struct lsp_pending *prev, *next;
    struct lsp_server *s;
    json_t *id; /* owned */
    char *uri;
    bool classic; /* textDocument/completion */
    int command;  /* 0, or LSP_CMD_DOCSTRING / LSP_CMD_REFACTOR */
    int trigger;  /* 1 invoked, 2 automatic */
    lsp_pend_phase phase;
    bool cancelled;
    bool worker_busy; /* the worker's done callback has not run yet */
    bool timer_closed;
    uv_timer_t timer;
    cmp_request *req; /* built at request time; owned until started */
    /* Answer shape, computed at request time in the negotiated encoding. */
    uint32_t start_line, start_char, end_line, end_char;
    char *extend; /* selectedCompletionInfo.text, or NULL */
    char *word;   /* the word being typed (classic filterText) */
    char *before; /* commands: text around the generated part of the edit */
    char *after;
    uint64_t t_start;
} lsp_pending;

typedef struct lsp_outbuf {
    struct lsp_outbuf *next;
    size_t len;
    char data[]; /* "Content-Length: N\r\n\r\n{...}" */
} lsp_outbuf;

typedef struct lsp_server {
    uv_loop_t *loop;

    /* transport */
    lsp_io_kind in_kind, out_kind;
    union {
        uv_pipe_t pipe;
        uv_tty_t tty;
        uv_stream_t stream;
    } in, out;
    uv_fs_t in_req;
    bool in_open, out_open;
    bool reading;
    lsp_framer framer;
    lsp_outbuf *out_head, *out_tail; /* queued, not yet written */
    int writes_in_flight;
    uv_prepare_t flush_prepare;
    uv_check_t flush_check;
    uv_async_t log_async;
    uv_mutex_t log_lock;
    bool log_async_open;             /* guarded by log_lock */
    lsp_outbuf *log_head, *log_tail; /* window/logMessage params, as JSON */
    FILE *log_file;
    nib_log_level log_level;

    /* protocol */
    lsp_status status;
    bool shutdown_received;
    int exit_code;
    lsp_encoding enc;
    lsp_trace trace;
    bool cap_work_done;   /* client: window.workDoneProgress */
    bool cap_config_pull; /* client: workspace.configuration */
    bool cap_show_message;
    int64_t next_out_id; /* ids of our requests to the client */
    int64_t config_request_id;

    /* state */
    lsp_settings settings;
    char *default_model; /* --model, NIB_MODEL or the shipped model */
    bool inline_enabled; /* nib.toggleInline */
    lsp_docent **docs;
    size_t n_buckets, n_docs;
    lsp_pending *pending; /* list of in-flight completions */
    cmp_worker *worker;
    bool progress_active;
    int64_t progress_create_id; /* our window/workDoneProgress/create */
    int progress_seq;
    char progress_token[32];
    uint64_t n_edits;
} lsp_server;

/* ---- server.c: output ---------------------------------------------------- */

/* Queue a message (steals msg). Written by the next flush. */
void lsp_send(lsp_server *s, json_t *msg);
void lsp_respond(lsp_server *s, json_t *id, json_t *result);
void lsp_respond_error(lsp_server *s, json_t *id, int code, const char *fmt,
                       ...) __attribute__((format(printf, 4, 5)));
void lsp_notify(lsp_server *s, const char *method, json_t *params);
/* A request to the client; returns its id. */
int64_t lsp_request(lsp_server *s, const char *method, json_t *params);
/* window/showMessage (type 1 error .. 4 log). */
void lsp_show_message(lsp_server *s, int type, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* ---- unpack.c: validation ------------------------------------------------ */

/* json_unpack_ex that names the offending field: on failure it writes
 * "<path>: <problem>" (e.g. "textDocument.uri: expected string, got
 * integer") into msg and returns -1. Keys in fmt must be "s" arguments. */
int lsp_unpack(json_t *v, char *msg, size_t msg_size, const char *fmt, ...);

/* ---- shared by the handler files ---------------------------------------- */

#define LSP_NIB_VERSION "0.1.0"

/* Bytes of text copied per side for a prompt: about the most the token
 * budget can use, so a request costs O(budget), not O(document). */
#define LSP_BYTES_PER_TOKEN 8

#define LSP_BAD_PARAMS(s, id, msg)                                             \
    lsp_respond_error(s, id, LSP_INVALID_PARAMS, "invalid params: %s", msg)

/* ---- handlers.c ---------------------------------------------------------- */

typedef void (*lsp_request_fn)(lsp_server *s, json_t *id, json_t *params);
typedef void (*lsp_notify_fn)(lsp_server *s, json_t *params);

typedef struct {
    const char *method;
    lsp_request_fn fn;
} lsp_request_entry;

typedef struct {
    const char *method;
    lsp_notify_fn fn;
} lsp_notify_entry;

extern const lsp_request_entry lsp_request_table[];
extern const lsp_notify_entry lsp_notify_table[];

/* A response to one of our requests (workspace/configuration, ...). */
void lsp_on_response(lsp_server *s, json_t *msg);

void lsp_settings_default(lsp_settings *st);
void lsp_settings_free(lsp_settings *st);
/* Apply a settings object; invalid values are reported with showMessage
 * and keep their previous value. Reloads the model when needed. */
void lsp_apply_settings(lsp_server *s, json_t *obj, bool from_init);
/* Start (or restart) loading the configured model. */
void lsp_start_model(lsp_server *s);

bool lsp_language_enabled(lsp_server *s, const char *lang);

/* ---- textdoc.c ----------------------------------------------------------- */

/* The open document for uri (borrowed), or NULL. */
lsp_docent *lsp_docs_find(lsp_server *s, const char *uri);
void lsp_docs_free(lsp_server *s);
/* A Position object with non-negative integers; 0 or -1. */
int lsp_get_position(json_t *pos, uint64_t *line, uint64_t *ch);

void lsp_on_did_open(lsp_server *s, json_t *params);
void lsp_on_did_change(lsp_server *s, json_t *params);
void lsp_on_did_close(lsp_server *s, json_t *params);
void lsp_on_did_save(lsp_server *s, json_t *params);
void lsp_on_document_text(lsp_server *s, json_t *id, json_t *params);

/* ---- complete.c ---------------------------------------------------------- */

/* Cancel every pending request (shutdown, exit). */
void lsp_cancel_all(lsp_server *s);
/* Cancel the completions of one document, and its commands too when
 * `commands` (the document closed). */
void lsp_cancel_for_uri(lsp_server *s, const char *uri, bool commands);
/* The model is ready or failed: release the requests waiting for it. */
void lsp_pending_model_done(lsp_server *s, cmp_model_state st, const char *msg);

void lsp_on_inline_completion(lsp_server *s, json_t *id, json_t *params);
void lsp_on_completion(lsp_server *s, json_t *id, json_t *params);
void lsp_on_cancel_request(lsp_server *s, json_t *params);
void lsp_on_code_action(lsp_server *s, json_t *id, json_t *params);
void lsp_on_execute_command(lsp_server *s, json_t *id, json_t *params);

#endif
