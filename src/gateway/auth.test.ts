// Bearer tokens: which tokens open which routes, and the codes of each refusal.

import { env } from 'cloudflare:workers';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import { authenticateUser } from './auth';
import type { GatewayEnv } from './env';
import { FerryError } from '../protocol/errors';
import { DEV_ISSUER, USER_AUDIENCE } from '../protocol/tokens';
import { call, mintEndpointToken, mintUserToken, newUser, registerEndpoint } from '../../test/helpers/gateway';

function gatewayKey(): Uint8Array {
  return new TextEncoder().encode((env as unknown as GatewayEnv).JWT_SECRET);
}

describe('user routes', () => {
  it('refuse a missing or malformed Authorization header with 401 UNAUTHORIZED', async () => {
    for (const headers of [{}, { authorization: 'Basic abc' }, { authorization: 'Bearer' }, { authorization: 'Bearer not.a.jwt' }] as Record<string, string>[]) {
      const res = await call('get', '/v2/endpoints', { headers });
      expect(res.status, JSON.stringify(headers)).toBe(401);
      expect(res.body.code).toBe('UNAUTHORIZED');
    }
  });

  it('refuse a token signed with another key, or for another audience or issuer', async () => {
    const tokens = [
      await mintUserToken('mallory', { key: new TextEncoder().encode('not-the-gateway-secret') }),
      await mintUserToken('mallory', { audience: 'someone-else' }),
      await mintUserToken('mallory', { issuer: 'someone-else' }),
    ];
    for (const token of tokens) {
      const res = await call('get', '/v2/endpoints', { token });
      expect(res.status).toBe(401);
      expect(res.body.code).toBe('UNAUTHORIZED');
    }
  });

  it('refuse an expired token with 401 TOKEN_EXPIRED', async () => {
    const token = await mintUserToken('late', { expiresIn: Math.floor(Date.now() / 1000) - 60 });
    const res = await call('get', '/v2/endpoints', { token });
    expect(res.status).toBe(401);
    expect(res.body.code).toBe('TOKEN_EXPIRED');
  });

  it('take a token verified once until its exp, and no longer: the isolate\'s cache of verified tokens ends where the token does', async () => {
    const gatewayEnv = env as unknown as GatewayEnv;
    const exp = Math.floor(Date.now() / 1000) + 60;
    const token = await mintUserToken('cached', { expiresIn: exp });
    await expect(authenticateUser(gatewayEnv, `Bearer ${token}`)).resolves.toMatchObject({ owner: 'cached', via: 'dev' });
    await expect(authenticateUser(gatewayEnv, `Bearer ${token}`)).resolves.toMatchObject({ owner: 'cached', via: 'dev' });
    vi.useFakeTimers({ toFake: ['Date'] });
    try {
      vi.setSystemTime((exp + 1) * 1000);
      await expect(authenticateUser(gatewayEnv, `Bearer ${token}`)).rejects.toMatchObject({ code: 'TOKEN_EXPIRED' });
    } finally {
      vi.useRealTimers();
    }
    // Settings are part of a verdict: the same token under DEPLOYMENT=production is verified again, and refused.
    await expect(authenticateUser({ ...gatewayEnv, DEPLOYMENT: 'production' }, `Bearer ${token}`)).rejects.toMatchObject({ code: 'UNAUTHORIZED' });
  });

  it('refuse a token without exp with 401 UNAUTHORIZED naming exp', async () => {
    const token = await new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject('forever').setAudience(USER_AUDIENCE).setIssuer(DEV_ISSUER).setIssuedAt().sign(gatewayKey());
    const res = await call('get', '/v2/endpoints', { token });
    expect([res.status, res.body.code], res.text).toEqual([401, 'UNAUTHORIZED']);
    expect(res.body.message).toContain('exp');
  });

  it('refuse a token that lives longer than MAX_USER_TOKEN_TTL_S, from its iat or from now, and accept the 30 days ferry token mints', async () => {
    const cap = Number((env as unknown as GatewayEnv).MAX_USER_TOKEN_TTL_S);
    expect(cap).toBe(30 * 24 * 3600);
    const now = Math.floor(Date.now() / 1000);
    const sign = (claims: { iat?: number; exp: number }) => {
      const jwt = new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject('long-lived').setAudience(USER_AUDIENCE).setIssuer(DEV_ISSUER).setExpirationTime(claims.exp);
      if (claims.iat !== undefined) jwt.setIssuedAt(claims.iat);
      return jwt.sign(gatewayKey());
    };
    const tooLong = [
      await sign({ iat: now, exp: now + cap + 3600 }),
      // Backdated: an exp near enough, but a lifetime over the cap.
      await sign({ iat: now - 10 * 24 * 3600, exp: now + cap - 24 * 3600 }),
      // No iat: judged from now.
      await sign({ exp: now + cap + 3600 }),
    ];
    for (const token of tooLong) {
      const res = await call('get', '/v2/endpoints', { token });
      expect([res.status, res.body.code], res.text).toEqual([401, 'UNAUTHORIZED']);
      expect(res.body.message).toContain(`${cap}`);
    }
    for (const token of [await mintUserToken('monthly', { expiresIn: '30d' }), await sign({ exp: now + cap - 60 })]) {
      const res = await call('get', '/v2/endpoints', { token });
      expect(res.status, res.text).toBe(200);
    }
  });

  it('refuse an endpoint token', async () => {
    const user = await newUser();
    const ep = await registerEndpoint(user);
    const res = await call('get', `/v2/endpoints/${ep.endpoint_id}`, { token: ep.token });
    expect(res.status).toBe(401);
    expect(res.body.code).toBe('UNAUTHORIZED');
    const minted = await call('get', '/v2/endpoints', { token: await mintEndpointToken(user.sub, ep.endpoint_id) });
    expect(minted.status).toBe(401);
  });

  it('need no token for version, health and the OpenAPI document', async () => {
    for (const path of ['/v2/version', '/healthz', '/v3/openapi.json']) expect((await call('get', path)).status, path).toBe(200);
  });
});

describe('OIDC tokens through a JWKS', () => {
  afterEach(() => vi.restoreAllMocks());

  /** Two providers' keys, served at their JWKS URLs through a stubbed fetch. */
  async function twoProviders() {
    const providers = await Promise.all(
      ['https://idp-a.test', 'https://idp-b.test'].map(async (issuer) => {
        const { privateKey, publicKey } = await generateKeyPair('RS256');
        const jwk = { ...(await exportJWK(publicKey)), kid: 'k1', alg: 'RS256', use: 'sig' };
        const jwksUrl = `${issuer}/jwks-${crypto.randomUUID()}`;
        const sign = (sub: string, iss = issuer) => new SignJWT({}).setProtectedHeader({ alg: 'RS256', kid: 'k1' }).setSubject(sub).setIssuer(iss).setAudience('ferry-prod').setIssuedAt().setExpirationTime('5m').sign(privateKey);
        return { issuer, jwk, jwksUrl, privateKey, sign };
      }),
    );
    vi.spyOn(globalThis, 'fetch').mockImplementation(async (input) => {
      const url = input instanceof Request ? input.url : String(input);
      const provider = providers.find((p) => p.jwksUrl === url);
      return provider ? Response.json({ keys: [provider.jwk] }) : new Response('no', { status: 404 });
    });
    return providers;
  }

  it('accepts an RS256 token of the configured issuer (its user gets an oidc- id, not the bare sub) and refuses one of another issuer', async () => {
    const [idp] = await twoProviders();
    const oidcEnv = { ...(env as unknown as GatewayEnv), AUTH_JWKS_URL: idp!.jwksUrl, AUTH_ISSUER: idp!.issuer, AUTH_AUDIENCE: 'ferry-prod' } as GatewayEnv;
    const scientist = await authenticateUser(oidcEnv, `Bearer ${await idp!.sign('scientist@lab')}`);
    expect(scientist).toMatchObject({ owner: expect.stringMatching(/^oidc-[a-z2-7]{26}$/), via: 'oidc', issuer: idp!.issuer, sub: 'scientist@lab' });
    // The institution's tokens must expire too.
    const forever = await new SignJWT({}).setProtectedHeader({ alg: 'RS256', kid: 'k1' }).setSubject('scientist@lab').setIssuer(idp!.issuer).setAudience('ferry-prod').sign(idp!.privateKey);
    await expect(authenticateUser(oidcEnv, `Bearer ${forever}`)).rejects.toMatchObject({ code: 'UNAUTHORIZED', message: expect.stringContaining('exp') });
    await expect(authenticateUser(oidcEnv, `Bearer ${await idp!.sign('scientist@lab', 'https://evil.test')}`)).rejects.toMatchObject({ code: 'UNAUTHORIZED' });
    // Without OIDC configured, an RS256 token is refused.
    await expect(authenticateUser(env as unknown as GatewayEnv, `Bearer ${await idp!.sign('scientist@lab')}`)).rejects.toBeInstanceOf(FerryError);
  });

  it('gives the same sub at two providers two users, each the same id every time', async () => {
    const [a, b] = await twoProviders();
    const providers = JSON.stringify([a, b].map((p, i) => ({ name: `idp-${i}`, issuer: p!.issuer, audience: 'ferry-prod', jwks_url: p!.jwksUrl })));
    const multiEnv = { ...(env as unknown as GatewayEnv), AUTH_PROVIDERS: providers } as GatewayEnv;
    const atA = await authenticateUser(multiEnv, `Bearer ${await a!.sign('jdoe')}`);
    const atB = await authenticateUser(multiEnv, `Bearer ${await b!.sign('jdoe')}`);
    expect(atA.owner).not.toBe(atB.owner);
    expect([atA.sub, atB.sub]).toEqual(['jdoe', 'jdoe']);
    expect((await authenticateUser(multiEnv, `Bearer ${await a!.sign('jdoe')}`)).owner).toBe(atA.owner);
    // A development token naming the same sub is a third user: the plain sub.
    expect((await authenticateUser(multiEnv, `Bearer ${await mintUserToken('jdoe')}`)).owner).toBe('jdoe');
  });
});

describe('DEPLOYMENT=production', () => {
  it('refuses development tokens with 401 UNAUTHORIZED naming the setting, and still takes instrument keys', async () => {
    const production = { ...(env as unknown as GatewayEnv), DEPLOYMENT: 'production' } as GatewayEnv;
    await expect(authenticateUser(production, `Bearer ${await mintUserToken('dev-user')}`)).rejects.toMatchObject({ code: 'UNAUTHORIZED', message: expect.stringContaining('DEPLOYMENT=production') });
    const user = await newUser();
    const key = await user.call('post', '/v3/keys', { name: 'k', expires_in: 3600, scopes: { functions: '*', endpoints: '*', actions: ['run'] } });
    expect((await authenticateUser(production, `Bearer ${key.body.secret}`)).owner).toBe(user.sub);
    expect(await (await call('get', '/v3/auth/config')).body).toEqual({ dev_tokens: true, providers: [] });
  });
});
