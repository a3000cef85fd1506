// A kept-alive connection the gateway closed while the client was too busy to notice. workerd closes
// a connection idle for 5 s (and strips any Keep-Alive header that would say so); a client whose
// event loop is held (a loaded machine, a notebook computing) still holds it as idle, sends its next
// request on it, and gets "other side closed" with no answer. This is what dropped one request in
// a 20,000-task batch under load (issue 14's CI run). The SDK sends such a request again when that
// stores nothing twice (src/sdk/resend.ts): a read, or a submission with its Idempotency-Key, which
// the gateway answers with the first request's tasks (src/gateway/endpoint-hub/idempotency.test.ts).
//
// Here the close is real: the test holds its own event loop (as the loaded machine did) until the
// kernel shows every connection this process holds to the gateway closed by the gateway.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RetryInfo } from '../../src/sdk/client';
import { connectionsToPort } from '../helpers/processes';
import { startStack, waitForWorkers } from '../helpers/stack';

type Stack = Awaited<ReturnType<typeof startStack>>;

describe('a kept-alive connection the gateway closed while the client was busy', () => {
  let stack: Stack;

  beforeAll(async () => {
    stack = await startStack();
  }, 120_000);

  afterAll(async () => {
    await stack?.stop();
  });

  /**
   * Makes one request (so this process holds a kept-alive connection to the gateway), then blocks this process (no event loop turn, so undici cannot read the close) until the gateway has
   * closed every connection this process holds to it. Atomics.wait sleeps without a turn of the loop.
   */
  async function holdUntilGatewayClosedOurConnections(): Promise<void> {
    // Read to the end: only then does undici put the connection back in its pool.
    expect(await (await fetch(`${stack.gateway.url}/healthz`)).json()).toEqual({ ok: true });
    const port = Number(new URL(stack.gateway.url).port);
    const nap = new Int32Array(new SharedArrayBuffer(4));
    const deadline = Date.now() + 30_000;
    for (;;) {
      const seen = connectionsToPort(port, process.pid);
      if (seen.open === 0 && seen.closedByServer > 0) return;
      if (Date.now() > deadline) throw new Error(`after 30 s, ${seen.open} connection(s) to the gateway still open and ${seen.closedByServer} closed by it (workerd closes idle ones after 5 s)`);
      Atomics.wait(nap, 0, 0, 50);
    }
  }

  it('loses a plain POST, and the SDK sends submissions and reads again without storing anything twice', async () => {
    const resends: RetryInfo[] = [];
    const client = await stack.clientWith('alice', { onRetry: (r) => resends.push(r) });
    const endpoint = await stack.createEndpoint('kept-alive', 'alice', { provider: { type: 'local', init_blocks: 1, max_blocks: 1, nodes_per_block: 1, max_workers_per_node: 1 } });
    const agent = endpoint.start();
    await waitForWorkers(client, endpoint.endpointId, 1);
    const inc = await client.registerFunction('(x) => x + 1', { name: 'inc' });
    const token = await stack.tokenFor('alice');

    // The cause, shown with a plain fetch: a POST on the closed connection gets no answer.
    await holdUntilGatewayClosedOurConnections();
    const plain = fetch(`${stack.gateway.url}/v3/endpoints/${endpoint.endpointId}/submit`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ tasks: { [inc]: [{ args: [0] }] } }),
    });
    await expect(plain).rejects.toMatchObject({ cause: { code: expect.stringMatching(/^(UND_ERR_SOCKET|ECONNRESET)$/) } });

    // A batch: sent again with its key; its three tasks stored and run once each.
    await holdUntilGatewayClosedOurConnections();
    const batch = await client.submitBatch(endpoint.endpointId, inc, [[1], [2], [3]]);
    expect(resends.filter((r) => r.status === 0 && r.path.endsWith('/submit'))).toHaveLength(1);
    const group = await fetch(`${stack.gateway.url}/v2/taskgroup/${batch.task_group_id}`, { headers: { authorization: `Bearer ${token}` } });
    expect(((await group.json()) as { tasks: Array<{ id: string }> }).tasks.map((t) => t.id)).toEqual(batch.task_ids);
    const docs = await client.waitAll(batch.task_ids, { timeout: 60 });
    expect(docs.map((d) => [d.status, d.result, d.details?.attempts])).toEqual([['success', 2, 1], ['success', 3, 1], ['success', 4, 1]]);

    // One task run and waited for: the same task, not a second one.
    await holdUntilGatewayClosedOurConnections();
    const run = await client.run(endpoint.endpointId, inc, [10], undefined, 30);
    expect([run.status, run.result]).toEqual(['success', 11]);
    expect(resends.filter((r) => r.status === 0 && r.path === '/v3/run')).toHaveLength(1);

    // A read.
    await holdUntilGatewayClosedOurConnections();
    expect(Object.keys(await client.batchStatus(batch.task_ids))).toHaveLength(3);
    expect(resends.filter((r) => r.status === 0 && r.path === '/v2/batch_status')).toHaveLength(1);
    await agent.kill();
  }, 180_000);
});
