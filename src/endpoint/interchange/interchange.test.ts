// The interchange with real manager processes (started by the local provider) and real workers.

import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { INTERCHANGE_VERSION, MAX_MANAGER_FRAME_BYTES, MAX_REGISTER_FRAME_BYTES, RESULT_PART_BYTES, type WorkerTaskResult } from '../../protocol/interchange';
import { MAX_JSON_DEPTH } from '../../protocol/json-depth';
import { createLogger } from '../log';
import { writeConnectFile } from '../manager/connect-file';
import { FRAME_PREFIX_BYTES, encodeFrame, readFrames } from './frames';
import { LocalProvider } from '../providers/local-provider';
import { Interchange } from './interchange';

const fn = { function_uuid: '00000000-0000-8000-8000-0000000000aa', runtime: 'js' as const, code: '(x) => x * x' };
const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function setup(workers = 2, register_timeout_s?: number) {
  const dir = mkdtempSync(join(tmpdir(), 'ferry-ix-'));
  const results = new Map<string, WorkerTaskResult>();
  /** Result parts as they came, and how many results had come before each. */
  const parts: Array<{ taskId: string; attempt: number; offset: number; data: Buffer; resultsBefore: number }> = [];
  const attempts = new Map<string, number>();
  let managersChanged = 0;
  const listeners = new Set<() => void>();
  /** The interchange's log lines, parsed. */
  const logs: Array<Record<string, unknown>> = [];
  const ix = new Interchange({
    address: '127.0.0.1', port: 0, heartbeat_s: 1, register_timeout_s,
    log: createLogger({}, (line) => void logs.push(JSON.parse(line) as Record<string, unknown>)),
    hooks: {
      functionSpec: () => fn,
      beforeDispatch: (ids) => ids.map((id) => {
        attempts.set(id, (attempts.get(id) ?? 0) + 1);
        return attempts.get(id)!;
      }),
      onStarted: () => {},
      onResultPart: (taskId, attempt, offset, data) => void parts.push({ taskId, attempt, offset, data: Buffer.from(data), resultsBefore: results.size }),
      onResults: (rs) => {
        for (const r of rs) results.set(r.task_id, r);
        for (const l of listeners) l();
      },
      onLost: (lost) => ix.requeue(lost),
      onManagersChanged: () => {
        managersChanged++;
        for (const l of listeners) l();
      },
    },
  });
  const port = await ix.start();
  const provider = new LocalProvider();
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  cleanups.push(() => ix.stop());
  cleanups.push(() => provider.killAll());
  const until = (cond: () => boolean, what: string, ms = 30_000) =>
    new Promise<void>((resolve, reject) => {
      const check = () => {
        if (cond()) {
          listeners.delete(check);
          clearTimeout(timer);
          resolve();
        }
      };
      const timer = setTimeout(() => {
        listeners.delete(check);
        reject(new Error(`timed out waiting for ${what}`));
      }, ms);
      listeners.add(check);
      check();
    });
  const startBlock = async (secret = randomBytes(16).toString('hex'), allowed = true) => {
    const blockId = `b${randomBytes(3).toString('hex')}`;
    const connectFile = join(dir, `${blockId}.json`);
    writeConnectFile(connectFile, { address: '127.0.0.1', port, secret, block_id: blockId, workers, prefetch: 8, memory_mb: 64, timeout_s: 5 });
    if (allowed) ix.allowBlock(blockId, secret);
    const jobId = await provider.submit({ blockId, nodes: 1, connectFile, dir });
    return { blockId, connectFile, jobId };
  };
  /** A raw TCP connection to the interchange, as anyone on the network could open. */
  const dial = async (allowHalfOpen = false) => {
    const socket = connect({ host: '127.0.0.1', port, allowHalfOpen });
    socket.on('error', () => {});
    socket.resume(); // read (and drop) what the interchange answers, so its end is seen
    cleanups.push(() => void socket.destroy());
    await new Promise<void>((r) => socket.once('connect', () => r()));
    return { socket, peer: `${socket.localAddress}:${socket.localPort}`, closed: new Promise<void>((r) => socket.once('close', () => r())) };
  };
  return { ix, port, provider, results, parts, attempts, logs, until, startBlock, dial, managersChanged: () => managersChanged };
}

/** One frame's bytes, as a peer writes them. */
const frame = (header: unknown, body?: Uint8Array): Buffer => {
  const f = encodeFrame(header, body);
  return f.body ? Buffer.concat([f.head, f.body]) : f.head;
};

const tasks = (n: number, from = 0) => Array.from({ length: n }, (_, i) => ({ task_id: `t${from + i}`, function_uuid: fn.function_uuid, payload: { args: [from + i] } }));

describe('Interchange with real managers', () => {
  it('dispatches to a manager that registered with its block secret and returns every result', async () => {
    const s = await setup();
    const { connectFile } = await s.startBlock();
    expect(statSync(connectFile).mode & 0o777).toBe(0o600);
    s.ix.submit(tasks(500));
    await s.until(() => s.results.size === 500, '500 results');
    for (let i = 0; i < 500; i++) expect(s.results.get(`t${i}`)).toMatchObject({ status: 'success', result: i * i });
    expect(s.ix.stats()).toMatchObject({ managers: 1, total_workers: 2, queued: 0, inflight: 0 });
  });

  it('brings a bytes result from a worker in ordered parts ahead of its entry, which names their size and sha256', async () => {
    const s = await setup(1);
    fn.code = '(n) => { const a = new Uint8Array(n); for (let i = 0; i < n; i++) a[i] = (i * 13 + (i >>> 12)) & 255; return a }';
    try {
      await s.startBlock();
      const n = 2 * RESULT_PART_BYTES + 12345;
      s.ix.submit([{ task_id: 'big', function_uuid: fn.function_uuid, payload: { args: [n] } }, { task_id: 'small', function_uuid: fn.function_uuid, payload: { args: [3] } }]);
      await s.until(() => s.results.size === 2, 'both results');
      const expected = Buffer.from(Uint8Array.from({ length: n }, (_, i) => (i * 13 + (i >>> 12)) & 255));
      const big = s.parts.filter((p) => p.taskId === 'big');
      expect(big.map((p) => [p.offset, p.data.length, p.attempt])).toEqual([[0, RESULT_PART_BYTES, 1], [RESULT_PART_BYTES, RESULT_PART_BYTES, 1], [2 * RESULT_PART_BYTES, 12345, 1]]);
      expect(big.every((p) => p.resultsBefore === 0)).toBe(true);
      expect(Buffer.compare(Buffer.concat(big.map((p) => p.data)), expected)).toBe(0);
      expect(s.results.get('big')).toMatchObject({ status: 'success', result_body: { size: n, sha256: createHash('sha256').update(expected).digest('hex'), content_type: 'application/octet-stream' } });
      expect(s.results.get('big')).not.toHaveProperty('result');
      // Bytes are a body whatever their size.
      expect(s.results.get('small')).toMatchObject({ result_body: { size: 3 } });
      expect(Buffer.concat(s.parts.filter((p) => p.taskId === 'small').map((p) => p.data))).toEqual(Buffer.from([0, 13, 26]));
    } finally {
      fn.code = '(x) => x * x';
    }
  });

  it('refuses a manager with a wrong secret', async () => {
    const s = await setup();
    const { jobId } = await s.startBlock('not-the-secret', false);
    s.ix.submit(tasks(3));
    // The refused manager is told to shut down and exits; nothing registers, nothing runs.
    const deadline = Date.now() + 20_000;
    while ((await s.provider.status([jobId])).get(jobId) !== 'done') {
      if (Date.now() > deadline) throw new Error('the refused manager did not exit');
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(s.ix.stats().managers).toBe(0);
    expect(s.results.size).toBe(0);
    expect(s.ix.stats().queued).toBe(3);
  });

  it('re-queues the tasks of a lost manager onto another one', async () => {
    const s = await setup(1);
    // Slow tasks so the first manager holds work when it dies.
    const slow = { ...fn, code: '(x) => { const end = Date.now() + 20; while (Date.now() < end); return x * x }' };
    Object.assign(fn, slow);
    try {
      const first = await s.startBlock();
      await s.until(() => s.ix.stats().managers === 1, 'manager 1');
      s.ix.submit(tasks(300));
      await s.until(() => s.results.size >= 5, 'first results');
      await s.startBlock();
      await s.until(() => s.ix.stats().managers === 2, 'manager 2');
      expect(s.results.size).toBeLessThan(250); // 50 tasks/s per manager: the first still holds work
      // Kill the first manager, which holds work; its workers exit when their IPC channel closes.
      process.kill(s.provider.pids(first.jobId)[0]!, 'SIGKILL');
      await s.until(() => s.ix.stats().managers === 1, 'the lost manager to be noticed');
      await s.until(() => s.results.size === 300, 'all 300 results');
      expect([...s.attempts.values()].some((a) => a > 1)).toBe(true);
      for (let i = 0; i < 300; i++) expect(s.results.get(`t${i}`)?.result).toBe(i * i);
    } finally {
      fn.code = '(x) => x * x';
    }
  });
  it('fails only the task of a result nested past MAX_JSON_DEPTH, and keeps its manager', async () => {
    const s = await setup();
    s.ix.allowBlock('b-deep', 'deep-secret');
    // A manager of our own on a raw socket: it answers each task with a result 3,000 levels deep
    // (which the schema's recursion cannot parse), except t1, answered plainly.
    const socket = connect({ host: '127.0.0.1', port: s.port });
    cleanups.push(() => void socket.destroy());
    readFrames(socket, (value) => {
      const msg = value as { type: string; tasks?: Array<{ task_id: string }> };
      if (msg.type !== 'tasks') return;
      const results = msg.tasks!.map(({ task_id }) => ({ task_id, status: 'success', result: task_id === 't1' ? 1 : JSON.parse('['.repeat(3000) + ']'.repeat(3000)) }));
      socket.write(frame({ type: 'results', results }));
    });
    socket.write(frame({ type: 'register', version: INTERCHANGE_VERSION, secret: 'deep-secret', block_id: 'b-deep', manager_id: 'm-deep', host: 'test', workers: 1, prefetch: 0 }));
    await s.until(() => s.ix.stats().managers === 1, 'the manager to register');
    s.ix.submit(tasks(1, 0));
    await s.until(() => s.results.has('t0'), 'the deep result');
    expect(s.results.get('t0')).toMatchObject({ status: 'failed', exception: { code: 'FERRY_RESULT_NOT_SERIALIZABLE', message: expect.stringContaining(`limit of ${MAX_JSON_DEPTH} levels`) } });
    expect(s.results.get('t0')).not.toHaveProperty('result');
    // The same manager, still connected, gets the next task and its result comes through.
    s.ix.submit(tasks(1, 1));
    await s.until(() => s.results.has('t1'), 'the next result');
    expect(s.results.get('t1')).toMatchObject({ status: 'success', result: 1 });
    expect(s.ix.stats().managers).toBe(1);
  });

  it('fails a task whose error is too long for one frame under the cap with FERRY_RESULT_TOO_LARGE; its manager stays', async () => {
    const s = await setup(1);
    // The message and the stack that repeats it: over the cap together, each under it.
    fn.code = `(n) => { if (n > 0) throw new Error('e'.repeat(n)); return 'small' }`;
    try {
      await s.startBlock();
      await s.until(() => s.ix.stats().managers === 1, 'the manager');
      s.ix.submit([{ task_id: 'huge', function_uuid: fn.function_uuid, payload: { args: [Math.ceil(MAX_MANAGER_FRAME_BYTES * 0.6)] } }]);
      await s.until(() => s.results.size === 1, 'the huge error');
      expect(s.results.get('huge')).toMatchObject({ status: 'failed', exception: { code: 'FERRY_RESULT_TOO_LARGE' }, execution: { attempt: 1 } });
      s.ix.submit([{ task_id: 'after', function_uuid: fn.function_uuid, payload: { args: [0] } }]);
      await s.until(() => s.results.size === 2, 'the next result');
      expect(s.results.get('after')).toMatchObject({ status: 'success', result: 'small' });
      expect(s.attempts.get('huge')).toBe(1);
      expect(s.logs.filter((l) => l.msg === 'interchange connection refused' || l.msg === 'manager lost')).toEqual([]);
    } finally {
      fn.code = '(x) => x * x';
    }
  });

  it('closes a connection that sends nothing within the registration timeout, and logs it once with the peer', async () => {
    const s = await setup(1, 0.5);
    const c = await s.dial();
    const opened = Date.now();
    await c.closed;
    expect(Date.now() - opened).toBeGreaterThanOrEqual(450);
    const refusals = s.logs.filter((l) => l.msg === 'interchange connection refused');
    expect(refusals).toEqual([expect.objectContaining({ level: 'warn', peer: c.peer, reason: 'no register message within 0.5 s' })]);
  });

  it('closes a connection at a prefix declaring a frame past the register cap, before its body, and logs it once with the peer', async () => {
    const s = await setup(1, 60);
    const c = await s.dial();
    // A frame one byte past the cap, declared and not sent: refused at its prefix, not at the timeout.
    const prefix = Buffer.alloc(FRAME_PREFIX_BYTES);
    prefix.writeUInt32BE(MAX_REGISTER_FRAME_BYTES + 1, 0);
    c.socket.write(Buffer.concat([prefix, Buffer.from('{"type":"register","host":"')]));
    await c.closed;
    const refusals = s.logs.filter((l) => l.msg === 'interchange connection refused');
    expect(refusals).toEqual([expect.objectContaining({ peer: c.peer, reason: `a frame longer than ${MAX_REGISTER_FRAME_BYTES} bytes` })]);
  });

  it('refuses a registered manager frame that carries a body where none belongs, and the manager with it', async () => {
    const s = await setup(1, 60);
    s.ix.allowBlock('b-body', 'body-secret');
    const c = await s.dial();
    c.socket.write(frame({ type: 'register', version: INTERCHANGE_VERSION, secret: 'body-secret', block_id: 'b-body', manager_id: 'm-body', host: 'test', workers: 1, prefetch: 0 }));
    await s.until(() => s.ix.stats().managers === 1, 'the manager to register');
    c.socket.write(frame({ type: 'heartbeat', idle_workers: 1, workers: 1 }, new Uint8Array(10)));
    await c.closed;
    expect(s.logs.filter((l) => l.msg === 'interchange connection refused')).toEqual([expect.objectContaining({ peer: c.peer, reason: 'a heartbeat frame with a body of 10 bytes' })]);
    await s.until(() => s.ix.stats().managers === 0, 'the manager to be dropped');
  });

  it('refuses any message but register first, and a wrong secret, each logged once with the peer; no manager counts', async () => {
    const s = await setup(1, 60);
    const early = await s.dial();
    early.socket.write(frame({ type: 'heartbeat', idle_workers: 1, workers: 1 }));
    await early.closed;
    const wrong = await s.dial();
    const register = { type: 'register', version: INTERCHANGE_VERSION, secret: 'guess', block_id: 'b0', manager_id: 'm0', host: 'h', workers: 1, prefetch: 0 };
    // A second try on the refused connection is not read either.
    wrong.socket.write(Buffer.concat([frame(register), frame(register)]));
    await wrong.closed;
    expect(s.logs.filter((l) => l.msg === 'interchange connection refused')).toEqual([
      expect.objectContaining({ peer: early.peer, reason: 'a heartbeat message before registering' }),
      expect.objectContaining({ peer: wrong.peer, reason: 'bad block secret', block_id: 'b0' }),
    ]);
    expect(s.ix.stats().managers).toBe(0);
  });

  it('closes a refused peer that keeps its side open at the registration timeout', async () => {
    const s = await setup(1, 1);
    const c = await s.dial(true);
    const register = { type: 'register', version: INTERCHANGE_VERSION, secret: 'guess', block_id: 'b0', manager_id: 'm0', host: 'h', workers: 1, prefetch: 0 };
    c.socket.write(frame(register));
    const ended = new Promise<void>((r) => c.socket.once('end', () => r()));
    await ended; // told to shut down; this peer does not, and keeps writing (a write to a closed peer is reset)
    const opened = Date.now();
    const writer = setInterval(() => c.socket.write(frame({ type: 'heartbeat', idle_workers: 1, workers: 1 })), 50);
    await c.closed;
    clearInterval(writer);
    expect(Date.now() - opened).toBeGreaterThanOrEqual(500);
    expect(s.logs.filter((l) => l.msg === 'interchange connection refused')).toEqual([expect.objectContaining({ peer: c.peer, reason: 'bad block secret' })]);
  });
});
