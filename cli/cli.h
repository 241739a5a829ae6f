/* cli.h — helpers shared by the command-line subcommands. */
#ifndef NIB_CLI_H
#define NIB_CLI_H

#include <stdbool.h>
#include <stddef.h>

#include "common/nib.h"

static inline bool cli_default_model(char *buf, size_t n) {
    return nib_default_model(false, buf, n);
}

#endif
