// The frame reader over a real loopback socket: headers and bodies arrive as sent, however the
// bytes are cut; a frame declared past the cap closes the socket at its prefix, before its body.

import { connect, createServer, type Server, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { FRAME_PREFIX_BYTES, encodeFrame, readFrames } from './frames';

const servers: Server[] = [];
const clients: Socket[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) c.destroy();
  for (const s of servers.splice(0)) await new Promise((r) => s.close(r));
});

/** A server reading with `cap`; returns a connected client and what the server side saw. */
async function pair(cap: () => number) {
  const seen = { messages: [] as unknown[], bodies: [] as Buffer[], refusals: [] as string[], closed: false };
  let serverSide!: Socket;
  const server = createServer((socket) => {
    serverSide = socket;
    socket.on('close', () => (seen.closed = true));
    readFrames(socket, (v, body) => { seen.messages.push(v); seen.bodies.push(Buffer.from(body)); }, { maxFrameBytes: cap, onRefused: (r) => seen.refusals.push(r) });
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const client = connect({ host: '127.0.0.1', port: (server.address() as { port: number }).port });
  client.on('error', () => {});
  clients.push(client);
  await new Promise<void>((r) => client.once('connect', () => r()));
  const clientClosed = new Promise<void>((r) => client.once('close', () => r()));
  return { client, seen, clientClosed, server: () => serverSide };
}

/** One frame's bytes, as a peer writes them. */
const frame = (header: unknown, body?: Uint8Array): Buffer => {
  const f = encodeFrame(header, body);
  return f.body ? Buffer.concat([f.head, f.body]) : f.head;
};
/** A prefix declaring `headerBytes` and `bodyBytes`. */
const prefix = (headerBytes: number, bodyBytes = 0): Buffer => {
  const b = Buffer.alloc(FRAME_PREFIX_BYTES);
  b.writeUInt32BE(headerBytes, 0);
  b.writeUInt32BE(bodyBytes, 4);
  return b;
};
const until = (cond: () => boolean) => new Promise<void>((r) => { const t = setInterval(() => { if (cond()) { clearInterval(t); r(); } }, 5); });

describe('readFrames', () => {
  it('delivers headers and raw bodies as sent, whole frames and frames cut a byte at a time', async () => {
    const p = await pair(() => 10_000);
    const bytes = Uint8Array.from({ length: 3000 }, (_, i) => (i * 7) & 255);
    const all = Buffer.concat([frame({ a: 1, s: 'é\n' }), frame({ b: 2 }, bytes), frame({ c: 3 }, new Uint8Array(0))]);
    p.client.write(all.subarray(0, 5));
    for (let i = 5; i < 40; i++) p.client.write(all.subarray(i, i + 1));
    p.client.write(all.subarray(40));
    await until(() => p.seen.messages.length === 3);
    expect(p.seen.messages).toEqual([{ a: 1, s: 'é\n' }, { b: 2 }, { c: 3 }]);
    expect(p.seen.bodies.map((b) => b.length)).toEqual([0, 3000, 0]);
    expect(Buffer.compare(p.seen.bodies[1]!, Buffer.from(bytes))).toBe(0);
    expect(p.seen.refusals).toEqual([]);
  });

  it('delivers a frame of exactly the cap, then closes at the prefix of one a byte past it, before its body', async () => {
    const p = await pair(() => 100);
    const exact = frame({ x: 'x'.repeat(92) }); // 100 bytes of header
    expect(exact.length).toBe(FRAME_PREFIX_BYTES + 100);
    p.client.write(exact);
    // Header and body together one byte past the cap; only the prefix is sent.
    p.client.write(prefix(60, 41));
    await p.clientClosed;
    expect(p.seen.messages).toEqual([{ x: 'x'.repeat(92) }]);
    expect(p.seen.refusals).toEqual(['a frame longer than 100 bytes']);
    expect(p.server().destroyed).toBe(true);
  });

  it('refuses a prefix declaring 4 GiB at a 4 KiB cap, and never reads the 400 MiB behind it: the client cannot write a tenth of it', async () => {
    const p = await pair(() => 4096);
    const chunk = Buffer.alloc(64 * 1024, 'a');
    p.client.write(prefix(0xffffffff, 0xffffffff));
    let sent = 0;
    // Bounded: at most 400 MiB offered; a socket the server has closed stops taking bytes.
    while (sent < 400 * 1024 * 1024 && !p.client.destroyed) {
      if (!p.client.write(chunk)) await new Promise((r) => { p.client.once('drain', r); p.client.once('close', r); });
      sent += chunk.length;
    }
    await p.clientClosed;
    expect(p.seen.refusals).toEqual(['a frame longer than 4096 bytes']);
    // The kernel's buffers take a few MiB before the refusal is felt; nowhere near 400 MiB.
    expect(sent).toBeLessThan(32 * 1024 * 1024);
  });

  it('applies a raised cap from the next frame: a small first frame, then a large one', async () => {
    let cap = 50;
    const p = await pair(() => cap);
    p.client.write(frame({ type: 'register' }));
    await until(() => p.seen.messages.length > 0);
    cap = 10_000;
    p.client.write(frame({ big: 'b'.repeat(5000) }, new Uint8Array(4000).fill(9)));
    p.client.end();
    await p.clientClosed;
    expect(p.seen.messages).toEqual([{ type: 'register' }, { big: 'b'.repeat(5000) }]);
    expect(p.seen.bodies[1]!.equals(Buffer.alloc(4000, 9))).toBe(true);
    expect(p.seen.refusals).toEqual([]);
  });

  it('closes on a header that is not JSON, once, and reads nothing after it', async () => {
    const p = await pair(() => 100);
    p.client.write(Buffer.concat([prefix(8), Buffer.from('not json'), frame({ a: 1 })]));
    await p.clientClosed;
    expect(p.seen.messages).toEqual([]);
    expect(p.seen.refusals).toEqual(['a frame whose header is not JSON']);
  });
});
