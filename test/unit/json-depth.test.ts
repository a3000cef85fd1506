// The nesting scan that guards every recursive JSON decoder.

import { describe, expect, it } from 'vitest';
import { nestsDeeperThan } from '../../src/protocol/json-depth';

describe('nestsDeeperThan', () => {
  it('counts arrays and objects inside one another, not side by side', () => {
    expect(nestsDeeperThan('[[{"a":[1]}]]', 4)).toBe(false);
    expect(nestsDeeperThan('[[{"a":[[1]]}]]', 4)).toBe(true);
    expect(nestsDeeperThan('[[],[],{},[[]]]', 3)).toBe(false);
    expect(nestsDeeperThan('['.repeat(100_000), 256)).toBe(true);
  });

  it('ignores brackets inside strings, escaped quotes and backslashes included', () => {
    expect(nestsDeeperThan(JSON.stringify(['[[[[{{{{', 'a"[[[[', 'b\\', '[[[[']), 1)).toBe(false);
    expect(nestsDeeperThan(JSON.stringify([['x\\"'], '"']), 1)).toBe(true);
  });
});
