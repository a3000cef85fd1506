// Sharing (issue 19), route by route as the owner, a guest and a stranger: groups, endpoint grants,
// function shares, the guest's view of a shared endpoint, and the endpoint's audit log.

import { describe, expect, it } from 'vitest';
import { call, FakeAgent, newUser, registerEndpoint, registerFunction, submit, success, type User } from '../../../test/helpers/gateway';

async function setting() {
  const facility = await newUser('facility');
  const alice = await newUser('alice');
  const bob = await newUser('bob');
  const fn = await registerFunction(facility, '(x) => x + 1', 'inc');
  const secretFn = await registerFunction(facility, '(x) => x * 3', 'triple');
  const aliceFn = await registerFunction(alice, '(x) => x - 1', 'dec');
  const ep = await registerEndpoint(facility);
  const group = await facility.call('post', '/v3/groups', { name: 'beamline', members: [alice.sub] });
  expect(group.status, group.text).toBe(200);
  const share = await facility.call('post', `/v3/endpoints/${ep.endpoint_id}/shares`, { group: 'beamline', functions: [fn] });
  expect(share.status, share.text).toBe(200);
  return { facility, alice, bob, fn, secretFn, aliceFn, ep };
}

function run(user: User, endpointId: string, functionUuid: string, args: unknown[], wait = 0) {
  return user.call('post', '/v3/run', { endpoint_id: endpointId, function_uuid: functionUuid, args, wait });
}

describe('groups', () => {
  it('are the owner\'s: created, replaced, listed and deleted by the owner; another user sees only their own', async () => {
    const owner = await newUser('owner');
    const other = await newUser('other');
    expect((await owner.call('post', '/v3/groups', { name: 'beamline', members: ['alice', 'carol'] })).body.members).toEqual(['alice', 'carol']);
    expect((await owner.call('post', '/v3/groups', { name: 'beamline', members: ['dave'] })).body.members).toEqual(['dave']);
    expect((await owner.call('get', '/v3/groups')).body.groups.map((g: { name: string }) => g.name)).toEqual(['beamline']);
    expect((await other.call('get', '/v3/groups')).body.groups).toEqual([]);
    const refused = await other.call('delete', '/v3/groups/beamline');
    expect([refused.status, refused.body.code]).toEqual([404, 'NOT_FOUND']);
    expect((await owner.call('delete', '/v3/groups/beamline')).status).toBe(200);
    expect((await owner.call('get', '/v3/groups')).body.groups).toEqual([]);
    const bad = await owner.call('post', '/v3/groups', { name: 'bad name', members: [] });
    expect([bad.status, bad.body.code]).toEqual([400, 'VALIDATION_ERROR']);
  });
});

describe('shared endpoints', () => {
  it('a guest runs a granted function; a stranger gets 404; a function outside the grant is 403 FUNCTION_NOT_SHARED', async () => {
    const { facility, alice, bob, fn, secretFn, aliceFn, ep } = await setting();
    const bobFn = await registerFunction(bob, '(x) => x', 'id');
    const agent = await FakeAgent.ready(ep.endpoint_id, ep.token);
    agent.send({ type: 'credit', n: 10 });

    const running = run(alice, ep.endpoint_id, fn, [41], 10);
    const [task] = await agent.tasks(1);
    agent.send({ type: 'results', results: [success(task.task_id, 42)] });
    const done = await running;
    expect([done.status, done.body.status, done.body.result], done.text).toEqual([200, 'success', 42]);
    // The guest reads their own task; the owner reads it too (it ran on the owner's endpoint); the stranger does not.
    expect((await alice.call('get', `/v2/tasks/${task.task_id}`)).body.result).toBe(42);
    expect((await facility.call('get', `/v2/tasks/${task.task_id}`)).body.result).toBe(42);
    expect((await bob.call('get', `/v2/tasks/${task.task_id}`)).status).toBe(404);
    expect(Object.keys((await bob.call('post', '/v2/batch_status', { task_ids: [task.task_id] })).body.results)).toEqual([]);
    expect(Object.keys((await alice.call('post', '/v2/batch_status', { task_ids: [task.task_id] })).body.results)).toEqual([task.task_id]);

    // Outside the grant: the owner's other function, and alice's own.
    for (const other of [secretFn, aliceFn]) {
      const res = await run(alice, ep.endpoint_id, other, [1]);
      expect([res.status, res.body.code], res.text).toEqual([other === secretFn ? 404 : 403, other === secretFn ? 'NOT_FOUND' : 'FUNCTION_NOT_SHARED']);
    }
    const viaSubmit = await alice.call('post', `/v3/endpoints/${ep.endpoint_id}/submit`, { tasks: { [aliceFn]: [{ args: [1] }] } });
    expect([viaSubmit.status, viaSubmit.body.code]).toEqual([403, 'FUNCTION_NOT_SHARED']);
    // A guest's task may not name stored objects (read with the owner's credentials); files under data_roots it may.
    const objectRef = await run(alice, ep.endpoint_id, fn, [{ $ref: 'a'.repeat(64) }]);
    expect([objectRef.status, objectRef.body.code, objectRef.body.details], objectRef.text).toEqual([403, 'FORBIDDEN', { reason: 'guest_object_ref' }]);
    const nested = await run(alice, ep.endpoint_id, fn, [{ inputs: [{ $ref: 'a'.repeat(64), locations: ['file:///data/x'] }] }]);
    expect(nested.status).toBe(403);
    expect((await run(alice, ep.endpoint_id, fn, [{ $ref: 'file:///data/run1.h5' }])).status).toBe(202);

    // The stranger: 404 for the endpoint everywhere, never 403.
    for (const res of [
      await run(bob, ep.endpoint_id, fn, [1]),
      await run(bob, ep.endpoint_id, bobFn, [1]),
      await bob.call('get', `/v2/endpoints/${ep.endpoint_id}/status`),
      await bob.call('get', `/v2/endpoints/${ep.endpoint_id}`),
      await bob.call('get', `/v3/endpoints/${ep.endpoint_id}/shares`),
      await bob.call('get', `/v3/endpoints/${ep.endpoint_id}/audit`),
      await bob.call('post', `/v3/endpoints/${ep.endpoint_id}/shares`, { user: bob.sub, functions: '*' }),
    ]) {
      expect([res.status, res.body.code], res.text).toEqual([404, 'NOT_FOUND']);
    }
    agent.close();
  });

  it('the guest sees online and queue length only; the owner sees the full status; the guest cannot read or change the grants', async () => {
    const { facility, alice, ep } = await setting();
    const agent = await FakeAgent.ready(ep.endpoint_id, ep.token);
    const guest = await alice.call('get', `/v2/endpoints/${ep.endpoint_id}/status`);
    expect(guest.status, guest.text).toBe(200);
    expect(guest.body).toEqual({ status: 'online', details: { queue_length: 0 } });
    const owner = await facility.call('get', `/v2/endpoints/${ep.endpoint_id}/status`);
    expect(Object.keys(owner.body.details)).toContain('total_workers');
    for (const res of [
      await alice.call('get', `/v2/endpoints/${ep.endpoint_id}`),
      await alice.call('get', `/v3/endpoints/${ep.endpoint_id}/shares`),
      await alice.call('post', `/v3/endpoints/${ep.endpoint_id}/shares`, { user: alice.sub, functions: '*' }),
      await alice.call('delete', `/v3/endpoints/${ep.endpoint_id}/shares?group=beamline`),
      await alice.call('get', `/v3/endpoints/${ep.endpoint_id}/audit`),
    ]) {
      expect([res.status, res.body.code], res.text).toEqual([404, 'NOT_FOUND']);
    }
    const grants = await facility.call('get', `/v3/endpoints/${ep.endpoint_id}/shares`);
    expect(grants.body.grants).toMatchObject([{ group: 'beamline', user: null }]);
    agent.close();
  });

  it('unsharing ends the grant at once; a grant to a group follows its membership; a group deleted ends its grants', async () => {
    const { facility, alice, fn, ep } = await setting();
    const carol = await newUser('carol');
    expect((await run(alice, ep.endpoint_id, fn, [1])).status).toBe(202);
    expect((await run(carol, ep.endpoint_id, fn, [1])).status).toBe(404);
    expect((await facility.call('post', '/v3/groups', { name: 'beamline', members: [alice.sub, carol.sub] })).status).toBe(200);
    expect((await run(carol, ep.endpoint_id, fn, [1])).status).toBe(202);
    expect((await facility.call('delete', `/v3/endpoints/${ep.endpoint_id}/shares?group=beamline`)).body.grants).toEqual([]);
    expect((await run(alice, ep.endpoint_id, fn, [1])).status).toBe(404);
    // A user grant with "*": any function the guest may use, the owner's included.
    expect((await facility.call('post', `/v3/endpoints/${ep.endpoint_id}/shares`, { user: carol.sub, functions: '*' })).status).toBe(200);
    const carolFn = await registerFunction(carol, '(x) => [x]', 'wrap');
    expect((await run(carol, ep.endpoint_id, carolFn, [1])).status).toBe(202);
    expect((await run(carol, ep.endpoint_id, fn, [1])).status).toBe(202);
    const selfGrant = await facility.call('post', `/v3/endpoints/${ep.endpoint_id}/shares`, { user: facility.sub, functions: '*' });
    expect([selfGrant.status, selfGrant.body.code]).toEqual([400, 'VALIDATION_ERROR']);
    const noGroup = await facility.call('post', `/v3/endpoints/${ep.endpoint_id}/shares`, { group: 'nobody', functions: '*' });
    expect([noGroup.status, noGroup.body.code]).toEqual([400, 'VALIDATION_ERROR']);
  });
});

describe('shared functions', () => {
  it('a public function runs for any user on their own endpoints; the owner\'s other functions, endpoints and tasks stay 404', async () => {
    const owner = await newUser('owner');
    const user = await newUser('user');
    const pub = await registerFunction(owner, '(x) => x * 10', 'tenfold');
    const priv = await registerFunction(owner, '(x) => x * 11', 'elevenfold');
    const ownerEp = await registerEndpoint(owner);
    const userEp = await registerEndpoint(user);
    const ownerTask = (await submit(owner, ownerEp.endpoint_id, pub, [{ args: [1] }])).task_ids[0]!;
    expect((await user.call('get', `/v2/functions/${pub}`)).status).toBe(404);
    const shared = await owner.call('post', `/v3/functions/${pub}/shares`, { public: true });
    expect([shared.status, shared.body.public], shared.text).toEqual([200, true]);

    const read = await user.call('get', `/v2/functions/${pub}`);
    expect([read.status, read.body.function_name]).toEqual([200, 'tenfold']);
    const agent = await FakeAgent.ready(userEp.endpoint_id, userEp.token);
    agent.send({ type: 'credit', n: 5 });
    const running = run(user, userEp.endpoint_id, pub, [4], 10);
    const [task] = await agent.tasks(1);
    expect(task.function_uuid).toBe(pub);
    agent.send({ type: 'results', results: [success(task.task_id, 40)] });
    expect((await running).body.result).toBe(40);

    for (const res of [
      await user.call('get', `/v2/functions/${priv}`),
      await run(user, userEp.endpoint_id, priv, [1]),
      await run(user, ownerEp.endpoint_id, pub, [1]),
      await user.call('get', `/v2/endpoints/${ownerEp.endpoint_id}/status`),
      await user.call('get', `/v2/tasks/${ownerTask}`),
      await user.call('get', `/v3/functions/${pub}/shares`),
      await user.call('post', `/v3/functions/${pub}/shares`, { user: user.sub }),
      await user.call('delete', `/v3/functions/${pub}/shares?public=true`),
    ]) {
      expect([res.status, res.body.code], res.text).toEqual([404, 'NOT_FOUND']);
    }
    // Unshared: 404 again (this isolate forgets at once).
    expect((await owner.call('delete', `/v3/functions/${pub}/shares?public=true`)).body.public).toBe(false);
    expect((await user.call('get', `/v2/functions/${pub}`)).status).toBe(404);
    expect((await run(user, userEp.endpoint_id, pub, [1])).status).toBe(404);
    agent.close();
  });

  it('a function shared with a group is the members\' to read and run; a function granted only on an endpoint runs only there', async () => {
    const { facility, alice, bob, fn, ep } = await setting();
    const aliceEp = await registerEndpoint(alice);
    // Granted on the facility's endpoint only: not on alice's own.
    const elsewhere = await run(alice, aliceEp.endpoint_id, fn, [1]);
    expect([elsewhere.status, elsewhere.body.code]).toEqual([404, 'NOT_FOUND']);
    expect((await alice.call('get', `/v2/functions/${fn}`)).status).toBe(404);
    expect((await facility.call('post', `/v3/functions/${fn}/shares`, { group: 'beamline' })).body.groups).toEqual(['beamline']);
    expect((await alice.call('get', `/v2/functions/${fn}`)).status).toBe(200);
    expect((await run(alice, aliceEp.endpoint_id, fn, [1])).status).toBe(202);
    expect((await bob.call('get', `/v2/functions/${fn}`)).status).toBe(404);
    expect((await facility.call('get', `/v3/functions/${fn}/shares`)).body).toMatchObject({ public: false, users: [], groups: ['beamline'] });
    void ep;
  });
});

describe('audit log', () => {
  it('the owner reads who ran what (from lineage), sharing changes and refused attempts, paged with a cursor; guests and strangers get 404', async () => {
    const { facility, alice, bob, fn, aliceFn, ep } = await setting();
    const agent = await FakeAgent.ready(ep.endpoint_id, ep.token);
    agent.send({ type: 'credit', n: 10 });
    const ids: string[] = [];
    for (const x of [1, 2]) {
      const running = run(alice, ep.endpoint_id, fn, [x], 10);
      const [task] = await agent.tasks(1);
      ids.push(task.task_id);
      agent.send({ type: 'results', results: [success(task.task_id, x + 1)] });
      expect((await running).status).toBe(200);
    }
    expect((await run(alice, ep.endpoint_id, aliceFn, [1])).status).toBe(403);
    // A stranger with a function of their own reaches the endpoint's hub, which refuses and records it.
    const bobFn = await registerFunction(bob, '(x) => x', 'id');
    expect((await run(bob, ep.endpoint_id, bobFn, [1])).status).toBe(404);

    const all: any[] = [];
    let cursor: string | undefined;
    for (let pages = 0; pages < 20; pages++) {
      const res = await facility.call('get', `/v3/endpoints/${ep.endpoint_id}/audit?limit=2${cursor ? `&cursor=${cursor}` : ''}`);
      expect(res.status, res.text).toBe(200);
      all.push(...res.body.events);
      cursor = res.body.next_cursor;
      if (!res.body.more) break;
    }
    const ended = all.filter((e) => e.kind === 'task_ended');
    expect(ended.map((e) => [e.task_id, e.user, e.function_uuid, e.status]).sort()).toEqual(ids.map((id) => [id, alice.sub, fn, 'success']).sort());
    expect(all.filter((e) => e.kind === 'task_received').length).toBe(2);
    expect(all.filter((e) => e.kind === 'sharing_changed')).toMatchObject([{ user: facility.sub, detail: { action: 'shared', group: 'beamline' } }]);
    const refused = all.filter((e) => e.kind === 'refused');
    expect(refused).toMatchObject([
      { user: alice.sub, detail: { reason: 'function_not_shared', function_uuid: aliceFn } },
      { user: bob.sub, detail: { reason: 'not_shared' } },
    ]);
    // Nothing new: the cursor answers an empty page, and later events come after it.
    const after = await facility.call('get', `/v3/endpoints/${ep.endpoint_id}/audit?cursor=${cursor}`);
    expect([after.body.events, after.body.more]).toEqual([[], false]);
    expect((await facility.call('post', `/v3/endpoints/${ep.endpoint_id}/revoke`)).status).toBe(200);
    const later = await facility.call('get', `/v3/endpoints/${ep.endpoint_id}/audit?cursor=${cursor}`);
    expect(later.body.events).toMatchObject([{ kind: 'secret_revoked', user: facility.sub }]);

    for (const who of [alice, bob]) {
      const res = await who.call('get', `/v3/endpoints/${ep.endpoint_id}/audit`);
      expect([res.status, res.body.code]).toEqual([404, 'NOT_FOUND']);
    }
    const badCursor = await facility.call('get', `/v3/endpoints/${ep.endpoint_id}/audit?cursor=abc`);
    expect([badCursor.status, badCursor.body.code]).toEqual([400, 'VALIDATION_ERROR']);
    agent.close();
  });

  it('logs an instrument key used on the endpoint (once a minute, not per task) and its revocation', async () => {
    const owner = await newUser('owner');
    const fn = await registerFunction(owner);
    const ep = await registerEndpoint(owner);
    const created = await owner.call('post', '/v3/keys', { name: 'detector-7', expires_in: 3600, scopes: { functions: [fn], endpoints: [ep.endpoint_id], actions: ['run'] } });
    for (let i = 0; i < 3; i++) {
      const res = await call('post', '/v3/run', { token: created.body.secret, body: { endpoint_id: ep.endpoint_id, function_uuid: fn, args: [i, 1], wait: 0 } });
      expect(res.status, res.text).toBe(202);
    }
    expect((await owner.call('delete', `/v3/keys/${created.body.key_id}`)).status).toBe(200);
    const page = await owner.call('get', `/v3/endpoints/${ep.endpoint_id}/audit`);
    expect(page.body.events.map((e: { kind: string; detail: unknown }) => [e.kind, e.detail])).toEqual([
      ['key_used', { key_id: created.body.key_id }],
      ['key_revoked', { key_id: created.body.key_id, name: 'detector-7' }],
    ]);
  });
});
