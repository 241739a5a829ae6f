/*
 * vocab.c — tokenizers built from GGUF metadata.
 *
 * Two families, both bit-exact with llama.cpp (the test vectors come from
 * it):
 *   "llama"  SentencePiece-style: spaces become U+2581, adjacent symbols are
 *            merged by highest token score, leftovers fall back to <0xXX>
 *            byte tokens.
 *   "gpt2"   byte-level BPE: a pre-tokenizer splits the text into words,
 *            each word's bytes are mapped to printable code points and
 *            merged by the rank of tokenizer.ggml.merges.
 *
 * The pre-tokenizers live in vocab_pre.c. Before either family runs, the
 * text is cut at special tokens (control and user-defined texts), as
 * llama.cpp partitions it.
 *
 * Where nib departs from llama.cpp, on invalid UTF-8 only: llama.cpp turns
 * each invalid byte into U+FFFD; nib keeps the byte (classified as U+FFFD,
 * so words are split the same) whenever the vocab has a token for it, so
 * decoding gives the input back.
 *
 * Everything built at load time is immutable afterwards, and tokenizing
 * keeps its scratch on the call, so one vocab serves any number of threads.
 */
#include "vocab.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/nib.h"
#include "unicode.h"
#include "vocab_pre.h"

/* ---- types --------------------------------------------------------------- */

/* tokenizer.ggml.token_type values (llama.cpp's llama_token_type). */
enum {
    TT_UNDEFINED = 0,
    TT_NORMAL = 1,
    TT_UNKNOWN = 2,
    TT_CONTROL = 3,
    TT_USER_DEFINED = 4,
    TT_UNUSED = 5,
    TT_BYTE = 6,
};

typedef enum { VOCAB_SPM, VOCAB_BPE } vocab_kind;

/* The hash's high bits ride along so that a probe past another text rarely
 * has to touch the text itself (loading Qwen2 does ~450k lookups). */
typedef struct {
    uint32_t id1; /* token id + 1; 0 = empty */
    uint32_t tag; /* high 32 bits of the text's hash */
} text_slot;

typedef struct {
    uint64_t key;   /* left id << 32 | right id; 0 = empty slot */
    int32_t rank;   /* position in tokenizer.ggml.merges */
    int32_t result; /* id of the merged text */
} merge_slot;

struct eng_vocab {
    vocab_kind kind;
    eng_pre_kind pre;
    char model_name[32]; /* tokenizer.ggml.model */
    char pre_name[64];   /* tokenizer.ggml.pre or "default" */
    int n_tokens;

    char *text;        /* all token texts, each NUL-terminated */
    uint32_t *text_at; /* [n_tokens + 1] offsets into text */
    float *scores;     /* [n_tokens] SPM merge priority (0 when absent);
                          NULL for BPE */
    uint8_t *ttype;    /* [n_tokens] TT_* after llama.cpp's overrides */

    text_slot *slots; /* text -> id: open addressing */
    uint32_t slot_mask;

    merge_slot *merges; /* (left, right) -> rank: open addressing */
    uint32_t merge_mask;

    int32_t byte_tok[256]; /* token of each byte (byte fallback / level) */

    int32_t special[ENG_TOK_SPECIAL_COUNT];
    int32_t unk_id;
    bool add_bos, add_eos, add_space_prefix, ignore_merges;

    int32_t *st_cache; /* control/user-defined/unknown ids, longest first */
    int n_st_cache;
    int32_t *eog; /* end-of-generation ids */
    int n_eog;
};

/* ---- hashing ------------------------------------------------------------- */

static uint64_t load64(const char *p) {
    uint64_t x;
    memcpy(&x, p, 8);
    return x;
}

static uint64_t load32(const char *p) {
    uint32_t x;
    memcpy(&x, p, 4);
    return x;
}

static uint64_t hash_u64(uint64_t x) {
    x ^= x >> 33; /* murmur3 finalizer */
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ull;
    return x ^ (x >> 33);
}

/* Eight bytes per multiply, where FNV-1a chains a multiply per byte: a
 * Qwen2 load hashes ~450k texts of ~5 to 9 bytes. Short tails are read as
 * overlapping words (never past the end), which still determine every byte
 * once the length is mixed in. */
static inline uint64_t hash_bytes(const char *s, size_t n) {
    uint64_t h = 0x9e3779b97f4a7c15ull ^ ((uint64_t)n * 0xff51afd7ed558ccdull);
    for (; n > 8; s += 8, n -= 8) {
        h = (h ^ load64(s)) * 0xc4ceb9fe1a85ec53ull;
        h ^= h >> 31;
    }
    uint64_t w;
    if (n >= 4)
        w = load32(s) | load32(s + n - 4) << 32;
    else if (n > 0)
        w = (uint64_t)(unsigned char)s[0] |
            (uint64_t)(unsigned char)s[n / 2] << 8 |
            (uint64_t)(unsigned char)s[n - 1] << 16;
    else
        w = 0;
    return hash_u64(h ^ w);
}

/* Whether a[0..n) equals b[0..n). Texts are short, and calling the
 * library's memcmp for each of the ~600k compares of a Qwen2 load was an
 * eighth of its profile. The word loads overlap instead of reading past n. */
static inline bool bytes_eq(const char *a, const char *b, size_t n) {
    if (n > 16)
        return memcmp(a, b, n) == 0;
    if (n >= 8)
        return ((load64(a) ^ load64(b)) |
                (load64(a + n - 8) ^ load64(b + n - 8))) == 0;
    if (n >= 4)
        return ((load32(a) ^ load32(b)) |
                (load32(a + n - 4) ^ load32(b + n - 4))) == 0;
    if (n > 0)
        return a[0] == b[0] && a[n / 2] == b[n / 2] && a[n - 1] == b[n - 1];
    return true;
}

static const char *tok_text(const eng_vocab *v, int32_t id, size_t *n) {
    *n = v->text_at[id + 1] - v->text_at[id] - 1;
    return v->text + v->text_at[id];
}

/* Id of the token whose text is exactly s[0..n) and whose hash is h, or
 * -1. */
static inline int32_t text_find(const eng_vocab *v, uint64_t h, const char *s,
                                size_t n) {
    uint32_t tag = (uint32_t)(h >> 32);
    for (uint32_t i = (uint32_t)h & v->slot_mask;; i = (i + 1) & v->slot_mask) {
        const text_slot *e = &v->slots[i];
        if (e->id1 == 0)
            return -1;
        if (e->tag != tag)
            continue;
        size_t tn;
        const char *t = tok_text(v, (int32_t)e->id1 - 1, &tn);
        if (tn == n && bytes_eq(t, s, n))
            return (int32_t)e->id1 - 1;
    }
}

static int32_t text_to_token(const eng_vocab *v, const char *s, size_t n) {
    return text_find(v, hash_bytes(s, n), s, n);
}

static int32_t text_to_token_z(const eng_vocab *v, const char *z) {
    return text_to_token(v, z, strlen(z));
}

/* Fetch what a lookup of hash h will read, one level per call (the home
 * slot, the text's offset, the text), each call after the previous one's
 * line has had time to arrive: load-time lookups are independent, so
 * issuing their misses a batch at a time overlaps them. Only hints;
 * text_find decides. */
static void text_prefetch(const eng_vocab *v, uint64_t h, int level) {
    const text_slot *e = &v->slots[(uint32_t)h & v->slot_mask];
    if (level == 0) {
        __builtin_prefetch(e);
        return;
    }
    if (e->id1 == 0 || e->tag != (uint32_t)(h >> 32))
        return;
    if (level == 1)
        __builtin_prefetch(&v->text_at[e->id1 - 1]);
    else
        __builtin_prefetch(v->text + v->text_at[e->id1 - 1]);
}

/* A later token with the same text replaces the earlier one, as in
 * llama.cpp's token_to_id map; the earlier one is marked in `shadowed`
 * (a bit per id). */
static void text_insert(eng_vocab *v, int32_t id, size_t n, uint64_t h,
                        uint8_t *shadowed) {
    const char *s = v->text + v->text_at[id];
    text_slot mine = {(uint32_t)id + 1, (uint32_t)(h >> 32)};
    for (uint32_t i = (uint32_t)h & v->slot_mask;; i = (i + 1) & v->slot_mask) {
        text_slot *e = &v->slots[i];
        if (e->id1 == 0) {
            *e = mine;
            return;
        }
        if (e->tag != mine.tag)
            continue;
        uint32_t old = e->id1 - 1;
        size_t tn = v->text_at[old + 1] - v->text_at[old] - 1;
        if (tn == n && bytes_eq(v->text + v->text_at[old], s, n)) {
            shadowed[old / 8] |= (uint8_t)(1u << (old % 8));
            *e = mine;
            return;
        }
    }
}

static uint64_t merge_key(int32_t l, int32_t r) {
    /* +1 keeps key 0 free to mark empty slots. */
    return ((uint64_t)(uint32_t)(l + 1) << 32) | (uint32_t)(r + 1);
}

static const merge_slot *merge_find(const eng_vocab *v, int32_t l, int32_t r) {
    if (!v->merges || l < 0 || r < 0)
        return NULL;
    uint64_t k = merge_key(l, r);
    for (uint32_t i = (uint32_t)hash_u64(k) & v->merge_mask;;
         i = (i + 1) & v->merge_mask) {
        if (v->merges[i].key == k)
            return &v->merges[i];
        if (v->merges[i].key == 0)
            return NULL;
    }
}

/* ---- growable scratch ---------------------------------------------------- */

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

typedef struct {
    int32_t *ids;
    size_t n, cap;
} tok_vec;

static int vec_push(tok_vec *o, int32_t id) {
    if (grow((void **)&o->ids, &o->cap, o->n + 1, sizeof *o->ids) < 0)
        return NIB_ENOMEM;
    o->ids[o->n++] = id;
    return 0;
}

/* ---- byte-level BPE ------------------------------------------------------ */

/* One symbol per byte of the word at first (each byte is one code point of
 * the byte-level text), linked so merges can unlink the right side. */
typedef struct {
    int32_t prev, next;
    uint32_t off, n; /* bytes of the word; n = 0 once merged away */
    int32_t id;      /* token of this text, -1 when none */
} bpe_sym;

typedef struct {
    int32_t rank, left, right;
    uint32_t size; /* left.n + right.n when queued */
    int32_t result;
} bpe_pair;

/* Min-heap by (rank, left): the lowest-ranked merge first, ties to the
 * leftmost, as llama.cpp's priority queue orders them. */
static bool pair_less(const bpe_pair *a, const bpe_pair *b) {
    return a->rank < b->rank || (a->rank == b->rank && a->left < b->left);
}

typedef struct {
    bpe_sym *sym;
    size_t cap_sym;
    bpe_pair *heap;
    size_t n_heap, cap_heap;
    char *enc; /* byte-level text of a word (ignore_merges lookups) */
    size_t cap_enc;
    char *sub; /* a word with unrepresentable bytes replaced */
    size_t cap_sub;
} bpe_scratch;

static int heap_push(bpe_scratch *s, bpe_pair p) {
    if (grow((void **)&s->heap, &s->cap_heap, s->n_heap + 1, sizeof *s->heap) <
        0)
        return NIB_ENOMEM;
    size_t i = s->n_heap++;
    while (i > 0) {
        size_t up = (i - 1) / 2;
        if (!pair_less(&p, &s->heap[up]))
            break;
        s->heap[i] = s->heap[up];
        i = up;
    }
    s->heap[i] = p;
    return 0;
}

static bpe_pair heap_pop(bpe_scratch *s) {
    bpe_pair top = s->heap[0], last = s->heap[--s->n_heap];
    size_t i = 0, n = s->n_heap;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n)
            break;
        if (c + 1 < n && pair_less(&s->heap[c + 1], &s->heap[c]))
            c++;
        if (!pair_less(&s->heap[c], &last))
            break;
        s->heap[i] = s->heap[c];
        i = c;
    }
    if (n > 0)
        s->heap[i] = last;
    return top;
}

static int bpe_try_pair(const eng_vocab *v, bpe_scratch *s, int32_t l,
                        int32_t r) {
    if (l < 0 || r < 0)
        return 0;
    const merge_slot *m = merge_find(v, s->sym[l].id, s->sym[r].id);
    if (!m)
        return 0;
    bpe_pair p = {m->rank, l, r, s->sym[l].n + s->sym[r].n, m->result};
    return heap_push(s, p);
}

static int bpe_word(const eng_vocab *v, bpe_scratch *s, const char *w, size_t n,
                    tok_vec *out) {
    if (n == 0)
        return 0;
    if (v->ignore_merges) {
        /* Llama-3 style: a word that is a token is taken whole, whatever
         * the merges would make of it. */
        if (grow((void **)&s->enc, &s->cap_enc, 2 * n, 1) < 0)
            return NIB_ENOMEM;
        size_t k = 0;
        for (size_t i = 0; i < n; i++)
            k += (size_t)eng_utf8_encode(eng_byte_to_cpt((uint8_t)w[i]),
                                         s->enc + k);
        int32_t id = text_to_token(v, s->enc, k);
        if (id >= 0)
            return vec_push(out, id);
    }
    if (grow((void **)&s->sym, &s->cap_sym, n, sizeof *s->sym) < 0)
        return NIB_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        s->sym[i] = (bpe_sym){(int32_t)i - 1, i + 1 < n ? (int32_t)i + 1 : -1,
                              (uint32_t)i, 1, v->byte_tok[(uint8_t)w[i]]};
    }
    s->n_heap = 0;
    int r;
    for (size_t i = 1; i < n; i++)
        if ((r = bpe_try_pair(v, s, (int32_t)i - 1, (int32_t)i)) < 0)
            return r;
    while (s->n_heap > 0) {
        bpe_pair p = heap_pop(s);
        bpe_sym *L = &s->sym[p.left], *R = &s->sym[p.right];
        /* Stale entry: a side was merged away or has grown since. */
        if (L->n == 0 || R->n == 0 || L->n + R->n != p.size ||
            L->next != p.right)
            continue;
        L->n += R->n;
        L->id = p.result;
        R->n = 0;
        L->next = R->next;
        if (R->next >= 0)
            s->sym[R->next].prev = p.left;
        if ((r = bpe_try_pair(v, s, L->prev, p.left)) < 0 ||
            (r = bpe_try_pair(v, s, p.left, L->next)) < 0)
            return r;
    }
    for (int32_t i = 0; i >= 0; i = s->sym[i].next) {
        /* Every merge result and every byte is a token in a real
         * byte-level vocab; llama.cpp drops what is not. */
        if (s->sym[i].id >= 0 && (r = vec_push(out, s->sym[i].id)) < 0)
            return r;
    }
    return 0;
}

/* An invalid UTF-8 byte is kept as itself when the vocab has a token for
 * it, so decoding gives the input back. Vocabs built from valid text only
 * (StarCoder's lacks C0, C1 and F5..FF) have none: there the byte becomes
 * U+FFFD, which is what llama.cpp does with every invalid byte. The word
 * is then rewritten into the scratch buffer and *w, *n point there. */
static int substitute_invalid(const eng_vocab *v, const eng_pre_units *u,
                              size_t i0, size_t i1, bpe_scratch *s,
                              const char **w, size_t *n) {
    size_t extra = 0;
    for (size_t i = i0; i < i1; i++)
        if (u->cp[i] == ENG_UNI_REPLACEMENT &&
            u->boff[i + 1] - u->boff[i] == 1 &&
            v->byte_tok[(uint8_t)u->s[u->boff[i]]] < 0)
            extra += 2;
    if (extra == 0)
        return 0;
    if (grow((void **)&s->sub, &s->cap_sub, *n + extra, 1) < 0)
        return NIB_ENOMEM;
    size_t k = 0;
    for (size_t i = i0; i < i1; i++) {
        size_t b = u->boff[i], bn = u->boff[i + 1] - b;
        if (u->cp[i] == ENG_UNI_REPLACEMENT && bn == 1 &&
            v->byte_tok[(uint8_t)u->s[b]] < 0) {
            memcpy(s->sub + k, "\xef\xbf\xbd", 3);
            k += 3;
        } else {
            memcpy(s->sub + k, u->s + b, bn);
            k += bn;
        }
    }
    *w = s->sub;
    *n = k;
    return 0;
}

/* ---- SentencePiece ------------------------------------------------------- */

typedef struct {
    float score;
    int32_t left, right;
    uint32_t size;
} spm_pair;

/* Max-heap by score, ties to the leftmost pair. */
static bool spm_before(const spm_pair *a, const spm_pair *b) {
    return a->score > b->score || (a->score == b->score && a->left < b->left);
}

typedef struct {
    char *text; /* escaped fragment */
    size_t cap_text;
    bpe_sym *sym;
    size_t cap_sym;
    spm_pair *heap;
    size_t n_heap, cap_heap;
} spm_scratch;

static int spm_push(spm_scratch *s, spm_pair p) {
    if (grow((void **)&s->heap, &s->cap_heap, s->n_heap + 1, sizeof *s->heap) <
        0)
        return NIB_ENOMEM;
    size_t i = s->n_heap++;
    while (i > 0) {
        size_t up = (i - 1) / 2;
        if (!spm_before(&p, &s->heap[up]))
            break;
        s->heap[i] = s->heap[up];
        i = up;
    }
    s->heap[i] = p;
    return 0;
}

static spm_pair spm_pop(spm_scratch *s) {
    spm_pair top = s->heap[0], last = s->heap[--s->n_heap];
    size_t i = 0, n = s->n_heap;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n)
            break;
        if (c + 1 < n && spm_before(&s->heap[c + 1], &s->heap[c]))
            c++;
        if (!spm_before(&s->heap[c], &last))
            break;
        s->heap[i] = s->heap[c];
        i = c;
    }
    if (n > 0)
        s->heap[i] = last;
    return top;
}

static int spm_try_pair(const eng_vocab *v, spm_scratch *s, int32_t l,
                        int32_t r) {
    if (l < 0 || r < 0)
        return 0;
    uint32_t size = s->sym[l].n + s->sym[r].n;
    int32_t id = text_to_token(v, s->text + s->sym[l].off, size);
    if (id < 0)
        return 0;
    spm_pair p = {v->scores[id], l, r, size};
    return spm_push(s, p);
}

/* Tokenize one raw fragment; `prefix` adds the leading space. */
static int spm_fragment(const eng_vocab *v, spm_scratch *s, const char *t,
                        size_t len, bool prefix, tok_vec *out) {
    /* Each space becomes the 3-byte U+2581. */
    if (len > (SIZE_MAX - 3) / 3 ||
        grow((void **)&s->text, &s->cap_text, 3 * len + 3, 1) < 0)
        return NIB_ENOMEM;
    size_t n = 0;
    if (prefix) {
        memcpy(s->text, "\xe2\x96\x81", 3);
        n = 3;
    }
    for (size_t i = 0; i < len; i++) {
        if (t[i] == ' ') {
            memcpy(s->text + n, "\xe2\x96\x81", 3);
            n += 3;
        } else {
            s->text[n++] = t[i];
        }
    }
    if (n == 0)
        return 0;
    if (grow((void **)&s->sym, &s->cap_sym, n, sizeof *s->sym) < 0)
        return NIB_ENOMEM;
    /* Symbols are UTF-8 characters. llama.cpp takes the length from the
     * lead byte alone, so after an invalid byte a symbol can swallow the
     * next characters, including half of a U+2581, which then decodes as
     * bytes instead of a space. Validating (each invalid byte a symbol of
     * its own, spelled as a byte token) gives the same tokens on valid
     * UTF-8 and an exact round trip on invalid input. */
    int32_t ns = 0;
    for (size_t off = 0; off < n;) {
        int kk;
        eng_utf8_decode(s->text + off, n - off, &kk);
        size_t k = (size_t)kk;
        s->sym[ns] = (bpe_sym){ns - 1, off + k < n ? ns + 1 : -1, (uint32_t)off,
                               (uint32_t)k, -1};
        ns++;
        off += k;
    }
    s->n_heap = 0;
    int r;
    for (int32_t i = 1; i < ns; i++)
        if ((r = spm_try_pair(v, s, i - 1, i)) < 0)
            return r;
    while (s->n_heap > 0) {
        spm_pair p = spm_pop(s);
        bpe_sym *L = &s->sym[p.left], *R = &s->sym[p.right];
        if (L->n == 0 || R->n == 0 || L->n + R->n != p.size)
            continue;
        L->n += R->n;
        R->n = 0;
        L->next = R->next;
        if (R->next >= 0)
            s->sym[R->next].prev = p.left;
        if ((r = spm_try_pair(v, s, L->prev, p.left)) < 0 ||
            (r = spm_try_pair(v, s, p.left, L->next)) < 0)
            return r;
    }
    for (int32_t i = 0; i >= 0; i = s->sym[i].next) {
        const bpe_sym *y = &s->sym[i];
        int32_t id = text_to_token(v, s->text + y->off, y->n);
        if (id >= 0) {
            if ((r = vec_push(out, id)) < 0)
                return r;
            continue;
        }
        /* Merged symbols are always tokens, so only single characters get
         * here: spell them as byte tokens. */
        for (uint32_t j = 0; j < y->n; j++) {
            int32_t b = v->byte_tok[(uint8_t)s->text[y->off + j]];
            if (b < 0)
                b = v->unk_id;
            if (b >= 0 && (r = vec_push(out, b)) < 0)
                return r;
        }
    }
    return 0;
}

/* ---- special-token partition --------------------------------------------- */

typedef struct {
    size_t off, len;
    int32_t tok; /* -1: raw text */
} fragment;

typedef struct {
    fragment *f;
    size_t n, cap;
    fragment *g;
    size_t n_g, cap_g;
} frag_list;

static int frag_add(frag_list *l, size_t off, size_t len, int32_t tok) {
    if (grow((void **)&l->g, &l->cap_g, l->n_g + 1, sizeof *l->g) < 0)
        return NIB_ENOMEM;
    l->g[l->n_g++] = (fragment){off, len, tok};
    return 0;
}

static bool st_is_control(const eng_vocab *v, int32_t id) {
    return v->ttype[id] == TT_CONTROL || v->ttype[id] == TT_UNKNOWN;
}

/* As llama.cpp's tokenizer_st_partition: for each special token, longest
 * first, cut every raw fragment at each occurrence (leftmost first).
 * Control and unknown tokens are only looked for with parse_special;
 * user-defined ones always are. */
static int partition(const eng_vocab *v, const char *text, size_t len,
                     bool parse_special, frag_list *l) {
    l->n_g = 0;
    if (frag_add(l, 0, len, -1) < 0)
        return NIB_ENOMEM;
    for (int k = 0; k < v->n_st_cache; k++) {
        int32_t id = v->st_cache[k];
        if (!parse_special && st_is_control(v, id))
            continue;
        size_t tn;
        const char *t = tok_text(v, id, &tn);
        /* swap g -> f, rebuild g */
        fragment *tf = l->f;
        size_t tcap = l->cap;
        l->f = l->g;
        l->cap = l->cap_g;
        l->n = l->n_g;
        l->g = tf;
        l->cap_g = tcap;
        l->n_g = 0;
        for (size_t i = 0; i < l->n; i++) {
            fragment fr = l->f[i];
            if (fr.tok >= 0 || fr.len < tn) {
                if (frag_add(l, fr.off, fr.len, fr.tok) < 0)
                    return NIB_ENOMEM;
                continue;
            }
            size_t pos = fr.off, end = fr.off + fr.len;
            while (pos < end) {
                const char *hit = end - pos >= tn
                                      ? memmem(text + pos, end - pos, t, tn)
                                      : NULL;
                if (!hit) {
                    if (frag_add(l, pos, end - pos, -1) < 0)
                        return NIB_ENOMEM;
                    break;
                }
                size_t at = (size_t)(hit - text);
                if (at > pos && frag_add(l, pos, at - pos, -1) < 0)
                    return NIB_ENOMEM;
                if (frag_add(l, at, tn, id) < 0)
                    return NIB_ENOMEM;
                pos = at + tn;
            }
        }
    }
    return 0;
}

/* ---- tokenize ------------------------------------------------------------ */

int eng_tokenize(const eng_vocab *v, const char *text, size_t len, int flags,
                 int32_t *out, int n_max) {
    if (!v || (!text && len > 0) || n_max < 0 || (n_max > 0 && !out))
        return NIB_EINVAL;
    if (len > UINT32_MAX / 4)
        return NIB_ERANGE; /* unit offsets are 32-bit */
    bool add_special = flags & ENG_TOKENIZE_ADD_SPECIAL;
    bool parse_special = flags & ENG_TOKENIZE_PARSE_SPECIAL;

    tok_vec o = {0};
    frag_list fl = {0};
    eng_pre_units u = {0};
    bpe_scratch bs = {0};
    spm_scratch ss = {0};
    int r = 0;

    if (add_special && v->add_bos && v->special[ENG_TOK_BOS] >= 0 &&
        (r = vec_push(&o, v->special[ENG_TOK_BOS])) < 0)
        goto done;
    if (len > 0 && (r = partition(v, text, len, parse_special, &fl)) < 0)
        goto done;

    /* SentencePiece prefixes a space to the text at the start and after
     * every special token. */
    bool prev_special = true;
    for (size_t i = 0; i < fl.n_g; i++) {
        const fragment *fr = &fl.g[i];
        if (fr->tok >= 0) {
            if ((r = vec_push(&o, fr->tok)) < 0)
                goto done;
            prev_special = true;
            continue;
        }
        if (v->kind == VOCAB_SPM) {
            r = spm_fragment(v, &ss, text + fr->off, fr->len,
                             v->add_space_prefix && prev_special, &o);
            if (r < 0)
                goto done;
            prev_special = false;
            continue;
        }
        if ((r = eng__pre_decode(&u, text + fr->off, fr->len)) < 0 ||
            (r = eng__pre_split(&u, v->pre)) < 0)
            goto done;
        size_t start = 0;
        for (size_t w = 0; w < u.n_ends; w++) {
            size_t b0 = u.boff[start], b1 = u.boff[u.ends[w]];
            const char *wp = text + fr->off + b0;
            size_t wn = b1 - b0;
            if ((r = substitute_invalid(v, &u, start, u.ends[w], &bs, &wp,
                                        &wn)) < 0 ||
                (r = bpe_word(v, &bs, wp, wn, &o)) < 0)
                goto done;
            start = u.ends[w];
        }
    }
    if (add_special && v->add_eos && v->special[ENG_TOK_EOS] >= 0 &&
        (r = vec_push(&o, v->special[ENG_TOK_EOS])) < 0)
        goto done;

    if (o.n > INT32_MAX) {
        r = NIB_ERANGE;
        goto done;
    }
    if (out && o.n > 0)
        memcpy(out, o.ids, NIB_MIN(o.n, (size_t)n_max) * sizeof *out);
    r = (int)o.n;
done:
    nib_free(o.ids);
    nib_free(fl.f);
    nib_free(fl.g);
    eng__pre_free(&u);
    nib_free(bs.sym);
    nib_free(bs.heap);
    nib_free(bs.enc);
    nib_free(bs.sub);
    nib_free(ss.text);
    nib_free(ss.sym);
    nib_free(ss.heap);
    return r;
}

/* ---- decoding ------------------------------------------------------------ */

/* The bytes a token stands for in text, as llama.cpp's token_to_piece with
 * special = true (the caller hides control tokens). Writes them into p
 * (room for the token text's length: no piece is longer) unless p is NULL,
 * and returns their length. Decoding on each call instead of once for the
 * whole vocab at load saves a Qwen2 load ~5 ms and 2 MB; a call costs tens
 * of nanoseconds. */
static size_t token_piece(const eng_vocab *v, int32_t id, char *p) {
    size_t n;
    const char *t = tok_text(v, id, &n);
    int tt = v->ttype[id];
    if (tt == TT_CONTROL || tt == TT_UNKNOWN || tt == TT_USER_DEFINED) {
        if (p)
            memcpy(p, t, n);
        return n;
    }
    if (v->kind == VOCAB_SPM) {
        if (tt == TT_BYTE) {
            /* "<0xXX>" */
            if (n == 6 && memcmp(t, "<0x", 3) == 0) {
                if (p)
                    p[0] = (char)strtol(t + 3, NULL, 16);
                return 1;
            }
            return 0;
        }
        if (tt != TT_NORMAL)
            return 0;
        size_t k = 0;
        for (size_t i = 0; i < n; k++) {
            if (i + 3 <= n && memcmp(t + i, "\xe2\x96\x81", 3) == 0) {
                if (p)
                    p[k] = ' ';
                i += 3;
            } else {
                if (p)
                    p[k] = t[i];
                i++;
            }
        }
        return k;
    }
    if (tt != TT_NORMAL)
        return 0;
    /* Byte-level: each code point stands for one byte. One that does not
     * (not seen in real vocabs) is kept as its UTF-8 rather than dropped. */
    size_t k = 0;
    for (size_t i = 0; i < n;) {
        int len;
        uint32_t c = eng_utf8_decode(t + i, n - i, &len);
        int b = len == 1 && c == ENG_UNI_REPLACEMENT ? -1 : eng_cpt_to_byte(c);
        if (b >= 0) {
            if (p)
                p[k] = (char)b;
            k++;
        } else {
            if (p)
                memcpy(p + k, t + i, (size_t)len);
            k += (size_t)len;
        }
        i += (size_t)len;
    }
    return k;
}

int eng_token_piece(const eng_vocab *v, int32_t tok, bool special, char *buf,
                    int size) {
    if (!v || tok < 0 || tok >= v->n_tokens)
        return NIB_EINVAL;
    if (!special && st_is_control(v, tok))
        return 0;
    size_t tn, room = (size_t)NIB_MAX(size, 0);
    tok_text(v, tok, &tn);
    /* Room for the text is room for the piece: decode in one pass. */
    if (buf && tn <= room)
        return (int)token_piece(v, tok, buf);
    size_t n = token_piece(v, tok, NULL);
    if (buf && n <= room)
        token_piece(v, tok, buf);
    return (int)n;
}

const char *eng_token_text(const eng_vocab *v, int32_t tok) {
    if (!v || tok < 0 || tok >= v->n_tokens)
        return NULL;
    return v->text + v->text_at[tok];
}

int32_t eng_token_special(const eng_vocab *v, eng_special which) {
    if (!v || (int)which < 0 || which >= ENG_TOK_SPECIAL_COUNT)
        return -1;
    return v->special[which];
}

bool eng_token_is_eog(const eng_vocab *v, int32_t tok) {
    if (!v || tok < 0)
        return false;
    for (int i = 0; i < v->n_eog; i++)
        if (v->eog[i] == tok)
            return true;
    return false;
}

int eng_vocab_n_tokens(const eng_vocab *v) {
    return v ? v->n_tokens : 0;
}

const char *eng_vocab_type(const eng_vocab *v) {
    return v ? v->model_name : "";
}

const char *eng_vocab_pre(const eng_vocab *v) {
    return v ? v->pre_name : "";
}

/* ---- loading ------------------------------------------------------------- */

static const struct {
    const char *name;
    eng_pre_kind pre;
} pre_names[] = {
    {"default", ENG_PRE_DEFAULT},
    {"llama3", ENG_PRE_LLAMA3},
    {"llama-v3", ENG_PRE_LLAMA3},
    {"llama-bpe", ENG_PRE_LLAMA3},
    {"qwen2", ENG_PRE_QWEN2},
    {"deepseek-r1-qwen", ENG_PRE_QWEN2},
    {"megrez", ENG_PRE_QWEN2},
    {"stablelm2", ENG_PRE_QWEN2},
    {"gpt-2", ENG_PRE_GPT2},
    {"phi-2", ENG_PRE_GPT2},
    {"mpt", ENG_PRE_GPT2},
    {"olmo", ENG_PRE_GPT2},
    {"jais", ENG_PRE_GPT2},
    {"starcoder", ENG_PRE_STARCODER},
    {"refact", ENG_PRE_STARCODER},
    {"command-r", ENG_PRE_STARCODER},
    {"smollm", ENG_PRE_STARCODER},
    {"codeshell", ENG_PRE_STARCODER},
    {"exaone", ENG_PRE_STARCODER},
    {"minerva-7b", ENG_PRE_STARCODER},
    {"deepseek-coder", ENG_PRE_DEEPSEEK_CODER},
    {"falcon", ENG_PRE_FALCON},
};

/* The metadata keys of each special id; the second and third are the
 * names older converters wrote. */
static const struct {
    eng_special which;
    const char *keys[2];
} special_keys[] = {
    {ENG_TOK_BOS, {"tokenizer.ggml.bos_token_id", NULL}},
    {ENG_TOK_EOS, {"tokenizer.ggml.eos_token_id", NULL}},
    {ENG_TOK_EOT, {"tokenizer.ggml.eot_token_id", NULL}},
    {ENG_TOK_PAD, {"tokenizer.ggml.padding_token_id", NULL}},
    {ENG_TOK_FIM_PRE,
     {"tokenizer.ggml.fim_pre_token_id", "tokenizer.ggml.prefix_token_id"}},
    {ENG_TOK_FIM_SUF,
     {"tokenizer.ggml.fim_suf_token_id", "tokenizer.ggml.suffix_token_id"}},
    {ENG_TOK_FIM_MID,
     {"tokenizer.ggml.fim_mid_token_id", "tokenizer.ggml.middle_token_id"}},
    {ENG_TOK_FIM_PAD, {"tokenizer.ggml.fim_pad_token_id", NULL}},
    {ENG_TOK_FIM_REP, {"tokenizer.ggml.fim_rep_token_id", NULL}},
    {ENG_TOK_FIM_SEP, {"tokenizer.ggml.fim_sep_token_id", NULL}},
};

/* Texts llama.cpp recognizes when the id is not in the metadata, in order
 * of preference (llama.cpp takes whichever its hash map yields first; a
 * fixed order makes nib deterministic). Matching tokens become control
 * tokens. */
static const char *const eot_texts[] = {
    "<|eot_id|>",
    "<|im_end|>",
    "<|end|>",
    "<end_of_turn>",
    "<|endoftext|>",
    "<|end_of_text|>",
    "<EOT>",
    "_<EOT>",
    "<\xef\xbd\x9c"
    "end\xe2\x96\x81of\xe2\x96\x81sentence\xef\xbd\x9c>",
    "<end_of_utterance>",
    NULL};
static const char *const fim_pre_texts[] = {"<|fim_prefix|>",
                                            "<fim-prefix>",
                                            "<fim_prefix>",
                                            "<\xef\xbd\x9c"
                                            "fim\xe2\x96\x81"
                                            "begin\xef\xbd\x9c>",
                                            "<PRE>",
                                            "\xe2\x96\x81<PRE>",
                                            "<|code_prefix|>",
                                            NULL};
static const char *const fim_suf_texts[] = {"<|fim_suffix|>",
                                            "<fim-suffix>",
                                            "<fim_suffix>",
                                            "<\xef\xbd\x9c"
                                            "fim\xe2\x96\x81hole\xef\xbd\x9c>",
                                            "<SUF>",
                                            "\xe2\x96\x81<SUF>",
                                            "<|code_suffix|>",
                                            NULL};
static const char *const fim_mid_texts[] = {"<|fim_middle|>",
                                            "<fim-middle>",
                                            "<fim_middle>",
                                            "<\xef\xbd\x9c"
                                            "fim\xe2\x96\x81"
                                            "end\xef\xbd\x9c>",
                                            "<MID>",
                                            "\xe2\x96\x81<MID>",
                                            "<|code_middle|>",
                                            NULL};
static const char *const fim_pad_texts[] = {"<|fim_pad|>", "<fim-pad>",
                                            "<fim_pad>", "<PAD>", NULL};
static const char *const fim_rep_texts[] = {"<|fim_repo|>", "<|repo_name|>",
                                            "<fim-repo>",   "<REPO>",
                                            "<reponame>",   NULL};
static const char *const fim_sep_texts[] = {"<|file_sep|>", NULL};
/* Tokens that end generation whatever the metadata says. */
static const char *const eog_texts[] = {
    "<|eot_id|>", "<|im_end|>",    "<|end|>",         "<|return|>",
    "<|call|>",   "<end_of_turn>", "<|endoftext|>",   "<|eom_id|>",
    "<EOT>",      "_<EOT>",        "<|end_of_text|>", "<end_of_utterance>",
    NULL};

static void make_control(eng_vocab *v, int32_t id) {
    if (v->ttype[id] != TT_CONTROL) {
        nib_log_debug("vocab: token %d '%s' looks like a control token; "
                      "treating it as one",
                      id, eng_token_text(v, id));
        v->ttype[id] = TT_CONTROL;
    }
}

static void find_by_text(eng_vocab *v, eng_special which,
                         const char *const *texts) {
    if (v->special[which] >= 0)
        return;
    for (int i = 0; texts[i]; i++) {
        int32_t id = text_to_token_z(v, texts[i]);
        if (id >= 0) {
            v->special[which] = id;
            make_control(v, id);
            return;
        }
    }
}

static void eog_add(eng_vocab *v, int32_t id) {
    if (id < 0 || eng_token_is_eog(v, id))
        return;
    v->eog = nib_realloc(v->eog, (size_t)(v->n_eog + 1) * sizeof *v->eog);
    v->eog[v->n_eog++] = id;
}

static int cmp_st(const void *a, const void *b, void *ud) {
    const eng_vocab *v = ud;
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    uint32_t lx = v->text_at[x + 1] - v->text_at[x];
    uint32_t ly = v->text_at[y + 1] - v->text_at[y];
    if (lx != ly)
        return lx > ly ? -1 : 1;
    return x < y ? -1 : x > y;
}

/* Slots for an open-addressing table of n keys: at most 2/3 full, so
 * probes stay short without the table outgrowing the caches more than it
 * must. */
static uint32_t table_cap(uint64_t n) {
    uint32_t cap = 16;
    while (cap < n + n / 2)
        cap *= 2;
    return cap;
}

static bool is_shadowed(const uint8_t *shadowed, int32_t id) {
    return (shadowed[id / 8] >> (id % 8)) & 1;
}

/* Id of the token whose text is l followed by r, or -1. Merges are listed
 * in the order their results joined the vocab (in every vocab we have seen,
 * each result is the token after the previous one), so `guess` is tried
 * first with a compare of neighbouring memory; a guess that is a shadowed
 * duplicate is not what the lookup would give, so it goes to the lookup. */
static int32_t merge_result(const eng_vocab *v, const uint8_t *shadowed,
                            int32_t guess, const char *l, size_t ln,
                            const char *r, size_t rn) {
    if (guess >= 0 && guess < v->n_tokens && !is_shadowed(shadowed, guess)) {
        size_t tn;
        const char *t = tok_text(v, guess, &tn);
        if (tn == ln + rn && bytes_eq(t, l, ln) && bytes_eq(t + ln, r, rn))
            return guess;
    }
    char stackbuf[256];
    char *cat = ln + rn <= sizeof stackbuf ? stackbuf : nib_malloc(ln + rn);
    memcpy(cat, l, ln);
    memcpy(cat + ln, r, rn);
    int32_t res = text_to_token(v, cat, ln + rn);
    if (cat != stackbuf)
        nib_free(cat);
    return res;
}

/* Merges resolved together: each batch first issues the cache misses of all
 * its lookups (slots, then texts), then does the lookups, so the misses
 * overlap instead of each stalling in turn. */
enum { MERGE_BATCH = 64 };

typedef struct {
    const char *l, *r; /* l = NULL: no space, not a merge */
    size_t ln, rn;
    uint64_t hl, hr;
    uint64_t key; /* 0: skipped */
    int32_t res;
    uint32_t slot; /* home slot in v->merges */
} merge_job;

static int load_merges(eng_vocab *v, const eng_gguf *g, const uint8_t *shadowed,
                       char *err, size_t err_size) {
    uint64_t n;
    const eng_str *m;
    int r = eng_gguf_get_str_arr(g, "tokenizer.ggml.merges", &n, &m);
    if (r < 0) {
        nib_errf(err, err_size, "tokenizer.ggml.merges: %s",
                 r == NIB_ENOENT ? "missing (needed by a gpt2 tokenizer)"
                                 : "not an array of strings");
        return NIB_EBADMODEL;
    }
    if (n > INT32_MAX / 4) {
        nib_errf(err, err_size, "tokenizer.ggml.merges: too many (%llu)",
                 (unsigned long long)n);
        return NIB_EBADMODEL;
    }
    uint32_t cap = table_cap(n);
    v->merges = nib_try_calloc(cap, sizeof *v->merges);
    if (!v->merges)
        return NIB_ENOMEM;
    v->merge_mask = cap - 1;
    uint64_t skipped = 0;
    int32_t guess = -1;
    merge_job job[MERGE_BATCH];
    for (uint64_t b = 0; b < n; b += MERGE_BATCH) {
        size_t k = (size_t)NIB_MIN(n - b, (uint64_t)MERGE_BATCH);
        for (size_t j = 0; j < k; j++) {
            /* "left right", split at the first space after the first byte. */
            merge_job *q = &job[j];
            const char *s = m[b + j].ptr;
            size_t len = (size_t)m[b + j].len, sp = 1;
            while (sp < len && s[sp] != ' ')
                sp++;
            q->l = sp < len ? s : NULL;
            if (!q->l)
                continue;
            q->ln = sp;
            q->r = s + sp + 1;
            q->rn = len - q->ln - 1;
            q->hl = hash_bytes(q->l, q->ln);
            q->hr = hash_bytes(q->r, q->rn);
            text_prefetch(v, q->hl, 0);
            text_prefetch(v, q->hr, 0);
        }
        for (int level = 1; level <= 2; level++) {
            for (size_t j = 0; j < k; j++) {
                if (job[j].l) {
                    text_prefetch(v, job[j].hl, level);
                    text_prefetch(v, job[j].hr, level);
                }
            }
        }
        for (size_t j = 0; j < k; j++) {
            merge_job *q = &job[j];
            q->key = 0;
            if (!q->l) {
                skipped++;
                continue;
            }
            int32_t l = text_find(v, q->hl, q->l, q->ln);
            int32_t rr = text_find(v, q->hr, q->r, q->rn);
            int32_t res =
                merge_result(v, shadowed, guess, q->l, q->ln, q->r, q->rn);
            if (res >= 0)
                guess = res + 1;
            if (l < 0 || rr < 0 || res < 0) {
                skipped++;
                continue;
            }
            q->key = merge_key(l, rr);
            q->res = res;
            q->slot = (uint32_t)hash_u64(q->key) & v->merge_mask;
            __builtin_prefetch(&v->merges[q->slot], 1);
        }
        /* In rank order, so the first rank of a duplicated pair wins, as in
         * llama.cpp. */
        for (size_t j = 0; j < k; j++) {
            uint64_t key = job[j].key;
            if (key == 0)
                continue;
            uint32_t i = job[j].slot;
            while (v->merges[i].key != 0 && v->merges[i].key != key)
                i = (i + 1) & v->merge_mask;
            if (v->merges[i].key == 0)
                v->merges[i] = (merge_slot){key, (int32_t)(b + j), job[j].res};
        }
    }
    if (skipped)
        nib_log_debug("vocab: %llu merges name texts that are not tokens",
                      (unsigned long long)skipped);
    return 0;
}

int eng_vocab_load(const eng_gguf *g, eng_vocab **out, char *err,
                   size_t err_size) {
    *out = NULL;
    eng_str model;
    if (eng_gguf_get_str(g, "tokenizer.ggml.model", &model) < 0) {
        nib_errf(err, err_size, "tokenizer.ggml.model: missing");
        return NIB_EBADMODEL;
    }
    vocab_kind kind;
    if (eng_str_eq(model, "llama"))
        kind = VOCAB_SPM;
    else if (eng_str_eq(model, "gpt2"))
        kind = VOCAB_BPE;
    else {
        nib_errf(err, err_size,
                 "tokenizer.ggml.model '%.*s' is not supported "
                 "(only llama and gpt2)",
                 (int)NIB_MIN(model.len, 64), model.ptr);
        return NIB_EUNSUPPORTED;
    }
    uint64_t n;
    const eng_str *toks;
    if (eng_gguf_get_str_arr(g, "tokenizer.ggml.tokens", &n, &toks) < 0 ||
        n == 0 || n > INT32_MAX / 4) {
        nib_errf(err, err_size,
                 "tokenizer.ggml.tokens: missing, empty or not "
                 "an array of strings");
        return NIB_EBADMODEL;
    }

    eng_vocab *v = nib_calloc(1, sizeof *v);
    int r = 0;
    uint8_t *shadowed = NULL; /* a bit per id: a later token has its text */
    v->kind = kind;
    v->n_tokens = (int)n;
    snprintf(v->model_name, sizeof v->model_name, "%s",
             kind == VOCAB_SPM ? "llama" : "gpt2");

    /* Token texts, NUL-terminated so eng_token_text can hand them out. */
    uint64_t total = 0;
    for (uint64_t i = 0; i < n; i++)
        total += toks[i].len + 1;
    if (total > UINT32_MAX / 4) {
        nib_errf(err, err_size, "tokenizer.ggml.tokens: texts too large");
        r = NIB_EBADMODEL;
        goto fail;
    }
    v->text = nib_try_malloc((size_t)total);
    v->text_at = nib_try_malloc((size_t)(n + 1) * sizeof *v->text_at);
    /* Only SentencePiece merges by score; byte-level BPE never reads them. */
    if (kind == VOCAB_SPM)
        v->scores = nib_try_calloc((size_t)n, sizeof *v->scores);
    v->ttype = nib_try_malloc((size_t)n);
    uint32_t cap = table_cap(n);
    v->slots = nib_try_calloc(cap, sizeof *v->slots);
    v->slot_mask = cap - 1;
    shadowed = nib_try_calloc((size_t)(n + 7) / 8, 1);
    if (!v->text || !v->text_at || (kind == VOCAB_SPM && !v->scores) ||
        !v->ttype || !v->slots || !shadowed) {
        r = NIB_ENOMEM;
        goto fail;
    }
    /* Each text is hashed as it is copied, and inserted INSERT_AHEAD tokens
     * later, once its slot's cache line has had time to arrive. Inserts
     * stay in id order, which decides which duplicate wins. */
    enum { INSERT_AHEAD = 16 };
    uint64_t ahead[INSERT_AHEAD];
    uint32_t off = 0;
    for (uint64_t i = 0; i < n + INSERT_AHEAD; i++) {
        if (i >= INSERT_AHEAD)
            text_insert(v, (int32_t)(i - INSERT_AHEAD),
                        (size_t)toks[i - INSERT_AHEAD].len,
                        ahead[i % INSERT_AHEAD], shadowed);
        if (i >= n)
            continue;
        v->text_at[i] = off;
        memcpy(v->text + off, toks[i].ptr, (size_t)toks[i].len);
        ahead[i % INSERT_AHEAD] = hash_bytes(v->text + off, toks[i].len);
        text_prefetch(v, ahead[i % INSERT_AHEAD], 0);
        off += (uint32_t)toks[i].len;
        v->text[off++] = 0;
    }
    v->text_at[n] = off;

    /* Scores and token types are optional per llama.cpp (0 and NORMAL). */
    uint64_t m;
    const void *data;
    int ra = eng_gguf_get_arr(g, "tokenizer.ggml.scores", GGUF_TYPE_FLOAT32, &m,
                              &data);
    if (ra < 0 && ra != NIB_ENOENT) {
        nib_errf(err, err_size, "tokenizer.ggml.scores: not a float32 array");
        r = NIB_EBADMODEL;
        goto fail;
    }
    if (ra == 0) {
        if (m != n) {
            nib_errf(err, err_size,
                     "tokenizer.ggml.scores: %llu entries for "
                     "%llu tokens",
                     (unsigned long long)m, (unsigned long long)n);
            r = NIB_EBADMODEL;
            goto fail;
        }
        if (v->scores)
            memcpy(v->scores, data, (size_t)n * sizeof(float));
    }
    memset(v->ttype, TT_NORMAL, (size_t)n);
    ra = eng_gguf_get_arr(g, "tokenizer.ggml.token_type", GGUF_TYPE_INT32, &m,
                          &data);
    if (ra < 0 && ra != NIB_ENOENT) {
        nib_errf(err, err_size,
                 "tokenizer.ggml.token_type: not an int32 array");
        r = NIB_EBADMODEL;
        goto fail;
    }
    if (ra == 0) {
        if (m != n) {
            nib_errf(err, err_size,
                     "tokenizer.ggml.token_type: %llu entries "
                     "for %llu tokens",
                     (unsigned long long)m, (unsigned long long)n);
            r = NIB_EBADMODEL;
            goto fail;
        }
        for (uint64_t i = 0; i < n; i++) {
            int32_t t;
            memcpy(&t, (const char *)data + 4 * i, 4);
            v->ttype[i] =
                t >= TT_NORMAL && t <= TT_BYTE ? (uint8_t)t : TT_UNDEFINED;
        }
    }

    /* Flags and special ids: llama.cpp's defaults per type, then keys. */
    for (int i = 0; i < ENG_TOK_SPECIAL_COUNT; i++)
        v->special[i] = -1;
    v->unk_id = -1;
    if (kind == VOCAB_SPM) {
        v->special[ENG_TOK_BOS] = 1;
        v->special[ENG_TOK_EOS] = 2;
        v->unk_id = 0;
        v->add_bos = true;
        v->add_space_prefix = true;
        snprintf(v->pre_name, sizeof v->pre_name, "default");
    } else {
        v->special[ENG_TOK_BOS] = 11;
        v->special[ENG_TOK_EOS] = 11;
        eng_str pre;
        if (eng_gguf_get_str(g, "tokenizer.ggml.pre", &pre) == 0)
            snprintf(v->pre_name, sizeof v->pre_name, "%.*s",
                     (int)NIB_MIN(pre.len, sizeof v->pre_name - 1), pre.ptr);
        else
            snprintf(v->pre_name, sizeof v->pre_name, "default");
        v->pre = ENG_PRE_DEFAULT;
        bool known = false;
        for (size_t i = 0; i < NIB_ARRAY_LEN(pre_names); i++) {
            if (strcmp(v->pre_name, pre_names[i].name) == 0) {
                v->pre = pre_names[i].pre;
                known = true;
            }
        }
        if (!known)
            nib_log_warn("vocab: pre-tokenizer '%s' is unknown; using the "
                         "default one, tokens may differ",
                         v->pre_name);
        if (v->pre == ENG_PRE_LLAMA3) {
            v->ignore_merges = true;
            v->add_bos = true;
        }
        if ((r = load_merges(v, g, shadowed, err, err_size)) < 0)
            goto fail;
    }
    for (int i = 0; i < ENG_TOK_SPECIAL_COUNT; i++)
        if (v->special[i] >= v->n_tokens)
            v->special[i] = -1;
    for (size_t i = 0; i < NIB_ARRAY_LEN(special_keys); i++) {
        for (int k = 0; k < 2 && special_keys[i].keys[k]; k++) {
            uint32_t id;
            if (eng_gguf_get_u32(g, special_keys[i].keys[k], &id) < 0)
                continue;
            /* Out of range (stories260K writes UINT32_MAX for "none"):
             * keep the default, as llama.cpp does. */
            if (id < (uint32_t)v->n_tokens)
                v->special[special_keys[i].which] = (int32_t)id;
        }
    }
    uint32_t id;
    if (eng_gguf_get_u32(g, "tokenizer.ggml.unknown_token_id", &id) == 0 &&
        id < (uint32_t)v->n_tokens)
        v->unk_id = (int32_t)id;
    bool b;
    if (eng_gguf_get_bool(g, "tokenizer.ggml.add_bos_token", &b) == 0)
        v->add_bos = b;
    if (eng_gguf_get_bool(g, "tokenizer.ggml.add_eos_token", &b) == 0)
        v->add_eos = b;
    if (eng_gguf_get_bool(g, "tokenizer.ggml.add_space_prefix", &b) == 0)
        v->add_space_prefix = b;

    find_by_text(v, ENG_TOK_EOT, eot_texts);
    find_by_text(v, ENG_TOK_FIM_PRE, fim_pre_texts);
    find_by_text(v, ENG_TOK_FIM_SUF, fim_suf_texts);
    find_by_text(v, ENG_TOK_FIM_MID, fim_mid_texts);
    find_by_text(v, ENG_TOK_FIM_PAD, fim_pad_texts);
    find_by_text(v, ENG_TOK_FIM_REP, fim_rep_texts);
    find_by_text(v, ENG_TOK_FIM_SEP, fim_sep_texts);

    eog_add(v, v->special[ENG_TOK_FIM_PAD]);
    eog_add(v, v->special[ENG_TOK_FIM_REP]);
    eog_add(v, v->special[ENG_TOK_FIM_SEP]);
    for (int i = 0; eog_texts[i]; i++) {
        int32_t t = text_to_token_z(v, eog_texts[i]);
        if (t >= 0) {
            eog_add(v, t);
            make_control(v, t);
        }
    }
    eog_add(v, v->special[ENG_TOK_EOS]);
    eog_add(v, v->special[ENG_TOK_EOT]);

    /* Byte tokens: <0xXX> (or the byte itself) for SentencePiece, the
     * byte's printable code point for byte-level BPE. */
    for (int c = 0; c < 256; c++) {
        char buf[8];
        if (kind == VOCAB_SPM) {
            snprintf(buf, sizeof buf, "<0x%02X>", c);
            int32_t t = text_to_token_z(v, buf);
            if (t < 0)
                t = text_to_token(v, (char[]){(char)c}, 1);
            v->byte_tok[c] = t;
        } else {
            /* Only a normal token decodes to the byte: DeepSeek-Coder
             * reuses the texts of the never-valid bytes (C0, C1, F5..FF)
             * for user-defined tokens that decode to their UTF-8. */
            int k = eng_utf8_encode(eng_byte_to_cpt((uint8_t)c), buf);
            int32_t t = text_to_token(v, buf, (size_t)k);
            v->byte_tok[c] = t >= 0 && v->ttype[t] == TT_NORMAL ? t : -1;
        }
    }

    /* Special-token cache, longest text first (ties by id, so the order
     * is deterministic where llama.cpp's std::sort is not). Empty texts
     * would match everywhere and are left out. */
    v->st_cache = nib_try_malloc((size_t)n * sizeof *v->st_cache);
    if (!v->st_cache) {
        r = NIB_ENOMEM;
        goto fail;
    }
    for (int32_t i = 0; i < v->n_tokens; i++) {
        int tt = v->ttype[i];
        if ((tt == TT_CONTROL || tt == TT_USER_DEFINED || tt == TT_UNKNOWN) &&
            v->text_at[i + 1] - v->text_at[i] > 1)
            v->st_cache[v->n_st_cache++] = i;
    }
    qsort_r(v->st_cache, (size_t)v->n_st_cache, sizeof *v->st_cache, cmp_st, v);

    nib_free(shadowed);
    *out = v;
    return 0;
fail:
    nib_free(shadowed);
    eng_vocab_delete(v);
    return r;
}

void eng_vocab_delete(eng_vocab *v) {
    if (!v)
        return;
    nib_free(v->text);
    nib_free(v->text_at);
    nib_free(v->scores);
    nib_free(v->ttype);
    nib_free(v->slots);
    nib_free(v->merges);
    nib_free(v->st_cache);
    nib_free(v->eog);
    nib_free(v);
}

int eng_vocab_open(const char *path, eng_vocab **out, char *err,
                   size_t err_size) {
    *out = NULL;
    eng_gguf *g;
    int r = eng_gguf_open(path, &g, err, err_size);
    if (r < 0)
        return r;
    r = eng_vocab_load(g, out, err, err_size);
    eng_gguf_close(g);
    return r;
}

/* ---- info ---------------------------------------------------------------- */

static void print_tok(const eng_vocab *v, FILE *f, const char *label,
                      int32_t id) {
    if (id < 0)
        return;
    fprintf(f, "  %-8s %6d '%s'\n", label, id, eng_token_text(v, id));
}

void eng_vocab_print_info(const eng_vocab *v, FILE *f) {
    static const char *const names[ENG_TOK_SPECIAL_COUNT] = {
        "BOS",     "EOS",     "EOT",     "PAD",     "FIM PRE",
        "FIM SUF", "FIM MID", "FIM PAD", "FIM REP", "FIM SEP"};
    fprintf(f, "vocab type:      %s (%s)\n", v->model_name,
            v->kind == VOCAB_SPM ? "SentencePiece" : "byte-level BPE");
    fprintf(f, "vocab pre:       %s\n", v->pre_name);
    fprintf(f, "vocab size:      %d\n", v->n_tokens);
    fprintf(f, "add BOS / EOS:   %s / %s\n", v->add_bos ? "yes" : "no",
            v->add_eos ? "yes" : "no");
    if (v->kind == VOCAB_SPM)
        fprintf(f, "space prefix:    %s\n", v->add_space_prefix ? "yes" : "no");
    fprintf(f, "special tokens:\n");
    for (int i = 0; i < ENG_TOK_SPECIAL_COUNT; i++)
        print_tok(v, f, names[i], v->special[i]);
    print_tok(v, f, "UNK", v->unk_id);
    for (int i = 0; i < v->n_eog; i++)
        print_tok(v, f, "EOG", v->eog[i]);
}
