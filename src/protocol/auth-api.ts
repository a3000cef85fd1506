// The REST contract of people and machines (issue 18): sign-in settings, instrument keys and their
// scopes, and a user's revocation of their own tokens. Re-exported by api.ts (OpenAPI components).

import { z } from 'zod';

const Uuid = z.string().regex(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/, 'must be a lower-case UUID');

/** What an instrument key may do; each route of the gateway declares which one it needs, or none. */
export const KEY_ACTIONS = ['run', 'submit', 'read_results', 'upload_objects'] as const;
export const KeyAction = z.enum(KEY_ACTIONS);
export type KeyAction = z.infer<typeof KeyAction>;

export const KEY_LIMITS = {
  /** Longest lifetime of a key (one year): a key always expires. */
  maxExpiresInS: 366 * 24 * 3600,
  maxFunctions: 100,
  maxEndpoints: 100,
  /** Keys one owner may hold at once (revoked and expired ones not counted). */
  maxActiveKeys: 200,
} as const;

/**
 * `functions` and `endpoints` list the ids the key may touch; `"*"` stands for all of the owner's
 * (say so explicitly: an empty list would be a key that can do nothing).
 */
export const KeyScopes = z.strictObject({
  functions: z.union([z.literal('*'), z.array(Uuid).min(1).max(KEY_LIMITS.maxFunctions)]),
  endpoints: z.union([z.literal('*'), z.array(Uuid).min(1).max(KEY_LIMITS.maxEndpoints)]),
  actions: z.array(KeyAction).min(1).max(KEY_ACTIONS.length),
});
export type KeyScopes = z.infer<typeof KeyScopes>;

export const CreateKeyRequest = z.strictObject({
  name: z.string().min(1).max(128),
  /** Seconds until the key expires. */
  expires_in: z.number().int().min(60).max(KEY_LIMITS.maxExpiresInS),
  scopes: KeyScopes,
});
export type CreateKeyRequest = z.infer<typeof CreateKeyRequest>;

export const KeyId = z.string().regex(/^k[0-9a-z]{20}$/, 'must be a key id (k + 20 characters)');

export const KeyDoc = z.object({
  key_id: KeyId,
  name: z.string(),
  scopes: KeyScopes,
  created_at: z.string(),
  expires_at: z.string(),
  /** When the key was last used, to the minute (null: never). */
  last_used_at: z.string().nullable(),
  revoked_at: z.string().nullable(),
});
export type KeyDoc = z.infer<typeof KeyDoc>;

/** The secret is in this answer only: the gateway keeps its sha256. */
export const CreateKeyResponse = KeyDoc.extend({ secret: z.string() });
export type CreateKeyResponse = z.infer<typeof CreateKeyResponse>;

export const KeyList = z.object({ keys: z.array(KeyDoc) });
export type KeyList = z.infer<typeof KeyList>;

export const RevokeUserTokensResponse = z.object({
  /** Tokens issued (iat) before this time (unix seconds) are refused; a token issued from then on works. */
  not_before: z.number().int(),
});
export type RevokeUserTokensResponse = z.infer<typeof RevokeUserTokensResponse>;

export const WhoAmI = z.object({
  user_id: z.string(),
  /** `dev` (the gateway's own HS256 tokens), `oidc` (a provider's access token), `key` (an instrument key). */
  via: z.enum(['dev', 'oidc', 'key']),
  issuer: z.string().nullable(),
  sub: z.string().nullable(),
  key_id: z.string().nullable(),
});
export type WhoAmI = z.infer<typeof WhoAmI>;

export const AuthProviderInfo = z.object({
  name: z.string(),
  issuer: z.string(),
  /** The public client the CLI and the dashboard sign in as. */
  client_id: z.string(),
  /** The resource (RFC 8707) to ask tokens for: the gateway's audience. */
  audience: z.string(),
  scopes: z.array(z.string()),
  /** From the provider's discovery document (null when it could not be read). */
  device_authorization_endpoint: z.string().nullable(),
  token_endpoint: z.string().nullable(),
  revocation_endpoint: z.string().nullable(),
});
export type AuthProviderInfo = z.infer<typeof AuthProviderInfo>;

export const AuthConfig = z.object({
  /** False in production (DEPLOYMENT=production): the gateway's own development tokens are refused. */
  dev_tokens: z.boolean(),
  providers: z.array(AuthProviderInfo),
});
export type AuthConfig = z.infer<typeof AuthConfig>;
