// The hub writes lineage records off the results path. A frame of results whose endpoint sent each
// result's lineage facts has its tasks' records built in its own transaction and appended to a
// pending row; any other ended task (a cancel, an older agent's result) keeps its outbox row, marked
// ended, with its payload, and its record is built from the store when written. A full batch of
// 1,000 is written as soon as it waits; an alarm, or a provenance query, writes the rest. All go in
// batches: the records as NDJSON segments in R2, the index (each record's byte range) in SQLite.
// Nothing is lost: the record appears without any query, and the rows leave only with it.

import { env } from 'cloudflare:workers';
import { runDurableObjectAlarm, runInDurableObject } from 'cloudflare:test';
import { expect, it } from 'vitest';
import type { GatewayEnv } from '../env';
import { sha256Hex, withDigests } from './lineage-capture';
import type { AlarmScheduler } from '../endpoint-hub/alarm-scheduler';
import type { HubLineage } from './hub-lineage';
import { LineagePending } from './lineage-pending';
import { parseSegment, segmentText } from './lineage-segments';
import { FakeAgent, newUser, registerEndpoint, registerFunction, submit, success } from '../../../test/helpers/gateway';

function hubStub(endpointId: string) {
  const ns = (env as unknown as GatewayEnv).ENDPOINT_HUB;
  return ns.get(ns.idFromName(endpointId));
}

async function rows(endpointId: string): Promise<{ ended: number; pending: number; records: number }> {
  return runInDurableObject(hubStub(endpointId), async (_instance, state) => ({
    ended: state.storage.sql.exec<{ n: number }>('SELECT COUNT(*) AS n FROM outbox WHERE delivered = 2').one().n,
    pending: state.storage.sql.exec<{ n: number }>('SELECT COALESCE(SUM(records), 0) AS n FROM lineage_pending').one().n,
    records: state.storage.sql.exec<{ n: number }>('SELECT COUNT(*) AS n FROM lineage_tasks').one().n,
  }));
}

/** Makes the hub's lineage duty due an hour ahead: no alarm writes records before the test looks. */
async function holdLineageAlarm(stub: ReturnType<typeof hubStub>): Promise<void> {
  await runInDurableObject(stub, async (instance) => (instance as unknown as { alarms: AlarmScheduler<'lineage'> }).alarms.schedule('lineage', Date.now() + 3_600_000));
}

/** The endpoint's lineage segments in R2 (gzip-compressed NDJSON), each as its records. */
async function segments(endpointId: string) {
  const bucket = (env as unknown as GatewayEnv).OBJECTS;
  const listed = await bucket.list({ prefix: `lineage/${endpointId}/` });
  return Promise.all(listed.objects.map(async (o) => parseSegment(await segmentText(o.key, new Uint8Array(await (await bucket.get(o.key))!.arrayBuffer())))));
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

  // Ended, not yet written: the results' two records wait in a pending row; the cancelled task's outbox row is marked.
  expect(await rows(ep.endpoint_id)).toEqual({ ended: 1, pending: 2, records: 0 });
  const stub = hubStub(ep.endpoint_id);
  // The alarm waits 5 s from the first ended task (fewer than a full segment wait): a quiet endpoint writes few objects.
  const alarmIn = await runInDurableObject(stub, async (_i, state) => ((await state.storage.getAlarm()) ?? 0) - Date.now());
  expect(alarmIn).toBeGreaterThan(1_000);
  expect(alarmIn).toBeLessThanOrEqual(5_000);
  expect(await runDurableObjectAlarm(stub)).toBe(true);
  expect(await rows(ep.endpoint_id)).toEqual({ ended: 0, pending: 0, records: 3 });
  // The cancelled task's record built from the store, the results' as they were built with them: a segment each.
  const written = await segments(ep.endpoint_id);
  expect(written.map((s) => s.map((r) => r.task_id)).sort((a, b) => a.length - b.length)).toEqual([task_ids.slice(2), task_ids.slice(0, 2)]);
  expect(written.flat().map((r) => r.status).sort()).toEqual(['cancelled', 'success', 'success']);

  const listed = await alice.call('get', '/v3/provenance?workflow_id=wf-alarm');
  expect(listed.body.records.map((r: { status: string }) => r.status).sort()).toEqual(['cancelled', 'success', 'success']);
  // One record read by its byte range, and the same record as the segment holds it.
  const one = await alice.call('get', `/v3/provenance/tasks/${task_ids[0]}`);
  expect(one.status, one.text).toBe(200);
  expect(one.body.activity[`ferry:task/${task_ids[0]}`]['ferry:status']).toBe('success');
  // Small inline values are stored verbatim, without a digest; records read back carry both.
  const stored = written.flat().find((r) => r.task_id === task_ids[0])!;
  expect(stored.used).toEqual([{ role: 'args.0', value: '1' }, { role: 'args.1', value: '2' }]);
  expect(stored.generated).toEqual([{ role: 'result', value: '3' }]);
  const served = listed.body.records.find((r: { task_id: string }) => r.task_id === task_ids[0]);
  expect(served.used).toEqual([{ role: 'args.0', value: '1', digest: await sha256Hex('1') }, { role: 'args.1', value: '2', digest: await sha256Hex('2') }]);
  expect(served).toEqual(await withDigests([stored]).then((r) => r[0]));
  agent.close();
});

it('keeps the ended rows and their built records when their segment cannot be written, and writes them on the next alarm', async () => {
  const alice = await newUser('alice');
  const fn = await registerFunction(alice);
  const ep = await registerEndpoint(alice);
  const { task_ids } = await submit(alice, ep.endpoint_id, fn, [{ args: [1] }, { args: [2] }], { workflow_id: 'wf-retry' });
  const agent = await FakeAgent.ready(ep.endpoint_id, ep.token);
  agent.send({ type: 'credit', n: 2 });
  await agent.tasks(2);
  agent.send({ type: 'results', results: task_ids.map((id, i) => success(id, i)) });
  await agent.next('results_ack');
  const stub = hubStub(ep.endpoint_id);
  // The object store refuses every write for one run of the alarm; the hub's own alarm is cleared
  // first, so nothing writes the records before the test looks.
  const failedAlarm = await runInDurableObject(stub, async (instance, state) => {
    await state.storage.deleteAlarm();
    const hub = instance as unknown as { env: GatewayEnv; alarm(): Promise<void> };
    const bucket = hub.env.OBJECTS;
    hub.env = { ...hub.env, OBJECTS: Object.assign(Object.create(bucket), { put: () => Promise.reject(new Error('R2 unavailable')) }) };
    try {
      await hub.alarm();
      return 'written';
    } catch (err) {
      return (err as Error).message;
    } finally {
      hub.env = { ...hub.env, OBJECTS: bucket };
    }
  });
  expect(failedAlarm).toBe('R2 unavailable');
  expect(await rows(ep.endpoint_id)).toEqual({ ended: 0, pending: 2, records: 0 });
  expect(await segments(ep.endpoint_id)).toEqual([]);
  await runInDurableObject(stub, async (instance) => (instance as unknown as { alarm(): Promise<void> }).alarm());
  expect(await rows(ep.endpoint_id)).toEqual({ ended: 0, pending: 0, records: 2 });
  expect((await alice.call('get', '/v3/provenance?workflow_id=wf-retry')).body.records.map((r: { task_id: string }) => r.task_id)).toEqual(task_ids);
  agent.close();
});

it('names what a task used and generated the same from an older agent\'s result (no facts) as from the endpoint\'s facts, which the record says it reports', async () => {
  const alice = await newUser('alice');
  const fn = await registerFunction(alice);
  const ep = await registerEndpoint(alice);
  // Values long enough to be named by digest, a data reference inside one, and a short one kept verbatim.
  const ref = 'ab'.repeat(32);
  const payload = { args: ['x'.repeat(100), { data: { $ref: ref }, note: 'y'.repeat(80) }], kwargs: { small: 7 } };
  const { task_ids } = await submit(alice, ep.endpoint_id, fn, [payload, payload], { workflow_id: 'wf-facts' });
  const agent = await FakeAgent.ready(ep.endpoint_id, ep.token);
  agent.send({ type: 'credit', n: 2 });
  await agent.tasks(2);
  const result = { values: 'z'.repeat(90), from: { $ref: ref } };
  agent.send({ type: 'results', results: [success(task_ids[0]!, result)] });
  await agent.next('results_ack');
  agent.reportsLineage = false;
  agent.send({ type: 'results', results: [success(task_ids[1]!, result)] });
  await agent.next('results_ack');
  expect(await rows(ep.endpoint_id)).toEqual({ ended: 1, pending: 1, records: 0 });

  const records = (await alice.call('get', '/v3/provenance?workflow_id=wf-facts')).body.records as Array<Record<string, unknown>>;
  const [reported, named] = task_ids.map((id) => records.find((r) => r.task_id === id)!);
  expect(reported!.reported_by).toBe('endpoint');
  expect(named!.reported_by).toBeUndefined();
  for (const key of ['used', 'generated', 'hostname', 'telemetry', 'attempts', 'status', 'function_uuid', 'workflow_id', 'owner']) expect(reported![key], key).toEqual(named![key]);
  expect(reported!.used).toContainEqual({ role: 'args.0', digest: await sha256Hex(JSON.stringify(payload.args[0])) });
  expect(reported!.used).toContainEqual({ role: 'args.1', object: ref });
  expect(reported!.generated).toContainEqual({ role: 'result', digest: await sha256Hex(JSON.stringify(result)) });
  // PROV-JSON names the endpoint as the one that reported the record built from its facts.
  const reportedBy = async (id: string) => (await alice.call('get', `/v3/provenance/tasks/${id}`)).body.activity[`ferry:task/${id}`]['ferry:reportedBy'];
  expect(await reportedBy(task_ids[0]!)).toEqual({ $: `ferry:endpoint/${ep.endpoint_id}`, type: 'prov:QUALIFIED_NAME' });
  expect(await reportedBy(task_ids[1]!)).toBeUndefined();
  agent.close();
});

it('takes pending rows a batch at a time, saying whether more wait, and an alarm writes them all', async () => {
  const alice = await newUser('alice');
  const fn = await registerFunction(alice);
  const ep = await registerEndpoint(alice);
  const { task_ids } = await submit(alice, ep.endpoint_id, fn, Array.from({ length: 1500 }, (_, i) => ({ args: [i] })), { workflow_id: 'wf-many' });
  // Rows of 400, 400, 400 and 300 records, which no batch of 1,000 fills exactly.
  const batches = await runInDurableObject(hubStub(ep.endpoint_id), async (_i, state) => {
    const pending = new LineagePending(state.storage.sql);
    pending.createSchema();
    const record = (task_id: string) => ({ task_id, source: 'ferry' as const, owner: 'o', endpoint_id: ep.endpoint_id, function_uuid: fn, activity_id: null, workflow_id: 'w', campaign_id: null, task_group_id: null, status: 'success', attempts: 1, transitions: {}, started_at: null, ended_at: null, hostname: null, used: [], generated: [] });
    for (let start = 0; start < 1500; start += 400) pending.append(task_ids.slice(start, start + 400).map(record));
    const taken: Array<{ records: number; lines: number; more: boolean }> = [];
    for (let batch = pending.take(1000); batch !== null; batch = pending.take(1000)) {
      taken.push({ records: batch.ids.length, lines: batch.text.split('\n').length - 1, more: batch.more });
      pending.remove(batch);
    }
    return taken;
  });
  expect(batches).toEqual([{ records: 1200, lines: 1200, more: true }, { records: 300, lines: 300, more: false }]);

  const agent = await FakeAgent.ready(ep.endpoint_id, ep.token);
  agent.send({ type: 'credit', n: 1500 });
  await agent.tasks(1500);
  for (let start = 0; start < 1500; start += 400) {
    agent.send({ type: 'results', results: task_ids.slice(start, start + 400).map((id, i) => success(id, start + i)) });
    await agent.next('results_ack');
  }
  // One run of the alarm (its own may have run meanwhile) leaves nothing pending.
  await runInDurableObject(hubStub(ep.endpoint_id), async (instance) => (instance as unknown as { alarm(): Promise<void> }).alarm());
  expect(await rows(ep.endpoint_id)).toEqual({ ended: 0, pending: 0, records: 1500 });
  agent.close();
});

it('writes a full segment of 1,000 records as soon as one waits, leaving fewer for the alarm or a query', async () => {
  const alice = await newUser('alice');
  const fn = await registerFunction(alice);
  const ep = await registerEndpoint(alice);
  const { task_ids } = await submit(alice, ep.endpoint_id, fn, Array.from({ length: 1250 }, (_, i) => ({ args: [i] })), { workflow_id: 'wf-full' });
  const stub = hubStub(ep.endpoint_id);
  // Only a full segment is written before a query.
  await holdLineageAlarm(stub);
  const agent = await FakeAgent.ready(ep.endpoint_id, ep.token);
  agent.send({ type: 'credit', n: 1250 });
  await agent.tasks(1250);
  for (let start = 0; start < 1250; start += 500) {
    agent.send({ type: 'results', results: task_ids.slice(start, start + 500).map((id, i) => success(id, start + i)) });
    await agent.next('results_ack');
    // Under 1,000 waiting: nothing written yet.
    if (start === 0) expect(await rows(ep.endpoint_id)).toEqual({ ended: 0, pending: 500, records: 0 });
  }
  // The frame that made 1,000 or more wait started the write after its acknowledgement.
  await runInDurableObject(stub, async (instance) => (instance as unknown as { lineageRecords: HubLineage }).lineageRecords.flushing());
  expect(await rows(ep.endpoint_id)).toEqual({ ended: 0, pending: 250, records: 1000 });
  expect((await segments(ep.endpoint_id)).map((s) => s.map((r) => r.task_id))).toEqual([task_ids.slice(0, 1000)]);
  // A query writes the rest first.
  expect((await alice.call('get', '/v3/provenance?workflow_id=wf-full&format=count')).body.count).toBe(1250);
  expect(await rows(ep.endpoint_id)).toEqual({ ended: 0, pending: 0, records: 1250 });
  expect((await segments(ep.endpoint_id)).map((s) => s.length).sort((a, b) => a - b)).toEqual([250, 1000]);
  agent.close();
});

it('counts in the record every attempt the task doc counts, a second result in the same frame included', async () => {
  const alice = await newUser('alice');
  const fn = await registerFunction(alice);
  const ep = await registerEndpoint(alice);
  const { task_ids } = await submit(alice, ep.endpoint_id, fn, [{ args: [1] }, { args: [2] }], { workflow_id: 'wf-dup' });
  const agent = await FakeAgent.ready(ep.endpoint_id, ep.token);
  agent.send({ type: 'credit', n: 2 });
  await agent.tasks(2);
  // The first task's result twice in one frame (an agent re-sending after a lost link), the second's once.
  agent.send({ type: 'results', results: [success(task_ids[0]!, 2), success(task_ids[0]!, 2), success(task_ids[1]!, 3)] });
  await agent.next('results_ack');
  const records = (await alice.call('get', '/v3/provenance?workflow_id=wf-dup')).body.records as Array<{ task_id: string; attempts: number }>;
  for (const id of task_ids) {
    const doc = (await alice.call('get', `/v2/tasks/${id}`)).body;
    expect(records.find((r) => r.task_id === id)!.attempts, id).toBe(doc.details.attempts);
  }
  expect(records.find((r) => r.task_id === task_ids[0])!.attempts).toBe(2);
  agent.close();
});

it('counts in a pending record the attempt of its result sent again in a later frame', async () => {
  const alice = await newUser('alice');
  const fn = await registerFunction(alice);
  const ep = await registerEndpoint(alice);
  const { task_ids } = await submit(alice, ep.endpoint_id, fn, [{ args: [1] }, { args: [2] }], { workflow_id: 'wf-resent' });
  await holdLineageAlarm(hubStub(ep.endpoint_id));
  const agent = await FakeAgent.ready(ep.endpoint_id, ep.token);
  agent.send({ type: 'credit', n: 2 });
  await agent.tasks(2);
  agent.send({ type: 'results', results: task_ids.map((id, i) => success(id, i + 2)) });
  await agent.next('results_ack');
  // The first task's result again, as an agent sends it after a lost link, while its record waits.
  agent.send({ type: 'results', results: [{ ...success(task_ids[0]!, 2), delivery: 2 }] });
  await agent.next('results_ack');
  expect(await rows(ep.endpoint_id)).toEqual({ ended: 0, pending: 2, records: 0 });
  const records = (await alice.call('get', '/v3/provenance?workflow_id=wf-resent')).body.records as Array<{ task_id: string; attempts: number }>;
  for (const id of task_ids) {
    const doc = (await alice.call('get', `/v2/tasks/${id}`)).body;
    expect(records.find((r) => r.task_id === id)!.attempts, id).toBe(doc.details.attempts);
  }
  expect(records.find((r) => r.task_id === task_ids[0])!.attempts).toBe(2);
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
  expect(await rows(ep.endpoint_id)).toEqual({ ended: 0, pending: 0, records: 1 });
  agent.close();
});

/** Ends every task in `tasks` with a success, then runs the hub's alarm: one segment per call. */
async function endAndFlush(agent: FakeAgent, endpointId: string, taskIds: string[]): Promise<void> {
  agent.send({ type: 'results', results: taskIds.map((id, i) => success(id, i)) });
  await agent.next('results_ack');
  expect(await runDurableObjectAlarm(hubStub(endpointId))).toBe(true);
}

it('reads a workflow across segments in order, up to the limit, and counts per workflow and campaign', async () => {
  const alice = await newUser('alice');
  const fn = await registerFunction(alice);
  const ep = await registerEndpoint(alice);
  const first = (await submit(alice, ep.endpoint_id, fn, [{ args: [1] }, { args: [2] }, { args: [3] }], { workflow_id: 'wf-seg', campaign_id: 'c1' })).task_ids;
  const other = (await submit(alice, ep.endpoint_id, fn, [{ args: [4] }], { workflow_id: 'wf-other', campaign_id: 'c1' })).task_ids;
  const second = (await submit(alice, ep.endpoint_id, fn, [{ args: [5] }, { args: [6] }], { workflow_id: 'wf-seg' })).task_ids;
  const agent = await FakeAgent.ready(ep.endpoint_id, ep.token);
  agent.send({ type: 'credit', n: 6 });
  await agent.tasks(6);
  await endAndFlush(agent, ep.endpoint_id, first);
  await endAndFlush(agent, ep.endpoint_id, [...other, ...second]);
  expect((await segments(ep.endpoint_id)).map((s) => s.length)).toEqual([3, 3]);

  const count = async (query: string) => (await alice.call('get', `/v3/provenance?${query}&format=count`)).body.count;
  expect(await count('workflow_id=wf-seg')).toBe(5);
  expect(await count('workflow_id=wf-other')).toBe(1);
  expect(await count('campaign_id=c1')).toBe(4);
  expect(await count('workflow_id=wf-seg&campaign_id=c1')).toBe(3);
  const page = await alice.call('get', '/v3/provenance?workflow_id=wf-seg&limit=4');
  expect(page.body.records.map((r: { task_id: string }) => r.task_id)).toEqual([...first, second[0]]);
  const all = await alice.call('get', '/v3/provenance?workflow_id=wf-seg');
  expect(all.body.records.map((r: { task_id: string }) => r.task_id)).toEqual([...first, ...second]);
  // Another user's view of the same workflow: nothing.
  const bob = await newUser('bob');
  expect(await (async () => (await bob.call('get', '/v3/provenance?workflow_id=wf-seg&format=count')).body.count)()).toBe(0);
  expect((await bob.call('get', `/v3/provenance/tasks/${second[1]}`)).status).toBe(404);
  agent.close();
});

it('keeps records indexed the older way (a row per record in `lineage`) readable beside new ones', async () => {
  const alice = await newUser('alice');
  const fn = await registerFunction(alice);
  const ep = await registerEndpoint(alice);
  const [newer] = (await submit(alice, ep.endpoint_id, fn, [{ args: [1] }], { workflow_id: 'wf-mixed' })).task_ids;
  const agent = await FakeAgent.ready(ep.endpoint_id, ep.token);
  agent.send({ type: 'credit', n: 1 });
  await agent.tasks(1);
  await endAndFlush(agent, ep.endpoint_id, [newer!]);
  // A record a hub wrote before lineage_tasks existed: its own segment and a pointer row in `lineage`.
  const older = `${ep.endpoint_id}.olderrecordabcdefgh`;
  await runInDurableObject(hubStub(ep.endpoint_id), async (_i, state) => {
    const owner = state.storage.sql.exec<{ owner: string }>('SELECT owner FROM lineage_workflows').one().owner;
    const record = { task_id: older, source: 'ferry', owner, endpoint_id: ep.endpoint_id, function_uuid: fn, activity_id: null, workflow_id: 'wf-mixed', campaign_id: null, task_group_id: null, status: 'success', attempts: 1, transitions: {}, started_at: null, ended_at: null, hostname: null, used: [], generated: [], telemetry: null };
    const line = JSON.stringify(record) + '\n';
    const key = `lineage/${ep.endpoint_id}/000000000000.ndjson`;
    await (env as unknown as GatewayEnv).OBJECTS.put(key, line);
    state.storage.sql.exec("INSERT INTO lineage (task_id, owner, workflow_id, campaign_id, record_json, segment, seg_offset, seg_length) VALUES (?, ?, 'wf-mixed', NULL, '', ?, 0, ?)", older, owner, key, new TextEncoder().encode(line).byteLength);
  });
  expect((await alice.call('get', '/v3/provenance?workflow_id=wf-mixed&format=count')).body.count).toBe(2);
  const listed = await alice.call('get', '/v3/provenance?workflow_id=wf-mixed');
  expect(listed.body.records.map((r: { task_id: string }) => r.task_id)).toEqual([older, newer]);
  const one = await alice.call('get', `/v3/provenance/tasks/${older}`);
  expect(one.status, one.text).toBe(200);
  agent.close();
});

it('stores an inline value over 64 characters of JSON by its digest alone', async () => {
  const alice = await newUser('alice');
  const fn = await registerFunction(alice);
  const ep = await registerEndpoint(alice);
  const long = 'x'.repeat(100);
  const { task_ids } = await submit(alice, ep.endpoint_id, fn, [{ args: [long, 'short'] }], { workflow_id: 'wf-long' });
  const agent = await FakeAgent.ready(ep.endpoint_id, ep.token);
  agent.send({ type: 'credit', n: 1 });
  await agent.tasks(1);
  agent.send({ type: 'results', results: [success(task_ids[0]!, long + long)] });
  await agent.next('results_ack');
  expect(await runDurableObjectAlarm(hubStub(ep.endpoint_id))).toBe(true);
  const [stored] = (await segments(ep.endpoint_id))[0]!;
  expect(stored!.used).toEqual([{ role: 'args.0', digest: await sha256Hex(JSON.stringify(long)) }, { role: 'args.1', value: '"short"' }]);
  expect(stored!.generated).toEqual([{ role: 'result', digest: await sha256Hex(JSON.stringify(long + long)) }]);
  agent.close();
});

it('records every execution of a task that ran more than once: the lost ones with why, then the last', async () => {
  const alice = await newUser('alice');
  const fn = await registerFunction(alice);
  const ep = await registerEndpoint(alice);
  const { task_ids } = await submit(alice, ep.endpoint_id, fn, [{ args: [1] }, { args: [2] }], { workflow_id: 'wf-attempts' });
  const agent = await FakeAgent.ready(ep.endpoint_id, ep.token);
  agent.send({ type: 'credit', n: 2 });
  await agent.tasks(2);
  const lost_attempts = [
    { attempt: 1, lost_at: 1_790_000_001, reason: 'worker 41 exited (SIGKILL)' },
    { attempt: 2, lost_at: 1_790_000_002, reason: 'manager m-1 lost' },
  ];
  const rerun = { ...success(task_ids[0]!, 3), execution: { attempt: 3, started_at: 1_790_000_003, ended_at: 1_790_000_004, host: 'node-7', worker_pid: 9 }, lost_attempts };
  agent.send({ type: 'results', results: [rerun, success(task_ids[1]!, 4)] });
  await agent.next('results_ack');
  const records = (await alice.call('get', '/v3/provenance?workflow_id=wf-attempts')).body.records;
  expect(records[0].attempts).toBe(3);
  expect(records[0].attempt_history).toEqual([
    { attempt: 1, outcome: 'lost', reason: 'worker 41 exited (SIGKILL)', ended_at: 1_790_000_001 },
    { attempt: 2, outcome: 'lost', reason: 'manager m-1 lost', ended_at: 1_790_000_002 },
    { attempt: 3, outcome: 'success', host: 'node-7', started_at: 1_790_000_003, ended_at: 1_790_000_004 },
  ]);
  // A task that ran once: its record's own host and times say it all.
  expect(records[1]).not.toHaveProperty('attempt_history');
  const doc = (await alice.call('get', `/v3/provenance/tasks/${task_ids[0]}`)).body;
  const attempts = Object.entries(doc.activity).filter(([, a]) => (a as Record<string, { $: string }>)['prov:type']?.$ === 'ferry:Attempt');
  expect(attempts.map(([id]) => id.split('/').pop())).toEqual(['1', '2', '3']);
  expect(attempts[0]![1]).toMatchObject({ 'ferry:outcome': 'lost', 'ferry:reason': 'worker 41 exited (SIGKILL)', 'ferry:attempt_of': { $: `ferry:task/${task_ids[0]}`, type: 'prov:QUALIFIED_NAME' } });
  agent.close();
});

it("keeps a deleted endpoint's lineage in workflow, count and object queries", async () => {
  const alice = await newUser('alice');
  const fn = await registerFunction(alice);
  const ep = await registerEndpoint(alice, { endpoint_name: 'ep-gone' });
  const { task_ids } = await submit(alice, ep.endpoint_id, fn, [{ args: [1] }], { workflow_id: 'wf-gone' });
  const agent = await FakeAgent.ready(ep.endpoint_id, ep.token);
  agent.send({ type: 'credit', n: 1 });
  await agent.tasks(1);
  await endAndFlush(agent, ep.endpoint_id, task_ids);
  agent.close();
  expect((await alice.call('delete', `/v2/endpoints/${ep.endpoint_id}`)).status).toBeLessThan(300);
  const listed = (await alice.call('get', '/v2/endpoints')).body.map((e: { endpoint_id: string }) => e.endpoint_id);
  expect(listed.every((id: unknown) => typeof id === 'string')).toBe(true);
  expect(listed).not.toContain(ep.endpoint_id);
  // Gone from the list of endpoints; its tasks' lineage is not.
  expect((await alice.call('get', '/v3/provenance?workflow_id=wf-gone&format=count')).body.count).toBe(1);
  expect((await alice.call('get', '/v3/provenance?workflow_id=wf-gone')).body.records.map((r: { task_id: string }) => r.task_id)).toEqual(task_ids);
  expect((await alice.call('get', `/v3/provenance/tasks/${task_ids[0]}`)).status).toBe(200);
  // A new endpoint under the same name adds its own lineage beside.
  const again = await registerEndpoint(alice, { endpoint_name: 'ep-gone' });
  expect(again.endpoint_id).not.toBe(ep.endpoint_id);
  expect((await alice.call('get', '/v3/provenance?workflow_id=wf-gone&format=count')).body.count).toBe(1);
});

it('stores ingested events as segments in the object store; an event sent again replaces its record', async () => {
  const alice = await newUser('alice');
  const events = (status: string) => ({
    messages: [
      { task_id: 'ext-a', workflow_id: 'wf-ev', used: { table: { $ref: 'f'.repeat(64) } }, generated: { n: 3 }, status, hostname: 'laptop' },
      { task_id: 'ext-b', workflow_id: 'wf-ev', status: 'FINISHED' },
    ],
  });
  expect((await alice.call('post', '/v3/provenance/events', events('RUNNING'))).body).toEqual({ accepted: 2 });
  expect((await alice.call('post', '/v3/provenance/events', events('FINISHED'))).body).toEqual({ accepted: 2 });
  const bucket = (env as unknown as GatewayEnv).OBJECTS;
  const listed = (await bucket.list({ prefix: 'lineage/events/' })).objects.filter((o) => o.key.includes(encodeURIComponent(alice.sub)));
  expect(listed).toHaveLength(2);
  const stored = await Promise.all(listed.map(async (o) => parseSegment(await segmentText(o.key, new Uint8Array(await (await bucket.get(o.key))!.arrayBuffer())))));
  expect(stored.map((records) => records.map((r) => r.task_id))).toEqual([['ext-a', 'ext-b'], ['ext-a', 'ext-b']]);

  expect((await alice.call('get', '/v3/provenance?workflow_id=wf-ev&format=count')).body.count).toBe(2);
  const records = (await alice.call('get', '/v3/provenance?workflow_id=wf-ev')).body.records;
  expect(records.map((r: { task_id: string; status: string }) => [r.task_id, r.status])).toEqual([['ext-a', 'FINISHED'], ['ext-b', 'FINISHED']]);
  const users = (await alice.call('get', `/v3/provenance/objects/${'f'.repeat(64)}?direction=down&depth=1`)).body.steps;
  expect(users.map((s: { record: { task_id: string } }) => s.record.task_id)).toEqual(['ext-a']);
});
