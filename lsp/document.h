/*
 * document.h — the text of one open document, with its line index and the
 * conversions between LSP positions and byte offsets. Internal to lsp/
 * (tests include it too).
 *
 * Text is UTF-8 in a gap buffer; the line index is a second gap buffer whose
 * entries after the gap are stored as distances from the end of the text, so
 * an edit touches only the bytes and lines it changes plus whatever lies
 * between it and the previous edit (a keystroke next to the last one costs
 * O(1) beyond its own size). Line breaks are "\n", "\r\n" and a lone "\r",
 * as LSP defines them.
 *
 * Positions arrive in the negotiated encoding (UTF-8 bytes, UTF-16 code
 * units or code points). Out-of-range positions are clamped as the spec and
 * VS Code's reference TextDocument do: a character past the end of its line
 * means the end of the line (before the line break), a line past the last
 * means the end of the document. A character that falls inside a
 * multi-unit character (half a surrogate pair) rounds down to its start.
 *
 * Not thread-safe; documents live on the loop thread.
 */
#ifndef NIB_LSP_DOCUMENT_H
#define NIB_LSP_DOCUMENT_H

#include <stddef.h>
#include <stdint.h>

#include "common/nib.h"

typedef enum {
    LSP_ENC_UTF16 = 0, /* the LSP default */
    LSP_ENC_UTF8,
    LSP_ENC_UTF32,
} lsp_encoding;

/* "utf-16", "utf-8", "utf-32". */
const char *lsp_encoding_name(lsp_encoding e);

typedef struct lsp_doc lsp_doc;

/* *out is new (free with lsp_doc_delete). Copies `len` bytes of `text`.
 * Returns 0 or NIB_ENOMEM. */
int lsp_doc_new(const char *text, size_t len, lsp_doc **out);
void lsp_doc_delete(lsp_doc *d);

/* Replace the whole text. On NIB_ENOMEM the document is unchanged. */
int lsp_doc_set_text(lsp_doc *d, const char *text, size_t len);

/* Replace bytes [start, end) with `len` bytes of `text` (start <= end <=
 * length, asserted). On NIB_ENOMEM the document is unchanged. */
int lsp_doc_replace(lsp_doc *d, size_t start, size_t end, const char *text,
                    size_t len);

size_t lsp_doc_length(const lsp_doc *d);
size_t lsp_doc_line_count(const lsp_doc *d);
/* Byte offset where `line` starts; line must be < line count. */
size_t lsp_doc_line_start(const lsp_doc *d, size_t line);
/* Byte offset of the end of `line`, before its line break. */
size_t lsp_doc_line_end(const lsp_doc *d, size_t line);
/* Byte at offset i < length. */
unsigned char lsp_doc_byte(const lsp_doc *d, size_t i);

/* Copy bytes [start, end) into out (end - start bytes, no NUL added). */
void lsp_doc_copy(const lsp_doc *d, size_t start, size_t end, char *out);
/* New NUL-terminated copy of bytes [start, end) (caller frees with
 * nib_free), or NULL when the allocation fails. */
char *lsp_doc_dup(const lsp_doc *d, size_t start, size_t end);

/* LSP position -> byte offset, clamped as described above. */
size_t lsp_doc_offset(const lsp_doc *d, lsp_encoding enc, uint64_t line,
                      uint64_t character);
/* Byte offset (clamped to the length) -> LSP position. */
void lsp_doc_position(const lsp_doc *d, lsp_encoding enc, size_t offset,
                      uint32_t *line, uint32_t *character);

/* Recompute the line index from scratch and compare; 0 when consistent.
 * For tests. */
int lsp_doc_check(const lsp_doc *d);

#endif
