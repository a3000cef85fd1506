// The structural floor of `POST /v3/run` for the bench: the fewest runtime events Ferry's design
// needs for one round trip, with no Ferry code. A request enters the Worker, which calls one
// Durable Object by RPC; the object writes one row to its SQLite storage and sends a message on the
// hibernatable WebSocket an outside process dialled in on (as an endpoint's agent does); that
// process answers at once; the answer wakes the object (webSocketMessage), which settles the RPC,
// and the Worker answers. Everything between (the sandbox, the endpoint's hops, auth, validation)
// is left out, so Ferry's round trip can never be faster than this on the same runtime.
import { DurableObject } from 'cloudflare:workers';

export class Hub extends DurableObject {
  constructor(ctx, env) {
    super(ctx, env);
    this.waiting = new Map();
    this.next = 0;
    ctx.storage.sql.exec('CREATE TABLE IF NOT EXISTS tasks (id INTEGER PRIMARY KEY, state TEXT)');
  }
  async fetch(request) {
    const pair = new WebSocketPair();
    this.ctx.acceptWebSocket(pair[1]);
    return new Response(null, { status: 101, webSocket: pair[0] });
  }
  run(payload) {
    const [agent] = this.ctx.getWebSockets();
    if (!agent) throw new Error('no agent connected');
    const id = ++this.next;
    this.ctx.storage.sql.exec('INSERT INTO tasks (id, state) VALUES (?, ?)', id, 'sent');
    agent.send(JSON.stringify({ id, payload }));
    return new Promise((resolve) => this.waiting.set(id, resolve));
  }
  webSocketMessage(_ws, message) {
    const { id, result } = JSON.parse(message);
    this.ctx.storage.sql.exec('UPDATE tasks SET state = ? WHERE id = ?', 'done', id);
    this.waiting.get(id)?.(result);
    this.waiting.delete(id);
  }
}

export default {
  async fetch(request, env) {
    const hub = env.HUB.get(env.HUB.idFromName('one'));
    if (request.headers.get('upgrade') === 'websocket') return hub.fetch(request);
    const result = await hub.run(await request.json());
    return Response.json({ status: 'success', result });
  },
};
