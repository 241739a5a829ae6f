/*
 * test-lsp.c — the LSP server's pure parts: Content-Length framing fed raw
 * bytes (every split point, truncation, bad and oversized headers), the
 * document gap buffer under random edits, and position conversion in the
 * three encodings. The protocol end to end is tested by tests/lsp (node).
 */
#include <stdlib.h>
#include <string.h>

#include "common/nib.h"
#include "lsp/document.h"
#include "lsp/framing.h"
#include "lsp/server.h"
#include "test.h"

/* ---- framing ------------------------------------------------------------- */

/* Feed `n` bytes in chunks of the given sizes (the last one repeats) and
 * describe what came out: "M<len>:<body>" per message, "E<code>" per error,
 * one per line. Returns a new string. */
static char *frame_log(const char *data, size_t n, const size_t *chunks,
                       size_t n_chunks, size_t max_body) {
    lsp_framer f;
    lsp_framer_init(&f, max_body);
    size_t cap = 1 << 16, len = 0;
    char *log = nib_malloc(cap);
    log[0] = 0;
    size_t off = 0, ci = 0;
    while (off < n) {
        size_t want = chunks[ci < n_chunks ? ci : n_chunks - 1];
        ci++;
        if (want > n - off)
            want = n - off;
        while (want > 0) {
            size_t took = lsp_framer_feed(&f, data + off, want);
            ASSERT(took > 0);
            off += took;
            want -= took;
            for (;;) {
                const char *body;
                size_t blen;
                lsp_frame_error err;
                lsp_frame_status st = lsp_framer_next(&f, &body, &blen, &err);
                if (st == LSP_FRAME_NEED_MORE)
                    break;
                char line[512];
                if (st == LSP_FRAME_MESSAGE)
                    snprintf(line, sizeof line, "M%zu:%.*s\n", blen,
                             (int)NIB_MIN(blen, 400), body);
                else
                    snprintf(line, sizeof line, "E%d\n", (int)err);
                size_t ll = strlen(line);
                if (len + ll + 1 > cap) {
                    cap *= 2;
                    log = nib_realloc(log, cap);
                }
                memcpy(log + len, line, ll + 1);
                len += ll;
            }
        }
    }
    lsp_framer_free(&f);
    return log;
}

static char *frame_whole(const char *data, size_t n, size_t max_body) {
    size_t chunk = n ? n : 1;
    return frame_log(data, n, &chunk, 1, max_body);
}

/* The same result however the stream is cut: at every single byte boundary,
 * and one byte at a time. */
static void check_all_splits(const char *data, size_t n, size_t max_body,
                             const char *expect) {
    char *whole = frame_whole(data, n, max_body);
    ASSERT_STR_EQ(whole, expect);
    for (size_t i = 1; i < n; i++) {
        size_t chunks[2] = {i, n - i};
        char *got = frame_log(data, n, chunks, 2, max_body);
        ASSERT_MSG(strcmp(got, expect) == 0, "split at %zu: got\n%s", i, got);
        nib_free(got);
    }
    size_t one = 1;
    char *bytes = frame_log(data, n, &one, 1, max_body);
    ASSERT_STR_EQ(bytes, expect);
    nib_free(bytes);
    nib_free(whole);
}

#define S(lit) lit, sizeof(lit) - 1

TEST_IMPL(lsp_framing_valid_splits) {
    const char stream[] =
        "Content-Length: 2\r\n\r\n{}"
        "Content-Type: application/vscode-jsonrpc; charset=utf-8\r\n"
        "content-length:  14 \r\n\r\n{\"a\":\"\xc3\xa9\xf0\x9f\x98\x80\"}"
        "\r\n" /* a stray blank line between messages is tolerated */
        "CONTENT-LENGTH: 0\r\n\r\n"
        "Content-Length: 5\n\n[1,2]";
    check_all_splits(S(stream), 0,
                     "M2:{}\n"
                     "M14:{\"a\":\"\xc3\xa9\xf0\x9f\x98\x80\"}\n"
                     "M0:\n"
                     "M5:[1,2]\n");
    return 0;
}

TEST_IMPL(lsp_framing_truncated) {
    /* A header without its blank line, then a body cut short: nothing comes
     * out until the rest arrives. */
    char *a = frame_whole(S("Content-Length: 10\r\n"), 0);
    ASSERT_STR_EQ(a, "");
    nib_free(a);
    char *b = frame_whole(S("Content-Length: 10\r\n\r\n{\"a\":"), 0);
    ASSERT_STR_EQ(b, "");
    nib_free(b);
    char *c = frame_whole(S("Content-Len"), 0);
    ASSERT_STR_EQ(c, "");
    nib_free(c);
    return 0;
}

TEST_IMPL(lsp_framing_bad_lengths) {
    static const char *bad[] = {
        "Content-Length: abc\r\n\r\n",
        "Content-Length: -5\r\n\r\n",
        "Content-Length: \r\n\r\n",
        "Content-Length: 12x\r\n\r\n",
        "Content-Length: 99999999999999999999\r\n\r\n",
        "Content-Length: 2\r\nContent-Length: 3\r\n\r\n",
        "Content-Length: +2\r\n\r\n",
    };
    for (size_t i = 0; i < NIB_ARRAY_LEN(bad); i++) {
        char buf[256];
        int n = snprintf(buf, sizeof buf,
                         "%s{junk}\r\nContent-Length: 2\r\n\r\n{}", bad[i]);
        char expect[64];
        snprintf(expect, sizeof expect, "E%d\nM2:{}\n", LSP_FRAME_E_BAD_LENGTH);
        check_all_splits(buf, (size_t)n, 0, expect);
    }
    return 0;
}

TEST_IMPL(lsp_framing_missing_length_and_garbage) {
    char expect[64];
    snprintf(expect, sizeof expect, "E%d\nM2:{}\n", LSP_FRAME_E_NO_LENGTH);
    check_all_splits(S("Content-Type: x\r\n\r\n{\"id\":1}\r\n"
                       "Content-Length: 2\r\n\r\n{}"),
                     0, expect);
    /* No line break between a bad message's body and the next header, as
     * on a real stream. */
    check_all_splits(S("Content-Type: x\r\n\r\n{\"id\":1}"
                       "Content-Length: 2\r\n\r\n{}"),
                     0, expect);
    snprintf(expect, sizeof expect, "E%d\nM2:{}\n", LSP_FRAME_E_BAD_HEADER);
    check_all_splits(S("garbage line\r\nmore garbage\r\n"
                       "Content-Length: 2\r\n\r\n{}"),
                     0, expect);
    /* A header line with no name. */
    check_all_splits(S(": 4\r\nContent-Length: 2\r\n\r\n{}"), 0, expect);
    return 0;
}

TEST_IMPL(lsp_framing_oversize_header) {
    size_t pad = LSP_HEADER_MAX + 100;
    char *buf = nib_malloc(pad + 64);
    memcpy(buf, "X-Pad: ", 7);
    memset(buf + 7, 'a', pad - 7);
    size_t n = pad;
    n += (size_t)sprintf(buf + n, "\r\nContent-Length: 2\r\n\r\n{}");
    char expect[64];
    snprintf(expect, sizeof expect, "E%d\nM2:{}\n",
             LSP_FRAME_E_HEADER_TOO_LONG);
    char *got = frame_whole(buf, n, 0);
    ASSERT_STR_EQ(got, expect);
    nib_free(got);
    /* Byte by byte the error fires before the line ends; same outcome. */
    size_t one = 1;
    got = frame_log(buf, n, &one, 1, 0);
    ASSERT_STR_EQ(got, expect);
    nib_free(got);
    /* Many short header lines adding up past the cap. */
    n = 0;
    while (n < LSP_HEADER_MAX + 10)
        n += (size_t)sprintf(buf + n, "X-A: b\r\n");
    n += (size_t)sprintf(buf + n, "\r\nContent-Length: 2\r\n\r\n{}");
    got = frame_whole(buf, n, 0);
    ASSERT_STR_EQ(got, expect);
    nib_free(got);
    nib_free(buf);
    return 0;
}

TEST_IMPL(lsp_framing_too_large) {
    char body[300];
    memset(body, 'x', sizeof body);
    char buf[1024];
    int n =
        snprintf(buf, sizeof buf,
                 "Content-Length: 300\r\n\r\n%.*sContent-Length: 2\r\n\r\n{}"
                 "Content-Length: 100\r\n\r\n%.*s",
                 300, body, 100, body);
    char expect[512];
    snprintf(expect, sizeof expect, "E%d\nM2:{}\nM100:%.*s\n",
             LSP_FRAME_E_TOO_LARGE, 100, body);
    check_all_splits(buf, (size_t)n, 100, expect);
    return 0;
}

TEST_IMPL(lsp_framing_large_body_grows) {
    /* A body far larger than the initial buffer arrives intact, and the
     * buffer shrinks back afterwards. */
    size_t blen = 3 * 1024 * 1024;
    char *buf = nib_malloc(blen + 64);
    int h = sprintf(buf, "Content-Length: %zu\r\n\r\n", blen);
    memset(buf + h, 'q', blen);
    lsp_framer f;
    lsp_framer_init(&f, 0);
    size_t off = 0, total = (size_t)h + blen;
    int got = 0;
    while (off < total) {
        off += lsp_framer_feed(&f, buf + off, NIB_MIN(total - off, 65536));
        const char *body;
        size_t len;
        lsp_frame_error e;
        lsp_frame_status st;
        while ((st = lsp_framer_next(&f, &body, &len, &e)) !=
               LSP_FRAME_NEED_MORE) {
            ASSERT_EQ(st, LSP_FRAME_MESSAGE);
            ASSERT_EQ(len, blen);
            ASSERT_MEM_EQ(body, buf + h, blen);
            got++;
        }
    }
    ASSERT_EQ(got, 1);
    size_t avail;
    ASSERT(lsp_framer_space(&f, &avail) != NULL);
    ASSERT_LE(f.cap, 1024 * 1024);
    lsp_framer_free(&f);
    nib_free(buf);
    return 0;
}

/* ---- documents ----------------------------------------------------------- */

static void assert_doc_text(const lsp_doc *d, const char *expect, size_t n) {
    ASSERT_EQ(lsp_doc_length(d), n);
    char *t = lsp_doc_dup(d, 0, n);
    ASSERT_MEM_EQ(t, expect, n);
    nib_free(t);
    ASSERT_OK(lsp_doc_check(d));
}

TEST_IMPL(lsp_doc_positions) {
    /* a é 😀 b | CRLF | x | CR | y | LF | (empty last line) */
    const char text[] = "a\xc3\xa9\xf0\x9f\x98\x80"
                        "b\r\nx\ry\n";
    lsp_doc *d;
    ASSERT_OK(lsp_doc_new(S(text), &d));
    ASSERT_EQ(lsp_doc_line_count(d), 4);
    ASSERT_EQ(lsp_doc_line_start(d, 1), 10);
    ASSERT_EQ(lsp_doc_line_end(d, 0), 8);
    ASSERT_EQ(lsp_doc_line_start(d, 2), 12);
    ASSERT_EQ(lsp_doc_line_end(d, 1), 11);
    ASSERT_EQ(lsp_doc_line_start(d, 3), 14);
    ASSERT_EQ(lsp_doc_line_end(d, 3), 14);

    /* Offset of "b" (byte 7) in each encoding. */
    ASSERT_EQ(lsp_doc_offset(d, LSP_ENC_UTF8, 0, 7), 7);
    ASSERT_EQ(lsp_doc_offset(d, LSP_ENC_UTF16, 0, 4), 7);
    ASSERT_EQ(lsp_doc_offset(d, LSP_ENC_UTF32, 0, 3), 7);
    /* Half of the surrogate pair / inside a UTF-8 sequence round down. */
    ASSERT_EQ(lsp_doc_offset(d, LSP_ENC_UTF16, 0, 3), 3);
    ASSERT_EQ(lsp_doc_offset(d, LSP_ENC_UTF8, 0, 2), 1);
    /* Past the end of a line: the end of that line, before "\r\n". */
    ASSERT_EQ(lsp_doc_offset(d, LSP_ENC_UTF16, 0, 99), 8);
    ASSERT_EQ(lsp_doc_offset(d, LSP_ENC_UTF8, 1, 5), 11);
    /* Past the last line: the end of the document. */
    ASSERT_EQ(lsp_doc_offset(d, LSP_ENC_UTF16, 4, 0), sizeof text - 1);
    ASSERT_EQ(lsp_doc_offset(d, LSP_ENC_UTF16, 1000000, 3), sizeof text - 1);

    uint32_t l, c;
    lsp_doc_position(d, LSP_ENC_UTF16, 7, &l, &c);
    ASSERT_EQ(l, 0);
    ASSERT_EQ(c, 4);
    lsp_doc_position(d, LSP_ENC_UTF32, 7, &l, &c);
    ASSERT_EQ(c, 3);
    lsp_doc_position(d, LSP_ENC_UTF8, 7, &l, &c);
    ASSERT_EQ(c, 7);
    lsp_doc_position(d, LSP_ENC_UTF16, 12, &l, &c);
    ASSERT_EQ(l, 2);
    ASSERT_EQ(c, 0);
    lsp_doc_position(d, LSP_ENC_UTF16, sizeof text - 1, &l, &c);
    ASSERT_EQ(l, 3);
    ASSERT_EQ(c, 0);
    lsp_doc_delete(d);
    return 0;
}

TEST_IMPL(lsp_doc_line_breaks_merge) {
    /* Inserting "\n" after a lone "\r" turns two breaks into one, and
     * deleting it splits them again; the index must follow. */
    lsp_doc *d;
    ASSERT_OK(lsp_doc_new(S("a\rb"), &d));
    ASSERT_EQ(lsp_doc_line_count(d), 2);
    ASSERT_OK(lsp_doc_replace(d, 2, 2, S("\n")));
    assert_doc_text(d, S("a\r\nb"));
    ASSERT_EQ(lsp_doc_line_count(d), 2);
    ASSERT_OK(lsp_doc_replace(d, 2, 2, S("\r")));
    assert_doc_text(d, S("a\r\r\nb"));
    ASSERT_EQ(lsp_doc_line_count(d), 3);
    ASSERT_OK(lsp_doc_replace(d, 0, 5, S("")));
    assert_doc_text(d, S(""));
    ASSERT_EQ(lsp_doc_line_count(d), 1);
    ASSERT_OK(lsp_doc_replace(d, 0, 0, S("\n\n\r")));
    assert_doc_text(d, S("\n\n\r"));
    ASSERT_EQ(lsp_doc_line_count(d), 4);
    lsp_doc_delete(d);
    return 0;
}

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static uint32_t rnd(uint32_t n) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state % n);
}

TEST_IMPL(lsp_doc_random_edits) {
    static const char *pieces[] = {"a",
                                   "xyz",
                                   "\n",
                                   "\r\n",
                                   "\r",
                                   " ",
                                   "\t",
                                   "\xc3\xa9",
                                   "\xf0\x9f\x98\x80",
                                   "\xe2\x82\xac",
                                   "line\nline\n",
                                   ""};
    size_t cap = 1 << 20, n = 0;
    char *ref = nib_malloc(cap);
    lsp_doc *d;
    ASSERT_OK(lsp_doc_new("", 0, &d));
    for (int it = 0; it < 20000; it++) {
        size_t s = n ? rnd((uint32_t)n + 1) : 0;
        size_t e = s + (n - s ? rnd((uint32_t)NIB_MIN(n - s, 8) + 1) : 0);
        /* Mostly near the previous edit, like typing; sometimes far. */
        char ins[64];
        size_t il = 0;
        int k = (int)rnd(4);
        for (int j = 0; j < k; j++) {
            const char *p = pieces[rnd(NIB_ARRAY_LEN(pieces))];
            size_t pl = strlen(p);
            memcpy(ins + il, p, pl);
            il += pl;
        }
        if (n > 20000 && rnd(2))
            il = 0; /* keep the size bounded */
        ASSERT_OK(lsp_doc_replace(d, s, e, ins, il));
        memmove(ref + s + il, ref + e, n - e);
        memcpy(ref + s, ins, il);
        n = n - (e - s) + il;
        ASSERT_LT(n, cap);
        if (it % 97 == 0)
            assert_doc_text(d, ref, n);
    }
    assert_doc_text(d, ref, n);
    /* Round trip: offset -> position -> offset in every encoding, at
     * character boundaries. */
    for (int i = 0; i < 2000; i++) {
        size_t off = rnd((uint32_t)n + 1);
        while (off > 0 && off < n && ((unsigned char)ref[off] & 0xC0) == 0x80)
            off--;
        /* Between "\r" and "\n" is not a position LSP can name. */
        if (off > 0 && off < n && ref[off - 1] == '\r' && ref[off] == '\n')
            off--;
        for (int enc = 0; enc < 3; enc++) {
            uint32_t l, c;
            lsp_doc_position(d, (lsp_encoding)enc, off, &l, &c);
            size_t back = lsp_doc_offset(d, (lsp_encoding)enc, l, c);
            ASSERT_MSG(
                back == off,
                "enc %d off %zu -> %u:%u -> %zu; around: %02x %02x %02x %02x",
                enc, off, l, c, back, (unsigned char)ref[off - 2],
                (unsigned char)ref[off - 1], (unsigned char)ref[off],
                (unsigned char)ref[off + 1]);
        }
    }
    lsp_doc_delete(d);
    nib_free(ref);
    return 0;
}

TEST_IMPL(lsp_doc_big_file_local_edits) {
    /* 10,000 lines, then typing at one spot: each keystroke must not cost a
     * pass over the document (this would take seconds if it did). */
    size_t n = 0, cap = 10000 * 40;
    char *t = nib_malloc(cap);
    for (int i = 0; i < 10000; i++)
        n += (size_t)sprintf(t + n, "    line %05d = value(%d);\n", i, i);
    lsp_doc *d;
    ASSERT_OK(lsp_doc_new(t, n, &d));
    uint64_t t0 = nib_now_ns();
    size_t at = lsp_doc_offset(d, LSP_ENC_UTF16, 5000, 4);
    for (int i = 0; i < 200000; i++) {
        if (i % 3 == 2) {
            ASSERT_OK(lsp_doc_replace(d, at - 1, at, "", 0));
            at--;
        } else {
            ASSERT_OK(lsp_doc_replace(d, at, at, i % 50 == 0 ? "\n" : "x", 1));
            at++;
        }
    }
    double ms = (double)(nib_now_ns() - t0) / 1e6;
    ASSERT_OK(lsp_doc_check(d));
    fprintf(stderr, "200000 local edits on 10,000 lines: %.1f ms\n", ms);
    ASSERT_LT(ms, 2000);
    lsp_doc_delete(d);
    nib_free(t);
    return 0;
}

/* ---- allocation ---------------------------------------------------------- */

/* A leak-recording allocator with an optional budget: every block carries
 * its size in a header, so the test knows what is outstanding, and
 * allocations past the budget fail like a real out-of-memory. */
static size_t live_bytes, live_blocks, budget = SIZE_MAX;

static void *rec_malloc(size_t n) {
    if (live_bytes + n > budget)
        return NULL;
    size_t *p = malloc(n + 16);
    if (!p)
        return NULL;
    p[0] = n;
    live_bytes += n;
    live_blocks++;
    return (char *)p + 16;
}

static void rec_free(void *q) {
    if (!q)
        return;
    size_t *p = (size_t *)((char *)q - 16);
    live_bytes -= p[0];
    live_blocks--;
    free(p);
}

static void *rec_realloc(void *q, size_t n) {
    if (!q)
        return rec_malloc(n);
    size_t old = ((size_t *)((char *)q - 16))[0];
    void *r = rec_malloc(n);
    if (!r)
        return NULL;
    memcpy(r, q, NIB_MIN(old, n));
    rec_free(q);
    return r;
}

static const nib_allocator rec_alloc = {rec_malloc, rec_realloc, rec_free};

TEST_IMPL(lsp_doc_no_leaks_and_enomem) {
    nib_set_allocator(&rec_alloc);
    lsp_doc *d;
    ASSERT_OK(lsp_doc_new(S("one\ntwo\n"), &d));
    for (int i = 0; i < 5000; i++) {
        size_t n = lsp_doc_length(d);
        size_t s = rnd((uint32_t)n + 1);
        ASSERT_OK(lsp_doc_replace(d, s, s + (n - s ? rnd(2) : 0),
                                  i % 7 ? "ab\n" : "\xc3\xa9", i % 7 ? 3 : 2));
    }
    ASSERT_OK(lsp_doc_set_text(d, S("short\n")));
    /* With little memory left, a large edit fails and changes nothing
     * (small fixed-size allocations still succeed: those abort on OOM by
     * design). */
    budget = live_bytes + 4096;
    char big[100000];
    memset(big, '\n', sizeof big);
    ASSERT_EQ(lsp_doc_replace(d, 0, 1, big, sizeof big), NIB_ENOMEM);
    ASSERT_EQ(lsp_doc_set_text(d, big, sizeof big), NIB_ENOMEM);
    ASSERT_EQ(lsp_doc_new(big, sizeof big, &(lsp_doc *){NULL}), NIB_ENOMEM);
    budget = SIZE_MAX;
    assert_doc_text(d, S("short\n"));
    lsp_doc_delete(d);

    /* The framer reports a body it cannot hold instead of aborting. */
    lsp_framer f;
    lsp_framer_init(&f, 0);
    char hdr[64];
    int h = snprintf(hdr, sizeof hdr, "Content-Length: %d\r\n\r\n", 5000000);
    ASSERT_EQ(lsp_framer_feed(&f, hdr, (size_t)h), (size_t)h);
    const char *body;
    size_t blen;
    lsp_frame_error fe;
    ASSERT_EQ(lsp_framer_next(&f, &body, &blen, &fe), LSP_FRAME_NEED_MORE);
    budget = live_bytes + 1000;
    size_t avail;
    ASSERT(lsp_framer_space(&f, &avail) == NULL);
    ASSERT_EQ(avail, 0);
    budget = SIZE_MAX;
    lsp_framer_free(&f);

    ASSERT_EQ(live_blocks, 0);
    ASSERT_EQ(live_bytes, 0);
    nib_set_allocator(NULL);
    return 0;
}

/* ---- the whole server on raw bytes --------------------------------------- */

static void put_frame(FILE *f, const char *body) {
    fprintf(f, "Content-Length: %zu\r\n\r\n%s", strlen(body), body);
}

/* Next framed body of the server's output (in place, NUL-terminated), or
 * NULL at the end. */
static char *next_body(char **cur) {
    char *h = strstr(*cur, "Content-Length: ");
    if (!h)
        return NULL;
    size_t n = strtoul(h + 16, NULL, 10);
    char *b = strstr(h, "\r\n\r\n");
    ASSERT(b != NULL);
    b += 4;
    char *end = b + n;
    *cur = end;
    /* Save the byte after the body into the next header's place. */
    char *copy = nib_strndup(b, n);
    return copy;
}

TEST_IMPL(lsp_stdio_raw_session) {
    const char *nib = test_nib_binary();
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "'%s' lsp --help >/dev/null 2>&1", nib);
    if (system(cmd) != 0)
        TEST_SKIP("`%s lsp` is not available (not wired into the CLI?)", nib);
    char in[512];
    snprintf(in, sizeof in, "%s/lsp-in.bin", test_tmpdir());
    FILE *f = fopen(in, "wb");
    ASSERT(f != NULL);
    put_frame(f, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"shutdown\"}");
    put_frame(f, "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"initialize\","
                 "\"params\":{\"capabilities\":{}}}");
    put_frame(f, "{\"x\":");
    fputs("Content-Length: zz\r\n\r\n{\"jsonrpc\":\"2.0\",\"id\":9}", f);
    put_frame(f, "[{\"jsonrpc\":\"2.0\",\"id\":4,\"method\":\"shutdown\"}]");
    put_frame(f,
              "{\"jsonrpc\":\"2.0\",\"method\":\"textDocument/didOpen\","
              "\"params\":{\"textDocument\":{\"uri\":\"file:///a\","
              "\"languageId\":\"c\",\"version\":1,\"text\":\"a\\u0000b\"}}}");
    put_frame(f, "{\"jsonrpc\":\"2.0\",\"id\":\"t\",\"method\":"
                 "\"nib/_documentText\",\"params\":{\"uri\":\"file:///a\"}}");
    put_frame(f, "{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"shutdown\","
                 "\"params\":null}");
    put_frame(f, "{\"jsonrpc\":\"2.0\",\"method\":\"exit\"}");
    fclose(f);

    /* stdin is a file here (the uv_fs_read path), stdout a pipe. */
    snprintf(cmd, sizeof cmd, "NIB_MODEL= '%s' lsp --log-level error < '%s'",
             nib, in);
    char *out;
    size_t len;
    int rc = test_run_capture(cmd, &out, &len);
    ASSERT_EQ(rc, 0);
    static const char *expect[] = {
        "{\"id\":1,\"error\":{\"code\":-32002,\"message\":\"shutdown: the "
        "server is not initialized yet\"},\"jsonrpc\":\"2.0\"}",
        "{\"id\":2,\"result\":{\"capabilities\":{\"positionEncoding\":"
        "\"utf-16\",",
        "{\"id\":null,\"error\":{\"code\":-32700,\"message\":\"invalid JSON",
        "{\"id\":null,\"error\":{\"code\":-32600,\"message\":\"batch messages "
        "are not supported by LSP\"},\"jsonrpc\":\"2.0\"}",
        "{\"id\":\"t\",\"result\":{\"text\":\"a\\u0000b\",\"version\":1,"
        "\"lineCount\":1},\"jsonrpc\":\"2.0\"}",
        "{\"id\":3,\"result\":null,\"jsonrpc\":\"2.0\"}",
    };
    char *cur = out;
    for (size_t i = 0; i < NIB_ARRAY_LEN(expect); i++) {
        char *b;
        /* Skip notifications (the "no model" message). */
        do {
            b = next_body(&cur);
            ASSERT_MSG(b != NULL, "missing response %zu", i);
            if (strstr(b, "\"method\"") == NULL)
                break;
            nib_free(b);
        } while (1);
        ASSERT_MSG(strncmp(b, expect[i], strlen(expect[i])) == 0,
                   "response %zu:\n got %s\nwant %s", i, b, expect[i]);
        nib_free(b);
    }
    char *rest = next_body(&cur);
    ASSERT_MSG(rest == NULL, "unexpected output: %s", rest);
    free(out);
    return 0;
}

/* ---- params validation --------------------------------------------------- */

TEST_IMPL(lsp_unpack_names_the_field) {
    json_t *v = json_loads("{\"textDocument\":{\"uri\":5},\"position\":"
                           "{\"line\":\"x\",\"character\":1}}",
                           0, NULL);
    ASSERT(v != NULL);
    char msg[256];
    const char *uri;
    int line, ch;
    json_t *o;
    ASSERT_EQ(lsp_unpack(v, msg, sizeof msg, "{s:{s:s},s:{s:i,s:i}}",
                         "textDocument", "uri", &uri, "position", "line", &line,
                         "character", &ch),
              -1);
    ASSERT_STR_EQ(msg, "textDocument.uri: expected string, got integer");
    ASSERT_EQ(lsp_unpack(v, msg, sizeof msg, "{s:o,s:{s:i,s:i}}",
                         "textDocument", &o, "position", "line", &line,
                         "character", &ch),
              -1);
    ASSERT_STR_EQ(msg, "position.line: expected integer, got string");
    ASSERT_EQ(lsp_unpack(v, msg, sizeof msg, "{s:o,s?s%,s:o}", "textDocument",
                         &o, "opt", &uri, &(size_t){0}, "missing", &o),
              -1);
    ASSERT(strncmp(msg, "missing: ", 9) == 0);
    ASSERT_EQ(lsp_unpack(NULL, msg, sizeof msg, "{s:o}", "x", &o), -1);
    ASSERT_STR_EQ(msg, "params: missing");
    json_t *arr = json_array();
    ASSERT_EQ(lsp_unpack(arr, msg, sizeof msg, "{s:o}", "x", &o), -1);
    ASSERT(strncmp(msg, "params: expected object", 23) == 0);
    ASSERT_EQ(lsp_unpack(v, msg, sizeof msg, "{s:o}", "position", &o), 0);
    json_decref(arr);
    json_decref(v);
    return 0;
}
