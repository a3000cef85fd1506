// Lineage across everything an owner has: each endpoint's hub (its ended tasks, hub-lineage.ts) and
// the owner's Registry (ingested Flowcept-style messages). Queries fan out over both; no second,
// eventually consistent copy. PROV-JSON documents are rendered with the functions and objects the
// records name, looked up in the Registry and the ObjectIndex. Used by routes/provenance.ts.

import type { Json } from '../../protocol/api';
import { FerryError } from '../../protocol/errors';
import { provDocument, type FunctionInfo, type LineageItem, type ObjectInfo, type ProvDocument, type TaskLineage } from '../../provenance/prov-document';
import { hubOf } from '../endpoint-hub/hub-api';
import type { GatewayEnv } from '../env';
import { objectIndexOf } from '../objects/object-index';
import { registryOf } from '../registry';
import { itemsOf, sha256Hex, withDigests } from './lineage-capture';
import type { LineageQuery } from './lineage-index';

/** Functions and objects looked up per PROV-JSON document (names, digests, ingest filters); more are named by id only. */
const MAX_LOOKUPS = 1_000;
const OBJECT_ID = /^[0-9a-f]{64}$/;

/** Every record source of the owner: each endpoint's hub (deleted endpoints too), and the registry (ingested messages). */
export async function countAll(env: GatewayEnv, owner: string, workflowId: string | null, campaignId: string | null): Promise<number> {
  const registry = registryOf(env, owner);
  const endpointIds = await registry.lineageEndpointIds();
  const counts = await Promise.all([...endpointIds.map((id) => hubOf(env, id).lineageCount(owner, workflowId, campaignId)), registry.lineageCount(owner, workflowId, campaignId)]);
  return counts.reduce((a, b) => a + b, 0);
}

export async function queryAll(env: GatewayEnv, owner: string, query: LineageQuery): Promise<TaskLineage[]> {
  const registry = registryOf(env, owner);
  const endpointIds = await registry.lineageEndpointIds();
  const parts = await Promise.all([
    ...endpointIds.map((id) => hubOf(env, id).lineage(owner, query) as Promise<TaskLineage[]>),
    registry.lineage(owner, query) as Promise<TaskLineage[]>,
  ]);
  return withDigests(parts.flat());
}

/**
 * The records as one PROV-JSON document, with what they only name looked up in the owner's
 * Registry (function names, code digests) and ObjectIndex (content digests, sizes, ingest filters).
 */
export async function renderProv(env: GatewayEnv, owner: string, records: readonly TaskLineage[]): Promise<ProvDocument> {
  const functionIds = new Set<string>();
  const objectIds = new Set<string>();
  for (const r of records) {
    if (r.function_uuid !== null && functionIds.size < MAX_LOOKUPS) functionIds.add(r.function_uuid);
    for (const item of [...r.used, ...r.generated]) if (item.object !== undefined && OBJECT_ID.test(item.object) && objectIds.size < MAX_LOOKUPS) objectIds.add(item.object);
  }
  const registry = registryOf(env, owner);
  const index = objectIndexOf(env, owner);
  const functions = new Map<string, FunctionInfo>();
  const objects = new Map<string, ObjectInfo>();
  await Promise.all([
    ...[...functionIds].map(async (id) => {
      const fn = await registry.getFunction(id);
      if (fn) functions.set(id, { name: fn.function_name, runtime: fn.meta.runtime, code_sha256: await sha256Hex(fn.function_code) });
    }),
    ...[...objectIds].map(async (id) => {
      const meta = await index.meta(id);
      if (meta) objects.set(id, { owner, sha256: meta.sha256, size: meta.size, content_type: meta.content_type, created_at: meta.created_at / 1000, filters: JSON.parse(meta.filters_json) as ObjectInfo['filters'] });
    }),
  ]);
  return provDocument(records, { functions, objects });
}

export function seconds(time: number | string | undefined): number | null {
  if (time === undefined) return null;
  if (typeof time === 'number') return time;
  const ms = Date.parse(time);
  if (Number.isNaN(ms)) throw new FerryError('VALIDATION_ERROR', `not a time: ${time}`);
  return ms / 1000;
}

export async function eventItems(items: readonly string[] | Record<string, Json> | undefined): Promise<LineageItem[]> {
  if (items === undefined) return [];
  if (Array.isArray(items)) return items.map((object, i) => ({ role: String(i), object }));
  return itemsOf(Object.entries(items));
}
