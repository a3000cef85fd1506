// Upstash's REST protocol in front of a real redis-server, for tests: @upstash/redis speaks only
// HTTP, and no local server for that protocol exists on npm. `POST /` runs one command (a JSON
// array), `POST /pipeline` and `POST /multi-exec` run several; `Authorization: Bearer <token>`;
// `Upstash-Encoding: base64` answers bulk strings base64-encoded. Errors: `{"error": …}`, status 400.
// Redis is reached through a minimal RESP2 client on node:net (one pipelined connection).

import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createConnection, type Socket } from 'node:net';

type RespValue = string | number | Buffer | null | RespError | RespValue[];

class RespError {
  constructor(readonly message: string) {}
}

/** Parses one RESP2 value at `pos`; undefined when the buffer holds only part of it. */
function parseResp(buf: Buffer, pos: number): { value: RespValue; next: number } | undefined {
  if (pos >= buf.length) return undefined;
  const lineEnd = buf.indexOf('\r\n', pos);
  if (lineEnd < 0) return undefined;
  const type = String.fromCharCode(buf[pos]!);
  const line = buf.toString('utf8', pos + 1, lineEnd);
  const after = lineEnd + 2;
  switch (type) {
    case '+':
      return { value: line, next: after };
    case '-':
      return { value: new RespError(line), next: after };
    case ':':
      return { value: Number(line), next: after };
    case '$': {
      const len = Number(line);
      if (len < 0) return { value: null, next: after };
      if (buf.length < after + len + 2) return undefined;
      return { value: buf.subarray(after, after + len), next: after + len + 2 };
    }
    case '*': {
      const count = Number(line);
      if (count < 0) return { value: null, next: after };
      const items: RespValue[] = [];
      let at = after;
      for (let i = 0; i < count; i++) {
        const item = parseResp(buf, at);
        if (!item) return undefined;
        items.push(item.value);
        at = item.next;
      }
      return { value: items, next: at };
    }
    default:
      throw new Error(`unexpected RESP type byte ${JSON.stringify(type)}`);
  }
}

function encodeCommand(args: ReadonlyArray<unknown>): Buffer {
  const parts: Buffer[] = [Buffer.from(`*${args.length}\r\n`)];
  for (const arg of args) {
    const bytes = Buffer.from(typeof arg === 'string' ? arg : typeof arg === 'object' ? JSON.stringify(arg) : String(arg));
    parts.push(Buffer.from(`$${bytes.length}\r\n`), bytes, Buffer.from('\r\n'));
  }
  return Buffer.concat(parts);
}

/** One pipelined RESP connection: replies come back in the order commands were written. */
export class RespClient {
  private buffer: Buffer = Buffer.alloc(0);
  private readonly pending: Array<(value: RespValue) => void> = [];
  private failure: Error | null = null;

  private constructor(private readonly socket: Socket) {
    socket.on('data', (chunk: Buffer) => {
      this.buffer = this.buffer.length === 0 ? chunk : Buffer.concat([this.buffer, chunk]);
      let pos = 0;
      for (;;) {
        const parsed = parseResp(this.buffer, pos);
        if (!parsed) break;
        pos = parsed.next;
        this.pending.shift()?.(parsed.value);
      }
      this.buffer = pos === this.buffer.length ? Buffer.alloc(0) : this.buffer.subarray(pos);
    });
    const fail = (err: Error) => {
      this.failure = err;
      for (const resolve of this.pending.splice(0)) resolve(new RespError(`ERR connection to redis lost: ${err.message}`));
    };
    socket.on('error', fail);
    socket.on('close', () => fail(new Error('closed')));
  }

  static connect(host: string, port: number): Promise<RespClient> {
    return new Promise((resolve, reject) => {
      const socket = createConnection({ host, port }, () => {
        socket.off('error', reject);
        socket.setNoDelay(true);
        resolve(new RespClient(socket));
      });
      socket.once('error', reject);
    });
  }

  /** Writes all commands at once (so a MULTI … EXEC block is never interleaved) and awaits each reply. */
  send(commands: ReadonlyArray<ReadonlyArray<unknown>>): Promise<RespValue[]> {
    if (this.failure) return Promise.resolve(commands.map(() => new RespError(`ERR connection to redis lost: ${this.failure!.message}`)));
    const replies = commands.map(() => new Promise<RespValue>((resolve) => this.pending.push(resolve)));
    this.socket.write(Buffer.concat(commands.map(encodeCommand)));
    return Promise.all(replies);
  }

  close(): void {
    this.socket.destroy();
  }
}

/** A RESP value as Upstash's JSON: bulk strings as text, or base64 when the client asked for it. */
function toJson(value: RespValue, base64: boolean): unknown {
  if (value === null || typeof value === 'number') return value;
  if (Buffer.isBuffer(value)) return base64 ? value.toString('base64') : value.toString('utf8');
  // Simple strings: "OK" stays as it is (the SDK expects it raw); others are encoded like bulk strings.
  if (typeof value === 'string') return base64 && value !== 'OK' ? Buffer.from(value).toString('base64') : value;
  if (value instanceof RespError) return value.message;
  return value.map((v) => toJson(v, base64));
}

function entry(value: RespValue, base64: boolean): { result: unknown } | { error: string } {
  return value instanceof RespError ? { error: value.message } : { result: toJson(value, base64) };
}

export interface UpstashProxy {
  url: string;
  token: string;
  /** Commands received (each pipeline entry counts one), for tests that count round trips. */
  stats: { requests: number; commands: number };
  stop(): Promise<void>;
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function isCommand(value: unknown): value is unknown[] {
  return Array.isArray(value) && value.length > 0 && value.every((v) => typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean');
}

export async function startUpstashProxy(options: { redisHost?: string; redisPort: number; token?: string; port?: number }): Promise<UpstashProxy> {
  const token = options.token ?? `test-token-${Math.random().toString(36).slice(2)}`;
  const redis = await RespClient.connect(options.redisHost ?? '127.0.0.1', options.redisPort);
  const stats = { requests: 0, commands: 0 };

  const send = (res: ServerResponse, status: number, body: unknown) => {
    const text = JSON.stringify(body);
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
    res.end(text);
  };

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    if (req.method !== 'POST') return send(res, 405, { error: 'only POST is served' });
    if (req.headers.authorization !== `Bearer ${token}`) return send(res, 401, { error: 'Unauthorized' });
    const base64 = String(req.headers['upstash-encoding'] ?? '').toLowerCase() === 'base64';
    let body: unknown;
    try {
      body = JSON.parse(await readBody(req));
    } catch {
      return send(res, 400, { error: 'ERR the body is not JSON' });
    }
    const path = (req.url ?? '/').split('?')[0];
    stats.requests++;
    if (path === '/' || path === '') {
      if (!isCommand(body)) return send(res, 400, { error: 'ERR the body must be one command as a JSON array' });
      stats.commands++;
      const [reply] = await redis.send([body]);
      return reply instanceof RespError ? send(res, 400, { error: reply.message }) : send(res, 200, { result: toJson(reply!, base64) });
    }
    if (path === '/pipeline' || path === '/multi-exec') {
      if (!Array.isArray(body) || body.length === 0 || !body.every(isCommand)) return send(res, 400, { error: 'ERR the body must be a JSON array of commands' });
      stats.commands += body.length;
      if (path === '/pipeline') return send(res, 200, (await redis.send(body)).map((r) => entry(r, base64)));
      const replies = await redis.send([['MULTI'], ...body, ['EXEC']]);
      const exec = replies[replies.length - 1]!;
      if (exec instanceof RespError) {
        const queued = replies.slice(1, -1).find((r) => r instanceof RespError) as RespError | undefined;
        return send(res, 400, { error: (queued ?? exec).message });
      }
      if (!Array.isArray(exec)) return send(res, 400, { error: 'ERR transaction aborted' });
      return send(res, 200, exec.map((r) => entry(r, base64)));
    }
    return send(res, 404, { error: `no such path ${path}` });
  };

  const server: Server = createServer((req, res) => {
    handle(req, res).catch((err: Error) => send(res, 500, { error: `proxy: ${err.message}` }));
  });
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((resolve) => server.listen(options.port ?? 0, '127.0.0.1', () => resolve()));
  const port = (server.address() as { port: number }).port;
  return {
    url: `http://127.0.0.1:${port}`,
    token,
    stats,
    async stop() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      redis.close();
    },
  };
}

/** redis-server and its proxy together: what the gateway's Redis settings point at. */
export interface RedisForTests {
  url: string;
  token: string;
  proxy: UpstashProxy;
  stop(): Promise<void>;
}

export async function startRedisWithProxy(): Promise<RedisForTests> {
  const { startRedisServer } = await import('./redis-server');
  const server = await startRedisServer();
  try {
    const proxy = await startUpstashProxy({ redisPort: server.port });
    return {
      url: proxy.url,
      token: proxy.token,
      proxy,
      async stop() {
        await proxy.stop();
        await server.stop();
      },
    };
  } catch (err) {
    await server.stop();
    throw err;
  }
}
