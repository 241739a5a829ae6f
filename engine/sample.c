/*
 * sample.c — token selection. The chain follows llama.cpp's common order:
 * repetition penalty, top-k, top-p, min-p, temperature, then a draw from the
 * seeded RNG. All scratch is allocated in eng_sampler_new so sampling itself
 * never allocates.
 */
#include "internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct {
    int32_t id;
    float logit;
} cand;

struct eng_sampler {
    eng_sampler_params p;
    int n_vocab;
    cand *cands;     /* [n_vocab] */
    uint64_t rng;    /* xorshift64* state */
};

eng_sampler_params eng_sampler_default_params(void) {
    return (eng_sampler_params){.temperature = 0.0f,
                                .top_k = 40,
                                .top_p = 0.95f,
                                .min_p = 0.05f,
                                .repeat_penalty = 1.0f,
                                .repeat_last_n = 64,
                                .seed = 0x6e6962u};
}

int eng_sampler_new(const eng_sampler_params *p, int n_vocab,
                    eng_sampler **out) {
    *out = NULL;
    if (n_vocab <= 0)
        return NIB_EINVAL;
    eng_sampler *s = nib_calloc(1, sizeof *s);
    s->p = p ? *p : eng_sampler_default_params();
    s->n_vocab = n_vocab;
    s->cands = nib_try_calloc((size_t)n_vocab, sizeof(cand));
    if (!s->cands) {
        nib_free(s);
        return NIB_ENOMEM;
    }
    /* splitmix64 of the seed, so seeds 0 and 1 give unrelated streams and
     * the xorshift state is never zero. */
    uint64_t z = s->p.seed + 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    s->rng = (z ^ (z >> 31)) | 1;
    *out = s;
    return 0;
}

void eng_sampler_delete(eng_sampler *s) {
    if (!s)
        return;
    nib_free(s->cands);
    nib_free(s);
}

static float rng_uniform(eng_sampler *s) {
    s->rng ^= s->rng >> 12;
    s->rng ^= s->rng << 25;
    s->rng ^= s->rng >> 27;
    uint64_t r = s->rng * 0x2545f4914f6cdd1dull;
    return (float)(r >> 40) / (float)(1ull << 24); /* [0, 1) */
}

int32_t eng_argmax(const float *logits, int n) {
    int32_t best = 0;
    for (int i = 1; i < n; i++)
        if (logits[i] > logits[best])
            best = i;
    return best;
}

static int cand_desc(const void *a, const void *b) {
    float x = ((const cand *)a)->logit, y = ((const cand *)b)->logit;
    if (x != y)
        return x < y ? 1 : -1;
    return ((const cand *)a)->id - ((const cand *)b)->id;
}

/* Move the k largest to the front, sorted descending: a min-heap of the
 * best k seen so far makes this O(n log k) for the usual small k. */
static void heap_down(cand *h, int k, int i) {
    for (;;) {
        int l = 2 * i + 1, r = l + 1, m = i;
        if (l < k && cand_desc(&h[l], &h[m]) > 0)
            m = l;
        if (r < k && cand_desc(&h[r], &h[m]) > 0)
            m = r;
        if (m == i)
            return;
        cand t = h[i];
        h[i] = h[m];
        h[m] = t;
        i = m;
    }
}

static void top_k_sort(cand *c, int n, int k) {
    if (k < n) {
        /* h = c[0..k) is a heap whose root is the worst of the best k. */
        for (int i = k / 2 - 1; i >= 0; i--)
            heap_down(c, k, i);
        for (int i = k; i < n; i++) {
            if (cand_desc(&c[i], &c[0]) < 0) {
                c[0] = c[i];
                heap_down(c, k, 0);
            }
        }
    }
    qsort(c, (size_t)k, sizeof *c, cand_desc);
}

int32_t eng_sample(eng_sampler *s, const float *logits, const int32_t *history,
                   int n_history) {
    int n = s->n_vocab;
    cand *c = s->cands;
    for (int i = 0; i < n; i++)
        c[i] = (cand){i, logits[i]};

    /* Repetition penalty, as in CTRL / llama.cpp: a repeated token's
     * positive logit is divided by the penalty, a negative one multiplied,
     * once per distinct token. */
    if (s->p.repeat_penalty != 1.0f && history && n_history > 0) {
        int from = NIB_MAX(0, n_history - NIB_MAX(s->p.repeat_last_n, 0));
        for (int i = from; i < n_history; i++) {
            int32_t t = history[i];
            if (t < 0 || t >= n)
                continue;
            bool seen = false;
            for (int j = from; j < i && !seen; j++)
                seen = history[j] == t;
            if (seen)
                continue;
            float *l = &c[t].logit;
            *l = *l > 0 ? *l / s->p.repeat_penalty : *l * s->p.repeat_penalty;
        }
    }

    if (s->p.temperature <= 0.0f) {
        int32_t best = 0;
        for (int i = 1; i < n; i++)
            if (c[i].logit > c[best].logit)
                best = i;
        return best;
    }

    int k = s->p.top_k > 0 ? NIB_MIN(s->p.top_k, n) : n;
    top_k_sort(c, n, k);
    n = k;

    /* softmax over the survivors (sorted descending) */
    float max = c[0].logit;
    double sum = 0.0;
    for (int i = 0; i < n; i++) {
        c[i].logit = expf((c[i].logit - max) / s->p.temperature);
        sum += c[i].logit;
    }
    for (int i = 0; i < n; i++)
        c[i].logit = (float)(c[i].logit / sum);

    if (s->p.top_p < 1.0f) {
        double cum = 0.0;
        for (int i = 0; i < n; i++) {
            cum += c[i].logit;
            if (cum >= s->p.top_p) {
                n = i + 1;
                break;
            }
        }
    }
    if (s->p.min_p > 0.0f) {
        float floor_p = c[0].logit * s->p.min_p;
        int keep = 1;
        while (keep < n && c[keep].logit >= floor_p)
            keep++;
        n = keep;
    }

    double total = 0.0;
    for (int i = 0; i < n; i++)
        total += c[i].logit;
    double r = rng_uniform(s) * total, acc = 0.0;
    for (int i = 0; i < n; i++) {
        acc += c[i].logit;
        if (r < acc)
            return c[i].id;
    }
    return c[n - 1].id;
}

/* ---- misc ---------------------------------------------------------------- */

int eng_physical_cores(void) {
    /* Count distinct (package, core) pairs; hyper-threads share a core and
     * only slow each other down on these memory-bound kernels. */
    int seen[1024][2];
    int n_seen = 0;
    for (int cpu = 0; cpu < 1024; cpu++) {
        char path[128];
        int ids[2];
        const char *names[2] = {"physical_package_id", "core_id"};
        bool ok = true;
        for (int k = 0; k < 2 && ok; k++) {
            snprintf(path, sizeof path,
                     "/sys/devices/system/cpu/cpu%d/topology/%s", cpu,
                     names[k]);
            FILE *f = fopen(path, "r");
            ok = f && fscanf(f, "%d", &ids[k]) == 1;
            if (f)
                fclose(f);
        }
        if (!ok)
            break;
        bool dup = false;
        for (int i = 0; i < n_seen && !dup; i++)
            dup = seen[i][0] == ids[0] && seen[i][1] == ids[1];
        if (!dup) {
            seen[n_seen][0] = ids[0];
            seen[n_seen][1] = ids[1];
            n_seen++;
        }
    }
    if (n_seen > 0)
        return n_seen;
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

const char *eng_simd_name(void) {
    eng_quant_init();
    return eng_quant_isa();
}
