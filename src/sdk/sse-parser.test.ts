// The SDK's Server-Sent Events parser: the wire format's corners (line ends split across chunks,
// multi-line data, comments, ids that persist, retry) and its bounds.

import { describe, expect, it } from 'vitest';
import { SseError, SseParser, streamEvents } from './event-stream';

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

describe('streamEvents', () => {
  const ep = '0f8e7c1a-3b2d-4e5f-8a9b-0c1d2e3f4a5b';
  const doc = (n: number) => JSON.stringify({ task_id: `${ep}.abcdefghijklmnop${n}`, status: 'success', result: n, details: { task_transitions: {}, endpoint_id: ep, function_uuid: ep, task_group_id: `${ep}.g000000000000000`, attempts: 1 } });
  const sse = (text: string) => new Response(text, { headers: { 'content-type': 'text/event-stream' } });

  it('reconnects after the stream ends, sending the last id as Last-Event-ID, never in the URL', async () => {
    const seen: Array<{ url: string; last: string | null; auth: string | null }> = [];
    const answers = [sse(`id: 1:${ep}.1\nevent: task\ndata: ${doc(1)}\n\n`), sse(`id: 1:${ep}.2\nevent: task\ndata: ${doc(2)}\n\n`)];
    const fakeFetch = (async (url: string, init: RequestInit) => {
      const headers = new Headers(init.headers);
      seen.push({ url, last: headers.get('last-event-id'), auth: headers.get('authorization') });
      return answers.shift()!;
    }) as typeof fetch;
    const got: unknown[] = [];
    for await (const e of streamEvents({ url: 'http://gw', token: 'tok', fetch: fakeFetch, selector: { task_group_id: `${ep}.g000000000000000` }, backoff: { minMs: 1 } })) {
      got.push(e.type === 'task' ? e.task.result : null);
      if (got.length === 2) break;
    }
    expect(got).toEqual([1, 2]);
    expect(seen.map((s) => s.last)).toEqual([null, `1:${ep}.1`]);
    expect(seen.every((s) => s.auth === 'Bearer tok' && !s.url.includes('tok'))).toBe(true);
  });

  it('ends with the error on a 4xx, and refuses an event nested deeper than a task doc can', async () => {
    const notFound = (async () => new Response('{"code":"NOT_FOUND","message":"task group not found"}', { status: 404 })) as unknown as typeof fetch;
    await expect(streamEvents({ url: 'http://gw', token: 't', fetch: notFound, selector: { endpoint_id: ep } }).next()).rejects.toMatchObject({ status: 404, code: 'NOT_FOUND' });
    const deep = (async () => sse(`event: task\ndata: ${'['.repeat(10_000)}${']'.repeat(10_000)}\n\n`)) as unknown as typeof fetch;
    await expect(streamEvents({ url: 'http://gw', token: 't', fetch: deep, selector: { endpoint_id: ep } }).next()).rejects.toBeInstanceOf(SseError);
  });
});
