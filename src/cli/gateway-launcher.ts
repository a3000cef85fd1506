// Ferry's own gateway runtime: serves the bundled gateway (what `wrangler deploy --dry-run` builds)
// in workerd through Miniflare's API, with no dev proxy, no dev registry, no reload on file changes
// and no inspector unless asked for. `ferry gateway serve` runs it as a process; `ferry dev`, the
// end-to-end tests and the benchmark start that process (gateway-process.ts).
//
// What Miniflare does not do for a server, this file does:
// - bindings, Durable Object classes and vars come from the bundle's wrangler.toml (wrangler reads
//   it, as `wrangler dev` would), and state lives where `wrangler dev --persist-to DIR` kept it
//   (DIR/v3, Durable Objects keyed by the worker's name and class), so an old `.ferry/state` loads;
// - workerd is started through a wrapper that sets a parent-death signal, so no workerd outlives a
//   launcher killed with SIGKILL (Miniflare's own dispose() is a SIGKILL, and workerd reads its
//   config from a stdin Miniflare closes: it has nothing to notice its parent's death by);
// - SIGINT and SIGTERM drain first (src/gateway/drain.ts): new requests get 503, agents are told to
//   reconnect, long polls answer, short requests finish within a bound; then workerd is stopped.

import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { Log, LogLevel, Miniflare } from 'miniflare';
import { unstable_getMiniflareWorkerOptions, unstable_readConfig } from 'wrangler';
import { LAUNCHER_DRAIN_PATH } from '../protocol/wire';
import { PROJECT_ROOT } from './gateway-process';

export interface LaunchOptions {
  /** A folder with the bundle: index.js, and the wrangler.toml (and .dev.vars) it was built with. */
  bundleDir: string;
  /** Where the gateway's state lives (as `wrangler dev --persist-to`). */
  persistTo: string;
  host?: string;
  /** 0 (the default): any free port; the URL the launcher prints says which. */
  port?: number;
  /** Vars over wrangler.toml's and .dev.vars' (`--var NAME=VALUE`). */
  vars?: Record<string, string>;
  /** A .dev.vars-style file of secrets, read instead of the bundle's own .dev.vars. */
  envFile?: string;
  /** Opens workerd's V8 inspector on this loopback port; none unless given. */
  inspectorPort?: number;
  /** Serve this one-file module Worker instead of the gateway, with no bindings (the bench's floor). */
  bareScript?: string;
  /** Miniflare's LogLevel (0 none … 4 debug); default warn. */
  logLevel?: number;
}

export interface LaunchedGateway {
  url: string;
  port: number;
  /** Drains (bounded by `timeoutMs`), then stops workerd. */
  stop(timeoutMs?: number): Promise<void>;
}

const WORKERD_WRAPPER = join(PROJECT_ROOT, 'bin', 'workerd-pdeathsig');

export async function launchGateway(options: LaunchOptions): Promise<LaunchedGateway> {
  useParentDeathWrapper();
  const launcherKey = randomBytes(24).toString('hex');
  const common = {
    host: options.host ?? '127.0.0.1',
    port: options.port ?? 0,
    ...(options.inspectorPort !== undefined ? { inspectorPort: options.inspectorPort } : {}),
    // The fallback `request.cf`: Miniflare would otherwise fetch one from the network.
    cf: false,
    log: new Log((options.logLevel ?? LogLevel.WARN) as LogLevel),
  };
  const mf = options.bareScript
    ? new Miniflare({ ...common, name: 'bare', modules: true, scriptPath: options.bareScript, modulesRoot: dirname(options.bareScript), compatibilityDate: '2026-04-20' })
    : new Miniflare({ ...common, ...gatewayWorker(options, launcherKey), defaultPersistRoot: join(options.persistTo, 'v3') });
  const url = new URL(await mf.ready);
  let stopping: Promise<void> | null = null;
  return {
    url: url.origin,
    port: Number(url.port),
    stop(timeoutMs = 5000) {
      stopping ??= (async () => {
        if (!options.bareScript) await drain(url.origin, launcherKey, timeoutMs);
        await mf.dispose();
      })();
      return stopping;
    },
  };
}

/** The gateway's Miniflare worker options, from the bundle's wrangler.toml as `wrangler dev` reads it. */
function gatewayWorker(options: LaunchOptions, launcherKey: string) {
  const configPath = join(options.bundleDir, 'wrangler.toml');
  const config = unstable_readConfig({ config: configPath });
  // Reads wrangler.toml's vars and, beside it, .dev.vars.
  const { workerOptions } = unstable_getMiniflareWorkerOptions(configPath);
  const bindings: Record<string, unknown> = { ...workerOptions.bindings };
  if (options.envFile) Object.assign(bindings, readEnvFile(options.envFile));
  Object.assign(bindings, options.vars ?? {}, { LAUNCHER_KEY: launcherKey });
  return {
    ...workerOptions,
    // Durable Object storage is keyed by worker name and class (`<name>-<class>`): the name wrangler
    // dev used, or the state it left would load empty.
    name: config.name ?? 'ferry',
    modules: true,
    scriptPath: join(options.bundleDir, 'index.js'),
    // Without it, a bundle outside the working directory fails ("can't use '..' to break out").
    modulesRoot: options.bundleDir,
    bindings,
  };
}

/** Asks the gateway to drain; a gateway that does not answer (hung, or already gone) is stopped anyway. */
async function drain(origin: string, launcherKey: string, timeoutMs: number): Promise<void> {
  try {
    const res = await fetch(`${origin}${LAUNCHER_DRAIN_PATH}?timeout_ms=${timeoutMs}`, {
      method: 'POST',
      headers: { 'x-launcher-key': launcherKey },
      signal: AbortSignal.timeout(timeoutMs + 2000),
    });
    const report = (await res.json()) as { in_flight?: number; hubs_drained?: number };
    process.stderr.write(JSON.stringify({ t: new Date().toISOString(), level: 'info', msg: 'gateway drained', ...report }) + '\n');
  } catch (err) {
    // A hung or broken gateway: it is stopped all the same.
    process.stderr.write(JSON.stringify({ t: new Date().toISOString(), level: 'warn', msg: 'gateway did not drain', error: err instanceof Error ? `${err.message}${err.cause ? `: ${String(err.cause)}` : ''}` : String(err) }) + '\n');
  }
}

/**
 * Points Miniflare at bin/workerd-pdeathsig, which starts the real workerd under
 * `setpriv --pdeathsig KILL`: the kernel kills workerd when the launcher dies, however it dies.
 * Without setpriv (util-linux) a SIGKILLed launcher would leave workerd running: refuse to start.
 */
function useParentDeathWrapper(): void {
  if (process.env.MINIFLARE_WORKERD_PATH) return;
  if (process.platform !== 'linux') return;
  if (spawnSync('sh', ['-c', 'command -v setpriv'], { stdio: 'ignore' }).status !== 0) {
    throw new Error('setpriv (util-linux) is needed to tie workerd to the launcher: apt-get install util-linux');
  }
  const require = createRequire(import.meta.url);
  process.env.FERRY_WORKERD_BINARY = (require('workerd') as { default: string }).default;
  process.env.MINIFLARE_WORKERD_PATH = WORKERD_WRAPPER;
}

/** NAME=VALUE lines (quotes optional, # comments), as in .dev.vars. */
function readEnvFile(path: string): Record<string, string> {
  if (!existsSync(path)) throw new Error(`env file ${path} does not exist`);
  const out: Record<string, string> = {};
  for (const line of readFileSync(path, 'utf8').split('\n')) {
    const m = /^\s*([A-Za-z_][A-Za-z0-9_]*)\s*=\s*"?([^"\n]*)"?\s*$/.exec(line);
    if (m) out[m[1]!] = m[2]!;
  }
  return out;
}
