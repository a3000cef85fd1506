// DataRef handles inside the isolate, with the host's reader faked: lazy reads, only the range
// asked for, RangeError outside the object, FERRY_DATA_NOT_FOUND, and wall time while awaiting a read.

import { afterAll, describe, expect, it } from 'vitest';
import { FerryError } from '../../protocol/errors';
import type { FunctionSpec } from '../../protocol/wire';
import { IsolatedVmSandbox, type ObjectRead } from './isolated-vm-sandbox';

const ID = 'a'.repeat(64);
const DATA = new Uint8Array(10_000).map((_, i) => (i * 7) & 255);
const calls: Array<[string, number, number]> = [];
let hang = false;

async function readObject(id: string, start: number, end: number): Promise<ObjectRead> {
  calls.push([id, start, end]);
  if (hang) return new Promise(() => {});
  if (id.startsWith('file:///refused')) throw new FerryError('FERRY_DATA_PATH_REFUSED', `${id} is refused: it is outside the endpoint's data_roots (/d); no byte of it was read`);
  if (id === 'file:///d/f') return { data: DATA.slice(start, end), size: DATA.length, sha256: '' };
  if (id === JSON.stringify({ $ref: 'file:///d/f', digest: true })) return { data: new Uint8Array(0), size: DATA.length, sha256: 'computed' };
  if (id === JSON.stringify({ $ref: ID, locations: ['file:///d/copy'] })) return { data: DATA.slice(start, end), size: DATA.length, sha256: 'digest' };
  if (id === 'b'.repeat(64)) return { data: new TextEncoder().encode('{"x":[1,"é"]}'), size: 15, sha256: 'json' };
  if (id === 'u'.repeat(64)) throw new FerryError('UNAVAILABLE', 'FERRY_DATA_NOT_FOUND: only a message that starts like a code');
  if (id === 'r'.repeat(64)) throw new FerryError('RANGE_NOT_SATISFIABLE', 'range outside the object');
  if (id !== ID) throw new FerryError('FERRY_DATA_NOT_FOUND', 'object not found');
  return { data: DATA.slice(start, end), size: DATA.length, sha256: 'digest' };
}

let n = 0;
const fn = (code: string): FunctionSpec => ({ function_uuid: `00000000-0000-4000-8000-${String(++n).padStart(12, '0')}`, runtime: 'js', code });
const sandbox = new IsolatedVmSandbox({ readObject });
afterAll(() => sandbox.dispose());
const limits = { timeout_s: 5, memory_mb: 64 };

describe('DataRef in the sandbox', () => {
  it('fetches nothing until a method is called, then only the slice', async () => {
    calls.length = 0;
    const o = await sandbox.run(fn(`async (r, opts) => [typeof r.slice, opts.d.id]`), { args: [{ $ref: ID }], kwargs: { d: { $ref: ID } } }, limits);
    expect(o).toMatchObject({ status: 'success', result: ['function', ID] });
    expect(calls).toEqual([]);
    const s = await sandbox.run(fn(`async (r) => { const s = await r.slice(1000, 1010); return [Array.from(s), s.length, await r.size(), await r.sha256()] }`), { args: [{ $ref: ID }] }, limits);
    expect(s).toMatchObject({ status: 'success', result: [Array.from(DATA.slice(1000, 1010)), 10, 10_000, 'digest'] });
    // One read: its answer carries the size and digest.
    expect(calls).toEqual([[ID, 1000, 1010]]);
  });

  it('reads bytes, text and json', async () => {
    const o = await sandbox.run(fn(`async (a, b) => [(await a.bytes()).length, (await b.json()).x[1], (await b.text()).length]`), { args: [{ $ref: ID }, { $ref: 'b'.repeat(64) }] }, limits);
    expect(o).toMatchObject({ status: 'success', result: [10_000, 'é', 13] });
  });

  it('throws a RangeError outside the object', async () => {
    const o = await sandbox.run(fn(`async (r) => { try { await r.slice(9_990, 10_001) } catch (e) { return e.name } }`), { args: [{ $ref: ID }] }, limits);
    expect(o).toMatchObject({ status: 'success', result: 'RangeError' });
  });

  it('fails the task with FERRY_DATA_NOT_FOUND for an unknown object', async () => {
    const o = await sandbox.run(fn(`async (r) => (await r.bytes()).length`), { args: [{ $ref: 'c'.repeat(64) }] }, limits);
    expect(o.status).toBe('failed');
    if (o.status === 'failed') expect(o.exception.code).toBe('FERRY_DATA_NOT_FOUND');
  });

  it('recognises file refs and object refs with locations, and passes them to the host as ref keys', async () => {
    calls.length = 0;
    const locations = ['file:///d/copy'];
    const o = await sandbox.run(fn(`async (f, o, notRef) => [
      Array.from(await f.slice(3, 6)), await f.size(), await f.sha256(), await f.sha256(),
      Array.from(await o.slice(0, 2)), await o.sha256(), JSON.stringify([f, o]), typeof notRef.slice]`),
    { args: [{ $ref: 'file:///d/f' }, { $ref: ID, locations }, { $ref: ID, locations: 'file:///d/copy' }] }, limits);
    expect(o).toMatchObject({ status: 'success', result: [Array.from(DATA.slice(3, 6)), 10_000, 'computed', 'computed', Array.from(DATA.slice(0, 2)), 'digest', JSON.stringify([{ $ref: 'file:///d/f' }, { $ref: ID, locations }]), 'undefined'] });
    const objectKey = JSON.stringify({ $ref: ID, locations });
    // The size answer of a file carries no digest: sha256() asks once more, with digest: true.
    expect(calls).toEqual([['file:///d/f', 3, 6], [JSON.stringify({ $ref: 'file:///d/f', digest: true }), 0, 0], [objectKey, 0, 2]]);
  });

  it('fails the task with FERRY_DATA_PATH_REFUSED for a refused path', async () => {
    const o = await sandbox.run(fn(`async (r) => (await r.slice(0, 1)).length`), { args: [{ $ref: 'file:///refused/x' }] }, limits);
    expect(o.status).toBe('failed');
    if (o.status === 'failed') {
      expect(o.exception).toMatchObject({ code: 'FERRY_DATA_PATH_REFUSED', name: 'DataPathRefused' });
      expect(o.exception.message).toMatch(/^file:\/\/\/refused\/x is refused: it is outside/);
    }
  });

  it('tells refusals apart by their code, which crosses into the isolate beside the message', async () => {
    const o = await sandbox.run(fn(`async (r) => (await r.size())`), { args: [{ $ref: 'u'.repeat(64) }] }, limits);
    expect(o).toMatchObject({ status: 'failed', exception: { code: 'FERRY_FUNCTION_ERROR', name: 'DataReadError', message: 'UNAVAILABLE: FERRY_DATA_NOT_FOUND: only a message that starts like a code' } });
    const range = await sandbox.run(fn(`async (r) => { try { await r.size() } catch (e) { return [e.name, e.message] } }`), { args: [{ $ref: 'r'.repeat(64) }] }, limits);
    expect(range).toMatchObject({ status: 'success', result: ['RangeError', 'RANGE_NOT_SATISFIABLE: range outside the object'] });
    const without = new IsolatedVmSandbox({});
    try {
      const none = await without.run(fn(`async (r) => (await r.size())`), { args: [{ $ref: ID }] }, limits);
      expect(none).toMatchObject({ status: 'failed', exception: { code: 'FERRY_FUNCTION_ERROR', name: 'DataReadError', message: 'UNAVAILABLE: this worker cannot read data references' } });
    } finally {
      without.dispose();
    }
  });

  it('enforces wall time while a read is pending', async () => {
    hang = true;
    const started = Date.now();
    const o = await sandbox.run(fn(`async (r) => (await r.size())`), { args: [{ $ref: ID }] }, { timeout_s: 0.5, memory_mb: 64 });
    hang = false;
    expect(o.status).toBe('failed');
    if (o.status === 'failed') expect(o.exception.code).toBe('FERRY_TASK_TIMEOUT');
    expect(Date.now() - started).toBeLessThan(3000);
  });
});
