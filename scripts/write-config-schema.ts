// `npm run schema`: regenerates endpoint-config/schema.json from EndpointConfigSchema. A unit test
// (src/cli/config-schema.test.ts) fails when the committed file is out of date.

import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { renderConfigSchema } from '../src/cli/config-schema';
import { PROJECT_ROOT } from '../src/cli/gateway-process';

const path = join(PROJECT_ROOT, 'endpoint-config', 'schema.json');
writeFileSync(path, renderConfigSchema());
process.stdout.write(`wrote ${path}\n`);
