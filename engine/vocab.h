/*
 * vocab.h — building a tokenizer from GGUF metadata (engine-internal).
 * The tokenizer API itself is public, in engine.h.
 */
#ifndef NIB_ENGINE_VOCAB_H
#define NIB_ENGINE_VOCAB_H

#include "engine.h"
#include "gguf.h"

/* Build the tokenizer described by g's tokenizer.ggml.* keys. The vocab
 * copies what it needs: it does not keep a reference to g.
 * *out is new (eng_vocab_delete). Errors: NIB_EBADMODEL (missing or
 * inconsistent metadata, message in err), NIB_EUNSUPPORTED (unknown
 * tokenizer.ggml.model), NIB_ENOMEM. */
int eng_vocab_load(const eng_gguf *g, eng_vocab **out, char *err,
                   size_t err_size);

#endif
