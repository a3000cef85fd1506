// How a hub's tasks end and are read: the results an agent sends (large ones written to the object
// store first), cancels, the clients waiting for an end (`?wait=`, /v3/run), and task docs as JSON
// text. One results frame: read the states, build the outcomes (and, with lineage on, each task's
// record from the endpoint's facts), store them in one transaction, wake the waiters.

import { LIMITS, type ResultRef } from '../../protocol/api';
import { endpointOfId } from '../../protocol/ids';
import { NO_EXCEPTION_RECORDED } from '../../protocol/errors';
import { isFinal, transition } from '../../protocol/task-state';
import { traceHop, type TraceHops } from '../../protocol/trace';
import type { TaskResult } from '../../protocol/wire';
import type { TaskLineage } from '../../provenance/prov-document';
import { fail, ok, type HubReply } from '../hub-reply';
import type { HubLineage } from '../lineage/hub-lineage';
import { lineageRecord } from '../lineage/lineage-capture';
import type { TaskOutcome, TaskRecord } from '../task-store/port';
import { isOverBytes } from '../text-size';
import { nowSeconds, type HubState } from './hub-state';
import { objectResultRef, resultObjectKey, spilledResultKey, taskDocJson } from './task-doc-json';
import { TaskWaiters } from './task-waiters';

/** The exception stored for a task reported failed without one. */
const NO_EXCEPTION_RECORDED_JSON = JSON.stringify(NO_EXCEPTION_RECORDED);

export class TaskOutcomes {
  readonly waiters = new TaskWaiters();
  /** Traced runs' hops by task id, from the store until the run answers (src/protocol/trace.ts). */
  readonly traces = new Map<string, TraceHops>();
  /** Tasks whose large result is being written to the object store by an earlier frame. */
  private readonly largeResultsInFlight = new Set<string>();

  /** `tellAgent`: sends a cancel frame for delivered tasks to the connected agent, if any. */
  constructor(
    private readonly hub: HubState,
    private readonly lineage: HubLineage,
    private readonly tellAgent: (cancelled: string[]) => void,
  ) {}

  /** The ids among `taskIds` that `guest` submitted (a guest's tasks are theirs to read and cancel). */
  async submittedBy(guest: string, taskIds: readonly string[]): Promise<Set<string>> {
    if (!this.hub.schemaReady || taskIds.length === 0) return new Set();
    const records = await this.hub.store.readTasks(taskIds);
    return new Set(records.filter((r) => r.submitter === guest).map((r) => r.task_id));
  }

  /** Whether `caller` may read or cancel the task: the owner (deleted endpoint included), or the guest who submitted it. */
  async mayTouch(caller: string, taskId: string): Promise<boolean> {
    return this.hub.owned(caller, true) !== null || (await this.submittedBy(caller, [taskId])).has(taskId);
  }

  /** Task docs as JSON text by id; ids that are not this endpoint's, or neither the owner's nor submitted by `caller`, are left out. */
  async docs(caller: string, taskIds: readonly string[]): Promise<Record<string, string>> {
    const record = this.hub.owned(caller, true);
    const endpointId = this.hub.endpoint()?.endpoint_id;
    if (!endpointId) return {};
    let mine = taskIds.filter((id) => endpointOfId(id) === endpointId);
    // A guest reads the tasks they submitted.
    if (!record) {
      const theirs = await this.submittedBy(caller, mine);
      mine = mine.filter((id) => theirs.has(id));
    }
    const records = await this.hub.store.readTasks(mine);
    const docs = await Promise.all(records.map((r) => this.encodeDoc(r)));
    const out: Record<string, string> = {};
    for (let i = 0; i < records.length; i++) out[records[i]!.task_id] = docs[i]!;
    return out;
  }

  /** The task's record and doc, once it ends or `waitMs` passes. */
  async awaitDoc(taskId: string, waitMs: number): Promise<{ record: TaskRecord | null; doc: string | null }> {
    let record = (await this.hub.store.readTasks([taskId]))[0] ?? null;
    if (record && !isFinal(record.state) && waitMs > 0) {
      await this.waiters.wait(taskId, waitMs);
      record = (await this.hub.store.readTasks([taskId]))[0] ?? null;
    }
    return { record, doc: record ? await this.encodeDoc(record) : null };
  }

  async encodeDoc(record: TaskRecord): Promise<string> {
    let result = record.result_json;
    const spilled = spilledResultKey(record);
    if (spilled !== null) {
      const object = await this.hub.env.OBJECTS.get(spilled);
      result = object ? await object.text() : null;
    }
    return taskDocJson(record, this.hub.endpoint()!.endpoint_id, result);
  }

  /** Cancels a task that has not finished. Whichever the hub stores first, cancel or result, wins. */
  async cancel(taskId: string): Promise<HubReply<string>> {
    const store = this.hub.store;
    const state = (await store.readStates([taskId])).get(taskId);
    if (!state) return fail('NOT_FOUND', 'task not found');
    if (isFinal(state.state)) return fail('TASK_ALREADY_FINISHED', `task ${taskId} is already ${state.state}`);
    const moved = transition(taskId, state.state, state.transitions, 'cancelled', nowSeconds());
    const delivered = this.hub.outbox.lookup([taskId]).get(taskId) === true;
    const outcome: TaskOutcome = { ...emptyOutcome(taskId), state: moved.state, transitions: moved.transitions, completion_t: moved.event.at };
    const report = await store.finishTasks([outcome], [], (finished) => this.lineage.retire(finished));
    await this.lineage.arm();
    // A result stored between the read above and this write wins: the cancel is refused.
    if (report.finished.length === 0) {
      const now = (await store.readStates([taskId])).get(taskId);
      return fail('TASK_ALREADY_FINISHED', `task ${taskId} is already ${now?.state ?? 'finished'}`);
    }
    this.waiters.wake([taskId]);
    // With no socket, the next hello's reconcile tells the agent: it holds a task that is final here.
    if (delivered) this.tellAgent([taskId]);
    const { doc } = await this.awaitDoc(taskId, 0);
    return doc === null ? fail('NOT_FOUND') : ok(doc);
  }

  /** Stores a results frame's outcomes and wakes their waiters; the caller acknowledges the frame. */
  async record(results: TaskResult[]): Promise<void> {
    const store = this.hub.store;
    const lineageOn = this.hub.lineageOn;
    const traced = this.traces.size > 0 ? this.tracedResults(results) : [];
    // A result the endpoint stored as an object travels and is kept as its reference.
    const objects = results.map((r) => (r.status === 'success' && r.result_object ? r.result_object : null));
    const encoded = results.map((r, i) => (objects[i] ? JSON.stringify(resultRefDoc(objects[i])) : r.result === undefined ? null : JSON.stringify(r.result)));
    const storedLarge = await this.storeLargeResults(results, encoded);
    // With lineage on, each state with the facts a record takes from the store (group, function, attempts, workflow, campaign).
    const states = await store.readStates(results.map((r) => r.task_id), lineageOn);
    const deliveries = this.hub.outbox.deliveries(results.map((r) => r.task_id));
    const at = nowSeconds();
    const outcomes: TaskOutcome[] = [];
    const extraAttempts: string[] = [];
    // Lineage records built with the outcomes, from the endpoint's facts and what this frame read:
    // appended to the pending rows in the outcomes' transaction, without reading the tasks back.
    const records = new Map<string, TaskLineage>();
    const endpoint = lineageOn ? this.hub.endpoint() : null;
    for (let i = 0; i < results.length; i++) {
      const r = results[i]!;
      const s = states.get(r.task_id);
      if (!s) continue; // Unknown here: acknowledged below so the agent forgets it.
      const object = objects[i] ?? null;
      const large = object === null && encoded[i] !== null && isOverBytes(encoded[i]!, LIMITS.inlineResultBytes);
      if (isFinal(s.state) || (large && !storedLarge.has(r.task_id))) {
        extraAttempts.push(r.task_id);
        continue;
      }
      const moved = transition(r.task_id, s.state, s.transitions, r.status, at);
      states.set(r.task_id, { task_id: r.task_id, state: moved.state, transitions: moved.transitions });
      const outcome: TaskOutcome = {
        task_id: r.task_id,
        state: moved.state,
        transitions: moved.transitions,
        result_json: large ? null : encoded[i]!,
        result_ref: object ? objectResultRef(object.$ref) : large ? resultObjectKey(r.task_id) : null,
        exception_json: r.exception ? JSON.stringify(r.exception) : r.status === 'failed' ? NO_EXCEPTION_RECORDED_JSON : null,
        stdout: r.stdout === undefined ? null : r.stdout.slice(0, LIMITS.maxStdoutBytes),
        completion_t: at,
        // The executions lost before this one are kept with it, for the task's lineage record.
        execution_json: r.lost_attempts ? JSON.stringify({ ...r.execution, lost_attempts: r.lost_attempts }) : r.execution ? JSON.stringify(r.execution) : null,
        counts_attempt: true,
        // Executions the endpoint counted, deliveries the gateway made, or times the agent sent this
        // result (a re-send after a lost link or a gateway restart), whichever is most.
        reported_attempt: Math.max(r.execution?.attempt ?? 0, deliveries.get(r.task_id) ?? 0, r.delivery ?? 0),
      };
      outcomes.push(outcome);
      // A result without facts (an older agent) or a store without them (Redis): the record is built
      // by HubLineage.flush, from the store and the outbox row's payload.
      if (endpoint && s.facts && r.lineage) {
        // The task's record as finishTasks will leave it: no await between this frame's reads and its writes.
        const execution = r.execution || r.lost_attempts ? { ...r.execution, ...(r.lost_attempts ? { lost_attempts: r.lost_attempts } : {}) } : null;
        const source = { ...s.facts, task_id: r.task_id, state: moved.state, attempts: Math.max(s.facts.attempts + 1, outcome.reported_attempt), transitions: moved.transitions, completion_t: at, execution };
        records.set(r.task_id, lineageRecord(endpoint.owner, endpoint.endpoint_id, source, r.lineage, 'endpoint'));
      }
    }
    // A task with two results in this frame: the second counts one more attempt after the first's outcome.
    for (const id of extraAttempts) {
      const record = records.get(id);
      if (record) record.attempts++;
    }
    const report = await store.finishTasks(outcomes, extraAttempts, (stored) => {
      // A task that ended in an earlier frame has just counted another attempt in the store: a
      // pending record of it says one too few (one still in the outbox is built from the store).
      const finished = new Set(stored);
      const recounted = lineageOn ? extraAttempts.filter((id) => !finished.has(id) && !records.has(id)) : [];
      if (recounted.length > 0) this.lineage.pending.countAttempt(recounted);
      this.lineage.retire(stored, records);
    });
    for (const id of storedLarge) this.largeResultsInFlight.delete(id);
    for (const trace of traced) traceHop(trace, 'hub.finished', Date.now());
    // Another frame (or a cancel) may have ended a task meanwhile: only the stored outcomes count.
    this.waiters.wake(report.finished);
  }

  /** The traces of traced runs' results, each with the endpoint's hops and the frame's arrival added. */
  private tracedResults(results: readonly TaskResult[]): TraceHops[] {
    const at = Date.now();
    const out: TraceHops[] = [];
    for (const r of results) {
      const trace = this.traces.get(r.task_id);
      if (!trace || !r.trace) continue;
      trace.push(...r.trace);
      traceHop(trace, 'hub.results', at);
      out.push(trace);
    }
    return out;
  }

  /**
   * Writes results over the inline limit to the object store before the frame's transaction, for
   * tasks not final yet. Returns the ids written; a result skipped here counts as an extra attempt.
   */
  private async storeLargeResults(results: TaskResult[], encoded: Array<string | null>): Promise<Set<string>> {
    const large = results.map((r, i) => ({ r, text: encoded[i] ?? null })).filter(({ text }) => text !== null && isOverBytes(text, LIMITS.inlineResultBytes));
    const written = new Set<string>();
    if (large.length === 0) return written;
    const states = await this.hub.store.readStates(large.map(({ r }) => r.task_id));
    const toWrite = large.filter(({ r }) => {
      const s = states.get(r.task_id);
      if (!s || isFinal(s.state) || this.largeResultsInFlight.has(r.task_id) || written.has(r.task_id)) return false;
      written.add(r.task_id);
      this.largeResultsInFlight.add(r.task_id);
      return true;
    });
    try {
      await Promise.all(toWrite.map(({ r, text }) => this.hub.env.OBJECTS.put(resultObjectKey(r.task_id), text!, { httpMetadata: { contentType: 'application/json' } })));
    } catch (err) {
      for (const id of written) this.largeResultsInFlight.delete(id);
      throw err;
    }
    return written;
  }
}

/** A ResultRef with its fields in a fixed order and nothing else. */
function resultRefDoc(ref: ResultRef): ResultRef {
  return { $ref: ref.$ref, size: ref.size, sha256: ref.sha256, content_type: ref.content_type };
}

function emptyOutcome(taskId: string): TaskOutcome {
  return {
    task_id: taskId,
    state: 'cancelled',
    transitions: {},
    result_json: null,
    result_ref: null,
    exception_json: null,
    stdout: null,
    completion_t: null,
    execution_json: null,
    counts_attempt: false,
    reported_attempt: 0,
  };
}
