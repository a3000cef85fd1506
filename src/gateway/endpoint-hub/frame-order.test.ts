import { describe, expect, it } from 'vitest';
import { FrameOrder, MAX_EARLY_FRAMES } from './frame-order';

describe('FrameOrder', () => {
  it('hands frames out in seq order, holding early ones until the gap closes', () => {
    const order = new FrameOrder<string>(1);
    expect(order.accept(1, 'a')).toEqual({ due: ['a'] });
    expect(order.accept(4, 'd')).toEqual({ due: [] });
    expect(order.accept(3, 'c')).toEqual({ due: [] });
    expect(order.accept(2, 'b')).toEqual({ due: ['b', 'c', 'd'] });
    expect(order.next).toBe(5);
  });

  it('starts at the seq it is given (the one kept in the socket attachment after hibernation)', () => {
    const order = new FrameOrder<string>(41);
    expect(order.accept(42, 'y')).toEqual({ due: [] });
    expect(order.accept(41, 'x')).toEqual({ due: ['x', 'y'] });
  });

  it('refuses a seq seen before, whether handed out or still waiting', () => {
    const order = new FrameOrder<string>(1);
    order.accept(1, 'a');
    expect(order.accept(1, 'a')).toEqual({ error: 'frame seq 1 came twice' });
    order.accept(3, 'c');
    expect(order.accept(3, 'c')).toEqual({ error: 'frame seq 3 came twice' });
  });

  it('gives up on a gap that stays open too long', () => {
    const order = new FrameOrder<number>(1);
    for (let seq = 2; seq <= MAX_EARLY_FRAMES + 1; seq++) expect(order.accept(seq, seq)).toEqual({ due: [] });
    expect(order.accept(MAX_EARLY_FRAMES + 2, 0)).toEqual({ error: `frame seq 1 still missing after ${MAX_EARLY_FRAMES} later frames` });
  });
});
