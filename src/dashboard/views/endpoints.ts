// Endpoints: online or offline, workers busy and idle, managers, blocks, outstanding and pending
// tasks, and the last hour as a chart. Refreshed every few seconds.

import type { EndpointDoc, EndpointStatus } from '../../protocol/api';
import type { EndpointStatusHistory } from '../../protocol/task-list';
import { fill, formatTime, h, route, statusBadge } from '../dom';
import { statusChart } from '../status-chart';
import { every, type ViewContext } from '../view';

const REFRESH_MS = 5_000;

export async function endpointsView(ctx: ViewContext): Promise<void> {
  const list = h('div', { class: 'endpoints' });
  fill(ctx.root, h('h1', {}, 'Endpoints'), list);
  every(ctx, REFRESH_MS, async () => {
    const endpoints = await ctx.api.get<EndpointDoc[]>('/v2/endpoints', ctx.signal);
    const cards = await Promise.all(
      endpoints.map(async (ep) => {
        const [status, history] = await Promise.all([
          ctx.api.get<EndpointStatus>(`/v2/endpoints/${ep.endpoint_id}/status`, ctx.signal),
          ctx.api.get<EndpointStatusHistory>(`/v3/endpoints/${ep.endpoint_id}/status/history`, ctx.signal),
        ]);
        return endpointCard(ep, status, history);
      }),
    );
    if (ctx.signal.aborted) return;
    if (cards.length === 0) fill(list, h('p', {}, 'No endpoints yet. Start one with ', h('code', {}, 'ferry endpoint start NAME'), '.'));
    else fill(list, ...cards);
  });
}

function endpointCard(ep: EndpointDoc, status: EndpointStatus, history: EndpointStatusHistory): HTMLElement {
  const d = status.details;
  const busy = Math.max(0, d.total_workers - d.idle_workers);
  const titleId = `ep-${ep.endpoint_id}`;
  return h(
    'section',
    { class: 'card endpoint', 'aria-labelledby': titleId, 'data-endpoint-id': ep.endpoint_id, 'data-status': status.status },
    h('h2', { id: titleId }, ep.display_name || ep.endpoint_name, ' ', statusBadge(status.status)),
    h('p', { class: 'muted' }, ep.endpoint_name, ' · ', h('code', {}, ep.endpoint_id)),
    h(
      'dl',
      { class: 'facts' },
      ...fact('Workers busy', `${busy} of ${d.total_workers}`),
      ...fact('Workers idle', d.idle_workers),
      ...fact('Blocks', d.blocks),
      ...fact('Managers', d.managers),
      ...fact('Outstanding tasks', d.outstanding_tasks),
      ...fact('Pending tasks', d.pending_tasks),
      ...fact('Last heartbeat', formatTime(d.last_heartbeat)),
    ),
    h('figure', {}, statusChart(history.samples, history.window_s, history.sample_every_s, Date.now() / 1000), h('figcaption', {}, h('span', { class: 'key-busy' }, 'busy workers'), ' and ', h('span', { class: 'key-outstanding' }, 'outstanding tasks'), ', last hour')),
    h('p', {}, h('a', { href: route('tasks', { endpoint_id: ep.endpoint_id }) }, 'Tasks of this endpoint')),
  );
}

function fact(name: string, value: string | number): HTMLElement[] {
  return [h('dt', {}, name), h('dd', {}, value)];
}
