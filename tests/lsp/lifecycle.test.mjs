// lifecycle.test.mjs — initialize, capabilities, encodings, settings,
// configuration pull, trace, commands, code actions, shutdown and exit.
import assert from 'node:assert/strict';
import { readFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import {
  startClient, stopClient, waitFor, openDoc, spawnServer, STAR,
} from './helpers.mjs';

test('initialize advertises every capability', async () => {
  const c = await startClient();
  const caps = c.result.capabilities;
  assert.equal(caps.positionEncoding, 'utf-16');
  assert.deepEqual(caps.textDocumentSync, { openClose: true, change: 2, save: { includeText: false } });
  assert.equal(caps.inlineCompletionProvider, true);
  assert.ok(caps.completionProvider);
  assert.ok(caps.codeActionProvider);
  assert.deepEqual(caps.executeCommandProvider.commands.sort(), [
    'nib.generateDocstring', 'nib.refactorSelection', 'nib.status', 'nib.toggleInline']);
  assert.equal(c.result.serverInfo.name, 'nib');
  await stopClient(c);
});

test('position encoding negotiation', async () => {
  const cases = [
    [undefined, 'utf-16'],
    [['utf-8', 'utf-16'], 'utf-8'],
    [['utf-32', 'utf-16'], 'utf-32'],
    [['utf-16', 'utf-8'], 'utf-8'],
    [['utf-16', 'utf-32', 'utf-8'], 'utf-8'],
    [['utf-16', 'utf-32'], 'utf-32'],
    [['utf-16'], 'utf-16'],
    [['klingon'], 'utf-16'],
  ];
  for (const [offered, want] of cases) {
    const c = await startClient({ capabilities: offered ? { general: { positionEncodings: offered } } : {} });
    assert.equal(c.result.capabilities.positionEncoding, want, `offered ${offered}`);
    await stopClient(c);
  }
});

test('exit codes: 0 after shutdown, 1 without, 1 on end of input', async () => {
  const a = await startClient();
  await stopClient(a, { expectCode: 0 });

  const b = await startClient();
  await b.conn.sendNotification('exit');
  assert.equal((await b.proc.exited).code, 1);
  b.conn.dispose();

  const p = spawnServer();
  p.stdin.end();
  assert.equal((await p.exited).code, 1);
});

test('requests before initialize get -32002, after shutdown -32600', async () => {
  const c = await startClient({ init: false });
  await assert.rejects(c.conn.sendRequest('workspace/executeCommand', { command: 'nib.status' }),
    (e) => e.code === -32002);
  // Notifications before initialize are dropped, not answered.
  await c.conn.sendNotification('textDocument/didOpen', { textDocument: { uri: 'file:///x', languageId: 'c', version: 1, text: 'x' } });
  await c.conn.sendRequest('initialize', { processId: null, rootUri: null, capabilities: {} });
  await assert.rejects(c.conn.sendRequest('initialize', { processId: null, rootUri: null, capabilities: {} }),
    (e) => e.code === -32600);
  await c.conn.sendNotification('initialized', {});
  await assert.rejects(c.conn.sendRequest('nib/_documentText', { uri: 'file:///x' }), (e) => e.code === -32602);
  await c.conn.sendRequest('shutdown');
  await assert.rejects(c.conn.sendRequest('workspace/executeCommand', { command: 'nib.status' }),
    (e) => e.code === -32600);
  await c.conn.sendNotification('exit');
  assert.equal((await c.proc.exited).code, 0);
  c.conn.dispose();
});

test('settings from initializationOptions; invalid ones are named and keep the old value', async () => {
  const c = await startClient({
    initializationOptions: { nib: { maxTokens: 7, debounceMs: -3, threads: 'many', contextBudget: 512, languages: { markdown: false } } },
  });
  const st = await c.conn.sendRequest('workspace/executeCommand', { command: 'nib.status' });
  assert.equal(st.settings.maxTokens, 7);
  assert.equal(st.settings.contextBudget, 512);
  assert.equal(st.settings.debounceMs, 75);
  assert.equal(st.settings.threads, 0);
  const shown = c.notes.filter((n) => n.method === 'window/showMessage').map((n) => n.params);
  assert.ok(shown.some((m) => m.type === 1 && /nib\.debounceMs/.test(m.message)), JSON.stringify(shown));
  assert.ok(shown.some((m) => m.type === 1 && /nib\.threads/.test(m.message)));
  // Disabled language: completions answer empty without touching the model.
  await openDoc(c, 'file:///r.md', '# hi', 'markdown');
  const r = await c.conn.sendRequest('textDocument/inlineCompletion', {
    textDocument: { uri: 'file:///r.md' }, position: { line: 0, character: 4 }, context: { triggerKind: 1 },
  });
  assert.deepEqual(r, { items: [] });
  await stopClient(c);
});

test('didChangeConfiguration: pushed settings, and pulled with workspace/configuration', async () => {
  const a = await startClient();
  await a.conn.sendNotification('workspace/didChangeConfiguration', { settings: { nib: { maxTokens: 9, debounceMs: 'soon' } } });
  let st = await a.conn.sendRequest('workspace/executeCommand', { command: 'nib.status' });
  assert.equal(st.settings.maxTokens, 9);
  assert.equal(st.settings.debounceMs, 75);
  await waitFor(() => a.notes.some((n) => n.method === 'window/showMessage' && /nib\.debounceMs/.test(n.params.message)));
  await stopClient(a);

  let pulls = 0;
  const b = await startClient({
    capabilities: { workspace: { configuration: true } },
    onConfiguration: (p) => {
      assert.equal(p.items[0].section, 'nib');
      pulls++;
      return [{ maxTokens: 10 + pulls, debounceMs: 5 }];
    },
  });
  await waitFor(() => pulls === 1, 5000, 'configuration pull');
  st = await b.conn.sendRequest('workspace/executeCommand', { command: 'nib.status' });
  assert.equal(st.settings.maxTokens, 11);
  assert.equal(st.settings.debounceMs, 5);
  await b.conn.sendNotification('workspace/didChangeConfiguration', { settings: null });
  await waitFor(() => pulls === 2, 5000, 'second pull');
  st = await b.conn.sendRequest('workspace/executeCommand', { command: 'nib.status' });
  assert.equal(st.settings.maxTokens, 12);
  await stopClient(b);
});

test('$/setTrace and logMessage; unknown and $/ notifications are ignored', async () => {
  const c = await startClient({ trace: 'off' });
  await c.conn.sendNotification('$/setTrace', { value: 'verbose' });
  await c.conn.sendNotification('$/somethingNew', { x: 1 });
  await c.conn.sendNotification('nib/unknownNotification', null);
  // A didChange for a closed document logs an error through logMessage.
  await c.conn.sendNotification('textDocument/didChange', {
    textDocument: { uri: 'file:///nope', version: 2 }, contentChanges: [{ text: 'x' }],
  });
  await waitFor(() => c.notes.some((n) => n.method === 'window/logMessage' && /not open/.test(n.params.message)));
  await assert.rejects(c.conn.sendRequest('$/somethingNew', {}), (e) => e.code === -32601);
  await assert.rejects(c.conn.sendRequest('nib/nope', {}), (e) => e.code === -32601);
  await stopClient(c);
});

test('commands and code actions', async () => {
  const c = await startClient();
  let r = await c.conn.sendRequest('workspace/executeCommand', { command: 'nib.toggleInline' });
  assert.equal(r.inlineEnabled, false);
  r = await c.conn.sendRequest('workspace/executeCommand', { command: 'nib.toggleInline', arguments: [] });
  assert.equal(r.inlineEnabled, true);
  const st = await c.conn.sendRequest('workspace/executeCommand', { command: 'nib.status' });
  assert.equal(st.modelState, 'none');
  await assert.rejects(c.conn.sendRequest('workspace/executeCommand', { command: 'nib.fly' }),
    (e) => e.code === -32602 && /command/.test(e.message));
  await assert.rejects(c.conn.sendRequest('workspace/executeCommand', { command: 42 }),
    (e) => e.code === -32602 && /command/.test(e.message));

  await openDoc(c, 'file:///a.py', 'def f(x):\n    return x\n');
  const range = { start: { line: 0, character: 0 }, end: { line: 1, character: 12 } };
  const actions = await c.conn.sendRequest('textDocument/codeAction', {
    textDocument: { uri: 'file:///a.py' }, range, context: { diagnostics: [] },
  });
  assert.deepEqual(actions.map((a) => a.command.command), ['nib.generateDocstring', 'nib.refactorSelection']);
  assert.deepEqual(actions[1].command.arguments, ['file:///a.py', range]);
  const empty = await c.conn.sendRequest('textDocument/codeAction', {
    textDocument: { uri: 'file:///a.py' }, range: { start: range.start, end: range.start }, context: { diagnostics: [] },
  });
  assert.equal(empty.length, 1);
  await assert.rejects(c.conn.sendRequest('workspace/executeCommand', {
    command: 'nib.generateDocstring', arguments: ['file:///zzz.py', range],
  }), (e) => e.code === -32602 && /not open/.test(e.message));
  // No model configured: a clear error.
  await assert.rejects(c.conn.sendRequest('workspace/executeCommand', {
    command: 'nib.refactorSelection', arguments: ['file:///a.py', range],
  }), (e) => e.code === -32803 && /model/.test(e.message));
  await assert.rejects(c.conn.sendRequest('workspace/executeCommand', {
    command: 'nib.refactorSelection', arguments: ['file:///a.py', { start: range.start, end: range.start }],
  }), (e) => e.code === -32602 && /empty/.test(e.message));
  await stopClient(c);
});

test('model loading reports $/progress and does not block the handshake', { skip: !STAR && 'no shared model' }, async () => {
  const t0 = Date.now();
  const c = await startClient({
    env: { NIB_TEST_LOAD_DELAY_MS: '400' },
    capabilities: { window: { workDoneProgress: true } },
    initializationOptions: { model: STAR },
  });
  assert.ok(Date.now() - t0 < 2000);
  const st = await c.conn.sendRequest('workspace/executeCommand', { command: 'nib.status' });
  assert.equal(st.modelState, 'loading');
  await waitFor(() => c.progressCreates.length === 1, 5000, 'workDoneProgress/create');
  const token = c.progressCreates[0].token;
  const prog = () => c.notes.filter((n) => n.method === '$/progress' && n.params.token === token).map((n) => n.params.value);
  await waitFor(() => prog().some((v) => v.kind === 'end'), 10000, 'progress end');
  assert.equal(prog()[0].kind, 'begin');
  assert.equal(prog().at(-1).kind, 'end');
  await stopClient(c);
});

test('--log-file gets the log; stderr too', async () => {
  const file = join(mkdtempSync(join(tmpdir(), 'nib-lsp-')), 'lsp.log');
  const c = await startClient({ args: ['--log-file', file, '--log-level', 'info'] });
  await c.conn.sendNotification('textDocument/didChange', {
    textDocument: { uri: 'file:///none', version: 1 }, contentChanges: [{ text: '' }],
  });
  await stopClient(c);
  const log = readFileSync(file, 'utf8');
  assert.match(log, /language server started/);
  assert.match(log, /initialized \(position encoding utf-16\)/);
  assert.match(log, /not open/);
  assert.match(c.proc.stderrText, /not open/);
});
