/* cli.h — helpers shared by the command-line subcommands. */
#ifndef NIB_CLI_H
#define NIB_CLI_H

#include <stdbool.h>
#include <stddef.h>

#include "common/nib.h"

static inline bool cli_default_model(char *buf, size_t n) {
    return nib_default_model(false, buf, n);
}

/* Parse a whole string as a decimal int in [lo, hi] / a finite float;
 * false (nothing written) on anything else. */
bool cli_parse_int(const char *s, long lo, long hi, int *out);
bool cli_parse_float(const char *s, float *out);

/* Subcommands living in their own files. Each takes argv starting at the
 * subcommand's name and returns the process exit code. Declared weak so
 * the CLI links while one is being written; main() reports a missing one. */
__attribute__((weak)) int cli_quantize(int argc, char **argv);
__attribute__((weak)) int cli_mkmodel(int argc, char **argv);
__attribute__((weak)) int cli_bench(int argc, char **argv);

#endif
