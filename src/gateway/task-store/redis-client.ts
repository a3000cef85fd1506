// The gateway's Redis client: @upstash/redis's fetch-based Cloudflare entry (REST, no sockets),
// answers kept raw (no JSON guessing on strings), and Lua scripts run by EVALSHA with EVAL as the
// fallback when the server does not know the script yet.

import { Redis } from '@upstash/redis/cloudflare';
import type { RedisSettings } from '../env';

const clients = new Map<string, Redis>();

/** One client per URL and token per isolate: it holds no connection, only settings. */
export function redisClient(settings: RedisSettings): Redis {
  const cacheKey = `${settings.url}\n${settings.token}`;
  let client = clients.get(cacheKey);
  if (!client) {
    client = new Redis({
      url: settings.url,
      token: settings.token,
      automaticDeserialization: false,
      enableTelemetry: false,
      // Everything Ferry keeps in Redis is text (JSON, ids, numbers): base64 answers would only cost decoding.
      responseEncoding: false,
      // A network failure is retried: every write script is idempotent or counts only an attempt.
      retry: { retries: 3, backoff: (n: number) => 50 * 2 ** n },
      // Off: this client is shared by every request (and Durable Object) of the isolate, and
      // auto-pipelining would batch their commands into one fetch owned by whichever request issued
      // the first; Ferry batches on its own (Lua scripts over chunks of keys).
      enableAutoPipelining: false,
    });
    clients.set(cacheKey, client);
  }
  return client;
}

export type RedisReply = string | number | null | RedisReply[];

/** A Lua script run by its SHA-1 (EVALSHA), loaded with EVAL the first time a server lacks it. */
export class LuaScript {
  private sha: Promise<string> | undefined;

  constructor(readonly source: string) {}

  private digest(): Promise<string> {
    this.sha ??= crypto.subtle.digest('SHA-1', new TextEncoder().encode(this.source)).then((buf) => [...new Uint8Array(buf)].map((b) => b.toString(16).padStart(2, '0')).join(''));
    return this.sha;
  }

  async run(redis: Redis, keys: string[], args: Array<string | number>): Promise<RedisReply> {
    const sha = await this.digest();
    const argv = args.map(String);
    try {
      return (await redis.evalsha(sha, keys, argv)) as RedisReply;
    } catch (err) {
      if (!(err instanceof Error) || !/noscript/i.test(err.message)) throw err;
      return (await redis.eval(this.source, keys, argv)) as RedisReply;
    }
  }
}
