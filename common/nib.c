#include "nib.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* ---- errors ------------------------------------------------------------ */

const char *nib_strerror(int err) {
    switch (err) {
#define XX(name, code, msg)                                                    \
    case code:                                                                 \
        return msg;
        NIB_ERRNO_MAP(XX)
#undef XX
    case 0:
        return "success";
    default:
        return "unknown error";
    }
}

/* ---- allocation -------------------------------------------------------- */

static nib_allocator g_alloc = {malloc, realloc, free};

void nib_set_allocator(const nib_allocator *a) {
    if (a)
        g_alloc = *a;
    else
        g_alloc = (nib_allocator){malloc, realloc, free};
}

static void oom(size_t size) {
    fprintf(stderr, "nib: out of memory allocating %zu bytes\n", size);
    abort();
}

void *nib_malloc(size_t size) {
    void *p = g_alloc.malloc(size ? size : 1);
    if (!p)
        oom(size);
    return p;
}

void *nib_calloc(size_t n, size_t size) {
    void *p = nib_try_calloc(n, size);
    if (!p)
        oom(n * size);
    return p;
}

void *nib_realloc(void *ptr, size_t size) {
    void *p = g_alloc.realloc(ptr, size ? size : 1);
    if (!p)
        oom(size);
    return p;
}

char *nib_strdup(const char *s) { return nib_strndup(s, strlen(s)); }

char *nib_strndup(const char *s, size_t n) {
    char *p = nib_malloc(n + 1);
    memcpy(p, s, n);
    p[n] = 0;
    return p;
}

void nib_free(void *ptr) {
    if (ptr)
        g_alloc.free(ptr);
}

void *nib_try_malloc(size_t size) { return g_alloc.malloc(size ? size : 1); }

void *nib_try_calloc(size_t n, size_t size) {
    if (size && n > SIZE_MAX / size)
        return NULL;
    size_t bytes = n * size;
    void *p = g_alloc.malloc(bytes ? bytes : 1);
    if (p)
        memset(p, 0, bytes);
    return p;
}

void *nib_try_realloc(void *ptr, size_t size) {
    return g_alloc.realloc(ptr, size ? size : 1);
}

/* ---- logging ----------------------------------------------------------- */

static pthread_mutex_t g_log_lock = PTHREAD_MUTEX_INITIALIZER;
static nib_log_level g_log_level = NIB_LOG_WARN;
static nib_log_sink g_log_sink;
static void *g_log_ud;

void nib_log_set_level(nib_log_level level) { g_log_level = level; }
nib_log_level nib_log_get_level(void) { return g_log_level; }

void nib_log_set_sink(nib_log_sink sink, void *ud) {
    pthread_mutex_lock(&g_log_lock);
    g_log_sink = sink;
    g_log_ud = ud;
    pthread_mutex_unlock(&g_log_lock);
}

void nib_vlog(nib_log_level level, const char *fmt, va_list ap) {
    if (level > g_log_level)
        return;
    char buf[2048];
    vsnprintf(buf, sizeof buf, fmt, ap);
    pthread_mutex_lock(&g_log_lock);
    if (g_log_sink) {
        g_log_sink(level, buf, g_log_ud);
    } else {
        static const char *names[] = {"", "error", "warn", "info", "debug"};
        fprintf(stderr, "nib %s: %s\n", names[level], buf);
    }
    pthread_mutex_unlock(&g_log_lock);
}

void nib_log(nib_log_level level, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    nib_vlog(level, fmt, ap);
    va_end(ap);
}

/* ---- small helpers ------------------------------------------------------ */

uint64_t nib_now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

int nib_read_file(const char *path, char **out, size_t *len) {
    *out = NULL;
    if (len)
        *len = 0;
    FILE *f = fopen(path, "rb");
    if (!f)
        return errno == ENOENT ? NIB_ENOENT : NIB_EIO;
    size_t cap = 4096, n = 0;
    char *buf = nib_try_malloc(cap);
    if (!buf) {
        fclose(f);
        return NIB_ENOMEM;
    }
    for (;;) {
        if (n + 1 >= cap) {
            char *nb = nib_try_realloc(buf, cap * 2);
            if (!nb) {
                nib_free(buf);
                fclose(f);
                return NIB_ENOMEM;
            }
            buf = nb;
            cap *= 2;
        }
        size_t got = fread(buf + n, 1, cap - n - 1, f);
        n += got;
        if (got == 0)
            break;
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        nib_free(buf);
        return NIB_EIO;
    }
    buf[n] = 0;
    *out = buf;
    if (len)
        *len = n;
    return 0;
}

void nib_errf(char *err, size_t err_size, const char *fmt, ...) {
    if (!err || !err_size)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, err_size, fmt, ap);
    va_end(ap);
}

bool nib_default_model(bool draft, char *buf, size_t size) {
    const char *env = getenv(draft ? "NIB_DRAFT_MODEL" : "NIB_MODEL");
    if (env && *env) {
        snprintf(buf, size, "%s", env);
        return access(buf, R_OK) == 0;
    }
    char exe[4096];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0)
        return false;
    exe[n] = 0;
    char *slash = strrchr(exe, '/');
    if (!slash)
        return false;
    *slash = 0;
    const char *file = draft ? "nib-coder-draft.gguf" : "nib-coder.gguf";
    static const char *rel[] = {"../models", "../../models",
                                "../share/nib/models"};
    for (size_t i = 0; i < NIB_ARRAY_LEN(rel); i++) {
        snprintf(buf, size, "%s/%s/%s", exe, rel[i], file);
        if (access(buf, R_OK) == 0)
            return true;
    }
    return false;
}
