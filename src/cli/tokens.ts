// Mints user tokens with the gateway's own key (HS256), for development and small deployments.
// Sites with an OIDC issuer use its tokens instead.

import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { SignJWT, decodeJwt } from 'jose';
import { DEFAULT_MAX_USER_TOKEN_TTL_S, DEV_ISSUER, USER_AUDIENCE } from '../protocol/tokens';

export interface MintOptions {
  secret: string;
  sub: string;
  /** Lifetime, e.g. '30d', '1h', or seconds; at most the gateway's default cap (30 days). */
  expiresIn?: string | number;
}

export async function mintUserToken(options: MintOptions): Promise<string> {
  const jwt = new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject(options.sub).setIssuer(DEV_ISSUER).setAudience(USER_AUDIENCE).setIssuedAt();
  const exp = options.expiresIn ?? '30d';
  jwt.setExpirationTime(typeof exp === 'number' ? Math.floor(Date.now() / 1000) + exp : exp);
  const token = await jwt.sign(new TextEncoder().encode(options.secret));
  // The gateway refuses a longer-lived token (MAX_USER_TOKEN_TTL_S): say so now, not at first use.
  const claims = decodeJwt(token);
  if (claims.exp! - claims.iat! > DEFAULT_MAX_USER_TOKEN_TTL_S) {
    throw new Error(`a token lifetime of ${JSON.stringify(exp)} is over the gateway's default cap of 30d (MAX_USER_TOKEN_TTL_S = ${DEFAULT_MAX_USER_TOKEN_TTL_S})`);
  }
  return token;
}

/** Reads JWT_SECRET from a .dev.vars file, creating the file with a random secret if missing. */
export function ensureDevSecret(path: string): string {
  if (existsSync(path)) {
    const match = /^JWT_SECRET\s*=\s*"?([^"\n]+)"?\s*$/m.exec(readFileSync(path, 'utf8'));
    if (match) return match[1]!;
    throw new Error(`${path} has no JWT_SECRET line`);
  }
  const secret = randomBytes(32).toString('hex');
  writeFileSync(path, `# Created by ferry dev: the key that signs development tokens. Keep it private.\nJWT_SECRET=${secret}\n`, { mode: 0o600 });
  return secret;
}

export function readDevSecret(path: string): string {
  if (!existsSync(path)) throw new Error(`${path} does not exist: run \`npm start\` (ferry dev) once first`);
  return ensureDevSecret(path);
}
