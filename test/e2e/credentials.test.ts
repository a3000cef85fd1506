// Endpoint credentials end to end: the agent exchanges its secret for access tokens that live 5 s
// and renews them in the background while a batch of ≥ 30 s runs, without dropping the socket or a
// task; revoking the secret then stops the agent within a heartbeat, saying why.
// (The issue asks for a 2-minute batch; ≥ 30 s with 5-s tokens spans six lifetimes and keeps CI fast.)

import { afterAll, beforeAll, expect, it } from 'vitest';
import { eventually, startStack, type Stack } from '../helpers/stack';

let stack: Stack;

beforeAll(async () => {
  stack = await startStack({ vars: { ENDPOINT_ACCESS_TTL_S: '5' } });
}, 120_000);

afterAll(async () => {
  await stack?.stop();
});

it('renews 5-s access tokens through a ≥ 30-s batch, then stops at once when the secret is revoked', async () => {
  const alice = await stack.client('alice');
  const endpoint = await stack.createEndpoint('short-lived-tokens', 'alice');
  const agent = endpoint.start();
  await eventually(async () => (await alice.endpointStatus(endpoint.endpointId)).details.total_workers >= 2, 'workers to connect', 60_000);

  // 160 tasks of 400 ms on 2 workers: ≥ 32 s of work.
  const fn = await alice.registerFunction('(x) => { const end = Date.now() + 400; while (Date.now() < end); return x + 1 }');
  const payloads = Array.from({ length: 160 }, (_, i) => [i]);
  const started = Date.now();
  const { task_ids } = await alice.submitBatch(endpoint.endpointId, fn, payloads);
  const docs = await alice.waitAll(task_ids, { timeout: 150 });
  const elapsedS = (Date.now() - started) / 1000;
  expect(docs.map((d) => d.status)).toEqual(Array(160).fill('success'));
  expect(docs.map((d) => d.result)).toEqual(payloads.map(([i]) => (i as number) + 1));
  expect(elapsedS).toBeGreaterThanOrEqual(30);

  const out = agent.output();
  const renewals = out.match(/access token renewed/g)?.length ?? 0;
  const connects = out.match(/connected to gateway/g)?.length ?? 0;
  console.log(`batch of 160 × 400 ms took ${elapsedS.toFixed(1)} s; ${renewals} access-token exchanges, ${connects} socket connect(s)`);
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
}, 240_000);
