// provDocument on its own (runtime-free code, tested beside it in Node): worker
// telemetry as activity attributes, identifiers that stay valid qualified names whatever an
// ingested task id holds, shared entities written once, and a 10,000-record bundle built in one pass.

import { describe, expect, it } from 'vitest';
import { provDocument, type TaskLineage } from './prov-document';

function record(id: string, extra: Partial<TaskLineage> = {}): TaskLineage {
  return {
    task_id: id,
    source: 'ferry',
    owner: 'alice',
    endpoint_id: 'ep-1',
    function_uuid: 'fn-1',
    activity_id: null,
    workflow_id: 'wf',
    campaign_id: null,
    task_group_id: 'ep-1.g',
    status: 'success',
    attempts: 1,
    transitions: { 'waiting-for-ep': 1_700_000_000, running: 1_700_000_001, success: 1_700_000_002.25 },
    started_at: 1_700_000_001,
    ended_at: 1_700_000_002.25,
    hostname: 'node1',
    used: [{ role: 'args.0', digest: 'a'.repeat(64) }],
    generated: [{ role: 'result', digest: 'b'.repeat(64) }],
    ...extra,
  };
}

describe('provDocument', () => {
  it('writes worker telemetry and the host as activity attributes, and every state change as an xsd:dateTime', () => {
    const doc = provDocument([record('t1', { telemetry: { wall_time_s: 0.5, cpu_time_s: 0.25, peak_memory_bytes: 12_345_678 } })]);
    expect(doc.activity['ferry:task/t1']).toMatchObject({
      'ferry:wall_time_s': 0.5,
      'ferry:cpu_time_s': 0.25,
      'ferry:peak_memory_bytes': 12_345_678,
      'ferry:host': 'node1',
      'prov:startTime': '2023-11-14T22:13:21.000Z',
      'prov:endTime': '2023-11-14T22:13:22.250Z',
      'ferry:transition_waiting_for_ep': { $: '2023-11-14T22:13:20.000Z', type: 'xsd:dateTime' },
      'ferry:transition_success': { $: '2023-11-14T22:13:22.250Z', type: 'xsd:dateTime' },
    });
    // Without telemetry (a cancelled task, an older record): no such attributes at all.
    const bare = provDocument([record('t2', { telemetry: null })]).activity['ferry:task/t2']!;
    expect(Object.keys(bare).filter((k) => /wall_time|cpu_time|peak_memory/.test(k))).toEqual([]);
  });

  it('escapes ids so they stay valid qualified names', () => {
    const doc = provDocument([record("it's (a) task.", { source: 'event', hostname: 'login 1.' })]);
    expect(Object.keys(doc.activity)).toEqual(['ferry:task/it%27s%20%28a%29%20task%2E']);
    expect(Object.keys(doc.agent)).toContain('ferry:host/login%201%2E');
    expect(doc.activity['ferry:task/it%27s%20%28a%29%20task%2E']!['ferry:task_id']).toBe("it's (a) task.");
  });

  it('writes shared entities and agents once', () => {
    const doc = provDocument([record('t1', { generated: [{ role: 'result', object: 'o'.repeat(64) }] }), record('t2', { used: [{ role: 'args.0', object: 'o'.repeat(64) }] })]);
    expect(Object.keys(doc.entity).filter((id) => id.startsWith('ferry:object/'))).toHaveLength(1);
    expect(Object.keys(doc.agent).sort()).toEqual(['ferry:endpoint/ep-1', 'ferry:host/node1', 'ferry:user/alice']);
    expect(Object.keys(doc.entity).filter((id) => id.startsWith('ferry:function/'))).toHaveLength(1);
  });

  it('builds a 10,000-task bundle with one activity per task and the plan on each submitter association', () => {
    const records = Array.from({ length: 10_000 }, (_, i) => record(`t${i}`, { status: i % 10 === 0 ? 'failed' : 'success', generated: i % 10 === 0 ? [] : [{ role: 'result', digest: 'b'.repeat(64) }] }));
    const doc = provDocument(records);
    expect(Object.keys(doc.activity)).toHaveLength(10_000);
    const submitters = Object.values(doc.wasAssociatedWith).filter((a) => a['prov:agent'] === 'ferry:user/alice');
    expect(submitters).toHaveLength(10_000);
    expect(submitters.every((a) => a['prov:plan'] === 'ferry:function/fn-1')).toBe(true);
    expect(Object.values(doc.wasGeneratedBy)).toHaveLength(9_000);
  });
});
