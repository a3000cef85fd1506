// Issue 6, acceptance 2: every task of a 10,000-task batch gets a lineage record, failures and
// cancels included. Real parts only (gateway in workerd, `ferry endpoint start`, managers, workers):
// the batch is submitted under one workflow while its endpoint is offline, a hundred tasks are
// cancelled before it connects, the function throws for some inputs, and once everything has
// ended the provenance routes answer exactly one record per task, with the status the task has.

import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { Client } from '../../src/sdk/client';
import { provJsonSchemaErrors } from '../helpers/prov-json';
import { startStack, type Stack } from '../helpers/stack';

const TOTAL = 10_000;
const WORKFLOW = 'wf-lineage-10k';
const throws = (x: number) => x % 97 === 13;
const cancelled = (x: number) => x % 100 === 50;

interface Record {
  task_id: string;
  status: string;
  workflow_id: string | null;
  campaign_id: string | null;
  task_group_id: string | null;
  hostname: string | null;
  transitions: { [state: string]: number };
  telemetry?: { wall_time_s?: number; cpu_time_s?: number; peak_memory_bytes?: number } | null;
  reported_by?: string;
}

let stack: Stack;
let alice: Client;
let token: string;

async function get(path: string): Promise<{ status: number; text: string; body: any }> {
  const res = await fetch(stack.gateway.url + path, { headers: { authorization: `Bearer ${token}` } });
  const text = await res.text();
  return { status: res.status, text, body: text ? JSON.parse(text) : undefined };
}

function countBy<T>(items: readonly T[], key: (item: T) => string): { [k: string]: number } {
  const out: { [k: string]: number } = {};
  for (const item of items) out[key(item)] = (out[key(item)] ?? 0) + 1;
  return out;
}

beforeAll(async () => {
  stack = await startStack();
  alice = await stack.client('alice');
  token = await stack.tokenFor('alice');
}, 120_000);

afterAll(async () => {
  await stack?.stop();
});

describe('lineage of a 10,000-task batch', () => {
  it('has one record per task, successes, failures and cancels alike', async () => {
    const started = Date.now();
    const endpoint = await stack.createEndpoint('lineage-10k', 'alice', { task_timeout_s: 10, task_memory_mb: 64 });
    const fn = await alice.registerFunction(`(x) => { if (x % 97 === 13) throw new RangeError('bad input ' + x); return x * 2 }`, { name: 'double-or-throw' });
    const inputs = Array.from({ length: TOTAL }, (_, i) => i);
    const { task_ids, task_group_id } = await alice.submitBatch(endpoint.endpointId, fn, inputs.map((x) => [x]), { workflow_id: WORKFLOW, campaign_id: 'camp-10k' });
    expect(task_ids).toHaveLength(TOTAL);

    // Cancelled while the endpoint is offline: they never run.
    const toCancel = inputs.filter(cancelled).map((x) => task_ids[x]!);
    for (let i = 0; i < toCancel.length; i += 20) {
      const docs = await Promise.all(toCancel.slice(i, i + 20).map((id) => alice.cancel(id)));
      expect(docs.every((d) => d.status === 'cancelled')).toBe(true);
    }

    endpoint.start();
    const docs = await alice.waitAll(task_ids, { timeout: 180 });
    const ran = Date.now();
    const expected = (x: number) => (cancelled(x) ? 'cancelled' : throws(x) ? 'failed' : 'success');
    expect(docs.map((d) => d.status)).toEqual(inputs.map(expected));
    const statusCounts = countBy(docs, (d) => d.status);
    expect(statusCounts).toEqual({ cancelled: 100, failed: inputs.filter((x) => throws(x) && !cancelled(x)).length, success: inputs.filter((x) => !throws(x) && !cancelled(x)).length });
    expect(statusCounts.failed).toBeGreaterThan(100);

    // The records, through the workflow query: exactly one per task.
    const records = await vi.waitFor(async () => {
      const res = await get(`/v3/provenance?workflow_id=${WORKFLOW}&limit=${TOTAL}`);
      expect(res.status, res.text.slice(0, 500)).toBe(200);
      expect(res.body.records.length, `${TOTAL} records of ${WORKFLOW}`).toBeGreaterThanOrEqual(TOTAL);
      return res.body.records as Record[];
    }, { timeout: 60_000, interval: 500 });
    expect(records).toHaveLength(TOTAL);
    expect((await get(`/v3/provenance?workflow_id=${WORKFLOW}&format=count`)).body).toEqual({ count: TOTAL });
    const byTask = new Map(records.map((r) => [r.task_id, r]));
    expect(byTask.size).toBe(TOTAL);
    expect([...byTask.keys()].sort()).toEqual([...task_ids].sort());
    expect(countBy(records, (r) => r.status)).toEqual(statusCounts);
    task_ids.forEach((id, x) => {
      const r = byTask.get(id)!;
      expect(r.status, id).toBe(expected(x));
      expect(r.workflow_id).toBe(WORKFLOW);
      expect(r.campaign_id).toBe('camp-10k');
      expect(r.task_group_id).toBe(task_group_id);
      expect(r.transitions[r.status], `${id} has the time it became ${r.status}`).toBeGreaterThan(0);
      // A cancelled task never reached a worker; the others name the host they ran on.
      // Its record built by the gateway from the store; the others' from the facts their endpoint sent with the results.
      if (r.status === 'cancelled') {
        expect(r.hostname).toBeNull();
        expect(r.reported_by).toBeUndefined();
      } else {
        // With the Redis store the hub reads states without the tasks' facts: it builds every record from the store.
        expect(r.reported_by, id).toBe(process.env.FERRY_TEST_TASK_STORE === 'redis' ? undefined : 'endpoint');
        expect(r.hostname, id).toEqual(expect.any(String));
        // Worker telemetry: wall and CPU time of the run, the worker process's peak memory.
        expect(r.telemetry, id).toMatchObject({ wall_time_s: expect.any(Number), cpu_time_s: expect.any(Number), peak_memory_bytes: expect.any(Number) });
        expect(r.telemetry!.peak_memory_bytes!).toBeGreaterThan(1024 * 1024);
      }
    });

    // The same workflow as one PROV-JSON bundle: one activity per task, with its status.
    const bundle = await get(`/v3/provenance?workflow_id=${WORKFLOW}&limit=${TOTAL}&format=prov-json`);
    expect(bundle.status, bundle.text.slice(0, 500)).toBe(200);
    const activities = Object.values(bundle.body.activity) as Array<{ [k: string]: unknown }>;
    expect(activities).toHaveLength(TOTAL);
    expect(countBy(activities, (a) => String(a['ferry:status']))).toEqual(statusCounts);
    expect(provJsonSchemaErrors(bundle.body)).toEqual([]);
    console.log(`lineage 10k: ran in ${((ran - started) / 1000).toFixed(1)} s, records and bundle (${(bundle.text.length / 1e6).toFixed(1)} MB) checked in ${((Date.now() - ran) / 1000).toFixed(1)} s`);
  }, 300_000);
});
