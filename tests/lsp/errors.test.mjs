// errors.test.mjs — bad input as raw bytes: broken headers, invalid JSON,
// batches, non-objects, bad params, oversized messages. None may crash the
// server or change a document, and the stream must resynchronize.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { rawClient, frame, waitFor } from './helpers.mjs';

const init = { jsonrpc: '2.0', id: 'init', method: 'initialize', params: { processId: null, rootUri: null, capabilities: {} } };
const uri = 'file:///e.txt';

async function ready(args = []) {
  const c = rawClient({ args });
  c.send(frame(init));
  await c.responseTo('init');
  c.send(frame({ jsonrpc: '2.0', method: 'initialized', params: {} }));
  c.send(frame({ jsonrpc: '2.0', method: 'textDocument/didOpen', params: { textDocument: { uri, languageId: 'plaintext', version: 1, text: 'keep me\n' } } }));
  return c;
}

async function text(c, id) {
  c.send(frame({ jsonrpc: '2.0', id, method: 'nib/_documentText', params: { uri } }));
  return (await c.responseTo(id)).result.text;
}

async function finish(c) {
  c.send(frame({ jsonrpc: '2.0', id: 'bye', method: 'shutdown', params: null }));
  await c.responseTo('bye');
  c.send(frame({ jsonrpc: '2.0', method: 'exit' }));
  const { code, sig } = await c.proc.exited;
  assert.equal(sig, null, 'server crashed: ' + c.proc.stderrText);
  assert.equal(code, 0);
}

test('malformed headers are skipped and the stream resynchronizes', async () => {
  const c = await ready();
  c.send(Buffer.from('Content-Length: abc\r\n\r\n{"jsonrpc":"2.0","id":1,"method":"x"}'));
  c.send(Buffer.from('garbage without a colon\r\n'));
  c.send(Buffer.from('Content-Type: text/plain\r\n\r\n{"id":2}'));
  c.send(Buffer.from(`X-Pad: ${'a'.repeat(9000)}\r\n`));
  c.send(Buffer.from('Content-Length: -4\r\n\r\n'));
  c.send(frame({ jsonrpc: '2.0', id: 3, method: 'nib/_documentText', params: { uri } }));
  const r = await c.responseTo(3);
  assert.equal(r.result.text, 'keep me\n');
  // Nothing was answered for the broken frames (no id can be known).
  assert.ok(!c.messages.some((m) => m.id === 1 || m.id === 2));
  await finish(c);
});

test('a message split into single bytes still arrives', async () => {
  const c = await ready();
  const bytes = frame({ jsonrpc: '2.0', id: 'slow', method: 'nib/_documentText', params: { uri } });
  for (let i = 0; i < bytes.length; i++) c.send(bytes.subarray(i, i + 1));
  assert.equal((await c.responseTo('slow')).result.text, 'keep me\n');
  await finish(c);
});

test('JSON-RPC error classes', async () => {
  const c = await ready();
  const before = c.messages.length;
  c.send(frame('{"jsonrpc":"2.0","id":1,"method":'));
  await waitFor(() => c.messages.slice(before).some((m) => m.error?.code === -32700));
  const parseErr = c.messages.slice(before).find((m) => m.error?.code === -32700);
  assert.equal(parseErr.id, null);

  const expect = async (body, id, code, re) => {
    const n = c.messages.length;
    c.send(frame(body));
    const m = await waitFor(() => c.messages.slice(n).find((x) => x.error), 3000, `error for ${JSON.stringify(body)}`);
    assert.equal(m.error.code, code, JSON.stringify(m));
    assert.deepEqual(m.id, id);
    if (re) assert.match(m.error.message, re);
  };
  await expect([{ jsonrpc: '2.0', id: 1, method: 'shutdown' }], null, -32600, /batch/);
  await expect([], null, -32600, /batch/);
  await expect(42, null, -32600);
  await expect('"str"', null, -32600);
  await expect({ jsonrpc: '1.0', id: 5, method: 'x' }, 5, -32600, /jsonrpc/);
  await expect({ jsonrpc: '2.0', id: 6 }, 6, -32600, /method/);
  await expect({ jsonrpc: '2.0', id: 7, method: 12 }, 7, -32600, /method/);
  await expect({ jsonrpc: '2.0', id: { x: 1 }, method: 'shutdown' }, null, -32600, /id/);
  await expect({ jsonrpc: '2.0', id: 8, method: 'shutdown', params: 3 }, 8, -32600, /params/);
  await expect({ jsonrpc: '2.0', id: 9, method: 'textDocument/unknown' }, 9, -32601);
  await expect({ jsonrpc: '2.0', id: 'strid', method: 'nope/nope' }, 'strid', -32601);
  await expect({
    jsonrpc: '2.0', id: 10, method: 'textDocument/inlineCompletion',
    params: { textDocument: { uri }, position: { line: 'x', character: 0 }, context: { triggerKind: 1 } },
  }, 10, -32602, /position/);
  await expect({
    jsonrpc: '2.0', id: 11, method: 'textDocument/inlineCompletion',
    params: { textDocument: { uri }, position: { line: 0, character: 0 }, context: { triggerKind: 7 } },
  }, 11, -32602, /context\.triggerKind/);
  await expect({
    jsonrpc: '2.0', id: 12, method: 'textDocument/completion', params: { textDocument: {}, position: { line: 0, character: 0 } },
  }, 12, -32602, /textDocument\.uri/);
  await expect({ jsonrpc: '2.0', id: 13, method: 'workspace/executeCommand', params: null }, 13, -32602);
  await expect({ jsonrpc: '2.0', id: 14, method: 'nib/_documentText', params: [uri] }, 14, -32602);
  await expect({ jsonrpc: '2.0', id: 15, method: 'textDocument/codeAction', params: { textDocument: { uri }, range: 5 } }, 15, -32602, /range/);

  // Numeric and string ids come back as they were sent.
  c.send(frame({ jsonrpc: '2.0', id: 2147483647, method: 'nib/_documentText', params: { uri } }));
  assert.equal((await c.responseTo(2147483647)).result.text, 'keep me\n');
  c.send(frame({ jsonrpc: '2.0', id: '', method: 'nib/_documentText', params: { uri } }));
  assert.equal((await c.responseTo('')).result.text, 'keep me\n');

  // Notifications with bad params are dropped and change nothing.
  for (const params of [
    null, 5, { textDocument: { uri } },
    { textDocument: { uri, version: 2 }, contentChanges: 'x' },
    { textDocument: { uri, version: 2 }, contentChanges: [{ text: 5 }] },
    { textDocument: { uri, version: 2 }, contentChanges: [{ range: { start: { line: 0 } }, text: 'x' }] },
  ]) {
    c.send(frame({ jsonrpc: '2.0', method: 'textDocument/didChange', params }));
  }
  c.send(frame({ jsonrpc: '2.0', method: 'textDocument/didOpen', params: { textDocument: { uri } } }));
  c.send(frame({ jsonrpc: '2.0', method: 'textDocument/didClose', params: {} }));
  c.send(frame({ jsonrpc: '2.0', method: '$/cancelRequest', params: { id: null } }));
  assert.equal(await text(c, 'after'), 'keep me\n');
  await finish(c);
});

test('a message above the size limit is discarded with an error', async () => {
  const c = await ready(['--max-message', '4096']);
  const n = c.messages.length;
  c.send(frame({ jsonrpc: '2.0', method: 'textDocument/didChange', params: { textDocument: { uri, version: 2 }, contentChanges: [{ text: 'x'.repeat(100000) }] } }));
  const m = await waitFor(() => c.messages.slice(n).find((x) => x.error));
  assert.equal(m.error.code, -32600);
  assert.match(m.error.message, /limit/);
  assert.equal(await text(c, 't'), 'keep me\n');
  await finish(c);
});

test('the default limit is 64 MiB and a 5 MB document is fine', async () => {
  const c = await ready();
  const big = 'line of text ü\n'.repeat(350000);
  c.send(frame({ jsonrpc: '2.0', method: 'textDocument/didChange', params: { textDocument: { uri, version: 2 }, contentChanges: [{ text: big }] } }));
  assert.ok((await text(c, 'big')) === big);
  await finish(c);
});

test('random garbage and random messages do not crash the server or touch documents', async () => {
  const c = await ready();
  let x = 7;
  const r = (n) => { x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0; return x % n; };
  const methods = ['initialize', 'shutdown', 'textDocument/didChange', 'textDocument/didOpen', 'textDocument/didClose',
    'textDocument/inlineCompletion', 'textDocument/completion', 'textDocument/codeAction', 'workspace/executeCommand',
    '$/cancelRequest', '$/setTrace', 'workspace/didChangeConfiguration', 'nib/_documentText', 'initialized'];
  const values = () => [null, 0, -1, 1.5, 2 ** 53, '', 'x', [], {}, [1, 'a'], { uri: 5 }, { line: -1, character: 'a' }, true][r(13)];
  const randObj = (depth) => {
    const o = {};
    for (let i = r(4); i > 0; i--) {
      const k = ['textDocument', 'uri', 'position', 'range', 'start', 'end', 'line', 'character', 'text',
        'contentChanges', 'context', 'triggerKind', 'command', 'arguments', 'settings', 'value', 'id'][r(17)];
      o[k] = depth > 0 && r(2) ? randObj(depth - 1) : values();
    }
    return o;
  };
  const chunks = [];
  for (let i = 0; i < 400; i++) {
    const kind = r(6);
    if (kind === 0) {
      chunks.push(Buffer.from(Array.from({ length: r(64) }, () => r(256))));
    } else if (kind === 1) {
      chunks.push(Buffer.from(['Content-Length: ', 'Content-Length: 99\r\n', '\r\n\r\n', 'Content-Length: 3\r\n\r\n{}}'][r(4)]));
    } else {
      const m = { jsonrpc: r(10) ? '2.0' : values(), method: r(10) ? methods[r(methods.length)] : values() };
      if (r(2)) m.id = r(3) ? i + 1000 : values();
      if (r(4)) m.params = randObj(3);
      if (m.params && typeof m.params.textDocument === 'object' && m.params.textDocument && r(2)) {
        m.params.textDocument = { uri: r(2) ? uri : 'file:///other', version: 5 };
      }
      // Never let the fuzz edit the document on purpose, nor end the session.
      if (['textDocument/didChange', 'textDocument/didOpen', 'textDocument/didClose'].includes(m.method)) {
        m.params = { ...(m.params || {}), textDocument: { uri: 'file:///other', version: 5 } };
      }
      if (m.method === 'shutdown' || m.method === 'exit') m.method = 'nib/nothing';
      chunks.push(frame(m));
    }
  }
  for (const ch of chunks) c.send(ch);
  // Close any frame the garbage left open, then resynchronize.
  c.send(Buffer.from('\r\n\r\n' + ' '.repeat(200)));
  for (let i = 0; i < 3; i++) {
    c.send(frame({ jsonrpc: '2.0', id: `probe${i}`, method: 'nib/_documentText', params: { uri } }));
  }
  const got = await waitFor(() => c.messages.find((m) => typeof m.id === 'string' && m.id.startsWith('probe') && m.result), 5000, 'a probe answer');
  assert.equal(got.result.text, 'keep me\n');
  assert.equal(c.proc.exitCode, null, 'server died: ' + c.proc.stderrText);
  await finish(c);
});
