/*
 * pool.c — a fixed pool of worker threads for the matrix products.
 *
 * Decode issues a few hundred short parallel sections per token, so waking
 * workers through a condition variable each time would cost more than the
 * work. Workers spin on a generation counter for a short while and only
 * then sleep on the condition variable; the caller thread takes share 0 of
 * every task itself.
 */
#include "internal.h"

#include <pthread.h>
#include <sched.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define cpu_relax() _mm_pause()
#else
#define cpu_relax() ((void)0)
#endif

/* About 100 µs of spinning before sleeping: longer than the gap between two
 * matmuls of one token, much shorter than the gap between two requests. */
#define SPIN_ITERS 20000

struct eng_pool {
    int n;                 /* threads including the caller */
    pthread_t *threads;    /* [n - 1] */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    atomic_uint gen;       /* bumped for each task */
    atomic_int pending;    /* shares not finished yet */
    atomic_int sleepers;   /* workers blocked on cv */
    atomic_bool stop;
    eng_task_fn fn;
    void *arg;
};

typedef struct {
    eng_pool *p;
    int ith;
} worker_arg;

static void *worker_main(void *arg_) {
    worker_arg *wa = arg_;
    eng_pool *p = wa->p;
    int ith = wa->ith;
    nib_free(wa);
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
        p->fn(p->arg, ith, p->n);
        atomic_fetch_sub_explicit(&p->pending, 1, memory_order_release);
    }
}

eng_pool *eng_pool_new(int n_threads) {
    eng_pool *p = nib_calloc(1, sizeof *p);
    p->n = n_threads < 1 ? 1 : n_threads;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    p->threads = nib_calloc((size_t)p->n, sizeof(pthread_t));
    for (int i = 1; i < p->n; i++) {
        worker_arg *wa = nib_malloc(sizeof *wa);
        wa->p = p;
        wa->ith = i;
        if (pthread_create(&p->threads[i - 1], NULL, worker_main, wa) != 0) {
            /* Run with the threads we got rather than fail the request. */
            nib_free(wa);
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

int eng_pool_size(const eng_pool *p) { return p->n; }

void eng_pool_run(eng_pool *p, eng_task_fn fn, void *arg) {
    if (p->n == 1) {
        fn(arg, 0, 1);
        return;
    }
    p->fn = fn;
    p->arg = arg;
    atomic_store(&p->pending, p->n - 1);
    /* seq_cst pairs with the sleepers check below (Dekker-style). */
    atomic_fetch_add(&p->gen, 1);
    if (atomic_load(&p->sleepers) > 0) {
        pthread_mutex_lock(&p->mu);
        pthread_cond_broadcast(&p->cv);
        pthread_mutex_unlock(&p->mu);
    }
    fn(arg, 0, p->n);
    int spins = 0;
    while (atomic_load_explicit(&p->pending, memory_order_acquire) > 0) {
        if (++spins < SPIN_ITERS)
            cpu_relax();
        else
            sched_yield();
    }
}
