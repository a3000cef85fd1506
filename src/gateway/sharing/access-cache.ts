// What a user may do with another owner's endpoints and functions, read from that owner's Registry
// (SharingTables.accessOf) and remembered for SHARING_CACHE_TTL_MS, like instrument keys' records:
// a guest's tasks cost no Durable Object round trip but the first in each window. The staleness
// window: a grant or share removed (or a member removed from a group) still works for at most
// SHARING_CACHE_TTL_MS in a gateway isolate or hub that read it before; the hub of an endpoint
// whose grants changed forgets at once (the route tells it), and so does the isolate that made the
// change. An owner's own tasks never come here.

import type { GatewayEnv } from '../env';
import { registryOf } from '../registry';
import type { GuestAccess } from './sharing-tables';

export const SHARING_CACHE_TTL_MS = 5_000;
const MAX_ENTRIES = 10_000;

export class AccessCache {
  private readonly memo = new Map<string, { access: Promise<GuestAccess>; until: number }>();

  /** What `user` may do with `owner`'s things, at most SHARING_CACHE_TTL_MS old. */
  accessOf(env: GatewayEnv, owner: string, user: string): Promise<GuestAccess> {
    const key = `${owner}\n${user}`;
    const now = Date.now();
    const hit = this.memo.get(key);
    if (hit && hit.until > now) return hit.access;
    if (this.memo.size >= MAX_ENTRIES) this.memo.clear();
    const access = registryOf(env, owner).accessOf(user);
    this.memo.set(key, { access, until: now + SHARING_CACHE_TTL_MS });
    // A failed read is not remembered.
    access.catch(() => this.memo.delete(key));
    return access;
  }

  /** Forgets what was read of `owner`'s grants (after the owner changed them). */
  forgetOwner(owner: string): void {
    const prefix = `${owner}\n`;
    for (const key of this.memo.keys()) if (key.startsWith(prefix)) this.memo.delete(key);
  }
}

/** The gateway isolate's cache (function resolution, reads of shared functions). */
export const isolateAccess = new AccessCache();
