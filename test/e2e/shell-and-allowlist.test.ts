// Shell functions through the whole path, and the two allow-lists: the gateway's (403 at submit)
// and the agent's own (the task fails without running).

import { mkdtempSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { Client } from '../../src/sdk/client';
import { startStack, type Stack, waitForWorkers } from '../helpers/stack';

let stack: Stack;
let alice: Client;
beforeAll(async () => {
  stack = await startStack();
  alice = await stack.client('alice');
}, 120_000);
afterAll(async () => {
  await stack?.stop();
});

async function online(endpointId: string) {
  await waitForWorkers(alice, endpointId, 1);
}

it('runs a shell function with quoted kwargs where allowed, and refuses it where not', async () => {
  const scratch = mkdtempSync(join(tmpdir(), 'ferry-shell-'));
  const sentinel = join(scratch, 'PWNED');
  const shellFn = await alice.registerFunction('printf "%s\\n" {msg}; echo to-stderr >&2; exit 3', { runtime: 'shell', name: 'echo-msg' });

  const allowed = await stack.createEndpoint('shell-ok', 'alice', { allow_shell_functions: true });
  allowed.start();
  await online(allowed.endpointId);
  const hostile = `x; touch ${sentinel}`;
  const id = await alice.submit(allowed.endpointId, shellFn, [], { msg: hostile });
  const out = (await alice.result(id, { timeout: 30 })) as { cmd: string; stdout: string; stderr: string; returncode: number };
  expect(out.stdout).toBe(`${hostile}\n`); // one literal argument, printed as is
  expect(out.stderr).toBe('to-stderr\n');
  expect(out.returncode).toBe(3);
  expect(existsSync(sentinel)).toBe(false);

  const refusing = await stack.createEndpoint('shell-no', 'alice', {});
  refusing.start();
  await online(refusing.endpointId);
  const doc = await alice.getTask(await alice.submit(refusing.endpointId, shellFn, [], { msg: `y; touch ${sentinel}` }), { wait: 30 });
  expect(doc.status).toBe('failed');
  expect(doc.exception?.code).toBe('FERRY_SHELL_NOT_ALLOWED');
  expect(existsSync(sentinel)).toBe(false);
}, 180_000);

it('refuses a template quoting a placeholder itself at registration (400, naming it)', async () => {
  for (const [code, name] of [["grep -c '{pattern}' /dev/null", 'pattern'], ['echo "{msg}"', 'msg']] as const) {
    await expect(alice.registerFunction(code, { runtime: 'shell' })).rejects.toMatchObject({ status: 400, code: 'INVALID_FUNCTION_CODE', message: expect.stringContaining(`{${name}} at offset`) });
  }
});

it('runs commands with PATH, HOME, LANG and the config\'s env, none of the agent\'s environment', async () => {
  const envFn = await alice.registerFunction('env', { runtime: 'shell', name: 'env' });
  const endpoint = await stack.createEndpoint('shell-env', 'alice', { allow_shell_functions: true, env: { SITE_SCRATCH: '/scratch/alice' } });
  endpoint.start({ env: { FERRY_TOKEN: 'agent-secret-token', AGENT_ONLY_VARIABLE: 'agent-only' } });
  await online(endpoint.endpointId);
  const out = (await alice.result(await alice.submit(endpoint.endpointId, envFn, []), { timeout: 30 })) as { stdout: string };
  const names = out.stdout.split('\n').filter(Boolean).map((l) => l.slice(0, l.indexOf('='))).filter((n) => !['PWD', 'SHLVL', 'OLDPWD', '_'].includes(n)).sort();
  expect(names).toEqual(['HOME', 'LANG', 'PATH', 'SITE_SCRATCH'].filter((n) => n === 'SITE_SCRATCH' || process.env[n] !== undefined));
  expect(out.stdout).toContain('SITE_SCRATCH=/scratch/alice\n');
  expect(out.stdout).not.toMatch(/agent-secret-token|agent-only|FERRY_/);
}, 120_000);

it('enforces allowed_functions at the gateway (403) and again at the agent', async () => {
  const ok = await alice.registerFunction((x: number) => x + 1, { name: 'ok' });
  const other = await alice.registerFunction((x: number) => x - 1, { name: 'other' });
  // The gateway's list comes from registration.
  const reg = await alice.registerEndpoint({ endpoint_name: 'gated', allowed_functions: [ok] });
  await expect(alice.submit(reg.endpoint_id, other, [1])).rejects.toMatchObject({ status: 403, code: 'FUNCTION_NOT_PERMITTED' });
  // The agent's list comes from its own config: the owner of the site decides too.
  const site = await stack.createEndpoint('site-gated', 'alice', { allowed_functions: [ok] });
  site.start();
  await online(site.endpointId);
  expect(await alice.result(await alice.submit(site.endpointId, ok, [1]), { timeout: 30 })).toBe(2);
  const refused = await alice.getTask(await alice.submit(site.endpointId, other, [1]), { wait: 30 });
  expect(refused.status).toBe('failed');
  expect(refused.exception?.code).toBe('FUNCTION_NOT_PERMITTED');
}, 120_000);
