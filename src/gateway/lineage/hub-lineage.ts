// The hub's side of lineage: records of its ended tasks, built when they end (from the endpoint's
// facts) or later from the store, kept in SQLite until written to the object store as segments
// and indexed (lineage-index.ts), then queried.

import type { TaskLineage } from '../../provenance/prov-document';
import type { HubState } from '../endpoint-hub/hub-state';
import type { EndpointRecord } from '../endpoint-hub/endpoint-record';
import { spilledResultKey } from '../endpoint-hub/task-doc-json';
import { logEvent } from '../log';
import { lineageRecords } from './lineage-capture';
import { LineageIndex, type LineageQuery, type SegmentReader } from './lineage-index';
import { LineagePending, type PendingBatch } from './lineage-pending';
import { lineageSegmentKey, putLines, putSegment, r2SegmentReader } from './lineage-segments';

/**
 * Lineage records are written in segments of LINEAGE_BATCH, as soon as a full one waits (off the
 * results path, after the frame's acknowledgement); fewer are written this long after the first of
 * them ended (an alarm). Queries write what waits first, and each waiting record is kept in SQLite
 * (a pending row, or its task's outbox row), so the wait costs neither freshness nor durability; it
 * saves object-store writes (each a billed R2 operation): a 20-task/s endpoint writes one segment
 * per 5 s, not ten a second.
 */
export const LINEAGE_DELAY_MS = 5_000;
/** Ended tasks whose records one transaction writes, as one segment in the object store. */
export const LINEAGE_BATCH = 1_000;

const DONE = Promise.resolve();

export class HubLineage {
  /** Lineage records of this endpoint's ended tasks, written with their outcomes. */
  readonly index: LineageIndex;
  /** Records built from the endpoint's facts when their tasks ended, as NDJSON lines, until written to a segment. */
  readonly pending: LineagePending;
  /** Reads records from the hub's segments in the object store. */
  readonly segmentReader: SegmentReader;
  /** Records the pending rows hold, as far as this instance knows; null: not counted since it woke. */
  private pendingRecords: number | null = null;
  private running: { done: Promise<void>; fullOnly: boolean } | null = null;

  /** `arm`: makes the lineage duty due at a time (the hub's alarm scheduler). */
  constructor(
    private readonly hub: HubState,
    private readonly armAt: (at: number) => Promise<void>,
  ) {
    this.index = new LineageIndex(hub.sql);
    this.pending = new LineagePending(hub.sql);
    this.segmentReader = r2SegmentReader(hub.env.OBJECTS);
  }

  get on(): boolean {
    return this.hub.lineageOn;
  }

  createSchema(): void {
    this.index.createSchema();
    this.pending.createSchema();
  }

  /**
   * Rows of tasks now final (inside the outcomes' transaction). With lineage on, a task whose record
   * was built with its outcome (`records`: from the endpoint's facts) has it appended to the pending
   * rows and its outbox row dropped; any other keeps its outbox row (its payload), marked ended,
   * until flush() builds its record from the store. With lineage off, rows are dropped.
   */
  retire(taskIds: readonly string[], records?: ReadonlyMap<string, TaskLineage>): void {
    if (taskIds.length === 0) return;
    const outbox = this.hub.outbox;
    if (!this.hub.lineageOn) return outbox.remove(taskIds);
    const built: TaskLineage[] = [];
    const unbuilt: string[] = [];
    for (const id of taskIds) {
      const record = records?.get(id);
      if (record) built.push(record);
      else unbuilt.push(id);
    }
    if (built.length > 0) {
      outbox.remove(built.map((r) => r.task_id));
      this.pending.append(built);
      // Counted before the transaction commits: a rollback leaves it high, which only starts a flush early.
      this.pendingRecords = this.pendingCount() + built.length;
    }
    if (unbuilt.length > 0) outbox.markEnded(unbuilt);
  }

  private pendingCount(): number {
    return (this.pendingRecords ??= this.pending.count());
  }

  /** Sets the alarm that writes the records of ended tasks, unless one comes sooner. */
  arm(): Promise<void> {
    if (!this.hub.lineageOn) return DONE;
    return this.armAt(Date.now() + LINEAGE_DELAY_MS);
  }

  /** The lineage duty at an alarm: writes the records that wait; with a remote store, due again while some still wait. */
  async duty(): Promise<void> {
    if (!this.hub.schemaReady) return;
    await this.flush();
    if (this.hub.remoteStore && this.waiting()) await this.arm();
  }

  /** Whether records wait to be written (ended outbox rows or pending rows). */
  waiting(): boolean {
    return this.hub.outbox.hasEnded() || this.pending.hasAny();
  }

  /** After a results frame: a full segment waiting is written now (not awaited), the rest by the alarm. */
  afterResults(): Promise<void> {
    if (this.hub.lineageOn && this.pendingCount() >= LINEAGE_BATCH) this.hub.ctx.waitUntil(this.flushFullSegments());
    return this.arm();
  }

  /**
   * Writes the lineage records of every ended task whose record is not written yet, in batches:
   * those of ended outbox rows built from the final task records, then the pending rows' as they
   * are; each batch as one segment, then in one transaction indexed and its rows dropped. A failed
   * batch leaves its rows; the alarm runs again (and queries flush first). `fullOnly`: only whole
   * batches (LINEAGE_BATCH records, or up to a frame more), leaving a partial one waiting.
   */
  flush(fullOnly = false): Promise<void> {
    if (!this.hub.lineageOn || !this.hub.schemaReady) return DONE;
    const current = this.running;
    // A flush of whole batches under way writes less than one asked for everything: the rest follows it.
    if (current?.fullOnly && !fullOnly) return current.done.catch(() => undefined).then(() => this.flush());
    if (!current) {
      const run = async () => {
        for (;;) {
          const rows = this.hub.outbox.ended(LINEAGE_BATCH);
          if (rows.length === 0 || (fullOnly && rows.length < LINEAGE_BATCH)) break;
          await this.writeLineage(rows);
          if (rows.length < LINEAGE_BATCH) break;
        }
        for (;;) {
          const batch = this.pending.take(LINEAGE_BATCH, fullOnly ? LINEAGE_BATCH : 1);
          if (batch === null) break;
          await this.writePending(batch);
          if (!batch.more) break;
        }
      };
      // Cleared in a later microtask: with nothing to write, run() settles before this assignment.
      const done = run().finally(() => {
        this.running = null;
      });
      this.running = { done, fullOnly };
      return done;
    }
    return current.done;
  }

  /** The flush under way, if any (a test waits for the one a results frame started). */
  flushing(): Promise<void> | undefined {
    return this.running?.done;
  }

  /** Writes the full segments that wait, leaving fewer for the alarm; a failure is left to the alarm too. */
  private async flushFullSegments(): Promise<void> {
    try {
      await this.flush(true);
    } catch (err) {
      logEvent('warn', 'lineage write failed; the alarm retries', { endpoint_id: this.hub.endpoint()?.endpoint_id, error: err instanceof Error ? err.message : String(err) });
    }
  }

  private async writeLineage(rows: ReadonlyArray<{ seq: number; task_id: string }>): Promise<void> {
    const record = this.hub.endpoint()!;
    const ids = rows.map((r) => r.task_id);
    const built = new Map<string, TaskLineage>();
    for (const r of await this.rebuildRecords(record, ids)) built.set(r.task_id, r);
    // Records in the order the tasks were submitted (outbox order); a task gone from the store
    // (expired) before its record was built has nothing left to record.
    const records: TaskLineage[] = [];
    for (const id of ids) {
      const r = built.get(id);
      if (r) records.push(r);
    }
    // The batch's records as one NDJSON segment in the object store, named by the batch's first
    // outbox row: a retry of a batch whose index write failed overwrites its own segment.
    const placement = await putSegment(this.hub.env.OBJECTS, lineageSegmentKey(record.endpoint_id, rows[0]!.seq), records);
    this.hub.storage.transactionSync(() => {
      this.index.write(records, false, placement);
      this.hub.outbox.removeEnded(ids);
    });
  }

  /** The records of ended tasks, from their final stored records and their outbox rows' payloads. */
  private async rebuildRecords(record: EndpointRecord, taskIds: readonly string[]): Promise<TaskLineage[]> {
    const messages = new Map<string, string>();
    this.hub.outbox.deliveries(taskIds, messages);
    const tasks = await this.hub.store.readTasks(taskIds);
    const spilled = new Map<string, string>();
    await Promise.all(
      tasks.map(async (t) => {
        const key = spilledResultKey(t);
        if (key === null) return;
        const object = await this.hub.env.OBJECTS.get(key);
        if (object) spilled.set(t.task_id, await object.text());
      }),
    );
    return lineageRecords(record.owner, record.endpoint_id, tasks, messages, spilled);
  }

  /** Writes records built when their tasks ended as one segment, then indexes it and drops their pending rows. */
  private async writePending(batch: PendingBatch): Promise<void> {
    const placement = await putLines(this.hub.env.OBJECTS, lineageSegmentKey(this.hub.endpoint()!.endpoint_id, batch.firstId, 'r'), batch.text, batch.ids);
    this.hub.storage.transactionSync(() => {
      this.index.writeSegmentRows(placement, batch.rows);
      this.pending.remove(batch);
    });
    if (this.pendingRecords !== null) this.pendingRecords = Math.max(0, this.pendingRecords - batch.ids.length);
  }

  /** Lineage records of ended tasks matching `query` (the caller checked `owner` owns the endpoint). */
  async query(owner: string, query: LineageQuery): Promise<TaskLineage[]> {
    // Read your writes: records of tasks that ended are written before the query answers.
    await this.flush();
    return this.index.query(owner, query, this.segmentReader);
  }

  async count(owner: string, workflowId: string | null, campaignId: string | null): Promise<number> {
    await this.flush();
    return this.index.count(owner, workflowId, campaignId);
  }
}
