// Process entry of a manager: `node --no-node-snapshot --import tsx main.ts <connect-file>`.
// Started by a provider inside a block (a local child process, or a batch job's step).

import { createLogger } from '../log';
import { readConnectFile } from './connect-file';
import { Manager } from './manager';

const path = process.argv[2];
if (!path) {
  process.stderr.write('usage: manager <connect-file>\n');
  process.exit(2);
}
const info = readConnectFile(path);
const log = createLogger({ component: 'manager', block_id: info.block_id, pid: process.pid });
const manager = new Manager(info, log, (code) => process.exit(code));
for (const signal of ['SIGTERM', 'SIGINT'] as const) process.on(signal, () => manager.stop(signal));
manager.start();
