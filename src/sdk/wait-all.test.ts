// Client.waitAll against a fake gateway whose tasks end in order, one more each time a long-poll
// waits on a task: a batch takes a few polls of batch_status, not one per result.

import { describe, expect, it } from 'vitest';
import { Client } from './client';

function fakeGateway(n: number) {
  const ids = Array.from({ length: n }, (_, i) => `ep.task${String(i).padStart(5, '0')}`);
  let ended = 0;
  let polls = 0;
  const doc = (id: string) => {
    const done = ids.indexOf(id) < ended;
    return { task_id: id, status: done ? 'success' : 'running', ...(done ? { result: ids.indexOf(id) } : {}), details: { attempts: done ? 1 : 0 } };
  };
  const fetch = (async (url: string, init?: RequestInit) => {
    const path = new URL(url).pathname;
    if (path === '/v2/batch_status') {
      polls++;
      const { task_ids } = JSON.parse(String(init!.body)) as { task_ids: string[] };
      return Response.json({ results: Object.fromEntries(task_ids.map((id) => [id, doc(id)])) });
    }
    // GET /v2/tasks/{id}?wait=1: answers once that task (and every one before it) has ended.
    const id = decodeURIComponent(path.split('/').pop()!);
    ended = Math.max(ended, ids.indexOf(id) + 1);
    return Response.json(doc(id));
  }) as typeof globalThis.fetch;
  return { ids, fetch, polls: () => polls };
}

describe('waitAll', () => {
  it('returns every doc in order after a few polls of batch_status', async () => {
    const gateway = fakeGateway(2000);
    const client = new Client({ url: 'http://gateway.test', token: 't', fetch: gateway.fetch });
    const docs = await client.waitAll(gateway.ids, { timeout: 10 });
    expect(docs.map((d) => d.result)).toEqual(gateway.ids.map((_, i) => i));
    // Each poll finds about a quarter of the open tasks ended: ~log(2000)/log(4/3) polls, not 2,000.
    expect(gateway.polls()).toBeLessThan(40);
  });
});
