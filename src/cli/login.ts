// `ferry login`: saves the gateway URL and the user's token to $FERRY_HOME/user.json (0600), after
// checking that the gateway accepts the token, so later commands need neither flags nor env.

import { CliError } from './cli-error';
import { gatewayClient, tokenSubject, writeUserConfig } from './user-config';

export async function login(opts: { gateway: string; token: string }): Promise<void> {
  let url: URL;
  try {
    url = new URL(opts.gateway);
  } catch {
    throw new CliError(`--gateway ${opts.gateway} is not a URL (e.g. https://ferry.example.org)`);
  }
  const gateway = url.href.replace(/\/+$/, '');
  const access = { url: gateway, token: opts.token, urlSource: '--gateway', tokenSource: '--token' };
  // Any authenticated read proves the token; listing endpoints is cheap and needs no id.
  const endpoints = await gatewayClient(access).listEndpoints();
  const path = writeUserConfig({ gateway_url: gateway, token: opts.token });
  const sub = tokenSubject(opts.token);
  process.stdout.write(
    `Logged in to ${gateway}${sub ? ` as ${sub}` : ''} (${endpoints.length} endpoint${endpoints.length === 1 ? '' : 's'}).\n  saved: ${path} (mode 0600)\n`,
  );
}
