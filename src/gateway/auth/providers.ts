// The OpenID providers whose access tokens the gateway accepts, parsed once per settings text:
// AUTH_PROVIDERS (a JSON list, several institutions at once) or the single-provider variables
// AUTH_ISSUER / AUTH_AUDIENCE / AUTH_JWKS_URL / AUTH_CLIENT_ID. Each provider's discovery document
// (its endpoints) is read on first need and kept for a while in this isolate.

import { z } from 'zod';
import type { GatewayEnv } from '../env';
import { parseJsonText, readBodyText } from '../request-body';

const ProviderSetting = z.strictObject({
  /** A short name, shown to people choosing where to sign in (`ferry login --oidc --provider NAME`). */
  name: z.string().min(1).max(64),
  issuer: z.url(),
  /** The `aud` of access tokens for this gateway (the resource the CLI asks tokens for). */
  audience: z.string().min(1),
  /** The public client (no secret) the CLI and the dashboard sign in as. */
  client_id: z.string().min(1).default('ferry-cli'),
  /** Default: the provider's discovery document's jwks_uri. */
  jwks_url: z.url().optional(),
  scopes: z.array(z.string().min(1)).default(['openid', 'offline_access']),
});
export type AuthProvider = Readonly<z.infer<typeof ProviderSetting>>;

const parsed = new Map<string, readonly AuthProvider[]>();

export function authProviders(env: GatewayEnv): readonly AuthProvider[] {
  const raw = (env.AUTH_PROVIDERS ?? '').trim();
  const legacy = [env.AUTH_ISSUER, env.AUTH_AUDIENCE, env.AUTH_JWKS_URL, env.AUTH_CLIENT_ID].map((v) => (v ?? '').trim());
  const cacheKey = `${raw}\n${legacy.join('\n')}`;
  let providers = parsed.get(cacheKey);
  if (providers) return providers;
  const list: unknown[] = [];
  if (raw !== '') {
    let json: unknown;
    try {
      json = JSON.parse(raw);
    } catch {
      throw new Error('AUTH_PROVIDERS: not valid JSON (a list of {name, issuer, audience, client_id?, jwks_url?, scopes?})');
    }
    if (!Array.isArray(json)) throw new Error('AUTH_PROVIDERS: must be a JSON list');
    list.push(...json);
  }
  const [issuer, audience, jwks, clientId] = legacy;
  if (issuer && audience) list.push({ name: 'default', issuer, audience, ...(jwks ? { jwks_url: jwks } : {}), ...(clientId ? { client_id: clientId } : {}) });
  const out: AuthProvider[] = [];
  list.forEach((item, i) => {
    const result = ProviderSetting.safeParse(item);
    if (!result.success) throw new Error(`AUTH_PROVIDERS[${i}].${result.error.issues[0]!.path.join('.')}: ${result.error.issues[0]!.message}`);
    if (out.some((p) => p.issuer === result.data.issuer)) throw new Error(`AUTH_PROVIDERS[${i}].issuer: ${result.data.issuer} is listed twice`);
    if (out.some((p) => p.name === result.data.name)) throw new Error(`AUTH_PROVIDERS[${i}].name: ${result.data.name} is listed twice`);
    out.push(Object.freeze(result.data));
  });
  providers = Object.freeze(out);
  parsed.set(cacheKey, providers);
  return providers;
}

/** The provider that issued a token (its unverified `iss`, only to pick the verifier), or null. */
export function providerOf(env: GatewayEnv, issuer: unknown): AuthProvider | null {
  if (typeof issuer !== 'string') return null;
  return authProviders(env).find((p) => p.issuer === issuer) ?? null;
}

/** DEPLOYMENT=production: the gateway's own development (HS256) user tokens are refused. */
export function isProduction(env: GatewayEnv): boolean {
  const value = (env.DEPLOYMENT ?? '').trim().toLowerCase();
  if (value === '' || value === 'development') return false;
  if (value === 'production') return true;
  throw new Error(`DEPLOYMENT: must be "development" or "production", got ${JSON.stringify(env.DEPLOYMENT)}`);
}

export interface ProviderEndpoints {
  jwks_uri: string | null;
  device_authorization_endpoint: string | null;
  token_endpoint: string | null;
  revocation_endpoint: string | null;
}

const DISCOVERY_TTL_MS = 10 * 60_000;
const MAX_DISCOVERY_BYTES = 256 * 1024;
/** A provider that could not be read is asked again after this long, not on every request. */
const DISCOVERY_RETRY_MS = 30_000;
const discovered = new Map<string, { value: ProviderEndpoints | null; until: number }>();

const Discovery = z.object({
  issuer: z.string(),
  jwks_uri: z.string().optional(),
  device_authorization_endpoint: z.string().optional(),
  token_endpoint: z.string().optional(),
  revocation_endpoint: z.string().optional(),
});

/** The provider's endpoints from `/.well-known/openid-configuration`; null when it cannot be read. */
export async function providerEndpoints(provider: AuthProvider): Promise<ProviderEndpoints | null> {
  const hit = discovered.get(provider.issuer);
  if (hit && hit.until > Date.now()) return hit.value;
  let value: ProviderEndpoints | null = null;
  try {
    const res = await fetch(`${provider.issuer.replace(/\/+$/, '')}/.well-known/openid-configuration`, { headers: { accept: 'application/json' } });
    // A discovery document is a few KiB; a larger answer is not one (the read stops at the cap).
    const doc = res.ok ? Discovery.safeParse(parseJsonText(await readBodyText(res, MAX_DISCOVERY_BYTES))) : null;
    if (!res.ok) await res.body?.cancel();
    if (doc?.success && doc.data.issuer === provider.issuer) {
      value = {
        jwks_uri: doc.data.jwks_uri ?? null,
        device_authorization_endpoint: doc.data.device_authorization_endpoint ?? null,
        token_endpoint: doc.data.token_endpoint ?? null,
        revocation_endpoint: doc.data.revocation_endpoint ?? null,
      };
    }
  } catch {
    value = null;
  }
  discovered.set(provider.issuer, { value, until: Date.now() + (value ? DISCOVERY_TTL_MS : DISCOVERY_RETRY_MS) });
  return value;
}
