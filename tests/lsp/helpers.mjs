// helpers.mjs — start `nib lsp` and talk to it the way VS Code does
// (vscode-jsonrpc + vscode-languageserver-protocol), or with raw bytes.
import { spawn } from 'node:child_process';
import { after } from 'node:test';
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  createProtocolConnection,
  StreamMessageReader,
  StreamMessageWriter,
  WorkDoneProgress,
} from 'vscode-languageserver-protocol/node.js';

const here = dirname(fileURLToPath(import.meta.url));
export const repoRoot = resolve(here, '..', '..');

export function nibBinary() {
  const b = process.env.NIB_BINARY || join(repoRoot, 'build', 'nib');
  if (!existsSync(b)) throw new Error(`nib binary not found: ${b} (set NIB_BINARY)`);
  return b;
}

// Path of a file in ../shared (or $NIB_SHARED), or null when absent.
export function shared(rel) {
  const dir = process.env.NIB_SHARED || resolve(repoRoot, '..', 'shared');
  const p = join(dir, rel);
  return existsSync(p) ? p : null;
}

export const STAR = shared('models/rq-star-q8_0.gguf');
export const QWEN = shared('models/rq-qwen-q4_k_m.gguf');
export const NO_MODEL_MSG = '../shared/models absent: model tests skipped';

// A failed assertion must not leave a server keeping the test file alive.
const live = new Set();
after(() => { for (const p of live) p.kill('SIGKILL'); });

export function spawnServer({ args = [], env = {} } = {}) {
  const proc = spawn(nibBinary(), ['lsp', '--log-level', 'warn', ...args], {
    stdio: ['pipe', 'pipe', 'pipe'],
    env: { ...process.env, NIB_MODEL: '', ...env },
  });
  proc.stderrText = '';
  proc.stderr.on('data', (d) => { proc.stderrText += d.toString(); });
  live.add(proc);
  proc.exited = new Promise((res) => proc.on('exit', (code, sig) => { live.delete(proc); res({ code, sig }); }));
  return proc;
}

// A connected client. Collects notifications for inspection.
export async function startClient({
  args = [], env = {}, capabilities = {}, initializationOptions, init = true,
  onConfiguration, trace,
} = {}) {
  const proc = spawnServer({ args, env });
  const conn = createProtocolConnection(
    new StreamMessageReader(proc.stdout), new StreamMessageWriter(proc.stdin));
  const notes = [];
  conn.onNotification((method, params) => notes.push({ method, params }));
  const progressCreates = [];
  // vscode-jsonrpc routes $/progress to per-token handlers, not to the
  // catch-all notification handler: register one per created token.
  conn.onRequest('window/workDoneProgress/create', (p) => {
    progressCreates.push(p);
    conn.onProgress(WorkDoneProgress.type, p.token,
      (value) => notes.push({ method: '$/progress', params: { token: p.token, value } }));
    return null;
  });
  conn.onRequest('workspace/configuration', (p) => (onConfiguration ? onConfiguration(p) : [{}]));
  conn.listen();
  const c = { proc, conn, notes, progressCreates, result: null };
  if (init) {
    c.result = await conn.sendRequest('initialize', {
      processId: process.pid, rootUri: null, capabilities, initializationOptions,
      ...(trace ? { trace } : {}),
    });
    await conn.sendNotification('initialized', {});
  }
  return c;
}

export async function stopClient(c, { expectCode = 0 } = {}) {
  await c.conn.sendRequest('shutdown');
  await c.conn.sendNotification('exit');
  const { code } = await c.proc.exited;
  c.conn.dispose();
  if (code !== expectCode) {
    throw new Error(`nib lsp exited with ${code}, expected ${expectCode}\n${c.proc.stderrText}`);
  }
}

export async function waitFor(pred, ms = 5000, what = 'condition') {
  const t0 = Date.now();
  for (;;) {
    const v = pred();
    if (v) return v;
    if (Date.now() - t0 > ms) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

export async function waitModelReady(c, ms = 20000) {
  const t0 = Date.now();
  for (;;) {
    const st = await c.conn.sendRequest('workspace/executeCommand', { command: 'nib.status' });
    if (st.modelState === 'ready') return st;
    if (st.modelState === 'failed') throw new Error(`model failed: ${st.message}`);
    if (Date.now() - t0 > ms) throw new Error('model not ready');
    await new Promise((r) => setTimeout(r, 20));
  }
}

export function openDoc(c, uri, text, languageId = 'python', version = 1) {
  return c.conn.sendNotification('textDocument/didOpen', {
    textDocument: { uri, languageId, version, text },
  });
}

export async function docText(c, uri) {
  return (await c.conn.sendRequest('nib/_documentText', { uri })).text;
}

// ---- raw byte client -------------------------------------------------------

export function frame(body) {
  const b = Buffer.isBuffer(body) ? body : Buffer.from(typeof body === 'string' ? body : JSON.stringify(body));
  return Buffer.concat([Buffer.from(`Content-Length: ${b.length}\r\n\r\n`), b]);
}

// Parses the server's output into messages as they arrive.
export function rawClient({ args = [], env = {} } = {}) {
  const proc = spawnServer({ args, env });
  let buf = Buffer.alloc(0);
  const messages = [];
  proc.stdout.on('data', (d) => {
    buf = Buffer.concat([buf, d]);
    for (;;) {
      const h = buf.indexOf('\r\n\r\n');
      if (h < 0) break;
      const m = /Content-Length: (\d+)/i.exec(buf.subarray(0, h).toString());
      if (!m) throw new Error('server sent a bad header: ' + buf.subarray(0, h));
      const n = Number(m[1]);
      if (buf.length < h + 4 + n) break;
      messages.push(JSON.parse(buf.subarray(h + 4, h + 4 + n).toString()));
      buf = buf.subarray(h + 4 + n);
    }
  });
  const send = (bytes) => proc.stdin.write(bytes);
  const responseTo = (id, ms = 5000) => waitFor(
    () => messages.find((m) => m.id === id && !m.method), ms, `response to ${JSON.stringify(id)}`);
  return { proc, messages, send, responseTo };
}

// ---- reference text with LSP positions -------------------------------------

// Line starts of a JS (UTF-16) string, with "\n", "\r\n" and "\r" breaks.
export function lineStarts(s) {
  const starts = [0];
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 10) starts.push(i + 1);
    else if (c === 13) {
      if (s.charCodeAt(i + 1) === 10) { starts.push(i + 2); i++; } else starts.push(i + 1);
    }
  }
  return starts;
}

function lineEnd(s, starts, line) {
  let end = line + 1 < starts.length ? starts[line + 1] : s.length;
  if (end > starts[line] && s[end - 1] === '\n') end--;
  if (end > starts[line] && s[end - 1] === '\r' && line + 1 < starts.length) end--;
  return end;
}

function units(cp, enc) {
  if (enc === 'utf-16') return cp > 0xffff ? 2 : 1;
  if (enc === 'utf-32') return 1;
  return cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
}

// UTF-16 index -> LSP position in `enc`.
export function positionAt(s, starts, idx, enc) {
  let lo = 0, hi = starts.length - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (starts[mid] <= idx) lo = mid; else hi = mid - 1;
  }
  let ch = 0;
  for (let i = starts[lo]; i < idx;) {
    const cp = s.codePointAt(i);
    ch += units(cp, enc);
    i += cp > 0xffff ? 2 : 1;
  }
  return { line: lo, character: ch };
}

// LSP position in `enc` -> UTF-16 index, clamped as the spec says.
export function offsetAt(s, starts, pos, enc) {
  if (pos.line >= starts.length) return s.length;
  const end = lineEnd(s, starts, pos.line);
  let i = starts[pos.line], u = 0;
  while (i < end && u < pos.character) {
    const cp = s.codePointAt(i);
    const k = units(cp, enc);
    if (u + k > pos.character) break;
    u += k;
    i += cp > 0xffff ? 2 : 1;
  }
  return i;
}
