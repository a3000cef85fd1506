// The NDJSON reader's cap, over a real loopback socket: a line past the cap closes the socket as
// soon as its first bytes past the cap arrive, without waiting for the line's end.

import { connect, createServer, type Server, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { readMessages } from './ndjson';

const servers: Server[] = [];
const clients: Socket[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) c.destroy();
  for (const s of servers.splice(0)) await new Promise((r) => s.close(r));
});

/** A server reading with `cap`; returns a connected client and what the server side saw. */
async function pair(cap: () => number) {
  const seen = { messages: [] as unknown[], refusals: [] as string[], closed: false };
  let serverSide!: Socket;
  const server = createServer((socket) => {
    serverSide = socket;
    socket.on('close', () => (seen.closed = true));
    readMessages(socket, (v) => seen.messages.push(v), { maxLineChars: cap, onRefused: (r) => seen.refusals.push(r) });
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

describe('readMessages with a line cap', () => {
  it('delivers a line of exactly the cap, then closes on the first bytes past it while the line is still unended', async () => {
    const p = await pair(() => 100);
    const exact = JSON.stringify('x'.repeat(98)); // 100 characters
    p.client.write(exact + '\n');
    // 101 characters and no newline: an uncapped reader would wait for the rest.
    p.client.write('"' + 'y'.repeat(100));
    await p.clientClosed;
    expect(p.seen.messages).toEqual(['x'.repeat(98)]);
    expect(p.seen.refusals).toEqual(['a message longer than 100 characters']);
    expect(p.server().destroyed).toBe(true);
  });

  it('refuses a long line that arrives in one chunk with its newline', async () => {
    const p = await pair(() => 100);
    p.client.write(JSON.stringify('z'.repeat(200)) + '\n');
    await p.clientClosed;
    expect(p.seen.messages).toEqual([]);
    expect(p.seen.refusals).toEqual(['a message longer than 100 characters']);
  });

  it('stops reading 400 MiB without a newline at a 4 KiB cap: the client cannot write a tenth of it', async () => {
    const p = await pair(() => 4096);
    const chunk = Buffer.alloc(64 * 1024, 'a');
    let sent = 0;
    // Bounded: at most 400 MiB offered; a socket the server has closed stops taking bytes.
    while (sent < 400 * 1024 * 1024 && !p.client.destroyed) {
      if (!p.client.write(chunk)) await new Promise((r) => { p.client.once('drain', r); p.client.once('close', r); });
      sent += chunk.length;
    }
    await p.clientClosed;
    expect(p.seen.refusals).toEqual(['a message longer than 4096 characters']);
    // The kernel's buffers take a few MiB before the refusal is felt; nowhere near 400 MiB.
    expect(sent).toBeLessThan(32 * 1024 * 1024);
  });

  it('applies a raised cap from the next chunk: a small first line, then a large one', async () => {
    let cap = 50;
    const p = await pair(() => cap);
    p.client.write('{"type":"register"}\n');
    await new Promise<void>((r) => { const t = setInterval(() => { if (p.seen.messages.length) { clearInterval(t); r(); } }, 5); });
    cap = 10_000;
    p.client.write(JSON.stringify({ big: 'b'.repeat(5000) }) + '\n');
    p.client.end();
    await p.clientClosed;
    expect(p.seen.messages).toEqual([{ type: 'register' }, { big: 'b'.repeat(5000) }]);
    expect(p.seen.refusals).toEqual([]);
  });

  it('closes on a line that is not JSON, once', async () => {
    const p = await pair(() => 100);
    p.client.write('not json\n{"a":1}\n');
    await p.clientClosed;
    expect(p.seen.messages).toEqual([]);
    expect(p.seen.refusals).toEqual(['a message that is not JSON']);
  });
});
