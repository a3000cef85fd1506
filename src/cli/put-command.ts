// `ferry put FILE`: uploads a file to the gateway's object store and prints its reference
// (`{"$ref", size, sha256}`) on stdout; a progress bar (percent, MB/s) on stderr when it is a TTY.

import { statSync } from 'node:fs';
import type { Command } from 'commander';
import { InvalidArgumentError } from 'commander';
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

/** One line redrawn in place: `[#######.......]  48%  52.1 MB/s  96.0/200.0 MB`. */
export function progressLine(progress: PutProgress, elapsedS: number, width = 30): string {
  const mb = (n: number) => (n / 1e6).toFixed(1);
  const rate = elapsedS > 0 ? progress.sent / 1e6 / elapsedS : 0;
  if (progress.total === null || progress.total === 0) return `${mb(progress.sent)} MB  ${rate.toFixed(1)} MB/s`;
  const fraction = Math.min(1, progress.sent / progress.total);
  const filled = Math.round(fraction * width);
  return `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${String(Math.floor(fraction * 100)).padStart(3)}%  ${rate.toFixed(1)} MB/s  ${mb(progress.sent)}/${mb(progress.total)} MB`;
}

export async function runPut(file: string, flags: PutFlags): Promise<void> {
  const client = gatewayClient(await freshGatewayAccess(flags));
  const total = statSync(file).size;
  const showProgress = flags.progress ?? Boolean(process.stderr.isTTY);
  const started = performance.now();
  const draw = (p: PutProgress) => process.stderr.write(`\r${progressLine(p, (performance.now() - started) / 1000)}`);
  if (showProgress) draw({ sent: 0, total });
  const ref = await putFile(client, file, {
    ...(flags.contentType ? { contentType: flags.contentType } : {}),
    ...(flags.ttl ? { ttlSeconds: flags.ttl } : {}),
    ...(flags.partSize ? { partSize: flags.partSize * 1024 * 1024 } : {}),
    ...(showProgress ? { onProgress: draw } : {}),
  });
  if (showProgress) process.stderr.write('\n');
  process.stdout.write(JSON.stringify(ref) + '\n');
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
