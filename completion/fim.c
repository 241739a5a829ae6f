/*
 * fim.c — the fill-in-the-middle prompt and UTF-8 clean-up of generated
 * text. Pure functions over borrowed spans (style rule C3).
 */
#include <string.h>

#include "completion/completion.h"

/* A token rarely spans more than this many bytes of source code, so cutting
 * the text to budget * this before tokenizing loses nothing the budget
 * would have kept, while a 5 MB file is not tokenized per keystroke. */
#define FIM_BYTES_PER_TOKEN_MAX 8

/* Tokenize without special-token parsing. *out new, *n its length. */
static int fim_tokenize(const eng_vocab *v, const char *s, size_t len,
                        int32_t **out, int *n) {
    int cap = (int)NIB_MIN(len + 16, (size_t)1 << 30);
    int32_t *t = nib_try_malloc((size_t)cap * sizeof *t);
    if (!t)
        return NIB_ENOMEM;
    int k = eng_tokenize(v, s, len, 0, t, cap);
    if (k > cap) {
        int32_t *nt = nib_try_realloc(t, (size_t)k * sizeof *t);
        if (!nt) {
            nib_free(t);
            return NIB_ENOMEM;
        }
        t = nt;
        k = eng_tokenize(v, s, len, 0, t, k);
    }
    if (k < 0) {
        nib_free(t);
        return k;
    }
    *out = t;
    *n = k;
    return 0;
}

/* Move a cut point off UTF-8 continuation bytes, towards `dir`. */
static size_t utf8_boundary(const char *s, size_t len, size_t at, int dir) {
    while (at > 0 && at < len && ((unsigned char)s[at] & 0xC0) == 0x80)
        at += (size_t)dir;
    return at;
}

int cmp_fim_tokens(const eng_vocab *v, const char *prefix, size_t prefix_len,
                   const char *suffix, size_t suffix_len, int budget,
                   int32_t **out, int *n) {
    int32_t pre = eng_token_special(v, ENG_TOK_FIM_PRE);
    int32_t suf = eng_token_special(v, ENG_TOK_FIM_SUF);
    int32_t mid = eng_token_special(v, ENG_TOK_FIM_MID);
    if (pre < 0 || suf < 0 || mid < 0)
        return NIB_EUNSUPPORTED;
    /* BOS only when the vocab adds one (DeepSeek-Coder does, Qwen and
     * StarCoder do not): ask the tokenizer rather than guess. */
    int32_t bos_probe[4];
    int nb = eng_tokenize(v, "", 0, ENG_TOKENIZE_ADD_SPECIAL, bos_probe, 4);
    int32_t bos = eng_token_special(v, ENG_TOK_BOS);
    int add_bos = nb >= 1 && bos >= 0 && bos_probe[0] == bos;
    int avail = budget - 3 - add_bos;
    if (avail < 2)
        return NIB_EINVAL;

    size_t max_bytes = (size_t)avail * FIM_BYTES_PER_TOKEN_MAX;
    size_t p0 = prefix_len > max_bytes ? prefix_len - max_bytes : 0;
    p0 = utf8_boundary(prefix, prefix_len, p0, 1);
    size_t s1 = suffix_len > max_bytes ? max_bytes : suffix_len;
    s1 = utf8_boundary(suffix, suffix_len, s1, -1);

    int32_t *pt = NULL, *st = NULL;
    int pn = 0, sn = 0;
    int r = fim_tokenize(v, prefix + p0, prefix_len - p0, &pt, &pn);
    if (r == 0)
        r = fim_tokenize(v, suffix, s1, &st, &sn);
    if (r != 0) {
        nib_free(pt);
        return r;
    }
    /* The prefix matters most (it is what the model continues); the suffix
     * keeps at least a quarter of the budget when both are long. */
    int suf_keep = sn;
    if (pn + sn > avail) {
        suf_keep = NIB_MIN(sn, NIB_MAX(avail - pn, avail / 4));
    }
    int pre_keep = NIB_MIN(pn, avail - suf_keep);

    int total = add_bos + 3 + pre_keep + suf_keep;
    int32_t *t = nib_try_malloc((size_t)total * sizeof *t);
    if (!t) {
        nib_free(pt);
        nib_free(st);
        return NIB_ENOMEM;
    }
    int k = 0;
    if (add_bos)
        t[k++] = bos;
    t[k++] = pre;
    memcpy(t + k, pt + (pn - pre_keep), (size_t)pre_keep * sizeof *t);
    k += pre_keep;
    t[k++] = suf;
    memcpy(t + k, st, (size_t)suf_keep * sizeof *t);
    k += suf_keep;
    t[k++] = mid;
    nib_free(pt);
    nib_free(st);
    *out = t;
    *n = k;
    return 0;
}

/* Length of the valid UTF-8 character at s (n bytes available), or 0 when
 * invalid or cut short. Rejects overlong forms, surrogates and values past
 * U+10FFFF, as JSON parsers do. */
static size_t utf8_char(const unsigned char *s, size_t n) {
    unsigned c = s[0];
    if (c < 0x80)
        return c ? 1 : 0;
    size_t len;
    unsigned cp;
    if (c >= 0xC2 && c <= 0xDF)
        len = 2, cp = c & 0x1F;
    else if (c >= 0xE0 && c <= 0xEF)
        len = 3, cp = c & 0x0F;
    else if (c >= 0xF0 && c <= 0xF4)
        len = 4, cp = c & 0x07;
    else
        return 0;
    if (n < len)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
        (cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF)
        return 0;
    return len;
}

size_t cmp_utf8_valid_len(const char *s, size_t len) {
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0;
    while (i < len) {
        size_t k = utf8_char(u + i, len - i);
        if (!k)
            break;
        i += k;
    }
    return i;
}

size_t cmp_utf8_sanitize(char *s, size_t len) {
    unsigned char *u = (unsigned char *)s;
    size_t i = 0, o = 0;
    while (i < len) {
        size_t k = utf8_char(u + i, len - i);
        if (!k) {
            i++;
            continue;
        }
        memmove(u + o, u + i, k);
        o += k;
        i += k;
    }
    return o;
}

size_t cmp_stop_at(const char *text, size_t len, size_t from,
                   const char *stop) {
    size_t n = stop ? strlen(stop) : 0;
    if (n == 0 || len < n)
        return len;
    size_t i = from + 1 > n ? from + 1 - n : 0;
    for (; i + n <= len; i++)
        if (memcmp(text + i, stop, n) == 0)
            return i;
    return len;
}

uint64_t cmp_doc_key(const char *uri) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (const unsigned char *p = (const unsigned char *)uri; *p; p++)
        h = (h ^ *p) * 0x100000001b3ull;
    return h;
}
