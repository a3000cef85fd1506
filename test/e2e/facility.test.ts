// Issue 19's facility scenario, real parts only: the gateway in workerd, real endpoints (`ferry
// endpoint start` processes, workers, sandboxes), the CLI as a process for the owner's sharing and
// audit, the SDK for the users. The owner `facility` shares endpoint E with group `beamline` and
// function F; `alice` (in the group) runs F on E; `bob` gets 404 for E; alice's own function is 403
// on E; the audit log shows alice's tasks and bob's refused attempt, and alice cannot read it.
// Then acceptance item 2: a public function runs for any user on their own endpoint.

import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AuditEvent } from '../../src/protocol/sharing-api';
import type { Client } from '../../src/sdk/client';
import { runFerry } from '../helpers/ferry-cli';
import { startStack, type AgentProcess, type EndpointHandle, type Stack, waitForWorkers } from '../helpers/stack';

let stack: Stack;
let facility: Client;
let alice: Client;
let bob: Client;
let facilityEp: EndpointHandle;
let aliceEp: EndpointHandle;
const agents: AgentProcess[] = [];
let envOf: (user: string) => Promise<NodeJS.ProcessEnv>;

const ONE_WORKER = { provider: { type: 'local', init_blocks: 1, max_blocks: 1, nodes_per_block: 1, max_workers_per_node: 1 } };

beforeAll(async () => {
  stack = await startStack();
  [facility, alice, bob] = await Promise.all([stack.client('facility'), stack.client('alice'), stack.client('bob')]);
  facilityEp = await stack.createEndpoint('beamline-7', 'facility', ONE_WORKER);
  aliceEp = await stack.createEndpoint('alice-laptop', 'alice', ONE_WORKER);
  agents.push(facilityEp.start(), aliceEp.start());
  await Promise.all([waitForWorkers(facility, facilityEp.endpointId, 1), waitForWorkers(alice, aliceEp.endpointId, 1)]);
  const home = mkdtempSync(join(tmpdir(), 'ferry-facility-home-'));
  const { FERRY_URL: _u, FERRY_TOKEN: _t, ...rest } = process.env;
  envOf = async (user) => ({ ...rest, FERRY_HOME: home, FERRY_URL: stack.gateway.url, FERRY_TOKEN: await stack.tokenFor(user) });
}, 120_000);

afterAll(async () => {
  await Promise.all(agents.map((a) => a.kill()));
  await stack?.stop();
});

async function ferryAs(user: string, args: string[]) {
  const run = await runFerry(args, await envOf(user));
  return run;
}

describe('a facility shares an endpoint', () => {
  it('alice (in the group) runs F on E; bob gets 404; alice\'s own function is 403; the audit log shows alice\'s tasks and bob\'s refusal to the owner only', async () => {
    const F = await facility.registerFunction((x: number) => x * 100);
    const aliceOwn = await alice.registerFunction((x: number) => x - 1);
    const bobOwn = await bob.registerFunction((x: number) => x + 1);

    const group = await ferryAs('facility', ['group', 'set', 'beamline', '--member', 'alice']);
    expect([group.code, group.stdout.trim()], group.stderr).toEqual([0, 'beamline: alice']);
    const share = await ferryAs('facility', ['endpoint', 'share', 'beamline-7', '--group', 'beamline', '--function', F]);
    expect(share.code, share.stderr).toBe(0);
    expect(share.stdout).toContain(`group beamline  functions=${F}`);
    const refusedShare = await ferryAs('facility', ['endpoint', 'share', 'beamline-7', '--group', 'beamline']);
    expect(refusedShare.code).not.toBe(0);
    expect(refusedShare.stderr).toContain('--all-functions');

    // alice runs F on E: it runs there (the facility's worker), and she reads her task.
    const doc = await alice.run(facilityEp.endpointId, F, [4], undefined, 30);
    expect([doc.status, doc.result]).toEqual(['success', 400]);
    expect((await alice.getTask(doc.task_id)).result).toBe(400);
    const second = await alice.run(facilityEp.endpointId, F, [5], undefined, 30);
    expect(second.result).toBe(500);
    expect(await alice.endpointStatus(facilityEp.endpointId)).toMatchObject({ status: 'online', details: { queue_length: 0 } });

    // bob: 404 for E, whatever he sends; never 403.
    await expect(bob.run(facilityEp.endpointId, bobOwn, [1], undefined, 0)).rejects.toMatchObject({ status: 404, code: 'NOT_FOUND' });
    await expect(bob.run(facilityEp.endpointId, F, [1], undefined, 0)).rejects.toMatchObject({ status: 404, code: 'NOT_FOUND' });
    await expect(bob.endpointStatus(facilityEp.endpointId)).rejects.toMatchObject({ status: 404, code: 'NOT_FOUND' });
    await expect(bob.getTask(doc.task_id)).rejects.toMatchObject({ status: 404 });
    // alice's own function is not among the shared ones: 403 with a stable code.
    await expect(alice.run(facilityEp.endpointId, aliceOwn, [1], undefined, 0)).rejects.toMatchObject({ status: 403, code: 'FUNCTION_NOT_SHARED' });

    // The owner's audit log, through the CLI.
    const audit = await ferryAs('facility', ['endpoint', 'audit', 'beamline-7', '--json']);
    expect(audit.code, audit.stderr).toBe(0);
    const events = audit.stdout.trim().split('\n').map((line) => JSON.parse(line) as AuditEvent);
    const ended = events.filter((e) => e.kind === 'task_ended');
    expect(ended.map((e) => [e.task_id, e.user, e.function_uuid, e.status])).toEqual([
      [doc.task_id, 'alice', F, 'success'],
      [second.task_id, 'alice', F, 'success'],
    ]);
    expect(events.filter((e) => e.kind === 'task_started' && e.user === 'alice')).toHaveLength(2);
    // bob's attempts (the first written; a user's refusals within 10 s are counted into the next one written), then alice's.
    expect(events.filter((e) => e.kind === 'refused').map((e) => [e.user, e.detail?.reason])).toEqual([
      ['bob', 'not_shared'],
      ['alice', 'function_not_shared'],
    ]);
    expect(events.filter((e) => e.kind === 'sharing_changed').map((e) => e.detail?.action)).toEqual(['shared']);
    // The lineage names the submitter.
    const [record] = await facility.lineageRecords({});
    expect(record).toMatchObject({ owner: 'facility', submitted_by: 'alice' });

    // alice (a guest) cannot read the audit at all: bob's refused attempt does not reach her.
    const asAlice = await ferryAs('alice', ['endpoint', 'audit', facilityEp.endpointId, '--json']);
    expect(asAlice.code).not.toBe(0);
    expect(asAlice.stdout).toBe('');
    expect(asAlice.stderr).toContain('NOT_FOUND');
    expect(asAlice.stderr).not.toContain('bob');

    // The owner lists and ends the grant: alice's next run is 404, as a stranger's.
    const listed = await ferryAs('facility', ['endpoint', 'shares', 'beamline-7']);
    expect(listed.stdout).toContain(`group beamline  functions=${F}`);
    expect((await ferryAs('facility', ['group', 'list'])).stdout.trim()).toBe('beamline: alice');
    const unshared = await ferryAs('facility', ['endpoint', 'unshare', 'beamline-7', '--group', 'beamline']);
    expect([unshared.code, unshared.stdout.trim()], unshared.stderr).toEqual([0, 'Not shared.']);
    await expect(alice.run(facilityEp.endpointId, F, [1], undefined, 0)).rejects.toMatchObject({ status: 404, code: 'NOT_FOUND' });
  });
});

describe('a public function', () => {
  it('runs for any user on their own endpoint; its owner\'s other functions stay 404 to them', async () => {
    const pub = await facility.registerFunction((x: number) => `calibrated ${x}`);
    const priv = await facility.registerFunction((x: number) => `secret ${x}`);
    const made = await ferryAs('facility', ['function', 'share', pub, '--public']);
    expect([made.code, made.stdout.trim()], made.stderr).toEqual([0, `${pub}: public`]);
    const doc = await alice.run(aliceEp.endpointId, pub, [7], undefined, 30);
    expect([doc.status, doc.result]).toEqual(['success', 'calibrated 7']);
    await expect(alice.run(aliceEp.endpointId, priv, [7], undefined, 0)).rejects.toMatchObject({ status: 404, code: 'NOT_FOUND' });
    await expect(alice.getFunction(priv)).rejects.toMatchObject({ status: 404 });
    expect((await alice.getFunction(pub)).function_uuid).toBe(pub);
    // A public function does not open the owner's endpoint: E is shared with beamline for F only.
    await expect(bob.run(facilityEp.endpointId, pub, [1], undefined, 0)).rejects.toMatchObject({ status: 404, code: 'NOT_FOUND' });
    // Made private again: 404 to alice at once.
    const unshared = await ferryAs('facility', ['function', 'unshare', pub, '--public']);
    expect([unshared.code, unshared.stdout.trim()], unshared.stderr).toEqual([0, `${pub}: not shared`]);
    await expect(alice.run(aliceEp.endpointId, pub, [7], undefined, 0)).rejects.toMatchObject({ status: 404, code: 'NOT_FOUND' });
  });
});
