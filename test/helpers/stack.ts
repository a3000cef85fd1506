// A whole Ferry on loopback for end-to-end tests and the benchmark: the real gateway (its launcher
// → workerd) on a free port with state in a temp dir, and real endpoint agents started as
// `ferry endpoint start` processes, which start real manager and worker processes.

import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { writeCredentials } from '../../src/endpoint/ferry-home';
import { PROJECT_ROOT, bundleGateway, startGatewayProcess, type GatewayProcess } from '../../src/cli/gateway-process';
import { ensureDevSecret, mintUserToken } from '../../src/cli/tokens';
import { Client, type ClientOptions } from '../../src/sdk/client';
import { startRedisWithProxy, type RedisForTests } from './upstash-proxy';

export interface Stack {
  dir: string;
  gateway: GatewayProcess;
  secret: string;
  tokenFor(sub: string, expiresIn?: string | number): Promise<string>;
  client(sub?: string): Promise<Client>;
  /** Registers an endpoint for `owner` (or with `token`, a user token of any kind) and writes its credentials and config; does not start it. */
  createEndpoint(name: string, owner?: string, config?: Record<string, unknown>, token?: string): Promise<EndpointHandle>;
  /** What the gateway (launcher and workerd) has printed, across restarts (the last 1 MB). */
  gatewayOutput(): string;
  /** Stops the gateway (SIGKILL by default: workerd dies mid-write) and starts it on the same state and port. */
  restartGateway(signal?: NodeJS.Signals): Promise<void>;
  /** SIGSTOPs the gateway's process group (launcher and workerd): a hung gateway, sockets open, nothing read. */
  freezeGateway(): void;
  stop(): Promise<void>;
}

export interface EndpointHandle {
  name: string;
  endpointId: string;
  configPath: string;
  /** The agent's state directory (journal, block connect files). */
  stateDir: string;
  /** Points the agent at another WebSocket URL (a proxy in front of the gateway). */
  setConnectionUrl(url: string): void;
  /** Starts `ferry endpoint start` as a process; `env` adds to its environment. */
  start(options?: { env?: Record<string, string> }): AgentProcess;
}

export interface AgentProcess {
  child: ChildProcess;
  output(): string;
  /** Resolves when the agent's output matches, or rejects at the deadline. */
  waitForOutput(pattern: RegExp, timeoutMs?: number): Promise<void>;
  kill(signal?: NodeJS.Signals): Promise<void>;
}

const DEFAULT_CONFIG = {
  provider: { type: 'local', init_blocks: 1, max_blocks: 1, nodes_per_block: 1, max_workers_per_node: 2 },
  task_memory_mb: 64,
  task_timeout_s: 3,
  heartbeat_s: 1,
};

export type TestTaskStore = 'sqlite' | 'redis';

export interface StackOptions {
  quiet?: boolean;
  /** Where the gateway keeps task state; default: env FERRY_TEST_TASK_STORE, else sqlite. With redis,
   * a redis-server and its Upstash-protocol proxy are started (and stopped) with the stack. */
  taskStore?: TestTaskStore;
  /** More gateway vars (rate limits, …). */
  vars?: Record<string, string>;
}

/** The task store end-to-end runs use unless a test names one: FERRY_TEST_TASK_STORE=redis. */
export function defaultTestTaskStore(): TestTaskStore {
  return process.env.FERRY_TEST_TASK_STORE === 'redis' ? 'redis' : 'sqlite';
}

export async function startStack(options: StackOptions = {}): Promise<Stack & { taskStore: TestTaskStore; redis: RedisForTests | null; clientWith(sub: string, extra: Partial<ClientOptions>): Promise<Client> }> {
  const dir = mkdtempSync(join(tmpdir(), 'ferry-e2e-'));
  const secret = ensureDevSecret(join(PROJECT_ROOT, '.dev.vars'));
  const taskStore = options.taskStore ?? defaultTestTaskStore();
  const redis = taskStore === 'redis' ? await startRedisWithProxy() : null;
  const storeVars: Record<string, string> = redis ? { TASK_STORE: 'redis', UPSTASH_REDIS_REST_URL: redis.url, UPSTASH_REDIS_REST_TOKEN: redis.token } : {};
  // One bundle per stack: edits to the sources while tests run do not reload the gateway under them.
  const bundled = process.env.FERRY_TEST_BUNDLE !== '0';
  if (bundled) await bundleGateway(join(dir, 'bundle'));
  let gatewayLog = '';
  const gatewayOptions = {
    ...(bundled ? { bundleDir: join(dir, 'bundle') } : {}),
    persistTo: join(dir, 'state'),
    vars: { HEARTBEAT_S: '1', ...storeVars, ...(options.vars ?? {}) },
    onOutput: (t: string) => {
      gatewayLog = (gatewayLog + t).slice(-1_000_000);
      if (options.quiet === false) process.stderr.write(t);
    },
  };
  let gateway: GatewayProcess;
  try {
    gateway = await startGatewayProcess(gatewayOptions);
  } catch (err) {
    await redis?.stop();
    throw err;
  }
  const agents: AgentProcess[] = [];
  const tokenFor = (sub: string, expiresIn: string | number = '1h') => mintUserToken({ secret, sub, expiresIn });
  const client = async (sub = 'alice') => new Client({ url: gateway.url, token: await tokenFor(sub) });
  const clientWith = async (sub: string, extra: Partial<ClientOptions>) => new Client({ url: gateway.url, token: await tokenFor(sub), ...extra });

  return {
    dir,
    get gateway() {
      return gateway;
    },
    secret,
    tokenFor,
    client,
    clientWith,
    taskStore,
    redis,
    gatewayOutput: () => gatewayLog,
    async createEndpoint(name, owner = 'alice', config = {}, token?: string) {
      const c = token === undefined ? await client(owner) : new Client({ url: gateway.url, token });
      const reg = await c.registerEndpoint({ endpoint_name: name });
      const home = join(dir, 'home');
      const creds = { endpoint_name: name, endpoint_id: reg.endpoint_id, gateway_url: gateway.url, connection_url: reg.task_queue_info.connection_url, token: reg.token };
      writeCredentials(creds, home);
      const configPath = join(dir, `${name}.yaml`);
      const stateDir = join(dir, 'agents', name);
      writeFileSync(configPath, stringify({ ...DEFAULT_CONFIG, ...config, state_dir: stateDir }));
      return {
        name,
        endpointId: reg.endpoint_id,
        configPath,
        stateDir,
        setConnectionUrl(url: string) {
          writeCredentials({ ...creds, connection_url: url }, home);
        },
        start(startOptions = {}) {
          const agent = startAgent(name, configPath, home, startOptions.env);
          agents.push(agent);
          return agent;
        },
      };
    },
    freezeGateway() {
      process.kill(-gateway.child.pid!, 'SIGSTOP');
    },
    async restartGateway(signal: NodeJS.Signals = 'SIGKILL') {
      await gateway.stop(signal);
      gateway = await startGatewayProcess({ ...gatewayOptions, port: gateway.port });
    },
    async stop() {
      await Promise.all(agents.map((a) => a.kill('SIGTERM')));
      await gateway.stop();
      await redis?.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

function startAgent(name: string, configPath: string, home: string, extraEnv: Record<string, string> = {}): AgentProcess {
  const child = spawn(process.execPath, [join(PROJECT_ROOT, 'bin', 'ferry.js'), 'endpoint', 'start', name, '--config', configPath], {
    cwd: PROJECT_ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, FERRY_HOME: home, FERRY_LOG: process.env.FERRY_LOG ?? 'info', ...extraEnv },
  });
  let out = '';
  const listeners = new Set<() => void>();
  const onData = (chunk: Buffer) => {
    out += chunk.toString();
    if (process.env.FERRY_TEST_VERBOSE) process.stderr.write(chunk);
    for (const l of listeners) l();
  };
  child.stdout!.on('data', onData);
  child.stderr!.on('data', onData);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return {
    child,
    output: () => out,
    waitForOutput(pattern, timeoutMs = 30_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          if (pattern.test(out)) {
            cleanup();
            resolve();
          }
        };
        const timer = setTimeout(() => {
          cleanup();
          reject(new Error(`agent output did not match ${pattern} within ${timeoutMs} ms:\n${out.slice(-4000)}`));
        }, timeoutMs);
        const cleanup = () => {
          clearTimeout(timer);
          listeners.delete(check);
        };
        listeners.add(check);
        check();
      });
    },
    async kill(signal: NodeJS.Signals = 'SIGTERM') {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill(signal);
      await exited;
    },
  };
}

/** Waits until the endpoint reports at least `workers` connected workers. */
export async function waitForWorkers(client: Client, endpointId: string, workers: number, timeoutMs = 60_000): Promise<void> {
  await eventually(async () => (await client.endpointStatus(endpointId)).details.total_workers >= workers, `endpoint ${endpointId} to report ${workers} worker(s)`, timeoutMs);
}

/** How many of the tasks have succeeded so far (one batch_status read). */
export async function succeededCount(client: Client, taskIds: string[]): Promise<number> {
  return Object.values(await client.batchStatus(taskIds)).filter((d) => d.status === 'success').length;
}

/**
 * Polls `probe` until it returns a truthy value, or throws at the deadline. Tests use vi.waitFor;
 * this one is for the benchmarks (bench/), which share these helpers and run outside Vitest,
 * where vi.waitFor cannot run ("Vitest failed to access its internal state").
 */
export async function eventually<T>(probe: () => Promise<T | undefined | null | false>, what: string, timeoutMs = 30_000, everyMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await probe();
      if (v) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
