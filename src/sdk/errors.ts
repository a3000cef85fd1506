// Errors the SDK throws: each carries the gateway's stable code, so callers branch on `code`.

import type { TaskExceptionDoc } from '../protocol/api';

// FerryApiError (a non-OK answer, read with errorFromBody) is defined beside errorFromBody.
export { FerryApiError } from '../protocol/error-body';

/** The task ended `failed`; `exception` is what the function (or the endpoint) reported. */
// Not a FerryError: its code is the task's exception code as the gateway stored it, which any agent version may have sent.
export class TaskFailedError extends Error {
  override readonly name = 'TaskFailedError';
  readonly code: string;
  constructor(
    readonly taskId: string,
    readonly exception: TaskExceptionDoc,
  ) {
    super(`task ${taskId} failed: ${exception.code}: ${exception.name}: ${exception.message}`);
    this.code = exception.code;
  }
}

// Not a FerryError: TASK_CANCELLED is an outcome the SDK reports, not a code of ERROR_CODES a gateway answers.
export class TaskCancelledError extends Error {
  override readonly name = 'TaskCancelledError';
  readonly code = 'TASK_CANCELLED';
  constructor(readonly taskId: string) {
    super(`task ${taskId} was cancelled`);
  }
}

// Not a FerryError: WAIT_TIMEOUT is the SDK's own deadline, not a code of ERROR_CODES a gateway answers.
export class WaitTimeoutError extends Error {
  override readonly name = 'WaitTimeoutError';
  readonly code = 'WAIT_TIMEOUT';
  constructor(readonly taskIds: string[], seconds: number) {
    super(`${taskIds.length} task(s) not finished after ${seconds} s`);
  }
}
