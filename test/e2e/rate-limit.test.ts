// A batch of 10,000 tasks submitted through the SDK under a low per-user limit: the SDK waits out
// the 429s by itself (no error reaches the caller), the 429s did happen, no window accepted more
// than the limit, and every task was stored. Runs against both counter stores.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Client, RetryInfo } from '../../src/sdk/client';
import { startStack, type TestTaskStore } from '../helpers/stack';

type StartedStack = Awaited<ReturnType<typeof startStack>>;

const WINDOW_S = 2;
const MAX_TASKS = 2000;
const MAX_REQUESTS = 4;
const TOTAL = 10_000;

describe.each<TestTaskStore>(['sqlite', 'redis'])('rate limits with TASK_STORE=%s', (taskStore) => {
  let stack: StartedStack;

  beforeAll(async () => {
    stack = await startStack({
      taskStore,
      vars: { RATE_LIMIT_TASKS: String(MAX_TASKS), RATE_LIMIT_REQUESTS: String(MAX_REQUESTS), RATE_LIMIT_WINDOW_S: String(WINDOW_S) },
    });
  }, 120_000);

  afterAll(async () => {
    await stack?.stop();
  });

  it('submits 10,000 tasks without an error, retrying 429s, never over the limit in any window', async () => {
    const accepted: Array<{ window: number; tasks: number }> = [];
    const retries: RetryInfo[] = [];
    let rateLimited = 0;
    // Sees what the gateway answered: the window each accepted submit was counted in, and its 429s.
    const observingFetch: typeof fetch = async (input, init) => {
      const res = await fetch(input, init);
      if (String(input).endsWith('/submit')) {
        if (res.status === 429) {
          rateLimited++;
          expect(Number(res.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
        }
        if (res.status === 200) {
          const body = (await res.clone().json()) as { tasks: Record<string, string[]> };
          accepted.push({ window: Number(res.headers.get('x-ratelimit-window')), tasks: Object.values(body.tasks).flat().length });
        }
      }
      return res;
    };
    const alice: Client = await stack.clientWith('alice', { fetch: observingFetch, onRetry: (info) => retries.push(info) });
    const fn = await alice.registerFunction((x: number) => x, { name: 'identity' });
    const { endpoint_id } = await alice.registerEndpoint({ endpoint_name: `limited-${taskStore}` });

    const started = Date.now();
    // Asks for 5,000 per request: the gateway's 413 names its 2,000 per window and the SDK splits; the rest 500 per request.
    const big = await alice.submitBatch(endpoint_id, fn, Array.from({ length: 3000 }, (_, i) => [i]));
    const rest = await alice.submitBatch(endpoint_id, fn, Array.from({ length: TOTAL - 3000 }, (_, i) => [3000 + i]), { maxTasksPerRequest: 500, task_group_id: big.task_group_id });
    const elapsedS = (Date.now() - started) / 1000;
    const taskIds = [...big.task_ids, ...rest.task_ids];
    expect(new Set(taskIds).size).toBe(TOTAL);

    // 429s happened, and the SDK reported each retry it made.
    expect(rateLimited).toBeGreaterThan(0);
    expect(retries.length).toBe(rateLimited);
    expect(alice.rateLimitedRetries).toBe(rateLimited);
    expect(retries.every((r) => r.status === 429 && r.path.endsWith('/submit'))).toBe(true);

    // No window accepted more than the limits.
    const perWindow = new Map<number, { tasks: number; requests: number }>();
    for (const a of accepted) {
      const w = perWindow.get(a.window) ?? { tasks: 0, requests: 0 };
      w.tasks += a.tasks;
      w.requests += 1;
      perWindow.set(a.window, w);
    }
    expect(accepted.reduce((n, a) => n + a.tasks, 0)).toBe(TOTAL);
    for (const [window, w] of perWindow) {
      expect(w.tasks, `tasks in window ${window}`).toBeLessThanOrEqual(MAX_TASKS);
      expect(w.requests, `requests in window ${window}`).toBeLessThanOrEqual(MAX_REQUESTS);
    }
    // 10,000 tasks at 2,000 per window need five windows: four boundaries, the first window
    // possibly entered just before its end, so at least three whole windows of wall time.
    expect(perWindow.size).toBeGreaterThanOrEqual(TOTAL / MAX_TASKS);
    expect(elapsedS).toBeGreaterThanOrEqual(((TOTAL / MAX_TASKS) - 2) * WINDOW_S);

    // Every accepted task was stored (reads are not limited).
    const docs = await alice.batchStatus(taskIds);
    expect(Object.keys(docs)).toHaveLength(TOTAL);
    expect(Object.values(docs).every((d) => d.status === 'waiting-for-ep')).toBe(true);
  }, 180_000);
});
