// CORS: only the origins CORS_ORIGINS lists get CORS headers, on preflights and on answers of every
// method (errors included, so a page can read the error's code); nothing listed, nothing sent.

import { env } from 'cloudflare:workers';
import { describe, expect, it } from 'vitest';
import { createApp } from '../app';
import { CORS_ALLOWED_HEADERS, corsOrigins } from './cors';
import type { GatewayEnv } from '../env';
import { BASE, newUser, registerEndpoint, registerFunction, type User } from '../../../test/helpers/gateway';

const LISTED = 'https://lite.example.org';
const OTHER = 'https://evil.example.net';
const { hono } = createApp();

function fetchWith(origins: string, path: string, init: RequestInit = {}): Promise<Response> {
  return Promise.resolve(hono.request(`${BASE}${path}`, init, { ...(env as unknown as GatewayEnv), CORS_ORIGINS: origins }));
}

async function preflight(origin: string, method: string, path: string, origins = `${LISTED} http://localhost:8888`): Promise<Response> {
  return fetchWith(origins, path, { method: 'OPTIONS', headers: { origin, 'access-control-request-method': method, 'access-control-request-headers': 'authorization, content-type' } });
}

function corsHeaders(res: Response): Record<string, string> {
  return Object.fromEntries([...res.headers].filter(([k]) => k.startsWith('access-control-')));
}

interface Case {
  method: 'GET' | 'POST' | 'PUT' | 'DELETE' | 'HEAD';
  /** A path and body for `user`, set up fresh for each call. */
  request(user: User): Promise<{ path: string; body?: string; status: number }>;
}

const CASES: Case[] = [
  { method: 'GET', request: async () => ({ path: '/v2/endpoints', status: 200 }) },
  { method: 'POST', request: async () => ({ path: '/v3/functions', body: JSON.stringify({ function_name: 'add', function_code: '(a, b) => a + b' }), status: 200 }) },
  {
    method: 'PUT',
    request: async (user) => ({ path: `/v3/endpoints/${(await registerEndpoint(user)).endpoint_id}`, body: JSON.stringify({ endpoint_name: `renamed-${crypto.randomUUID().slice(0, 8)}` }), status: 200 }),
  },
  { method: 'DELETE', request: async (user) => ({ path: `/v2/functions/${await registerFunction(user)}`, status: 200 }) },
  { method: 'HEAD', request: async () => ({ path: '/healthz', status: 200 }) },
];

describe('CORS for the listed origins', () => {
  it.each(CASES)('$method: a preflight from a listed origin is answered 204; the call carries Access-Control-Allow-Origin', async ({ method, request }) => {
    const user = await newUser('cors');
    const { path, body, status } = await request(user);
    const pre = await preflight(LISTED, method, path);
    expect(pre.status).toBe(204);
    expect(pre.headers.get('access-control-allow-origin')).toBe(LISTED);
    expect(pre.headers.get('access-control-allow-methods')).toContain(method === 'HEAD' ? 'HEAD' : method);
    expect(pre.headers.get('access-control-allow-headers')!.split(', ')).toEqual(expect.arrayContaining(['authorization', 'content-type']));
    expect(pre.headers.get('access-control-allow-credentials')).toBeNull();

    const headers: Record<string, string> = { origin: LISTED, authorization: `Bearer ${user.token}` };
    if (body) headers['content-type'] = 'application/json';
    const res = await fetchWith(`${LISTED} http://localhost:8888`, path, { method, headers, body });
    expect(res.status, await res.clone().text()).toBe(status);
    expect(res.headers.get('access-control-allow-origin')).toBe(LISTED);
    expect(res.headers.get('access-control-expose-headers')).toContain('retry-after');
    expect(res.headers.get('vary')).toContain('Origin');
  });

  it.each(CASES)('$method: an origin not listed gets no CORS header, on the preflight or the call', async ({ method, request }) => {
    const user = await newUser('cors');
    const { path, body, status } = await request(user);
    const pre = await preflight(OTHER, method, path);
    expect(pre.status).toBe(404);
    expect(corsHeaders(pre)).toEqual({});
    const headers: Record<string, string> = { origin: OTHER, authorization: `Bearer ${user.token}` };
    if (body) headers['content-type'] = 'application/json';
    const res = await fetchWith(LISTED, path, { method, headers, body });
    expect(res.status).toBe(status);
    expect(corsHeaders(res)).toEqual({});
  });

  it('errors carry the header too, so a page can read their code', async () => {
    const res = await fetchWith(LISTED, '/v2/endpoints', { headers: { origin: LISTED } });
    expect(res.status).toBe(401);
    expect(res.headers.get('access-control-allow-origin')).toBe(LISTED);
    expect(((await res.json()) as { code: string }).code).toBe('UNAUTHORIZED');
  });

  it('lists every header a route reads, so a preflight never refuses one the API needs', () => {
    expect([...CORS_ALLOWED_HEADERS]).toEqual(expect.arrayContaining(['authorization', 'content-type', 'idempotency-key', 'range', 'last-event-id']));
  });
});

describe('CORS off (the default)', () => {
  it('an empty setting sends no CORS header: a preflight is an unknown route', async () => {
    expect((env as unknown as GatewayEnv).CORS_ORIGINS ?? '').toBe('');
    const pre = await preflight(LISTED, 'GET', '/v2/endpoints', '');
    expect(pre.status).toBe(404);
    expect(corsHeaders(pre)).toEqual({});
    const res = await fetchWith('', '/healthz', { headers: { origin: LISTED } });
    expect(res.status).toBe(200);
    expect(corsHeaders(res)).toEqual({});
    expect(res.headers.get('vary')).toBeNull();
  });

  it('a setting that is not a list of origins is named in the error', () => {
    expect(() => corsOrigins({ CORS_ORIGINS: 'https://ok.example, https://bad.example/path' })).toThrow(/CORS_ORIGINS: "https:\/\/bad.example\/path" is not an origin/);
    expect(() => corsOrigins({ CORS_ORIGINS: '*' })).toThrow(/CORS_ORIGINS/);
    expect([...corsOrigins({ CORS_ORIGINS: ' https://a.example,http://localhost:8888 ' })]).toEqual(['https://a.example', 'http://localhost:8888']);
  });
});
