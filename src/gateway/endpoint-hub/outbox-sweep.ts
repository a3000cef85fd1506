// With a remote TaskStore (Redis) the outbox lives in this object's SQLite and the tasks elsewhere:
// a crash between the store's write and the outbox's can leave rows of tasks that ended. While
// undelivered rows wait and an agent is connected, a sweep (a duty of the hub's alarm) drops such
// rows and sends what is still undelivered; a reconcile sweeps the undelivered rows at once.

import { isFinal } from '../../protocol/task-state';
import type { HubLineage } from '../lineage/hub-lineage';
import type { HubState } from './hub-state';

/** How often the outbox is swept while it holds undelivered rows and an agent is connected. */
const OUTBOX_SWEEP_MS = 30_000;
const SWEEP_CHUNK = 2_000;

export class OutboxSweep {
  /** `schedule`: makes the sweep due at a time (the hub's alarm scheduler); `agent`: the agent channel. */
  constructor(
    private readonly hub: HubState,
    private readonly lineage: HubLineage,
    private readonly schedule: (at: number) => Promise<void>,
    private readonly agent: { connected(): boolean; dispatch(): void },
  ) {}

  /** With a remote store, keeps an alarm while undelivered rows wait and an agent is connected. */
  arm(): Promise<void> {
    if (!this.hub.remoteStore || !this.agent.connected() || this.hub.outbox.counts().queued === 0) return Promise.resolve();
    return this.schedule(Date.now() + OUTBOX_SWEEP_MS);
  }

  /** The sweep duty at an alarm: sweeps, sends what is undelivered, and is due again while rows wait. */
  async duty(): Promise<void> {
    if (!this.hub.schemaReady || !this.hub.remoteStore) return;
    await this.sweep(false);
    this.agent.dispatch();
    await this.arm();
    if (this.lineage.waiting()) await this.lineage.arm();
  }

  /** Drops the outbox rows (`pendingOnly`: the undelivered ones) whose tasks are final or gone in the store. */
  async sweep(pendingOnly: boolean): Promise<void> {
    let afterSeq = 0;
    for (;;) {
      const rows = this.hub.outbox.taskIdsAfter(afterSeq, SWEEP_CHUNK, pendingOnly);
      if (rows.length === 0) return;
      afterSeq = rows[rows.length - 1]!.seq;
      const ids = rows.map((r) => r.task_id);
      const states = await this.hub.store.readStates(ids);
      const gone = ids.filter((id) => {
        const s = states.get(id);
        return !s || isFinal(s.state);
      });
      this.lineage.retire(gone);
    }
  }
}
