// The editor schema and the example configs stay true to EndpointConfigSchema: schema.json is what
// `npm run schema` generates today, and every example and template parses.

import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { renderConfigSchema } from './config-schema';
import { PROVIDER_TYPES, renderEndpointTemplate, SCHEMA_PATH } from './endpoint-templates';
import { PROJECT_ROOT } from './gateway-process';
import { EndpointConfigSchema, parseEndpointConfig } from '../endpoint/config/endpoint-config';

const CONFIG_DIR = join(PROJECT_ROOT, 'endpoint-config');
const examples = readdirSync(CONFIG_DIR).filter((f) => f.endsWith('.yaml'));

describe('endpoint-config/schema.json', () => {
  it('equals a freshly generated one (run `npm run schema` after changing EndpointConfigSchema)', () => {
    expect(readFileSync(join(CONFIG_DIR, 'schema.json'), 'utf8')).toBe(renderConfigSchema());
  });

  it('leaves fields with defaults optional and rejects unknown fields', () => {
    const schema = JSON.parse(renderConfigSchema()) as { required?: string[]; additionalProperties?: boolean };
    expect(schema.required ?? []).toEqual([]);
    expect(schema.additionalProperties).toBe(false);
  });
});

describe('example configs', () => {
  it('include local, slurm and pbs', () => {
    expect(examples).toEqual(expect.arrayContaining(['local.yaml', 'slurm.yaml', 'pbs.yaml']));
  });

  it.each(examples)('%s parses with EndpointConfigSchema', (file) => {
    const doc = parseYaml(readFileSync(join(CONFIG_DIR, file), 'utf8'));
    const parsed = EndpointConfigSchema.safeParse(doc);
    expect(parsed.error?.issues ?? []).toEqual([]);
  });

  it.each(['slurm.yaml', 'pbs.yaml'])('%s names the schema for editors', (file) => {
    expect(readFileSync(join(CONFIG_DIR, file), 'utf8').split('\n')[0]).toBe('# yaml-language-server: $schema=./schema.json');
  });
});

describe('configure templates', () => {
  it.each(PROVIDER_TYPES)('the %s template renders to a valid config of that provider, pointing at the schema', (provider) => {
    const text = renderEndpointTemplate(provider, '1.0');
    expect(text.split('\n')[0]).toBe(`# yaml-language-server: $schema=${SCHEMA_PATH}`);
    const config = parseEndpointConfig(parseYaml(text));
    expect(config.provider.type).toBe(provider);
    // A name that YAML would read as a number stays a string.
    expect(config.display_name).toBe('1.0');
  });
});
