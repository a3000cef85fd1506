// `ferry key create|list|revoke`: instrument keys for machines (a detector, a beamline control
// system), each with a name, an expiry and scopes; the secret is printed once, on creation.

import type { Command } from 'commander';
import { InvalidArgumentError } from 'commander';
import { CreateKeyResponse, KEY_ACTIONS, KeyDoc, KeyList, type KeyAction } from '../protocol/auth-api';
import { errorFromBody } from '../protocol/error-body';
import { CliError, fail } from './cli-error';
import { freshGatewayAccess } from './oidc-login';
import type { AccessFlags } from './user-config';

const UNITS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86_400 };

/** `30d`, `12h`, `90m`, `3600` (seconds) → seconds. */
export function durationSeconds(value: string): number {
  const match = /^(\d+)([smhd]?)$/.exec(value.trim());
  if (!match) throw new InvalidArgumentError('must be a duration such as 30d, 12h, 90m or a number of seconds');
  return Number(match[1]) * UNITS[match[2] || 's']!;
}

export function collect(value: string, previous: string[] = []): string[] {
  return [...previous, ...value.split(',').map((v) => v.trim()).filter(Boolean)];
}

export async function gatewayJson(flags: AccessFlags, method: string, path: string, body?: unknown): Promise<unknown> {
  const access = await freshGatewayAccess(flags);
  let res: Response;
  try {
    res = await fetch(access.url + path, {
      method,
      headers: { authorization: `Bearer ${access.token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
  } catch (err) {
    throw new CliError(`cannot reach the gateway at ${access.url} (${(err as Error).message}; from ${access.urlSource})`);
  }
  const text = await res.text();
  if (!res.ok) throw errorFromBody(res.status, text);
  return JSON.parse(text);
}

function scopeList(values: string[] | undefined, what: string): '*' | string[] {
  if (!values || values.length === 0) throw new CliError(`say which ${what}s the key may use: --${what} ID (repeatable), or --${what} '*' for all of yours`);
  return values.includes('*') ? '*' : values;
}

function describeKey(k: KeyDoc): string {
  const scope = (s: '*' | string[]) => (s === '*' ? 'all' : s.join(','));
  const status = k.revoked_at ? `revoked ${k.revoked_at}` : Date.parse(k.expires_at) <= Date.now() ? 'expired' : 'active';
  return `${k.key_id}  ${k.name}  actions=${k.scopes.actions.join(',')}  functions=${scope(k.scopes.functions)}  endpoints=${scope(k.scopes.endpoints)}  expires=${k.expires_at}  last_used=${k.last_used_at ?? 'never'}  ${status}`;
}

interface CreateFlags extends AccessFlags {
  expires: number;
  action?: string[];
  function?: string[];
  endpoint?: string[];
  json?: boolean;
}

export function registerKeyCommands(program: Command): void {
  const key = program.command('key').description('instrument keys: scoped, expiring credentials for machines');
  const access = (c: Command) =>
    c.option('--gateway <url>', 'the gateway (default: FERRY_URL, then `ferry login`, then `ferry dev`)').option('--token <token>', 'your user token (default: FERRY_TOKEN, then `ferry login`, then `ferry dev`)');

  access(
    key
      .command('create')
      .description('create a key; its secret is printed once (keep it where the instrument reads it)')
      .argument('<name>', 'what the key is for, e.g. detector-7')
      .option('--expires <duration>', 'lifetime: 30d, 12h, … (at most 366d)', durationSeconds, 30 * 86_400)
      .option('--action <action>', `what it may do, repeatable: ${KEY_ACTIONS.join(', ')}`, collect)
      .option('--function <uuid>', "a function it may run or submit, repeatable ('*': all of yours)", collect)
      .option('--endpoint <uuid>', "an endpoint it may use, repeatable ('*': all of yours)", collect)
      .option('--json', 'print the answer as JSON'),
  ).action(async (name: string, flags: CreateFlags) => {
    try {
      const actions = flags.action ?? [];
      const unknown = actions.filter((a) => !(KEY_ACTIONS as readonly string[]).includes(a));
      if (actions.length === 0 || unknown.length > 0) throw new CliError(`--action must name one or more of ${KEY_ACTIONS.join(', ')}${unknown.length ? ` (not ${unknown.join(', ')})` : ''}`);
      const created = CreateKeyResponse.parse(
        await gatewayJson(flags, 'POST', '/v3/keys', {
          name,
          expires_in: flags.expires,
          scopes: { functions: scopeList(flags.function, 'function'), endpoints: scopeList(flags.endpoint, 'endpoint'), actions: actions as KeyAction[] },
        }),
      );
      if (flags.json) {
        process.stdout.write(JSON.stringify(created) + '\n');
        return;
      }
      process.stdout.write(`${describeKey(created)}\nsecret (shown this once; use it as the bearer token):\n${created.secret}\n`);
    } catch (err) {
      fail(err);
    }
  });

  access(key.command('list').description('your keys, with when each was last used (to the minute)').option('--json', 'print the answer as JSON')).action(async (flags: AccessFlags & { json?: boolean }) => {
    try {
      const { keys } = KeyList.parse(await gatewayJson(flags, 'GET', '/v3/keys'));
      if (flags.json) process.stdout.write(JSON.stringify({ keys }) + '\n');
      else process.stdout.write(keys.length === 0 ? 'No keys.\n' : keys.map(describeKey).join('\n') + '\n');
    } catch (err) {
      fail(err);
    }
  });

  access(key.command('revoke').description('revoke a key: its next call is refused').argument('<key_id>')).action(async (keyId: string, flags: AccessFlags) => {
    try {
      const doc = KeyDoc.parse(await gatewayJson(flags, 'DELETE', `/v3/keys/${encodeURIComponent(keyId)}`));
      process.stdout.write(`revoked ${doc.key_id} (${doc.name}) at ${doc.revoked_at}\n`);
    } catch (err) {
      fail(err);
    }
  });
}
