// The endpoints configured on this machine: their folders under $FERRY_HOME/endpoints/NAME/, what
// their credentials and config say, and whether an agent runs for them.

import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { loadEndpointConfig } from '../endpoint/config/endpoint-config';
import { configFilePath, credentialsPath, endpointDir, readCredentials } from '../endpoint/ferry-home';
import { CliError } from './cli-error';
import { runningPid } from './endpoint-process';

export interface LocalEndpoint {
  name: string;
  dir: string;
  endpointId: string | null;
  configPath: string | null;
  /** The provider type from config.yaml, 'invalid' when it does not parse, null without one. */
  provider: string | null;
  pid: number | null;
}

export function readLocalEndpoint(name: string, home: string): LocalEndpoint | null {
  const dir = endpointDir(name, home);
  if (!existsSync(dir)) return null;
  let endpointId: string | null = null;
  if (existsSync(credentialsPath(name, home))) {
    try {
      endpointId = readCredentials(name, home).endpoint_id;
    } catch {
      endpointId = null;
    }
  }
  const configPath = configFilePath(name, home);
  let provider: string | null = null;
  if (existsSync(configPath)) {
    try {
      provider = loadEndpointConfig(configPath).provider.type;
    } catch {
      provider = 'invalid';
    }
  }
  return { name, dir, endpointId, configPath: existsSync(configPath) ? configPath : null, provider, pid: runningPid(name, home) };
}

export function localEndpoints(home: string): LocalEndpoint[] {
  const root = join(home, 'endpoints');
  if (!existsSync(root)) return [];
  return readdirSync(root, { withFileTypes: true })
    .filter((d) => d.isDirectory())
    .map((d) => readLocalEndpoint(d.name, home))
    .filter((e): e is LocalEndpoint => e !== null)
    .sort((a, b) => a.name.localeCompare(b.name));
}

export function requireLocal(name: string, home: string): LocalEndpoint {
  const local = readLocalEndpoint(name, home);
  if (!local) throw new CliError(`no endpoint named ${name} in ${join(home, 'endpoints')}; create it with: ferry endpoint configure ${name}`);
  return local;
}
