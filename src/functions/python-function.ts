// What the gateway can check of a Python function without Python: its entry point is an identifier
// and its source has no NUL (CPython refuses to compile one). Whether it parses is checked by the
// client before registering and by the endpoint before running (FERRY_FUNCTION_INVALID, with the line).

import { FerryError } from '../protocol/errors';

/** A Python identifier (letters, digits, underscores, not starting with a digit; Unicode letters too). */
const IDENTIFIER = /^[\p{L}\p{Nl}_][\p{L}\p{Nl}\p{Mn}\p{Mc}\p{Nd}\p{Pc}]*$/u;

export function checkPythonFunction(name: string, code: string): void {
  if (!IDENTIFIER.test(name)) {
    throw new FerryError('INVALID_FUNCTION_CODE', `function_name ${JSON.stringify(name)} is not a Python identifier: a Python function's name is its entry point`);
  }
  if (code.includes('\0')) throw new FerryError('INVALID_FUNCTION_CODE', 'function_code contains a NUL character, which Python source cannot');
}
