// Lineage of a task or an object, up (where its inputs came from) and down (what used its
// outputs), through the provenance routes, drawn as a graph.

import type { TaskLineage } from '../../provenance/prov-document';
import { FerryApiError } from '../../protocol/error-body';
import { fill, h, route } from '../dom';
import { drawGraph, LineageGraph, MAX_NODES } from '../lineage-graph';
import type { ViewContext } from '../view';

const DEPTH = 10;

interface Steps {
  steps: Array<{ depth: number; record: TaskLineage }>;
}

export async function lineageView(ctx: ViewContext): Promise<void> {
  const [kind, rawId] = ctx.args;
  const id = decodeURIComponent(rawId ?? '');
  if ((kind !== 'task' && kind !== 'object') || !id) {
    fill(ctx.root, h('h1', {}, 'Lineage'), h('p', {}, 'Open the lineage of a task or an object from its page.'));
    return;
  }
  fill(ctx.root, h('h1', {}, `Lineage of ${kind} `, h('code', {}, id)), h('p', { class: 'muted' }, 'Loading…'));
  const graph = new LineageGraph();
  const walk = async (objectId: string, direction: 'up' | 'down') => {
    for (const step of (await orNull(ctx.api.get<Steps>(`/v3/provenance/objects/${objectId}?direction=${direction}&depth=${DEPTH}`, ctx.signal)))?.steps ?? []) graph.addRecord(step.record);
  };
  if (kind === 'task') {
    const own = await orNull(ctx.api.get<{ records: TaskLineage[] }>(`/v3/provenance/tasks/${encodeURIComponent(id)}?format=records`, ctx.signal));
    const record = own?.records[0];
    if (!record) {
      fill(ctx.root, h('h1', {}, 'Lineage of task ', h('code', {}, id)), h('p', {}, 'No lineage yet: a task has a record once it has ended (a few seconds later). ', h('a', { href: route(`task/${encodeURIComponent(id)}`) }, 'Back to the task')));
      return;
    }
    graph.addRecord(record);
    await Promise.all([
      ...record.used.filter((i) => i.object !== undefined).map((i) => walk(i.object!, 'up')),
      ...record.generated.filter((i) => i.object !== undefined).map((i) => walk(i.object!, 'down')),
    ]);
  } else {
    graph.addObject(id);
    await Promise.all([walk(id, 'up'), walk(id, 'down')]);
  }
  if (ctx.signal.aborted) return;
  fill(
    ctx.root,
    h('h1', {}, `Lineage of ${kind} `, h('code', {}, id)),
    h('p', { class: 'muted' }, 'Tasks (squared) and the data objects (rounded) they used and generated, from sources on the left to results on the right. Each node opens its page.', graph.truncated ? ` Only the first ${MAX_NODES} nodes are drawn.` : ''),
    h('div', { class: 'graph-scroll' }, drawGraph(graph, `${kind}:${id}`)),
  );
}

async function orNull<T>(promise: Promise<T>): Promise<T | null> {
  try {
    return await promise;
  } catch (err) {
    if (err instanceof FerryApiError && err.status === 404) return null;
    throw err;
  }
}
