// The user id of a provider's user. The development issuer's users keep their plain `sub` (every
// function and object id derives from the owner: changing it would orphan them); a provider's user
// gets `oidc-<26 base32 characters of sha256(issuer, sub)>`, which two providers never share. The
// first id given to an identity is recorded (a Registry named after the identity) and read back
// ever after, so a later change of this rule cannot move anyone's things. Lookups: this isolate's
// memory, then KV (the mapping never changes, so KV's lag can only cost a miss), then the record.

import type { GatewayEnv } from '../env';

const MEMO_MAX_ENTRIES = 10_000;
const memo = new Map<string, string>();
const BASE32 = 'abcdefghijklmnopqrstuvwxyz234567';

async function identityDigest(issuer: string, sub: string): Promise<Uint8Array> {
  return new Uint8Array(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(`${issuer}\n${sub}`)));
}

function base32(bytes: Uint8Array, length: number): string {
  let out = '';
  let bits = 0;
  let value = 0;
  for (const byte of bytes) {
    value = (value << 8) | byte;
    bits += 8;
    while (bits >= 5 && out.length < length) {
      out += BASE32[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  return out;
}

export async function providerUserId(env: GatewayEnv, issuer: string, sub: string, defer: (work: Promise<unknown>) => void): Promise<string> {
  const memoKey = `${issuer}\n${sub}`;
  const known = memo.get(memoKey);
  if (known !== undefined) return known;
  const tag = base32(await identityDigest(issuer, sub), 26);
  const kvKey = `ident:v1:${tag}`;
  let userId = await env.CACHE.get(kvKey);
  if (userId === null) {
    const record = env.REGISTRY.get(env.REGISTRY.idFromName(`identity:${tag}`));
    userId = await record.claimIdentity(issuer, sub, `oidc-${tag}`);
    defer(env.CACHE.put(kvKey, userId));
  }
  if (memo.size >= MEMO_MAX_ENTRIES) memo.clear();
  memo.set(memoKey, userId);
  return userId;
}
