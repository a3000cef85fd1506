// Starts the gateway as a process of its own (`ferry gateway serve`: Ferry's launcher, which runs
// workerd through Miniflare's API) in its own process group, and waits for the line that says it
// serves, with the port it got. Used by `ferry dev`, the end-to-end tests and the benchmark, so all
// three run the same real gateway. Also bundles the gateway as `wrangler deploy` would.

import { spawn, type ChildProcess } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createRequire } from 'node:module';
import { createServer } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const PROJECT_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

export interface GatewayProcessOptions {
  port?: number;
  /** Directory of the gateway's persisted state (Durable Objects, KV, R2). */
  persistTo: string;
  /** Extra vars and secrets (`--var NAME=VALUE`); used by tests. */
  vars?: Record<string, string>;
  /** An env file with secrets (JWT_SECRET); default: the project's .dev.vars. */
  envFile?: string;
  /** Called with each chunk of the gateway's output (default: kept for error messages only). */
  onOutput?: (chunk: string) => void;
  readyTimeoutMs?: number;
  /** Serve a bundle built into this directory (by `bundleGateway`); default: bundle the sources now. */
  bundleDir?: string;
  /** Serve this one-file module Worker instead of the gateway (a benchmark's floor). */
  bareScript?: string;
}

/** The `event` of the JSON line `ferry gateway serve` prints once it serves. */
export const READY_EVENT = 'gateway ready';

export interface GatewayProcess {
  url: string;
  port: number;
  child: ChildProcess;
  /**
   * SIGTERM (or SIGINT) to the launcher, which drains the gateway and stops workerd; another signal
   * (SIGKILL, SIGSTOP) to the whole process group. Resolves when the launcher has exited.
   */
  stop(signal?: NodeJS.Signals): Promise<void>;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
  });
}

export async function startGatewayProcess(options: GatewayProcessOptions): Promise<GatewayProcess> {
  // No bundle given: build one now, kept beside the state for the gateway's life.
  let builtHere: string | null = null;
  let bundleDir = options.bundleDir;
  if (!bundleDir && !options.bareScript) {
    builtHere = bundleDir = mkdtempSync(join(tmpdir(), 'ferry-gateway-bundle-'));
    await bundleGateway(bundleDir);
  }
  const args = [
    join(PROJECT_ROOT, 'bin', 'ferry.js'), 'gateway', 'serve',
    ...(options.bareScript ? ['--bare', options.bareScript] : ['--bundle', bundleDir!]),
    '--persist-to', options.persistTo, '--port', String(options.port ?? 0),
    '--log-level', process.env.FERRY_GATEWAY_LOG_LEVEL ?? 'warn',
    // A pipe this process never writes: when it dies, however it dies, the launcher drains and stops.
    '--stop-with-stdin',
  ];
  if (process.env.FERRY_GATEWAY_INSPECTOR_PORT) args.push('--inspect', process.env.FERRY_GATEWAY_INSPECTOR_PORT);
  if (options.envFile) args.push('--env-file', options.envFile);
  for (const [k, v] of Object.entries(options.vars ?? {})) args.push('--var', `${k}=${v}`);
  const child = spawn(process.execPath, args, {
    cwd: PROJECT_ROOT,
    // Its own process group: stop() and freezing a gateway reach the launcher and workerd together.
    detached: true,
    stdio: ['pipe', 'pipe', 'pipe'],
    env: { ...process.env, NO_COLOR: '1', FORCE_COLOR: '0' },
  });
  let output = '';
  let ready: { url: string; port: number } | null = null;
  let pendingLine = '';
  const onData = (chunk: Buffer) => {
    const text = chunk.toString();
    output = (output + text).slice(-20_000);
    options.onOutput?.(text);
  };
  child.stdout!.on('data', (chunk: Buffer) => {
    if (!ready) {
      pendingLine += chunk.toString();
      for (const line of pendingLine.split('\n').slice(0, -1)) {
        if (!line.includes(READY_EVENT)) continue;
        try {
          const event = JSON.parse(line) as { event?: string; url?: string; port?: number };
          if (event.event === READY_EVENT && event.url && event.port) ready = { url: event.url, port: event.port };
        } catch {
          // a log line that mentions it
        }
      }
      pendingLine = pendingLine.slice(pendingLine.lastIndexOf('\n') + 1);
    }
    onData(chunk);
  });
  child.stderr!.on('data', onData);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve())).then(() => {
    if (builtHere) rmSync(builtHere, { recursive: true, force: true });
  });
  const deadline = Date.now() + (options.readyTimeoutMs ?? 60_000);
  await new Promise<void>((resolve, reject) => {
    const check = setInterval(() => {
      if (ready) done(null);
      else if (child.exitCode !== null || child.signalCode !== null) done(new Error(`the gateway exited (${child.exitCode ?? child.signalCode}) before it served:\n${output}`));
      else if (Date.now() > deadline) {
        killGroup(child, 'SIGKILL');
        done(new Error(`the gateway did not start in time:\n${output}`));
      }
    }, 20);
    const done = (err: Error | null) => {
      clearInterval(check);
      if (err) reject(err);
      else resolve();
    };
  });
  const { url, port } = ready!;
  return {
    url,
    port,
    child,
    async stop(signal: NodeJS.Signals = 'SIGTERM') {
      if (child.exitCode !== null || child.signalCode !== null) return exited;
      // SIGTERM to the launcher alone: it drains, then stops workerd. Any other signal to the group.
      if (signal === 'SIGTERM' || signal === 'SIGINT') child.kill(signal);
      else killGroup(child, signal);
      const timer = setTimeout(() => killGroup(child, 'SIGKILL'), 15_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

const WRANGLER_ENV = { WRANGLER_SEND_METRICS: 'false', CLOUDFLARE_CF_FETCH_ENABLED: 'false', WRANGLER_LOG: 'warn', NO_COLOR: '1' };

/** Bundles the gateway as `wrangler deploy` would (offline dry run) into `outDir`. */
export async function bundleGateway(outDir: string): Promise<void> {
  const require = createRequire(import.meta.url);
  const wrangler = join(dirname(require.resolve('wrangler/package.json')), 'bin', 'wrangler.js');
  const child = spawn(process.execPath, [wrangler, 'deploy', '--dry-run', '--outdir', outDir, '--config', join(PROJECT_ROOT, 'wrangler.toml')], {
    cwd: PROJECT_ROOT, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...WRANGLER_ENV },
  });
  let output = '';
  child.stdout!.on('data', (c: Buffer) => (output += c.toString()));
  child.stderr!.on('data', (c: Buffer) => (output += c.toString()));
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  if (code !== 0) throw new Error(`bundling the gateway failed (exit ${code}):\n${output}`);
  // wrangler dev restarts when its config or .dev.vars change: serve copies taken now.
  copyFileSync(join(PROJECT_ROOT, 'wrangler.toml'), join(outDir, 'wrangler.toml'));
  if (existsSync(join(PROJECT_ROOT, '.dev.vars'))) copyFileSync(join(PROJECT_ROOT, '.dev.vars'), join(outDir, '.dev.vars'));
}

function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  try {
    process.kill(-child.pid!, signal);
  } catch {
    // already gone
  }
}
