// People: the sign-in settings a client needs (so the CLI and the dashboard need only the gateway's
// URL), who the caller is, and a user's revocation of every token they hold.

import { AuthConfig, RevokeUserTokensResponse, WhoAmI } from '../../protocol/auth-api';
import { notBeforeAfter, rememberNotBefore } from '../auth/not-before';
import { authProviders, isProduction, providerEndpoints } from '../auth/providers';
import { hubOf } from '../endpoint-hub/endpoint-hub';
import { registryOf } from '../registry';
import { defineRoute, type RouteTable } from '../route-spec';

export function registerUserRoutes(table: RouteTable): void {
  defineRoute(table, { method: 'get', path: '/v3/auth/config', summary: 'How to sign in: the OpenID providers this gateway accepts, with their device-flow endpoints', auth: 'none', response: AuthConfig, errors: [] }, async (c) => ({
    dev_tokens: !isProduction(c.env),
    providers: await Promise.all(
      authProviders(c.env).map(async (p) => {
        const found = await providerEndpoints(p);
        return {
          name: p.name,
          issuer: p.issuer,
          client_id: p.client_id,
          audience: p.audience,
          scopes: [...p.scopes],
          device_authorization_endpoint: found?.device_authorization_endpoint ?? null,
          token_endpoint: found?.token_endpoint ?? null,
          revocation_endpoint: found?.revocation_endpoint ?? null,
        };
      }),
    ),
  }));

  defineRoute(table, { method: 'get', path: '/v3/users/me', summary: 'Who the token names: the user id, and the provider identity or key behind it', auth: 'user', keys: 'none', response: WhoAmI, errors: [] }, (_c, { principal }) => ({
    user_id: principal.owner,
    via: principal.via,
    issuer: principal.issuer,
    sub: principal.sub,
    key_id: principal.key?.key_id ?? null,
  }));

  defineRoute(
    table,
    {
      method: 'post',
      path: '/v3/users/me/revoke',
      summary: "Refuse every token of the caller issued before now (provider tokens included); instrument keys are revoked one by one",
      auth: 'user',
      keys: 'none',
      response: RevokeUserTokensResponse,
      errors: [],
    },
    async (c, { principal: { owner } }) => {
      const notBefore = await registryOf(c.env, owner).revokeTokens(notBeforeAfter(Date.now()));
      rememberNotBefore(owner, notBefore);
      // Each of the owner's endpoints logs it (src/gateway/endpoint-hub/audit-log.ts).
      const endpoints = await registryOf(c.env, owner).endpointIds();
      await Promise.all(endpoints.map((id) => hubOf(c.env, id).credentialRevoked(owner, 'tokens_revoked', { not_before: notBefore / 1000 })));
      return { not_before: notBefore / 1000 };
    },
  );
}
