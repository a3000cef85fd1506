import { describe, expect, it } from 'vitest';
import { ERROR_CODES, FerryError } from './errors';
import { composeTaskId, endpointOfId } from './ids';
import { canTransition, transition } from './task-state';
import { chunkBySize, parseAgentFrame, seqOf, withSeq } from './wire';
import { parseFunctionCode } from '../functions/parse-function';

describe('error codes', () => {
  it('maps caller mistakes to 4xx and Ferry faults to 5xx', () => {
    for (const [code, info] of Object.entries(ERROR_CODES)) {
      if (code.startsWith('FERRY_')) continue; // task outcomes, reported inside a task doc
      if (info.kind === 'user') expect(info.status, code).toBeGreaterThanOrEqual(400);
      if (info.kind === 'user') expect(info.status, code).toBeLessThan(500);
      if (info.kind === 'system') expect(info.status, code).toBeGreaterThanOrEqual(500);
    }
    const err = new FerryError('FUNCTION_NOT_PERMITTED');
    expect(err.status).toBe(403);
    expect(err.toBody()).toEqual({ code: 'FUNCTION_NOT_PERMITTED', message: ERROR_CODES.FUNCTION_NOT_PERMITTED.message });
  });
});

describe('ids', () => {
  const ep = '0f8e7c1a-3b2d-4e5f-8a9b-0c1d2e3f4a5b';
  it('finds the endpoint in a task id', () => {
    expect(endpointOfId(composeTaskId(ep, 'abc123def456ghi7'))).toBe(ep);
  });
  it('refuses malformed ids', () => {
    for (const bad of ['', ep, `${ep}.`, `${ep}.UPPERCASE0000000`, `x${ep}.abc123def456ghi7`, `${ep}.abc/../../x000000`]) {
      expect(endpointOfId(bad), bad).toBeNull();
    }
  });
});

describe('task states', () => {
  it('allows a late result after a re-queue but nothing after a final state', () => {
    expect(canTransition('waiting-for-ep', 'success')).toBe(true);
    expect(canTransition('running', 'waiting-for-ep')).toBe(true);
    expect(canTransition('success', 'failed')).toBe(false);
    expect(canTransition('cancelled', 'success')).toBe(false);
  });
  it('stamps the time and refuses illegal moves with a stable code', () => {
    const t = transition('t1', 'waiting-for-ep', { 'waiting-for-ep': 1 }, 'running', 2);
    expect(t.transitions).toEqual({ 'waiting-for-ep': 1, running: 2 });
    expect(t.event).toEqual({ task_id: 't1', from: 'waiting-for-ep', to: 'running', at: 2 });
    expect(() => transition('t1', 'success', {}, 'running', 3)).toThrow(expect.objectContaining({ code: 'ILLEGAL_TRANSITION' }));
  });
});

describe('frame seq', () => {
  it('numbers a frame in front, reads the number back without parsing, and leaves the frame as it was', () => {
    const frame = { type: 'credit', n: 5 };
    const numbered = withSeq(JSON.stringify(frame), 12);
    expect(numbered).toBe('{"seq":12,"type":"credit","n":5}');
    expect(seqOf(numbered)).toBe(12);
    expect(parseAgentFrame(numbered)).toEqual(frame);
  });

  it('finds no number in a frame without one, or with one elsewhere', () => {
    expect(seqOf('{"type":"credit","n":5}')).toBeNull();
    expect(seqOf('{"type":"credit","seq":3,"n":5}')).toBeNull();
    expect(seqOf('{"seq":-1,"type":"credit","n":5}')).toBeNull();
  });
});

describe('chunkBySize', () => {
  it('keeps every chunk under the limit and loses nothing', () => {
    const items = Array.from({ length: 1000 }, (_, i) => ({ i, pad: 'x'.repeat(i % 97) }));
    const chunks = chunkBySize(items, 4096);
    expect(chunks.flat()).toEqual(items);
    for (const c of chunks) expect(JSON.stringify(c).length).toBeLessThanOrEqual(4096);
  });
});

describe('parseFunctionCode', () => {
  it('accepts the function forms serialize-javascript prints', () => {
    expect(parseFunctionCode('function add(a, b) { return a + b }')).toEqual({ name: 'add', async: false, params: 2 });
    expect(parseFunctionCode('(x) => x * 2')).toEqual({ name: null, async: false, params: 1 });
    expect(parseFunctionCode('async function f(ref) { return await ref }').async).toBe(true);
    expect(parseFunctionCode('async (a) => { return a } // trailing comment').params).toBe(1);
  });
  it.each([
    ['an expression', '1 + 2'],
    ['a statement list', 'function f() {}; f()'],
    ['a call of a function', '(() => 1)()'],
    ['an early close', '(a) => a), (1'],
    ['two functions', '() => 1) + (() => 2'],
    ['a syntax error', 'function ('],
    ['a generator', 'function* g() { yield 1 }'],
    ['a class', 'class A {}'],
  ])('refuses %s', (_, code) => {
    expect(() => parseFunctionCode(code)).toThrow(expect.objectContaining({ code: 'INVALID_FUNCTION_CODE' }));
  });
});
