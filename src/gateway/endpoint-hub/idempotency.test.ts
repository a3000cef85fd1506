// Idempotency-Key on submissions (src/gateway/endpoint-hub/submit-keys.ts): a request sent again
// with its key is answered with the first one's tasks, and nothing is stored or delivered twice.
// The SDK sends a submission again after a connection closed before any answer (src/sdk/resend.ts);
// test/e2e/kept-alive-connections.test.ts closes one for real.

import { describe, expect, it } from 'vitest';
import { call, FakeAgent, newUser, registerEndpoint, registerFunction, type User } from '../../../test/helpers/gateway';

function submitWithKey(user: User, endpointId: string, key: string, body: unknown) {
  return call('post', `/v3/endpoints/${endpointId}/submit`, { token: user.token, body, headers: { 'idempotency-key': key } });
}

describe('Idempotency-Key on POST /v3/endpoints/{endpoint_id}/submit', () => {
  it('answers a request sent again with the first answer, and stores and delivers its tasks once', async () => {
    const alice = await newUser();
    const fn = await registerFunction(alice);
    const ep = await registerEndpoint(alice);
    const body = { tasks: { [fn]: [{ args: [1, 2] }, { args: [3, 4] }, { args: [5, 6] }] }, workflow_id: 'wf' };
    const key = crypto.randomUUID();
    const first = await submitWithKey(alice, ep.endpoint_id, key, body);
    expect(first.status, first.text).toBe(200);
    const again = await submitWithKey(alice, ep.endpoint_id, key, body);
    expect(again.status, again.text).toBe(200);
    expect(again.body).toEqual(first.body);
    // Sent twice at once: the one being stored answers both.
    const key2 = crypto.randomUUID();
    const [a, b] = await Promise.all([submitWithKey(alice, ep.endpoint_id, key2, body), submitWithKey(alice, ep.endpoint_id, key2, body)]);
    expect([a.status, b.status]).toEqual([200, 200]);
    expect(b.body).toEqual(a.body);
    expect(a.body.tasks[fn]).not.toEqual(first.body.tasks[fn]);

    const group = await alice.call('get', `/v2/taskgroup/${first.body.task_group_id}`);
    expect(group.body.tasks.map((t: { id: string }) => t.id)).toEqual(first.body.tasks[fn]);
    const agent = await FakeAgent.ready(ep.endpoint_id, ep.token);
    agent.send({ type: 'credit', n: 100 });
    const delivered = (await agent.tasks(6)).map((t) => t.task_id);
    await agent.sync();
    expect(agent.has('tasks')).toBe(false);
    expect(delivered.sort()).toEqual([...first.body.tasks[fn], ...a.body.tasks[fn]].sort());
    agent.close();
  });

  it('answers 422 IDEMPOTENCY_KEY_REUSED for the key with another request, and stores nothing for it', async () => {
    const alice = await newUser();
    const fn = await registerFunction(alice);
    const ep = await registerEndpoint(alice);
    const key = crypto.randomUUID();
    const first = await submitWithKey(alice, ep.endpoint_id, key, { tasks: { [fn]: [{ args: [1, 2] }] } });
    expect(first.status).toBe(200);
    for (const other of [{ tasks: { [fn]: [{ args: [1, 3] }] } }, { tasks: { [fn]: [{ args: [1, 2] }] }, workflow_id: 'another' }]) {
      const res = await submitWithKey(alice, ep.endpoint_id, key, other);
      expect(res.status, res.text).toBe(422);
      expect(res.body.code).toBe('IDEMPOTENCY_KEY_REUSED');
    }
    const group = await alice.call('get', `/v2/taskgroup/${first.body.task_group_id}`);
    expect(group.body.tasks).toHaveLength(1);
  });

  it('keeps one owner\'s key from answering another\'s request', async () => {
    const alice = await newUser();
    const bob = await newUser();
    const aliceEp = await registerEndpoint(alice);
    const key = crypto.randomUUID();
    const fn = await registerFunction(alice);
    expect((await submitWithKey(alice, aliceEp.endpoint_id, key, { tasks: { [fn]: [{ args: [1, 2] }] } })).status).toBe(200);
    // bob's request with alice's key on her endpoint learns nothing of her tasks.
    const probe = await submitWithKey(bob, aliceEp.endpoint_id, key, { tasks: { [fn]: [{ args: [1, 2] }] } });
    expect(probe.status).toBe(404);
    expect(probe.text).not.toContain(aliceEp.endpoint_id + '.');
  });

  it('answers 400 VALIDATION_ERROR for a key that is empty, too long or not visible ASCII', async () => {
    const alice = await newUser();
    const fn = await registerFunction(alice);
    const ep = await registerEndpoint(alice);
    for (const key of ['', 'a'.repeat(256), 'with space', 'with\ttab']) {
      const res = await call('post', `/v3/endpoints/${ep.endpoint_id}/submit`, { token: alice.token, body: { tasks: { [fn]: [{ args: [] }] } }, headers: { 'idempotency-key': key } });
      expect(res.status, `${JSON.stringify(key)}: ${res.text}`).toBe(400);
      expect(res.body.code).toBe('VALIDATION_ERROR');
      expect(res.body.message).toContain('idempotency-key');
    }
  });
});

describe('Idempotency-Key on POST /v3/run', () => {
  it('answers a request sent again with the same task', async () => {
    const alice = await newUser();
    const fn = await registerFunction(alice);
    const ep = await registerEndpoint(alice);
    const key = crypto.randomUUID();
    const body = { endpoint_id: ep.endpoint_id, function_uuid: fn, args: [1, 2], wait: 0 };
    const first = await call('post', '/v3/run', { token: alice.token, body, headers: { 'idempotency-key': key } });
    expect(first.status, first.text).toBe(202);
    const again = await call('post', '/v3/run', { token: alice.token, body, headers: { 'idempotency-key': key } });
    expect(again.status, again.text).toBe(202);
    expect(again.body.task_id).toBe(first.body.task_id);
    const other = await call('post', '/v3/run', { token: alice.token, body: { ...body, args: [2, 2] }, headers: { 'idempotency-key': key } });
    expect(other.status).toBe(422);
  });

  it('is documented as a header of both routes', async () => {
    const doc = (await call('get', '/v3/openapi.json')).body;
    for (const op of [doc.paths['/v3/endpoints/{endpoint_id}/submit'].post, doc.paths['/v3/run'].post]) {
      expect(op.parameters).toContainEqual(expect.objectContaining({ name: 'idempotency-key', in: 'header', required: false }));
      expect(op.responses['422'].description).toContain('IDEMPOTENCY_KEY_REUSED');
    }
  });
});
