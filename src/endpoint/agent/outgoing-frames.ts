// What the agent tells the gateway, batched into frames: acks of received tasks (only once an fsync
// of the journal covers them: group commit), `running` notices, results, and the credits they free.
// Frames go out on the next turn of the event loop; results as RESULT_FRAMES_IN_FLIGHT allows.

import { FRAME_BUDGET_BYTES, chunkBySize, type AgentFrame, type TaskResult } from '../../protocol/wire';
import { traceHop } from '../../protocol/trace';
import type { Logger } from '../log';

/**
 * Results frames sent and not yet answered by a `results_ack`. New results wait while this many are
 * in flight for an answer, so that under load the endpoint's Durable Object, which handles frames one
 * at a time, gets a few large frames rather than a flood of small ones queued before its other
 * requests, while a lone result goes at once. A frame unanswered after RESULTS_ACK_PATIENCE_MS (the
 * hub failed to store it, and the reconnect will send it again) no longer holds the others back.
 */
const RESULT_FRAMES_IN_FLIGHT = 2;
const RESULTS_ACK_PATIENCE_MS = 2000;

/**
 * Longest a durable ack waits for a results frame to ride on. A task that ends sooner is
 * acknowledged in the frame that carries its result (one frame and one turn of the hub instead of
 * two); the gateway's lease on a delivered task is far longer.
 */
const ACK_HOLD_MS = 10;

export interface OutgoingFramesOptions {
  /** Puts a frame on the gateway socket; false when there is none. */
  send: (frame: AgentFrame) => boolean;
  /** Resolves once everything journaled so far is on disk (one fsync for all who wait). */
  durable: () => Promise<void>;
  log: Logger;
}

export class OutgoingFrames {
  /** Between a welcome and the socket's close: only then does anything go. */
  private welcomed = false;
  /** Counts the gateway connections (hellos): an ack waiting for an fsync goes only on the one it was meant for. */
  private connection = 0;
  /** Tasks journaled and not yet acknowledged: the ack waits for an fsync that covers them. */
  private pendingAcks: string[] = [];
  /** Tasks journaled and fsynced, to acknowledge with the next results frame or after ACK_HOLD_MS. */
  private durableAcks: string[] = [];
  private ackTimer: NodeJS.Timeout | undefined;
  private pendingResults: TaskResult[] = [];
  /** How many times each result not yet acknowledged was put on a socket. */
  private readonly resultSends = new Map<string, number>();
  private pendingRunning: string[] = [];
  private pendingCredit = 0;
  private flushScheduled = false;
  /** When each results frame in flight was sent (ms), oldest first. */
  private resultFramesInFlight: number[] = [];
  private resultsTimer: NodeJS.Timeout | undefined;

  constructor(private readonly opts: OutgoingFramesOptions) {}

  /** A new socket: acks not sent on the last one are replaced by the hello's held frames. */
  connected(): void {
    this.pendingAcks = [];
    this.durableAcks = [];
    this.connection++;
  }

  /** The gateway welcomed the agent: `unacknowledged` results (from the journal) go again. */
  welcome(unacknowledged: TaskResult[]): void {
    this.welcomed = true;
    this.pendingResults = unacknowledged;
    this.pendingCredit = 0;
    this.resultFramesInFlight = [];
    this.schedule();
  }

  closed(): void {
    this.welcomed = false;
  }

  get isWelcomed(): boolean {
    return this.welcomed;
  }

  /** Tasks journaled, to acknowledge once durable; `creditBack` credits their delivery used and adds no work for. */
  received(taskIds: string[], creditBack: number): void {
    this.pendingAcks.push(...taskIds);
    this.pendingCredit += creditBack;
    this.schedule();
  }

  running(taskIds: string[]): void {
    this.pendingRunning.push(...taskIds);
    this.schedule();
  }

  /** Results to report, and the credits the tasks among them held free. */
  results(results: TaskResult[], credit: number): void {
    this.pendingResults.push(...results);
    this.pendingCredit += credit;
    this.schedule();
  }

  credit(n: number): void {
    this.pendingCredit += n;
    this.schedule();
  }

  /** The gateway stored these results: a results frame in flight is answered. */
  resultsAcked(taskIds: string[]): void {
    for (const id of taskIds) this.resultSends.delete(id);
    this.resultFramesInFlight.shift();
    if (this.pendingResults.length) this.schedule();
  }

  stop(): void {
    clearTimeout(this.resultsTimer);
    clearTimeout(this.ackTimer);
  }

  private schedule(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    setImmediate(() => {
      this.flushScheduled = false;
      this.flush();
    });
  }

  /** Whether results may go now; if not, a flush is due when the oldest frame in flight runs out of patience. */
  private resultsMayGo(): boolean {
    const now = Date.now();
    while (this.resultFramesInFlight.length && now - this.resultFramesInFlight[0]! >= RESULTS_ACK_PATIENCE_MS) this.resultFramesInFlight.shift();
    if (this.resultFramesInFlight.length < RESULT_FRAMES_IN_FLIGHT) return true;
    this.resultsTimer ??= setTimeout(() => {
      this.resultsTimer = undefined;
      this.schedule();
    }, this.resultFramesInFlight[0]! + RESULTS_ACK_PATIENCE_MS - now);
    return false;
  }

  private flush(): void {
    if (!this.welcomed) return; // the journal keeps results; they are re-sent after the next welcome
    if (this.pendingAcks.length) {
      // Group commit: one fsync (off the event loop) covers every task journaled before the gateway
      // hears of it; a new connection meanwhile replaces these acks with its held frames.
      const acks = this.pendingAcks;
      const connection = this.connection;
      this.pendingAcks = [];
      this.opts.durable().then(
        () => {
          if (connection !== this.connection || !this.welcomed) return;
          this.durableAcks.push(...acks);
          this.ackTimer ??= setTimeout(() => {
            this.ackTimer = undefined;
            this.sendAcks();
          }, ACK_HOLD_MS);
        },
        (err: unknown) => this.opts.log.error('journal fsync failed; tasks stay unacknowledged until the next connection', { error: String(err) }),
      );
    }
    if (this.pendingRunning.length) {
      for (const task_ids of chunkBySize(this.pendingRunning, FRAME_BUDGET_BYTES)) this.opts.send({ type: 'running', task_ids, at: Date.now() / 1000 });
      this.pendingRunning = [];
    }
    if (this.pendingResults.length && this.resultsMayGo()) {
      // A result sent before and not acknowledged (the link or the gateway died) says how many times it was sent.
      const numbered = this.pendingResults.map((r) => {
        const delivery = (this.resultSends.get(r.task_id) ?? 0) + 1;
        return delivery > 1 ? { ...r, delivery } : r;
      });
      for (const r of numbered) traceHop(r.trace, 'agent.sent');
      const frames = chunkBySize(numbered, FRAME_BUDGET_BYTES);
      for (const [i, results] of frames.entries()) {
        // The credits the results free, and the durable acks, ride on the last of their frames.
        const last = i === frames.length - 1;
        const credit = last ? this.pendingCredit : 0;
        const acked = last && this.durableAcks.length && JSON.stringify(this.durableAcks).length < FRAME_BUDGET_BYTES - JSON.stringify(results).length ? this.durableAcks : [];
        if (!this.opts.send({ type: 'results', results, ...(credit > 0 ? { credit } : {}), ...(acked.length ? { acked } : {}) })) continue;
        if (credit > 0) this.pendingCredit = 0;
        if (acked.length) this.durableAcks = [];
        this.resultFramesInFlight.push(Date.now());
        for (const r of results) this.resultSends.set(r.task_id, r.delivery ?? 1);
      }
      this.pendingResults = [];
    }
    if (this.pendingCredit > 0) {
      this.opts.send({ type: 'credit', n: this.pendingCredit });
      this.pendingCredit = 0;
    }
  }

  /** Durable acks that found no results frame to ride on, in frames of their own. */
  private sendAcks(): void {
    if (!this.welcomed || this.durableAcks.length === 0) return;
    for (const task_ids of chunkBySize(this.durableAcks, FRAME_BUDGET_BYTES)) this.opts.send({ type: 'ack', task_ids });
    this.durableAcks = [];
  }
}
