// What a Durable Object's RPC method answers. Errors thrown across Workers RPC lose their class and
// code, so the objects return a failure as data and the route rebuilds the FerryError.

import { FerryError, isErrorCode, type ErrorBody, type ErrorCode } from '../protocol/errors';

export type HubReply<T> = { ok: true; value: T } | { ok: false; error: ErrorBody };

export function ok<T>(value: T): HubReply<T> {
  return { ok: true, value };
}

export function fail(code: ErrorCode, message?: string, details?: unknown): HubReply<never> {
  return { ok: false, error: new FerryError(code, message, details).toBody() };
}

/** The value of a reply, or its error thrown as the FerryError it was. */
export function unwrap<T>(reply: HubReply<T>): T {
  if (reply.ok) return reply.value;
  const { code, message, details } = reply.error;
  throw new FerryError(isErrorCode(code) ? code : 'INTERNAL', message, details);
}
