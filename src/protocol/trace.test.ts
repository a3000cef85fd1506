import { describe, expect, it } from 'vitest';
import { TaskMessage } from './wire';
import { TRACE_HOPS, parseServerTiming, serverTiming, traceHop, type TraceHops } from './trace';

describe('hop trace', () => {
  it('writes each hop with the ms since the one before, and reads the header back', () => {
    const trace: TraceHops = [['gateway.routed', 1000], ['hub.received', 1002], ['agent.received', 1001.25]];
    const header = serverTiming(trace);
    // A hop stamped by a clock behind the one before it (another process) counts 0, never negative.
    expect(header).toBe('gateway.routed;dur=0, hub.received;dur=2.000, agent.received;dur=0.000');
    expect(parseServerTiming(header)).toEqual([{ hop: 'gateway.routed', ms: 0 }, { hop: 'hub.received', ms: 2 }, { hop: 'agent.received', ms: 0 }]);
  });

  it('adds hops only to a traced task, and no more than its bound', () => {
    traceHop(undefined, 'agent.received'); // an untraced task: nothing to do, nothing thrown
    const trace: TraceHops = [];
    for (let i = 0; i < 100; i++) traceHop(trace, 'worker.sent', i);
    expect(trace).toHaveLength(TRACE_HOPS.length * 2);
  });

  it('refuses a task message whose trace is too long or names an unknown hop', () => {
    const task = { task_id: 't', function_uuid: '00000000-0000-8000-8000-000000000001', payload: { args: [] } };
    expect(TaskMessage.safeParse({ ...task, trace: [['agent.received', 1]] }).success).toBe(true);
    expect(TaskMessage.safeParse({ ...task, trace: [['somewhere', 1]] }).success).toBe(false);
    expect(TaskMessage.safeParse({ ...task, trace: Array.from({ length: 100 }, () => ['agent.received', 1]) }).success).toBe(false);
  });
});
