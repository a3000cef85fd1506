// `ferry endpoint logs NAME [-f] [-n N]`: the tail of a detached endpoint's log, read from its end,
// and followed as `tail -F` does.

import { closeSync, existsSync, openSync, readSync, statSync } from 'node:fs';
import { ferryHome } from '../endpoint/ferry-home';
import { CliError } from './cli-error';
import { logPath } from './endpoint-process';
import { requireLocal } from './local-endpoints';

function lastLines(text: string, n: number): string {
  if (n === 0) return '';
  const lines = text.split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  return lines.slice(-n).join('\n') + (lines.length ? '\n' : '');
}

export async function logs(name: string, opts: { follow?: boolean; lines: number }): Promise<void> {
  const home = ferryHome();
  requireLocal(name, home);
  const path = logPath(name, home);
  if (!existsSync(path)) throw new CliError(`no log for endpoint ${name} at ${path} (only an endpoint started with --detach writes one)`);
  // The tail of a large log: read only the end of it.
  const size = statSync(path).size;
  const from = Math.max(0, size - Math.max(64 * 1024, opts.lines * 4096));
  let text = readRange(path, from, size);
  if (from > 0) text = text.slice(text.indexOf('\n') + 1);
  process.stdout.write(lastLines(text, opts.lines));
  if (!opts.follow) return;
  let offset = size;
  await new Promise<never>(() => {
    setInterval(() => {
      let now: number;
      try {
        now = statSync(path).size;
      } catch {
        return; // removed (endpoint deleted); keep waiting as `tail -F` does
      }
      if (now < offset) offset = 0; // truncated or replaced
      if (now > offset) {
        process.stdout.write(readRange(path, offset, now));
        offset = now;
      }
    }, 250);
  });
}

function readRange(path: string, from: number, to: number): string {
  const fd = openSync(path, 'r');
  try {
    const buf = Buffer.alloc(to - from);
    const n = readSync(fd, buf, 0, buf.length, from);
    return buf.subarray(0, n).toString('utf8');
  } finally {
    closeSync(fd);
  }
}
