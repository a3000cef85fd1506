// A whole Ferry on loopback for end-to-end tests and the benchmark: the real gateway (wrangler dev
// → workerd) on a free port with state in a temp dir, and real endpoint agents started as
// `ferry endpoint start` processes, which start real manager and worker processes.

import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { writeCredentials } from '../../src/endpoint/ferry-home';
import { PROJECT_ROOT, startGatewayProcess, type GatewayProcess } from '../../src/cli/gateway-process';
import { ensureDevSecret, mintUserToken } from '../../src/cli/tokens';
import { Client } from '../../src/sdk/client';

export interface Stack {
  dir: string;
  gateway: GatewayProcess;
  secret: string;
  tokenFor(sub: string, expiresIn?: string | number): Promise<string>;
  client(sub?: string): Promise<Client>;
  /** Registers an endpoint for `owner` and writes its credentials and config; does not start it. */
  createEndpoint(name: string, owner?: string, config?: Record<string, unknown>): Promise<EndpointHandle>;
  stop(): Promise<void>;
}

export interface EndpointHandle {
  name: string;
  endpointId: string;
  configPath: string;
  start(): AgentProcess;
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

export async function startStack(options: { quiet?: boolean } = {}): Promise<Stack> {
  const dir = mkdtempSync(join(tmpdir(), 'ferry-e2e-'));
  const secret = ensureDevSecret(join(PROJECT_ROOT, '.dev.vars'));
  const gateway = await startGatewayProcess({
    persistTo: join(dir, 'state'),
    vars: { HEARTBEAT_S: '1' },
    ...(options.quiet === false ? { onOutput: (t: string) => process.stderr.write(t) } : {}),
  });
  const agents: AgentProcess[] = [];
  const tokenFor = (sub: string, expiresIn: string | number = '1h') => mintUserToken({ secret, sub, expiresIn });
  const client = async (sub = 'alice') => new Client({ url: gateway.url, token: await tokenFor(sub) });

  return {
    dir,
    gateway,
    secret,
    tokenFor,
    client,
    async createEndpoint(name, owner = 'alice', config = {}) {
      const c = await client(owner);
      const reg = await c.registerEndpoint({ endpoint_name: name });
      const home = join(dir, 'home');
      writeCredentials({ endpoint_name: name, endpoint_id: reg.endpoint_id, gateway_url: gateway.url, connection_url: reg.task_queue_info.connection_url, token: reg.token }, home);
      const configPath = join(dir, `${name}.yaml`);
      writeFileSync(configPath, stringify({ ...DEFAULT_CONFIG, ...config, state_dir: join(dir, 'agents', name) }));
      return {
        name,
        endpointId: reg.endpoint_id,
        configPath,
        start() {
          const agent = startAgent(name, configPath, home);
          agents.push(agent);
          return agent;
        },
      };
    },
    async stop() {
      await Promise.all(agents.map((a) => a.kill('SIGTERM')));
      await gateway.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

function startAgent(name: string, configPath: string, home: string): AgentProcess {
  const child = spawn(process.execPath, [join(PROJECT_ROOT, 'bin', 'ferry.js'), 'endpoint', 'start', name, '--config', configPath], {
    cwd: PROJECT_ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, FERRY_HOME: home, FERRY_LOG: process.env.FERRY_LOG ?? 'info' },
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

/** Polls `probe` until it returns a truthy value, or throws at the deadline. */
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
