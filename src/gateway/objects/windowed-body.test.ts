// windowedBody against workerd's R2 with a small window: every range of an object (one window,
// many, a last window that is short) comes back byte for byte; a missing key is null; an object
// deleted mid-read cuts the stream rather than passing other bytes off as it.

import { env } from 'cloudflare:workers';
import { expect, it } from 'vitest';
import { windowedBody } from './windowed-body';

const bytes = Uint8Array.from({ length: 10_000 }, (_, i) => (i * 7919) & 0xff);
const pending: Promise<unknown>[] = [];
const keepAlive = (work: Promise<unknown>) => void pending.push(work);

async function read(body: ReadableStream<Uint8Array> | null): Promise<Uint8Array> {
  expect(body).not.toBeNull();
  return new Uint8Array(await new Response(body).arrayBuffer());
}

it('reads any range through windows of 1000 bytes, byte for byte', async () => {
  await env.OBJECTS.put('windowed/a', bytes);
  for (const [offset, length] of [[0, 10_000], [0, 1000], [1, 999], [999, 2], [123, 4567], [9000, 1000], [2500, 7500]] as const) {
    const body = await windowedBody(env.OBJECTS, 'windowed/a', offset, length, keepAlive, 1000);
    expect(await read(body)).toEqual(bytes.subarray(offset, offset + length));
  }
  await Promise.all(pending);
});

it('is null for a key that is not stored', async () => {
  expect(await windowedBody(env.OBJECTS, 'windowed/missing', 0, 5000, keepAlive, 1000)).toBeNull();
});

it('cuts the stream when the object is deleted between windows', async () => {
  await env.OBJECTS.put('windowed/b', bytes);
  const body = await windowedBody(env.OBJECTS, 'windowed/b', 0, 10_000, keepAlive, 1000);
  const reader = body!.getReader();
  let got = 0;
  // The first window was fetched before the body was returned; take it, then delete the object.
  while (got < 1000) {
    const { done, value } = await reader.read();
    expect(done).toBe(false);
    got += value!.byteLength;
  }
  await env.OBJECTS.delete('windowed/b');
  await expect((async () => {
    for (;;) if ((await reader.read()).done) return 'ended';
  })()).rejects.toThrow();
});
