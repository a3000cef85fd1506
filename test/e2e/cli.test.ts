// The endpoint owner's command line, driven as a process (`node bin/ferry.js endpoint …`) against
// the real gateway: configure, start --detach, status, list, logs, stop, refusals, config errors,
// delete. FERRY_HOME is a temp dir; the gateway and the token come from FERRY_URL / FERRY_TOKEN.

import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { EndpointConfigSchema } from '../../src/endpoint/config/endpoint-config';
import { PROJECT_ROOT } from '../../src/cli/gateway-process';
import type { Client } from '../../src/sdk/client';
import { FerryApiError } from '../../src/sdk/errors';
import { runFerry } from '../helpers/ferry-cli';
import { startStack, type Stack, waitForWorkers } from '../helpers/stack';


let stack: Stack;
let alice: Client;
let home: string;
let env: NodeJS.ProcessEnv;

const ferry = (args: string[], extraEnv: NodeJS.ProcessEnv = env) => runFerry(args, extraEnv);

const NAME = 'cli-ep';
const dir = () => join(home, 'endpoints', NAME);
const isAlive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};
const mode = (path: string) => statSync(path).mode & 0o777;
let endpointId: string;

beforeAll(async () => {
  stack = await startStack();
  alice = await stack.client('alice');
  home = mkdtempSync(join(tmpdir(), 'ferry-cli-home-'));
  const { FERRY_URL: _u, FERRY_TOKEN: _t, ...rest } = process.env;
  env = { ...rest, FERRY_HOME: home, FERRY_URL: stack.gateway.url, FERRY_TOKEN: await stack.tokenFor('alice'), FERRY_LOG: 'info' };
}, 120_000);

afterAll(async () => {
  // Whatever a failed step left running.
  if (home && existsSync(dir())) await ferry(['endpoint', 'stop', NAME, '--timeout', '5']);
  await stack?.stop();
  if (home) rmSync(home, { recursive: true, force: true });
});

describe('ferry endpoint', () => {
  it('configure writes a valid config and 0600 credentials in a 0700 folder and registers the endpoint', async () => {
    const run = await ferry(['endpoint', 'configure', NAME]);
    expect(run.stderr).toBe('');
    expect(run.code, run.stderr).toBe(0);
    endpointId = /endpoint_id: (\S+)/.exec(run.stdout)![1]!;
    expect(run.stdout).toContain(`ferry endpoint start ${NAME} --detach`);
    expect(mode(dir())).toBe(0o700);
    expect(mode(join(dir(), 'credentials.json'))).toBe(0o600);
    const text = readFileSync(join(dir(), 'config.yaml'), 'utf8');
    expect(text).toMatch(/^# yaml-language-server: \$schema=\/.*schema\.json$/m);
    expect(EndpointConfigSchema.parse(parseYaml(text)).provider.type).toBe('local');
    expect((await alice.listEndpoints()).map((e) => e.endpoint_id)).toContain(endpointId);
    // Faster status reports for the rest of the test.
    writeFileSync(join(dir(), 'config.yaml'), text.replace(/^heartbeat_s: \d+/m, 'heartbeat_s: 1'));
  });

  it('configure refuses an endpoint that exists, without --force, and changes nothing', async () => {
    const before = [readFileSync(join(dir(), 'config.yaml'), 'utf8'), readFileSync(join(dir(), 'credentials.json'), 'utf8')];
    const run = await ferry(['endpoint', 'configure', NAME, '--provider', 'slurm']);
    expect(run.code, run.stderr).toBe(1);
    expect(run.stderr).toContain('already configured');
    expect(run.stderr).toContain('--force');
    expect([readFileSync(join(dir(), 'config.yaml'), 'utf8'), readFileSync(join(dir(), 'credentials.json'), 'utf8')]).toEqual(before);
  });

  it('start --detach returns once connected; status shows it running and online; a task runs', async () => {
    const run = await ferry(['endpoint', 'start', NAME, '--detach']);
    expect(run.stderr).toBe('');
    expect(run.code, run.stderr).toBe(0);
    const pid = Number(/pid (\d+)/.exec(run.stdout)![1]);
    expect(Number(readFileSync(join(dir(), 'endpoint.pid'), 'utf8'))).toBe(pid);
    expect(isAlive(pid)).toBe(true);

    await waitForWorkers(alice, endpointId, 1, 30_000);
    const json = await ferry(['endpoint', 'status', NAME, '--json']);
    expect(json.code, json.stderr).toBe(0);
    const report = JSON.parse(json.stdout);
    expect(report).toMatchObject({ name: NAME, endpoint_id: endpointId, process: { running: true, pid }, gateway: { status: 'online' } });
    expect(report.gateway.details.total_workers).toBeGreaterThanOrEqual(1);
    const text = await ferry(['endpoint', 'status', NAME]);
    expect(text.stdout).toContain(`running (pid ${pid})`);
    expect(text.stdout).toMatch(/gateway: +online/);
    expect(text.stdout).toMatch(/heartbeat: +\d+s ago/);

    const fn = await alice.registerFunction((a: number, b: number) => a + b);
    expect(await alice.result(await alice.submit(endpointId, fn, [2, 3]), { timeout: 30 })).toBe(5);
  });

  it('refuses to start a second agent while the first runs', async () => {
    const run = await ferry(['endpoint', 'start', NAME, '--detach']);
    expect(run.code, run.stderr).toBe(1);
    expect(run.stderr).toContain('already running');
  });

  it('list shows the endpoint, running here and online at the gateway; logs prints its log', async () => {
    const json = await ferry(['endpoint', 'list', '--json']);
    expect(json.code, json.stderr).toBe(0);
    expect(JSON.parse(json.stdout)).toContainEqual(expect.objectContaining({ name: NAME, endpoint_id: endpointId, provider: 'local', local: true, running: true, status: 'online' }));
    const text = await ferry(['endpoint', 'list']);
    expect(text.stdout).toMatch(new RegExp(`^${NAME} +${endpointId} +local +running \\(pid \\d+\\) +online$`, 'm'));

    const logs = await ferry(['endpoint', 'logs', NAME, '-n', '3']);
    expect(logs.code, logs.stderr).toBe(0);
    const lines = logs.stdout.trim().split('\n');
    expect(lines.length).toBeGreaterThanOrEqual(1);
    expect(lines.length).toBeLessThanOrEqual(3);
    const all = await ferry(['endpoint', 'logs', NAME, '-n', '1000']);
    expect(all.stdout).toContain('connected to gateway');
  });

  it('stop ends the agent; status says not running and the gateway turns offline; a second stop says so', async () => {
    const pid = Number(readFileSync(join(dir(), 'endpoint.pid'), 'utf8'));
    const run = await ferry(['endpoint', 'stop', NAME]);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toContain('stopped');
    expect(existsSync(join(dir(), 'endpoint.pid'))).toBe(false);
    // Its new parent (init) reaps it a moment after it exits.
    await vi.waitFor(() => expect(isAlive(pid), 'the agent process to be gone').toBe(false), { timeout: 5000, interval: 100 });
    const status = JSON.parse((await ferry(['endpoint', 'status', NAME, '--json'])).stdout);
    expect(status.process).toEqual({ running: false, pid: null });
    await vi.waitFor(async () => expect((await alice.endpointStatus(endpointId)).status, 'the gateway to see the endpoint offline').toBe('offline'), { timeout: 30_000, interval: 100 });

    const again = await ferry(['endpoint', 'stop', NAME]);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toContain('not running');
  });

  it('a bad config field makes start exit non-zero naming the field, in the foreground and with --detach', async () => {
    const good = readFileSync(join(dir(), 'config.yaml'), 'utf8');
    writeFileSync(join(dir(), 'config.yaml'), 'provider: {type: local, max_workers_per_node: 0}\n');
    try {
      // One after the other: each claims the pid file while it starts.
      const fg = await ferry(['endpoint', 'start', NAME]);
      const bg = await ferry(['endpoint', 'start', NAME, '--detach']);
      for (const run of [fg, bg]) {
        expect(run.code, run.stderr).not.toBe(0);
        expect(run.stderr).toContain('provider.max_workers_per_node');
        expect(run.stderr).not.toMatch(/^\s+at /m);
      }
      expect(existsSync(join(dir(), 'endpoint.pid'))).toBe(false);
    } finally {
      writeFileSync(join(dir(), 'config.yaml'), good);
    }
  });

  it('delete refuses without --yes when stdin is not a terminal; with --yes it removes the folder and the gateway forgets it', async () => {
    const refused = await ferry(['endpoint', 'delete', NAME]);
    expect(refused.code, refused.stderr).toBe(1);
    expect(refused.stderr).toContain('--yes');
    expect(existsSync(dir())).toBe(true);

    const run = await ferry(['endpoint', 'delete', NAME, '--yes']);
    expect(run.stderr).toBe('');
    expect(run.code, run.stderr).toBe(0);
    expect(existsSync(dir())).toBe(false);
    const err = await alice.getEndpoint(endpointId).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FerryApiError);
    expect((err as FerryApiError).status).toBe(404);
  });
});

describe('ferry login and where the CLI finds the gateway', () => {
  it('without flags, env, login or dev.json it says what to set', async () => {
    if (existsSync(join(PROJECT_ROOT, '.ferry', 'dev.json'))) return; // a developer's `npm start` would answer
    const bare = mkdtempSync(join(tmpdir(), 'ferry-cli-bare-'));
    try {
      const { FERRY_URL: _u, FERRY_TOKEN: _t, ...rest } = env;
      const run = await ferry(['endpoint', 'configure', 'x'], { ...rest, FERRY_HOME: bare });
      expect(run.code, run.stderr).toBe(1);
      for (const hint of ['--gateway', 'FERRY_URL', 'FERRY_TOKEN', 'ferry login', 'ferry dev']) expect(run.stderr).toContain(hint);
      expect(existsSync(join(bare, 'endpoints', 'x'))).toBe(false);
    } finally {
      rmSync(bare, { recursive: true, force: true });
    }
  });

  it('login checks the token, saves user.json (0600), and later commands use it', async () => {
    const fresh = mkdtempSync(join(tmpdir(), 'ferry-cli-login-'));
    try {
      const { FERRY_URL: _u, FERRY_TOKEN: _t, ...rest } = env;
      const e = { ...rest, FERRY_HOME: fresh };
      const bad = await ferry(['login', '--gateway', stack.gateway.url, '--token', 'not-a-token'], e);
      expect(bad.code, bad.stderr).toBe(1);
      expect(bad.stderr).toContain('401');
      expect(existsSync(join(fresh, 'user.json'))).toBe(false);

      const ok = await ferry(['login', '--gateway', stack.gateway.url, '--token', env.FERRY_TOKEN!], e);
      expect(ok.code, ok.stderr).toBe(0);
      expect(ok.stdout).toContain('as alice');
      expect(mode(join(fresh, 'user.json'))).toBe(0o600);
      const list = await ferry(['endpoint', 'list', '--json'], e);
      expect(list.code, list.stderr).toBe(0);
      expect(JSON.parse(list.stdout)).toEqual([]);
    } finally {
      rmSync(fresh, { recursive: true, force: true });
    }
  });
});
