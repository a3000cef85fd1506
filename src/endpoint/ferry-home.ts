// Where an endpoint keeps its credentials, journal and block files: $FERRY_HOME (default ~/.ferry)
// /endpoints/NAME/, created with mode 0700; credentials are written with mode 0600.

import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { z } from 'zod';
import { FerryError } from '../protocol/errors';
import type { EndpointCredentials } from './agent/agent';

export function ferryHome(): string {
  return resolve(process.env.FERRY_HOME || join(homedir(), '.ferry'));
}

export function endpointDir(name: string, home = ferryHome()): string {
  return join(home, 'endpoints', name);
}

const Credentials = z.object({
  endpoint_name: z.string(),
  endpoint_id: z.string(),
  gateway_url: z.string(),
  connection_url: z.string(),
  token: z.string(),
});

/** The endpoint's own config, written by `ferry endpoint configure`. */
export function configFilePath(name: string, home = ferryHome()): string {
  return join(endpointDir(name, home), 'config.yaml');
}

export function credentialsPath(name: string, home = ferryHome()): string {
  return join(endpointDir(name, home), 'credentials.json');
}

export function writeCredentials(creds: EndpointCredentials, home = ferryHome()): string {
  const dir = endpointDir(creds.endpoint_name, home);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const path = credentialsPath(creds.endpoint_name, home);
  writeFileSync(path, JSON.stringify(creds, null, 2) + '\n', { mode: 0o600 });
  chmodSync(path, 0o600);
  return path;
}

export function readCredentials(name: string, home = ferryHome()): EndpointCredentials {
  const path = credentialsPath(name, home);
  if (!existsSync(path)) {
    throw new FerryError('CONFIG_INVALID', `no credentials for endpoint "${name}" at ${path}: register the endpoint first`);
  }
  const parsed = Credentials.safeParse(JSON.parse(readFileSync(path, 'utf8')));
  if (!parsed.success) throw new FerryError('CONFIG_INVALID', `${path}: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  return parsed.data;
}
