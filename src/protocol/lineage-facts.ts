// What a task's lineage record names as used and generated, as the endpoint reports it with each
// result (`TaskResult.lineage`): the endpoint has the payload and the result in hand, so it names
// them (and hashes the larger ones) where the data is, and the gateway appends the record without
// reading the task back. The same shape is what records store (src/provenance/prov-document.ts).

import { z } from 'zod';

/**
 * Inline values whose JSON is at most this long are named by the value itself (`value`): shorter
 * than a digest. Longer ones by the sha256 of their JSON text (`digest`).
 */
export const VERBATIM_MAX_CHARS = 64;
/** Longest role (`args.<i>`, `kwargs.<name>`, `result`) an endpoint reports. */
export const LINEAGE_ROLE_MAX_CHARS = 256;
/** Longest object id an item names (data objects' ids are 64 hex digits; events may name others). */
export const LINEAGE_OBJECT_MAX_CHARS = 512;
/** Most items an endpoint reports on each side; a task with more is recorded from the gateway's copy. */
export const LINEAGE_ITEMS_MAX = 1_024;

/** One thing a task used or generated: a data object by id, or an inline value (verbatim or by sha256). */
export const LineageItem = z.object({
  /** The argument's position or name (`args.0`, `kwargs.x`), `result`, or an event's map key. */
  role: z.string().max(LINEAGE_ROLE_MAX_CHARS),
  /** A data object's id (`{"$ref": id}`, or an id an external system reports). */
  object: z.string().max(LINEAGE_OBJECT_MAX_CHARS).optional(),
  /** sha256 (hex) of the value's JSON text, for inline values. */
  digest: z.string().regex(/^[0-9a-f]{64}$/).optional(),
  /** A small inline value's JSON text itself (at most VERBATIM_MAX_CHARS); records read back carry its `digest` as well. */
  value: z.string().max(VERBATIM_MAX_CHARS).optional(),
});
export type LineageItem = z.infer<typeof LineageItem>;

/** A result's lineage facts: its task's payload items (used) and its result's (generated). */
export const LineageFacts = z.object({
  used: z.array(LineageItem).max(LINEAGE_ITEMS_MAX),
  generated: z.array(LineageItem).max(LINEAGE_ITEMS_MAX),
});
export type LineageFacts = z.infer<typeof LineageFacts>;
