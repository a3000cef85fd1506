// The bindings and variables the gateway receives per request (wrangler.toml, .dev.vars). Read
// only through `c.env` / a Durable Object's `env`, never at module load.

import type { EndpointHub } from './endpoint-hub/endpoint-hub';
import type { Registry } from './registry';
import { LIMITS } from '../protocol/api';

export interface GatewayEnv {
  CACHE: KVNamespace;
  OBJECTS: R2Bucket;
  ENDPOINT_HUB: DurableObjectNamespace<EndpointHub>;
  REGISTRY: DurableObjectNamespace<Registry>;
  /** HS256 key of user tokens (dev issuer) and of the endpoint tokens the gateway mints. */
  JWT_SECRET?: string;
  HEARTBEAT_S?: string;
  MAX_REQUEST_BYTES?: string;
  AUTH_JWKS_URL?: string;
  AUTH_ISSUER?: string;
  AUTH_AUDIENCE?: string;
  GIT_SHA?: string;
}

function positiveNumber(raw: string | undefined, fallback: number): number {
  const value = Number(raw);
  return raw !== undefined && raw !== '' && Number.isFinite(value) && value > 0 ? value : fallback;
}

export function heartbeatSeconds(env: GatewayEnv): number {
  return positiveNumber(env.HEARTBEAT_S, 5);
}

export function maxRequestBytes(env: GatewayEnv): number {
  return positiveNumber(env.MAX_REQUEST_BYTES, LIMITS.defaultMaxRequestBytes);
}
