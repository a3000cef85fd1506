// Objects: what the caller stores and what the gateway served, per reader and per writer; an
// object's record (size, sha256, content type, ingest filters, times) by id, with its lineage.

import type { ObjectMeta, ObjectStats } from '../../protocol/api';
import { fill, formatBytes, h, route } from '../dom';
import type { ViewContext } from '../view';

export async function objectsView(ctx: ViewContext): Promise<void> {
  const stats = await ctx.api.get<ObjectStats>('/v3/objects/stats', ctx.signal);
  const input = h('input', { id: 'object-id', name: 'object_id', type: 'text', required: true, pattern: '[0-9a-f]{64}', autocomplete: 'off', spellcheck: false, placeholder: '64 hex digits' });
  const form = h('form', { class: 'filters', role: 'search', 'aria-label': 'Open an object' }, h('div', { class: 'field' }, h('label', { for: 'object-id' }, 'Object id'), input), h('button', { type: 'submit' }, 'Open'));
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    location.hash = route(`object/${input.value.trim()}`);
  });
  fill(
    ctx.root,
    h('h1', {}, 'Objects'),
    h('dl', { class: 'facts' }, h('dt', {}, 'Objects'), h('dd', {}, stats.objects), h('dt', {}, 'Bytes stored'), h('dd', {}, formatBytes(stats.bytes_stored)), h('dt', {}, 'Bytes served'), h('dd', {}, formatBytes(stats.bytes_served)), h('dt', {}, 'Reads'), h('dd', {}, stats.requests)),
    form,
    table('Who read them', ['Reader', 'Bytes served', 'Reads'], Object.entries(stats.readers).map(([who, r]) => [who, formatBytes(r.bytes_served), String(r.requests)])),
    table('Who wrote them', ['Writer', 'Objects', 'Bytes'], Object.entries(stats.writers).map(([who, w]) => [who, String(w.objects), formatBytes(w.bytes)])),
  );
}

export async function objectView(ctx: ViewContext): Promise<void> {
  const id = ctx.args[0] ?? '';
  const meta = await ctx.api.get<ObjectMeta>(`/v3/objects/${encodeURIComponent(id)}/meta`, ctx.signal);
  fill(
    ctx.root,
    h('h1', {}, 'Object ', h('code', {}, meta.$ref)),
    h('p', {}, h('a', { href: route(`lineage/object/${meta.$ref}`) }, 'Lineage graph')),
    h(
      'dl',
      { class: 'facts' },
      h('dt', {}, 'Size'), h('dd', {}, `${formatBytes(meta.size)} (${meta.size} bytes)`),
      h('dt', {}, 'sha256'), h('dd', {}, h('code', {}, meta.sha256)),
      h('dt', {}, 'Content type'), h('dd', {}, meta.content_type),
      h('dt', {}, 'Stored'), h('dd', {}, meta.created_at),
      h('dt', {}, 'Expires'), h('dd', {}, meta.expires_at ?? 'never'),
    ),
    meta.filters.length === 0
      ? h('p', { class: 'muted' }, 'No ingest filters.')
      : table('Ingest filters', ['Filter', 'Parameters', 'Source sha256'], meta.filters.map((f) => [f.name, f.params === undefined ? '—' : JSON.stringify(f.params), f.source_sha256])),
  );
}

function table(caption: string, columns: string[], rows: string[][]): HTMLElement {
  if (rows.length === 0) return h('p', { class: 'muted' }, `${caption}: nobody yet.`);
  return h(
    'table',
    {},
    h('caption', {}, caption),
    h('thead', {}, h('tr', {}, ...columns.map((c) => h('th', { scope: 'col' }, c)))),
    h('tbody', {}, ...rows.map(([first, ...rest]) => h('tr', {}, h('th', { scope: 'row' }, first ?? ''), ...rest.map((v) => h('td', {}, v))))),
  );
}
