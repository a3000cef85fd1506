// Sign-in through the institution's OpenID provider: `ferry login --oidc` runs the device
// authorization grant (RFC 8628) with the settings the gateway serves at GET /v3/auth/config, and
// keeps the tokens in $FERRY_HOME/user.json (0600) with the refresh token; commands refresh the
// access token when it is about to expire (`freshGatewayAccess`); `ferry logout` forgets them.

import { rmSync } from 'node:fs';
import { z } from 'zod';
import { AuthConfig, type AuthProviderInfo } from '../protocol/auth-api';
import { errorFromBody } from '../protocol/error-body';
import { CliError } from './cli-error';
import { readJsonConfig, resolveGatewayAccess, userConfigPath, writeUserConfig, type AccessFlags, type GatewayAccess, type OidcSession } from './user-config';

/** Refresh this long before the access token expires: a request must not arrive with a dead one. */
const REFRESH_MARGIN_MS = 60_000;
const DEVICE_GRANT = 'urn:ietf:params:oauth:grant-type:device_code';

const DeviceAuthorization = z.object({
  device_code: z.string(),
  user_code: z.string(),
  verification_uri: z.string(),
  verification_uri_complete: z.string().optional(),
  expires_in: z.number(),
  interval: z.number().optional(),
});

const TokenAnswer = z.object({ access_token: z.string(), expires_in: z.number().optional(), refresh_token: z.string().optional() });
const TokenError = z.object({ error: z.string(), error_description: z.string().optional() });

async function postForm(url: string, form: Record<string, string>): Promise<{ status: number; json: unknown }> {
  let res: Response;
  try {
    res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' }, body: new URLSearchParams(form) });
  } catch (err) {
    throw new CliError(`cannot reach the sign-in provider at ${url} (${(err as Error).message})`);
  }
  const text = await res.text();
  try {
    return { status: res.status, json: JSON.parse(text) };
  } catch {
    throw new CliError(`the sign-in provider answered ${res.status} at ${url} with something that is not JSON`);
  }
}

async function authConfig(gateway: string): Promise<AuthConfig> {
  let res: Response;
  try {
    res = await fetch(`${gateway}/v3/auth/config`);
  } catch (err) {
    throw new CliError(`cannot reach the gateway at ${gateway} (${(err as Error).message})`);
  }
  if (!res.ok) throw new CliError(`the gateway at ${gateway} answered ${res.status} to GET /v3/auth/config`);
  return AuthConfig.parse(await res.json());
}

function chooseProvider(config: AuthConfig, name: string | undefined, gateway: string): AuthProviderInfo {
  if (config.providers.length === 0) throw new CliError(`the gateway at ${gateway} accepts no OpenID provider (AUTH_PROVIDERS); use \`ferry login --token\``);
  const provider = name === undefined ? config.providers[0]! : config.providers.find((p) => p.name === name);
  if (!provider) throw new CliError(`no provider named ${name} at ${gateway}; it accepts: ${config.providers.map((p) => p.name).join(', ')}`);
  if (!provider.device_authorization_endpoint || !provider.token_endpoint) throw new CliError(`the gateway cannot read ${provider.issuer}'s discovery document, or the provider offers no device flow`);
  return provider;
}

function sessionFrom(provider: AuthProviderInfo, answer: z.infer<typeof TokenAnswer>, previousRefresh: string | null): OidcSession {
  return {
    provider: provider.name,
    issuer: provider.issuer,
    client_id: provider.client_id,
    token_endpoint: provider.token_endpoint!,
    revocation_endpoint: provider.revocation_endpoint,
    resource: provider.audience,
    refresh_token: answer.refresh_token ?? previousRefresh,
    // Without expires_in, assume an hour; the gateway's TOKEN_EXPIRED would say otherwise.
    expires_at: Date.now() + (answer.expires_in ?? 3600) * 1000,
  };
}

/** `ferry login --oidc`: prints where to sign in, waits for the user, saves the tokens. */
export async function oidcLogin(opts: { gateway?: string; provider?: string }, out: (line: string) => void = (l) => process.stdout.write(l + '\n')): Promise<void> {
  const gateway = (opts.gateway ?? process.env.FERRY_URL ?? readJsonConfig(userConfigPath())?.gateway_url ?? '').replace(/\/+$/, '');
  if (!gateway) throw new CliError('which gateway? give --gateway URL (or FERRY_URL)');
  const provider = chooseProvider(await authConfig(gateway), opts.provider, gateway);
  const started = await postForm(provider.device_authorization_endpoint!, { client_id: provider.client_id, scope: provider.scopes.join(' '), resource: provider.audience });
  const device = DeviceAuthorization.safeParse(started.json);
  if (!device.success) throw new CliError(`${provider.issuer} refused the device sign-in: ${JSON.stringify(started.json).slice(0, 300)}`);
  const { device_code, user_code, verification_uri, verification_uri_complete } = device.data;
  out(`To sign in to ${gateway} through ${provider.name} (${provider.issuer}), open`);
  out(`  ${verification_uri}`);
  out(`and enter the code ${user_code}${verification_uri_complete ? `, or open ${verification_uri_complete}` : ''}`);
  out('Waiting…');
  let intervalMs = (device.data.interval ?? 5) * 1000;
  const deadline = Date.now() + device.data.expires_in * 1000;
  for (;;) {
    // RFC 8628 §3.5: poll no faster than the interval the provider set.
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
    if (Date.now() > deadline) throw new CliError('the sign-in code expired before it was used: run `ferry login --oidc` again');
    const polled = await postForm(provider.token_endpoint!, { grant_type: DEVICE_GRANT, device_code, client_id: provider.client_id });
    const tokens = TokenAnswer.safeParse(polled.json);
    if (polled.status === 200 && tokens.success) {
      const session = sessionFrom(provider, tokens.data, null);
      const path = writeUserConfig({ gateway_url: gateway, token: tokens.data.access_token, oidc: session });
      const me = await whoAmI(gateway, tokens.data.access_token);
      out(`Signed in to ${gateway} as ${me.sub ?? '?'} at ${provider.name} (user id ${me.user_id}).`);
      out(`  saved: ${path} (mode 0600${session.refresh_token ? ', with a refresh token' : ''})`);
      return;
    }
    const error = TokenError.safeParse(polled.json);
    const code = error.success ? error.data.error : 'unknown';
    if (code === 'authorization_pending') continue;
    if (code === 'slow_down') {
      intervalMs += 5000;
      continue;
    }
    if (code === 'access_denied') throw new CliError('the sign-in was refused in the browser');
    if (code === 'expired_token') throw new CliError('the sign-in code expired before it was used: run `ferry login --oidc` again');
    throw new CliError(`${provider.issuer} answered ${polled.status}: ${error.success ? `${code} ${error.data.error_description ?? ''}` : JSON.stringify(polled.json).slice(0, 300)}`);
  }
}

async function whoAmI(gateway: string, token: string): Promise<{ user_id: string; sub: string | null }> {
  const res = await fetch(`${gateway}/v3/users/me`, { headers: { authorization: `Bearer ${token}` } });
  const text = await res.text();
  if (!res.ok) throw new CliError(`the gateway refused the provider's token (${res.status} ${errorFromBody(res.status, text).message}): is AUTH_PROVIDERS's audience the resource the provider issues tokens for?`);
  return JSON.parse(text) as { user_id: string; sub: string | null };
}

/** A new access token for a saved session, through its refresh token. */
async function refresh(session: OidcSession): Promise<{ token: string; session: OidcSession }> {
  if (!session.refresh_token) throw new CliError('your sign-in has expired and holds no refresh token: run `ferry login --oidc` again');
  const answer = await postForm(session.token_endpoint, { grant_type: 'refresh_token', refresh_token: session.refresh_token, client_id: session.client_id, resource: session.resource });
  const tokens = TokenAnswer.safeParse(answer.json);
  if (answer.status !== 200 || !tokens.success) {
    const error = TokenError.safeParse(answer.json);
    throw new CliError(`your sign-in could not be renewed (${error.success ? error.data.error : answer.status}): run \`ferry login --oidc\` again`);
  }
  const provider = { name: session.provider, issuer: session.issuer, client_id: session.client_id, audience: session.resource, scopes: [], device_authorization_endpoint: null, token_endpoint: session.token_endpoint, revocation_endpoint: session.revocation_endpoint };
  return { token: tokens.data.access_token, session: sessionFrom(provider, tokens.data, session.refresh_token) };
}

/**
 * The gateway and token a command should use, as resolveGatewayAccess finds them, with a token
 * from `ferry login --oidc` refreshed first when it expires within a minute (saved again, 0600).
 */
export async function freshGatewayAccess(flags: AccessFlags = {}): Promise<GatewayAccess> {
  const access = resolveGatewayAccess(flags);
  const path = userConfigPath();
  if (access.tokenSource !== path) return access;
  const saved = readJsonConfig(path);
  if (!saved?.oidc || !saved.gateway_url || saved.token !== access.token) return access;
  if (saved.oidc.expires_at - Date.now() > REFRESH_MARGIN_MS) return access;
  const renewed = await refresh(saved.oidc);
  writeUserConfig({ gateway_url: saved.gateway_url, token: renewed.token, oidc: renewed.session });
  return { ...access, token: renewed.token };
}

/** `ferry logout`: forgets the saved token (and revokes a refresh token at its provider, when it can). */
export async function logout(out: (line: string) => void = (l) => process.stdout.write(l + '\n')): Promise<void> {
  const path = userConfigPath();
  const saved = readJsonConfig(path);
  if (!saved?.token) {
    out('Not signed in.');
    return;
  }
  const session = saved.oidc;
  if (session?.refresh_token && session.revocation_endpoint) {
    // Best effort: the provider may be unreachable; the local copy goes regardless.
    await postForm(session.revocation_endpoint, { token: session.refresh_token, token_type_hint: 'refresh_token', client_id: session.client_id }).catch(() => undefined);
  }
  rmSync(path, { force: true });
  out(`Signed out: removed ${path}${session?.refresh_token && session.revocation_endpoint ? ' and revoked the refresh token at the provider' : ''}.`);
}
