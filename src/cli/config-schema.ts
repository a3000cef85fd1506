// The JSON Schema of an endpoint's config.yaml, generated from the zod schema the endpoint parses
// with, so editors (yaml-language-server) check and complete the same fields the agent accepts.

import { z } from 'zod';
import { EndpointConfigSchema } from '../endpoint/config/endpoint-config';

/** The schema document, as written to endpoint-config/schema.json (stable key order, trailing newline). */
export function renderConfigSchema(): string {
  // io 'input': fields with defaults are optional in a file, as the parser treats them. Draft 7:
  // what yaml-language-server (VS Code, Neovim) validates against fully.
  const generated = z.toJSONSchema(EndpointConfigSchema, { io: 'input', target: 'draft-7' }) as Record<string, unknown>;
  const { $schema, ...rest } = generated;
  const doc = {
    $schema,
    title: 'Ferry endpoint configuration',
    description: 'config.yaml of a Ferry endpoint ($FERRY_HOME/endpoints/NAME/config.yaml). Generated from EndpointConfigSchema by `npm run schema`; do not edit.',
    ...rest,
  };
  return JSON.stringify(doc, null, 2) + '\n';
}
