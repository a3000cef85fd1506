// The agent channel on a real Durable Object (test/helpers/hub-parts.ts) and a real WebSocket pair:
// the socket it accepts, the hello and credits that let queued tasks out, the reconcile after a
// reconnect, and a refused frame. Frames reach the channel as the hub hands them over.

import { expect, it, vi } from 'vitest';
import { withHub, OWNER, type Hub } from '../../../test/helpers/hub-parts';
import { AGENT_SOCKET_HEADERS } from './hub-api';
import { PROTOCOL_VERSION } from '../../protocol/wire';

type Frame = { type: string; [key: string]: any };

/** The agent's end of a socket the channel accepted, and the server end the channel is handed frames from. */
class Agent {
  readonly frames: Frame[] = [];
  closeCode: number | null = null;

  private constructor(
    private readonly hub: Hub,
    readonly server: WebSocket,
    client: WebSocket,
  ) {
    client.accept();
    client.addEventListener('message', (e) => {
      this.frames.push(JSON.parse(e.data as string));
    });
    client.addEventListener('close', (e) => {
      this.closeCode = e.code;
    });
  }

  static connect(hub: Hub): Agent {
    const headers = { [AGENT_SOCKET_HEADERS.owner]: OWNER, [AGENT_SOCKET_HEADERS.endpointId]: hub.endpointId, [AGENT_SOCKET_HEADERS.generation]: '0' };
    const before = new Set(hub.channel.agentSockets());
    const res = hub.channel.accept(new Request('https://hub/ws', { headers }), OWNER);
    expect(res.status).toBe(101);
    const server = hub.channel.agentSockets().find((ws) => !before.has(ws))!;
    return new Agent(hub, server, res.webSocket!);
  }

  send(frame: Frame): Promise<void> {
    return this.hub.channel.message(this.server, JSON.stringify(frame));
  }

  async hello(held: string[][] = []): Promise<void> {
    await this.send({ type: 'hello', protocol_version: PROTOCOL_VERSION, agent_version: 'test', held_frames: held.length });
    for (const ids of held) await this.send({ type: 'held', task_ids: ids });
    await this.next('welcome');
  }

  /** The next frame of `type` not taken yet (frames reach this end when the object's output gate lets them out). */
  next(type: string): Promise<Frame> {
    return vi.waitFor(
      () => {
        const at = this.frames.findIndex((f) => f.type === type);
        if (at >= 0) return this.frames.splice(at, 1)[0]!;
        throw new Error(this.closeCode === null ? `no ${type} frame yet` : `socket closed (${this.closeCode}) before a ${type} frame`);
      },
      { timeout: 10_000, interval: 5 },
    );
  }

  async taskIds(n: number): Promise<string[]> {
    const ids: string[] = [];
    while (ids.length < n) ids.push(...(await this.next('tasks')).tasks.map((t: { task_id: string }) => t.task_id));
    return ids;
  }
}

it('sends queued tasks after the hello, never more than the credits granted', async () => {
  const seen = await withHub(async (hub) => {
    const ids = await hub.submit([{ args: [1] }, { args: [2] }, { args: [3] }]);
    const agent = Agent.connect(hub);
    await agent.hello();
    await agent.send({ type: 'credit', n: 2 });
    const sent = await agent.taskIds(2);
    return { ids, sent, queued: hub.state.outbox.counts().queued, status: hub.channel.status.current().status };
  });
  expect(seen.sent).toEqual(seen.ids.slice(0, 2));
  expect(seen.queued).toBe(1);
  expect(seen.status).toBe('online');
});

it('after a reconnect: a held task that ended is cancelled, a lost one is queued again and re-sent', async () => {
  const seen = await withHub(async (hub) => {
    const [kept, ended, lost] = await hub.submit([{ args: [1] }, { args: [2] }, { args: [3] }]);
    const first = Agent.connect(hub);
    await first.hello();
    await first.send({ type: 'credit', n: 3 });
    await first.taskIds(3);
    await first.send({ type: 'results', results: [{ task_id: ended!, status: 'success', result: 2 }] });
    await first.next('results_ack');
    // A new connection replaces the first; it holds two of the three tasks it was sent.
    const second = Agent.connect(hub);
    await second.hello([[kept!, ended!]]);
    const cancel = await second.next('cancel');
    const lostState = (await hub.state.store.readStates([lost!])).get(lost!)?.state;
    await second.send({ type: 'credit', n: 5 });
    return { cancel: cancel.task_ids, lostState, resent: await second.taskIds(1), replaced: first.closeCode, lost, ended };
  });
  expect(seen.cancel).toEqual([seen.ended]);
  expect(seen.lostState).toBe('waiting-for-ep');
  expect(seen.resent).toEqual([seen.lost]);
  expect(seen.replaced).toBe(4001);
});

it('refuses a frame before the hello and closes the socket', async () => {
  const seen = await withHub(async (hub) => {
    const agent = Agent.connect(hub);
    await agent.send({ type: 'credit', n: 1 });
    const refuse = await agent.next('refuse');
    return { refuse, online: hub.channel.currentSocket() !== null };
  });
  expect(seen.refuse.code).toBe('VALIDATION_ERROR');
  expect(seen.refuse.message).toMatch(/expected hello/);
  expect(seen.online).toBe(false);
});
