// Instrument keys and a user's revocation of their tokens, route by route: the route table says
// what a key needs for each route, and a key outside its scopes gets 403 FORBIDDEN_SCOPE.

import { env } from 'cloudflare:workers';
import { runInDurableObject } from 'cloudflare:test';
import { describe, expect, it } from 'vitest';
import type { GatewayEnv } from '../env';
import { registryOf } from '../registry';
import { createApp } from '../app';
import type { RouteSpec } from '../route-spec';
import { call, exchangeSecret, FakeAgent, mintUserToken, newUser, registerEndpoint, registerFunction, submit, substitute, success, type User } from '../../../test/helpers/gateway';

const { routes } = createApp();
const keyRoutes = (specs: readonly RouteSpec[]) => specs.filter((s) => s.auth === 'user' || s.auth === 'reader' || s.auth === 'writer');

async function createKey(user: User, scopes: unknown, extra: Record<string, unknown> = {}): Promise<{ key_id: string; secret: string }> {
  const res = await user.call('post', '/v3/keys', { name: 'detector-7', expires_in: 3600, scopes, ...extra });
  expect(res.status, res.text).toBe(200);
  return res.body;
}

/** Values for every path parameter of the route table, naming the user's real resources. */
async function resources(user: User) {
  const fn = await registerFunction(user);
  const otherFn = await registerFunction(user, '(x) => x * 2', 'double');
  const ep = await registerEndpoint(user);
  const otherEp = await registerEndpoint(user);
  const { task_ids, task_group_id } = await submit(user, ep.endpoint_id, fn, [{ args: [1, 2] }]);
  const object = await call('put', '/v3/objects', { token: user.token, rawBody: 'bytes' });
  const upload = await user.call('post', '/v3/objects/uploads', {});
  const spare = await createKey(user, { functions: '*', endpoints: '*', actions: ['run'] });
  const values: Record<string, string> = {
    function_uuid: fn, endpoint_id: ep.endpoint_id, task_id: task_ids[0]!, task_group_id, id: object.body.$ref, upload_id: upload.body.upload_id, n: '1', key_id: spare.key_id,
    group_name: (await user.call('post', '/v3/groups', { name: 'beamline', members: [] })).body.name,
  };
  return { fn, otherFn, ep, otherEp, values };
}

function request(spec: RouteSpec, values: Record<string, string>): { url: string; body: unknown } {
  const url = spec.path.replace(/\{([a-z_]+)\}/g, (_, name: string) => {
    expect(values[name], `no value for path parameter ${name} of ${spec.path}`).toBeDefined();
    return values[name]!;
  });
  return { url, body: spec.example === undefined ? (spec.body ? {} : undefined) : substitute(spec.example, values) };
}

describe('instrument keys', () => {
  it('every route a key can present itself to declares what a key needs (run, submit, read_results, upload_objects or none)', () => {
    const undeclared = keyRoutes(routes.specs).filter((s) => s.keys === undefined).map((s) => `${s.method.toUpperCase()} ${s.path}`);
    expect(undeclared).toEqual([]);
    expect(keyRoutes(routes.specs).length).toBeGreaterThanOrEqual(30);
  });

  it('a key scoped to run one function on one endpoint runs it with /v3/run and gets 403 FORBIDDEN_SCOPE on every other route', async () => {
    const alice = await newUser('alice');
    const { fn, otherFn, ep, otherEp, values } = await resources(alice);
    const key = await createKey(alice, { functions: [fn], endpoints: [ep.endpoint_id], actions: ['run'] });
    expect(key.secret).toMatch(/^fk1\./);

    const agent = await FakeAgent.ready(ep.endpoint_id, ep.token);
    agent.send({ type: 'credit', n: 10 });
    // The task submitted by resources() comes first; the run's task after it.
    const running = call('post', '/v3/run', { token: key.secret, body: { endpoint_id: ep.endpoint_id, function_uuid: fn, args: [20, 22], wait: 10 } });
    const delivered = await agent.tasks(2);
    agent.send({ type: 'results', results: delivered.map((t) => success(t.task_id, 42)) });
    const run = await running;
    expect([run.status, run.body.status, run.body.result], run.text).toEqual([200, 'success', 42]);

    // The same route outside the key's scopes.
    for (const body of [{ endpoint_id: ep.endpoint_id, function_uuid: otherFn }, { endpoint_id: otherEp.endpoint_id, function_uuid: fn }]) {
      const res = await call('post', '/v3/run', { token: key.secret, body: { ...body, wait: 0 } });
      expect([res.status, res.body.code], res.text).toEqual([403, 'FORBIDDEN_SCOPE']);
    }

    // Every route of the table, agent routes included.
    const otherAccess = (await exchangeSecret(otherEp.endpoint_id, otherEp.token)).body.access_token as string;
    expect(otherAccess).toBeTruthy();
    let refused = 0;
    for (const spec of routes.specs) {
      if (spec.auth === 'none') continue;
      const { url, body } = request(spec, values);
      const headers: Record<string, string> = spec.auth === 'endpoint' ? { upgrade: 'websocket' } : {};
      const res = await call(spec.method, url, { token: key.secret, body, headers });
      const where = `${spec.method.toUpperCase()} ${spec.path} → ${res.status} ${res.text.slice(0, 200)}`;
      if (spec.method === 'post' && spec.path === '/v3/run') {
        expect([200, 202], where).toContain(res.status);
        continue;
      }
      expect([res.status, res.body?.code], where).toEqual([403, 'FORBIDDEN_SCOPE']);
      refused++;
    }
    expect(refused).toBeGreaterThanOrEqual(35);
    agent.close();
  });

  it('keys with submit, read_results and upload_objects do those on their endpoint and function only', async () => {
    const alice = await newUser('alice');
    const { fn, otherFn, ep, otherEp } = await resources(alice);
    const key = await createKey(alice, { functions: [fn], endpoints: [ep.endpoint_id], actions: ['submit', 'read_results', 'upload_objects'] });
    const as = (method: string, path: string, body?: unknown) => call(method, path, { token: key.secret, body });

    const submitted = await as('post', `/v3/endpoints/${ep.endpoint_id}/submit`, { tasks: { [fn]: [{ args: [1, 2] }] } });
    expect(submitted.status, submitted.text).toBe(200);
    const taskId = submitted.body.tasks[fn][0];
    expect((await as('get', `/v2/tasks/${taskId}`)).status).toBe(200);
    expect((await as('post', '/v2/batch_status', { task_ids: [taskId] })).body.results[taskId].status).toBe('waiting-for-ep');
    expect((await as('get', `/v2/taskgroup/${submitted.body.task_group_id}`)).status).toBe(200);
    const put = await call('put', '/v3/objects', { token: key.secret, rawBody: 'from the detector' });
    expect(put.status, put.text).toBe(200);
    expect((await call('get', `/v3/objects/${put.body.$ref}`, { token: key.secret })).text).toBe('from the detector');
    // The owner sees the object, stored by the key.
    expect((await alice.call('get', '/v3/objects/stats')).body.writers).toHaveProperty(`key:${key.key_id}`);

    const otherTask = (await submit(alice, otherEp.endpoint_id, fn)).task_ids[0]!;
    for (const [method, path, body] of [
      ['post', `/v3/endpoints/${ep.endpoint_id}/submit`, { tasks: { [otherFn]: [{ args: [] }] } }],
      ['post', `/v3/endpoints/${otherEp.endpoint_id}/submit`, { tasks: { [fn]: [{ args: [] }] } }],
      ['get', `/v2/tasks/${otherTask}`, undefined],
      ['post', '/v2/batch_status', { task_ids: [taskId, otherTask] }],
      ['post', '/v3/run', { endpoint_id: ep.endpoint_id, function_uuid: fn, wait: 0 }],
      ['delete', `/v2/tasks/${taskId}`, undefined],
      ['get', '/v3/keys', undefined],
      ['post', '/v3/keys', { name: 'child', expires_in: 3600, scopes: { functions: '*', endpoints: '*', actions: ['run'] } }],
    ] as const) {
      const res = await as(method, path, body);
      expect([res.status, res.body.code], `${method} ${path}: ${res.text}`).toEqual([403, 'FORBIDDEN_SCOPE']);
    }
  });

  it('lists keys without secrets, with when each was last used; revoking one refuses its next call', async () => {
    const alice = await newUser('alice');
    const fn = await registerFunction(alice);
    const ep = await registerEndpoint(alice);
    const key = await createKey(alice, { functions: '*', endpoints: '*', actions: ['read_results', 'submit'] });
    const before = await alice.call('get', '/v3/keys');
    expect(before.text).not.toContain(key.secret.split('.').pop());
    expect(before.body.keys).toEqual([expect.objectContaining({ key_id: key.key_id, name: 'detector-7', last_used_at: null, revoked_at: null })]);

    const submitted = await call('post', `/v3/endpoints/${ep.endpoint_id}/submit`, { token: key.secret, body: { tasks: { [fn]: [{ args: [] }] } } });
    expect(submitted.status).toBe(200);
    const used = await alice.call('get', '/v3/keys');
    expect(used.body.keys[0].last_used_at).not.toBeNull();

    const revoked = await alice.call('delete', `/v3/keys/${key.key_id}`);
    expect([revoked.status, revoked.body.revoked_at === null], revoked.text).toEqual([200, false]);
    const after = await call('get', `/v2/tasks/${submitted.body.tasks[fn][0]}`, { token: key.secret });
    expect([after.status, after.body.code]).toEqual([401, 'TOKEN_REVOKED']);
    // Another user cannot see or revoke it; a key id that is not one is 404 too.
    const bob = await newUser('bob');
    expect((await bob.call('delete', `/v3/keys/${key.key_id}`)).status).toBe(404);
    expect((await bob.call('delete', '/v3/keys/nope')).status).toBe(404);
  });

  it('refuses an expired key with 401 TOKEN_EXPIRED', async () => {
    const alice = await newUser('alice');
    const key = await createKey(alice, { functions: '*', endpoints: '*', actions: ['read_results'] });
    // Its expiry moved into the past in the owner's record, before the key was ever used (so not cached).
    await runInDurableObject(registryOf(env as unknown as GatewayEnv, alice.sub), async (_instance, state) => {
      state.storage.sql.exec('UPDATE api_keys SET expires_at = ? WHERE key_id = ?', Date.now() - 1000, key.key_id);
    });
    const res = await call('get', '/v3/objects/nothing-here', { token: key.secret });
    expect([res.status, res.body.code]).toEqual([401, 'TOKEN_EXPIRED']);
    expect((await alice.call('get', '/v3/keys')).body.keys[0].expires_at < new Date().toISOString()).toBe(true);
  });

  it('refuses a forged, altered or unknown key with 401, and a key that names another owner', async () => {
    const alice = await newUser('alice');
    const key = await createKey(alice, { functions: '*', endpoints: '*', actions: ['read_results'] });
    const [prefix, owner, id, secret] = key.secret.split('.');
    const altered = [
      `${prefix}.${owner}.${id}.${secret!.slice(0, -1)}${secret!.endsWith('A') ? 'B' : 'A'}`,
      `${prefix}.${btoa('mallory').replace(/=+$/, '')}.${id}.${secret}`,
      `${prefix}.${owner}.k${'0'.repeat(20)}.${secret}`,
      `${prefix}.${owner}.${id}`,
    ];
    for (const token of altered) {
      const res = await call('get', '/v3/objects/nothing-here', { token });
      expect([res.status, res.body.code], token).toEqual([401, 'UNAUTHORIZED']);
    }
  });

  it('refuses scopes that are empty or unbounded, and keys that never expire', async () => {
    const alice = await newUser('alice');
    for (const body of [
      { name: 'k', expires_in: 3600, scopes: { functions: [], endpoints: '*', actions: ['run'] } },
      { name: 'k', expires_in: 3600, scopes: { functions: '*', endpoints: '*', actions: [] } },
      { name: 'k', expires_in: 3600, scopes: { functions: '*', endpoints: '*', actions: ['admin'] } },
      { name: 'k', scopes: { functions: '*', endpoints: '*', actions: ['run'] } },
      { name: 'k', expires_in: 400 * 24 * 3600, scopes: { functions: '*', endpoints: '*', actions: ['run'] } },
    ]) {
      const res = await alice.call('post', '/v3/keys', body);
      expect([res.status, res.body.code], JSON.stringify(body)).toEqual([400, 'VALIDATION_ERROR']);
    }
  });
});

describe('POST /v3/users/me/revoke', () => {
  it('refuses every token issued before it on every route with 401 TOKEN_REVOKED; a token issued after works', async () => {
    const carol = await newUser('carol');
    const { values } = await resources(carol);
    const older = await mintUserToken(carol.sub);
    const key = await createKey(carol, { functions: '*', endpoints: '*', actions: ['read_results'] });
    const revoke = await carol.call('post', '/v3/users/me/revoke');
    expect(revoke.status, revoke.text).toBe(200);
    for (const spec of keyRoutes(routes.specs)) {
      const { url, body } = request(spec, values);
      for (const token of [carol.token, older]) {
        const res = await call(spec.method, url, { token, body });
        expect([res.status, res.body?.code], `${spec.method.toUpperCase()} ${spec.path}: ${res.text.slice(0, 200)}`).toEqual([401, 'TOKEN_REVOKED']);
      }
    }
    // iat counts whole seconds: a token of the revoke's own second is refused too, one from not_before on works.
    while (Date.now() < revoke.body.not_before * 1000) await new Promise((resolve) => setTimeout(resolve, 20));
    const fresh = await mintUserToken(carol.sub);
    const res = await call('get', `/v2/functions/${values.function_uuid}`, { token: fresh });
    expect(res.status, res.text).toBe(200);
    // Instrument keys are revoked one by one, not by this: the detector keeps reading its results.
    const byKey = await call('get', `/v2/tasks/${values.task_id}`, { token: key.secret });
    expect(byKey.status, byKey.text).toBe(200);
    // Other users are untouched.
    const dave = await newUser('dave');
    expect((await dave.call('get', '/v2/endpoints')).status).toBe(200);
  });
});
