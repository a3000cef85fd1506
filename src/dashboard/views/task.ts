// One task: status, where it ran, arguments (from its lineage record, truncated), its result or
// exception with the stack, stdout, every state change and attempt on a timeline, and a cancel
// button while it has not ended. Refreshes itself until the task ends.

import type { TaskDoc } from '../../protocol/api';
import type { TaskLineage } from '../../provenance/prov-document';
import { FerryApiError } from '../../protocol/error-body';
import { fill, formatTime, h, route, shortId, statusBadge, truncate } from '../dom';
import { timeline } from '../timeline';
import { followEvents } from '../live';
import { every, type ViewContext } from '../view';

const REFRESH_MS = 1_000;
const MAX_SHOWN_CHARS = 20_000;
const MAX_ARG_CHARS = 200;
const FINAL = new Set(['success', 'failed', 'cancelled']);

export async function taskView(ctx: ViewContext): Promise<void> {
  const taskId = decodeURIComponent(ctx.args[0] ?? '');
  let ended = false;
  let lineage: TaskLineage | null = null;
  /** Draws the doc; once the task has ended, with its lineage record (written a moment later). */
  const show = async (doc: TaskDoc) => {
    if (FINAL.has(doc.status)) lineage = await lineageOf(ctx, taskId);
    if (ctx.signal.aborted) return;
    render(ctx, doc, lineage);
    ended = FINAL.has(doc.status);
  };
  await show(await ctx.api.get<TaskDoc>(`/v2/tasks/${encodeURIComponent(taskId)}`, ctx.signal));
  if (ended && lineage) return;
  // Until the task has ended and its record is there: its event stream, or the doc read again.
  const poll = () =>
    every(ctx, REFRESH_MS, async () => {
      if (!(ended && lineage)) await show(await ctx.api.get<TaskDoc>(`/v2/tasks/${encodeURIComponent(taskId)}`, ctx.signal));
    });
  if (ended) return poll();
  const stream = new AbortController();
  ctx.signal.addEventListener('abort', () => stream.abort());
  followEvents(
    ctx.api.token,
    [{ task_ids: [taskId] }],
    stream.signal,
    (event) => {
      if (event.type !== 'task') return;
      void show(event.task).then(() => {
        if (!ended) return;
        stream.abort();
        if (!lineage) poll();
      });
    },
    () => poll(),
  );
}

/** The task's lineage record: written shortly after it ends (404 until then). */
async function lineageOf(ctx: ViewContext, taskId: string): Promise<TaskLineage | null> {
  try {
    const { records } = await ctx.api.get<{ records: TaskLineage[] }>(`/v3/provenance/tasks/${encodeURIComponent(taskId)}?format=records`, ctx.signal);
    return records[0] ?? null;
  } catch (err) {
    if (err instanceof FerryApiError && err.status === 404) return null;
    throw err;
  }
}

function render(ctx: ViewContext, doc: TaskDoc, lineage: TaskLineage | null): void {
  const d = doc.details;
  const focused = document.activeElement?.id;
  const cancel = FINAL.has(doc.status)
    ? null
    : h('button', { id: 'cancel-task', type: 'button', class: 'danger' }, 'Cancel task');
  cancel?.addEventListener('click', async () => {
    cancel.disabled = true;
    try {
      const after = await ctx.api.del<TaskDoc>(`/v2/tasks/${encodeURIComponent(doc.task_id)}`);
      ctx.announce(`Task ${after.status}`);
      render(ctx, after, null);
    } catch (err) {
      ctx.announce(`Cancel failed: ${(err as Error).message}`);
      cancel.disabled = false;
    }
  });
  fill(
    ctx.root,
    h('h1', {}, 'Task ', h('code', {}, doc.task_id)),
    h('p', {}, h('span', { id: 'task-status' }, statusBadge(doc.status)), ' ', cancel, ' ', h('a', { href: route(`lineage/task/${encodeURIComponent(doc.task_id)}`) }, 'Lineage graph')),
    h(
      'dl',
      { class: 'facts' },
      h('dt', {}, 'Function'), h('dd', {}, h('a', { href: route('tasks', { function_uuid: d.function_uuid }) }, d.function_uuid)),
      h('dt', {}, 'Endpoint'), h('dd', {}, h('a', { href: route('tasks', { endpoint_id: d.endpoint_id }) }, d.endpoint_id)),
      h('dt', {}, 'Task group'), h('dd', {}, h('a', { href: route('tasks', { task_group_id: d.task_group_id }) }, shortId(d.task_group_id))),
      h('dt', {}, 'Attempts'), h('dd', {}, d.attempts),
      h('dt', {}, 'Ended'), h('dd', {}, formatTime(doc.completion_t)),
      lineage?.hostname ? h('dt', {}, 'Host') : null, lineage?.hostname ? h('dd', {}, lineage.hostname) : null,
    ),
    h('h2', {}, 'Timeline'),
    timeline(d.task_transitions, lineage?.attempt_history ?? (lineage?.started_at ? [{ attempt: d.attempts || 1, outcome: doc.status, started_at: lineage.started_at, ...(lineage.ended_at ? { ended_at: lineage.ended_at } : {}), ...(lineage.hostname ? { host: lineage.hostname } : {}) }] : []), Date.now() / 1000),
    h('h2', {}, 'Arguments'),
    argumentsOf(lineage, doc.status),
    ...outcome(doc),
  );
  if (focused) document.getElementById(focused)?.focus();
}

function argumentsOf(lineage: TaskLineage | null, status: string): HTMLElement {
  if (!lineage) return h('p', { class: 'muted' }, FINAL.has(status) ? 'Arguments appear with the lineage record, a few seconds after the task ends.' : 'Arguments appear once the task has ended (from its lineage record).');
  if (lineage.used.length === 0) return h('p', { class: 'muted' }, 'No arguments.');
  return h(
    'table',
    { class: 'args' },
    h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Argument'), h('th', { scope: 'col' }, 'Value'))),
    h(
      'tbody',
      {},
      ...lineage.used.map((item) =>
        h(
          'tr',
          {},
          h('th', { scope: 'row' }, item.role),
          h('td', {}, item.object !== undefined
            ? h('a', { href: route(`object/${item.object}`) }, 'object ', h('code', {}, shortId(item.object)))
            : item.value !== undefined
              ? h('code', {}, truncate(item.value, MAX_ARG_CHARS))
              : h('span', { class: 'muted' }, 'sha256 ', h('code', {}, item.digest ?? '?'), ' (too large to show)')),
        ),
      ),
    ),
  );
}

function outcome(doc: TaskDoc): HTMLElement[] {
  const out: HTMLElement[] = [];
  if (doc.status === 'success') {
    out.push(h('h2', {}, 'Result'));
    const ref = doc.details.result_ref ? (doc.result as { $ref?: string; size?: number } | undefined) : undefined;
    if (ref?.$ref) out.push(h('p', {}, 'Stored as ', h('a', { href: route(`object/${ref.$ref}`) }, 'object ', h('code', {}, shortId(ref.$ref))), ref.size !== undefined ? ` (${ref.size} bytes)` : ''));
    else out.push(h('pre', { id: 'task-result', tabindex: 0 }, truncate(JSON.stringify(doc.result, null, 2) ?? 'undefined', MAX_SHOWN_CHARS)));
  }
  if (doc.exception) {
    const e = doc.exception;
    out.push(h('h2', {}, 'Exception'), h('p', {}, h('code', {}, e.code), ' ', h('strong', {}, e.name), ': ', e.message));
    if (e.stack) out.push(h('pre', { id: 'task-stack', tabindex: 0 }, truncate(e.stack, MAX_SHOWN_CHARS)));
  }
  if (doc.stdout) out.push(h('h2', {}, 'Output (stdout)'), h('pre', { id: 'task-stdout', tabindex: 0 }, truncate(doc.stdout, MAX_SHOWN_CHARS)));
  return out;
}
