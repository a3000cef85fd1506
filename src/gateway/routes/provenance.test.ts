// Provenance: every ended task (success, failure, cancel) gets a PROV record written with its
// outcome; workflows, endpoints and ingested task messages join one graph by data object id.

import { describe, expect, it } from 'vitest';
import { exports } from 'cloudflare:workers';
import { ADD, BASE, FakeAgent, newUser, registerEndpoint, registerFunction, submit, success, type User } from '../../../test/helpers/gateway';

const qname = (name: string) => ({ $: name, type: 'prov:QUALIFIED_NAME' });

async function sha256Hex(data: string | Uint8Array): Promise<string> {
  const bytes = typeof data === 'string' ? new TextEncoder().encode(data) : data;
  return Array.from(new Uint8Array(await crypto.subtle.digest('SHA-256', bytes)), (b) => b.toString(16).padStart(2, '0')).join('');
}

function hex(): string {
  return (crypto.randomUUID() + crypto.randomUUID()).replace(/-/g, '').padEnd(64, '0').slice(0, 64);
}

/** Runs one task through a fake agent to the given result frame. */
async function runTask(user: User, ep: { endpoint_id: string; token: string }, fn: string, payload: unknown, extra: Record<string, unknown>, result: (taskId: string) => Record<string, unknown>): Promise<string> {
  const { task_ids } = await submit(user, ep.endpoint_id, fn, [payload], extra);
  const agent = await FakeAgent.ready(ep.endpoint_id, ep.token);
  agent.send({ type: 'credit', n: 1 });
  const [task] = await agent.tasks(1);
  expect(task.task_id).toBe(task_ids[0]);
  agent.send({ type: 'results', results: [result(task.task_id)] });
  await agent.next('results_ack');
  agent.close();
  return task_ids[0]!;
}

describe('provenance', () => {
  it("records a task's PROV document: activity, entities, agents, relations", async () => {
    const alice = await newUser('alice');
    const fn = await registerFunction(alice);
    const ep = await registerEndpoint(alice);
    const R = hex();
    const taskId = await runTask(alice, ep, fn, { args: [7, { $ref: R }], kwargs: { scale: 2 } }, { workflow_id: 'wf-doc', campaign_id: 'camp-doc' }, (id) => success(id, 42));

    const res = await alice.call('get', `/v3/provenance/tasks/${taskId}`);
    expect(res.status, res.text).toBe(200);
    const doc = res.body;
    expect(Object.keys(doc.prefix).sort()).toEqual(['ferry', 'prov', 'xsd']);
    const activity = doc.activity[`ferry:task/${taskId}`];
    expect(activity['ferry:status']).toBe('success');
    expect(activity['ferry:workflow_id']).toBe('wf-doc');
    expect(activity['ferry:campaign_id']).toBe('camp-doc');
    expect(activity['ferry:attempts']).toBe(1);
    expect(activity['prov:endTime']).toMatch(/^\d{4}-\d\d-\d\dT/);
    expect(activity['ferry:transition_waiting_for_ep']).toMatchObject({ type: 'xsd:dateTime' });
    expect(activity['ferry:transition_success'].$).toMatch(/Z$/);
    expect(doc.entity[`ferry:function/${fn}`]).toBeDefined();
    expect(doc.entity[`ferry:object/${R}`]).toMatchObject({ 'prov:type': qname('ferry:DataObject') });
    expect(doc.entity[`ferry:function/${fn}`]).toMatchObject({ 'prov:label': 'add', 'ferry:code_sha256': await sha256Hex(ADD), 'prov:type': [qname('ferry:Function'), qname('prov:Plan')] });
    expect(doc.agent[`ferry:endpoint/${ep.endpoint_id}`]['prov:type']).toEqual(qname('prov:SoftwareAgent'));
    expect(activity['prov:type']).toEqual(qname('ferry:Task'));
    expect(activity['ferry:host']).toBe('node1');
    const values = Object.entries(doc.entity).filter(([id]) => id.startsWith('ferry:value/'));
    expect(values).toHaveLength(2); // 7 and scale=2, by sha256
    expect(values[0]![0]).toMatch(/^ferry:value\/[0-9a-f]{64}$/);
    expect(doc.entity[`ferry:result/${taskId}`]['ferry:sha256']).toMatch(/^[0-9a-f]{64}$/);
    expect(Object.keys(doc.agent).sort()).toEqual([`ferry:endpoint/${ep.endpoint_id}`, 'ferry:host/node1', `ferry:user/${encodeURIComponent(alice.sub)}`].sort());
    const used = Object.values(doc.used) as any[];
    expect(used.map((u) => u['prov:entity'])).toContain(`ferry:object/${R}`);
    expect(used.map((u) => u['prov:entity'])).toContain(`ferry:function/${fn}`);
    expect(Object.values(doc.wasGeneratedBy)).toEqual([expect.objectContaining({ 'prov:entity': `ferry:result/${taskId}`, 'prov:activity': `ferry:task/${taskId}` })]);
    expect((Object.values(doc.wasAssociatedWith) as any[]).map((a) => a['prov:agent'])).toHaveLength(3);
    expect(Object.values(doc.wasAttributedTo)).toHaveLength(1);
    expect((Object.values(doc.wasDerivedFrom) as any[]).map((d) => d['prov:usedEntity'])).toContain(`ferry:object/${R}`);

    // The same record as JSON, as the dashboard reads it.
    const record = (await alice.call('get', `/v3/provenance/tasks/${taskId}?format=records`)).body.records;
    expect(record).toHaveLength(1);
    expect(record[0]).toMatchObject({ task_id: taskId, status: 'success', workflow_id: 'wf-doc', hostname: 'node1', attempts: 1 });
    expect(record[0].used).toEqual(expect.arrayContaining([expect.objectContaining({ role: 'args.0', value: '7' }), expect.objectContaining({ role: 'args.1', object: R })]));
    expect((await alice.call('get', `/v3/provenance/tasks/${taskId}?format=xml`)).status).toBe(400);

    // Other users: nothing.
    const bob = await newUser('bob');
    expect((await bob.call('get', `/v3/provenance/tasks/${taskId}`)).status).toBe(404);
    expect((await bob.call('get', `/v3/provenance/tasks/${taskId}?format=records`)).status).toBe(404);
    expect((await bob.call('get', `/v3/provenance/objects/${R}`)).status).toBe(404);
    expect((await bob.call('get', '/v3/provenance?workflow_id=wf-doc')).body).toEqual({ records: [] });
  });

  it('records failures and cancels', async () => {
    const alice = await newUser('alice');
    const fn = await registerFunction(alice);
    const ep = await registerEndpoint(alice);
    const failed = await runTask(alice, ep, fn, { args: [1] }, { workflow_id: 'wf-fail' }, (id) => ({
      task_id: id,
      status: 'failed',
      exception: { code: 'FERRY_FUNCTION_ERROR', name: 'Error', message: 'boom' },
      execution: { attempt: 1, started_at: 1, ended_at: 2, host: 'node2', worker_pid: 1 },
    }));
    const { task_ids } = await submit(alice, ep.endpoint_id, fn, [{ args: [2] }], { workflow_id: 'wf-fail' });
    expect((await alice.call('delete', `/v2/tasks/${task_ids[0]}`)).status).toBeLessThan(300);

    const failedDoc = (await alice.call('get', `/v3/provenance/tasks/${failed}`)).body;
    expect(failedDoc.activity[`ferry:task/${failed}`]['ferry:status']).toBe('failed');
    expect(failedDoc.agent['ferry:host/node2']).toBeDefined();
    const cancelled = await alice.call('get', `/v3/provenance/tasks/${task_ids[0]}`);
    expect(cancelled.status, cancelled.text).toBe(200);
    expect(cancelled.body.activity[`ferry:task/${task_ids[0]}`]['ferry:status']).toBe('cancelled');

    const listed = await alice.call('get', '/v3/provenance?workflow_id=wf-fail');
    expect(listed.body.records.map((r: any) => r.status).sort()).toEqual(['cancelled', 'failed']);
  });

  it("shows an object's ingest filters as activities of their own, and the object by id and content digest", async () => {
    const alice = await newUser('alice');
    const fn = await registerFunction(alice);
    const ep = await registerEndpoint(alice);
    const bytes = new TextEncoder().encode('filtered bytes');
    const filters = [
      { name: 'crop', params: { x: [0, 10] }, source_sha256: 'a'.repeat(64) },
      { name: 'gzip', source_sha256: 'b'.repeat(64) },
    ];
    const put = await exports.default.fetch(`${BASE}/v3/objects`, { method: 'PUT', headers: { authorization: `Bearer ${alice.token}`, 'content-type': 'text/plain', 'x-ferry-filters': JSON.stringify(filters) }, body: bytes });
    expect(put.status).toBe(200);
    const ref = (await put.json()) as { $ref: string; sha256: string };
    const taskId = await runTask(alice, ep, fn, { args: [{ $ref: ref.$ref }] }, { workflow_id: 'wf-filters' }, (id) => success(id, 1));

    const doc = (await alice.call('get', `/v3/provenance/tasks/${taskId}`)).body;
    const object = `ferry:object/${ref.$ref}`;
    expect(doc.entity[object]).toMatchObject({ 'ferry:object_id': ref.$ref, 'ferry:sha256': ref.sha256, 'ferry:size': bytes.length, 'ferry:content_type': 'text/plain', 'ferry:created_at': { type: 'xsd:dateTime' } });
    const f1 = `ferry:ingest/${ref.$ref}/filter/1`;
    const f2 = `ferry:ingest/${ref.$ref}/filter/2`;
    expect(Object.keys(doc.activity).sort()).toEqual([f1, f2, `ferry:task/${taskId}`].sort());
    expect(doc.activity[f1]).toMatchObject({ 'prov:type': qname('ferry:IngestFilter'), 'ferry:filter_name': 'crop', 'ferry:position': 1, 'ferry:params': '{"x":[0,10]}', 'ferry:source_sha256': 'a'.repeat(64) });
    expect(doc.activity[f2]).toMatchObject({ 'ferry:filter_name': 'gzip', 'ferry:position': 2 });
    const rel = (kind: string, activity: string) => (Object.values(doc[kind]) as any[]).filter((r) => r['prov:activity'] === activity);
    expect(rel('used', f1).map((u) => u['prov:entity'])).toEqual([`ferry:ingest/${ref.$ref}/stage/0`]);
    expect(rel('wasGeneratedBy', f1).map((g) => g['prov:entity'])).toEqual([`ferry:ingest/${ref.$ref}/stage/1`]);
    expect(rel('used', f2).map((u) => u['prov:entity'])).toEqual([`ferry:ingest/${ref.$ref}/stage/1`]);
    expect(rel('wasGeneratedBy', f2).map((g) => g['prov:entity'])).toEqual([object]);
    expect(rel('wasAssociatedWith', f1)).toEqual([expect.objectContaining({ 'prov:agent': `ferry:user/${encodeURIComponent(alice.sub)}`, 'prov:plan': `ferry:filter_source/${'a'.repeat(64)}` })]);
    expect(doc.entity[`ferry:filter_source/${'a'.repeat(64)}`]).toBeDefined();
    // The task used the filters' output.
    expect(rel('used', `ferry:task/${taskId}`).map((u) => u['prov:entity'])).toContain(object);

    // Only the owner's index is asked: for bob the same object id names nothing.
    const bob = await newUser('bob');
    expect((await bob.call('get', `/v3/provenance/tasks/${taskId}`)).status).toBe(404);
  });

  it('joins two workflows on two endpoints and an ingested event into one lineage graph', async () => {
    const alice = await newUser('alice');
    const fn = await registerFunction(alice);
    const epA = await registerEndpoint(alice);
    const epB = await registerEndpoint(alice);
    const [R, O1, O2, O3] = [hex(), hex(), hex(), hex()];
    const taskA = await runTask(alice, epA, fn, { args: [{ $ref: R }] }, { workflow_id: 'wf-A', campaign_id: 'camp' }, (id) => success(id, { $ref: O1 }));
    const taskB = await runTask(alice, epB, fn, { args: [{ $ref: O1 }] }, { workflow_id: 'wf-B', campaign_id: 'camp' }, (id) => success(id, { $ref: O2 }));
    const ingest = await alice.call('post', '/v3/provenance/events', {
      messages: [{ task_id: 'ext-1', workflow_id: 'wf-C', campaign_id: 'camp', activity_id: 'plot', used: [O2], generated: { figure: { $ref: O3 } }, started_at: '2024-01-01T00:00:00Z', ended_at: 1704067201, status: 'FINISHED', hostname: 'laptop' }],
    });
    expect(ingest.status, ingest.text).toBe(200);
    expect(ingest.body).toEqual({ accepted: 1 });

    const down = await alice.call('get', `/v3/provenance/objects/${R}?direction=down&depth=5`);
    expect(down.status, down.text).toBe(200);
    expect(down.body.steps.map((s: any) => [s.depth, s.record.task_id])).toEqual([
      [1, taskA],
      [2, taskB],
      [3, 'ext-1'],
    ]);
    const shallow = await alice.call('get', `/v3/provenance/objects/${R}?direction=down&depth=2`);
    expect(shallow.body.steps).toHaveLength(2);

    const up = await alice.call('get', `/v3/provenance/objects/${O3}?direction=up&depth=5`);
    expect(up.status, up.text).toBe(200);
    expect(up.body.steps.map((s: any) => s.record.task_id)).toEqual(['ext-1', taskB, taskA]);
    expect(up.body.steps[2].record.used).toEqual([{ role: 'args.0', object: R }]);

    // The campaign as one PROV-JSON bundle: O1 and O2 are single entities shared by their producer and consumer.
    const bundle = await alice.call('get', '/v3/provenance?campaign_id=camp&format=prov-json');
    expect(bundle.status, bundle.text).toBe(200);
    expect(Object.keys(bundle.body.activity).sort()).toEqual([`ferry:task/${taskA}`, `ferry:task/${taskB}`, 'ferry:task/ext-1'].sort());
    const o1 = `ferry:object/${O1}`;
    expect((Object.values(bundle.body.wasGeneratedBy) as any[]).some((g) => g['prov:entity'] === o1 && g['prov:activity'] === `ferry:task/${taskA}`)).toBe(true);
    expect((Object.values(bundle.body.used) as any[]).some((u) => u['prov:entity'] === o1 && u['prov:activity'] === `ferry:task/${taskB}`)).toBe(true);
    expect(bundle.body.activity['ferry:task/ext-1']['prov:startTime']).toBe('2024-01-01T00:00:00.000Z');
    const wfB = await alice.call('get', '/v3/provenance?workflow_id=wf-B');
    expect(wfB.body.records.map((r: any) => r.task_id)).toEqual([taskB]);
    expect((await alice.call('get', '/v3/provenance?campaign_id=camp&format=count')).body).toEqual({ count: 3 });
    expect((await alice.call('get', '/v3/provenance?workflow_id=wf-B&format=count')).body).toEqual({ count: 1 });
    expect((await alice.call('get', '/v3/provenance/tasks/ext-1')).body.agent['ferry:host/laptop']).toBeDefined();

    const bob = await newUser('bob');
    expect((await bob.call('get', `/v3/provenance/objects/${R}?direction=down`)).status).toBe(404);
    expect((await bob.call('get', `/v3/provenance/objects/${O3}?direction=up`)).status).toBe(404);
    expect((await bob.call('get', '/v3/provenance/tasks/ext-1')).status).toBe(404);
    expect((await bob.call('get', `/v3/provenance/tasks/${taskA}`)).status).toBe(404);
    expect((await bob.call('get', '/v3/provenance?campaign_id=camp')).body).toEqual({ records: [] });
    expect((await bob.call('get', '/v3/provenance?campaign_id=camp&format=count')).body).toEqual({ count: 0 });
  });
});
