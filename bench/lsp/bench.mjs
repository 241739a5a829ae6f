// bench.mjs — `nib lsp` figures for bench/README.md (reports, never asserts).
//
//   NIB_BINARY=build/nib node bench/lsp/bench.mjs [--edits N] [--model PATH]
//
// 1. didChange throughput on a 10,000-line file: N single-character
//    incremental edits sent back to back (typing at one spot, and at random
//    spots all over the file), timed until a request sent after them is
//    answered, so the figure is the server's processing rate.
// 2. Round-trip latency of a cheap request (workspace/executeCommand
//    nib.status) while idle and while a completion is generating.
//
// Uses the npm packages of tests/lsp (run `npm ci --prefix tests/lsp` once).
import { spawnSync } from 'node:child_process';
import { openSync, writeFileSync, rmSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  startClient, stopClient, openDoc, waitModelReady, STAR, frame, nibBinary,
} from '../../tests/lsp/helpers.mjs';

const argv = process.argv.slice(2);
const opt = (name, def) => {
  const i = argv.indexOf(name);
  return i >= 0 ? argv[i + 1] : def;
};
const N = Number(opt('--edits', 50000));
const MODEL = opt('--model', STAR);

function percentile(sorted, p) {
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))];
}

async function throughput(c, label, editFor) {
  const uri = `file:///bench-${label}.py`;
  let text = '';
  for (let i = 0; i < 10000; i++) text += `    value_${i} = compute(${i}, "ünïcode 😀")\n`;
  await openDoc(c, uri, text);
  await c.conn.sendRequest('nib/_documentText', { uri }); // opened
  const t0 = process.hrtime.bigint();
  let added = 0;
  for (let i = 0; i < N; i++) {
    const [pos, t] = editFor(i);
    added += t.length;
    c.conn.sendNotification('textDocument/didChange', {
      textDocument: { uri, version: i + 2 },
      contentChanges: [{ range: { start: pos, end: pos }, text: t }],
    });
  }
  const r = await c.conn.sendRequest('nib/_documentText', { uri });
  const s = Number(process.hrtime.bigint() - t0) / 1e9;
  if (r.text.length !== text.length + added) throw new Error('document length mismatch');
  console.log(`didChange ${label.padEnd(14)} ${N} edits in ${s.toFixed(2)} s: ${(N / s).toFixed(0)} edits/s (client included)`);
}

// The server alone: the whole session pre-framed in a file read as stdin
// (the uv_fs_read path), output to /dev/null.
function serverOnly(label, editFor) {
  const parts = [frame({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { processId: null, rootUri: null, capabilities: {} } }),
    frame({ jsonrpc: '2.0', method: 'initialized', params: {} })];
  let text = '';
  for (let i = 0; i < 10000; i++) text += `    value_${i} = compute(${i}, "ünïcode 😀")\n`;
  const uri = 'file:///b.py';
  parts.push(frame({ jsonrpc: '2.0', method: 'textDocument/didOpen', params: { textDocument: { uri, languageId: 'python', version: 1, text } } }));
  const head = Buffer.concat(parts);
  const edits = [];
  for (let i = 0; i < N; i++) {
    const [pos, t] = editFor(i);
    edits.push(frame({ jsonrpc: '2.0', method: 'textDocument/didChange', params: {
      textDocument: { uri, version: i + 2 }, contentChanges: [{ range: { start: pos, end: pos }, text: t }] } }));
  }
  const tail = Buffer.concat([frame({ jsonrpc: '2.0', id: 2, method: 'shutdown' }), frame({ jsonrpc: '2.0', method: 'exit' })]);
  const run = (file) => {
    const fd = openSync(file, 'r');
    const t0 = process.hrtime.bigint();
    const r = spawnSync(nibBinary(), ['lsp', '--log-level', 'error'], { stdio: [fd, 'ignore', 'inherit'] });
    const s = Number(process.hrtime.bigint() - t0) / 1e9;
    if (r.status !== 0) throw new Error(`nib lsp exited with ${r.status}`);
    return s;
  };
  const f0 = join(tmpdir(), `nib-bench-${process.pid}-0`);
  const f1 = join(tmpdir(), `nib-bench-${process.pid}-1`);
  writeFileSync(f0, Buffer.concat([head, tail]));
  writeFileSync(f1, Buffer.concat([head, ...edits, tail]));
  const base = Math.min(run(f0), run(f0));
  const full = Math.min(run(f1), run(f1));
  rmSync(f0);
  rmSync(f1);
  const s = full - base;
  console.log(`didChange ${label.padEnd(14)} ${N} edits in ${s.toFixed(3)} s: ${(N / s).toFixed(0)} edits/s (server only, stdin from a file)`);
}

async function latency(c, label, running) {
  const lat = [];
  for (let i = 0; i < 200 && running(); i++) {
    const t = process.hrtime.bigint();
    await c.conn.sendRequest('workspace/executeCommand', { command: 'nib.status' });
    lat.push(Number(process.hrtime.bigint() - t) / 1e6);
    await new Promise((r) => setTimeout(r, 2));
  }
  lat.sort((a, b) => a - b);
  console.log(`nib.status ${label.padEnd(20)} n=${lat.length} median ${percentile(lat, 0.5).toFixed(3)} ms, ` +
    `p99 ${percentile(lat, 0.99).toFixed(3)} ms, max ${lat.at(-1).toFixed(3)} ms`);
}

console.log(`nib lsp bench: ${cpus().length} CPUs (${cpus()[0].model}), node ${process.version}`);
{
  let seed = 12345;
  const rnd = (n) => { seed = (seed * 1103515245 + 12345) >>> 0; return seed % n; };
  serverOnly('typing', (i) => [{ line: 5000 + Math.floor(i / 60), character: 4 + (i % 60) }, i % 60 === 59 ? '\n    ' : 'x']);
  serverOnly('random spots', () => [{ line: rnd(10000), character: rnd(20) }, 'x']);
}
{
  const c = await startClient();
  let seed = 12345;
  const rnd = (n) => { seed = (seed * 1103515245 + 12345) >>> 0; return seed % n; };
  // Typing at one spot, breaking the line every 60 characters.
  await throughput(c, 'typing', (i) => [{ line: 5000 + Math.floor(i / 60), character: 4 + (i % 60) },
    i % 60 === 59 ? '\n    ' : 'x']);
  await throughput(c, 'random spots', () => [{ line: rnd(10000), character: rnd(20) }, 'x']);
  await stopClient(c);
}
if (MODEL) {
  const c = await startClient({ initializationOptions: { model: MODEL, maxTokens: 4000, contextBudget: 256, threads: 1 } });
  await waitModelReady(c);
  await openDoc(c, 'file:///gen.py', 'def add(a, b):\n    return a + b\n');
  await latency(c, 'idle', () => true);
  let done = false;
  const p = c.conn.sendRequest('textDocument/inlineCompletion', {
    textDocument: { uri: 'file:///gen.py' }, position: { line: 2, character: 0 }, context: { triggerKind: 1 },
  }).catch(() => null).finally(() => { done = true; });
  await new Promise((r) => setTimeout(r, 100));
  await latency(c, 'during generation', () => !done);
  const t = process.hrtime.bigint();
  await c.conn.sendRequest('shutdown');
  console.log(`shutdown during generation answered in ${(Number(process.hrtime.bigint() - t) / 1e6).toFixed(3)} ms`);
  await p;
  await c.conn.sendNotification('exit');
  await c.proc.exited;
  c.conn.dispose();
} else {
  console.log('no model (../shared/models/rq-star-q8_0.gguf or --model): latency during generation skipped');
}
process.exit(0);
