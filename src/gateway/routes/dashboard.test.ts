// The dashboard's files as the gateway serves them: the page, its script and stylesheet, under a
// CSP that admits no inline code and no HTML sinks, and a page and script that give it none.

import { describe, expect, it } from 'vitest';
import { DASHBOARD_CSP } from './dashboard';
import { call, BASE } from '../../../test/helpers/gateway';
import { exports } from 'cloudflare:workers';

async function get(path: string, headers: Record<string, string> = {}): Promise<Response> {
  return exports.default.fetch(`${BASE}${path}`, { headers });
}

describe('the dashboard at /', () => {
  it('serves the page without a token, under a strict CSP', async () => {
    const res = await get('/');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/html; charset=utf-8');
    const csp = res.headers.get('content-security-policy')!;
    expect(csp).toBe(DASHBOARD_CSP);
    for (const directive of ["default-src 'none'", "script-src 'self'", "style-src 'self'", "frame-ancestors 'none'", "require-trusted-types-for 'script'"]) expect(csp).toContain(directive);
    expect(csp).not.toMatch(/unsafe-inline|unsafe-eval|\*/);
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    expect(res.headers.get('referrer-policy')).toBe('no-referrer');
    const html = await res.text();
    // Every script comes from a file, and nothing runs from an attribute or sits inline.
    const scripts = [...html.matchAll(/<script\b([^>]*)>([\s\S]*?)<\/script>/g)];
    expect(scripts.length).toBe(1);
    for (const [, attrs, body] of scripts) {
      expect(attrs).toMatch(/src="\/dashboard\/app\.js"/);
      expect(body!.trim()).toBe('');
    }
    expect(html).not.toMatch(/\son[a-z]+\s*=/i);
    expect(html).not.toMatch(/<style|\sstyle\s*=/i);
    expect(html).toMatch(/<link rel="stylesheet" href="\/dashboard\/app\.css">/);
  });

  it('serves the script and stylesheet with their types; the script uses no HTML sink and no eval', async () => {
    const js = await get('/dashboard/app.js');
    expect(js.status).toBe(200);
    expect(js.headers.get('content-type')).toBe('text/javascript; charset=utf-8');
    expect(js.headers.get('x-content-type-options')).toBe('nosniff');
    const code = await js.text();
    for (const sink of ['innerHTML', 'outerHTML', 'insertAdjacentHTML', 'document.write', 'eval(', 'new Function', 'createContextualFragment', 'DOMParser']) expect(code, sink).not.toContain(sink);
    const css = await get('/dashboard/app.css');
    expect([css.status, css.headers.get('content-type')]).toEqual([200, 'text/css; charset=utf-8']);
  });

  it('answers 304 to a reload with the same ETag', async () => {
    const first = await get('/dashboard/app.js');
    const etag = first.headers.get('etag')!;
    expect(etag).toMatch(/^"[0-9a-f]{24}"$/);
    const again = await get('/dashboard/app.js', { 'if-none-match': etag });
    expect(again.status).toBe(304);
  });

  it('answers 404 NOT_FOUND as JSON for a file it does not have', async () => {
    const res = await call('get', '/dashboard/other.js');
    expect([res.status, res.body.code]).toEqual([404, 'NOT_FOUND']);
  });
});
