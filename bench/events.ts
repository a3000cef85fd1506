// Event stream figures (issue 17): how soon a client learns a task ended, by SSE and by a `?wait=`
// long-poll, from the same tasks; and a batch's throughput with a subscriber streaming all of it.

import type { Client } from '../src/sdk/client';
import type { FerryEvent } from '../src/sdk/event-stream';

const ENDED = new Set(['success', 'failed', 'cancelled']);

function quantile(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

/**
 * `n` sequential no-op tasks, each watched two ways at once: an event stream of the endpoint (open
 * throughout) and a `GET /v2/tasks/{id}?wait=10` sent right after the submit. For each, the time
 * from the result reaching the hub (`completion_t`: the hub's clock when the results frame arrived,
 * the same host's clock) to the answer reaching the client.
 */
export async function notificationLatency(client: Client, endpointId: string, fn: string, n: number): Promise<{ sse: { p50: number; p99: number; mean: number }; wait: { p50: number; p99: number; mean: number } }> {
  const abort = new AbortController();
  const waiting = new Map<string, (ms: number) => void>();
  const early = new Map<string, number>();
  let ready = () => {};
  const opened = new Promise<void>((resolve) => (ready = resolve));
  const reading = (async () => {
    for await (const e of client.events({ endpoint_id: endpointId }, { signal: abort.signal }) as AsyncIterable<FerryEvent>) {
      if (e.type === 'endpoint') ready();
      if (e.type !== 'task' || !ENDED.has(e.task.status)) continue;
      const ms = Date.now() - e.task.completion_t! * 1000;
      const done = waiting.get(e.task.task_id);
      if (done) done(ms);
      else early.set(e.task.task_id, ms);
    }
  })();
  await opened; // the stream's first event is the endpoint's status
  const sse: number[] = [];
  const wait: number[] = [];
  try {
    for (let i = 0; i < n; i++) {
      const id = await client.submit(endpointId, fn, []);
      const streamed = new Promise<number>((resolve) => {
        const ms = early.get(id);
        if (ms !== undefined) return resolve(ms);
        waiting.set(id, resolve);
      });
      const doc = await client.getTask(id, { wait: 10 });
      const polled = Date.now();
      if (doc.status !== 'success') throw new Error(`latency task ${id} ended ${doc.status}`);
      wait.push(polled - doc.completion_t! * 1000);
      sse.push(await streamed);
      waiting.delete(id);
      early.delete(id);
    }
  } finally {
    abort.abort();
    await reading.catch(() => undefined);
  }
  sse.sort((a, b) => a - b);
  wait.sort((a, b) => a - b);
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  return { sse: { p50: quantile(sse, 0.5), p99: quantile(sse, 0.99), mean: mean(sse) }, wait: { p50: quantile(wait, 0.5), p99: quantile(wait, 0.99), mean: mean(wait) } };
}

/**
 * A subscriber to a workflow's stream, counting the terminal events it reads (each task once),
 * until `expected` tasks ended. Opened before the batch is submitted.
 */
export async function workflowSubscriber(client: Client, workflowId: string, expected: number): Promise<{ done: Promise<number>; stop(): void }> {
  const abort = new AbortController();
  const ended = new Set<string>();
  let events = 0;
  const done = (async () => {
    for await (const e of client.events({ workflow_id: workflowId }, { signal: abort.signal })) {
      events++;
      if (e.type !== 'task' || !ENDED.has(e.task.status)) continue;
      if (ended.has(e.task.task_id)) throw new Error(`task ${e.task.task_id} ended twice on the stream`);
      ended.add(e.task.task_id);
      if (ended.size === expected) break;
    }
    return events;
  })();
  return { done, stop: () => abort.abort() };
}
