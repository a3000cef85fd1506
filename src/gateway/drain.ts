// Shutting a gateway down without cutting anyone off, for the launcher that serves it locally
// (src/cli/gateway-launcher.ts): on SIGINT or SIGTERM the launcher calls LAUNCHER_DRAIN_PATH with its key;
// from then on new requests are answered 503 UNAVAILABLE, every hub woken since the start closes its agent
// sockets with 1012 (service restart: the agent reconnects) and answers its long polls with the
// task as it stands (what a `?wait=` that ran out answers), and the drain call returns once the
// requests in flight have ended or the bound has passed. The launcher then stops workerd.
//
// Module state on purpose: workerd runs the Worker and its Durable Objects in one isolate, so the
// flag the drain request sets is seen by every request, and the ids hubs register as they wake
// are known to the drain request. On Cloudflare no launcher calls it (without LAUNCHER_KEY: 404).

import { FerryError } from '../protocol/errors';

let draining = false;
let inFlight = 0;
const idle = new Set<() => void>();
/** Ids of the hubs woken since the gateway started: those that may hold agents and long polls. */
const hubIds = new Set<string>();

/** A hub calls this as it wakes; it learns whether the gateway is already draining. */
export function registerHub(id: string): boolean {
  hubIds.add(id);
  return draining;
}

/** Counts a request in flight while `run` lasts; refused with 503 once the gateway drains. */
export async function trackRequest<T>(run: () => Promise<T>): Promise<T> {
  if (draining) throw new FerryError('UNAVAILABLE', 'the gateway is shutting down', { retry_after_s: 1 });
  inFlight++;
  try {
    return await run();
  } finally {
    inFlight--;
    if (inFlight === 0) for (const done of [...idle]) done();
  }
}

/**
 * Starts the drain and resolves when no request is in flight, or after `timeoutMs`: the requests
 * still open. `drainHub` runs a hub's own drain through its stub: a hub's sockets can be reached
 * only from inside the hub, not from the request that asks.
 */
export async function drainGateway(timeoutMs: number, drainHub: (id: string) => Promise<void>): Promise<{ in_flight: number; hubs_drained: number }> {
  draining = true;
  const hubs = await Promise.allSettled([...hubIds].map((id) => drainHub(id)));
  if (inFlight > 0) {
    await new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        idle.delete(done);
        resolve();
      };
      const timer = setTimeout(done, timeoutMs);
      idle.add(done);
    });
  }
  return { in_flight: inFlight, hubs_drained: hubs.filter((h) => h.status === 'fulfilled').length };
}
