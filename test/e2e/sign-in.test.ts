// Sign-in through a real OpenID provider (oidc-provider, device flow) against a real gateway in
// production mode and a real endpoint: `ferry login --oidc` with the test as the browser, a token
// refreshed after it expired, register → submit → result with it; the same sub at a second
// provider is another user; development tokens are refused; an instrument key made with
// `ferry key create` runs its one function with /v3/run and stops at `ferry key revoke`.

import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeJwt } from 'jose';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { PROJECT_ROOT } from '../../src/cli/gateway-process';
import { Client } from '../../src/sdk/client';
import { runFerry } from '../helpers/ferry-cli';
import { CLI_CLIENT_ID, startIdentityProvider, type TestIdentityProvider } from '../helpers/oidc-provider';
import { startStack } from '../helpers/stack';

const AUDIENCE = 'https://ferry.test/api';
// Short, so the test sees one expire; long enough for register, submit and result on a loaded machine.
const ACCESS_TTL_S = 12;

let idpA: TestIdentityProvider;
let idpB: TestIdentityProvider;
let stack: Awaited<ReturnType<typeof startStack>>;

beforeAll(async () => {
  idpA = await startIdentityProvider({ audience: AUDIENCE, accessTokenTtlS: ACCESS_TTL_S });
  idpB = await startIdentityProvider({ audience: AUDIENCE, accessTokenTtlS: 300 });
  const providers = [
    { name: 'lab-a', issuer: idpA.issuer, audience: AUDIENCE, client_id: CLI_CLIENT_ID },
    { name: 'lab-b', issuer: idpB.issuer, audience: AUDIENCE, client_id: CLI_CLIENT_ID },
  ];
  stack = await startStack({ vars: { DEPLOYMENT: 'production', AUTH_PROVIDERS: JSON.stringify(providers) } });
});

afterAll(async () => {
  await stack?.stop();
  await idpA?.stop();
  await idpB?.stop();
});

/** `ferry login --oidc`, with the test opening the printed URL as the user's browser would. */
async function signIn(home: string, provider: string, login: string, idp: TestIdentityProvider): Promise<{ stdout: string; config: any }> {
  const child = spawn(process.execPath, [join(PROJECT_ROOT, 'bin', 'ferry.js'), 'login', '--oidc', '--gateway', stack.gateway.url, '--provider', provider], {
    cwd: PROJECT_ROOT,
    env: { ...process.env, FERRY_HOME: home },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  const url = await new Promise<string>((resolve, reject) => {
    child.stdout.on('data', (c: Buffer) => {
      stdout += c.toString();
      const match = /or open (\S+)/.exec(stdout);
      if (match) resolve(match[1]!);
    });
    child.once('close', (code) => reject(new Error(`ferry login exited ${code} before printing a URL: ${stdout} ${stderr}`)));
  });
  expect(stdout).toMatch(/enter the code [A-Z]{4}-[A-Z]{4}/);
  await idp.approveDevice(url, login);
  const code = await new Promise<number | null>((resolve) => child.once('close', resolve));
  expect(code, stdout + stderr).toBe(0);
  const path = join(home, 'user.json');
  expect(statSync(path).mode & 0o777).toBe(0o600);
  return { stdout, config: JSON.parse(readFileSync(path, 'utf8')) };
}

async function get(path: string, token: string): Promise<{ status: number; body: any }> {
  const res = await fetch(`${stack.gateway.url}${path}`, { headers: { authorization: `Bearer ${token}` } });
  return { status: res.status, body: await res.json() };
}

it('signs in with the device flow, refreshes the token after it expired, and runs a task with it; a second provider\'s same sub is another user', async () => {
  const config = await (await fetch(`${stack.gateway.url}/v3/auth/config`)).json();
  expect(config.dev_tokens).toBe(false);
  expect(config.providers.map((p: any) => [p.name, p.device_authorization_endpoint])).toEqual([
    ['lab-a', `${idpA.issuer}/device/auth`],
    ['lab-b', `${idpB.issuer}/device/auth`],
  ]);

  // A development token is refused: the gateway is in production.
  const dev = await get('/v2/endpoints', await stack.tokenFor('alice'));
  expect([dev.status, dev.body.code]).toEqual([401, 'UNAUTHORIZED']);
  expect(dev.body.message).toContain('DEPLOYMENT=production');

  const home = mkdtempSync(join(tmpdir(), 'ferry-home-'));
  const env = { ...process.env, FERRY_HOME: home };
  const first = await signIn(home, 'lab-a', 'alice', idpA);
  expect(first.stdout).toMatch(/Signed in to .* as alice at lab-a \(user id oidc-[a-z2-7]{26}\)/);
  expect(first.config.oidc.refresh_token).toBeTruthy();
  const me = await get('/v3/users/me', first.config.token);
  expect(me.body).toMatchObject({ via: 'oidc', issuer: idpA.issuer, sub: 'alice' });

  // An endpoint of this user, registered with the provider's token.
  const ep = await stack.createEndpoint('oidc-ep', undefined, {}, first.config.token);
  const agent = ep.start();
  await agent.waitForOutput(/connected/);

  // The access token expires; the next command renews it with the refresh token.
  const exp = decodeJwt(first.config.token).exp!;
  while (Date.now() < (exp + 1) * 1000) await new Promise((resolve) => setTimeout(resolve, 100));
  const expired = await get('/v2/endpoints', first.config.token);
  expect([expired.status, expired.body.code]).toEqual([401, 'TOKEN_EXPIRED']);
  const listed = await runFerry(['key', 'list'], env);
  expect([listed.code, listed.stdout.trim()], listed.stderr).toEqual([0, 'No keys.']);
  const renewed = JSON.parse(readFileSync(join(home, 'user.json'), 'utf8'));
  expect(renewed.token).not.toBe(first.config.token);
  expect(decodeJwt(renewed.token).exp!).toBeGreaterThan(exp);
  expect(statSync(join(home, 'user.json')).mode & 0o777).toBe(0o600);

  // Register, submit and result with the renewed sign-in (`ferry token --current` renews it again if it is about to expire).
  const current = await runFerry(['token', '--current'], env);
  expect(current.code, current.stderr).toBe(0);
  const client = new Client({ url: stack.gateway.url, token: current.stdout.trim() });
  const fn = await client.registerFunction((a: number, b: number) => a * b);
  const taskId = await client.submit(ep.endpointId, fn, [6, 7]);
  expect(await client.result(taskId, { timeout: 30 })).toBe(42);

  // The same sub at the second provider is another user, who sees nothing of the first.
  const otherHome = mkdtempSync(join(tmpdir(), 'ferry-home-'));
  const second = await signIn(otherHome, 'lab-b', 'alice', idpB);
  const otherMe = await get('/v3/users/me', second.config.token);
  expect(otherMe.body).toMatchObject({ via: 'oidc', issuer: idpB.issuer, sub: 'alice' });
  expect(otherMe.body.user_id).not.toBe(me.body.user_id);
  expect((await get(`/v2/functions/${fn}`, second.config.token)).status).toBe(404);
  expect((await get('/v2/endpoints', second.config.token)).body).toEqual([]);

  // An instrument key for that one function on that one endpoint, made and revoked with the CLI.
  const created = await runFerry(['key', 'create', 'detector-7', '--expires', '1d', '--action', 'run', '--function', fn, '--endpoint', ep.endpointId, '--json'], env);
  expect(created.code, created.stderr).toBe(0);
  const key = JSON.parse(created.stdout);
  const run = await fetch(`${stack.gateway.url}/v3/run`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key.secret}`, 'content-type': 'application/json' },
    body: JSON.stringify({ endpoint_id: ep.endpointId, function_uuid: fn, args: [3, 5], wait: 30 }),
  });
  expect([run.status, (await run.json()).result]).toEqual([200, 15]);
  expect((await get('/v2/endpoints', key.secret)).body.code).toBe('FORBIDDEN_SCOPE');
  const keys = await runFerry(['key', 'list'], env);
  expect(keys.stdout).toMatch(new RegExp(`${key.key_id}  detector-7  actions=run .* last_used=20\\d\\d-.* active`));
  const revoked = await runFerry(['key', 'revoke', key.key_id], env);
  expect(revoked.code, revoked.stderr).toBe(0);
  const after = await fetch(`${stack.gateway.url}/v3/run`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key.secret}`, 'content-type': 'application/json' },
    body: JSON.stringify({ endpoint_id: ep.endpointId, function_uuid: fn, args: [3, 5], wait: 0 }),
  });
  expect([after.status, (await after.json()).code]).toEqual([401, 'TOKEN_REVOKED']);

  // Logging out forgets the tokens and revokes the refresh token at the provider.
  const refreshToken = JSON.parse(readFileSync(join(home, 'user.json'), 'utf8')).oidc.refresh_token;
  const out = await runFerry(['logout'], env);
  expect([out.code, out.stdout], out.stderr).toEqual([0, expect.stringContaining('revoked the refresh token')]);
  const reuse = await fetch(`${idpA.issuer}/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: refreshToken, client_id: CLI_CLIENT_ID, resource: AUDIENCE }),
  });
  expect([reuse.status, (await reuse.json()).error]).toEqual([400, 'invalid_grant']);
  await agent.kill();
});
