// Task routes without an agent: submit checks and limits, docs, batch status, groups, cancel.

import { describe, expect, it, vi } from 'vitest';
import { LIMITS } from '../../protocol/api';
import { call, newUser, registerEndpoint, registerFunction, submit, taskStatus } from '../../../test/helpers/gateway';

describe('POST /v3/endpoints/{endpoint_id}/submit', () => {
  it('stores every task before answering, in a new task group', async () => {
    const alice = await newUser();
    const fn = await registerFunction(alice);
    const double = await registerFunction(alice, '(x) => x * 2', 'double');
    const ep = await registerEndpoint(alice);
    const res = await alice.call('post', `/v3/endpoints/${ep.endpoint_id}/submit`, {
      tasks: { [fn]: [{ args: [1, 2] }, { args: [3, 4] }], [double]: [{ args: [5] }] },
      workflow_id: 'wf-1',
      campaign_id: 'c-1',
    });
    expect(res.status).toBe(200);
    expect(res.body.endpoint_id).toBe(ep.endpoint_id);
    expect(res.body.request_id).toMatch(/^[0-9a-f-]{36}$/);
    expect(res.body.task_group_id).toMatch(new RegExp(`^${ep.endpoint_id}\\.[0-9a-z]{20}$`));
    expect(res.body.tasks[fn]).toHaveLength(2);
    expect(res.body.tasks[double]).toHaveLength(1);
    const ids = [...res.body.tasks[fn], ...res.body.tasks[double]];
    expect([...ids].sort()).toEqual(ids);
    for (const id of ids) {
      // Time-ordered: 9 characters of time, 4 of the task's place in the batch, 11 random.
      expect(id).toMatch(new RegExp(`^${ep.endpoint_id}\\.[0-9a-z]{24}$`));
      const doc = await taskStatus(alice, id);
      expect(doc).toMatchObject({ task_id: id, status: 'waiting-for-ep', details: { endpoint_id: ep.endpoint_id, task_group_id: res.body.task_group_id, attempts: 0 } });
      expect(Object.keys(doc.details.task_transitions)).toEqual(['waiting-for-ep']);
    }
    const group = await alice.call('get', `/v2/taskgroup/${res.body.task_group_id}`);
    expect(group.status).toBe(200);
    expect(group.body.taskgroup_id).toBe(res.body.task_group_id);
    expect(group.body.tasks.map((t: any) => t.id)).toEqual([...res.body.tasks[fn], ...res.body.tasks[double]]);
    expect(Date.parse(group.body.tasks[0].created_at)).not.toBeNaN();
  });

  it('adds to an existing task group of the same endpoint only', async () => {
    const alice = await newUser();
    const fn = await registerFunction(alice);
    const ep = await registerEndpoint(alice);
    const other = await registerEndpoint(alice);
    const first = await submit(alice, ep.endpoint_id, fn);
    const second = await submit(alice, ep.endpoint_id, fn, [{ args: [9] }], { task_group_id: first.task_group_id });
    expect(second.task_group_id).toBe(first.task_group_id);
    const group = await alice.call('get', `/v2/taskgroup/${first.task_group_id}`);
    expect(group.body.tasks.map((t: any) => t.id)).toEqual([...first.task_ids, ...second.task_ids]);
    const elsewhere = await alice.call('post', `/v3/endpoints/${other.endpoint_id}/submit`, { tasks: { [fn]: [{ args: [] }] }, task_group_id: first.task_group_id });
    expect(elsewhere.status).toBe(400);
    expect(elsewhere.body.code).toBe('INVALID_ID');
    const malformed = await alice.call('post', `/v3/endpoints/${ep.endpoint_id}/submit`, { tasks: { [fn]: [{ args: [] }] }, task_group_id: 'nope' });
    expect(malformed.body.code).toBe('INVALID_ID');
    const unknown = await alice.call('post', `/v3/endpoints/${ep.endpoint_id}/submit`, { tasks: { [fn]: [{ args: [] }] }, task_group_id: `${ep.endpoint_id}.00000000000000000000` });
    expect(unknown.status).toBe(404);
  });

  it('answers 400 INVALID_JSON, and 400 VALIDATION_ERROR naming the field', async () => {
    const alice = await newUser();
    const fn = await registerFunction(alice);
    const ep = await registerEndpoint(alice);
    const malformed = await call('post', `/v3/endpoints/${ep.endpoint_id}/submit`, { token: alice.token, rawBody: '{"tasks": {' });
    expect(malformed.status).toBe(400);
    expect(malformed.body.code).toBe('INVALID_JSON');
    const wrong = await alice.call('post', `/v3/endpoints/${ep.endpoint_id}/submit`, { tasks: { [fn]: [{ args: 'not-an-array' }] } });
    expect(wrong.status).toBe(400);
    expect(wrong.body.code).toBe('VALIDATION_ERROR');
    expect(wrong.body.message).toMatch(new RegExp(`^tasks\\.${fn}\\.0\\.args: expected array`));
    const empty = await alice.call('post', `/v3/endpoints/${ep.endpoint_id}/submit`, { tasks: { [fn]: [] } });
    expect(empty.body.code).toBe('VALIDATION_ERROR');
  });

  it('answers 400 VALIDATION_ERROR naming the depth limit for a body nested 2,000 deep, and logs no error', async () => {
    const alice = await newUser();
    const fn = await registerFunction(alice);
    const ep = await registerEndpoint(alice);
    const errors = vi.spyOn(console, 'error');
    try {
      const arrays = `{"tasks": {"${fn}": [{"args": [${'['.repeat(2000)}${']'.repeat(2000)}]}]}}`;
      const objects = `{"tasks": {"${fn}": [{"args": [], "kwargs": ${'{"a":'.repeat(2000)}1${'}'.repeat(2000)}}]}}`;
      for (const rawBody of [arrays, objects]) {
        const res = await call('post', `/v3/endpoints/${ep.endpoint_id}/submit`, { token: alice.token, rawBody });
        expect([res.status, res.body.code], res.text).toEqual([400, 'VALIDATION_ERROR']);
        expect(res.body.message).toContain(`${LIMITS.maxJsonDepth} levels`);
      }
      expect(errors).not.toHaveBeenCalled();
    } finally {
      errors.mockRestore();
    }
    // Nesting up to the limit is accepted; brackets inside strings do not count.
    const deepest = `{"tasks": {"${fn}": [{"args": [${'['.repeat(LIMITS.maxJsonDepth - 5)}"[[[[{{{{"${']'.repeat(LIMITS.maxJsonDepth - 5)}]}]}}`;
    const ok = await call('post', `/v3/endpoints/${ep.endpoint_id}/submit`, { token: alice.token, rawBody: deepest });
    expect(ok.status, ok.text).toBe(200);
  });

  it('answers 413 TOO_MANY_TASKS over 5,000 tasks', async () => {
    const alice = await newUser();
    const fn = await registerFunction(alice);
    const ep = await registerEndpoint(alice);
    const payloads = Array.from({ length: LIMITS.maxTasksPerRequest + 1 }, () => ({ args: [] }));
    const res = await alice.call('post', `/v3/endpoints/${ep.endpoint_id}/submit`, { tasks: { [fn]: payloads } });
    expect(res.status).toBe(413);
    expect(res.body.code).toBe('TOO_MANY_TASKS');
  });

  it('answers 413 PAYLOAD_TOO_LARGE for a payload over the limit, pointing at references', async () => {
    const alice = await newUser();
    const fn = await registerFunction(alice);
    const ep = await registerEndpoint(alice);
    const res = await alice.call('post', `/v3/endpoints/${ep.endpoint_id}/submit`, { tasks: { [fn]: [{ args: ['x'.repeat(LIMITS.maxPayloadBytes)] }] } });
    expect(res.status).toBe(413);
    expect(res.body.code).toBe('PAYLOAD_TOO_LARGE');
    expect(res.body.message).toContain('by reference');
  });

  it('answers 413 PAYLOAD_TOO_LARGE for a body over MAX_REQUEST_BYTES, declared or not', async () => {
    const alice = await newUser();
    const fn = await registerFunction(alice);
    const ep = await registerEndpoint(alice);
    const body = JSON.stringify({ tasks: { [fn]: Array.from({ length: 30 }, () => ({ args: ['y'.repeat(400_000)] })) } });
    expect(body.length).toBeGreaterThan(LIMITS.defaultMaxRequestBytes);
    const declared = await call('post', `/v3/endpoints/${ep.endpoint_id}/submit`, { token: alice.token, rawBody: body });
    expect(declared.status).toBe(413);
    expect(declared.body.code).toBe('PAYLOAD_TOO_LARGE');
    const bytes = new TextEncoder().encode(body);
    const stream = new ReadableStream({
      start(controller) {
        for (let at = 0; at < bytes.length; at += 1 << 20) controller.enqueue(bytes.slice(at, at + (1 << 20)));
        controller.close();
      },
    });
    const { exports } = await import('cloudflare:workers');
    const streamed = await exports.default.fetch(`https://gw.test/v3/endpoints/${ep.endpoint_id}/submit`, { method: 'POST', headers: { authorization: `Bearer ${alice.token}` }, body: stream });
    expect(streamed.status).toBe(413);
  });

  it('answers 404 for another user\'s endpoint or function, or a deleted function', async () => {
    const alice = await newUser();
    const bob = await newUser();
    const aliceFn = await registerFunction(alice);
    const aliceEp = await registerEndpoint(alice);
    const bobFn = await registerFunction(bob);
    const bobEp = await registerEndpoint(bob);
    const onAlicesEndpoint = await bob.call('post', `/v3/endpoints/${aliceEp.endpoint_id}/submit`, { tasks: { [bobFn]: [{ args: [] }] } });
    expect(onAlicesEndpoint.status).toBe(404);
    expect(onAlicesEndpoint.body.code).toBe('NOT_FOUND');
    const withAlicesFunction = await bob.call('post', `/v3/endpoints/${bobEp.endpoint_id}/submit`, { tasks: { [aliceFn]: [{ args: [] }] } });
    expect(withAlicesFunction.status).toBe(404);
    await alice.call('delete', `/v2/functions/${aliceFn}`);
    const deleted = await alice.call('post', `/v3/endpoints/${aliceEp.endpoint_id}/submit`, { tasks: { [aliceFn]: [{ args: [] }] } });
    expect(deleted.status).toBe(404);
    const unknownEndpoint = await alice.call('post', `/v3/endpoints/${crypto.randomUUID()}/submit`, { tasks: { [bobFn]: [{ args: [] }] } });
    expect(unknownEndpoint.status).toBe(404);
  });

  it('answers 403 FUNCTION_NOT_PERMITTED for a function outside allowed_functions', async () => {
    const alice = await newUser();
    const allowed = await registerFunction(alice);
    const other = await registerFunction(alice, '(x) => x', 'identity');
    const ep = await registerEndpoint(alice, { allowed_functions: [allowed] });
    expect((await alice.call('post', `/v3/endpoints/${ep.endpoint_id}/submit`, { tasks: { [allowed]: [{ args: [] }] } })).status).toBe(200);
    const res = await alice.call('post', `/v3/endpoints/${ep.endpoint_id}/submit`, { tasks: { [other]: [{ args: [] }] } });
    expect(res.status).toBe(403);
    expect(res.body.code).toBe('FUNCTION_NOT_PERMITTED');
    const run = await alice.call('post', '/v3/run', { endpoint_id: ep.endpoint_id, function_uuid: other, wait: 0 });
    expect(run.status).toBe(403);
  });
});

describe('task docs', () => {
  it('hides tasks and groups from other users and answers 404 for malformed ids', async () => {
    const alice = await newUser();
    const bob = await newUser();
    const fn = await registerFunction(alice);
    const ep = await registerEndpoint(alice);
    const { task_ids, task_group_id } = await submit(alice, ep.endpoint_id, fn);
    expect((await bob.call('get', `/v2/tasks/${task_ids[0]}`)).status).toBe(404);
    expect((await bob.call('get', `/v2/taskgroup/${task_group_id}`)).status).toBe(404);
    expect((await bob.call('delete', `/v2/tasks/${task_ids[0]}`)).status).toBe(404);
    expect((await alice.call('get', `/v2/tasks/${task_ids[0]}`)).body.status).toBe('waiting-for-ep');
    for (const bad of ['nope', `${ep.endpoint_id}.SHOUT0000000000000`, `${ep.endpoint_id}.00000000000000000000`]) {
      const res = await alice.call('get', `/v2/tasks/${bad}`);
      expect(res.status, bad).toBe(404);
      expect(res.body.code).toBe('NOT_FOUND');
    }
    const badWait = await alice.call('get', `/v2/tasks/${task_ids[0]}?wait=61`);
    expect(badWait.status).toBe(400);
    expect(badWait.body.message).toMatch(/^query\.wait: /);
  });

  it('batch_status answers the caller\'s tasks across endpoints and leaves out the rest', async () => {
    const alice = await newUser();
    const bob = await newUser();
    const fn = await registerFunction(alice);
    const ep1 = await registerEndpoint(alice);
    const ep2 = await registerEndpoint(alice);
    const a = await submit(alice, ep1.endpoint_id, fn, [{ args: [1] }, { args: [2] }]);
    const b = await submit(alice, ep2.endpoint_id, fn);
    const bobFn = await registerFunction(bob);
    const bobEp = await registerEndpoint(bob);
    const theirs = await submit(bob, bobEp.endpoint_id, bobFn);
    const ids = [...a.task_ids, ...b.task_ids, ...theirs.task_ids, 'garbage', `${ep1.endpoint_id}.00000000000000000000`];
    const res = await alice.call('post', '/v2/batch_status', { task_ids: ids });
    expect(res.status).toBe(200);
    expect(res.body.response).toBe('batch');
    expect(Object.keys(res.body.results).sort()).toEqual([...a.task_ids, ...b.task_ids].sort());
    expect(res.body.results[b.task_ids[0]!].details.endpoint_id).toBe(ep2.endpoint_id);
  });

  it('batch_status of 1,000 tasks', async () => {
    const alice = await newUser();
    const fn = await registerFunction(alice);
    const ep = await registerEndpoint(alice);
    const { task_ids } = await submit(alice, ep.endpoint_id, fn, Array.from({ length: 1000 }, (_, i) => ({ args: [i] })));
    const res = await alice.call('post', '/v2/batch_status', { task_ids });
    expect(Object.keys(res.body.results)).toHaveLength(1000);
  });
});
