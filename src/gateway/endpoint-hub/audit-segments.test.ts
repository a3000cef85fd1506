// The audit log's own events (not the tasks', which come from lineage) are stored as lineage is:
// every 100 as one segment in the object store. One file, in the default project only: the task
// store does not matter here.

import { env } from 'cloudflare:workers';
import { describe, expect, it } from 'vitest';
import { newUser, registerEndpoint, registerFunction } from '../../../test/helpers/gateway';

/** Polls `probe` until it holds (the hub writes a segment after its answer), or fails naming `what`. */
async function eventually(probe: () => Promise<boolean>, what: string, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await probe())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('audit log segments', () => {
  it('keeps its events in segments of 100 in the object store, read back in order with the ones still waiting', async () => {
    const owner = await newUser('owner');
    const fn = await registerFunction(owner);
    const ep = await registerEndpoint(owner);
    for (let i = 0; i < 105; i++) {
      const res = await owner.call('post', `/v3/endpoints/${ep.endpoint_id}/shares`, { user: `guest-${i}`, functions: [fn] });
      expect(res.status, res.text).toBe(200);
    }
    await eventually(async () => (await (env as unknown as { OBJECTS: R2Bucket }).OBJECTS.list({ prefix: `audit/${ep.endpoint_id}/` })).objects.length === 1, 'the first audit segment');
    const users: string[] = [];
    let cursor = '';
    for (let pages = 0; pages < 10; pages++) {
      const page = await owner.call('get', `/v3/endpoints/${ep.endpoint_id}/audit?limit=40${cursor}`);
      users.push(...page.body.events.map((e: { detail: { user: string } }) => e.detail.user));
      cursor = `&cursor=${page.body.next_cursor}`;
      if (!page.body.more) break;
    }
    expect(users).toEqual(Array.from({ length: 105 }, (_, i) => `guest-${i}`));
  });
});
