// The terminal tree of `ferry lineage TASK`, drawn from a PROV-JSON document built the way the
// gateway builds it: a task that ran three times lists its executions, the lost ones with why.

import { describe, expect, it } from 'vitest';
import { taskLines } from './lineage-command';
import { provDocument } from '../provenance/prov-document';
import { taskRecord } from '../../test/helpers/lineage-records';

const record = taskRecord({
  attempts: 3,
  transitions: { 'waiting-for-ep': 1_790_000_000, success: 1_790_000_004 },
  started_at: 1_790_000_003,
  ended_at: 1_790_000_004,
  hostname: 'node-7',
});

describe('ferry lineage TASK', () => {
  it('lists every execution of a task that ran more than once, the lost ones with why', () => {
    const doc = provDocument([
      {
        ...record,
        attempt_history: [
          { attempt: 1, outcome: 'lost', reason: 'worker 41 exited (SIGKILL)', ended_at: 1_790_000_001 },
          { attempt: 2, outcome: 'lost', reason: 'manager m-1 lost', ended_at: 1_790_000_002 },
          { attempt: 3, outcome: 'success', host: 'node-7', started_at: 1_790_000_003, ended_at: 1_790_000_004 },
        ],
      },
    ]);
    const lines = taskLines(doc, record.task_id);
    const at = lines.findIndex((l) => l.endsWith('executions'));
    expect(at).toBeGreaterThan(0);
    expect(lines.slice(at + 1, at + 4).map((l) => l.replace(/^[│ ]*[├└]─ /, ''))).toEqual([
      '#1 lost · at 2026-09-21 14:13:21.000 UTC · worker 41 exited (SIGKILL)',
      '#2 lost · at 2026-09-21 14:13:22.000 UTC · manager m-1 lost',
      '#3 success · on node-7 · at 2026-09-21 14:13:24.000 UTC',
    ]);
  });

  it('shows no executions for a task that ran once', () => {
    expect(taskLines(provDocument([record]), record.task_id).some((l) => l.includes('executions'))).toBe(false);
  });
});
