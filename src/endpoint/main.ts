// Composition root of an endpoint: reads its config and credentials, builds the provider and the
// agent, and starts it. Everything below takes its dependencies as arguments.

import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import type { FerryError } from '../protocol/errors';
import { Agent } from './agent/agent';
import { loadEndpointConfig, type EndpointConfig } from './config/endpoint-config';
import { configFilePath, endpointDir, ferryHome, readCredentials } from './ferry-home';
import type { Logger } from './log';
import { LocalProvider } from './providers/local-provider';
import { PbsProvider } from './providers/pbs-provider';
import { SlurmProvider } from './providers/slurm-provider';
import type { Provider } from './providers/provider';

export interface StartEndpointOptions {
  name: string;
  /** Path of the YAML config; default: $FERRY_HOME/endpoints/NAME/config.yaml, then endpoint-config/NAME.yaml. */
  configPath?: string;
  log: Logger;
  onFatal?: (error: FerryError) => void;
}

export function resolveConfigPath(name: string, explicit?: string): string {
  if (explicit) return resolve(explicit);
  const candidates = [configFilePath(name), resolve('endpoint-config', `${name}.yaml`)];
  return candidates.find((p) => existsSync(p)) ?? candidates[0]!;
}

export function buildProvider(config: EndpointConfig): Provider {
  const p = config.provider;
  switch (p.type) {
    case 'local':
      return new LocalProvider();
    case 'slurm':
      return new SlurmProvider(p);
    case 'pbs':
      return new PbsProvider(p);
  }
}

export async function startEndpoint(options: StartEndpointOptions): Promise<Agent> {
  const configPath = resolveConfigPath(options.name, options.configPath);
  const config = loadEndpointConfig(configPath);
  const credentials = readCredentials(options.name);
  const stateDir = config.state_dir ? resolve(config.state_dir) : endpointDir(options.name, ferryHome());
  const log = options.log.child({ endpoint: options.name });
  log.info('starting endpoint', { config: configPath, endpoint_id: credentials.endpoint_id, gateway: credentials.gateway_url });
  const testFault = process.env.FERRY_TEST_AGENT_EXIT_ON_FUNCTION;
  const agent = new Agent({
    config, credentials, stateDir, provider: buildProvider(config), log,
    ...(options.onFatal ? { onFatal: options.onFatal } : {}), ...(testFault ? { exitOnDispatchOf: testFault } : {}),
  });
  await agent.start();
  return agent;
}
