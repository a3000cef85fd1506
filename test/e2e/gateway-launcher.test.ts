// Ferry's own gateway runtime (src/cli/gateway-launcher.ts, `ferry gateway serve`), as an operator
// sees it: other gateways starting and stopping on the machine cost a running one nothing; no
// workerd outlives a launcher killed with SIGKILL; state an earlier `npm start` (wrangler dev) wrote
// still loads; `npm start` opens no inspector; SIGTERM drains (agents told to reconnect, long polls
// answered) before workerd stops.

import { spawn } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { PROJECT_ROOT, startGatewayProcess, type GatewayProcess } from '../../src/cli/gateway-process';
import { Client } from '../../src/sdk/client';
import { isAlive, killAll, listeningPorts, processTree, untilDead, workerdPids } from '../helpers/processes';
import { startStack, waitForWorkers } from '../helpers/stack';

type Stack = Awaited<ReturnType<typeof startStack>>;

describe('the gateway launcher', () => {
  let stack: Stack;
  const leftovers: number[] = [];

  beforeAll(async () => {
    stack = await startStack();
  }, 120_000);

  afterAll(async () => {
    if (process.env.FERRY_TEST_VERBOSE) console.log(stack?.gatewayOutput());
    killAll(leftovers);
    await stack?.stop();
  });

  it('serves a 20,000-task batch with no 503 while three other gateways start and stop, and no workerd outlives a SIGKILLed launcher', async () => {
    // Every answer the client gets, counted at the transport: the SDK retries 429s, and sends a
    // request again after a connection closed before any answer (kept-alive-connections.test.ts);
    // both show here.
    const statuses = new Map<number, number>();
    let closedBeforeAnswer = 0;
    const counting = (async (input: RequestInfo | URL, init?: RequestInit) => {
      let res: Response;
      try {
        res = await fetch(input, init);
      } catch (err) {
        closedBeforeAnswer++;
        throw err;
      }
      statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
      return res;
    }) as typeof fetch;
    const client = await stack.clientWith('alice', { fetch: counting });
    const endpoint = await stack.createEndpoint('launcher-batch', 'alice', { provider: { type: 'local', init_blocks: 1, max_blocks: 1, nodes_per_block: 1, max_workers_per_node: 2 } });
    endpoint.start();
    await waitForWorkers(client, endpoint.endpointId, 2);
    // A millisecond of work each, so the batch lasts some seconds on two workers however fast the
    // machine: long enough for three gateways to start beside it (and slower when the machine is).
    const inc = await client.registerFunction('(x) => { const end = Date.now() + 1; while (Date.now() < end); return x + 1; }', { name: 'inc' });
    const n = 20_000;
    const others: GatewayProcess[] = [];
    const dirs: string[] = [];
    // Three other gateways, each in its own directory on its own port, started and stopped (drained)
    // while the batch runs.
    const churn = Promise.all([0, 1, 2].map(async () => {
      const dir = mkdtempSync(join(tmpdir(), 'ferry-other-gateway-'));
      dirs.push(dir);
      const other = await startGatewayProcess({ persistTo: join(dir, 'state'), bundleDir: join(stack.dir, 'bundle') });
      leftovers.push(other.child.pid!);
      expect((await fetch(`${other.url}/healthz`)).status).toBe(200);
      const served = Date.now();
      await other.stop();
      return served;
    }));
    const sub = await client.submitBatch(endpoint.endpointId, inc, Array.from({ length: n }, (_, i) => [i]));
    const docs = await client.waitAll(sub.task_ids, { timeout: 600 });
    const batchEnded = Date.now();
    const churnServed = await churn;
    console.log(`launcher batch: answers by status ${JSON.stringify(Object.fromEntries(statuses))}; ${closedBeforeAnswer} connection(s) closed before an answer (sent again by the SDK); ${dirs.length} other gateway(s) started and stopped meanwhile`);
    expect(dirs.length).toBe(3);
    // All three served before the batch was done: they started while it ran.
    expect(churnServed.every((t) => t < batchEnded)).toBe(true);
    expect(statuses.get(503) ?? 0).toBe(0);
    expect([...statuses.keys()].every((s) => s < 500)).toBe(true);
    expect(docs.filter((d, i) => d.status === 'success' && d.result === i + 1)).toHaveLength(n);

    // Now the kill: three launchers more, and the stack's own; SIGKILL each launcher alone.
    for (let i = 0; i < 3; i++) {
      const dir = mkdtempSync(join(tmpdir(), 'ferry-other-gateway-'));
      dirs.push(dir);
      others.push(await startGatewayProcess({ persistTo: join(dir, 'state'), bundleDir: join(stack.dir, 'bundle') }));
      leftovers.push(others.at(-1)!.child.pid!);
    }
    const launchers = [stack.gateway.child.pid!, ...others.map((o) => o.child.pid!)];
    const workerds = launchers.flatMap((pid) => workerdPids(pid));
    leftovers.push(...workerds);
    expect(workerds.length).toBeGreaterThanOrEqual(launchers.length);
    for (const pid of launchers) process.kill(pid, 'SIGKILL');
    const deadline = Date.now() + 5000;
    const alive = () => workerds.filter(isAlive);
    while (alive().length > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    console.log(`launcher SIGKILL: ${launchers.length} launchers killed; workerd pids ${workerds.join(' ')}; alive after the kill: ${alive().length}`);
    expect(alive()).toEqual([]);
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
    await stack.restartGateway();
  }, 600_000);

  it('loads the state an earlier `npm start` (wrangler dev) wrote: its functions, endpoints and tasks', async () => {
    const fixture = join(PROJECT_ROOT, 'test', 'fixtures', 'state-from-wrangler-dev');
    const expected = JSON.parse(readFileSync(join(fixture, 'expected.json'), 'utf8')) as {
      owner: string; endpoint_id: string; endpoint_name: string; function_uuid: string; tasks: Array<{ task_id: string; result: number }>;
    };
    const dir = mkdtempSync(join(tmpdir(), 'ferry-old-state-'));
    cpSync(join(fixture, 'state'), join(dir, 'state'), { recursive: true });
    const gateway = await startGatewayProcess({ persistTo: join(dir, 'state'), bundleDir: join(stack.dir, 'bundle') });
    leftovers.push(gateway.child.pid!);
    try {
      const owner = new Client({ url: gateway.url, token: await stack.tokenFor(expected.owner) });
      expect((await owner.getFunction(expected.function_uuid)).function_uuid).toBe(expected.function_uuid);
      expect((await owner.getEndpoint(expected.endpoint_id)).endpoint_name).toBe(expected.endpoint_name);
      const docs = await owner.batchStatus(expected.tasks.map((t) => t.task_id));
      expect(expected.tasks.map((t) => [docs[t.task_id]?.status, docs[t.task_id]?.result])).toEqual(expected.tasks.map((t) => ['success', t.result]));
      // Someone else still sees none of it.
      const stranger = new Client({ url: gateway.url, token: await stack.tokenFor('mallory') });
      await expect(stranger.getFunction(expected.function_uuid)).rejects.toMatchObject({ status: 404 });
    } finally {
      await gateway.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  }, 120_000);

  it('drains on SIGTERM: a long poll is answered, the agent is told to reconnect, then workerd stops', async () => {
    const client = await stack.client('alice');
    const endpoint = await stack.createEndpoint('launcher-drain', 'alice', { task_timeout_s: 60 });
    const agent = endpoint.start();
    await waitForWorkers(client, endpoint.endpointId, 1);
    // A task that stays running: the sandbox has no timers (a setTimeout here failed the task at
    // once, and the test passed only when the drain answered before that failure was stored).
    const sleep = await client.registerFunction('() => new Promise(() => {})', { name: 'never-settles' });
    const taskId = await client.submit(endpoint.endpointId, sleep, []);
    await vi.waitFor(async () => expect(['waiting-for-nodes', 'running'], 'the agent to hold the task').toContain((await client.getTask(taskId)).status), { timeout: 30_000, interval: 100 });
    const poll = fetch(`${stack.gateway.url}/v2/tasks/${taskId}?wait=60`, { headers: { authorization: `Bearer ${await stack.tokenFor('alice')}` } });
    // The poll must be held by the hub before the drain, or there is nothing to answer.
    await new Promise((r) => setTimeout(r, 300));
    const workerds = workerdPids(stack.gateway.child.pid!);
    const t0 = Date.now();
    const launcherExit = new Promise<number | null>((resolve) => stack.gateway.child.once('exit', (code) => resolve(code)));
    stack.gateway.child.kill('SIGTERM');
    const res = await poll;
    expect(res.status).toBe(200);
    const doc = (await res.json()) as { status: string; exception?: unknown };
    expect(['waiting-for-nodes', 'running'], JSON.stringify(doc.exception ?? null)).toContain(doc.status);
    await agent.waitForOutput(/the gateway is restarting; reconnecting/, 10_000);
    expect(await launcherExit).toBe(0);
    const ms = Date.now() - t0;
    for (const pid of workerds) expect(await untilDead(pid)).toBe(true);
    console.log(`launcher SIGTERM: the long poll answered and the launcher exited 0 in ${ms} ms`);
    expect(ms).toBeLessThan(10_000);
    await stack.restartGateway();
  }, 120_000);
});

describe('npm start', () => {
  it('opens no inspector: no listening socket of its process tree answers as a V8 inspector', async () => {
    const home = mkdtempSync(join(tmpdir(), 'ferry-start-'));
    const child = spawn('npm', ['start'], { cwd: PROJECT_ROOT, detached: true, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, FERRY_HOME: home, FERRY_PORT: '0' } });
    let out = '';
    child.stdout!.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr!.on('data', (c: Buffer) => (out += c.toString()));
    try {
      await vi.waitFor(() => expect(out, 'npm start to say it runs').toMatch(/Ferry is running/), { timeout: 120_000, interval: 100 });
      const gatewayPort = Number(/gateway:\s+http:\/\/127\.0\.0\.1:(\d+)/.exec(out)![1]);
      const ports = listeningPorts(child.pid!);
      expect(ports).toContain(gatewayPort);
      const inspectors = [];
      for (const port of ports) if (await answersAsInspector(port)) inspectors.push(port);
      const cmdlines = processTree(child.pid!).map((pid) => {
        try {
          return readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ');
        } catch {
          return '';
        }
      });
      console.log(`npm start: listening ports ${ports.join(' ')} (gateway ${gatewayPort}); inspectors: ${inspectors.length}`);
      expect(inspectors).toEqual([]);
      expect(cmdlines.filter((c) => /--inspect/.test(c))).toEqual([]);
    } finally {
      const tree = processTree(child.pid!);
      try {
        process.kill(-child.pid!, 'SIGINT');
      } catch {
        // gone
      }
      await new Promise((r) => child.once('exit', r));
      // Ctrl-C leaves nothing behind: not the launcher, not workerd, not the endpoint.
      const left = [];
      for (const pid of tree) if (!(await untilDead(pid, 15_000))) left.push(pid);
      expect(left).toEqual([]);
      rmSync(home, { recursive: true, force: true });
    }
  }, 180_000);

  it('the same probe finds the inspector of a gateway started with --inspect (the check can fail)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ferry-inspect-'));
    const previous = process.env.FERRY_GATEWAY_INSPECTOR_PORT;
    process.env.FERRY_GATEWAY_INSPECTOR_PORT = '0';
    let gateway: GatewayProcess | null = null;
    try {
      gateway = await startGatewayProcess({ persistTo: join(dir, 'state') });
      const found = [];
      for (const port of listeningPorts(gateway.child.pid!)) if (await answersAsInspector(port)) found.push(port);
      expect(found.length).toBeGreaterThan(0);
    } finally {
      if (previous === undefined) delete process.env.FERRY_GATEWAY_INSPECTOR_PORT;
      else process.env.FERRY_GATEWAY_INSPECTOR_PORT = previous;
      await gateway?.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  }, 120_000);
});

/** A V8 inspector (node --inspect, workerd --inspector-addr) answers GET /json/version with its protocol version. */
async function answersAsInspector(port: number): Promise<boolean> {
  try {
    const res = await fetch(`http://127.0.0.1:${port}/json/version`, { signal: AbortSignal.timeout(2000) });
    const text = await res.text();
    return /Protocol-Version|webSocketDebuggerUrl|V8-Version/i.test(text);
  } catch {
    return false;
  }
}
