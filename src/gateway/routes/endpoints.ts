// Endpoint registration and inspection, and the agent's WebSocket, handed to the endpoint's hub.

import { z } from 'zod';
import { GuestEndpointStatus } from '../../protocol/sharing-api';
import { AllowedFunctions, DeleteEndpointResponse, EndpointAccessTokenResponse, EndpointDoc, EndpointList, EndpointStatus, RegisterEndpointRequest, RegisterEndpointResponse, RevokeEndpointSecretResponse, Uuid } from '../../protocol/api';
import { FerryError } from '../../protocol/errors';
import { mintEndpointAccessToken, mintEndpointToken } from '../auth';
import { endpointAccessTtlSeconds } from '../env';
import { AGENT_SOCKET_HEADERS, hubOf } from '../endpoint-hub/endpoint-hub';
import { unwrap } from '../hub-reply';
import { registryOf } from '../registry';
import { defineRoute, type RouteTable } from '../route-spec';

const EndpointParams = z.object({ endpoint_id: Uuid });

const ENDPOINT_EXAMPLE = { endpoint_name: 'beamline-7', display_name: 'Beamline 7 login node', metadata: { site: 'example' } };

/** ws(s)://<host of the request>/v3/endpoints/<id>/ws */
function connectionUrl(requestUrl: string, endpointId: string): string {
  const url = new URL(requestUrl);
  return `${url.protocol === 'https:' ? 'wss:' : 'ws:'}//${url.host}/v3/endpoints/${endpointId}/ws`;
}

export function registerEndpointRoutes(table: RouteTable): void {
  defineRoute(
    table,
    {
      method: 'post',
      path: '/v3/endpoints',
      summary: "Register an endpoint (the same name again: the same id and a fresh secret of a new generation; the old secret, its access tokens and the agent they connected are revoked). The token is the endpoint's secret: exchange it at /v3/endpoints/{endpoint_id}/token",
      auth: 'user',
      keys: 'none',
      body: RegisterEndpointRequest,
      response: RegisterEndpointResponse,
      errors: [],
      example: ENDPOINT_EXAMPLE,
    },
    async (c, { principal: { owner }, body }) => {
      const registry = registryOf(c.env, owner);
      let claim = await registry.claimEndpointName(body.endpoint_name);
      let reply = await hubOf(c.env, claim.endpoint_id).register(owner, claim.endpoint_id, body);
      if (!reply.ok && !claim.created) {
        // The name still pointed at an endpoint whose deletion did not reach the registry.
        await registry.forgetEndpoint(claim.endpoint_id);
        claim = await registry.claimEndpointName(body.endpoint_name);
        reply = await hubOf(c.env, claim.endpoint_id).register(owner, claim.endpoint_id, body);
      }
      unwrap(reply);
      // Registering a name again (configure --force) is how an owner replaces a secret they no longer
      // trust: only the new one may work, so the old generation is revoked.
      const hub = hubOf(c.env, claim.endpoint_id);
      const gen = unwrap(await (claim.created ? hub.secretGeneration(owner) : hub.revokeSecret(owner)));
      return {
        endpoint_id: claim.endpoint_id,
        token: await mintEndpointToken(c.env, owner, claim.endpoint_id, gen),
        task_queue_info: { connection_url: connectionUrl(c.req.url, claim.endpoint_id) },
      };
    },
  );

  defineRoute(
    table,
    {
      method: 'put',
      path: '/v3/endpoints/{endpoint_id}',
      summary: 'Update an endpoint',
      auth: 'user',
      keys: 'none',
      params: EndpointParams,
      body: RegisterEndpointRequest,
      response: EndpointDoc,
      errors: ['NOT_FOUND', 'VALIDATION_ERROR'],
      example: ENDPOINT_EXAMPLE,
    },
    async (c, { principal: { owner }, params, body }) => {
      const hub = hubOf(c.env, params.endpoint_id);
      const current = unwrap(await hub.describe(owner));
      if (current.endpoint_name !== body.endpoint_name) {
        const renamed = await registryOf(c.env, owner).renameEndpoint(params.endpoint_id, body.endpoint_name);
        if (renamed === 'name_taken') throw new FerryError('VALIDATION_ERROR', 'endpoint_name: already names another of your endpoints');
        if (renamed === 'unknown') throw new FerryError('NOT_FOUND', 'endpoint not found');
      }
      return unwrap(await hub.update(owner, body));
    },
  );

  defineRoute(table, { method: 'get', path: '/v2/endpoints', summary: "The caller's endpoints", auth: 'user', keys: 'none', response: EndpointList, errors: [] }, async (c, { principal: { owner } }) => {
    const ids = await registryOf(c.env, owner).endpointIds();
    const replies = await Promise.all(ids.map((id) => hubOf(c.env, id).describe(owner)));
    return replies.flatMap((reply) => (reply.ok ? [reply.value] : []));
  });

  defineRoute(
    table,
    { method: 'get', path: '/v2/endpoints/{endpoint_id}', summary: 'One endpoint', auth: 'user', keys: 'none', params: EndpointParams, response: EndpointDoc, errors: ['NOT_FOUND'] },
    async (c, { principal: { owner }, params }) => unwrap(await hubOf(c.env, params.endpoint_id).describe(owner)),
  );

  defineRoute(
    table,
    {
      method: 'get',
      path: '/v2/endpoints/{endpoint_id}/status',
      summary: 'Online when an agent is connected and heartbeating; its last status report. A user the endpoint is shared with sees online and queue length only',
      auth: 'user',
      keys: 'none',
      params: EndpointParams,
      response: z.union([EndpointStatus, GuestEndpointStatus]),
      errors: ['NOT_FOUND'],
    },
    async (c, { principal: { owner }, params }) => unwrap(await hubOf(c.env, params.endpoint_id).status(owner)),
  );

  defineRoute(
    table,
    {
      method: 'get',
      path: '/v3/endpoints/{endpoint_id}/allowed_functions',
      summary: 'The functions this endpoint may run (unrestricted: any of the owner\'s)',
      auth: 'user',
      keys: 'none',
      params: EndpointParams,
      response: AllowedFunctions,
      errors: ['NOT_FOUND'],
    },
    async (c, { principal: { owner }, params }) => {
      const doc = unwrap(await hubOf(c.env, params.endpoint_id).describe(owner));
      return { endpoint_id: doc.endpoint_id, restricted: doc.allowed_functions !== null, functions: doc.allowed_functions ?? [] };
    },
  );

  defineRoute(
    table,
    {
      method: 'delete',
      path: '/v2/endpoints/{endpoint_id}',
      summary: 'Delete an endpoint: its agent is disconnected and later submits are refused',
      auth: 'user',
      keys: 'none',
      params: EndpointParams,
      response: DeleteEndpointResponse,
      errors: ['NOT_FOUND'],
    },
    async (c, { principal: { owner }, params }) => {
      unwrap(await hubOf(c.env, params.endpoint_id).remove(owner));
      await registryOf(c.env, owner).forgetEndpoint(params.endpoint_id);
      return { result: 302 as const };
    },
  );

  defineRoute(
    table,
    {
      method: 'post',
      path: '/v3/endpoints/{endpoint_id}/token',
      summary: "Exchange the endpoint's secret (Authorization: Bearer <secret>) for a short-lived access token for the agent socket",
      auth: 'endpoint-secret',
      params: EndpointParams,
      response: EndpointAccessTokenResponse,
      errors: ['NOT_FOUND', 'TOKEN_REVOKED'],
    },
    async (c, { principal, params }) => {
      if (principal.endpoint_id !== params.endpoint_id) throw new FerryError('NOT_FOUND', 'endpoint not found');
      const gen = unwrap(await hubOf(c.env, params.endpoint_id).checkSecret(principal.sub, params.endpoint_id, principal.gen));
      const ttl = endpointAccessTtlSeconds(c.env);
      return { access_token: await mintEndpointAccessToken(c.env, principal.sub, params.endpoint_id, gen, ttl), expires_in: ttl };
    },
  );

  defineRoute(
    table,
    {
      method: 'post',
      path: '/v3/endpoints/{endpoint_id}/revoke',
      summary: "Revoke the endpoint's secret: it and every access token minted from it stop working at once, the connected agent is refused; register again for a new secret",
      auth: 'user',
      keys: 'none',
      params: EndpointParams,
      response: RevokeEndpointSecretResponse,
      errors: ['NOT_FOUND'],
    },
    async (c, { principal: { owner }, params }) => ({
      endpoint_id: params.endpoint_id,
      secret_generation: unwrap(await hubOf(c.env, params.endpoint_id).revokeSecret(owner)),
    }),
  );

  defineRoute(
    table,
    {
      method: 'get',
      path: '/v3/endpoints/{endpoint_id}/ws',
      summary: "The agent's WebSocket (frames: src/protocol/wire.ts); needs Upgrade: websocket and an access token of this endpoint's current secret generation",
      auth: 'endpoint',
      params: EndpointParams,
      otherResponses: [{ status: 101, description: 'Switching Protocols: the agent socket is open' }],
      errors: ['NOT_FOUND', 'VALIDATION_ERROR'],
    },
    async (c, { principal, params }) => {
      // Another endpoint's id names nothing this token may see.
      if (principal.endpoint_id !== params.endpoint_id) throw new FerryError('NOT_FOUND', 'endpoint not found');
      if (c.req.header('upgrade')?.toLowerCase() !== 'websocket') throw new FerryError('VALIDATION_ERROR', 'expected Upgrade: websocket');
      return hubOf(c.env, params.endpoint_id).fetch(
        new Request('https://endpoint-hub/agent', {
          headers: {
            upgrade: 'websocket',
            [AGENT_SOCKET_HEADERS.endpointId]: params.endpoint_id,
            [AGENT_SOCKET_HEADERS.owner]: principal.sub,
            [AGENT_SOCKET_HEADERS.generation]: String(principal.gen),
          },
        }),
      );
    },
  );
}
