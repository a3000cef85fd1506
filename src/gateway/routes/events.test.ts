// GET /v3/events inside workerd: each filter, owner scope, resume with Last-Event-ID (nothing lost,
// nothing twice), endpoint status events, keepalives and bad queries. Streams are read with the
// SDK's own SSE parser.

import { env, exports } from 'cloudflare:workers';
import { runInDurableObject } from 'cloudflare:test';
import { describe, expect, it } from 'vitest';
import { EndpointHub } from '../endpoint-hub/endpoint-hub';
import type { GatewayEnv } from '../env';
import { TaskDoc } from '../../protocol/api';
import { EndpointEvent, parseCursor } from '../../protocol/events';
import { SseParser, type SseEvent } from '../../sdk/event-stream';
import { BASE, FakeAgent, newUser, registerEndpoint, registerFunction, submit, success, type User } from '../../../test/helpers/gateway';

/** An open stream: events and comments as they come, awaited with deadlines. */
class Stream {
  readonly events: SseEvent[] = [];
  comments = 0;
  ended = false;
  private readonly parser = new SseParser();
  private wake: (() => void) | null = null;
  private constructor(private readonly reader: ReadableStreamDefaultReader<Uint8Array>) {
    void this.pump();
  }

  static async open(user: User, query: string, lastEventId?: string): Promise<Stream> {
    const res = await Stream.request(user, query, lastEventId);
    if (res.status !== 200) throw new Error(`GET /v3/events?${query}: ${res.status} ${await res.text()}`);
    expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/);
    return new Stream(res.body!.getReader());
  }

  static request(user: User, query: string, lastEventId?: string): Promise<Response> {
    const headers: Record<string, string> = { authorization: `Bearer ${user.token}` };
    if (lastEventId !== undefined) headers['last-event-id'] = lastEventId;
    return exports.default.fetch(`${BASE}/v3/events?${query}`, { headers });
  }

  private async pump(): Promise<void> {
    const decoder = new TextDecoder();
    try {
      for (;;) {
        const { done, value } = await this.reader.read();
        if (done) break;
        const text = decoder.decode(value, { stream: true });
        this.comments += text.split('\n').filter((l) => l.startsWith(': keepalive')).length;
        this.events.push(...this.parser.push(text));
        this.wake?.();
      }
    } catch {
      // cancelled
    }
    this.ended = true;
    this.wake?.();
  }

  tasks(): any[] {
    return this.events.filter((e) => e.type === 'task').map((e) => JSON.parse(e.data));
  }

  /** Waits until `check` holds (each time something arrives), up to `ms`. */
  async until(check: () => boolean, what: string, ms = 10_000): Promise<void> {
    const deadline = Date.now() + ms;
    while (!check()) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; events: ${this.events.map((e) => e.type + ':' + e.data.slice(0, 80)).join(' | ')}`);
      await new Promise<void>((resolve) => {
        this.wake = resolve;
        setTimeout(resolve, Math.max(0, deadline - Date.now()));
      });
    }
  }

  /** Waits until every id has a task event with one of `statuses`. */
  untilTasks(ids: readonly string[], statuses: string[], ms?: number): Promise<void> {
    return this.until(() => ids.every((id) => this.tasks().some((t) => t.task_id === id && statuses.includes(t.status))), `${ids.length} tasks ${statuses}`, ms);
  }

  lastId(): string {
    return this.events[this.events.length - 1]!.id!;
  }

  async close(): Promise<void> {
    await this.reader.cancel().catch(() => undefined);
  }
}

const ENDED = ['success', 'failed', 'cancelled'];

async function setup() {
  const alice = await newUser();
  const fn = await registerFunction(alice);
  const ep = await registerEndpoint(alice);
  return { alice, fn, ep };
}

/** The agent receives `ids` (ack) and answers each with a + b. */
async function runAll(agent: FakeAgent, count: number): Promise<string[]> {
  const tasks = await agent.tasks(count);
  const ids = tasks.map((t) => t.task_id);
  agent.send({ type: 'ack', task_ids: ids });
  agent.send({ type: 'results', results: tasks.map((t) => success(t.task_id, t.payload.args[0] + t.payload.args[1])) });
  return ids;
}

describe('GET /v3/events?task_group_id', () => {
  it('starts with every task as it stands, then one event per change, the result inline and the doc as GET /v2/tasks answers it', async () => {
    const { alice, fn, ep } = await setup();
    const { task_ids, task_group_id } = await submit(alice, ep.endpoint_id, fn, [{ args: [1, 2] }, { args: [3, 4] }]);
    const stream = await Stream.open(alice, `task_group_id=${task_group_id}`);
    await stream.untilTasks(task_ids, ['waiting-for-ep']);
    const agent = await FakeAgent.ready(ep.endpoint_id, ep.token);
    agent.send({ type: 'credit', n: 10 });
    await runAll(agent, 2);
    await stream.untilTasks(task_ids, ['success']);
    const ended = stream.tasks().filter((t) => ENDED.includes(t.status));
    expect(ended.map((t) => t.task_id).sort()).toEqual([...task_ids].sort());
    for (const t of ended) {
      TaskDoc.parse(t);
      const doc = await alice.call('get', `/v2/tasks/${t.task_id}`);
      expect(t).toEqual(doc.body);
    }
    expect(ended.map((t) => t.result).sort()).toEqual([3, 7]);
    // Every event names its position; ids only grow.
    const positions = stream.events.map((e) => parseCursor(e.id!).get(ep.endpoint_id)!);
    expect([...positions].sort((a, b) => a - b)).toEqual(positions);
    expect(new Set(positions).size).toBe(positions.length);
    agent.close();
    await stream.close();
  });

  it('resumes after Last-Event-ID: every change made while away, each terminal event once', async () => {
    const { alice, fn, ep } = await setup();
    const payloads = Array.from({ length: 40 }, (_, i) => ({ args: [i, 1] }));
    const { task_ids, task_group_id } = await submit(alice, ep.endpoint_id, fn, payloads);
    const first = await Stream.open(alice, `task_group_id=${task_group_id}`);
    await first.untilTasks(task_ids, ['waiting-for-ep']);
    const agent = await FakeAgent.ready(ep.endpoint_id, ep.token);
    agent.send({ type: 'credit', n: 100 });
    const tasks = await agent.tasks(40);
    agent.send({ type: 'ack', task_ids: task_ids });
    agent.send({ type: 'results', results: tasks.slice(0, 15).map((t) => success(t.task_id, t.payload.args[0] + 1)) });
    await first.untilTasks(tasks.slice(0, 15).map((t) => t.task_id), ['success']);
    const resumeAt = first.lastId();
    const seen = first.tasks().filter((t) => t.status === 'success').map((t) => t.task_id);
    await first.close();
    // While nobody listens: the rest end, one is cancelled.
    const cancelled = await alice.call('delete', `/v2/tasks/${tasks[39].task_id}`);
    expect(cancelled.status).toBe(200);
    agent.send({ type: 'results', results: tasks.slice(15, 39).map((t) => success(t.task_id, t.payload.args[0] + 1)) });
    await agent.sync();
    const second = await Stream.open(alice, `task_group_id=${task_group_id}`, resumeAt);
    const rest = task_ids.filter((id) => !seen.includes(id));
    await second.untilTasks(rest, ENDED);
    // Nothing the first stream saw end comes again; nothing is missing.
    const terminal = second.tasks().filter((t) => ENDED.includes(t.status));
    expect(terminal.map((t) => t.task_id).sort()).toEqual([...rest].sort());
    expect([...seen, ...terminal.map((t) => t.task_id)].sort()).toEqual([...task_ids].sort());
    expect(terminal.find((t) => t.task_id === tasks[39].task_id).status).toBe('cancelled');
    // And live changes keep coming on the resumed stream.
    const more = await submit(alice, ep.endpoint_id, fn, [{ args: [5, 5] }], { task_group_id });
    await second.untilTasks(more.task_ids, ['waiting-for-ep', 'waiting-for-nodes']);
    agent.close();
    await second.close();
  });

  it('is the owner\'s only: another user gets 404 for the group, the endpoint and the tasks', async () => {
    const { alice, fn, ep } = await setup();
    const { task_ids, task_group_id } = await submit(alice, ep.endpoint_id, fn);
    const mallory = await newUser('mallory');
    for (const query of [`task_group_id=${task_group_id}`, `endpoint_id=${ep.endpoint_id}`, `task_id=${task_ids[0]}`]) {
      const res = await Stream.request(mallory, query);
      expect(res.status, query).toBe(404);
      expect(((await res.json()) as any).code).toBe('NOT_FOUND');
    }
    const unknownGroup = await Stream.request(alice, `task_group_id=${ep.endpoint_id}.00000000000000000000`);
    expect(unknownGroup.status).toBe(404);
  });
});

describe('GET /v3/events?endpoint_id', () => {
  it('starts with the status and the latest tasks, then online, task and offline events', async () => {
    const { alice, fn, ep } = await setup();
    const before = await submit(alice, ep.endpoint_id, fn);
    const stream = await Stream.open(alice, `endpoint_id=${ep.endpoint_id}`);
    await stream.until(() => stream.events.length >= 2, 'status and a task');
    expect(stream.events[0]!.type).toBe('endpoint');
    const first = EndpointEvent.parse(JSON.parse(stream.events[0]!.data));
    expect(first).toMatchObject({ endpoint_id: ep.endpoint_id, status: { status: 'offline' } });
    expect(stream.tasks().map((t) => t.task_id)).toEqual(before.task_ids);
    const agent = await FakeAgent.ready(ep.endpoint_id, ep.token);
    const statuses = () => stream.events.filter((e) => e.type === 'endpoint').map((e) => JSON.parse(e.data).status);
    await stream.until(() => statuses().some((s) => s.status === 'online'), 'online');
    agent.send({ type: 'status', report: { total_workers: 4, idle_workers: 4, pending_tasks: 0, outstanding_tasks: 0, managers: 1, blocks: 1 } });
    await stream.until(() => statuses().some((s) => s.details.total_workers === 4 && s.details.blocks === 1), 'workers and blocks');
    const count = statuses().length;
    // A heartbeat that changes only queue counts is not an event.
    agent.send({ type: 'status', report: { total_workers: 4, idle_workers: 4, pending_tasks: 3, outstanding_tasks: 3, managers: 1, blocks: 1 } });
    agent.send({ type: 'credit', n: 10 });
    await runAll(agent, 1);
    await stream.untilTasks(before.task_ids, ['success']);
    expect(statuses()).toHaveLength(count);
    agent.close();
    await stream.until(() => statuses().at(-1)?.status === 'offline', 'offline');
    await stream.close();
  });
});

describe('GET /v3/events?workflow_id and ?task_id', () => {
  it('follows a workflow over two endpoints, with a position per hub in each id, and shows another user nothing', async () => {
    const { alice, fn, ep } = await setup();
    const ep2 = await registerEndpoint(alice);
    const wf = `wf-${crypto.randomUUID()}`;
    const a = await submit(alice, ep.endpoint_id, fn, [{ args: [1, 1] }], { workflow_id: wf });
    const b = await submit(alice, ep2.endpoint_id, fn, [{ args: [2, 2] }], { workflow_id: wf });
    const outside = await submit(alice, ep.endpoint_id, fn, [{ args: [3, 3] }]);
    const stream = await Stream.open(alice, `workflow_id=${wf}`);
    await stream.untilTasks([...a.task_ids, ...b.task_ids], ['waiting-for-ep']);
    const agent = await FakeAgent.ready(ep2.endpoint_id, ep2.token);
    agent.send({ type: 'credit', n: 10 });
    await runAll(agent, 1);
    await stream.untilTasks(b.task_ids, ['success']);
    expect(stream.tasks().map((t) => t.task_id)).not.toContain(outside.task_ids[0]);
    const cursor = parseCursor(stream.lastId());
    expect([...cursor.keys()].sort()).toEqual([ep.endpoint_id, ep2.endpoint_id].sort());
    // Mallory's stream of the same workflow name follows her endpoints: none of Alice's tasks.
    const mallory = await newUser('mallory');
    const theirs = await Stream.open(mallory, `workflow_id=${wf}`);
    const mine = await registerEndpoint(mallory);
    expect(mine.endpoint_id).toBeTruthy();
    await alice.call('post', `/v3/endpoints/${ep.endpoint_id}/submit`, { tasks: { [fn]: [{ args: [0, 0] }] }, workflow_id: wf });
    // Alice's stream sees the new task; Mallory's, opened first, still nothing.
    await stream.until(() => stream.tasks().length >= 4, 'the new task');
    expect(theirs.events).toEqual([]);
    agent.close();
    await Promise.all([stream.close(), theirs.close()]);
  });

  it('bounds the hubs a stream follows: a workflow over 33 endpoints follows those holding its tasks; task ids over 33 answer 400', async () => {
    const { alice, fn, ep } = await setup();
    const others = [];
    for (let i = 0; i < 32; i++) others.push(await registerEndpoint(alice));
    const wf = `wf-${crypto.randomUUID()}`;
    const a = await submit(alice, ep.endpoint_id, fn, [{ args: [1, 1] }], { workflow_id: wf });
    const b = await submit(alice, others[5]!.endpoint_id, fn, [{ args: [2, 2] }], { workflow_id: wf });
    const stream = await Stream.open(alice, `workflow_id=${wf}`);
    await stream.untilTasks([...a.task_ids, ...b.task_ids], ['waiting-for-ep']);
    expect([...parseCursor(stream.lastId()).keys()].sort()).toEqual([ep.endpoint_id, others[5]!.endpoint_id].sort());
    await stream.close();
    const ids = [a.task_ids[0]!];
    for (const other of others) ids.push((await submit(alice, other.endpoint_id, fn)).task_ids[0]!);
    const res = await Stream.request(alice, ids.map((id) => `task_id=${id}`).join('&'));
    expect(res.status).toBe(400);
    expect(((await res.json()) as any)).toMatchObject({ code: 'VALIDATION_ERROR', details: { max_endpoints: 32 } });
  });

  it('follows task ids on two endpoints (repeatable task_id), only those', async () => {
    const { alice, fn, ep } = await setup();
    const ep2 = await registerEndpoint(alice);
    const a = await submit(alice, ep.endpoint_id, fn, [{ args: [1, 1] }, { args: [9, 9] }]);
    const b = await submit(alice, ep2.endpoint_id, fn, [{ args: [2, 2] }]);
    const watched = [a.task_ids[0]!, b.task_ids[0]!];
    const stream = await Stream.open(alice, watched.map((id) => `task_id=${id}`).join('&'));
    await stream.untilTasks(watched, ['waiting-for-ep']);
    await alice.call('delete', `/v2/tasks/${a.task_ids[1]}`);
    await alice.call('delete', `/v2/tasks/${a.task_ids[0]}`);
    await stream.untilTasks([a.task_ids[0]!], ['cancelled']);
    expect(stream.tasks().map((t) => t.task_id)).not.toContain(a.task_ids[1]);
    const mallory = await newUser('mallory');
    expect((await Stream.request(mallory, watched.map((id) => `task_id=${id}`).join('&'))).status).toBe(404);
    await stream.close();
  });
});

describe('GET /v3/events: the stream itself', () => {
  it('holds nothing in the hub: a fresh hub instance (as after hibernation) tells the open stream of its writes', async () => {
    const { alice, fn, ep } = await setup();
    const { task_ids, task_group_id } = await submit(alice, ep.endpoint_id, fn, [{ args: [1, 1] }, { args: [2, 2] }]);
    const stream = await Stream.open(alice, `task_group_id=${task_group_id}`);
    await stream.untilTasks(task_ids, ['waiting-for-ep']);
    const ns = (env as unknown as GatewayEnv).ENDPOINT_HUB;
    await runInDurableObject(ns.get(ns.idFromName(ep.endpoint_id)), async (_instance, state) => {
      // Only storage and the hibernatable sockets carry over into a woken instance.
      const woken = new EndpointHub(state, env as unknown as GatewayEnv);
      expect((await woken.cancel(alice.sub, task_ids[1]!)).ok).toBe(true);
    });
    await stream.untilTasks([task_ids[1]!], ['cancelled']);
    expect(stream.tasks().filter((t) => t.status === 'cancelled')).toHaveLength(1);
    await stream.close();
  });

  it('writes a keepalive comment while nothing happens', async () => {
    const { alice, fn, ep } = await setup();
    const { task_group_id } = await submit(alice, ep.endpoint_id, fn);
    const stream = await Stream.open(alice, `task_group_id=${task_group_id}`);
    // EVENTS_KEEPALIVE_S is 1 in these tests (15 by default).
    await stream.until(() => stream.comments >= 1, 'a keepalive', 5000);
    await stream.close();
  });

  it('answers 400 VALIDATION_ERROR for no filter, two filters, too many ids, and a garbled or foreign Last-Event-ID', async () => {
    const { alice, fn, ep } = await setup();
    const { task_ids, task_group_id } = await submit(alice, ep.endpoint_id, fn);
    const other = await registerEndpoint(alice);
    const tooMany = Array.from({ length: 1001 }, (_, i) => `task_id=${ep.endpoint_id}.${String(i).padStart(16, '0')}`).join('&');
    const cases: Array<[string, string | undefined]> = [
      ['', undefined],
      [`task_group_id=${task_group_id}&endpoint_id=${ep.endpoint_id}`, undefined],
      [`task_id=nope`, undefined],
      [tooMany, undefined],
      [`task_group_id=${task_group_id}`, 'garbage'],
      [`task_group_id=${task_group_id}`, `1:${other.endpoint_id}.5`],
      [`task_group_id=${task_group_id}`, `1:${ep.endpoint_id}.999999999`],
      [`task_group_id=${task_group_id}&last_event_id=zzz`, undefined],
    ];
    for (const [query, last] of cases) {
      const res = await Stream.request(alice, query, last);
      expect(res.status, `${query.slice(0, 80)} ${last}`).toBe(400);
      expect(((await res.json()) as any).code).toBe('VALIDATION_ERROR');
    }
    expect(task_ids).toHaveLength(1);
  });

  it('accepts the cursor as ?last_event_id for clients that cannot set headers', async () => {
    const { alice, fn, ep } = await setup();
    const { task_ids, task_group_id } = await submit(alice, ep.endpoint_id, fn, [{ args: [1, 1] }, { args: [2, 2] }]);
    const first = await Stream.open(alice, `task_group_id=${task_group_id}`);
    await first.untilTasks(task_ids, ['waiting-for-ep']);
    const last = first.lastId();
    await first.close();
    await alice.call('delete', `/v2/tasks/${task_ids[1]}`);
    const second = await Stream.open(alice, `task_group_id=${task_group_id}&last_event_id=${encodeURIComponent(last)}`);
    await second.untilTasks([task_ids[1]!], ['cancelled']);
    expect(second.tasks().map((t) => t.task_id)).toEqual([task_ids[1]]);
    await second.close();
  });
});
