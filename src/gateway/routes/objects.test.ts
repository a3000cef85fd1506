// The objects routes inside workerd: uploads streamed into R2 with their sha256, content-derived
// per-owner ids, ranged reads, HEAD, metadata, delete, multipart, TTL, endpoint-token reads, the
// served-bytes counters, and 404 for every other user.

import { env, exports } from 'cloudflare:workers';
import { describe, expect, it } from 'vitest';
import { BASE, exchangeSecret, mintEndpointAccessToken, newUser, registerEndpoint, type User } from '../../../test/helpers/gateway';

const MiB = 1024 * 1024;

async function sha256Hex(bytes: Uint8Array): Promise<string> {
  return Array.from(new Uint8Array(await crypto.subtle.digest('SHA-256', bytes)), (b) => b.toString(16).padStart(2, '0')).join('');
}

function pattern(size: number, seed = 1): Uint8Array {
  const out = new Uint8Array(size);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < size; i++) {
    x = (x * 1664525 + 1013904223) >>> 0;
    out[i] = x >>> 24;
  }
  return out;
}

function raw(method: string, path: string, token: string | null, init: { body?: BodyInit | null; headers?: Record<string, string> } = {}): Promise<Response> {
  const headers: Record<string, string> = { ...(init.headers ?? {}) };
  if (token) headers.authorization = `Bearer ${token}`;
  return exports.default.fetch(`${BASE}${path}`, { method, headers, body: init.body ?? null, duplex: 'half' } as RequestInit);
}

async function json(res: Response): Promise<any> {
  const text = await res.text();
  return text ? JSON.parse(text) : null;
}

async function put(user: User, bytes: Uint8Array, headers: Record<string, string> = {}, query = ''): Promise<{ $ref: string; size: number; sha256: string }> {
  const res = await raw('PUT', `/v3/objects${query}`, user.token, { body: bytes, headers: { 'content-type': 'application/x-test', ...headers } });
  const body = await json(res);
  expect(res.status, JSON.stringify(body)).toBe(200);
  return body;
}

async function blobCount(): Promise<number> {
  let n = 0;
  let cursor: string | undefined;
  do {
    const page = await env.OBJECTS.list({ prefix: 'blobs/', ...(cursor ? { cursor } : {}) });
    n += page.objects.length;
    cursor = page.truncated ? page.cursor : undefined;
  } while (cursor);
  return n;
}

describe('single PUT', () => {
  it('round-trips bytes with their sha256, Content-Type and size; HEAD has no body', async () => {
    const alice = await newUser('alice');
    const bytes = pattern(100_000);
    const ref = await put(alice, bytes);
    expect(ref.sha256).toBe(await sha256Hex(bytes));
    expect(ref.size).toBe(100_000);
    expect(ref.$ref).toMatch(/^[0-9a-f]{64}$/);

    const got = await raw('GET', `/v3/objects/${ref.$ref}`, alice.token);
    expect(got.status).toBe(200);
    expect(got.headers.get('content-type')).toBe('application/x-test');
    expect(got.headers.get('x-ferry-sha256')).toBe(ref.sha256);
    expect(got.headers.get('accept-ranges')).toBe('bytes');
    const back = new Uint8Array(await got.arrayBuffer());
    expect(back.length).toBe(bytes.length);
    expect(await sha256Hex(back)).toBe(ref.sha256);

    const head = await raw('HEAD', `/v3/objects/${ref.$ref}`, alice.token);
    expect(head.status).toBe(200);
    expect(head.headers.get('x-ferry-size')).toBe('100000');
    expect(head.headers.get('etag')).toBe(`"${ref.sha256}"`);
    expect(head.headers.get('repr-digest')).toMatch(/^sha-256=:[A-Za-z0-9+/]+=*:$/);
    expect((await head.arrayBuffer()).byteLength).toBe(0);
  });

  it('serves every object with nosniff, and as an attachment unless its type is on the inline list', async () => {
    const alice = await newUser('alice');
    const attachment = ['text/html', 'TEXT/HTML; charset=utf-8', 'image/svg+xml', 'application/xhtml+xml', 'text/javascript', 'text/xml', 'application/pdf', 'application/octet-stream', 'application/x-test'];
    const inline = ['text/plain', 'text/plain; charset=utf-8', 'application/json', 'image/png', 'image/jpeg', 'image/gif', 'image/webp'];
    for (const [i, contentType] of [...attachment, ...inline].entries()) {
      const ref = await put(alice, new TextEncoder().encode(`<script>alert(${i})</script>`), { 'content-type': contentType });
      for (const [method, headers] of [['GET', {}], ['HEAD', {}], ['GET', { range: 'bytes=0-3' }]] as const) {
        const res = await raw(method, `/v3/objects/${ref.$ref}`, alice.token, { headers });
        await res.arrayBuffer();
        const what = `${method} ${JSON.stringify(headers)} ${contentType}`;
        expect(res.status, what).toBe('range' in headers ? 206 : 200);
        expect(res.headers.get('content-type'), what).toBe(contentType);
        expect(res.headers.get('x-content-type-options'), what).toBe('nosniff');
        expect(res.headers.get('content-disposition'), what).toBe(inline.includes(contentType) ? null : 'attachment');
      }
    }
  });

  it('gives the same bytes of one owner one id (stored once), and another owner another id', async () => {
    const alice = await newUser('alice');
    const bob = await newUser('bob');
    const bytes = pattern(5000, 7);
    const before = await blobCount();
    const a1 = await put(alice, bytes);
    const a2 = await put(alice, bytes);
    const b1 = await put(bob, bytes);
    expect(a2.$ref).toBe(a1.$ref);
    expect(b1.$ref).not.toBe(a1.$ref);
    expect(b1.sha256).toBe(a1.sha256);
    expect(await blobCount()).toBe(before + 2);
    const stats = await json(await raw('GET', '/v3/objects/stats', alice.token));
    expect(stats).toMatchObject({ objects: 1, bytes_stored: 5000 });
  });

  it('stores an empty body as an empty object', async () => {
    const alice = await newUser('alice');
    const ref = await put(alice, new Uint8Array(0));
    expect(ref.size).toBe(0);
    const got = await raw('GET', `/v3/objects/${ref.$ref}`, alice.token);
    expect(got.status).toBe(200);
    expect((await got.arrayBuffer()).byteLength).toBe(0);
  });

  it('refuses a body over 64 MiB with 413 and stores nothing', async () => {
    const alice = await newUser('alice');
    const before = await blobCount();
    const res = await raw('PUT', '/v3/objects', alice.token, { body: new Uint8Array(64 * MiB + 1) });
    expect(res.status).toBe(413);
    expect((await json(res)).code).toBe('PAYLOAD_TOO_LARGE');
    expect(await blobCount()).toBe(before);
  });

  it('stores nothing from a body shorter than its Content-Length', async () => {
    const alice = await newUser('alice');
    const before = await blobCount();
    let sent = 0;
    const body = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (sent >= 3) return controller.close();
        sent++;
        controller.enqueue(new Uint8Array(64 * 1024).fill(sent));
      },
    });
    const res = await raw('PUT', '/v3/objects', alice.token, { body, headers: { 'content-length': String(MiB) } }).catch((err: Error) => err);
    if (res instanceof Response) {
      expect(res.status).toBe(400);
      expect((await json(res)).message).toMatch(/ended after 196608 of 1048576 bytes/);
    }
    expect(await blobCount()).toBe(before);
    expect((await json(await raw('GET', '/v3/objects/stats', alice.token))).objects).toBe(0);
  });
});

describe('reads', () => {
  it('answers ranges with 206 and the exact bytes, and 416 past the end', async () => {
    const alice = await newUser('alice');
    const bytes = pattern(1000, 3);
    const ref = await put(alice, bytes);
    const cases: Array<[string, number, number]> = [
      ['bytes=10-19', 10, 20],
      ['bytes=990-', 990, 1000],
      ['bytes=-5', 995, 1000],
      ['bytes=900-5000', 900, 1000],
      ['bytes=0-0', 0, 1],
    ];
    for (const [range, from, to] of cases) {
      const res = await raw('GET', `/v3/objects/${ref.$ref}`, alice.token, { headers: { range } });
      expect(res.status, range).toBe(206);
      expect(res.headers.get('content-range'), range).toBe(`bytes ${from}-${to - 1}/1000`);
      expect(res.headers.get('content-length'), range).toBe(String(to - from));
      expect(new Uint8Array(await res.arrayBuffer()), range).toEqual(bytes.slice(from, to));
    }
    for (const range of ['bytes=1000-', 'bytes=5000-6000', 'bytes=-0']) {
      const res = await raw('GET', `/v3/objects/${ref.$ref}`, alice.token, { headers: { range } });
      expect(res.status, range).toBe(416);
      expect(res.headers.get('content-range'), range).toBe('bytes */1000');
      expect((await json(res)).code).toBe('RANGE_NOT_SATISFIABLE');
    }
    const malformed = await raw('GET', `/v3/objects/${ref.$ref}`, alice.token, { headers: { range: 'bytes=0-1,5-6' } });
    expect(malformed.status).toBe(400);
    await malformed.arrayBuffer();
  });

  it('counts the bytes it serves, per reader', async () => {
    const alice = await newUser('alice');
    const ref = await put(alice, pattern(1000, 4));
    const ep = await registerEndpoint(alice);
    const epAccess = (await exchangeSecret(ep.endpoint_id, ep.token)).body.access_token;
    await (await raw('GET', `/v3/objects/${ref.$ref}`, alice.token)).arrayBuffer();
    await (await raw('GET', `/v3/objects/${ref.$ref}`, alice.token, { headers: { range: 'bytes=0-99' } })).arrayBuffer();
    await (await raw('HEAD', `/v3/objects/${ref.$ref}`, alice.token)).arrayBuffer();
    await (await raw('GET', `/v3/objects/${ref.$ref}`, epAccess, { headers: { range: 'bytes=-10' } })).arrayBuffer();
    const stats = await json(await raw('GET', '/v3/objects/stats', alice.token));
    expect(stats.bytes_served).toBe(1110);
    expect(stats.requests).toBe(4);
    expect(stats.readers.user).toEqual({ bytes_served: 1100, requests: 3 });
    expect(stats.readers[`endpoint:${ep.endpoint_id}`]).toEqual({ bytes_served: 10, requests: 1 });
  });

  it('records ingest filters and returns them from HEAD and /meta', async () => {
    const alice = await newUser('alice');
    const filters = [{ name: 'crop', params: { x: [0, 10], note: 'ünïcode' }, source_sha256: 'a'.repeat(64) }];
    // Headers carry ASCII: non-ASCII characters travel as JSON escapes (the SDK writes them so).
    const header = JSON.stringify(filters).replace(/[\u007f-\uffff]/g, (ch) => `\\u${ch.charCodeAt(0).toString(16).padStart(4, '0')}`);
    const ref = await put(alice, pattern(64, 5), { 'x-ferry-filters': header }, '?ttl_s=3600');
    const meta = await json(await raw('GET', `/v3/objects/${ref.$ref}/meta`, alice.token));
    expect(meta).toMatchObject({ $ref: ref.$ref, size: 64, sha256: ref.sha256, content_type: 'application/x-test', filters });
    expect(Date.parse(meta.expires_at) - Date.parse(meta.created_at)).toBe(3600_000);
    const head = await raw('HEAD', `/v3/objects/${ref.$ref}`, alice.token);
    expect(JSON.parse(head.headers.get('x-ferry-filters')!)).toEqual(filters);
    const bad = await raw('PUT', '/v3/objects', alice.token, { body: 'x', headers: { 'x-ferry-filters': '[{"name":"crop"}]' } });
    expect(bad.status).toBe(400);
    expect((await json(bad)).message).toMatch(/^x-ferry-filters\.0\.source_sha256/);
  });

  it('deletes an object: 200, then 404', async () => {
    const alice = await newUser('alice');
    const ref = await put(alice, pattern(10, 6));
    const before = await blobCount();
    const del = await raw('DELETE', `/v3/objects/${ref.$ref}`, alice.token);
    expect(del.status).toBe(200);
    expect(await json(del)).toEqual({ deleted: true });
    expect(await blobCount()).toBe(before - 1);
    expect((await raw('GET', `/v3/objects/${ref.$ref}`, alice.token)).status).toBe(404);
    expect((await raw('DELETE', `/v3/objects/${ref.$ref}`, alice.token)).status).toBe(404);
  });

  it('forgets an object after its TTL', async () => {
    const alice = await newUser('alice');
    const ref = await put(alice, pattern(10, 8), {}, '?ttl_s=1');
    expect((await raw('HEAD', `/v3/objects/${ref.$ref}`, alice.token)).status).toBe(200);
    await new Promise((r) => setTimeout(r, 1100));
    const gone = await raw('GET', `/v3/objects/${ref.$ref}`, alice.token);
    expect(gone.status).toBe(404);
    expect((await json(gone)).code).toBe('NOT_FOUND');
    expect((await raw('GET', `/v3/objects/${ref.$ref}/meta`, alice.token)).status).toBe(404);
    expect((await json(await raw('GET', '/v3/objects/stats', alice.token))).objects).toBe(0);
    expect((await raw('PUT', '/v3/objects?ttl_s=-1', alice.token, { body: 'x' })).status).toBe(400);
  });
});

describe('who may read', () => {
  it("answers 404 to another user on every object route, and changes nothing of the owner's", async () => {
    const alice = await newUser('alice');
    const bob = await newUser('bob');
    const ref = await put(alice, pattern(100, 9));
    const upload = await json(await raw('POST', '/v3/objects/uploads', alice.token, { body: '{}', headers: { 'content-type': 'application/json' } }));
    const attempts: Array<[string, string, BodyInit | null]> = [
      ['GET', `/v3/objects/${ref.$ref}`, null],
      ['HEAD', `/v3/objects/${ref.$ref}`, null],
      ['GET', `/v3/objects/${ref.$ref}/meta`, null],
      ['DELETE', `/v3/objects/${ref.$ref}`, null],
      ['PUT', `/v3/objects/uploads/${upload.upload_id}/1`, 'bytes'],
      ['POST', `/v3/objects/uploads/${upload.upload_id}/complete`, '{}'],
      ['DELETE', `/v3/objects/uploads/${upload.upload_id}`, null],
    ];
    for (const [method, path, body] of attempts) {
      const res = await raw(method, path, bob.token, { body });
      expect(res.status, `${method} ${path}`).toBe(404);
      await res.arrayBuffer();
    }
    expect((await raw('GET', `/v3/objects/${ref.$ref}`, alice.token)).status).toBe(200);
    const part = await raw('PUT', `/v3/objects/uploads/${upload.upload_id}/1`, alice.token, { body: 'still mine' });
    expect(part.status).toBe(200);
    await part.arrayBuffer();
  });

  it("lets an endpoint token read its owner's objects (GET with Range, HEAD, meta), nothing else", async () => {
    const alice = await newUser('alice');
    const bob = await newUser('bob');
    const mine = await put(alice, pattern(500, 10));
    const bobs = await put(bob, pattern(500, 11));
    const ep = await registerEndpoint(alice);
    const epAccess = (await exchangeSecret(ep.endpoint_id, ep.token)).body.access_token;
    // The endpoint's secret itself reads nothing: only its access tokens do.
    expect((await raw('GET', `/v3/objects/${mine.$ref}`, ep.token)).status).toBe(401);
    const ranged = await raw('GET', `/v3/objects/${mine.$ref}`, epAccess, { headers: { range: 'bytes=100-199' } });
    expect(ranged.status).toBe(206);
    expect(new Uint8Array(await ranged.arrayBuffer())).toEqual(pattern(500, 10).slice(100, 200));
    expect((await raw('HEAD', `/v3/objects/${mine.$ref}`, epAccess)).status).toBe(200);
    expect((await raw('GET', `/v3/objects/${mine.$ref}/meta`, epAccess)).status).toBe(200);
    // Another owner's object, even with a forged claim of another endpoint of the same key: 404.
    expect((await raw('GET', `/v3/objects/${bobs.$ref}`, epAccess)).status).toBe(404);
    expect((await raw('GET', `/v3/objects/${bobs.$ref}`, await mintEndpointAccessToken(alice.sub, ep.endpoint_id))).status).toBe(404);
    // Endpoint tokens cannot delete or list.
    expect((await raw('DELETE', `/v3/objects/${mine.$ref}`, epAccess)).status).toBe(401);
    expect((await raw('GET', '/v3/objects/stats', epAccess)).status).toBe(401);
    expect((await raw('GET', `/v3/objects/${mine.$ref}`, null)).status).toBe(401);
  });

  it("lets an endpoint access token store objects for its owner (results by reference), counted per writer and invisible to others", async () => {
    const alice = await newUser('alice');
    const bob = await newUser('bob');
    const ep = await registerEndpoint(alice);
    const epAccess = (await exchangeSecret(ep.endpoint_id, ep.token)).body.access_token;
    const bytes = pattern(3000, 20);
    const res = await raw('PUT', '/v3/objects', epAccess, { body: bytes, headers: { 'content-type': 'application/octet-stream' } });
    const ref = await json(res);
    expect(res.status, JSON.stringify(ref)).toBe(200);
    expect(ref).toEqual({ $ref: expect.stringMatching(/^[0-9a-f]{64}$/), size: 3000, sha256: await sha256Hex(bytes) });
    // Alice's object: she reads it with her own token, and the same bytes from her are the same id.
    const mine = await raw('GET', `/v3/objects/${ref.$ref}`, alice.token);
    expect(mine.status).toBe(200);
    expect(mine.headers.get('content-type')).toBe('application/octet-stream');
    expect(new Uint8Array(await mine.arrayBuffer())).toEqual(bytes);
    expect((await put(alice, bytes)).$ref).toBe(ref.$ref);
    // Bob sees nothing, and his own copy of the bytes is another id.
    expect((await raw('GET', `/v3/objects/${ref.$ref}`, bob.token)).status).toBe(404);
    expect((await raw('HEAD', `/v3/objects/${ref.$ref}`, bob.token)).status).toBe(404);
    expect((await put(bob, bytes)).$ref).not.toBe(ref.$ref);

    // In parts too.
    const partSize = 5 * MiB;
    const big = pattern(partSize + 100, 21);
    const start = await raw('POST', '/v3/objects/uploads', epAccess, { body: JSON.stringify({ part_size: partSize, content_type: 'application/json' }), headers: { 'content-type': 'application/json' } });
    const upload = await json(start);
    expect(start.status, JSON.stringify(upload)).toBe(200);
    for (const n of [1, 2]) {
      const part = await raw('PUT', `/v3/objects/uploads/${upload.upload_id}/${n}`, epAccess, { body: big.slice((n - 1) * partSize, n * partSize) });
      expect(part.status).toBe(200);
      await part.arrayBuffer();
    }
    const done = await raw('POST', `/v3/objects/uploads/${upload.upload_id}/complete`, epAccess, { body: JSON.stringify({}) });
    const bigRef = await json(done);
    expect(done.status, JSON.stringify(bigRef)).toBe(200);
    expect(bigRef.sha256).toBe(await sha256Hex(big));
    expect((await raw('GET', `/v3/objects/${bigRef.$ref}`, bob.token)).status).toBe(404);
    const meta = await json(await raw('GET', `/v3/objects/${bigRef.$ref}/meta`, alice.token));
    expect(meta).toMatchObject({ size: partSize + 100, content_type: 'application/json' });

    const stats = await json(await raw('GET', '/v3/objects/stats', alice.token));
    expect(stats.writers).toEqual({ user: { objects: 1, bytes: 3000 }, [`endpoint:${ep.endpoint_id}`]: { objects: 2, bytes: 3000 + partSize + 100 } });
    expect(stats.objects).toBe(2);

    // The endpoint's secret stores nothing; a revoked secret's access tokens stop storing at once.
    expect((await raw('PUT', '/v3/objects', ep.token, { body: 'x' })).status).toBe(401);
    const revoke = await alice.call('post', `/v3/endpoints/${ep.endpoint_id}/revoke`);
    expect(revoke.status).toBe(200);
    const after = await raw('PUT', '/v3/objects', epAccess, { body: 'y' });
    expect(after.status).toBe(401);
    expect((await json(after)).code).toBe('TOKEN_REVOKED');
  });
});

describe('multipart', () => {
  async function start(user: User, body: Record<string, unknown> = {}): Promise<{ upload_id: string; part_size: number }> {
    const res = await raw('POST', '/v3/objects/uploads', user.token, { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } });
    const out = await json(res);
    expect(res.status, JSON.stringify(out)).toBe(200);
    return out;
  }

  async function part(user: User, uploadId: string, n: number | string, bytes: Uint8Array): Promise<Response> {
    return raw('PUT', `/v3/objects/uploads/${uploadId}/${n}`, user.token, { body: bytes });
  }

  it('round-trips 3 parts, with the whole sha256 computed by the gateway', async () => {
    const alice = await newUser('alice');
    const partSize = 5 * MiB;
    const bytes = pattern(2 * partSize + 12345, 12);
    const up = await start(alice, { part_size: partSize, content_type: 'application/x-hdf5' });
    expect(up.part_size).toBe(partSize);
    // Parts may arrive in any order.
    for (const n of [3, 1, 2]) {
      const res = await part(alice, up.upload_id, n, bytes.slice((n - 1) * partSize, n * partSize));
      const body = await json(res);
      expect(res.status, JSON.stringify(body)).toBe(200);
      expect(body.sha256).toBe(await sha256Hex(bytes.slice((n - 1) * partSize, n * partSize)));
    }
    const sha256 = await sha256Hex(bytes);
    const done = await raw('POST', `/v3/objects/uploads/${up.upload_id}/complete`, alice.token, { body: JSON.stringify({ sha256 }) });
    const ref = await json(done);
    expect(done.status, JSON.stringify(ref)).toBe(200);
    expect(ref).toMatchObject({ size: bytes.length, sha256 });
    // The same bytes in one PUT give the same id.
    expect((await put(alice, bytes)).$ref).toBe(ref.$ref);
    const got = await raw('GET', `/v3/objects/${ref.$ref}`, alice.token);
    expect(got.headers.get('content-type')).toBe('application/x-hdf5');
    expect(await sha256Hex(new Uint8Array(await got.arrayBuffer()))).toBe(sha256);
    const tail = await raw('GET', `/v3/objects/${ref.$ref}`, alice.token, { headers: { range: `bytes=${partSize - 2}-${partSize + 1}` } });
    expect(new Uint8Array(await tail.arrayBuffer())).toEqual(bytes.slice(partSize - 2, partSize + 2));
    // A completed upload is gone.
    expect((await raw('POST', `/v3/objects/uploads/${up.upload_id}/complete`, alice.token, { body: '{}' })).status).toBe(404);
  });

  it('refuses wrong part numbers (400), oversize parts (413), gaps and wrong digests, and aborts', async () => {
    const alice = await newUser('alice');
    const partSize = 5 * MiB;
    const up = await start(alice, { part_size: partSize });
    for (const n of ['0', '10001', 'abc', '1.5', '-1']) {
      const res = await part(alice, up.upload_id, n, new Uint8Array(10));
      expect(res.status, n).toBe(400);
      expect((await json(res)).code, n).toBe('VALIDATION_ERROR');
    }
    const big = await part(alice, up.upload_id, 1, new Uint8Array(partSize + 1));
    expect(big.status).toBe(413);
    await big.arrayBuffer();
    await (await part(alice, up.upload_id, 1, pattern(partSize, 1))).arrayBuffer();
    await (await part(alice, up.upload_id, 3, pattern(10, 2))).arrayBuffer();
    const gap = await raw('POST', `/v3/objects/uploads/${up.upload_id}/complete`, alice.token, { body: '{}' });
    expect(gap.status).toBe(400);
    expect((await json(gap)).message).toMatch(/part 2 is missing/);
    await (await part(alice, up.upload_id, 2, pattern(100, 3))).arrayBuffer();
    const short = await raw('POST', `/v3/objects/uploads/${up.upload_id}/complete`, alice.token, { body: '{}' });
    expect(short.status).toBe(400);
    expect((await json(short)).message).toMatch(/every part but the last/);
    const abort = await raw('DELETE', `/v3/objects/uploads/${up.upload_id}`, alice.token);
    expect(abort.status).toBe(200);
    await abort.arrayBuffer();
    expect((await part(alice, up.upload_id, 2, pattern(10, 3))).status).toBe(404);

    const up2 = await start(alice, { part_size: partSize });
    await (await part(alice, up2.upload_id, 1, pattern(1000, 4))).arrayBuffer();
    const before = await blobCount();
    const wrong = await raw('POST', `/v3/objects/uploads/${up2.upload_id}/complete`, alice.token, { body: JSON.stringify({ sha256: 'b'.repeat(64) }) });
    expect(wrong.status).toBe(400);
    expect((await json(wrong)).code).toBe('DIGEST_MISMATCH');
    expect(await blobCount()).toBe(before);
    expect((await json(await raw('GET', '/v3/objects/stats', alice.token))).objects).toBe(0);
  });
});
