// completion.test.mjs — inline and classic completion against the shared
// random-weight models (gibberish text, but greedy output is deterministic),
// cancellation both ways, debounce, responsiveness during generation, and
// the model-not-ready paths.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  startClient, stopClient, openDoc, waitModelReady, STAR, QWEN, NO_MODEL_MSG, shared,
} from './helpers.mjs';
import { CancellationTokenSource } from 'vscode-languageserver-protocol/node.js';

const skip = !STAR && NO_MODEL_MSG;
const uri = 'file:///src/add.py';
const SRC = 'import math\n\ndef add(a, b):\n    """Add two numbers."""\n    ret\n\nprint(add(1, 2))\n';
const CURSOR = { line: 4, character: 7 }; // after "    ret"

async function client(opts = {}, model = STAR) {
  const c = await startClient({
    initializationOptions: { model, maxTokens: 12, threads: 1, contextBudget: 512, ...opts },
    capabilities: { general: { positionEncodings: ['utf-16'] } },
  });
  await waitModelReady(c);
  await openDoc(c, uri, SRC);
  return c;
}

// (Passing an undefined token would turn params into a positional array.)
const inline = (c, triggerKind, extra = {}, token) => c.conn.sendRequest('textDocument/inlineCompletion', {
  textDocument: { uri }, position: CURSOR, context: { triggerKind, ...extra },
}, ...(token ? [token] : []));

function assertItem(it, range) {
  assert.equal(typeof it.insertText, 'string');
  assert.deepEqual(it.range, range);
}

test('inline completion: automatic gives one item at the cursor, deterministic', { skip }, async () => {
  const c = await client({ debounceMs: 0 });
  const a = await inline(c, 2);
  assert.equal(a.items.length, 1);
  assertItem(a.items[0], { start: CURSOR, end: CURSOR });
  assert.ok(a.items[0].insertText.length > 0);
  const b = await inline(c, 2);
  assert.deepEqual(b, a);
  await stopClient(c);
});

test('inline completion: invoked may give alternatives, all well-formed', { skip }, async () => {
  const c = await client();
  const r = await inline(c, 1);
  assert.ok(r.items.length >= 1 && r.items.length <= 3, JSON.stringify(r));
  for (const it of r.items) assertItem(it, { start: CURSOR, end: CURSOR });
  assert.equal(new Set(r.items.map((i) => i.insertText)).size, r.items.length);
  // The greedy one comes first and equals the automatic answer.
  const auto = await c.conn.sendRequest('textDocument/inlineCompletion', {
    textDocument: { uri }, position: CURSOR, context: { triggerKind: 2 },
  });
  assert.equal(auto.items[0].insertText, r.items[0].insertText);
  await stopClient(c);
});

test('inline completion honours selectedCompletionInfo', { skip }, async () => {
  const c = await client();
  const range = { start: { line: 4, character: 4 }, end: CURSOR };
  const r = await inline(c, 1, { selectedCompletionInfo: { range, text: 'return' } });
  assert.ok(r.items.length >= 1);
  for (const it of r.items) {
    assertItem(it, range);
    assert.ok(it.insertText.startsWith('return'), it.insertText);
  }
  await stopClient(c);
});

test('classic completion: one item with textEdit, filterText and label', { skip }, async () => {
  const c = await client({ debounceMs: 0 });
  const r = await c.conn.sendRequest('textDocument/completion', {
    textDocument: { uri }, position: CURSOR, context: { triggerKind: 1 },
  });
  assert.equal(r.isIncomplete, true);
  assert.equal(r.items.length, 1);
  const it = r.items[0];
  assert.equal(it.filterText, 'ret');
  assert.deepEqual(it.textEdit.range, { start: CURSOR, end: CURSOR });
  assert.equal(typeof it.textEdit.newText, 'string');
  const firstLine = it.textEdit.newText.split(/\r\n|\r|\n/).find((l) => l.trim().length > 0);
  assert.ok(firstLine.endsWith(it.label.trimStart()) || it.label === firstLine, `${it.label} vs ${firstLine}`);
  await stopClient(c);
});

test('positions in the answer use the negotiated encoding', { skip }, async () => {
  const c = await startClient({
    initializationOptions: { model: STAR, maxTokens: 4, threads: 1, contextBudget: 256 },
    capabilities: { general: { positionEncodings: ['utf-8'] } },
  });
  await waitModelReady(c);
  await openDoc(c, uri, 'x = "😀é" + ');
  const pos = { line: 0, character: 15 }; // bytes: 4 + 1 + 4 + 2 + 1 + 3
  const r = await c.conn.sendRequest('textDocument/inlineCompletion', {
    textDocument: { uri }, position: pos, context: { triggerKind: 1 },
  });
  for (const it of r.items) assert.deepEqual(it.range, { start: pos, end: pos });
  await stopClient(c);
});

test('$/cancelRequest stops a running generation with -32800', { skip }, async () => {
  const c = await client({ maxTokens: 4000, contextBudget: 256 });
  const src = new CancellationTokenSource();
  const t0 = Date.now();
  const p = inline(c, 1, {}, src.token);
  await new Promise((r) => setTimeout(r, 200));
  src.cancel();
  await assert.rejects(p, (e) => e.code === -32800);
  assert.ok(Date.now() - t0 < 3000, 'cancellation took too long');
  // The server is fine afterwards.
  await c.conn.sendNotification('workspace/didChangeConfiguration', { settings: { maxTokens: 8 } });
  const again = await c.conn.sendRequest('textDocument/inlineCompletion', {
    textDocument: { uri }, position: CURSOR, context: { triggerKind: 2 },
  });
  assert.equal(again.items.length, 1);
  await stopClient(c);
});

test('a newer request for the same document supersedes the running one', { skip }, async () => {
  const c = await client({ maxTokens: 4000, contextBudget: 256 });
  const first = inline(c, 1);
  await new Promise((r) => setTimeout(r, 100));
  await c.conn.sendNotification('workspace/didChangeConfiguration', { settings: { maxTokens: 8 } });
  const second = inline(c, 1);
  await assert.rejects(first, (e) => e.code === -32800);
  assert.ok((await second).items.length >= 1);
  await stopClient(c);
});

test('automatic requests are debounced: a burst runs one generation', { skip }, async () => {
  const c = await client({ debounceMs: 75 });
  const burst = [];
  for (let i = 0; i < 5; i++) {
    burst.push(inline(c, 2).then((r) => ({ r }), (e) => ({ e })));
    await new Promise((r) => setTimeout(r, 10));
  }
  const out = await Promise.all(burst);
  for (const o of out.slice(0, 4)) assert.equal(o.e?.code, -32800, JSON.stringify(o));
  assert.equal(out[4].r.items.length, 1);
  await stopClient(c);
});

test('cheap requests and shutdown are answered within 5 ms during generation', { skip }, async () => {
  const c = await client({ maxTokens: 4000, contextBudget: 256 });
  let done = false;
  const p = inline(c, 1).then((r) => { done = true; return { r }; }, (e) => { done = true; return { e }; });
  await new Promise((r) => setTimeout(r, 100));
  const lat = [];
  for (let i = 0; i < 100 && !done; i++) {
    const t = process.hrtime.bigint();
    await c.conn.sendRequest('workspace/executeCommand', { command: 'nib.status' });
    lat.push(Number(process.hrtime.bigint() - t) / 1e6);
    await new Promise((r) => setTimeout(r, 3));
  }
  assert.ok(!done, 'generation ended before the measurement');
  lat.sort((a, b) => a - b);
  const median = lat[lat.length >> 1];
  assert.ok(median < 5, `median round trip ${median} ms`);
  const t = process.hrtime.bigint();
  await c.conn.sendRequest('shutdown');
  const ms = Number(process.hrtime.bigint() - t) / 1e6;
  // One sample on a shared 2-core machine: the bound only proves that the
  // loop did not wait for the generation (which runs for seconds).
  assert.ok(ms < 100, `shutdown took ${ms} ms`);
  const res = await p;
  assert.equal(res.e?.code, -32800);
  await c.conn.sendNotification('exit');
  assert.equal((await c.proc.exited).code, 0);
  c.conn.dispose();
});

test('requests wait for a loading model, or fail clearly past the timeout', { skip }, async () => {
  const a = await startClient({
    env: { NIB_TEST_LOAD_DELAY_MS: '1500' },
    initializationOptions: { model: STAR, maxTokens: 4, modelWaitMs: 200 },
  });
  await openDoc(a, uri, SRC);
  await assert.rejects(inline(a, 1), (e) => e.code === -32803 && /still loading/.test(e.message));
  await stopClient(a);

  const b = await startClient({
    env: { NIB_TEST_LOAD_DELAY_MS: '300' },
    initializationOptions: { model: STAR, maxTokens: 4 },
  });
  await openDoc(b, uri, SRC);
  const r = await inline(b, 1);
  assert.ok(r.items.length >= 1);
  await stopClient(b);
});

test('a missing or broken model is a clear error, and the server stays up', async () => {
  const c = await startClient({ initializationOptions: { model: '/nonexistent/model.gguf', maxTokens: 4 } });
  await openDoc(c, uri, SRC);
  await assert.rejects(inline(c, 1), (e) => e.code === -32803 && /model/.test(e.message));
  const st = await c.conn.sendRequest('workspace/executeCommand', { command: 'nib.status' });
  assert.equal(st.modelState, 'failed');
  assert.ok(c.notes.some((n) => n.method === 'window/showMessage' && /nonexistent/.test(n.params.message)));
  await stopClient(c);

  const stories = shared('models/stories260K.gguf');
  if (stories) {
    const e = await startClient({ initializationOptions: { model: stories, maxTokens: 4 } });
    await waitModelReady(e);
    await openDoc(e, uri, SRC);
    await assert.rejects(inline(e, 1), (x) => x.code === -32803 && /fill-in-the-middle/.test(x.message));
    await stopClient(e);
  }

  const d = await startClient();
  await openDoc(d, uri, SRC);
  await assert.rejects(inline(d, 1), (e) => e.code === -32803 && /no model/.test(e.message));
  await stopClient(d);
});

test('Qwen2.5 vocab: inline completion with FIM ids from metadata', { skip: !QWEN && NO_MODEL_MSG }, async () => {
  const c = await client({}, QWEN);
  const r = await inline(c, 2);
  assert.equal(r.items.length, 1);
  assertItem(r.items[0], { start: CURSOR, end: CURSOR });
  await stopClient(c);
});

test('nib.generateDocstring and nib.refactorSelection edit through workspace/applyEdit', { skip }, async () => {
  const c = await client({ maxTokens: 16 });
  const edits = [];
  c.conn.onRequest('workspace/applyEdit', (p) => { edits.push(p); return { applied: true }; });
  const header = { start: { line: 2, character: 0 }, end: { line: 2, character: 0 } };
  const r = await c.conn.sendRequest('workspace/executeCommand', { command: 'nib.generateDocstring', arguments: [uri, header] });
  const [te] = r.edit.changes[uri];
  // Python: inside the function, on the line after the header.
  assert.deepEqual(te.range, { start: { line: 3, character: 0 }, end: { line: 3, character: 0 } });
  assert.ok(te.newText.startsWith('    """'), te.newText);
  assert.ok(te.newText.endsWith('"""\n'), te.newText);
  assert.equal(te.newText.slice(7, -4).includes('"""'), false);

  const sel = { start: { line: 6, character: 0 }, end: { line: 6, character: 16 } };
  const r2 = await c.conn.sendRequest('workspace/executeCommand', { command: 'nib.refactorSelection', arguments: [uri, sel] });
  assert.deepEqual(r2.edit.changes[uri][0].range, sel);
  await new Promise((res) => setTimeout(res, 50));
  assert.equal(edits.length, 2);
  assert.deepEqual(edits[0].edit, r.edit);

  // C-like languages get a block comment above the line.
  await openDoc(c, 'file:///m.c', 'int main(void) {\n    return 0;\n}\n', 'c');
  const r3 = await c.conn.sendRequest('workspace/executeCommand', {
    command: 'nib.generateDocstring', arguments: ['file:///m.c', { start: { line: 0, character: 4 }, end: { line: 0, character: 4 } }],
  });
  const [te3] = r3.edit.changes['file:///m.c'];
  assert.deepEqual(te3.range.start, { line: 0, character: 0 });
  assert.ok(te3.newText.startsWith('/** ') && te3.newText.endsWith(' */\n'), te3.newText);
  await stopClient(c);
});
