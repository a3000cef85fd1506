// Tasks: a live table of the caller's tasks, newest first, with filters (status, function,
// endpoint, workflow) kept in the address so a filtered view can be linked. Older pages load on
// demand; the newest page keeps itself current while the view is open.

import type { EndpointDoc } from '../../protocol/api';
import type { TaskList, TaskSummary } from '../../protocol/task-list';
import { TASK_STATES } from '../../protocol/task-state';
import { fill, formatTime, h, reconcile, route, shortId, statusBadge } from '../dom';
import { every, type ViewContext } from '../view';

const PAGE = 200;
const REFRESH_MS = 1_500;
const FILTERS = ['status', 'function_uuid', 'endpoint_id', 'workflow_id', 'task_group_id'] as const;

export async function tasksView(ctx: ViewContext): Promise<void> {
  const filters: Record<string, string> = {};
  for (const name of FILTERS) {
    const value = ctx.query.get(name);
    if (value) filters[name] = value;
  }
  const endpoints = await ctx.api.get<EndpointDoc[]>('/v2/endpoints', ctx.signal);
  const counts = h('p', { id: 'task-counts', class: 'counts' });
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
      h('caption', {}, 'Newest first; updated live'),
      h('thead', {}, h('tr', {}, ...['Task', 'Status', 'Function', 'Endpoint', 'Workflow', 'Submitted', 'Ended', 'Attempts'].map((c) => h('th', { scope: 'col' }, c)))),
      body,
    ),
    more,
  );
  const names = new Map(endpoints.map((e) => [e.endpoint_id, e.endpoint_name]));
  let newest: TaskSummary[] = [];
  let older: TaskSummary[] = [];
  let olderCursor: string | null = null;
  let firstCursor: string | null = null;
  let drawn = new Map<string, { key: string; tr: HTMLTableRowElement }>();

  const draw = () => {
    const seen = new Set(newest.map((t) => t.task_id));
    const rows = [...newest, ...older.filter((t) => !seen.has(t.task_id))];
    // Rows whose task did not change are kept (with any focus inside), changed ones rebuilt.
    const next = new Map<string, { key: string; tr: HTMLTableRowElement }>();
    for (const t of rows) {
      const key = `${t.status} ${t.completion_t} ${t.attempts}`;
      const kept = drawn.get(t.task_id);
      next.set(t.task_id, kept && kept.key === key ? kept : { key, tr: taskRow(t, names) });
    }
    drawn = next;
    reconcile(body, [...next.values()].map((r) => r.tr));
    const byStatus = new Map<string, number>();
    for (const t of rows) byStatus.set(t.status, (byStatus.get(t.status) ?? 0) + 1);
    fill(counts, `${rows.length} tasks shown`, ...[...byStatus].map(([status, n]) => h('span', { class: 'count', 'data-status': status }, ' · ', statusBadge(status), ' ', h('span', { class: 'n' }, n))));
    more.hidden = (older.length === 0 ? firstCursor : olderCursor) === null;
  };
  const page = (cursor: string | null) => {
    const q = new URLSearchParams({ ...filters, limit: String(PAGE) });
    if (cursor) q.set('cursor', cursor);
    return ctx.api.get<TaskList>(`/v3/tasks?${q}`, ctx.signal);
  };
  more.addEventListener('click', async () => {
    const cursor = older.length === 0 ? firstCursor : olderCursor;
    if (cursor === null) return;
    const next = await page(cursor);
    older = [...older, ...next.tasks];
    olderCursor = next.next_cursor;
    draw();
    ctx.announce(`${next.tasks.length} older tasks loaded`);
  });
  every(ctx, REFRESH_MS, async () => {
    const first = await page(null);
    if (ctx.signal.aborted) return;
    newest = first.tasks;
    firstCursor = first.next_cursor;
    draw();
  });
}

function filterForm(filters: Record<string, string>, endpoints: EndpointDoc[]): HTMLFormElement {
  const field = (name: string, label: string, control: HTMLElement) => h('div', { class: 'field' }, h('label', { for: `filter-${name}` }, label), control);
  const status = h('select', { id: 'filter-status', name: 'status' }, h('option', { value: '' }, 'any'), ...TASK_STATES.map((s) => h('option', { value: s, selected: filters.status === s }, s)));
  const endpoint = h('select', { id: 'filter-endpoint_id', name: 'endpoint_id' }, h('option', { value: '' }, 'any'), ...endpoints.map((e) => h('option', { value: e.endpoint_id, selected: filters.endpoint_id === e.endpoint_id }, e.endpoint_name)));
  const text = (name: string, placeholder: string) => h('input', { id: `filter-${name}`, name, type: 'text', value: filters[name] ?? '', placeholder, autocomplete: 'off', spellcheck: false });
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
