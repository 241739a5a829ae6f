/*
 * framing.h — the resumable Content-Length parser behind `nib lsp` (style
 * rule L1). Internal to lsp/ (tests include it too).
 *
 * The framer owns one bounded buffer. Reads go straight into its free tail
 * (lsp_framer_space / lsp_framer_commit, so libuv's alloc_cb never mallocs),
 * or are copied in with lsp_framer_feed. lsp_framer_next then yields whole
 * message bodies one at a time, NEED_MORE when the buffer holds only part of
 * one, or ERROR for a malformed or oversized message. After an ERROR the
 * framer has already arranged to skip that message and resynchronize on the
 * next "Content-Length:" header (wherever it starts), so the caller just
 * reports it and keeps calling lsp_framer_next.
 *
 * All functions run on the loop thread; a framer is not thread-safe.
 */
#ifndef NIB_LSP_FRAMING_H
#define NIB_LSP_FRAMING_H

#include <stddef.h>

#include "common/nib.h"

/* Headers longer than this (all lines together) are an error. */
#define LSP_HEADER_MAX 8192
/* Default cap on one message body. */
#define LSP_BODY_MAX_DEFAULT (64u * 1024u * 1024u)

typedef enum {
    LSP_FRAME_NEED_MORE = 0,
    LSP_FRAME_MESSAGE = 1,
    LSP_FRAME_ERROR = 2,
} lsp_frame_status;

/* Why lsp_framer_next returned ERROR. */
#define LSP_FRAME_ERRORS(XX)                                                   \
    XX(NONE, "no error")                                                       \
    XX(HEADER_TOO_LONG, "header block longer than 8192 bytes")                 \
    XX(BAD_HEADER, "malformed header line")                                    \
    XX(NO_LENGTH, "missing Content-Length header")                             \
    XX(BAD_LENGTH, "invalid Content-Length value")                             \
    XX(TOO_LARGE, "message body above the size limit; discarded")

typedef enum {
#define XX(name, msg) LSP_FRAME_E_##name,
    LSP_FRAME_ERRORS(XX)
#undef XX
} lsp_frame_error;

const char *lsp_frame_strerror(lsp_frame_error e);

typedef enum {
    LSP_FS_HEADERS, /* collecting header lines */
    LSP_FS_BODY,    /* waiting for body_len bytes */
    LSP_FS_DISCARD, /* dropping `discard` more bytes of an oversized body */
    LSP_FS_RESYNC,  /* dropping bytes until a "Content-Length:" header */
} lsp_frame_state;

typedef struct {
    char *buf;       /* owned; cap bytes */
    size_t cap;      /* current capacity */
    size_t len;      /* bytes stored */
    size_t pos;      /* start of the unparsed bytes */
    size_t max_body; /* body cap */
    lsp_frame_state state;
    size_t body_len; /* BODY: announced length */
    size_t discard;  /* DISCARD: bytes still to drop */
    size_t scan;     /* HEADERS: bytes past pos already parsed */
    int seen_length; /* HEADERS: a Content-Length line was parsed */
} lsp_framer;

/* max_body 0 = LSP_BODY_MAX_DEFAULT. The buffer starts small and grows to
 * hold one header block plus one body, never beyond max_body + 8 KiB. */
void lsp_framer_init(lsp_framer *f, size_t max_body);
void lsp_framer_free(lsp_framer *f);

/* Free space for the next read (after compacting consumed bytes). *avail
 * is 0 only when the buffer is at its cap, which cannot happen while a
 * message can still complete, since the parser discards what it cannot
 * hold. Returns NULL with *avail 0 when growth fails (NIB_ENOMEM). */
char *lsp_framer_space(lsp_framer *f, size_t *avail);
/* Mark n bytes written at lsp_framer_space's pointer as received. */
void lsp_framer_commit(lsp_framer *f, size_t n);
/* Copy n bytes in, as many as fit, calling lsp_framer_next in between is
 * the caller's job: returns the number of bytes taken. */
size_t lsp_framer_feed(lsp_framer *f, const char *data, size_t n);

/* Next event. On MESSAGE, *body and *len point into the buffer (borrowed until
 * the next call of any framer function). On ERROR, *err says why. */
lsp_frame_status lsp_framer_next(lsp_framer *f, const char **body, size_t *len,
                                 lsp_frame_error *err);

#endif
