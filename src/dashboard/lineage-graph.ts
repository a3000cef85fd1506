// A lineage graph: tasks and the data objects between them, from lineage records (what each task
// used and generated), laid out in columns from sources to results, drawn as SVG with every node a
// link to its task or object page.

import type { TaskLineage } from '../provenance/prov-document';
import { route, s, shortId } from './dom';

export interface GraphNode {
  key: string;
  kind: 'task' | 'object';
  id: string;
  status?: string;
}

/** Nodes past this are left out (the caption says so). */
export const MAX_NODES = 300;

export class LineageGraph {
  readonly nodes = new Map<string, GraphNode>();
  readonly edges = new Set<string>();
  truncated = false;

  private node(kind: 'task' | 'object', id: string, status?: string): string | null {
    const key = `${kind}:${id}`;
    const existing = this.nodes.get(key);
    if (existing) {
      if (status) existing.status = status;
      return key;
    }
    if (this.nodes.size >= MAX_NODES) {
      this.truncated = true;
      return null;
    }
    this.nodes.set(key, { key, kind, id, ...(status ? { status } : {}) });
    return key;
  }

  addObject(id: string): void {
    this.node('object', id);
  }

  addRecord(record: TaskLineage): void {
    const task = this.node('task', record.task_id, record.status);
    if (task === null) return;
    for (const item of record.used) {
      if (item.object === undefined) continue;
      const object = this.node('object', item.object);
      if (object) this.edges.add(`${object}\n${task}`);
    }
    for (const item of record.generated) {
      if (item.object === undefined) continue;
      const object = this.node('object', item.object);
      if (object) this.edges.add(`${task}\n${object}`);
    }
  }

  /** Column of each node: the longest path from a source to it. */
  levels(): Map<string, number> {
    const level = new Map([...this.nodes.keys()].map((k) => [k, 0]));
    const edges = [...this.edges].map((e) => e.split('\n') as [string, string]);
    // Bellman-Ford style: at most |nodes| rounds, so a cycle (impossible in lineage) cannot hang the page.
    for (let round = 0; round < this.nodes.size; round++) {
      let changed = false;
      for (const [from, to] of edges) {
        const want = level.get(from)! + 1;
        if (want > level.get(to)! && want < this.nodes.size) {
          level.set(to, want);
          changed = true;
        }
      }
      if (!changed) break;
    }
    return level;
  }
}

const BOX = { w: 190, h: 46, gapX: 70, gapY: 18, pad: 16 };

export function drawGraph(graph: LineageGraph, focusKey: string): SVGSVGElement {
  const levels = graph.levels();
  const columns: string[][] = [];
  for (const [key, level] of levels) (columns[level] ??= []).push(key);
  const pos = new Map<string, { x: number; y: number }>();
  columns.forEach((keys, c) => keys.sort().forEach((key, r) => pos.set(key, { x: BOX.pad + c * (BOX.w + BOX.gapX), y: BOX.pad + r * (BOX.h + BOX.gapY) })));
  const width = BOX.pad * 2 + Math.max(1, columns.length) * (BOX.w + BOX.gapX) - BOX.gapX;
  const height = BOX.pad * 2 + Math.max(1, ...columns.map((c) => c?.length ?? 0)) * (BOX.h + BOX.gapY) - BOX.gapY;
  const tasks = [...graph.nodes.values()].filter((n) => n.kind === 'task').length;
  const label = `Lineage graph: ${tasks} tasks and ${graph.nodes.size - tasks} objects`;
  const edgeLines = [...graph.edges].map((e) => {
    const [from, to] = e.split('\n') as [string, string];
    const a = pos.get(from)!;
    const b = pos.get(to)!;
    return s('line', { class: 'edge', x1: a.x + BOX.w, y1: a.y + BOX.h / 2, x2: b.x - 4, y2: b.y + BOX.h / 2, 'marker-end': 'url(#arrow)' });
  });
  const nodes = [...graph.nodes.values()].map((n) => {
    const p = pos.get(n.key)!;
    const href = n.kind === 'task' ? route(`task/${encodeURIComponent(n.id)}`) : route(`object/${n.id}`);
    const name = n.kind === 'task' ? `Task ${n.id}${n.status ? ` (${n.status})` : ''}` : `Object ${n.id}`;
    return s(
      'a',
      { href, 'aria-label': name, class: `node node-${n.kind}${n.key === focusKey ? ' focus' : ''}`, 'data-kind': n.kind, 'data-id': n.id },
      s('title', {}, name),
      s('rect', { x: p.x, y: p.y, width: BOX.w, height: BOX.h, rx: n.kind === 'task' ? 6 : 20 }),
      s('text', { x: p.x + 10, y: p.y + 19 }, n.kind === 'task' ? 'task' : 'object'),
      s('text', { class: 'node-id', x: p.x + 10, y: p.y + 36 }, `${shortId(n.id)}${n.status ? ` · ${n.status}` : ''}`),
    );
  });
  return s(
    'svg',
    { class: 'lineage', viewBox: `0 0 ${width} ${height}`, width, height, role: 'group', 'aria-label': label },
    s('defs', {}, s('marker', { id: 'arrow', viewBox: '0 0 10 10', refX: 10, refY: 5, markerWidth: 7, markerHeight: 7, orient: 'auto-start-reverse' }, s('path', { d: 'M0,0L10,5L0,10z', class: 'arrow' }))),
    ...edgeLines,
    ...nodes,
  );
}
