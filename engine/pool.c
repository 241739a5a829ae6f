/*
 * pool.c — a fixed pool of worker threads for the matrix products.
 *
 * Decode issues a few hundred short parallel sections per token, so waking
 * workers through a condition variable each time would cost more than the
 * work. Workers spin on a generation counter for a short while and only
 * then sleep on the condition variable.
 *
 * A task has n shares, and whichever thread comes first takes the next
 * one: the caller starts on share 0 at once and goes on to the others if
 * no worker has claimed them. This matters on a busy machine: when another
 * process holds the second core, the worker may not run for a whole
 * scheduler tick (milliseconds), and a fixed split would make every one of
 * a token's ~170 products wait that long for the worker's half. Here the
 * caller just does that half itself and the task costs what one thread
 * costs. A worker that wakes after the task was closed backs out without
 * touching it (the open/active handshake in eng_pool_run). Callers that
 * also split their share's work dynamically (matmul.c's tile counter) keep
 * both threads busy to the end when both do run.
 */
#include "internal.h"

#include <pthread.h>
#include <sched.h>
#include <time.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define cpu_relax() _mm_pause()
#else
#define cpu_relax() ((void)0)
#endif

/* About 100 µs of spinning before sleeping: longer than the gap between two
 * matmuls of one token, much shorter than the gap between two requests. */
#define SPIN_ITERS 20000

/* When the workers were late (did not join at all, or kept the caller
 * waiting at the end for more than a quarter of the task) in LATE_OF_16
 * of the last 16 tasks, the other cores are busy with other processes:
 * run the next tasks on the caller alone, then try the workers again.
 * Measured on a 2-core machine with a training job and benchmarks
 * running: 2 threads took 1.5-2x as long per token as 1 thread without
 * this.
 *
 * How many tasks: SOLO_MIN (under one token of Qwen2.5-0.5B, about 170
 * tasks) after SOLO_CALM tasks with the workers and no such run, twice the
 * last run's length (up to SOLO_MAX) when the workers were late again
 * sooner. On an idle VM a hypervisor hiccup of a fraction of a
 * millisecond made 8 of 16 short decode tasks late 2-6 times per `nib
 * bench`, and a fixed 1024 tasks then decoded six tokens on one core;
 * against a busy loop holding one of the two cores, the doubling runs
 * decoded the 0.5B Q8_0 model at 63-65 tok/s, the fixed ones at 61-62,
 * two threads throughout at 50-53. */
#define LATE_OF_16   8
#define LATE_MIN_S   20e-6
#define SOLO_MIN     128
#define SOLO_MAX     8192
#define SOLO_CALM    4096
#define WAKE_GRACE_S 1e-3

struct eng_pool {
    int n;              /* threads including the caller */
    pthread_t *threads; /* [n - 1] */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    atomic_uint gen;       /* bumped for each task (never 0) */
    atomic_uint open_gen;  /* gen of the task workers may join; 0: none */
    atomic_int next_share; /* next unclaimed share of the open task */
    atomic_int active;     /* workers inside a task (joined or backing out) */
    atomic_int sleepers;   /* workers blocked on cv */
    atomic_bool stop;
    eng_task_fn fn;
    void *arg;
    /* caller-thread only: the adaptive fallback to one thread */
    unsigned late_bits; /* last 16 tasks, 1 = the workers were late */
    int solo_left;      /* tasks still to run on the caller alone */
    int solo_len;       /* the next such run's length */
    int pooled;         /* tasks with the workers since the last such run */
    double wake_t;      /* when sleeping workers were first woken; < 0 none */
};

static void *worker_main(void *arg) {
    eng_pool *p = arg;
    unsigned seen = 0;
    for (;;) {
        unsigned g;
        int spins = 0;
        while ((g = atomic_load_explicit(&p->gen, memory_order_acquire)) ==
                   seen &&
               !atomic_load(&p->stop)) {
            if (++spins < SPIN_ITERS) {
                cpu_relax();
                continue;
            }
            pthread_mutex_lock(&p->mu);
            atomic_fetch_add(&p->sleepers, 1);
            while (atomic_load(&p->gen) == seen && !atomic_load(&p->stop))
                pthread_cond_wait(&p->cv, &p->mu);
            atomic_fetch_sub(&p->sleepers, 1);
            pthread_mutex_unlock(&p->mu);
            spins = 0;
        }
        if (atomic_load(&p->stop))
            return NULL;
        seen = g;
        /* Announce first, then check the task is still open: the caller
         * closes first, then waits for active == 0 (both seq_cst), so
         * either it sees us and waits, or we see it closed and leave
         * without touching fn/arg, which may be gone. */
        atomic_fetch_add(&p->active, 1);
        if (atomic_load(&p->open_gen) == g) {
            eng_task_fn fn = p->fn;
            void *arg = p->arg;
            int k;
            while ((k = atomic_fetch_add(&p->next_share, 1)) < p->n)
                fn(arg, k, p->n);
        }
        atomic_fetch_sub(&p->active, 1);
    }
}

eng_pool *eng_pool_new(int n_threads) {
    eng_pool *p = nib_calloc(1, sizeof *p);
    p->n = n_threads < 1 ? 1 : n_threads;
    p->wake_t = -1;
    p->solo_len = SOLO_MIN;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    p->threads = nib_calloc((size_t)p->n, sizeof(pthread_t));
    for (int i = 1; i < p->n; i++) {
        if (pthread_create(&p->threads[i - 1], NULL, worker_main, p) != 0) {
            /* Run with the threads we got rather than fail the request. */
            nib_log_warn("could not start worker thread %d; using %d", i, i);
            p->n = i;
            break;
        }
    }
    return p;
}

void eng_pool_delete(eng_pool *p) {
    if (!p)
        return;
    pthread_mutex_lock(&p->mu);
    atomic_store(&p->stop, true);
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    for (int i = 1; i < p->n; i++)
        pthread_join(p->threads[i - 1], NULL);
    pthread_cond_destroy(&p->cv);
    pthread_mutex_destroy(&p->mu);
    nib_free(p->threads);
    nib_free(p);
}

int eng_pool_size(const eng_pool *p) {
    return p->n;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

void eng_pool_run(eng_pool *p, eng_task_fn fn, void *arg) {
    if (p->n == 1) {
        fn(arg, 0, 1);
        return;
    }
    if (p->solo_left > 0) {
        p->solo_left--;
        for (int k = 0; k < p->n; k++)
            fn(arg, k, p->n);
        return;
    }
    p->fn = fn;
    p->arg = arg;
    atomic_store(&p->next_share, 0);
    unsigned g = atomic_load(&p->gen) + 1;
    if (g == 0)
        g = 1;
    atomic_store(&p->open_gen, g);
    /* seq_cst pairs with the sleepers check below (Dekker-style). */
    atomic_store(&p->gen, g);
    double t0 = now_s();
    /* A worker asleep at the start of the task is woken; tasks in the
     * first WAKE_GRACE_S after that first wake-up do not count as late. */
    bool waking = false;
    if (atomic_load(&p->sleepers) > 0) {
        if (p->wake_t < 0)
            p->wake_t = t0;
        waking = t0 - p->wake_t < WAKE_GRACE_S;
        pthread_mutex_lock(&p->mu);
        pthread_cond_broadcast(&p->cv);
        pthread_mutex_unlock(&p->mu);
    } else {
        p->wake_t = -1;
    }
    int k, mine = 0;
    while ((k = atomic_fetch_add(&p->next_share, 1)) < p->n) {
        fn(arg, k, p->n);
        mine++;
    }
    /* Every share is claimed; close the task and wait for workers still
     * running theirs (or just backing out). */
    atomic_store(&p->open_gen, 0u);
    double t1 = now_s();
    int spins = 0;
    while (atomic_load(&p->active) > 0) {
        if (++spins < SPIN_ITERS)
            cpu_relax();
        else
            sched_yield();
    }
    /* Only tasks long enough for a running worker to have joined count:
     * a spinning worker joins within a microsecond or two, but on a
     * product of a few microseconds (attention over a short context, the
     * K/V projections) the caller can still finish first. Counting those
     * sent an idle machine into SOLO_TASKS runs 11 times per `nib bench`
     * and cost 10% of its decode speed. */
    /* Nor do tasks right after waking a sleeping worker: it was idle,
     * not kept from running, and in a VM an idle virtual CPU takes a while
     * to come back. Counting those sent the first token after a pause (the
     * caller busy with other work for a few milliseconds, as between two
     * keystrokes) into one-thread runs, after which the worker slept and
     * was late again: 21 against 14 ms per token (Q4_K_M 0.5B). A worker
     * still asleep WAKE_GRACE_S after the first wake-up counts as late:
     * another process holds its core. */
    const double waited = now_s() - t1, busy = t1 - t0;
    bool late =
        !waking && ((mine == p->n && busy > LATE_MIN_S) ||
                    (spins > 0 && waited > busy / 4 && waited > LATE_MIN_S));
    p->late_bits = (p->late_bits << 1) | (late ? 1u : 0u);
    if (p->pooled < SOLO_CALM)
        p->pooled++;
    if (__builtin_popcount(p->late_bits & 0xffffu) >= LATE_OF_16) {
        if (p->pooled >= SOLO_CALM)
            p->solo_len = SOLO_MIN;
        p->solo_left = p->solo_len;
        p->solo_len = NIB_MIN(2 * p->solo_len, SOLO_MAX);
        p->pooled = 0;
        p->late_bits = 0;
    }
}
