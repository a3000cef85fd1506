// The one errors module. Every failure Ferry reports carries a stable `code`; the gateway maps
// `kind: 'user'` to a 4xx status and `kind: 'system'` to a 5xx. A client reads an error answer back
// with errorFromBody() (error-body.ts), a FerryApiError of the same code. A failed task carries a
// TaskException, made only by taskException(); its code is a TaskFailureCode.

export type ErrorKind = 'user' | 'system';

interface CodeInfo {
  readonly status: number;
  readonly kind: ErrorKind;
  readonly retryable: boolean;
  readonly message: string;
}

/** Every stable code, its HTTP status and its default message. A table test pins this. */
export const ERROR_CODES = {
  // Caller's mistakes (4xx).
  INVALID_JSON: { status: 400, kind: 'user', retryable: false, message: 'The request body is not valid JSON' },
  VALIDATION_ERROR: { status: 400, kind: 'user', retryable: false, message: 'The request does not match the schema' },
  INVALID_FUNCTION_CODE: { status: 400, kind: 'user', retryable: false, message: 'function_code must be exactly one function expression (js), a command template whose placeholders stand bare (shell), or Python source (python)' },
  CONFIG_INVALID: { status: 400, kind: 'user', retryable: false, message: 'The configuration is invalid' },
  INVALID_ID: { status: 400, kind: 'user', retryable: false, message: 'The id is malformed' },
  UNAUTHORIZED: { status: 401, kind: 'user', retryable: false, message: 'A valid bearer token is required' },
  TOKEN_EXPIRED: { status: 401, kind: 'user', retryable: false, message: 'The bearer token has expired' },
  TOKEN_REVOKED: { status: 401, kind: 'user', retryable: false, message: 'The token, key or endpoint secret was revoked' },
  FORBIDDEN: { status: 403, kind: 'user', retryable: false, message: 'This token may not do that' },
  FORBIDDEN_SCOPE: { status: 403, kind: 'user', retryable: false, message: 'The instrument key\'s scopes do not allow this' },
  FUNCTION_NOT_PERMITTED: { status: 403, kind: 'user', retryable: false, message: 'The function is not in the endpoint\'s allowed_functions' },
  FUNCTION_NOT_SHARED: { status: 403, kind: 'user', retryable: false, message: 'The function is not among those the endpoint is shared with you for' },
  NOT_FOUND: { status: 404, kind: 'user', retryable: false, message: 'Not found' },
  TASK_ALREADY_FINISHED: { status: 409, kind: 'user', retryable: false, message: 'The task has already finished' },
  ILLEGAL_TRANSITION: { status: 409, kind: 'user', retryable: false, message: 'The task cannot move to that state' },
  TOO_MANY_SHARES: { status: 409, kind: 'user', retryable: false, message: 'The owner holds as many groups, grants or shares as allowed' },
  TOO_MANY_KEYS: { status: 409, kind: 'user', retryable: false, message: 'The owner holds as many active instrument keys as allowed' },
  IDEMPOTENCY_KEY_REUSED: { status: 422, kind: 'user', retryable: false, message: 'The Idempotency-Key was sent before with another request' },
  PAYLOAD_TOO_LARGE: { status: 413, kind: 'user', retryable: false, message: 'The request is over the size limit' },
  TOO_MANY_TASKS: { status: 413, kind: 'user', retryable: false, message: 'The request carries more tasks than allowed' },
  LENGTH_REQUIRED: { status: 411, kind: 'user', retryable: false, message: 'The upload needs a Content-Length' },
  RANGE_NOT_SATISFIABLE: { status: 416, kind: 'user', retryable: false, message: 'The range is outside the object' },
  DIGEST_MISMATCH: { status: 400, kind: 'user', retryable: false, message: 'The bytes do not have the sha256 the client stated' },
  UNSUPPORTED_PROTOCOL: { status: 426, kind: 'user', retryable: false, message: 'Protocol version mismatch' },
  RATE_LIMITED: { status: 429, kind: 'user', retryable: true, message: 'Too many requests' },
  // Ferry's own faults (5xx).
  INTERNAL: { status: 500, kind: 'system', retryable: true, message: 'Internal error' },
  UNAVAILABLE: { status: 503, kind: 'system', retryable: true, message: 'Service unavailable' },
  NOT_IMPLEMENTED: { status: 501, kind: 'system', retryable: false, message: 'This gateway\'s configuration does not offer that' },
  // Task execution outcomes, reported in a task's `exception.code`.
  FERRY_TASK_TIMEOUT: { status: 500, kind: 'user', retryable: false, message: 'The task exceeded its wall-time limit' },
  FERRY_MEMORY_LIMIT: { status: 500, kind: 'user', retryable: false, message: 'The task exceeded its memory limit' },
  FERRY_RESULT_TOO_LARGE: { status: 500, kind: 'user', retryable: false, message: 'The task result is too large to encode in the sandbox' },
  FERRY_RESULT_NOT_STORED: { status: 500, kind: 'system', retryable: false, message: 'The endpoint could not store the task result as an object' },
  FERRY_RESULT_NOT_SERIALIZABLE: { status: 500, kind: 'user', retryable: false, message: 'The task result cannot be encoded as JSON' },
  FERRY_FUNCTION_ERROR: { status: 500, kind: 'user', retryable: false, message: 'The function threw an error' },
  FERRY_FUNCTION_UNAVAILABLE: { status: 500, kind: 'system', retryable: true, message: 'The endpoint does not have the function code' },
  FERRY_WORKER_LOST: { status: 500, kind: 'system', retryable: true, message: 'The worker running the task was lost' },
  FERRY_DATA_NOT_FOUND: { status: 500, kind: 'user', retryable: false, message: 'A data reference names no object this endpoint may read' },
  FERRY_DATA_PATH_REFUSED: { status: 500, kind: 'user', retryable: false, message: 'A file:// data reference is outside the endpoint\'s data_roots, not a regular file, or a file with several hard links' },
  FERRY_SHELL_NOT_ALLOWED: { status: 500, kind: 'user', retryable: false, message: 'This endpoint does not run shell functions' },
  FERRY_RUNTIME_NOT_ALLOWED: { status: 500, kind: 'user', retryable: false, message: 'This endpoint does not run functions of this runtime (Python is off unless its config enables it)' },
  FERRY_FUNCTION_INVALID: { status: 500, kind: 'user', retryable: false, message: 'The function code does not compile on the endpoint, or does not define the named function' },
} as const satisfies Record<string, CodeInfo>;

export type ErrorCode = keyof typeof ERROR_CODES;

export function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === 'string' && Object.prototype.hasOwnProperty.call(ERROR_CODES, value);
}

/** The JSON body of every error answer: `{code, message, details?}`. */
export interface ErrorBody {
  code: string;
  message: string;
  details?: unknown;
}

export class FerryError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly kind: ErrorKind;
  readonly retryable: boolean;
  readonly details: unknown;

  constructor(code: ErrorCode, message?: string, details?: unknown) {
    const info: CodeInfo = ERROR_CODES[code];
    super(message ?? info.message);
    this.name = 'FerryError';
    this.code = code;
    this.status = info.status;
    this.kind = info.kind;
    this.retryable = info.retryable;
    this.details = details;
  }

  toBody(): ErrorBody {
    const body: ErrorBody = { code: this.code, message: this.message };
    if (this.details !== undefined) body.details = this.details;
    return body;
  }
}

/**
 * The codes a failed task's exception carries: the FERRY_* task outcomes of the table, INTERNAL (the
 * endpoint's own fault while running it) and FUNCTION_NOT_PERMITTED (refused by the agent). Adding a
 * task-failure code: a FERRY_* row in ERROR_CODES, then taskException() at the site.
 */
export type TaskFailureCode = Extract<ErrorCode, `FERRY_${string}`> | 'INTERNAL' | 'FUNCTION_NOT_PERMITTED';

export function isTaskFailureCode(value: unknown): value is TaskFailureCode {
  return isErrorCode(value) && (value === 'INTERNAL' || value === 'FUNCTION_NOT_PERMITTED' || value.slice(0, 6) === 'FERRY_');
}

/**
 * The exception of a failed task, as the endpoint makes it and it crosses the sandbox and the
 * processes. On the wire (TaskExceptionDoc) `code` is any string: a gateway stores what an agent of
 * another version sent.
 */
export interface TaskException {
  code: TaskFailureCode;
  name: string;
  message: string;
  stack?: string;
}

/**
 * The one way to make a task's failure. `name` defaults to the code in PascalCase without FERRY_
 * (FERRY_TASK_TIMEOUT: TaskTimeout); a stack is kept only when it is a non-empty string.
 */
export function taskException(code: TaskFailureCode, message: string, extra?: { name?: string | undefined; stack?: string | undefined }): TaskException {
  const exception: TaskException = { code, name: extra?.name || defaultName(code), message };
  if (typeof extra?.stack === 'string' && extra.stack !== '') exception.stack = extra.stack;
  return exception;
}

/** What a task that ended `failed` with no exception reports: the gateway stores it, the SDK shows it. */
export const NO_EXCEPTION_RECORDED: Readonly<TaskException> = Object.freeze(taskException('FERRY_FUNCTION_ERROR', 'the task failed without an exception', { name: 'Error' }));

function defaultName(code: TaskFailureCode): string {
  return code.replace(/^FERRY_/, '').toLowerCase().replace(/(?:^|_)([a-z])/g, (_, c: string) => c.toUpperCase());
}
