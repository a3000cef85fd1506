// The agent's on-disk journal: every task it accepted and every result the gateway has not yet
// acknowledged, so that a crashed or killed agent replays them on restart and loses nothing.
// Append-only JSON lines, written with writeSync as things happen; `durable()` makes everything
// written so far survive a power loss (group commit: one fsync, off the event loop, for whatever
// accumulated since the last), and the agent awaits it before it acknowledges tasks: once told, the
// gateway never delivers them again. Results need no fsync before they are sent: one lost to a power
// loss leaves its task held, which runs again, and the gateway keeps the first result it stored. The file is rewritten with only
// the live entries when it opens and when it has grown large.

import { closeSync, existsSync, fsync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { MAX_JSON_DEPTH, MESSAGE_ENVELOPE_DEPTH, nestsDeeperThan } from '../../protocol/json-depth';
import type { FunctionSpec, LostAttempt, TaskMessage, TaskResult } from '../../protocol/wire';

type Entry =
  | { k: 'f'; fns: FunctionSpec[] }
  | { k: 't'; tasks: TaskMessage[] }
  | { k: 'd'; ids: string[] }
  | { k: 'r'; results: TaskResult[] }
  | { k: 'a'; ids: string[] }
  | { k: 'x'; ids: string[] }
  /** Executions lost: `attempt` is given when compaction rewrites them, else each task's current one. */
  | { k: 'l'; ids: string[]; reason?: string; at?: number; attempt?: number };

export interface HeldTask {
  task: TaskMessage;
  /** Executions started on this endpoint so far. */
  attempts: number;
  /** Executions lost to system failures (a worker, manager or block died under it), oldest first: which attempt, when and why. */
  lostAttempts: LostAttempt[];
}

const COMPACT_AFTER_BYTES = 64 * 1024 * 1024;

export interface JournalOptions {
  /**
   * fsync in `sync()` (config `journal_fsync`). Off, an acknowledged task survives the agent's
   * death but not the machine's: for a state_dir where fsync is very slow, and the bench's baseline.
   */
  fsync?: boolean;
}

export class Journal {
  readonly tasks = new Map<string, HeldTask>();
  /** Results waiting for the gateway's acknowledgement. */
  readonly results = new Map<string, TaskResult>();
  readonly functions = new Map<string, FunctionSpec>();
  /** Lines of the journal replay skipped because they nest past the bound (json-depth.ts). */
  skippedLines = 0;
  private fd: number;
  private bytesSinceCompaction = 0;
  /** Written since the last fsync began (or compaction, which fsyncs the file it writes). */
  private unsynced = false;
  /** The fsync under way (durable()), if any. */
  private syncing: Promise<void> | null = null;
  /** Bumped when the file is replaced (compaction): an fsync of the old one no longer matters. */
  private generation = 0;
  private readonly path: string;
  private readonly fsync: boolean;

  constructor(dir: string, opts: JournalOptions = {}) {
    this.fsync = opts.fsync ?? true;
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    this.path = join(dir, 'journal.jsonl');
    if (existsSync(this.path)) this.replay(readFileSync(this.path, 'utf8'));
    this.fd = this.rewrite();
  }

  /** Ids the agent holds: tasks not finished, and finished ones whose result is not acknowledged. */
  heldIds(): string[] {
    const ids = new Set(this.tasks.keys());
    for (const id of this.results.keys()) ids.add(id);
    return [...ids];
  }

  /**
   * Held tasks with an execution that neither ended nor was recorded lost: the agent stopped (or
   * died) while it ran. After a restart these are lost executions like any other, and counting them
   * is what stops a task that kills the agent from doing so forever.
   */
  unfinishedExecutions(): TaskMessage[] {
    return [...this.tasks.values()].filter((h) => h.attempts > h.lostAttempts.length).map((h) => h.task);
  }

  addTasks(tasks: TaskMessage[], functions: FunctionSpec[]): TaskMessage[] {
    const fresh = tasks.filter((t) => !this.tasks.has(t.task_id) && !this.results.has(t.task_id));
    const newFns = functions.filter((f) => !this.functions.has(f.function_uuid));
    if (newFns.length) this.append({ k: 'f', fns: newFns });
    if (fresh.length) this.append({ k: 't', tasks: fresh });
    return fresh;
  }

  /** Records that these tasks start another execution; returns their attempt numbers. */
  markDispatched(ids: string[]): void {
    if (ids.length) this.append({ k: 'd', ids });
  }

  /** Records executions lost to system failures, with why, at `at` (Unix seconds). */
  markLost(ids: string[], reason: string, at: number): void {
    if (ids.length) this.append({ k: 'l', ids, reason, at });
  }

  addResults(results: TaskResult[]): void {
    if (results.length) this.append({ k: 'r', results });
  }

  /** The gateway stored these results: forget the tasks. */
  acknowledge(ids: string[]): void {
    if (ids.length) this.append({ k: 'a', ids });
  }

  /** Cancelled tasks: forget them without a result. */
  drop(ids: string[]): void {
    const held = ids.filter((id) => this.tasks.has(id));
    if (held.length) this.append({ k: 'x', ids: held });
  }

  /** Makes every entry appended so far durable now: one fsync, none when nothing was written since the last. */
  sync(): void {
    if (!this.unsynced) return;
    this.unsynced = false;
    if (this.fsync) fsyncSync(this.fd);
  }

  /**
   * Resolves when every entry appended before the call is durable. One fsync on libuv's thread pool
   * covers everything appended before it starts; entries appended while it runs wait for the next.
   */
  durable(): Promise<void> {
    if (this.syncing) return this.unsynced ? this.syncing.then(() => this.durable()) : this.syncing;
    if (!this.unsynced) return Promise.resolve();
    this.unsynced = false;
    if (!this.fsync) return Promise.resolve();
    const generation = this.generation;
    const done = new Promise<void>((resolve, reject) => {
      fsync(this.fd, (err) => {
        this.syncing = null;
        // A compaction meanwhile closed this file after writing (and fsyncing) its replacement.
        if (err && generation === this.generation) reject(err);
        else resolve();
      });
    });
    this.syncing = done;
    return done;
  }

  close(): void {
    this.sync();
    this.generation++;
    closeSync(this.fd);
  }

  private append(entry: Entry): void {
    this.apply(entry);
    const line = JSON.stringify(entry) + '\n';
    writeSync(this.fd, line);
    this.unsynced = true;
    this.bytesSinceCompaction += line.length;
    if (this.bytesSinceCompaction > COMPACT_AFTER_BYTES) {
      closeSync(this.fd);
      this.generation++;
      this.fd = this.rewrite();
    }
  }

  private apply(entry: Entry): void {
    switch (entry.k) {
      case 'f':
        for (const fn of entry.fns) this.functions.set(fn.function_uuid, fn);
        break;
      case 't':
        for (const task of entry.tasks) this.tasks.set(task.task_id, { task, attempts: 0, lostAttempts: [] });
        break;
      case 'd':
        for (const id of entry.ids) {
          const held = this.tasks.get(id);
          if (held) held.attempts += 1;
        }
        break;
      case 'l':
        for (const id of entry.ids) {
          const held = this.tasks.get(id);
          if (!held) continue;
          // Journals of older agents name no reason or time.
          held.lostAttempts.push({ attempt: entry.attempt ?? Math.max(1, held.attempts), lost_at: entry.at ?? 0, reason: entry.reason ?? 'unknown' });
        }
        break;
      case 'r':
        for (const r of entry.results) {
          this.tasks.delete(r.task_id);
          this.results.set(r.task_id, r);
        }
        break;
      case 'a':
        for (const id of entry.ids) {
          this.results.delete(id);
          this.tasks.delete(id);
        }
        break;
      case 'x':
        for (const id of entry.ids) this.tasks.delete(id);
        break;
    }
  }

  private replay(text: string): void {
    for (const line of text.split('\n')) {
      if (!line) continue;
      let entry: unknown;
      try {
        entry = JSON.parse(line);
      } catch {
        // A torn last line from a kill mid-write: everything before it is intact.
        continue;
      }
      // The agent journals only values within the bound; one past it would overflow the recursive
      // JSON.stringify and schemas downstream, in every restart: it is skipped, and counted.
      if (nestsDeeperThan(entry, MAX_JSON_DEPTH + MESSAGE_ENVELOPE_DEPTH)) this.skippedLines += 1;
      else this.apply(entry as Entry);
    }
  }

  /** Writes the live state to a new file and swaps it in; returns the open descriptor. */
  private rewrite(): number {
    const tmp = `${this.path}.tmp`;
    const fd = openSync(tmp, 'w', 0o600);
    const live = new Set<string>();
    for (const { task } of this.tasks.values()) live.add(task.function_uuid);
    const fns = [...this.functions.values()].filter((f) => live.has(f.function_uuid));
    this.functions.clear();
    for (const f of fns) this.functions.set(f.function_uuid, f);
    const lines: string[] = [];
    if (fns.length) lines.push(JSON.stringify({ k: 'f', fns }));
    const attempts = new Map<number, string[]>();
    if (this.tasks.size) {
      lines.push(JSON.stringify({ k: 't', tasks: [...this.tasks.values()].map((h) => h.task) }));
      for (const [id, h] of this.tasks) {
        if (!attempts.has(h.attempts)) attempts.set(h.attempts, []);
        attempts.get(h.attempts)!.push(id);
      }
      for (const [n, ids] of attempts) for (let i = 0; i < n; i++) lines.push(JSON.stringify({ k: 'd', ids }));
      for (const [id, h] of this.tasks) for (const a of h.lostAttempts) lines.push(JSON.stringify({ k: 'l', ids: [id], reason: a.reason, at: a.lost_at, attempt: a.attempt }));
    }
    if (this.results.size) lines.push(JSON.stringify({ k: 'r', results: [...this.results.values()] }));
    if (lines.length) writeSync(fd, lines.join('\n') + '\n');
    fsyncSync(fd);
    closeSync(fd);
    renameSync(tmp, this.path);
    // The rename itself is durable only once its directory is: else a power loss could bring back
    // the old file, without the entries appended to it since its last fsync.
    if (this.fsync) {
      const dirFd = openSync(dirname(this.path), 'r');
      fsyncSync(dirFd);
      closeSync(dirFd);
    }
    this.bytesSinceCompaction = 0;
    this.unsynced = false;
    return openSync(this.path, 'a', 0o600);
  }
}
