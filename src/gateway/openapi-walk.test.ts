// Walks every path and method of the OpenAPI document as a second user against the first user's
// real resources: each must answer 404, or succeed without a trace of the first user's data.
// A route added later is covered without touching this test.

import { expect, it } from 'vitest';
import { call, exchangeSecret, FakeAgent, newUser, registerEndpoint, registerFunction, submit, substitute, success, taskStatus } from '../../test/helpers/gateway';

it("every route answers 404 (or nothing of theirs) to another user's token", async () => {
  const alice = await newUser('alice');
  const bob = await newUser('bob');
  const fn = await registerFunction(alice);
  const ep = await registerEndpoint(alice, { endpoint_name: 'shared-name' });
  const { task_ids, task_group_id } = await submit(alice, ep.endpoint_id, fn, [{ args: [1] }, { args: [2] }]);
  // One finished task, so result-bearing answers are covered too.
  const agent = await FakeAgent.ready(ep.endpoint_id, ep.token);
  agent.send({ type: 'credit', n: 1 });
  const [delivered] = await agent.tasks(1);
  agent.send({ type: 'results', results: [success(delivered.task_id, 'alice-secret-result')] });
  await agent.next('results_ack');

  const bobEndpoint = await registerEndpoint(bob, { endpoint_name: 'bobs' });
  const bobAccess = (await exchangeSecret(bobEndpoint.endpoint_id, bobEndpoint.token)).body.access_token;
  // An object and an open upload of alice's, for the objects routes.
  const object = await call('put', '/v3/objects', { token: alice.token, rawBody: 'alice-secret-bytes' });
  const upload = await alice.call('post', '/v3/objects/uploads', {});
  const key = await alice.call('post', '/v3/keys', { name: 'alice-key', expires_in: 3600, scopes: { functions: '*', endpoints: '*', actions: ['run'] } });
  expect([object.status, upload.status, key.status]).toEqual([200, 200, 200]);
  const values: Record<string, string> = {
    function_uuid: fn, endpoint_id: ep.endpoint_id, task_id: task_ids[1]!, task_group_id, id: object.body.$ref, upload_id: upload.body.upload_id, n: '1', key_id: key.body.key_id,
    // A group of alice's whose name bob's own POST /v3/groups (its example) does not take.
    group_name: (await alice.call('post', '/v3/groups', { name: 'alice-group', members: [alice.sub] })).body.name,
  };
  const aliceTraces = [fn, ep.endpoint_id, ...task_ids, task_group_id, 'alice-secret-result', alice.sub, object.body.$ref, upload.body.upload_id, key.body.key_id];

  const doc = (await call('get', '/v3/openapi.json')).body;
  let refused = 0;
  let walked = 0;
  for (const [path, operations] of Object.entries(doc.paths as Record<string, Record<string, any>>)) {
    for (const [method, op] of Object.entries(operations)) {
      const auth = op['x-ferry-auth'] as string;
      if (auth === 'none') continue;
      // Bob revoking his own tokens would end the walk (src/gateway/routes/keys.test.ts covers it).
      if (path === '/v3/users/me/revoke') continue;
      walked++;
      const query = op['x-ferry-query-example'] === undefined ? '' : `?${substitute(op['x-ferry-query-example'], values)}`;
      const url = path.replace(/\{([a-z_]+)\}/g, (_, name: string) => {
        expect(values[name], `no value for path parameter ${name} of ${path}`).toBeDefined();
        return values[name]!;
      });
      const example = op.requestBody?.content?.['application/json']?.example;
      const body = example === undefined ? undefined : substitute(example, values);
      const token = auth === 'endpoint' ? bobAccess : auth === 'endpoint-secret' ? bobEndpoint.token : bob.token;
      const headers: Record<string, string> = auth === 'endpoint' ? { upgrade: 'websocket' } : {};
      const res = await call(method, url + query, { token, body, headers });
      const where = `${method.toUpperCase()} ${path} → ${res.status} ${res.text.slice(0, 200)}`;
      if (res.status === 404) {
        expect(res.body.code, where).toBe('NOT_FOUND');
        refused++;
        continue;
      }
      // Only routes that name none of alice's resources in their path may answer, and only with bob's own things.
      expect(path.includes('{'), where).toBe(false);
      expect(res.status, where).toBeLessThan(300);
      for (const trace of aliceTraces) expect(res.text, where).not.toContain(trace);
    }
  }
  expect(walked).toBeGreaterThanOrEqual(15);
  expect(refused).toBeGreaterThanOrEqual(12);

  // Nothing of alice's was changed by bob's deletes and cancels.
  expect((await alice.call('get', `/v2/functions/${fn}`)).status).toBe(200);
  expect((await alice.call('get', `/v2/endpoints/${ep.endpoint_id}`)).status).toBe(200);
  expect((await taskStatus(alice, task_ids[1]!)).status).toBe('waiting-for-ep');
  expect((await taskStatus(alice, delivered.task_id)).result).toBe('alice-secret-result');
  expect((await call('get', `/v3/objects/${object.body.$ref}`, { token: alice.token })).text).toBe('alice-secret-bytes');
  expect((await alice.call('get', '/v3/keys')).body.keys.map((k: { revoked_at: unknown }) => k.revoked_at)).toEqual([null]);
  agent.close();
});
