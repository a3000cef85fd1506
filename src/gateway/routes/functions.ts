// Function registration: content-derived ids in the owner's Registry, code cached in KV.

import { z } from 'zod';
import { DeleteFunctionResponse, FunctionDoc, RegisterFunctionRequest, RegisterFunctionResponse, Uuid } from '../../protocol/api';
import { FerryError } from '../../protocol/errors';
import { parseFunctionCode } from '../../functions/parse-function';
import { parseShellTemplate, ShellTemplateError } from '../../functions/shell-template';
import { cacheFunction, readableFunctionOwner, uncacheFunction } from '../function-cache';
import { functionUuid } from '../function-id';
import { checkPythonFunction } from '../../functions/python-function';
import { registryOf } from '../registry';
import { defineRoute, type RouteTable } from '../route-spec';

const FunctionParams = z.object({ function_uuid: Uuid });

export function registerFunctionRoutes(table: RouteTable): void {
  defineRoute(
    table,
    {
      method: 'post',
      path: '/v3/functions',
      summary: 'Register a function; the same code from the same owner gets the same id',
      auth: 'user',
      keys: 'none',
      body: RegisterFunctionRequest,
      response: RegisterFunctionResponse,
      errors: ['INVALID_FUNCTION_CODE'],
      example: { function_name: 'add', function_code: 'function add(a, b) { return a + b }', meta: { runtime: 'js' } },
    },
    async (c, { principal: { owner }, body }) => {
      const runtime = body.meta?.runtime ?? 'js';
      if (runtime === 'js') parseFunctionCode(body.function_code);
      else if (runtime === 'python') checkPythonFunction(body.function_name, body.function_code);
      else checkShellTemplate(body.function_code);
      const id = await functionUuid(owner, runtime, body.function_code, body.function_name);
      const { changed } = await registryOf(c.env, owner).registerFunction({
        function_uuid: id,
        function_name: body.function_name,
        function_code: body.function_code,
        runtime,
        serde: body.meta?.serde ?? null,
        description: body.description ?? null,
      });
      // KV takes one write per second per key: rewrite the cached copy only when it changed.
      if (changed) await cacheFunction(c.env, id, { owner, runtime, code: body.function_code, name: body.function_name });
      return { function_uuid: id };
    },
  );

  defineRoute(
    table,
    { method: 'get', path: '/v2/functions/{function_uuid}', summary: "A registered function: the caller's own, or one shared with them", auth: 'user', keys: 'none', params: FunctionParams, response: FunctionDoc, errors: ['NOT_FOUND'] },
    async (c, { principal: { owner }, params }) => {
      // Another owner's function, when shared with the caller (or public), reads from its owner's registry.
      const from = await readableFunctionOwner(c.env, owner, params.function_uuid);
      const doc = from === null ? null : await registryOf(c.env, from).getFunction(params.function_uuid);
      if (!doc) throw new FerryError('NOT_FOUND', 'function not found');
      return doc;
    },
  );

  defineRoute(
    table,
    { method: 'delete', path: '/v2/functions/{function_uuid}', summary: 'Delete a function; tasks already submitted still run', auth: 'user', keys: 'none', params: FunctionParams, response: DeleteFunctionResponse, errors: ['NOT_FOUND'] },
    async (c, { principal: { owner }, params }) => {
      if (!(await registryOf(c.env, owner).deleteFunction(params.function_uuid))) throw new FerryError('NOT_FOUND', 'function not found');
      await uncacheFunction(c.env, params.function_uuid);
      return { result: 302 as const };
    },
  );
}

// The endpoint checks again before running (a function registered before a check was added).
function checkShellTemplate(code: string): void {
  if (code.trim() === '') throw new FerryError('INVALID_FUNCTION_CODE', 'a shell function_code must be a non-empty command template');
  try {
    parseShellTemplate(code);
  } catch (err) {
    if (err instanceof ShellTemplateError) throw new FerryError('INVALID_FUNCTION_CODE', err.message);
    throw err;
  }
}
