// The REST contract of sharing (issue 19): an owner's groups of users, grants of an endpoint to a
// user or a group (each with the functions the grantee may run there), shares of a function (with
// users, groups, or everyone), and an endpoint's audit log. Re-exported by api.ts.

import { z } from 'zod';

const Uuid = z.string().regex(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/, 'must be a lower-case UUID');

export const SHARING_LIMITS = {
  maxGroups: 100,
  maxGroupMembers: 1_000,
  /** Grants of one endpoint (users and groups together), shares of one function. */
  maxGrants: 200,
  maxGrantFunctions: 100,
  auditPageDefault: 100,
  auditPageMax: 1_000,
} as const;

/** A user id as the gateway names users: `oidc-<hash>` for a provider identity, a development token's `sub`. */
export const UserId = z.string().min(1).max(200).regex(/^[^\s\u0000-\u001f\u007f]+$/, 'must be a user id (no spaces or control characters)');
export const GroupName = z.string().min(1).max(64).regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, 'must be letters, digits, . _ - (starting with a letter or digit)');

export const GroupRequest = z.strictObject({
  name: GroupName,
  /** The members, by user id: the group's whole membership (posting the name again replaces it). */
  members: z.array(UserId).max(SHARING_LIMITS.maxGroupMembers),
});
export type GroupRequest = z.infer<typeof GroupRequest>;

export const GroupDoc = z.object({ name: GroupName, members: z.array(UserId), created_at: z.string(), updated_at: z.string() });
export type GroupDoc = z.infer<typeof GroupDoc>;
export const GroupList = z.object({ groups: z.array(GroupDoc) });
export const DeletedGroup = z.object({ name: GroupName, deleted: z.literal(true) });

/** Exactly one grantee: a user by id, or one of the owner's groups by name. */
const Grantee = { user: UserId.optional(), group: GroupName.optional() };
function oneGrantee(v: { user?: string | undefined; group?: string | undefined }): boolean {
  return (v.user === undefined) !== (v.group === undefined);
}

/**
 * `functions`: what the grantee may run on the endpoint, by id, or `"*"`: any function the grantee
 * may use (the owner's own, and functions shared with the grantee), still within the endpoint's
 * `allowed_functions`. Required: a grant says explicitly what it allows.
 */
export const GrantFunctions = z.union([z.literal('*'), z.array(Uuid).min(1).max(SHARING_LIMITS.maxGrantFunctions)]);
export type GrantFunctions = z.infer<typeof GrantFunctions>;

export const EndpointShareRequest = z.strictObject({ ...Grantee, functions: GrantFunctions }).refine(oneGrantee, 'name exactly one of user or group');
export type EndpointShareRequest = z.infer<typeof EndpointShareRequest>;

export const GranteeQuery = z.strictObject({ user: UserId.optional(), group: GroupName.optional() }).refine(oneGrantee, 'name exactly one of user or group');

export const EndpointGrant = z.object({ user: UserId.nullable(), group: GroupName.nullable(), functions: GrantFunctions, created_at: z.string() });
export type EndpointGrant = z.infer<typeof EndpointGrant>;
export const EndpointShares = z.object({ endpoint_id: Uuid, grants: z.array(EndpointGrant) });
export type EndpointShares = z.infer<typeof EndpointShares>;

export const FunctionShareRequest = z
  .strictObject({ ...Grantee, public: z.literal(true).optional() })
  .refine((v) => [v.user, v.group, v.public].filter((x) => x !== undefined).length === 1, 'name exactly one of user, group or public');
export type FunctionShareRequest = z.infer<typeof FunctionShareRequest>;
export const FunctionShareQuery = z
  .strictObject({ user: UserId.optional(), group: GroupName.optional(), public: z.literal('true').optional() })
  .refine((v) => [v.user, v.group, v.public].filter((x) => x !== undefined).length === 1, 'name exactly one of user, group or public=true');

export const FunctionShares = z.object({ function_uuid: Uuid, public: z.boolean(), users: z.array(UserId), groups: z.array(GroupName) });
export type FunctionShares = z.infer<typeof FunctionShares>;

/** What a guest (not the owner) may see of a shared endpoint's status. */
export const GuestEndpointStatus = z.object({ status: z.enum(['online', 'offline']), details: z.object({ queue_length: z.number().int().nonnegative() }) });
export type GuestEndpointStatus = z.infer<typeof GuestEndpointStatus>;

export const AUDIT_EVENT_KINDS = ['task_received', 'task_started', 'task_ended', 'sharing_changed', 'key_used', 'key_revoked', 'tokens_revoked', 'secret_revoked', 'refused'] as const;
export const AuditEvent = z.object({
  kind: z.enum(AUDIT_EVENT_KINDS),
  /** Unix seconds. */
  at: z.number(),
  /** Who did it (a user id; for task events the submitter). */
  user: z.string().nullable(),
  task_id: z.string().optional(),
  function_uuid: z.string().optional(),
  /** task_ended: the final status. */
  status: z.string().optional(),
  /** sharing_changed, refused, key_used: what happened. */
  detail: z.record(z.string(), z.unknown()).optional(),
});
export type AuditEvent = z.infer<typeof AuditEvent>;

export const AuditQuery = z.strictObject({
  cursor: z.string().regex(/^\d{1,15}\.\d{1,6}\.\d{1,15}$/, 'must be a cursor from an earlier page').optional(),
  limit: z.coerce.number().int().min(1).max(SHARING_LIMITS.auditPageMax).optional(),
});
/** `next_cursor` reads on from the last event of the page (also later, for events recorded since); `more`: another page is ready now. */
export const AuditPage = z.object({ endpoint_id: Uuid, events: z.array(AuditEvent), next_cursor: z.string(), more: z.boolean() });
export type AuditPage = z.infer<typeof AuditPage>;
