// Bearer tokens (jose). User tokens: HS256 with the gateway's own key (dev issuer) or, when OIDC is
// configured, RS256/ES256 from the institution's issuer through its JWKS. Endpoint tokens: minted
// here, HS256, a different audience, so neither kind opens the other's doors. An endpoint's SECRET
// (long-lived) is only exchanged for short-lived ACCESS tokens (a third audience) at
// POST /v3/endpoints/{id}/token; both carry the secret generation, which the endpoint's hub checks.

import { SignJWT, createRemoteJWKSet, decodeProtectedHeader, errors, jwtVerify, type JWTPayload } from 'jose';
import { FerryError } from '../protocol/errors';
import { DEV_ISSUER, ENDPOINT_ACCESS_AUDIENCE, ENDPOINT_AUDIENCE, GATEWAY_ISSUER, USER_AUDIENCE, type EndpointTokenClaims } from '../protocol/tokens';
import { maxUserTokenTtlSeconds, type GatewayEnv } from './env';

// Per-isolate caches, filled on first use from the request's env (never at module load).
const hmacKeys = new Map<string, Promise<CryptoKey>>();
const remoteKeySets = new Map<string, ReturnType<typeof createRemoteJWKSet>>();

function hmacKey(env: GatewayEnv): Promise<CryptoKey> {
  const secret = env.JWT_SECRET;
  if (!secret) throw new FerryError('INTERNAL', 'the gateway has no JWT_SECRET');
  let key = hmacKeys.get(secret);
  if (!key) {
    key = crypto.subtle.importKey('raw', new TextEncoder().encode(secret), { name: 'HMAC', hash: 'SHA-256' }, false, ['sign', 'verify']);
    hmacKeys.set(secret, key);
  }
  return key;
}

function remoteKeySet(url: string): ReturnType<typeof createRemoteJWKSet> {
  let set = remoteKeySets.get(url);
  if (!set) {
    set = createRemoteJWKSet(new URL(url));
    remoteKeySets.set(url, set);
  }
  return set;
}

function bearerToken(header: string | undefined): string {
  const match = header ? /^Bearer\s+(\S+)\s*$/i.exec(header) : null;
  if (!match) throw new FerryError('UNAUTHORIZED', 'missing or malformed Authorization: Bearer header');
  return match[1]!;
}

function rethrowAsAuthError(err: unknown): never {
  if (err instanceof FerryError) throw err;
  if (err instanceof errors.JWTExpired) throw new FerryError('TOKEN_EXPIRED');
  if (err instanceof errors.JOSEError) throw new FerryError('UNAUTHORIZED', `invalid token: ${err.code}`);
  throw new FerryError('UNAUTHORIZED', 'invalid token');
}

function subjectOf(payload: JWTPayload): string {
  if (typeof payload.sub !== 'string' || payload.sub === '') throw new FerryError('UNAUTHORIZED', 'the token names no subject');
  return payload.sub;
}

// A token minted on a machine whose clock runs ahead still counts its lifetime from now.
const CLOCK_SKEW_S = 300;

/**
 * A user token must expire, and not later than the gateway's cap allows: a leaked token is then
 * good for at most that long. Judged from iat (a long-lived token backdated is still long-lived)
 * and from now (a token without iat, or one claiming to be issued in the future).
 */
function checkUserTokenLifetime(env: GatewayEnv, payload: JWTPayload): void {
  const maxTtl = maxUserTokenTtlSeconds(env);
  if (typeof payload.exp !== 'number') throw new FerryError('UNAUTHORIZED', 'the token carries no exp: user tokens must expire', { max_ttl_s: maxTtl });
  const now = Math.floor(Date.now() / 1000);
  const fromIat = typeof payload.iat === 'number' ? payload.exp - payload.iat : 0;
  if (fromIat > maxTtl || payload.exp - now > maxTtl + CLOCK_SKEW_S) {
    throw new FerryError('UNAUTHORIZED', `the token lives longer than this gateway accepts (${maxTtl} s, MAX_USER_TOKEN_TTL_S): mint a shorter one`, { max_ttl_s: maxTtl });
  }
}

/** The owner id (`sub`) of a valid user token. */
export async function authenticateUser(env: GatewayEnv, authorization: string | undefined): Promise<string> {
  const token = bearerToken(authorization);
  try {
    const { alg } = decodeProtectedHeader(token);
    if (alg === 'HS256') {
      const { payload } = await jwtVerify(token, await hmacKey(env), { algorithms: ['HS256'], audience: USER_AUDIENCE, issuer: DEV_ISSUER });
      checkUserTokenLifetime(env, payload);
      return subjectOf(payload);
    }
    if (env.AUTH_JWKS_URL && env.AUTH_ISSUER && env.AUTH_AUDIENCE && (alg === 'RS256' || alg === 'ES256')) {
      const { payload } = await jwtVerify(token, remoteKeySet(env.AUTH_JWKS_URL), {
        algorithms: ['RS256', 'ES256'],
        audience: env.AUTH_AUDIENCE,
        issuer: env.AUTH_ISSUER,
      });
      checkUserTokenLifetime(env, payload);
      return subjectOf(payload);
    }
    throw new FerryError('UNAUTHORIZED', `tokens signed with ${String(alg)} are not accepted`);
  } catch (err) {
    rethrowAsAuthError(err);
  }
}

async function verifyEndpointToken(env: GatewayEnv, authorization: string | undefined, audience: string): Promise<EndpointTokenClaims> {
  const token = bearerToken(authorization);
  try {
    const { payload } = await jwtVerify(token, await hmacKey(env), { algorithms: ['HS256'], audience, issuer: GATEWAY_ISSUER });
    if (payload.scope !== 'endpoint' || typeof payload.endpoint_id !== 'string') throw new FerryError('UNAUTHORIZED', 'not an endpoint token');
    const gen = payload.gen === undefined ? 0 : payload.gen;
    if (typeof gen !== 'number' || !Number.isInteger(gen) || gen < 0) throw new FerryError('UNAUTHORIZED', 'the endpoint token carries a malformed generation');
    return { sub: subjectOf(payload), endpoint_id: payload.endpoint_id, scope: 'endpoint', gen };
  } catch (err) {
    rethrowAsAuthError(err);
  }
}

/** The claims of a valid (unexpired) endpoint ACCESS token; its generation is the hub's to check. */
export async function authenticateEndpoint(env: GatewayEnv, authorization: string | undefined): Promise<EndpointTokenClaims> {
  return verifyEndpointToken(env, authorization, ENDPOINT_ACCESS_AUDIENCE);
}

/** The claims of a valid endpoint SECRET token; its generation is the hub's to check. */
export async function authenticateEndpointSecret(env: GatewayEnv, authorization: string | undefined): Promise<EndpointTokenClaims> {
  return verifyEndpointToken(env, authorization, ENDPOINT_AUDIENCE);
}

/** A fresh endpoint secret of generation `gen`; it stays valid until the generation is bumped (revoke). */
export async function mintEndpointToken(env: GatewayEnv, owner: string, endpointId: string, gen: number): Promise<string> {
  return new SignJWT({ endpoint_id: endpointId, scope: 'endpoint', gen })
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setSubject(owner)
    .setAudience(ENDPOINT_AUDIENCE)
    .setIssuer(GATEWAY_ISSUER)
    .setIssuedAt()
    .setJti(crypto.randomUUID())
    .sign(await hmacKey(env));
}

/** A short-lived access token of generation `gen`, valid for `ttlSeconds`. */
export async function mintEndpointAccessToken(env: GatewayEnv, owner: string, endpointId: string, gen: number, ttlSeconds: number): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({ endpoint_id: endpointId, scope: 'endpoint', gen })
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setSubject(owner)
    .setAudience(ENDPOINT_ACCESS_AUDIENCE)
    .setIssuer(GATEWAY_ISSUER)
    .setIssuedAt(now)
    .setExpirationTime(now + ttlSeconds)
    .setJti(crypto.randomUUID())
    .sign(await hmacKey(env));
}
