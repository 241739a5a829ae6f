/*
 * lsp.h — nib's language server (`nib lsp`).
 *
 * The server speaks the Language Server Protocol (3.17, plus 3.18's
 * textDocument/inlineCompletion) over stdin/stdout on a libuv loop, keeps the
 * open documents, and runs completions on an inference thread
 * (completion/completion.h). See lsp/server.c for the message flow.
 */
#ifndef NIB_LSP_H
#define NIB_LSP_H

/* Run the server until the client sends `exit` or closes stdin.
 * argv[0] is "lsp"; options:
 *   --log-file PATH    also append the log to PATH
 *   --log-level LEVEL  error | warn | info | debug (stderr and the file;
 *                      default info)
 *   --model PATH       default model when settings name none (otherwise
 *                      $NIB_MODEL, then the shipped models/nib-coder.gguf
 *                      found by nib_default_model; NIB_MODEL="" means no
 *                      default)
 *   --max-message N    cap on one message body in bytes (default 64 MiB)
 *   -h, --help
 * Returns the process exit status: 0 after shutdown then exit, 1 when the
 * stream ends or `exit` comes without `shutdown`, 2 for bad options.
 * Runs on the calling thread; call once per process (it installs the log
 * sink and owns stdin/stdout while it runs). */
int lsp_main(int argc, char **argv);

#endif
