// Reading a Ferry error answer back, in every client (SDK, CLI, the agent's uploads, token exchange
// and gateway link, the gateway reading its Durable Object): errorFromBody(status, text).

import { isErrorCode, type ErrorCode } from './errors';
import { textNestsDeeperThan } from './json-depth';

/** The most of an error body a client parses; a longer one is kept as text (a proxy's page). */
export const MAX_ERROR_BODY_CHARS = 64 * 1024;
/** The most of an error's message a client keeps. */
const MAX_ERROR_MESSAGE_CHARS = 1000;
/** How deeply an error body may nest (its `details`); a deeper one is not parsed, kept as text. */
const MAX_ERROR_BODY_DEPTH = 16;

/**
 * A non-OK answer of a Ferry service, as a client reads it. Not a FerryError: its code is whatever
 * the server answered (a code of another version, or HTTP_<status> for a body that is not a Ferry
 * error body), not one of this build's ErrorCodes, and its status is the answer's.
 */
export class FerryApiError extends Error {
  override readonly name = 'FerryApiError';
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details?: unknown,
    /** Whether the body was a Ferry error body (`{code, message}`); false: a proxy's page or nothing. */
    readonly ferryBody = false,
  ) {
    super(`${code}: ${message}`);
  }

  /** The message the server gave, without the code in front. */
  get detail(): string {
    return this.message.slice(this.code.length + 2);
  }

  /** The code, when it is one this build knows. */
  get knownCode(): ErrorCode | undefined {
    return isErrorCode(this.code) ? this.code : undefined;
  }
}

/**
 * The error of a non-OK answer from its body: a Ferry error body `{code, message, details?}`, or
 * anything else (a proxy's page, nothing), which gives HTTP_<status> and the text's start. Bounded:
 * a body over MAX_ERROR_BODY_CHARS or nesting deeper than 16 levels is not parsed but kept as text.
 */
export function errorFromBody(status: number, text: string): FerryApiError {
  if (text.length <= MAX_ERROR_BODY_CHARS && !textNestsDeeperThan(text, MAX_ERROR_BODY_DEPTH)) {
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      // not a Ferry error body: the text is kept below
    }
    if (body !== null && typeof body === 'object' && !Array.isArray(body)) {
      const { code, message, details } = body as { code?: unknown; message?: unknown; details?: unknown };
      if (typeof code === 'string' && code !== '') {
        return new FerryApiError(status, code.slice(0, 100), typeof message === 'string' ? message.slice(0, MAX_ERROR_MESSAGE_CHARS) : '', details, true);
      }
    }
  }
  return new FerryApiError(status, `HTTP_${status}`, text.slice(0, MAX_ERROR_MESSAGE_CHARS));
}
