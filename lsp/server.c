/*
 * server.c — `nib lsp`: stdio transport, JSON-RPC dispatch and lifecycle.
 *
 * Message flow (all on the loop thread):
 *
 *   stdin --read--> framer (lsp/framing.c) --body--> json_loadb
 *     --> dispatch: response to us | request table | notification table
 *     --> handlers (lsp/handlers.c) queue replies with lsp_send
 *     --> uv_prepare/uv_check flush every queued reply with one uv_write
 *
 * Completions leave the loop for the inference thread and come back through
 * the worker's uv_async (completion/worker.c); nothing here blocks on them,
 * so a cheap request is answered while a completion runs.
 */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lsp/lsp.h"
#include "lsp/server.h"

const char *lsp_status_message(lsp_status st) {
    switch (st) {
#define XX(name, msg)                                                          \
    case LSP_STATUS_##name:                                                    \
        return msg;
        LSP_STATUS_MAP(XX)
#undef XX
    }
    return "unknown state";
}

/* ---- output -------------------------------------------------------------- */

static void flush_output(lsp_server *s);

typedef struct {
    uv_write_t req;
    lsp_server *s;
    lsp_outbuf *bufs; /* freed when the write completes */
} write_req;

static void close_output_if_done(lsp_server *s);

static void on_write(uv_write_t *req, int status) {
    write_req *wr = (write_req *)req;
    lsp_server *s = wr->s;
    if (status < 0 && status != UV_ECANCELED)
        nib_log_debug("lsp: write failed: %s", uv_strerror(status));
    while (wr->bufs) {
        lsp_outbuf *n = wr->bufs->next;
        nib_free(wr->bufs);
        wr->bufs = n;
    }
    nib_free(wr);
    s->writes_in_flight--;
    close_output_if_done(s);
}

static void flush_output(lsp_server *s) {
    if (!s->out_head || !s->out_open)
        return;
    lsp_outbuf *list = s->out_head;
    s->out_head = s->out_tail = NULL;
    size_t n = 0;
    for (lsp_outbuf *b = list; b; b = b->next)
        n++;
    uv_buf_t stack[64];
    uv_buf_t *bufs = n <= 64 ? stack : nib_malloc(n * sizeof *bufs);
    size_t i = 0;
    for (lsp_outbuf *b = list; b; b = b->next)
        bufs[i++] = uv_buf_init(b->data, (unsigned)b->len);
    if (s->out_kind == LSP_IO_FILE) {
        /* A regular file never blocks for long, and concurrent thread-pool
         * writes could reorder messages: write synchronously. */
        uv_fs_t req;
        uv_fs_write(s->loop, &req, STDOUT_FILENO, bufs, (unsigned)n, -1, NULL);
        uv_fs_req_cleanup(&req);
        while (list) {
            lsp_outbuf *nx = list->next;
            nib_free(list);
            list = nx;
        }
    } else {
        write_req *wr = nib_calloc(1, sizeof *wr);
        wr->s = s;
        wr->bufs = list;
        int r = uv_write(&wr->req, &s->out.stream, bufs, (unsigned)n, on_write);
        if (r == 0) {
            s->writes_in_flight++;
        } else {
            nib_log_debug("lsp: write failed: %s", uv_strerror(r));
            while (list) {
                lsp_outbuf *nx = list->next;
                nib_free(list);
                list = nx;
            }
            nib_free(wr);
        }
    }
    if (bufs != stack)
        nib_free(bufs);
}

static void on_flush_prepare(uv_prepare_t *h) {
    flush_output(h->data);
}

static void on_flush_check(uv_check_t *h) {
    flush_output(h->data);
}

void lsp_send(lsp_server *s, json_t *msg) {
    if (!json_object_get(msg, "jsonrpc"))
        json_object_set_new(msg, "jsonrpc", json_string("2.0"));
    size_t n = json_dumpb(msg, NULL, 0, JSON_COMPACT);
    char header[64];
    int h = snprintf(header, sizeof header, "Content-Length: %zu\r\n\r\n", n);
    lsp_outbuf *b = nib_try_malloc(sizeof *b + (size_t)h + n);
    if (!b) {
        nib_log_error("lsp: no memory for a %zu-byte message", n);
        json_decref(msg);
        return;
    }
    memcpy(b->data, header, (size_t)h);
    json_dumpb(msg, b->data + h, n, JSON_COMPACT);
    b->len = (size_t)h + n;
    b->next = NULL;
    json_decref(msg);
    if (s->out_tail)
        s->out_tail->next = b;
    else
        s->out_head = b;
    s->out_tail = b;
}

void lsp_respond(lsp_server *s, json_t *id, json_t *result) {
    json_t *m = json_object();
    json_object_set(m, "id", id ? id : json_null());
    json_object_set_new(m, "result", result ? result : json_null());
    lsp_send(s, m);
}

void lsp_respond_error(lsp_server *s, json_t *id, int code, const char *fmt,
                       ...) {
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    json_t *m = json_object();
    json_object_set(m, "id", id ? id : json_null());
    json_object_set_new(m, "error",
                        json_pack("{s:i,s:s}", "code", code, "message", msg));
    lsp_send(s, m);
}

void lsp_notify(lsp_server *s, const char *method, json_t *params) {
    json_t *m = json_pack("{s:s}", "method", method);
    if (params)
        json_object_set_new(m, "params", params);
    lsp_send(s, m);
}

int64_t lsp_request(lsp_server *s, const char *method, json_t *params) {
    int64_t id = ++s->next_out_id;
    json_t *m = json_pack("{s:I,s:s}", "id", (json_int_t)id, "method", method);
    if (params)
        json_object_set_new(m, "params", params);
    lsp_send(s, m);
    return id;
}

void lsp_show_message(lsp_server *s, int type, const char *fmt, ...) {
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    nib_log(type == 1 ? NIB_LOG_ERROR : NIB_LOG_WARN, "%s", msg);
    lsp_notify(s, "window/showMessage",
               json_pack("{s:i,s:s}", "type", type, "message", msg));
}

/* ---- logging ------------------------------------------------------------- */

/* The sink runs on any thread (the inference thread logs too), so messages
 * for the client go through a locked list and an async handle. */
static void log_sink(nib_log_level level, const char *msg, void *ud) {
    lsp_server *s = ud;
    static const char *names[] = {"", "error", "warn", "info", "debug"};
    if (level <= s->log_level) {
        fprintf(stderr, "nib %s: %s\n", names[level], msg);
        if (s->log_file) {
            fprintf(s->log_file, "%s: %s\n", names[level], msg);
            fflush(s->log_file);
        }
    }
    size_t n = strlen(msg);
    lsp_outbuf *b = nib_malloc(sizeof *b + n + 1);
    b->next = NULL;
    b->len = (size_t)level;
    memcpy(b->data, msg, n + 1);
    uv_mutex_lock(&s->log_lock);
    if (s->log_tail)
        s->log_tail->next = b;
    else
        s->log_head = b;
    s->log_tail = b;
    /* Once the handle is closing, a send would touch a dead handle (and,
     * after the loop closes, a closed descriptor); the line is freed with
     * the rest of the queue at the end. */
    if (s->log_async_open)
        uv_async_send(&s->log_async);
    uv_mutex_unlock(&s->log_lock);
}

static void on_log_async(uv_async_t *h) {
    lsp_server *s = h->data;
    uv_mutex_lock(&s->log_lock);
    lsp_outbuf *list = s->log_head;
    s->log_head = s->log_tail = NULL;
    uv_mutex_unlock(&s->log_lock);
    /* $/setTrace decides how much reaches the client: errors and warnings
     * always, info with "messages", debug with "verbose". */
    int max = s->trace == LSP_TRACE_VERBOSE    ? NIB_LOG_DEBUG
              : s->trace == LSP_TRACE_MESSAGES ? NIB_LOG_INFO
                                               : NIB_LOG_WARN;
    while (list) {
        lsp_outbuf *n = list->next;
        int level = (int)list->len;
        bool ready = s->status == LSP_STATUS_RUNNING ||
                     s->status == LSP_STATUS_INITIALIZING ||
                     s->status == LSP_STATUS_SHUTDOWN;
        if (ready && level <= max && s->out_open) {
            int type = level == NIB_LOG_ERROR  ? 1
                       : level == NIB_LOG_WARN ? 2
                       : level == NIB_LOG_INFO ? 3
                                               : 4;
            lsp_notify(
                s, "window/logMessage",
                json_pack("{s:i,s:s}", "type", type, "message", list->data));
        }
        nib_free(list);
        list = n;
    }
}

/* ---- dispatch ------------------------------------------------------------ */

static const lsp_request_entry *find_request(const char *method) {
    for (const lsp_request_entry *e = lsp_request_table; e->method; e++)
        if (strcmp(e->method, method) == 0)
            return e;
    return NULL;
}

static const lsp_notify_entry *find_notify(const char *method) {
    for (const lsp_notify_entry *e = lsp_notify_table; e->method; e++)
        if (strcmp(e->method, method) == 0)
            return e;
    return NULL;
}

static void begin_exit(lsp_server *s);

static void dispatch(lsp_server *s, json_t *msg) {
    if (json_is_array(msg)) {
        /* LSP has no batches; JSON-RPC would answer each element, but a
         * client that sends one is broken, so it gets one clear error. */
        lsp_respond_error(s, NULL, LSP_INVALID_REQUEST,
                          "batch messages are not supported by LSP");
        return;
    }
    if (!json_is_object(msg)) {
        lsp_respond_error(s, NULL, LSP_INVALID_REQUEST,
                          "a message must be a JSON object");
        return;
    }
    json_t *id = json_object_get(msg, "id");
    json_t *method = json_object_get(msg, "method");
    json_t *params = json_object_get(msg, "params");
    json_t *version = json_object_get(msg, "jsonrpc");
    bool id_ok =
        id && (json_is_string(id) || json_is_integer(id) || json_is_real(id));
    json_t *reply_id = id_ok ? id : NULL;
    if (!json_is_string(version) || strcmp(json_string_value(version), "2.0")) {
        lsp_respond_error(s, reply_id, LSP_INVALID_REQUEST,
                          "jsonrpc: must be \"2.0\"");
        return;
    }
    if (!method) {
        if (id &&
            (json_object_get(msg, "result") || json_object_get(msg, "error"))) {
            lsp_on_response(s, msg);
            return;
        }
        lsp_respond_error(s, reply_id, LSP_INVALID_REQUEST, "method: missing");
        return;
    }
    if (!json_is_string(method)) {
        lsp_respond_error(s, reply_id, LSP_INVALID_REQUEST,
                          "method: must be a string");
        return;
    }
    if (id && !id_ok) {
        lsp_respond_error(s, NULL, LSP_INVALID_REQUEST,
                          "id: must be a string or a number");
        return;
    }
    if (params && !json_is_object(params) && !json_is_array(params) &&
        !json_is_null(params)) {
        if (id)
            lsp_respond_error(s, id, LSP_INVALID_REQUEST,
                              "params: must be an object or an array");
        return;
    }
    if (json_is_null(params))
        params = NULL;
    const char *name = json_string_value(method);

    if (!id) {
        /* Notifications: before initialize only exit counts; unknown ones
         * and $/ ones nib does not implement are ignored. */
        if (strcmp(name, "exit") == 0) {
            begin_exit(s);
            return;
        }
        if (s->status == LSP_STATUS_UNINITIALIZED ||
            s->status == LSP_STATUS_EXITING)
            return;
        if (s->status == LSP_STATUS_SHUTDOWN)
            return;
        const lsp_notify_entry *e = find_notify(name);
        if (e)
            e->fn(s, params);
        else
            nib_log_debug("lsp: ignoring notification %s", name);
        return;
    }

    if (s->status == LSP_STATUS_UNINITIALIZED &&
        strcmp(name, "initialize") != 0) {
        lsp_respond_error(s, id, LSP_SERVER_NOT_INITIALIZED,
                          "%s: the server is not initialized yet", name);
        return;
    }
    if (s->status == LSP_STATUS_SHUTDOWN || s->status == LSP_STATUS_EXITING) {
        lsp_respond_error(s, id, LSP_INVALID_REQUEST,
                          "%s: the server is shutting down", name);
        return;
    }
    const lsp_request_entry *e = find_request(name);
    if (!e) {
        lsp_respond_error(s, id, LSP_METHOD_NOT_FOUND, "%s: method not found",
                          name);
        return;
    }
    e->fn(s, id, params);
}

static void handle_body(lsp_server *s, const char *body, size_t len) {
    json_error_t err;
    /* NUL is valid inside JSON strings (as \u0000) and documents may hold
     * it; everything else jansson validates, including UTF-8. Any value is
     * decoded so that `42` is an invalid request, not a parse error. */
    json_t *msg = json_loadb(body, len, JSON_ALLOW_NUL | JSON_DECODE_ANY, &err);
    if (!msg) {
        lsp_respond_error(s, NULL, LSP_PARSE_ERROR,
                          "invalid JSON at line %d column %d: %s", err.line,
                          err.column, err.text);
        return;
    }
    dispatch(s, msg);
    json_decref(msg);
}

static void process_input(lsp_server *s) {
    for (;;) {
        if (s->status == LSP_STATUS_EXITING)
            return;
        const char *body;
        size_t len;
        lsp_frame_error fe;
        lsp_frame_status st = lsp_framer_next(&s->framer, &body, &len, &fe);
        if (st == LSP_FRAME_NEED_MORE)
            return;
        if (st == LSP_FRAME_ERROR) {
            nib_log_error("lsp: %s", lsp_frame_strerror(fe));
            if (fe == LSP_FRAME_E_TOO_LARGE)
                lsp_respond_error(s, NULL, LSP_INVALID_REQUEST,
                                  "message of %zu bytes exceeds the limit of "
                                  "%zu bytes; discarded",
                                  s->framer.body_len, s->framer.max_body);
            continue;
        }
        handle_body(s, body, len);
    }
}

/* ---- input --------------------------------------------------------------- */

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
    lsp_server *s = h->data;
    (void)suggested;
    size_t avail;
    char *p = lsp_framer_space(&s->framer, &avail);
    *buf = uv_buf_init(p, (unsigned)NIB_MIN(avail, 1u << 30));
}

static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf) {
    lsp_server *s = st->data;
    (void)buf;
    if (nread == 0)
        return; /* EAGAIN; libuv hands the buffer back unused */
    if (nread < 0) {
        if (nread != UV_EOF)
            nib_log_error("lsp: read error: %s", uv_strerror((int)nread));
        else
            nib_log_info("lsp: end of input");
        begin_exit(s);
        return;
    }
    lsp_framer_commit(&s->framer, (size_t)nread);
    process_input(s);
}

static void start_fs_read(lsp_server *s);

static void on_fs_read(uv_fs_t *req) {
    lsp_server *s = req->data;
    ssize_t n = req->result;
    uv_fs_req_cleanup(req);
    if (n <= 0) {
        if (n < 0)
            nib_log_error("lsp: read error: %s", uv_strerror((int)n));
        begin_exit(s);
        return;
    }
    lsp_framer_commit(&s->framer, (size_t)n);
    process_input(s);
    if (s->status != LSP_STATUS_EXITING)
        start_fs_read(s);
}

static void start_fs_read(lsp_server *s) {
    size_t avail;
    char *p = lsp_framer_space(&s->framer, &avail);
    if (!p || !avail) {
        nib_log_error("lsp: input buffer exhausted");
        begin_exit(s);
        return;
    }
    uv_buf_t b = uv_buf_init(p, (unsigned)NIB_MIN(avail, 1u << 30));
    s->in_req.data = s;
    if (uv_fs_read(s->loop, &s->in_req, STDIN_FILENO, &b, 1, -1, on_fs_read) !=
        0)
        begin_exit(s);
}

static int open_stdio(lsp_server *s, int fd, uv_stream_t *st, lsp_io_kind *k,
                      bool readable) {
    uv_handle_type t = uv_guess_handle(fd);
    int r;
    switch (t) {
    case UV_TTY:
        *k = LSP_IO_TTY;
        r = uv_tty_init(s->loop, (uv_tty_t *)st, fd, readable);
        break;
    case UV_NAMED_PIPE:
    case UV_TCP:
        *k = LSP_IO_PIPE;
        r = uv_pipe_init(s->loop, (uv_pipe_t *)st, 0);
        if (r == 0)
            r = uv_pipe_open((uv_pipe_t *)st, fd);
        break;
    case UV_FILE:
        *k = LSP_IO_FILE;
        return 0;
    default:
        /* /dev/null and friends: treat as files. */
        *k = LSP_IO_FILE;
        return 0;
    }
    if (r == 0)
        st->data = s;
    return r;
}

/* ---- shutdown ------------------------------------------------------------ */

static void on_closed_noop(uv_handle_t *h) {
    (void)h;
}

static void close_output_if_done(lsp_server *s) {
    if (s->status != LSP_STATUS_EXITING || s->writes_in_flight > 0 ||
        s->out_head)
        return;
    if (!uv_is_closing((uv_handle_t *)&s->flush_prepare)) {
        uv_close((uv_handle_t *)&s->flush_prepare, on_closed_noop);
        uv_close((uv_handle_t *)&s->flush_check, on_closed_noop);
        uv_mutex_lock(&s->log_lock);
        s->log_async_open = false;
        uv_mutex_unlock(&s->log_lock);
        uv_close((uv_handle_t *)&s->log_async, on_closed_noop);
    }
    if (s->out_open && s->out_kind != LSP_IO_FILE) {
        s->out_open = false;
        uv_close((uv_handle_t *)&s->out.stream, on_closed_noop);
    }
    s->out_open = false;
}

static void begin_exit(lsp_server *s) {
    if (s->status == LSP_STATUS_EXITING)
        return;
    s->exit_code = s->shutdown_received ? 0 : 1;
    lsp_cancel_all(s);
    s->status = LSP_STATUS_EXITING;
    if (s->in_open && s->in_kind != LSP_IO_FILE) {
        uv_read_stop(&s->in.stream);
        uv_close((uv_handle_t *)&s->in.stream, on_closed_noop);
    }
    s->in_open = false;
    /* Joins the inference thread: it stops at the next token. */
    cmp_worker_close(s->worker);
    s->worker = NULL;
    /* Deliver what is queued (e.g. the cancelled completions' answers),
     * then close the output once the last write is done. */
    flush_output(s);
    close_output_if_done(s);
}

/* ---- options and main ---------------------------------------------------- */

static void usage(FILE *f) {
    fprintf(f,
            "usage: nib lsp [--log-file PATH] [--log-level LEVEL] "
            "[--model PATH] [--max-message BYTES]\n"
            "Language server over stdin/stdout (Language Server Protocol).\n");
}

static int parse_level(const char *v, nib_log_level *out) {
    static const char *names[] = {"", "error", "warn", "info", "debug"};
    for (int i = 1; i <= 4; i++)
        if (strcmp(v, names[i]) == 0) {
            *out = (nib_log_level)i;
            return 0;
        }
    return NIB_EINVAL;
}

int lsp_main(int argc, char **argv) {
    lsp_server *s = nib_calloc(1, sizeof *s);
    s->log_level = NIB_LOG_INFO;
    const char *log_path = NULL;
    size_t max_body = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            nib_free(s);
            return 0;
        } else if (!strcmp(a, "--stdio")) {
            /* What VS Code's client appends; stdio is the only transport. */
        } else if (!strcmp(a, "--log-file") && v) {
            log_path = v;
            i++;
        } else if (!strcmp(a, "--log-level") && v) {
            if (parse_level(v, &s->log_level) != 0) {
                fprintf(stderr, "nib lsp: bad --log-level %s\n", v);
                nib_free(s);
                return 2;
            }
            i++;
        } else if (!strcmp(a, "--model") && v) {
            nib_free(s->default_model);
            s->default_model = nib_strdup(v);
            i++;
        } else if (!strcmp(a, "--max-message") && v) {
            char *end;
            unsigned long long m = strtoull(v, &end, 10);
            if (*end || m < 64) {
                fprintf(stderr, "nib lsp: bad --max-message %s\n", v);
                nib_free(s);
                return 2;
            }
            max_body = (size_t)m;
            i++;
        } else {
            fprintf(stderr, "nib lsp: unknown option %s\n", a);
            usage(stderr);
            nib_free(s->default_model);
            nib_free(s);
            return 2;
        }
    }
    if (log_path) {
        s->log_file = fopen(log_path, "a");
        if (!s->log_file) {
            fprintf(stderr, "nib lsp: cannot open log file %s: %s\n", log_path,
                    strerror(errno));
            nib_free(s->default_model);
            nib_free(s);
            return 2;
        }
    }
    if (!s->default_model) {
        /* NIB_MODEL set to "" means "no default", which also keeps the
         * shipped model out (tests rely on that); a NIB_MODEL that names a
         * missing file is kept so that loading reports it by name. */
        const char *env = getenv("NIB_MODEL");
        char path[4096];
        if (env)
            s->default_model = *env ? nib_strdup(env) : NULL;
        else if (nib_default_model(false, path, sizeof path))
            s->default_model = nib_strdup(path);
    }

    /* A client that dies mid-write must not kill the server with SIGPIPE;
     * the write fails with EPIPE and reading hits EOF. */
    signal(SIGPIPE, SIG_IGN);
    json_set_alloc_funcs(nib_malloc, nib_free);
    uv_loop_t loop;
    uv_loop_init(&loop);
    s->loop = &loop;
    s->enc = LSP_ENC_UTF16;
    s->inline_enabled = true;
    s->exit_code = 1;
    lsp_settings_default(&s->settings);
    lsp_framer_init(&s->framer, max_body);

    uv_mutex_init(&s->log_lock);
    uv_async_init(&loop, &s->log_async, on_log_async);
    s->log_async.data = s;
    s->log_async_open = true;
    /* The sink's own level filter decides stderr and the file; everything
     * reaches it so the client can ask for debug with $/setTrace. */
    nib_log_set_level(NIB_LOG_DEBUG);
    nib_log_set_sink(log_sink, s);

    uv_prepare_init(&loop, &s->flush_prepare);
    uv_check_init(&loop, &s->flush_check);
    s->flush_prepare.data = s->flush_check.data = s;
    uv_prepare_start(&s->flush_prepare, on_flush_prepare);
    uv_check_start(&s->flush_check, on_flush_check);
    /* They must not keep the loop alive on their own. */
    uv_unref((uv_handle_t *)&s->flush_prepare);
    uv_unref((uv_handle_t *)&s->flush_check);
    uv_unref((uv_handle_t *)&s->log_async);

    int rc = 0;
    if (open_stdio(s, STDOUT_FILENO, &s->out.stream, &s->out_kind, false) !=
        0) {
        nib_log_error("lsp: cannot open stdout");
        rc = 1;
    } else {
        s->out_open = true;
    }
    if (rc == 0 &&
        open_stdio(s, STDIN_FILENO, &s->in.stream, &s->in_kind, true) != 0) {
        nib_log_error("lsp: cannot open stdin");
        rc = 1;
    }
    if (rc == 0 && cmp_worker_new(&loop, &s->worker) != 0) {
        nib_log_error("lsp: cannot start the inference thread");
        rc = 1;
    }
    if (rc == 0) {
        s->in_open = true;
        if (s->in_kind == LSP_IO_FILE)
            start_fs_read(s);
        else
            uv_read_start(&s->in.stream, on_alloc, on_read);
        nib_log_info("lsp: nib language server started (pid %d)",
                     (int)getpid());
        uv_run(&loop, UV_RUN_DEFAULT);
        rc = s->exit_code;
    } else {
        begin_exit(s);
        uv_run(&loop, UV_RUN_DEFAULT);
    }

    nib_log_set_sink(NULL, NULL);
    nib_log_set_level(NIB_LOG_WARN);
    if (uv_loop_close(&loop) != 0)
        nib_log_debug("lsp: loop closed with live handles");
    on_log_async(&s->log_async); /* frees queued log lines */
    lsp_docs_free(s);
    lsp_settings_free(&s->settings);
    lsp_framer_free(&s->framer);
    uv_mutex_destroy(&s->log_lock);
    while (s->out_head) {
        lsp_outbuf *n = s->out_head->next;
        nib_free(s->out_head);
        s->out_head = n;
    }
    if (s->log_file)
        fclose(s->log_file);
    nib_free(s->default_model);
    nib_free(s);
    return rc;
}
