// `healthz`: what the gateway's runtime costs a request. GET /healthz of the gateway beside the same
// request to a one-line Worker (bench/one-line-worker.js) served by the same launcher, in one run,
// alternating so that both see the same machine; and `/v3/run`'s floor: one round trip to that Worker.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PROJECT_ROOT, startGatewayProcess } from '../src/cli/gateway-process';

export interface HealthzFigures {
  gatewayP50: number;
  bareP50: number;
  gatewayP99: number;
  bareP99: number;
}

/** p50 and p99 of `n` sequential GETs to each URL, interleaved, after a warm-up of 100 each. */
async function interleaved(urls: [string, string], n: number): Promise<[number[], number[]]> {
  const times: [number[], number[]] = [[], []];
  const once = async (i: 0 | 1) => {
    const t = performance.now();
    const res = await fetch(urls[i]);
    const body = await res.text();
    if (res.status !== 200 || body.length === 0) throw new Error(`${urls[i]} answered ${res.status} ${body.slice(0, 100)}`);
    return performance.now() - t;
  };
  for (let k = 0; k < 100; k++) {
    await once(0);
    await once(1);
  }
  for (let k = 0; k < n; k++) {
    times[0].push(await once(0));
    times[1].push(await once(1));
  }
  return [times[0].sort((a, b) => a - b), times[1].sort((a, b) => a - b)];
}

const quantile = (sorted: number[], q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;

/** Starts the one-line Worker with the gateway's launcher; `use` gets its URL. */
export async function withBareWorker<T>(use: (url: string) => Promise<T>): Promise<T> {
  const dir = mkdtempSync(join(tmpdir(), 'ferry-bench-bare-'));
  const bare = await startGatewayProcess({ persistTo: join(dir, 'state'), bareScript: join(PROJECT_ROOT, 'bench', 'one-line-worker.js') });
  try {
    return await use(bare.url);
  } finally {
    await bare.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** GET /healthz of a running gateway beside the one-line Worker, 1,000 requests each. */
export async function healthzFigures(gatewayUrl: string, n = 1000): Promise<HealthzFigures> {
  return withBareWorker(async (bareUrl) => {
    const [gateway, bare] = await interleaved([`${gatewayUrl}/healthz`, `${bareUrl}/`], n);
    return { gatewayP50: quantile(gateway, 0.5), bareP50: quantile(bare, 0.5), gatewayP99: quantile(gateway, 0.99), bareP99: quantile(bare, 0.99) };
  });
}
