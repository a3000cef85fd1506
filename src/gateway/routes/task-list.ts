// What the dashboard reads besides single tasks: a page of the caller's tasks, newest first,
// filtered (one endpoint, or fanned out over all of the caller's endpoints, deleted ones included),
// and an endpoint's status reports of the last hour.

import { z } from 'zod';
import { Uuid } from '../../protocol/api';
import { FerryError } from '../../protocol/errors';
import { endpointOfId } from '../../protocol/ids';
import { EndpointStatusHistory, STATUS_HISTORY, TASK_LIST_LIMITS, TaskList, TaskListCursor, TaskListQuery, type TaskSummary } from '../../protocol/task-list';
import { hubOf } from '../endpoint-hub/endpoint-hub';
import { unwrap } from '../hub-reply';
import { registryOf } from '../registry';
import { defineRoute, type RouteTable } from '../route-spec';
import type { TaskListRow } from '../task-store/port';

const EndpointParams = z.object({ endpoint_id: Uuid });

function badCursor(): FerryError {
  return new FerryError('VALIDATION_ERROR', 'cursor: not a cursor this gateway issued (pass next_cursor as it came)', { issues: [{ path: 'cursor', message: 'not a cursor' }] });
}

/** base64url of the cursor's JSON: opaque to clients, checked by its schema when it comes back. */
export function encodeTaskListCursor(cursor: TaskListCursor): string {
  return btoa(JSON.stringify(cursor)).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

export function decodeTaskListCursor(text: string): TaskListCursor {
  let value: unknown;
  try {
    value = JSON.parse(atob(text.replace(/-/g, '+').replace(/_/g, '/')));
  } catch {
    throw badCursor();
  }
  const parsed = TaskListCursor.safeParse(value);
  if (!parsed.success) throw badCursor();
  return parsed.data;
}

export function registerTaskListRoutes(table: RouteTable): void {
  defineRoute(
    table,
    {
      method: 'get',
      path: '/v3/tasks',
      summary: `The caller's tasks, newest first, filtered by endpoint, status, function, workflow or task group; at most \`limit\` (${TASK_LIST_LIMITS.maxLimit}) per page, \`next_cursor\` for the next`,
      auth: 'user',
      // Listing spans endpoints and functions a key's scopes may not cover: keys are refused.
      keys: 'none',
      query: TaskListQuery,
      response: TaskList,
      errors: ['NOT_FOUND'],
    },
    async (c, { principal: { owner }, query }) => {
      const { endpoint_id, status, function_uuid, workflow_id, task_group_id, limit } = query;
      const groupEndpoint = task_group_id === undefined ? undefined : endpointOfId(task_group_id)!;
      if (endpoint_id !== undefined && groupEndpoint !== undefined && endpoint_id !== groupEndpoint) return { tasks: [], next_cursor: null };
      const only = endpoint_id ?? groupEndpoint;
      // Where each endpoint's reading stands: undefined, from its newest task; 0, done.
      let positions: Map<string, number | undefined>;
      if (query.cursor !== undefined) {
        positions = new Map(Object.entries(decodeTaskListCursor(query.cursor).p));
        if (only !== undefined) for (const id of positions.keys()) if (id !== only) positions.delete(id);
      } else {
        const ids = only !== undefined ? [only] : await registryOf(c.env, owner).lineageEndpointIds();
        positions = new Map(ids.slice(0, TASK_LIST_LIMITS.maxCursorEndpoints).map((id) => [id, undefined]));
      }
      const filter = { status, function_uuid, workflow_id, task_group_id };
      const asked = [...positions].filter(([, pos]) => pos !== 0);
      const replies = await Promise.all(asked.map(([id, pos]) => hubOf(c.env, id).listTasks(owner, filter, pos ?? null, limit, TASK_LIST_LIMITS.scanBudget)));
      // One endpoint named: not the caller's is 404, as everywhere. Fanned out: such ids are skipped.
      if (only !== undefined && query.cursor === undefined) unwrap(replies[0]!);
      const lists: Array<{ id: string; rows: TaskListRow[]; next: number; taken: number }> = [];
      asked.forEach(([id], i) => {
        const reply = replies[i]!;
        if (reply.ok) lists.push({ id, rows: reply.value.rows, next: reply.value.next, taken: 0 });
        else positions.set(id, 0);
      });
      // A merge of the endpoints' pages (each newest first) by creation time: each endpoint's rows
      // taken are a prefix of its page, so its position is where that prefix ends.
      const tasks: TaskSummary[] = [];
      while (tasks.length < limit) {
        let best: (typeof lists)[number] | undefined;
        for (const list of lists) {
          const head = list.rows[list.taken];
          if (head && (!best || head.created_at > best.rows[best.taken]!.created_at)) best = list;
        }
        if (!best) break;
        const { pos: _pos, ...row } = best.rows[best.taken++]!;
        tasks.push({ ...row, endpoint_id: best.id });
      }
      for (const list of lists) {
        if (list.taken === list.rows.length) positions.set(list.id, list.next);
        else if (list.taken > 0) positions.set(list.id, list.rows[list.taken - 1]!.pos);
      }
      const open = [...positions].filter(([, pos]) => pos !== 0);
      return {
        tasks,
        next_cursor: open.length === 0 ? null : encodeTaskListCursor({ v: 1, p: Object.fromEntries(open.map(([id, pos]) => [id, pos ?? Number.MAX_SAFE_INTEGER])) }),
      };
    },
  );

  defineRoute(
    table,
    {
      method: 'get',
      path: '/v3/endpoints/{endpoint_id}/status/history',
      summary: `The endpoint's status reports of the last ${STATUS_HISTORY.windowS / 60} minutes, at most one per ${STATUS_HISTORY.sampleEveryS} s, oldest first`,
      auth: 'user',
      keys: 'none',
      params: EndpointParams,
      response: EndpointStatusHistory,
      errors: ['NOT_FOUND'],
    },
    async (c, { principal: { owner }, params }) => ({
      endpoint_id: params.endpoint_id,
      window_s: STATUS_HISTORY.windowS,
      sample_every_s: STATUS_HISTORY.sampleEveryS,
      samples: unwrap(await hubOf(c.env, params.endpoint_id).statusHistory(owner)),
    }),
  );
}
