/* main.c — the nib command line. The only place that calls exit(). */
#include <stdio.h>
#include <string.h>

#include "engine/engine.h"

int main(int argc, char **argv) {
    (void)argc;
    (void)argv;
    fprintf(stderr, "nib: not yet\n");
    return 1;
}
