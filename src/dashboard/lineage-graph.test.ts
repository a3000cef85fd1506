// The dashboard's lineage graph model: tasks and objects from lineage records, each node in the
// column of its longest path from a source, bounded in size.

import { describe, expect, it } from 'vitest';
import { LineageGraph, MAX_NODES } from './lineage-graph';
import type { TaskLineage } from '../provenance/prov-document';

function record(task_id: string, used: string[], generated: string[]): TaskLineage {
  return {
    task_id, source: 'ferry', owner: 'alice', endpoint_id: null, function_uuid: null, activity_id: null, workflow_id: null, campaign_id: null, task_group_id: null,
    status: 'success', attempts: 1, transitions: {}, started_at: null, ended_at: null, hostname: null,
    used: used.map((object, i) => ({ role: `args.${i}`, object })).concat([{ role: 'args.9', value: '1' } as never]),
    generated: generated.map((object) => ({ role: 'result', object })),
  };
}

describe('LineageGraph', () => {
  it('puts a chain in successive columns, whatever order its records come in', () => {
    const graph = new LineageGraph();
    graph.addRecord(record('t3', ['y', 'x'], ['z']));
    graph.addRecord(record('t1', ['raw'], ['x']));
    graph.addRecord(record('t2', ['x'], ['y']));
    graph.addRecord(record('t2', ['x'], ['y'])); // the same record twice: nothing new
    const levels = graph.levels();
    expect(Object.fromEntries(levels)).toEqual({ 'object:raw': 0, 'task:t1': 1, 'object:x': 2, 'task:t2': 3, 'object:y': 4, 'task:t3': 5, 'object:z': 6 });
    expect(graph.edges.size).toBe(7);
    // Inline values (no object) are not nodes.
    expect([...graph.nodes.keys()].every((k) => k.startsWith('task:') || k.startsWith('object:'))).toBe(true);
  });

  it(`draws at most ${MAX_NODES} nodes and says it left some out`, () => {
    const graph = new LineageGraph();
    for (let i = 0; i < MAX_NODES; i++) graph.addRecord(record(`t${i}`, [`o${i}`], []));
    expect(graph.nodes.size).toBe(MAX_NODES);
    expect(graph.truncated).toBe(true);
  });
});
