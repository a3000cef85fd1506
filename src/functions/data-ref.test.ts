import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { dataRefsIn, isDataRef } from './data-ref';

const ID = 'a'.repeat(64);
/** [value, whether it is a data reference]: the rule, for every runtime. */
const CASES: Array<[unknown, boolean]> = [
  [{ $ref: ID }, true],
  [{ $ref: 'file:///data/frame.h5' }, true],
  [{ $ref: ID, locations: ['file:///a', 'file:///b'] }, true],
  [{ $ref: ID, locations: [] }, false],
  [{ $ref: ID, locations: ['file:///a', 3] }, false],
  [{ $ref: ID, locations: 'file:///a' }, false],
  [{ $ref: ID, size: 3 }, false],
  [{ $ref: ID, locations: ['file:///a'], size: 3 }, false],
  [{ $ref: 3 }, false],
  [{ ref: ID }, false],
  [[{ $ref: ID }], false],
  [ID, false],
  [null, false],
  [{}, false],
];

describe('isDataRef', () => {
  it('takes exactly {$ref} or {$ref, locations: non-empty strings}', () => {
    for (const [value, expected] of CASES) expect([value, isDataRef(value)]).toEqual([value, expected]);
  });

  it("is the Python runner's is_ref too (Debian's python3)", () => {
    const runnerDir = join(import.meta.dirname, '..', 'endpoint', 'worker', 'python');
    const script = `import json, sys\nsys.path.insert(0, ${JSON.stringify(runnerDir)})\nimport runner\nprint(json.dumps([runner.is_ref(v) for v in json.load(sys.stdin)]))`;
    const run = spawnSync('/usr/bin/python3', ['-c', script], { input: JSON.stringify(CASES.map(([v]) => v)), encoding: 'utf8' });
    expect(run.error, 'needs /usr/bin/python3 (apt-get install python3)').toBeUndefined();
    expect(run.stderr).toBe('');
    expect(JSON.parse(run.stdout)).toEqual(CASES.map(([, expected]) => expected));
  });
});

describe('dataRefsIn', () => {
  it('finds the references at any depth, in order, and not inside one', () => {
    const value = { a: [1, { $ref: 'x' }], b: { c: { $ref: 'y', locations: ['file:///y'] } }, d: { $ref: 'z', size: 1, inner: { $ref: 'w' } } };
    expect(dataRefsIn(value).refs.map((r) => r.$ref)).toEqual(['x', 'y', 'w']);
  });

  it('says when a value nests deeper than it reads', () => {
    let deep: unknown = { $ref: 'x' };
    for (let i = 0; i < 10; i++) deep = [deep];
    expect(dataRefsIn(deep, 5)).toEqual({ refs: [], tooDeep: true });
    expect(dataRefsIn(deep, 10)).toEqual({ refs: [{ $ref: 'x' }], tooDeep: false });
  });
});
