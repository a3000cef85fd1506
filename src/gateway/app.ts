// The gateway's Hono app: every route from the one route table, errors as `{code, message, details?}`.

import { FerryError } from '../protocol/errors';
import { LAUNCHER_DRAIN_PATH } from '../protocol/wire';
import { cors } from './cors/cors';
import { drainGateway, trackRequest } from './drain';
import { errorResponse, toFerryError } from './http-errors';
import { createGatewayHono, createRouteTable, type GatewayHono, type RouteTable } from './route-spec';
import { registerDashboardRoutes } from './routes/dashboard';
import { registerEndpointRoutes } from './routes/endpoints';
import { registerEventRoutes } from './routes/events';
import { registerFunctionRoutes } from './routes/functions';
import { registerKeyRoutes } from './routes/keys';
import { registerObjectRoutes } from './routes/objects';
import { registerProvenanceRoutes } from './routes/provenance';
import { registerServiceRoutes } from './routes/service';
import { registerSharingRoutes } from './routes/sharing';
import { registerTaskListRoutes } from './routes/task-list';
import { registerTaskRoutes } from './routes/tasks';
import { registerUserRoutes } from './routes/users';

export interface GatewayApp {
  hono: GatewayHono;
  routes: RouteTable;
}

export function createApp(): GatewayApp {
  const hono = createGatewayHono();
  // Before the request counter below, which must not count (and wait for) the drain call itself.
  hono.post(LAUNCHER_DRAIN_PATH, async function drainForLauncher(c) {
    if (!launcherKeyMatches(c.env.LAUNCHER_KEY, c.req.header('x-launcher-key'))) throw new FerryError('NOT_FOUND', 'no such route');
    const timeoutMs = Math.min(60_000, Math.max(0, Number(c.req.query('timeout_ms')) || 5000));
    return c.json(await drainGateway(timeoutMs, (id) => c.env.ENDPOINT_HUB.get(c.env.ENDPOINT_HUB.idFromString(id)).drainForShutdown()));
  });
  hono.use(cors());
  hono.use(async function countInFlight(_c, next) {
    await trackRequest(next);
  });
  const routes = createRouteTable(hono);
  registerServiceRoutes(routes);
  registerFunctionRoutes(routes);
  registerEndpointRoutes(routes);
  registerTaskRoutes(routes);
  registerTaskListRoutes(routes);
  registerObjectRoutes(routes);
  registerProvenanceRoutes(routes);
  registerDashboardRoutes(hono);
  registerEventRoutes(routes);
  registerUserRoutes(routes);
  registerKeyRoutes(routes);
  registerSharingRoutes(routes);
  hono.onError(function ferryErrors(err) {
    return errorResponse(toFerryError(err));
  });
  hono.notFound(function noSuchRoute() {
    return errorResponse(new FerryError('NOT_FOUND', 'no such route'));
  });
  return { hono, routes };
}

/** Only a launcher that set LAUNCHER_KEY (a random key per start) may drain the gateway. */
function launcherKeyMatches(expected: string | undefined, given: string | undefined): boolean {
  if (!expected || !given) return false;
  const a = new TextEncoder().encode(expected);
  const b = new TextEncoder().encode(given);
  return a.byteLength === b.byteLength && crypto.subtle.timingSafeEqual(a, b);
}
