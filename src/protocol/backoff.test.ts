import { describe, expect, it } from 'vitest';
import { Backoff } from './backoff';

describe('Backoff', () => {
  it('doubles from minMs up to maxMs, and starts over after reset()', () => {
    const b = new Backoff({ minMs: 250, maxMs: 2000, jitter: 0 });
    expect([b.next(), b.next(), b.next(), b.next(), b.next()]).toEqual([250, 500, 1000, 2000, 2000]);
    expect(b.failures).toBe(5);
    b.reset();
    expect(b.failures).toBe(0);
    expect(b.next()).toBe(250);
  });

  it('waits at least what the server asked for, never past maxMs', () => {
    const b = new Backoff({ minMs: 250, maxMs: 10_000, jitter: 0 });
    expect(b.next(3000)).toBe(3000);
    expect(b.next(60_000)).toBe(10_000);
  });

  it('spreads waits over the jitter\'s width around the base', () => {
    for (let i = 0; i < 200; i++) {
      const wide = new Backoff({ minMs: 1000, maxMs: 1000 }).next();
      expect(wide).toBeGreaterThanOrEqual(500);
      expect(wide).toBeLessThanOrEqual(1500);
      const narrow = new Backoff({ minMs: 1000, maxMs: 1000, jitter: 0.5 }).next();
      expect(narrow).toBeGreaterThanOrEqual(750);
      expect(narrow).toBeLessThanOrEqual(1250);
    }
  });

  it('does not overflow after many failures', () => {
    const b = new Backoff({ minMs: 250, maxMs: 30_000, jitter: 0 });
    for (let i = 0; i < 100; i++) b.next();
    expect(b.next()).toBe(30_000);
  });
});
