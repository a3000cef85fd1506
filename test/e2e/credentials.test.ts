// Endpoint credentials end to end: the agent exchanges its secret for access tokens that live 5 s
// and renews them in the background while a 25-second batch runs (five lifetimes), without dropping the socket or a
// task; revoking the secret then stops the agent within a heartbeat, saying why. An agent that
// speaks another protocol version is refused, and both logs name both versions.

import { join } from 'node:path';
import { afterAll, beforeAll, expect, it, vi } from 'vitest';
import { PROJECT_ROOT } from '../../src/cli/gateway-process';
import { PROTOCOL_VERSION } from '../../src/protocol/wire';
import { startStack, type Stack, waitForWorkers } from '../helpers/stack';

let stack: Stack;

beforeAll(async () => {
  stack = await startStack({ vars: { ENDPOINT_ACCESS_TTL_S: '5' } });
}, 120_000);

afterAll(async () => {
  await stack?.stop();
});

it('renews 5-s access tokens through a 25-s batch (five lifetimes), then stops at once when the secret is revoked', async () => {
  const alice = await stack.client('alice');
  const endpoint = await stack.createEndpoint('short-lived-tokens', 'alice');
  const agent = endpoint.start();
  await waitForWorkers(alice, endpoint.endpointId, 2);

  // 64 tasks of 800 ms on 2 workers: ≥ 25 s of work, five lifetimes of a token (the test was 300
  // tasks, 2 minutes, until CI time neared its cap; five renewals prove as much as thirty).
  const fn = await alice.registerFunction('(x) => { const end = Date.now() + 800; while (Date.now() < end); return x + 1 }');
  const payloads = Array.from({ length: 64 }, (_, i) => [i]);
  const started = Date.now();
  const { task_ids } = await alice.submitBatch(endpoint.endpointId, fn, payloads);
  const docs = await alice.waitAll(task_ids, { timeout: 120 });
  const elapsedS = (Date.now() - started) / 1000;
  expect(docs.map((d) => d.status)).toEqual(Array(64).fill('success'));
  expect(docs.map((d) => d.result)).toEqual(payloads.map(([i]) => (i as number) + 1));
  expect(elapsedS).toBeGreaterThanOrEqual(25);

  const out = agent.output();
  const renewals = out.match(/access token renewed/g)?.length ?? 0;
  const connects = out.match(/connected to gateway/g)?.length ?? 0;
  console.log(`batch of 64 × 800 ms took ${elapsedS.toFixed(1)} s; ${renewals} access-token exchanges, ${connects} socket connect(s)`);
  // One exchange at start, then one about every 3.3 s.
  expect(renewals).toBeGreaterThanOrEqual(1 + Math.floor(elapsedS / 5));
  // The socket stayed up across every renewal.
  expect(connects).toBe(1);
  expect(agent.child.exitCode).toBeNull();

  // Revoke: the agent is refused and exits non-zero within a heartbeat (1 s) plus slack.
  const exited = new Promise<number | null>((resolve) => agent.child.once('exit', (code) => resolve(code)));
  const revokedAt = Date.now();
  const res = await fetch(`${stack.gateway.url}/v3/endpoints/${endpoint.endpointId}/revoke`, {
    method: 'POST',
    headers: { authorization: `Bearer ${await stack.tokenFor('alice')}` },
  });
  expect(res.status, await res.clone().text()).toBe(200);
  const code = await Promise.race([exited, new Promise<'timeout'>((resolve) => setTimeout(() => resolve('timeout'), 6_000))]);
  expect(code, agent.output().slice(-3000)).not.toBe('timeout');
  expect(code).not.toBe(0);
  console.log(`agent exited ${String(code)} ${Date.now() - revokedAt} ms after the revoke`);
  expect(agent.output()).toMatch(/TOKEN_REVOKED/);
  expect(agent.output()).toMatch(/secret was revoked/);
}, 150_000);

it('refuses an agent of another protocol version, naming both versions in both logs', async () => {
  const endpoint = await stack.createEndpoint('old-agent', 'alice');
  const other = PROTOCOL_VERSION + 41;
  // A real agent process whose src/protocol/wire.ts says another version (a module loader hook).
  const hook = join(PROJECT_ROOT, 'test', 'helpers', 'hooks', 'protocol-version.mjs');
  const agent = endpoint.start({ env: { NODE_OPTIONS: `--import=${hook}`, FERRY_TEST_PROTOCOL_VERSION: String(other) } });
  const exited = new Promise<number | null>((resolve) => agent.child.once('exit', (code) => resolve(code)));
  const code = await Promise.race([exited, new Promise<'timeout'>((resolve) => setTimeout(() => resolve('timeout'), 30_000))]);
  expect(code, agent.output().slice(-3000)).not.toBe('timeout');
  expect(code).not.toBe(0);
  const both = new RegExp(`protocol version ${other}.*version ${PROTOCOL_VERSION}`);
  const agentLine = agent.output().split('\n').find((l) => l.includes('UNSUPPORTED_PROTOCOL'));
  expect(agentLine, agent.output().slice(-3000)).toMatch(both);
  const gatewayLine = await vi.waitFor(() => {
    const line = stack.gatewayOutput().split('\n').find((l) => l.includes('agent refused') && l.includes(endpoint.endpointId));
    expect(line, 'the gateway to log the refusal').toBeDefined();
    return line!;
  }, { timeout: 10_000, interval: 100 });
  expect(gatewayLine).toMatch(/UNSUPPORTED_PROTOCOL/);
  expect(gatewayLine).toMatch(both);
  console.log(`agent: ${agentLine!.trim().slice(0, 300)}\ngateway: ${gatewayLine.trim().slice(0, 300)}`);
  // Nothing of the endpoint changed: it is offline, its tasks would wait for a matching agent.
  const alice = await stack.client('alice');
  expect((await alice.endpointStatus(endpoint.endpointId)).status).toBe('offline');
}, 60_000);
