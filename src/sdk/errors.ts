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
