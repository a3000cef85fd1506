// Tasks: a live table of the caller's tasks, newest first, with filters (status, function,
// endpoint, workflow) kept in the address so a filtered view can be linked. The first page comes
// from GET /v3/tasks; then the event stream of what the filters select keeps it current (each
// task event is the task's doc), or, where the gateway streams none, the first page is read again
// every few seconds. Older pages load on demand.

import type { EndpointDoc, TaskDoc } from '../../protocol/api';
import type { TaskList, TaskSummary } from '../../protocol/task-list';
import { TASK_STATES } from '../../protocol/task-state';
import type { EventsSelector } from '../../sdk/event-stream';
import { fill, formatTime, h, reconcile, route, shortId, statusBadge } from '../dom';
import { followEvents, type LiveMode } from '../live';
import { every, type ViewContext } from '../view';

const PAGE = 200;
const POLL_MS = 2_000;
/** Rows the table holds at most (a stream of a busy endpoint starts with its latest 1,000 tasks). */
const MAX_ROWS = 2_000;
const FILTERS = ['status', 'function_uuid', 'endpoint_id', 'workflow_id', 'task_group_id'] as const;
type Filters = Partial<Record<(typeof FILTERS)[number], string>>;

export async function tasksView(ctx: ViewContext): Promise<void> {
  const filters: Filters = {};
  for (const name of FILTERS) {
    const value = ctx.query.get(name);
    if (value) filters[name] = value;
  }
  const endpoints = await ctx.api.get<EndpointDoc[]>('/v2/endpoints', ctx.signal);
  const counts = h('p', { id: 'task-counts', class: 'counts' });
  const mode = h('span', { id: 'live-mode', class: 'muted' });
  const body = h('tbody');
  const more = h('button', { type: 'button', hidden: true }, 'Load older tasks');
  fill(
    ctx.root,
    h('h1', {}, 'Tasks'),
    filterForm(filters, endpoints),
    counts,
    h(
      'table',
      { class: 'tasks' },
      h('caption', {}, 'Newest first; ', mode),
      h('thead', {}, h('tr', {}, ...['Task', 'Status', 'Function', 'Endpoint', 'Workflow', 'Submitted', 'Ended', 'Attempts'].map((c) => h('th', { scope: 'col' }, c)))),
      body,
    ),
    more,
  );
  const names = new Map(endpoints.map((e) => [e.endpoint_id, e.endpoint_name]));
  /** Every task known, by id: from pages and events alike (the newest word wins). */
  const rows = new Map<string, TaskSummary>();
  let cursor: string | null = null;
  let drawn = new Map<string, { key: string; tr: HTMLTableRowElement }>();
  let drawPending = false;

  const draw = () => {
    drawPending = false;
    const shown = [...rows.values()].filter((t) => matches(t, filters)).sort((a, b) => b.created_at - a.created_at || (a.task_id < b.task_id ? 1 : -1)).slice(0, MAX_ROWS);
    // Rows whose task did not change are kept (with any focus inside), changed ones rebuilt.
    const next = new Map<string, { key: string; tr: HTMLTableRowElement }>();
    for (const t of shown) {
      const key = `${t.status} ${t.completion_t} ${t.attempts}`;
      const kept = drawn.get(t.task_id);
      next.set(t.task_id, kept && kept.key === key ? kept : { key, tr: taskRow(t, names) });
    }
    drawn = next;
    reconcile(body, [...next.values()].map((r) => r.tr));
    const byStatus = new Map<string, number>();
    for (const t of shown) byStatus.set(t.status, (byStatus.get(t.status) ?? 0) + 1);
    fill(counts, `${shown.length} tasks shown`, ...[...byStatus].map(([status, n]) => h('span', { class: 'count', 'data-status': status }, ' · ', statusBadge(status), ' ', h('span', { class: 'n' }, n))));
    more.hidden = cursor === null;
  };
  /** Events come in bursts (a frame of results): one redraw per burst. */
  const redraw = () => {
    if (drawPending) return;
    drawPending = true;
    setTimeout(draw, 100);
  };
  const page = (after: string | null) => {
    const q = new URLSearchParams({ ...filters, limit: String(PAGE) });
    if (after) q.set('cursor', after);
    return ctx.api.get<TaskList>(`/v3/tasks?${q}`, ctx.signal);
  };
  const setMode = (m: LiveMode, why?: string) => {
    mode.dataset.mode = m;
    mode.textContent = m === 'streaming' ? 'updated live (event stream)' : `refreshed every ${POLL_MS / 1000} s${why ? ` (${why})` : ''}`;
  };
  more.addEventListener('click', async () => {
    if (cursor === null) return;
    const next = await page(cursor);
    for (const t of next.tasks) if (!rows.has(t.task_id)) rows.set(t.task_id, t);
    cursor = next.next_cursor;
    draw();
    ctx.announce(`${next.tasks.length} older tasks loaded`);
  });

  const first = await page(null);
  for (const t of first.tasks) rows.set(t.task_id, t);
  cursor = first.next_cursor;
  draw();

  const poll = () => {
    every(ctx, POLL_MS, async () => {
      const fresh = await page(null);
      if (ctx.signal.aborted) return;
      for (const t of fresh.tasks) rows.set(t.task_id, t);
      // A task the fresh page's span should hold but does not left the filter (its status changed).
      const freshIds = new Set(fresh.tasks.map((t) => t.task_id));
      const oldest = fresh.tasks.at(-1)?.created_at ?? -Infinity;
      for (const [id, t] of rows) if (!freshIds.has(id) && t.created_at > oldest) rows.delete(id);
      draw();
    });
  };
  setMode('streaming');
  followEvents(
    ctx.api.token,
    selectorsFor(filters, endpoints),
    ctx.signal,
    (event) => {
      if (event.type !== 'task') return;
      rows.set(event.task.task_id, summaryOf(event.task, rows.get(event.task.task_id), filters));
      redraw();
    },
    (why) => {
      setMode('polling', why);
      poll();
    },
  );
}

/** The streams that carry every change the filters can show: the narrowest filter given, else each endpoint's. */
function selectorsFor(filters: Filters, endpoints: readonly EndpointDoc[]): EventsSelector[] {
  if (filters.task_group_id) return [{ task_group_id: filters.task_group_id }];
  if (filters.workflow_id) return [{ workflow_id: filters.workflow_id }];
  if (filters.endpoint_id) return [{ endpoint_id: filters.endpoint_id }];
  return endpoints.map((e) => ({ endpoint_id: e.endpoint_id }));
}

/** A table row from a task event (the task doc); what the doc lacks (its workflow) is kept from before. */
function summaryOf(doc: TaskDoc, before: TaskSummary | undefined, filters: Filters): TaskSummary {
  const d = doc.details;
  return {
    task_id: doc.task_id,
    status: doc.status,
    endpoint_id: d.endpoint_id,
    function_uuid: d.function_uuid,
    task_group_id: d.task_group_id,
    workflow_id: before?.workflow_id ?? filters.workflow_id ?? null,
    created_at: d.task_transitions['waiting-for-ep'] ?? before?.created_at ?? Math.min(...Object.values(d.task_transitions)),
    completion_t: doc.completion_t ?? null,
    attempts: d.attempts,
  };
}

function matches(t: TaskSummary, f: Filters): boolean {
  return (f.status === undefined || t.status === f.status)
    && (f.function_uuid === undefined || t.function_uuid === f.function_uuid)
    && (f.endpoint_id === undefined || t.endpoint_id === f.endpoint_id)
    && (f.task_group_id === undefined || t.task_group_id === f.task_group_id)
    && (f.workflow_id === undefined || t.workflow_id === f.workflow_id);
}

function filterForm(filters: Filters, endpoints: EndpointDoc[]): HTMLFormElement {
  const field = (name: string, label: string, control: HTMLElement) => h('div', { class: 'field' }, h('label', { for: `filter-${name}` }, label), control);
  const status = h('select', { id: 'filter-status', name: 'status' }, h('option', { value: '' }, 'any'), ...TASK_STATES.map((s) => h('option', { value: s, selected: filters.status === s }, s)));
  const endpoint = h('select', { id: 'filter-endpoint_id', name: 'endpoint_id' }, h('option', { value: '' }, 'any'), ...endpoints.map((e) => h('option', { value: e.endpoint_id, selected: filters.endpoint_id === e.endpoint_id }, e.endpoint_name)));
  const text = (name: 'function_uuid' | 'workflow_id', placeholder: string) => h('input', { id: `filter-${name}`, name, type: 'text', value: filters[name] ?? '', placeholder, autocomplete: 'off', spellcheck: false });
  const form = h(
    'form',
    { class: 'filters', role: 'search', 'aria-label': 'Filter tasks' },
    field('status', 'Status', status),
    field('function_uuid', 'Function', text('function_uuid', 'function uuid')),
    field('endpoint_id', 'Endpoint', endpoint),
    field('workflow_id', 'Workflow', text('workflow_id', 'workflow id')),
    h('button', { type: 'submit' }, 'Apply'),
  );
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const data = new FormData(form);
    const query: Record<string, string> = {};
    for (const name of FILTERS) {
      const value = String(data.get(name) ?? filters[name] ?? '').trim();
      if (value) query[name] = value;
    }
    location.hash = route('tasks', query);
  });
  return form;
}

function taskRow(t: TaskSummary, names: Map<string, string>): HTMLTableRowElement {
  return h(
    'tr',
    { 'data-task-id': t.task_id, 'data-status': t.status },
    h('th', { scope: 'row' }, h('a', { href: route(`task/${encodeURIComponent(t.task_id)}`), title: t.task_id }, shortId(t.task_id))),
    h('td', {}, statusBadge(t.status)),
    h('td', {}, h('a', { href: route('tasks', { function_uuid: t.function_uuid }), title: t.function_uuid }, shortId(t.function_uuid))),
    h('td', {}, h('a', { href: route('tasks', { endpoint_id: t.endpoint_id }), title: t.endpoint_id }, names.get(t.endpoint_id) ?? shortId(t.endpoint_id))),
    h('td', {}, t.workflow_id === null ? '—' : h('a', { href: route('tasks', { workflow_id: t.workflow_id }) }, t.workflow_id)),
    h('td', {}, formatTime(t.created_at)),
    h('td', {}, formatTime(t.completion_t)),
    h('td', { class: 'num' }, t.attempts),
  );
}
