// Python functions through the whole path (TypeScript SDK → gateway → agent → manager → worker →
// CPython with /usr/bin/python3, Debian's numpy): the failure cases of issue 21 (an exception with its
// line, an endless loop stopped and the worker's next task run, a memory hog under 256 MB, 100 KiB
// printed, a syntax error, Python disabled), a 16 MiB array back as an application/x-npy object
// numpy loads, a DataRef slice read through the agent, and the interpreter in the lineage record.

import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ResultRef, TaskDoc } from '../../src/protocol/api';
import type { Client } from '../../src/sdk/client';
import { eventually, startStack, type EndpointHandle, type Stack, waitForWorkers } from '../helpers/stack';

const PYTHON = '/usr/bin/python3';
const MiB = 1024 * 1024;

let stack: Stack;
let alice: Client;
let py: EndpointHandle;
let dataRoot: string;

beforeAll(async () => {
  if (!existsSync(PYTHON)) throw new Error(`${PYTHON} is missing: install Debian's python3 and python3-numpy`);
  stack = await startStack();
  alice = await stack.client('alice');
  dataRoot = realpathSync(mkdtempSync(join(tmpdir(), 'ferry-py-data-')));
  // One worker: the task after a timeout runs on the worker whose process was killed.
  py = await stack.createEndpoint('py', 'alice', {
    provider: { type: 'local', init_blocks: 1, max_blocks: 1, nodes_per_block: 1, max_workers_per_node: 1 },
    python: { enabled: true, executable: PYTHON },
    task_memory_mb: 256,
    task_timeout_s: 2,
    data_roots: [dataRoot],
  });
  py.start({ env: { FERRY_TOKEN: 'agent-secret-token' } });
  await waitForWorkers(alice, py.endpointId, 1);
}, 120_000);
afterAll(async () => {
  await stack?.stop();
  if (dataRoot) rmSync(dataRoot, { recursive: true, force: true });
});

const register = (name: string, code: string) => alice.registerFunction(code, { runtime: 'python', name });

async function failed(fn: string, args: unknown[] = []): Promise<NonNullable<TaskDoc["exception"]> & { stdout?: string }> {
  const doc = await alice.getTask(await alice.submit(py.endpointId, fn, args as never[]), { wait: 30 });
  expect(doc.status, JSON.stringify(doc)).toBe('failed');
  return { ...doc.exception!, stdout: doc.stdout };
}

describe('Python functions through a real gateway', () => {
  it('fails an exception with its type, message and a traceback naming the function\'s own line', async () => {
    const fn = await register('divide', 'def divide(a, b):\n    scale = 10\n    return scale * a / b\n');
    expect(await alice.result(await alice.submit(py.endpointId, fn, [1, 4]), { timeout: 30 })).toBe(2.5);
    const e = await failed(fn, [1, 0]);
    expect(e).toMatchObject({ code: 'FERRY_FUNCTION_ERROR', name: 'ZeroDivisionError', message: 'division by zero' });
    expect(e.stack).toContain('line 3, in divide');
  }, 60_000);

  it('stops an endless loop at task_timeout_s, and the next task on that worker succeeds', async () => {
    const fn = await register('spin', 'def spin(forever):\n    while forever:\n        pass\n    return "done"\n');
    const e = await failed(fn, [true]);
    expect(e.code).toBe('FERRY_TASK_TIMEOUT');
    expect(await alice.result(await alice.submit(py.endpointId, fn, [false]), { timeout: 30 })).toBe('done');
  }, 60_000);

  it('fails bytearray(10**10) under 256 MB with FERRY_MEMORY_LIMIT', async () => {
    const fn = await register('hog', 'def hog():\n    return len(bytearray(10**10))\n');
    expect(await failed(fn)).toMatchObject({ code: 'FERRY_MEMORY_LIMIT', message: expect.stringContaining('MemoryError') });
  }, 60_000);

  it('captures 100 KiB printed, capped', async () => {
    const fn = await register('chatty', 'def chatty():\n    for i in range(1024):\n        print("%099d" % i)\n    return "printed"\n');
    const doc = await alice.getTask(await alice.submit(py.endpointId, fn, []), { wait: 30 });
    expect(doc).toMatchObject({ status: 'success', result: 'printed' });
    expect(doc.stdout!.startsWith(`${'0'.repeat(99)}\n`)).toBe(true);
    expect(Buffer.byteLength(doc.stdout!)).toBeLessThanOrEqual(64 * 1024);
    expect(doc.stdout!).toContain('[ferry: stdout truncated]');
  }, 60_000);

  it('fails a syntax error with FERRY_FUNCTION_INVALID naming the line', async () => {
    const fn = await register('broken', 'def broken(x):\n    y = (x +\n    return y\n');
    const e = await failed(fn, [1]);
    expect(e).toMatchObject({ code: 'FERRY_FUNCTION_INVALID', message: expect.stringMatching(/line [23]: /) });
  }, 60_000);

  it('fails every Python task with FERRY_RUNTIME_NOT_ALLOWED where the config does not enable Python, before anything runs', async () => {
    const off = await stack.createEndpoint('py-off', 'alice', {});
    off.start();
    await waitForWorkers(alice, off.endpointId, 1);
    const fn = await register('touch', 'import pathlib\n\ndef touch(p):\n    pathlib.Path(p).touch()\n    return "ran"\n');
    const sentinel = `${off.stateDir}/PYTHON-RAN`;
    const doc = await alice.getTask(await alice.submit(off.endpointId, fn, [sentinel]), { wait: 30 });
    expect(doc.status).toBe('failed');
    expect(doc.exception).toMatchObject({ code: 'FERRY_RUNTIME_NOT_ALLOWED' });
    expect(existsSync(sentinel)).toBe(false);
  }, 90_000);

  it('returns a 16 MiB float64 array as an application/x-npy object that numpy loads to the same dtype and shape', async () => {
    const fn = await register('grid', 'import numpy as np\n\ndef grid(rows, cols):\n    return np.linspace(0.0, 1.0, rows * cols).reshape(rows, cols)\n');
    const id = await alice.submit(py.endpointId, fn, [1024, 2048]);
    const ref = (await alice.result(id, { timeout: 60, resolve: false })) as unknown as ResultRef;
    expect(ref).toMatchObject({ content_type: 'application/x-npy', size: 16 * MiB + 128 });
    const bytes = (await alice.result(id, { timeout: 60 })) as Uint8Array;
    expect(bytes.byteLength).toBe(ref.size);
    const check = 'import io, sys, numpy as np\na = np.load(io.BytesIO(sys.stdin.buffer.read()))\nprint(a.dtype, a.shape, a[0, 0], a[-1, -1])';
    expect(execFileSync(PYTHON, ['-c', check], { input: bytes, encoding: 'utf8' }).trim()).toBe('float64 (1024, 2048) 0.0 1.0');
  }, 90_000);

  it('reads a slice of an uploaded object as a DataRef through the agent, names the interpreter in the lineage record, and shows no agent secret', async () => {
    const values = new Float64Array(MiB / 8).map((_, i) => i);
    const ref = await alice.put(new Uint8Array(values.buffer));
    const code = [
      'import os',
      'import numpy as np',
      '',
      'def mean_of(data, start, end):',
      '    chunk = np.frombuffer(data.slice(start * 8, end * 8), dtype="<f8")',
      '    secrets = sorted(k for k in os.environ if "FERRY" in k or "TOKEN" in k)',
      '    return {"mean": float(chunk.mean()), "size": data.size(), "secrets": secrets, "threads": os.environ.get("OPENBLAS_NUM_THREADS")}',
    ].join('\n');
    const fn = await register('mean_of', code);
    const id = await alice.submit(py.endpointId, fn, [{ $ref: ref.$ref }, 1000, 2000], undefined, { workflow_id: 'wf-python-lineage' });
    expect(await alice.result(id, { timeout: 60 })).toEqual({ mean: 1499.5, size: MiB, secrets: [], threads: '1' });
    const [record] = await eventually(async () => {
      const records = await alice.lineageRecords({ workflow_id: 'wf-python-lineage' });
      return records.length > 0 ? records : null;
    }, 'the lineage record');
    expect(record!.telemetry).toMatchObject({ interpreter: expect.stringMatching(/^CPython 3\.\d+\.\d+$/) });
    expect(record!.used).toEqual(expect.arrayContaining([expect.objectContaining({ role: 'args.0', object: ref.$ref })]));
    const prov = JSON.stringify(await alice.taskProvenance(id));
    expect(prov).toContain('"ferry:runtime":"python"');
    expect(prov).toMatch(/"ferry:interpreter":"CPython 3\.\d+\.\d+"/);
  }, 90_000);

  it('reads file:// references under data_roots in place, and refuses one outside them before reading', async () => {
    const inside = join(dataRoot, 'run1.bin');
    writeFileSync(inside, Buffer.from(new Float64Array([1, 2, 3, 4, 5, 6]).buffer));
    const outside = join(realpathSync(tmpdir()), `ferry-py-outside-${process.pid}.bin`);
    writeFileSync(outside, 'secret');
    try {
      const fn = await register('window_sum', 'import numpy as np\n\ndef window_sum(data):\n    return float(np.frombuffer(data.slice(8, 32), dtype="<f8").sum())\n');
      expect(await alice.result(await alice.submit(py.endpointId, fn, [{ $ref: `file://${inside}` }]), { timeout: 30 })).toBe(9);
      expect(await failed(fn, [{ $ref: `file://${outside}` }])).toMatchObject({ code: 'FERRY_DATA_PATH_REFUSED' });
    } finally {
      rmSync(outside, { force: true });
    }
  }, 60_000);
});
