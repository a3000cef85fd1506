// Checks, without evaluating it, that a client's `function_code` is exactly one function
// expression: what serialize-javascript prints for a function (declaration-style, arrow, async,
// generator-free). Anything else is `INVALID_FUNCTION_CODE`.

import { parse, type Node } from 'acorn';
import { FerryError } from '../protocol/errors';

export interface ParsedFunction {
  /** The function's own name, when it has one (`function add(a, b) {…}` → `add`). */
  name: string | null;
  async: boolean;
  params: number;
}

interface FunctionLike extends Node {
  type: 'FunctionExpression' | 'ArrowFunctionExpression';
  id?: { name: string } | null;
  async: boolean;
  generator: boolean;
  params: Node[];
}

export function parseFunctionCode(code: string): ParsedFunction {
  let expression: Node;
  try {
    // Wrapping in parentheses makes `function f() {}` parse as an expression. Code that closes the
    // parenthesis early (`0), (f` or `f); g(`) parses as a sequence, call or second statement,
    // which the checks below refuse.
    const program = parse(`(${code}\n)`, { ecmaVersion: 'latest', sourceType: 'script' });
    if (program.body.length !== 1 || program.body[0]!.type !== 'ExpressionStatement') {
      throw new FerryError('INVALID_FUNCTION_CODE', 'function_code must be one function expression, nothing before or after it');
    }
    expression = (program.body[0] as Node & { expression: Node }).expression;
  } catch (err) {
    if (err instanceof FerryError) throw err;
    throw new FerryError('INVALID_FUNCTION_CODE', `function_code does not parse: ${(err as Error).message}`);
  }
  if (expression.type !== 'FunctionExpression' && expression.type !== 'ArrowFunctionExpression') {
    throw new FerryError('INVALID_FUNCTION_CODE', `function_code must be a function expression, not ${expression.type}`);
  }
  const fn = expression as FunctionLike;
  if (fn.generator) {
    throw new FerryError('INVALID_FUNCTION_CODE', 'generator functions are not supported');
  }
  return { name: fn.id?.name ?? null, async: fn.async, params: fn.params.length };
}
