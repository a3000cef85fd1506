// The SDK's Server-Sent Events parser: the wire format's corners (line ends split across chunks,
// multi-line data, comments, ids that persist, retry) and its bounds.

import { describe, expect, it } from 'vitest';
import { SseError, SseParser } from '../../src/sdk/event-stream';

function feed(parser: SseParser, chunks: string[]) {
  return chunks.flatMap((c) => parser.push(c));
}

describe('SseParser', () => {
  it('reads events whatever the chunking and line ends (LF, CRLF, CR, CRLF split between chunks)', () => {
    const text = 'id: 1:a\r\nevent: task\r\ndata: {"x":1}\r\n\r\n: keepalive\n\nevent: endpoint\rdata: two\rdata: lines\r\r';
    const whole = feed(new SseParser(), [text]);
    expect(whole).toEqual([
      { id: '1:a', type: 'task', data: '{"x":1}' },
      { id: '1:a', type: 'endpoint', data: 'two\nlines' },
    ]);
    for (let size = 1; size <= 7; size++) {
      const chunks: string[] = [];
      for (let i = 0; i < text.length; i += size) chunks.push(text.slice(i, i + size));
      expect(feed(new SseParser(), chunks), `chunks of ${size}`).toEqual(whole);
    }
  });

  it('keeps the last id across events without one, ignores comments and unknown fields, takes retry', () => {
    const parser = new SseParser();
    const events = feed(parser, ['retry: 1500\n\n', 'id: 7\ndata: a\n\n', 'data: b\nfoo: bar\n\n', ': comment only\n\n', 'id\ndata: c\n\n']);
    expect(events).toEqual([
      { id: '7', type: 'message', data: 'a' },
      { id: '7', type: 'message', data: 'b' },
      { id: '', type: 'message', data: 'c' },
    ]);
    expect(parser.retryMs).toBe(1500);
    expect(parser.lastEventId).toBe('');
  });

  it('refuses a line or an event over its bound', () => {
    expect(() => new SseParser(100).push('data: ' + 'x'.repeat(200))).toThrow(SseError);
    const parser = new SseParser(100);
    expect(() => feed(parser, Array.from({ length: 20 }, () => 'data: ' + 'y'.repeat(10) + '\n'))).toThrow(SseError);
  });
});
