// Endpoint registration, update, listing, status, allow-list and deletion.

import { describe, expect, it } from 'vitest';
import { LIMITS } from '../../protocol/api';
import { call, exchangeSecret, newUser, registerEndpoint, registerFunction } from '../../../test/helpers/gateway';

describe('endpoints', () => {
  it('registers; the same name again gives the same id and a fresh token, and only the fresh one works', async () => {
    const alice = await newUser();
    const first = await alice.call('post', '/v3/endpoints', { endpoint_name: 'beamline', display_name: 'B' });
    expect(first.status).toBe(200);
    expect(first.body.endpoint_id).toMatch(/^[0-9a-f-]{36}$/);
    expect(first.body.task_queue_info.connection_url).toBe(`wss://gw.test/v3/endpoints/${first.body.endpoint_id}/ws`);
    const again = await alice.call('post', '/v3/endpoints', { endpoint_name: 'beamline', display_name: 'B2', metadata: { k: 1 } });
    expect(again.body.endpoint_id).toBe(first.body.endpoint_id);
    expect(again.body.token).not.toBe(first.body.token);
    expect((await exchangeSecret(first.body.endpoint_id, first.body.token)).body.code).toBe('TOKEN_REVOKED');
    expect((await exchangeSecret(first.body.endpoint_id, again.body.token)).status).toBe(200);
    const doc = await alice.call('get', `/v2/endpoints/${first.body.endpoint_id}`);
    expect(doc.body).toMatchObject({ endpoint_id: first.body.endpoint_id, endpoint_name: 'beamline', display_name: 'B2', allowed_functions: null, metadata: { k: 1 } });
    // Another owner's endpoint of the same name is another endpoint.
    const bob = await newUser();
    const bobs = await bob.call('post', '/v3/endpoints', { endpoint_name: 'beamline' });
    expect(bobs.body.endpoint_id).not.toBe(first.body.endpoint_id);
  });

  it('lists only the caller\'s endpoints', async () => {
    const alice = await newUser();
    const bob = await newUser();
    const a1 = await registerEndpoint(alice);
    const a2 = await registerEndpoint(alice);
    const list = await alice.call('get', '/v2/endpoints');
    expect(list.status).toBe(200);
    expect(list.body.map((e: any) => e.endpoint_id).sort()).toEqual([a1.endpoint_id, a2.endpoint_id].sort());
    const empty = await bob.call('get', '/v2/endpoints');
    expect(empty.body).toEqual([]);
  });

  it('updates with PUT, including a rename; a taken name is refused', async () => {
    const alice = await newUser();
    const ep = await registerEndpoint(alice, { endpoint_name: 'old-name' });
    const other = await registerEndpoint(alice, { endpoint_name: 'taken' });
    const put = await alice.call('put', `/v3/endpoints/${ep.endpoint_id}`, { endpoint_name: 'new-name', display_name: 'New' });
    expect(put.status).toBe(200);
    expect(put.body).toMatchObject({ endpoint_id: ep.endpoint_id, endpoint_name: 'new-name', display_name: 'New' });
    const reRegister = await alice.call('post', '/v3/endpoints', { endpoint_name: 'new-name' });
    expect(reRegister.body.endpoint_id).toBe(ep.endpoint_id);
    const clash = await alice.call('put', `/v3/endpoints/${ep.endpoint_id}`, { endpoint_name: 'taken' });
    expect(clash.status).toBe(400);
    expect(clash.body.message).toContain('endpoint_name');
    expect(other.endpoint_id).not.toBe(ep.endpoint_id);
  });

  it('reports the allow-list', async () => {
    const alice = await newUser();
    const fn = await registerFunction(alice);
    const open = await registerEndpoint(alice);
    expect((await alice.call('get', `/v3/endpoints/${open.endpoint_id}/allowed_functions`)).body).toEqual({ endpoint_id: open.endpoint_id, restricted: false, functions: [] });
    const closed = await registerEndpoint(alice, { allowed_functions: [fn] });
    expect((await alice.call('get', `/v3/endpoints/${closed.endpoint_id}/allowed_functions`)).body).toEqual({ endpoint_id: closed.endpoint_id, restricted: true, functions: [fn] });
  });

  it('is offline with zeros before any agent', async () => {
    const alice = await newUser();
    const ep = await registerEndpoint(alice);
    const res = await alice.call('get', `/v2/endpoints/${ep.endpoint_id}/status`);
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ status: 'offline', details: { total_workers: 0, idle_workers: 0, pending_tasks: 0, outstanding_tasks: 0, managers: 0, blocks: 0, last_heartbeat: null } });
  });

  it('deletes: 200 {result: 302}, then 404 everywhere, gone from the list, and submits are refused', async () => {
    const alice = await newUser();
    const fn = await registerFunction(alice);
    const ep = await registerEndpoint(alice, { endpoint_name: 'doomed' });
    const del = await alice.call('delete', `/v2/endpoints/${ep.endpoint_id}`);
    expect(del.status).toBe(200);
    expect(del.body).toEqual({ result: 302 });
    for (const path of [`/v2/endpoints/${ep.endpoint_id}`, `/v2/endpoints/${ep.endpoint_id}/status`, `/v3/endpoints/${ep.endpoint_id}/allowed_functions`]) {
      expect((await alice.call('get', path)).status, path).toBe(404);
    }
    expect((await alice.call('delete', `/v2/endpoints/${ep.endpoint_id}`)).status).toBe(404);
    expect((await alice.call('get', '/v2/endpoints')).body).toEqual([]);
    const submitted = await alice.call('post', `/v3/endpoints/${ep.endpoint_id}/submit`, { tasks: { [fn]: [{ args: [] }] } });
    expect(submitted.status).toBe(404);
    // The name is free again: registering it makes a new endpoint.
    const reborn = await alice.call('post', '/v3/endpoints', { endpoint_name: 'doomed' });
    expect(reborn.body.endpoint_id).not.toBe(ep.endpoint_id);
  });

  it('validates the body, naming the field', async () => {
    const alice = await newUser();
    const res = await alice.call('post', '/v3/endpoints', { endpoint_name: 'has space' });
    expect(res.status).toBe(400);
    expect(res.body.code).toBe('VALIDATION_ERROR');
    expect(res.body.message).toMatch(/^endpoint_name: /);
    const bad = await alice.call('post', '/v3/endpoints', { endpoint_name: 'ok', allowed_functions: ['nope'] });
    expect(bad.body.message).toMatch(/^allowed_functions\.0: /);
  });

  it('refuses metadata nested 2,000 deep with 400 VALIDATION_ERROR naming the limit, and keeps nothing', async () => {
    const alice = await newUser();
    const rawBody = `{"endpoint_name": "deep", "metadata": {"k": ${'['.repeat(2000)}${']'.repeat(2000)}}}`;
    const res = await call('post', '/v3/endpoints', { token: alice.token, rawBody });
    expect([res.status, res.body.code], res.text).toEqual([400, 'VALIDATION_ERROR']);
    expect(res.body.message).toContain(`${LIMITS.maxJsonDepth} levels`);
    expect((await alice.call('get', '/v2/endpoints')).body).toEqual([]);
  });
});
