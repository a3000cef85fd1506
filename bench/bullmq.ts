// The peer the bench measures Ferry against in the same run: BullMQ on a redis-server the bench
// starts, one Worker (concurrency 50) in one separate Node process (bench/bullmq-worker.ts). Every
// job must complete once with `i + 1`, or the run throws.

import { fork, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { Queue, QueueEvents } from 'bullmq';
import { startRedisServer } from '../test/helpers/redis-server';
import { childPid, clientCpuSeconds, cpuClock, treeCpuSeconds, type CpuParts } from './cpu';
import type { FromWorker, NoopJob, ToWorker } from './bullmq-worker';

export const BULLMQ_VERSION = (JSON.parse(readFileSync(createRequire(import.meta.url).resolve('bullmq/package.json'), 'utf8')) as { version: string }).version;
export const BULLMQ_CONCURRENCY = 50;

export interface BullmqPeer {
  /** One `addBulk` of `n` no-op jobs, clocked from the call to the last completion the worker reports. */
  throughput(n: number): Promise<{ rate: number; cpu: CpuParts }>;
  /** `n` sequential round trips (add one job, `waitUntilFinished`) after `warmUp` untimed ones: milliseconds, sorted. */
  roundTrips(warmUp: number, n: number): Promise<number[]>;
  stop(): Promise<void>;
}

export async function startBullmqPeer(): Promise<BullmqPeer> {
  const redis = await startRedisServer();
  const connection = { host: redis.host, port: redis.port };
  const queueName = 'bench-noop';
  const child = fork(new URL('./bullmq-worker.ts', import.meta.url).pathname, [String(redis.port), queueName, String(BULLMQ_CONCURRENCY)], { execArgv: ['--import', 'tsx'] });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let queue: Queue<NoopJob, number> | undefined;
  let queueEvents: QueueEvents | undefined;
  const stop = async () => {
    await queueEvents?.close();
    await queue?.close();
    if (child.connected) child.send({ type: 'close' } satisfies ToWorker);
    const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(timer);
    await redis.stop();
  };
  try {
    await message(child, (m) => m.type === 'ready');
    queue = new Queue<NoopJob, number>(queueName, { connection });
    await queue.waitUntilReady();
    queueEvents = new QueueEvents(queueName, { connection });
    await queueEvents.waitUntilReady();
  } catch (err) {
    await stop();
    throw err;
  }
  const q = queue;
  const events = queueEvents;
  const redisPid = childPid('redis-server', `:${redis.port}`);
  const cpuParts = (): CpuParts => ({ redis: treeCpuSeconds([redisPid]), worker: treeCpuSeconds([child.pid!]), client: clientCpuSeconds() });
  let runs = 0;

  /** Tells the worker to count run `run` of `n` jobs; `done` resolves when all of them completed. */
  const expect = async (n: number) => {
    const run = `r${++runs}`;
    const done = message(child, (m) => m.type === 'done' && m.run === run);
    done.catch(() => undefined);
    child.send({ type: 'expect', run, n } satisfies ToWorker);
    await message(child, (m) => m.type === 'expecting' && m.run === run);
    return { run, done };
  };
  /** Throws unless each of the run's `n` jobs ran once and completed once with `i + 1`. */
  const check = async (run: string, n: number) => {
    child.send({ type: 'report', run } satisfies ToWorker);
    const r = (await message(child, (m) => m.type === 'report' && m.run === run)) as Extract<FromWorker, { type: 'report' }>;
    const problems = [
      r.completed !== n && `${r.completed} of ${n} completed`,
      r.executed !== n && `${r.executed} of ${n} ran`,
      r.wrongResults && `${r.wrongResults} wrong results`,
      r.executedTwice && `${r.executedTwice} ran twice`,
      r.completedTwice && `${r.completedTwice} completed twice`,
    ].filter(Boolean);
    if (problems.length) throw new Error(`BullMQ run ${run}: ${problems.join(', ')}`);
  };
  const bulk = async (n: number) => {
    const { run, done } = await expect(n);
    const jobs = Array.from({ length: n }, (_, i) => ({ name: 'noop', data: { run, i } }));
    const clock = cpuClock(cpuParts);
    const t0 = performance.now();
    await q.addBulk(jobs);
    await done;
    const seconds = (performance.now() - t0) / 1000;
    const cpu = clock.stop(n);
    await check(run, n);
    return { rate: n / seconds, cpu };
  };

  return {
    async throughput(n) {
      // As warmIncrement does for Ferry: a few jobs first, outside the clock.
      await bulk(4);
      const measured = await bulk(n);
      const counts = await q.getJobCounts('failed', 'active', 'wait', 'delayed');
      if (Object.values(counts).some((c) => c !== 0)) throw new Error(`BullMQ queue after the run: ${JSON.stringify(counts)}`);
      return measured;
    },
    async roundTrips(warmUp, n) {
      const { run, done } = await expect(warmUp + n);
      const times: number[] = [];
      for (let i = 0; i < warmUp + n; i++) {
        const t0 = performance.now();
        const job = await q.add('noop', { run, i });
        const result = await job.waitUntilFinished(events, 30_000);
        if (i >= warmUp) times.push(performance.now() - t0);
        if (result !== i + 1) throw new Error(`BullMQ round trip ${i}: result ${JSON.stringify(result)}`);
      }
      // waitUntilFinished hears of a completion from Redis, possibly before the worker's own
      // 'completed' handler counted it: wait for the worker to count them all before checking.
      await done;
      await check(run, warmUp + n);
      return times.sort((a, b) => a - b);
    },
    stop,
  };
}

/** The next message from the worker process that `match`es; rejects if the process exits first or at the deadline. */
function message(child: ChildProcess, match: (m: FromWorker) => boolean, timeoutMs = 300_000): Promise<FromWorker> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`no message from the BullMQ worker process within ${timeoutMs} ms`));
    }, timeoutMs);
    const onMessage = (m: FromWorker) => {
      if (!match(m)) return;
      cleanup();
      resolve(m);
    };
    const onExit = (code: number | null) => {
      cleanup();
      reject(new Error(`BullMQ worker process exited (${code})`));
    };
    const cleanup = () => {
      clearTimeout(timer);
      child.off('message', onMessage);
      child.off('exit', onExit);
    };
    child.on('message', onMessage);
    child.once('exit', onExit);
  });
}
