// Composition root of an endpoint: reads its config and credentials, builds the provider and the
// agent, and starts it. Everything below takes its dependencies as arguments.

import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import type { FerryError } from '../protocol/errors';
import { Agent } from './agent/agent';
import { loadEndpointConfig, type EndpointConfig } from './config/endpoint-config';
import { endpointDir, ferryHome, readCredentials } from './ferry-home';
import type { Logger } from './log';
import { LocalProvider } from './providers/local-provider';
import type { Provider } from './providers/provider';

export interface StartEndpointOptions {
  name: string;
  /** Path of the YAML config; default: endpoint-config/NAME.yaml, then $FERRY_HOME/endpoints/NAME/config.yaml. */
  configPath?: string;
  log: Logger;
  onFatal?: (error: FerryError) => void;
}

export function resolveConfigPath(name: string, explicit?: string): string {
  if (explicit) return resolve(explicit);
  const candidates = [resolve('endpoint-config', `${name}.yaml`), resolve(endpointDir(name), 'config.yaml')];
  return candidates.find((p) => existsSync(p)) ?? candidates[0]!;
}

function buildProvider(config: EndpointConfig): Provider {
  switch (config.provider.type) {
    case 'local':
      return new LocalProvider();
  }
}

export async function startEndpoint(options: StartEndpointOptions): Promise<Agent> {
  const configPath = resolveConfigPath(options.name, options.configPath);
  const config = loadEndpointConfig(configPath);
  const credentials = readCredentials(options.name);
  const stateDir = config.state_dir ? resolve(config.state_dir) : endpointDir(options.name, ferryHome());
  const log = options.log.child({ endpoint: options.name });
  log.info('starting endpoint', { config: configPath, endpoint_id: credentials.endpoint_id, gateway: credentials.gateway_url });
  const agent = new Agent({ config, credentials, stateDir, provider: buildProvider(config), log, ...(options.onFatal ? { onFatal: options.onFatal } : {}) });
  await agent.start();
  return agent;
}
