// The agent's interchange port may be reachable by anyone on the cluster's network. A peer that
// never registers and sends 400 MiB that are no frame (its first 8 bytes, read as a frame's prefix,
// declare ~3 GB) is cut off at the register message's cap, before any of it is buffered:
// the agent's memory barely moves, the refusal is logged once with the peer's address, and the
// endpoint goes on running tasks.

import { connect } from 'node:net';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { vmRssBytes } from '../helpers/processes';
import { startStack, waitForWorkers, type Stack } from '../helpers/stack';

let stack: Stack;

beforeAll(async () => {
  stack = await startStack();
}, 120_000);

afterAll(async () => {
  await stack?.stop();
});

/** The agent's structured log lines with this `msg`. */
function logLines(output: string, msg: string): Array<Record<string, unknown>> {
  return output.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.msg === msg);
}

it('400 MiB that are no frame (a prefix declaring ~3 GB) before registering: refused early, agent RSS grows < 20 MB, logged once with the peer, tasks still run', async () => {
  const alice = await stack.client('alice');
  const endpoint = await stack.createEndpoint('exposed', 'alice');
  const agent = endpoint.start();
  await waitForWorkers(alice, endpoint.endpointId, 2);
  const fn = await alice.registerFunction('(x) => x + 1');
  const run = async (x: number) => {
    const { task_id } = await alice.run(endpoint.endpointId, fn, [x], undefined, 30);
    const [doc] = await alice.waitAll([task_id], { timeout: 60 });
    return doc!.result;
  };
  expect(await run(1)).toBe(2); // warm: the baseline is a working agent
  const [listening] = logLines(agent.output(), 'interchange listening');
  const port = listening!.port as number;
  const pid = agent.child.pid!;
  const before = vmRssBytes(pid);

  const socket = connect({ host: '127.0.0.1', port });
  socket.on('error', () => {});
  await new Promise<void>((r) => socket.once('connect', () => r()));
  const peer = `${socket.localAddress}:${socket.localPort}`;
  const closed = new Promise<void>((r) => socket.once('close', () => r()));
  // 'aaaa' 'aaaa': a prefix declaring a header and a body of 0x61616161 bytes each.
  const chunk = Buffer.alloc(1024 * 1024, 'a');
  const offered = 400 * 1024 * 1024;
  let sent = 0;
  let peakRss = before;
  // As fast as the socket takes it; a closed socket ends the loop, which is bounded by 400 MiB.
  while (sent < offered && !socket.destroyed) {
    if (!socket.write(chunk)) await new Promise((r) => { socket.once('drain', r); socket.once('close', r); });
    sent += chunk.length;
    peakRss = Math.max(peakRss, vmRssBytes(pid));
  }
  await closed;
  peakRss = Math.max(peakRss, vmRssBytes(pid));
  console.log(`sent ${(sent / 2 ** 20).toFixed(0)} MiB of 400 before the agent closed the socket; agent RSS ${(before / 2 ** 20).toFixed(1)} → peak ${(peakRss / 2 ** 20).toFixed(1)} MiB`);
  expect(sent).toBeLessThan(32 * 1024 * 1024);
  expect(peakRss - before).toBeLessThan(20 * 1000 * 1000);

  await agent.waitForOutput(/"msg":"interchange connection refused"/); // stderr may trail the close
  const refusals = logLines(agent.output(), 'interchange connection refused');
  expect(refusals).toEqual([expect.objectContaining({ level: 'warn', peer, reason: expect.stringMatching(/^a frame longer than \d+ bytes$/) })]);

  expect(await run(41)).toBe(42);
  expect(agent.child.exitCode).toBe(null);
}, 120_000);
