// The agent's group commit, observed from outside its journal: against a stand-in gateway (a real
// HTTP server and WebSocket), an ack (the gateway will not deliver those tasks again) is sent only
// after an fsync that covers it has completed, one fsync covers a whole frame, and results do not
// wait for one (a result lost to a power loss leaves its task held, which runs again).

import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { WebSocketServer, type WebSocket } from 'ws';
import { PROTOCOL_VERSION, type AgentFrame, type GatewayFrame } from '../../protocol/wire';
import { parseEndpointConfig } from '../config/endpoint-config';
import { createLogger } from '../log';
import type { Provider } from '../providers/provider';
import { Agent } from './agent';
import { GatewayLink } from './gateway-link';

// What the agent does, in order: its fsyncs as they complete (through node:fs) and the frames it
// sends (through its link).
const events = vi.hoisted(() => ({ list: [] as string[] }));
vi.mock('node:fs', async (importOriginal) => {
  const fs = await importOriginal<typeof import('node:fs')>();
  const fsyncSync = (fd: number) => {
    fs.fsyncSync(fd);
    events.list.push('fsync');
  };
  const fsync = (fd: number, done: (err: NodeJS.ErrnoException | null) => void) =>
    fs.fsync(fd, (err) => {
      events.list.push('fsync');
      done(err);
    });
  return { ...fs, default: { ...fs, fsyncSync, fsync }, fsyncSync, fsync };
});

const ENDPOINT_ID = '00000000-0000-8000-8000-00000000e001';
const FN = { function_uuid: '00000000-0000-8000-8000-000000000001', runtime: 'js' as const, code: '(x) => x' };
const OTHER_FN = '00000000-0000-8000-8000-000000000002';

/** Blocks that never start: tasks the agent accepts stay queued, so only the journal and the link act. */
const idleProvider: Provider = {
  type: 'local',
  submit: async (req) => `job-${req.blockId}`,
  cancel: async () => {},
  status: async (ids) => new Map(ids.map((id) => [id, 'pending' as const])),
};

interface StandInGateway {
  server: Server;
  /** Frames the agent sent, as the gateway received them. */
  received: AgentFrame[];
  send(frame: GatewayFrame): void;
  welcomed: Promise<void>;
  /** Resolves when the agent has sent a frame of this type. */
  arrival(type: AgentFrame['type']): Promise<void>;
}

/** Answers the token exchange, welcomes the agent's hello and records every frame it sends. */
async function standInGateway(): Promise<StandInGateway> {
  const server = createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ access_token: 'access', expires_in: 3600 }));
  });
  const wss = new WebSocketServer({ server });
  const received: AgentFrame[] = [];
  const waiting: Array<{ type: string; arrived: () => void }> = [];
  let socket: WebSocket | null = null;
  let welcome: () => void;
  const welcomed = new Promise<void>((r) => (welcome = r));
  wss.on('connection', (ws) => {
    socket = ws;
    ws.on('message', (data) => {
      const frame = JSON.parse(data.toString()) as AgentFrame;
      received.push(frame);
      for (const w of waiting.filter((w) => w.type === frame.type)) w.arrived();
      if (frame.type === 'hello') {
        ws.send(JSON.stringify({ type: 'welcome', protocol_version: PROTOCOL_VERSION, endpoint_id: ENDPOINT_ID, heartbeat_s: 5 }));
        welcome();
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    server, received, welcomed,
    send: (frame) => socket!.send(JSON.stringify(frame)),
    arrival: (type) => new Promise<void>((arrived) => (received.some((f) => f.type === type) ? arrived() : waiting.push({ type, arrived }))),
  };
}

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  vi.restoreAllMocks();
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function agentWithGateway(config: Record<string, unknown> = {}) {
  const gateway = await standInGateway();
  cleanups.push(() => new Promise<void>((r) => gateway.server.close(() => r())));
  const url = `http://127.0.0.1:${(gateway.server.address() as { port: number }).port}`;
  const stateDir = mkdtempSync(join(tmpdir(), 'ferry-agent-'));
  cleanups.push(() => rmSync(stateDir, { recursive: true, force: true }));
  const agent = new Agent({
    config: parseEndpointConfig({ provider: { type: 'local', init_blocks: 0, min_blocks: 0, max_blocks: 1 }, ...config }),
    credentials: { endpoint_name: 'fsync', endpoint_id: ENDPOINT_ID, gateway_url: url, connection_url: url.replace('http', 'ws'), token: 'secret' },
    stateDir, provider: idleProvider, log: createLogger({}, () => {}),
  });
  cleanups.push(() => agent.stop());
  const send = GatewayLink.prototype.send;
  vi.spyOn(GatewayLink.prototype, 'send').mockImplementation(function (this: GatewayLink, frame: AgentFrame) {
    events.list.push(`send ${frame.type}`);
    return send.call(this, frame);
  });
  await agent.start();
  await gateway.welcomed;
  return gateway;
}

/** The fsyncs and the frames that promise journal contents, from index `from` of the events on. */
const commitOrder = (from: number) => events.list.slice(from).filter((e) => e === 'fsync' || e === 'send ack' || e === 'send results');

describe('Agent journal group commit', () => {
  it('acknowledges a frame of tasks only after one fsync covering all of them', async () => {
    const gateway = await agentWithGateway();
    const from = events.list.length;
    const tasks = Array.from({ length: 500 }, (_, i) => ({ task_id: `t${i}`, function_uuid: FN.function_uuid, payload: { args: [i] } }));
    gateway.send({ type: 'tasks', tasks, functions: [FN] });
    await gateway.arrival('ack');
    expect(commitOrder(from)).toEqual(['fsync', 'send ack']);
    expect(gateway.received.filter((f) => f.type === 'ack').flatMap((f) => (f as { task_ids: string[] }).task_ids)).toEqual(tasks.map((t) => t.task_id));
  });

  it('sends results without waiting for an fsync, and acknowledges their tasks after one', async () => {
    // Tasks of a function outside allowed_functions fail at once, in the agent: results with no worker.
    const gateway = await agentWithGateway({ allowed_functions: [OTHER_FN] });
    const from = events.list.length;
    const tasks = Array.from({ length: 50 }, (_, i) => ({ task_id: `r${i}`, function_uuid: FN.function_uuid, payload: { args: [i] } }));
    gateway.send({ type: 'tasks', tasks, functions: [FN] });
    await gateway.arrival('ack');
    expect(commitOrder(from)).toEqual(['send results', 'fsync', 'send ack']);
    const results = gateway.received.filter((f) => f.type === 'results').flatMap((f) => (f as { results: Array<{ task_id: string; status: string }> }).results);
    expect(results.map((r) => [r.task_id, r.status])).toEqual(tasks.map((t) => [t.task_id, 'failed']));
  });
});
