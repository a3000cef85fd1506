// What the hub keeps across hibernation: a fresh instance over the same storage and sockets (what
// the runtime builds when a hibernated object wakes for a message) carries on the session.

import { env } from 'cloudflare:workers';
import { runInDurableObject } from 'cloudflare:test';
import { expect, it } from 'vitest';
import { EndpointHub } from './endpoint-hub';
import type { GatewayEnv } from '../env';
import { PROTOCOL_VERSION } from '../../protocol/wire';
import { FakeAgent, newUser, registerEndpoint, registerFunction, submit, taskStatus } from '../../../test/helpers/gateway';

function hubStub(endpointId: string) {
  const ns = (env as unknown as GatewayEnv).ENDPOINT_HUB;
  return ns.get(ns.idFromName(endpointId));
}

/** Delivers one frame to a brand-new hub instance, as after waking from hibernation. */
async function deliverAfterWake(endpointId: string, frame: unknown): Promise<void> {
  await runInDurableObject(hubStub(endpointId), async (_instance, state) => {
    const woken = new EndpointHub(state, env as unknown as GatewayEnv);
    const [socket] = state.getWebSockets();
    await woken.webSocketMessage(socket!, JSON.stringify(frame));
  });
}

it('credits survive: a woken hub sends exactly what was granted', async () => {
  const user = await newUser();
  const fn = await registerFunction(user);
  const ep = await registerEndpoint(user);
  const { task_ids } = await submit(user, ep.endpoint_id, fn, [{ args: [1] }, { args: [2] }, { args: [3] }]);
  const agent = await FakeAgent.ready(ep.endpoint_id, ep.token);
  agent.send({ type: 'credit', n: 1 });
  expect((await agent.tasks(1)).map((t) => t.task_id)).toEqual([task_ids[0]]);
  await deliverAfterWake(ep.endpoint_id, { type: 'credit', n: 1 });
  expect((await agent.tasks(1)).map((t) => t.task_id)).toEqual([task_ids[1]]);
  await agent.sync();
  expect(agent.has('tasks')).toBe(false);
  agent.close();
});

it('reconcile survives: held frames split across a wake-up still reconcile', async () => {
  const user = await newUser();
  const fn = await registerFunction(user);
  const ep = await registerEndpoint(user);
  const { task_ids } = await submit(user, ep.endpoint_id, fn, [{ args: [1] }, { args: [2] }, { args: [3] }]);
  const first = await FakeAgent.ready(ep.endpoint_id, ep.token);
  first.send({ type: 'credit', n: 3 });
  await first.tasks(3);
  first.send({ type: 'ack', task_ids });
  await first.sync();
  first.close();
  await first.closed();

  // Back, holding tasks 0 and 1 in two held frames; the second reaches a woken instance.
  const second = await FakeAgent.connect(ep.endpoint_id, ep.token);
  second.send({ type: 'hello', protocol_version: PROTOCOL_VERSION, agent_version: 'fake', held_frames: 2 });
  await second.next('welcome');
  second.send({ type: 'held', task_ids: [task_ids[0]!] });
  await second.sync();
  // Not reconciled yet: one held frame is still to come.
  expect((await taskStatus(user, task_ids[2]!)).status).toBe('waiting-for-nodes');
  await deliverAfterWake(ep.endpoint_id, { type: 'held', task_ids: [task_ids[1]!] });
  expect((await taskStatus(user, task_ids[2]!)).status).toBe('waiting-for-ep');
  expect((await taskStatus(user, task_ids[0]!)).status).toBe('waiting-for-nodes');
  expect((await taskStatus(user, task_ids[1]!)).status).toBe('waiting-for-nodes');
  second.close();
});
