// The bindings and variables the gateway receives per request (wrangler.toml, .dev.vars). Read
// only through `c.env` / a Durable Object's `env`, never at module load.

import type { EndpointHub } from './endpoint-hub/endpoint-hub';
import type { Registry } from './registry';
import type { ObjectIndex } from './objects/object-index';
import { LIMITS } from '../protocol/api';
import { DEFAULT_MAX_USER_TOKEN_TTL_S } from '../protocol/tokens';

export interface GatewayEnv {
  CACHE: KVNamespace;
  OBJECTS: R2Bucket;
  ENDPOINT_HUB: DurableObjectNamespace<EndpointHub>;
  REGISTRY: DurableObjectNamespace<Registry>;
  /** One index per owner of the owner's objects and uploads (src/gateway/objects/object-index.ts). */
  OBJECT_INDEX: DurableObjectNamespace<ObjectIndex>;
  /** HS256 key of user tokens (dev issuer) and of the endpoint tokens the gateway mints. */
  JWT_SECRET?: string;
  HEARTBEAT_S?: string;
  /** Lifetime in seconds of the endpoint access tokens POST /v3/endpoints/{id}/token mints (default 3600). */
  ENDPOINT_ACCESS_TTL_S?: string;
  /** Longest lifetime in seconds of a user token (exp from iat, and from now); longer ones and tokens without exp get 401. */
  MAX_USER_TOKEN_TTL_S?: string;
  MAX_REQUEST_BYTES?: string;
  AUTH_JWKS_URL?: string;
  AUTH_ISSUER?: string;
  AUTH_AUDIENCE?: string;
  /** The public client id the CLI signs in as with the single provider above (default `ferry-cli`). */
  AUTH_CLIENT_ID?: string;
  /** Several OpenID providers: a JSON list of {name, issuer, audience, client_id?, jwks_url?, scopes?} (src/gateway/auth/providers.ts). */
  AUTH_PROVIDERS?: string;
  /** `production` refuses the gateway's own development (HS256) user tokens; default `development`. */
  DEPLOYMENT?: string;
  GIT_SHA?: string;
  /** Where task state lives: `sqlite` (each endpoint hub's own storage, the default) or `redis`. */
  TASK_STORE?: string;
  /** Upstash REST endpoint and token (a secret) of the Redis that holds task state with TASK_STORE=redis. */
  UPSTASH_REDIS_REST_URL?: string;
  UPSTASH_REDIS_REST_TOKEN?: string;
  /** Seconds a task record and its result live in Redis (refreshed when the task ends); default 14 days. */
  TASK_TTL_S?: string;
  /** Per-user submission limits per window: requests and tasks ("0" or empty: no limit). */
  RATE_LIMIT_REQUESTS?: string;
  RATE_LIMIT_TASKS?: string;
  RATE_LIMIT_WINDOW_S?: string;
  /** Lineage recording: `on` (the default) or `off` (no provenance records; for overhead measurements). */
  LINEAGE?: string;
  /** Origins (scheme://host[:port], separated by commas or spaces) whose pages may call the API (CORS); empty: none. */
  CORS_ORIGINS?: string;
  /** Seconds between `: keepalive` comments on an event stream (default and most: 15). */
  EVENTS_KEEPALIVE_S?: string;
  /** Set by the local launcher (a random key per start): the key of its drain call (src/gateway/drain.ts). */
  LAUNCHER_KEY?: string;
}

function positiveNumber(raw: string | undefined, fallback: number): number {
  const value = Number(raw);
  return raw !== undefined && raw !== '' && Number.isFinite(value) && value > 0 ? value : fallback;
}

export function heartbeatSeconds(env: GatewayEnv): number {
  return positiveNumber(env.HEARTBEAT_S, 5);
}

export function endpointAccessTtlSeconds(env: GatewayEnv): number {
  return Math.ceil(positiveNumber(env.ENDPOINT_ACCESS_TTL_S, 3600));
}

export function maxUserTokenTtlSeconds(env: GatewayEnv): number {
  return Math.floor(positiveNumber(env.MAX_USER_TOKEN_TTL_S, DEFAULT_MAX_USER_TOKEN_TTL_S));
}

export function maxRequestBytes(env: GatewayEnv): number {
  return positiveNumber(env.MAX_REQUEST_BYTES, LIMITS.defaultMaxRequestBytes);
}

export type TaskStoreKind = 'sqlite' | 'redis';

export function taskStoreKind(env: GatewayEnv): TaskStoreKind {
  const kind = (env.TASK_STORE ?? '').trim().toLowerCase();
  if (kind === '' || kind === 'sqlite') return 'sqlite';
  if (kind === 'redis') return 'redis';
  throw new Error(`TASK_STORE: must be "sqlite" or "redis", got ${JSON.stringify(env.TASK_STORE)}`);
}

export function eventsKeepaliveSeconds(env: GatewayEnv): number {
  return Math.min(positiveNumber(env.EVENTS_KEEPALIVE_S, 15), 15);
}

export function lineageEnabled(env: GatewayEnv): boolean {
  const v = (env.LINEAGE ?? '').trim().toLowerCase();
  if (v === '' || v === 'on') return true;
  if (v === 'off') return false;
  throw new Error(`LINEAGE: must be "on" or "off", got ${JSON.stringify(env.LINEAGE)}`);
}

export const DEFAULT_TASK_TTL_S = 14 * 24 * 3600;

export function taskTtlSeconds(env: GatewayEnv): number {
  return Math.ceil(positiveNumber(env.TASK_TTL_S, DEFAULT_TASK_TTL_S));
}

export interface RedisSettings {
  url: string;
  token: string;
}

export function redisSettings(env: GatewayEnv): RedisSettings {
  const url = (env.UPSTASH_REDIS_REST_URL ?? '').trim();
  const token = (env.UPSTASH_REDIS_REST_TOKEN ?? '').trim();
  if (!url) throw new Error('UPSTASH_REDIS_REST_URL: required with TASK_STORE=redis');
  if (!token) throw new Error('UPSTASH_REDIS_REST_TOKEN: required with TASK_STORE=redis (a secret: wrangler secret put)');
  return { url, token };
}

export interface RateLimits {
  /** Requests per window; 0: unlimited. */
  requests: number;
  /** Tasks per window; 0: unlimited. */
  tasks: number;
  windowS: number;
}

export function rateLimits(env: GatewayEnv): RateLimits | null {
  const requests = Math.floor(positiveNumber(env.RATE_LIMIT_REQUESTS, 0));
  const tasks = Math.floor(positiveNumber(env.RATE_LIMIT_TASKS, 0));
  if (requests === 0 && tasks === 0) return null;
  return { requests, tasks, windowS: positiveNumber(env.RATE_LIMIT_WINDOW_S, 60) };
}
