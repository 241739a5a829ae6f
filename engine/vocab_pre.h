/*
 * vocab_pre.h — pre-tokenizers of byte-level BPE vocabularies
 * (engine-internal, used by vocab.c).
 */
#ifndef NIB_ENGINE_VOCAB_PRE_H
#define NIB_ENGINE_VOCAB_PRE_H

#include <stddef.h>
#include <stdint.h>

/* Pre-tokenizer families: each names one list of regexes in llama.cpp. */
typedef enum {
    ENG_PRE_DEFAULT,   /* BPE without (or with an unknown) tokenizer.ggml.pre */
    ENG_PRE_LLAMA3,    /* llama-bpe: contractions, letters, \p{N}{1,3}, ... */
    ENG_PRE_QWEN2,     /* as LLAMA3 but single digits */
    ENG_PRE_GPT2,      /* the original GPT-2 pattern */
    ENG_PRE_STARCODER, /* single digits, then GPT-2 (also refact) */
    ENG_PRE_DEEPSEEK_CODER,
    ENG_PRE_FALCON,
} eng_pre_kind;

/* The text being split, as code point units. An invalid UTF-8 byte is a
 * unit of its own, classified as U+FFFD like llama.cpp does, but its byte is
 * kept so that decoding gives the input back. */
typedef struct {
    const char *s;
    size_t n;       /* units */
    uint32_t *cp;   /* [n] */
    uint16_t *fl;   /* [n] ENG_UNI_* */
    uint32_t *boff; /* [n + 1] byte offset of each unit */
    size_t cap;
    uint32_t *ends; /* chunk ends (unit index), ascending */
    size_t n_ends, cap_ends;
    uint32_t *ends2; /* the next stage's output */
    size_t n_ends2, cap_ends2;
} eng_pre_units;

/* Decode s[0..len) into u's units (reusing u's buffers; s is borrowed until
 * the next decode). Returns 0 or NIB_ENOMEM. */
int eng__pre_decode(eng_pre_units *u, const char *s, size_t len);

/* Split the decoded text into words: afterwards u->ends[0..n_ends) are the
 * words' end units, ascending, the last one u->n. Returns 0 or NIB_ENOMEM.
 * Pure: any number of threads may split with their own eng_pre_units. */
int eng__pre_split(eng_pre_units *u, eng_pre_kind pre);

/* Free u's buffers (u itself is the caller's); u is left zeroed. */
void eng__pre_free(eng_pre_units *u);

#endif
