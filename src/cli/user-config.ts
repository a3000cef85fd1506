// Where the CLI finds the gateway and the user's token: flags, then FERRY_URL / FERRY_TOKEN, then
// $FERRY_HOME/user.json (written by `ferry login`), then the development gateway's dev.json.
// Each of the two settings resolves on its own, so FERRY_TOKEN can pair with a saved gateway URL.

import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { ferryHome } from '../endpoint/ferry-home';
import { FerryError } from '../protocol/errors';
import { Client } from '../sdk/client';
import { CliError } from './cli-error';
import { PROJECT_ROOT } from './gateway-process';

export interface AccessFlags {
  gateway?: string;
  token?: string;
}

export interface GatewayAccess {
  url: string;
  token: string;
  /** Where each setting came from, for messages ("--gateway", "FERRY_URL", a file path). */
  urlSource: string;
  tokenSource: string;
}

/** A sign-in through an OpenID provider (`ferry login --oidc`): what refreshing the token needs. */
export const OidcSession = z.object({
  provider: z.string(),
  issuer: z.string(),
  client_id: z.string(),
  token_endpoint: z.url(),
  revocation_endpoint: z.url().nullable(),
  /** The resource (the gateway's audience) the tokens are asked for. */
  resource: z.string(),
  refresh_token: z.string().min(1).nullable(),
  /** When the access token (`token`) expires, in unix ms. */
  expires_at: z.number(),
});
export type OidcSession = z.infer<typeof OidcSession>;

const UserConfig = z.object({ gateway_url: z.url(), token: z.string().min(1), oidc: OidcSession.optional() });
export type UserConfig = z.infer<typeof UserConfig>;

export function userConfigPath(home = ferryHome()): string {
  return join(home, 'user.json');
}

/** dev.json files `ferry dev` may have written: under FERRY_HOME when it was set, else the project's .ferry. */
function devConfigPaths(home: string): string[] {
  return [...new Set([join(home, 'dev.json'), join(PROJECT_ROOT, '.ferry', 'dev.json')])];
}

export function readJsonConfig(path: string): Partial<UserConfig> | null {
  if (!existsSync(path)) return null;
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new FerryError('CONFIG_INVALID', `${path}: not valid JSON (${(err as Error).message})`);
  }
  const parsed = UserConfig.partial().safeParse(raw);
  if (!parsed.success) throw new FerryError('CONFIG_INVALID', `${path}: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  return parsed.data;
}

export function resolveGatewayAccess(flags: AccessFlags = {}, env: NodeJS.ProcessEnv = process.env, home = ferryHome()): GatewayAccess {
  let url: [string, string] | undefined = flags.gateway ? [flags.gateway, '--gateway'] : env.FERRY_URL ? [env.FERRY_URL, 'FERRY_URL'] : undefined;
  let token: [string, string] | undefined = flags.token ? [flags.token, '--token'] : env.FERRY_TOKEN ? [env.FERRY_TOKEN, 'FERRY_TOKEN'] : undefined;
  for (const path of [userConfigPath(home), ...devConfigPaths(home)]) {
    if (url && token) break;
    const file = readJsonConfig(path);
    if (!file) continue;
    if (!url && file.gateway_url) url = [file.gateway_url, path];
    if (!token && file.token) token = [file.token, path];
  }
  if (!url || !token) {
    const missing = !url && !token ? 'the gateway URL and a token' : !url ? 'the gateway URL' : 'a token';
    throw new CliError(
      [
        `no gateway configured: this command needs ${missing}. Give them in one of these ways:`,
        '  --gateway URL --token T                     (flags of this command)',
        '  FERRY_URL=URL FERRY_TOKEN=T                 (environment)',
        `  ferry login --gateway URL --token T         (saves ${userConfigPath(home)})`,
        '  npm start  (ferry dev)                      (a development gateway; writes .ferry/dev.json)',
      ].join('\n'),
    );
  }
  return { url: url[0].replace(/\/+$/, ''), token: token[0], urlSource: url[1], tokenSource: token[1] };
}

/** A Client whose network failures say which gateway could not be reached and why. */
export function gatewayClient(access: GatewayAccess): Client {
  const reachable: typeof fetch = async (input, init) => {
    try {
      return await fetch(input, init);
    } catch (err) {
      const cause = (err as { cause?: { code?: string; message?: string } }).cause;
      throw new CliError(`cannot reach the gateway at ${access.url} (${cause?.code ?? cause?.message ?? (err as Error).message}; from ${access.urlSource})`);
    }
  };
  return new Client({ url: access.url, token: access.token, fetch: reachable });
}

export function writeUserConfig(config: UserConfig, home = ferryHome()): string {
  mkdirSync(home, { recursive: true, mode: 0o700 });
  const path = userConfigPath(home);
  writeFileSync(path, JSON.stringify(UserConfig.parse(config), null, 2) + '\n', { mode: 0o600 });
  // writeFileSync keeps the mode of a file that already exists.
  chmodSync(path, 0o600);
  return path;
}

/** The `sub` claim of a JWT, for display only (the gateway verifies tokens, not the CLI). */
export function tokenSubject(token: string): string | null {
  try {
    const payload = JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString('utf8')) as { sub?: unknown };
    return typeof payload.sub === 'string' ? payload.sub : null;
  } catch {
    return null;
  }
}
