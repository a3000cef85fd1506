// The types of `env` and `exports` from `cloudflare:workers` in the gateway's tests, declared as
// @cloudflare/vitest-pool-workers documents it (the shape `wrangler types` writes): Cloudflare.Env
// is the gateway's own bindings (wrangler.toml, plus what vitest.gateway.config.ts adds), and
// GlobalProps names the main module, so `exports.default` is the gateway's fetch handler.
// A module with `declare global`, not a global script with `import()` types: under TypeScript 7's
// parallel checkers the script form left Env empty in whichever test file was checked first.

import type { GatewayEnv } from '../src/gateway/env';

declare global {
  namespace Cloudflare {
    interface Env extends GatewayEnv {}
    interface GlobalProps {
      mainModule: typeof import('../src/gateway/index');
      durableNamespaces: 'EndpointHub' | 'Registry' | 'ObjectIndex';
    }
  }
}
