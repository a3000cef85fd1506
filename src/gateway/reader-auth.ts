// Read access for routes an endpoint agent also calls on its owner's behalf (object bytes): a user
// token reads as its owner; an endpoint token reads as the owner who registered the endpoint.
// The token's audience (read unverified, only to pick the verifier) decides which check runs.

import { decodeJwt } from 'jose';
import { ENDPOINT_AUDIENCE } from '../protocol/tokens';
import { authenticateEndpoint, authenticateUser } from './auth';
import type { GatewayEnv } from './env';

export interface ReaderPrincipal {
  owner: string;
  /** `user`, or `endpoint:<endpoint_id>`: who read, for the owner's counters. */
  reader: string;
}

function audienceOf(authorization: string | undefined): string[] {
  const token = authorization ? /^Bearer\s+(\S+)\s*$/i.exec(authorization)?.[1] : undefined;
  if (!token) return [];
  try {
    const { aud } = decodeJwt(token);
    return aud === undefined ? [] : Array.isArray(aud) ? aud : [aud];
  } catch {
    return [];
  }
}

export async function authenticateReader(env: GatewayEnv, authorization: string | undefined): Promise<ReaderPrincipal> {
  if (audienceOf(authorization).includes(ENDPOINT_AUDIENCE)) {
    const claims = await authenticateEndpoint(env, authorization);
    return { owner: claims.sub, reader: `endpoint:${claims.endpoint_id}` };
  }
  return { owner: await authenticateUser(env, authorization), reader: 'user' };
}
