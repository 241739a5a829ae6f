/*
 * vocab_pre.c — the pre-tokenizers of byte-level BPE vocabularies: text is
 * split into words before merges, with the regex list llama.cpp uses for
 * each tokenizer.ggml.pre.
 *
 * There is no regex engine: each pattern is a hand-written matcher over code
 * point units and their Unicode classes. llama.cpp runs some patterns with
 * its own custom code (the GPT-2 and Llama-3 ones) and the others with
 * std::regex over a "collapsed" text in which every non-ASCII code point is
 * replaced by one byte standing for its category. Each matcher reproduces
 * whichever of the two llama.cpp uses, including where they differ from a
 * textbook regex engine (noted at each one).
 *
 * A pattern list is applied in order: each pattern cuts every chunk the
 * previous one left into its matches and the stretches between them.
 */
#include "vocab_pre.h"

#include <assert.h>
#include <string.h>

#include "common/nib.h"
#include "unicode.h"

/* Make room for `need` elements of `elem` bytes. Sizes come from the input
 * text, so failure is reported (NIB_ENOMEM) instead of aborting. */
static int grow(void **p, size_t *cap, size_t need, size_t elem) {
    if (need <= *cap)
        return 0;
    size_t n = *cap ? *cap : 64;
    while (n < need)
        n *= 2;
    void *q = nib_try_realloc(*p, n * elem);
    if (!q)
        return NIB_ENOMEM;
    *p = q;
    *cap = n;
    return 0;
}

void eng__pre_free(eng_pre_units *u) {
    nib_free(u->cp);
    nib_free(u->fl);
    nib_free(u->boff);
    nib_free(u->ends);
    nib_free(u->ends2);
    memset(u, 0, sizeof *u);
}

/* ---- code point units and chunks ----------------------------------------- */

int eng__pre_decode(eng_pre_units *u, const char *s, size_t len) {
    /* The three arrays share one capacity: grow the two others only when
     * the first one grew, so decoding many fragments reuses the buffers. */
    size_t old = u->cap;
    if (grow((void **)&u->cp, &u->cap, len + 1, sizeof *u->cp) < 0)
        return NIB_ENOMEM;
    if (u->cap != old || !u->fl) {
        void *a = nib_try_realloc(u->fl, u->cap * sizeof *u->fl);
        if (a)
            u->fl = a;
        void *b = nib_try_realloc(u->boff, u->cap * sizeof *u->boff);
        if (b)
            u->boff = b;
        if (!a || !b) {
            u->cap = 0; /* force a retry of all three next time */
            return NIB_ENOMEM;
        }
    }
    u->s = s;
    size_t n = 0;
    for (size_t i = 0; i < len;) {
        int k;
        uint32_t c = eng_utf8_decode(s + i, len - i, &k);
        u->cp[n] = c;
        u->fl[n] = (uint16_t)eng_uni_flags(c);
        u->boff[n] = (uint32_t)i;
        n++;
        i += (size_t)k;
    }
    u->boff[n] = (uint32_t)len;
    u->n = n;
    return 0;
}

static inline unsigned fl_at(const eng_pre_units *u, size_t i, size_t end) {
    return i < end ? u->fl[i] : 0;
}

static inline uint32_t cp_at(const eng_pre_units *u, size_t i, size_t end) {
    return i < end ? u->cp[i] : UINT32_MAX;
}

static int emit_end(eng_pre_units *u, size_t end) {
    if (grow((void **)&u->ends2, &u->cap_ends2, u->n_ends2 + 1,
             sizeof *u->ends2) < 0)
        return NIB_ENOMEM;
    u->ends2[u->n_ends2++] = (uint32_t)end;
    return 0;
}

/* A matcher returns the length of the match at unit i (0 = none), looking
 * no further than `end`, the end of the chunk. */
typedef size_t (*match_fn)(const eng_pre_units *u, size_t i, size_t end);

/* llama.cpp's std::regex split: in every chunk, each leftmost match and
 * each stretch between matches becomes a chunk of its own. All the
 * patterns split this way match at least one unit. */
static int split_regex(eng_pre_units *u, match_fn m) {
    u->n_ends2 = 0;
    size_t start = 0;
    for (size_t c = 0; c < u->n_ends; c++) {
        size_t end = u->ends[c], gap = start;
        for (size_t i = start; i < end;) {
            size_t k = m(u, i, end);
            if (k == 0) {
                i++;
                continue;
            }
            if (i > gap && emit_end(u, i) < 0)
                return NIB_ENOMEM;
            if (emit_end(u, i + k) < 0)
                return NIB_ENOMEM;
            i += k;
            gap = i;
        }
        if (gap < end && emit_end(u, end) < 0)
            return NIB_ENOMEM;
        start = end;
    }
    return 0;
}

/* A segmenter returns the length (>= 1) of the next word at i. */
typedef size_t (*seg_fn)(const eng_pre_units *u, size_t i, size_t end);

static int split_segment(eng_pre_units *u, seg_fn f) {
    u->n_ends2 = 0;
    size_t start = 0;
    for (size_t c = 0; c < u->n_ends; c++) {
        size_t end = u->ends[c];
        for (size_t i = start; i < end;) {
            size_t k = f(u, i, end);
            assert(k >= 1 && i + k <= end);
            i += k;
            if (emit_end(u, i) < 0)
                return NIB_ENOMEM;
        }
        start = end;
    }
    return 0;
}

static void swap_ends(eng_pre_units *u) {
    uint32_t *t = u->ends;
    size_t tc = u->cap_ends;
    u->ends = u->ends2;
    u->cap_ends = u->cap_ends2;
    u->n_ends = u->n_ends2;
    u->ends2 = t;
    u->cap_ends2 = tc;
    u->n_ends2 = 0;
}

#define IS_WS(f) ((f)&ENG_UNI_WHITESPACE)
#define IS_L(f)  ((f)&ENG_UNI_LETTER)
#define IS_N(f)  ((f)&ENG_UNI_NUMBER)
#define IS_P(f)  ((f)&ENG_UNI_PUNCT)

static int ascii_lower(uint32_t c) {
    return c >= 'A' && c <= 'Z' ? (int)(c + 32) : (int)c;
}

/* Contractions 's 't 're 've 'm 'll 'd at i: length or 0. */
static size_t match_contraction(const eng_pre_units *u, size_t i, size_t end,
                                bool ci) {
    if (u->cp[i] != '\'' || i + 1 >= end)
        return 0;
    int a = (int)u->cp[i + 1], b = i + 2 < end ? (int)u->cp[i + 2] : -1;
    if (ci) {
        a = ascii_lower((uint32_t)a);
        b = b < 0 ? b : ascii_lower((uint32_t)b);
    }
    if (a == 's' || a == 't' || a == 'm' || a == 'd')
        return 2;
    if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') ||
        (a == 'l' && b == 'l'))
        return 3;
    return 0;
}

/* GPT-2: 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|
 * \s+(?!\S). As llama.cpp's custom matcher: "no class" (past the chunk end)
 * stops every run, and a unit nothing matches is a word by itself. */
static size_t seg_gpt2(const eng_pre_units *u, size_t i, size_t end) {
    size_t k = match_contraction(u, i, end, false);
    if (k)
        return k;
    uint32_t c = u->cp[i];
    size_t p = i + (c == ' ');
    unsigned f2 = c == ' ' ? fl_at(u, i + 1, end) : u->fl[i];
    if (IS_L(f2)) {
        while (IS_L(fl_at(u, p, end)))
            p++;
        return p - i;
    }
    if (IS_N(f2)) {
        while (IS_N(fl_at(u, p, end)))
            p++;
        return p - i;
    }
    if (!(f2 & (ENG_UNI_WHITESPACE | ENG_UNI_LETTER | ENG_UNI_NUMBER)) && f2) {
        for (;;) {
            unsigned f = fl_at(u, p, end);
            if ((f & (ENG_UNI_WHITESPACE | ENG_UNI_LETTER | ENG_UNI_NUMBER)) ||
                !f)
                break;
            p++;
        }
        return p - i;
    }
    size_t nws = 0;
    while (IS_WS(fl_at(u, i + nws, end)))
        nws++;
    /* \s+(?!\S): a run followed by more text gives back its last space,
     * which then starts the next word (" world"). */
    if (nws > 1 && i + nws < end)
        return nws - 1;
    if (nws > 0)
        return nws;
    return 1;
}

/* Llama-3 / Qwen2: (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|
 * \p{N}{1,max}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+.
 * llama.cpp runs the {1,3} form with custom code and Qwen2's single-digit
 * form with std::regex; for these alternatives the two agree, so one
 * matcher serves both. */
static size_t seg_llama3(const eng_pre_units *u, size_t i, size_t end,
                         size_t max_digits) {
    size_t k = match_contraction(u, i, end, true);
    if (k)
        return k;
    uint32_t c = u->cp[i];
    unsigned f = u->fl[i];
    if (!(c == '\r' || c == '\n' || IS_N(f)) &&
        (IS_L(f) || IS_L(fl_at(u, i + 1, end)))) {
        size_t p = i + 1;
        while (IS_L(fl_at(u, p, end)))
            p++;
        return p - i;
    }
    if (IS_N(f)) {
        size_t p = i;
        while (p - i < max_digits && IS_N(fl_at(u, p, end)))
            p++;
        return p - i;
    }
    unsigned f2 = c == ' ' ? fl_at(u, i + 1, end) : f;
    if (!(f2 & (ENG_UNI_WHITESPACE | ENG_UNI_LETTER | ENG_UNI_NUMBER)) && f) {
        size_t p = i + (c == ' ');
        for (;;) {
            unsigned g = fl_at(u, p, end);
            if ((g & (ENG_UNI_WHITESPACE | ENG_UNI_LETTER | ENG_UNI_NUMBER)) ||
                !g)
                break;
            p++;
        }
        while (cp_at(u, p, end) == '\r' || cp_at(u, p, end) == '\n')
            p++;
        return p - i;
    }
    size_t nws = 0, last_rn = 0;
    while (IS_WS(fl_at(u, i + nws, end))) {
        uint32_t c2 = u->cp[i + nws];
        if (c2 == '\r' || c2 == '\n')
            last_rn = nws + 1;
        nws++;
    }
    /* \s*[\r\n]+ backtracks to the last newline of the run. */
    if (last_rn > 0)
        return last_rn;
    if (nws > 1 && i + nws < end)
        return nws - 1;
    if (nws > 0)
        return nws;
    return 1;
}

static size_t seg_llama3_3(const eng_pre_units *u, size_t i, size_t end) {
    return seg_llama3(u, i, end, 3);
}

static size_t seg_qwen2(const eng_pre_units *u, size_t i, size_t end) {
    return seg_llama3(u, i, end, 1);
}

/* [\r\n] */
static size_t m_newline(const eng_pre_units *u, size_t i, size_t end) {
    (void)end;
    return u->cp[i] == '\r' || u->cp[i] == '\n';
}

/* \s?\p{L}+ and \s?\p{P}+ */
static size_t m_ws_class(const eng_pre_units *u, size_t i, size_t end,
                         unsigned cls) {
    size_t p = i;
    if (IS_WS(u->fl[p]) && (fl_at(u, p + 1, end) & cls))
        p++;
    while (fl_at(u, p, end) & cls)
        p++;
    return p - i;
}

static size_t m_ws_letters(const eng_pre_units *u, size_t i, size_t end) {
    return m_ws_class(u, i, end, ENG_UNI_LETTER);
}

static size_t m_ws_punct(const eng_pre_units *u, size_t i, size_t end) {
    return m_ws_class(u, i, end, ENG_UNI_PUNCT);
}

/* DeepSeek-Coder's [一-龥ࠀ-一가-퟿]+, i.e. U+0800..U+9FA5 and
 * U+AC00..U+D7FF. llama.cpp matches it with std::wregex after replacing
 * every non-ASCII whitespace by U+000B, so U+3000 and friends inside the
 * range do not match. */
static bool is_dsc_cjk(const eng_pre_units *u, size_t i) {
    uint32_t c = u->cp[i];
    if (IS_WS(u->fl[i]))
        return false;
    return (c >= 0x0800 && c <= 0x9FA5) || (c >= 0xAC00 && c <= 0xD7FF);
}

static size_t m_dsc_cjk(const eng_pre_units *u, size_t i, size_t end) {
    size_t p = i;
    while (p < end && is_dsc_cjk(u, p))
        p++;
    return p - i;
}

/* \p{N} */
static size_t m_number(const eng_pre_units *u, size_t i, size_t end) {
    (void)end;
    return IS_N(u->fl[i]) ? 1 : 0;
}

/* \p{N}+ */
static size_t m_numbers(const eng_pre_units *u, size_t i, size_t end) {
    size_t p = i;
    while (IS_N(fl_at(u, p, end)))
        p++;
    return p - i;
}

/* [\p{P}\$\+<=>\^~\|`]+ (Falcon; the default list has it without '`') */
static size_t m_punct_sym(const eng_pre_units *u, size_t i, size_t end,
                          const char *extra) {
    size_t p = i;
    while (p < end) {
        uint32_t c = u->cp[p];
        if (!IS_P(u->fl[p]) && !(c < 0x80 && c && strchr(extra, (int)c)))
            break;
        p++;
    }
    return p - i;
}

static size_t m_falcon_punct(const eng_pre_units *u, size_t i, size_t end) {
    return m_punct_sym(u, i, end, "$+<=>^~|`");
}

static size_t m_default_punct(const eng_pre_units *u, size_t i, size_t end) {
    return m_punct_sym(u, i, end, "$+<=>^~|");
}

/* [0-9][0-9][0-9] */
static size_t m_digits3(const eng_pre_units *u, size_t i, size_t end) {
    for (size_t k = 0; k < 3; k++) {
        uint32_t c = cp_at(u, i + k, end);
        if (c < '0' || c > '9')
            return 0;
    }
    return 3;
}

int eng__pre_split(eng_pre_units *u, eng_pre_kind pre) {
    u->n_ends = 0;
    if (grow((void **)&u->ends, &u->cap_ends, 1, sizeof *u->ends) < 0)
        return NIB_ENOMEM;
    u->ends[u->n_ends++] = (uint32_t)u->n;
    int r = 0;
#define REGEX(m)                                                               \
    if ((r = split_regex(u, m)) < 0)                                           \
        return r;                                                              \
    swap_ends(u);
#define SEGMENT(f)                                                             \
    if ((r = split_segment(u, f)) < 0)                                         \
        return r;                                                              \
    swap_ends(u);
    switch (pre) {
    case ENG_PRE_LLAMA3:
        SEGMENT(seg_llama3_3);
        break;
    case ENG_PRE_QWEN2:
        SEGMENT(seg_qwen2);
        break;
    case ENG_PRE_GPT2:
        SEGMENT(seg_gpt2);
        break;
    case ENG_PRE_STARCODER:
        REGEX(m_number);
        SEGMENT(seg_gpt2);
        break;
    case ENG_PRE_DEEPSEEK_CODER:
        REGEX(m_newline);
        REGEX(m_ws_letters);
        REGEX(m_ws_punct);
        REGEX(m_dsc_cjk);
        REGEX(m_number);
        break;
    case ENG_PRE_FALCON:
        REGEX(m_falcon_punct);
        SEGMENT(seg_gpt2);
        REGEX(m_digits3);
        break;
    case ENG_PRE_DEFAULT:
        REGEX(m_default_punct);
        SEGMENT(seg_gpt2);
        REGEX(m_numbers);
        REGEX(m_digits3);
        break;
    }
#undef REGEX
#undef SEGMENT
    return 0;
}
