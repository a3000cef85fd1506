// A real OpenID provider for sign-in tests: panva's `oidc-provider` (certified) on a loopback port,
// with the device authorization grant (RFC 8628), refresh tokens, and resource indicators so that
// access tokens for the gateway's audience are JWTs (RS256, verifiable through the JWKS). The
// test plays the user's browser with plain HTTP (`approveDevice`): the code page, the
// development login form (any login name is an account), the consent form.

import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair } from 'jose';
import Provider, { errors } from 'oidc-provider';

export const CLI_CLIENT_ID = 'ferry-cli';

export interface TestIdentityProvider {
  issuer: string;
  /** Plays the browser: opens the verification URL, confirms the code, signs in as `login`, consents. */
  approveDevice(verificationUriComplete: string, login: string): Promise<void>;
  stop(): Promise<void>;
}

export interface IdentityProviderOptions {
  /** The gateway's audience (resource indicator) the access tokens are issued for. */
  audience: string;
  accessTokenTtlS?: number;
}

export async function startIdentityProvider(options: IdentityProviderOptions): Promise<TestIdentityProvider> {
  const server: Server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const { privateKey } = await generateKeyPair('RS256', { extractable: true });
  const jwk = { ...(await exportJWK(privateKey)), alg: 'RS256', use: 'sig', kid: `k-${Date.now()}` };
  const ttl = options.accessTokenTtlS ?? 300;
  const provider = new Provider(issuer, {
    clients: [
      {
        client_id: CLI_CLIENT_ID,
        client_name: 'Ferry CLI',
        token_endpoint_auth_method: 'none',
        grant_types: ['urn:ietf:params:oauth:grant-type:device_code', 'refresh_token'],
        response_types: [],
        redirect_uris: [],
      },
    ],
    jwks: { keys: [jwk as never] },
    cookies: { keys: ['ferry-test-cookie-key'] },
    scopes: ['openid', 'offline_access'],
    findAccount: (_ctx, sub) => ({ accountId: sub, claims: () => ({ sub }) }),
    ttl: { AccessToken: ttl, DeviceCode: 600, RefreshToken: 86_400, Grant: 86_400, Session: 86_400, Interaction: 600, IdToken: 3600 },
    features: {
      deviceFlow: { enabled: true },
      devInteractions: { enabled: true },
      revocation: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => options.audience,
        useGrantedResource: () => true,
        getResourceServerInfo: (_ctx, resource) => {
          if (resource !== options.audience) throw new errors.InvalidTarget();
          return { scope: 'openid offline_access', audience: options.audience, accessTokenTTL: ttl, accessTokenFormat: 'jwt', jwt: { sign: { alg: 'RS256' } } };
        },
      },
    },
  });
  server.on('request', provider.callback());

  return {
    issuer,
    approveDevice: (url, login) => approveDevice(issuer, url, login),
    stop: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** A browser reduced to what the provider's pages need: a cookie jar, forms, redirects followed by hand. */
async function approveDevice(issuer: string, verificationUriComplete: string, login: string): Promise<void> {
  const jar = new Map<string, string>();
  const request = async (url: string, init: { method?: string; form?: Record<string, string> } = {}): Promise<{ status: number; location: string | null; html: string; url: string }> => {
    const headers: Record<string, string> = { cookie: [...jar].map(([k, v]) => `${k}=${v}`).join('; ') };
    let body: string | undefined;
    if (init.form) {
      body = new URLSearchParams(init.form).toString();
      headers['content-type'] = 'application/x-www-form-urlencoded';
    }
    const res = await fetch(url, { method: init.method ?? 'GET', headers, body, redirect: 'manual' });
    for (const line of res.headers.getSetCookie()) {
      const [pair] = line.split(';');
      const eq = pair!.indexOf('=');
      jar.set(pair!.slice(0, eq), pair!.slice(eq + 1));
    }
    const location = res.headers.get('location');
    return { status: res.status, location: location === null ? null : new URL(location, url).href, html: await res.text(), url };
  };
  /** Follows redirects and submits the page's form until the provider says the device is signed in. */
  let page = await request(verificationUriComplete);
  for (let step = 0; step < 20; step++) {
    if (page.location) {
      page = await request(page.location);
      continue;
    }
    if (/Sign-in Success/.test(page.html)) return;
    if (page.status >= 400) throw new Error(`the provider answered ${page.status} at ${page.url}: ${page.html.slice(0, 500)}`);
    const form = /<form[^>]*action="([^"]+)"[^>]*>([\s\S]*?)<\/form>/.exec(page.html) ?? /<form[^>]*id="op\.device\w+Form"[^>]*>([\s\S]*?)<\/form>/.exec(page.html);
    if (!form) throw new Error(`no form on ${page.url}: ${page.html.slice(0, 500)}`);
    const action = form.length === 3 ? form[1]! : page.url;
    const fields: Record<string, string> = {};
    for (const input of (form.length === 3 ? form[2]! : form[1]!).matchAll(/<input[^>]*>/g)) {
      const name = /name="([^"]+)"/.exec(input[0])?.[1];
      const value = /value="([^"]*)"/.exec(input[0])?.[1] ?? '';
      if (name) fields[name] = value;
    }
    if ('login' in fields) {
      fields.login = login;
      fields.password = 'any';
    }
    page = await request(new URL(action.replace(/&amp;/g, '&'), page.url).href, { method: 'POST', form: fields });
  }
  throw new Error(`the device sign-in did not finish at ${issuer}`);
}
