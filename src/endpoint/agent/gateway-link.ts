// The agent's one WebSocket to its endpoint's object at the gateway: dials out (sites allow
// outbound HTTPS, rarely inbound), reconnects with capped exponential backoff and jitter, and
// hands every parsed frame to the agent. Frames that do not parse close the connection.

import WebSocket from 'ws';
import { Backoff } from '../../protocol/backoff';
import { errorFromBody } from '../../protocol/error-body';
import { FerryError } from '../../protocol/errors';
import { CLOSE_GATEWAY_RESTART, PROTOCOL_VERSION, parseGatewayFrame, withSeq, type AgentFrame, type GatewayFrame } from '../../protocol/wire';
import type { Logger } from '../log';

export interface GatewayLinkHandlers {
  /** The socket is open: send the hello sequence. */
  onOpen(): void;
  onFrame(frame: GatewayFrame): void;
  onClose(): void;
  /** The gateway refused this agent for good (bad token, revoked secret, protocol mismatch). */
  onRefused(error: FerryError): void;
  /** The gateway said the access token had expired (a long sleep): renew it; the link dials again. */
  onTokenExpired?(): void;
}


export class GatewayLink {
  private ws: WebSocket | null = null;
  private readonly backoff = new Backoff({ minMs: 250, maxMs: 30_000 });
  private closed = false;
  private retryTimer: NodeJS.Timeout | null = null;
  private livenessTimer: NodeJS.Timeout | null = null;
  private lastHeard = 0;
  /** Frames sent on the current socket: each carries its number, so the gateway handles them in order. */
  private sent = 0;

  /**
   * `silenceMs`: a connection that brings nothing back (not even a pong) for this long is dead,
   * even if TCP never says so (a firewall dropping packets sends no FIN or RST): it is dropped and
   * dialled again. Pings go out at a third of it.
   */
  constructor(
    private readonly url: string,
    private readonly token: () => string,
    private readonly handlers: GatewayLinkHandlers,
    private readonly log: Logger,
    private readonly silenceMs = 15_000,
  ) {}

  get connected(): boolean {
    return this.ws?.readyState === WebSocket.OPEN;
  }

  connect(): void {
    if (this.closed) return;
    const ws = new WebSocket(this.url, {
      headers: { authorization: `Bearer ${this.token()}` },
      maxPayload: 64 * 1024 * 1024,
      handshakeTimeout: this.silenceMs,
      // No per-message compression: it runs every frame through zlib on libuv's thread pool, a hop
      // each way that a lone task's frames waited on (~1 ms here), for frames mostly small.
      perMessageDeflate: false,
    });
    this.ws = ws;
    this.sent = 0;
    ws.on('open', () => {
      this.backoff.reset();
      this.log.info('connected to gateway', { url: this.url });
      this.watch(ws);
      this.handlers.onOpen();
    });
    ws.on('pong', () => {
      this.lastHeard = Date.now();
    });
    ws.on('message', (data) => {
      this.lastHeard = Date.now();
      let frame: GatewayFrame;
      try {
        frame = parseGatewayFrame(data.toString());
      } catch (err) {
        this.log.error('gateway sent a malformed frame; reconnecting', { error: (err as Error).message.slice(0, 300) });
        ws.terminate();
        return;
      }
      if (frame.type === 'refuse') {
        this.log.error('gateway refused this agent', { code: frame.code, message: frame.message });
        this.closed = true;
        const code = frame.code === 'UNSUPPORTED_PROTOCOL' || frame.code === 'TOKEN_REVOKED' ? frame.code : 'FORBIDDEN';
        this.handlers.onRefused(new FerryError(code, frame.message));
        ws.close();
        return;
      }
      if (frame.type === 'welcome' && frame.protocol_version !== PROTOCOL_VERSION) {
        // A gateway that accepted our hello yet speaks another version: refuse it from this side.
        const message = `the gateway speaks protocol version ${frame.protocol_version}, this agent speaks version ${PROTOCOL_VERSION}`;
        this.log.error('refusing the gateway', { code: 'UNSUPPORTED_PROTOCOL', message });
        this.closed = true;
        this.handlers.onRefused(new FerryError('UNSUPPORTED_PROTOCOL', message));
        ws.close();
        return;
      }
      this.handlers.onFrame(frame);
    });
    ws.on('unexpected-response', (_req, res) => {
      const status = res.statusCode ?? 0;
      const chunks: Buffer[] = [];
      let decided = false;
      const decide = () => {
        if (decided) return;
        decided = true;
        clearTimeout(fallback);
        this.onUpgradeRefused(ws, status, Buffer.concat(chunks).toString('utf8'));
      };
      // The error body names the reason (TOKEN_EXPIRED, TOKEN_REVOKED, …); do not wait long for it.
      const fallback = setTimeout(decide, 2000);
      res.on('data', (chunk: Buffer) => {
        if (chunks.length < 16) chunks.push(chunk);
      });
      res.on('end', decide);
      res.on('error', decide);
    });
    ws.on('error', (err) => this.log.debug('gateway socket error', { error: err.message }));
    ws.on('close', (code, reason) => {
      // 1012: the gateway is shutting down or restarting (src/gateway/drain.ts); nothing is wrong here.
      if (code === CLOSE_GATEWAY_RESTART) this.log.info('the gateway is restarting; reconnecting', { reason: reason.toString() });
      if (this.ws === ws) this.ws = null;
      if (this.livenessTimer) clearInterval(this.livenessTimer);
      this.handlers.onClose();
      this.scheduleReconnect();
    });
  }

  private onUpgradeRefused(ws: WebSocket, status: number, text: string): void {
    // Not a Ferry error body: the status decides.
    const body = errorFromBody(status, text);
    const message = body.ferryBody ? body.detail : `gateway answered ${status} to the agent's connection`;
    if (status === 401 && body.code === 'TOKEN_EXPIRED') {
      this.log.warn('the gateway found the access token expired; renewing it and reconnecting', { status });
      this.handlers.onTokenExpired?.();
    } else if (status === 401 || status === 403 || status === 404) {
      this.log.error('gateway rejected the endpoint credentials', { status, code: body.code, message });
      this.closed = true;
      const code = body.code === 'TOKEN_REVOKED' ? 'TOKEN_REVOKED' : status === 404 ? 'NOT_FOUND' : 'UNAUTHORIZED';
      this.handlers.onRefused(new FerryError(code, code === 'TOKEN_REVOKED' ? message : `gateway answered ${status} to the agent's connection: ${message}`));
    } else {
      this.log.warn('gateway connection failed', { status });
    }
    ws.terminate();
  }

  send(frame: AgentFrame): boolean {
    const ws = this.ws;
    if (!ws || ws.readyState !== WebSocket.OPEN) return false;
    ws.send(withSeq(JSON.stringify(frame), ++this.sent));
    return true;
  }

  close(): void {
    this.closed = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    if (this.livenessTimer) clearInterval(this.livenessTimer);
    this.ws?.close();
  }

  private watch(ws: WebSocket): void {
    this.lastHeard = Date.now();
    if (this.livenessTimer) clearInterval(this.livenessTimer);
    this.livenessTimer = setInterval(() => {
      const silent = Date.now() - this.lastHeard;
      if (silent > this.silenceMs) {
        this.log.warn('gateway connection silent; dropping it', { silent_ms: silent });
        ws.terminate();
        return;
      }
      try {
        ws.ping();
      } catch {
        // closing already
      }
    }, Math.max(200, Math.floor(this.silenceMs / 3)));
  }

  private scheduleReconnect(): void {
    if (this.closed) return;
    const delay = this.backoff.next();
    this.log.info('gateway connection lost; reconnecting', { in_ms: delay });
    this.retryTimer = setTimeout(() => this.connect(), delay);
  }
}
