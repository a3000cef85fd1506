// Serves bench/structural-floor-worker.js (Worker → Durable Object RPC → SQLite row → WebSocket to
// an outside process and back) in workerd through Miniflare, with a Node WebSocket client that
// answers every message at once, as an endpoint's agent would if running a task took no time.

import { dirname, join } from 'node:path';
import { Log, LogLevel, Miniflare } from 'miniflare';
import WebSocket from 'ws';
import { PROJECT_ROOT } from '../src/cli/gateway-process';

export async function withStructuralFloor<T>(use: (url: string) => Promise<T>): Promise<T> {
  const scriptPath = join(PROJECT_ROOT, 'bench', 'structural-floor-worker.js');
  const mf = new Miniflare({
    host: '127.0.0.1', port: 0, cf: false, log: new Log(LogLevel.WARN),
    name: 'floor', modules: true, scriptPath, modulesRoot: dirname(scriptPath), compatibilityDate: '2026-04-20',
    durableObjects: { HUB: { className: 'Hub', useSQLite: true } },
  });
  const url = new URL(await mf.ready).origin;
  const agent = new WebSocket(`${url.replace('http', 'ws')}/connect`, { perMessageDeflate: false });
  try {
    await new Promise((resolve, reject) => (agent.once('open', resolve), agent.once('error', reject)));
    agent.on('message', (data) => {
      const { id } = JSON.parse(String(data)) as { id: number };
      agent.send(JSON.stringify({ id, result: null }));
    });
    return await use(url);
  } finally {
    agent.close();
    await mf.dispose();
  }
}
