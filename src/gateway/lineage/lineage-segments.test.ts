// Lineage segments: records as gzip-compressed NDJSON, with each record's byte range in the
// uncompressed text, which is how the index finds one record in its segment. Ranges are bytes,
// not characters: a record holding non-ASCII text (a hostname, an inline value) must not shift them.

import { describe, expect, it } from 'vitest';
import { segmentRowsOf } from './lineage-index';
import { encodeSegment, parseSegment, segmentText } from './lineage-segments';
import type { TaskLineage } from '../../provenance/prov-document';
import { taskRecord } from '../../../test/helpers/lineage-records';

function record(i: number, hostname: string, value: string): TaskLineage {
  return taskRecord({
    task_id: `0f8e7c1a-3b2d-4e5f-8a9b-0c1d2e3f4a5b.mibx3k2a${String(i).padStart(4, '0')}abcdefghijk`,
    transitions: { running: 1_700_000_000.5, success: 1_700_000_001.25 },
    started_at: 1_700_000_000.5,
    ended_at: 1_700_000_001.25,
    hostname,
    used: [{ role: 'args.0', value }],
    generated: [{ role: 'result', value: JSON.stringify(value + '!') }],
  });
}

/** Each record read back alone, from its range in the segment's uncompressed bytes. */
async function readByRange(records: TaskLineage[]): Promise<unknown[]> {
  const { body, ranges } = await encodeSegment(records);
  const text = await segmentText('x.ndjson.gz', body);
  expect(parseSegment(text)).toEqual(records);
  return records.map((r) => {
    const { offset, length } = ranges.get(r.task_id)!;
    return JSON.parse(new TextDecoder().decode(text.subarray(offset, offset + length)));
  });
}

describe('encodeSegment', () => {
  it('gives each record of an ASCII segment its byte range', async () => {
    const records = Array.from({ length: 50 }, (_, i) => record(i, 'nid01', `"v${i}"`));
    expect(await readByRange(records)).toEqual(records);
  });

  it('gives byte ranges, not character ranges, when records hold non-ASCII text', async () => {
    // 2-, 3- and 4-byte UTF-8 characters, early in the segment so that every later range would shift.
    const records = [record(0, 'nœud-é', '"Ω"'), record(1, 'ascii', '"x"'), record(2, '計算ノード', '"🔬 sample"'), record(3, 'nid04', '"y"')];
    expect(await readByRange(records)).toEqual(records);
  });
});

describe('segmentRowsOf', () => {
  it('counts records per owner, workflow and campaign, and names each object once per task and role', () => {
    const a = { ...record(0, 'h', '"a"'), used: [{ role: 'args.0', object: 'raw-1' }, { role: 'args.1', object: 'raw-1' }, { role: 'args.2', value: '1' }], generated: [{ role: 'result', object: 'out-1' }] };
    const b = { ...record(1, 'h', '"b"'), used: [{ role: 'args.0', object: 'raw-1' }], generated: [{ role: 'result', object: 'raw-1' }] };
    const c = { ...record(2, 'h', '"c"'), workflow_id: 'wf-2', campaign_id: 'camp' };
    const d = { ...record(3, 'h', '"d"'), owner: 'bob' };
    const rows = segmentRowsOf([a, b, c, d, record(4, 'h', '"e"')]);
    expect(rows.workflows).toEqual([
      ['alice', 'wf-1', null, 3],
      ['alice', 'wf-2', 'camp', 1],
      ['bob', 'wf-1', null, 1],
    ]);
    expect(rows.objects).toEqual([
      ['raw-1', a.task_id, 'used'],
      ['out-1', a.task_id, 'generated'],
      ['raw-1', b.task_id, 'used'],
      ['raw-1', b.task_id, 'generated'],
    ]);
  });
});
