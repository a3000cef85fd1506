// The hop trace of one task: `POST /v3/run` with `Ferry-Trace: 1` answers with a Server-Timing
// header naming each hop the task took (gateway → hub → agent → interchange → manager → worker →
// isolate and back) and the milliseconds since the hop before it. The task carries the list of its
// endpoint hops out and its result carries it back; only a traced task carries one, so an untraced
// task pays nothing. `npm run bench -- latency` prints the median of each hop.
//
// Each hop is stamped with the wall clock of the process it happens in (all on one machine for the
// bench; across machines, clock skew shows in the hops that cross). workerd's clock advances only
// at I/O and in whole milliseconds, so the gateway's hops are as coarse as that.

import { z } from 'zod';

/** The request header that asks for a trace, and its one value. */
export const TRACE_HEADER = 'ferry-trace';

/** Where a task can be seen on its way, in the order it passes them. */
export const TRACE_HOPS = [
  'gateway.routed', // the route has authenticated and parsed the request
  'hub.received', // the endpoint's hub has admitted it (rate limit, functions resolved)
  'hub.stored', // the task is stored with its outbox row
  'hub.sent', // its frame is on the agent's socket
  'agent.received', // the agent has parsed the frame
  'interchange.sent', // the interchange has written it to a manager's socket
  'manager.received', // the manager has parsed it
  'worker.received', // the worker process has it (Node IPC)
  'isolate.entered', // the sandbox starts the function
  'isolate.left', // the function has returned
  'worker.sent', // the result is on the IPC channel
  'manager.results', // the manager has the result
  'agent.results', // the agent has the result (journaled)
  'agent.sent', // the results frame is on the gateway's socket (after the journal's fsync)
  'hub.results', // the hub has the frame
  'hub.finished', // the result is stored; waiters are woken
  'hub.answered', // the waiting /v3/run has read the task's doc
] as const;
export type TraceHop = (typeof TRACE_HOPS)[number];

/** Hops as [name, wall-clock ms]; bounded, as every list a peer sends. */
export const TraceHops = z.array(z.tuple([z.enum(TRACE_HOPS), z.number()])).max(TRACE_HOPS.length * 2);
export type TraceHops = z.infer<typeof TraceHops>;

/** Appends a hop stamped now (sub-millisecond where the runtime has it) to a traced task's list. */
export function traceHop(trace: TraceHops | undefined, hop: TraceHop, at: number = wallClockMs()): void {
  if (trace && trace.length < TRACE_HOPS.length * 2) trace.push([hop, at]);
}

// The protocol zone has no runtime types: the clock is looked up, not assumed.
const clock = (globalThis as { performance?: { timeOrigin?: number; now(): number } }).performance;

/** Wall-clock milliseconds, with the fraction Node's monotonic clock gives; whole ms elsewhere. */
export function wallClockMs(): number {
  return clock?.timeOrigin ? clock.timeOrigin + clock.now() : Date.now();
}

/** `Server-Timing` header value: each hop with the milliseconds since the one before it. */
export function serverTiming(trace: TraceHops): string {
  return trace.map(([hop, at], i) => `${hop};dur=${i === 0 ? 0 : Math.max(0, at - trace[i - 1]![1]).toFixed(3)}`).join(', ');
}

/** A `Server-Timing` header read back: hop name → milliseconds since the hop before it. */
export function parseServerTiming(header: string): Array<{ hop: string; ms: number }> {
  return header
    .split(',')
    .map((part) => /^\s*([\w.-]+)\s*;\s*dur=([\d.]+)/.exec(part))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => ({ hop: m[1]!, ms: Number(m[2]) }));
}
