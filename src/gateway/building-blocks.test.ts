// The gateway's small pure parts, pinned where a mistake would be hard to see from the routes.

import { describe, expect, it } from 'vitest';
import { functionUuid } from './function-id';
import { buildTaskFrames } from './endpoint-hub/task-frames';
import { randomSuffixes, taskSuffixes } from './random-ids';
import { utf8Length, isOverBytes } from './text-size';
import { endpointOfId } from '../protocol/ids';
import { parseGatewayFrame } from '../protocol/wire';

describe('function ids', () => {
  it('are version-8 RFC 4122 UUIDs derived from owner, runtime and code', async () => {
    const a = await functionUuid('alice', 'js', '(x) => x');
    expect(a).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(await functionUuid('alice', 'js', '(x) => x')).toBe(a);
    expect(await functionUuid('alice', 'shell', '(x) => x')).not.toBe(a);
    expect(await functionUuid('bob', 'js', '(x) => x')).not.toBe(a);
  });
});

describe('task id suffixes', () => {
  it('are 20 base-36 characters, distinct, for a batch larger than one CSPRNG call fills', () => {
    const suffixes = randomSuffixes(5000);
    expect(new Set(suffixes).size).toBe(5000);
    const ep = '0f8e7c1a-3b2d-4e5f-8a9b-0c1d2e3f4a5b';
    for (const s of suffixes) {
      expect(s).toMatch(/^[0-9a-z]{20}$/);
      expect(endpointOfId(`${ep}.${s}`)).toBe(ep);
    }
  });
});

describe('task id suffixes in submission order', () => {
  it('sort by time, then by place in the batch, and make valid task ids', () => {
    const ep = '0f8e7c1a-3b2d-4e5f-8a9b-0c1d2e3f4a5b';
    const first = taskSuffixes(5000, 1_790_000_000_000);
    const later = taskSuffixes(3, 1_790_000_000_001);
    expect(new Set(first).size).toBe(5000);
    expect([...first].sort()).toEqual(first);
    expect(later[0]! > first[4999]!).toBe(true);
    for (const s of [...first, ...later]) {
      expect(s).toMatch(/^[0-9a-z]{24}$/);
      expect(endpointOfId(`${ep}.${s}`)).toBe(ep);
    }
    // 11 random characters after the time and the place: two batches in the same ms still differ.
    expect(taskSuffixes(1, 5)[0]).not.toBe(taskSuffixes(1, 5)[0]);
  });
});

describe('UTF-8 sizes', () => {
  it('match TextEncoder', () => {
    for (const text of ['', 'ascii', 'é', '€uro', '😀 pair', '\ud800 lone', 'x'.repeat(1000) + 'ü']) {
      expect(utf8Length(text), text).toBe(new TextEncoder().encode(text).length);
    }
    expect(isOverBytes('ééé', 5)).toBe(true);
    expect(isOverBytes('ééé', 6)).toBe(false);
  });
});

describe('task frames', () => {
  const spec = (id: string) => JSON.stringify({ function_uuid: id, runtime: 'js', code: '(x) => x' });
  const fnA = '00000000-0000-8000-8000-00000000000a';
  const fnB = '00000000-0000-8000-8000-00000000000b';
  const row = (seq: number, fn: string, size: number) => ({
    seq,
    task_id: `0f8e7c1a-3b2d-4e5f-8a9b-0c1d2e3f4a5b.${String(seq).padStart(16, '0')}`,
    function_uuid: fn,
    message: JSON.stringify({ task_id: `0f8e7c1a-3b2d-4e5f-8a9b-0c1d2e3f4a5b.${String(seq).padStart(16, '0')}`, function_uuid: fn, payload: { args: ['p'.repeat(size)] } }),
  });

  it('are valid tasks frames under the budget, each with the specs its tasks name', () => {
    const rows = [row(1, fnA, 300), row(2, fnB, 300), row(3, fnA, 300), row(4, fnB, 300)];
    const frames = buildTaskFrames(rows, spec, 900);
    expect(frames.length).toBeGreaterThan(1);
    const seen: string[] = [];
    for (const text of frames) {
      expect(text.length).toBeLessThanOrEqual(900);
      const frame = parseGatewayFrame(text);
      if (frame.type !== 'tasks') throw new Error('not a tasks frame');
      const named = new Set(frame.tasks.map((t) => t.function_uuid));
      expect(new Set(frame.functions.map((f) => f.function_uuid))).toEqual(named);
      seen.push(...frame.tasks.map((t) => t.task_id));
    }
    expect(seen).toEqual(rows.map((r) => r.task_id));
  });

  it('put everything in one frame when it fits', () => {
    const frames = buildTaskFrames([row(1, fnA, 10), row(2, fnA, 10)], spec);
    expect(frames).toHaveLength(1);
    expect(JSON.parse(frames[0]!).functions).toHaveLength(1);
  });
});
