// `ferry gateway serve`: the gateway in workerd through Ferry's launcher (gateway-launcher.ts), as a
// process of its own. Prints one JSON line when it serves (`{"event":"gateway ready","url":…}`),
// which gateway-process.ts waits for; SIGINT or SIGTERM drain it, then it exits 0.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { InvalidArgumentError, type Command } from 'commander';
import { fail } from './cli-error';
import { bundleGateway, READY_EVENT } from './gateway-process';

interface ServeOptions {
  bundle?: string;
  persistTo: string;
  host: string;
  port: number;
  var: Record<string, string>;
  envFile?: string;
  inspect?: number | true;
  drainTimeout: number;
  bare?: string;
  logLevel: keyof typeof LOG_LEVELS;
  stopWithStdin?: boolean;
}

// Miniflare's LogLevel values. Miniflare and wrangler are loaded only when the gateway is served:
// importing wrangler adds SIGINT/SIGTERM handlers that exit at once, which every other ferry
// command (ferry dev, the endpoint agent) must not get.
const LOG_LEVELS = { none: 0, error: 1, warn: 2, info: 3, debug: 4 } as const;

function portOrZero(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new InvalidArgumentError('must be a port number (0-65535; 0: any free port)');
  return n;
}

function nameValue(value: string, previous: Record<string, string>): Record<string, string> {
  const eq = value.indexOf('=');
  if (eq <= 0) throw new InvalidArgumentError('must be NAME=VALUE');
  return { ...previous, [value.slice(0, eq)]: value.slice(eq + 1) };
}

export function registerGatewayCommand(program: Command): void {
  program
    .command('gateway')
    .description('the gateway on its own')
    .command('serve')
    .description('serve the gateway in workerd (state on local disk); SIGINT or SIGTERM drain it and stop')
    .option('--bundle <dir>', 'a bundle built by `npm run build:gateway` (default: build one from the sources now)')
    .option('--persist-to <dir>', 'where state lives (Durable Objects, KV, R2)', '.ferry/state')
    .option('--host <address>', 'address to listen on', '127.0.0.1')
    .option('--port <port>', 'port (0: any free port)', portOrZero, 8787)
    .option('--var <name=value>', 'a var over wrangler.toml (repeatable)', nameValue, {})
    .option('--env-file <file>', 'secrets (JWT_SECRET=…) instead of the bundle\'s .dev.vars')
    .option('--inspect [port]', 'open workerd\'s V8 inspector on loopback (default port 9229); off unless given', portOrZero)
    .option('--drain-timeout <ms>', 'how long requests in flight may take to finish on shutdown', (v) => portOrZero(v), 5000)
    .option('--bare <script>', 'serve this module Worker alone, no bindings (a baseline for benchmarks)')
    .option('--log-level <level>', 'none | error | warn | info | debug', 'warn')
    .option('--stop-with-stdin', 'drain and stop when standard input closes (the parent that started it died)')
    .action(async (opts: ServeOptions) => {
      await serve(opts).catch(fail);
    });
}

async function serve(opts: ServeOptions): Promise<void> {
  if (!(opts.logLevel in LOG_LEVELS)) throw new InvalidArgumentError(`--log-level must be one of ${Object.keys(LOG_LEVELS).join(', ')}`);
  let bundleDir = opts.bundle;
  let builtHere: string | null = null;
  if (!bundleDir && !opts.bare) {
    builtHere = bundleDir = mkdtempSync(join(tmpdir(), 'ferry-gateway-bundle-'));
    await bundleGateway(bundleDir);
  }
  const { launchGateway } = await import('./gateway-launcher');
  const gateway = await launchGateway({
    bundleDir: bundleDir ?? '',
    persistTo: opts.persistTo,
    host: opts.host,
    port: opts.port,
    vars: opts.var,
    ...(opts.envFile ? { envFile: opts.envFile } : {}),
    ...(opts.inspect !== undefined ? { inspectorPort: opts.inspect === true ? 9229 : opts.inspect } : {}),
    ...(opts.bare ? { bareScript: opts.bare } : {}),
    logLevel: LOG_LEVELS[opts.logLevel],
  });
  process.stdout.write(JSON.stringify({ event: READY_EVENT, url: gateway.url, port: gateway.port, pid: process.pid }) + '\n');
  let stopping = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    await gateway.stop(opts.drainTimeout);
    if (builtHere) rmSync(builtHere, { recursive: true, force: true });
    process.exit(0);
  };
  // Miniflare's exit hook and wrangler's clean-up answer SIGINT and SIGTERM by exiting at once
  // (Miniflare killing workerd): this process drains first, so theirs go. Miniflare's 'exit' hook stays.
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.removeAllListeners(signal);
    process.on(signal, () => void stop());
  }
  if (opts.stopWithStdin) {
    process.stdin.on('end', () => void stop());
    process.stdin.on('error', () => void stop());
    process.stdin.resume();
  }
}
