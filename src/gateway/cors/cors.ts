// CORS for the origins the gateway's CORS_ORIGINS setting lists (none by default), so that a
// notebook running in a browser (JupyterLite, Observable) may call the API with its bearer token.
// Tokens travel in `Authorization`, never in cookies: no `Access-Control-Allow-Credentials`.
// An origin not listed gets no CORS header at all, and its preflight goes on to the routes (404).

import type { MiddlewareHandler } from 'hono';
import type { GatewayEnv } from '../env';

/** Request headers a listed origin may send (the ones some route reads). */
export const CORS_ALLOWED_HEADERS = ['authorization', 'content-type', 'idempotency-key', 'ferry-trace', 'range', 'x-ferry-filters', 'last-event-id'] as const;
export const CORS_ALLOWED_METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'DELETE'] as const;
/** Answer headers a page may read besides the CORS-safelisted ones. */
export const CORS_EXPOSED_HEADERS = [
  'retry-after', 'content-range', 'content-length', 'content-disposition', 'server-timing', 'x-ferry-sha256', 'x-ferry-size',
  'x-ratelimit-window', 'x-ratelimit-window-seconds', 'x-ratelimit-remaining-requests', 'x-ratelimit-remaining-tasks',
] as const;
/** Seconds a browser may cache a preflight answer. */
const PREFLIGHT_MAX_AGE_S = 600;

const parsed = new Map<string, ReadonlySet<string>>();

/**
 * The origins of CORS_ORIGINS (separated by commas or spaces), each exactly `scheme://host[:port]`.
 * Anything else is a configuration mistake named in the error, not an origin silently ignored.
 */
export function corsOrigins(env: Pick<GatewayEnv, 'CORS_ORIGINS'>): ReadonlySet<string> {
  const raw = env.CORS_ORIGINS ?? '';
  let origins = parsed.get(raw);
  if (origins) return origins;
  const list = raw.split(/[\s,]+/).filter((s) => s !== '');
  for (const entry of list) {
    let origin: string | null = null;
    try {
      origin = new URL(entry).origin;
    } catch {
      // reported below
    }
    if (origin !== entry) throw new Error(`CORS_ORIGINS: ${JSON.stringify(entry)} is not an origin (scheme://host[:port], no path, no trailing slash)`);
  }
  origins = new Set(list);
  parsed.set(raw, origins);
  return origins;
}

export function cors(): MiddlewareHandler<{ Bindings: GatewayEnv }> {
  return async function corsForListedOrigins(c, next) {
    const origins = corsOrigins(c.env);
    if (origins.size === 0) return next();
    const origin = c.req.header('origin');
    const listed = origin !== undefined && origins.has(origin);
    if (listed && c.req.method === 'OPTIONS' && c.req.header('access-control-request-method') !== undefined) {
      return new Response(null, {
        status: 204,
        headers: {
          'access-control-allow-origin': origin,
          'access-control-allow-methods': CORS_ALLOWED_METHODS.join(', '),
          'access-control-allow-headers': CORS_ALLOWED_HEADERS.join(', '),
          'access-control-max-age': String(PREFLIGHT_MAX_AGE_S),
          vary: 'Origin, Access-Control-Request-Method, Access-Control-Request-Headers',
        },
      });
    }
    await next();
    // The agent's WebSocket upgrade answers 101 with headers that cannot change, and needs none.
    if (c.res.status === 101) return;
    const res = new Response(c.res.body, c.res);
    // Answers differ by Origin once any origin is listed: caches must keep them apart.
    res.headers.append('vary', 'Origin');
    if (listed) {
      res.headers.set('access-control-allow-origin', origin);
      res.headers.set('access-control-expose-headers', CORS_EXPOSED_HEADERS.join(', '));
    }
    c.res = undefined;
    c.res = res;
  };
}
