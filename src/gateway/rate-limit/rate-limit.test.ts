// Per-user submission limits: 429 RATE_LIMITED with Retry-After, nothing stored for a refused
// request, other users unaffected. The app is called with limits added to the test's bindings
// (counters in the Registry object, or in Redis in the gateway-redis project).

import { env } from 'cloudflare:workers';
import { createExecutionContext, waitOnExecutionContext } from 'cloudflare:test';
import { describe, expect, it } from 'vitest';
import { createApp } from '../app';
import type { GatewayEnv } from '../env';
import { BASE, newUser, registerEndpoint, registerFunction, type User } from '../../../test/helpers/gateway';

const { hono } = createApp();

async function submitWith(limits: Record<string, string>, user: User, endpointId: string, fn: string, count: number, extra: Record<string, unknown> = {}) {
  const ctx = createExecutionContext();
  const res = await hono.fetch(
    new Request(`${BASE}/v3/endpoints/${endpointId}/submit`, {
      method: 'POST',
      headers: { authorization: `Bearer ${user.token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ tasks: { [fn]: Array.from({ length: count }, (_, i) => ({ args: [i, 1] })) }, ...extra }),
    }),
    { ...(env as unknown as GatewayEnv), ...limits },
    ctx,
  );
  await waitOnExecutionContext(ctx);
  return { status: res.status, headers: res.headers, body: (await res.json()) as any };
}

describe('rate limits on submissions', () => {
  it('answers 429 RATE_LIMITED with Retry-After past the requests limit, and stores nothing for it', async () => {
    const limits = { RATE_LIMIT_REQUESTS: '3', RATE_LIMIT_WINDOW_S: '100000' };
    const alice = await newUser('alice');
    const fn = await registerFunction(alice);
    const ep = await registerEndpoint(alice);
    const first = await submitWith(limits, alice, ep.endpoint_id, fn, 1);
    expect(first.status).toBe(200);
    expect(first.headers.get('x-ratelimit-remaining-requests')).toBe('2');
    const group = first.body.task_group_id;
    for (let i = 0; i < 2; i++) expect((await submitWith(limits, alice, ep.endpoint_id, fn, 1, { task_group_id: group })).status).toBe(200);
    const refused = await submitWith(limits, alice, ep.endpoint_id, fn, 1, { task_group_id: group });
    expect(refused.status).toBe(429);
    expect(refused.body).toMatchObject({ code: 'RATE_LIMITED', details: { max_requests: 3, window_s: 100000 } });
    const retryAfter = Number(refused.headers.get('retry-after'));
    expect(Number.isInteger(retryAfter) && retryAfter >= 1 && retryAfter <= 100000).toBe(true);
    expect(refused.body.details.retry_after_s).toBe(retryAfter);
    // The group holds the three admitted tasks only.
    const tasks = await alice.call('get', `/v2/taskgroup/${group}`);
    expect(tasks.body.tasks).toHaveLength(3);
    // Another user has a window of their own; unlimited settings refuse nobody.
    const bob = await newUser('bob');
    const bobFn = await registerFunction(bob);
    const bobEp = await registerEndpoint(bob);
    expect((await submitWith(limits, bob, bobEp.endpoint_id, bobFn, 1)).status).toBe(200);
    expect((await submitWith({}, alice, ep.endpoint_id, fn, 1)).status).toBe(200);
  });

  it('counts tasks per window, and refuses one request larger than the window with 413', async () => {
    const limits = { RATE_LIMIT_TASKS: '10', RATE_LIMIT_WINDOW_S: '100000' };
    const alice = await newUser('alice');
    const fn = await registerFunction(alice);
    const ep = await registerEndpoint(alice);
    const a = await submitWith(limits, alice, ep.endpoint_id, fn, 4);
    expect(a.status).toBe(200);
    expect((await submitWith(limits, alice, ep.endpoint_id, fn, 4)).headers.get('x-ratelimit-remaining-tasks')).toBe('2');
    const over = await submitWith(limits, alice, ep.endpoint_id, fn, 3);
    expect(over.status).toBe(429);
    expect(over.body).toMatchObject({ code: 'RATE_LIMITED', details: { max_tasks: 10 } });
    expect((await submitWith(limits, alice, ep.endpoint_id, fn, 2)).status).toBe(200);
    const huge = await submitWith(limits, alice, ep.endpoint_id, fn, 11);
    expect(huge.status).toBe(413);
    expect(huge.body).toMatchObject({ code: 'TOO_MANY_TASKS', details: { max_tasks: 10 } });
    const status = await alice.call('post', '/v2/batch_status', { task_ids: a.body.tasks[fn] });
    expect(Object.keys(status.body.results)).toHaveLength(4);
  });

  it('admits again once the window has passed', async () => {
    const limits = { RATE_LIMIT_REQUESTS: '1', RATE_LIMIT_WINDOW_S: '1' };
    const alice = await newUser('alice');
    const fn = await registerFunction(alice);
    const ep = await registerEndpoint(alice);
    let refusedOnce = false;
    const deadline = Date.now() + 10_000;
    let admitted = 0;
    while (admitted < 3) {
      const res = await submitWith(limits, alice, ep.endpoint_id, fn, 1);
      if (res.status === 429) {
        refusedOnce = true;
        expect(res.headers.get('retry-after')).toBe('1');
        await new Promise((r) => setTimeout(r, 200));
      } else {
        expect(res.status).toBe(200);
        admitted++;
      }
      if (Date.now() > deadline) throw new Error('no admission in a new window within 10 s');
    }
    expect(refusedOnce).toBe(true);
  });
});
