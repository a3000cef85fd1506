// Sharing (issue 19): the owner's groups, grants of the owner's endpoints to users and groups, shares
// of the owner's functions, and an endpoint's audit log. All of it is the owner's to manage: a
// guest or a stranger gets 404 for anything here, and instrument keys cannot call these routes.
// The state lives in the owner's Registry (sharing/sharing-tables.ts); a change tells the hubs of
// the endpoints it touches, which forget their cached grants and log it (audit-log.ts).

import { z } from 'zod';
import {
  AuditPage,
  AuditQuery,
  DeletedGroup,
  EndpointShareRequest,
  EndpointShares,
  FunctionShareQuery,
  FunctionShareRequest,
  FunctionShares,
  GranteeQuery,
  GroupDoc,
  GroupList,
  GroupName,
  GroupRequest,
  SHARING_LIMITS,
  Uuid,
} from '../../protocol/api';
import { FerryError } from '../../protocol/errors';
import { hubOf } from '../endpoint-hub/endpoint-hub';
import { cacheFunction } from '../function-cache';
import type { GatewayEnv } from '../env';
import { unwrap } from '../hub-reply';
import { registryOf } from '../registry';
import { defineRoute, type RouteTable } from '../route-spec';
import { isolateAccess } from '../sharing/access-cache';
import type { Grantee } from '../sharing/sharing-tables';

const EndpointParams = z.object({ endpoint_id: Uuid });
const FunctionParams = z.object({ function_uuid: Uuid });
const GroupParams = z.object({ group_name: GroupName });

function granteeOf(v: { user?: string | undefined; group?: string | undefined; public?: unknown }): Grantee {
  if (v.user !== undefined) return { kind: 'user', id: v.user };
  if (v.group !== undefined) return { kind: 'group', id: v.group };
  return { kind: 'public', id: '' };
}

function describeGrantee(g: Grantee): Record<string, string | boolean> {
  return g.kind === 'public' ? { public: true } : { [g.kind]: g.id };
}

function refuse(outcome: 'unknown' | 'no_group' | 'too_many' | 'no_grant' | 'self', what: string): never {
  if (outcome === 'self') throw new FerryError('VALIDATION_ERROR', 'user: that is you (the owner needs no grant)');
  if (outcome === 'unknown') throw new FerryError('NOT_FOUND', `${what} not found`);
  if (outcome === 'no_group') throw new FerryError('VALIDATION_ERROR', 'group: you have no group of that name (POST /v3/groups first)');
  if (outcome === 'too_many') throw new FerryError('TOO_MANY_SHARES', `at most ${SHARING_LIMITS.maxGrants} grants or shares of one ${what}`, { max: SHARING_LIMITS.maxGrants });
  throw new FerryError('NOT_FOUND', `no such grant of this ${what}`);
}

/** The owner changed who may use an endpoint: its hub forgets cached grants and logs the change. */
async function tellHubs(env: GatewayEnv, owner: string, endpointIds: readonly string[], detail: Record<string, unknown>): Promise<void> {
  isolateAccess.forgetOwner(owner);
  // A hub of an endpoint deleted meanwhile answers NOT_FOUND: nothing left to tell.
  await Promise.all(endpointIds.map((id) => hubOf(env, id).sharingChanged(owner, detail)));
}

export function registerSharingRoutes(table: RouteTable): void {
  // ---- groups ----
  defineRoute(
    table,
    {
      method: 'post',
      path: '/v3/groups',
      summary: "Create one of the caller's groups, or replace its members (by user id); grants to the group follow its membership",
      auth: 'user',
      keys: 'none',
      body: GroupRequest,
      response: GroupDoc,
      errors: ['TOO_MANY_SHARES'],
      example: { name: 'beamline', members: ['alice', 'oidc-3f2a9c'] },
    },
    async (c, { principal: { owner }, body }) => {
      const put = await registryOf(c.env, owner).putGroup(body.name, body.members);
      if (put === null) throw new FerryError('TOO_MANY_SHARES', `at most ${SHARING_LIMITS.maxGroups} groups`, { max: SHARING_LIMITS.maxGroups });
      await tellHubs(c.env, owner, put.endpoints, { action: 'group_members', group: body.name, members: put.group.members.length });
      return put.group;
    },
  );

  defineRoute(table, { method: 'get', path: '/v3/groups', summary: "The caller's groups and their members", auth: 'user', keys: 'none', response: GroupList, errors: [] }, async (c, { principal: { owner } }) => ({
    groups: await registryOf(c.env, owner).groups(),
  }));

  defineRoute(
    table,
    { method: 'delete', path: '/v3/groups/{group_name}', summary: 'Delete a group: every grant and share to it ends', auth: 'user', keys: 'none', params: GroupParams, response: DeletedGroup, errors: ['NOT_FOUND'] },
    async (c, { principal: { owner }, params }) => {
      const { deleted, endpoints } = await registryOf(c.env, owner).deleteGroup(params.group_name);
      if (!deleted) throw new FerryError('NOT_FOUND', 'group not found');
      await tellHubs(c.env, owner, endpoints, { action: 'group_deleted', group: params.group_name });
      return { name: params.group_name, deleted: true as const };
    },
  );

  // ---- endpoint grants ----
  defineRoute(
    table,
    {
      method: 'post',
      path: '/v3/endpoints/{endpoint_id}/shares',
      summary:
        'Share the endpoint with a user or one of your groups, for the functions listed ("*": any function the grantee may use). Their tasks run under the endpoint\'s account, as yours do. The same grantee again replaces the list',
      auth: 'user',
      keys: 'none',
      params: EndpointParams,
      body: EndpointShareRequest,
      response: EndpointShares,
      errors: ['NOT_FOUND', 'TOO_MANY_SHARES'],
      example: { group: 'beamline', functions: ['{function_uuid}'] },
    },
    async (c, { principal: { owner }, params, body }) => {
      const grantee = granteeOf(body);
      const registry = registryOf(c.env, owner);
      const outcome = await registry.putGrant(params.endpoint_id, grantee, body.functions, owner);
      if (outcome !== 'ok') refuse(outcome, 'endpoint');
      await tellHubs(c.env, owner, [params.endpoint_id], { action: 'shared', ...describeGrantee(grantee), functions: body.functions });
      return { endpoint_id: params.endpoint_id, grants: (await registry.grants(params.endpoint_id)) ?? [] };
    },
  );

  defineRoute(
    table,
    { method: 'get', path: '/v3/endpoints/{endpoint_id}/shares', summary: "The endpoint's grants (the owner's view)", auth: 'user', keys: 'none', params: EndpointParams, response: EndpointShares, errors: ['NOT_FOUND'] },
    async (c, { principal: { owner }, params }) => {
      const grants = await registryOf(c.env, owner).grants(params.endpoint_id);
      if (grants === null) throw new FerryError('NOT_FOUND', 'endpoint not found');
      return { endpoint_id: params.endpoint_id, grants };
    },
  );

  defineRoute(
    table,
    {
      method: 'delete',
      path: '/v3/endpoints/{endpoint_id}/shares',
      summary: "End a grant of the endpoint (?user=ID or ?group=NAME); the endpoint's hub stops honouring it at once, other gateway isolates within 5 s",
      auth: 'user',
      keys: 'none',
      params: EndpointParams,
      query: GranteeQuery,
      response: EndpointShares,
      errors: ['NOT_FOUND'],
      queryExample: 'user=alice',
    },
    async (c, { principal: { owner }, params, query }) => {
      const grantee = granteeOf(query);
      const registry = registryOf(c.env, owner);
      const outcome = await registry.deleteGrant(params.endpoint_id, grantee);
      if (outcome === 'unknown') refuse(outcome, 'endpoint');
      if (outcome === 'ok') await tellHubs(c.env, owner, [params.endpoint_id], { action: 'unshared', ...describeGrantee(grantee) });
      return { endpoint_id: params.endpoint_id, grants: (await registry.grants(params.endpoint_id)) ?? [] };
    },
  );

  // ---- function shares ----
  defineRoute(
    table,
    {
      method: 'post',
      path: '/v3/functions/{function_uuid}/shares',
      summary: 'Share the function with a user, one of your groups, or everyone (public): they may read it and run it on endpoints they may use',
      auth: 'user',
      keys: 'none',
      params: FunctionParams,
      body: FunctionShareRequest,
      response: FunctionShares,
      errors: ['NOT_FOUND', 'TOO_MANY_SHARES'],
      example: { public: true },
    },
    async (c, { principal: { owner }, params, body }) => {
      const grantee = granteeOf(body);
      const registry = registryOf(c.env, owner);
      const outcome = await registry.putFunctionShare(params.function_uuid, grantee, owner);
      if (outcome !== 'ok') refuse(outcome, 'function');
      isolateAccess.forgetOwner(owner);
      // Guests find a function's owner through the KV copy: make sure it is there.
      const doc = (await registry.getFunction(params.function_uuid))!;
      await cacheFunction(c.env, params.function_uuid, { owner, runtime: doc.meta.runtime, code: doc.function_code, name: doc.function_name });
      return (await registry.functionShares(params.function_uuid))!;
    },
  );

  defineRoute(
    table,
    { method: 'get', path: '/v3/functions/{function_uuid}/shares', summary: "Who the function is shared with (the owner's view)", auth: 'user', keys: 'none', params: FunctionParams, response: FunctionShares, errors: ['NOT_FOUND'] },
    async (c, { principal: { owner }, params }) => {
      const shares = await registryOf(c.env, owner).functionShares(params.function_uuid);
      if (shares === null) throw new FerryError('NOT_FOUND', 'function not found');
      return shares;
    },
  );

  defineRoute(
    table,
    {
      method: 'delete',
      path: '/v3/functions/{function_uuid}/shares',
      summary: 'End a share of the function (?user=ID, ?group=NAME or ?public=true)',
      auth: 'user',
      keys: 'none',
      params: FunctionParams,
      query: FunctionShareQuery,
      response: FunctionShares,
      errors: ['NOT_FOUND'],
      queryExample: 'public=true',
    },
    async (c, { principal: { owner }, params, query }) => {
      const grantee = granteeOf(query);
      const registry = registryOf(c.env, owner);
      const outcome = await registry.deleteFunctionShare(params.function_uuid, grantee);
      if (outcome === 'unknown') refuse(outcome, 'function');
      isolateAccess.forgetOwner(owner);
      return (await registry.functionShares(params.function_uuid))!;
    },
  );

  // ---- the audit log ----
  defineRoute(
    table,
    {
      method: 'get',
      path: '/v3/endpoints/{endpoint_id}/audit',
      summary:
        "The endpoint's audit log, oldest first, paged (?cursor= from next_cursor, ?limit=): tasks received, started, ended (by whom, with which function; from their lineage records), sharing changed, key used, secret revoked, refused attempts. The owner's only",
      auth: 'user',
      keys: 'none',
      params: EndpointParams,
      query: AuditQuery,
      response: AuditPage,
      errors: ['NOT_FOUND'],
    },
    async (c, { principal: { owner }, params, query }) => unwrap(await hubOf(c.env, params.endpoint_id).audit(owner, query.cursor, query.limit ?? SHARING_LIMITS.auditPageDefault)),
  );
}
