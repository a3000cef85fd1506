// The agent's results by reference against a stand-in for the gateway's objects routes (a real HTTP
// server on a loopback port): spooled parts are checked and uploaded in one PUT or in parts, with
// the agent's token; transient answers are retried, others fail the result.

import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { ResultBody } from '../../protocol/interchange';
import { createLogger } from '../log';
import { ResultNotStoredError, ResultObjects, ResultStoreStoppedError } from './result-objects';

interface Seen {
  method: string;
  path: string;
  authorization: string | undefined;
  contentType: string | undefined;
  contentLength: string | undefined;
  body: Buffer;
}

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
const cleanups: Array<() => void | Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** A gateway stand-in: objects routes that store what they get; `refuse` answers some requests first. */
async function fakeGateway(refuse: (req: Seen, n: number) => { status: number; code: string } | null = () => null) {
  const seen: Seen[] = [];
  const uploads = new Map<string, Map<number, Buffer>>();
  const stored = new Map<string, Buffer>();
  const server: Server = createServer((req: IncomingMessage, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const s: Seen = { method: req.method!, path: req.url!, authorization: req.headers.authorization, contentType: req.headers['content-type'], contentLength: req.headers['content-length'], body: Buffer.concat(chunks) };
      seen.push(s);
      const answer = (status: number, value: unknown) => {
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(JSON.stringify(value));
      };
      const refusal = refuse(s, seen.length);
      if (refusal) return answer(refusal.status, { code: refusal.code, message: 'refused by the test' });
      const ref = (bytes: Buffer) => {
        const id = sha(Buffer.concat([Buffer.from('owner\n'), bytes]));
        stored.set(id, bytes);
        return { $ref: id, size: bytes.length, sha256: sha(bytes) };
      };
      let m: RegExpExecArray | null;
      if (s.method === 'PUT' && s.path === '/v3/objects') return answer(200, ref(s.body));
      if (s.method === 'POST' && s.path === '/v3/objects/uploads') {
        const id = String(uploads.size + 1).padStart(32, '0');
        uploads.set(id, new Map());
        return answer(200, { upload_id: id, part_size: (JSON.parse(s.body.toString()) as { part_size: number }).part_size, expires_at: '' });
      }
      if (s.method === 'PUT' && (m = /^\/v3\/objects\/uploads\/(\w+)\/(\d+)$/.exec(s.path))) {
        uploads.get(m[1]!)!.set(Number(m[2]), s.body);
        return answer(200, { part_number: Number(m[2]), size: s.body.length, sha256: sha(s.body) });
      }
      if (s.method === 'POST' && (m = /^\/v3\/objects\/uploads\/(\w+)\/complete$/.exec(s.path))) {
        const parts = uploads.get(m[1]!)!;
        const whole = Buffer.concat([...parts.keys()].sort((a, b) => a - b).map((n) => parts.get(n)!));
        uploads.delete(m[1]!);
        return answer(200, ref(whole));
      }
      if (s.method === 'DELETE') return answer(200, { deleted: true });
      answer(404, { code: 'NOT_FOUND', message: 'no route' });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  cleanups.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, seen, stored };
}

function resultObjects(url: string, options: Partial<ConstructorParameters<typeof ResultObjects>[0]> = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'ferry-results-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  const spool = join(dir, 'spool');
  const objects = new ResultObjects({ dir: spool, gatewayUrl: url, token: () => 'access-1', log: createLogger({}, () => {}), retryMinMs: 1, retryMaxMs: 5, ...options });
  cleanups.push(() => objects.stop());
  return { objects, files: () => readdirSync(spool) };
}

/** Spools `data` in parts of `part` bytes; answers what the worker would say of it. */
function spool(objects: ResultObjects, taskId: string, data: Uint8Array, part: number, contentType: ResultBody['content_type'] = 'application/octet-stream'): ResultBody {
  for (let at = 0; at < data.length; at += part) objects.part(taskId, 1, at, data.subarray(at, Math.min(at + part, data.length)));
  return { size: data.length, sha256: sha(data), content_type: contentType };
}

/** Polls `ok` until it holds, or fails after a deadline. */
async function until(ok: () => boolean, what: string, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

const bytes = (n: number, seed = 1) => Uint8Array.from({ length: n }, (_, i) => (i * 31 + seed) & 255);

describe('ResultObjects', () => {
  it('uploads a spooled result in one PUT with its Content-Length, type and the agent token, and leaves no file behind', async () => {
    const gw = await fakeGateway();
    const { objects, files } = resultObjects(gw.url);
    const data = bytes(5000);
    const body = spool(objects, 't1', data, 1024);
    expect(files()).toHaveLength(1);
    const ref = await objects.store('t1', 1, body);
    expect(ref).toEqual({ $ref: expect.stringMatching(/^[0-9a-f]{64}$/), size: 5000, sha256: sha(data), content_type: 'application/octet-stream' });
    expect(gw.seen).toHaveLength(1);
    expect(gw.seen[0]).toMatchObject({ method: 'PUT', path: '/v3/objects', authorization: 'Bearer access-1', contentType: 'application/octet-stream', contentLength: '5000' });
    expect(Buffer.compare(gw.stored.get(ref.$ref)!, Buffer.from(data))).toBe(0);
    expect(files()).toEqual([]);
  });

  it('uploads a result over the single-PUT size in parts, completed with its sha256', async () => {
    const gw = await fakeGateway();
    const { objects } = resultObjects(gw.url, { maxSinglePutBytes: 1000, partSize: 400 });
    const data = bytes(1500, 7);
    const ref = await objects.store('t1', 1, spool(objects, 't1', data, 256, 'application/json'));
    expect(gw.seen.map((s) => `${s.method} ${s.path.replace(/[0-9a-f]{32}/, 'U')}`)).toEqual([
      'POST /v3/objects/uploads', 'PUT /v3/objects/uploads/U/1', 'PUT /v3/objects/uploads/U/2', 'PUT /v3/objects/uploads/U/3', 'PUT /v3/objects/uploads/U/4',
      'POST /v3/objects/uploads/U/complete',
    ]);
    expect(JSON.parse(gw.seen[0]!.body.toString())).toEqual({ content_type: 'application/json', part_size: 400 });
    expect(gw.seen.slice(1, 5).map((s) => s.body.length)).toEqual([400, 400, 400, 300]);
    expect(gw.seen.every((s) => s.authorization === 'Bearer access-1')).toBe(true);
    expect(JSON.parse(gw.seen[5]!.body.toString())).toEqual({ sha256: sha(data) });
    expect(ref).toMatchObject({ size: 1500, sha256: sha(data), content_type: 'application/json' });
    expect(Buffer.compare(gw.stored.get(ref.$ref)!, Buffer.from(data))).toBe(0);
  });

  it('retries what may mend (503, 429, an expired token) and fails at once on a refusal', async () => {
    let token = 'old';
    const flaky = await fakeGateway((req, n) => {
      if (n === 1) return { status: 503, code: 'UNAVAILABLE' };
      if (n === 2) return { status: 429, code: 'RATE_LIMITED' };
      if (req.authorization !== 'Bearer old') return null;
      token = 'new'; // the agent renews its token meanwhile
      return { status: 401, code: 'TOKEN_EXPIRED' };
    });
    const { objects } = resultObjects(flaky.url, { token: () => token });
    const body = spool(objects, 't1', bytes(100), 100);
    expect((await objects.store('t1', 1, body)).sha256).toBe(body.sha256);
    expect(flaky.seen.map((s) => s.authorization)).toEqual(['Bearer old', 'Bearer old', 'Bearer old', 'Bearer new']);

    const refusing = await fakeGateway(() => ({ status: 403, code: 'FORBIDDEN' }));
    const second = resultObjects(refusing.url);
    const refused = second.objects.store('t2', 1, spool(second.objects, 't2', bytes(10), 10));
    await expect(refused).rejects.toBeInstanceOf(ResultNotStoredError);
    await expect(refused).rejects.toThrow(/403 FORBIDDEN/);
    expect(refusing.seen).toHaveLength(1);
    expect(second.files()).toEqual([]);
  });

  it('fails a result whose parts do not add up, without asking the gateway', async () => {
    const gw = await fakeGateway();
    const { objects, files } = resultObjects(gw.url);
    const data = bytes(300);
    objects.part('gap', 1, 0, data.subarray(0, 100));
    objects.part('gap', 1, 200, data.subarray(200, 300));
    await expect(objects.store('gap', 1, { size: 300, sha256: sha(data), content_type: 'application/octet-stream' })).rejects.toThrow(/do not fit together/);
    const short = spool(objects, 'short', data.subarray(0, 200), 100);
    await expect(objects.store('short', 1, { ...short, size: 300, sha256: sha(data) })).rejects.toThrow(/received 200 bytes/);
    await expect(objects.store('none', 1, { size: 5, sha256: sha(bytes(5)), content_type: 'application/octet-stream' })).rejects.toBeInstanceOf(ResultNotStoredError);
    expect(gw.seen).toEqual([]);
    expect(files()).toEqual([]);
    // An empty result has no parts at all, and is stored.
    expect(await objects.store('empty', 1, { size: 0, sha256: sha(new Uint8Array(0)), content_type: 'application/json' })).toMatchObject({ size: 0 });
  });

  it('drops the parts of a discarded task, and gives up on stop()', async () => {
    const down = await fakeGateway(() => ({ status: 503, code: 'UNAVAILABLE' }));
    const { objects, files } = resultObjects(down.url);
    spool(objects, 'cancelled', bytes(10), 5);
    const body = spool(objects, 'waiting', bytes(10, 3), 5);
    objects.discard('cancelled');
    expect(files()).toHaveLength(1);
    const waiting = objects.store('waiting', 1, body);
    await until(() => down.seen.length > 2, 'a few retries');
    objects.stop();
    await expect(waiting).rejects.toBeInstanceOf(ResultStoreStoppedError);
    expect(files()).toEqual([]);
  });
});
