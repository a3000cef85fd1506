// Open event streams, as the hub sees them: one hibernatable WebSocket per stream (tag `events`),
// opened by the gateway's worker that holds the client's SSE response. After each write the hub
// sends the new position (a few bytes: `<position>`, or `<position>!` when the write ended tasks)
// and the worker reads the changes by RPC. Nothing stays
// pending in the object: an idle hub with open streams hibernates as it does with its agent
// socket, and wakes for the next write. Why not a long RPC per stream: a call the object has not
// answered keeps it in memory, and one per client would pin every watched hub.

export const EVENTS_SOCKET_TAG = 'events';

/** Internal path of the subscription request (the worker to the hub, never a client). */
export const EVENTS_SOCKET_PATH = '/events-socket';

export class EventSubscribers {
  /** null: not looked up since the object woke (or since a stream opened or closed). */
  private open: WebSocket[] | null = null;

  constructor(private readonly ctx: DurableObjectState) {}

  accept(): Response {
    const pair = new WebSocketPair();
    this.ctx.acceptWebSocket(pair[1], [EVENTS_SOCKET_TAG]);
    this.open = null;
    return new Response(null, { status: 101, webSocket: pair[0] });
  }

  isSubscriber(ws: WebSocket): boolean {
    return this.ctx.getTags(ws).includes(EVENTS_SOCKET_TAG);
  }

  /** Called when a subscriber's socket closed or failed. */
  gone(ws: WebSocket): void {
    this.open = null;
    try {
      ws.close(1000, 'stream closed');
    } catch {
      // Already closed.
    }
  }

  /** Tells every open stream the hub's newest position, and whether the write ended tasks. */
  tick(position: number, ended: boolean): void {
    this.open ??= this.ctx.getWebSockets(EVENTS_SOCKET_TAG);
    if (this.open.length === 0) return;
    const text = ended ? `${position}!` : String(position);
    for (const ws of this.open) {
      try {
        ws.send(text);
      } catch {
        this.open = null; // closing: looked up again next time
      }
    }
  }

  /** Closes every stream (the endpoint was deleted, or the gateway drains): clients reconnect. */
  closeAll(code: number, reason: string): void {
    for (const ws of this.ctx.getWebSockets(EVENTS_SOCKET_TAG)) {
      try {
        ws.close(code, reason);
      } catch {
        // Already closed.
      }
    }
    this.open = null;
  }
}
