/*
 * test-vocab.c — tokenizers against llama.cpp's test vectors and goldens,
 * decoding round trips, special ids and the Unicode classes.
 */
#include <jansson.h>

#include "common/nib.h"
#include "engine/engine.h"
#include "engine/unicode.h"
#include "test.h"

/* ---- helpers ---------------------------------------------------------- */

static eng_vocab *open_vocab(const char *path) {
    char err[256] = "";
    eng_vocab *v = NULL;
    int r = eng_vocab_open(path, &v, err, sizeof err);
    ASSERT_MSG(r == 0, "%s: %s (%s)", path, nib_strerror(r), err);
    return v;
}

/* Tokenize into a new array (caller frees); *n gets the count. */
static int32_t *tokenize(const eng_vocab *v, const char *s, size_t len,
                         int flags, int *n) {
    int k = eng_tokenize(v, s, len, flags, NULL, 0);
    ASSERT_MSG(k >= 0, "eng_tokenize: %s", nib_strerror(k));
    int32_t *ids = nib_malloc((size_t)(k + 1) * sizeof *ids);
    int k2 = eng_tokenize(v, s, len, flags, ids, k);
    ASSERT_EQ(k2, k);
    *n = k;
    return ids;
}

/* Concatenated pieces (new buffer, caller frees). */
static char *detokenize(const eng_vocab *v, const int32_t *ids, int n,
                        bool special, size_t *len) {
    size_t cap = 64, used = 0;
    char *out = nib_malloc(cap);
    for (int i = 0; i < n; i++) {
        int k = eng_token_piece(v, ids[i], special, NULL, 0);
        ASSERT_MSG(k >= 0, "piece of %d: %d", ids[i], k);
        while (used + (size_t)k + 1 > cap)
            out = nib_realloc(out, cap *= 2);
        ASSERT_EQ(eng_token_piece(v, ids[i], special, out + used, k), k);
        used += (size_t)k;
    }
    out[used] = 0;
    *len = used;
    return out;
}

static void print_ids(const char *label, const int32_t *ids, int n) {
    fprintf(stderr, "  %s (%d):", label, n);
    for (int i = 0; i < n; i++)
        fprintf(stderr, " %d", ids[i]);
    fprintf(stderr, "\n");
}

static bool is_spm(const eng_vocab *v) {
    return strcmp(eng_vocab_type(v), "llama") == 0;
}

/* What one code point unit decodes to when tokenized alone (new buffer). */
static char *unit_decoded(const eng_vocab *v, const char *u, size_t n,
                          size_t *dlen) {
    int32_t ids[16];
    int k = eng_tokenize(v, u, n, 0, ids, 16);
    ASSERT(k >= 0 && k <= 16);
    return detokenize(v, ids, k, false, dlen);
}

/* Decoding the tokens of `s` gives back exactly `s`. SentencePiece adds its
 * leading space. A byte-level vocab may lack tokens for some bytes: an
 * invalid UTF-8 byte then comes back as U+FFFD (as llama.cpp turns every
 * invalid byte into U+FFFD) and a valid one is dropped (as in llama.cpp);
 * so for units that do not come back alone, expect what they give alone. */
static void check_round_trip(const eng_vocab *v, const char *s, size_t len) {
    int n;
    int32_t *ids = tokenize(v, s, len, 0, &n);
    size_t dlen;
    char *d = detokenize(v, ids, n, false, &dlen);
    char *want = nib_malloc(3 * len + 2);
    size_t wlen = 0;
    if (is_spm(v) && len > 0)
        want[wlen++] = ' ';
    for (size_t i = 0; i < len;) {
        int k;
        eng_utf8_decode(s + i, len - i, &k);
        size_t ulen;
        char *ud = is_spm(v) ? NULL : unit_decoded(v, s + i, (size_t)k, &ulen);
        if (ud && (ulen != (size_t)k || memcmp(ud, s + i, ulen) != 0)) {
            ASSERT_LE(ulen, 3);
            memcpy(want + wlen, ud, ulen);
            wlen += ulen;
        } else {
            memcpy(want + wlen, s + i, (size_t)k);
            wlen += (size_t)k;
        }
        nib_free(ud);
        i += (size_t)k;
    }
    if (dlen != wlen || memcmp(d, want, wlen) != 0) {
        fprintf(stderr, "%s: round trip differs for \"%.*s\": got \"%s\"\n",
                eng_vocab_pre(v), (int)len, s, d);
        ASSERT(0);
    }
    nib_free(want);
    nib_free(d);
    nib_free(ids);
}

/* ---- llama.cpp's tokenizer test vectors ---------------------------------- */

static int run_vectors(const char *name) {
    char rel[128];
    snprintf(rel, sizeof rel, "vocab/ggml-vocab-%s.gguf", name);
    const char *p = test_shared(rel);
    if (!p)
        TEST_SKIP("../shared/%s absent", rel);
    char path[1024];
    snprintf(path, sizeof path, "%s", p);
    eng_vocab *v = open_vocab(path);

    char inp_path[1100], out_path[1100];
    snprintf(inp_path, sizeof inp_path, "%s.inp", path);
    snprintf(out_path, sizeof out_path, "%s.out", path);
    char *inp, *outs;
    size_t inp_len, out_len;
    ASSERT_OK(nib_read_file(inp_path, &inp, &inp_len));
    ASSERT_OK(nib_read_file(out_path, &outs, &out_len));

    static const char sep[] = "\n__ggml_vocab_test__\n";
    char *s = inp, *line = outs;
    int n_cases = 0, n_bad = 0;
    for (;;) {
        char *e = strstr(s, sep);
        if (!e)
            break;
        size_t len = (size_t)(e - s);
        char *nl = strchr(line, '\n');
        ASSERT_MSG(nl != NULL, "%s: fewer .out lines than strings", name);
        *nl = 0;
        int32_t want[1024];
        int nw = 0;
        for (char *q = line; *q;) {
            char *end;
            long id = strtol(q, &end, 10);
            if (end == q)
                break;
            ASSERT_LT(nw, 1024);
            want[nw++] = (int32_t)id;
            q = end;
        }
        int n;
        int32_t *got = tokenize(v, s, len, 0, &n);
        if (n != nw || memcmp(got, want, (size_t)n * sizeof *got) != 0) {
            fprintf(stderr, "%s: mismatch for \"%.*s\"\n", name, (int)len, s);
            print_ids("expected", want, nw);
            print_ids("got     ", got, n);
            n_bad++;
        }
        nib_free(got);
        check_round_trip(v, s, len);
        n_cases++;
        s = e + strlen(sep);
        line = nl + 1;
    }
    ASSERT_GT(n_cases, 10);
    ASSERT_EQ(n_bad, 0);
    nib_free(inp);
    nib_free(outs);
    eng_vocab_delete(v);
    return 0;
}

TEST_IMPL(vocab_vectors_qwen2) {
    return run_vectors("qwen2");
}
TEST_IMPL(vocab_vectors_starcoder) {
    return run_vectors("starcoder");
}
TEST_IMPL(vocab_vectors_deepseek_coder) {
    return run_vectors("deepseek-coder");
}
TEST_IMPL(vocab_vectors_refact) {
    return run_vectors("refact");
}
TEST_IMPL(vocab_vectors_gpt2) {
    return run_vectors("gpt-2");
}
TEST_IMPL(vocab_vectors_falcon) {
    return run_vectors("falcon");
}
TEST_IMPL(vocab_vectors_llama_spm) {
    return run_vectors("llama-spm");
}

/* ---- golden prompts ------------------------------------------------------ */

TEST_IMPL(vocab_golden_prompts) {
    const char *dir = test_shared_dir();
    if (!dir)
        TEST_SKIP("../shared absent");
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "ls '%s'/golden/*.json", dir);
    char *list;
    size_t list_len;
    ASSERT_EQ(test_run_capture(cmd, &list, &list_len), 0);
    int n_files = 0;
    for (char *f = strtok(list, "\n"); f; f = strtok(NULL, "\n")) {
        json_error_t jerr;
        json_t *root = json_load_file(f, 0, &jerr);
        ASSERT_MSG(root != NULL, "%s: %s", f, jerr.text);
        const char *model = json_string_value(json_object_get(root, "model"));
        json_t *prompt = json_object_get(root, "prompt");
        json_t *toks = json_object_get(root, "prompt_tokens");
        if (!model || !json_is_string(prompt) || !json_is_array(toks)) {
            json_decref(root);
            continue;
        }
        char rel[256];
        snprintf(rel, sizeof rel, "models/%s", model);
        const char *mp = test_shared(rel);
        ASSERT_MSG(mp != NULL, "%s names a missing model", f);
        eng_vocab *v = open_vocab(mp);
        int n;
        int32_t *got =
            tokenize(v, json_string_value(prompt), json_string_length(prompt),
                     ENG_TOKENIZE_ADD_SPECIAL | ENG_TOKENIZE_PARSE_SPECIAL, &n);
        int nw = (int)json_array_size(toks);
        int32_t *want = nib_malloc((size_t)(nw + 1) * sizeof *want);
        for (int i = 0; i < nw; i++)
            want[i] = (int32_t)json_integer_value(json_array_get(toks, i));
        if (n != nw || memcmp(got, want, (size_t)n * sizeof *got) != 0) {
            fprintf(stderr, "%s: prompt tokens differ\n", f);
            print_ids("expected", want, nw);
            print_ids("got     ", got, n);
            ASSERT(0);
        }
        /* llama.cpp stops its greedy run at end-of-generation tokens, so
         * a full 32-token run holds none of ours either; every token
         * decodes. */
        json_t *greedy = json_object_get(root, "greedy");
        size_t gi;
        json_t *gt;
        json_array_foreach(greedy, gi, gt) {
            int32_t id = (int32_t)json_integer_value(gt);
            ASSERT_GE(eng_token_piece(v, id, true, NULL, 0), 0);
            if (json_array_size(greedy) == 32 ||
                gi + 1 < json_array_size(greedy))
                ASSERT_MSG(!eng_token_is_eog(v, id), "%s: greedy token %d", f,
                           id);
        }
        nib_free(want);
        nib_free(got);
        eng_vocab_delete(v);
        json_decref(root);
        n_files++;
    }
    ASSERT_GT(n_files, 10);
    nib_free(list);
    return 0;
}

/* ---- special ids, EOG, FIM parsing --------------------------------------- */

TEST_IMPL(vocab_special_ids) {
    const char *p = test_shared("vocab/ggml-vocab-starcoder.gguf");
    if (!p)
        TEST_SKIP("../shared/vocab absent");

    eng_vocab *v = open_vocab(p);
    ASSERT_STR_EQ(eng_vocab_type(v), "gpt2");
    ASSERT_STR_EQ(eng_vocab_pre(v), "starcoder");
    ASSERT_EQ(eng_vocab_n_tokens(v), 49152);
    ASSERT_EQ(eng_token_special(v, ENG_TOK_BOS), 0);
    ASSERT_EQ(eng_token_special(v, ENG_TOK_EOS), 0);
    ASSERT_EQ(eng_token_special(v, ENG_TOK_EOT), 0);
    ASSERT_EQ(eng_token_special(v, ENG_TOK_FIM_PRE), 1);
    ASSERT_EQ(eng_token_special(v, ENG_TOK_FIM_MID), 2);
    ASSERT_EQ(eng_token_special(v, ENG_TOK_FIM_SUF), 3);
    ASSERT_EQ(eng_token_special(v, ENG_TOK_FIM_PAD), 4);
    /* llama.cpp knows <|repo_name|> and <|file_sep|>, not StarCoder's
     * <repo_name> / <file_sep>. */
    ASSERT_EQ(eng_token_special(v, ENG_TOK_FIM_REP), -1);
    ASSERT_EQ(eng_token_special(v, ENG_TOK_FIM_SEP), -1);
    ASSERT(eng_token_is_eog(v, 0));
    ASSERT(eng_token_is_eog(v, 4));
    ASSERT(!eng_token_is_eog(v, 1));
    ASSERT(!eng_token_is_eog(v, 100));
    eng_vocab_print_info(v, stderr);
    eng_vocab_delete(v);

    p = test_shared("vocab/ggml-vocab-deepseek-coder.gguf");
    ASSERT(p);
    v = open_vocab(p);
    ASSERT_EQ(eng_token_special(v, ENG_TOK_BOS), 32013);
    ASSERT_EQ(eng_token_special(v, ENG_TOK_EOS), 32014);
    ASSERT_EQ(eng_token_special(v, ENG_TOK_EOT), 32014);
    ASSERT_EQ(eng_token_special(v, ENG_TOK_PAD), 32014);
    ASSERT_EQ(eng_token_special(v, ENG_TOK_FIM_PRE), 32016);
    ASSERT_EQ(eng_token_special(v, ENG_TOK_FIM_SUF), 32015);
    ASSERT_EQ(eng_token_special(v, ENG_TOK_FIM_MID), 32017);
    ASSERT_EQ(eng_token_special(v, ENG_TOK_FIM_PAD), -1);
    ASSERT(eng_token_is_eog(v, 32014));
    ASSERT(!eng_token_is_eog(v, 32013));
    ASSERT(!eng_token_is_eog(v, 32016));
    eng_vocab_print_info(v, stderr);
    eng_vocab_delete(v);

    p = test_shared("vocab/ggml-vocab-qwen2.gguf");
    ASSERT(p);
    v = open_vocab(p);
    ASSERT_EQ(eng_token_special(v, ENG_TOK_EOS), 151643);
    ASSERT_EQ(eng_token_special(v, ENG_TOK_FIM_PRE), 151659);
    ASSERT_EQ(eng_token_special(v, ENG_TOK_FIM_MID), 151660);
    ASSERT_EQ(eng_token_special(v, ENG_TOK_FIM_SUF), 151661);
    ASSERT_EQ(eng_token_special(v, ENG_TOK_FIM_PAD), 151662);
    ASSERT_EQ(eng_token_special(v, ENG_TOK_FIM_REP), 151663);
    ASSERT_EQ(eng_token_special(v, ENG_TOK_FIM_SEP), 151664);
    ASSERT_STR_EQ(eng_token_text(v, 151664), "<|file_sep|>");
    /* <|endoftext|>, <|im_end|>, FIM pad / repo / file-sep end generation. */
    static const int32_t eog[] = {151643, 151645, 151662, 151663, 151664};
    for (size_t i = 0; i < NIB_ARRAY_LEN(eog); i++)
        ASSERT_MSG(eng_token_is_eog(v, eog[i]), "%d", eog[i]);
    ASSERT(!eng_token_is_eog(v, 151644)); /* <|im_start|> */
    ASSERT(!eng_token_is_eog(v, 151659));
    ASSERT(eng_token_is_eog(v, eng_token_special(v, ENG_TOK_EOT)));
    ASSERT_EQ(eng_token_special(v, 99), -1);
    ASSERT(eng_token_text(v, -1) == NULL);
    ASSERT(eng_token_text(v, 151936) == NULL);
    eng_vocab_delete(v);
    return 0;
}

TEST_IMPL(vocab_parse_special) {
    const char *p = test_shared("vocab/ggml-vocab-qwen2.gguf");
    if (!p)
        TEST_SKIP("../shared/vocab absent");
    eng_vocab *v = open_vocab(p);
    static const char fim[] = "<|fim_prefix|>a<|fim_suffix|>b<|fim_middle|>";
    int n;
    int32_t *ids =
        tokenize(v, fim, strlen(fim), ENG_TOKENIZE_PARSE_SPECIAL, &n);
    ASSERT_EQ(n, 5);
    ASSERT_EQ(ids[0], 151659);
    ASSERT_EQ(ids[2], 151661);
    ASSERT_EQ(ids[4], 151660);
    /* Qwen's FIM tokens are user-defined in the file (and, their ids
     * coming from metadata, llama.cpp leaves them so): they are matched and
     * decoded even without the special flags. */
    char buf[64];
    ASSERT_EQ(eng_token_piece(v, 151659, false, buf, sizeof buf), 14);
    ASSERT_MEM_EQ(buf, "<|fim_prefix|>", 14);
    size_t dlen;
    char *d = detokenize(v, ids, n, false, &dlen);
    ASSERT_STR_EQ(d, fim);
    nib_free(d);
    nib_free(ids);
    ids = tokenize(v, fim, strlen(fim), 0, &n);
    ASSERT_EQ(n, 5);
    ASSERT_EQ(ids[0], 151659);
    nib_free(ids);

    /* Control tokens: only with PARSE_SPECIAL, pieces only when asked. */
    static const char eot[] = "a<|endoftext|>";
    ids = tokenize(v, eot, strlen(eot), ENG_TOKENIZE_PARSE_SPECIAL, &n);
    ASSERT_EQ(n, 2);
    ASSERT_EQ(ids[1], 151643);
    ASSERT_EQ(eng_token_piece(v, 151643, false, buf, sizeof buf), 0);
    ASSERT_EQ(eng_token_piece(v, 151643, true, buf, sizeof buf), 13);
    nib_free(ids);
    ids = tokenize(v, eot, strlen(eot), 0, &n);
    ASSERT_GT(n, 2);
    for (int i = 0; i < n; i++)
        ASSERT_LT(ids[i], 151643);
    d = detokenize(v, ids, n, false, &dlen);
    ASSERT_STR_EQ(d, eot);
    nib_free(d);
    nib_free(ids);

    /* User-defined tokens are always matched ("<tool_call>"). */
    ids = tokenize(v, "x<tool_call>y", 13, 0, &n);
    ASSERT_EQ(n, 3);
    ASSERT_EQ(ids[1], 151657);
    nib_free(ids);

    /* A too-small buffer: the length comes back, nothing is written. */
    int k = eng_token_piece(v, 151657, false, buf, 3);
    ASSERT_EQ(k, 11);
    ASSERT_EQ(eng_token_piece(v, -1, true, buf, 3), NIB_EINVAL);
    ASSERT_EQ(eng_token_piece(v, 151936, true, buf, 3), NIB_EINVAL);
    /* Partial output: the full count is returned. */
    int32_t two[2];
    ASSERT_EQ(eng_tokenize(v, "hello world foo bar", 19, 0, two, 2), 4);
    eng_vocab_delete(v);

    /* SentencePiece: BOS with ADD_SPECIAL, a space after special tokens. */
    p = test_shared("vocab/ggml-vocab-llama-spm.gguf");
    ASSERT(p);
    v = open_vocab(p);
    ids = tokenize(v, "Hello", 5, ENG_TOKENIZE_ADD_SPECIAL, &n);
    ASSERT_EQ(n, 2);
    ASSERT_EQ(ids[0], 1);
    nib_free(ids);
    ASSERT_EQ(eng_tokenize(v, "", 0, ENG_TOKENIZE_ADD_SPECIAL, NULL, 0), 1);
    ASSERT_EQ(eng_tokenize(v, "", 0, 0, NULL, 0), 0);
    int32_t *a = tokenize(v, "</s>Hello", 9, ENG_TOKENIZE_PARSE_SPECIAL, &n);
    int m;
    int32_t *b = tokenize(v, "Hello", 5, 0, &m);
    ASSERT_EQ(n, m + 1);
    ASSERT_EQ(a[0], 2);
    ASSERT_MEM_EQ(a + 1, b, (size_t)m * sizeof *b);
    nib_free(a);
    nib_free(b);
    eng_vocab_delete(v);
    return 0;
}

/* ---- robustness and speed ------------------------------------------------ */

TEST_IMPL(vocab_invalid_utf8) {
    static const char *const names[] = {"qwen2",  "starcoder", "deepseek-coder",
                                        "falcon", "gpt-2",     "llama-spm",
                                        "refact"};
    static const char *const cases[] = {
        "\xff",
        "\x80",
        "abc\xc3",
        "\xc3(",
        "\xe6\x97",
        "\xe6\x97\xa5\xe6",
        "x\xf0\x9f\x9a",
        "\xed\xa0\x80",
        "\xc0\xaf overlong",
        "\xf8\x88\x80",
        "\xf5\x80\x80\x80 big",
        " \xa0\xa0 ",
        "'\xff's",
        "\xfe\xfe\xfe\xfe",
    };
    if (!test_shared("vocab/ggml-vocab-qwen2.gguf"))
        TEST_SKIP("../shared/vocab absent");
    uint64_t seed = 0x9e3779b97f4a7c15ull;
    for (size_t k = 0; k < NIB_ARRAY_LEN(names); k++) {
        char rel[128];
        snprintf(rel, sizeof rel, "vocab/ggml-vocab-%s.gguf", names[k]);
        eng_vocab *v = open_vocab(test_shared(rel));
        for (size_t i = 0; i < NIB_ARRAY_LEN(cases); i++)
            check_round_trip(v, cases[i], strlen(cases[i]));
        /* Random bytes, biased toward UTF-8 lead and continuation bytes. */
        for (int t = 0; t < 50; t++) {
            char buf[64];
            size_t len = 1 + t % 63;
            for (size_t i = 0; i < len; i++) {
                seed = seed * 6364136223846793005ull + 1442695040888963407ull;
                unsigned x = (unsigned)(seed >> 33);
                buf[i] = (char)(x % 3 == 0   ? 0x80 + x % 0x80
                                : x % 3 == 1 ? 0xC0 + x % 0x40
                                             : x % 0x80);
            }
            check_round_trip(v, buf, len);
        }
        eng_vocab_delete(v);
    }
    return 0;
}

TEST_IMPL(vocab_speed_10k) {
    const char *p = test_shared("vocab/ggml-vocab-qwen2.gguf");
    if (!p)
        TEST_SKIP("../shared/vocab absent");
    eng_vocab *v = open_vocab(p);
    /* 10 KB of code-like text, plus one long run without spaces and a
     * long whitespace run, the worst cases for merge loops. */
    static const char line[] =
        "    for (int i = 0; i < n_tokens; i++) { sum += x[i] * 3.14159; }\n";
    size_t cap = 16 * 1024;
    char *text = nib_malloc(cap);
    size_t len = 0;
    while (len + sizeof line < 10000) {
        memcpy(text + len, line, sizeof line - 1);
        len += sizeof line - 1;
    }
    for (int i = 0; i < 2000; i++)
        text[len++] = (char)('a' + i % 26);
    for (int i = 0; i < 2000; i++)
        text[len++] = ' ';
    uint64_t t0 = nib_now_ns();
    int n = eng_tokenize(v, text, len, ENG_TOKENIZE_PARSE_SPECIAL, NULL, 0);
    uint64_t dt = nib_now_ns() - t0;
    ASSERT_GT(n, 1000);
    fprintf(stderr, "tokenized %zu bytes into %d tokens in %.2f ms\n", len, n,
            (double)dt / 1e6);
    /* A few ms is the goal; the bound leaves room for sanitizers and a
     * loaded CI machine. */
    ASSERT_LT(dt, 500 * 1000 * 1000ull);
    check_round_trip(v, text, len);
    nib_free(text);
    eng_vocab_delete(v);
    return 0;
}

/* ---- Unicode ------------------------------------------------------------ */

TEST_IMPL(vocab_unicode_classes) {
    ASSERT(eng_uni_flags('a') & ENG_UNI_LETTER);
    ASSERT(eng_uni_flags('Z') & ENG_UNI_LETTER);
    ASSERT(eng_uni_flags('7') & ENG_UNI_NUMBER);
    ASSERT(eng_uni_flags(' ') & ENG_UNI_WHITESPACE);
    ASSERT(eng_uni_flags('\t') & ENG_UNI_WHITESPACE);
    ASSERT(eng_uni_flags('\n') & ENG_UNI_WHITESPACE);
    ASSERT(!(eng_uni_flags('_') & ENG_UNI_WHITESPACE));
    ASSERT(eng_uni_flags('_') & ENG_UNI_PUNCT);
    ASSERT(eng_uni_flags('$') & ENG_UNI_SYMBOL);
    ASSERT(eng_uni_flags('~') & ENG_UNI_SYMBOL);
    ASSERT(eng_uni_flags(0x00A0) & ENG_UNI_WHITESPACE);    /* NBSP */
    ASSERT(eng_uni_flags(0x3000) & ENG_UNI_WHITESPACE);    /* ideographic sp */
    ASSERT(eng_uni_flags(0x0085) & ENG_UNI_WHITESPACE);    /* NEL */
    ASSERT(!(eng_uni_flags(0x200B) & ENG_UNI_WHITESPACE)); /* ZWSP: Cf */
    ASSERT(eng_uni_flags(0x00E9) & ENG_UNI_LETTER);        /* é */
    ASSERT(eng_uni_flags(0x65E5) & ENG_UNI_LETTER);        /* 日 */
    ASSERT(eng_uni_flags(0x4E00) & ENG_UNI_LETTER);        /* CJK range start */
    ASSERT(eng_uni_flags(0xAC00) & ENG_UNI_LETTER);        /* 가 */
    ASSERT(eng_uni_flags(0x0663) & ENG_UNI_NUMBER);        /* ٣ */
    ASSERT(eng_uni_flags(0x00BD) & ENG_UNI_NUMBER);        /* ½ */
    ASSERT(eng_uni_flags(0x2167) & ENG_UNI_NUMBER);        /* Ⅷ (Nl) */
    ASSERT(eng_uni_flags(0x1F680) & ENG_UNI_SYMBOL);       /* 🚀 */
    ASSERT(eng_uni_flags(0x0301) & ENG_UNI_MARK);          /* combining acute */
    ASSERT(eng_uni_flags(0x00BF) & ENG_UNI_PUNCT);         /* ¿ */
    ASSERT(eng_uni_flags(0x2014) & ENG_UNI_PUNCT);         /* — */
    ASSERT(eng_uni_flags(0xFFFD) & ENG_UNI_SYMBOL);
    ASSERT(eng_uni_flags(0xE000) & ENG_UNI_CONTROL);   /* private use */
    ASSERT(eng_uni_flags(0x0378) & ENG_UNI_UNDEFINED); /* unassigned */
    ASSERT(eng_uni_flags(0x10FFFF) & ENG_UNI_UNDEFINED);
    ASSERT_EQ(eng_uni_flags(0x110000), 0);
    return 0;
}

TEST_IMPL(vocab_utf8_and_bytes) {
    int n;
    ASSERT_EQ(eng_utf8_decode("\xc3\xa9", 2, &n), 0xE9);
    ASSERT_EQ(n, 2);
    ASSERT_EQ(eng_utf8_decode("\xf0\x9f\x9a\x80", 4, &n), 0x1F680);
    ASSERT_EQ(n, 4);
    /* Truncated and invalid sequences: one byte at a time, never past len. */
    ASSERT_EQ(eng_utf8_decode("\xf0\x9f\x9a", 3, &n), ENG_UNI_REPLACEMENT);
    ASSERT_EQ(n, 1);
    ASSERT_EQ(eng_utf8_decode("\x80", 1, &n), ENG_UNI_REPLACEMENT);
    ASSERT_EQ(n, 1);
    ASSERT_EQ(eng_utf8_decode("\xc3(", 2, &n), ENG_UNI_REPLACEMENT);
    ASSERT_EQ(n, 1);
    ASSERT_EQ(eng_utf8_decode("\xff\x80\x80\x80", 4, &n), ENG_UNI_REPLACEMENT);
    ASSERT_EQ(n, 1);
    char buf[4];
    ASSERT_EQ(eng_utf8_encode(0x1F680, buf), 4);
    ASSERT_MEM_EQ(buf, "\xf0\x9f\x9a\x80", 4);
    /* GPT-2 byte map: a bijection; space is U+0120 'Ġ', newline U+010A. */
    for (int b = 0; b < 256; b++)
        ASSERT_EQ(eng_cpt_to_byte(eng_byte_to_cpt((uint8_t)b)), b);
    ASSERT_EQ(eng_byte_to_cpt(' '), 0x120);
    ASSERT_EQ(eng_byte_to_cpt('\n'), 0x10A);
    ASSERT_EQ(eng_byte_to_cpt('a'), 'a');
    ASSERT_EQ(eng_cpt_to_byte(0x2581), -1);
    return 0;
}

/* ---- DeepSeek FIM, errors, threads --------------------------------------- */

TEST_IMPL(vocab_deepseek_fim) {
    const char *p = test_shared("vocab/ggml-vocab-deepseek-coder.gguf");
    if (!p)
        TEST_SKIP("../shared/vocab absent");
    eng_vocab *v = open_vocab(p);
    /* The FIM tokens are user-defined in the file; llama.cpp finds them by
     * text and makes them control tokens, so they are special-only. */
    static const char fim[] = "<\xef\xbd\x9c"
                              "fim\xe2\x96\x81"
                              "begin"
                              "\xef\xbd\x9c>x";
    int n;
    int32_t *ids =
        tokenize(v, fim, strlen(fim),
                 ENG_TOKENIZE_ADD_SPECIAL | ENG_TOKENIZE_PARSE_SPECIAL, &n);
    ASSERT_EQ(n, 3);
    ASSERT_EQ(ids[0], 32013); /* BOS: add_bos_token is true */
    ASSERT_EQ(ids[1], 32016);
    nib_free(ids);
    ids = tokenize(v, fim, strlen(fim), 0, &n);
    ASSERT_GT(n, 2);
    for (int i = 0; i < n; i++)
        ASSERT_NE(ids[i], 32016);
    nib_free(ids);
    char buf[64];
    ASSERT_EQ(eng_token_piece(v, 32016, false, buf, sizeof buf), 0);
    eng_vocab_delete(v);
    return 0;
}

TEST_IMPL(vocab_open_errors) {
    char err[256] = "";
    eng_vocab *v = (eng_vocab *)1;
    ASSERT_EQ(eng_vocab_open("/nonexistent/x.gguf", &v, err, sizeof err),
              NIB_ENOENT);
    ASSERT(v == NULL);
    eng_vocab_delete(NULL);
    return 0;
}

#include <pthread.h>

typedef struct {
    const eng_vocab *v;
    const char *text;
    size_t len;
    int32_t *ids;
    int n;
} thread_job;

static void *tokenize_thread(void *arg) {
    thread_job *j = arg;
    for (int it = 0; it < 20; it++) {
        int n = eng_tokenize(j->v, j->text, j->len, ENG_TOKENIZE_PARSE_SPECIAL,
                             j->ids, j->n);
        if (n != j->n)
            j->n = -1;
    }
    return NULL;
}

TEST_IMPL(vocab_threads) {
    const char *p = test_shared("vocab/ggml-vocab-qwen2.gguf");
    const char *q = test_shared("prompts/long1.txt");
    if (!p || !q)
        TEST_SKIP("../shared absent");
    char *text;
    size_t len;
    ASSERT_OK(nib_read_file(q, &text, &len));
    eng_vocab *v = open_vocab(test_shared("vocab/ggml-vocab-qwen2.gguf"));
    int n;
    int32_t *want = tokenize(v, text, len, ENG_TOKENIZE_PARSE_SPECIAL, &n);
    enum { NT = 4 };
    pthread_t th[NT];
    thread_job jobs[NT];
    for (int i = 0; i < NT; i++) {
        jobs[i] = (thread_job){v, text, len,
                               nib_malloc((size_t)n * sizeof(int32_t)), n};
        ASSERT_EQ(pthread_create(&th[i], NULL, tokenize_thread, &jobs[i]), 0);
    }
    for (int i = 0; i < NT; i++) {
        ASSERT_EQ(pthread_join(th[i], NULL), 0);
        ASSERT_EQ(jobs[i].n, n);
        ASSERT_MEM_EQ(jobs[i].ids, want, (size_t)n * sizeof *want);
        nib_free(jobs[i].ids);
    }
    nib_free(want);
    nib_free(text);
    eng_vocab_delete(v);
    return 0;
}

/* ---- pre-tokenizers without a test vocab ------------------------------ */

#include "engine/vocab_pre.h"

/* Llama-3 (llama-bpe) and the default list have no vocab in ../shared;
 * the expected words come from the same regexes run by Python's `regex`
 * module (words joined by '|'). */
TEST_IMPL(vocab_pre_split) {
    static const struct {
        eng_pre_kind kind;
        const char *text, *words;
    } cases[] = {
        {ENG_PRE_LLAMA3, "x = 1234567; y='DON'T'  \n\n  z",
         "x| =| |123|456|7|;| y|='|DON|'T|'|  \n\n| | z"},
        {ENG_PRE_LLAMA3, "Hello, world!!  \t 日本語 ٣٤٥٦ ½",
         "Hello|,| world|!!|  \t| 日本語| |٣٤٥|٦| |½"},
        {ENG_PRE_LLAMA3, "a+=b<=c `d` 12345", "a|+=|b|<=|c| `|d|`| |123|45"},
        {ENG_PRE_DEFAULT, "x = 1234567; y='DON'T'  \n\n  z",
         "x| |=| |123|456|7|;| y|='|DON|'|T|'|  \n\n | z"},
        {ENG_PRE_DEFAULT, "Hello, world!!  \t 日本語 ٣٤٥٦ ½",
         "Hello|,| world|!!|  \t| 日本語| |٣٤٥٦| |½"},
        {ENG_PRE_DEFAULT, "a+=b<=c `d` 12345", "a|+=|b|<=|c| `|d|`| |123|45"},
    };
    eng_pre_units u = {0};
    for (size_t i = 0; i < NIB_ARRAY_LEN(cases); i++) {
        const char *t = cases[i].text;
        ASSERT_OK(eng__pre_decode(&u, t, strlen(t)));
        ASSERT_OK(eng__pre_split(&u, cases[i].kind));
        char got[256];
        size_t k = 0, start = 0;
        for (size_t w = 0; w < u.n_ends; w++) {
            if (w)
                got[k++] = '|';
            size_t b0 = u.boff[start], b1 = u.boff[u.ends[w]];
            ASSERT_LT(k + (b1 - b0), sizeof got);
            memcpy(got + k, t + b0, b1 - b0);
            k += b1 - b0;
            start = u.ends[w];
        }
        got[k] = 0;
        ASSERT_STR_EQ(got, cases[i].words);
    }
    eng__pre_free(&u);
    return 0;
}

/* ---- synthetic vocabs: metadata errors, Llama-3's ignore_merges --------- */

#include "engine/gguf_write.h"
#include "engine/vocab.h"

/* A byte-level vocab: the 256 byte tokens (ids 0..255 in byte order), then
 * `extra` texts; merges as given. */
static eng_gguf_w *bpe_writer(const char *pre, const char *const *extra,
                              int n_extra, const char *const *merges,
                              int n_merges) {
    eng_gguf_w *w = eng_gguf_w_new();
    const char *toks[256 + 16];
    char store[256][5];
    for (int b = 0; b < 256; b++) {
        int k = eng_utf8_encode(eng_byte_to_cpt((uint8_t)b), store[b]);
        store[b][k] = 0;
        toks[b] = store[b];
    }
    ASSERT_LE(n_extra, 16);
    for (int i = 0; i < n_extra; i++)
        toks[256 + i] = extra[i];
    ASSERT_OK(eng_gguf_w_set_str(w, "tokenizer.ggml.model", "gpt2"));
    ASSERT_OK(eng_gguf_w_set_str(w, "tokenizer.ggml.pre", pre));
    ASSERT_OK(eng_gguf_w_set_str_arr(w, "tokenizer.ggml.tokens", toks,
                                     (uint64_t)(256 + n_extra)));
    ASSERT_OK(eng_gguf_w_set_str_arr(w, "tokenizer.ggml.merges", merges,
                                     (uint64_t)n_merges));
    return w;
}

/* Write w to a file, load its vocab; returns the error (0 with *out set). */
static int load_written(eng_gguf_w *w, eng_vocab **out, char *err,
                        size_t err_size) {
    char path[512];
    snprintf(path, sizeof path, "%s/vocab.gguf", test_tmpdir());
    FILE *f = fopen(path, "wb");
    ASSERT(f != NULL);
    ASSERT_OK(eng_gguf_w_write_header(w, f));
    ASSERT_OK(eng_gguf_w_finish(w, f));
    fclose(f);
    eng_gguf_w_delete(w);
    return eng_vocab_open(path, out, err, err_size);
}

TEST_IMPL(vocab_bad_metadata) {
    static const char *const merges[] = {"a b"};
    char err[256];
    eng_vocab *v;

    eng_gguf_w *w = bpe_writer("gpt-2", NULL, 0, merges, 1);
    ASSERT_OK(eng_gguf_w_set_str(w, "tokenizer.ggml.model", "bert"));
    ASSERT_EQ(load_written(w, &v, err, sizeof err), NIB_EUNSUPPORTED);
    ASSERT(strstr(err, "bert") != NULL);

    w = bpe_writer("gpt-2", NULL, 0, merges, 1);
    ASSERT_OK(eng_gguf_w_remove(w, "tokenizer.ggml.merges"));
    ASSERT_EQ(load_written(w, &v, err, sizeof err), NIB_EBADMODEL);
    ASSERT(strstr(err, "merges") != NULL);

    w = bpe_writer("gpt-2", NULL, 0, merges, 1);
    float types[256] = {0};
    ASSERT_OK(eng_gguf_w_set_arr(w, "tokenizer.ggml.token_type",
                                 GGUF_TYPE_FLOAT32, types, 256));
    ASSERT_EQ(load_written(w, &v, err, sizeof err), NIB_EBADMODEL);
    ASSERT(strstr(err, "token_type") != NULL);

    w = bpe_writer("gpt-2", NULL, 0, merges, 1);
    ASSERT_OK(eng_gguf_w_set_arr(w, "tokenizer.ggml.scores", GGUF_TYPE_FLOAT32,
                                 types, 10));
    ASSERT_EQ(load_written(w, &v, err, sizeof err), NIB_EBADMODEL);
    ASSERT(strstr(err, "scores") != NULL);

    w = bpe_writer("gpt-2", NULL, 0, merges, 1);
    ASSERT_OK(eng_gguf_w_remove(w, "tokenizer.ggml.tokens"));
    ASSERT_EQ(load_written(w, &v, err, sizeof err), NIB_EBADMODEL);

    /* An unknown pre-tokenizer falls back to the default one. */
    w = bpe_writer("no-such-pre", NULL, 0, merges, 1);
    ASSERT_OK(load_written(w, &v, err, sizeof err));
    ASSERT_STR_EQ(eng_vocab_pre(v), "no-such-pre");
    eng_vocab_delete(v);
    return 0;
}

TEST_IMPL(vocab_llama3_ignore_merges) {
    /* "abc" is a token the merges cannot build: Llama-3 takes a word that
     * is a token whole; GPT-2 style merges "a b" and stops. */
    static const char *const extra[] = {"ab", "abc", "<|begin_of_text|>"};
    static const char *const merges[] = {"a b"};
    char err[256];
    eng_vocab *v;
    int n;

    eng_gguf_w *w = bpe_writer("llama-bpe", extra, 3, merges, 1);
    ASSERT_OK(eng_gguf_w_set_u32(w, "tokenizer.ggml.bos_token_id", 258));
    ASSERT_OK(load_written(w, &v, err, sizeof err));
    int32_t *ids = tokenize(v, "abc", 3, ENG_TOKENIZE_ADD_SPECIAL, &n);
    ASSERT_EQ(n, 2); /* llama-bpe adds BOS by default */
    ASSERT_EQ(ids[0], 258);
    ASSERT_EQ(ids[1], 257);
    nib_free(ids);
    eng_vocab_delete(v);

    w = bpe_writer("gpt-2", extra, 3, merges, 1);
    ASSERT_OK(eng_gguf_w_set_u32(w, "tokenizer.ggml.bos_token_id", 258));
    ASSERT_OK(load_written(w, &v, err, sizeof err));
    ids = tokenize(v, "abc", 3, ENG_TOKENIZE_ADD_SPECIAL, &n);
    ASSERT_EQ(n, 2); /* no BOS: gpt2 vocabs add none by default */
    ASSERT_EQ(ids[0], 256);
    ASSERT_EQ(ids[1], 'c'); /* byte tokens are ids 0..255 */
    nib_free(ids);
    eng_vocab_delete(v);
    return 0;
}
