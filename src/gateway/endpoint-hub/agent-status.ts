// The endpoint's status as its agent reports it (`status` frames, kept in the session store): what
// the owner and guests read, and the status events of the event log, stamped when it changes.

import type { EndpointStatus, StatusReport } from '../../protocol/api';
import type { GuestEndpointStatus } from '../../protocol/sharing-api';
import { heartbeatSeconds } from '../env';
import { fail, ok, type HubReply } from '../hub-reply';
import { readStatusEvent, statusKey, writeStatusEvent } from './event-log';
import { nowSeconds, type HubState } from './hub-state';

const EMPTY_REPORT: StatusReport = { total_workers: 0, idle_workers: 0, pending_tasks: 0, outstanding_tasks: 0, managers: 0, blocks: 0 };

export class AgentStatus {
  /** `socketOpen`: whether the current session's socket is open (agent-channel.ts). */
  constructor(
    private readonly hub: HubState,
    private readonly socketOpen: () => boolean,
  ) {}

  /** online: the agent's socket is open, its hello done, and it spoke within three heartbeats. */
  current(): EndpointStatus {
    const session = this.hub.sessions.current();
    const last = this.hub.sessions.lastStatus();
    const lastSignOfLife = Math.max(last?.last_heartbeat ?? 0, session?.hello_at ?? 0);
    const connected = this.socketOpen() && (session?.phase === 'held' || session?.phase === 'ready');
    const online = connected && nowSeconds() - lastSignOfLife <= 3 * heartbeatSeconds(this.hub.env);
    return { status: online ? 'online' : 'offline', details: { ...(last?.report ?? EMPTY_REPORT), last_heartbeat: last?.last_heartbeat ?? null } };
  }

  /** The owner's full status; a guest's (a user the endpoint is shared with): online and queue length only. */
  async forCaller(caller: string): Promise<HubReply<EndpointStatus | GuestEndpointStatus>> {
    if (this.hub.owned(caller)) return ok(this.current());
    const record = this.hub.live();
    if (!record || !(await this.hub.guard.isGuest(record, caller))) {
      if (record) this.hub.auditLog.refused(caller, { action: 'status', reason: 'not_shared' });
      return fail('NOT_FOUND');
    }
    const full = this.current();
    return ok({ status: full.status, details: { queue_length: this.hub.outbox.counts().queued + full.details.pending_tasks } });
  }

  /** Stamps a status event when what it shows changed (online, workers, blocks) and tells the streams. */
  note(): void {
    if (!this.hub.schemaReady || this.hub.remoteStore) return;
    const status = this.current();
    const last = readStatusEvent(this.hub.sql);
    if (last && statusKey(last.status) === statusKey(status)) return;
    writeStatusEvent(this.hub.sql, this.hub.changes.next(), status);
    this.hub.changes.committed(true);
  }
}
