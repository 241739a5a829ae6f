/*
 * bench.c — `nib bench`: engine speed figures as one JSON object.
 *
 *   nib bench -m MODEL [-t THREADS] [-p 512] [-n 64] [-r 3] [--reuse]
 *             [--reuse-tokens 2000] [--min-chunk 64] [--text FILE]
 *             [--bw-mb 1024]
 *
 * Every figure is a report, never a pass/fail: the targets live in
 * bench/README.md next to the measured values. The machine this runs on is
 * usually shared, so the memory bandwidth is measured during the same run,
 * right before and after each decode run, with the same thread count, and
 * the decode speed is reported as a fraction of what that bandwidth allows
 * (tg_efficiency).
 *
 * Order of work:
 *   1. fork the bandwidth helper (it owns a 1 GiB buffer, so it is a child:
 *      its buffer stays out of this process's peak RSS);
 *   2. load the model once untimed (pulls the file into the page cache),
 *      then time three loads and keep the best;
 *   3. prompt (pp) and decode (tg) runs, bandwidth sampled around each
 *      decode run; then the decode tokens once more, taking turns with
 *      short bandwidth passes (tg_efficiency_interleaved); then the
 *      verify-batch figure, on
 *      the same context;
 *   4. with --reuse, the edit-in-the-middle figure on a second context;
 *   5. peak RSS (getrusage), then a last bandwidth sample.
 */
#include <errno.h>
#include <glob.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define BENCH_X86 1
#endif

#include "cli.h"
#include "engine/engine.h"
#include "engine/gguf.h"

/* ---- options ------------------------------------------------------------- */

/* Progress on stderr (a run on a big model takes minutes); -q silences it. */
static bool bench_quiet;

typedef struct {
    const char *model;
    const char *text; /* --text: source of the reuse prompt */
    int threads;
    int n_prompt;
    int n_gen;
    int reps;
    bool reuse;
    int reuse_tokens;
    int reuse_reps;
    int min_chunk;
    int bw_mb;
    bool gemm; /* --gemm: integer dots against dequantize + sgemm */
    const char *gemm_types;   /* comma-separated GGUF type names */
    const char *gemm_batches; /* comma-separated batch sizes */
    int gemm_rows, gemm_cols;
} bench_opts;

static void bench_usage(FILE *f) {
    fprintf(
        f,
        "usage: nib bench -m MODEL [options]\n"
        "\n"
        "Prints one JSON object with the engine's speed on this machine.\n"
        "\n"
        "  -m, --model MODEL     GGUF model (required)\n"
        "  -t, --threads N       threads (default: physical cores)\n"
        "  -p, --n-prompt N      prompt tokens, one batch (default 512)\n"
        "  -n, --n-gen N         decoded tokens (default 64)\n"
        "  -r, --reps N          runs of each measure, best kept "
        "(default 3)\n"
        "  --reuse               also time a one-line edit in a long "
        "prompt\n"
        "  --reuse-tokens N      length of that prompt (default 2000)\n"
        "  --reuse-reps N        full evals of that prompt, best kept "
        "(default 1;\n"
        "                        the edit runs --reps times)\n"
        "  --min-chunk N         eng_eval_reuse min_chunk (default 64)\n"
        "  --text FILE           source text of that prompt (default: "
        "nib's\n"
        "                        engine/*.c next to this source file)\n"
        "  --bw-mb N             bandwidth buffer in MiB (default 1024)\n"
        "  -q, --quiet           no progress lines on stderr\n"
        "\n"
        "usage: nib bench --gemm [-t N] [-r N] [options]\n"
        "\n"
        "Times nib's two matrix product paths, integer dots and\n"
        "F32 tiles + OpenBLAS sgemm, per weight type and batch size, on\n"
        "random weights (no model needed); \"used\" is the one nib takes.\n"
        "\n"
        "  --gemm-types LIST     default Q8_0,Q4_0,Q5_0,Q4_K,Q5_K,Q6_K,F16,\n"
        "                        BF16,F32\n"
        "  --gemm-batches LIST   default 1,8,32,128,512\n"
        "  --gemm-rows N         weight rows (default 8960)\n"
        "  --gemm-cols N         weight columns (default 1536, the\n"
        "                        feed-forward of the 1.5B shape)\n");
}

static bool bench_int(const char *s, int lo, int hi, int *out) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi)
        return false;
    *out = (int)v;
    return true;
}

/* Returns 0, 1 (help printed) or 2 (usage error, message printed). */
static int bench_parse(int argc, char **argv, bench_opts *o) {
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        struct {
            const char *s, *l;
            int *dst, lo, hi;
        } ints[] = {
            {"-t", "--threads", &o->threads, 1, 256},
            {"-p", "--n-prompt", &o->n_prompt, 1, 1 << 16},
            {"-n", "--n-gen", &o->n_gen, 1, 1 << 16},
            {"-r", "--reps", &o->reps, 1, 1000},
            {NULL, "--reuse-tokens", &o->reuse_tokens, 16, 1 << 16},
            {NULL, "--reuse-reps", &o->reuse_reps, 1, 1000},
            {NULL, "--min-chunk", &o->min_chunk, 0, 1 << 16},
            {NULL, "--bw-mb", &o->bw_mb, 1, 1 << 20},
            {NULL, "--gemm-rows", &o->gemm_rows, 1, 1 << 18},
            {NULL, "--gemm-cols", &o->gemm_cols, 256, 1 << 16},
        };
        bool done = false;
        for (size_t k = 0; k < NIB_ARRAY_LEN(ints) && !done; k++) {
            if (strcmp(a, ints[k].l) && (!ints[k].s || strcmp(a, ints[k].s)))
                continue;
            if (!v) {
                fprintf(stderr, "nib bench: option %s needs a value\n", a);
                return 2;
            }
            if (!bench_int(v, ints[k].lo, ints[k].hi, ints[k].dst)) {
                fprintf(stderr,
                        "nib bench: invalid value '%s' for %s (an integer "
                        "from %d to %d)\n",
                        v, a, ints[k].lo, ints[k].hi);
                return 2;
            }
            i++;
            done = true;
        }
        if (done)
            continue;
        if (!strcmp(a, "-m") || !strcmp(a, "--model") || !strcmp(a, "--text") ||
            !strcmp(a, "--gemm-types") || !strcmp(a, "--gemm-batches")) {
            if (!v) {
                fprintf(stderr, "nib bench: option %s needs a value\n", a);
                return 2;
            }
            if (!strcmp(a, "--text"))
                o->text = v;
            else if (!strcmp(a, "--gemm-types"))
                o->gemm_types = v;
            else if (!strcmp(a, "--gemm-batches"))
                o->gemm_batches = v;
            else
                o->model = v;
            i++;
        } else if (!strcmp(a, "-q") || !strcmp(a, "--quiet")) {
            bench_quiet = true;
        } else if (!strcmp(a, "--reuse")) {
            o->reuse = true;
        } else if (!strcmp(a, "--gemm")) {
            o->gemm = true;
        } else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            bench_usage(stdout);
            return 1;
        } else {
            fprintf(stderr,
                    "nib bench: unknown option '%s' (see nib bench "
                    "--help)\n",
                    a);
            return 2;
        }
    }
    if (!o->model && !o->gemm) {
        fprintf(stderr, "nib bench: -m MODEL is required (see nib bench "
                        "--help)\n");
        return 2;
    }
    return 0;
}

/* ---- small helpers ------------------------------------------------------- */

static int cmp_double(const void *a, const void *b) {
    const double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Sorts v in place. */
static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return (v[(n - 1) / 2] + v[n / 2]) / 2;
}

static double ms_since(uint64_t t0) {
    return (double)(nib_now_ns() - t0) / 1e6;
}

__attribute__((format(printf, 1, 2))) static void progress(const char *fmt,
                                                           ...) {
    if (bench_quiet)
        return;
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "nib bench: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
}

/* xorshift64*: a seeded, reproducible token stream. */
static uint64_t bench_rand(uint64_t *s) {
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 0x2545F4914F6CDD1DULL;
}

static void json_str(const char *s) {
    putchar('"');
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\')
            printf("\\%c", ch);
        else if (ch < 0x20)
            printf("\\u%04x", ch);
        else
            putchar(ch);
    }
    putchar('"');
}

/* llama.cpp's general.file_type values (llama_ftype), for the report. */
static const char *file_type_name(uint32_t ft) {
    static const struct {
        uint32_t id;
        const char *name;
    } names[] = {{0, "F32"},     {1, "F16"},     {2, "Q4_0"},    {3, "Q4_1"},
                 {7, "Q8_0"},    {8, "Q5_0"},    {9, "Q5_1"},    {10, "Q2_K"},
                 {11, "Q3_K_S"}, {12, "Q3_K_M"}, {13, "Q3_K_L"}, {14, "Q4_K_S"},
                 {15, "Q4_K_M"}, {16, "Q5_K_S"}, {17, "Q5_K_M"}, {18, "Q6_K"},
                 {32, "BF16"}};
    for (size_t i = 0; i < NIB_ARRAY_LEN(names); i++)
        if (names[i].id == ft)
            return names[i].name;
    return "unknown";
}

/* Weight bytes the decoder reads for one token: every tensor, except that
 * the token embedding contributes one row (a lookup) unless it is also the
 * output matrix (tied embeddings: no output.weight tensor), where all of it
 * is read by the final matmul. Also the file type the quantizer recorded. */
static int gguf_facts(const char *path, uint64_t *bytes, const char **ftype) {
    eng_gguf *g;
    char err[256];
    int r = eng_gguf_open(path, &g, err, sizeof err);
    if (r < 0)
        return r;
    bool tied = eng_gguf_find_tensor(g, "output.weight") == NULL;
    uint64_t sum = 0;
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        const eng_gguf_tensor *t = &g->tensors[i];
        if (!tied && strcmp(t->name, "token_embd.weight") == 0)
            sum += t->n_bytes / (t->n_elements / t->ne[0]);
        else
            sum += t->n_bytes;
    }
    uint32_t ft;
    *ftype = eng_gguf_get_u32(g, "general.file_type", &ft) == 0
                 ? file_type_name(ft)
                 : "unknown";
    eng_gguf_close(g);
    *bytes = sum;
    return 0;
}

/* ---- memory bandwidth ---------------------------------------------------- */

/* Each thread sums its slice of the buffer with the widest loads the CPU
 * has. Four independent accumulators keep several loads in flight; the sum
 * is returned so the compiler cannot drop the reads. */
typedef struct {
    const uint8_t *p;
    size_t n; /* bytes, a multiple of 256 */
    uint64_t sum;
} bw_slice;

#ifdef BENCH_X86
__attribute__((target("avx512f"))) static uint64_t sum_avx512(const uint8_t *p,
                                                              size_t n) {
    __m512i a0 = _mm512_setzero_si512(), a1 = a0, a2 = a0, a3 = a0;
    for (size_t i = 0; i < n; i += 256) {
        a0 = _mm512_add_epi64(a0, _mm512_load_si512((const void *)(p + i)));
        a1 =
            _mm512_add_epi64(a1, _mm512_load_si512((const void *)(p + i + 64)));
        a2 = _mm512_add_epi64(a2,
                              _mm512_load_si512((const void *)(p + i + 128)));
        a3 = _mm512_add_epi64(a3,
                              _mm512_load_si512((const void *)(p + i + 192)));
    }
    a0 = _mm512_add_epi64(_mm512_add_epi64(a0, a1), _mm512_add_epi64(a2, a3));
    /* Summed as unsigned lanes: the reduce intrinsic adds signed long longs,
     * which overflow (undefined, and UBSan says so) on these sums. */
    uint64_t lane[8], sum = 0;
    _mm512_storeu_si512((void *)lane, a0);
    for (int i = 0; i < 8; i++)
        sum += lane[i];
    return sum;
}

__attribute__((target("avx2"))) static uint64_t sum_avx2(const uint8_t *p,
                                                         size_t n) {
    __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;
    for (size_t i = 0; i < n; i += 128) {
        a0 = _mm256_add_epi64(a0, _mm256_load_si256((const __m256i *)(p + i)));
        a1 = _mm256_add_epi64(a1,
                              _mm256_load_si256((const __m256i *)(p + i + 32)));
        a2 = _mm256_add_epi64(a2,
                              _mm256_load_si256((const __m256i *)(p + i + 64)));
        a3 = _mm256_add_epi64(a3,
                              _mm256_load_si256((const __m256i *)(p + i + 96)));
    }
    a0 = _mm256_add_epi64(_mm256_add_epi64(a0, a1), _mm256_add_epi64(a2, a3));
    uint64_t lane[4];
    _mm256_storeu_si256((__m256i *)lane, a0);
    return lane[0] + lane[1] + lane[2] + lane[3];
}
#endif

static uint64_t sum_scalar(const uint8_t *p, size_t n) {
    const uint64_t *q = (const uint64_t *)(const void *)p;
    uint64_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
    for (size_t i = 0; i < n / 8; i += 4) {
        a0 += q[i];
        a1 += q[i + 1];
        a2 += q[i + 2];
        a3 += q[i + 3];
    }
    return a0 + a1 + a2 + a3;
}

static const char *bw_isa = "scalar";

static void *bw_thread(void *arg) {
    bw_slice *s = arg;
#ifdef BENCH_X86
    if (strcmp(bw_isa, "avx512") == 0)
        s->sum = sum_avx512(s->p, s->n);
    else if (strcmp(bw_isa, "avx2") == 0)
        s->sum = sum_avx2(s->p, s->n);
    else
#endif
        s->sum = sum_scalar(s->p, s->n);
    return NULL;
}

/* Best read bandwidth in GB/s over `passes` passes of `threads` threads
 * over `bytes` bytes of `buf` (touched before). */
static double read_bandwidth(const uint8_t *buf, size_t bytes, int threads,
                             int passes) {
    size_t per = bytes / (size_t)threads / 256 * 256;
    bw_slice *sl = nib_calloc((size_t)threads, sizeof *sl);
    pthread_t *th = nib_calloc((size_t)threads, sizeof *th);
    double best = 0;
    uint64_t check = 0;
    for (int pass = 0; pass < passes; pass++) {
        uint64_t t0 = nib_now_ns();
        for (int i = 0; i < threads; i++) {
            sl[i] = (bw_slice){buf + (size_t)i * per, per, 0};
            if (i > 0)
                pthread_create(&th[i], NULL, bw_thread, &sl[i]);
        }
        bw_thread(&sl[0]);
        for (int i = 1; i < threads; i++)
            pthread_join(th[i], NULL);
        double s = (double)(nib_now_ns() - t0) / 1e9;
        for (int i = 0; i < threads; i++)
            check += sl[i].sum;
        double g = (double)(per * (size_t)threads) / s / 1e9;
        if (g > best)
            best = g;
    }
    /* Every byte is 1, so the sums cannot be zero: a zero means the reads
     * were optimised away. */
    if (check == 0)
        fprintf(stderr, "nib bench: bandwidth checksum is zero\n");
    nib_free(th);
    nib_free(sl);
    return best;
}

/* The bandwidth runs in a child forked before the model is loaded, and is
 * sampled by the parent right before the prompt and after every decode
 * run, so the ratio tg_efficiency compares figures taken seconds apart on
 * a machine whose load changes by the minute. A child, not a thread,
 * because its 1 GiB buffer would otherwise dominate this process's peak
 * RSS, which is a figure of its own. Protocol on two pipes: the parent
 * writes one byte per sample and reads back a double (GB/s, or a negative
 * NIB_E* code); closing the request pipe ends the child. */
/* One pass of the interleaved measure: 512 MiB, 12-14 ms at this
 * machine's 38-42 GB/s. */
#define BW_PASS_BYTES ((size_t)512 << 20)

typedef struct {
    pid_t pid;
    int req, resp; /* parent's ends: write requests, read results */
    int threads;
    double best, worst;
    int n;
} bw_helper;

static void bw_child(int req, int resp, int mb, int threads) {
    size_t bytes = (size_t)mb << 20;
    uint8_t *raw = nib_try_malloc(bytes + 4096);
    uint8_t *buf = NULL;
    if (raw) {
        buf = (uint8_t *)(((uintptr_t)raw + 4095) & ~(uintptr_t)4095);
        /* Touch every page so the passes time reads, not page faults. */
        memset(buf, 1, bytes);
    }
    char c;
    while (read(req, &c, 1) == 1) {
        /* 'p': one pass over at most BW_PASS_BYTES, about as long as
         * decoding a token; anything else: a full sample */
        double g =
            !buf ? NIB_ENOMEM
            : c == 'p'
                ? read_bandwidth(buf, NIB_MIN(bytes, BW_PASS_BYTES), threads, 1)
                : read_bandwidth(buf, bytes, threads, 4);
        if (write(resp, &g, sizeof g) != (ssize_t)sizeof g)
            break;
    }
    nib_free(raw);
}

static int bw_helper_start(bw_helper *h, int mb, int threads) {
#ifdef BENCH_X86
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f"))
        bw_isa = "avx512";
    else if (__builtin_cpu_supports("avx2"))
        bw_isa = "avx2";
#endif
    int p1[2], p2[2];
    if (pipe(p1) < 0)
        return NIB_EIO;
    if (pipe(p2) < 0) {
        close(p1[0]);
        close(p1[1]);
        return NIB_EIO;
    }
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        close(p1[0]);
        close(p1[1]);
        close(p2[0]);
        close(p2[1]);
        return NIB_EIO;
    }
    if (pid == 0) {
        close(p1[1]);
        close(p2[0]);
        bw_child(p1[0], p2[1], mb, threads);
        _exit(0);
    }
    close(p1[0]);
    close(p2[1]);
    *h = (bw_helper){.pid = pid,
                     .req = p1[1],
                     .resp = p2[0],
                     .threads = threads,
                     .worst = 1e300};
    return 0;
}

/* One sample (best of 4 passes) into *gbs (may be NULL); 0 or a negative
 * error. */
static int bw_helper_sample(bw_helper *h, double *gbs) {
    char c = 'm';
    double g;
    if (write(h->req, &c, 1) != 1 || read(h->resp, &g, sizeof g) != sizeof g)
        return NIB_EIO;
    if (g < 0)
        return (int)g;
    h->best = NIB_MAX(h->best, g);
    h->worst = NIB_MIN(h->worst, g);
    h->n++;
    if (gbs)
        *gbs = g;
    progress("bandwidth: %.2f GB/s (%s, %d threads)", g, bw_isa, h->threads);
    return 0;
}

/* One short pass (not counted in best / worst): GB/s into *gbs. */
static int bw_helper_pass(bw_helper *h, double *gbs) {
    char c = 'p';
    if (write(h->req, &c, 1) != 1 ||
        read(h->resp, gbs, sizeof *gbs) != (ssize_t)sizeof *gbs)
        return NIB_EIO;
    return *gbs < 0 ? (int)*gbs : 0;
}

static void bw_helper_stop(bw_helper *h) {
    if (h->pid <= 0)
        return;
    close(h->req);
    close(h->resp);
    waitpid(h->pid, NULL, 0);
    h->pid = 0;
}

/* ---- the reuse prompt ---------------------------------------------------- */

/* Read `path` into a new buffer, or else concatenate the .c files of nib's
 * engine/ folder, found next to this source file (the compiler is given
 * absolute source paths, so __FILE__ locates the checkout). */
static int load_text(const char *path, char **out, size_t *len) {
    if (path)
        return nib_read_file(path, out, len);
    char pat[PATH_MAX];
    const char *slash = strrchr(__FILE__, '/');
    int dir = slash ? (int)(slash - __FILE__) : 0;
    snprintf(pat, sizeof pat, "%.*s%sengine/*.c", dir, __FILE__,
             slash ? "/../" : "../");
    glob_t gl;
    if (glob(pat, 0, NULL, &gl) != 0)
        return NIB_ENOENT;
    char *all = NULL;
    size_t n = 0;
    /* 64 KiB is far more than 2,000 tokens of C in any code vocabulary. */
    for (size_t i = 0; i < gl.gl_pathc && n < (64u << 10); i++) {
        char *t;
        size_t tl;
        if (nib_read_file(gl.gl_pathv[i], &t, &tl) < 0)
            continue;
        all = nib_realloc(all, n + tl + 1);
        memcpy(all + n, t, tl);
        n += tl;
        all[n] = 0;
        nib_free(t);
    }
    globfree(&gl);
    if (!all)
        return NIB_ENOENT;
    *out = all;
    *len = n;
    return 0;
}

static int tokenize_new(const eng_vocab *v, const char *text, size_t len,
                        int32_t **out) {
    int cap = (int)NIB_MIN(len + 16, (size_t)INT_MAX / 8);
    int32_t *t = nib_malloc((size_t)cap * sizeof *t);
    int n = eng_tokenize(v, text, len, 0, t, cap);
    if (n > cap) {
        t = nib_realloc(t, (size_t)n * sizeof *t);
        n = eng_tokenize(v, text, len, 0, t, n);
    }
    if (n < 0) {
        nib_free(t);
        return n;
    }
    *out = t;
    return n;
}

typedef struct {
    int32_t *orig, *edit;
    int n_orig, n_edit;
} reuse_prompt;

/* The first `want` tokens of the text, and the same text with the line in
 * the middle replaced by another line of code (same indentation). Both are
 * tokenized from text, as the LSP would tokenize a document. */
static int make_reuse_prompt(const eng_vocab *v, const char *path, int want,
                             reuse_prompt *rp, char *err, size_t err_size) {
    char *text;
    size_t len;
    int r = load_text(path, &text, &len);
    if (r < 0) {
        nib_errf(err, err_size,
                 "no source text for the reuse prompt (%s); give one with "
                 "--text FILE",
                 path ? path : "engine/*.c not found");
        return r;
    }
    int32_t *all;
    int n = tokenize_new(v, text, len, &all);
    nib_free(text);
    if (n < want) {
        if (n >= 0)
            nib_free(all);
        nib_errf(err, err_size, "the reuse text has %d tokens, fewer than %d",
                 n, want);
        return NIB_EINVAL;
    }
    /* The text of exactly `want` tokens, rebuilt from their pieces. */
    size_t cap = 1024, tl = 0;
    char *cut = nib_malloc(cap);
    for (int i = 0; i < want; i++) {
        char piece[256];
        int pl = eng_token_piece(v, all[i], true, piece, sizeof piece);
        if (pl <= 0 || pl > (int)sizeof piece)
            continue;
        if (tl + (size_t)pl + 1 > cap)
            cut = nib_realloc(cut, cap = 2 * cap + (size_t)pl);
        memcpy(cut + tl, piece, (size_t)pl);
        tl += (size_t)pl;
    }
    nib_free(all);
    /* The line holding the middle byte. */
    size_t mid = tl / 2, ls = mid, le = mid;
    while (ls > 0 && cut[ls - 1] != '\n')
        ls--;
    while (le < tl && cut[le] != '\n')
        le++;
    size_t ind = ls;
    while (ind < le && (cut[ind] == ' ' || cut[ind] == '\t'))
        ind++;
    static const char repl[] = "edited_value = compute(edited_value, 42);";
    size_t el = tl - (le - ind) + sizeof repl - 1;
    char *ed = nib_malloc(el + 1);
    memcpy(ed, cut, ind);
    memcpy(ed + ind, repl, sizeof repl - 1);
    memcpy(ed + ind + sizeof repl - 1, cut + le, tl - le);
    ed[el] = 0;
    rp->n_orig = tokenize_new(v, cut, tl, &rp->orig);
    rp->n_edit = tokenize_new(v, ed, el, &rp->edit);
    nib_free(cut);
    nib_free(ed);
    if (rp->n_orig <= 0 || rp->n_edit <= 0) {
        nib_errf(err, err_size, "cannot tokenize the reuse prompt");
        return NIB_EINVAL;
    }
    return 0;
}

/* ---- the benchmark ------------------------------------------------------- */

/* The verify pairs are taken in rounds at the start, middle and end of
 * the model's benchmark (before the prompt and decode runs, after them,
 * and after --reuse), and verify8_ratio is the median of all of them.
 * Twenty pairs take under a second, and on a shared host another tenant
 * sometimes holds the core for several seconds: in one run of
 * bench/run.sh the 0.5B Q8_0 verify read 40.1 against 16.4 ms (ratio
 * 2.48; 1.17-1.33 in the runs after it) while the prompt of the next model
 * took 2.3 s against 0.8. Such a stretch now spoils one round of three,
 * which the median passes over, and shows in the rounds' medians. */
#define VERIFY_ROUNDS 3

typedef struct {
    double load_ms;
    double pp_tps, tg_tps;
    uint64_t bytes_per_token; /* weight bytes read per decoded token */
    double tg_eff_paired;     /* best over runs of bytes_per_token * tg / the
                                 bandwidth sampled around that run */
    /* decode tokens and bandwidth passes taking turns: mean decode rate,
     * mean bandwidth of the passes (GB/s), and their ratio */
    double tg_il_tps, bw_il_gbs, tg_eff_il;
    double batch1_ms, batch8_ms;   /* last-token logits only */
    double verify1_ms, verify8_ms; /* logits of every token */
    /* median over the runs of (8-token time / the 1-token time just
     * before it): both taken within 50 ms, so a slow phase of the host
     * slows both, where the two bests may come from different phases */
    double verify_ratio_median;
    /* each round's pair ratios (see VERIFY_ROUNDS), and its median */
    double *verify_ratio;
    int verify_n, verify_rounds;
    double verify_round_median[VERIFY_ROUNDS];
    size_t kv_bytes;
    /* --reuse */
    int reuse_n, reuse_n_edit;
    double reuse_full_ms, reuse_edit_ms;
    eng_reuse_stats rs;
} bench_result;

static void fill_random(int32_t *t, int n, int n_tok, uint64_t *seed) {
    for (int i = 0; i < n; i++)
        t[i] = (int32_t)(bench_rand(seed) % (uint64_t)n_tok);
}

static size_t ctx_kv_bytes(const eng_ctx *c, const eng_model_info *mi) {
    size_t kv = eng_ctx_kv_bytes(c);
    if (kv == 0) /* fp16 K and V for every layer and position */
        kv = (size_t)2 * mi->n_layer * eng_ctx_n_ctx(c) * mi->n_head_kv *
             mi->head_dim * 2;
    return kv;
}

/* Decoded tokens between two bandwidth passes in the interleaved measure
 * (tg_efficiency_interleaved).
 * A pass leaves the caches full of its buffer and the pool's second thread
 * asleep, so the token after it is slower than decoding proper: with one
 * token per pass the ratio came out about a third low, with 4 about 0.05
 * below what 8 give (0.5B shapes). */
#define IL_TOKENS 8

/* Runs of the 1- and 8-token batch measures (each the best of its runs,
 * one and eight taking turns). They take 15-60 ms each, and on a shared
 * host one in three or four lands on a moment when another tenant holds
 * the core or the memory bus: with 5 runs the 8-token verify read 24-58 ms
 * over four consecutive benchmarks (0.5B Q8_0), so its ratio to one
 * token said more about the neighbours than about the engine. */
#define BATCH_REPS 20

/* k tokens decoded one at a time. */
static int eng_eval_each(eng_ctx *c, const int32_t *tok, int k) {
    int r = 0;
    for (int i = 0; i < k && r == 0; i++)
        r = eng_eval(c, &tok[i], 1);
    return r;
}

/* Prompt, decode and verify on one context. */
static int run_speed(const eng_model *m, const bench_opts *o, bw_helper *bw,
                     bench_result *res) {
    eng_model_info mi;
    eng_model_get_info(m, &mi);
    int n_tok = eng_vocab_n_tokens(eng_model_vocab(m));
    eng_ctx_params cp = eng_ctx_default_params();
    cp.n_ctx = o->n_prompt + o->n_gen + 8;
    cp.n_batch = NIB_MAX(o->n_prompt, 8);
    cp.n_threads = o->threads;
    eng_ctx *c;
    int r = eng_ctx_new(m, &cp, &c);
    if (r < 0)
        return r;
    uint64_t seed = 0x6e6962u; /* "nib" */
    int32_t *prompt = nib_malloc((size_t)o->n_prompt * sizeof *prompt);
    int32_t *gen = nib_malloc((size_t)(o->n_gen + 8) * sizeof *gen);
    fill_random(prompt, o->n_prompt, n_tok, &seed);
    fill_random(gen, o->n_gen + 8, n_tok, &seed);

    /* Prompt: the whole prompt as one batch on an empty cache. */
    double pp_best = 1e300, tg_best = 1e300;
    for (int rep = 0; rep < o->reps; rep++) {
        eng_ctx_truncate(c, 0);
        uint64_t t0 = nib_now_ns();
        if ((r = eng_eval(c, prompt, o->n_prompt)) < 0)
            goto done;
        double ms = ms_since(t0);
        pp_best = NIB_MIN(pp_best, ms);
        progress("prompt %d tokens: %.1f ms", o->n_prompt, ms);
        /* Decode: one token at a time after that prompt, between two
         * bandwidth samples. */
        double bw0, bw1;
        if ((r = bw_helper_sample(bw, &bw0)) < 0)
            goto done;
        t0 = nib_now_ns();
        for (int i = 0; i < o->n_gen; i++)
            if ((r = eng_eval(c, &gen[i], 1)) < 0)
                goto done;
        ms = ms_since(t0);
        tg_best = NIB_MIN(tg_best, ms);
        progress("decode %d tokens: %.1f ms", o->n_gen, ms);
        if ((r = bw_helper_sample(bw, &bw1)) < 0)
            goto done;
        double eff = (double)res->bytes_per_token * (o->n_gen / (ms / 1e3)) /
                     ((bw0 + bw1) / 2 * 1e9);
        res->tg_eff_paired = NIB_MAX(res->tg_eff_paired, eff);
    }
    res->pp_tps = o->n_prompt / (pp_best / 1e3);
    res->tg_tps = o->n_gen / (tg_best / 1e3);

    /* tg_efficiency_interleaved: the same n_gen tokens again, IL_TOKENS
     * at a time between short bandwidth passes, and one more pass at the
     * end. This machine's bandwidth moves by 10-20% from one 15-ms pass
     * to the next and jumps to 60+ GB/s for moments; a one-second decode
     * run set against the best of four passes around it (tg_efficiency)
     * compares an average with a peak. Taking turns, both rates are
     * averages over the same seconds: bytes over summed time, for the
     * tokens and for the passes. */
    {
        eng_ctx_truncate(c, o->n_prompt);
        double dec_s = 0, bw_s = 0, g;
        int passes = 0;
        for (int i = 0;; i += IL_TOKENS) {
            if ((r = bw_helper_pass(bw, &g)) < 0)
                goto done;
            bw_s += 1.0 / g; /* seconds per GB */
            passes++;
            if (i >= o->n_gen)
                break;
            const int k = NIB_MIN(IL_TOKENS, o->n_gen - i);
            uint64_t t0 = nib_now_ns();
            if ((r = eng_eval_each(c, &gen[i], k)) < 0)
                goto done;
            dec_s += ms_since(t0) / 1e3;
        }
        res->tg_il_tps = o->n_gen / dec_s;
        res->bw_il_gbs = passes / bw_s;
        res->tg_eff_il = (double)res->bytes_per_token * res->tg_il_tps /
                         (res->bw_il_gbs * 1e9);
        progress("decode and bandwidth taking turns: %.2f tok/s, %.2f GB/s",
                 res->tg_il_tps, res->bw_il_gbs);
    }

    /* An 8-token batch against 1 token, both evaluated right after the
     * prompt (the same context length) and rolled back; only the last
     * token's logits are computed, as for a prompt. */
    double v1 = 1e300, v8 = 1e300;
    for (int rep = 0; rep < NIB_MAX(o->reps, BATCH_REPS); rep++) {
        eng_ctx_truncate(c, o->n_prompt);
        uint64_t t0 = nib_now_ns();
        if ((r = eng_eval(c, gen, 1)) < 0)
            goto done;
        v1 = NIB_MIN(v1, ms_since(t0));
        eng_ctx_truncate(c, o->n_prompt);
        t0 = nib_now_ns();
        if ((r = eng_eval(c, gen, 8)) < 0)
            goto done;
        v8 = NIB_MIN(v8, ms_since(t0));
    }
    progress("batch: 1 token %.2f ms, 8 tokens %.2f ms", v1, v8);
    res->batch1_ms = v1;
    res->batch8_ms = v8;
    res->kv_bytes = NIB_MAX(res->kv_bytes, ctx_kv_bytes(c, &mi));
done:
    nib_free(gen);
    nib_free(prompt);
    eng_ctx_delete(c);
    return r;
}

/* The speculative-decoding verify case: 8 draft tokens checked in one
 * batch, which needs the logits of all 8 (logits_all), against decoding one
 * token, at the same context length (after the prompt). A context of its
 * own, because logits_all keeps n_batch rows of n_vocab floats: with
 * n_batch = 8 that is 8 rows, where the prompt context would need 512. Its
 * cache is filled with the prompt first, untimed. One round of pairs
 * (see VERIFY_ROUNDS); the context lives only for the round, so it never
 * adds to the other measures' memory. */
static int run_verify_round(const eng_model *m, const bench_opts *o,
                            bench_result *res) {
    int n_tok = eng_vocab_n_tokens(eng_model_vocab(m));
    eng_ctx_params cp = eng_ctx_default_params();
    cp.n_ctx = o->n_prompt + 16;
    cp.n_batch = 8;
    cp.n_threads = o->threads;
    cp.logits_all = true;
    eng_ctx *c;
    int r = eng_ctx_new(m, &cp, &c);
    if (r < 0)
        return r;
    uint64_t seed = 0x6e6962u; /* the prompt run_speed used */
    int32_t *prompt = nib_malloc((size_t)(o->n_prompt + 8) * sizeof *prompt);
    fill_random(prompt, o->n_prompt + 8, n_tok, &seed);
    const int32_t *draft = prompt + o->n_prompt;
    if ((r = eng_eval(c, prompt, o->n_prompt)) < 0)
        goto done;
    const int reps = NIB_MAX(o->reps, BATCH_REPS);
    if (!res->verify_ratio)
        res->verify_ratio = nib_malloc((size_t)VERIFY_ROUNDS * (size_t)reps *
                                       sizeof *res->verify_ratio);
    double *ratio = res->verify_ratio + res->verify_n;
    for (int rep = 0; rep < reps; rep++) {
        eng_ctx_truncate(c, o->n_prompt);
        uint64_t t0 = nib_now_ns();
        if ((r = eng_eval(c, draft, 1)) < 0)
            goto done;
        const double t1 = ms_since(t0);
        eng_ctx_truncate(c, o->n_prompt);
        t0 = nib_now_ns();
        if ((r = eng_eval(c, draft, 8)) < 0)
            goto done;
        const double t8 = ms_since(t0);
        res->verify1_ms = NIB_MIN(res->verify1_ms, t1);
        res->verify8_ms = NIB_MIN(res->verify8_ms, t8);
        ratio[rep] = t8 / t1;
    }
    res->verify_n += reps;
    const double med = median(ratio, reps);
    res->verify_round_median[res->verify_rounds++] = med;
    progress("verify round %d (all logits): 1 token %.2f ms, 8 tokens "
             "%.2f ms (best so far), median ratio of %d pairs %.3f",
             res->verify_rounds, res->verify1_ms, res->verify8_ms, reps, med);
    if (res->verify_rounds == VERIFY_ROUNDS) {
        res->verify_ratio_median = median(res->verify_ratio, res->verify_n);
        progress("verify: median ratio of all %d pairs %.3f", res->verify_n,
                 res->verify_ratio_median);
    }
done:
    nib_free(prompt);
    eng_ctx_delete(c);
    return r;
}

/* The edit-in-the-middle figure: a full eval of the prompt on an empty
 * sequence, then eng_eval_reuse of the edited prompt on top of it. */
static int run_reuse(const eng_model *m, const bench_opts *o, bench_result *res,
                     char *err, size_t err_size) {
    eng_model_info mi;
    eng_model_get_info(m, &mi);
    reuse_prompt rp = {0};
    int r = make_reuse_prompt(eng_model_vocab(m), o->text, o->reuse_tokens, &rp,
                              err, err_size);
    if (r < 0)
        goto done_prompt;
    eng_ctx_params cp = eng_ctx_default_params();
    cp.n_ctx = NIB_MAX(rp.n_orig, rp.n_edit) + 16;
    cp.n_threads = o->threads;
    eng_ctx *c;
    if ((r = eng_ctx_new(m, &cp, &c)) < 0)
        goto done_prompt;
    /* A full eval of 2,000 tokens takes seconds to a minute, so it runs
     * --reuse-reps times (default once); the edit, which should take a few
     * percent of that, runs --reps times, each time from the original
     * prompt (restored by an untimed eng_eval_reuse, itself an edit). */
    double full = 1e300, edit = 1e300;
    eng_reuse_stats st;
    for (int rep = 0; rep < o->reuse_reps; rep++) {
        /* An empty cache: nothing to reuse, so this is a full eval. */
        eng_ctx_truncate(c, 0);
        uint64_t t0 = nib_now_ns();
        if ((r = eng_eval_reuse(c, rp.orig, rp.n_orig, o->min_chunk, &st)) < 0)
            goto done;
        double ms = ms_since(t0);
        full = NIB_MIN(full, ms);
        progress("reuse: full eval of %d tokens: %.1f ms", rp.n_orig, ms);
    }
    for (int rep = 0; rep < o->reps; rep++) {
        if (rep > 0 &&
            (r = eng_eval_reuse(c, rp.orig, rp.n_orig, o->min_chunk, &st)) < 0)
            goto done;
        uint64_t t0 = nib_now_ns();
        if ((r = eng_eval_reuse(c, rp.edit, rp.n_edit, o->min_chunk, &st)) < 0)
            goto done;
        double e = ms_since(t0);
        progress("reuse: edit: %.1f ms (%d evaluated)", e, st.n_evaluated);
        if (e < edit) {
            edit = e;
            res->rs = st;
        }
    }
    res->reuse_n = rp.n_orig;
    res->reuse_n_edit = rp.n_edit;
    res->reuse_full_ms = full;
    res->reuse_edit_ms = edit;
    res->kv_bytes = NIB_MAX(res->kv_bytes, ctx_kv_bytes(c, &mi));
done:
    eng_ctx_delete(c);
done_prompt:
    nib_free(rp.orig);
    nib_free(rp.edit);
    return r;
}

static int bench_model(const bench_opts *opts, bw_helper *bw);

/* ---- --gemm -------------------------------------------------------------- */

/* Next comma-separated item of *list into buf; false at the end. */
static bool next_item(const char **list, char *buf, size_t n) {
    const char *p = *list;
    if (!p || !*p)
        return false;
    size_t len = strcspn(p, ",");
    if (len >= n)
        len = n - 1;
    memcpy(buf, p, len);
    buf[len] = '\0';
    p += strcspn(p, ",");
    *list = *p ? p + 1 : p;
    return true;
}

/* One JSON object: for each weight type and batch size, nib's integer
 * product against dequantize + OpenBLAS sgemm on the same data. */
static int bench_gemm(const bench_opts *o) {
    const char *types = o->gemm_types
                            ? o->gemm_types
                            : "Q8_0,Q4_0,Q5_0,Q4_K,Q5_K,Q6_K,F16,BF16,F32";
    const int rows = o->gemm_rows ? o->gemm_rows : 8960;
    const int cols = o->gemm_cols ? o->gemm_cols : 1536;
    printf("{\"gemm\":true,\"simd\":");
    json_str(eng_simd_name());
    printf(",\"threads\":%d,\"rows\":%d,\"cols\":%d,\"reps\":%d,"
           "\"results\":[",
           o->threads, rows, cols, o->reps);
    bool first = true;
    char type[32], bs[32];
    const char *tl = types;
    while (next_item(&tl, type, sizeof type)) {
        const char *bl = o->gemm_batches ? o->gemm_batches : "1,8,32,128,512";
        while (next_item(&bl, bs, sizeof bs)) {
            int batch;
            if (!bench_int(bs, 1, 4096, &batch)) {
                printf("]}\n");
                fprintf(stderr,
                        "nib bench: invalid batch size '%s' in --gemm-batches "
                        "(an integer from 1 to 4096)\n",
                        bs);
                return 2;
            }
            eng_gemm_cmp g;
            char err[256] = "";
            int r = eng_gemm_compare(type, rows, cols, batch, o->threads,
                                     o->reps, &g, err, sizeof err);
            if (r < 0) {
                printf("]}\n");
                fprintf(stderr, "nib bench: --gemm %s: %s\n", type,
                        err[0] ? err : nib_strerror(r));
                return r == NIB_EINVAL ? 2 : 1;
            }
            const double gmac = (double)rows * cols * batch / 1e9;
            progress("gemm %s batch %d: integer %.2f ms, dequantize + "
                     "sgemm %.2f ms",
                     type, batch, g.int_ms, g.sgemm_ms);
            printf("%s{\"type\":", first ? "" : ",");
            json_str(type);
            printf(",\"batch\":%d,\"int_ms\":%.3f,\"sgemm_ms\":%.3f,"
                   "\"int_gmacs\":%.1f,\"sgemm_gmacs\":%.1f,"
                   "\"sgemm_over_int\":%.2f,\"faster\":\"%s\","
                   "\"used\":\"%s\",\"max_rel_diff\":%.2e}",
                   batch, g.int_ms, g.sgemm_ms, gmac / (g.int_ms / 1e3),
                   gmac / (g.sgemm_ms / 1e3), g.sgemm_ms / g.int_ms,
                   g.int_ms <= g.sgemm_ms ? "int" : "sgemm",
                   g.auto_blas ? "sgemm" : "int", g.max_rel_diff);
            fflush(stdout);
            first = false;
        }
    }
    printf("]}\n");
    return 0;
}

int cli_bench(int argc, char **argv) {
    bench_opts o = {.n_prompt = 512,
                    .n_gen = 64,
                    .reps = 3,
                    .reuse_tokens = 2000,
                    .reuse_reps = 1,
                    .min_chunk = 64,
                    .bw_mb = 1024};
    int r = bench_parse(argc, argv, &o);
    if (r)
        return r == 1 ? 0 : 2;
    if (o.threads <= 0)
        o.threads = eng_physical_cores();
    if (o.gemm)
        return bench_gemm(&o);
    if (access(o.model, R_OK) != 0) {
        fprintf(stderr, "nib bench: cannot read model %s: %s\n", o.model,
                strerror(errno));
        return 1;
    }

    bw_helper bw = {0};
    if ((r = bw_helper_start(&bw, o.bw_mb, o.threads)) < 0) {
        fprintf(stderr, "nib bench: cannot start the bandwidth helper: %s\n",
                nib_strerror(r));
        return 1;
    }
    r = bench_model(&o, &bw);
    bw_helper_stop(&bw);
    return r;
}

/* Everything but the bandwidth helper's lifetime; returns the exit code. */
static int bench_model(const bench_opts *opts, bw_helper *bw) {
    bench_opts o = *opts;
    int r;
    /* Load once untimed so the file is in the page cache, then time. */
    char err[512] = "";
    eng_model *m;
    if ((r = eng_model_load(o.model, &m, err, sizeof err)) < 0) {
        fprintf(stderr, "nib bench: cannot load %s: %s\n", o.model,
                err[0] ? err : nib_strerror(r));
        return 1;
    }
    eng_model_delete(m);
    bench_result res = {.load_ms = 1e300};
    for (int i = 0; i < 3; i++) {
        uint64_t t0 = nib_now_ns();
        if ((r = eng_model_load(o.model, &m, err, sizeof err)) < 0) {
            fprintf(stderr, "nib bench: cannot load %s: %s\n", o.model,
                    err[0] ? err : nib_strerror(r));
            return 1;
        }
        res.load_ms = NIB_MIN(res.load_ms, ms_since(t0));
        if (i < 2)
            eng_model_delete(m);
    }
    progress("load: %.1f ms (best of 3)", res.load_ms);
    eng_model_info mi;
    eng_model_get_info(m, &mi);
    uint64_t bpt;
    const char *file_type;
    if ((r = gguf_facts(o.model, &bpt, &file_type)) < 0) {
        fprintf(stderr, "nib bench: cannot read %s: %s\n", o.model,
                nib_strerror(r));
        eng_model_delete(m);
        return 1;
    }

    res.bytes_per_token = bpt;
    res.verify1_ms = res.verify8_ms = 1e300;
    if ((r = run_verify_round(m, &o, &res)) < 0 ||
        (r = run_speed(m, &o, bw, &res)) < 0 ||
        (r = run_verify_round(m, &o, &res)) < 0) {
        fprintf(stderr, "nib bench: evaluation failed: %s\n", nib_strerror(r));
        goto fail;
    }
    err[0] = 0;
    if (o.reuse && (r = run_reuse(m, &o, &res, err, sizeof err)) < 0) {
        fprintf(stderr, "nib bench: reuse benchmark failed: %s\n",
                err[0] ? err : nib_strerror(r));
        goto fail;
    }
    if ((r = run_verify_round(m, &o, &res)) < 0) {
        fprintf(stderr, "nib bench: evaluation failed: %s\n", nib_strerror(r));
        goto fail;
    }
    nib_free(res.verify_ratio);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double rss_mb = (double)ru.ru_maxrss / 1024.0; /* KiB on Linux */
    eng_model_delete(m);

    if ((r = bw_helper_sample(bw, NULL)) < 0) {
        fprintf(stderr, "nib bench: bandwidth test failed: %s (%d MiB)\n",
                nib_strerror(r), o.bw_mb);
        return 1;
    }
    double eff = (double)bpt * res.tg_tps / (bw->best * 1e9);

    const double MB = 1024.0 * 1024.0;
    printf("{\"model\":");
    json_str(o.model);
    printf(",\"ftype\":");
    json_str(file_type);
    printf(",\"main_type\":");
    json_str(mi.ftype);
    printf(",\"simd\":");
    json_str(eng_simd_name());
    printf(",\"threads\":%d,\"n_prompt\":%d,\"n_gen\":%d,\"reps\":%d",
           o.threads, o.n_prompt, o.n_gen, o.reps);
    printf(",\"n_params\":%llu,\"weights_mb\":%.2f,\"bytes_per_token_mb\":%.2f"
           ",\"kv_mb\":%.2f",
           (unsigned long long)mi.n_params, (double)mi.weight_bytes / MB,
           (double)bpt / MB, (double)res.kv_bytes / MB);
    printf(",\"load_ms\":%.2f,\"pp_tps\":%.2f,\"tg_tps\":%.2f", res.load_ms,
           res.pp_tps, res.tg_tps);
    printf(",\"bandwidth_gbs\":%.2f,\"bandwidth_low_gbs\":%.2f"
           ",\"bandwidth_samples\":%d,\"bandwidth_isa\":\"%s\""
           ",\"tg_efficiency\":%.3f,\"tg_efficiency_interleaved\":%.3f"
           ",\"tg_efficiency_best\":%.3f,\"tg_interleaved_tps\":%.2f"
           ",\"bandwidth_interleaved_gbs\":%.2f",
           bw->best, bw->worst, bw->n, bw_isa, res.tg_eff_paired, res.tg_eff_il,
           eff, res.tg_il_tps, res.bw_il_gbs);
    printf(",\"verify1_ms\":%.3f,\"verify8_ms\":%.3f,\"verify8_ratio\":%.3f"
           ",\"verify8_ratio_best\":%.3f",
           res.verify1_ms, res.verify8_ms, res.verify_ratio_median,
           res.verify8_ms / res.verify1_ms);
    printf(",\"verify8_ratio_rounds\":[");
    for (int i = 0; i < res.verify_rounds; i++)
        printf("%s%.3f", i ? "," : "", res.verify_round_median[i]);
    printf("]");
    printf(",\"batch1_ms\":%.3f,\"batch8_ms\":%.3f,\"batch8_ratio\":%.3f",
           res.batch1_ms, res.batch8_ms, res.batch8_ms / res.batch1_ms);
    printf(",\"peak_rss_mb\":%.1f", rss_mb);
    if (o.reuse)
        printf(",\"reuse_tokens\":%d,\"reuse_tokens_edited\":%d"
               ",\"reuse_min_chunk\":%d,\"reuse_full_ms\":%.2f"
               ",\"reuse_edit_ms\":%.2f,\"reuse_fraction\":%.4f"
               ",\"reuse_reused\":%d,\"reuse_evaluated\":%d"
               ",\"reuse_shifted\":%d",
               res.reuse_n, res.reuse_n_edit, o.min_chunk, res.reuse_full_ms,
               res.reuse_edit_ms, res.reuse_edit_ms / res.reuse_full_ms,
               res.rs.n_reused, res.rs.n_evaluated, res.rs.n_shifted);
    printf("}\n");
    return 0;
fail:
    nib_free(res.verify_ratio);
    eng_model_delete(m);
    return 1;
}
