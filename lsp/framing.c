/*
 * framing.c — Content-Length framing for LSP over a byte stream.
 *
 * Layout of the buffer:
 *
 *   buf                pos                    len              cap
 *    | consumed bytes   | unparsed bytes        | free space      |
 *
 * The parser never assumes one read is one message: every state can stop in
 * the middle of its input and resume on the next call. Consumed bytes are
 * dropped once per read batch (in lsp_framer_space), not once per message,
 * so a read carrying many small messages costs one memmove.
 */
#include <string.h>

#include "lsp/framing.h"

/* The buffer starts at this size and falls back to it after a large
 * message, so one 50 MiB didOpen does not pin 50 MiB for the session. */
#define FRAMER_MIN_CAP    (64u * 1024u)
#define FRAMER_SHRINK_CAP (1024u * 1024u)

static const char CL_NAME[] = "content-length:";
#define CL_NAME_LEN (sizeof(CL_NAME) - 1)

const char *lsp_frame_strerror(lsp_frame_error e) {
    switch (e) {
#define XX(name, msg)                                                          \
    case LSP_FRAME_E_##name:                                                   \
        return msg;
        LSP_FRAME_ERRORS(XX)
#undef XX
    }
    return "unknown framing error";
}

void lsp_framer_init(lsp_framer *f, size_t max_body) {
    memset(f, 0, sizeof *f);
    f->max_body = max_body ? max_body : LSP_BODY_MAX_DEFAULT;
    f->state = LSP_FS_HEADERS;
}

void lsp_framer_free(lsp_framer *f) {
    nib_free(f->buf);
    f->buf = NULL;
    f->cap = f->len = f->pos = 0;
}

static int framer_resize(lsp_framer *f, size_t cap) {
    char *nb = nib_try_realloc(f->buf, cap);
    if (!nb)
        return NIB_ENOMEM;
    f->buf = nb;
    f->cap = cap;
    return 0;
}

char *lsp_framer_space(lsp_framer *f, size_t *avail) {
    if (f->pos > 0) {
        memmove(f->buf, f->buf + f->pos, f->len - f->pos);
        f->len -= f->pos;
        f->pos = 0;
    }
    /* A waiting body must fit whole; otherwise a modest free tail is enough
     * because headers are capped and oversized bodies are discarded as they
     * stream past, never stored. */
    size_t want = FRAMER_MIN_CAP;
    if (f->state == LSP_FS_BODY && f->body_len + LSP_HEADER_MAX > want)
        want = f->body_len + LSP_HEADER_MAX;
    if (f->len + 4096 > want)
        want = f->len + 4096;
    if (f->cap < want) {
        size_t cap = f->cap ? f->cap : FRAMER_MIN_CAP;
        while (cap < want)
            cap *= 2;
        if (f->state == LSP_FS_BODY && cap > f->body_len + LSP_HEADER_MAX &&
            want > FRAMER_MIN_CAP)
            cap = want;
        if (framer_resize(f, cap) != 0 && framer_resize(f, want) != 0) {
            *avail = 0;
            return NULL;
        }
    } else if (f->cap > FRAMER_SHRINK_CAP && f->state != LSP_FS_BODY &&
               f->len < FRAMER_MIN_CAP / 2) {
        framer_resize(f, FRAMER_MIN_CAP); /* failure just keeps the big one */
    }
    *avail = f->cap - f->len;
    return f->buf + f->len;
}

void lsp_framer_commit(lsp_framer *f, size_t n) {
    f->len += n;
}

size_t lsp_framer_feed(lsp_framer *f, const char *data, size_t n) {
    size_t avail;
    char *dst = lsp_framer_space(f, &avail);
    if (!dst)
        return 0;
    size_t k = n < avail ? n : avail;
    memcpy(dst, data, k);
    lsp_framer_commit(f, k);
    return k;
}

/* ---- header lines -------------------------------------------------------- */

static int is_tchar(unsigned char c) {
    /* RFC 7230 token characters, what a header name may contain. */
    if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
        (c >= 'A' && c <= 'Z'))
        return 1;
    return c && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static int lower(int c) {
    return c >= 'A' && c <= 'Z' ? c + 32 : c;
}

/* Parse "Content-Length: 123". Leading/trailing blanks are allowed; signs,
 * empty values, other characters and overflow are not. */
static int parse_length(const char *v, size_t n, size_t *out) {
    while (n && (*v == ' ' || *v == '\t'))
        v++, n--;
    while (n && (v[n - 1] == ' ' || v[n - 1] == '\t'))
        n--;
    if (n == 0 || n > 19)
        return -1;
    size_t x = 0;
    for (size_t i = 0; i < n; i++) {
        if (v[i] < '0' || v[i] > '9')
            return -1;
        x = x * 10 + (size_t)(v[i] - '0');
    }
    *out = x;
    return 0;
}

static void enter_resync(lsp_framer *f) {
    f->state = LSP_FS_RESYNC;
    f->scan = 0;
    f->seen_length = 0;
}

static lsp_frame_status frame_error(lsp_frame_error *err, lsp_frame_error e) {
    if (err)
        *err = e;
    return LSP_FRAME_ERROR;
}

/* ---- the state machine --------------------------------------------------- */

lsp_frame_status lsp_framer_next(lsp_framer *f, const char **body, size_t *len,
                                 lsp_frame_error *err) {
    if (err)
        *err = LSP_FRAME_E_NONE;
    for (;;) {
        switch (f->state) {
        case LSP_FS_HEADERS: {
            char *line = f->buf + f->pos + f->scan;
            size_t avail = f->len - f->pos - f->scan;
            char *nl = avail ? memchr(line, '\n', avail) : NULL;
            if (!nl) {
                if (f->len - f->pos > LSP_HEADER_MAX) {
                    /* One unterminated header block: skip its first byte
                     * (so it cannot match again) and look for the next
                     * message in the rest. */
                    f->pos++;
                    enter_resync(f);
                    return frame_error(err, LSP_FRAME_E_HEADER_TOO_LONG);
                }
                return LSP_FRAME_NEED_MORE;
            }
            size_t n = (size_t)(nl - line);
            f->scan += n + 1;
            if (n && line[n - 1] == '\r')
                n--;
            if (f->scan > LSP_HEADER_MAX) {
                f->pos += f->scan;
                enter_resync(f);
                return frame_error(err, LSP_FRAME_E_HEADER_TOO_LONG);
            }
            if (n == 0) {
                if (f->scan <= 2) {
                    /* A stray blank line between messages: harmless. */
                    f->pos += f->scan;
                    f->scan = 0;
                    continue;
                }
                f->pos += f->scan;
                f->scan = 0;
                if (!f->seen_length) {
                    enter_resync(f);
                    return frame_error(err, LSP_FRAME_E_NO_LENGTH);
                }
                f->seen_length = 0;
                if (f->body_len > f->max_body) {
                    f->state = LSP_FS_DISCARD;
                    f->discard = f->body_len;
                    return frame_error(err, LSP_FRAME_E_TOO_LARGE);
                }
                f->state = LSP_FS_BODY;
                continue;
            }
            size_t k = 0;
            while (k < n && is_tchar((unsigned char)line[k]))
                k++;
            if (k == 0 || k == n || line[k] != ':') {
                f->pos += f->scan;
                enter_resync(f);
                return frame_error(err, LSP_FRAME_E_BAD_HEADER);
            }
            if (k + 1 == CL_NAME_LEN) {
                int match = 1;
                for (size_t i = 0; i < k && match; i++)
                    match = lower((unsigned char)line[i]) == CL_NAME[i];
                if (match) {
                    size_t v;
                    if (parse_length(line + k + 1, n - k - 1, &v) != 0 ||
                        (f->seen_length && v != f->body_len)) {
                        f->pos += f->scan;
                        enter_resync(f);
                        return frame_error(err, LSP_FRAME_E_BAD_LENGTH);
                    }
                    f->body_len = v;
                    f->seen_length = 1;
                }
            }
            /* Other headers (Content-Type) carry nothing nib needs. */
            continue;
        }
        case LSP_FS_BODY:
            if (f->len - f->pos < f->body_len)
                return LSP_FRAME_NEED_MORE;
            *body = f->buf + f->pos;
            *len = f->body_len;
            f->pos += f->body_len;
            f->state = LSP_FS_HEADERS;
            return LSP_FRAME_MESSAGE;
        case LSP_FS_DISCARD: {
            size_t k = f->len - f->pos;
            if (k > f->discard)
                k = f->discard;
            f->pos += k;
            f->discard -= k;
            if (f->discard)
                return LSP_FRAME_NEED_MORE;
            f->state = LSP_FS_HEADERS;
            continue;
        }
        case LSP_FS_RESYNC: {
            /* Look for "Content-Length:" anywhere: a body is followed by
             * the next header with no line break in between, so a line
             * start cannot be required. A prefix of it at the very end of
             * the buffer is kept for the next read. */
            size_t p = f->pos;
            int found = 0;
            for (; p < f->len; p++) {
                size_t m = f->len - p;
                if (m > CL_NAME_LEN)
                    m = CL_NAME_LEN;
                size_t i = 0;
                while (i < m &&
                       lower((unsigned char)f->buf[p + i]) == CL_NAME[i])
                    i++;
                if (i == m) {
                    found = m == CL_NAME_LEN;
                    break;
                }
            }
            f->pos = p;
            if (!found)
                return LSP_FRAME_NEED_MORE;
            f->state = LSP_FS_HEADERS;
            f->scan = 0;
            f->seen_length = 0;
            continue;
        }
        }
    }
}
