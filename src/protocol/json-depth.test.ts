import { describe, expect, it } from 'vitest';
import { MAX_JSON_DEPTH, nestsDeeperThan, textNestsDeeperThan } from './json-depth';

/** Arrays (or objects under key "k") nested `levels` deep: `[[…]]`. */
function nested(levels: number, asObject = false): unknown {
  let v: unknown = asObject ? {} : [];
  for (let i = 1; i < levels; i++) v = asObject ? { k: v } : [v];
  return v;
}

describe('nestsDeeperThan', () => {
  it('counts arrays and objects as levels and scalars as none', () => {
    expect(nestsDeeperThan(1, 0)).toBe(false);
    expect(nestsDeeperThan('x', 0)).toBe(false);
    expect(nestsDeeperThan(null, 0)).toBe(false);
    expect(nestsDeeperThan([], 0)).toBe(true);
    expect(nestsDeeperThan([], 1)).toBe(false);
    expect(nestsDeeperThan({ a: [1, { b: 2 }] }, 3)).toBe(false);
    expect(nestsDeeperThan({ a: [1, { b: [] }] }, 3)).toBe(true);
  });

  it('draws the line at MAX_JSON_DEPTH, for arrays and objects, on any branch', () => {
    for (const asObject of [false, true]) {
      expect(nestsDeeperThan(nested(MAX_JSON_DEPTH, asObject), MAX_JSON_DEPTH)).toBe(false);
      expect(nestsDeeperThan(nested(MAX_JSON_DEPTH + 1, asObject), MAX_JSON_DEPTH)).toBe(true);
    }
    expect(nestsDeeperThan([1, 'a', nested(3), { x: nested(MAX_JSON_DEPTH) }], MAX_JSON_DEPTH)).toBe(true);
  });

  it('walks a value far too deep for a recursive decoder without overflowing the stack', () => {
    const deep = nested(1_000_000);
    expect(() => JSON.stringify(deep)).toThrow(RangeError);
    expect(nestsDeeperThan(deep, MAX_JSON_DEPTH)).toBe(true);
    expect(nestsDeeperThan(deep, 2_000_000)).toBe(false);
  });
});

describe('textNestsDeeperThan', () => {
  it('counts arrays and objects inside one another, not side by side', () => {
    expect(textNestsDeeperThan('[[{"a":[1]}]]', 4)).toBe(false);
    expect(textNestsDeeperThan('[[{"a":[[1]]}]]', 4)).toBe(true);
    expect(textNestsDeeperThan('[[],[],{},[[]]]', 3)).toBe(false);
    expect(textNestsDeeperThan('['.repeat(100_000), 256)).toBe(true);
  });

  it('ignores brackets inside strings, escaped quotes and backslashes included', () => {
    expect(textNestsDeeperThan(JSON.stringify(['[[[[{{{{', 'a"[[[[', 'b\\', '[[[[']), 1)).toBe(false);
    expect(textNestsDeeperThan(JSON.stringify([['x\\"'], '"']), 1)).toBe(true);
  });
});
