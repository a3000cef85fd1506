// The agent's channel: its WebSocket (hibernation API: the session and each socket's next frame
// seq survive in storage and the socket's attachment), the hello → held → ready handshake and
// reconcile, credits and dispatch from the outbox, and the frames the agent sends, handled one at a
// time, in order. Results go to task-outcomes.ts, status reports to agent-status.ts.

import { z } from 'zod';
import { FRAME_BUDGET_BYTES, FrameTooDeep, gatewayFrameText, PROTOCOL_VERSION, chunkBySize, parseAgentFrame, seqOf, type AgentFrame, type TaskResult } from '../../protocol/wire';
import { canTransition, isFinal, transition, type TaskState, type TransitionEvent } from '../../protocol/task-state';
import { traceHop } from '../../protocol/trace';
import { heartbeatSeconds } from '../env';
import { validationError } from '../http-errors';
import type { HubLineage } from '../lineage/hub-lineage';
import { logEvent } from '../log';
import type { AgentSession } from './agent-session';
import { AgentStatus } from './agent-status';
import { FrameOrder } from './frame-order';
import { AGENT_SOCKET_HEADERS } from './hub-api';
import { nowSeconds, type HubState } from './hub-state';
import { OutboxSweep } from './outbox-sweep';
import { buildTaskFrames } from './task-frames';
import type { TaskOutcomes } from './task-outcomes';

export const REVOKED_MESSAGE = 'the endpoint secret was revoked; register the endpoint again for a new secret';

/** Close codes the hub uses (4000–4999 are the application's). */
export const CLOSE = { unsupportedProtocol: 4000, replaced: 4001, revoked: 4003, endpointDeleted: 4004, badFrame: 1008, normal: 1000 } as const;

interface SocketTag {
  session_id: string;
  /** The agent frame seq due next on this socket (absent until its first numbered frame). */
  next_seq?: number;
}

const DISPATCH_ROUND_ROWS = 5_000;

function closeQuietly(ws: WebSocket, code: number, reason: string): void {
  try {
    ws.close(code, reason.slice(0, 120));
  } catch {
    // Already closing or closed: nothing left to do.
  }
}

export class AgentChannel {
  /** undefined: not looked up since the object woke up. */
  private agentSocket: WebSocket | null | undefined;
  /** Frames are handled one at a time, in order, even across awaits of a remote store. */
  private frameChain: Promise<void> = Promise.resolve();
  /** Per socket: its numbered frames put back in the order sent (lost with the instance; the seq due is in the attachment). */
  private readonly frameOrders = new WeakMap<WebSocket, FrameOrder<string>>();

  /** With a remote store: the outbox rows of tasks that ended there, dropped; what is undelivered, sent again. */
  readonly sweep: OutboxSweep;
  /** The endpoint's status as the agent reports it, online while its socket is open. */
  readonly status: AgentStatus;

  /** `scheduleSweep`: makes the outbox sweep due at a time (the hub's alarm scheduler). */
  constructor(
    private readonly hub: HubState,
    private readonly outcomes: TaskOutcomes,
    private readonly lineage: HubLineage,
    scheduleSweep: (at: number) => Promise<void>,
  ) {
    this.status = new AgentStatus(hub, () => this.currentSocket() !== null);
    this.sweep = new OutboxSweep(hub, lineage, scheduleSweep, { connected: () => this.currentSocket() !== null, dispatch: () => this.dispatch() });
  }

  /** Opens the agent's socket for an authenticated `owner` (the gateway's headers); it replaces any other. */
  accept(request: Request, owner: string): Response {
    const record = this.hub.owned(owner);
    if (!record || record.endpoint_id !== request.headers.get(AGENT_SOCKET_HEADERS.endpointId)) {
      return Response.json({ code: 'NOT_FOUND', message: 'endpoint not found' }, { status: 404 });
    }
    // Only access tokens of the current secret generation open the socket.
    if (Number(request.headers.get(AGENT_SOCKET_HEADERS.generation)) !== record.secret_gen) {
      return Response.json({ code: 'TOKEN_REVOKED', message: REVOKED_MESSAGE }, { status: 401 });
    }
    const pair = new WebSocketPair();
    const [client, server] = [pair[0], pair[1]];
    // One agent per endpoint: a new connection replaces the old one.
    for (const old of this.agentSockets()) closeQuietly(old, CLOSE.replaced, 'replaced by a newer agent connection');
    this.hub.ctx.acceptWebSocket(server);
    const session: AgentSession = { session_id: crypto.randomUUID(), phase: 'hello', held_remaining: 0, credits: 0, hello_at: null };
    server.serializeAttachment({ session_id: session.session_id } satisfies SocketTag);
    this.hub.storage.transactionSync(() => {
      this.hub.sessions.save(session);
      this.hub.sessions.clearHeld();
    });
    this.agentSocket = server;
    return new Response(null, { status: 101, webSocket: client });
  }

  /** The secret was revoked: the agent (authenticated with it) is refused and disconnected. */
  revoked(): void {
    for (const ws of this.agentSockets()) this.refuse(ws, 'TOKEN_REVOKED', REVOKED_MESSAGE, CLOSE.revoked);
    this.agentSocket = null;
    this.status.note();
  }

  /** The endpoint was deleted: the session ends, every socket closes. */
  endpointDeleted(): void {
    const session = this.hub.sessions.current();
    if (session) this.hub.sessions.save({ ...session, phase: 'closed' });
    this.closeAll(CLOSE.endpointDeleted, 'endpoint deleted');
    this.status.note();
  }

  /** The endpoint was deleted, or the gateway shuts down: every socket closes (event streams' too). */
  closeAll(code: number, reason: string): void {
    for (const ws of this.hub.ctx.getWebSockets()) closeQuietly(ws, code, reason);
    this.agentSocket = null;
  }

  /** Tells the connected agent, if any, to drop tasks that ended here. */
  cancel(taskIds: string[]): void {
    const ws = this.currentSocket();
    if (ws) this.sendQuietly(ws, gatewayFrameText({ type: 'cancel', task_ids: taskIds }));
  }

  private async onResults(ws: WebSocket, results: TaskResult[]): Promise<void> {
    await this.outcomes.record(results);
    for (const ids of chunkBySize(results.map((r) => r.task_id), FRAME_BUDGET_BYTES)) this.sendQuietly(ws, gatewayFrameText({ type: 'results_ack', task_ids: ids }));
    // A full segment of lineage records is written off this path: the next frame must not wait for an R2 write.
    await this.lineage.afterResults();
  }

  /** The agent's socket (and sockets it replaced that are closing), not the event streams'. */
  agentSockets(): WebSocket[] {
    return this.hub.ctx.getWebSockets().filter((ws) => !this.hub.subscribers.isSubscriber(ws));
  }

  currentSocket(): WebSocket | null {
    const session = this.hub.sessions.current();
    if (!session || session.phase === 'closed') return null;
    if (this.agentSocket === undefined) {
      this.agentSocket = this.agentSockets().find((ws) => (ws.deserializeAttachment() as SocketTag | null)?.session_id === session.session_id) ?? null;
    }
    if (this.agentSocket && this.agentSocket.readyState !== WebSocket.OPEN) return null;
    return this.agentSocket;
  }

  private isCurrent(ws: WebSocket): AgentSession | null {
    const session = this.hub.sessions.current();
    const tag = ws.deserializeAttachment() as SocketTag | null;
    if (!session || session.phase === 'closed' || !tag || tag.session_id !== session.session_id) return null;
    return session;
  }

  private sendQuietly(ws: WebSocket, frame: string): boolean {
    try {
      ws.send(frame);
      return true;
    } catch {
      return false;
    }
  }

  private refuse(ws: WebSocket, code: string, message: string, closeCode: number): void {
    logEvent('warn', 'agent refused', { endpoint_id: this.hub.endpoint()?.endpoint_id, code, message });
    this.sendQuietly(ws, gatewayFrameText({ type: 'refuse', code, message }));
    closeQuietly(ws, closeCode, message);
    const session = this.hub.sessions.current();
    if (session && this.isCurrent(ws)) this.hub.sessions.save({ ...session, phase: 'closed' });
    if (this.agentSocket === ws) this.agentSocket = null;
  }

  /** A message on any of the hub's sockets (an event stream's are ignored: streams only listen). */
  message(ws: WebSocket, message: string | ArrayBuffer): Promise<void> {
    if (this.hub.subscribers.isSubscriber(ws)) return Promise.resolve(); // streams only listen
    const seq = typeof message === 'string' ? seqOf(message) : null;
    if (seq === null) return this.chainFrame(() => this.handleFrame(ws, message));
    const tag = ws.deserializeAttachment() as SocketTag | null;
    let order = this.frameOrders.get(ws);
    if (!order) this.frameOrders.set(ws, (order = new FrameOrder<string>(tag?.next_seq ?? 1)));
    const verdict = order.accept(seq, message as string);
    if ('error' in verdict) return this.chainFrame(() => this.refuse(ws, 'VALIDATION_ERROR', `bad frame: ${verdict.error}`, CLOSE.badFrame));
    if (verdict.due.length === 0) return Promise.resolve(); // handled with the frame it waits for
    if (tag) ws.serializeAttachment({ ...tag, next_seq: order.next } satisfies SocketTag);
    return Promise.all(verdict.due.map((frame) => this.chainFrame(() => this.handleFrame(ws, frame)))).then(() => undefined);
  }

  /**
   * Runs one frame's handling after the previous one's. Input gates hold new events only while
   * *storage* is awaited; a remote TaskStore (fetch) would let the next frame (an ack's successor,
   * a sync) run before this one is stored.
   */
  private chainFrame(handle: () => Promise<void> | void): Promise<void> {
    const run = this.frameChain.then(handle);
    this.frameChain = run.catch(() => {});
    return run;
  }

  private async handleFrame(ws: WebSocket, message: string | ArrayBuffer): Promise<void> {
    const session = this.isCurrent(ws);
    if (!session) {
      closeQuietly(ws, CLOSE.replaced, 'superseded by a newer agent connection');
      return;
    }
    if (typeof message !== 'string') return this.refuse(ws, 'VALIDATION_ERROR', 'frames are JSON text, not binary', CLOSE.badFrame);
    let frame: AgentFrame;
    try {
      frame = parseAgentFrame(message);
    } catch (err) {
      const why = err instanceof z.ZodError ? validationError(err).message : err instanceof FrameTooDeep ? err.message : `not JSON: ${(err as Error).message}`;
      return this.refuse(ws, 'VALIDATION_ERROR', `bad frame: ${why}`, CLOSE.badFrame);
    }
    if ((session.phase === 'hello') !== (frame.type === 'hello')) {
      return this.refuse(ws, 'VALIDATION_ERROR', session.phase === 'hello' ? `expected hello, got ${frame.type}` : 'hello was already received', CLOSE.badFrame);
    }
    switch (frame.type) {
      case 'hello':
        return this.onHello(ws, session, frame.protocol_version, frame.held_frames);
      case 'held':
        if (session.phase !== 'held') return this.refuse(ws, 'VALIDATION_ERROR', 'held frame after the announced held_frames', CLOSE.badFrame);
        return this.onHeld(ws, session, frame.task_ids);
      case 'credit':
        return this.grant(frame.n);
      case 'ack':
        return this.advance(frame.task_ids, 'waiting-for-nodes', nowSeconds(), true);
      case 'running':
        return this.advance(frame.task_ids, 'running', frame.at, false);
      case 'results':
        if (frame.acked) {
          // A task whose result is in this frame needs no state on the way: its result ends it.
          const ended = new Set(frame.results.map((r) => r.task_id));
          const waiting = frame.acked.filter((id) => !ended.has(id));
          if (waiting.length) await this.advance(waiting, 'waiting-for-nodes', nowSeconds(), true);
        }
        await this.onResults(ws, frame.results);
        // Still this connection's credits only if no newer agent connection replaced it meanwhile.
        if (frame.credit && this.isCurrent(ws)) this.grant(frame.credit);
        return;
      case 'status': {
        const at = nowSeconds();
        this.hub.sessions.saveStatus({ report: frame.report, last_heartbeat: at });
        this.hub.statusSamples.record(frame.report, at);
        this.status.note();
        return;
      }
    }
  }

  async closed(ws: WebSocket, code: number, reason: string): Promise<void> {
    if (this.hub.subscribers.isSubscriber(ws)) return this.hub.subscribers.gone(ws);
    // Echo the close; the runtime may already consider the socket closed and throw.
    closeQuietly(ws, code === 1005 || code === 1006 || code === 1015 ? CLOSE.normal : code, reason);
    this.onSocketGone(ws);
  }

  async errored(ws: WebSocket): Promise<void> {
    if (this.hub.subscribers.isSubscriber(ws)) return this.hub.subscribers.gone(ws);
    closeQuietly(ws, 1011, 'socket error');
    this.onSocketGone(ws);
  }

  /** Delivered tasks stay delivered: the next hello's reconcile decides what the agent still holds. */
  private onSocketGone(ws: WebSocket): void {
    const session = this.isCurrent(ws);
    if (session) this.hub.sessions.save({ ...session, phase: 'closed' });
    if (this.agentSocket === ws) this.agentSocket = null;
    this.status.note();
  }

  private async onHello(ws: WebSocket, session: AgentSession, protocolVersion: number, heldFrames: number): Promise<void> {
    if (protocolVersion !== PROTOCOL_VERSION) {
      return this.refuse(ws, 'UNSUPPORTED_PROTOCOL', `the agent speaks protocol version ${protocolVersion}, this gateway speaks version ${PROTOCOL_VERSION}`, CLOSE.unsupportedProtocol);
    }
    const record = this.hub.endpoint()!;
    this.sendQuietly(ws, gatewayFrameText({ type: 'welcome', protocol_version: PROTOCOL_VERSION, endpoint_id: record.endpoint_id, heartbeat_s: heartbeatSeconds(this.hub.env) }));
    const next: AgentSession = { ...session, phase: heldFrames > 0 ? 'held' : 'ready', held_remaining: heldFrames, hello_at: nowSeconds() };
    this.hub.sessions.save(next);
    this.status.note();
    if (next.phase === 'ready') {
      await this.reconcile(ws, []);
      this.dispatch();
    }
  }

  private async onHeld(ws: WebSocket, session: AgentSession, taskIds: string[]): Promise<void> {
    const remaining = session.held_remaining - 1;
    this.hub.ctx.storage.transactionSync(() => {
      this.hub.sessions.addHeld(taskIds);
      this.hub.sessions.save({ ...session, held_remaining: remaining, phase: remaining > 0 ? 'held' : 'ready' });
    });
    if (remaining > 0) return;
    await this.reconcile(ws, this.hub.sessions.takeHeld());
    this.dispatch();
  }

  /**
   * After a hello: a task delivered here that the agent does not hold was lost on the way or with
   * the agent, and goes back to the queue; a held task that is final here (or unknown) is dropped by
   * the agent through a cancel frame; a held task still open here counts as delivered.
   */
  private async reconcile(ws: WebSocket, heldIds: readonly string[]): Promise<void> {
    const held = new Set(heldIds);
    const lapsed = this.hub.outbox.deliveredTaskIds().filter((id) => !held.has(id));
    const [lapsedStates, heldStates] = await Promise.all([this.hub.store.readStates(lapsed), this.hub.store.readStates(heldIds)]);
    const at = nowSeconds();
    const events: TransitionEvent[] = [];
    // Rows of tasks final (or expired) in the store: left by a crash between a remote store's write and the outbox's.
    const gone: string[] = [];
    for (const id of lapsed) {
      const s = lapsedStates.get(id);
      if (!s || isFinal(s.state)) gone.push(id);
      if (!s || s.state === 'waiting-for-ep' || !canTransition(s.state, 'waiting-for-ep')) continue;
      events.push(transition(id, s.state, s.transitions, 'waiting-for-ep', at).event);
    }
    const drop: string[] = [];
    const keep: string[] = [];
    for (const id of heldIds) {
      const s = heldStates.get(id);
      if (!s || isFinal(s.state)) drop.push(id);
      else keep.push(id);
    }
    await this.hub.store.saveTransitions(events, () => {
      this.hub.outbox.markUndelivered(lapsed);
      this.hub.outbox.markDelivered(keep);
      this.lineage.retire(gone);
      this.lineage.retire(drop);
    });
    if (this.hub.remoteStore) await this.sweep.sweep(true);
    for (const ids of chunkBySize(drop, FRAME_BUDGET_BYTES)) this.sendQuietly(ws, gatewayFrameText({ type: 'cancel', task_ids: ids }));
    if (gone.length > 0 || drop.length > 0) await this.lineage.arm();
  }

  /** The agent can take `n` more tasks: they go at once. */
  private grant(n: number): void {
    const session = this.hub.sessions.current();
    if (!session) return;
    this.hub.sessions.save({ ...session, credits: session.credits + n });
    this.dispatch();
  }

  /** Sends queued tasks, oldest first, never more than the agent's credits. */
  dispatch(): void {
    const ws = this.currentSocket();
    if (!ws) return;
    for (;;) {
      const session = this.hub.sessions.current();
      if (!session || session.phase !== 'ready' || session.credits <= 0) return;
      // Rounds bound the rows held in memory when an agent grants a very large credit.
      const rows = this.hub.outbox.pending(Math.min(session.credits, DISPATCH_ROUND_ROWS));
      if (rows.length === 0) return;
      for (const frame of buildTaskFrames(rows, (id) => this.hub.outbox.functionSpecJson(id))) {
        // A failed send leaves the rows undelivered; they go out on the next connection.
        if (!this.sendQuietly(ws, frame)) return;
      }
      if (this.outcomes.traces.size > 0) for (const r of rows) traceHop(this.outcomes.traces.get(r.task_id), 'hub.sent', Date.now());
      this.hub.ctx.storage.transactionSync(() => {
        this.hub.outbox.markDeliveredThrough(rows[rows.length - 1]!.seq);
        this.hub.sessions.save({ ...session, credits: session.credits - rows.length });
      });
    }
  }

  /** ack → waiting-for-nodes, running → running; tasks already past that state are left alone. */
  private async advance(taskIds: string[], to: TaskState, at: number, journaled: boolean): Promise<void> {
    const states = await this.hub.store.readStates(taskIds);
    const events: TransitionEvent[] = [];
    for (const s of states.values()) {
      if (s.state === to || !canTransition(s.state, to)) continue;
      events.push(transition(s.task_id, s.state, s.transitions, to, at).event);
    }
    // A journaled task is delivered even if a reconcile re-queued it meanwhile: do not send it twice.
    await this.hub.store.saveTransitions(events, journaled ? () => this.hub.outbox.markDelivered(taskIds) : undefined);
  }
}
