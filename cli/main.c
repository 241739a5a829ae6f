/*
 * main.c — the nib command line. The only place that calls exit().
 *
 *   nib generate [-m MODEL] -p TEXT [-n N] [--temp T --top-k K --top-p P
 *                --min-p P --repeat-penalty R --seed S] [-t THREADS]
 *   nib eval     -m MODEL -f PROMPT_FILE [--top K] [-n N] [-t THREADS]
 *   nib tokenize -m MODEL -f FILE [--no-bos]
 *   nib info     -m MODEL
 *   nib lsp      [options]            (the language server)
 *   nib quantize | mkmodel | bench     (tools, in their own files)
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "engine/engine.h"
#if __has_include("lsp/lsp.h")
#include "lsp/lsp.h"
#define HAVE_LSP 1
#endif

static void usage(FILE *f) {
    fprintf(f,
            "nib — a private, local code assistant\n"
            "\n"
            "usage: nib <command> [options]\n"
            "\n"
            "commands:\n"
            "  lsp        run the language server on stdin/stdout\n"
            "  generate   complete a prompt: -p TEXT [-n N] [--temp T] "
            "[--top-k K]\n"
            "             [--top-p P] [--min-p P] [--repeat-penalty R] "
            "[--seed S]\n"
            "  eval       evaluate a prompt file and print logits as JSON: -f "
            "FILE\n"
            "             [--top K] [-n N]\n"
            "  tokenize   print the token ids of a file: -f FILE "
            "[--no-bos]\n"
            "  info       describe a model\n"
            "  quantize   IN.gguf OUT.gguf TYPE: convert a model to Q8_0, "
            "Q4_K_M, ...\n"
            "  mkmodel    a random-weight model of a real shape and "
            "vocabulary\n"
            "  bench      prompt, decode, bandwidth and KV-reuse figures as "
            "JSON\n"
            "\n"
            "common options:\n"
            "  -m MODEL   GGUF model file (default: $NIB_MODEL, else the "
            "model shipped\n"
            "             in nib's models/ folder)\n"
            "  -t N       threads (default: physical cores)\n");
}

/* ---- options ------------------------------------------------------------- */

typedef struct {
    const char *model;
    const char *file;
    const char *prompt;
    int n_predict;
    int top;
    int threads;
    bool no_bos;
    eng_sampler_params sp;
} options;

/* Returns 0 or 2 (usage error, message printed). */
static int parse_options(int argc, char **argv, options *o) {
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
#define NEED_VALUE()                                                           \
    do {                                                                       \
        if (!v) {                                                              \
            fprintf(stderr, "nib: option %s needs a value\n", a);              \
            return 2;                                                          \
        }                                                                      \
        i++;                                                                   \
    } while (0)
#define BAD_VALUE()                                                            \
    do {                                                                       \
        fprintf(stderr, "nib: invalid value '%s' for %s\n", v, a);             \
        return 2;                                                              \
    } while (0)
        int iv;
        float fv;
        if (!strcmp(a, "-m") || !strcmp(a, "--model")) {
            NEED_VALUE();
            o->model = v;
        } else if (!strcmp(a, "-f") || !strcmp(a, "--file")) {
            NEED_VALUE();
            o->file = v;
        } else if (!strcmp(a, "-p") || !strcmp(a, "--prompt")) {
            NEED_VALUE();
            o->prompt = v;
        } else if (!strcmp(a, "-n") || !strcmp(a, "--n-predict")) {
            NEED_VALUE();
            if (!cli_parse_int(v, 0, 1 << 20, &o->n_predict))
                BAD_VALUE();
        } else if (!strcmp(a, "--top")) {
            NEED_VALUE();
            if (!cli_parse_int(v, 1, 1 << 20, &o->top))
                BAD_VALUE();
        } else if (!strcmp(a, "-t") || !strcmp(a, "--threads")) {
            NEED_VALUE();
            if (!cli_parse_int(v, 1, 256, &o->threads))
                BAD_VALUE();
        } else if (!strcmp(a, "--no-bos")) {
            o->no_bos = true;
        } else if (!strcmp(a, "--temp")) {
            NEED_VALUE();
            if (!cli_parse_float(v, &o->sp.temperature))
                BAD_VALUE();
        } else if (!strcmp(a, "--top-k")) {
            NEED_VALUE();
            if (!cli_parse_int(v, 0, INT_MAX, &o->sp.top_k))
                BAD_VALUE();
        } else if (!strcmp(a, "--top-p")) {
            NEED_VALUE();
            if (!cli_parse_float(v, &fv) || fv <= 0 || fv > 1)
                BAD_VALUE();
            o->sp.top_p = fv;
        } else if (!strcmp(a, "--min-p")) {
            NEED_VALUE();
            if (!cli_parse_float(v, &fv) || fv < 0 || fv > 1)
                BAD_VALUE();
            o->sp.min_p = fv;
        } else if (!strcmp(a, "--repeat-penalty")) {
            NEED_VALUE();
            if (!cli_parse_float(v, &fv) || fv <= 0)
                BAD_VALUE();
            o->sp.repeat_penalty = fv;
        } else if (!strcmp(a, "--seed")) {
            NEED_VALUE();
            char *end;
            errno = 0;
            unsigned long long s = strtoull(v, &end, 10);
            if (errno || end == v || *end)
                BAD_VALUE();
            o->sp.seed = s;
        } else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            exit(0);
        } else {
            fprintf(stderr, "nib: unknown option '%s' (see nib --help)\n", a);
            return 2;
        }
        (void)iv;
#undef NEED_VALUE
#undef BAD_VALUE
    }
    return 0;
}

static const char *model_path(const options *o, char *buf, size_t n) {
    if (o->model)
        return o->model;
    return cli_default_model(buf, n) ? buf : NULL;
}

static eng_model *load_model(const options *o) {
    char buf[PATH_MAX];
    const char *path = model_path(o, buf, sizeof buf);
    if (!path) {
        fprintf(stderr, "nib: no model given: use -m MODEL.gguf or set "
                        "NIB_MODEL\n");
        return NULL;
    }
    char err[512] = "";
    eng_model *m;
    int r = eng_model_load(path, &m, err, sizeof err);
    if (r < 0) {
        fprintf(stderr, "nib: cannot load %s: %s\n", path,
                err[0] ? err : nib_strerror(r));
        return NULL;
    }
    return m;
}

/* Tokenize a whole buffer into a new array. */
static int tokenize_all(const eng_vocab *v, const char *text, size_t len,
                        int flags, int32_t **out) {
    int cap = (int)NIB_MIN(len + 16, (size_t)INT_MAX / 8);
    int32_t *toks = nib_malloc((size_t)cap * sizeof *toks);
    int n = eng_tokenize(v, text, len, flags, toks, cap);
    if (n > cap) {
        toks = nib_realloc(toks, (size_t)n * sizeof *toks);
        n = eng_tokenize(v, text, len, flags, toks, n);
    }
    if (n < 0) {
        nib_free(toks);
        return n;
    }
    *out = toks;
    return n;
}

/* ---- commands ------------------------------------------------------------ */

static int cmd_tokenize(const options *o) {
    if (!o->file) {
        fprintf(stderr, "nib tokenize: -f FILE is required\n");
        return 2;
    }
    char buf[PATH_MAX];
    const char *path = model_path(o, buf, sizeof buf);
    if (!path) {
        fprintf(stderr, "nib tokenize: -m MODEL is required\n");
        return 2;
    }
    char err[512] = "";
    eng_vocab *v;
    int r = eng_vocab_open(path, &v, err, sizeof err);
    if (r < 0) {
        fprintf(stderr, "nib: cannot load %s: %s\n", path,
                err[0] ? err : nib_strerror(r));
        return 1;
    }
    char *text;
    size_t len;
    if ((r = nib_read_file(o->file, &text, &len)) < 0) {
        fprintf(stderr, "nib: cannot read %s: %s\n", o->file, nib_strerror(r));
        eng_vocab_delete(v);
        return 1;
    }
    int flags = ENG_TOKENIZE_PARSE_SPECIAL |
                (o->no_bos ? 0 : ENG_TOKENIZE_ADD_SPECIAL);
    int32_t *toks;
    int n = tokenize_all(v, text, len, flags, &toks);
    if (n < 0) {
        fprintf(stderr, "nib: tokenize failed: %s\n", nib_strerror(n));
    } else {
        putchar('[');
        for (int i = 0; i < n; i++)
            printf(i ? ",%d" : "%d", toks[i]);
        printf("]\n");
        nib_free(toks);
    }
    nib_free(text);
    eng_vocab_delete(v);
    return n < 0;
}

static int cmd_info(const options *o) {
    eng_model *m = load_model(o);
    if (!m)
        return 1;
    eng_model_print_info(m, stdout);
    printf("kernels:         %s\n", eng_simd_name());
    eng_model_delete(m);
    return 0;
}

static int cmd_eval(const options *o) {
    if (!o->file) {
        fprintf(stderr, "nib eval: -f PROMPT_FILE is required\n");
        return 2;
    }
    char *text;
    size_t len;
    int r = nib_read_file(o->file, &text, &len);
    if (r < 0) {
        fprintf(stderr, "nib: cannot read %s: %s\n", o->file, nib_strerror(r));
        return 1;
    }
    eng_model *m = load_model(o);
    if (!m) {
        nib_free(text);
        return 1;
    }
    const eng_vocab *v = eng_model_vocab(m);
    int32_t *toks = NULL;
    int n = tokenize_all(v, text, len,
                         ENG_TOKENIZE_ADD_SPECIAL | ENG_TOKENIZE_PARSE_SPECIAL,
                         &toks);
    int rc = 1;
    eng_ctx *c = NULL;
    if (n <= 0) {
        fprintf(stderr, "nib: the prompt has no tokens\n");
        goto done;
    }
    int top = o->top > 0 ? o->top : 5;
    int n_gen = o->n_predict >= 0 ? o->n_predict : 32;
    eng_ctx_params cp = eng_ctx_default_params();
    cp.n_ctx = n + n_gen + 1;
    cp.n_batch = n; /* the whole prompt in one batch, as the goldens */
    cp.n_threads = o->threads;
    cp.logits_all = true;
    if ((r = eng_ctx_new(m, &cp, &c)) < 0) {
        fprintf(stderr, "nib: cannot create context: %s\n", nib_strerror(r));
        goto done;
    }
    if ((r = eng_eval(c, toks, n)) < 0) {
        fprintf(stderr, "nib: eval failed: %s\n", nib_strerror(r));
        goto done;
    }
    int n_vocab = eng_ctx_n_vocab(c);
    top = NIB_MIN(top, n_vocab);
    int *best = nib_malloc((size_t)top * sizeof *best);
    printf("{\"prompt_tokens\":[");
    for (int i = 0; i < n; i++)
        printf(i ? ",%d" : "%d", toks[i]);
    printf("],\"n_vocab\":%d,\"top_logits\":[", n_vocab);
    for (int i = 0; i < n; i++) {
        const float *lg = eng_ctx_logits(c, i);
        /* partial selection of the top entries, ties to the lower id */
        for (int k = 0; k < top; k++) {
            int b = -1;
            for (int t = 0; t < n_vocab; t++) {
                bool taken = false;
                for (int j = 0; j < k && !taken; j++)
                    taken = best[j] == t;
                if (!taken && (b < 0 || lg[t] > lg[b]))
                    b = t;
            }
            best[k] = b;
        }
        printf(i ? ",[" : "[");
        for (int k = 0; k < top; k++)
            printf(k ? ",[%d,%.5f]" : "[%d,%.5f]", best[k],
                   (double)lg[best[k]]);
        printf("]");
    }
    nib_free(best);
    printf("],\"greedy\":[");
    const float *lg = eng_ctx_logits(c, n - 1);
    for (int g = 0; g < n_gen; g++) {
        int32_t t = eng_argmax(lg, n_vocab);
        printf(g ? ",%d" : "%d", t);
        if (eng_token_is_eog(v, t) || g == n_gen - 1)
            break;
        if ((r = eng_eval(c, &t, 1)) < 0) {
            fprintf(stderr, "nib: eval failed: %s\n", nib_strerror(r));
            goto done;
        }
        lg = eng_ctx_logits(c, -1);
    }
    printf("]}\n");
    rc = 0;
done:
    eng_ctx_delete(c);
    nib_free(toks);
    nib_free(text);
    eng_model_delete(m);
    return rc;
}

static int cmd_generate(const options *o) {
    if (!o->prompt) {
        fprintf(stderr, "nib generate: -p TEXT is required\n");
        return 2;
    }
    eng_model *m = load_model(o);
    if (!m)
        return 1;
    const eng_vocab *v = eng_model_vocab(m);
    int32_t *toks = NULL;
    int n = tokenize_all(v, o->prompt, strlen(o->prompt),
                         ENG_TOKENIZE_ADD_SPECIAL | ENG_TOKENIZE_PARSE_SPECIAL,
                         &toks);
    int rc = 1, r;
    eng_ctx *c = NULL;
    eng_sampler *s = NULL;
    int n_gen = o->n_predict >= 0 ? o->n_predict : 128;
    if (n <= 0) {
        fprintf(stderr, "nib: the prompt has no tokens\n");
        goto done;
    }
    eng_ctx_params cp = eng_ctx_default_params();
    cp.n_threads = o->threads;
    if ((r = eng_ctx_new(m, &cp, &c)) < 0) {
        fprintf(stderr, "nib: cannot create context: %s\n", nib_strerror(r));
        goto done;
    }
    if (n >= eng_ctx_n_ctx(c)) {
        fprintf(stderr, "nib: the prompt (%d tokens) does not fit the context "
                        "(%d)\n",
                n, eng_ctx_n_ctx(c));
        goto done;
    }
    if ((r = eng_sampler_new(&o->sp, eng_ctx_n_vocab(c), &s)) < 0)
        goto done;
    uint64_t t0 = nib_now_ns();
    if ((r = eng_eval(c, toks, n)) < 0) {
        fprintf(stderr, "nib: eval failed: %s\n", nib_strerror(r));
        goto done;
    }
    uint64_t t1 = nib_now_ns();
    fwrite(o->prompt, 1, strlen(o->prompt), stdout);
    int g = 0;
    char piece[256];
    for (; g < n_gen && eng_ctx_n_past(c) < eng_ctx_n_ctx(c); g++) {
        int32_t t = eng_sample(s, eng_ctx_logits(c, -1), eng_ctx_tokens(c),
                               eng_ctx_n_past(c));
        if (eng_token_is_eog(v, t))
            break;
        int len = eng_token_piece(v, t, false, piece, sizeof piece);
        if (len > 0 && len <= (int)sizeof piece)
            fwrite(piece, 1, (size_t)len, stdout);
        fflush(stdout);
        if ((r = eng_eval(c, &t, 1)) < 0) {
            fprintf(stderr, "\nnib: eval failed: %s\n", nib_strerror(r));
            goto done;
        }
    }
    uint64_t t2 = nib_now_ns();
    printf("\n");
    fprintf(stderr,
            "nib: prompt %d tokens in %.1f ms (%.1f tok/s), generated %d in "
            "%.1f ms (%.1f tok/s)\n",
            n, (double)(t1 - t0) / 1e6, n / ((double)(t1 - t0) / 1e9 + 1e-12),
            g, (double)(t2 - t1) / 1e6, g / ((double)(t2 - t1) / 1e9 + 1e-12));
    rc = 0;
done:
    eng_sampler_delete(s);
    eng_ctx_delete(c);
    nib_free(toks);
    eng_model_delete(m);
    return rc;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "-h") || !strcmp(cmd, "--help") || !strcmp(cmd, "help")) {
        usage(stdout);
        return 0;
    }
#ifdef HAVE_LSP
    if (!strcmp(cmd, "lsp"))
        return lsp_main(argc - 1, argv + 1);
#endif

    static const struct {
        const char *name;
        int (*fn)(int, char **);
    } tools[] = {
        {"quantize", cli_quantize},
        {"mkmodel", cli_mkmodel},
        {"bench", cli_bench},
    };
    for (size_t i = 0; i < NIB_ARRAY_LEN(tools); i++) {
        if (strcmp(cmd, tools[i].name) == 0) {
            if (!tools[i].fn) {
                fprintf(stderr, "nib: '%s' is not built into this binary\n",
                        cmd);
                return 2;
            }
            return tools[i].fn(argc - 1, argv + 1);
        }
    }

    options o = {.n_predict = -1, .sp = eng_sampler_default_params()};
    int r = parse_options(argc - 1, argv + 1, &o);
    if (r)
        return r;
    if (!strcmp(cmd, "tokenize"))
        return cmd_tokenize(&o);
    if (!strcmp(cmd, "eval"))
        return cmd_eval(&o);
    if (!strcmp(cmd, "generate"))
        return cmd_generate(&o);
    if (!strcmp(cmd, "info"))
        return cmd_info(&o);
    fprintf(stderr, "nib: unknown command '%s' (see nib --help)\n", cmd);
    return 2;
}
