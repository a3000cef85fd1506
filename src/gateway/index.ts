// The gateway's composition root: the Hono app as the Worker's fetch handler, and the Durable
// Object classes wrangler.toml binds (ENDPOINT_HUB, REGISTRY).

import { createApp } from './app';
import type { GatewayEnv } from './env';

export { EndpointHub } from './endpoint-hub/endpoint-hub';
export { Registry } from './registry';
export { ObjectIndex } from './objects/object-index';

const { hono } = createApp();

export default {
  fetch: (request, env, ctx) => hono.fetch(request, env, ctx),
} satisfies ExportedHandler<GatewayEnv>;
