// The gateway's Hono app: every route from the one route table, errors as `{code, message, details?}`.

import { Hono } from 'hono';
import { FerryError } from '../protocol/errors';
import type { GatewayEnv } from './env';
import { errorResponse, toFerryError } from './http-errors';
import { createRouteTable, type GatewayHono, type RouteTable } from './route-spec';
import { registerEndpointRoutes } from './routes/endpoints';
import { registerFunctionRoutes } from './routes/functions';
import { registerObjectRoutes } from './routes/objects';
import { registerProvenanceRoutes } from './routes/provenance';
import { registerServiceRoutes } from './routes/service';
import { registerTaskRoutes } from './routes/tasks';

export interface GatewayApp {
  hono: GatewayHono;
  routes: RouteTable;
}

export function createApp(): GatewayApp {
  const hono = new Hono<{ Bindings: GatewayEnv }>();
  const routes = createRouteTable(hono);
  registerServiceRoutes(routes);
  registerFunctionRoutes(routes);
  registerEndpointRoutes(routes);
  registerTaskRoutes(routes);
  registerObjectRoutes(routes);
  registerProvenanceRoutes(routes);
  hono.onError(function ferryErrors(err) {
    return errorResponse(toFerryError(err));
  });
  hono.notFound(function noSuchRoute() {
    return errorResponse(new FerryError('NOT_FOUND', 'no such route'));
  });
  return { hono, routes };
}
