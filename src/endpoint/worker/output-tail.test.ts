import { describe, expect, it } from 'vitest';
import { OutputTail } from './output-tail';

function tail(maxLines: number, maxBytes: number, ...chunks: string[]): string {
  const t = new OutputTail(maxLines, maxBytes);
  for (const c of chunks) t.write(c);
  return t.text();
}

describe('OutputTail', () => {
  it('keeps everything under the caps, as written', () => {
    expect(tail(10, 1000, 'a\nb', 'c\n', 'd')).toBe('a\nbc\nd');
    expect(tail(10, 1000)).toBe('');
  });

  it('keeps the last N lines, an unterminated last line counting as one', () => {
    expect(tail(3, 1000, '1\n2\n3\n4\n5\n')).toBe('3\n4\n5\n');
    expect(tail(3, 1000, '1\n2\n3\n4\n5')).toBe('3\n4\n5');
    expect(tail(1, 1000, 'a\n', 'b\n', 'c')).toBe('c');
    const many = Array.from({ length: 100_000 }, (_, i) => `${i}\n`).join('');
    expect(tail(1000, 1 << 20, many)).toBe(Array.from({ length: 1000 }, (_, i) => `${99_000 + i}\n`).join(''));
  });

  it('keeps at most maxBytes, dropping old lines first, then the head of an endless line', () => {
    expect(tail(100, 6, 'aaa\n', 'bbb\n', 'cc\n')).toBe('cc\n');
    expect(tail(100, 8, 'aaa\n', 'bbb\n', 'cc\n')).toBe('bbb\ncc\n');
    const t = new OutputTail(100, 10);
    for (let i = 0; i < 10_000; i++) t.write('0123456789');
    expect(t.text()).toBe('0123456789');
    t.write('xyz');
    expect(t.text()).toBe('3456789xyz');
    t.write('\n');
    expect(t.text()).toBe('456789xyz\n');
    // An unterminated line displaces older lines to stay under the cap.
    expect(tail(100, 7, 'abcd\n', 'efg')).toBe('efg');
    expect(tail(100, 8, 'abcd\n', 'efg')).toBe('abcd\nefg');
  });

  it('never cuts a UTF-8 character in half', () => {
    // 'é' is 2 bytes, '🚀' 4: a 5-byte cap over 'éé🚀' keeps only the rocket.
    expect(tail(10, 5, 'éé🚀')).toBe('🚀');
    expect(tail(10, 7, 'ééé🚀')).toBe('é🚀');
    expect(Buffer.byteLength(tail(10, 1001, 'データ'.repeat(10_000)))).toBeLessThanOrEqual(1001);
  });
});
