// What the bench scripts (run.ts, profile-gateway.ts) set up alike: a local endpoint with the
// shipped defaults, a warm `(x) => x + 1`, and the wait until a workflow's lineage can be queried.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { PROJECT_ROOT } from '../src/cli/gateway-process';
import type { Client } from '../src/sdk/client';
import { fetchResending } from '../src/sdk/resend';
import { eventually, waitForWorkers, type Stack } from '../test/helpers/stack';

/** A local endpoint with the shipped defaults (endpoint-config/local.yaml) and `overrides`, started, with workers up. */
export async function defaultEndpoint(stack: Stack, client: Client, name: string, overrides: Record<string, unknown> = {}): Promise<{ endpointId: string; agentPid: number }> {
  const defaults = parse(readFileSync(join(PROJECT_ROOT, 'endpoint-config', 'local.yaml'), 'utf8')) as Record<string, unknown>;
  const endpoint = await stack.createEndpoint(name, 'bench', { ...defaults, ...overrides });
  const agent = endpoint.start();
  await waitForWorkers(client, endpoint.endpointId, 1);
  return { endpointId: endpoint.endpointId, agentPid: agent.child.pid! };
}

/** Registers `(x) => x + 1` and runs it a few times outside any clock, so the workers' isolates are warm. */
export async function warmIncrement(client: Client, endpointId: string): Promise<string> {
  const inc = await client.registerFunction((x: number) => x + 1, { name: 'inc' });
  await client.waitAll((await client.submitBatch(endpointId, inc, [[0], [1], [2], [3]])).task_ids);
  return inc;
}

/** Waits until `n` lineage records of `workflow` can be queried (`format=count`), as user `bench`. */
export async function untilRecordsQueryable(stack: Stack, workflow: string, n: number): Promise<void> {
  const token = await stack.tokenFor('bench');
  const count = async () => {
    // A read: sent again if the gateway closed the kept-alive connection first (src/sdk/resend.ts).
    const res = await fetchResending(fetch, `${stack.gateway.url}/v3/provenance?workflow_id=${workflow}&format=count`, { method: 'GET', headers: { authorization: `Bearer ${token}` } });
    if (!res.ok) throw new Error(`provenance count: ${res.status} ${await res.text()}`);
    return ((await res.json()) as { count: number }).count;
  };
  await eventually(async () => (await count()) >= n, 'every record to be queryable', 120_000, 20);
}
