// An HTTP proxy in front of the gateway that counts the requests reaching it, by method and path
// (without the query), and can cut every open connection (an event stream's included), as a
// network drop does. Bodies stream through untouched, both ways.

import { createServer, request, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

export interface CountingProxy {
  url: string;
  /** Requests seen, by `METHOD /path` (ids in the path kept). */
  requests(): string[];
  count(method: string, pathPrefix: string): number;
  /** Destroys every open connection, client and upstream sides. */
  dropAll(): void;
  close(): Promise<void>;
}

export async function startCountingProxy(targetUrl: string): Promise<CountingProxy> {
  const target = new URL(targetUrl);
  const seen: string[] = [];
  const sockets = new Set<Socket>();
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    seen.push(`${req.method} ${(req.url ?? '').split('?')[0]}`);
    const upstream = request(
      { host: target.hostname, port: target.port, method: req.method, path: req.url, headers: { ...req.headers, host: target.host } },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      },
    );
    // A kept-alive upstream socket serves many requests: watched once.
    upstream.on('socket', (s) => {
      if (sockets.has(s)) return;
      sockets.add(s);
      s.once('close', () => sockets.delete(s));
    });
    upstream.on('error', () => res.destroy());
    req.pipe(upstream);
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    requests: () => [...seen],
    count: (method, prefix) => seen.filter((r) => r.startsWith(`${method} ${prefix}`)).length,
    dropAll() {
      for (const s of sockets) s.destroy();
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
