// The commented config.yaml that `ferry endpoint configure` writes, one template per provider in
// endpoint-config/templates/. The file an owner gets must parse, so every rendering is validated.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { parseEndpointConfig } from '../endpoint/config/endpoint-config';
import { PROJECT_ROOT } from './gateway-process';

export const PROVIDER_TYPES = ['local', 'slurm', 'pbs'] as const;
export type ProviderType = (typeof PROVIDER_TYPES)[number];

export const SCHEMA_PATH = join(PROJECT_ROOT, 'endpoint-config', 'schema.json');

export function templatePath(provider: ProviderType): string {
  return join(PROJECT_ROOT, 'endpoint-config', 'templates', `${provider}.yaml`);
}

/** The template for `provider` with the endpoint's display name and an absolute schema path. */
export function renderEndpointTemplate(provider: ProviderType, name: string): string {
  const text = readFileSync(templatePath(provider), 'utf8')
    // The template's relative modeline would point nowhere once the file lives under FERRY_HOME.
    .replace(/^# yaml-language-server: \$schema=.*$/m, `# yaml-language-server: $schema=${SCHEMA_PATH}`)
    // Quoted: a name such as 1.0 would otherwise read as a number.
    .replace(/^display_name: .*$/m, `display_name: ${JSON.stringify(name)}`);
  parseEndpointConfig(parseYaml(text), templatePath(provider));
  return text;
}
