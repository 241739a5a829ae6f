// documents.test.mjs — thousands of random incremental edits (multi-byte
// and astral-plane text, all three line breaks, several changes per
// notification, out-of-range positions) in each position encoding, checked
// against a reference text kept by the client.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  startClient, stopClient, openDoc, docText, lineStarts, positionAt, offsetAt,
} from './helpers.mjs';

const EDITS = Number(process.env.NIB_LSP_FUZZ_EDITS || 3000);

// Deterministic PRNG so a failure can be replayed.
function rng(seed) {
  let x = seed >>> 0 || 1;
  return (n) => {
    x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0;
    return x % n;
  };
}

const PIECES = ['a', 'xyz', ' ', '\t', '\n', '\r\n', '\r', 'é', 'ß', '€', '中文', '😀', '𝄞x',
  'def f():\n    return 1\n', '👩‍💻', '\u0000', ''];

// A UTF-16 index on a character boundary that LSP can name (not inside a
// surrogate pair, not between "\r" and "\n").
function boundary(s, i) {
  while (i > 0 && i < s.length) {
    const c = s.charCodeAt(i);
    const p = s.charCodeAt(i - 1);
    if (c >= 0xdc00 && c <= 0xdfff && p >= 0xd800 && p <= 0xdbff) { i--; continue; }
    if (c === 10 && p === 13) { i--; continue; }
    break;
  }
  return i;
}

async function fuzz(enc, seed) {
  const c = await startClient({ capabilities: { general: { positionEncodings: [enc] } } });
  assert.equal(c.result.capabilities.positionEncoding, enc);
  const uri = `file:///fuzz-${enc}.txt`;
  let ref = 'héllo 😀 wörld\r\nsecond line\rthird\n\nfifth 中文\n';
  await openDoc(c, uri, ref, 'plaintext');
  const r = rng(seed);
  let version = 1;
  for (let n = 0; n < EDITS;) {
    const k = 1 + r(4);
    const changes = [];
    for (let j = 0; j < k && n < EDITS; j++, n++) {
      const starts = lineStarts(ref);
      if (r(200) === 0) {
        // A full replacement now and then.
        ref = PIECES[r(PIECES.length)].repeat(1 + r(5));
        changes.push({ text: ref });
        continue;
      }
      let a = boundary(ref, r(ref.length + 1));
      let b = boundary(ref, Math.min(ref.length, a + r(12)));
      let start = positionAt(ref, starts, a, enc);
      let end = positionAt(ref, starts, b, enc);
      const roll = r(20);
      if (roll === 0) {
        // Past the end of the line: clamped to the line's end.
        end = { line: end.line, character: end.character + 1000 };
        b = offsetAt(ref, starts, end, enc);
      } else if (roll === 1) {
        // Past the last line: clamped to the end of the document.
        end = { line: starts.length + r(3), character: r(5) };
        b = ref.length;
      } else if (roll === 2 && a < b) {
        // Reversed: taken the other way round.
        [start, end] = [end, start];
      }
      let text = '';
      for (let m = r(4); m > 0; m--) text += PIECES[r(PIECES.length)];
      if (ref.length > 4000) text = '';
      changes.push({ range: { start, end }, text });
      ref = ref.slice(0, a) + text + ref.slice(b);
    }
    version++;
    await c.conn.sendNotification('textDocument/didChange', { textDocument: { uri, version }, contentChanges: changes });
    if (n % 500 < k) {
      assert.equal(await docText(c, uri), ref, `after ${n} edits (${enc}, seed ${seed})`);
    }
  }
  const got = await c.conn.sendRequest('nib/_documentText', { uri });
  assert.equal(got.text, ref);
  assert.equal(got.version, version);
  assert.equal(got.lineCount, lineStarts(ref).length);
  await stopClient(c);
}

test('random incremental edits, utf-16', () => fuzz('utf-16', 1));
test('random incremental edits, utf-8', () => fuzz('utf-8', 2));
test('random incremental edits, utf-32', () => fuzz('utf-32', 3));

test('open, full change, close, reopen, save', async () => {
  const c = await startClient();
  const uri = 'file:///doc.c';
  await openDoc(c, uri, 'int x;\n', 'c', 1);
  await c.conn.sendNotification('textDocument/didChange', {
    textDocument: { uri, version: 2 }, contentChanges: [{ text: 'int y;\n' }, {
      range: { start: { line: 0, character: 4 }, end: { line: 0, character: 5 } }, text: 'zz',
    }],
  });
  assert.equal(await docText(c, uri), 'int zz;\n');
  await c.conn.sendNotification('textDocument/didSave', { textDocument: { uri } });
  await c.conn.sendNotification('textDocument/didClose', { textDocument: { uri } });
  await assert.rejects(docText(c, uri), (e) => e.code === -32602);
  await openDoc(c, uri, 'again', 'c', 5);
  assert.equal(await docText(c, uri), 'again');
  // A didChange with one bad change among good ones changes nothing.
  await c.conn.sendNotification('textDocument/didChange', {
    textDocument: { uri, version: 6 }, contentChanges: [
      { range: { start: { line: 0, character: 0 }, end: { line: 0, character: 1 } }, text: 'X' },
      { range: { start: { line: -1, character: 0 }, end: { line: 0, character: 1 } }, text: 'Y' },
    ],
  });
  assert.equal(await docText(c, uri), 'again');
  await stopClient(c);
});

test('a 10,000-line document takes thousands of keystrokes quickly', async () => {
  const c = await startClient();
  const uri = 'file:///big.py';
  let ref = '';
  for (let i = 0; i < 10000; i++) ref += `    value_${i} = compute(${i})  # ünïcode 😀\n`;
  await openDoc(c, uri, ref);
  const line = 5000;
  let a = lineStarts(ref)[line] + 4;
  const t0 = process.hrtime.bigint();
  const word = 'typing';
  for (let i = 0; i < 1500; i++) {
    const ch = word[i % word.length];
    const pos = { line, character: 4 + i }; // the line's start is ASCII
    await c.conn.sendNotification('textDocument/didChange', {
      textDocument: { uri, version: i + 2 }, contentChanges: [{ range: { start: pos, end: pos }, text: ch }],
    });
    ref = ref.slice(0, a) + ch + ref.slice(a);
    a++;
  }
  // assert.equal would diff half a megabyte on failure; compare cheaply.
  assert.ok((await docText(c, uri)) === ref, 'document differs after typing');
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  assert.ok(ms < 10000, `1500 edits took ${ms} ms`);
  await stopClient(c);
});
