// Instrument keys: created by their owner with a name, an expiry and scopes; the secret is in the
// creation's answer only. Listed with when each was last used; revoked at once (src/gateway/auth/keys.ts).

import { z } from 'zod';
import { CreateKeyRequest, CreateKeyResponse, KEY_LIMITS, KeyDoc, KeyId, KeyList } from '../../protocol/auth-api';
import { FerryError } from '../../protocol/errors';
import { forgetKey, newKeySecret } from '../auth/keys';
import { randomSuffix } from '../random-ids';
import { hubOf } from '../endpoint-hub/endpoint-hub';
import { registryOf } from '../registry';
import { defineRoute, type RouteTable } from '../route-spec';

const KeyParams = z.object({ key_id: KeyId });

export function registerKeyRoutes(table: RouteTable): void {
  defineRoute(
    table,
    {
      method: 'post',
      path: '/v3/keys',
      summary: 'Create an instrument key (its secret is shown in this answer only)',
      auth: 'user',
      keys: 'none',
      body: CreateKeyRequest,
      response: CreateKeyResponse,
      errors: ['TOO_MANY_KEYS'],
      example: { name: 'detector-7', expires_in: 2_592_000, scopes: { functions: '*', endpoints: '*', actions: ['run'] } },
    },
    async (c, { principal: { owner }, body }) => {
      const keyId = `k${randomSuffix()}`;
      const { token, secretSha256 } = await newKeySecret(owner, keyId);
      const now = Date.now();
      const doc = await registryOf(c.env, owner).createKey(
        { key_id: keyId, name: body.name, secret_sha256: secretSha256, scopes: body.scopes, created_at: now, expires_at: now + body.expires_in * 1000 },
        KEY_LIMITS.maxActiveKeys,
      );
      if (doc === null) throw new FerryError('TOO_MANY_KEYS', `at most ${KEY_LIMITS.maxActiveKeys} keys may be active at once: revoke some first`, { max_active_keys: KEY_LIMITS.maxActiveKeys });
      return { ...doc, secret: token };
    },
  );

  defineRoute(table, { method: 'get', path: '/v3/keys', summary: "The caller's instrument keys (no secrets), with when each was last used", auth: 'user', keys: 'none', response: KeyList, errors: [] }, async (c, { principal: { owner } }) => ({
    keys: await registryOf(c.env, owner).listKeys(),
  }));

  defineRoute(
    table,
    { method: 'delete', path: '/v3/keys/{key_id}', summary: 'Revoke an instrument key: its next call is refused', auth: 'user', keys: 'none', params: KeyParams, response: KeyDoc, errors: ['NOT_FOUND'] },
    async (c, { principal: { owner }, params }) => {
      const doc = await registryOf(c.env, owner).revokeKey(params.key_id, Date.now());
      forgetKey(params.key_id);
      if (doc === null) throw new FerryError('NOT_FOUND', 'key not found');
      // The endpoints the key could reach log it (src/gateway/endpoint-hub/audit-log.ts).
      const endpoints = doc.scopes.endpoints === '*' ? await registryOf(c.env, owner).endpointIds() : doc.scopes.endpoints;
      await Promise.all(endpoints.map((id) => hubOf(c.env, id).credentialRevoked(owner, 'key_revoked', { key_id: doc.key_id, name: doc.name })));
      return doc;
    },
  );
}
