// The agent's scheduler: managers (one per node of a block) dial it over TCP and register with
// their block's secret; it queues the agent's tasks and dispatches them in batches to managers
// with free capacity, and re-queues the tasks of a manager that is lost (socket closed or
// heartbeats missed).

import { timingSafeEqual } from 'node:crypto';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { INTERCHANGE_VERSION, MAX_MANAGER_FRAME_BYTES, MAX_REGISTER_FRAME_BYTES, ManagerMessage, RESULT_PART_BYTES, boundResultDepth, type DispatchMessage, type WorkerTaskResult } from '../../protocol/interchange';
import { MAX_JSON_DEPTH, MESSAGE_ENVELOPE_DEPTH, nestsDeeperThan } from '../../protocol/json-depth';
import { FerryError } from '../../protocol/errors';
import type { FunctionSpec, TaskMessage } from '../../protocol/wire';
import { traceHop } from '../../protocol/trace';
import type { Logger } from '../log';
import { readFrames, sendFrame } from './frames';

export interface InterchangeHooks {
  /** Code of a function, for the first task of it a manager receives. */
  functionSpec(uuid: string): FunctionSpec | undefined;
  /** Called just before tasks go to a manager; returns each task's attempt number. */
  beforeDispatch(taskIds: string[]): number[];
  onStarted(taskIds: string[], at: number): void;
  /** Results of tasks this interchange dispatched; one with `result_body` came in parts first. */
  onResults(results: WorkerTaskResult[]): void;
  /**
   * A part of a result sent by reference (bytes [offset, offset + data.length)), in order, for a
   * task still dispatched. `data` is a view into the socket reader's buffers, valid only during the
   * call (a caller that keeps it copies it). Absent: parts are dropped.
   */
  onResultPart?(taskId: string, attempt: number, offset: number, data: Buffer): void;
  /** Executions lost with a worker or manager; the agent re-queues (`requeue`) or fails them. */
  onLost(tasks: TaskMessage[], reason: string): void;
  onManagersChanged(): void;
  /**
   * A worker's read of object bytes [start, end) (data by reference); rejects with a FerryError
   * (NOT_FOUND, RANGE_NOT_SATISFIABLE, …). Absent: reads fail with UNAVAILABLE.
   */
  onRead?(objectId: string, start: number, end: number): Promise<{ data: Uint8Array; size: number; sha256: string }>;
}

export interface InterchangeOptions {
  address: string;
  port: number;
  heartbeat_s: number;
  /** Seconds of silence after which a manager is lost; default 3 × heartbeat_s. */
  heartbeat_threshold_s?: number;
  /** Seconds a new connection has to register before it is closed; default 5. */
  register_timeout_s?: number;
  hooks: InterchangeHooks;
  log: Logger;
}

interface ManagerConn {
  id: string;
  blockId: string;
  host: string;
  socket: Socket;
  workers: number;
  idleWorkers: number;
  capacity: number;
  /** Tasks sent to this manager and not yet answered. */
  inflight: Map<string, TaskMessage>;
  functionsSent: Set<string>;
  lastSeen: number;
}

export interface InterchangeStats {
  managers: number;
  total_workers: number;
  idle_workers: number;
  queued: number;
  inflight: number;
  blocks: Set<string>;
  /** Blocks with at least one manager running tasks. */
  busyBlocks: Set<string>;
}

export class Interchange {
  private server: Server | null = null;
  private readonly secrets = new Map<string, Buffer>(); // block id → secret
  private readonly managers = new Map<string, ManagerConn>();
  private readonly queue = new Map<string, TaskMessage>(); // insertion order = dispatch order
  private dispatchScheduled = false;
  private watchdog: NodeJS.Timeout | null = null;

  constructor(private readonly opts: InterchangeOptions) {}

  async start(): Promise<number> {
    const server = createServer((socket) => this.accept(socket));
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.opts.port, this.opts.address, () => resolve());
    });
    const period = this.opts.heartbeat_s * 1000;
    this.watchdog = setInterval(() => this.checkHeartbeats(), Math.max(250, period / 2));
    this.watchdog.unref();
    return (server.address() as AddressInfo).port;
  }

  async stop(): Promise<void> {
    if (this.watchdog) clearInterval(this.watchdog);
    for (const m of this.managers.values()) {
      sendFrame(m.socket, { type: 'shutdown', reason: 'interchange stopping' });
      m.socket.end();
    }
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }

  allowBlock(blockId: string, secret: string): void {
    this.secrets.set(blockId, Buffer.from(secret));
  }

  forgetBlock(blockId: string): void {
    this.secrets.delete(blockId);
    for (const m of this.managers.values()) if (m.blockId === blockId) m.socket.destroy();
  }

  submit(tasks: TaskMessage[]): void {
    for (const t of tasks) this.queue.set(t.task_id, t);
    this.scheduleDispatch();
  }

  /** Puts tasks back at the front of the queue, in their order. */
  requeue(tasks: TaskMessage[]): void {
    const rest = [...this.queue.entries()];
    this.queue.clear();
    for (const t of tasks) this.queue.set(t.task_id, t);
    for (const [id, t] of rest) if (!this.queue.has(id)) this.queue.set(id, t);
    this.scheduleDispatch();
  }

  /** Drops queued tasks and tells managers to drop the ones they hold but have not started. */
  cancel(taskIds: string[]): void {
    const byManager = new Map<ManagerConn, string[]>();
    for (const id of taskIds) {
      if (this.queue.delete(id)) continue;
      for (const m of this.managers.values()) {
        if (m.inflight.delete(id)) {
          if (!byManager.has(m)) byManager.set(m, []);
          byManager.get(m)!.push(id);
        }
      }
    }
    for (const [m, ids] of byManager) sendFrame(m.socket, { type: 'cancel', task_ids: ids });
    if (byManager.size) this.scheduleDispatch();
  }

  stats(): InterchangeStats {
    let total = 0;
    let idle = 0;
    let inflight = 0;
    const blocks = new Set<string>();
    const busyBlocks = new Set<string>();
    for (const m of this.managers.values()) {
      total += m.workers;
      idle += m.idleWorkers;
      inflight += m.inflight.size;
      blocks.add(m.blockId);
      if (m.inflight.size > 0) busyBlocks.add(m.blockId);
    }
    return { managers: this.managers.size, total_workers: total, idle_workers: idle, queued: this.queue.size, inflight, blocks, busyBlocks };
  }

  private accept(socket: Socket): void {
    socket.setNoDelay(true);
    let manager: ManagerConn | null = null;
    // Read now: a destroyed socket no longer knows its peer.
    const peer = `${socket.remoteAddress}:${socket.remotePort}`;
    let refused = false;
    /** Logs why a connection is closed, once; the caller closes it (or the reader has). */
    const refuse = (reason: string, fields: Record<string, unknown> = {}) => {
      if (refused) return;
      refused = true;
      this.opts.log.warn('interchange connection refused', { peer, reason, ...(manager ? { manager_id: manager.id, block_id: manager.blockId } : {}), ...fields });
    };
    const timeout_s = this.opts.register_timeout_s ?? 5;
    // Also ends a refused peer that keeps its side open after being told to shut down.
    const registerTimer = setTimeout(() => {
      refuse(`no register message within ${timeout_s} s`);
      socket.destroy();
    }, timeout_s * 1000);
    const maxFrameBytes = () => (manager ? MAX_MANAGER_FRAME_BYTES : MAX_REGISTER_FRAME_BYTES);
    readFrames(socket, (value, body) => {
      if (refused) return; // a refused manager's later lines (it may try to register again)
      const parsed = decodeManagerMessage(value);
      if ('error' in parsed) {
        refuse('a malformed message', { error: parsed.error });
        socket.destroy();
        return;
      }
      const { msg } = parsed;
      // Only a result part carries bytes.
      if (body.length > 0 && (msg.type !== 'result_part' || body.length > RESULT_PART_BYTES)) {
        refuse(`a ${msg.type} frame with a body of ${body.length} bytes`);
        return void socket.destroy();
      }
      if (!manager) {
        if (msg.type !== 'register') {
          refuse(`a ${msg.type} message before registering`);
          return void socket.destroy();
        }
        const expected = this.secrets.get(msg.block_id);
        const given = Buffer.from(msg.secret);
        if (msg.version !== INTERCHANGE_VERSION || !expected || expected.length !== given.length || !timingSafeEqual(expected, given)) {
          refuse(msg.version !== INTERCHANGE_VERSION ? `interchange version ${msg.version} ≠ ${INTERCHANGE_VERSION}` : 'bad block secret', { block_id: msg.block_id, host: msg.host });
          sendFrame(socket, { type: 'shutdown', reason: 'refused' });
          socket.end();
          return;
        }
        clearTimeout(registerTimer);
        manager = {
          id: msg.manager_id, blockId: msg.block_id, host: msg.host, socket, workers: msg.workers, idleWorkers: msg.workers,
          capacity: msg.workers + msg.prefetch, inflight: new Map(), functionsSent: new Set(), lastSeen: Date.now(),
        };
        this.managers.set(manager.id, manager);
        sendFrame(socket, { type: 'registered', heartbeat_s: this.opts.heartbeat_s });
        this.opts.log.info('manager connected', { manager_id: manager.id, block_id: manager.blockId, host: manager.host, workers: manager.workers });
        this.opts.hooks.onManagersChanged();
        this.scheduleDispatch();
        return;
      }
      manager.lastSeen = Date.now();
      switch (msg.type) {
        case 'started':
          this.opts.hooks.onStarted(msg.task_ids.filter((id) => manager!.inflight.has(id)), msg.at);
          break;
        case 'result_part':
          if (manager.inflight.has(msg.task_id) && this.opts.hooks.onResultPart) this.opts.hooks.onResultPart(msg.task_id, msg.attempt, msg.offset, body);
          break;
        case 'results': {
          const mine = msg.results.filter((r) => manager!.inflight.delete(r.task_id));
          if (mine.length) this.opts.hooks.onResults(mine);
          this.scheduleDispatch();
          break;
        }
        case 'lost': {
          const lost = msg.task_ids.map((id) => manager!.inflight.get(id)).filter((t): t is TaskMessage => t !== undefined);
          for (const t of lost) manager.inflight.delete(t.task_id);
          if (lost.length) this.opts.hooks.onLost(lost, msg.reason);
          break;
        }
        case 'heartbeat':
          manager.idleWorkers = msg.idle_workers;
          manager.workers = msg.workers;
          break;
        case 'register':
          break;
        case 'read':
          this.read(manager.socket, msg.req_id, msg.object_id, msg.start, msg.end);
          break;
      }
    }, { maxFrameBytes, onRefused: (reason) => refuse(reason) });
    socket.on('error', () => {});
    socket.on('close', () => {
      clearTimeout(registerTimer);
      if (manager) this.lose(manager, 'connection closed');
    });
  }

  private read(socket: Socket, req_id: string, objectId: string, start: number, end: number): void {
    const reader = this.opts.hooks.onRead;
    if (!reader) return sendFrame(socket, { type: 'read_result', req_id, ok: false, code: 'UNAVAILABLE', message: 'this agent serves no object reads' });
    reader(objectId, start, end).then(
      (r) => sendFrame(socket, { type: 'read_result', req_id, ok: true, size: r.size, sha256: r.sha256 }, r.data),
      (err: unknown) => {
        const code = err instanceof FerryError ? (err.code === 'NOT_FOUND' ? 'FERRY_DATA_NOT_FOUND' : err.code) : 'UNAVAILABLE';
        sendFrame(socket, { type: 'read_result', req_id, ok: false, code, message: err instanceof Error ? err.message : String(err) });
      },
    );
  }

  private lose(m: ManagerConn, reason: string): void {
    if (!this.managers.delete(m.id)) return;
    m.socket.destroy();
    const lost = [...m.inflight.values()];
    m.inflight.clear();
    this.opts.log.warn('manager lost', { manager_id: m.id, block_id: m.blockId, reason, tasks: lost.length });
    // Which of its tasks had started is unknown: all count as lost executions.
    if (lost.length) this.opts.hooks.onLost(lost, `manager lost: ${reason}`);
    this.opts.hooks.onManagersChanged();
    this.scheduleDispatch();
  }

  private checkHeartbeats(): void {
    const limit = (this.opts.heartbeat_threshold_s ?? this.opts.heartbeat_s * 3) * 1000;
    const now = Date.now();
    for (const m of [...this.managers.values()]) {
      if (now - m.lastSeen > limit) this.lose(m, `no heartbeat for ${Math.round((now - m.lastSeen) / 1000)} s`);
    }
  }

  private scheduleDispatch(): void {
    if (this.dispatchScheduled) return;
    this.dispatchScheduled = true;
    setImmediate(() => {
      this.dispatchScheduled = false;
      this.dispatch();
    });
  }

  private dispatch(): void {
    if (this.queue.size === 0) return;
    const managers = [...this.managers.values()].sort((a, b) => a.inflight.size / a.capacity - b.inflight.size / b.capacity);
    for (const m of managers) {
      const free = m.capacity - m.inflight.size;
      if (free <= 0 || this.queue.size === 0) continue;
      // Spread a backlog across managers rather than filling the first one.
      const share = Math.max(1, Math.min(free, Math.ceil(this.queue.size / managers.length)));
      const batch: TaskMessage[] = [];
      for (const [id, task] of this.queue) {
        batch.push(task);
        this.queue.delete(id);
        if (batch.length >= share) break;
      }
      const ids = batch.map((t) => t.task_id);
      const attempts = this.opts.hooks.beforeDispatch(ids);
      const functions: FunctionSpec[] = [];
      for (const t of batch) {
        if (m.functionsSent.has(t.function_uuid)) continue;
        const spec = this.opts.hooks.functionSpec(t.function_uuid);
        if (spec) functions.push(spec);
        m.functionsSent.add(t.function_uuid);
      }
      for (const t of batch) m.inflight.set(t.task_id, t);
      for (const t of batch) traceHop(t.trace, 'interchange.sent');
      const msg: DispatchMessage = { type: 'tasks', tasks: batch.map((t, i) => ({ ...t, attempt: attempts[i]! })), functions };
      sendFrame(m.socket, msg);
    }
  }
}

/**
 * A manager's message, checked before the schema (which recurses, and would overflow the stack on
 * a value nested a few thousand levels deep): a result nested past MAX_JSON_DEPTH fails its own
 * task; any other message nested past the bound is refused whole.
 */
function decodeManagerMessage(value: unknown): { msg: ManagerMessage } | { error: string } {
  if (isResultsMessage(value)) value = { ...value, results: value.results.map(boundResultDepth) };
  const limit = MAX_JSON_DEPTH + MESSAGE_ENVELOPE_DEPTH;
  if (nestsDeeperThan(value, limit)) return { error: `nested deeper than ${limit} levels` };
  const parsed = ManagerMessage.safeParse(value);
  return parsed.success ? { msg: parsed.data } : { error: parsed.error.message.slice(0, 200) };
}

function isResultsMessage(value: unknown): value is { type: 'results'; results: unknown[] } {
  return typeof value === 'object' && value !== null && (value as { type?: unknown }).type === 'results' && Array.isArray((value as { results?: unknown }).results);
}
