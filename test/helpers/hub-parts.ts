// Drives an EndpointHub's parts (src/gateway/endpoint-hub/hub-parts.ts) directly, inside a real
// Durable Object (its SQLite storage, the R2 binding): a registered endpoint, and tasks submitted
// through the hub's own intake, with no agent connected unless a test connects one.

import { env } from 'cloudflare:workers';
import { runInDurableObject } from 'cloudflare:test';
import type { GatewayEnv } from '../../src/gateway/env';
import { hubParts, type HubParts } from '../../src/gateway/endpoint-hub/hub-parts';

export const OWNER = 'parts-owner';

export interface Hub extends HubParts {
  endpointId: string;
  functionUuid: string;
  ctx: DurableObjectState;
  /** Submits tasks (one a payload) of the endpoint's one function; their ids in order. */
  submit(payloads: unknown[], extra?: { workflow_id?: string }): Promise<string[]>;
}

/** Runs `work` inside a fresh endpoint's Durable Object, over parts built as the hub builds them. */
export function withHub<T>(work: (hub: Hub) => Promise<T>, envOverride: Partial<GatewayEnv> = {}): Promise<T> {
  const ns = (env as unknown as GatewayEnv).ENDPOINT_HUB;
  const endpointId = crypto.randomUUID();
  return runInDurableObject(ns.get(ns.idFromName(endpointId)), async (_instance, ctx) => {
    const parts = hubParts(ctx, () => ({ ...(env as unknown as GatewayEnv), ...envOverride }));
    parts.state.createSchema(() => parts.lineage.createSchema());
    parts.state.register(OWNER, endpointId, { endpoint_name: 'parts' });
    const functionUuid = crypto.randomUUID();
    const submit = async (payloads: unknown[], extra: { workflow_id?: string } = {}) => {
      const reply = await parts.intake.submit(OWNER, {
        request_id: crypto.randomUUID(),
        ...extra,
        functions: [{ function_uuid: functionUuid, runtime: 'js', code: 'export default (a, b) => a + b' }],
        tasks: payloads.map((p) => ({ function_uuid: functionUuid, payload_json: JSON.stringify(p) })),
      });
      if (!reply.ok) throw new Error(`submit refused: ${reply.error.code}`);
      return reply.value.task_ids;
    };
    return work({ ...parts, endpointId, functionUuid, ctx, submit });
  });
}
