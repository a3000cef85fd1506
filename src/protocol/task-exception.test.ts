// taskException(), the one builder of a failed task's exception, and the TaskFailureCode union:
// the names each code gets, what is kept of a stack, and that the wire schema takes what it makes
// and what an agent of another version may send.

import { describe, expect, it } from 'vitest';
import { TaskExceptionDoc } from './api';
import { ERROR_CODES, isTaskFailureCode, NO_EXCEPTION_RECORDED, taskException, type TaskFailureCode } from './errors';

/** Every task-failure code and the name the sites wrote by hand before the builder. */
const NAMES: Record<TaskFailureCode, string> = {
  FERRY_TASK_TIMEOUT: 'TaskTimeout',
  FERRY_MEMORY_LIMIT: 'MemoryLimit',
  FERRY_RESULT_TOO_LARGE: 'ResultTooLarge',
  FERRY_RESULT_NOT_STORED: 'ResultNotStored',
  FERRY_RESULT_NOT_SERIALIZABLE: 'ResultNotSerializable',
  FERRY_FUNCTION_ERROR: 'FunctionError',
  FERRY_FUNCTION_UNAVAILABLE: 'FunctionUnavailable',
  FERRY_WORKER_LOST: 'WorkerLost',
  FERRY_DATA_NOT_FOUND: 'DataNotFound',
  FERRY_DATA_PATH_REFUSED: 'DataPathRefused',
  FERRY_SHELL_NOT_ALLOWED: 'ShellNotAllowed',
  FERRY_RUNTIME_NOT_ALLOWED: 'RuntimeNotAllowed',
  FERRY_FUNCTION_INVALID: 'FunctionInvalid',
  INTERNAL: 'Internal',
  FUNCTION_NOT_PERMITTED: 'FunctionNotPermitted',
};

describe('taskException', () => {
  it('names each code as the sites did: PascalCase without FERRY_', () => {
    for (const [code, name] of Object.entries(NAMES)) {
      expect(taskException(code as TaskFailureCode, 'm')).toEqual({ code, name, message: 'm' });
    }
  });

  it('takes a name and a stack, and keeps a stack only when it says something', () => {
    expect(taskException('FERRY_FUNCTION_ERROR', 'boom', { name: 'TypeError', stack: 'TypeError: boom\n    at f' }))
      .toEqual({ code: 'FERRY_FUNCTION_ERROR', name: 'TypeError', message: 'boom', stack: 'TypeError: boom\n    at f' });
    expect(taskException('FERRY_FUNCTION_ERROR', 'boom', { name: 'Error', stack: '' })).not.toHaveProperty('stack');
    expect(taskException('FERRY_FUNCTION_ERROR', 'boom', { stack: undefined })).not.toHaveProperty('stack');
    // An error whose name is empty still gets one.
    expect(taskException('FERRY_FUNCTION_ERROR', 'boom', { name: '' }).name).toBe('FunctionError');
  });

  it('gives the one exception of a task that failed without one', () => {
    expect(NO_EXCEPTION_RECORDED).toEqual({ code: 'FERRY_FUNCTION_ERROR', name: 'Error', message: 'the task failed without an exception' });
  });

  it('makes what the wire schema accepts', () => {
    for (const code of Object.keys(NAMES)) {
      expect(TaskExceptionDoc.safeParse(taskException(code as TaskFailureCode, 'x', { stack: 's' })).success).toBe(true);
    }
  });
});

describe('TaskFailureCode', () => {
  it('is every FERRY_* code of the table, INTERNAL and FUNCTION_NOT_PERMITTED, and nothing else', () => {
    const task = Object.keys(ERROR_CODES).filter((code) => isTaskFailureCode(code)).sort();
    expect(task).toEqual(Object.keys(NAMES).sort());
    for (const other of ['NOT_FOUND', 'UNAVAILABLE', 'FERRY_NO_SUCH_CODE', '', 'ferry_task_timeout', 7, null, undefined]) {
      expect(isTaskFailureCode(other)).toBe(false);
    }
  });

  it('is not asked of the wire: a gateway keeps a code an agent of another version sent', () => {
    const sent = { code: 'FERRY_SOMETHING_NEWER', name: 'SomethingNewer', message: 'from a newer agent' };
    expect(TaskExceptionDoc.parse(sent)).toEqual(sent);
  });
});
