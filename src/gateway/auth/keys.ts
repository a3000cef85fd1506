// Instrument keys: `fk1.<owner, base64url>.<key id>.<secret>`. The gateway stores the sha256 of the
// secret (32 random bytes: no slow hash needed) in the owner's Registry, which the key names, and
// keeps verified records in this isolate's memory for KEY_CACHE_TTL_MS: a key costs the hot path a
// digest, not a round trip. Revoking purges the record here at once (the only isolate under
// `npm start` and in the tests); another isolate of a deployed gateway refuses the key within
// KEY_CACHE_TTL_MS. Last use is written at most once a minute per key and isolate, after the answer.

import type { KeyAction, KeyScopes } from '../../protocol/auth-api';
import { FerryError } from '../../protocol/errors';
import type { GatewayEnv } from '../env';
import { registryOf } from '../registry';
import { KEY_LAST_USED_RESOLUTION_MS, type KeyRecord } from './auth-tables';

export const KEY_PREFIX = 'fk1.';
export const KEY_CACHE_TTL_MS = 5_000;
const KEY_PATTERN = /^fk1\.([A-Za-z0-9_-]{1,700})\.(k[0-9a-z]{20})\.([A-Za-z0-9_-]{43})$/;
const MEMO_MAX_ENTRIES = 10_000;

/** What a request made with a key may do. */
export interface KeyGrant {
  key_id: string;
  scopes: KeyScopes;
}

const memo = new Map<string, { owner: string; record: KeyRecord | null; until: number }>();
const lastTouched = new Map<string, number>();

export function isKeyToken(token: string): boolean {
  return token.startsWith(KEY_PREFIX);
}

function base64url(bytes: Uint8Array): string {
  let binary = '';
  for (const b of bytes) binary += String.fromCharCode(b);
  return btoa(binary).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

function fromBase64url(text: string): string | null {
  try {
    const binary = atob(text.replace(/-/g, '+').replace(/_/g, '/'));
    return new TextDecoder('utf-8', { fatal: true, ignoreBOM: false }).decode(Uint8Array.from(binary, (c) => c.charCodeAt(0)));
  } catch {
    return null;
  }
}

export async function sha256Hex(text: string): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(text)));
  return Array.from(digest, (b) => b.toString(16).padStart(2, '0')).join('');
}

/** A new key's token (shown once) and the digest of its secret (stored). */
export async function newKeySecret(owner: string, keyId: string): Promise<{ token: string; secretSha256: string }> {
  const secret = base64url(crypto.getRandomValues(new Uint8Array(32)));
  return { token: `${KEY_PREFIX}${base64url(new TextEncoder().encode(owner))}.${keyId}.${secret}`, secretSha256: await sha256Hex(secret) };
}

export function forgetKey(keyId: string): void {
  memo.delete(keyId);
}

function timingSafeEqualText(a: string, b: string): boolean {
  const x = new TextEncoder().encode(a);
  const y = new TextEncoder().encode(b);
  return x.byteLength === y.byteLength && crypto.subtle.timingSafeEqual(x, y);
}

/** The owner and grant of a valid key; 401 for a malformed, unknown, revoked or expired one. */
export async function authenticateKey(env: GatewayEnv, token: string, defer: (work: Promise<unknown>) => void): Promise<{ owner: string; grant: KeyGrant }> {
  const match = KEY_PATTERN.exec(token);
  const owner = match ? fromBase64url(match[1]!) : null;
  if (!match || owner === null || owner === '') throw new FerryError('UNAUTHORIZED', 'malformed instrument key');
  const keyId = match[2]!;
  const now = Date.now();
  let hit = memo.get(keyId);
  if (!hit || hit.until <= now || hit.owner !== owner) {
    const { key } = await registryOf(env, owner).lookupKey(keyId);
    if (memo.size >= MEMO_MAX_ENTRIES) memo.clear();
    hit = { owner, record: key, until: now + KEY_CACHE_TTL_MS };
    memo.set(keyId, hit);
  }
  const record = hit.record;
  if (!record || !timingSafeEqualText(await sha256Hex(match[3]!), record.secret_sha256)) throw new FerryError('UNAUTHORIZED', 'unknown instrument key');
  if (record.revoked_at !== null) throw new FerryError('TOKEN_REVOKED', 'the instrument key was revoked');
  if (record.expires_at <= now) throw new FerryError('TOKEN_EXPIRED', 'the instrument key has expired');
  if ((lastTouched.get(keyId) ?? 0) <= now - KEY_LAST_USED_RESOLUTION_MS) {
    if (lastTouched.size >= MEMO_MAX_ENTRIES) lastTouched.clear();
    lastTouched.set(keyId, now);
    defer(registryOf(env, owner).touchKey(keyId, now));
  }
  return { owner, grant: { key_id: keyId, scopes: record.scopes } };
}

/** What a route needs of a key: `none` (keys may not call it), or an action and the ids it touches. */
export type KeyRule<In> =
  | 'none'
  | {
      action: KeyAction;
      /** Endpoints the request touches (null: one that cannot be named, which no scope covers). */
      endpoints?: (input: In) => ReadonlyArray<string | null>;
      /** Functions the request runs. */
      functions?: (input: In) => readonly string[];
    };

function covers(scope: '*' | readonly string[], id: string | null): boolean {
  return id !== null && (scope === '*' || scope.includes(id));
}

/** Before the request is parsed: may this key call the route at all? */
export function checkKeyAction(grant: KeyGrant, rule: KeyRule<unknown> | undefined, route: string): void {
  if (rule === undefined || rule === 'none') throw new FerryError('FORBIDDEN_SCOPE', `instrument keys cannot call ${route}`, { key_id: grant.key_id });
  if (!grant.scopes.actions.includes(rule.action)) throw new FerryError('FORBIDDEN_SCOPE', `the key's scopes do not include "${rule.action}"`, { key_id: grant.key_id, action: rule.action });
}

/** After parsing: are the endpoints and functions of this request in the key's scopes? */
export function checkKeyResources<In>(grant: KeyGrant, rule: KeyRule<In>, input: In): void {
  if (rule === 'none') return;
  for (const id of rule.endpoints?.(input) ?? []) {
    if (!covers(grant.scopes.endpoints, id)) throw new FerryError('FORBIDDEN_SCOPE', `the key's scopes do not include endpoint ${id ?? '(unnamed)'}`, { key_id: grant.key_id, endpoint_id: id });
  }
  for (const id of rule.functions?.(input) ?? []) {
    if (!covers(grant.scopes.functions, id)) throw new FerryError('FORBIDDEN_SCOPE', `the key's scopes do not include function ${id}`, { key_id: grant.key_id, function_uuid: id });
  }
}
