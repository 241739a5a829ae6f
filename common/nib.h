/*
 * nib.h — the base every module shares: error codes, allocation, logging.
 *
 * Errors follow libuv: a function returns 0 (or a count) on success and a
 * negative NIB_E* code on failure. nib_strerror() names each code.
 * Allocation goes through nib_malloc & co. so tests can swap the allocator;
 * they abort on out-of-memory, because an assistant that cannot allocate a
 * few bytes has nothing useful left to do. Allocations whose size comes from
 * input (model files, documents) use nib_try_malloc and report NIB_ENOMEM.
 */
#ifndef NIB_H
#define NIB_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- errors ------------------------------------------------------------ */

#define NIB_ERRNO_MAP(XX)                                                      \
    XX(EINVAL, -1, "invalid argument")                                         \
    XX(ENOMEM, -2, "out of memory")                                            \
    XX(EIO, -3, "i/o error")                                                   \
    XX(ENOENT, -4, "no such file")                                             \
    XX(EBADMODEL, -5, "invalid or corrupt model file")                         \
    XX(EUNSUPPORTED, -6, "unsupported feature")                                \
    XX(ERANGE, -7, "value out of range")                                       \
    XX(ECANCELED, -8, "operation canceled")                                    \
    XX(ENOSPC, -9, "buffer too small")                                         \
    XX(ECTXFULL, -10, "context window is full")                                \
    XX(EPROTO, -11, "protocol error")                                          \
    XX(ETIMEDOUT, -12, "timed out")                                            \
    XX(ESTATE, -13, "operation not valid in this state")

typedef enum {
#define XX(name, code, msg) NIB_##name = code,
    NIB_ERRNO_MAP(XX)
#undef XX
} nib_errno;

/* Static message for a NIB_E* code; "unknown error" for anything else. */
const char *nib_strerror(int err);

/* ---- allocation -------------------------------------------------------- */

typedef struct {
    void *(*malloc)(size_t size);
    void *(*realloc)(void *ptr, size_t size);
    void (*free)(void *ptr);
} nib_allocator;

/* Replace the allocator (tests count or fail allocations). Call before any
 * allocation; passing NULL restores the libc one. Not thread-safe. */
void nib_set_allocator(const nib_allocator *a);

/* These abort with a message on out-of-memory: use them for sizes the code
 * itself decides. nib_free(NULL) is a no-op. */
void *nib_malloc(size_t size);
void *nib_calloc(size_t n, size_t size);
void *nib_realloc(void *ptr, size_t size);
char *nib_strdup(const char *s);
char *nib_strndup(const char *s, size_t n);
void nib_free(void *ptr);

/* For sizes that come from input: NULL on failure (or overflow of n*size),
 * and the caller reports NIB_ENOMEM. */
void *nib_try_malloc(size_t size);
void *nib_try_calloc(size_t n, size_t size);
void *nib_try_realloc(void *ptr, size_t size);

/* ---- logging ----------------------------------------------------------- */

typedef enum {
    NIB_LOG_ERROR = 1,
    NIB_LOG_WARN = 2,
    NIB_LOG_INFO = 3,
    NIB_LOG_DEBUG = 4,
} nib_log_level;

/* A sink receives every message at or below the current level. The default
 * sink writes to stderr. Sinks are called from any thread, under a lock. */
typedef void (*nib_log_sink)(nib_log_level level, const char *msg, void *ud);

void nib_log_set_level(nib_log_level level);
nib_log_level nib_log_get_level(void);
void nib_log_set_sink(nib_log_sink sink, void *ud);
void nib_log(nib_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void nib_vlog(nib_log_level level, const char *fmt, va_list ap);

#define nib_log_error(...) nib_log(NIB_LOG_ERROR, __VA_ARGS__)
#define nib_log_warn(...) nib_log(NIB_LOG_WARN, __VA_ARGS__)
#define nib_log_info(...) nib_log(NIB_LOG_INFO, __VA_ARGS__)
#define nib_log_debug(...) nib_log(NIB_LOG_DEBUG, __VA_ARGS__)

/* ---- small helpers ------------------------------------------------------ */

/* Monotonic clock in nanoseconds. */
uint64_t nib_now_ns(void);

/* Read a whole file into a new NUL-terminated buffer (caller frees with
 * nib_free). Returns 0, NIB_ENOENT, NIB_EIO or NIB_ENOMEM. */
int nib_read_file(const char *path, char **out, size_t *len);

/* snprintf into an error buffer that may be NULL or zero-sized. */
void nib_errf(char *err, size_t err_size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Path of the model to use when none is configured: $NIB_MODEL when set,
 * else the model shipped in nib's models/ folder (models/nib-coder.gguf,
 * looked up next to the binary: ../models, ../../models and
 * ../share/nib/models). With `draft`, the shipped draft model
 * (models/nib-coder-draft.gguf; $NIB_DRAFT_MODEL). Writes the path into buf
 * and returns true when such a file exists. */
bool nib_default_model(bool draft, char *buf, size_t size);

#define NIB_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define NIB_MIN(a, b) ((a) < (b) ? (a) : (b))
#define NIB_MAX(a, b) ((a) > (b) ? (a) : (b))

#endif
