// Dispatch throughput of one agent's interchange to simulated managers (a separate process), in
// tasks/s from the first submit to the last result. Each task must come back once, a success with
// its own argument (the simulated worker's answer), and none be lost, or the run throws.

import { fork } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Interchange } from '../src/endpoint/interchange/interchange';
import { createLogger } from '../src/endpoint/log';

export async function interchangeThroughput(managers: number, workersPerManager: number, tasks: number): Promise<number> {
  const fn = { function_uuid: '00000000-0000-8000-8000-00000000beef', runtime: 'js' as const, code: '() => null' };
  let done = 0;
  let resolveDone!: () => void;
  const allDone = new Promise<void>((r) => (resolveDone = r));
  const answers = new Uint8Array(tasks);
  let wrong = 0;
  let lost = 0;
  const ix = new Interchange({
    address: '127.0.0.1', port: 0, heartbeat_s: 30, log: createLogger({}, () => {}),
    hooks: {
      functionSpec: () => fn,
      beforeDispatch: (ids) => ids.map(() => 1),
      onStarted: () => {},
      onResults: (rs) => {
        for (const r of rs) {
          const i = Number(r.task_id.slice(1));
          answers[i] = Math.min(255, answers[i]! + 1);
          if (r.status !== 'success' || r.result !== i) wrong++;
        }
        done += rs.length;
        if (done >= tasks) resolveDone();
      },
      onLost: (tasksLost) => {
        lost += tasksLost.length;
        ix.requeue(tasksLost);
      },
      onManagersChanged: () => {},
    },
  });
  const port = await ix.start();
  const dir = mkdtempSync(join(tmpdir(), 'ferry-bench-ix-'));
  const blocks = Array.from({ length: managers }, (_, i) => ({ block_id: `sim-block-${i}`, secret: randomBytes(16).toString('hex') }));
  for (const b of blocks) ix.allowBlock(b.block_id, b.secret);
  const file = join(dir, 'sim.json');
  writeFileSync(file, JSON.stringify({ port, workers: workersPerManager, prefetch: workersPerManager * 4, blocks }), { mode: 0o600 });
  const sim = fork(new URL('./sim-managers.ts', import.meta.url).pathname, [file], { execArgv: ['--import', 'tsx'] });
  await new Promise<void>((resolve, reject) => {
    sim.once('message', () => resolve());
    sim.once('exit', (code) => reject(new Error(`simulated managers exited (${code})`)));
  });
  const batch = Array.from({ length: tasks }, (_, i) => ({ task_id: `t${i}`, function_uuid: fn.function_uuid, payload: { args: [i] } }));
  const t0 = performance.now();
  ix.submit(batch);
  await allDone;
  const seconds = (performance.now() - t0) / 1000;
  sim.kill();
  await ix.stop();
  rmSync(dir, { recursive: true, force: true });
  const missing = answers.filter((a) => a === 0).length;
  const twice = answers.filter((a) => a > 1).length;
  if (wrong || lost || missing || twice) throw new Error(`interchange ${managers}×${workersPerManager}: ${wrong} wrong, ${lost} lost, ${missing} missing, ${twice} answered more than once (of ${tasks})`);
  return tasks / seconds;
}
