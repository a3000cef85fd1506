// The dashboard at `/`: static files bundled with the Worker (src/gateway/dashboard/assets.ts,
// built from src/dashboard). The page shares its origin with users' objects and shows users'
// output, so it runs under a strict Content-Security-Policy: scripts and styles from this origin
// only, no inline code, no eval, Trusted Types that admit no HTML sink, no framing, no form posts.
// Not API routes: they take no token (the page signs in itself) and stay out of the OpenAPI document.

import { DASHBOARD_FILES } from '../dashboard/assets';
import type { GatewayHono } from '../route-spec';

export const DASHBOARD_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self'",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
  "require-trusted-types-for 'script'",
  "trusted-types 'none'",
].join('; ');

export const DASHBOARD_PATHS = Object.keys(DASHBOARD_FILES);

/** ETags by path, computed once per isolate: the files are constants of this build. */
const etags = new Map<string, Promise<string>>();

function etagOf(path: string, body: string): Promise<string> {
  let etag = etags.get(path);
  if (!etag) {
    etag = crypto.subtle.digest('SHA-256', new TextEncoder().encode(body)).then((d) => `"${[...new Uint8Array(d).slice(0, 12)].map((b) => b.toString(16).padStart(2, '0')).join('')}"`);
    etags.set(path, etag);
  }
  return etag;
}

export function registerDashboardRoutes(hono: GatewayHono): void {
  for (const [path, file] of Object.entries(DASHBOARD_FILES)) {
    hono.get(path, async function dashboardFile(c) {
      const etag = await etagOf(path, file.body);
      const headers = new Headers({
        'content-type': file.type,
        'content-security-policy': DASHBOARD_CSP,
        'x-content-type-options': 'nosniff',
        'referrer-policy': 'no-referrer',
        'x-frame-options': 'DENY',
        'cross-origin-opener-policy': 'same-origin',
        // Revalidated on every load (a new gateway version serves a new page at once), cheap by ETag.
        'cache-control': 'no-cache',
        etag,
      });
      if (c.req.header('if-none-match') === etag) return new Response(null, { status: 304, headers });
      return new Response(file.body, { headers });
    });
  }
}
