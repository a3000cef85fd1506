// The agent socket: handshake, credits, delivery, acks, results, reconcile, cancel and waiting.

import { env } from 'cloudflare:workers';
import { describe, expect, it } from 'vitest';
import { LIMITS } from '../../protocol/api';
import { MAX_FRAME_DEPTH, PROTOCOL_VERSION } from '../../protocol/wire';
import { FakeAgent, mintEndpointToken, newUser, registerEndpoint, registerFunction, submit, success, taskStatus, type User } from '../../../test/helpers/gateway';

async function setup(): Promise<{ user: User; fn: string; ep: { endpoint_id: string; token: string } }> {
  const user = await newUser();
  const fn = await registerFunction(user);
  const ep = await registerEndpoint(user);
  return { user, fn, ep };
}

describe('handshake', () => {
  it('welcomes an agent that speaks the protocol', async () => {
    const { ep } = await setup();
    const agent = await FakeAgent.connect(ep.endpoint_id, ep.token);
    agent.send({ type: 'hello', protocol_version: PROTOCOL_VERSION, agent_version: 'fake', held_frames: 0 });
    const welcome = await agent.next('welcome');
    expect(welcome).toEqual({ type: 'welcome', protocol_version: PROTOCOL_VERSION, endpoint_id: ep.endpoint_id, heartbeat_s: 5 });
    agent.close();
  });

  it('refuses a protocol mismatch, naming both versions, and closes with 4000', async () => {
    const { ep } = await setup();
    const agent = await FakeAgent.connect(ep.endpoint_id, ep.token);
    agent.send({ type: 'hello', protocol_version: 99, agent_version: 'future', held_frames: 0 });
    const refuse = await agent.next('refuse');
    expect(refuse.code).toBe('UNSUPPORTED_PROTOCOL');
    expect(refuse.message).toContain('99');
    expect(refuse.message).toContain(String(PROTOCOL_VERSION));
    expect(await agent.closed()).toBe(4000);
  });

  it('refuses a malformed frame and closes with 1008', async () => {
    const { ep } = await setup();
    const agent = await FakeAgent.ready(ep.endpoint_id, ep.token);
    agent.send({ type: 'credit', n: -1 });
    const refuse = await agent.next('refuse');
    expect(refuse.code).toBe('VALIDATION_ERROR');
    expect(refuse.message).toContain('n');
    expect(await agent.closed()).toBe(1008);
  });

  it('refuses a result nested past the frame depth bound before decoding it, closes with 1008, and serves the next agent', async () => {
    const { user, ep } = await setup();
    const agent = await FakeAgent.ready(ep.endpoint_id, ep.token);
    const fn = await registerFunction(user);
    agent.send({ type: 'credit', n: 1 });
    const id = (await submit(user, ep.endpoint_id, fn)).task_ids[0]!;
    await agent.tasks(1);
    // 100,000 levels: far past MAX_FRAME_DEPTH, and past what a recursive decoder survives.
    const deep = `${'['.repeat(100_000)}${']'.repeat(100_000)}`;
    agent.sendText(`{"type":"results","results":[{"task_id":"${id}","status":"success","result":${deep}}]}`);
    const refuse = await agent.next('refuse');
    expect(refuse).toMatchObject({ code: 'VALIDATION_ERROR', message: `bad frame: the frame nests deeper than ${MAX_FRAME_DEPTH} levels` });
    expect(await agent.closed()).toBe(1008);
    // Nothing was stored from it; a new connection gets the task again and can finish it.
    expect((await taskStatus(user, id)).status).not.toBe('success');
    const next = await FakeAgent.ready(ep.endpoint_id, ep.token);
    next.send({ type: 'credit', n: 1 });
    await next.tasks(1);
    next.send({ type: 'results', results: [success(id, 7)] });
    await next.next('results_ack');
    expect((await taskStatus(user, id)).result).toBe(7);
  });

  it('refuses a frame before hello', async () => {
    const { ep } = await setup();
    const agent = await FakeAgent.connect(ep.endpoint_id, ep.token);
    agent.send({ type: 'credit', n: 3 });
    expect((await agent.next('refuse')).message).toContain('expected hello');
    expect(await agent.closed()).toBe(1008);
  });

  it('refuses user tokens, other endpoints\' tokens and requests without Upgrade', async () => {
    const { user, ep } = await setup();
    const userToken = await FakeAgent.open(ep.endpoint_id, user.token);
    expect(userToken.status).toBe(401);
    expect(((await userToken.json()) as any).code).toBe('UNAUTHORIZED');
    const other = await registerEndpoint(user);
    const wrongEndpoint = await FakeAgent.open(ep.endpoint_id, other.token);
    expect(wrongEndpoint.status).toBe(404);
    const noToken = await FakeAgent.open(ep.endpoint_id, '');
    expect(noToken.status).toBe(401);
  });

  it('a new connection replaces the older one', async () => {
    const { ep } = await setup();
    const first = await FakeAgent.ready(ep.endpoint_id, ep.token);
    const second = await FakeAgent.ready(ep.endpoint_id, ep.token);
    expect(await first.closed()).toBe(4001);
    second.close();
  });

  it('reports online after a status frame, with the report', async () => {
    const { user, ep } = await setup();
    const before = await user.call('get', `/v2/endpoints/${ep.endpoint_id}/status`);
    expect(before.body).toEqual({ status: 'offline', details: { total_workers: 0, idle_workers: 0, pending_tasks: 0, outstanding_tasks: 0, managers: 0, blocks: 0, last_heartbeat: null } });
    const agent = await FakeAgent.ready(ep.endpoint_id, ep.token);
    const report = { total_workers: 4, idle_workers: 3, pending_tasks: 1, outstanding_tasks: 1, managers: 1, blocks: 1 };
    agent.send({ type: 'status', report });
    await agent.sync();
    const after = await user.call('get', `/v2/endpoints/${ep.endpoint_id}/status`);
    expect(after.body.status).toBe('online');
    expect(after.body.details).toMatchObject(report);
    expect(after.body.details.last_heartbeat).toBeGreaterThan(Date.now() / 1000 - 60);
    agent.close();
    await agent.closed();
  });
});

describe('frame order', () => {
  const report = (n: number) => ({ total_workers: n, idle_workers: 0, pending_tasks: 0, outstanding_tasks: 0, managers: 1, blocks: 1 });
  const reported = async (user: User, endpointId: string) => (await user.call('get', `/v2/endpoints/${endpointId}/status`)).body.details.total_workers;

  it('handles frames in the order the agent numbered them, whatever order they arrive in', async () => {
    const { user, ep } = await setup();
    const agent = await FakeAgent.ready(ep.endpoint_id, ep.token);
    // Frames 3 and 4 come before 2: they wait for it. A status report replaces the one before.
    agent.sendAs(3, { type: 'status', report: report(3) });
    agent.sendAs(4, { type: 'status', report: report(4) });
    agent.sendAs(2, { type: 'status', report: report(2) });
    await agent.sync();
    expect(await reported(user, ep.endpoint_id)).toBe(4);
    // Frames without a number are handled as they come.
    agent.sendAs(null, { type: 'status', report: report(7) });
    await agent.sync();
    expect(await reported(user, ep.endpoint_id)).toBe(7);
    agent.close();
  });

  it('keeps the order of frames sent back to back (the test runtime runs queued socket events out of order)', async () => {
    // Seen here before the hub ordered frames: 20 frames handled in reverse, and a reconnect's held
    // frame handled after the sync sent behind it.
    const { user, ep } = await setup();
    for (let round = 0; round < 10; round++) {
      const agent = await FakeAgent.ready(ep.endpoint_id, ep.token);
      for (let n = 1; n <= 20; n++) agent.send({ type: 'status', report: report(100 * round + n) });
      await agent.sync();
      expect(await reported(user, ep.endpoint_id)).toBe(100 * round + 20);
      agent.close();
      await agent.closed();
    }
  });

  it('refuses a frame numbered twice, with 1008', async () => {
    const { ep } = await setup();
    const agent = await FakeAgent.ready(ep.endpoint_id, ep.token);
    agent.sendAs(2, { type: 'credit', n: 1 });
    agent.sendAs(2, { type: 'credit', n: 1 });
    expect(await agent.closed()).toBe(1008);
    expect(agent.frames.find((f) => f.type === 'refuse')).toMatchObject({ code: 'VALIDATION_ERROR', message: 'bad frame: frame seq 2 came twice' });
  });
});

describe('delivery', () => {
  it('never sends more tasks than granted credits', async () => {
    const { user, fn, ep } = await setup();
    const { task_ids } = await submit(user, ep.endpoint_id, fn, [1, 2, 3, 4, 5].map((n) => ({ args: [n, n] })));
    const agent = await FakeAgent.ready(ep.endpoint_id, ep.token);
    agent.send({ type: 'credit', n: 3 });
    const tasks = await agent.tasks(3);
    expect(tasks.map((t) => t.task_id)).toEqual(task_ids.slice(0, 3));
    await agent.sync();
    expect(agent.has('tasks')).toBe(false);
    // The frame carries the code of the function its tasks name.
    agent.send({ type: 'credit', n: 10 });
    const frame = await agent.next('tasks');
    expect(frame.tasks.map((t: any) => t.task_id)).toEqual(task_ids.slice(3));
    expect(frame.functions).toEqual([{ function_uuid: fn, runtime: 'js', code: 'function add(a, b) { return a + b }' }]);
    expect(frame.tasks[0]).toEqual({ task_id: task_ids[3], function_uuid: fn, payload: { args: [4, 4] } });
    agent.close();
  });

  it('splits deliveries into frames under 1 MiB', async () => {
    const { user, fn, ep } = await setup();
    const big = 'z'.repeat(400_000);
    const { task_ids } = await submit(user, ep.endpoint_id, fn, [{ args: [big, 1] }, { args: [big, 2] }, { args: [big, 3] }, { args: [big, 4] }]);
    const agent = await FakeAgent.ready(ep.endpoint_id, ep.token);
    agent.send({ type: 'credit', n: 4 });
    const tasks = await agent.tasks(4);
    expect(tasks.map((t) => t.task_id)).toEqual(task_ids);
    expect(tasks.map((t) => t.payload.args[1])).toEqual([1, 2, 3, 4]);
    const taskFrames = agent.frameBytes.filter((size) => size > 100_000);
    expect(taskFrames.length).toBeGreaterThanOrEqual(2);
    for (const size of taskFrames) expect(size).toBeLessThan(LIMITS.maxFrameBytes);
    agent.close();
  });

  it('delivers a task submitted while no agent was connected once one connects', async () => {
    const { user, fn, ep } = await setup();
    const { task_ids } = await submit(user, ep.endpoint_id, fn, [{ args: [1, 2], kwargs: { c: 3 } }], { resource_specification: { cores: 2 } });
    expect((await taskStatus(user, task_ids[0]!)).status).toBe('waiting-for-ep');
    const agent = await FakeAgent.ready(ep.endpoint_id, ep.token);
    agent.send({ type: 'credit', n: 10 });
    const [task] = await agent.tasks(1);
    expect(task).toEqual({ task_id: task_ids[0], function_uuid: fn, payload: { args: [1, 2], kwargs: { c: 3 } }, resource_specification: { cores: 2 } });
    agent.close();
  });

  it('moves tasks through ack, running and results; keeps the first result and counts duplicates', async () => {
    const { user, fn, ep } = await setup();
    const agent = await FakeAgent.ready(ep.endpoint_id, ep.token);
    agent.send({ type: 'credit', n: 10 });
    const { task_ids } = await submit(user, ep.endpoint_id, fn);
    const id = task_ids[0]!;
    await agent.tasks(1);
    agent.send({ type: 'ack', task_ids: [id] });
    await agent.sync();
    expect((await taskStatus(user, id)).status).toBe('waiting-for-nodes');
    agent.send({ type: 'running', task_ids: [id], at: Date.now() / 1000 });
    await agent.sync();
    expect((await taskStatus(user, id)).status).toBe('running');
    agent.send({ type: 'results', results: [success(id, 3)] });
    expect((await agent.next('results_ack')).task_ids).toEqual([id]);
    const done = await taskStatus(user, id);
    expect(done).toMatchObject({ task_id: id, status: 'success', result: 3, stdout: 'out\n', details: { attempts: 1, endpoint_id: ep.endpoint_id, function_uuid: fn } });
    expect(Object.keys(done.details.task_transitions)).toEqual(['waiting-for-ep', 'waiting-for-nodes', 'running', 'success']);
    expect(done.completion_t).toBeGreaterThan(0);

    // A second execution's result: acknowledged, counted, not stored.
    agent.send({ type: 'results', results: [success(id, 'other', 2)] });
    expect((await agent.next('results_ack')).task_ids).toEqual([id]);
    const after = await taskStatus(user, id);
    expect(after.result).toBe(3);
    expect(after.details.attempts).toBe(2);
    agent.close();
  });

  it('takes acks and credits riding on a results frame: acked tasks wait for nodes, an ended one just ends, the credits deliver more', async () => {
    const { user, fn, ep } = await setup();
    const agent = await FakeAgent.ready(ep.endpoint_id, ep.token);
    agent.send({ type: 'credit', n: 2 });
    const { task_ids } = await submit(user, ep.endpoint_id, fn, [1, 2, 3].map((n) => ({ args: [n, n] })));
    const [first, second, third] = task_ids as [string, string, string];
    await agent.tasks(2);
    agent.send({ type: 'results', results: [success(first, 2)], acked: [first, second], credit: 1 });
    expect((await agent.next('results_ack')).task_ids).toEqual([first]);
    // The credit the result freed delivers the third task.
    expect((await agent.tasks(1)).map((t) => t.task_id)).toEqual([third]);
    const ended = await taskStatus(user, first);
    expect(ended.status).toBe('success');
    expect(Object.keys(ended.details.task_transitions)).toEqual(['waiting-for-ep', 'success']);
    expect((await taskStatus(user, second)).status).toBe('waiting-for-nodes');
    agent.close();
  });

  it('stores a failure with its exception', async () => {
    const { user, fn, ep } = await setup();
    const agent = await FakeAgent.ready(ep.endpoint_id, ep.token);
    agent.send({ type: 'credit', n: 1 });
    const { task_ids } = await submit(user, ep.endpoint_id, fn);
    await agent.tasks(1);
    const exception = { code: 'FERRY_FUNCTION_ERROR', name: 'TypeError', message: 'x is not a function' };
    agent.send({ type: 'results', results: [{ task_id: task_ids[0], status: 'failed', exception }] });
    await agent.next('results_ack');
    const doc = await taskStatus(user, task_ids[0]!);
    expect(doc.status).toBe('failed');
    expect(doc.exception).toEqual(exception);
    expect(doc.result).toBeUndefined();
    agent.close();
  });

  it('counts a result the agent had to send again (delivery 2) as 2 attempts, stored once', async () => {
    const { user, fn, ep } = await setup();
    const agent = await FakeAgent.ready(ep.endpoint_id, ep.token);
    agent.send({ type: 'credit', n: 1 });
    const { task_ids } = await submit(user, ep.endpoint_id, fn);
    await agent.tasks(1);
    // The first send died with the old gateway; this one is the second.
    agent.send({ type: 'results', results: [{ ...success(task_ids[0]!, 3), delivery: 2 }] });
    expect((await agent.next('results_ack')).task_ids).toEqual(task_ids);
    const doc = await taskStatus(user, task_ids[0]!);
    expect(doc).toMatchObject({ status: 'success', result: 3, details: { attempts: 2 } });
    agent.close();
  });

  it('acknowledges results for unknown tasks without storing anything', async () => {
    const { ep } = await setup();
    const agent = await FakeAgent.ready(ep.endpoint_id, ep.token);
    const ghost = `${ep.endpoint_id}.abcdefghijklmnopqrst`;
    agent.send({ type: 'results', results: [success(ghost, 1)] });
    expect((await agent.next('results_ack')).task_ids).toEqual([ghost]);
    agent.close();
  });

  it('serves a result over 64 KiB from R2 as if inline, in the task doc and in batch_status', async () => {
    const { user, fn, ep } = await setup();
    const agent = await FakeAgent.ready(ep.endpoint_id, ep.token);
    agent.send({ type: 'credit', n: 1 });
    const { task_ids } = await submit(user, ep.endpoint_id, fn);
    const id = task_ids[0]!;
    await agent.tasks(1);
    const big = 'x'.repeat(LIMITS.inlineResultBytes + 10);
    agent.send({ type: 'results', results: [success(id, { big })] });
    await agent.next('results_ack');
    const object = await env.OBJECTS.get(`results/${id}`);
    expect(object).not.toBeNull();
    expect(await object!.text()).toBe(JSON.stringify({ big }));
    expect((await taskStatus(user, id)).result).toEqual({ big });
    const batch = await user.call('post', '/v2/batch_status', { task_ids: [id] });
    expect(batch.body.results[id].result).toEqual({ big });
    agent.close();
  });
});

describe('results by reference', () => {
  it('keeps a result the endpoint stored as an object as its ResultRef, marked details.result_ref, in the task doc and batch_status', async () => {
    const { user, fn, ep } = await setup();
    const agent = await FakeAgent.ready(ep.endpoint_id, ep.token);
    agent.send({ type: 'credit', n: 2 });
    const { task_ids } = await submit(user, ep.endpoint_id, fn, [{ args: [1] }, { args: [2] }]);
    const [byRef, lookalike] = task_ids as [string, string];
    await agent.tasks(2);
    const ref = { $ref: 'c'.repeat(64), size: 50 * 1024 * 1024, sha256: 'd'.repeat(64), content_type: 'application/octet-stream' };
    // A function may also return a value shaped like a reference: that stays a plain result.
    agent.send({ type: 'results', results: [{ task_id: byRef, status: 'success', result_object: { ...ref } }, success(lookalike, { ...ref })] });
    await agent.next('results_ack');
    const doc = await taskStatus(user, byRef);
    expect(doc).toMatchObject({ status: 'success', result: ref, details: { result_ref: true } });
    const plain = await taskStatus(user, lookalike);
    expect(plain).toMatchObject({ status: 'success', result: ref });
    expect(plain.details).not.toHaveProperty('result_ref');
    const batch = await user.call('post', '/v2/batch_status', { task_ids });
    expect(batch.body.results[byRef]).toMatchObject({ result: ref, details: { result_ref: true } });
    expect(batch.body.results[lookalike].details).not.toHaveProperty('result_ref');
    agent.close();
  });

  it('refuses a result_object that is not a reference (a malformed frame closes the socket)', async () => {
    const { user, fn, ep } = await setup();
    const agent = await FakeAgent.ready(ep.endpoint_id, ep.token);
    agent.send({ type: 'credit', n: 1 });
    const { task_ids } = await submit(user, ep.endpoint_id, fn);
    await agent.tasks(1);
    agent.send({ type: 'results', results: [{ task_id: task_ids[0], status: 'success', result_object: { $ref: 'not-an-id', size: 1, sha256: 'd'.repeat(64), content_type: 'text/html' } }] });
    expect(await agent.closed()).toBe(1008);
    expect((await taskStatus(user, task_ids[0]!)).status).not.toBe('success');
  });
});

describe('reconcile', () => {
  it('re-queues a delivered task the agent does not hold, and resends it', async () => {
    const { user, fn, ep } = await setup();
    const { task_ids } = await submit(user, ep.endpoint_id, fn, [{ args: [1] }, { args: [2] }]);
    const first = await FakeAgent.ready(ep.endpoint_id, ep.token);
    first.send({ type: 'credit', n: 2 });
    await first.tasks(2);
    first.send({ type: 'ack', task_ids });
    await first.sync();
    expect((await taskStatus(user, task_ids[0]!)).status).toBe('waiting-for-nodes');
    first.close();
    await first.closed();

    // The agent comes back holding only the second task.
    const second = await FakeAgent.ready(ep.endpoint_id, ep.token, [[task_ids[1]!]]);
    await second.sync();
    expect((await taskStatus(user, task_ids[0]!)).status).toBe('waiting-for-ep');
    expect((await taskStatus(user, task_ids[1]!)).status).toBe('waiting-for-nodes');
    second.send({ type: 'credit', n: 5 });
    const resent = await second.tasks(1);
    expect(resent.map((t) => t.task_id)).toEqual([task_ids[0]]);
    await second.sync();
    expect(second.has('tasks')).toBe(false);
    second.close();
  });

  it('tells the agent to drop held tasks that are already final here', async () => {
    const { user, fn, ep } = await setup();
    const { task_ids } = await submit(user, ep.endpoint_id, fn);
    const id = task_ids[0]!;
    const first = await FakeAgent.ready(ep.endpoint_id, ep.token);
    first.send({ type: 'credit', n: 1 });
    await first.tasks(1);
    first.close();
    await first.closed();
    // Cancelled while the agent was away, after delivery.
    expect((await user.call('delete', `/v2/tasks/${id}`)).body.status).toBe('cancelled');
    const second = await FakeAgent.ready(ep.endpoint_id, ep.token, [[id]]);
    expect((await second.next('cancel')).task_ids).toEqual([id]);
    second.close();
  });

  it('keeps credits and handshake state when the socket stays open', async () => {
    const { user, fn, ep } = await setup();
    const agent = await FakeAgent.ready(ep.endpoint_id, ep.token, [[], []]);
    agent.send({ type: 'credit', n: 2 });
    await agent.sync();
    await submit(user, ep.endpoint_id, fn, [{ args: [1] }, { args: [2] }, { args: [3] }]);
    await agent.tasks(2);
    await agent.sync();
    expect(agent.has('tasks')).toBe(false);
    agent.close();
  });
});

describe('cancel and waiting', () => {
  it('cancels a queued task, which is never delivered', async () => {
    const { user, fn, ep } = await setup();
    const { task_ids } = await submit(user, ep.endpoint_id, fn, [{ args: [1] }, { args: [2] }]);
    const cancelled = await user.call('delete', `/v2/tasks/${task_ids[0]}`);
    expect(cancelled.status).toBe(200);
    expect(cancelled.body.status).toBe('cancelled');
    expect(cancelled.body.details.attempts).toBe(0);
    const again = await user.call('delete', `/v2/tasks/${task_ids[0]}`);
    expect(again.status).toBe(409);
    expect(again.body.code).toBe('TASK_ALREADY_FINISHED');
    const agent = await FakeAgent.ready(ep.endpoint_id, ep.token);
    agent.send({ type: 'credit', n: 10 });
    const delivered = await agent.tasks(1);
    expect(delivered.map((t) => t.task_id)).toEqual([task_ids[1]]);
    await agent.sync();
    expect(agent.has('tasks')).toBe(false);
    agent.close();
  });

  it('sends a cancel frame for a delivered task; a late result only counts an attempt', async () => {
    const { user, fn, ep } = await setup();
    const agent = await FakeAgent.ready(ep.endpoint_id, ep.token);
    agent.send({ type: 'credit', n: 1 });
    const { task_ids } = await submit(user, ep.endpoint_id, fn);
    const id = task_ids[0]!;
    await agent.tasks(1);
    expect((await user.call('delete', `/v2/tasks/${id}`)).body.status).toBe('cancelled');
    expect((await agent.next('cancel')).task_ids).toEqual([id]);
    agent.send({ type: 'results', results: [success(id, 3)] });
    await agent.next('results_ack');
    const doc = await taskStatus(user, id);
    expect(doc.status).toBe('cancelled');
    expect(doc.result).toBeUndefined();
    expect(doc.details.attempts).toBe(1);
    agent.close();
  });

  it('GET ?wait=5 answers as soon as the result arrives', async () => {
    const { user, fn, ep } = await setup();
    const agent = await FakeAgent.ready(ep.endpoint_id, ep.token);
    agent.send({ type: 'credit', n: 1 });
    const { task_ids } = await submit(user, ep.endpoint_id, fn);
    const id = task_ids[0]!;
    await agent.tasks(1);
    const started = Date.now();
    const waiting = user.call('get', `/v2/tasks/${id}?wait=5`);
    // Let the wait reach the hub before the result does.
    await agent.sync();
    agent.send({ type: 'results', results: [success(id, 42)] });
    const answer = await waiting;
    expect(answer.status).toBe(200);
    expect(answer.body.status).toBe('success');
    expect(answer.body.result).toBe(42);
    expect(Date.now() - started).toBeLessThan(2500);
    agent.close();
  });

  it('GET ?wait answers the current state when the time is up', async () => {
    const { user, fn, ep } = await setup();
    const { task_ids } = await submit(user, ep.endpoint_id, fn);
    const started = Date.now();
    const answer = await user.call('get', `/v2/tasks/${task_ids[0]}?wait=0.3`);
    expect(answer.status).toBe(200);
    expect(answer.body.status).toBe('waiting-for-ep');
    expect(Date.now() - started).toBeGreaterThanOrEqual(250);
  });

  it('POST /v3/run answers 200 with the result when the agent is quick, 202 otherwise', async () => {
    const { user, fn, ep } = await setup();
    const slow = await user.call('post', '/v3/run', { endpoint_id: ep.endpoint_id, function_uuid: fn, args: [1, 2], wait: 0 });
    expect(slow.status).toBe(202);
    expect(slow.body.status).toBe('waiting-for-ep');

    const agent = await FakeAgent.ready(ep.endpoint_id, ep.token);
    agent.send({ type: 'credit', n: 10 });
    // The queued task from the 202 run is delivered first.
    await agent.tasks(1);
    const running = user.call('post', '/v3/run', { endpoint_id: ep.endpoint_id, function_uuid: fn, args: [2, 3] });
    const [task] = await agent.tasks(1);
    expect(task.payload).toEqual({ args: [2, 3] });
    agent.send({ type: 'results', results: [success(task.task_id, 5)] });
    const done = await running;
    expect(done.status).toBe(200);
    expect(done.body).toMatchObject({ task_id: task.task_id, status: 'success', result: 5 });
    agent.close();
  });
});

describe('endpoint deletion', () => {
  it('closes the agent socket and refuses new ones', async () => {
    const { user, ep } = await setup();
    const agent = await FakeAgent.ready(ep.endpoint_id, ep.token);
    expect((await user.call('delete', `/v2/endpoints/${ep.endpoint_id}`)).status).toBe(200);
    expect(await agent.closed()).toBe(4004);
    expect((await FakeAgent.open(ep.endpoint_id, ep.token)).status).toBe(404);
  });

  it('an endpoint token minted for an endpoint that does not exist opens nothing', async () => {
    const user = await newUser();
    const id = crypto.randomUUID();
    expect((await FakeAgent.open(id, await mintEndpointToken(user.sub, id))).status).toBe(404);
  });
});
