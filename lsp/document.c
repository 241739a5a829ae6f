/*
 * document.c — gap-buffered text with a gap-buffered line index.
 *
 *   text:  [ bytes 0..gs ) [ gap ) [ bytes gs.. end ) ; cap bytes in all
 *   lines: [ starts of lines 0..lgap, absolute ) [ gap )
 *          [ starts of lines lgap..n, as (length - start) ) ; lcap entries
 *
 * Storing the starts after the gap relative to the end of the text is what
 * keeps an edit from touching every later line: inserting or deleting bytes
 * moves those starts and the end by the same amount.
 */
#include <assert.h>
#include <string.h>

#include "lsp/document.h"

struct lsp_doc {
    char *text;
    size_t cap; /* bytes in text */
    size_t gs;  /* gap start */
    size_t ge;  /* gap end */
    size_t *ls; /* line starts, see above */
    size_t lcap;
    size_t n_lines; /* >= 1 */
    size_t lgap;    /* lines stored before the gap */
};

const char *lsp_encoding_name(lsp_encoding e) {
    switch (e) {
    case LSP_ENC_UTF8:
        return "utf-8";
    case LSP_ENC_UTF32:
        return "utf-32";
    case LSP_ENC_UTF16:
        break;
    }
    return "utf-16";
}

/* ---- accessors ----------------------------------------------------------- */

size_t lsp_doc_length(const lsp_doc *d) {
    return d->cap - (d->ge - d->gs);
}

unsigned char lsp_doc_byte(const lsp_doc *d, size_t i) {
    return (unsigned char)(i < d->gs ? d->text[i]
                                     : d->text[i + (d->ge - d->gs)]);
}

size_t lsp_doc_line_count(const lsp_doc *d) {
    return d->n_lines;
}

size_t lsp_doc_line_start(const lsp_doc *d, size_t line) {
    assert(line < d->n_lines);
    if (line < d->lgap)
        return d->ls[line];
    return lsp_doc_length(d) - d->ls[d->lcap - d->n_lines + line];
}

size_t lsp_doc_line_end(const lsp_doc *d, size_t line) {
    size_t end = line + 1 < d->n_lines ? lsp_doc_line_start(d, line + 1)
                                       : lsp_doc_length(d);
    size_t start = lsp_doc_line_start(d, line);
    if (end > start && lsp_doc_byte(d, end - 1) == '\n')
        end--;
    if (end > start && lsp_doc_byte(d, end - 1) == '\r' &&
        line + 1 < d->n_lines)
        end--;
    return end;
}

void lsp_doc_copy(const lsp_doc *d, size_t start, size_t end, char *out) {
    assert(start <= end && end <= lsp_doc_length(d));
    if (start < d->gs) {
        size_t k = NIB_MIN(end, d->gs) - start;
        memcpy(out, d->text + start, k);
        out += k;
        start += k;
    }
    if (start < end)
        memcpy(out, d->text + start + (d->ge - d->gs), end - start);
}

char *lsp_doc_dup(const lsp_doc *d, size_t start, size_t end) {
    char *s = nib_try_malloc(end - start + 1);
    if (!s)
        return NULL;
    lsp_doc_copy(d, start, end, s);
    s[end - start] = 0;
    return s;
}

/* ---- construction -------------------------------------------------------- */

/* Is there a line start at p (0 < p <= len)? "\r\n" is one break, so a '\r'
 * followed by '\n' does not end a line by itself. */
static int starts_line(const lsp_doc *d, size_t p, size_t len) {
    unsigned char c = lsp_doc_byte(d, p - 1);
    if (c == '\n')
        return 1;
    return c == '\r' && (p == len || lsp_doc_byte(d, p) != '\n');
}

static int doc_index(lsp_doc *d) {
    size_t len = lsp_doc_length(d);
    size_t n = 1;
    for (size_t p = 1; p <= len; p++)
        n += starts_line(d, p, len);
    size_t cap = n + 64;
    size_t *ls = nib_try_calloc(cap, sizeof *ls);
    if (!ls)
        return NIB_ENOMEM;
    size_t k = 0;
    ls[k++] = 0;
    for (size_t p = 1; p <= len; p++)
        if (starts_line(d, p, len))
            ls[k++] = p;
    nib_free(d->ls);
    d->ls = ls;
    d->lcap = cap;
    d->n_lines = n;
    d->lgap = n; /* everything before the gap, stored absolute */
    return 0;
}

int lsp_doc_set_text(lsp_doc *d, const char *text, size_t len) {
    size_t cap = len + 4096;
    char *t = nib_try_malloc(cap);
    if (!t)
        return NIB_ENOMEM;
    memcpy(t, text, len);
    lsp_doc old = *d;
    d->text = t;
    d->cap = cap;
    d->gs = len;
    d->ge = cap;
    d->ls = NULL;
    if (doc_index(d) != 0) {
        nib_free(t);
        *d = old;
        return NIB_ENOMEM;
    }
    nib_free(old.text);
    nib_free(old.ls);
    return 0;
}

int lsp_doc_new(const char *text, size_t len, lsp_doc **out) {
    lsp_doc *d = nib_calloc(1, sizeof *d);
    int r = lsp_doc_set_text(d, text, len);
    if (r != 0) {
        nib_free(d);
        return r;
    }
    *out = d;
    return 0;
}

void lsp_doc_delete(lsp_doc *d) {
    if (!d)
        return;
    nib_free(d->text);
    nib_free(d->ls);
    nib_free(d);
}

/* ---- editing ------------------------------------------------------------- */

static void text_move_gap(lsp_doc *d, size_t to) {
    if (to < d->gs) {
        size_t k = d->gs - to;
        memmove(d->text + d->ge - k, d->text + to, k);
        d->gs -= k;
        d->ge -= k;
    } else if (to > d->gs) {
        size_t k = to - d->gs;
        memmove(d->text + d->gs, d->text + d->ge, k);
        d->gs += k;
        d->ge += k;
    }
}

static int text_reserve(lsp_doc *d, size_t need) {
    if (d->ge - d->gs >= need)
        return 0;
    size_t len = lsp_doc_length(d);
    size_t cap = NIB_MAX(d->cap * 2, len + need + 4096);
    char *t = nib_try_malloc(cap);
    if (!t)
        return NIB_ENOMEM;
    size_t tail = d->cap - d->ge;
    memcpy(t, d->text, d->gs);
    memcpy(t + cap - tail, d->text + d->ge, tail);
    nib_free(d->text);
    d->text = t;
    d->ge = cap - tail;
    d->cap = cap;
    return 0;
}

/* Move the line gap so that lgap == to, converting the entries that cross
 * it between absolute and end-relative form. `len` is the current text
 * length, which the end-relative entries are measured from. */
static void lines_move_gap(lsp_doc *d, size_t to, size_t len) {
    size_t base = d->lcap - d->n_lines;
    while (d->lgap > to) {
        d->lgap--;
        d->ls[base + d->lgap] = len - d->ls[d->lgap];
    }
    while (d->lgap < to) {
        d->ls[d->lgap] = len - d->ls[base + d->lgap];
        d->lgap++;
    }
}

static int lines_reserve(lsp_doc *d, size_t need) {
    if (d->lcap - d->n_lines >= need)
        return 0;
    size_t cap = NIB_MAX(d->lcap * 2, d->n_lines + need + 64);
    size_t *ls = nib_try_calloc(cap, sizeof *ls);
    if (!ls)
        return NIB_ENOMEM;
    size_t tail = d->n_lines - d->lgap;
    memcpy(ls, d->ls, d->lgap * sizeof *ls);
    memcpy(ls + cap - tail, d->ls + d->lcap - tail, tail * sizeof *ls);
    nib_free(d->ls);
    d->ls = ls;
    d->lcap = cap;
    return 0;
}

/* Index of the first line whose start is >= off (n_lines if none). */
static size_t first_line_at_or_after(const lsp_doc *d, size_t off) {
    size_t lo = 0, hi = d->n_lines;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (lsp_doc_line_start(d, mid) < off)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

int lsp_doc_replace(lsp_doc *d, size_t start, size_t end, const char *text,
                    size_t len) {
    size_t old_len = lsp_doc_length(d);
    assert(start <= end && end <= old_len);
    /* Reserve everything first so a failure leaves the document intact.
     * The new text can add at most len + 1 line starts. */
    if (text_reserve(d, len) != 0 || lines_reserve(d, len + 1) != 0)
        return NIB_ENOMEM;

    /* Line starts in [lo, end] depend on changed bytes (a start at p looks
     * at bytes p-1 and p); later ones keep their end-relative value. */
    size_t lo = start ? start : 1;
    size_t k = first_line_at_or_after(d, lo);
    lines_move_gap(d, k, old_len);
    size_t drop = 0;
    while (d->lgap + drop < d->n_lines &&
           lsp_doc_line_start(d, d->lgap + drop) <= end)
        drop++;
    d->n_lines -= drop;

    text_move_gap(d, start);
    d->ge += end - start;
    memcpy(d->text + d->gs, text, len);
    d->gs += len;

    size_t new_len = lsp_doc_length(d);
    for (size_t p = lo; p <= start + len && p <= new_len; p++) {
        if (starts_line(d, p, new_len)) {
            d->ls[d->lgap++] = p;
            d->n_lines++;
        }
    }
    return 0;
}

/* ---- positions ----------------------------------------------------------- */

/* Length in bytes of the UTF-8 sequence starting with byte c (1 for bytes
 * that cannot start one, so malformed text still advances). */
static size_t utf8_len(unsigned char c) {
    if (c < 0xC0)
        return 1;
    if (c < 0xE0)
        return 2;
    if (c < 0xF0)
        return 3;
    return c < 0xF8 ? 4 : 1;
}

/* Length of the character at p (< end): a lead byte whose continuation
 * bytes are missing counts as one byte, so malformed text (which JSON input
 * cannot produce, but byte-wise edits can) still maps both ways. */
static size_t char_len(const lsp_doc *d, size_t p, size_t end) {
    size_t n = utf8_len(lsp_doc_byte(d, p));
    if (p + n > end)
        return 1;
    for (size_t i = 1; i < n; i++)
        if ((lsp_doc_byte(d, p + i) & 0xC0) != 0x80)
            return 1;
    return n;
}

static size_t units_of(lsp_encoding enc, size_t nbytes) {
    switch (enc) {
    case LSP_ENC_UTF8:
        return nbytes;
    case LSP_ENC_UTF16:
        return nbytes == 4 ? 2 : 1;
    case LSP_ENC_UTF32:
        break;
    }
    return 1;
}

size_t lsp_doc_offset(const lsp_doc *d, lsp_encoding enc, uint64_t line,
                      uint64_t character) {
    if (line >= d->n_lines)
        return lsp_doc_length(d);
    size_t p = lsp_doc_line_start(d, line);
    size_t end = lsp_doc_line_end(d, line);
    uint64_t u = 0;
    while (p < end && u < character) {
        size_t n = char_len(d, p, end);
        u += units_of(enc, n);
        if (u > character)
            break; /* inside a character: round down to its start */
        p += n;
    }
    return p;
}

void lsp_doc_position(const lsp_doc *d, lsp_encoding enc, size_t offset,
                      uint32_t *line, uint32_t *character) {
    size_t len = lsp_doc_length(d);
    if (offset > len)
        offset = len;
    /* Last line whose start is <= offset. */
    size_t l = first_line_at_or_after(d, offset + 1) - 1;
    size_t p = lsp_doc_line_start(d, l);
    size_t end = lsp_doc_line_end(d, l);
    if (offset > end)
        offset = end;
    uint64_t u = 0;
    while (p < offset) {
        size_t n = char_len(d, p, end);
        if (p + n > offset)
            n = 1; /* offset inside a character: count what precedes it */
        u += units_of(enc, n);
        p += n;
    }
    *line = (uint32_t)l;
    *character = (uint32_t)u;
}

int lsp_doc_check(const lsp_doc *d) {
    size_t len = lsp_doc_length(d);
    size_t k = 1;
    if (d->n_lines < 1 || lsp_doc_line_start(d, 0) != 0)
        return NIB_EINVAL;
    for (size_t p = 1; p <= len; p++) {
        if (!starts_line(d, p, len))
            continue;
        if (k >= d->n_lines || lsp_doc_line_start(d, k) != p)
            return NIB_EINVAL;
        k++;
    }
    return k == d->n_lines ? 0 : NIB_EINVAL;
}
