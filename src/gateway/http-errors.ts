// Turns whatever a route throws into Ferry's error body `{code, message, details?}`: a FerryError
// keeps its code and status, a ZodError becomes one VALIDATION_ERROR naming the field, anything
// else is an INTERNAL fault (logged, never shown to the caller).

import { z } from 'zod';
import { FerryError, type ErrorBody } from '../protocol/errors';
import { logEvent } from './log';

const MAX_ISSUES_IN_DETAILS = 20;

export function errorResponse(err: FerryError): Response {
  const res = jsonError(err.status, err.toBody());
  // A rate-limited caller, or one of a gateway shutting down, is told when to come back (seconds), as HTTP says.
  const retryAfter = (err.details as { retry_after_s?: unknown } | undefined)?.retry_after_s;
  if ((err.code === 'RATE_LIMITED' || err.code === 'UNAVAILABLE') && typeof retryAfter === 'number') res.headers.set('retry-after', String(retryAfter));
  return res;
}

export function jsonError(status: number, body: ErrorBody): Response {
  return new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json' } });
}

function formatPath(path: readonly PropertyKey[]): string {
  return path.length === 0 ? '(body)' : path.map(String).join('.');
}

/** `tasks.<uuid>.0.args: expected array, received string` — the first issue, all of them in details. */
export function validationError(err: z.ZodError, prefix = ''): FerryError {
  const issues = err.issues.slice(0, MAX_ISSUES_IN_DETAILS).map((issue) => {
    const path: PropertyKey[] = [...(prefix ? [prefix] : []), ...issue.path];
    // An unknown key is a mistake in that key, not in the object around it.
    if (issue.code === 'unrecognized_keys') return { path: formatPath([...path, issue.keys.join(',')]), message: 'unrecognized key' };
    return { path: formatPath(path), message: issue.message.replace(/^Invalid input: /, '') };
  });
  const first = issues[0] ?? { path: '(body)', message: 'invalid' };
  return new FerryError('VALIDATION_ERROR', `${first.path}: ${first.message}`, { issues });
}

export function toFerryError(err: unknown): FerryError {
  if (err instanceof FerryError) return err;
  if (err instanceof z.ZodError) return validationError(err);
  logEvent('error', 'unhandled error', { error: err instanceof Error ? (err.stack ?? err.message) : String(err) });
  return new FerryError('INTERNAL');
}
