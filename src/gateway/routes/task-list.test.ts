// GET /v3/tasks (the dashboard's task table) and GET /v3/endpoints/{id}/status/history (its chart):
// owner-scoped, newest first, filtered, paged with a cursor that loses and repeats nothing.

import { env } from 'cloudflare:workers';
import { runInDurableObject } from 'cloudflare:test';
import { describe, expect, it } from 'vitest';
import { StatusHistory } from '../endpoint-hub/status-history';
import type { GatewayEnv } from '../env';
import { EndpointStatusHistory, STATUS_HISTORY, TaskList } from '../../protocol/task-list';
import { FakeAgent, newUser, registerEndpoint, registerFunction, submit, success, type User } from '../../../test/helpers/gateway';

async function list(user: User, query: Record<string, string | number> = {}): Promise<{ status: number; body: any }> {
  const qs = new URLSearchParams(Object.entries(query).map(([k, v]) => [k, String(v)])).toString();
  const res = await user.call('get', `/v3/tasks${qs ? `?${qs}` : ''}`);
  if (res.status === 200) TaskList.parse(res.body);
  return res;
}

/** Every page of a listing, following next_cursor. */
async function allPages(user: User, query: Record<string, string | number>): Promise<{ ids: string[]; pages: number }> {
  const ids: string[] = [];
  let cursor: string | null = null;
  let pages = 0;
  do {
    const res = await list(user, cursor === null ? query : { ...query, cursor });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.body.tasks.length).toBeLessThanOrEqual(Number(query.limit ?? 50));
    ids.push(...res.body.tasks.map((t: { task_id: string }) => t.task_id));
    cursor = res.body.next_cursor;
    pages++;
  } while (cursor !== null && pages < 100);
  return { ids, pages };
}

describe('GET /v3/tasks', () => {
  it("lists the caller's tasks of all endpoints newest first, each once across pages", async () => {
    const user = await newUser('list');
    const fn = await registerFunction(user);
    const [a, b] = [await registerEndpoint(user), await registerEndpoint(user)];
    const first = await submit(user, a.endpoint_id, fn, Array.from({ length: 7 }, (_, i) => ({ args: [i, 1] })));
    const second = await submit(user, b.endpoint_id, fn, Array.from({ length: 5 }, (_, i) => ({ args: [i, 2] })));
    const third = await submit(user, a.endpoint_id, fn, Array.from({ length: 4 }, (_, i) => ({ args: [i, 3] })));

    const page = await list(user, { limit: 6 });
    expect(page.status).toBe(200);
    // Newest submission first; a batch keeps its order among tasks stored at the same time.
    expect(page.body.tasks.slice(0, 4).map((t: any) => t.task_id).sort()).toEqual([...third.task_ids].sort());
    expect(page.body.tasks[4].endpoint_id).toBe(b.endpoint_id);
    expect(page.body.tasks[0]).toMatchObject({ status: 'waiting-for-ep', function_uuid: fn, endpoint_id: a.endpoint_id, task_group_id: third.task_group_id, workflow_id: null, completion_t: null, attempts: 0 });

    for (const limit of [1, 3, 6, 50]) {
      const { ids, pages } = await allPages(user, { limit });
      expect(ids.sort()).toEqual([...first.task_ids, ...second.task_ids, ...third.task_ids].sort());
      expect(pages).toBeGreaterThanOrEqual(Math.ceil(16 / limit));
    }
  });

  it('filters by endpoint, status, function, workflow and task group', async () => {
    const user = await newUser('list');
    const fn = await registerFunction(user);
    const other = await registerFunction(user, '(x) => x * 2', 'double');
    const ep = await registerEndpoint(user);
    const elsewhere = await registerEndpoint(user);
    const plain = await submit(user, ep.endpoint_id, fn, [{ args: [1, 2] }, { args: [3, 4] }, { args: [5, 6] }]);
    const flow = await submit(user, ep.endpoint_id, other, [{ args: [1] }], { workflow_id: 'wf-list' });
    await submit(user, elsewhere.endpoint_id, fn, [{ args: [0, 0] }]);

    const agent = await FakeAgent.ready(ep.endpoint_id, ep.token);
    agent.send({ type: 'credit', n: 10 });
    await agent.tasks(4);
    agent.send({ type: 'results', results: [success(plain.task_ids[0]!, 3), success(flow.task_ids[0]!, 2)] });
    await agent.sync();

    const ids = async (query: Record<string, string>) => (await allPages(user, { ...query, limit: 2 })).ids.sort();
    expect(await ids({ endpoint_id: ep.endpoint_id })).toEqual([...plain.task_ids, ...flow.task_ids].sort());
    expect(await ids({ status: 'success' })).toEqual([plain.task_ids[0]!, flow.task_ids[0]!].sort());
    expect(await ids({ status: 'success', function_uuid: fn })).toEqual([plain.task_ids[0]!]);
    expect(await ids({ workflow_id: 'wf-list' })).toEqual(flow.task_ids);
    expect(await ids({ task_group_id: plain.task_group_id })).toEqual([...plain.task_ids].sort());
    expect(await ids({ task_group_id: plain.task_group_id, endpoint_id: elsewhere.endpoint_id })).toEqual([]);
    expect(await ids({ status: 'failed' })).toEqual([]);
    const ended = (await list(user, { status: 'success', function_uuid: fn })).body.tasks[0];
    expect(ended).toMatchObject({ status: 'success', attempts: 1 });
    expect(ended.completion_t).toBeGreaterThan(0);
    agent.close();
  });

  it("shows another user nothing: 404 for the endpoint, an empty list without one", async () => {
    const owner = await newUser('list');
    const stranger = await newUser('list');
    const ep = await registerEndpoint(owner);
    const { task_group_id } = await submit(owner, ep.endpoint_id, await registerFunction(owner));
    const named = await list(stranger, { endpoint_id: ep.endpoint_id });
    expect([named.status, named.body.code]).toEqual([404, 'NOT_FOUND']);
    expect((await list(stranger, { task_group_id })).status).toBe(404);
    expect((await list(stranger)).body).toEqual({ tasks: [], next_cursor: null });
    // A cursor of the owner's listing reads nothing of the owner's for someone else.
    const cursor = (await list(owner, { limit: 0 + 1 })).body.next_cursor;
    if (cursor !== null) expect((await list(stranger, { cursor })).body.tasks).toEqual([]);
  });

  it('answers 400 VALIDATION_ERROR for a bad query or a cursor it did not issue', async () => {
    const user = await newUser('list');
    for (const query of [{ status: 'done' }, { limit: 0 }, { limit: 501 }, { endpoint_id: 'nope' }, { cursor: 'garbage!!' }, { cursor: btoa('{"v":2,"p":{}}') }, { colour: 'red' }] as Record<string, string | number>[]) {
      const res = await list(user, query);
      expect([res.status, res.body.code], JSON.stringify(query)).toEqual([400, 'VALIDATION_ERROR']);
    }
  });
});

describe('GET /v3/endpoints/{endpoint_id}/status/history', () => {
  it("keeps the agent's reports, at most one per sampling interval; others get 404", async () => {
    const user = await newUser('hist');
    const ep = await registerEndpoint(user);
    const empty = await user.call('get', `/v3/endpoints/${ep.endpoint_id}/status/history`);
    expect(empty.status).toBe(200);
    expect(EndpointStatusHistory.parse(empty.body)).toEqual({ endpoint_id: ep.endpoint_id, window_s: 3600, sample_every_s: STATUS_HISTORY.sampleEveryS, samples: [] });
    const agent = await FakeAgent.ready(ep.endpoint_id, ep.token);
    const report = (n: number) => ({ total_workers: 4, idle_workers: 4 - n, pending_tasks: 0, outstanding_tasks: n, managers: 1, blocks: 1 });
    for (let n = 1; n <= 3; n++) agent.send({ type: 'status', report: report(n) });
    await agent.sync();
    const res = await user.call('get', `/v3/endpoints/${ep.endpoint_id}/status/history`);
    expect(res.body.samples).toHaveLength(1);
    expect(res.body.samples[0]).toMatchObject(report(1));
    expect(Math.abs(res.body.samples[0].t - Date.now() / 1000)).toBeLessThan(60);
    const stranger = await newUser('hist');
    expect((await stranger.call('get', `/v3/endpoints/${ep.endpoint_id}/status/history`)).status).toBe(404);
    agent.close();
  });

  it('samples every interval and forgets reports older than the window (bounded)', async () => {
    const ns = (env as unknown as GatewayEnv).ENDPOINT_HUB;
    await runInDurableObject(ns.get(ns.newUniqueId()), async (_instance, state) => {
      const history = new StatusHistory(state.storage.sql);
      history.createSchema();
      const report = { total_workers: 2, idle_workers: 1, pending_tasks: 0, outstanding_tasks: 1, managers: 1, blocks: 1 };
      // Two hours of heartbeats every 5 s.
      for (let t = 1_000_000; t <= 1_000_000 + 7200; t += 5) history.record(report, t);
      const samples = history.read(1_000_000 + 7200);
      expect(samples.length).toBe(STATUS_HISTORY.windowS / STATUS_HISTORY.sampleEveryS + 1);
      expect(samples[0]!.t).toBe(1_000_000 + 3600);
      expect(samples.every((s, i) => i === 0 || s.t - samples[i - 1]!.t === STATUS_HISTORY.sampleEveryS)).toBe(true);
      expect(state.storage.sql.exec<{ n: number }>('SELECT count(*) AS n FROM status_history').one().n).toBe(samples.length);
    });
  });
});
