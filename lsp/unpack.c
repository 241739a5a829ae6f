/*
 * unpack.c — json_unpack_ex with errors that name the field (style rule
 * L4). jansson reports *what* went wrong and the position in the format
 * string where it happened; replaying the format up to that position with
 * the same key arguments recovers *where*: the path of keys leading there.
 */
#include <stdarg.h>
#include <string.h>

#include "lsp/server.h"

#define UNPACK_DEPTH 16

/* Walk fmt up to `pos`, consuming the variadic arguments the way
 * json_unpack does, and write the key path open at that point. */
static void unpack_path(const char *fmt, int pos, va_list ap, char *out,
                        size_t out_size) {
    const char *keys[UNPACK_DEPTH];
    char kind[UNPACK_DEPTH]; /* '{' or '[' */
    int depth = 0;
    int expect_key = 0; /* inside an object, at a key */
    for (int i = 0; fmt[i] && i < pos; i++) {
        char c = fmt[i];
        if (c == ' ' || c == ':' || c == ',' || c == '\t' || c == '\n' ||
            c == '?' || c == '!' || c == '*')
            continue;
        if (expect_key && depth > 0 && kind[depth - 1] == '{') {
            if (c == '}') {
                depth--;
                expect_key = depth > 0 && kind[depth - 1] == '{';
                continue;
            }
            if (c == 's') {
                keys[depth - 1] = va_arg(ap, const char *);
                expect_key = 0;
            }
            continue;
        }
        switch (c) {
        case '{':
        case '[':
            if (depth < UNPACK_DEPTH) {
                kind[depth] = c;
                keys[depth] = NULL;
                depth++;
            }
            expect_key = c == '{';
            continue;
        case '}':
        case ']':
            if (depth > 0)
                depth--;
            break;
        case 's':
            (void)va_arg(ap, const char **);
            if (fmt[i + 1] == '%') {
                (void)va_arg(ap, size_t *);
                i++;
            }
            break;
        case 'b':
        case 'i':
            (void)va_arg(ap, int *);
            break;
        case 'I':
            (void)va_arg(ap, json_int_t *);
            break;
        case 'f':
        case 'F':
            (void)va_arg(ap, double *);
            break;
        case 'o':
        case 'O':
            (void)va_arg(ap, json_t **);
            break;
        default:
            break;
        }
        /* A value finished: the enclosing object expects a key again. */
        expect_key = depth > 0 && kind[depth - 1] == '{';
    }
    size_t n = 0;
    out[0] = 0;
    for (int d = 0; d < depth; d++) {
        if (!keys[d])
            continue;
        int w = snprintf(out + n, out_size - n, "%s%s", n ? "." : "", keys[d]);
        if (w < 0 || (size_t)w >= out_size - n)
            break;
        n += (size_t)w;
    }
    if (!out[0])
        snprintf(out, out_size, "params");
}

int lsp_unpack(json_t *v, char *msg, size_t msg_size, const char *fmt, ...) {
    va_list ap, ap2;
    va_start(ap, fmt);
    va_copy(ap2, ap);
    json_error_t e;
    int r = v ? json_vunpack_ex(v, &e, 0, fmt, ap) : -1;
    if (r != 0) {
        char path[256];
        if (v) {
            unpack_path(fmt, e.position, ap2, path, sizeof path);
            /* jansson capitalizes; lower-case reads better after a colon. */
            char text[JSON_ERROR_TEXT_LENGTH];
            snprintf(text, sizeof text, "%s", e.text);
            if (text[0] >= 'A' && text[0] <= 'Z')
                text[0] = (char)(text[0] + 32);
            nib_errf(msg, msg_size, "%s: %s", path, text);
        } else {
            nib_errf(msg, msg_size, "params: missing");
        }
    }
    va_end(ap2);
    va_end(ap);
    return r;
}
