// A data reference as a task argument: `{"$ref": id}`, `{"$ref": "file:///abs/path"}`, or either
// with `"locations": ["file:///…", …]` (places the endpoint may read the same bytes from). The one
// test of what is one: the JavaScript sandbox turns such an argument into a DataRef
// (src/endpoint/worker/isolate/data-ref.ts, bundled with this file), lineage names it as an object
// (src/provenance/lineage-items.ts), and the hub refuses it from a guest
// (src/gateway/endpoint-hub/sharing-guard.ts). The Python runner's `is_ref` (worker/python/runner.py)
// is this rule in Python; data-ref.test.ts runs both over the same cases.
//
// Anything else with a `$ref` key (another key beside it, locations that are not a non-empty list
// of strings) is plain data: the function gets it as it was sent.

export interface DataRefArg {
  $ref: string;
  locations?: string[];
}

export function isDataRef(value: unknown): value is DataRefArg {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return false;
  const v = value as Record<string, unknown>;
  if (typeof v.$ref !== 'string') return false;
  const keys = Object.keys(v).length;
  if (keys === 1) return true;
  const l = v.locations;
  return keys === 2 && Array.isArray(l) && l.length > 0 && l.every((x) => typeof x === 'string');
}

/**
 * Every data reference inside a JSON value (in arrays and objects at any depth), in order, read no
 * deeper than `maxDepth` levels: `tooDeep` is then true and what lies below is not searched.
 */
export function dataRefsIn(value: unknown, maxDepth = 64): { refs: DataRefArg[]; tooDeep: boolean } {
  const refs: DataRefArg[] = [];
  let tooDeep = false;
  const walk = (v: unknown, depth: number): void => {
    if (v === null || typeof v !== 'object') return;
    if (depth > maxDepth) {
      tooDeep = true;
      return;
    }
    if (isDataRef(v)) refs.push(v);
    else for (const child of Array.isArray(v) ? v : Object.values(v)) walk(child, depth + 1);
  };
  walk(value, 0);
  return { refs, tooDeep };
}
