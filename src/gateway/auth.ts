// Bearer tokens (jose). User tokens: HS256 with the gateway's own key (dev issuer) or RS256/ES256
// from a configured OpenID provider through its JWKS (src/gateway/auth/providers.ts); instrument
// keys (src/gateway/auth/keys.ts). Endpoint tokens: minted
// here, HS256, a different audience, so neither kind opens the other's doors. An endpoint's SECRET
// (long-lived) is only exchanged for short-lived ACCESS tokens (a third audience) at
// POST /v3/endpoints/{id}/token; both carry the secret generation, which the endpoint's hub checks.

import { LRUCache } from 'lru-cache';
import { SignJWT, createRemoteJWKSet, decodeJwt, decodeProtectedHeader, errors, jwtVerify, type JWTPayload } from 'jose';
import { FerryError } from '../protocol/errors';
import { DEV_ISSUER, ENDPOINT_ACCESS_AUDIENCE, ENDPOINT_AUDIENCE, GATEWAY_ISSUER, USER_AUDIENCE, type EndpointTokenClaims } from '../protocol/tokens';
import { maxUserTokenTtlSeconds, type GatewayEnv } from './env';
import { providerUserId } from './auth/identities';
import { authenticateKey, isKeyToken, type KeyGrant } from './auth/keys';
import { notBeforeMs } from './auth/not-before';
import { authProviders, isProduction, providerEndpoints, providerOf, type AuthProvider } from './auth/providers';

// Per-isolate caches, filled on first use from the request's env (never at module load).
const hmacKeys = new Map<string, Promise<CryptoKey>>();
const remoteKeySets = new Map<string, ReturnType<typeof createRemoteJWKSet>>();

/**
 * User tokens this isolate has verified, by their text, until they expire: a client sends the same
 * token on every call, and verifying it (base64 decoding, JSON, HMAC or a signature, claims) cost
 * about a third of the gateway's JavaScript per `POST /v3/run`. What can change while a token is
 * still valid is checked on every request anyway: the user's not-before (revocation). One cache per
 * `env` object, so a change of settings (secret, providers, DEPLOYMENT) never reuses a verdict.
 */
interface VerifiedToken {
  principal: UserPrincipal;
  iat: unknown;
  expiresMs: number;
}
const VERIFIED_TOKENS_MAX = 1024;
const verifiedTokens = new WeakMap<GatewayEnv, LRUCache<string, VerifiedToken>>();

/** The least recently used token goes first past the bound: a bound, not a policy; a miss only verifies again. */
function verifiedTokenCache(env: GatewayEnv): LRUCache<string, VerifiedToken> {
  let cache = verifiedTokens.get(env);
  if (!cache) verifiedTokens.set(env, (cache = new LRUCache({ max: VERIFIED_TOKENS_MAX })));
  return cache;
}

function rememberVerified(env: GatewayEnv, token: string, entry: VerifiedToken): void {
  verifiedTokenCache(env).set(token, entry);
}

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

/** Who a user route serves: the owner, how they proved it, and a key's scopes when a key did. */
export interface UserPrincipal {
  owner: string;
  via: 'dev' | 'oidc' | 'key';
  /** The provider and its `sub` of an OIDC token; null otherwise. */
  issuer: string | null;
  sub: string | null;
  /** Present when an instrument key made the request: what it may do (checked by the route table). */
  key?: KeyGrant;
}

/** Work to finish after the answer (ctx.waitUntil); tests and callers without a context drop it. */
export type Defer = (work: Promise<unknown>) => void;
const noDefer: Defer = (work) => void work.catch(() => undefined);

/**
 * The principal of a valid user token or instrument key. User tokens: the development issuer's
 * (HS256, the gateway's key; refused with DEPLOYMENT=production) or a configured provider's (its
 * JWKS); both must expire, and be issued (iat) at or after the user's not-before.
 */
export async function authenticateUser(env: GatewayEnv, authorization: string | undefined, defer: Defer = noDefer): Promise<UserPrincipal> {
  const token = bearerToken(authorization);
  if (isKeyToken(token)) {
    const { owner, grant } = await authenticateKey(env, token, defer);
    return { owner, via: 'key', issuer: null, sub: null, key: grant };
  }
  const cached = verifiedTokenCache(env).get(token);
  if (cached && cached.expiresMs > Date.now()) return checkNotRevoked(env, cached.principal, cached.iat);
  let principal!: UserPrincipal;
  let iat: unknown;
  let exp = 0;
  let identity: { issuer: string; sub: string } | null = null;
  // Settings are read before the try: a gateway misconfigured answers 500, not 401 to every token.
  const production = isProduction(env);
  authProviders(env);
  try {
    const { alg } = decodeProtectedHeader(token);
    if (alg === 'HS256') {
      if (production) throw new FerryError('UNAUTHORIZED', 'development tokens are refused: this gateway is in production (DEPLOYMENT=production); sign in with `ferry login --oidc`');
      const { payload } = await jwtVerify(token, await hmacKey(env), { algorithms: ['HS256'], audience: USER_AUDIENCE, issuer: DEV_ISSUER });
      checkUserTokenLifetime(env, payload);
      ({ iat, exp = 0 } = payload);
      principal = { owner: subjectOf(payload), via: 'dev', issuer: null, sub: null };
    } else {
      // The unverified issuer only picks the verifier; the verification checks it again.
      const provider = alg === 'RS256' || alg === 'ES256' ? providerOf(env, decodeJwt(token).iss) : null;
      if (!provider) throw new FerryError('UNAUTHORIZED', `tokens signed with ${String(alg)} by this issuer are not accepted`);
      const { payload } = await jwtVerify(token, await providerKeySet(provider), { algorithms: ['RS256', 'ES256'], audience: provider.audience, issuer: provider.issuer });
      checkUserTokenLifetime(env, payload);
      ({ iat, exp = 0 } = payload);
      identity = { issuer: provider.issuer, sub: subjectOf(payload) };
    }
  } catch (err) {
    rethrowAsAuthError(err);
  }
  // Outside the try: a store that fails is the gateway's fault, not the token's.
  if (identity) principal = { owner: await providerUserId(env, identity.issuer, identity.sub, defer), via: 'oidc', ...identity };
  const checked = await checkNotRevoked(env, principal, iat);
  rememberVerified(env, token, { principal, iat, expiresMs: exp * 1000 });
  return checked;
}

/** The principal, unless its user revoked their tokens after this one was issued (TOKEN_REVOKED). */
async function checkNotRevoked(env: GatewayEnv, principal: UserPrincipal, iat: unknown): Promise<UserPrincipal> {
  const notBefore = await notBeforeMs(env, principal.owner);
  if (notBefore > 0 && (typeof iat !== 'number' || iat * 1000 < notBefore)) {
    throw new FerryError('TOKEN_REVOKED', 'this token was issued before its user revoked their tokens (POST /v3/users/me/revoke): sign in again', { not_before: notBefore / 1000 });
  }
  return principal;
}

async function providerKeySet(provider: AuthProvider): Promise<ReturnType<typeof createRemoteJWKSet>> {
  let url = provider.jwks_url;
  if (!url) {
    url = (await providerEndpoints(provider))?.jwks_uri ?? undefined;
    if (!url) throw new FerryError('UNAVAILABLE', `cannot read the signing keys of ${provider.issuer} (no jwks_url, and its discovery document cannot be read)`);
  }
  return remoteKeySet(url);
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
