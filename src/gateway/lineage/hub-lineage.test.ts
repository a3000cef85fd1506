// A hub's lineage records (HubLineage) on a real Durable Object and R2 (test/helpers/hub-parts.ts):
// records of ended tasks wait in SQLite, the lineage duty is due LINEAGE_DELAY_MS after the first,
// a flush writes them as a segment and indexes it, a query reads its writes, and a segment that
// cannot be written leaves the rows for the next flush.

import { env } from 'cloudflare:workers';
import { expect, it } from 'vitest';
import type { Json } from '../../protocol/api';
import { withHub, OWNER } from '../../../test/helpers/hub-parts';
import type { GatewayEnv } from '../env';
import { LINEAGE_DELAY_MS } from './hub-lineage';

const success = (task_id: string, result: Json) => ({ task_id, status: 'success' as const, result });

function waiting(sql: SqlStorage): { ended: number; records: number } {
  return {
    ended: sql.exec<{ n: number }>('SELECT COUNT(*) AS n FROM outbox WHERE delivered = 2').one().n,
    records: sql.exec<{ n: number }>('SELECT COUNT(*) AS n FROM lineage_tasks').one().n,
  };
}

it('keeps the records of ended tasks until the lineage duty, then writes them as one segment a query reads', async () => {
  const seen = await withHub(async (hub) => {
    const [done, cancelled] = await hub.submit([{ args: [1, 2] }, { args: [3] }], { workflow_id: 'wf-parts' });
    const before = Date.now();
    await hub.outcomes.record([success(done!, 3)]);
    await hub.outcomes.cancel(cancelled!);
    const due = (hub.alarms.dueAt('lineage') ?? 0) - before;
    const held = waiting(hub.state.sql);
    await hub.lineage.duty();
    const written = waiting(hub.state.sql);
    const segments = await hub.state.env.OBJECTS.list({ prefix: `lineage/${hub.endpointId}/` });
    const records = await hub.lineage.query(OWNER, { kind: 'workflow', workflow_id: 'wf-parts', campaign_id: null, limit: 10 });
    return { due, held, written, segments: segments.objects.length, records: records.map((r) => [r.task_id, r.status]), done, cancelled };
  });
  // Counted from the first ended task (the clock moves only across I/O).
  expect(seen.due).toBeGreaterThanOrEqual(LINEAGE_DELAY_MS);
  expect(seen.due).toBeLessThan(LINEAGE_DELAY_MS + 1_000);
  expect(seen.held).toEqual({ ended: 2, records: 0 });
  expect(seen.written).toEqual({ ended: 0, records: 2 });
  expect(seen.segments).toBe(1);
  expect(seen.records).toEqual([
    [seen.done, 'success'],
    [seen.cancelled, 'cancelled'],
  ]);
});

it('a segment the object store refuses leaves its rows; the next flush writes them', async () => {
  const bucket = (env as unknown as GatewayEnv).OBJECTS;
  let refuse = true;
  const flaky = Object.assign(Object.create(bucket), { put: (...args: Parameters<R2Bucket['put']>) => (refuse ? Promise.reject(new Error('R2 unavailable')) : bucket.put(...args)) });
  const seen = await withHub(
    async (hub) => {
      const [id] = await hub.submit([{ args: [1, 2] }]);
      await hub.outcomes.record([success(id!, 3)]);
      const failed = await hub.lineage.flush().then(() => 'written', (err: Error) => err.message);
      const kept = waiting(hub.state.sql);
      refuse = false;
      await hub.lineage.flush();
      return { failed, kept, after: waiting(hub.state.sql), count: await hub.lineage.count(OWNER, null, null) };
    },
    { OBJECTS: flaky },
  );
  expect(seen.failed).toBe('R2 unavailable');
  expect(seen.kept).toEqual({ ended: 1, records: 0 });
  expect(seen.after).toEqual({ ended: 0, records: 1 });
  expect(seen.count).toBe(1);
});
