// The hub's side of sharing: whether a guest (a caller who is not the endpoint's owner) may submit
// the functions of a submission here, from the owner's grants (cached: sharing/access-cache.ts).
// An owner's own submission of their own functions never comes here.

import type { HubReply } from '../hub-reply';
import { fail } from '../hub-reply';
import type { GatewayEnv } from '../env';
import { AccessCache } from '../sharing/access-cache';
import type { EndpointRecord } from './endpoint-record';
import { dataRefsIn } from '../../functions/data-ref';

/** Functions of a submission that are not the submitter's: whose, and how the submitter may use them. */
export type ForeignFunctions = Record<string, { owner: string; via: 'shared' | 'grant' }>;

export class SharingGuard {
  readonly access = new AccessCache();

  constructor(private readonly env: GatewayEnv) {}

  /**
   * Null when `caller` may submit these functions to the endpoint; else the refusal: NOT_FOUND when
   * the endpoint is not shared with the caller (a stranger learns nothing), FUNCTION_NOT_SHARED
   * when a function is outside the caller's grant, NOT_FOUND for a function the caller may use only
   * on its owner's endpoints under a grant.
   */
  async check(record: EndpointRecord, caller: string, functionUuids: readonly string[], foreign: ForeignFunctions | undefined): Promise<{ refusal: HubReply<never>; reason: string; function_uuid?: string } | null> {
    // A function usable only through another owner's endpoint grants runs only on that owner's endpoints.
    for (const [id, f] of Object.entries(foreign ?? {})) {
      if (f.via === 'grant' && f.owner !== record.owner) return { refusal: fail('NOT_FOUND', `function ${id} not found`, { function_uuid: id }), reason: 'function_not_found', function_uuid: id };
    }
    if (caller === record.owner) return null;
    const access = await this.access.accessOf(this.env, record.owner, caller);
    const grant = access.endpoints[record.endpoint_id];
    if (grant === undefined) return { refusal: fail('NOT_FOUND', 'endpoint not found'), reason: 'not_shared' };
    if (grant === '*') return null;
    const listed = new Set(grant);
    const refused = functionUuids.find((id) => !listed.has(id));
    if (refused === undefined) return null;
    return {
      refusal: fail('FUNCTION_NOT_SHARED', `function ${refused} is not among the functions this endpoint is shared with you for`, { function_uuid: refused }),
      reason: 'function_not_shared',
      function_uuid: refused,
    };
  }

  /**
   * The first object reference in a guest's payloads (`{"$ref": id}` naming a stored object, not a
   * `file://` URL), or null. The agent reads objects with the endpoint's credentials, which are its
   * owner's: a guest naming an object would have the owner's objects read for them (a confused
   * deputy), so a guest passes data inline or as files under the endpoint's data_roots. Guests only.
   */
  objectRefIn(payloads: ReadonlyArray<{ payload_json: string }>): string | null {
    for (const { payload_json } of payloads) {
      if (!payload_json.includes('"$ref"')) continue;
      const { refs, tooDeep } = dataRefsIn(JSON.parse(payload_json) as unknown, MAX_REF_DEPTH);
      if (tooDeep) return '(nested too deep to check)';
      const object = refs.find((ref) => !ref.$ref.startsWith('file://'));
      if (object) return object.$ref;
    }
    return null;
  }

  /** Whether the endpoint is shared with `caller` (the status route's guest view). */
  async isGuest(record: EndpointRecord, caller: string): Promise<boolean> {
    const access = await this.access.accessOf(this.env, record.owner, caller);
    return access.endpoints[record.endpoint_id] !== undefined;
  }
}

/** Deeper payloads are refused outright (a walk's depth bound). */
const MAX_REF_DEPTH = 64;
