/*
 * unicode.c — code point classes, UTF-8 and GPT-2's byte mapping.
 */
#include "unicode.h"

#include <assert.h>

/* ---- classes ------------------------------------------------------------- */

unsigned eng_uni_flags(uint32_t cp) {
    if (cp > 0x10FFFF)
        return 0;
    /* Find the last run starting at or before cp. Run 0 starts at 0, so the
     * search always lands on a run. */
    size_t lo = 0, hi = eng_uni_n_runs;
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if ((eng_uni_runs[mid] >> 9) <= cp)
            lo = mid;
        else
            hi = mid;
    }
    return eng_uni_runs[lo] & 0x1FF;
}

/* ---- UTF-8 --------------------------------------------------------------- */

uint32_t eng_utf8_decode(const char *s, size_t len, int *n) {
    assert(len > 0);
    const unsigned char *u = (const unsigned char *)s;
    int need = eng_utf8_len(u[0]);
    *n = 1;
    if (u[0] < 0x80)
        return u[0];
    /* A lone continuation byte or an F8..FF byte: invalid on its own. */
    if (need == 1 || (u[0] & 0xF8) == 0xF8 || (size_t)need > len)
        return ENG_UNI_REPLACEMENT;
    for (int i = 1; i < need; i++)
        if ((u[i] & 0xC0) != 0x80)
            return ENG_UNI_REPLACEMENT;
    uint32_t cp;
    if (need == 2)
        cp = (uint32_t)(u[0] & 0x1F) << 6 | (u[1] & 0x3F);
    else if (need == 3)
        cp = (uint32_t)(u[0] & 0x0F) << 12 | (uint32_t)(u[1] & 0x3F) << 6 |
             (u[2] & 0x3F);
    else
        cp = (uint32_t)(u[0] & 0x07) << 18 | (uint32_t)(u[1] & 0x3F) << 12 |
             (uint32_t)(u[2] & 0x3F) << 6 | (u[3] & 0x3F);
    /* llama.cpp only checks the bit patterns. Surrogates pass here too
     * (they re-encode to the same bytes), but an overlong form would come
     * back as different bytes, and code points past U+10FFFF make llama.cpp
     * throw: both fall back to byte units, which decode to the input. */
    static const uint32_t min_cp[5] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < min_cp[need] || cp > 0x10FFFF)
        return ENG_UNI_REPLACEMENT;
    *n = need;
    return cp;
}

int eng_utf8_encode(uint32_t cp, char *buf) {
    unsigned char *b = (unsigned char *)buf;
    if (cp < 0x80) {
        b[0] = (unsigned char)cp;
        return 1;
    }
    if (cp < 0x800) {
        b[0] = (unsigned char)(0xC0 | (cp >> 6));
        b[1] = (unsigned char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        b[0] = (unsigned char)(0xE0 | (cp >> 12));
        b[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        b[2] = (unsigned char)(0x80 | (cp & 0x3F));
        return 3;
    }
    b[0] = (unsigned char)(0xF0 | (cp >> 18));
    b[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
    b[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
    b[3] = (unsigned char)(0x80 | (cp & 0x3F));
    return 4;
}

/* ---- GPT-2 byte mapping -------------------------------------------------- */

/* Printable bytes ('!'..'~', '¡'..'¬', '®'..'ÿ') stand for themselves; the
 * other 68 bytes get U+0100 upwards in byte order. */
static int byte_is_printable(unsigned b) {
    return (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) ||
           (b >= 0xAE && b <= 0xFF);
}

/* The 68 others, in byte order: 0x00..0x20 (33), 0x7F..0xA0 (34), 0xAD. */
uint32_t eng_byte_to_cpt(uint8_t b) {
    if (byte_is_printable(b))
        return b;
    if (b <= 0x20)
        return 0x100 + b;
    if (b >= 0x7F && b <= 0xA0)
        return 0x100 + 33 + (b - 0x7F);
    return 0x100 + 67; /* 0xAD */
}

int eng_cpt_to_byte(uint32_t cp) {
    if (cp < 0x100)
        return byte_is_printable(cp) ? (int)cp : -1;
    uint32_t n = cp - 0x100;
    if (n < 33)
        return (int)n;
    if (n < 67)
        return (int)(0x7F + n - 33);
    return n == 67 ? 0xAD : -1;
}
