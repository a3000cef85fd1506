// Test helpers for the gateway inside workerd: tokens minted with jose, JSON calls through the
// worker's own fetch handler, and a fake endpoint agent speaking the wire protocol over a real
// WebSocket to the hub.

import { env, exports } from 'cloudflare:workers';
import { SignJWT, decodeJwt } from 'jose';
import { expect } from 'vitest';
import { SubmitResponse, TaskDoc, type Payload } from '../../src/protocol/api';
import { DEV_ISSUER, ENDPOINT_ACCESS_AUDIENCE, ENDPOINT_AUDIENCE, GATEWAY_ISSUER, USER_AUDIENCE } from '../../src/protocol/tokens';
import { PROTOCOL_VERSION, withSeq } from '../../src/protocol/wire';
import { lineageFactsOf, type ReportedResult } from '../../src/provenance/lineage-items';
import { sha256HexSync } from './sha256-sync';

export const BASE = 'https://gw.test';

function secret(): Uint8Array {
  return new TextEncoder().encode((env as unknown as { JWT_SECRET: string }).JWT_SECRET);
}

export async function mintUserToken(sub: string, options: { expiresIn?: string | number; audience?: string; issuer?: string; key?: Uint8Array } = {}): Promise<string> {
  return new SignJWT({})
    .setProtectedHeader({ alg: 'HS256' })
    .setSubject(sub)
    .setAudience(options.audience ?? USER_AUDIENCE)
    .setIssuer(options.issuer ?? DEV_ISSUER)
    .setIssuedAt()
    .setExpirationTime(options.expiresIn ?? '1h')
    .sign(options.key ?? secret());
}

export async function mintEndpointToken(sub: string, endpointId: string): Promise<string> {
  return new SignJWT({ endpoint_id: endpointId, scope: 'endpoint' })
    .setProtectedHeader({ alg: 'HS256' })
    .setSubject(sub)
    .setAudience(ENDPOINT_AUDIENCE)
    .setIssuer(GATEWAY_ISSUER)
    .sign(secret());
}

/** An endpoint access token minted by hand (generation 0 unless told; `expiresIn` may be in the past: a negative number of seconds). */
export async function mintEndpointAccessToken(sub: string, endpointId: string, options: { gen?: number; expiresIn?: number } = {}): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({ endpoint_id: endpointId, scope: 'endpoint', gen: options.gen ?? 0 })
    .setProtectedHeader({ alg: 'HS256' })
    .setSubject(sub)
    .setAudience(ENDPOINT_ACCESS_AUDIENCE)
    .setIssuer(GATEWAY_ISSUER)
    .setIssuedAt(now - 3600)
    .setExpirationTime(now + (options.expiresIn ?? 3600))
    .sign(secret());
}

/** POST /v3/endpoints/{id}/token with the endpoint's secret: the raw answer. */
export async function exchangeSecret(endpointId: string, endpointSecret: string): Promise<Answer<{ access_token: string; expires_in: number; code?: string }>> {
  return call('post', `/v3/endpoints/${endpointId}/token`, { token: endpointSecret });
}

function isEndpointSecret(token: string): boolean {
  try {
    return decodeJwt(token).aud === ENDPOINT_AUDIENCE;
  } catch {
    return false;
  }
}

export interface Answer<T = any> {
  status: number;
  body: T;
  text: string;
}

export async function call<T = any>(method: string, path: string, options: { token?: string | null; body?: unknown; rawBody?: string; headers?: Record<string, string> } = {}): Promise<Answer<T>> {
  const headers: Record<string, string> = { ...(options.headers ?? {}) };
  if (options.token) headers.authorization = `Bearer ${options.token}`;
  let body: string | undefined;
  if (options.rawBody !== undefined) body = options.rawBody;
  else if (options.body !== undefined) body = JSON.stringify(options.body);
  if (body !== undefined) headers['content-type'] = 'application/json';
  const res = await exports.default.fetch(`${BASE}${path}`, { method: method.toUpperCase(), headers, body });
  const text = await res.text();
  let parsed: unknown = null;
  try {
    parsed = text ? JSON.parse(text) : null;
  } catch {
    parsed = text;
  }
  return { status: res.status, body: parsed as T, text };
}

export interface User {
  sub: string;
  token: string;
  call<T = any>(method: string, path: string, body?: unknown): Promise<Answer<T>>;
}

export async function newUser(prefix = 'user'): Promise<User> {
  const sub = `${prefix}-${crypto.randomUUID()}`;
  const token = await mintUserToken(sub);
  return { sub, token, call: (method, path, body) => call(method, path, { token, body }) };
}

/** An OpenAPI body example with its `{name}` placeholders (in keys and values) replaced by `values`. */
export function substitute(value: unknown, values: Record<string, string>): unknown {
  const fill = (s: string) => s.replace(/\{([a-z_]+)\}/g, (whole, name: string) => values[name] ?? whole);
  if (typeof value === 'string') return fill(value);
  if (Array.isArray(value)) return value.map((v) => substitute(v, values));
  if (value && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([k, v]) => [fill(k), substitute(v, values)]));
  return value;
}

export const ADD = 'function add(a, b) { return a + b }';

export async function registerFunction(user: User, code = ADD, name = 'add'): Promise<string> {
  const res = await user.call('post', '/v3/functions', { function_name: name, function_code: code });
  expect(res.status, res.text).toBe(200);
  return res.body.function_uuid;
}

export async function registerEndpoint(user: User, extra: Record<string, unknown> = {}): Promise<{ endpoint_id: string; token: string; connection_url: string }> {
  const res = await user.call('post', '/v3/endpoints', { endpoint_name: `ep-${crypto.randomUUID().slice(0, 8)}`, ...extra });
  expect(res.status, res.text).toBe(200);
  return { endpoint_id: res.body.endpoint_id, token: res.body.token, connection_url: res.body.task_queue_info.connection_url };
}

export async function submit(user: User, endpointId: string, functionUuid: string, payloads: unknown[] = [{ args: [1, 2] }], extra: Record<string, unknown> = {}): Promise<{ task_ids: string[]; task_group_id: string }> {
  const res = await user.call('post', `/v3/endpoints/${endpointId}/submit`, { tasks: { [functionUuid]: payloads }, ...extra });
  expect(res.status, res.text).toBe(200);
  SubmitResponse.parse(res.body);
  return { task_ids: res.body.tasks[functionUuid], task_group_id: res.body.task_group_id };
}

export async function taskStatus(user: User, taskId: string): Promise<any> {
  const res = await user.call('get', `/v2/tasks/${taskId}`);
  expect(res.status, res.text).toBe(200);
  // The spliced JSON must still be a valid task doc.
  TaskDoc.parse(res.body);
  return res.body;
}

type Frame = { type: string; [key: string]: any };

/** An endpoint agent reduced to its wire protocol: frames in a queue, awaited with deadlines. */
/** The payload of every task a fake agent received, by task id: its journal, kept across reconnects. */
const receivedPayloads = new Map<string, Partial<Payload>>();

export class FakeAgent {
  readonly frames: Frame[] = [];
  /** As the agent does, results of tasks it received carry their lineage facts; false: an older agent's, without. */
  reportsLineage = true;
  /** Byte length of every frame received, in order. */
  readonly frameBytes: number[] = [];
  private readonly listeners = new Set<() => void>();
  closeCode: number | null = null;
  closeReason = '';

  private constructor(readonly ws: WebSocket) {
    ws.addEventListener('message', (event) => {
      this.frameBytes.push(new TextEncoder().encode(event.data as string).length);
      const frame = JSON.parse(event.data as string);
      if (frame.type === 'tasks') for (const t of frame.tasks) receivedPayloads.set(t.task_id, t.payload);
      this.frames.push(frame);
      for (const l of [...this.listeners]) l();
    });
    ws.addEventListener('close', (event) => {
      this.closeCode = event.code;
      this.closeReason = event.reason;
      for (const l of [...this.listeners]) l();
    });
  }

  /** Opens the socket; an endpoint secret (from registerEndpoint) is exchanged for an access token first. */
  static async open(endpointId: string, token: string): Promise<Response> {
    let access = token;
    if (isEndpointSecret(token)) {
      // As the agent does: a refused exchange is the answer (404 for another endpoint's secret, 401 revoked).
      const exchange = await exports.default.fetch(`${BASE}/v3/endpoints/${endpointId}/token`, { method: 'POST', headers: { authorization: `Bearer ${token}` } });
      if (!exchange.ok) return exchange;
      access = ((await exchange.json()) as { access_token: string }).access_token;
    }
    return FakeAgent.openRaw(endpointId, access);
  }

  /** Opens the socket with exactly this token. */
  static async openRaw(endpointId: string, token: string): Promise<Response> {
    return exports.default.fetch(`${BASE}/v3/endpoints/${endpointId}/ws`, { headers: { upgrade: 'websocket', authorization: `Bearer ${token}` } });
  }

  static async connect(endpointId: string, token: string, raw = false): Promise<FakeAgent> {
    const res = raw ? await FakeAgent.openRaw(endpointId, token) : await FakeAgent.open(endpointId, token);
    expect(res.status).toBe(101);
    const ws = res.webSocket!;
    ws.accept();
    return new FakeAgent(ws);
  }

  /** Connects, says hello with the held ids (one held frame per list), waits for welcome. */
  static async ready(endpointId: string, token: string, held: string[][] = []): Promise<FakeAgent> {
    const agent = await FakeAgent.connect(endpointId, token);
    agent.send({ type: 'hello', protocol_version: PROTOCOL_VERSION, agent_version: 'fake-0', held_frames: held.length });
    await agent.next('welcome');
    for (const ids of held) agent.send({ type: 'held', task_ids: ids });
    return agent;
  }

  /** Frames numbered so far (the agent numbers each frame of a connection: 1 is the hello). */
  private sent = 0;

  /** Sends a frame with the next seq, as the agent does. */
  send(frame: Frame): void {
    this.sendAs(this.sent + 1, frame);
  }

  /** Sends a frame with this seq (null: without one), to test how the hub orders frames. */
  sendAs(seq: number | null, frame: Frame): void {
    if (frame.type === 'results' && this.reportsLineage) frame = { ...frame, results: frame.results.map(withLineage) };
    const json = JSON.stringify(frame);
    if (seq !== null) this.sent = Math.max(this.sent, seq);
    this.ws.send(seq === null ? json : withSeq(json, seq));
  }

  /** Sends a frame's JSON text as written (a frame JSON.stringify could not make), with the next seq. */
  sendText(json: string): void {
    this.sent += 1;
    this.ws.send(withSeq(json, this.sent));
  }

  private wakeOn(timeoutMs: number, check: () => boolean, what: string): Promise<void> {
    return new Promise((resolve, reject) => {
      if (check()) return resolve();
      const listener = () => {
        if (!check()) return;
        clearTimeout(timer);
        this.listeners.delete(listener);
        resolve();
      };
      const timer = setTimeout(() => {
        this.listeners.delete(listener);
        reject(new Error(`timed out waiting for ${what}; frames so far: ${JSON.stringify(this.frames.map((f) => f.type))}`));
      }, timeoutMs);
      this.listeners.add(listener);
    });
  }

  /** Removes and returns the first frame of `type`, waiting up to `timeoutMs` for it. */
  async next(type: string, timeoutMs = 5000): Promise<Frame> {
    await this.wakeOn(timeoutMs, () => this.frames.some((f) => f.type === type), `a ${type} frame`);
    const index = this.frames.findIndex((f) => f.type === type);
    return this.frames.splice(index, 1)[0]!;
  }

  /** Collects `tasks` frames until `count` tasks arrived. */
  async tasks(count: number, timeoutMs = 5000): Promise<any[]> {
    const got: any[] = [];
    while (got.length < count) got.push(...(await this.next('tasks', timeoutMs)).tasks);
    return got;
  }

  has(type: string): boolean {
    return this.frames.some((f) => f.type === type);
  }

  async closed(timeoutMs = 5000): Promise<number> {
    await this.wakeOn(timeoutMs, () => this.closeCode !== null, 'the socket to close');
    return this.closeCode!;
  }

  /** A round trip through the hub: its answer proves every earlier frame was processed. */
  async sync(): Promise<void> {
    const id = `sync-${crypto.randomUUID()}`;
    this.send({ type: 'results', results: [{ task_id: id, status: 'success', result: null }] });
    await this.wakeOn(5000, () => this.frames.some((f) => f.type === 'results_ack' && f.task_ids.includes(id)), 'the sync ack');
    const index = this.frames.findIndex((f) => f.type === 'results_ack' && f.task_ids.includes(id));
    this.frames.splice(index, 1);
  }

  close(): void {
    try {
      this.ws.close(1000, 'test done');
    } catch {
      // already closed
    }
  }
}

/** A result with the lineage facts the agent sends, when its task was received and it has none. */
function withLineage(r: ReportedResult & { task_id: string; lineage?: unknown }): unknown {
  const payload = receivedPayloads.get(r.task_id);
  if (!payload || r.lineage !== undefined) return r;
  const lineage = lineageFactsOf(payload, r, sha256HexSync);
  return lineage ? { ...r, lineage } : r;
}

export function success(taskId: string, result: unknown, attempt = 1): { task_id: string; [key: string]: unknown } {
  return { task_id: taskId, status: 'success', result, stdout: 'out\n', execution: { attempt, started_at: 1, ended_at: 2, host: 'node1', worker_pid: 42 } };
}
