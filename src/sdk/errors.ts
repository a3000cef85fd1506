// Errors the SDK throws: each carries the gateway's stable code, so callers branch on `code`.

import type { TaskException } from '../protocol/errors';

export class FerryApiError extends Error {
  override readonly name = 'FerryApiError';
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details?: unknown,
  ) {
    super(`${code}: ${message}`);
  }
}

/** Builds the error of a non-OK answer from its body: a Ferry error body, or a proxy's page. */
export function apiErrorFromBody(status: number, text: string): FerryApiError {
  let code = `HTTP_${status}`;
  let message = text.slice(0, 500);
  let details: unknown;
  try {
    const err = JSON.parse(text) as { code?: string; message?: string; details?: unknown };
    if (err.code) code = err.code;
    if (err.message) message = err.message;
    details = err.details;
  } catch {
    // not a Ferry error body: keep the text
  }
  return new FerryApiError(status, code, message, details);
}

/** The task ended `failed`; `exception` is what the function (or the endpoint) reported. */
export class TaskFailedError extends Error {
  override readonly name = 'TaskFailedError';
  readonly code: string;
  constructor(
    readonly taskId: string,
    readonly exception: TaskException,
  ) {
    super(`task ${taskId} failed: ${exception.code}: ${exception.name}: ${exception.message}`);
    this.code = exception.code;
  }
}

export class TaskCancelledError extends Error {
  override readonly name = 'TaskCancelledError';
  readonly code = 'TASK_CANCELLED';
  constructor(readonly taskId: string) {
    super(`task ${taskId} was cancelled`);
  }
}

export class WaitTimeoutError extends Error {
  override readonly name = 'WaitTimeoutError';
  readonly code = 'WAIT_TIMEOUT';
  constructor(readonly taskIds: string[], seconds: number) {
    super(`${taskIds.length} task(s) not finished after ${seconds} s`);
  }
}
