// Access for routes an endpoint agent also calls on its owner's behalf: reading object bytes
// (`reader`), and storing objects (`writer`: the results an agent stores by reference). A user token
// acts as its owner; an endpoint access token as the owner who registered the endpoint. The token's
// audience (read unverified, only to pick the verifier) decides which check runs.

import { decodeJwt } from 'jose';
import { ENDPOINT_ACCESS_AUDIENCE, ENDPOINT_AUDIENCE } from '../protocol/tokens';
import { FerryError } from '../protocol/errors';
import { authenticateEndpoint, authenticateUser, type Defer } from './auth';
import type { KeyGrant } from './auth/keys';
import { hubOf } from './endpoint-hub/endpoint-hub';
import type { GatewayEnv } from './env';
import { unwrap } from './hub-reply';

export interface ReaderPrincipal {
  owner: string;
  /** `user`, `key:<key_id>`, or `endpoint:<endpoint_id>`: who read, for the owner's counters. */
  reader: string;
  /** An instrument key's scopes, when a key made the request. */
  key?: KeyGrant;
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

export async function authenticateReader(env: GatewayEnv, authorization: string | undefined, defer?: Defer): Promise<ReaderPrincipal> {
  const audiences = audienceOf(authorization);
  // The endpoint secret opens nothing but its own exchange route.
  if (audiences.includes(ENDPOINT_AUDIENCE)) throw new FerryError('UNAUTHORIZED', 'an endpoint secret is only accepted by POST /v3/endpoints/{endpoint_id}/token');
  if (audiences.includes(ENDPOINT_ACCESS_AUDIENCE)) {
    const claims = await authenticateEndpoint(env, authorization);
    // A revoked secret's access tokens stop reading at once, like they stop opening the socket.
    const check = await hubOf(env, claims.endpoint_id).checkSecret(claims.sub, claims.endpoint_id, claims.gen);
    if (!check.ok && check.error.code === 'NOT_FOUND') throw new FerryError('UNAUTHORIZED', 'the endpoint of this token no longer exists');
    unwrap(check);
    return { owner: claims.sub, reader: `endpoint:${claims.endpoint_id}` };
  }
  const user = await authenticateUser(env, authorization, defer);
  return user.key ? { owner: user.owner, reader: `key:${user.key.key_id}`, key: user.key } : { owner: user.owner, reader: 'user' };
}

export interface WriterPrincipal {
  owner: string;
  /** `user`, `key:<key_id>`, or `endpoint:<endpoint_id>`: who stored, for the owner's counters. */
  writer: string;
  key?: KeyGrant;
}

/** Storing objects for the owner: the same tokens as reads, the same checks (a revoked secret's tokens stop at once). */
export async function authenticateWriter(env: GatewayEnv, authorization: string | undefined, defer?: Defer): Promise<WriterPrincipal> {
  const { owner, reader, key } = await authenticateReader(env, authorization, defer);
  return key ? { owner, writer: reader, key } : { owner, writer: reader };
}
