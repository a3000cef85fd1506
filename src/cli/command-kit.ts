// What every `ferry` subcommand file shares: the gateway-access options, the wrapper that turns a
// failure into a clean message and exit code, and printing one line.

import type { Command } from 'commander';
import { fail } from './cli-error';

/** Adds --gateway and --token, read by `resolveGatewayAccess` (src/cli/user-config.ts). */
export function withAccess(cmd: Command): Command {
  return cmd
    .option('--gateway <url>', 'the gateway (default: FERRY_URL, then `ferry login`, then `ferry dev`)')
    .option('--token <token>', 'your user token (default: FERRY_TOKEN, then `ferry login`, then `ferry dev`)');
}

/** Runs an action and turns any failure into a clean message and exit code. */
export function action<A extends unknown[]>(fn: (...args: A) => Promise<void>): (...args: A) => Promise<void> {
  return async (...args: A) => {
    try {
      await fn(...args);
    } catch (err) {
      fail(err);
    }
  };
}

/** Writes `text` to stdout as one line. */
export function out(text: string): void {
  process.stdout.write(text.endsWith('\n') ? text : text + '\n');
}
