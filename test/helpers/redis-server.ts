// A real redis-server for tests: started on a free loopback port with nothing persisted, stopped
// with SHUTDOWN NOSAVE. Without the binary, `startRedisServer` throws, naming the package: a missing
// redis-server fails the Redis half of a suite, never skips it.

import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../../src/cli/gateway-process';
import { missingServiceError } from './missing-service';

export interface RedisServer {
  port: number;
  host: string;
  stop(): Promise<void>;
}

export function redisServerBinary(): string | null {
  const found = spawnSync('sh', ['-c', 'command -v redis-server'], { encoding: 'utf8' });
  const path = found.stdout.trim();
  return found.status === 0 && path ? path : null;
}

/** Resolves once the server answers PING, or rejects at the deadline. */
async function waitForPing(port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const socket = createConnection({ host: '127.0.0.1', port }, () => socket.write('PING\r\n'));
      socket.once('data', (data) => {
        socket.destroy();
        resolve(data.toString().startsWith('+PONG'));
      });
      socket.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`redis-server on port ${port} did not answer PING within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export async function startRedisServer(): Promise<RedisServer> {
  const binary = redisServerBinary();
  if (!binary) throw missingServiceError('redis-server', 'redis-packages.txt');
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'ferry-redis-'));
  const child = spawn(binary, ['--bind', '127.0.0.1', '--port', String(port), '--save', '', '--appendonly', 'no', '--dir', dir, '--loglevel', 'warning'], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  try {
    await waitForPing(port, 10_000);
  } catch (err) {
    child.kill('SIGKILL');
    throw new Error(`${(err as Error).message}\n${stderr}`);
  }
  return {
    port,
    host: '127.0.0.1',
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        // SHUTDOWN NOSAVE over the socket; SIGKILL if it does not go within 5 s.
        const socket = createConnection({ host: '127.0.0.1', port }, () => socket.write('SHUTDOWN NOSAVE\r\n'));
        socket.on('error', () => undefined);
        const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
        await exited;
        clearTimeout(timer);
        socket.destroy();
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
