// Endpoint credentials: the secret from POST /v3/endpoints is only exchanged for short-lived access
// tokens; the agent socket takes access tokens of the current secret generation; revoking the
// secret refuses the connected agent at once.

import { decodeJwt } from 'jose';
import { describe, expect, it } from 'vitest';
import { ENDPOINT_ACCESS_AUDIENCE } from '../../protocol/tokens';
import { call, exchangeSecret, FakeAgent, mintEndpointAccessToken, newUser, registerEndpoint } from '../../../test/helpers/gateway';

async function setup() {
  const user = await newUser();
  const ep = await registerEndpoint(user);
  return { user, ep };
}

describe('endpoint secret and access tokens', () => {
  it('exchanges the secret for a short-lived access token that opens the socket', async () => {
    const { user, ep } = await setup();
    const res = await exchangeSecret(ep.endpoint_id, ep.token);
    expect(res.status, res.text).toBe(200);
    expect(res.body.expires_in).toBe(3600);
    const claims = decodeJwt(res.body.access_token);
    expect(claims).toMatchObject({ aud: ENDPOINT_ACCESS_AUDIENCE, sub: user.sub, endpoint_id: ep.endpoint_id, scope: 'endpoint', gen: 0 });
    expect(claims.exp! - claims.iat!).toBe(3600);
    expect(decodeJwt(ep.token).gen).toBe(0);
    const agent = await FakeAgent.ready(ep.endpoint_id, res.body.access_token);
    agent.close();
  });

  it('refuses the secret itself on the socket, and access tokens at the exchange', async () => {
    const { ep } = await setup();
    const socket = await FakeAgent.openRaw(ep.endpoint_id, ep.token);
    expect(socket.status).toBe(401);
    expect(((await socket.json()) as any).code).toBe('UNAUTHORIZED');
    const access = (await exchangeSecret(ep.endpoint_id, ep.token)).body.access_token;
    const again = await exchangeSecret(ep.endpoint_id, access);
    expect(again.status).toBe(401);
    // The secret opens no user route either.
    expect((await call('get', `/v2/endpoints/${ep.endpoint_id}`, { token: ep.token })).status).toBe(401);
  });

  it('refuses an expired access token at upgrade with 401 TOKEN_EXPIRED', async () => {
    const { user, ep } = await setup();
    const expired = await mintEndpointAccessToken(user.sub, ep.endpoint_id, { expiresIn: -10 });
    const res = await FakeAgent.openRaw(ep.endpoint_id, expired);
    expect(res.status).toBe(401);
    expect(((await res.json()) as any).code).toBe('TOKEN_EXPIRED');
  });

  it('revoke closes the connected agent with a TOKEN_REVOKED refuse and refuses the old generation', async () => {
    const { user, ep } = await setup();
    const oldAccess = (await exchangeSecret(ep.endpoint_id, ep.token)).body.access_token;
    const agent = await FakeAgent.ready(ep.endpoint_id, oldAccess);
    const object = await call('put', '/v3/objects', { token: user.token, rawBody: 'owner-bytes' });
    expect((await call('get', `/v3/objects/${object.body.$ref}`, { token: oldAccess })).text).toBe('owner-bytes');

    const revoked = await user.call('post', `/v3/endpoints/${ep.endpoint_id}/revoke`);
    expect(revoked.status, revoked.text).toBe(200);
    expect(revoked.body).toEqual({ endpoint_id: ep.endpoint_id, secret_generation: 1 });
    const refuse = await agent.next('refuse');
    expect(refuse.code).toBe('TOKEN_REVOKED');
    expect(refuse.message).toContain('secret was revoked');
    expect(await agent.closed()).toBe(4003);

    // An access token of the old generation, still unexpired, no longer opens the socket.
    const socket = await FakeAgent.openRaw(ep.endpoint_id, oldAccess);
    expect(socket.status).toBe(401);
    expect(((await socket.json()) as any).code).toBe('TOKEN_REVOKED');
    // …nor reads the owner's objects.
    const read = await call('get', `/v3/objects/${object.body.$ref}`, { token: oldAccess });
    expect([read.status, read.body.code]).toEqual([401, 'TOKEN_REVOKED']);
    // The old secret is refused at the exchange.
    const exchange = await exchangeSecret(ep.endpoint_id, ep.token);
    expect(exchange.status).toBe(401);
    expect(exchange.body.code).toBe('TOKEN_REVOKED');

    // Registering again hands out a secret of a new generation, which works.
    const name = (await user.call('get', `/v2/endpoints/${ep.endpoint_id}`)).body.endpoint_name;
    const again = await user.call('post', '/v3/endpoints', { endpoint_name: name });
    expect(again.status, again.text).toBe(200);
    expect(again.body.endpoint_id).toBe(ep.endpoint_id);
    expect(decodeJwt(again.body.token).gen).toBe(2);
    const fresh = await exchangeSecret(ep.endpoint_id, again.body.token);
    expect(fresh.status, fresh.text).toBe(200);
    expect(decodeJwt(fresh.body.access_token).gen).toBe(2);
    const next = await FakeAgent.ready(ep.endpoint_id, fresh.body.access_token);
    next.close();
  });

  it('registering the name again (configure --force) revokes the old secret, its access tokens and the agent they connected', async () => {
    const { user, ep } = await setup();
    const oldAccess = (await exchangeSecret(ep.endpoint_id, ep.token)).body.access_token;
    const agent = await FakeAgent.ready(ep.endpoint_id, oldAccess);
    const name = (await user.call('get', `/v2/endpoints/${ep.endpoint_id}`)).body.endpoint_name;

    const again = await user.call('post', '/v3/endpoints', { endpoint_name: name });
    expect(again.status, again.text).toBe(200);
    expect(again.body.endpoint_id).toBe(ep.endpoint_id);
    expect((await agent.next('refuse')).code).toBe('TOKEN_REVOKED');
    expect(await agent.closed()).toBe(4003);

    const old = await exchangeSecret(ep.endpoint_id, ep.token);
    expect([old.status, old.body.code]).toEqual([401, 'TOKEN_REVOKED']);
    const socket = await FakeAgent.openRaw(ep.endpoint_id, oldAccess);
    expect([socket.status, ((await socket.json()) as any).code]).toEqual([401, 'TOKEN_REVOKED']);

    const fresh = await exchangeSecret(ep.endpoint_id, again.body.token);
    expect(fresh.status, fresh.text).toBe(200);
    const next = await FakeAgent.ready(ep.endpoint_id, fresh.body.access_token);
    next.close();
  });

  it("only the owner may revoke; another user's revoke answers 404 and changes nothing", async () => {
    const { ep } = await setup();
    const bob = await newUser('bob');
    expect((await bob.call('post', `/v3/endpoints/${ep.endpoint_id}/revoke`)).status).toBe(404);
    expect((await exchangeSecret(ep.endpoint_id, ep.token)).status).toBe(200);
  });
});
