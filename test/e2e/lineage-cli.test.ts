// `ferry lineage ID` driven as a process against a real stack: an object uploaded through an
// ingest filter feeds task A, whose output feeds task B (and a task C that fails); the command
// prints a task's inputs, outputs, agents and times, an object's lineage up (default) or down to a
// depth as an indented tree, the raw PROV-JSON with --json, and refuses unknown ids with a clear
// message and a non-zero exit.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { Client } from '../../src/sdk/client';
import { runFerry } from '../helpers/ferry-cli';
import { startStack, type EndpointHandle, type Stack, waitForWorkers } from '../helpers/stack';


let stack: Stack;
let alice: Client;
let home: string;
let env: NodeJS.ProcessEnv;
let endpoint: EndpointHandle;
const ids = { R: '', O1: '', O2: '', A: '', B: '', C: '', fnA: '', fnB: '' };

const ferry = (args: string[], extraEnv: NodeJS.ProcessEnv = env) => runFerry(args, extraEnv);

/** The line of `text` that contains `needle`, and its indentation (tree depth × 3 columns). */
function lineWith(text: string, needle: string): { index: number; indent: number; line: string } {
  const lines = text.split('\n');
  const index = lines.findIndex((l) => l.includes(needle));
  expect(index, `a line with ${needle} in:\n${text}`).toBeGreaterThanOrEqual(0);
  const line = lines[index]!;
  return { index, indent: line.search(/[^ │├└─]/), line };
}

beforeAll(async () => {
  stack = await startStack();
  alice = await stack.client('alice');
  home = mkdtempSync(join(tmpdir(), 'ferry-lineage-home-'));
  const { FERRY_URL: _u, FERRY_TOKEN: _t, ...rest } = process.env;
  env = { ...rest, FERRY_HOME: home, FERRY_URL: stack.gateway.url, FERRY_TOKEN: await stack.tokenFor('alice') };
  endpoint = await stack.createEndpoint('lineage-cli', 'alice');
  endpoint.start();

  const upper = (b: Uint8Array) => new TextEncoder().encode(new TextDecoder().decode(b).toUpperCase());
  ids.R = (await alice.put('raw measurements', { filters: [{ name: 'upper', fn: upper }] })).$ref;
  ids.O1 = (await alice.put('derived data')).$ref;
  ids.O2 = (await alice.put('final figure')).$ref;
  ids.fnA = await alice.registerFunction(`async (data, scale) => { await data.text(); return { $ref: '${ids.O1}' } }`, { name: 'derive' });
  ids.fnB = await alice.registerFunction(`async (data, fail) => { if (fail) throw new Error('no figure'); await data.text(); return { $ref: '${ids.O2}' } }`, { name: 'plot' });
  await waitForWorkers(alice, endpoint.endpointId, 1);
  const opts = { workflow_id: 'wf-cli' };
  ids.A = await alice.submit(endpoint.endpointId, ids.fnA, [{ $ref: ids.R }, 3], undefined, opts);
  expect(await alice.result(ids.A, { timeout: 30 })).toEqual({ $ref: ids.O1 });
  ids.B = await alice.submit(endpoint.endpointId, ids.fnB, [{ $ref: ids.O1 }, false], undefined, opts);
  ids.C = await alice.submit(endpoint.endpointId, ids.fnB, [{ $ref: ids.O1 }, true], undefined, opts);
  const docs = await alice.waitAll([ids.B, ids.C], { timeout: 30 });
  expect(docs.map((d) => d.status)).toEqual(['success', 'failed']);
  // Records are written with the outcomes; wait until the gateway shows all three.
  await vi.waitFor(async () => expect((await ferry(['lineage', ids.C])).code, 'the lineage of the last task').toBe(0), { timeout: 30_000, interval: 100 });
}, 180_000);

afterAll(async () => {
  await stack?.stop();
  if (home) rmSync(home, { recursive: true, force: true });
});

describe('ferry lineage', () => {
  it('prints a task: status, function, workflow, times, inputs, outputs and agents', async () => {
    const run = await ferry(['lineage', ids.A]);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    const out = run.stdout;
    expect(out.split('\n')[0]).toBe(`task ${ids.A}  success  derive (fn ${ids.fnA.slice(0, 8)})  [wf-cli]`);
    expect(out).toContain('workflow wf-cli');
    expect(out).toMatch(new RegExp(`function derive ${ids.fnA} \\(code sha256 [0-9a-f]{12}…\\)`));
    const time = (label: string) => new RegExp(`${label.replace(/[()]/g, '\\$&')} +\\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\d\\.\\d{3} UTC`);
    // The run's start: the gateway's `running` change, or the worker's own start when the gateway saw none.
    const started = out.includes('─ running ') ? 'running' : 'started (worker)';
    for (const label of ['waiting-for-ep', started, 'success']) expect(out).toMatch(time(label));
    expect(lineWith(out, 'waiting-for-ep').index).toBeLessThan(lineWith(out, started).index);
    expect(lineWith(out, started).index).toBeLessThan(lineWith(out, '─ success').index);
    expect(lineWith(out, `args.0: object ${ids.R}`).line).toMatch(/sha256 [0-9a-f]{12}…, 16 B, ingest filters: upper\)/);
    // A small inline value shows itself, with its digest.
    expect(out).toMatch(/args\.1: value 3 \(sha256 [0-9a-f]{12}…\)/);
    expect(out).toContain(`result: object ${ids.O1}`);
    expect(lineWith(out, 'used').index).toBeLessThan(lineWith(out, 'generated').index);
    expect(out).toContain('submitter: alice');
    expect(out).toContain(`endpoint: ${endpoint.endpointId}`);
    expect(out).toMatch(/worker_host: \S+/);
    expect(out).toMatch(/└─ agents\n/);
  });

  it("prints an object's lineage up to its origin, ingest filter included, as a nested tree", async () => {
    const run = await ferry(['lineage', ids.O2]);
    expect(run.code, run.stderr).toBe(0);
    const out = run.stdout;
    expect(out.split('\n')[0]).toMatch(new RegExp(`^object ${ids.O2} \\(sha256 [0-9a-f]{12}…, 12 B\\)$`));
    const steps = [`generated by task ${ids.B}  success  plot`, `args.0: object ${ids.O1}`, `generated by task ${ids.A}  success  derive`, `args.0: object ${ids.R}`, 'generated by ingest filter 1 upper', 'filter_input: the bytes as uploaded'].map((s) => lineWith(out, s));
    for (let i = 1; i < steps.length; i++) {
      expect(steps[i]!.index, steps[i]!.line).toBeGreaterThan(steps[i - 1]!.index);
      expect(steps[i]!.indent, steps[i]!.line).toBe(steps[i - 1]!.indent + 3);
    }
    expect(out).toMatch(/args\.1: value false \(sha256 [0-9a-f]{12}…\)/);
    expect(out).not.toContain(ids.C);

    const shallow = await ferry(['lineage', ids.O2, '--depth', '1']);
    expect(shallow.code, shallow.stderr).toBe(0);
    expect(shallow.stdout).toContain(`generated by task ${ids.B}`);
    expect(shallow.stdout).not.toContain(`generated by task ${ids.A}`);
  });

  it('prints what used an object with --down, failures included', async () => {
    const run = await ferry(['lineage', ids.R, '--down']);
    expect(run.code, run.stderr).toBe(0);
    const out = run.stdout;
    const a = lineWith(out, `used by task ${ids.A}  success  derive`);
    const o1 = lineWith(out, `result: object ${ids.O1}`);
    const b = lineWith(out, `used by task ${ids.B}  success  plot`);
    const c = lineWith(out, `used by task ${ids.C}  failed  plot`);
    expect([a.indent + 3, o1.indent + 3]).toEqual([o1.indent, b.indent]);
    expect(c.indent).toBe(b.indent);
    expect(lineWith(out, `result: object ${ids.O2}`).indent).toBe(b.indent + 3);
  });

  it('prints the PROV-JSON document with --json', async () => {
    const run = await ferry(['lineage', ids.C, '--json']);
    expect(run.code, run.stderr).toBe(0);
    const doc = JSON.parse(run.stdout);
    expect(Object.keys(doc.prefix)).toEqual(expect.arrayContaining(['prov', 'xsd', 'ferry']));
    expect(doc.activity[`ferry:task/${ids.C}`]['ferry:status']).toBe('failed');
    const objectDoc = JSON.parse((await ferry(['lineage', ids.O1, '--json', '--down'])).stdout);
    expect(Object.keys(objectDoc.activity).sort()).toEqual([`ferry:task/${ids.B}`, `ferry:task/${ids.C}`].sort());
  });

  it('refuses an unknown id, another user, and a bad depth, with a message and a non-zero exit', async () => {
    for (const id of ['no-such-thing', 'f'.repeat(64), `${endpoint.endpointId}.0123456789abcdef`]) {
      const run = await ferry(['lineage', id]);
      expect(run.code, id).toBe(1);
      expect(run.stdout).toBe('');
      expect(run.stderr).toContain(`no such task or object: ${id}`);
    }
    const bob = await ferry(['lineage', ids.A], { ...env, FERRY_TOKEN: await stack.tokenFor('bob') });
    expect(bob.code).toBe(1);
    expect(bob.stderr).toContain('no such task or object');
    const depth = await ferry(['lineage', ids.R, '--depth', '0']);
    expect(depth.code).not.toBe(0);
    expect(depth.stderr).toContain('must be an integer from 1 to 20');
    const offline = await ferry(['lineage', ids.A], { ...env, FERRY_URL: 'http://127.0.0.1:9' });
    expect(offline.code).toBe(1);
    expect(offline.stderr).toContain('cannot reach the gateway at http://127.0.0.1:9');
  });
});
