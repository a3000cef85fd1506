// Lineage segments: a batch of records as one NDJSON object in the object store, gzip-compressed.
// The index keeps each record's byte range in the uncompressed text, so a record is read by
// fetching its segment (about 110 bytes a record compressed), inflating it and slicing.
// Segments written before compression (`.ndjson`) are plain text and are still read by range.

import type { TaskLineage } from '../../provenance/prov-document';
import type { SegmentPlacement, SegmentPointer, SegmentReader } from './lineage-index';

/** Records wanted from one plain (older) segment up to which each is read by range; beyond, the whole segment once. */
const SEGMENT_RANGE_READS = 8;

/**
 * The object store key of a segment: per endpoint, named by its batch's first row, an outbox row
 * (records built when written) or, with `prefix` 'r', a row of records built when their tasks ended.
 */
export function lineageSegmentKey(endpointId: string, firstSeq: number, prefix: '' | 'r' = ''): string {
  return `lineage/${endpointId}/${prefix}${String(firstSeq).padStart(12, '0')}.ndjson.gz`;
}

/** Whether a segment is stored compressed (read whole), or as plain NDJSON (ranges readable). */
export function isCompressedSegment(key: string): boolean {
  return key.endsWith('.gz');
}

async function through(bytes: Uint8Array, transform: CompressionStream | DecompressionStream): Promise<Uint8Array> {
  const stream = new Blob([bytes]).stream().pipeThrough(transform);
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

export interface EncodedSegment {
  /** The gzip-compressed NDJSON. */
  body: Uint8Array;
  /** Each record's byte range in the uncompressed text, by task id. */
  ranges: Map<string, { offset: number; length: number }>;
}

/** The records as NDJSON text, one line each in order. */
export function ndjson(records: readonly TaskLineage[]): string {
  let text = '';
  for (const r of records) text += JSON.stringify(r) + '\n';
  return text;
}

/** The records as NDJSON, one line each in order, compressed; with each line's range before compression. */
export function encodeSegment(records: readonly TaskLineage[]): Promise<EncodedSegment> {
  return encodeLines(ndjson(records), records.map((r) => r.task_id));
}

const NEWLINE = 0x0a;

/**
 * NDJSON text (`ids[i]`'s record on line i, each line ending in a newline), compressed, with each
 * line's byte range. JSON text holds no raw newline, so every newline ends a line.
 */
async function encodeLines(text: string, ids: readonly string[]): Promise<EncodedSegment> {
  const bytes = new TextEncoder().encode(text);
  // As many bytes as UTF-16 units: ASCII only, so the text's own offsets are byte offsets.
  const ascii = bytes.length === text.length;
  const ranges = new Map<string, { offset: number; length: number }>();
  let offset = 0;
  for (const id of ids) {
    const end = ascii ? text.indexOf('\n', offset) : bytes.indexOf(NEWLINE, offset);
    if (end < 0) throw new Error(`lineage segment: ${ids.length} records named, fewer lines`);
    ranges.set(id, { offset, length: end + 1 - offset });
    offset = end + 1;
  }
  if (offset !== bytes.length) throw new Error(`lineage segment: more lines than the ${ids.length} records named`);
  return { body: await through(bytes, new CompressionStream('gzip')), ranges };
}

/** Writes the records as one segment under `key`; answers where each record landed, for the index. */
export async function putSegment(bucket: R2Bucket, key: string, records: readonly TaskLineage[]): Promise<SegmentPlacement> {
  return putEncoded(bucket, key, await encodeSegment(records), records.length);
}

/** Writes NDJSON lines already built (`ids[i]`'s record on line i) as one segment under `key`. */
export async function putLines(bucket: R2Bucket, key: string, text: string, ids: readonly string[]): Promise<SegmentPlacement> {
  return putEncoded(bucket, key, await encodeLines(text, ids), ids.length);
}

async function putEncoded(bucket: R2Bucket, key: string, { body, ranges }: EncodedSegment, records: number): Promise<SegmentPlacement> {
  if (records > 0) await bucket.put(key, body, { httpMetadata: { contentType: 'application/x-ndjson' } });
  return { key, ranges };
}

/** A segment's uncompressed NDJSON bytes, from what the object store holds under `key`. */
export async function segmentText(key: string, stored: Uint8Array): Promise<Uint8Array> {
  return isCompressedSegment(key) ? through(stored, new DecompressionStream('gzip')) : stored;
}

/** Every record of a segment's NDJSON bytes, in order. */
export function parseSegment(text: Uint8Array): TaskLineage[] {
  const records: TaskLineage[] = [];
  for (const line of new TextDecoder().decode(text).split('\n')) if (line.length > 0) records.push(JSON.parse(line) as TaskLineage);
  return records;
}

/** Reads records from segments in `bucket`: compressed ones whole, plain ones by range when few of their records are wanted. */
export function r2SegmentReader(bucket: R2Bucket): SegmentReader {
  return {
    async records(pointers: readonly SegmentPointer[]) {
      const bySegment = new Map<string, SegmentPointer[]>();
      for (const p of pointers) bySegment.set(p.segment, [...(bySegment.get(p.segment) ?? []), p]);
      const out = new Map<string, TaskLineage>();
      const decoder = new TextDecoder();
      await Promise.all(
        [...bySegment].map(async ([key, wanted]) => {
          if (isCompressedSegment(key) || wanted.length > SEGMENT_RANGE_READS) {
            const object = await bucket.get(key);
            if (!object) return;
            const text = await segmentText(key, new Uint8Array(await object.arrayBuffer()));
            for (const p of wanted) out.set(p.task_id, JSON.parse(decoder.decode(text.subarray(p.offset, p.offset + p.length))) as TaskLineage);
            return;
          }
          await Promise.all(
            wanted.map(async (p) => {
              const object = await bucket.get(key, { range: { offset: p.offset, length: p.length } });
              if (object) out.set(p.task_id, JSON.parse(await object.text()) as TaskLineage);
            }),
          );
        }),
      );
      return out;
    },
    async segment(key: string) {
      const object = await bucket.get(key);
      return object ? parseSegment(await segmentText(key, new Uint8Array(await object.arrayBuffer()))) : [];
    },
  };
}
