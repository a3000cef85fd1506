// The hub writes lineage records off the results path: an ended task's outbox row is kept (marked
// ended, with its payload) until an alarm, or a provenance query, writes its record in a batch:
// the records as one NDJSON segment in R2, the index (with each record's byte range) in SQLite.
// Nothing is lost: the record appears without any query, and the row leaves only with it.

import { env } from 'cloudflare:workers';
import { runDurableObjectAlarm, runInDurableObject } from 'cloudflare:test';
import { expect, it } from 'vitest';
import type { GatewayEnv } from '../../src/gateway/env';
import { FakeAgent, newUser, registerEndpoint, registerFunction, submit, success } from './helpers';

function hubStub(endpointId: string) {
  const ns = (env as unknown as GatewayEnv).ENDPOINT_HUB;
  return ns.get(ns.idFromName(endpointId));
}

async function rows(endpointId: string): Promise<{ ended: number; records: number }> {
  return runInDurableObject(hubStub(endpointId), async (_instance, state) => ({
    ended: state.storage.sql.exec<{ n: number }>('SELECT COUNT(*) AS n FROM outbox WHERE delivered = 2').one().n,
    records: state.storage.sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM lineage WHERE record_json = '' AND segment IS NOT NULL").one().n,
  }));
}

/** The endpoint's lineage segments in R2, each as its parsed NDJSON lines. */
async function segments(endpointId: string): Promise<Array<Array<{ task_id: string; status: string }>>> {
  const bucket = (env as unknown as GatewayEnv).OBJECTS;
  const listed = await bucket.list({ prefix: `lineage/${endpointId}/` });
  return Promise.all(listed.objects.map(async (o) => (await (await bucket.get(o.key))!.text()).trim().split('\n').map((l) => JSON.parse(l))));
}

it('writes the records of ended tasks from the alarm, then drops their outbox rows', async () => {
  const alice = await newUser('alice');
  const fn = await registerFunction(alice);
  const ep = await registerEndpoint(alice);
  const { task_ids } = await submit(alice, ep.endpoint_id, fn, [{ args: [1, 2] }, { args: [3, 4] }, { args: [5, 6] }], { workflow_id: 'wf-alarm' });
  const agent = await FakeAgent.ready(ep.endpoint_id, ep.token);
  agent.send({ type: 'credit', n: 3 });
  const tasks = await agent.tasks(3);
  agent.send({ type: 'results', results: tasks.slice(0, 2).map((t, i) => success(t.task_id, 3 + 4 * i)) });
  await agent.next('results_ack');
  expect((await alice.call('delete', `/v2/tasks/${task_ids[2]}`)).status).toBeLessThan(300);

  // Ended, not yet recorded: the results path only marked the rows.
  expect(await rows(ep.endpoint_id)).toEqual({ ended: 3, records: 0 });
  const stub = hubStub(ep.endpoint_id);
  expect(await runInDurableObject(stub, async (_i, state) => (await state.storage.getAlarm()) !== null)).toBe(true);
  expect(await runDurableObjectAlarm(stub)).toBe(true);
  expect(await rows(ep.endpoint_id)).toEqual({ ended: 0, records: 3 });
  // One segment holds the batch; the index points into it.
  const written = await segments(ep.endpoint_id);
  expect(written).toHaveLength(1);
  expect(written[0]!.map((r) => r.task_id).sort()).toEqual([...task_ids].sort());

  const listed = await alice.call('get', '/v3/provenance?workflow_id=wf-alarm');
  expect(listed.body.records.map((r: { status: string }) => r.status).sort()).toEqual(['cancelled', 'success', 'success']);
  // One record read by its byte range, and the same record as the segment holds it.
  const one = await alice.call('get', `/v3/provenance/tasks/${task_ids[0]}`);
  expect(one.status, one.text).toBe(200);
  expect(one.body.activity[`ferry:task/${task_ids[0]}`]['ferry:status']).toBe('success');
  expect(written[0]!.find((r) => r.task_id === task_ids[0])).toEqual(listed.body.records.find((r: { task_id: string }) => r.task_id === task_ids[0]));
  agent.close();
});

it('a query writes pending records before it answers (read your writes)', async () => {
  const alice = await newUser('alice');
  const fn = await registerFunction(alice);
  const ep = await registerEndpoint(alice);
  // A query with nothing pending first: the writer must still run for what ends later.
  expect((await alice.call('get', '/v3/provenance?workflow_id=wf-query&format=count')).body).toEqual({ count: 0 });
  await submit(alice, ep.endpoint_id, fn, [{ args: [1, 1] }], { workflow_id: 'wf-query' });
  const agent = await FakeAgent.ready(ep.endpoint_id, ep.token);
  agent.send({ type: 'credit', n: 1 });
  const [task] = await agent.tasks(1);
  agent.send({ type: 'results', results: [success(task.task_id, 2)] });
  await agent.next('results_ack');
  expect((await rows(ep.endpoint_id)).records).toBe(0);
  expect((await alice.call('get', '/v3/provenance?workflow_id=wf-query&format=count')).body).toEqual({ count: 1 });
  expect(await rows(ep.endpoint_id)).toEqual({ ended: 0, records: 1 });
  agent.close();
});
