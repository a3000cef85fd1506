// `ferry put FILE`: uploads a file to the gateway's object store and prints its reference
// (`{"$ref", size, sha256}`) on stdout; a progress bar (percent, MB/s) on stderr when it is a TTY.

import { statSync } from 'node:fs';
import type { Command } from 'commander';
import { InvalidArgumentError } from 'commander';
import { SingleBar } from 'cli-progress';
import type { PutProgress } from '../sdk/objects';
import { fail } from './cli-error';
import { putFile } from './put-file';
import { freshGatewayAccess } from './oidc-login';
import { gatewayClient, type AccessFlags } from './user-config';

interface PutFlags extends AccessFlags {
  contentType?: string;
  ttl?: number;
  partSize?: number;
  progress?: boolean;
}

function positiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0) throw new InvalidArgumentError('must be a positive integer');
  return n;
}

/** A bar redrawn in place (cli-progress): `[#######.......]  48%  52.1 MB/s  96.0/200.0 MB`. */
function progressBar(total: number, force: boolean): { update(p: PutProgress): void; stop(): void } {
  const mb = (n: number) => (n / 1e6).toFixed(1);
  const bar = new SingleBar({
    stream: process.stderr,
    format: '[{bar}] {percentage}%  {rate} MB/s  {sent}/{size} MB',
    barCompleteChar: '#',
    barIncompleteChar: '.',
    barsize: 30,
    hideCursor: null,
    noTTYOutput: force,
    notTTYSchedule: 250,
    formatValue: (v, _options, type) => (type === 'percentage' ? String(v).padStart(3) : String(v)),
  });
  const started = performance.now();
  bar.start(total, 0, { rate: '0.0', sent: mb(0), size: mb(total) });
  return {
    update: (p) => {
      const elapsedS = (performance.now() - started) / 1000;
      bar.update(p.sent, { rate: (elapsedS > 0 ? p.sent / 1e6 / elapsedS : 0).toFixed(1), sent: mb(p.sent) });
    },
    stop: () => bar.stop(),
  };
}

export async function runPut(file: string, flags: PutFlags): Promise<void> {
  const client = gatewayClient(await freshGatewayAccess(flags));
  const total = statSync(file).size;
  const showProgress = flags.progress ?? Boolean(process.stderr.isTTY);
  const bar = showProgress ? progressBar(total, flags.progress === true) : null;
  try {
    const ref = await putFile(client, file, {
      ...(flags.contentType ? { contentType: flags.contentType } : {}),
      ...(flags.ttl ? { ttlSeconds: flags.ttl } : {}),
      ...(flags.partSize ? { partSize: flags.partSize * 1024 * 1024 } : {}),
      ...(bar ? { onProgress: (p: PutProgress) => bar.update(p) } : {}),
    });
    bar?.stop();
    process.stdout.write(JSON.stringify(ref) + '\n');
  } catch (err) {
    bar?.stop();
    throw err;
  }
}

export function registerPutCommand(program: Command): void {
  program
    .command('put')
    .description('upload FILE to the object store and print its reference {"$ref", size, sha256}')
    .argument('<file>', 'the file to upload')
    .option('--content-type <type>', 'Content-Type kept with the object', 'application/octet-stream')
    .option('--ttl <seconds>', 'delete the object after this many seconds', positiveInt)
    .option('--part-size <MiB>', 'part size of a multipart upload (5-64)', positiveInt)
    .option('--progress', 'draw the progress bar even when stderr is not a terminal')
    .option('--gateway <url>', 'the gateway (default: FERRY_URL, then `ferry login`, then `ferry dev`)')
    .option('--token <token>', 'your user token (default: FERRY_TOKEN, then `ferry login`, then `ferry dev`)')
    .action(async (file: string, flags: PutFlags) => {
      await runPut(file, flags).catch(fail);
    });
}
