// What an event stream (GET /v3/events; event-log.ts) reads from a hub: the changes its filter
// selects after a position, each task as its doc, with the endpoint's status events among them.

import { EVENTS_LIMITS } from '../../protocol/events';
import { endpointOfId } from '../../protocol/ids';
import { fail, ok, type HubReply } from '../hub-reply';
import type { AgentChannel } from './agent-channel';
import type { EndpointRecord } from './endpoint-record';
import { changedTasks, readStatusEvent, recentStart, type EventsPage, type HubEvent, type HubFilter } from './event-log';
import type { HubState } from './hub-state';
import type { TaskOutcomes } from './task-outcomes';

export const EVENTS_NEED_SQLITE = 'event streams need the default task store (TASK_STORE=sqlite): with Redis, nothing records the order of changes';

export class HubEvents {
  constructor(
    private readonly hub: HubState,
    private readonly outcomes: TaskOutcomes,
    private readonly channel: AgentChannel,
  ) {}

  /**
   * Changes the filter selects after `after` (null: a new stream, which starts with the current
   * state: for an endpoint, its status and its latest tasks), at most `limit` task events.
   * `check`: the stream opens, and ids it names must exist here.
   */
  async page(record: EndpointRecord, filter: HubFilter, after: number | null, limit: number, check: boolean): Promise<HubReply<EventsPage>> {
    if (this.hub.remoteStore) return fail('NOT_IMPLEMENTED', EVENTS_NEED_SQLITE);
    // Read from storage, not the counter's memory: what is committed is what can be read.
    const head = this.hub.changes.stored();
    if (after !== null && after > head) return fail('VALIDATION_ERROR', 'Last-Event-ID is not an event id of this stream');
    if (check && filter.kind === 'task_group' && (endpointOfId(filter.task_group_id) !== record.endpoint_id || !(await this.hub.store.groupExists(filter.task_group_id)))) {
      return fail('NOT_FOUND', 'task group not found');
    }
    if (check && filter.kind === 'tasks') {
      const states = await this.hub.store.readStates(filter.task_ids);
      if (states.size < filter.task_ids.length) return fail('NOT_FOUND', 'task not found', { task_id: filter.task_ids.find((id) => !states.has(id)) });
    }
    const start = after ?? (filter.kind === 'endpoint' ? recentStart(this.hub.sql, EVENTS_LIMITS.endpointRecentTasks) : 0);
    const page = changedTasks(this.hub.sql, filter, start, head, limit);
    const docs = await Promise.all(page.tasks.map((t) => this.outcomes.encodeDoc(t.record)));
    const events: HubEvent[] = page.tasks.map((t, i) => ({ seq: t.seq, type: 'task', data: docs[i]! }));
    if (filter.kind === 'endpoint') {
      const status = readStatusEvent(this.hub.sql);
      // A new stream starts with the status as it is; a resumed one gets it when it changed since.
      const due = after === null ? { seq: start, status: this.channel.status.current() } : status && status.seq > start && status.seq <= page.position ? status : null;
      if (due) {
        const data = JSON.stringify({ endpoint_id: record.endpoint_id, status: due.status });
        const at = events.findIndex((e) => e.seq > due.seq);
        events.splice(at < 0 ? events.length : at, 0, { seq: due.seq, type: 'endpoint', data });
      }
    }
    return ok({ events, position: page.position, more: page.more });
  }
}
