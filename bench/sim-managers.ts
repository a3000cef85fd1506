// Simulated managers for the interchange benchmark: one process holding N manager connections,
// each registering with its block secret and answering every task at once (a no-op worker), so
// the figure measures the interchange's dispatch, not the sandbox.
// Usage: sim-managers.ts <connect-file>   (JSON: {port, workers, blocks: [{block_id, secret}]})

import { readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { INTERCHANGE_VERSION } from '../src/protocol/interchange';
import { readFrames, sendFrame } from '../src/endpoint/interchange/frames';

interface SimConfig {
  port: number;
  workers: number;
  prefetch: number;
  blocks: Array<{ block_id: string; secret: string }>;
}

const cfg = JSON.parse(readFileSync(process.argv[2]!, 'utf8')) as SimConfig;
let registered = 0;
cfg.blocks.forEach(({ block_id, secret }, i) => {
  const socket = connect({ host: '127.0.0.1', port: cfg.port });
  socket.setNoDelay(true);
  socket.on('connect', () => {
    sendFrame(socket, { type: 'register', version: INTERCHANGE_VERSION, secret, block_id, manager_id: `sim-${i}`, host: 'sim', workers: cfg.workers, prefetch: cfg.prefetch });
  });
  readFrames(socket, (value) => {
    const msg = value as { type: string; tasks?: Array<{ task_id: string; attempt: number; payload: { args: unknown[] } }> };
    if (msg.type === 'registered') {
      if (++registered === cfg.blocks.length) process.send?.({ type: 'ready' });
      sendFrame(socket, { type: 'heartbeat', idle_workers: cfg.workers, workers: cfg.workers });
    } else if (msg.type === 'tasks') {
      const now = Date.now() / 1000;
      sendFrame(socket, {
        type: 'results',
        results: msg.tasks!.map((t) => ({ task_id: t.task_id, status: 'success', result: t.payload.args[0] ?? null, execution: { attempt: t.attempt, started_at: now, ended_at: now, host: 'sim', worker_pid: process.pid } })),
      });
    } else if (msg.type === 'shutdown') {
      socket.end();
    }
  });
  socket.on('error', () => {});
});
process.on('disconnect', () => process.exit(0));
