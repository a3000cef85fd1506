// Service routes that need no token: version, health, and the OpenAPI document of every route.

import { Health, OpenApiDocument, VersionDoc } from '../../protocol/api';
import { PROTOCOL_VERSION } from '../../protocol/wire';
import { defineRoute, openApiDocument, type RouteTable } from '../route-spec';

export const API_VERSION = '1';
const MIN_SDK_VERSION = '0.1.0';
const MIN_ENDPOINT_VERSION = '0.1.0';

export function registerServiceRoutes(table: RouteTable): void {
  defineRoute(table, { method: 'get', path: '/v2/version', summary: 'Versions of the API, the wire protocol and the deployed code', auth: 'none', response: VersionDoc, errors: [] }, (c) => ({
    api: API_VERSION,
    min_sdk_version: MIN_SDK_VERSION,
    min_endpoint_version: MIN_ENDPOINT_VERSION,
    git_sha: c.env.GIT_SHA || 'unknown',
    protocol_version: PROTOCOL_VERSION,
  }));

  defineRoute(table, { method: 'get', path: '/healthz', summary: 'Liveness', auth: 'none', response: Health, errors: [] }, () => ({ ok: true }));

  // Built on first request, once per isolate: it depends only on the route table.
  let document: string | null = null;
  defineRoute(table, { method: 'get', path: '/v3/openapi.json', summary: 'This OpenAPI 3.1 document', auth: 'none', response: OpenApiDocument, errors: [] }, () => {
    document ??= JSON.stringify(openApiDocument(table.hono, API_VERSION));
    return new Response(document, { headers: { 'content-type': 'application/json' } });
  });
}
