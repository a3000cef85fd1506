// A TCP proxy for failure tests: forwards loopback connections to a target, and on demand drops
// every byte in both directions without closing anything (no FIN, no RST), as a broken firewall
// or a dead route does. New connections during the outage are accepted and go silent too.

import { createServer, connect, type AddressInfo, type Socket } from 'node:net';

export interface BlackholeProxy {
  port: number;
  /** Drop all traffic for `ms` milliseconds. */
  blackhole(ms: number): Promise<void>;
  droppedBytes(): number;
  close(): Promise<void>;
}

export async function startBlackholeProxy(targetPort: number): Promise<BlackholeProxy> {
  let dropping = false;
  let dropped = 0;
  const sockets = new Set<Socket>();
  const server = createServer((client) => {
    const upstream = connect({ host: '127.0.0.1', port: targetPort });
    sockets.add(client);
    sockets.add(upstream);
    const pipe = (from: Socket, to: Socket) =>
      from.on('data', (chunk: Buffer) => {
        if (dropping) dropped += chunk.length;
        else to.write(chunk);
      });
    pipe(client, upstream);
    pipe(upstream, client);
    const end = () => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on('close', end).on('error', end);
    upstream.on('close', end).on('error', end);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  return {
    port: (server.address() as AddressInfo).port,
    async blackhole(ms) {
      dropping = true;
      await new Promise((r) => setTimeout(r, ms)); // the outage itself is a duration, not a condition
      dropping = false;
    },
    droppedBytes: () => dropped,
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
