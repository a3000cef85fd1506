// How the CLI reports a failure: one line (or a few) on stderr and a non-zero exit, never a stack
// trace for a mistake the user can fix. CliError is a refusal of the CLI itself (already running,
// already configured); FerryError and FerryApiError keep their stable codes.

import { FerryError } from '../protocol/errors';
import { FerryApiError } from '../sdk/errors';

// Not a FerryError: a refusal of the CLI itself, shown as its message alone with its own exit code; it has no stable code.
export class CliError extends Error {
  override readonly name = 'CliError';
  constructor(
    message: string,
    readonly exitCode = 1,
  ) {
    super(message);
  }
}

export function describeError(err: unknown): string {
  if (err instanceof CliError) return err.message;
  if (err instanceof FerryError) return `${err.code}: ${err.message}`;
  // FerryApiError's message already starts with its code.
  if (err instanceof FerryApiError) return `the gateway answered ${err.status} ${err.message}`;
  if (err instanceof Error) return process.env.FERRY_DEBUG ? (err.stack ?? err.message) : err.message;
  return String(err);
}

export function fail(err: unknown): never {
  // Continuation lines (one per bad config field) indented under the first.
  process.stderr.write(`ferry: ${describeError(err).replace(/\n/g, '\n  ')}\n`);
  process.exit(err instanceof CliError ? err.exitCode : 1);
}
