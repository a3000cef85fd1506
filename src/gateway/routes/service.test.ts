// Version, health, and the OpenAPI document generated from the route table.

import { describe, expect, it } from 'vitest';
import { createApp } from '../app';
import { errorResponse } from '../http-errors';
import { honoPath } from '../route-spec';
import { DASHBOARD_PATHS } from './dashboard';
import { FerryError } from '../../protocol/errors';
import { LAUNCHER_DRAIN_PATH, PROTOCOL_VERSION } from '../../protocol/wire';
import { exports } from 'cloudflare:workers';
import { BASE, call, newUser } from '../../../test/helpers/gateway';

describe('service routes', () => {
  it('GET /v2/version', async () => {
    const res = await call('get', '/v2/version');
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ api: '1', min_sdk_version: '0.1.0', min_endpoint_version: '0.1.0', git_sha: 'test-sha', protocol_version: PROTOCOL_VERSION });
  });

  it('GET /healthz', async () => {
    expect((await call('get', '/healthz')).body).toEqual({ ok: true });
  });

  it('answers 404 NOT_FOUND as JSON for an unknown route', async () => {
    const res = await call('get', '/v9/nothing');
    expect(res.status).toBe(404);
    expect(res.body.code).toBe('NOT_FOUND');
  });
});

describe('error answers', () => {
  it('tell a caller when to come back: 429 RATE_LIMITED and 503 UNAVAILABLE (a draining gateway) carry Retry-After', async () => {
    for (const code of ['RATE_LIMITED', 'UNAVAILABLE'] as const) {
      const res = errorResponse(new FerryError(code, 'later', { retry_after_s: 1 }));
      expect([res.headers.get('retry-after'), ((await res.json()) as { code: string }).code]).toEqual(['1', code]);
    }
    expect(errorResponse(new FerryError('NOT_FOUND', 'no', { retry_after_s: 1 })).headers.get('retry-after')).toBeNull();
  });
});

describe('GET /v3/openapi.json', () => {
  it('is OpenAPI 3.1 and documents exactly the routes the app serves', async () => {
    const res = await call('get', '/v3/openapi.json');
    expect(res.status).toBe(200);
    expect(res.body.openapi).toBe('3.1.0');
    const documented = Object.entries(res.body.paths as Record<string, Record<string, unknown>>).flatMap(([path, ops]) => Object.keys(ops).map((m) => `${m.toUpperCase()} ${honoPath(path)}`));
    // Not the public API: the request counter every route passes through, and the local launcher's
    // drain call (src/gateway/drain.ts), which answers 404 without the launcher's key.
    // Nor the dashboard's static files (src/gateway/routes/dashboard.ts), which take no token.
    // One entry per handler: a route's middleware and validators (@hono/zod-openapi) are entries of its own.
    const served = [...new Set(createApp().hono.routes.filter((r) => r.method !== 'ALL' && r.path !== LAUNCHER_DRAIN_PATH && !DASHBOARD_PATHS.includes(r.path)).map((r) => `${r.method} ${r.path}`))];
    expect(new Set(documented)).toEqual(new Set(served));
    expect(documented.length).toBe(served.length);
  });

  it('resolves every $ref, and documents errors with their codes', async () => {
    const doc = (await call('get', '/v3/openapi.json')).body;
    const refs = new Set<string>();
    const walk = (node: unknown) => {
      if (Array.isArray(node)) node.forEach(walk);
      else if (node && typeof node === 'object') {
        for (const [key, value] of Object.entries(node)) {
          if (key === '$ref' && typeof value === 'string') refs.add(value);
          else walk(value);
        }
      }
    };
    walk(doc);
    expect(refs.size).toBeGreaterThan(5);
    for (const ref of refs) {
      expect(ref.startsWith('#/components/schemas/'), ref).toBe(true);
      expect(doc.components.schemas[ref.slice('#/components/schemas/'.length)], ref).toBeDefined();
    }
    const submit = doc.paths['/v3/endpoints/{endpoint_id}/submit'].post;
    expect(Object.keys(submit.responses)).toEqual(expect.arrayContaining(['200', '400', '401', '403', '404', '413']));
    expect(submit.responses['413'].description).toContain('TOO_MANY_TASKS');
    expect(submit.security).toEqual([{ userToken: [] }]);
    expect(doc.paths['/v2/version'].get.security).toEqual([]);
    expect(doc.paths['/v3/endpoints/{endpoint_id}/ws'].get.security).toEqual([{ endpointToken: [] }]);
  });
});

describe('the launcher\'s drain call', () => {
  it('does not exist for anyone without the launcher\'s key (none is set here, as on Cloudflare)', async () => {
    const res = await call('post', LAUNCHER_DRAIN_PATH);
    expect(res.status).toBe(404);
    expect(res.body.code).toBe('NOT_FOUND');
    // Still serving: nothing was drained.
    expect((await call('get', '/healthz')).status).toBe(200);
  });
});

describe('route validation (@hono/zod-openapi with the route table)', () => {
  const send = async (body: string, contentType: string | null, token: string) => {
    const headers: Record<string, string> = { authorization: `Bearer ${token}` };
    if (contentType !== null) headers['content-type'] = contentType;
    const res = await exports.default.fetch(`${BASE}/v3/functions`, { method: 'POST', headers, body });
    return { status: res.status, body: (await res.json()) as { code?: string; function_uuid?: string; details?: { issues?: unknown[] } } };
  };

  it('reads a JSON body whatever its Content-Type says, and refuses a bad one with the same codes', async () => {
    const { token } = await newUser('ct');
    const good = JSON.stringify({ function_name: 'f', function_code: 'function f() { return 1 }' });
    const answers = await Promise.all([null, 'application/json', 'application/json; charset=utf-8', 'text/plain', 'application/octet-stream'].map((ct) => send(good, ct, token)));
    expect(answers.map((a) => a.status)).toEqual([200, 200, 200, 200, 200]);
    expect(new Set(answers.map((a) => a.body.function_uuid)).size).toBe(1);
    const bad = await send(JSON.stringify({ function_name: '' }), 'text/plain', token);
    expect([bad.status, bad.body.code]).toEqual([400, 'VALIDATION_ERROR']);
    expect(bad.body.details?.issues?.length).toBeGreaterThan(0);
    expect((await send('{"function_name": ', null, token)).body.code).toBe('INVALID_JSON');
  });

  it('answers 404 for a path parameter that cannot name anything, 400 for a bad query or header', async () => {
    const { token } = await newUser('params');
    expect((await call('get', '/v2/tasks/not-a-task-id', { token })).body.code).toBe('NOT_FOUND');
    const badQuery = await call('get', `/v2/tasks/${crypto.randomUUID()}.0123456789abcdefgh?wait=61`, { token });
    expect([badQuery.status, badQuery.body.code, badQuery.body.message]).toEqual([400, 'VALIDATION_ERROR', expect.stringMatching(/^query\.wait: /)]);
    const badHeader = await call('post', '/v3/run', { token, body: { endpoint_id: crypto.randomUUID(), function_uuid: crypto.randomUUID() }, headers: { 'idempotency-key': 'has space' } });
    expect([badHeader.status, badHeader.body.code, badHeader.body.message]).toEqual([400, 'VALIDATION_ERROR', expect.stringMatching(/^headers\.idempotency-key: /)]);
  });
});
