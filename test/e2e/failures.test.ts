// No task lost: each failure a cluster produces, injected into a running batch of 1,000 tasks,
// ends with every task `success`, its right result stored once, and (where the failure took
// executions in flight) tasks that ran more than once. Each test prints what the failure caused.

import { execFileSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { TaskDoc } from '../../src/protocol/api';
import type { Client } from '../../src/sdk/client';
import { startBlackholeProxy } from '../helpers/blackhole-proxy';
import { provJsonSchemaErrors, provStatements, readStatements, readWithPythonProv } from '../helpers/prov-json';
import { ensureSlurm, type SlurmCluster } from '../helpers/slurm';
import { unreadBytesOnPort } from '../helpers/processes';
import { startStack, succeededCount, type EndpointHandle, type Stack, waitForWorkers } from '../helpers/stack';

const N = 1000;
/** ~8 ms of work each: a batch lasts a few seconds, so a failure lands on work in flight. */
const WORK = '(x) => { const end = Date.now() + 8; while (Date.now() < end); return x * 3 }';

let stack: Stack;
let alice: Client;
let cluster: SlurmCluster | undefined;

beforeAll(async () => {
  stack = await startStack();
  alice = await stack.client('alice');
}, 120_000);
afterAll(async () => {
  await stack?.stop();
  await cluster?.stop();
});

async function startBatch(endpoint: EndpointHandle, workflowId?: string) {
  const fn = await alice.registerFunction(WORK, { name: 'work' });
  const { task_ids } = await alice.submitBatch(endpoint.endpointId, fn, Array.from({ length: N }, (_, i) => [i]), workflowId ? { workflow_id: workflowId } : {});
  return task_ids;
}

function successes(ids: string[]): Promise<number> {
  return succeededCount(alice, ids);
}

/** Everything succeeded with its right result, and reading again returns the same stored results. */
async function expectNothingLost(label: string, ids: string[], timeoutS = 180): Promise<TaskDoc[]> {
  const docs = await alice.waitAll(ids, { timeout: timeoutS });
  expect(docs.map((d) => d.status)).toEqual(Array(N).fill('success'));
  expect(docs.map((d) => d.result)).toEqual(Array.from({ length: N }, (_, i) => i * 3));
  const again = await alice.batchStatus(ids);
  expect(ids.map((id) => again[id]!.result)).toEqual(docs.map((d) => d.result));
  const multi = docs.filter((d) => d.details.attempts > 1).length;
  const maxAttempts = Math.max(...docs.map((d) => d.details.attempts));
  console.log(`${label}: ${N}/${N} success; ${multi} task(s) with 2+ attempts (max ${maxAttempts})`);
  return docs;
}

async function endpointWithWork(name: string, config: Record<string, unknown> = {}) {
  const endpoint = await stack.createEndpoint(name, 'alice', { prefetch_tasks: 600, manager_prefetch: 256, ...config });
  return endpoint;
}

async function waitOnline(endpoint: EndpointHandle, workers = 2) {
  await waitForWorkers(alice, endpoint.endpointId, workers);
}

function pgrep(args: string[]): number[] {
  try {
    return execFileSync('pgrep', args, { encoding: 'utf8' }).trim().split('\n').filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

describe('no task lost', () => {
  it('SIGKILL of a manager holding ≥ 100 tasks', async () => {
    const endpoint = await endpointWithWork('kill-manager');
    endpoint.start();
    await waitOnline(endpoint);
    const ids = await startBatch(endpoint);
    await vi.waitFor(async () => {
      const d = (await alice.endpointStatus(endpoint.endpointId)).details;
      expect(d.outstanding_tasks - d.pending_tasks, 'the manager to hold ≥ 100 tasks').toBeGreaterThanOrEqual(100);
    }, { timeout: 30_000, interval: 50 });
    const [manager] = pgrep(['-f', `${endpoint.stateDir}/blocks/.*/connect.json`]);
    expect(manager).toBeGreaterThan(0);
    process.kill(manager!, 'SIGKILL');
    const docs = await expectNothingLost('manager SIGKILL', ids);
    expect(docs.some((d) => d.details.attempts >= 2)).toBe(true);
  }, 240_000);

  it('SIGKILL of a worker after its task has started', async () => {
    const endpoint = await endpointWithWork('kill-worker', { task_timeout_s: 30 });
    const agent = endpoint.start();
    await waitOnline(endpoint);
    // Task 500 runs for 6 s: once the gateway shows it running, its worker is mid-task. (With 2 s, CI
    // once ended task 500 with one attempt: on a loaded machine the kill had landed after it ended.)
    const fn = await alice.registerFunction('(x) => { const end = Date.now() + (x === 500 ? 6000 : 8); while (Date.now() < end); return x * 3 }', { name: 'work-with-a-long-one' });
    const { task_ids: ids } = await alice.submitBatch(endpoint.endpointId, fn, Array.from({ length: N }, (_, i) => [i]));
    await vi.waitFor(async () => expect((await alice.getTask(ids[500]!)).status, 'task 500 to be running').toBe('running'), { timeout: 60_000, interval: 50 });
    const [manager] = pgrep(['-f', `${endpoint.stateDir}/blocks/.*/connect.json`]);
    const workers = pgrep(['-P', String(manager), '-f', 'worker/main.ts']);
    expect(workers.length).toBe(2);
    for (const w of workers) process.kill(w, 'SIGKILL');
    const docs = await expectNothingLost('worker SIGKILL', ids);
    expect(agent.output()).toMatch(/"msg":"executions lost".*"reason":"worker \d+ exited \(SIGKILL\)"/);
    expect(agent.output()).toMatch(new RegExp(`"msg":"executions lost".*"task_ids":\\[[^\\]]*"${ids[500]}"`));
    expect(docs[500]!.details.attempts).toBeGreaterThanOrEqual(2);
    // Its lineage keeps every execution: the lost one, with why, then the one that succeeded; the
    // document still validates and reads back whole in the prov library.
    const prov = await alice.taskProvenance(ids[500]!);
    const attempts = Object.values(prov.activity).filter((a) => (a['prov:type'] as { $: string }).$ === 'ferry:Attempt');
    expect(attempts.map((a) => a['ferry:outcome'])).toEqual([...Array(attempts.length - 1).fill('lost'), 'success']);
    expect(attempts[0]!['ferry:reason']).toMatch(/^worker \d+ exited \(SIGKILL\)$/);
    expect(provJsonSchemaErrors(prov)).toEqual([]);
    expect(readStatements(await readWithPythonProv(JSON.stringify(prov)))).toEqual(provStatements(prov as unknown as Record<string, unknown>));
  }, 240_000);

  it('fails a task with FERRY_WORKER_LOST once its executions were lost more than max_retries_on_system_failure times', async () => {
    const endpoint = await endpointWithWork('no-retries', { max_retries_on_system_failure: 0, task_timeout_s: 60 });
    const agent = endpoint.start();
    await waitOnline(endpoint);
    // Long enough that the kill lands mid-task on a loaded machine; killed, it ends at once.
    const fn = await alice.registerFunction('(x) => { const end = Date.now() + 20000; while (Date.now() < end); return x }', { name: 'twenty-seconds' });
    const id = await alice.submit(endpoint.endpointId, fn, [1], undefined, { workflow_id: 'wf-no-retries' });
    await vi.waitFor(async () => expect((await alice.getTask(id)).status, 'the task to be running').toBe('running'), { timeout: 60_000, interval: 50 });
    const [manager] = pgrep(['-f', `${endpoint.stateDir}/blocks/.*/connect.json`]);
    for (const w of pgrep(['-P', String(manager), '-f', 'worker/main.ts'])) process.kill(w, 'SIGKILL');
    const [doc] = await alice.waitAll([id], { timeout: 60 });
    expect(doc!.status).toBe('failed');
    expect(doc!.exception).toMatchObject({ code: 'FERRY_WORKER_LOST' });
    expect(doc!.exception!.message).toMatch(/lost 1 times \(last: worker \d+ exited \(SIGKILL\)\); max_retries_on_system_failure is 0/);
    expect(agent.output()).toMatch(/"msg":"executions lost".*"retried":0,"failed":1/);
    // Its lineage: the one lost execution, and no second one (none ran).
    const records = await alice.lineageRecords({ workflow_id: 'wf-no-retries' });
    expect(records.map((r) => r.task_id)).toEqual([id]);
    expect(records[0]!.attempt_history).toEqual([{ attempt: 1, outcome: 'lost', reason: expect.stringMatching(/^worker \d+ exited \(SIGKILL\)$/), ended_at: expect.any(Number) }]);
  }, 120_000);

  it('10 s of silently dropped traffic between agent and gateway', async () => {
    const proxy = await startBlackholeProxy(stack.gateway.port);
    try {
      // Credits to spare: the gateway sends the tasks submitted during the outage at once, into it.
      const endpoint = await endpointWithWork('blackholed', { heartbeat_s: 1, prefetch_tasks: 2000 });
      endpoint.setConnectionUrl(`ws://127.0.0.1:${proxy.port}/v3/endpoints/${endpoint.endpointId}/ws`);
      const agent = endpoint.start();
      await waitOnline(endpoint);
      const fn = await alice.registerFunction(WORK, { name: 'work' });
      const first = (await alice.submitBatch(endpoint.endpointId, fn, Array.from({ length: 800 }, (_, i) => [i]))).task_ids;
      await vi.waitFor(async () => expect(await successes(first), 'results flowing').toBeGreaterThanOrEqual(100), { timeout: 30_000, interval: 50 });
      const outage = proxy.blackhole(10_000);
      // Submitted to the gateway directly while the agent's link is silent: delivered into the void.
      const during = (await alice.submitBatch(endpoint.endpointId, fn, Array.from({ length: N - 800 }, (_, i) => [800 + i]))).task_ids;
      await outage;
      const docs = await expectNothingLost('10 s blackhole', [...first, ...during]);
      expect(proxy.droppedBytes()).toBeGreaterThan(0);
      expect(agent.output()).toMatch(/gateway connection silent; dropping it/);
      // The gateway re-sent what the outage swallowed once the agent was back: 2 deliveries.
      const resent = docs.slice(800).filter((d) => d.details.attempts >= 2).length;
      console.log(`blackhole: ${proxy.droppedBytes()} bytes dropped; ${resent} of ${N - 800} tasks sent during the outage were delivered again`);
      expect(resent).toBeGreaterThan(0);
    } finally {
      await proxy.close();
    }
  }, 240_000);

  it('SIGKILL of the gateway, started again on the same state', async () => {
    const endpoint = await endpointWithWork('gateway-crash');
    const agent = endpoint.start();
    await waitOnline(endpoint);
    const ids = await startBatch(endpoint, 'wf-gateway-crash');
    await vi.waitFor(async () => expect(await successes(ids), 'results flowing').toBeGreaterThanOrEqual(100), { timeout: 30_000, interval: 50 });
    const before = await successes(ids);
    // The gateway hangs, then its supervisor kills it: frozen (SIGSTOP), it reads nothing while the
    // agent keeps sending results; the SIGKILL lands once results wait unread in its sockets. Without
    // the freeze, the kill finds results on the wire only by chance (loopback delivers in µs).
    stack.freezeGateway();
    // Only this agent's connection counts: the agents of earlier tests still send a status frame
    // every second, and CI once killed on such bytes before this agent had sent a result unread.
    // More than 1 KiB is results: this agent's own status frames come one a second, ~200 bytes each.
    const pid = agent.child.pid!;
    await vi.waitFor(() => expect(unreadBytesOnPort(stack.gateway.port, pid), 'results unread by the frozen gateway').toBeGreaterThan(1024), { timeout: 30_000, interval: 20 });
    const unread = unreadBytesOnPort(stack.gateway.port, pid);
    await stack.restartGateway('SIGKILL');
    alice = await stack.client('alice');
    // Stored results survived the kill, and the agent found the new gateway by itself.
    expect(await successes(ids)).toBeGreaterThanOrEqual(before);
    await agent.waitForOutput(/connected to gateway[\s\S]*connected to gateway/, 60_000);
    const docs = await expectNothingLost('gateway SIGKILL', ids);
    // Results sent to the dying gateway and never acknowledged were sent again from the journal
    // after the reconnect: each still ran once and is stored once, and counts 2 attempts (deliveries).
    const resent = [...agent.output().matchAll(/re-sending unacknowledged results".*?"count":(\d+)/g)].map((m) => Number(m[1]));
    const twice = docs.filter((d) => d.details.attempts >= 2).length;
    console.log(`gateway SIGKILL: ${before} of ${N} had succeeded before the kill; ${unread} bytes unread in the gateway's sockets at the kill; ${resent.join(' + ') || 0} result(s) re-sent from the journal after the restart; ${twice} task(s) with 2+ attempts`);
    expect(resent.reduce((a, b) => a + b, 0)).toBeGreaterThan(0);
    expect(twice).toBeGreaterThan(0);
    // Lineage records built before the kill and not yet written died with the gateway's memory; the
    // outbox rows kept for them let the restarted gateway build them again: one record per task.
    const records = await alice.lineageRecords({ workflow_id: 'wf-gateway-crash', limit: 2 * N });
    expect(records.map((r) => r.task_id).sort()).toEqual([...ids].sort());
    expect(records.every((r) => r.status === 'success')).toBe(true);
  }, 240_000);

  it('scancel of a running block', async () => {
    cluster = await ensureSlurm();
    process.env.SLURM_CONF = cluster.env.SLURM_CONF;
    const endpoint = await endpointWithWork('scancelled', {
      provider: { type: 'slurm', init_blocks: 1, min_blocks: 0, max_blocks: 1, max_workers_per_node: 2, max_idletime_s: 60, exclusive: false, cpus_per_node: 1, walltime: '00:10:00' },
      strategy_period_s: 1,
    });
    endpoint.start();
    await waitOnline(endpoint);
    const ids = await startBatch(endpoint);
    await vi.waitFor(async () => expect(await successes(ids), 'results flowing').toBeGreaterThanOrEqual(100), { timeout: 60_000, interval: 50 });
    const jobs = execFileSync('squeue', ['-h', '-t', 'RUNNING', '-o', '%i %j'], { env: cluster.env, encoding: 'utf8' })
      .split('\n').filter((l) => l.includes('ferry-')).map((l) => l.split(' ')[0]!);
    expect(jobs).toHaveLength(1);
    execFileSync('scancel', [jobs[0]!], { env: cluster.env });
    const docs = await expectNothingLost('scancel', ids);
    expect(docs.some((d) => d.details.attempts >= 2)).toBe(true);
  }, 240_000);
});
