// The peer's worker process for the bench (bench/bullmq.ts forks it with `node --import tsx`): one
// BullMQ Worker, concurrency from argv, whose jobs return `data.i + 1`. It counts what it ran and
// what completed, per run, and reports over IPC: `ready` once connected; `done` when a run's
// expected count of jobs has completed (the moment the parent stops its clock); `report` on asking.
// Usage: bullmq-worker.ts <redis-port> <queue> <concurrency>

import { Worker } from 'bullmq';

export interface NoopJob {
  run: string;
  i: number;
}

/** What the parent sends. */
export type ToWorker = { type: 'expect'; run: string; n: number } | { type: 'report'; run: string } | { type: 'close' };

/** What the worker sends back. */
export type FromWorker =
  | { type: 'ready' }
  | { type: 'expecting'; run: string }
  | { type: 'done'; run: string }
  | { type: 'report'; run: string; executed: number; executedTwice: number; completed: number; wrongResults: number; completedTwice: number };

interface RunCounts {
  n: number;
  executions: Uint8Array;
  completions: Uint8Array;
  completed: number;
  wrongResults: number;
}

const [port, queueName, concurrency] = process.argv.slice(2);
const runs = new Map<string, RunCounts>();
const send = (msg: FromWorker) => process.send!(msg);

const worker = new Worker<NoopJob, number>(
  queueName!,
  async (job) => {
    const counts = runs.get(job.data.run);
    if (counts) counts.executions[job.data.i] = Math.min(255, counts.executions[job.data.i]! + 1);
    return job.data.i + 1;
  },
  { connection: { host: '127.0.0.1', port: Number(port) }, concurrency: Number(concurrency) },
);

worker.on('completed', (job, result) => {
  const counts = runs.get(job.data.run);
  if (!counts) return;
  if (result !== job.data.i + 1) counts.wrongResults++;
  counts.completions[job.data.i] = Math.min(255, counts.completions[job.data.i]! + 1);
  if (++counts.completed === counts.n) send({ type: 'done', run: job.data.run });
});

process.on('message', (msg: ToWorker) => {
  if (msg.type === 'expect') {
    runs.set(msg.run, { n: msg.n, executions: new Uint8Array(msg.n), completions: new Uint8Array(msg.n), completed: 0, wrongResults: 0 });
    send({ type: 'expecting', run: msg.run });
  } else if (msg.type === 'report') {
    const c = runs.get(msg.run)!;
    const count = (xs: Uint8Array, pred: (x: number) => boolean) => xs.reduce((s, x) => s + (pred(x) ? 1 : 0), 0);
    send({
      type: 'report', run: msg.run, completed: c.completed, wrongResults: c.wrongResults,
      executed: count(c.executions, (x) => x > 0), executedTwice: count(c.executions, (x) => x > 1), completedTwice: count(c.completions, (x) => x > 1),
    });
  } else if (msg.type === 'close') {
    void worker.close().then(() => process.exit(0));
  }
});
process.on('disconnect', () => process.exit(0));

await worker.waitUntilReady();
send({ type: 'ready' });
