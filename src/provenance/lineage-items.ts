// How a task's payload and result are named in its lineage record: a data reference (`{"$ref": id}`)
// (src/functions/data-ref.ts) as its object, an inline value verbatim when short, else by the sha256 of its JSON text (plus the
// references inside it). One set of rules for the endpoint, which names them where the data is and
// sends them with the result, and for the gateway, which names them itself for a task whose result
// came without them. Runtime-free: each side hashes its own way (`Hasher`).

import { LINEAGE_ITEMS_MAX, LINEAGE_OBJECT_MAX_CHARS, LINEAGE_ROLE_MAX_CHARS, VERBATIM_MAX_CHARS, type LineageFacts, type LineageItem } from '../protocol/lineage-facts';
import type { Payload, ResultRef } from '../protocol/api';
import { MAX_JSON_DEPTH } from '../protocol/json-depth';
import { dataRefsIn, isDataRef } from '../functions/data-ref';

/** Sets `item.digest` to the sha256 (hex) of `text`: at once, or later (the caller then waits for it). */
export type Hasher = (text: string, item: LineageItem) => void;

/** The ids of the data references anywhere inside a JSON value (parsed within MAX_JSON_DEPTH). */
function refsIn(value: unknown): string[] {
  return dataRefsIn(value, MAX_JSON_DEPTH).refs.map((ref) => ref.$ref);
}

/** An inline value's item (verbatim when short, else hashed), then one per reference inside it; `refs` null: parsed from `text` when it names one. */
function pushInline(out: LineageItem[], role: string, text: string, refs: readonly string[] | null, hash: Hasher): void {
  const item: LineageItem = { role };
  if (text.length <= VERBATIM_MAX_CHARS) item.value = text;
  else hash(text, item);
  out.push(item);
  for (const object of refs ?? (text.includes('"$ref"') ? refsIn(JSON.parse(text)) : [])) out.push({ role, object });
}

/** One item per named value (plus the references inside it), in order. */
export function namedItems(named: ReadonlyArray<[string, unknown]>, hash: Hasher): LineageItem[] {
  const items: LineageItem[] = [];
  for (const [role, value] of named) {
    if (isDataRef(value)) items.push({ role, object: value.$ref });
    else pushInline(items, role, JSON.stringify(value) ?? 'null', refsIn(value), hash);
  }
  return items;
}

/** A payload's arguments, named `args.<i>` and `kwargs.<name>`. */
export function payloadArguments(payload: Partial<Payload> | undefined): Array<[string, unknown]> {
  const named: Array<[string, unknown]> = (payload?.args ?? []).map((v, i) => [`args.${i}`, v]);
  for (const [k, v] of Object.entries(payload?.kwargs ?? {})) named.push([`kwargs.${k}`, v]);
  return named;
}

/** A result's items: an object it was stored as (`resultObject`), or its JSON text (`resultText`). */
export function resultItems(resultObject: string | undefined, resultText: string | null, hash: Hasher): LineageItem[] {
  const generated: LineageItem[] = [];
  if (resultObject !== undefined) generated.push({ role: 'result', object: resultObject });
  if (resultText !== null) pushInline(generated, 'result', resultText, null, hash);
  return generated;
}

/** What of a result its record names: a successful result stored as an object, by its reference; else its value. */
export interface ReportedResult {
  status: 'success' | 'failed';
  result?: unknown;
  result_object?: Pick<ResultRef, '$ref'>;
}

/**
 * The lineage facts an endpoint sends with a result: the items of its task's payload and of the
 * result, hashed at once. Null when they exceed the wire's bounds (LineageFacts): the gateway then
 * names them from its own copy.
 */
export function lineageFactsOf(payload: Partial<Payload>, r: ReportedResult, sha256Hex: (text: string) => string): LineageFacts | null {
  const hash: Hasher = (text, item) => void (item.digest = sha256Hex(text));
  const resultObject = r.status === 'success' && r.result_object ? r.result_object.$ref : undefined;
  const resultText = resultObject !== undefined || r.result === undefined ? null : JSON.stringify(r.result);
  const facts: LineageFacts = { used: namedItems(payloadArguments(payload), hash), generated: resultItems(resultObject, resultText, hash) };
  return withinBounds(facts.used) && withinBounds(facts.generated) ? facts : null;
}

function withinBounds(items: readonly LineageItem[]): boolean {
  if (items.length > LINEAGE_ITEMS_MAX) return false;
  for (const item of items) if (item.role.length > LINEAGE_ROLE_MAX_CHARS || (item.object !== undefined && item.object.length > LINEAGE_OBJECT_MAX_CHARS)) return false;
  return true;
}
