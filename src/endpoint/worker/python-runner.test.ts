// The Python runner with a real /usr/bin/python3 (Debian's, with numpy): results inline and as
// objects (.npy for arrays), exceptions with the user's line numbers, an invalid function naming its
// line, the wall-time and address-space limits (the process replaced, the next task run), captured
// output capped, the minimal environment and BLAS threads, DataRefs read through the reader port.

import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FerryError, type TaskException } from '../../protocol/errors';
import type { FunctionSpec } from '../../protocol/wire';
import type { ObjectRead } from './isolated-vm-sandbox';
import { PythonRunner } from './python-runner';
import type { SandboxOutcome } from './sandbox';
import { TRUNCATION_MARKER } from './stdout-capture';

export const PYTHON = '/usr/bin/python3';

let n = 0;
export const pyFn = (code: string, name = 'f'): FunctionSpec => ({ function_uuid: `00000000-0000-4000-8000-${String(++n).padStart(12, '0')}`, runtime: 'python', code, name });
const limits = { timeout_s: 10, memory_mb: 512 };

const ID = 'a'.repeat(64);
const DATA = new Uint8Array(10_000).map((_, i) => (i * 7) & 255);
const reads: Array<[string, number, number]> = [];
async function readObject(key: string, start: number, end: number): Promise<ObjectRead> {
  reads.push([key, start, end]);
  if (key.startsWith('file:///refused')) throw new FerryError('FERRY_DATA_PATH_REFUSED', `${key} is outside the endpoint's data_roots`);
  if (key === 'b'.repeat(64)) return { data: new TextEncoder().encode('{"x":[1,"é"]}'), size: 14, sha256: 'json' };
  if (key !== ID) throw new FerryError('FERRY_DATA_NOT_FOUND', 'object not found');
  if (end > DATA.length) throw new FerryError('RANGE_NOT_SATISFIABLE', `${start}-${end} of ${DATA.length}`);
  return { data: DATA.slice(start, end), size: DATA.length, sha256: createHash('sha256').update(DATA).digest('hex') };
}

// The worker's environment carries secrets the function must never see.
const workerEnv = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: '/tmp', LANG: 'C.UTF-8', FERRY_TOKEN: 'secret-token', AWS_SECRET_ACCESS_KEY: 'secret' };
const { FERRY_TOKEN: _t, AWS_SECRET_ACCESS_KEY: _a, ...minimal } = workerEnv;
let runner: PythonRunner;

beforeAll(() => {
  if (!existsSync(PYTHON)) throw new Error(`${PYTHON} is missing: install Debian's python3 and python3-numpy (apt-get install python3 python3-numpy)`);
  runner = new PythonRunner({ executable: PYTHON, threads: 1, env: minimal, readObject });
});
afterAll(() => runner.dispose());

function expectFailed(o: SandboxOutcome, code: string): TaskException {
  expect(o.status, JSON.stringify(o)).toBe('failed');
  if (o.status !== 'failed') throw new Error('unreachable');
  expect(o.exception.code, JSON.stringify(o.exception)).toBe(code);
  return o.exception;
}

function bodyOf(o: SandboxOutcome): { data: Uint8Array; content_type: string } {
  if (o.status !== 'success' || !o.body) throw new Error(`expected a body, got ${JSON.stringify(o)}`);
  return o.body;
}

function resultOf<T>(o: SandboxOutcome): T {
  if (o.status !== 'success' || o.body) throw new Error(`expected an inline result, got ${JSON.stringify(o)}`);
  return o.result as T;
}

describe('PythonRunner', () => {
  it('calls the named function with args and kwargs, keeps its process warm, and names the interpreter', async () => {
    const f = pyFn('import os\n\ncalls = 0\n\ndef helper(x):\n    return x * 2\n\ndef f(a, b=1, *, c=0):\n    global calls\n    calls += 1\n    print("adding", a)\n    return {"sum": helper(a) + b + c, "calls": calls, "pid": os.getpid()}\n');
    const one = await runner.run(f, { args: [2], kwargs: { b: 3, c: 4 } }, limits);
    expect(one).toMatchObject({ status: 'success', result: { sum: 11, calls: 1 }, stdout: 'adding 2\n', interpreter: expect.stringMatching(/^CPython 3\.\d+\.\d+$/) });
    const two = await runner.run(f, { args: [1] }, limits);
    expect(two).toMatchObject({ status: 'success', result: { sum: 3, calls: 2 } });
    expect(resultOf<{ pid: number }>(two).pid).toBe(resultOf<{ pid: number }>(one).pid);
    // The runner's own CPU time and peak memory, which the worker's getrusage cannot see.
    expect(one.child).toMatchObject({ cpu_time_s: expect.any(Number), peak_rss_bytes: expect.any(Number) });
    expect(one.child!.peak_rss_bytes).toBeGreaterThan(1024 * 1024);
  });

  it('awaits an async def function', async () => {
    const f = pyFn('import asyncio\n\nasync def f(x):\n    await asyncio.sleep(0.01)\n    return x + 1\n');
    expect(await runner.run(f, { args: [1] }, limits)).toMatchObject({ status: 'success', result: 2 });
  });

  it('fails an exception with FERRY_FUNCTION_ERROR: its type, message and a traceback with the function\'s own line numbers', async () => {
    const e = expectFailed(await runner.run(pyFn('def f(x):\n    y = x + 1\n    raise ValueError(f"bad input {y}")\n'), { args: [1] }, limits), 'FERRY_FUNCTION_ERROR');
    expect(e).toMatchObject({ name: 'ValueError', message: 'bad input 2' });
    expect(e.stack).toContain('line 3, in f');
    expect(e.stack).toContain('raise ValueError(f"bad input {y}")');
    expect(e.stack).not.toContain('runner.py');
    // A message of any length travels, cut to its first 16 K characters.
    const long = expectFailed(await runner.run(pyFn('def f():\n    raise RuntimeError("x" * 5_000_000)\n'), { args: [] }, limits), 'FERRY_FUNCTION_ERROR');
    expect(long.message.length).toBeLessThan(17 * 1024);
    expect(long.message.endsWith('[truncated]')).toBe(true);
  });

  it('fails a syntax error with FERRY_FUNCTION_INVALID naming the line, and a missing entry point naming what is defined', async () => {
    const bad = expectFailed(await runner.run(pyFn('def f(x):\n    return x\n\ndef g(:\n    pass\n'), { args: [] }, limits), 'FERRY_FUNCTION_INVALID');
    expect(bad.message).toMatch(/line 4: /);
    const missing = expectFailed(await runner.run(pyFn('def g():\n    return 1\n', 'f'), { args: [] }, limits), 'FERRY_FUNCTION_INVALID');
    expect(missing.message).toContain("defines no function named 'f' (it defines g)");
  });

  it('stops an endless loop at the wall-time limit, and the next task of the function runs in a new process', async () => {
    const f = pyFn('import os\n\ndef f(spin):\n    while spin:\n        pass\n    return os.getpid()\n');
    const first = await runner.run(f, { args: [false] }, limits);
    const t0 = Date.now();
    expect(expectFailed(await runner.run(f, { args: [true] }, { ...limits, timeout_s: 1 }), 'FERRY_TASK_TIMEOUT').message).toContain('1 s');
    expect(Date.now() - t0).toBeLessThan(5000);
    const next = await runner.run(f, { args: [false] }, limits);
    expect(resultOf<number>(next)).not.toBe(resultOf<number>(first));
  });

  it('fails bytearray(10**10) under a 256 MB limit with FERRY_MEMORY_LIMIT, and runs the next task', async () => {
    const f = pyFn('def f(big):\n    if big:\n        b = bytearray(10**10)\n    return "ok"\n');
    const e = expectFailed(await runner.run(f, { args: [true] }, { ...limits, memory_mb: 256 }), 'FERRY_MEMORY_LIMIT');
    expect(e.message).toContain('MemoryError');
    expect(await runner.run(f, { args: [false] }, { ...limits, memory_mb: 256 })).toMatchObject({ status: 'success', result: 'ok' });
  });

  it('imports numpy under a 256 MB address-space limit with one BLAS thread', async () => {
    const f = pyFn('import numpy as np\n\ndef f():\n    return float(np.arange(1000.0).mean())\n');
    expect(await runner.run(f, { args: [] }, { ...limits, memory_mb: 256 })).toMatchObject({ status: 'success', result: 499.5 });
  });

  it('captures print() and sys.stderr, capped with the JavaScript sandbox\'s marker', async () => {
    const o = await runner.run(pyFn('import sys\n\ndef f():\n    print("x" * 100 * 1024)\n    print("late", file=sys.stderr)\n    return 1\n'), { args: [] }, limits);
    expect(o.status).toBe('success');
    expect(Buffer.byteLength(o.stdout)).toBeLessThanOrEqual(64 * 1024);
    expect(o.stdout.endsWith(TRUNCATION_MARKER)).toBe(true);
    const both = await runner.run(pyFn('import sys\n\ndef f():\n    print("out")\n    print("err", file=sys.stderr)\n'), { args: [] }, limits);
    expect(both).toMatchObject({ status: 'success', result: null, stdout: 'out\nerr\n' });
  });

  it('refuses NaN and infinities with a clear error, and a value JSON cannot carry', async () => {
    const nan = expectFailed(await runner.run(pyFn('def f():\n    return {"x": float("nan")}\n'), { args: [] }, limits), 'FERRY_RESULT_NOT_SERIALIZABLE');
    expect(nan.message).toContain('NaN or an infinity');
    expectFailed(await runner.run(pyFn('def f():\n    return object()\n'), { args: [] }, limits), 'FERRY_RESULT_NOT_SERIALIZABLE');
  });

  it('returns bytes, bytearray and memoryview as octet-stream bodies, and numpy arrays and scalars as .npy and JSON', async () => {
    for (const expr of ['bytes([1, 2, 3])', 'bytearray(b"\\x01\\x02\\x03")', 'memoryview(b"\\x00\\x01\\x02\\x03")[1:]']) {
      const o = await runner.run(pyFn(`def f():\n    return ${expr}\n`), { args: [] }, limits);
      expect(bodyOf(o).content_type, expr).toBe('application/octet-stream');
      expect(Array.from(bodyOf(o).data), expr).toEqual([1, 2, 3]);
    }
    const arr = await runner.run(pyFn('import numpy as np\n\ndef f():\n    return np.arange(6, dtype=np.int32).reshape(2, 3)\n'), { args: [] }, limits);
    expect(bodyOf(arr).content_type).toBe('application/x-npy');
    const npy = Buffer.from(bodyOf(arr).data);
    expect(npy.subarray(0, 6).toString('latin1')).toBe('\x93NUMPY');
    expect(npy.toString('latin1')).toMatch(/'descr': '<i4', 'fortran_order': False, 'shape': \(2, 3\)/);
    const scalars = await runner.run(pyFn('import numpy as np\n\ndef f():\n    return {"mean": np.float64(1.5), "n": np.int64(3), "small": np.array([1, 2])}\n'), { args: [] }, limits);
    expect(scalars).toMatchObject({ status: 'success', result: { mean: 1.5, n: 3, small: [1, 2] } });
  });

  it('runs with the minimal environment and the configured BLAS threads, never the worker\'s secrets', async () => {
    const code = [
      'import os',
      'import numpy',
      '',
      'def f():',
      '    blas = None',
      '    with open("/proc/self/maps") as m:',
      '        libs = {line.split()[-1] for line in m if "openblas" in line}',
      '    if libs:',
      '        import ctypes',
      '        blas = ctypes.CDLL(sorted(libs)[0]).openblas_get_num_threads()',
      '    return {"env": dict(os.environ), "openblas": blas}',
    ].join('\n');
    const three = new PythonRunner({ executable: PYTHON, threads: 3, env: minimal });
    try {
      for (const [r, threads] of [[runner, '1'], [three, '3']] as const) {
        const o = await r.run(pyFn(code), { args: [] }, limits);
        const { env, openblas } = resultOf<{ env: Record<string, string>; openblas: number | null }>(o);
        expect(env).toMatchObject({ ...minimal, OPENBLAS_NUM_THREADS: threads, OMP_NUM_THREADS: threads, MKL_NUM_THREADS: threads });
        expect(Object.keys(env).filter((k) => /FERRY|SECRET|TOKEN/.test(k))).toEqual([]);
        // Python may add LC_CTYPE (PEP 538); nothing else beyond what the runner sets.
        expect(Object.keys(env).sort()).toEqual(expect.arrayContaining(Object.keys(minimal)));
        for (const k of Object.keys(env)) expect(['LC_CTYPE', 'PYTHONDONTWRITEBYTECODE', 'OPENBLAS_NUM_THREADS', 'OMP_NUM_THREADS', 'MKL_NUM_THREADS', ...Object.keys(minimal)]).toContain(k);
        // With an OpenBLAS numpy, the library itself runs that many threads (Debian's reference BLAS has none).
        if (openblas !== null) expect(openblas).toBe(Number(threads));
      }
    } finally {
      three.dispose();
    }
  });

  it('hands {"$ref": id} arguments over as DataRefs read through the reader: slice, size, sha256, bytes, text, json', async () => {
    reads.length = 0;
    const code = [
      'def f(r, s, opts=None):',
      '    head = r.slice(1000, 1010)',
      '    return {"head": list(head), "type": type(head).__name__, "size": r.size(), "sha": r.sha256(), "all": len(r.bytes()),',
      '            "json": s.json()["x"][1], "text": len(s.text()), "kw": opts.id, "repr": repr(opts)[:8]}',
    ].join('\n');
    const o = await runner.run(pyFn(code), { args: [{ $ref: ID }, { $ref: 'b'.repeat(64) }], kwargs: { opts: { $ref: ID } } }, limits);
    expect(o).toMatchObject({
      status: 'success',
      result: { head: Array.from(DATA.slice(1000, 1010)), type: 'bytes', size: 10_000, sha: createHash('sha256').update(DATA).digest('hex'), all: 10_000, json: 'é', text: 13, kw: ID, repr: 'DataRef(' },
    });
    // The first slice read carries the size and digest: no read for them alone.
    expect(reads[0]).toEqual([ID, 1000, 1010]);
    expect(reads.filter(([k, a, b]) => k === ID && a === 0 && b === 0)).toEqual([]);
  });

  it('raises ValueError outside the object, and fails unknown objects and refused paths with their codes', async () => {
    const range = await runner.run(pyFn('def f(r):\n    try:\n        r.slice(9990, 10001)\n    except ValueError as e:\n        return "ValueError"\n'), { args: [{ $ref: ID }] }, limits);
    expect(range).toMatchObject({ status: 'success', result: 'ValueError' });
    expectFailed(await runner.run(pyFn('def f(r):\n    return len(r.bytes())\n'), { args: [{ $ref: 'c'.repeat(64) }] }, limits), 'FERRY_DATA_NOT_FOUND');
    expectFailed(await runner.run(pyFn('def f(r):\n    return r.size()\n'), { args: [{ $ref: 'file:///refused/x' }] }, limits), 'FERRY_DATA_PATH_REFUSED');
  });

  it('returns a 16 MiB float64 array as one .npy body that numpy loads to the same dtype and shape', async () => {
    const o = await runner.run(pyFn('import numpy as np\n\ndef f():\n    return np.linspace(0.0, 1.0, 2 * 1024 * 1024).reshape(1024, 2048)\n'), { args: [] }, limits);
    expect(bodyOf(o).content_type).toBe('application/x-npy');
    const npy = Buffer.from(bodyOf(o).data);
    const headerLen = npy.readUInt16LE(8);
    expect(npy.subarray(10, 10 + headerLen).toString('latin1')).toMatch(/'descr': '<f8', 'fortran_order': False, 'shape': \(1024, 2048\)/);
    expect(npy.length - 10 - headerLen).toBe(16 * 1024 * 1024);
    expect(npy.readDoubleLE(npy.length - 8)).toBe(1);
  });

  it('fails a task whose process exits under it, and a missing interpreter, with codes naming them', async () => {
    const e = expectFailed(await runner.run(pyFn('import os\n\ndef f():\n    os.write(2, b"bye\\n")\n    os._exit(3)\n'), { args: [] }, limits), 'FERRY_FUNCTION_ERROR');
    expect(e).toMatchObject({ name: 'PythonProcessExited', message: expect.stringContaining('exited with code 3'), stack: expect.stringContaining('bye') });
    const none = new PythonRunner({ executable: '/nonexistent/python3', threads: 1 });
    try {
      expect(expectFailed(await none.run(pyFn('def f():\n    return 1\n'), { args: [] }, limits), 'INTERNAL').message).toContain('/nonexistent/python3');
    } finally {
      none.dispose();
    }
  });

  it('refuses a frame from the runner whose lengths pass the bounds before reading it, and kills the process', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ferry-py-'));
    const script = join(dir, 'liar.py');
    // Claims a 2 GiB header and sends nothing more: the worker must not wait for (or buffer) it.
    writeFileSync(script, 'import struct, sys, time\nsys.stdout.buffer.write(struct.pack(">IQ", 2**31, 0))\nsys.stdout.buffer.flush()\ntime.sleep(60)\n');
    const liar = new PythonRunner({ executable: PYTHON, threads: 1, runnerScript: script });
    try {
      const t0 = Date.now();
      const e = expectFailed(await liar.run(pyFn('def f():\n    return 1\n'), { args: [] }, limits), 'INTERNAL');
      expect(e.message).toContain('over the bounds');
      expect(Date.now() - t0).toBeLessThan(5000);
    } finally {
      liar.dispose();
    }
  });
});
