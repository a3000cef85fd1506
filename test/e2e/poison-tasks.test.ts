// Tasks that would take processes down: a result nested too deep for the decoders fails its own
// task, and a task whose execution kills the agent fails FERRY_WORKER_LOST after
// max_retries_on_system_failure restarts instead of crash-looping the agent on its journal.

import { afterAll, beforeAll, expect, it } from 'vitest';
import { MAX_JSON_DEPTH } from '../../src/protocol/json-depth';
import type { Client } from '../../src/sdk/client';
import { startStack, type AgentProcess, type Stack, waitForWorkers } from '../helpers/stack';

let stack: Stack;
let alice: Client;

beforeAll(async () => {
  stack = await startStack();
  alice = await stack.client('alice');
}, 120_000);
afterAll(async () => {
  await stack?.stop();
});

function exited(agent: AgentProcess): Promise<number | null> {
  if (agent.child.exitCode !== null) return Promise.resolve(agent.child.exitCode);
  return new Promise((resolve) => agent.child.once('exit', (code) => resolve(code)));
}

it('fails a task whose result nests 3,000 levels deep with FERRY_RESULT_NOT_SERIALIZABLE, and the endpoint stays up', async () => {
  const endpoint = await stack.createEndpoint('deep-result', 'alice');
  const agent = endpoint.start();
  await waitForWorkers(alice, endpoint.endpointId, 2);
  const deep = await alice.registerFunction('() => { let a = []; for (let i = 0; i < 3000; i++) a = [a]; return a }', { name: 'deep' });
  const [doc] = await alice.waitAll([await alice.submit(endpoint.endpointId, deep, [])], { timeout: 60 });
  expect(doc!.status).toBe('failed');
  expect(doc!.exception).toMatchObject({ code: 'FERRY_RESULT_NOT_SERIALIZABLE', message: expect.stringContaining(`limit of ${MAX_JSON_DEPTH} levels`) });
  // Later tasks run on the same agent and workers.
  const square = await alice.registerFunction('(x) => x * x', { name: 'square' });
  const docs = await alice.waitAll(await Promise.all([1, 2, 3].map((x) => alice.submit(endpoint.endpointId, square, [x]))), { timeout: 60 });
  expect(docs.map((d) => [d.status, d.result])).toEqual([['success', 1], ['success', 4], ['success', 9]]);
  expect(agent.child.exitCode).toBeNull();
}, 120_000);

it('fails a task that kills the agent FERRY_WORKER_LOST after max_retries_on_system_failure restarts; the agent stays up and other tasks succeed', async () => {
  const endpoint = await stack.createEndpoint('agent-killer', 'alice', { max_retries_on_system_failure: 2 });
  const poison = await alice.registerFunction('(x) => x', { name: 'poison' });
  const square = await alice.registerFunction('(x) => x * x', { name: 'square' });
  const env = { FERRY_TEST_AGENT_EXIT_ON_FUNCTION: poison };
  const id = await alice.submit(endpoint.endpointId, poison, [1]);
  // Each start dispatches the task from the gateway or from the journal, and dies of it: three times.
  for (let crash = 1; crash <= 3; crash++) {
    const agent = endpoint.start({ env });
    expect(await exited(agent)).toBe(86);
    expect(agent.output()).toContain('test fault: exiting on the dispatch of a task');
  }
  // The fourth start finds the task's third lost execution in its journal and does not run it again.
  const agent = endpoint.start({ env });
  const [doc] = await alice.waitAll([id], { timeout: 60 });
  expect(doc!.status).toBe('failed');
  expect(doc!.exception).toMatchObject({ code: 'FERRY_WORKER_LOST' });
  expect(doc!.exception!.message).toBe("the task's execution was lost 3 times (last: the agent stopped while the execution was in flight); max_retries_on_system_failure is 2");
  await waitForWorkers(alice, endpoint.endpointId, 2);
  const docs = await alice.waitAll(await Promise.all([2, 3].map((x) => alice.submit(endpoint.endpointId, square, [x]))), { timeout: 60 });
  expect(docs.map((d) => [d.status, d.result])).toEqual([['success', 4], ['success', 9]]);
  expect(agent.child.exitCode).toBeNull();
  expect(agent.output()).not.toContain('test fault');
}, 240_000);
