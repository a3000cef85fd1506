// Starts the gateway in workerd through `wrangler dev`, as a child process in its own process
// group, and waits until it answers /healthz. Used by `ferry dev`, the end-to-end tests and the
// benchmark, so all three run the same real gateway.

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
  /** Extra vars and secrets (`--var NAME:VALUE`); used by tests. */
  vars?: Record<string, string>;
  /** An env file with secrets (JWT_SECRET); default: the project's .dev.vars. */
  envFile?: string;
  /** Called with each chunk of the gateway's output (default: kept for error messages only). */
  onOutput?: (chunk: string) => void;
  readyTimeoutMs?: number;
  /**
   * Serve a bundle built once into this directory (by `bundleGateway`) instead of the sources:
   * `wrangler dev` reloads on every source change, which tests must not see while code is edited.
   */
  bundleDir?: string;
}

export interface GatewayProcess {
  url: string;
  port: number;
  child: ChildProcess;
  /** SIGTERM to the whole process group (wrangler and workerd), then waits for exit. */
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
  const port = options.port ?? (await freePort());
  const require = createRequire(import.meta.url);
  const wrangler = join(dirname(require.resolve('wrangler/package.json')), 'bin', 'wrangler.js');
  const args = [
    wrangler, 'dev', ...(options.bundleDir ? [join(options.bundleDir, 'index.js'), '--no-bundle'] : []),
    '--config', join(options.bundleDir ?? PROJECT_ROOT, 'wrangler.toml'), '--ip', '127.0.0.1', '--port', String(port), '--inspector-port', process.env.FERRY_GATEWAY_INSPECTOR_PORT ?? '0',
    '--persist-to', options.persistTo, '--show-interactive-dev-session=false', '--log-level', process.env.FERRY_GATEWAY_LOG_LEVEL ?? 'warn',
  ];
  if (options.envFile) args.push('--env-file', options.envFile);
  for (const [k, v] of Object.entries(options.vars ?? {})) args.push('--var', `${k}:${v}`);
  const registry = mkdtempSync(join(tmpdir(), 'ferry-dev-registry-'));
  const child = spawn(process.execPath, args, {
    cwd: PROJECT_ROOT,
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: {
      ...process.env, WRANGLER_SEND_METRICS: 'false', CLOUDFLARE_CF_FETCH_ENABLED: 'false', NO_COLOR: '1', FORCE_COLOR: '0',
      // Each gateway gets a dev registry of its own: wrangler dev reloads its runtime whenever
      // another `wrangler dev` on the machine starts or stops, failing requests in flight.
      WRANGLER_REGISTRY_PATH: registry, MINIFLARE_REGISTRY_PATH: registry,
    },
  });
  let output = '';
  const onData = (chunk: Buffer) => {
    const text = chunk.toString();
    output = (output + text).slice(-20_000);
    options.onOutput?.(text);
  };
  child.stdout!.on('data', onData);
  child.stderr!.on('data', onData);
  // The registry directory goes with the gateway, however it exits.
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve())).then(() => rmSync(registry, { recursive: true, force: true }));
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + (options.readyTimeoutMs ?? 60_000);
  for (;;) {
    if (child.exitCode !== null) throw new Error(`the gateway (wrangler dev) exited with code ${child.exitCode}:\n${output}`);
    try {
      const res = await fetch(`${url}/healthz`);
      if (res.ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      killGroup(child, 'SIGKILL');
      throw new Error(`the gateway did not answer /healthz on ${url} in time:\n${output}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    url,
    port,
    child,
    async stop(signal: NodeJS.Signals = 'SIGTERM') {
      if (child.exitCode !== null || child.signalCode !== null) return;
      killGroup(child, signal);
      const timer = setTimeout(() => killGroup(child, 'SIGKILL'), 5000);
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
